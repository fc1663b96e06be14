"""The fast reader of incoming files gives exactly what the pydicom-based reading gives.

The reference is the reading ``parse_instance`` used before the fast reader
(``parsing._read_part10``: pydicom's ``read_dataset`` per group, or ``dcmread``,
then the completeness checks), on every file pydicom ships, on generated files of
every shape the fast reader handles, and on truncated and damaged versions of them:
same datasets (state, elements, converted values), same ``ParsedInstance``, or the
same exception with the same message.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
from pathlib import Path

import pytest
from dicom_factory import make_dataset, to_bytes
from pydicom.data import get_charset_files, get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dicomhub.dicom import fast_reader, parsing
from dicomhub.dicom.identifiers import clean_identifier
from dicomhub.dicom.levels import Level
from dicomhub.dicom.main_tags import MAIN_TAGS, configure_extra_main_tags
from dicomhub.dicom.parsing import InvalidDicom, MissingTag, parse_instance, read_dataset
from dicomhub.dicom.values import (
    INTEGER_VRS,
    _dictionary_vr,
    dataset_charsets,
    element_string,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on damaged files

FIELDS = (
    "charsets",
    "patient_id",
    "study_uid",
    "series_uid",
    "sop_uid",
    "ids",
    "main_tags",
    "transfer_syntax",
    "sop_class_uid",
    "pixel_data_offset",
    "pixel_data_vr",
    "expected_instances",
)


# --- the reference: the pydicom-based reading -------------------------------------


def reference_read(data: bytes) -> tuple[Dataset, int]:
    """``parsing.read_dataset`` without the fast reader."""
    if len(data) < 8:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)")
    try:
        ds = parsing._read_part10(data)  # noqa: SLF001
    except Exception as exc:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)") from exc
    parsing._check_complete(ds, len(data))  # noqa: SLF001
    if data[128:132] != b"DICM":  # a data set stored without the Part 10 header
        parsing._check_bare(ds, len(data))  # noqa: SLF001
        parsing._complete_file_meta(ds)  # noqa: SLF001
    if parsing._is_deflated(ds):  # noqa: SLF001 - no offset in a deflated file
        return ds, -1
    return ds, parsing._pixel_data_offset(data, ds)  # noqa: SLF001


def reference_parse(data: bytes, default_encoding: str = "Latin1") -> parsing.ParsedInstance:
    ds, offset = reference_read(data)
    return parsing.describe(ds, data, offset, default_encoding)


def outcome(parse, data: bytes) -> object:  # type: ignore[no-untyped-def]
    """The ParsedInstance fields, or the exception's type and message."""
    try:
        parsed = parse(data)
    except (InvalidDicom, MissingTag) as exc:
        return (type(exc), str(exc))
    return {name: getattr(parsed, name) for name in FIELDS}


def assert_same_dataset(got: Dataset, expected: Dataset, where: str) -> None:
    """Same instance state, same elements (raw fields and their types), same file meta."""
    state, reference = dict(got.__dict__), dict(expected.__dict__)
    got_buffer, expected_buffer = state.pop("buffer", None), reference.pop("buffer", None)
    assert (got_buffer is None) == (expected_buffer is None), where
    if got_buffer is not None:
        assert got_buffer.getvalue() == expected_buffer.getvalue(), where
        assert got_buffer.tell() == expected_buffer.tell(), where
    got_meta, expected_meta = state.pop("file_meta", None), reference.pop("file_meta", None)
    got_elements, expected_elements = state.pop("_dict"), reference.pop("_dict")
    assert list(state) == list(reference), where
    assert state == reference, where
    assert list(got_elements) == list(expected_elements), where
    for tag, elem in got_elements.items():
        other = expected_elements[tag]
        assert type(elem) is type(other), (where, tag)
        assert type(tag) is type(list(expected_elements)[list(expected_elements).index(tag)])
        if isinstance(elem, RawDataElement):
            assert tuple(elem) == tuple(other), (where, tag)
            assert [type(f) for f in elem] == [type(f) for f in other], (where, tag)
        else:
            assert (elem.tag, elem.VR, elem.is_undefined_length, elem.file_tell) == (
                other.tag,
                other.VR,
                other.is_undefined_length,
                other.file_tell,
            ), (where, tag)
            if isinstance(elem.value, Sequence):  # item by item, without converting
                assert type(other.value) is Sequence, (where, tag)
                state, reference = vars(elem.value), vars(other.value)
                assert list(state) == list(reference), (where, tag)
                assert {k: v for k, v in state.items() if k != "_list"} == {
                    k: v for k, v in reference.items() if k != "_list"
                }, (where, tag)
                for number, (item, expected_item) in enumerate(
                    zip(elem.value, other.value, strict=True)
                ):
                    assert type(item) is type(expected_item), (where, tag)
                    assert_same_dataset(item, expected_item, f"{where} {tag} item {number}")
            else:
                assert elem.value == other.value, (where, tag)
    if got_meta is not None or expected_meta is not None:
        assert type(got_meta) is type(expected_meta), where
        assert_same_dataset(got_meta, expected_meta, where + " (file meta)")


