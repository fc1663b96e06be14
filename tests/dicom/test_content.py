"""``/instances/{id}/content/...``; every expected answer was observed on Orthanc 1.10.1."""

from __future__ import annotations

import struct

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dicomhub.dicom.content import (
    ContentNotFound,
    UnknownTagError,
    content,
    list_content,
    parse_tag,
    raw_content,
)


def sample(name: str) -> Dataset:
    return dcmread(get_testdata_file(name, download=False))


def put(ds: Dataset, tag: int, vr: str | None, value: bytes, little: bool = True) -> None:
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, vr is None, little)


def path(text: str) -> list[str]:
    return text.split("/")


@pytest.fixture(scope="module")
def ct() -> Dataset:
    return sample("CT_small.dcm")


def test_top_level_lists_every_tag(ct: Dataset) -> None:
    tags = content(ct, [])
    assert len(tags) == 258
    assert tags[:3] == ["0008-0005", "0008-0008", "0008-0012"]
    assert tags[-3:] == ["0043-104e", "7fe0-0010", "fffc-fffc"]  # after pixel data too
    assert content(ct, [""]) == tags  # /content/


def test_sequences_and_items(ct: Dataset) -> None:
    assert content(ct, path("0010-1002")) == ["0", "1"]
    assert content(ct, path("0010-1002/")) == ["0", "1"]
    assert content(ct, path("0010-1002/0")) == ["0010-0020", "0010-0022"]
    assert content(ct, path("0010-1002/1/0010-0020")) == b"1234ABCD"
    assert content(ct, path("0010-1002/0/PatientID")) == b"ABCD1234"
    assert content(ct, path("OtherPatientIDsSequence/0/TypeOfPatientID")) == b"TEXT"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("0010-0010", b"CompressedSamples^CT1 "),  # padding kept
        ("0020-000d", b"1.3.6.1.4.1.5962.1.2.1.20040119072730.12322\x00"),
        ("0008-0008", b"ORIGINAL\\PRIMARY\\AXIAL"),
        ("0020-0032", b"-158.135803\\-179.035797\\-75.699997"),
        ("0008-0050", b""),
        ("0028-0010", b"\x80\x00"),  # US, little endian
        ("0027-1041", b"{h\x9a\xc2"),  # FL
        ("0009-0010", b"GEMS_IDEN_01"),
    ],
)
def test_leaf_values(ct: Dataset, where: str, expected: bytes) -> None:
    assert content(ct, path(where)) == expected


def test_binary_leaf(ct: Dataset) -> None:
    value = raw_content(ct, path("0043-1028"))
    assert len(value) == 80
    assert value.startswith(b"CT01\x00\x00\x00HiSpeed CT/i\x00")


@pytest.mark.parametrize(
    "spelling", ["0010-1002", "0010,1002", "00101002", "OtherPatientIDsSequence", "0010-1002"]
)
def test_tag_spellings(ct: Dataset, spelling: str) -> None:
    assert content(ct, [spelling]) == ["0", "1"]


def test_hex_is_case_insensitive(ct: Dataset) -> None:
    assert content(ct, ["7FE0-0010"]) == content(ct, ["7fe0-0010"]) == ["0"]


@pytest.mark.parametrize("index", ["1", "01", "+1"])
def test_index_spellings(ct: Dataset, index: str) -> None:
    assert content(ct, ["0010-1002", index, "0010-0020"]) == b"1234ABCD"


@pytest.mark.parametrize(
    "where",
    [
        "0010-1002/2",  # index out of range
        "0010-1002/x",
        "0010-1002/1x",
        "0010-1002/-2",
        "0010-1002/4294967296",
        "0010-1002/0/0010-0021",  # not in the item
        "0010-0010/0",  # below a leaf
        "0010-1002/1/0010-0020/0",
        "0010-0021",  # absent
        "0002-0010",  # the file meta group is not part of the dataset
        "7fe0-0010/1",
    ],
)
def test_not_found(ct: Dataset, where: str) -> None:
    with pytest.raises(ContentNotFound):
        content(ct, path(where))


