"""Reading incoming files: identifiers, main tags, strictness, character sets."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from dicom_factory import make_dataset, make_dicom, to_bytes
from pydicom import dcmread
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite

from dicomhub.dicom.identifiers import instance_id, patient_id
from dicomhub.dicom.levels import Level
from dicomhub.dicom.parsing import (
    InvalidDicom,
    MissingTag,
    file_meta_as_stored,
    parse_instance,
    part10_of_bare,
    read_dataset,
)
from dicomhub.dicom.values import dataset_charsets, element_string

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020


def sample(name: str) -> bytes:
    path = get_testdata_file(name, download=False)
    if path is None:
        path = get_charset_files(name)[0]
    return Path(path).read_bytes()


def test_parse_factory_file() -> None:
    data = make_dicom(
        patient_id="PARSE1",
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        sop_uid="1.2.3.4.5",
        InstanceNumber="7",
    )
    parsed = parse_instance(data)
    assert (parsed.patient_id, parsed.study_uid, parsed.series_uid, parsed.sop_uid) == (
        "PARSE1",
        "1.2.3",
        "1.2.3.4",
        "1.2.3.4.5",
    )
    assert parsed.ids[Level.PATIENT] == patient_id("PARSE1")
    assert parsed.ids[Level.INSTANCE] == instance_id("PARSE1", "1.2.3", "1.2.3.4", "1.2.3.4.5")
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.1"
    assert parsed.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"
    assert parsed.main_tags[Level.PATIENT][PATIENT_NAME] == "Doe^John"
    assert parsed.main_tags[Level.INSTANCE][0x00200013] == "7"
    # the patient tags are copied onto the study
    assert parsed.main_tags[Level.STUDY][PATIENT_ID] == "PARSE1"
    # pixel data offset points at the element's tag
    assert parsed.pixel_data_offset is not None
    assert data[parsed.pixel_data_offset : parsed.pixel_data_offset + 4] == b"\xe0\x7f\x10\x00"
    assert parsed.pixel_data_vr == "OW"


def test_file_without_pixel_data() -> None:
    ds = make_dataset(patient_id="NOPIX")
    del ds.PixelData
    parsed = parse_instance(to_bytes(ds))
    assert parsed.pixel_data_offset is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"DICM",
        b"hello world, not dicom",
        b"\x00" * 132,
        make_dicom()[:200],
        make_dicom()[:-10],
    ],
    ids=["empty", "magic-only", "text", "zeros", "header-only", "truncated-pixels"],
)
def test_invalid_files(data: bytes) -> None:
    with pytest.raises(InvalidDicom):
        parse_instance(data)


def _element_ends(data: bytes) -> set[int]:
    ds, _ = read_dataset(data)
    return {e.value_tell + e.length for e in ds._dict.values()}  # noqa: SLF001


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom complains about cut values
def test_truncated_anywhere_is_refused() -> None:
    """Like the reference, a cut between two elements is a (shorter) valid file."""
    data = make_dicom(patient_id="CUT")
    ends = _element_ends(data)
    for size in range(133, len(data)):
        if size in ends:
            continue
        with pytest.raises((InvalidDicom, MissingTag)):
            parse_instance(data[:size])


def test_cut_inside_an_element_header() -> None:
    data = make_dicom(patient_id="CUT")
    pixel = parse_instance(data).pixel_data_offset
    assert pixel is not None
    assert parse_instance(data[:pixel]).pixel_data_offset is None  # the reference accepts it
    for cut in (2, 4, 6, 11):
        with pytest.raises(InvalidDicom):
            parse_instance(data[: pixel + cut])


@pytest.mark.parametrize("tag", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_missing_hierarchy_uid(tag: str) -> None:
    ds = make_dataset()
    delattr(ds, tag)
    with pytest.raises(MissingTag):
        parse_instance(to_bytes(ds))


def test_empty_uid_is_a_bad_file_an_absent_one_missing() -> None:
    """As the reference: a UID present but empty (or blank) makes the file bad (400),
    an absent one is an inexistent tag (404), which wins when both happen."""
    for value in ("", "  "):
        ds = make_dataset()
        ds.SeriesInstanceUID = value
        with pytest.raises(InvalidDicom, match="missing StudyInstanceUID, SeriesInstanceUID"):
            parse_instance(to_bytes(ds))
    del ds.StudyInstanceUID
    with pytest.raises(MissingTag):
        parse_instance(to_bytes(ds))


def _bare(ds: Dataset, implicit: bool) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, implicit_vr=implicit, little_endian=True, enforce_file_format=False)
    return buffer.getvalue()


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit", "explicit"])
def test_data_set_without_part10_header(implicit: bool) -> None:
    """Stored as the reference does: the syntax its encoding shows, the file meta
    completed in memory only (``file_meta_as_stored`` gives the file's: none)."""
    ds = make_dataset(patient_id="BARE1")
    del ds.file_meta
    data = _bare(ds, implicit)
    parsed = parse_instance(data)
    syntax = "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1"
    assert parsed.transfer_syntax == syntax
    assert parsed.sop_class_uid == ds.SOPClassUID
    assert parsed.ids == parse_instance(to_bytes(make_dataset_like(ds))).ids
    assert data[parsed.pixel_data_offset :].startswith(b"\xe0\x7f\x10\x00")
    read, _ = read_dataset(data)
    assert read.file_meta.TransferSyntaxUID == syntax
    assert len(file_meta_as_stored(read)) == 0
    part10 = part10_of_bare(data)
    assert part10[128:132] == b"DICM" and part10.endswith(data)
    again = dcmread(io.BytesIO(part10))
    assert again.file_meta.TransferSyntaxUID == syntax
    assert again.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert again.PixelData == ds.PixelData


def test_file_meta_then_data_set_without_preamble() -> None:
    data = make_dicom(patient_id="BARE2")
    parsed = parse_instance(data[132:])
    assert parsed.ids == parse_instance(data).ids
    assert parsed.pixel_data_offset == parse_instance(data).pixel_data_offset - 132
    assert part10_of_bare(data[132:])[132:].endswith(data[132 + _meta_length(data) :])
    with pytest.raises(InvalidDicom):  # "DICM" first: the preamble alone cut off
        parse_instance(data[128:])


def _meta_length(data: bytes) -> int:
    return 12 + int.from_bytes(data[140:144], "little")


def make_dataset_like(ds: Dataset) -> Dataset:
    full = make_dataset(
        patient_id=ds.PatientID,
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        sop_uid=ds.SOPInstanceUID,
    )
    return full


def test_missing_patient_id_is_empty() -> None:
    ds = make_dataset()
    del ds.PatientID
    parsed = parse_instance(to_bytes(ds))
    assert parsed.patient_id == ""
    assert parsed.ids[Level.PATIENT] == "da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709"


def test_implicit_vr_file() -> None:
    parsed = parse_instance(sample("rtplan.dcm"))
    assert parsed.transfer_syntax == "1.2.840.10008.1.2"
    assert parsed.patient_id == "id00001"
    assert parsed.sop_uid == "1.2.777.777.77.7.7777.7777.20030903150023"
    assert parsed.main_tags[Level.PATIENT][PATIENT_NAME] == "Last^First^mid^pre"
    assert parsed.main_tags[Level.SERIES][0x00080060] == "RTPLAN"


def test_big_endian_file() -> None:
    parsed = parse_instance(sample("ExplVR_BigEnd.dcm"))
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.2"
    ds, _ = read_dataset(sample("ExplVR_BigEnd.dcm"))
    rows = ds.get_item(0x00280010)
    assert element_string(rows, ["ISO_IR 6"]) == "60"  # pydicom reads Rows = 60 too


def test_binary_integers_render_as_text() -> None:
    ds = make_dataset(NumberOfSlices=12, ImageIndex=3)
    parsed = parse_instance(to_bytes(ds))
    assert parsed.main_tags[Level.SERIES][0x00540081] == "12"
    assert parsed.main_tags[Level.INSTANCE][0x00541330] == "3"
    ds2, _ = read_dataset(to_bytes(ds))
    assert element_string(ds2.get_item(0x00280010), []) == "8"  # Rows
    assert element_string(ds2.get_item(0x7FE00010), []) is None  # pixel data is not text


IMAGE_COMMENTS, STUDY_DESCRIPTION = 0x00204000, 0x00081030


@pytest.mark.parametrize(
    ("charset", "value", "kept"),
    [
        ("ISO_IR 100", "a" * 256, True),
        ("ISO_IR 100", "a" * 257, False),
        # The length Orthanc checks is that of the UTF-8 text, not of the file's bytes.
        ("ISO_IR 100", "é" * 128, True),
        ("ISO_IR 100", "é" * 129, False),
        ("ISO_IR 192", "é" * 127 + "ab", True),
        ("ISO_IR 192", "é" * 128 + "a", False),
    ],
)
def test_main_tags_longer_than_256_bytes_are_left_out(charset: str, value: str, kept: bool) -> None:
    ds = make_dataset(SpecificCharacterSet=charset, ImageComments=value, StudyDescription=value)
    parsed = parse_instance(to_bytes(ds))
    assert (IMAGE_COMMENTS in parsed.main_tags[Level.INSTANCE]) is kept
    assert (STUDY_DESCRIPTION in parsed.main_tags[Level.STUDY]) is kept


def test_an_empty_binary_number_is_not_a_main_tag_an_empty_string_is() -> None:
    ds = make_dataset(StudyDescription="")
    ds.add_new(0x00540081, "US", None)  # NumberOfSlices, present and empty
    parsed = parse_instance(to_bytes(ds))
    assert 0x00540081 not in parsed.main_tags[Level.SERIES]
    assert parsed.main_tags[Level.STUDY][STUDY_DESCRIPTION] == ""


def test_deflated_file_has_no_pixel_data_offset() -> None:
    """Its elements are compressed: an offset in the inflated stream is not one in the
    stored file."""
    parsed = parse_instance(sample("image_dfl.dcm"))
    assert parsed.transfer_syntax == "1.2.840.10008.1.2.1.99"
    assert parsed.pixel_data_offset is None
    assert parse_instance(sample("CT_small.dcm")).pixel_data_offset is not None


def test_file_without_meta_header() -> None:
    """pydicom's no_meta.dcm: the reference Orthanc refuses it as well."""
    with pytest.raises(InvalidDicom):
        parse_instance(sample("no_meta.dcm"))


CHARSET_NAMES = {
    "chrArab.dcm": "قباني^لنزار",
    "chrFren.dcm": "Buc^Jérôme",
    "chrGerm.dcm": "Äneas^Rüdiger",
    "chrGreek.dcm": "Διονυσιος",
    "chrH31.dcm": "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "chrH32.dcm": "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",
    "chrHbrw.dcm": "שרון^דבורה",
    "chrI2.dcm": "Hong^Gildong=洪^吉洞=홍^길동",
    "chrJapMulti.dcm": "やまだ^たろう",
    "chrKoreanMulti.dcm": "김희중",
    "chrRuss.dcm": "Люкceмбypг",
    "chrX1.dcm": "Wang^XiaoDong=王^小東=",
    "chrX2.dcm": "Wang^XiaoDong=王^小东=",
}


@pytest.mark.parametrize("name", sorted(CHARSET_NAMES))
def test_character_sets(name: str) -> None:
    parsed = parse_instance(sample(name))
    assert parsed.main_tags[Level.PATIENT][PATIENT_NAME] == CHARSET_NAMES[name]


def test_patient_id_decoded_then_hashed_as_utf8() -> None:
    for charset, text in (("ISO_IR 100", "MÜLLER"), ("ISO_IR 192", "山田"), ("ISO_IR 126", "ΑΒΓ")):
        parsed = parse_instance(make_dicom(patient_id=text, charset=charset))
        assert parsed.patient_id == text
        assert parsed.ids[Level.PATIENT] == patient_id(text)


def test_default_encoding_applies_without_specific_character_set() -> None:
    ds = make_dataset()
    ds.PatientID = "ΑΒΓ".encode("iso8859_7")
    data = to_bytes(ds)
    assert parse_instance(data, "Greek").patient_id == "ΑΒΓ"
    assert parse_instance(data, "Latin1").patient_id == "ΑΒΓ".encode("iso8859_7").decode("latin-1")


def test_dataset_charsets() -> None:
    ds, _ = read_dataset(sample("chrH31.dcm"))
    assert dataset_charsets(ds)[1:] == ["ISO 2022 IR 87"]
    ds, _ = read_dataset(sample("rtplan.dcm"))
    assert dataset_charsets(ds, "Utf8") == ["ISO_IR 192"]
    assert dataset_charsets(ds) == ["ISO_IR 100"]


def test_sequences_and_empty_files_from_pydicom() -> None:
    for name in ("chrSQEncoding.dcm", "chrSQEncoding1.dcm"):  # no hierarchy UIDs
        with pytest.raises(MissingTag):
            parse_instance(sample(name))


def test_converted_person_name_is_not_split_into_characters() -> None:
    from pydicom.dataset import Dataset

    from dicomhub.dicom.values import element_string

    ds = Dataset()
    ds.PatientName = "Doe^John*"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    assert element_string(ds["PatientName"], ["ISO_IR 6"]) == "Doe^John*"
    assert element_string(ds["ImageType"], ["ISO_IR 6"]) == "ORIGINAL\\PRIMARY"


def _shipped_part10_files() -> list[Path]:
    """pydicom's shipped test files that are Part 10 files (preamble and DICM)."""
    import pydicom.data

    folder = Path(pydicom.data.__file__).parent / "test_files"
    return sorted(p for p in folder.glob("*.dcm") if p.read_bytes()[128:132] == b"DICM")


def _element_view(ds) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(int(e.tag), e.VR, e.value) for e in ds._dict.values()]  # noqa: SLF001