def assert_equivalent(data: bytes, where: str) -> bool:
    """The fast reading of ``data`` (when it takes the file) equals the reference;
    answers whether the fast reader took it."""
    fast = fast_reader.read_part10(data)
    assert outcome(parse_instance, data) == outcome(reference_parse, data), where
    if fast is None:
        assert parsing._describe_usual(data, "Latin1") is None, where  # noqa: SLF001
        return False
    expected, _ = reference_read(data)
    # the dataset of a parse (read when asked, after a parse from the values alone)
    with contextlib.suppress(InvalidDicom, MissingTag):
        assert_same_dataset(parse_instance(data).dataset, expected, where + " (parsed)")
    assert_same_dataset(fast, expected, where)
    assert fast.original_encoding == expected.original_encoding, where
    # every value converted (nested sequences too) is the same, or fails alike,
    # and converting them leaves both datasets in the same state
    got_values, expected_values = converted(fast), converted(expected)
    assert got_values == expected_values, where
    assert_same_dataset(fast, expected, where + " (converted)")
    if isinstance(got_values, list):
        assert fast == expected, where
        assert fast.file_meta == expected.file_meta, where
    return True


def converted(ds: Dataset) -> list[tuple] | tuple[type, str]:
    """Every element converted, file meta and nested ones included, or the failure."""
    try:
        elements = [*ds.file_meta.iterall(), *ds.iterall()]
        return [(e.tag, e.VR, e.value) for e in elements]
    except Exception as exc:  # noqa: BLE001 - a value pydicom cannot convert
        return (type(exc), str(exc))


# --- every file pydicom ships ------------------------------------------------------


def _shipped_names() -> list[str]:
    """pydicom's test files (without downloading any), subfolders included."""
    folder = os.path.dirname(get_testdata_file("CT_small.dcm", download=False))
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
    )


def _shipped(name: str) -> bytes:
    if os.sep not in name:
        path = get_testdata_file(name, download=False)
    else:
        path = os.path.join(
            os.path.dirname(get_testdata_file("CT_small.dcm", download=False)), name
        )
    assert path is not None, name
    return Path(path).read_bytes()


