"""Pre-encoded elements write the bytes pydicom writes for the same values.

Each case builds the same dataset twice, once with ordinary ``DataElement`` values
and once with ``encoded_value``/``raw_element``, writes both with pydicom in several
syntaxes and character sets, and compares the bytes: the answers of the C-FIND SCP
must not depend on which of the two paths built them.
"""

from __future__ import annotations

import pytest
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from dicomhub.dicom.encoded_elements import (
    IdentifierWriter,
    encoded_value,
    mark_encoding,
    raw_element,
)

# (tag, VR, Orthanc's string form, the value pydicom is given for it)
CASES: list[tuple[int, str, str, object]] = [
    (0x00100010, "PN", "MÜLLER^Jürgen", "MÜLLER^Jürgen"),
    (0x00100010, "PN", "Doe^Jo", "Doe^Jo"),
    (0x00100020, "LO", "PID-1", "PID-1"),
    (0x00081030, "LO", "Thorax/Abdomen ñ", "Thorax/Abdomen ñ"),
    (0x00080050, "SH", "A1", "A1"),
    (0x00080061, "CS", "CT\\MR", ["CT", "MR"]),
    (0x00080060, "CS", "MR", "MR"),
    (0x00080020, "DA", "20240102", "20240102"),
    (0x00080030, "TM", "101500", "101500"),
    (0x00080030, "TM", "1015", "1015"),
    (0x0020000D, "UI", "1.2.3.4", "1.2.3.4"),
    (0x0020000D, "UI", "1.2.3", "1.2.3"),
    (0x00201208, "IS", "12", "12"),
    (0x00201208, "IS", "7", "7"),
    (0x00180050, "DS", "1.50", "1.50"),
    (0x00280010, "US", "512", 512),
    (0x00280030, "DS", "0.5\\0.25", ["0.5", "0.25"]),
    (0x00181310, "US", "0\\256\\256\\0", [0, 256, 256, 0]),
    (0x00189219, "FD", "2.5", 2.5),
    (0x00204000, "LT", "line one", "line one"),
    (0x00100030, "DA", "", None),
    (0x00280010, "US", "", None),
]


def written(ds: Dataset, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, ds)
    return fp.getvalue()


def both_ways(charset: str, implicit: bool, little: bool) -> tuple[Dataset, Dataset]:
    """The reference dataset (DataElements) and the pre-encoded one, case by case
    in a fresh pair each (one tag per dataset would hide nothing: keep them apart)."""
    encodings = convert_encodings(charset)
    reference, encoded = Dataset(), Dataset()
    for ds in (reference, encoded):
        ds.SpecificCharacterSet = charset
    for tag, vr, text, value in CASES:
        if tag in reference:
            continue  # one value per tag per dataset; the others run in other params
        reference.add(DataElement(tag, vr, value))
        data = encoded_value(vr, text, encodings, little)
        assert data is not None, vr
        encoded[tag] = raw_element(tag, vr, data, implicit, little)
    mark_encoding(encoded, implicit, little, encodings)
    return reference, encoded


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192"])
@pytest.mark.parametrize(("implicit", "little"), [(False, True), (True, True), (False, False)])
def test_same_bytes_as_pydicom(charset: str, implicit: bool, little: bool) -> None:
    reference, encoded = both_ways(charset, implicit, little)
    assert written(encoded, implicit, little) == written(reference, implicit, little)


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192"])
def test_every_case_alone(charset: str) -> None:
    """Cases sharing a tag are checked one by one too (the pair above keeps the first)."""
    encodings = convert_encodings(charset)
    for tag, vr, text, value in CASES:
        reference, encoded = Dataset(), Dataset()
        reference.SpecificCharacterSet = encoded.SpecificCharacterSet = charset
        reference.add(DataElement(tag, vr, value))
        encoded[tag] = raw_element(tag, vr, encoded_value(vr, text, encodings) or b"", False, True)
        mark_encoding(encoded, False, True, encodings)
        assert written(encoded, False, True) == written(reference, False, True), (vr, text)


def test_written_in_another_syntax_keeps_the_values() -> None:
    """Marked for explicit little endian but sent in implicit VR (or big endian):
    pydicom decodes the raw elements first, and the values survive."""
    reference, encoded = both_ways("ISO_IR 100", False, True)
    for implicit, little in ((True, True), (False, False)):
        assert written(encoded, implicit, little) == written(reference, implicit, little)


