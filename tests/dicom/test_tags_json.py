"""Orthanc's tag renderings; every expected value was observed on Orthanc 1.10.1."""

from __future__ import annotations

import io
import struct

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from dicomhub.dicom.tags_json import (
    full_tags,
    header_tags,
    normalize_text,
    short_tags,
    simplified_tags,
    tag_value,
)
from dicomhub.dicom.values import dataset_charsets

LATIN1 = ["ISO_IR 100"]


def sample(name: str) -> Dataset:
    return dcmread(get_testdata_file(name, download=False))


def put(ds: Dataset, tag: int, vr: str | None, value: bytes, little: bool = True) -> None:
    """An unconverted element, as pydicom keeps it after reading a file."""
    implicit = vr is None
    ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, implicit, little)


def one(ds: Dataset, tag: str, **kwargs: object) -> dict:
    return full_tags(ds, LATIN1, **kwargs)[tag]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ct() -> Dataset:
    return sample("CT_small.dcm")


# ------------------------------------------------------------------ CT_small.dcm


def test_full_format_of_a_ct(ct: Dataset) -> None:
    tags = full_tags(ct, dataset_charsets(ct))
    assert len(tags) == 257  # every element but the trailing padding after Pixel Data
    assert list(tags) == sorted(tags)
    assert tags["0008,0008"] == {
        "Name": "ImageType",
        "Type": "String",
        "Value": "ORIGINAL\\PRIMARY\\AXIAL",
    }
    assert tags["0008,0050"] == {"Name": "AccessionNumber", "Type": "String", "Value": ""}
    assert tags["0010,0010"]["Value"] == "CompressedSamples^CT1"
    assert tags["0018,1110"]["Value"] == "1099.3100585938"  # DS as written
    assert (
        tags["0020,0037"]["Value"] == "1.000000\\0.000000\\0.000000\\0.000000\\1.000000\\0.000000"
    )
    assert tags["0028,0010"] == {"Name": "Rows", "Type": "String", "Value": "128"}
    assert tags["0028,0120"]["Value"] == "-2000"  # SS
    assert tags["0043,1012"]["Value"] == "14\\2\\3"  # SS, three values
    assert tags["0043,1026"]["Value"] == "0\\1\\1\\0\\0\\0"  # US, six values
    assert tags["0009,10e7"]["Value"] == "973283917"  # UL
    assert tags["0027,1041"]["Value"] == "-77.204063415527344"  # FL, 17 digits
    assert tags["0027,1045"]["Value"] == "0"
    assert tags["0027,1047"]["Value"] == "-1"
    assert tags["0023,1070"]["Value"] == "862399761.11107898"  # FD
    assert tags["7fe0,0010"] == {"Name": "PixelData", "Type": "Null", "Value": None}
    assert "fffc,fffc" not in tags


def test_sequences_hold_nested_datasets(ct: Dataset) -> None:
    seq = one(ct, "0010,1002")
    assert seq["Name"] == "OtherPatientIDsSequence"
    assert seq["Type"] == "Sequence"
    assert seq["Value"] == [
        {
            "0010,0020": {"Name": "PatientID", "Type": "String", "Value": "ABCD1234"},
            "0010,0022": {"Name": "TypeOfPatientID", "Type": "String", "Value": "TEXT"},
        },
        {
            "0010,0020": {"Name": "PatientID", "Type": "String", "Value": "1234ABCD"},
            "0010,0022": {"Name": "TypeOfPatientID", "Type": "String", "Value": "TEXT"},
        },
    ]


def test_private_tags_carry_their_creator(ct: Dataset) -> None:
    tags = full_tags(ct, LATIN1)
    assert tags["0009,0010"] == {
        "Name": "PrivateCreator",
        "Type": "String",
        "Value": "GEMS_IDEN_01",
    }
    assert tags["0009,1001"] == {
        "Name": "FullFidelity",
        "PrivateCreator": "GEMS_IDEN_01",
        "Type": "String",
        "Value": "GE_GENESIS_FF",
    }
    assert list(tags["0009,1001"]) == ["Name", "PrivateCreator", "Type", "Value"]
    assert tags["0009,1027"]["Name"] == "ImageActualDate"
    assert tags["0043,1028"] == {  # OB; Orthanc (DCMTK's dictionary) says UniqueImageIdentifier
        "Name": "UniqueImageIden",
        "PrivateCreator": "GEMS_PARM_01",
        "Type": "Null",
        "Value": None,
    }


