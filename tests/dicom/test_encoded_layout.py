"""``encoded.layout`` reads a file meta as pydicom's element reader does.

A C-MOVE locates the data set of every instance it sends with ``layout`` (``struct``
alone); pydicom's reader is the reference: the same UIDs, value offsets and data set
start on real files, and ``None`` (then pydicom's reading and its errors) for any
file meta that is not the plain kind.
"""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from dicom_factory import make_dataset, to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from dicomhub.dicom import encoded

SHIPPED = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb.dcm", "JPEG2000.dcm"]


def _shipped() -> list[bytes]:
    files = []
    for name in SHIPPED:
        path = get_testdata_file(name, download=False)
        if path is not None:
            with open(path, "rb") as handle:
                files.append(handle.read())
    return files


def _generated() -> list[bytes]:
    files = [to_bytes(make_dataset())]
    dataset = make_dataset()
    dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    stream = BytesIO()
    dataset.save_as(stream, implicit_vr=True, little_endian=True, enforce_file_format=True)
    files.append(stream.getvalue())
    dataset = make_dataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    stream = BytesIO()
    dataset.save_as(stream, implicit_vr=False, little_endian=False, enforce_file_format=True)
    files.append(stream.getvalue())
    return files


@pytest.mark.parametrize("data", _shipped() + _generated())
def test_layout_reads_what_pydicom_reads(data: bytes) -> None:
    found = encoded.layout(data)
    assert found is not None
    assert found == encoded._layout_by_pydicom(data)
    meta = dcmread(BytesIO(data), stop_before_pixels=True).file_meta
    assert found.sop_class_uid == meta.MediaStorageSOPClassUID
    assert found.sop_instance_uid == meta.MediaStorageSOPInstanceUID
    assert found.transfer_syntax_uid == meta.TransferSyntaxUID
    # the data set starts with its first element, right after the meta
    assert struct.unpack_from("<H", data, found.payload_start)[0] != 0x0002
    split = encoded.split(data)
    assert split.payload == data[found.payload_start :]
    assert split.SOPClassUID == meta.MediaStorageSOPClassUID
    assert split.SOPInstanceUID == meta.MediaStorageSOPInstanceUID
    assert split.file_meta.TransferSyntaxUID == meta.TransferSyntaxUID


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"UN"):
        return struct.pack("<HH2sHI", 2, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 2, element, vr, len(value)) + value


def _file(*elements: bytes, data_set: bytes = b"\x08\x00\x16\x00UI\x02\x001\x00") -> bytes:
    return b"\0" * 128 + b"DICM" + b"".join(elements) + data_set


UIDS = (
    _meta_element(0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0"),
    _meta_element(0x0003, b"UI", b"1.2.3.4"),
    _meta_element(0x0010, b"UI", b"1.2.840.10008.1.2.1\0"),
)


def test_a_hand_written_meta() -> None:
    data = _file(_meta_element(0x0001, b"OB", b"\0\1"), *UIDS)
    found = encoded.layout(data)
    assert found == encoded._layout_by_pydicom(data)
    assert found is not None and found.sop_instance_uid == "1.2.3.4"
    assert data[found.payload_start :] == b"\x08\x00\x16\x00UI\x02\x001\x00"


@pytest.mark.parametrize(
    "data, error",
    [
        (b"\0" * 128 + b"DICX" + b"".join(UIDS), InvalidDicomError),  # no prefix
        (_file(*UIDS[:2]), ValueError),  # no TransferSyntaxUID
        (_file(UIDS[1], UIDS[2]), ValueError),  # no MediaStorageSOPClassUID
    ],
)
def test_what_layout_leaves_to_pydicom_fails_as_before(data: bytes, error: type) -> None:
    assert encoded.layout(data) is None
    with pytest.raises(error):
        encoded.split(data)


def test_unusual_metas_are_read_by_pydicom() -> None:
    # an undefined length, a length past the end, an unknown VR: pydicom decides
    undefined = struct.pack("<HH2sHI", 2, 0x0001, b"OB", 0, 0xFFFFFFFF)
    overrun = _meta_element(0x0100, b"UI", b"1.2")[:-1]
    for data in (
        _file(undefined, *UIDS),
        b"\0" * 128 + b"DICM" + b"".join(UIDS) + overrun[:10],
        _file(*UIDS, struct.pack("<HH2sH", 2, 0x0102, b"ZZ", 2) + b"ab"),
    ):
        assert encoded.layout(data) is None