@pytest.mark.parametrize(
    "segment",
    [
        "zzzz",
        "patientname",
        "0010-0010-",
        "10-10",
        "0010-00100",
        " 0010-0010",
        "(0010,0010)",
        " PatientName",
        "PatientName ",
        "0010 ,0010",
        "0010;0010",
    ],
)
def test_unknown_tag(ct: Dataset, segment: str) -> None:
    with pytest.raises(UnknownTagError):
        content(ct, [segment])


def test_parse_tag() -> None:
    assert parse_tag("0010,0010") == parse_tag("PatientName") == 0x00100010
    assert parse_tag("7FE0-0010") == 0x7FE00010
    # Orthanc's reading of names (dicom.tag_names), as in /instances/{id}/content/...
    for name in ("10,10", "0x0010,0x0010", "0010, 0010", "0010,0010X", "10,10 ", "-fff0,0010"):
        assert parse_tag(name) == 0x00100010, name
    assert parse_tag("0010,0010.0008,0100") == 0x00100010  # no "." paths here


def test_list_and_raw_refuse_the_other_kind(ct: Dataset) -> None:
    assert list_content(ct, ["0010-1002"]) == ["0", "1"]
    with pytest.raises(ContentNotFound):
        list_content(ct, ["0010-0010"])
    with pytest.raises(ContentNotFound):
        raw_content(ct, ["0010-1002"])


def test_native_pixel_data_is_one_item() -> None:
    ds = sample("rtdose.dcm")  # 15 frames, still one item
    assert content(ds, ["7fe0-0010"]) == ["0"]
    assert content(ds, ["7fe0-0010", "0"]) == ds.PixelData


def test_encapsulated_pixel_data_lists_its_items() -> None:
    ds = sample("SC_rgb_rle_2frame.dcm")
    assert content(ds, ["7fe0-0010"]) == ["0", "1", "2"]
    assert content(ds, ["7fe0-0010", "0"]) == b"\x00\x00\x00\x00\xa0\x02\x00\x00"  # offsets
    assert [len(content(ds, ["7fe0-0010", i])) for i in ("1", "2")] == [664, 664]
    ds = sample("JPEG2000.dcm")
    assert content(ds, ["7fe0-0010"]) == ["0", "1"]
    assert content(ds, ["7fe0-0010", "0"]) == b""  # an empty offset table
    assert content(ds, ["7fe0-0010", "1"])[:4] == b"\xffO\xffQ"


def test_pixel_data_inside_an_item_is_a_plain_value() -> None:
    ds = sample("examples_overlay.dcm")
    icon = content(ds, ["0088-0200", "0", "7fe0-0010"])
    assert isinstance(icon, bytes) and len(icon) == 4096


def test_big_endian_numbers_come_out_little_endian() -> None:
    ds = sample("MR_small_bigendian.dcm")
    assert content(ds, ["0028-0010"]) == b"@\x00"
    ds = Dataset()
    put(ds, 0x00209165, "AT", struct.pack(">4H", 0x0010, 0x0010, 0x0010, 0x0020), little=False)
    put(ds, 0x00189087, "FD", struct.pack(">d", 1.5), little=False)
    assert content(ds, ["0020-9165"]) == b"\x10\x00\x10\x00\x10\x00 \x00"
    assert content(ds, ["0018-9087"]) == b"\x00\x00\x00\x00\x00\x00\xf8?"


