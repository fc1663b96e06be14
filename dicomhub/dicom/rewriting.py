"""Writing a changed header in front of unchanged pixel data.

A modification or an anonymization changes a few hundred bytes of header and none of
the pixel data, which are most of the file (half a megabyte for one CT slice).
Reading the pixel data into a dataset only to write them out again costs several
copies of the largest part of the file, and on a busy server each copy of that size
costs about as much as parsing the whole header. So the source is read up to its
pixel data, the header is changed and written by pydicom, and the source's Pixel Data
element is appended as it is.

The result is byte for byte what ``save_as`` writes for the whole dataset (the tests
check it on pydicom's sample files). Where that could not hold, ``read_source`` or
``write`` answer None and the caller takes the usual way: a deflated file, a file
whose pixel data are not its last element, a header whose character set or encoding
the writer would change, a change that adds an element after the pixel data.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

PIXEL_DATA = 0x7FE00010
#: Float / double float pixel data and anything after them: never in a header.
FIRST_PIXEL_TAG = 0x7FE00008
UNDEFINED_LENGTH = 0xFFFFFFFF
ITEM = (0xFFFE, 0xE000)
SEQUENCE_DELIMITER = (0xFFFE, 0xE0DD)


@dataclass
class Source:
    """A file read up to its pixel data."""

    dataset: FileDataset  # every element before the pixel data
    data: bytes  # the whole file
    pixel_data_offset: int  # where Pixel Data starts, len(data) when there is none


@dataclass
class Written:
    data: bytes
    #: Where Pixel Data starts in ``data``; -1 when there is none.
    pixel_data_offset: int
    #: The written dataset's elements are encoded as they are in memory (no character
    #: set change made the writer re-encode them): the dataset describes the file.
    faithful: bool


def read_source(data: bytes) -> Source | None:
    """The header of ``data``, or None when the file must be read and written whole."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    stream = io.BytesIO(data)
    try:
        ds = dcmread(stream, force=True, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - the whole-file reader reports the error
        return None
    offset = stream.tell()
    encoding = _syntax_encoding(ds)
    if encoding is None or tuple(ds.original_encoding) != encoding:
        return None
    if not _complete(ds) or not _pixel_data_alone(data, offset, encoding, _compressed(ds)):
        return None
    return Source(ds, data, offset)


def write(source: Source, ds: Dataset) -> Written | None:
    """``ds`` (the source's header, changed) followed by the source's pixel data; None
    when the result would not be what writing the whole dataset gives."""
    tags = ds.keys()  # not ``in ds``: iterating a dataset converts every element
    if any(tag >= FIRST_PIXEL_TAG for tag in tags):
        return None  # the change added an element that belongs after the pixel data
    encoding = _syntax_encoding(ds)
    if encoding is None or encoding != tuple(ds.original_encoding):
        return None
    head = _header(ds, encoding, source.data)
    if head is None:
        return None
    faithful = ds.original_character_set == ds._character_set  # noqa: SLF001
    if source.pixel_data_offset >= len(source.data):
        return Written(head, -1, faithful)
    pixels = memoryview(source.data)[source.pixel_data_offset :]
    return Written(b"".join((head, pixels)), len(head), faithful)


def _header(ds: Dataset, encoding: tuple[bool, bool], data: bytes) -> bytes | None:
    """What ``dcmwrite(..., enforce_file_format=True)`` writes for ``ds``, without
    its deep copy of the file meta (a sixth of the time of a modification): ``ds``
    is the modification's own dataset, its file meta may change. None where
    ``dcmwrite`` would refuse the dataset (it then says why). ``data``: the file
    ``ds`` was read from (see ``_write_elements``)."""
    preamble = getattr(ds, "preamble", None) or b"\0" * 128
    if len(preamble) != 128 or any(tag >> 16 in (0, 2) for tag in ds._dict):  # noqa: SLF001
        return None
    meta = ds.file_meta
    # As dcmwrite: the file meta's UIDs follow the dataset's.
    for meta_keyword, keyword in (
        ("MediaStorageSOPClassUID", "SOPClassUID"),
        ("MediaStorageSOPInstanceUID", "SOPInstanceUID"),
    ):
        current, value = meta.get(meta_keyword), ds.get(keyword)
        if current is None or (value and value != current):
            setattr(meta, meta_keyword, value)
    out = DicomBytesIO()
    out.is_implicit_VR, out.is_little_endian = encoding
    out.write(preamble)
    out.write(b"DICM")
    try:
        write_file_meta_info(out, meta, enforce_standard=True)
        if ds.original_character_set != ds._character_set:  # noqa: SLF001
            write_dataset(out, ds)  # pydicom then encodes every element again
        else:
            _write_elements(out, ds, encoding, data)
    except (ValueError, TypeError, AttributeError, NotImplementedError):
        return None
    return out.getvalue()


def _write_elements(
    out: DicomBytesIO, ds: Dataset, encoding: tuple[bool, bool], data: bytes
) -> None:
    """``write_dataset(out, ds)``, except that elements the modification did not
    touch (still raw, as read) are copied from the source file, a run of adjacent
    ones at a time: pydicom would write the same bytes one element at a time."""
    charsets = ds.get("SpecificCharacterSet", default_encoding)
    run_start = run_end = -1
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:  # retired group lengths: not written
            continue
        elem = ds.get_item(tag)
        span = _source_span(elem, encoding, data)
        if span is not None and span[0] == run_end:
            run_end = span[1]
            continue
        if run_end > run_start:
            out.write(memoryview(data)[run_start:run_end])
        if span is not None:
            run_start, run_end = span
        else:
            run_start = run_end = -1
            write_data_element(out, elem, charsets)
    if run_end > run_start:
        out.write(memoryview(data)[run_start:run_end])


def _source_span(
    elem: DataElement | RawDataElement, encoding: tuple[bool, bool], data: bytes
) -> tuple[int, int] | None:
    """Where a raw element lies in the source file, when its bytes there are the
    ones pydicom writes for it (a defined length that matches its value, and the
    header found where it should be); None otherwise."""
    if not isinstance(elem, RawDataElement) or elem.value is None:
        return None
    implicit, little = encoding
    length = elem.length
    if length == UNDEFINED_LENGTH or len(elem.value) != length:
        return None
    if implicit:
        header = 8
    elif elem.VR is None:
        return None
    else:
        header = 12 if elem.VR in EXPLICIT_VR_LENGTH_32 else 8
    start = elem.value_tell - header
    tag = int(elem.tag)
    order = "little" if little else "big"
    expected = (tag >> 16).to_bytes(2, order) + (tag & 0xFFFF).to_bytes(2, order)
    if start < 0 or data[start : start + 4] != expected:
        return None
    if not implicit and data[start + 4 : start + 6] != elem.VR.encode("ascii", "replace"):
        return None
    return start, elem.value_tell + length


def _syntax_encoding(ds: Dataset) -> tuple[bool, bool] | None:
    """(implicit VR, little endian) that the writer uses: the transfer syntax's."""
    meta = getattr(ds, "file_meta", None)
    value = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if not value:
        return None
    syntax = UID(str(value))
    if not syntax.is_transfer_syntax or syntax == DeflatedExplicitVRLittleEndian:
        return None
    return syntax.is_implicit_VR, syntax.is_little_endian


def _compressed(ds: Dataset) -> bool:
    return UID(str(ds.file_meta.TransferSyntaxUID)).is_compressed


def _complete(ds: Dataset) -> bool:
    """Every header element has the length it declares (pydicom keeps short values
    of a truncated file without a word)."""
    for elem in ds._dict.values():  # noqa: SLF001 - raw access avoids converting values
        if (
            isinstance(elem, RawDataElement)
            and elem.length != UNDEFINED_LENGTH
            and elem.value is not None
            and len(elem.value) != elem.length
        ):
            return False
    return True


def _pixel_data_alone(
    data: bytes, offset: int, encoding: tuple[bool, bool], compressed: bool
) -> bool:
    """The file ends with one Pixel Data element, encoded as pydicom would write it
    (explicit VR OB or OW; a defined length for native pixel data, an undefined one
    for encapsulated fragments closed by a sequence delimiter)."""
    size = len(data)
    if offset == size:
        return True
    implicit, little = encoding
    order = "little" if little else "big"

    def number(at: int, width: int) -> int:
        return int.from_bytes(data[at : at + width], order)

    if offset + 12 > size or (number(offset, 2), number(offset + 2, 2)) != (0x7FE0, 0x0010):
        return False
    if implicit:
        length, start = number(offset + 4, 4), offset + 8
    else:
        if data[offset + 4 : offset + 6] not in (b"OB", b"OW"):
            return False
        length, start = number(offset + 8, 4), offset + 12
    if length != UNDEFINED_LENGTH:
        return not compressed and start + length == size
    if not compressed:
        return False
    position = start
    while position + 8 <= size:
        tag = (number(position, 2), number(position + 2, 2))
        item_length = number(position + 4, 4)
        if tag == SEQUENCE_DELIMITER:
            return item_length == 0 and position + 8 == size
        if tag != ITEM or item_length == UNDEFINED_LENGTH:
            return False
        position += 8 + item_length
    return False
