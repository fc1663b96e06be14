"""``dicomhub.dicom.creation``: the content of ``/tools/create-dicom`` without a server
(PAM pictures, raw bytes, MIME types, LUT data); the REST tests compare with Orthanc."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from dicomhub.dicom import creation


def _uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


def _pam(header: str, body: bytes) -> bytes:
    return f"P7\n{header}ENDHDR\n".encode() + body


def test_pam_formats() -> None:
    grey = creation.read_pam(
        _pam("WIDTH 3\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\n", bytes(range(6)))
    )
    assert grey.dtype == np.uint8 and grey.tolist() == [[0, 1, 2], [3, 4, 5]]
    deep = creation.read_pam(
        _pam("WIDTH 1\nHEIGHT 2\nDEPTH 1\nMAXVAL 65535\nTUPLTYPE GRAYSCALE\n", b"\x01\x02\xff\x00")
    )
    assert deep.dtype == np.uint16 and deep.tolist() == [[0x0102], [0xFF00]]  # big endian
    colour = creation.read_pam(
        _pam("TUPLTYPE RGB\nMAXVAL 255\nDEPTH 3\nHEIGHT 1\nWIDTH 2\nX y\n", bytes(range(6)))
    )
    assert colour.shape == (1, 2, 3) and colour[0, 1].tolist() == [3, 4, 5]
    empty = creation.read_pam(
        _pam("WIDTH 0\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\n", b"")
    )
    assert empty.shape == (2, 0)  # as Orthanc, which stores a picture without columns


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (_pam("WIDTH 1\nHEIGHT 1\nDEPTH 4\nMAXVAL 255\nTUPLTYPE RGB_ALPHA\n", b""), "NotImplemented"),
        (_pam("WIDTH 1\nHEIGHT 1\nDEPTH 1\nMAXVAL 4095\nTUPLTYPE GRAYSCALE\n", b"\0\0"), "NotImplemented"),
        (_pam("WIDTH 1\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\n", b"\0"), "BadFormat"),
        (_pam("WIDTH 1\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\n", b"\0\0"), "BadFormat"),
        (_pam("WIDTH -1\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\n", b""), "BadFormat"),
        (_pam("WIDTH ١\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\n", b"\0"), "BadFormat"),
        (_pam("# two words\nWIDTH 1\nHEIGHT 1\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\n", b"\0"), "BadFormat"),
        (b"P7\nWIDTH 1\n", "BadFormat"),
    ],
)  # fmt: skip
def test_pam_refused(data: bytes, kind: str) -> None:
    with pytest.raises(creation.CreationError) as caught:
        creation.read_pam(data)
    assert caught.value.kind == kind


def test_content_types() -> None:
    ds = creation.new_dataset("ISO_IR 100")
    creation.embed_content(ds, _uri("application/octet-stream", b"abc"))
    assert ds["PixelData"].VR == "OW" and ds.PixelData == b"abc\0"
    assert "Rows" not in ds
    ds = creation.new_dataset("ISO_IR 100")
    creation.embed_content(
        ds,
        _uri(
            "image/x-portable-arbitrarymap",
            _pam("WIDTH 2\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\n", bytes(6)),
        ),
    )
    assert (ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation) == (
        1,
        2,
        3,
        "RGB",
    )
    for mime, kind, details in (
        ("image/gif", "UnsupportedMime", "image/gif"),
        ("text/xml", "UnsupportedMime", "application/xml"),
        ("image/bmp", "UnknownMime", None),
    ):
        with pytest.raises(creation.CreationError) as caught:
            creation.embed_content(creation.new_dataset("ISO_IR 100"), _uri(mime, b"x"))
        assert caught.value.kind == kind
        if details is not None:
            assert caught.value.details is not None and caught.value.details.endswith(details)


def test_lut_data() -> None:
    ds = creation.new_dataset("ISO_IR 100")
    creation.inject_tags(ds, {"LUTData": "", "6000,3000": "ab"})
    assert ds["LUTData"].VR == "OW" and ds[0x60003000].VR == "OW"
    for tags, kind in (
        ({"LUTData": "1"}, "OutOfRange"),
        ({"VOILUTSequence": [{"LUTData": ""}]}, "OutOfRange"),
        ({"GrayLookupTableData": ""}, "UnknownTag"),
    ):
        with pytest.raises(creation.CreationError) as caught:
            creation.inject_tags(creation.new_dataset("ISO_IR 100"), tags)
        assert caught.value.kind == kind, tags
    ds = creation.new_dataset("ISO_IR 100")
    creation.inject_tags(ds, {"LUTData": None})
    assert ds["LUTData"].VR == "OW" and not ds["LUTData"].value
