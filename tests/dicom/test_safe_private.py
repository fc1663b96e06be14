"""PS3.15 Retain Safe Private: the table, and which private elements stay."""

from __future__ import annotations

from pydicom.dataset import Dataset

from dicomhub.dicom import safe_private
from tests.dicom_factory import make_dataset


def test_the_table() -> None:
    rows = safe_private.table()
    assert len(rows) > 400
    # Spot checks against PS3.15 Table E.3.10-1.
    b_value = rows[("SIEMENS MR HEADER", 0x0019, 0x0C)]
    assert b_value.vrs == {"IS"} and b_value.meaning == "B Value"
    assert rows[("Philips PET Private Group", 0x7053, 0x00)].vrs == {"DS"}
    assert rows[("GEMS_PARM_01", 0x0043, 0x39)].vrs == {"IS"}
    assert rows[("Philips Imaging DD 001", 0x2001, 0x7D)].vrs == {"OW", "OB"}
    assert rows[("HOLOGIC, Inc.", 0x7E01, 0x12)].vrs == {"OB"}
    assert rows[("SIEMENS Ultrasound SC2000", 0x0119, 0x11)].vrs == frozenset()
    assert ("SIEMENS MR HEADER", 0x0019, 0x08) not in rows  # CSA header type: not listed
    assert all(row.group & 1 for row in rows.values())


def _private(ds: Dataset) -> None:
    # SIEMENS MR HEADER reserved block 0x11 here (not the usual 0x10).
    ds.add_new(0x00190010, "LO", "ACME")
    ds.add_new(0x00190011, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100C, "LO", "ACME secret")  # same element number, other creator
    ds.add_new(0x0019110C, "IS", "1000")  # B Value: safe
    ds.add_new(0x0019110E, "FD", [0.0, 0.0, 1.0])  # Diffusion Gradient Direction: safe
    ds.add_new(0x00191108, "CS", "IMAGE NUM 4")  # not in the table
    ds.add_new(0x00431010, "LO", "GEMS_PARM_01")  # a creator in the element range: junk
    ds.add_new(0x00430010, "LO", "GEMS_PARM_01")
    ds.add_new(0x00431039, "LO", "not a number")  # the table says IS: wrong VR, not safe
    ds.add_new(0x70530010, "LO", "Philips PET Private Group")
    ds.add_new(0x70531000, "UN", b"3.2 ")  # implicit VR file: UN is accepted
    ds.add_new(0x00290010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0029100C, "IS", "1")  # B Value's number, in another group


def test_remove_unsafe_keeps_safe_elements_and_their_creators() -> None:
    ds = make_dataset()
    _private(ds)
    item = Dataset()
    item.CodeValue = "1"
    _private(item)
    ds.ReferencedImageSequence = [item]
    safe_private.remove_unsafe(ds, lambda t: False, lambda parents, t: False)
    expected = {0x00190011, 0x0019110C, 0x0019110E, 0x70530010, 0x70531000}
    for dataset in (ds, ds.ReferencedImageSequence[0]):
        private = {int(e.tag) for e in dataset if e.tag.is_private}
        assert private == expected
    assert ds.PatientName == "Doe^John" and ds.ReferencedImageSequence[0].CodeValue == "1"


def test_kept_tags_stay_with_their_creator() -> None:
    ds = make_dataset()
    _private(ds)
    safe_private.remove_unsafe(ds, {0x0019100C}.__contains__, lambda parents, t: False)
    assert ds[0x0019100C].value == "ACME secret" and ds[0x00190010].value == "ACME"
    assert 0x00191108 not in ds