#: One tag per text VR, to write the same raw value in each.
TEXT_TAGS = {
    "AE": 0x00400241, "CS": 0x00080060, "DS": 0x00101030, "IS": 0x00200012,
    "LO": 0x00080070, "LT": 0x00204000, "PN": 0x00100010, "SH": 0x00080050,
    "UI": 0x00081150, "UR": 0x00080120,
}  # fmt: skip
OTHER_THAN_UI = [vr for vr in TEXT_TAGS if vr != "UI"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b" a \\ b  ", dict.fromkeys(OTHER_THAN_UI, b" a \\ b") | {"UI": b"a\\b\x00"}),
        (b" 1 \\ 2 ", dict.fromkeys(OTHER_THAN_UI, b" 1 \\ 2 \x00") | {"UI": b"1\\2\x00"}),
        (b"x\x00y ", dict.fromkeys(OTHER_THAN_UI, b"x\x00y ") | {"UI": b"x\x00y\x00"}),
        (
            b"p \\q\x00\\ r\x00 ",
            dict.fromkeys(OTHER_THAN_UI, b"p \\q\x00\\ r\x00 ") | {"UI": b"p\\q\x00\\r"},
        ),
        (b"abc\x00\x00 ", dict.fromkeys(OTHER_THAN_UI, b"abc\x00\x00 ") | {"UI": b"abc\x00"}),
        (b"ab  ", dict.fromkeys(TEXT_TAGS, b"ab")),
        (b"1.2\x00\x00", dict.fromkeys(OTHER_THAN_UI, b"1.2\x00\x00\x00") | {"UI": b"1.2\x00"}),
        (b" 12 ", {"IS": b" 12 ", "LO": b" 12 "}),
        (b" AE1  ", {"AE": b" AE1", "CS": b" AE1"}),
        (b"CT\x00 ", {"CS": b"CT\x00 "}),
        (b"\xe9t\xe9  ", {"LO": b"\xe9t\xe9  \x00"}),
    ],
)
def test_text_as_dcmtk_keeps_it(raw: bytes, expected: dict[str, bytes]) -> None:
    ds = Dataset()
    for vr, tag in TEXT_TAGS.items():
        put(ds, tag, vr, raw)
    for vr, value in expected.items():
        tag = TEXT_TAGS[vr]
        assert content(ds, [f"{tag >> 16:04x}-{tag & 0xFFFF:04x}"]) == value, vr


def test_odd_binary_values_are_padded() -> None:
    ds = Dataset()
    put(ds, 0x00110010, "LO", b"MY CREATOR")
    put(ds, 0x00111002, "UN", b"unknown binary\x00")
    assert content(ds, ["0011-1002"]) == b"unknown binary\x00\x00"


def test_explicit_un_is_raw_bytes_padded_with_nul() -> None:
    ds = Dataset()
    put(ds, 0x00280030, "UN", b" 0.5\\0.5 ")
    put(ds, 0x00400241, "UN", b" AE1 ")
    put(ds, 0x00080070, "UN", b"  lead  ")
    put(ds, 0x00280010, "UN", b"\x00\x02")
    item = b"\xfe\xff\x00\xe0\x0e\x00\x00\x00@\x00\t\x00SH\x06\x00ab 1  "
    put(ds, 0x00400275, "UN", item)  # a sequence in a defined-length UN: a plain value
    assert content(ds, ["0028-0030"]) == b" 0.5\\0.5 \x00"
    assert content(ds, ["0040-0241"]) == b" AE1 \x00"
    assert content(ds, ["0008-0070"]) == b"  lead  "
    assert content(ds, ["0028-0010"]) == b"\x00\x02"
    assert content(ds, ["0040-0275"]) == item


def test_group_lengths_are_listed_and_readable() -> None:
    ds = Dataset()
    put(ds, 0x00080000, "UL", struct.pack("<I", 12345))
    put(ds, 0x00080005, "CS", b"ISO_IR 100")
    assert content(ds, []) == ["0008-0000", "0008-0005"]
    assert content(ds, ["0008-0000"]) == b"90\x00\x00"


def test_undefined_length_un_is_navigable() -> None:
    ds = sample("UN_sequence.dcm")
    assert content(ds, ["4453-100c"]) == ["0"]
    assert content(ds, ["4453-100c", "0"]) == ["0008-1115", "0020-000d"]


def test_converted_elements_give_the_same_bytes() -> None:
    ds = sample("CT_small.dcm")
    before = [content(ds, [t]) for t in ("0010-0010", "0028-0010", "0020-0032", "0018-0050")]
    _ = ds.PatientName, ds.Rows, ds.ImagePositionPatient, ds.SliceThickness  # converts them
    after = [content(ds, [t], ["ISO_IR 100"]) for t in ("0010-0010", "0028-0010", "0020-0032")]
    after.append(content(ds, ["0018-0050"]))
    assert after == before