def test_every_shipped_file_reads_as_the_reference() -> None:
    names = _shipped_names()
    assert len(names) > 150
    fast = [name for name in names if assert_equivalent(_shipped(name), name)]
    assert len(fast) > 120  # the fast reader took most of them
    assert {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm"} <= set(fast)


def test_every_charset_file_reads_as_the_reference() -> None:
    paths = get_charset_files("*.dcm")
    assert len(paths) > 15
    fast = [p for p in paths if assert_equivalent(Path(p).read_bytes(), p)]
    assert len(fast) == len(paths)


def test_files_the_fast_reader_leaves_to_pydicom() -> None:
    """Big endian, deflated, no file meta, an implicit body under an explicit
    syntax: the fast reader declines, the answer is the reference's."""
    for name in ("MR_small_bigendian.dcm", "image_dfl.dcm", "no_meta.dcm", "SC_rgb_jpeg.dcm"):
        data = _shipped(name)
        assert fast_reader.read_part10(data) is None, name
        assert_equivalent(data, name)


# --- generated files ---------------------------------------------------------------


def _item(**values: object) -> Dataset:
    item = Dataset()
    for key, value in values.items():
        setattr(item, key, value)
    return item


def _undefined(ds: Dataset, keyword: str) -> None:
    """Write ``keyword`` (a sequence) with undefined lengths, items included."""
    ds[keyword].is_undefined_length = True
    for item in ds[keyword].value:
        item.is_undefined_length_sequence_item = True


def _with_sequences(undefined: bool, implicit: bool = False) -> bytes:
    ds = make_dataset(patient_id="SEQ", rows=16, columns=16)
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    inner = _item(CodeValue="123", CodingSchemeDesignator="DCM", CodeMeaning="Thing")
    ds.ReferencedSeriesSequence = Sequence(
        [
            _item(SeriesInstanceUID="1.2.3.4", ReferencedInstanceSequence=Sequence([])),
            _item(SeriesInstanceUID="1.2.3.5"),
        ]
    )
    ds.ProcedureCodeSequence = Sequence([_item(ConceptNameCodeSequence=Sequence([inner]))])
    ds.add_new(0x00090010, "LO", "ACME")  # a private block with a private sequence
    ds.add_new(0x00091001, "SQ", Sequence([_item(PatientID="X")]))
    if undefined:
        _undefined(ds, "ReferencedSeriesSequence")
        _undefined(ds, "ProcedureCodeSequence")
        _undefined(ds.ProcedureCodeSequence[0], "ConceptNameCodeSequence")
        ds[0x00091001].is_undefined_length = True
    return to_bytes(ds)


def _encapsulated(syntax: str, fragments: int) -> bytes:
    ds = make_dataset(patient_id="ENC", rows=16, columns=16)
    ds.file_meta.TransferSyntaxUID = syntax
    frames = [bytes(range(i, i + 40)) for i in range(3)]
    ds.NumberOfFrames = len(frames)
    ds.PixelData = encapsulate(frames, fragments_per_frame=fragments, has_bot=fragments == 1)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return to_bytes(ds)


def _implicit() -> bytes:
    ds = make_dataset(patient_id="IMPL", rows=16, columns=16)
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return to_bytes(ds)


def _empty_values() -> bytes:
    ds = make_dataset(patient_id="EMPTY", rows=8, columns=8)
    ds.StudyID = ""
    ds.SliceThickness = None
    ds.PatientWeight = None
    ds.ReferringPhysicianName = ""
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.add_new(0x00181041, "UN", b"")
    ds.WindowCenter = ["40", "400"]
    return to_bytes(ds)


def _announcing(**counts: object) -> bytes:
    """A file announcing how many instances its series has (``series_size``)."""
    ds = make_dataset(patient_id="COUNTS", rows=8, columns=8)
    for keyword, value in counts.items():
        setattr(ds, keyword, value)
    return to_bytes(ds)


GENERATED = {
    "small": lambda: to_bytes(make_dataset(patient_id="SMALL", rows=64, columns=64)),
    "ct": lambda: to_bytes(make_dataset(patient_id="CT", rows=512, columns=512)),
    "implicit": _implicit,
    "sequences-defined": lambda: _with_sequences(False),
    "sequences-undefined": lambda: _with_sequences(True),
    "sequences-undefined-implicit": lambda: _with_sequences(True, implicit=True),
    "encapsulated-jpeg": lambda: _encapsulated(JPEGBaseline8Bit, 1),
    "encapsulated-rle-fragments": lambda: _encapsulated(RLELossless, 2),
    "utf8": lambda: to_bytes(make_dataset(patient_id="山田", charset="ISO_IR 192")),
    "greek": lambda: to_bytes(
        make_dataset(patient_id="ΑΒΓ", patient_name="Διονυσιος", charset="ISO_IR 126")
    ),
    "japanese-2022": lambda: to_bytes(
        make_dataset(
            patient_name="Yamada^Tarou=山田^太郎=やまだ^たろう",
            charset=["", "ISO 2022 IR 87"],
        )
    ),
    "empty-values": _empty_values,
    "announcing-acquisition": lambda: _announcing(
        ImagesInAcquisition="4", NumberOfTemporalPositions="2"
    ),
    "announcing-slices": lambda: _announcing(NumberOfSlices=3, NumberOfTimeSlices=2),
    "announcing-cardiac": lambda: _announcing(CardiacNumberOfImages="12 "),
    "announcing-bad": lambda: _announcing(
        ImagesInAcquisition="7", CardiacNumberOfImages="0", NumberOfTemporalPositions="2"
    ).replace(b"\x20\x00\x02\x10IS\x02\x007 ", b"\x20\x00\x02\x10IS\x02\x00x "),
}

#: Generated files parsed from the values alone (``parsing._describe_usual``); the
#: others need more than ASCII text (character sets, binary numbers).
USUAL = {
    "small",
    "ct",
    "implicit",
    "sequences-defined",
    "sequences-undefined",
    "sequences-undefined-implicit",
    "encapsulated-jpeg",
    "encapsulated-rle-fragments",
    "empty-values",
    "announcing-acquisition",
    "announcing-cardiac",
    "announcing-bad",
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_files_read_as_the_reference(name: str) -> None:
    data = GENERATED[name]()
    assert assert_equivalent(data, name), "the fast reader should take the usual files"


def test_usual_files_are_parsed_from_their_values_alone() -> None:
    for name, make in GENERATED.items():
        parsed = parsing._describe_usual(make(), "Latin1")  # noqa: SLF001
        assert (parsed is not None) == (name in USUAL), name
    usual = [n for n in _shipped_names() if parsing._describe_usual(_shipped(n), "Latin1")]  # noqa: SLF001
    assert len(usual) > 60
    assert {"CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"} <= set(usual)


def test_extra_main_tags_are_parsed_as_the_reference() -> None:
    """Extra main tags of any VR (a binary number, a sequence, a long text)."""
    extra = {
        Level.SERIES: (0x00280010, 0x00180050, 0x00081140),  # Rows, SliceThickness, a SQ
        Level.INSTANCE: (0x00204000, 0x00080008),  # ImageComments, ImageType
    }
    files = [GENERATED[name]() for name in ("small", "implicit", "sequences-undefined")]
    ds = make_dataset(patient_id="LONG", rows=8, columns=8)
    ds.ImageComments = "x" * 300
    files.append(to_bytes(ds))
    configure_extra_main_tags(extra)
    try:
        for number, data in enumerate(files):
            assert outcome(parse_instance, data) == outcome(reference_parse, data), number
        rows = [parse_instance(data).main_tags[Level.SERIES].get(0x00280010) for data in files]
        assert rows[:2] == ["64", "16"]
    finally:
        configure_extra_main_tags({})


def test_generated_files_in_other_default_encodings() -> None:
    ds = make_dataset()
    ds.PatientID = "ΑΒΓ".encode("iso8859_7")
    data = to_bytes(ds)
    for encoding in ("Latin1", "Greek", "Utf8"):
        assert outcome(lambda d, e=encoding: parse_instance(d, e), data) == outcome(
            lambda d, e=encoding: reference_parse(d, e), data
        )


# --- damaged files -----------------------------------------------------------------


def _element_starts(data: bytes) -> list[int]:
    """Where each top-level element starts (file meta and body), from the reference."""
    ds, _ = reference_read(data)
    starts = []
    for group, implicit in ((ds.file_meta, False), (ds, ds.original_encoding[0])):
        for elem in group._dict.values():  # noqa: SLF001
            tell = elem.value_tell if isinstance(elem, RawDataElement) else elem.file_tell
            long_header = not implicit and elem.VR in EXPLICIT_VR_LENGTH_32
            starts.append(tell - (12 if long_header else 8))
    return starts


@pytest.mark.parametrize(
    "name",
    ["small", "implicit", "sequences-undefined", "encapsulated-rle-fragments", "greek"],
)
def test_truncated_files_have_the_reference_outcome(name: str) -> None:
    data = GENERATED[name]()
    cuts = set(range(len(data) if len(data) < 400 else 400))
    for start in _element_starts(data):  # around every element header
        cuts.update(range(max(0, start - 2), min(len(data), start + 14)))
    cuts.update(range(len(data) - 40, len(data)))
    for size in sorted(cuts):
        assert_equivalent(data[:size], f"{name} cut at {size}")


def test_truncated_shipped_files_have_the_reference_outcome() -> None:
    for name in ("CT_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"):
        data = _shipped(name)
        for size in list(range(120, 420, 3)) + list(range(len(data) - 30, len(data))):
            assert_equivalent(data[:size], f"{name} cut at {size}")


def _explicit_element(tag: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


@pytest.mark.parametrize(
    "damage",
    [
        "trailing-bytes",
        "repeated-tag",
        "item-delimiter",
        "unknown-vr",
        "lowercase-vr",
        "command-group",
        "long-value",
        "undefined-length-text",
        "undefined-length-un",
        "no-sequence-delimiter",
        "implicit-item-in-explicit",
        "not-dicom",
    ],
)
def test_damaged_files_have_the_reference_outcome(damage: str) -> None:
    data = GENERATED["small"]()
    ds, pixel = reference_read(data)
    start = pixel  # the pixel data element is the last one: insert before it
    head, tail = data[:start], data[start:]
    if damage == "trailing-bytes":
        variants = [data + b"\x00" * n for n in range(1, 13)]
    elif damage == "repeated-tag":
        variants = [head + _explicit_element(0x00100020, b"LO", b"AGAIN ") + tail]
        variants.append(data + _explicit_element(0x00100020, b"LO", b"LAST"))
    elif damage == "item-delimiter":
        variants = [head + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + tail]
    elif damage == "unknown-vr":
        variants = [head + _explicit_element(0x00211001, b"QQ", b"ABCD") + tail]
    elif damage == "lowercase-vr":
        variants = [head + _explicit_element(0x00211001, b"lo", b"ABCD") + tail]
    elif damage == "command-group":
        meta_end = 132 + 12 + struct.unpack_from("<L", data, 140)[0]
        command = _explicit_element(0x00000002, b"UI", b"1.2.3\x00")
        variants = [data[:meta_end] + command + data[meta_end:]]
    elif damage == "long-value":
        broken = bytearray(head + _explicit_element(0x00211001, b"LO", b"ABCD") + tail)
        struct.pack_into("<H", broken, start + 6, 0x7000)
        variants = [bytes(broken)]
    elif damage == "undefined-length-text":
        header = struct.pack("<HH2sHL", 0x0021, 0x1001, b"OB", 0, 0xFFFFFFFF)
        variants = [head + header + b"ABCD" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00" + tail]
    elif damage == "undefined-length-un":
        header = struct.pack("<HH2sHL", 0x0021, 0x1001, b"UN", 0, 0xFFFFFFFF)
        item = (
            b"\xfe\xff\x00\xe0"
            + struct.pack("<L", 14)
            + _explicit_element(0x00100020, b"LO", b"INNER ")
        )
        variants = [head + header + item + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00" + tail]
    elif damage == "no-sequence-delimiter":
        encapsulated = GENERATED["encapsulated-jpeg"]()
        variants = [encapsulated[:-8], encapsulated[:-4], encapsulated[:-1]]
    elif damage == "implicit-item-in-explicit":  # allowed (PS3.5 6.2.2), read as such
        header = struct.pack("<HH2sHL", 0x0008, 0x1115, b"SQ", 0, 0xFFFFFFFF)
        element = struct.pack("<HHL", 0x0010, 0x0020, 6) + b"INNER "
        item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + element + b"\xfe\xff\x0d\xe0" + b"\0" * 4
        delimiter = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        variants = [head + header + item + delimiter + tail]
        assert fast_reader.read_part10(variants[0]) is not None
    else:
        variants = [b"", b"DICM", b"\x00" * 132, b"\x00" * 128 + b"DICM" + b"\x02\x00", data[1:]]
    for number, variant in enumerate(variants):
        assert_equivalent(variant, f"{damage} #{number}")


@pytest.mark.parametrize("name", ["small", "sequences-undefined", "encapsulated-rle-fragments"])
def test_changed_bytes_have_the_reference_outcome(name: str) -> None:
    """Each byte of the file meta and the first elements changed in turn: wrong
    VRs, lengths, tags, delimiters; the fast reader takes many of them (a value
    changed is still a file) and answers as the reference for every one."""
    data = GENERATED[name]()
    taken = 0
    for pos in range(128, min(len(data), 700)):
        for value in (0x00, 0xFF, data[pos] ^ 0x20):
            changed = bytearray(data)
            changed[pos] = value
            taken += assert_equivalent(bytes(changed), f"{name}: byte {pos} = {value}")
    assert taken > 500


# --- the pieces of describe() that read raw values ---------------------------------


def _readable_test_files() -> list[bytes]:
    """Every test file above that ``read_dataset`` accepts."""
    sources = [_shipped(n) for n in _shipped_names()]
    sources += [Path(p).read_bytes() for p in get_charset_files("*.dcm")]
    sources += [make() for make in GENERATED.values()]
    readable = []
    for data in sources:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                read_dataset(data)
            except InvalidDicom:
                continue
        readable.append(data)
    return readable


def test_ascii_strings_are_element_strings() -> None:
    """The shortcut for raw ASCII values gives ``element_string``'s answer, for every
    raw element of every test file, in every character set context."""
    checked = 0
    for data in _readable_test_files():
        ds, _ = read_dataset(data)
        charsets = dataset_charsets(ds)
        for elem in ds._dict.values():  # noqa: SLF001
            if not isinstance(elem, RawDataElement):
                continue
            text = parsing._ascii_string(elem)  # noqa: SLF001
            if text is None:
                continue
            checked += 1
            for context in (charsets, ["ISO_IR 192"], ["ISO 2022 IR 87"], ["ISO_IR 126"]):
                assert text == element_string(elem, context), (elem, context)
    assert checked > 1000


def test_transfer_syntax_is_the_converted_uid() -> None:
    for data in _readable_test_files():
        meta = read_dataset(data)[0].file_meta
        expected = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta else ""
        meta = read_dataset(data)[0].file_meta  # not converted yet
        got = parsing._transfer_syntax(meta)  # noqa: SLF001
        assert got == (expected or parsing.IMPLICIT_LITTLE_ENDIAN)


def _expected_main_tags(ds: Dataset, default_encoding: str) -> dict[Level, dict[int, str]]:
    """What ``describe`` recorded before the shortcut: ``element_string`` of each
    raw element of the main tags (the patient tags copied onto the study), but for
    the values Orthanc leaves out (longer than 256 bytes of UTF-8, empty numbers)."""
    charsets = dataset_charsets(ds, default_encoding)
    main = {}
    for level, tags in MAIN_TAGS.items():
        found = {}
        for tag in tags:
            elem = ds._dict.get(tag)  # noqa: SLF001
            value = element_string(elem, charsets) if elem is not None else None
            if value is None or len(value.encode()) > parsing.MAX_MAIN_TAG_LENGTH:
                continue
            if value == "" and (elem.VR or _dictionary_vr(tag)) in INTEGER_VRS:
                continue
            found[tag] = value
        main[level] = found
    main[Level.STUDY].update(main[Level.PATIENT])
    return main


def test_main_tags_are_the_element_strings() -> None:
    for data in _readable_test_files():
        for encoding in ("Latin1", "Utf8"):
            try:
                parsed = parse_instance(data, encoding)
            except MissingTag:
                continue
            expected = _expected_main_tags(reference_read(data)[0], encoding)
            assert parsed.main_tags == expected
            patient = expected[Level.PATIENT].get(0x00100020)
            assert parsed.patient_id == clean_identifier(patient)


def test_fast_reader_keeps_the_buffer_like_pydicom() -> None:
    data = GENERATED["small"]()
    ds = fast_reader.read_part10(data)
    assert ds is not None
    assert isinstance(ds.buffer, io.BytesIO)
    assert ds.buffer.getvalue() == data
    assert ds.filename is None and ds.timestamp is None
    assert ds.preamble == data[:128]
    assert ds.PatientID == "SMALL"  # values convert lazily, as after pydicom's reading