def test_plain_reading_equals_dcmread_on_every_shipped_file() -> None:
    """The lean reading of usual files gives what ``dcmread`` gives: elements, raw
    values, file meta and encoding; the other files go through ``dcmread`` itself."""
    import io

    from pydicom import dcmread

    from dicomhub.dicom.parsing import _read_part10, _read_plain_part10

    files = _shipped_part10_files()
    assert len(files) > 50
    lean = 0
    for path in files:
        data = path.read_bytes()
        try:
            expected = dcmread(io.BytesIO(data), force=True)
        except Exception:  # noqa: BLE001 - unreadable either way
            continue
        got = _read_part10(data)
        assert _element_view(got) == _element_view(expected), path.name
        meta = expected.file_meta
        assert [(e.tag, e.value) for e in got.file_meta] == [(e.tag, e.value) for e in meta], (
            path.name
        )
        assert got.original_encoding == expected.original_encoding, path.name
        assert got.preamble == expected.preamble, path.name
        lean += _read_plain_part10(data) is not None
    assert lean > 30  # the lean path did serve most of them


def test_plain_reading_leaves_other_syntaxes_to_dcmread() -> None:
    from dicomhub.dicom.parsing import _read_plain_part10

    deflated = sample("image_dfl.dcm")
    big_endian = sample("MR_small_bigendian.dcm")
    assert _read_plain_part10(deflated) is None
    assert _read_plain_part10(big_endian) is None
    assert parse_instance(deflated).sop_uid
    assert parse_instance(big_endian).sop_uid
