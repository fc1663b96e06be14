"""Reading an incoming DICOM file into what the archive needs to index it.

Pure: bytes in, a ``ParsedInstance`` out, or ``InvalidDicom`` / ``MissingTag``.
pydicom is lenient with truncated files (it silently keeps the short value), so
the declared length of every top-level element is checked against what was read,
as a strict reader would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom import dcmread
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset as read_dataset_elements
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from .fast_reader import TRANSFER_SYNTAX_KEY, scan_values, shared_tags
from .fast_reader import read_part10 as fast_read_part10
from .identifiers import clean_identifier, instance_id, patient_id, series_id, study_id
from .levels import Level
from .main_tags import MAIN_TAGS, indexed_tags
from .series_size import ANNOUNCING_TAGS, expected_instances, expected_instances_of_strings
from .values import (
    ESCAPE,
    INTEGER_VRS,
    STRING_VRS,
    _dictionary_vr,
    dataset_charsets,
    element_string,
)

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA_TAGS = shared_tags((0x7FE00010, 0x7FE00008, 0x7FE00009))
IMPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2"
TRANSFER_SYNTAX_UID = 0x00020010
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
PATIENT_ID = 0x00100020
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E


class InvalidDicom(ValueError):
    """The bytes are not a readable DICOM file."""


class MissingTag(ValueError):
    """A DICOM file lacks a tag the archive needs (a UID of the hierarchy)."""


@dataclass
class ParsedInstance:
    """What the index records of an incoming file, with the file's dataset."""

    patient_id: str  # the DICOM PatientID (cleaned)
    study_uid: str
    series_uid: str
    sop_uid: str
    ids: dict[Level, str]  # Orthanc identifiers per level
    main_tags: dict[Level, dict[int, str]]
    transfer_syntax: str
    sop_class_uid: str | None  # None: absent (or not text), as Orthanc records no metadata
    pixel_data_offset: int | None
    pixel_data_vr: str | None
    expected_instances: int | None  # what the series announces (``series_size``)
    # The dataset and its character sets; or, until someone asks for them, the file
    # and the DefaultEncoding to read them from (``parse_instance`` of a usual file).
    _dataset: Dataset | None = field(default=None, repr=False, compare=False)
    _charsets: list[str] | None = field(default=None, repr=False, compare=False)
    _source: tuple[bytes, str] | None = field(default=None, repr=False, compare=False)

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            assert self._source is not None
            self._dataset, _ = read_dataset(self._source[0])
        return self._dataset

    @property
    def charsets(self) -> list[str]:
        if self._charsets is None:
            assert self._source is not None
            self._charsets = dataset_charsets(self.dataset, self._source[1])
        return self._charsets


def read_dataset(data: bytes) -> tuple[FileDataset, int]:
    """Parse ``data``; answers the dataset and the offset where pixel data start."""
    if len(data) < 8:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)")
    ds = _read_fast(data)
    if ds is None:
        try:
            ds = _read_part10(data)
        except Exception as exc:
            size = len(data)
            raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)") from exc
        _check_complete(ds, len(data))
        if data[128:132] != b"DICM":
            _check_bare(ds, len(data))
            _complete_file_meta(ds)
        if _is_deflated(ds):  # its elements are not where the file's bytes are
            return ds, -1
    offset = _pixel_data_offset(data, ds)
    return ds, offset


def _is_deflated(ds: Dataset) -> bool:
    """Whether ``ds`` was read from a deflated file (its meta read without converting
    elements, which would change the data set's state)."""
    syntax = UID(_transfer_syntax(getattr(ds, "file_meta", None)))
    return syntax.is_transfer_syntax and syntax.is_deflated


def _read_fast(data: bytes) -> FileDataset | None:
    """``fast_reader``'s dataset: the same as ``_read_part10`` gives, for the
    well-formed usual files only, which also pass ``_check_complete`` (every value
    whole, the last one ending the file); ``None`` for the others."""
    try:
        return fast_read_part10(data)
    except Exception:  # noqa: BLE001 - the pydicom path decides
        return None