def test_simplified_format(ct: Dataset) -> None:
    tags = simplified_tags(ct, LATIN1)
    assert list(tags) == sorted(tags)  # Orthanc's JSON writer sorts keys
    assert tags["PatientName"] == "CompressedSamples^CT1"
    assert tags["PixelData"] is None
    assert tags["HistogramTables"] is None
    assert tags["OtherPatientIDsSequence"] == [
        {"PatientID": "ABCD1234", "TypeOfPatientID": "TEXT"},
        {"PatientID": "1234ABCD", "TypeOfPatientID": "TEXT"},
    ]
    # several tags share a name: the last one in tag order wins
    assert tags["PrivateCreator"] == "GEMS_PARM_01"
    assert tags["GenesisVersionNow"] == "05"


def test_short_format(ct: Dataset) -> None:
    tags = short_tags(ct, LATIN1)
    assert tags["0008,0005"] == "ISO_IR 100"
    assert tags["0043,1028"] is None
    assert tags["7fe0,0010"] is None
    assert tags["0010,1002"] == [
        {"0010,0020": "ABCD1234", "0010,0022": "TEXT"},
        {"0010,0020": "1234ABCD", "0010,0022": "TEXT"},
    ]


def test_header_leaves_binary_elements_out(ct: Dataset) -> None:
    expected_short = {
        "0002,0000": "192",
        "0002,0002": "1.2.840.10008.5.1.4.1.1.2",
        "0002,0003": "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322",
        "0002,0010": "1.2.840.10008.1.2.1",
        "0002,0012": "1.3.6.1.4.1.5962.2",
        "0002,0013": "DCTOOL100",
        "0002,0016": "CLUNIE1",
    }
    assert header_tags(ct.file_meta, "short") == expected_short
    full = header_tags(ct.file_meta)
    assert full["0002,0000"] == {
        "Name": "FileMetaInformationGroupLength",
        "Type": "String",
        "Value": "192",
    }
    assert "0002,0001" not in full
    simple = header_tags(ct.file_meta, "simplify")
    assert list(simple) == sorted(simple)
    assert simple["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    assert header_tags(None) == {}


# ----------------------------------------------------------------- value rules


#: One tag per text VR, to write the same raw value in each.
TEXT_TAGS = {
    "AE": 0x00400241, "AS": 0x00101010, "CS": 0x00080060, "DA": 0x00080020,
    "DS": 0x00101030, "DT": 0x0008002A, "IS": 0x00200012, "LO": 0x00080070,
    "LT": 0x00204000, "PN": 0x00100010, "SH": 0x00080050, "ST": 0x00080081,
    "TM": 0x00080030, "UC": 0x00080119, "UI": 0x00081150, "UR": 0x00080120,
    "UT": 0x0008030E,
}  # fmt: skip
OTHER_THAN_UI = [vr for vr in TEXT_TAGS if vr != "UI"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b" a \\ b  ", dict.fromkeys(OTHER_THAN_UI, " a \\ b") | {"UI": "a\\b"}),
        # odd: DCMTK pads it with a NUL, so the trailing space stays
        (b" 1 \\ 2 ", dict.fromkeys(OTHER_THAN_UI, " 1 \\ 2 ") | {"UI": "1\\2"}),
        (b"x\x00y ", dict.fromkeys(TEXT_TAGS, "x")),
        (b"p \\q\x00\\ r\x00 ", dict.fromkeys(OTHER_THAN_UI, "p \\q") | {"UI": "p\\q"}),
        (b"abc\x00\x00 ", dict.fromkeys(TEXT_TAGS, "abc")),
        (b"ab \x00", {"LO": "ab ", "CS": "ab ", "UI": "ab"}),
        (b" 1.2 \\ 3 \x00", {"UI": "1.2\\3", "DS": " 1.2 \\ 3 "}),
        (b" AE1  ", {"AE": " AE1", "IS": " AE1"}),
        (b"\xe9t\xe9  ", {"LO": "été  ", "PN": "été  "}),
        (b"\xe9t\xe9 ", {"LO": "été", "LT": "été"}),
        (b"", dict.fromkeys(TEXT_TAGS, "")),
        (b"  \x00\x00", dict.fromkeys(TEXT_TAGS, "  ") | {"UI": ""}),
    ],
)
def test_text_is_stripped_as_dcmtk_does(raw: bytes, expected: dict[str, str]) -> None:
    ds = Dataset()
    for vr, tag in TEXT_TAGS.items():
        put(ds, tag, vr, raw)
    tags = short_tags(ds, LATIN1)
    for vr, value in expected.items():
        tag = TEXT_TAGS[vr]
        assert tags[f"{tag >> 16:04x},{tag & 0xFFFF:04x}"] == value, vr


