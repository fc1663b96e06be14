"""Tag names as users write them (``Query`` keys, ``Replace``, ``ExtraMainDicomTags``...)."""

from __future__ import annotations

import pytest

from dicomhub.dicom.tag_names import parse_tag


@pytest.mark.parametrize(
    "text",
    [
        "PatientName",
        "0010,0010",
        "00100010",
        "0010-0010",
        "0010,0010 ",
        " 0010,0010",
        "0010,0010\n",
    ],
)
def test_names_of_a_tag(text: str) -> None:
    assert parse_tag(text) == 0x00100010


def test_private_and_unknown_numbers() -> None:
    assert parse_tag("0009,1001") == 0x00091001
    assert parse_tag("7fe0-0010") == 0x7FE00010


# Checked against Orthanc 1.10.1's /tools/find (each read as PatientID, or as the tag
# given): after its exact forms, a name is two hex numbers read as C's "%x,%x" reads
# them, then a dictionary keyword.
@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("10,20", 0x00100020),
        ("0010,020", 0x00100020),
        ("0010, 0020", 0x00100020),
        ("0010,\t0020", 0x00100020),
        ("0010,\n0020", 0x00100020),
        ("0x0010,0x0020", 0x00100020),
        ("0X0010,0X0020", 0x00100020),
        ("0010,0x20", 0x00100020),
        ("+010,0020", 0x00100020),
        ("0010,+020", 0x00100020),
        ("0010,0020X", 0x00100020),
        ("0010,0020 x", 0x00100020),
        ("0010,0020,", 0x00100020),
        ("0010,0020-", 0x00100020),
        ("0010,0020\0", 0x00100020),
        ("0010,0020.0008,0100", 0x00100020),
        ("000000010,0020", 0x00100020),
        ("100010,0020", 0x00100020),  # the low 16 bits of each number
        ("fffffffff0010,0020", 0x00100020),
        ("-fff0,0020", 0x00100020),  # a negative number wraps around
        ("0010,-020", 0x0010FFE0),
        ("0010,00200", 0x00100200),
        ("0010,0020abc", 0x00100ABC),
        ("0010,002g", 0x00100002),
        ("1,20", 0x00010020),
        ("0,0", 0x00000000),
        ("0x,0020", 0x00000020),  # "0x" without digits: 0
        ("0010,0x", 0x00100000),
        ("ffffffffffffffffff,0020", 0xFFFF0020),  # beyond 64 bits: the largest value
        ("10000000000000010,0020", 0xFFFF0020),
    ],
)
def test_lenient_hex_names(text: str, tag: int) -> None:
    assert parse_tag(text) == tag


@pytest.mark.parametrize(
    "text",
    [
        "",  # pydicom's dictionary has an empty keyword, that of (300a,0782)
        " ",
        " PatientName",
        "PatientName ",
        "PatientName\n",
        "patientname",
        " 00100010",
        "00100010 ",
        "00100010X",
        "0010002",
        "001000200",
        " 0010-0010",
        "0010-0020 ",
        "0010-0020X",
        "0010 ,0020",  # no blank before the comma
        "0010 0020",
        "0010|0020",
        "0010.0020",
        "0010:0020",
        "(0010,0020)",
        "0010,",
        ",0020",
        "0010,+",
        "g,e",
        "NoSuchTag",
    ],
)
def test_unknown_names(text: str) -> None:
    with pytest.raises(ValueError):
        parse_tag(text)
