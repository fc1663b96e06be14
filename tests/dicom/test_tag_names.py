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


@pytest.mark.parametrize(
    "text",
    [
        "",  # pydicom's dictionary has an empty keyword, that of (300a,0782)
        " ",
        " PatientName",
        "PatientName ",
        "PatientName\n",
        " 00100010",
        "00100010 ",
        " 0010-0010",
        "0010,0010X",
        "0010,001",
        "NoSuchTag",
    ],
)
def test_unknown_names(text: str) -> None:
    with pytest.raises(ValueError):
        parse_tag(text)