def test_normalize_text() -> None:
    assert normalize_text("CompressedSamples^CT1 ", "PN") == "CompressedSamples^CT1"
    assert normalize_text(" 1.2.3 \x00", "UI") == "1.2.3"


def test_a_value_may_reach_the_limit_but_not_exceed_it() -> None:
    ds = Dataset()
    put(ds, 0x00081030, "LO", b"A" * 256)
    put(ds, 0x00204000, "LT", b"C" * 257 + b" ")
    put(ds, 0x00180050, "DS", b"1" * 250 + b" " * 8)  # long only before stripping
    put(ds, 0x00080008, "CS", b"X" * 100 + b"\\" + b"Y" * 100 + b"\\" + b"Z" * 60)
    put(ds, 0x0008103E, "LO", b"\xe9" * 130)  # 130 bytes, but 260 once in UTF-8
    put(ds, 0x00283006, "US", struct.pack("<100H", *range(100)))
    tags = full_tags(ds, LATIN1)
    assert tags["0008,1030"]["Type"] == "String"
    assert tags["0018,0050"]["Type"] == "String"
    for key, name in [("0020,4000", "ImageComments"), ("0008,0008", "ImageType")]:
        assert tags[key] == {"Name": name, "Type": "TooLong", "Value": None}
    assert tags["0008,103e"]["Type"] == "TooLong"
    assert tags["0028,3006"]["Type"] == "TooLong"
    assert simplified_tags(ds, LATIN1)["ImageComments"] is None
    assert short_tags(ds, LATIN1)["0020,4000"] is None


def test_ignore_length_and_no_limit() -> None:
    ds = Dataset()
    put(ds, 0x00204000, "LT", b"C" * 300)
    put(ds, 0x00080008, "CS", b"X" * 300)
    put(ds, 0x00431029, "OB", b"\x01" * 4)
    item = Dataset()
    put(item, 0x00081155, "UI", b"1" * 300)
    ds.ReferencedImageSequence = Sequence([item])
    lifted = short_tags(ds, LATIN1, ignore_length={0x00204000, 0x00081155, 0x00431029})
    assert lifted["0020,4000"] == "C" * 300
    assert lifted["0008,0008"] is None
    assert lifted["0008,1140"] == [{"0008,1155": "1" * 300}]
    assert lifted["0043,1029"] is None  # binary stays Null
    unlimited = short_tags(ds, LATIN1, max_length=None)
    assert unlimited["0008,0008"] == "X" * 300


def test_binary_numbers() -> None:
    ds = Dataset()
    put(ds, 0x0018602C, "FL", struct.pack("<f", 0.1))
    put(ds, 0x00186014, "FD", struct.pack("<5d", 1.5, -2.25, 1e-20, 1e20, 123456789.123))
    put(ds, 0x00189087, "FD", struct.pack("<d", 0.1))
    put(ds, 0x00189219, "SS", struct.pack("<2h", -5, 7))
    put(ds, 0x00209228, "UL", struct.pack("<I", 4294967295))
    put(ds, 0x00209165, "AT", struct.pack("<4H", 0x7FE0, 0x0010, 0x0010, 0x0020))
    put(ds, 0x00280011, "US", struct.pack(">H", 512), little=False)
    put(ds, 0x00280010, "US", b"")
    put(ds, 0x00189089, "FD", b"")
    tags = short_tags(ds, LATIN1)
    assert tags["0018,602c"] == "0.10000000149011612"
    assert tags["0018,6014"] == "1.5\\-2.25\\9.9999999999999995e-21\\1e+20\\123456789.123"
    assert tags["0018,9087"] == "0.10000000000000001"
    assert tags["0018,9219"] == "-5\\7"
    assert tags["0020,9228"] == "4294967295"
    assert tags["0020,9165"] == "7fe0,0010"  # only the first tag of an AT
    assert tags["0028,0011"] == "512"
    assert tags["0028,0010"] is None  # an empty number is Null...
    assert one(ds, "0028,0010")["Type"] == "Null"
    assert tags["0018,9089"] is None


