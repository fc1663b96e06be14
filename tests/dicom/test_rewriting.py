"""Writing a modified header in front of the source's pixel data, and the index record
built from the written dataset instead of reading the new file again: both must give
exactly what the whole-file way gives (the bytes of ``save_as``, the record of
``parse_instance``), on pydicom's sample files, compressed ones and character sets
included."""

from __future__ import annotations

import io
import warnings
from dataclasses import fields
from pathlib import Path
from typing import Any

import pydicom.data
import pytest
from dicom_factory import make_dataset, to_bytes
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomhub.core import modification
from dicomhub.core.settings import Settings
from dicomhub.dicom import rewriting
from dicomhub.dicom.levels import Level
from dicomhub.dicom.modification import Modification, UidMapper, apply
from dicomhub.dicom.parsing import ParsedInstance, describe, parse_instance, read_dataset


def _modifications() -> dict[str, Modification]:
    settings = Settings()
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "anonymize": ("anonymize", {}),
        "anonymize keeping private tags": ("anonymize", {"KeepPrivateTags": True}),
        "modify": (
            "modify",
            {
                "Replace": {
                    "StudyDescription": "Étude à l'hôpital",  # not in every character set
                    "PatientName": "Doe^Jérôme ",  # odd length, trailing space
                    "InstitutionName": "A",
                    "SeriesNumber": "12",
                },
                "Remove": ["ReferringPhysicianName"],
            },
        ),
    }
    made = {}
    for name, (kind, body) in bodies.items():
        if kind == "anonymize":
            made[name] = modification.parse_anonymize(body, {}, settings).modification
        else:
            made[name] = modification.parse_modify(body, Level.STUDY, {}, settings).modification
    return made


MODIFICATIONS = _modifications()


#: The test files pydicom ships in its package (``get_testdata_files`` would also list,
#: and try to download, its external data set: no network here).
SHIPPED = Path(pydicom.data.__file__).parent / "test_files"


def _samples() -> list[Path]:
    paths = [*SHIPPED.glob("*.dcm"), *map(Path, get_charset_files("*"))]
    return sorted(p for p in paths if p.is_file() and p.suffix == ".dcm")


def _whole(data: bytes, mod: Modification) -> bytes | None:
    """The usual way: read everything, modify, write everything (None if it fails)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds, _ = read_dataset(data)
            apply(ds, mod, UidMapper("seed"))
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=True)
    except Exception:  # noqa: BLE001 - files the usual way refuses are not compared
        return None
    return out.getvalue()


def _record(parsed: ParsedInstance) -> dict[str, Any]:
    return {f.name: getattr(parsed, f.name) for f in fields(parsed) if not f.name.startswith("_")}


def test_spliced_files_and_records_match_the_whole_file_way() -> None:
    spliced: set[str] = set()
    described = 0
    for path in _samples():
        data = path.read_bytes()
        for name, mod in MODIFICATIONS.items():
            expected = _whole(data, mod)
            if expected is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                source = rewriting.read_source(data)
                if source is None:
                    continue
                apply(source.dataset, mod, UidMapper("seed"))
                written = rewriting.write(source, source.dataset)
            if written is None:
                continue
            spliced.add(path.name)
            assert written.data == expected, (path.name, name)
            if not written.faithful:
                continue
            for encoding in ("Latin1", "Utf8"):
                try:
                    reference = _record(parse_instance(expected, encoding))
                except ValueError as exc:
                    with pytest.raises(type(exc)):
                        describe(source.dataset, written.data, written.pixel_data_offset, encoding)
                    continue
                ours = describe(source.dataset, written.data, written.pixel_data_offset, encoding)
                assert _record(ours) == reference, (path.name, name, encoding)
                described += 1
    # The fast way must be the common one: native, implicit, big endian, compressed,
    # character sets, no pixel data. (CT_small.dcm and MR_small.dcm
    # are not: they end with trailing padding, after the pixel data.)
    for name in (
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "SC_rgb_rle.dcm",
        "chrH31.dcm",
        "chrSQEncoding.dcm",
    ):
        assert name in spliced
    assert described > 100


def _with_trailing_padding() -> bytes:
    ds = make_dataset(patient_id="TAIL")
    ds[0xFFFCFFFC] = DataElement(0xFFFCFFFC, "OB", b"\0\0")
    return to_bytes(ds)


def _deflated() -> bytes:
    ds = make_dataset(patient_id="DEFLATE")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return to_bytes(ds)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_with_trailing_padding(), id="element after the pixel data"),
        pytest.param(_deflated(), id="deflated"),
        pytest.param(to_bytes(make_dataset())[:-10], id="truncated pixel data"),
        pytest.param(to_bytes(make_dataset())[128:], id="no preamble"),
    ],
)
def test_files_read_whole(data: bytes) -> None:
    assert rewriting.read_source(data) is None


def test_an_element_added_after_the_pixel_data_takes_the_usual_way() -> None:
    data = to_bytes(make_dataset(patient_id="ADD"))
    source = rewriting.read_source(data)
    assert source is not None
    source.dataset[0x7FE10010] = DataElement(0x7FE10010, "LO", "CREATOR")
    assert rewriting.write(source, source.dataset) is None
    mod = modification.parse_modify(
        {"Replace": {"7fe1,0010": "CREATOR"}}, Level.INSTANCE, {}, Settings()
    ).modification
    changed = modification.modify_file(data, mod, UidMapper("seed"))
    assert not changed.faithful
    assert changed.data == _whole(data, mod)
    assert read_dataset(changed.data)[0][0x7FE10010].value == "CREATOR"


def test_removing_the_pixel_data_takes_the_usual_way() -> None:
    data = to_bytes(make_dataset(patient_id="NOPIXELS"))
    mod = modification.parse_modify(
        {"Remove": ["PixelData"]}, Level.INSTANCE, {}, Settings()
    ).modification
    changed = modification.modify_file(data, mod, UidMapper("seed"))
    assert changed.pixel_data_offset is None
    assert "PixelData" not in read_dataset(changed.data)[0]
    assert parse_instance(changed.data).pixel_data_offset is None


def test_a_new_character_set_is_not_described_from_memory() -> None:
    """The writer re-encodes every text element then: the record is read from the file."""
    data = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    mod = modification.parse_modify(
        {"Replace": {"SpecificCharacterSet": "ISO_IR 192", "PatientName": "Jérôme"}},
        Level.INSTANCE,
        {},
        Settings(),
    ).modification
    changed = modification.modify_file(data, mod, UidMapper("seed"))
    assert not changed.faithful
    assert changed.data == _whole(data, mod)
    assert parse_instance(changed.data).main_tags[Level.PATIENT][0x00100010] == "Jérôme"


def test_spliced_file_keeps_pixel_data_and_offset() -> None:
    data = to_bytes(make_dataset(patient_id="SPLICE"))
    mod = MODIFICATIONS["anonymize"]
    changed = modification.modify_file(data, mod, UidMapper("seed"))
    assert changed.faithful and changed.pixel_data_offset is not None
    offset = changed.pixel_data_offset
    assert changed.data[offset : offset + 4] == b"\xe0\x7f\x10\x00"
    assert read_dataset(changed.data)[0].PixelData == read_dataset(data)[0].PixelData
    assert parse_instance(changed.data).pixel_data_offset == offset
