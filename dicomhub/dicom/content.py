"""``GET /instances/{id}/content/...``: walking a dataset by tags and item indexes.

What Orthanc 1.10.1 answers (pinned by ``tests/dicom/test_content.py``):

- a dataset (the top level, or a sequence item) lists its tags as ``gggg-eeee``,
  lowercase, every element included (group lengths, tags after Pixel Data);
- a sequence lists its item indexes ``"0"``, ``"1"``, ...; so does the top-level Pixel
  Data: one item holding all the bytes when native, or one per encapsulated item (the
  Basic Offset Table first) when compressed;
- any other element answers its value as DCMTK keeps it: numbers little endian, text
  without its trailing spaces (``tags_json.stored_text``), padded to an even length;
- a path segment names a tag as ``gggg-eeee``, ``gggg,eeee``, ``ggggeeee`` (any case)
  or by its keyword (case-sensitive); an index is decimal, ``+`` and leading zeros
  allowed; empty segments (a trailing slash) are ignored.

A missing tag, an index out of range, a path that goes on below a leaf or a bad index
raise ``ContentNotFound`` (Orthanc: 404 with an empty body); a segment that names no
tag at all raises ``UnknownTagError`` (Orthanc: 500, ``"Unknown DICOM tag"``, status 27).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence as DicomSequence

from . import tag_names
from .tags_json import (
    PIXEL_DATA,
    STRING_VRS,
    UNDEFINED_LENGTH,
    element_vr,
    python_encodings,
    stored_text,
)

_INDEX = re.compile(r"\+?[0-9]+")
#: Bytes per number of the VRs that DCMTK keeps in the machine's (little endian) order.
_SWAP_SIZES = {
    "US": 2, "SS": 2, "OW": 2, "AT": 2,
    "UL": 4, "SL": 4, "FL": 4, "OF": 4, "OL": 4,
    "FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8,
}  # fmt: skip


class ContentNotFound(KeyError):
    """The path names nothing in this dataset; Orthanc answers 404 with no body."""


class UnknownTagError(ValueError):
    """A path segment is neither a tag number nor a keyword; Orthanc answers 500."""


def parse_tag(segment: str) -> int:
    """A tag named as Orthanc names tags (``0010,0010``, ``10,10``, ``00100010``,
    ``PatientName``...: :func:`.tag_names.parse_tag`); no blanks or parentheses
    around it."""
    try:
        return tag_names.parse_tag(segment)
    except ValueError:
        raise UnknownTagError(segment) from None


def content_key(tag: int) -> str:
    """The ``gggg-eeee`` spelling used by the content listings."""
    return f"{tag >> 16:04x}-{tag & 0xFFFF:04x}"


def content(
    ds: Dataset, path_parts: Sequence[str], charsets: Sequence[str] = ()
) -> list[str] | bytes:
    """What ``/content/{path_parts...}`` answers: a JSON list of names, or raw bytes.

    ``charsets`` only matter for elements pydicom has already converted from bytes to
    text, which must be encoded back as the file had them.
    """
    parts = [p for p in path_parts if p]
    node = ds
    i = 0
    while i < len(parts):
        tag = parse_tag(parts[i])
        i += 1
        elem = node._dict.get(tag)  # noqa: SLF001 - raw element, no conversion
        if elem is None:
            raise ContentNotFound(parts[i - 1])
        if _is_sequence(elem, tag, node):
            items = node[tag].value
            items = items if isinstance(items, DicomSequence) else DicomSequence()
            if i == len(parts):
                return [str(k) for k in range(len(items))]
            node = items[_index(parts[i], len(items))]
            i += 1
            continue
        if tag == PIXEL_DATA and node is ds:  # only the top level one is split in items
            if isinstance(elem, RawDataElement) and elem.value is None:
                elem = node[tag]  # deferred read
            frames = _pixel_items(elem, node)
            if i == len(parts):
                return [str(k) for k in range(len(frames))]
            if i + 1 != len(parts):
                raise ContentNotFound(parts[i + 1])
            return frames[_index(parts[i], len(frames))]
        if i != len(parts):
            raise ContentNotFound(parts[i])  # nothing below a leaf
        if isinstance(elem, RawDataElement) and elem.value is None and elem.length:
            elem = node[tag]
        return leaf_bytes(elem, node, tag, charsets)
    return [content_key(t) for t in sorted(map(int, node._dict))]  # noqa: SLF001


def list_content(ds: Dataset, path_parts: Sequence[str]) -> list[str]:
    """The listing at ``path_parts``; ``ContentNotFound`` when it is a leaf value."""
    found = content(ds, path_parts)
    if isinstance(found, bytes):
        raise ContentNotFound("/".join(path_parts))
    return found


def raw_content(ds: Dataset, path_parts: Sequence[str], charsets: Sequence[str] = ()) -> bytes:
    """The raw value at ``path_parts``; ``ContentNotFound`` when it is a listing."""
    found = content(ds, path_parts, charsets)
    if not isinstance(found, bytes):
        raise ContentNotFound("/".join(path_parts))
    return found


def _index(segment: str, count: int) -> int:
    if not _INDEX.fullmatch(segment):
        raise ContentNotFound(segment)
    index = int(segment)
    if index >= count:
        raise ContentNotFound(segment)
    return index


def _is_sequence(elem: DataElement | RawDataElement, tag: int, ds: Dataset) -> bool:
    if isinstance(elem, DataElement) and isinstance(elem.value, DicomSequence):
        return True
    return tag != PIXEL_DATA and element_vr(ds, tag, elem) == "SQ"


def _little_endian(elem: DataElement | RawDataElement, ds: Dataset) -> bool:
    if isinstance(elem, RawDataElement):
        return elem.is_little_endian is not False
    return getattr(ds, "is_little_endian", None) is not False


def _pixel_items(elem: DataElement | RawDataElement, ds: Dataset) -> list[bytes]:
    """Pixel Data as Orthanc lists it: encapsulated items, or one native block."""
    value = elem.value if isinstance(elem.value, bytes | bytearray) else b""
    undefined = (
        elem.length == UNDEFINED_LENGTH
        if isinstance(elem, RawDataElement)
        else bool(getattr(elem, "is_undefined_length", False))
    )
    if undefined:
        endianness = "<" if _little_endian(elem, ds) else ">"
        return list(generate_fragments(bytes(value), endianness=endianness))
    vr = elem.VR if elem.VR in ("OB", "OW") else "OW"
    return [_swap(bytes(value), vr) if not _little_endian(elem, ds) else bytes(value)]


def leaf_bytes(
    elem: DataElement | RawDataElement, ds: Dataset, tag: int, charsets: Sequence[str] = ()
) -> bytes:
    """The value as DCMTK holds it once loaded: numbers little endian, text without its
    trailing spaces (``stored_text``) then padded to an even length again (NUL for UI
    and binary values, space for other text).
    """
    vr = element_vr(ds, tag, elem)
    value = elem.value
    if isinstance(value, bytes):
        if not _little_endian(elem, ds) and vr not in STRING_VRS:
            value = _swap(value, str(elem.VR or vr))
    elif value is None or value == "" or elem.is_empty:
        value = b""
    else:  # a converted element: write it again (implicit VR little endian, no header)
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = True
        encodings = list(python_encodings(tuple(charsets))) if charsets else None
        write_data_element(fp, elem, encodings)
        value = fp.getvalue()[8:]
    if len(value) % 2:  # DCMTK pads an odd value with a NUL when it reads it
        value += b"\x00"
    if vr in STRING_VRS:
        value = stored_text(value.decode("latin_1"), vr).encode("latin_1")
        if len(value) % 2:
            value += b"\x00" if vr == "UI" else b" "
    return value


def _swap(value: bytes, vr: str) -> bytes:
    size = _SWAP_SIZES.get(vr)
    if not size or len(value) < size:
        return value
    swapped = bytearray(value)
    usable = len(value) - len(value) % size
    for offset in range(size):
        swapped[offset:usable:size] = value[size - 1 - offset : usable : size]
    return bytes(swapped)