def test_empty_values() -> None:
    ds = Dataset()
    put(ds, 0x00281050, "DS", b"")  # ... an empty string is a string
    put(ds, 0x00080090, "PN", b"")
    put(ds, 0x00400009, "SH", b"\\x")
    ds.ReferencedImageSequence = Sequence()
    ds.VOILUTSequence = Sequence([Dataset(), Dataset()])
    tags = short_tags(ds, LATIN1)
    assert tags == {
        "0008,0090": "",
        "0008,1140": [],
        "0028,1050": "",
        "0028,3010": [{}, {}],
        "0040,0009": "\\x",
    }
    assert one(ds, "0008,1140") == {
        "Name": "ReferencedImageSequence",
        "Type": "Sequence",
        "Value": [],
    }


@pytest.mark.parametrize("vr", ["OB", "OW", "OF", "OD", "OL", "OV", "SV", "UV", "UN"])
def test_other_binary_values_are_null(vr: str) -> None:
    ds = Dataset()
    put(ds, 0x00111001, vr, b"\x01\x00\x00\x00\x02\x00\x00\x00")
    put(ds, 0x00720082, vr, b"\x01\x00\x00\x00\x02\x00\x00\x00")
    tags = short_tags(ds, LATIN1)
    assert tags["0011,1001"] is None
    assert tags["0072,0082"] is None


def test_names() -> None:
    ds = Dataset()
    put(ds, 0x00080000, "UL", struct.pack("<I", 12345))
    put(ds, 0x00090000, "UL", struct.pack("<I", 0))
    put(ds, 0x00080040, "US", struct.pack("<H", 3))  # retired
    put(ds, 0x00089999, "LO", b"unknown public")
    put(ds, 0x00091001, "LO", b"no creator")
    put(ds, 0x00110010, "LO", b"MY CREATOR")
    put(ds, 0x00111001, "LO", b"private value")
    put(ds, 0x50000005, "US", struct.pack("<H", 2))
    put(ds, 0x60020010, "US", struct.pack("<H", 4))
    tags = full_tags(ds, LATIN1)
    assert tags["0008,0000"] == {"Name": "GenericGroupLength", "Type": "String", "Value": "12345"}
    assert tags["0009,0000"] == {"Name": "PrivateGroupLength", "Type": "String", "Value": "0"}
    assert tags["0008,0040"]["Name"] == "RETIRED_DataSetType"
    assert tags["0008,9999"] == {
        "Name": "Unknown Tag & Data",
        "Type": "String",
        "Value": "unknown public",
    }
    assert tags["0009,1001"] == {
        "Name": "Unknown Tag & Data",
        "Type": "String",
        "Value": "no creator",
    }
    assert tags["0011,1001"] == {
        "Name": "Unknown Tag & Data",
        "PrivateCreator": "MY CREATOR",
        "Type": "String",
        "Value": "private value",
    }
    assert tags["5000,0005"]["Name"] == "RETIRED_CurveDimensions"
    assert tags["6002,0010"]["Name"] == "OverlayRows"


def test_a_creator_written_as_un_reserves_nothing() -> None:
    ds = Dataset()
    put(ds, 0x00090010, "UN", b"HMC ")
    put(ds, 0x00091001, "LO", b"value ")
    tags = full_tags(ds, LATIN1)
    assert tags["0009,0010"] == {"Name": "PrivateCreator", "Type": "String", "Value": "HMC "}
    assert tags["0009,1001"] == {"Name": "Unknown Tag & Data", "Type": "String", "Value": "value"}


def test_tags_after_pixel_data_only_with_whole() -> None:
    ds = Dataset()
    put(ds, 0x7FDF0010, "LO", b"BEFORE")
    put(ds, 0x7FE0000F, "LO", b"x ")
    put(ds, 0x7FE00010, "OW", b"\x00\x00")
    put(ds, 0x7FE00011, "LO", b"y ")
    put(ds, 0x7FE11001, "LO", b"after")
    put(ds, 0xFFFCFFFC, "OB", b"\x00\x00")
    assert list(short_tags(ds, LATIN1)) == ["7fdf,0010", "7fe0,000f", "7fe0,0010"]
    assert list(short_tags(ds, LATIN1, whole=True)) == [
        "7fdf,0010",
        "7fe0,000f",
        "7fe0,0010",
        "7fe0,0011",
        "7fe1,1001",
        "fffc,fffc",
    ]