def _read_part10(data: bytes) -> FileDataset:
    """``dcmread`` of ``data``; for the usual files (preamble, file meta, a little
    endian transfer syntax that is not deflated), the same reading without its
    generic checks, which cost as much as reading the elements themselves: the two
    groups are read by pydicom's ``read_dataset`` and put together as ``dcmread``
    does. Anything else, or anything that fails, goes through ``dcmread``.
    (``fast_reader`` has read the well-formed usual files before.)"""
    if data[128:132] == b"DICM" and data[132:134] == b"\x02\x00":
        try:
            ds = _read_plain_part10(data)
        except Exception:  # noqa: BLE001 - dcmread decides (and reports) below
            ds = None
        if ds is not None:
            return ds
    return dcmread(io.BytesIO(data), force=True)


def _not_file_meta(tag: int, _vr: str | None, _length: int) -> bool:
    return tag >> 16 != 2


def _read_plain_part10(data: bytes) -> FileDataset | None:
    stream = io.BytesIO(data)
    stream.seek(132)
    meta = read_dataset_elements(stream, False, True, stop_when=_not_file_meta)
    syntax_elem = meta._dict.get(0x00020010)  # noqa: SLF001 - the raw value
    if not isinstance(syntax_elem, RawDataElement) or syntax_elem.VR != "UI":
        return None
    syntax = (syntax_elem.value or b"").rstrip(b"\x00 ").decode("ascii", "replace")
    implicit = syntax == IMPLICIT_LITTLE_ENDIAN
    if not implicit and syntax not in _EXPLICIT_LITTLE_SYNTAXES:
        uid = UID(syntax)
        if not uid.is_transfer_syntax or not uid.is_compressed or uid.is_deflated:
            return None
        if uid.is_private or not uid.is_little_endian:
            return None
    start = stream.tell()
    if data[start : start + 2] == b"\x00\x00":  # a command group: dcmread's own path
        return None
    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(False, True, default_encoding)
    body = read_dataset_elements(stream, implicit, True)
    ds = FileDataset(stream, body, data[:128], file_meta, implicit, True)
    ds.set_original_encoding(implicit, True, body._character_set)  # noqa: SLF001
    return ds


#: Explicit VR little endian, and its compressed forms that have no UID flag.
_EXPLICIT_LITTLE_SYNTAXES = frozenset({"1.2.840.10008.1.2.1"})


def _check_complete(ds: Dataset, size: int) -> None:
    raw_items = ds._dict.values()  # noqa: SLF001 - raw access avoids converting values
    if not raw_items:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)")
    for elem in raw_items:
        if (
            isinstance(elem, RawDataElement)
            and elem.length != UNDEFINED_LENGTH
            and elem.value is not None
            and len(elem.value) != elem.length
        ):
            raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)")
    # A file cut inside an element header: pydicom silently stops before the last bytes.
    last = list(raw_items)[-1]
    value_tell = getattr(last, "value_tell", None)
    if (
        isinstance(last, RawDataElement)
        and last.length != UNDEFINED_LENGTH
        and value_tell is not None
        and value_tell + last.length < size
    ):
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)")


def _check_bare(ds: Dataset, size: int) -> None:
    """A file without the DICOM prefix is taken, as by the reference, for a data set
    alone (maybe after its file meta group), whose encoding pydicom guessed from the
    first element. Bytes that are no DICOM at all (or a file cut inside its
    preamble) may read as a few elements of nonsense; DICOM orders the elements of a
    data set by tag (PS3.5 7.1), which such bytes almost never are: refused."""
    previous = -1
    for tag in ds._dict:  # noqa: SLF001 - the tags as read, without conversions
        if tag <= previous:
            raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)")
        previous = tag


#: The uncompressed transfer syntax of each (implicit VR, little endian) encoding.
_ENCODING_SYNTAXES = {
    (True, True): IMPLICIT_LITTLE_ENDIAN,
    (False, True): "1.2.840.10008.1.2.1",
    (False, False): "1.2.840.10008.1.2.2",
}

#: The file meta elements ``_complete_file_meta`` added (a set of tags), kept in
#: the dataset's attributes so that ``file_meta_as_stored`` leaves them out.
_INFERRED_META = "dicomhub_inferred_file_meta"


