"""A stored DICOM file seen as what the network sends: its data set, already encoded.

A C-STORE carries the data set without the file meta information, in the transfer
syntax of its presentation context. When the peer accepted the syntax the file is
stored in, the bytes after the file meta are exactly that payload, so sending needs
neither a parse nor a re-encoding of the whole data set (the costliest steps of a
C-MOVE sub-operation otherwise).
"""

from __future__ import annotations

import io
import struct
from typing import NamedTuple

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import ENCODED_VR, EXPLICIT_VR_LENGTH_32, data_element_generator
from pydicom.tag import BaseTag

from .parsing import InvalidDicom, part10_of_bare


class EncodedDataset(Dataset):
    """A data set known by its identifying attributes and its encoded bytes.

    Only ``SOPClassUID``, ``SOPInstanceUID`` and ``file_meta`` are decoded; ``payload``
    is the data set in ``file_meta.TransferSyntaxUID``; ``decode()`` gives the whole
    data set when a peer needs another syntax. The plain ``str`` attributes
    ``sop_class_uid``, ``sop_instance_uid`` and ``transfer_syntax`` say the same for
    the sender, which reads them per instance, without pydicom's conversions.
    """

    payload: bytes
    source: bytes
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str

    def decode(self) -> Dataset:
        return dcmread(io.BytesIO(self.source))

    @property
    def file_meta(self) -> FileMetaDataset:  # type: ignore[override]
        """Built (by pydicom, from ``source``) when first asked for: a sender that has
        the plain attributes never needs it. pydicom stores an assigned ``file_meta``
        in the instance dictionary (``Dataset._set_file_meta``), where this looks
        first."""
        meta = self.__dict__.get("file_meta")
        if meta is None:
            meta = FileMetaDataset(
                {element.tag: element for element in _meta_elements(self.source)}
            )
            self.__dict__["file_meta"] = meta
        return meta