def test_implicit_vr_takes_the_dictionary_vr() -> None:
    ds = Dataset()
    put(ds, 0x00280103, None, struct.pack("<H", 1))
    put(ds, 0x00280106, None, struct.pack("<h", -5))  # US or SS: signed here
    put(ds, 0x00283006, None, struct.pack("<3H", 1, 2, 65535))  # US or OW: binary
    put(ds, 0x00181310, None, struct.pack("<4H", 1, 2, 3, 4))
    put(ds, 0x00190010, None, b"GEMS_ACQU_01")
    put(ds, 0x00191002, None, struct.pack("<i", 912))  # SL in the private dictionary
    put(ds, 0x00191010, None, b"no dict entry ")
    put(ds, 0x00100010, None, b"Doe^John")
    tags = short_tags(ds, LATIN1)
    assert tags["0028,0106"] == "-5"
    assert tags["0028,3006"] is None
    assert tags["0018,1310"] == "1\\2\\3\\4"
    assert tags["0019,1002"] == "912"
    assert tags["0019,1010"] is None  # unknown to the dictionary: UN
    assert tags["0010,0010"] == "Doe^John"


def test_explicit_un_shows_public_text_raw_and_nothing_else() -> None:
    ds = Dataset()
    put(ds, 0x00080060, "UN", b" CT ")
    put(ds, 0x00081150, "UN", b"1.2.3\x00")
    put(ds, 0x00101030, "UN", b" 0.5\\0.5 ")
    put(ds, 0x00401001, "UN", b"x\x00y ")
    put(ds, 0x00400009, "UN", b"cd\x00\x00")
    put(ds, 0x00400241, "UN", b"\xe9t\xe9 ")
    put(ds, 0x00321060, "UN", b"x" * 300)
    put(ds, 0x00280010, "UN", b"\x00\x02")  # US
    put(ds, 0x00280009, "UN", struct.pack("<2H", 0x3004, 0x000C))  # AT
    put(ds, 0x00409224, "UN", struct.pack("<d", 0.1))  # FD
    put(ds, 0x00400275, "UN", b"\xfe\xff\x00\xe0\x00\x00\x00\x00")  # SQ, defined length
    put(ds, 0x00190010, "LO", b"AGFA")
    put(ds, 0x00191013, "UN", b"E25 ")  # private: binary
    tags = short_tags(ds, LATIN1)
    assert tags["0008,0060"] == " CT "
    assert tags["0008,1150"] == "1.2.3"
    assert tags["0010,1030"] == " 0.5\\0.5 "
    assert tags["0040,1001"] == "x\x00y "
    assert tags["0040,0009"] == "cd\x00"  # only the padding NUL goes
    assert tags["0040,0241"] == "été "
    assert one(ds, "0032,1060")["Type"] == "TooLong"
    for key in ("0028,0010", "0028,0009", "0040,9224", "0040,0275", "0019,1013"):
        assert one(ds, key)["Type"] == "Null", key


def test_undefined_length_un_is_a_sequence() -> None:
    ds = sample("UN_sequence.dcm")
    tags = full_tags(ds, LATIN1)
    seq = tags["4453,100c"]
    assert seq["Name"] == "Unknown Tag & Data" and seq["Type"] == "Sequence"
    inner = seq["Value"][0]["0008,1115"]["Value"][0]["0008,1199"]["Value"][0]
    assert inner["0008,1150"]["Value"] == "1.2.840.10008.5.1.4.1.1.2"


def test_big_endian_file() -> None:
    ds = sample("MR_small_bigendian.dcm")
    little = sample("MR_small.dcm")
    assert short_tags(ds, LATIN1)["0028,0010"] == short_tags(little, LATIN1)["0028,0010"] == "64"