def _complete_file_meta(ds: FileDataset) -> None:
    """Give a data set stored without its file meta the Transfer Syntax UID it is
    encoded in (the reference records that syntax, and writes it when it modifies
    or sends the instance): pydicom's writers and the transcoder need it."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = FileMetaDataset()
        ds.file_meta = meta
    if "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    meta.TransferSyntaxUID = _ENCODING_SYNTAXES[(bool(implicit), bool(little))]
    ds.__dict__[_INFERRED_META] = frozenset({TRANSFER_SYNTAX_UID})


def file_meta_as_stored(ds: Dataset) -> Dataset | None:
    """``ds.file_meta`` as the file holds it: without what ``read_dataset`` added
    to the meta of a data set stored without one (``/header`` shows the file's)."""
    meta = getattr(ds, "file_meta", None)
    inferred = ds.__dict__.get(_INFERRED_META)
    if meta is None or not inferred:
        return meta
    stored = FileMetaDataset()
    for elem in meta.values():  # raw elements kept raw
        if elem.tag not in inferred:
            stored[elem.tag] = elem
    return stored


def part10_of_bare(data: bytes) -> bytes:
    """The Part 10 file of ``data``, a data set stored without the DICOM prefix
    (maybe after its file meta group): a preamble, ``DICM``, the file meta (the
    stored one, completed with the UIDs a C-STORE needs) and the data set's bytes
    as they are. ``InvalidDicom`` when ``data`` is not such a data set."""
    ds, _ = read_dataset(data)
    start = _after_file_meta_group(data)
    meta = FileMetaDataset()
    stored = file_meta_as_stored(ds)
    for tag in stored.keys() if stored is not None else ():
        meta[tag] = stored[tag]  # converted: the writer needs values
    for meta_keyword, keyword in (
        ("MediaStorageSOPClassUID", "SOPClassUID"),
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
    ):
        if not meta.get(meta_keyword) and keyword in ds:
            setattr(meta, meta_keyword, ds[keyword].value)
    meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    out = DicomBytesIO()
    out.is_implicit_VR, out.is_little_endian = False, True
    out.write(b"\0" * 128 + b"DICM")
    try:
        write_file_meta_info(out, meta, enforce_standard=True)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidDicom(f"no usable file meta information: {exc}") from exc
    return out.getvalue() + data[start:]


def _after_file_meta_group(data: bytes) -> int:
    """Where the elements of group 0002 (explicit VR little endian) that start
    ``data`` end: 0 when it starts with the data set."""
    pos, size = 0, len(data)
    while pos + 8 <= size and data[pos : pos + 2] == b"\x02\x00":
        vr = data[pos + 4 : pos + 6].decode("ascii", "replace")
        if vr in EXPLICIT_VR_LENGTH_32:
            pos += 12 + int.from_bytes(data[pos + 8 : pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(data[pos + 6 : pos + 8], "little")
    return min(pos, size)


def _pixel_data_offset(data: bytes, ds: Dataset) -> int:
    """Offset of the Pixel Data element's tag in the file, or -1 when it has none."""
    for tag in PIXEL_DATA_TAGS:
        elem = ds.get_item(tag)
        if elem is None:
            continue
        value_tell = getattr(elem, "value_tell", None)
        if value_tell is not None:
            # tag (4) + VR (2) + reserved (2) + length (4) for OB/OW in explicit VR,
            # tag (4) + length (4) in implicit VR.
            header = 8 if getattr(elem, "is_implicit_VR", False) else 12
            start = value_tell - header
            if start >= 0:
                return start
        needle = tag.to_bytes(4, "big")
        little = needle[1::-1] + needle[3:1:-1]
        found = data.rfind(little)
        return found
    return -1


def parse_instance(data: bytes, default_encoding: str = "Latin1") -> ParsedInstance:
    """``data``: a Part 10 file or, as the reference stores them too, a data set
    without the preamble and ``DICM`` prefix (alone, or after its file meta group),
    whose transfer syntax is then the one its first element shows."""
    parsed = _describe_usual(data, default_encoding)
    if parsed is not None:
        return parsed
    ds, offset = read_dataset(data)
    return describe(ds, data, offset, default_encoding)


def _describe_usual(data: bytes, default_encoding: str) -> ParsedInstance | None:
    """``describe(*read_dataset(data))`` for the usual file, read from the bytes of
    the few values the index needs, without building the dataset (the larger part
    of the parse of a small file; ``ParsedInstance.dataset`` reads it if asked).

    Taken when ``fast_reader`` reads the file and every value needed is text in
    plain ASCII (no escape sequence), which every character set reads alike: the
    element string is then the value without its padding. ``None`` otherwise (binary
    numbers, sequences, other text, a missing or empty UID, an unusual transfer
    syntax value, float pixel data only): ``describe`` decides, and answers the same.
    """
    scanned = scan_values(data, _usual_wanted(indexed_tags()))
    if scanned is None:
        return None
    meta, implicit, found = scanned
    strings: dict[int, str] = {}
    for tag, (vr, start, end) in found.items():
        if vr not in STRING_VRS and (vr is not None or _implicit_vr(tag) not in STRING_VRS):
            if tag in _PIXEL_DATA_TAG_VALUES:
                continue
            return None
        if end < 0:
            return None
        value = data[start:end]
        if not value.isascii() or ESCAPE in value:
            return None
        strings[tag] = value.decode("ascii").rstrip(" \x00")
    study = strings.get(STUDY_INSTANCE_UID)
    series = strings.get(SERIES_INSTANCE_UID)
    sop = strings.get(SOP_INSTANCE_UID)
    transfer_syntax = _raw_transfer_syntax(meta.get(TRANSFER_SYNTAX_KEY))
    if not study or not series or not sop or transfer_syntax is None:
        return None
    offset, pixel_data_vr = -1, None
    for tag in PIXEL_DATA_TAGS:
        place = found.get(tag)
        if place is not None:
            offset = place[1] - (8 if implicit else 12)  # as _pixel_data_offset
            break
    pixel = found.get(PIXEL_DATA_TAGS[0])
    if pixel is not None:
        pixel_data_vr = pixel[0]
    elif offset >= 0:
        return None  # float pixel data only: _pixel_data_vr reads the header
    patient = strings.get(PATIENT_ID, "")
    main: dict[Level, dict[int, str]] = {}
    for level, tags in MAIN_TAGS.items():
        # ASCII: kept up to MAX_MAIN_TAG_LENGTH characters, empty ones too (_indexed)
        main[level] = {
            tag: strings[tag]
            for tag in tags
            if tag in strings and len(strings[tag]) <= MAX_MAIN_TAG_LENGTH
        }
    main[Level.STUDY].update(main[Level.PATIENT])
    return ParsedInstance(
        patient_id=patient,
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        ids={
            Level.PATIENT: patient_id(patient),
            Level.STUDY: study_id(patient, study),
            Level.SERIES: series_id(patient, study, series),
            Level.INSTANCE: instance_id(patient, study, series, sop),
        },
        main_tags=main,
        transfer_syntax=transfer_syntax,
        sop_class_uid=strings.get(SOP_CLASS_UID),
        pixel_data_offset=offset if offset >= 0 else None,
        pixel_data_vr=pixel_data_vr if offset >= 0 else None,
        expected_instances=expected_instances_of_strings(strings),
        _source=(data, default_encoding),
    )


@lru_cache(maxsize=8)
def _usual_wanted(main_tags: frozenset[int]) -> frozenset[int]:
    """The tags ``_describe_usual`` reads: the main tags, the UIDs, Pixel Data and
    the counts a series announces."""
    return main_tags.union(
        _IDENTIFYING_TAGS, (SOP_CLASS_UID,), _PIXEL_DATA_TAG_VALUES, ANNOUNCING_TAGS
    )


def describe(
    ds: Dataset, data: bytes, pixel_data_offset: int, default_encoding: str = "Latin1"
) -> ParsedInstance:
    """What the index records about the file ``data``, taken from ``ds``, the dataset
    it encodes: read from it (``parse_instance``), or the one it was just written
    from (a modification), which then spares reading the new file again.

    ``pixel_data_offset`` is where the pixel data element starts in ``data`` (-1: no
    pixel data); ``ds`` may lack that element when the caller copied it as bytes.
    The strings always come from the encoded values: an element a modification
    changed (no longer a raw element) is encoded as the writer does and read back,
    so both ways give the same record, character sets and padding included.
    """
    charsets = dataset_charsets(ds, default_encoding)
    encoding = _file_encoding(ds)

    elements = ds._dict  # noqa: SLF001 - ~50 lookups: skip get_item's key conversion

    def string(elem: DataElement | RawDataElement) -> str | None:
        if isinstance(elem, RawDataElement):
            text = _ascii_string(elem)
            if text is not None:
                return text
        elif not _reads_back_as_is(elem):
            elem = _as_read(elem, ds, encoding)
        return element_string(elem, charsets)

    def text(key: int) -> str | None:
        elem = elements.get(key)
        value = string(elem) if elem is not None else None
        return clean_identifier(value) if value is not None else None

    patient_key, study_key, series_key, sop_key, sop_class_key = _IDENTIFYING_KEYS
    patient = text(patient_key) or ""
    study = text(study_key)
    series = text(series_key)
    sop = text(sop_key)
    if not study or not series or not sop:
        if study is None or series is None or sop is None:
            raise MissingTag("StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID are required")
        # present but empty: the reference says the file is bad, not the tag missing
        raise InvalidDicom("missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")

    ids = {
        Level.PATIENT: patient_id(patient),
        Level.STUDY: study_id(patient, study),
        Level.SERIES: series_id(patient, study, series),
        Level.INSTANCE: instance_id(patient, study, series, sop),
    }
    main: dict[Level, dict[int, str]] = {}
    for level, tags in MAIN_TAGS.items():
        found: dict[int, str] = {}
        for tag, key in zip(tags, shared_tags(tags), strict=True):
            elem = elements.get(key)  # by the reader's key object: no BaseTag.__eq__
            if elem is not None:
                value = string(elem)
                if value is not None and (0 < len(value) <= 64 or _indexed(value, elem)):
                    found[tag] = value
        main[level] = found
    # Orthanc copies the patient tags onto the study, so studies can be searched by them.
    main[Level.STUDY].update(
        {t: v for t, v in main[Level.PATIENT].items() if t in MAIN_TAGS[Level.PATIENT]}
    )

    transfer_syntax = _transfer_syntax(getattr(ds, "file_meta", None))
    sop_class = text(sop_class_key)
    return ParsedInstance(
        patient_id=patient,
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        ids=ids,
        main_tags=main,
        transfer_syntax=transfer_syntax,
        sop_class_uid=sop_class,
        pixel_data_offset=pixel_data_offset if pixel_data_offset >= 0 else None,
        pixel_data_vr=_pixel_data_vr(ds, data, pixel_data_offset, encoding),
        expected_instances=expected_instances(ds),
        _dataset=ds,
        _charsets=charsets,
    )


#: The longest main tag value Orthanc keeps (UTF-8 bytes): a longer one is left out
#: of the resource's main tags, as the reference leaves it out of its summary.
MAX_MAIN_TAG_LENGTH = 256


def _indexed(value: str, elem: DataElement | RawDataElement) -> bool:
    """Whether a main tag's ``value`` is kept, as Orthanc keeps it: not when longer
    than ``MAX_MAIN_TAG_LENGTH`` bytes of UTF-8, nor an empty binary number (an empty
    string stays, as ``""``)."""
    if value:  # (64 characters are at most 256 bytes: the caller keeps them at once)
        return len(value.encode("utf-8")) <= MAX_MAIN_TAG_LENGTH
    return (elem.VR or _implicit_vr(elem.tag)) not in INTEGER_VRS


def _ascii_string(elem: RawDataElement) -> str | None:
    """``element_string`` of a raw element in its usual case, cheaper: the value of
    a string VR in ASCII without escape sequences reads the same in every character
    set, so decoding it as ASCII is enough. ``None``: not that case."""
    value = elem.value
    if (
        value
        and (elem.VR or _implicit_vr(elem.tag)) in STRING_VRS
        and value.isascii()
        and ESCAPE not in value
    ):
        return value.decode("ascii").rstrip(" \x00")
    return None


#: PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID.
_IDENTIFYING_TAGS = (PATIENT_ID, STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID)
_IDENTIFYING_KEYS = shared_tags((*_IDENTIFYING_TAGS, SOP_CLASS_UID))
_PIXEL_DATA_TAG_VALUES = frozenset(PIXEL_DATA_TAGS)

#: The VR element_string gives an element of an implicit VR file (a dictionary look-up).
_implicit_vr = lru_cache(maxsize=4096)(_dictionary_vr)


def _transfer_syntax(meta: Dataset | None) -> str:
    """The file meta's Transfer Syntax UID as pydicom's ``str(UID)`` gives it, taken
    from the raw value when it is one (converting it costs as much as reading a
    small file's elements); the implicit VR default when there is none (a data set
    stored without its file meta has the one of its encoding: ``read_dataset``)."""
    elem = meta._dict.get(TRANSFER_SYNTAX_KEY) if meta else None  # noqa: SLF001
    raw = _raw_transfer_syntax(elem)
    if raw is not None:
        return raw
    transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta else ""
    return transfer_syntax or IMPLICIT_LITTLE_ENDIAN


def _raw_transfer_syntax(elem: DataElement | RawDataElement | None) -> str | None:
    """``_transfer_syntax`` of a raw Transfer Syntax UID of one value (pydicom's UI
    conversion: decoded, padding stripped, the UID stripped); ``None`` otherwise."""
    if isinstance(elem, RawDataElement) and elem.VR == "UI" and elem.value is not None:
        text = elem.value.decode(default_encoding).rstrip("\x00 ")
        if "\\" not in text:
            return text.strip() or IMPLICIT_LITTLE_ENDIAN
    return None


def _file_encoding(ds: Dataset) -> tuple[bool, bool]:
    """(implicit VR, little endian) of the file ``ds`` was read from."""
    implicit, little = ds.original_encoding
    if implicit is None or little is None:  # a dataset never read: its transfer syntax
        meta = getattr(ds, "file_meta", None)
        syntax = UID(str(getattr(meta, "TransferSyntaxUID", "") or IMPLICIT_LITTLE_ENDIAN))
        return syntax.is_implicit_VR, syntax.is_little_endian
    return implicit, little


def _reads_back_as_is(elem: DataElement) -> bool:
    """An ASCII string (or nothing) of a VR written as its text: every character set
    encodes and decodes it unchanged, and padding is stripped either way, so its
    string needs no round trip through the writer (most of what an anonymization
    changes: emptied values and new UIDs)."""
    if elem.VR not in _PLAIN_STRING_VRS:
        return False
    value = elem.value
    return value is None or (isinstance(value, str) and value.isascii())


#: String VRs whose in-memory value is the text written (not PN, DS, IS: objects).
_PLAIN_STRING_VRS = STRING_VRS - {"PN", "DS", "IS"}


def _as_read(elem: DataElement, ds: Dataset, encoding: tuple[bool, bool]) -> RawDataElement:
    """``elem`` as a reader of the written file finds it: encoded by pydicom's writer
    with the dataset's character set, then taken as a raw element."""
    implicit, little = encoding
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    write_data_element(buffer, elem, ds.get("SpecificCharacterSet", default_encoding))
    encoded = buffer.getvalue()
    header = 8 if implicit or elem.VR not in EXPLICIT_VR_LENGTH_32 else 12
    value = encoded[header:]
    return RawDataElement(
        elem.tag, None if implicit else elem.VR, len(value), value, 0, implicit, little
    )


def _pixel_data_vr(
    ds: Dataset, data: bytes, offset: int, encoding: tuple[bool, bool]
) -> str | None:
    """The VR of Pixel Data as the file says it (None in implicit VR files)."""
    if offset < 0:
        return None
    pix = ds.get_item(0x7FE00010)
    if pix is not None:
        return pix.VR
    implicit, little = encoding
    order = "little" if little else "big"
    head = data[offset : offset + 6]
    if implicit or len(head) < 6:
        return None
    group, element = int.from_bytes(head[0:2], order), int.from_bytes(head[2:4], order)
    if (group, element) != (0x7FE0, 0x0010):
        return None
    vr = head[4:6]
    return vr.decode("ascii") if b"AA" <= vr <= b"ZZ" else None