def _outside_file_meta(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002  # (``tag.group`` is a Python property: slower)


#: Where ``split`` puts the two UIDs of the file meta in the data set.
_SOP_CLASS = BaseTag(0x00080016)
_SOP_INSTANCE = BaseTag(0x00080018)

#: A file meta element's header in Explicit VR Little Endian: group, element, VR and
#: the 2-byte length (PS3.5 7.1.2); the VRs of ``_LONG_VRS`` have 2 reserved bytes
#: there and a 4-byte length after.
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_UL = struct.Struct("<I")
_KNOWN_VRS = frozenset(ENCODED_VR)
_LONG_VRS = frozenset(str(vr).encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
#: The file meta elements a sender needs (element numbers in group 0002).
_META_SOP_CLASS, _META_SOP_INSTANCE, _META_SYNTAX = 0x0002, 0x0003, 0x0010
_META_KEYWORDS = (
    (_META_SOP_CLASS, "MediaStorageSOPClassUID"),
    (_META_SOP_INSTANCE, "MediaStorageSOPInstanceUID"),
    (_META_SYNTAX, "TransferSyntaxUID"),
)


class Layout(NamedTuple):
    """Where a stored file's data set starts, and the identifying UIDs of its file
    meta, raw (with their padding) as ``(value, offset of the value)``."""

    sop_class: tuple[bytes, int]
    sop_instance: tuple[bytes, int]
    transfer_syntax: tuple[bytes, int]
    payload_start: int

    @property
    def sop_class_uid(self) -> str:
        return _uid(self.sop_class[0])

    @property
    def sop_instance_uid(self) -> str:
        return _uid(self.sop_instance[0])

    @property
    def transfer_syntax_uid(self) -> str:
        return _uid(self.transfer_syntax[0])


def layout(data: bytes | memoryview) -> Layout | None:
    """The file meta of ``data`` read with ``struct`` alone: a C-MOVE reads one per
    instance, and pydicom's element reader (streams, raw elements) cost ten times as
    much. None for anything but a plain file meta (no DICOM prefix, an undefined or
    overrunning length, an unknown VR, a missing UID): then ``split`` tells what is
    wrong, through pydicom, as before."""
    if data[128:132] != b"DICM":
        return None
    found: dict[int, tuple[bytes, int]] = {}
    offset, end = 132, len(data)
    while offset + 8 <= end:
        group, element, vr, length = _EXPLICIT_HEADER.unpack_from(data, offset)
        if group != 0x0002:
            break
        if vr not in _KNOWN_VRS:
            return None
        start = offset + 8
        if vr in _LONG_VRS:
            if start + 4 > end:
                return None
            length = _UL.unpack_from(data, start)[0]
            start += 4
        offset = start + length
        if length == 0xFFFFFFFF or offset > end:
            return None
        if element in (_META_SOP_CLASS, _META_SOP_INSTANCE, _META_SYNTAX):
            found[element] = (bytes(data[start:offset]), start)
    else:
        if offset != end:
            return None  # a few bytes past the meta: pydicom's reading decides
    try:
        return Layout(
            found[_META_SOP_CLASS], found[_META_SOP_INSTANCE], found[_META_SYNTAX], offset
        )
    except KeyError:
        return None


def _meta_elements(data: bytes) -> list[RawDataElement]:
    """The file meta elements as pydicom reads them."""
    return list(
        data_element_generator(
            _after_prefix(data),
            is_implicit_VR=False,
            is_little_endian=True,
            stop_when=_outside_file_meta,
        )
    )


def _after_prefix(data: bytes) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.seek(132)
    return stream


def _raw_uid(tag: BaseTag, raw: tuple[bytes, int]) -> RawDataElement:
    """A UI element as pydicom's reader gives it (Explicit VR Little Endian, raw)."""
    value, value_tell = raw
    return RawDataElement(tag, "UI", len(value), value, value_tell, False, True, True, False)


def split(data: bytes) -> EncodedDataset:
    """``data`` (a DICOM file with its file meta) as an ``EncodedDataset``; ValueError
    when the file meta lacks what a C-STORE needs.

    Runs once per instance a C-MOVE or C-GET sends: the meta is read with ``layout``
    when it is a plain one (pydicom reads the rest of it if ``file_meta`` is asked
    for), and the data set's elements stay raw (pydicom converts them when read).
    """
    found = layout(data)
    if found is None:
        if data[128:132] != b"DICM":  # a data set stored without the DICOM prefix
            return _split_bare(data)
        found = _layout_by_pydicom(data)
    encoded = EncodedDataset(
        {
            _SOP_CLASS: _raw_uid(_SOP_CLASS, found.sop_class),
            _SOP_INSTANCE: _raw_uid(_SOP_INSTANCE, found.sop_instance),
        }
    )
    # plain attributes, set past Dataset.__setattr__ (which looks every name up in the
    # DICOM dictionary first)
    for name, value in (
        ("payload", data[found.payload_start :]),
        ("source", data),
        ("sop_class_uid", found.sop_class_uid),
        ("sop_instance_uid", found.sop_instance_uid),
        ("transfer_syntax", found.transfer_syntax_uid),
    ):
        object.__setattr__(encoded, name, value)
    return encoded


def _split_bare(data: bytes) -> EncodedDataset:
    """``split`` of a data set stored without the DICOM prefix: of its Part 10 file
    (the same data set bytes, so the same payload), built by ``parsing``."""
    try:
        part10 = part10_of_bare(bytes(data))
    except InvalidDicom as exc:
        raise InvalidDicomError(str(exc)) from exc
    return split(part10)


def _layout_by_pydicom(data: bytes) -> Layout:
    """``layout`` through pydicom's reader, which says what is wrong with the file."""
    if data[128:132] != b"DICM":
        raise InvalidDicomError("no DICOM prefix 'DICM' at offset 128: not a DICOM file")
    stream = _after_prefix(data)
    elements = list(
        data_element_generator(
            stream, is_implicit_VR=False, is_little_endian=True, stop_when=_outside_file_meta
        )
    )
    # plain int keys: pydicom's BaseTag compares in Python, an int in C
    raw = {int(element.tag) & 0xFFFF: element for element in elements}
    missing = [keyword for element, keyword in _META_KEYWORDS if element not in raw]
    if missing:
        raise ValueError(f"file meta information without {', '.join(missing)}")

    def value(element: int) -> tuple[bytes, int]:
        found = raw[element]
        return found.value or b"", found.value_tell

    return Layout(
        value(_META_SOP_CLASS), value(_META_SOP_INSTANCE), value(_META_SYNTAX), stream.tell()
    )


def _uid(value: bytes | None) -> str:
    """A UI value as stored (trailing NUL or space padding removed)."""
    return (value or b"").rstrip(b"\0 ").decode("ascii", "replace")