def test_converted_elements_render_like_raw_ones() -> None:
    """Datasets built in code (or already converted) must not render differently."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller^Jörg"
    ds.PatientWeight = "70.50"
    ds.ImagePositionPatient = ["1.000000", "-2.5", "3"]
    ds.Rows = 512
    ds.LUTDescriptor = [256, 0, 16]
    ds.DiffusionBValue = 0.1
    ds.DimensionIndexPointer = [0x00100010, 0x00100020]
    ds.InstanceNumber = "12"
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPClassUID = "1.2.3"
    ds.add_new(0x60003000, "OW", b"\x00\x01")
    ds.add_new(0x00110010, "LO", "MY CREATOR")
    ds.add_new(0x00111002, "UN", b"unknown binary")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer)
    reread = dcmread(io.BytesIO(buffer.getvalue()), force=True)
    assert full_tags(ds, LATIN1) == full_tags(reread, LATIN1)
    assert short_tags(ds, LATIN1)["0010,0010"] == "Müller^Jörg"
    assert short_tags(ds, LATIN1)["0020,0032"] == "1.000000\\-2.5\\3"
    assert short_tags(ds, LATIN1)["0011,1002"] is None


# ----------------------------------------------------------------- characters sets

#: PatientName as Orthanc 1.10.1 shows it for pydicom's character set samples.
CHARSET_NAMES = {
    "chrArab.dcm": "قباني^لنزار",
    "chrFren.dcm": "Buc^Jérôme",
    "chrFrenMulti.dcm": "Buc^Jérôme",
    "chrGerm.dcm": "Äneas^Rüdiger",
    "chrGreek.dcm": "Διονυσιος",
    "chrH31.dcm": "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "chrHbrw.dcm": "שרון^דבורה",
    "chrI2.dcm": "Hong^Gildong=洪^吉洞=홍^길동",
    "chrJapMulti.dcm": "やまだ^たろう",
    "chrKoreanMulti.dcm": "김희중",
    "chrRuss.dcm": "Люкceмбypг",
    "chrX1.dcm": "Wang^XiaoDong=王^小東=",
    "chrX2.dcm": "Wang^XiaoDong=王^小东=",
    # Orthanc garbles these two; pydicom decodes them as the standard says
    "chrH32.dcm": "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",
    "chrJapMultiExplicitIR6.dcm": "やまだ^たろう",
}


@pytest.mark.parametrize("name", sorted(CHARSET_NAMES))
def test_character_sets_render_as_unicode(name: str) -> None:
    (path,) = get_charset_files(name)
    ds = dcmread(path)
    assert simplified_tags(ds, dataset_charsets(ds))["PatientName"] == CHARSET_NAMES[name]


def test_every_shipped_charset_file_renders() -> None:
    for path in get_charset_files("*.dcm"):
        ds = dcmread(path)
        tags = full_tags(ds, dataset_charsets(ds))
        assert tags["0008,0005"]["Type"] == "String"


def test_default_encoding_applies_without_specific_character_set() -> None:
    ds = Dataset()
    put(ds, 0x00100010, "PN", b"\xe9t\xe9 ")
    assert short_tags(ds, dataset_charsets(ds, "Latin1"))["0010,0010"] == "été"
    put(ds, 0x00100010, "PN", b"\xbb\xee\xda")
    assert short_tags(ds, dataset_charsets(ds, "Cyrillic"))["0010,0010"] == "Люк"


def test_a_sequence_item_may_declare_its_own_character_set() -> None:
    item = Dataset()
    put(item, 0x00080005, "CS", b"ISO_IR 144")
    put(item, 0x00100010, "PN", b"\xbb\xee\xda")
    ds = Dataset()
    put(ds, 0x00100010, "PN", b"\xbb\xee\xda")
    ds.OtherPatientIDsSequence = Sequence([item])
    tags = short_tags(ds, LATIN1)
    assert tags["0010,0010"] == "»îÚ"
    assert tags["0010,1002"][0]["0010,0010"] == "Люк"


def test_tag_value_agrees_with_tags(ct: Dataset) -> None:
    short = short_tags(ct, LATIN1)
    for tag in (0x00100010, 0x00280010, 0x00200032, 0x00091001, 0x0027_1041, 0x00431028):
        key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
        assert tag_value(ct, tag, LATIN1) == short[key]
    assert tag_value(ct, 0x00101002, LATIN1) is None  # a sequence
    assert tag_value(ct, 0x00100021, LATIN1) is None  # absent