def test_unencoded_vrs_are_left_to_pydicom() -> None:
    assert encoded_value("SQ", "", ["latin_1"]) is None
    assert encoded_value("OB", "AAAA", ["latin_1"]) is None
    assert encoded_value("AT", "00100010", ["latin_1"]) is None


def test_bad_numbers_give_an_empty_value() -> None:
    assert encoded_value("US", "abc", ["latin_1"]) == b""
    assert encoded_value("US", "70000", ["latin_1"]) == b""  # does not fit 16 bits
    assert encoded_value("SS", "-2", ["latin_1"]) == b"\xfe\xff"


#: Beyond ``CASES``: ASCII text in charsets where it takes the ASCII shortcut, names
#: with component groups (left to ``PersonName``) and an empty sequence.
WRITER_CASES: list[tuple[int, str, str, object]] = [
    (
        0x00100010,
        "PN",
        "Yamada^Tarou=山田^太郎=やまだ^たろう",
        "Yamada^Tarou=山田^太郎=やまだ^たろう",
    ),
    (0x00101001, "PN", "Doe^Jo=", "Doe^Jo="),
    (0x00081030, "LO", "Plain ASCII ~\\|", "Plain ASCII ~\\|"),
    (0x00321060, "LO", "撮影", "撮影"),
    (0x00321060, "LO", "Иванов Иван", "Иванов Иван"),
    (0x00321060, "LO", "Thorax ñ", "Thorax ñ"),
    (0x00081110, "SQ", "", Sequence([])),
]


def _writable(text: str, encodings: list[str]) -> bool:
    for encoding in encodings:
        try:
            text.replace("=", "").replace("^", "").encode(encoding)
            return True
        except UnicodeEncodeError:
            continue
    return False


def writer_cases(encodings: list[str]) -> list[tuple[int, str, str, object]]:
    """One case per tag, among those the character set can write (no Japanese in
    Latin-1, no Latin-1 in Cyrillic)."""
    chosen: dict[int, tuple[int, str, str, object]] = {}
    for case in WRITER_CASES + CASES:
        if case[0] not in chosen and _writable(case[2], encodings):
            chosen[case[0]] = case
    return list(chosen.values())


@pytest.mark.parametrize(
    "charset", ["ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 6\\ISO 2022 IR 87", "ISO_IR 144"]
)
@pytest.mark.parametrize(("implicit", "little"), [(False, True), (True, True), (False, False)])
def test_identifier_writer_writes_what_pydicom_writes(
    charset: str, implicit: bool, little: bool
) -> None:
    """A whole answer written by ``IdentifierWriter`` is byte for byte what pydicom
    writes for the same elements (SpecificCharacterSet among them)."""
    encodings = convert_encodings(charset.split("\\"))
    reference = Dataset()
    reference.SpecificCharacterSet = charset.split("\\")
    texts = {0x00080005: charset}
    keys = [(0x00080005, "CS")]
    for tag, vr, text, value in writer_cases(encodings):
        reference.add(DataElement(tag, vr, value))
        texts[tag] = text
        keys.append((tag, vr))
    keys.append((0x00200010, "SH"))  # asked, without value: an empty element
    reference.add(DataElement(0x00200010, "SH", None))
    writer = IdentifierWriter(keys, encodings, implicit, little)
    assert writer.write(texts) == written(reference, implicit, little)


def test_identifier_writer_leaves_some_answers_to_pydicom() -> None:
    """A value of a VR it does not encode, or too long for a 16-bit length in an
    explicit syntax: ``None``, the caller builds a ``Dataset`` instead."""
    encodings = convert_encodings("ISO_IR 100")
    assert (
        IdentifierWriter([(0x00209165, "AT")], encodings, False, True).write(
            {0x00209165: "00100010"}
        )
        is None
    )
    assert IdentifierWriter([(0x00209165, "AT")], encodings, False, True).write({}) == (
        b"\x20\x00\x65\x91AT\x00\x00"
    )
    long_text = "x" * 70000
    assert (
        IdentifierWriter([(0x00081030, "LO")], encodings, False, True).write(
            {0x00081030: long_text}
        )
        is None
    )
    implicit = IdentifierWriter([(0x00081030, "LO")], encodings, True, True)
    assert implicit.write({0x00081030: long_text}) is not None
