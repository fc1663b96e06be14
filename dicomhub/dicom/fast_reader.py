"""A fast reader for the usual incoming files, giving what pydicom's reader gives.

Every stored instance is parsed once at ingest, and pydicom's ``read_dataset``
(a stream read and a generator step per element, then several ``Dataset``
constructors whose ``__setattr__`` runs for every attribute) was the largest
part of the server's CPU per small instance. For the files nearly every modality
sends (Part 10 with a file meta group, explicit or implicit VR little endian or an
encapsulated little endian syntax, well formed to the last byte) the elements are
found here with ``struct.unpack_from`` on the bytes, skipping over values, and the
datasets are assembled with the exact state pydicom's constructors would give
them: the same ``RawDataElement`` for each element (tag, VR, length, value bytes,
value position, encoding flags), so every later user (lazy value conversion,
``get_item``, ``original_encoding``, ``file_meta``, pixel data) sees no difference.

The reader answers ``None`` when it is not sure to agree with pydicom: truncated
or trailing bytes, duplicated tags, an unknown VR, implicit/explicit VR switches,
undefined lengths it does not know, a command group, any other transfer syntax or
pydicom setting. The caller then reads the file with pydicom, which also decides
(and reports) what is wrong with a bad file. Sequences of undefined length, which
pydicom's reader parses eagerly, are read here too, item by item as pydicom's
``read_sequence`` does.
"""

from __future__ import annotations

import io
from functools import lru_cache
from struct import Struct

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import _dictionary_vr_fast
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import ENCODED_VR
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.values import convert_string

UNDEFINED_LENGTH = 0xFFFFFFFF
IMPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
SPECIFIC_CHARACTER_SET = 0x00080005
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
_ITEM = b"\xfe\xff\x00\xe0"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0"

_explicit_header = Struct("<HH2sH").unpack_from
_implicit_header = Struct("<HHL").unpack_from
_uint32 = Struct("<L").unpack_from

#: Each VR as it appears in an explicit VR header -> (pydicom's VR string, whether
#: a 4-byte length follows), for the VRs pydicom knows (others: pydicom decides).
_VRS: dict[bytes, tuple[str, bool]] = {
    raw: (raw.decode(default_encoding), raw.decode(default_encoding) in EXPLICIT_VR_LENGTH_32)
    for raw in ENCODED_VR
}

#: The value of an empty element of each VR, as pydicom's generator gives it.
_EMPTY: dict[str, bytes | None] = {vr: empty_value_for_VR(vr, raw=True) for vr, _ in _VRS.values()}

#: Shared tag objects: ``BaseTag`` is an immutable int, so one per tag value does.
_TAGS: dict[int, BaseTag] = {}
_MAX_CACHED_TAGS = 20000


@lru_cache(maxsize=64)
def shared_tags(tags: tuple[int, ...]) -> tuple[BaseTag, ...]:
    """The key objects this reader gives the elements of ``tags`` in a dataset:
    looking an element up by its very key object skips ``BaseTag.__eq__`` (a
    Python call per found element when looking up by a plain ``int``)."""
    return tuple(_shared_tag(tag) for tag in tags)


def _shared_tag(tag: int) -> BaseTag:
    key = _TAGS.get(tag)
    if key is None:
        key = BaseTag(tag)
        if len(_TAGS) < _MAX_CACHED_TAGS:
            _TAGS[tag] = key
    return key


#: The key of Transfer Syntax UID in the file meta this reader reads.
TRANSFER_SYNTAX_KEY = _shared_tag(0x00020010)


class _Unsure(Exception):
    """The file is not one this reader is sure to read as pydicom does."""


def read_part10(data: bytes) -> FileDataset | None:
    """The dataset pydicom reads from the Part 10 file ``data`` (file meta and body
    read separately, as ``parsing._read_plain_part10`` does), or ``None`` when the
    file is not one of the usual, well-formed ones (see the module docstring)."""
    start = _usual_start(data)
    if start is None:
        return None
    meta, pos, implicit = start
    body: dict[BaseTag, RawDataElement | DataElement] = {}
    try:
        if implicit:
            _scan_implicit(data, pos, body)
        else:
            _scan_explicit(data, pos, body)
    except Exception:  # noqa: BLE001 - _Unsure, a cut header, an unknown VR, deep nesting
        return None
    stream = io.BytesIO(data)
    stream.seek(len(data))
    ds = _new_file_dataset(body, implicit, meta, data[:128], stream)
    if SPECIFIC_CHARACTER_SET in body:
        # pydicom records the body's character set by asking the dataset for it,
        # which converts (0008,0005) in place: the same call gives the same state
        # (without the element, it answers the parent encoding, already recorded).
        ds.__dict__["_read_charset"] = ds._character_set  # noqa: SLF001
    return ds


def _usual_start(data: bytes) -> tuple[dict, int, bool] | None:
    """For a file this reader reads: its file meta elements, where the body starts
    and whether the body is implicit VR; ``None`` for any other file."""
    if config._use_future or config.debugging or config.use_none_as_empty_text_VR_value:  # noqa: SLF001
        return None  # other dataset state, or other empty values (see _EMPTY)
    if not _SAME_STATE_AS_PYDICOM or type(data) is not bytes:  # values are slices of it
        return None
    if data[128:132] != b"DICM" or data[132:134] != b"\x02\x00":
        return None
    meta: dict[BaseTag, RawDataElement | DataElement] = {}
    try:
        start = _scan_meta(data, meta)
        implicit = _body_is_implicit(meta)
    except Exception:  # noqa: BLE001 - _Unsure, a cut header, an unknown VR
        return None
    if implicit is None or data[start : start + 2] == b"\x00\x00":
        return None  # not a syntax read here, or a command group
    if implicit and _looks_explicit(data, start):
        return None  # pydicom would switch to explicit VR (with a warning)
    return meta, start, implicit


#: Where ``scan_values`` found an element: (VR as pydicom's reader gives it, start
#: and end of its value in the file; end -1 for a value of undefined length).
Found = tuple[str | None, int, int]


def scan_values(data: bytes, wanted: frozenset[int]) -> tuple[dict, bool, dict[int, Found]] | None:
    """Where the top-level elements of ``wanted`` are in ``data``, for a file that
    ``read_part10`` reads, without building its dataset: most of the CPU of reading
    a small file goes into building the elements and datasets, while indexing an
    instance needs a few dozen values. Answers the file meta elements, whether the
    body is implicit VR, and what was found; ``None`` whenever ``read_part10``
    might not read the file, or would read it otherwise (the same checks, and
    tags out of order are left to it too)."""
    start = _usual_start(data)
    if start is None:
        return None
    meta, pos, implicit = start
    try:
        return meta, implicit, _scan_wanted(data, pos, implicit, wanted)
    except Exception:  # noqa: BLE001 - as read_part10
        return None


def _scan_wanted(data: bytes, pos: int, implicit: bool, wanted: frozenset[int]) -> dict[int, Found]:
    """``_scan_explicit`` / ``_scan_implicit`` keeping only the place of the values
    of ``wanted``. Elements of undefined length are read as they read them (so a
    file fails here where it fails there); each tag must follow a smaller one, which
    also rules out the repeated tags they refuse."""
    size = len(data)
    vrs = _VRS
    found: dict[int, Found] = {}
    encoding: str | list[str] = default_encoding
    last = -1
    while pos < size:
        if implicit:
            group, elem, length = _implicit_header(data, pos)
            vr = None
            tell = pos + 8
        else:
            group, elem, raw_vr, length = _explicit_header(data, pos)
            vr, long_length = vrs[raw_vr]
            if long_length:
                length = _uint32(data, pos + 8)[0]
                tell = pos + 12
            else:
                tell = pos + 8
        tag = group << 16 | elem
        if tag <= last or tag == ITEM_DELIMITER:
            raise _Unsure
        last = tag
        if length != UNDEFINED_LENGTH:
            end = tell + length
            if end > size:
                raise _Unsure  # a value shorter than declared
            if tag == SPECIFIC_CHARACTER_SET:
                encoding = _encoding_of(data[tell:end])  # fails where they fail
            if tag in wanted:
                found[tag] = (vr, tell, end)
        else:
            key = _TAGS.get(tag) or _shared_tag(tag)
            element, end = _undefined_length(data, key, vr, tell, implicit, encoding)
            if tag in wanted:
                found[tag] = (element.VR, tell, -1)
        pos = end
    return found


def _new_file_dataset(
    body: dict, implicit: bool, meta: dict, preamble: bytes, stream: io.BytesIO
) -> FileDataset:
    """The ``FileDataset`` pydicom's ``FileDataset(stream, body, preamble, meta,
    implicit, True)`` builds (its file meta read in explicit VR)."""
    ds = _new_dataset(FileDataset, body, implicit, True)
    ds.__dict__.update(
        {
            "preamble": preamble,
            "file_meta": _new_dataset(FileMetaDataset, meta, False, None),
            "fileobj_type": io.BytesIO,
            "filename": None,
            "buffer": stream,
            "timestamp": None,
        }
    )
    return ds


def _new_dataset(  # noqa: ANN202
    cls: type,
    elements: dict,
    implicit: bool,
    flags: bool | None,
    encoding: str | list[str] = default_encoding,
    read_charset: str | list[str] = default_encoding,
):
    """A ``cls`` holding ``elements`` in the state pydicom's reader leaves it
    (``Dataset.__init__`` then ``set_original_encoding``), without running the
    constructors' ``__setattr__`` for each attribute.

    ``flags``: the value of the legacy ``_is_little_endian`` (``_is_implicit_VR``
    follows) that ``FileDataset`` sets and other datasets leave at ``None``;
    ``encoding``: the parent's; ``read_charset``: the dataset's own.
    """
    ds = object.__new__(cls)
    object.__setattr__(
        ds,
        "__dict__",
        {
            "_parent_encoding": encoding,
            "_dict": elements,
            "is_decompressed": False,
            "_read_little": True,
            "_read_implicit": implicit,
            "_read_charset": read_charset,
            "_is_little_endian": flags,
            "_is_implicit_VR": None if flags is None else implicit,
            "is_undefined_length_sequence_item": False,
            "_private_blocks": {},
            "_pixel_array": None,
            "_pixel_array_opts": {"use_pdh": False},
            "_pixel_id": {},
        },
    )
    return ds


def _new_item(
    elements: dict,
    implicit: bool,
    encoding: str | list[str],
    read_charset: str | list[str],
    undefined_length: bool,
    tell: int,
) -> Dataset:
    """A sequence item as pydicom's ``read_sequence_item`` leaves it: its dataset
    from ``read_dataset``, then marked with its length form and position."""
    ds = _new_dataset(Dataset, elements, implicit, None, encoding, read_charset)
    state = ds.__dict__
    state["is_undefined_length_sequence_item"] = undefined_length
    state["seq_item_tell"] = tell
    state["file_tell"] = tell
    return ds


def _reference_item() -> Dataset:
    """An item built by pydicom's own calls, for ``_same_state_as_pydicom``."""
    item = Dataset({}, parent_encoding="iso_ir_126")
    item.set_original_encoding(True, True, ["iso_ir_126"])
    item.is_undefined_length_sequence_item = True
    item.seq_item_tell = 5
    item.file_tell = 5
    return item


def _same_state_as_pydicom() -> bool:
    """Whether the datasets built here have the attributes pydicom's constructors
    give (checked once: another pydicom version may add some, and the fast reader
    then stays off rather than build datasets that differ)."""
    try:
        stream = io.BytesIO(b"")
        meta = FileMetaDataset()
        meta.set_original_encoding(False, True, default_encoding)
        reference = FileDataset(stream, {}, b"\x00" * 128, meta, False, True)
        reference.set_original_encoding(False, True, default_encoding)
        ours = _new_file_dataset({}, False, {}, b"\x00" * 128, stream)
        item = _new_item({}, True, "iso_ir_126", ["iso_ir_126"], True, 5)
        reference_item = _reference_item()
    except Exception:  # noqa: BLE001 - a pydicom this module does not know
        return False
    pairs = ((ours, reference), (ours.file_meta, reference.file_meta), (item, reference_item))
    return all(
        list(got.__dict__) == list(expected.__dict__)
        and {k: v for k, v in got.__dict__.items() if k != "file_meta"}
        == {k: v for k, v in expected.__dict__.items() if k != "file_meta"}
        for got, expected in pairs
    )


def _body_is_implicit(meta: dict) -> bool | None:
    """Whether the body is implicit VR (``False``: explicit), as
    ``parsing._read_plain_part10`` decides it; ``None`` for the syntaxes it leaves
    to ``dcmread`` (big endian, deflated, private or unknown)."""
    syntax_elem = meta.get(TRANSFER_SYNTAX_KEY)
    if not isinstance(syntax_elem, RawDataElement) or syntax_elem.VR != "UI":
        return None
    syntax = (syntax_elem.value or b"").rstrip(b"\x00 ").decode("ascii", "replace")
    if syntax == IMPLICIT_LITTLE_ENDIAN:
        return True
    if syntax == EXPLICIT_LITTLE_ENDIAN:
        return False
    uid = UID(syntax)
    if not uid.is_transfer_syntax or not uid.is_compressed or uid.is_deflated:
        return None
    if uid.is_private or not uid.is_little_endian:
        return None
    return False


def _looks_explicit(data: bytes, start: int) -> bool:
    """pydicom's test of the first body element: two capital letters after the tag."""
    vr = data[start + 4 : start + 6]
    return len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B


def _scan_meta(data: bytes, elements: dict) -> int:
    """Read the file meta group (explicit VR little endian, from offset 132) into
    ``elements``; answers where the first element of another group starts."""
    size = len(data)
    pos = 132
    while True:
        group, elem, raw_vr, length = _explicit_header(data, pos)  # short: struct.error
        entry = _VRS.get(raw_vr)
        if group != 2:
            if entry is not None and entry[1] and pos + 12 > size:
                raise _Unsure  # pydicom fails reading the long length
            return pos
        vr, long_length = entry  # an unknown VR: TypeError, the caller gives up
        tell = pos + 8
        if long_length:
            length = _uint32(data, tell)[0]
            tell += 4
        end = tell + length
        if length == UNDEFINED_LENGTH or end > size:
            raise _Unsure
        key = _shared_tag(group << 16 | elem)
        value = data[tell:end] if length else _EMPTY[vr]
        # RawDataElement(key, vr, length, value, tell, False, True), without the
        # namedtuple's Python-level constructor (as _scan_explicit)
        elements[key] = tuple.__new__(
            RawDataElement, (key, vr, length, value, tell, False, True, True, False)
        )
        pos = end
        if pos >= size:
            raise _Unsure  # no body


def _scan_explicit(data: bytes, pos: int, elements: dict) -> None:
    """Read the explicit VR body from ``pos`` to the end of ``data`` into
    ``elements`` as pydicom's element generator makes them. Raises (``_Unsure``,
    or a ``struct.error`` or ``KeyError`` on a cut header or unknown VR) for
    anything pydicom could read differently; the loop is kept lean, as it runs
    for every element of every stored file."""
    size = len(data)
    tags = _TAGS
    vrs = _VRS
    empty = _EMPTY
    header = _explicit_header
    uint32 = _uint32
    new_tuple = tuple.__new__
    raw_element = RawDataElement
    encoding: str | list[str] = default_encoding
    count = 0
    while pos < size:
        group, elem, raw_vr, length = header(data, pos)
        vr, long_length = vrs[raw_vr]  # an item delimiter has no VR either
        if long_length:
            length = uint32(data, pos + 8)[0]
            tell = pos + 12
        else:
            tell = pos + 8
        tag = group << 16 | elem
        if tag == ITEM_DELIMITER:
            raise _Unsure  # pydicom ends the dataset there
        key = tags.get(tag) or _shared_tag(tag)
        if length != UNDEFINED_LENGTH:
            end = tell + length
            if end > size:
                raise _Unsure  # a value shorter than declared
            value = data[tell:end] if length else empty[vr]
            if tag == SPECIFIC_CHARACTER_SET:
                encoding = _encoding_of(value)
            elements[key] = new_tuple(
                raw_element, (key, vr, length, value, tell, False, True, True, False)
            )
        else:
            elements[key], end = _undefined_length(data, key, vr, tell, False, encoding)
        count += 1
        pos = end
    if count != len(elements):
        raise _Unsure  # a repeated tag (pydicom keeps the last value in the first place)


def _scan_implicit(data: bytes, pos: int, elements: dict) -> None:
    """``_scan_explicit`` for an implicit VR body (the elements have no VR)."""
    size = len(data)
    tags = _TAGS
    header = _implicit_header
    new_tuple = tuple.__new__
    raw_element = RawDataElement
    encoding: str | list[str] = default_encoding
    count = 0
    while pos < size:
        group, elem, length = header(data, pos)
        tell = pos + 8
        tag = group << 16 | elem
        if tag == ITEM_DELIMITER:
            raise _Unsure  # pydicom ends the dataset there
        key = tags.get(tag) or _shared_tag(tag)
        if length != UNDEFINED_LENGTH:
            end = tell + length
            if end > size:
                raise _Unsure  # a value shorter than declared
            value = data[tell:end] if length else None
            if tag == SPECIFIC_CHARACTER_SET:
                encoding = _encoding_of(value)
            elements[key] = new_tuple(
                raw_element, (key, None, length, value, tell, True, True, True, False)
            )
        else:
            elements[key], end = _undefined_length(data, key, None, tell, True, encoding)
        count += 1
        pos = end
    if count != len(elements):
        raise _Unsure


def _encoding_of(value: bytes | None) -> str | list[str]:
    """The encoding pydicom's generator takes from (0008,0005) for the sequences
    that follow (computed as eagerly as pydicom does, so it fails alike)."""
    return convert_encodings(convert_string(value or b"", True))


def _undefined_length(
    data: bytes,
    key: BaseTag,
    vr: str | None,
    tell: int,
    implicit: bool,
    encoding: str | list[str],
) -> tuple[DataElement | RawDataElement, int]:
    """The element of undefined length whose value starts at ``tell``, as pydicom's
    generator makes it, and where the next element starts."""
    element_vr = _undefined_length_vr(key, vr, data, tell)
    if element_vr == "SQ":
        sequence, end = _read_sequence(data, tell, implicit, encoding)
        return DataElement(key, "SQ", sequence, tell, is_undefined_length=True), end
    end = _encapsulated_end(data, tell)
    value = data[tell : end - 8]
    return RawDataElement(key, element_vr, UNDEFINED_LENGTH, value, tell, implicit, True), end


def _read_sequence(
    data: bytes, pos: int, implicit: bool, encoding: str | list[str]
) -> tuple[Sequence, int]:
    """pydicom's ``read_sequence`` of a sequence of undefined length whose items
    start at ``pos``: the items read as pydicom's ``read_sequence_item`` does, and
    where the sequence ends (after its delimiter)."""
    items = []
    while True:
        group, elem, length = _implicit_header(data, pos)  # cut: struct.error
        tag = group << 16 | elem
        if tag == SEQUENCE_DELIMITER:
            break
        if tag != ITEM:
            raise _Unsure  # pydicom reads whatever comes as an item
        item, pos = _read_item(data, pos + 8, implicit, length, encoding)
        items.append(item)
    sequence = Sequence(items)
    sequence.is_undefined_length = True
    return sequence, pos + 8


def _read_item(
    data: bytes, pos: int, implicit: bool, length: int, encoding: str | list[str]
) -> tuple[Dataset, int]:
    """The dataset of a sequence item whose elements start at ``pos`` (``length``:
    the item's, maybe undefined), as pydicom's ``read_sequence_item`` gives it, and
    where the item ends."""
    if not implicit:  # an item may be in implicit VR in an explicit VR file
        raw_vr = data[pos + 4 : pos + 6]
        implicit = len(raw_vr) == 2 and not (0x40 < raw_vr[0] < 0x5B and 0x40 < raw_vr[1] < 0x5B)
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    end = _scan_item(data, pos, implicit, length, encoding, elements)
    charset = elements.get(SPECIFIC_CHARACTER_SET)
    if charset is not None:
        item_encoding = convert_encodings(convert_raw_data_element(charset).value)
    else:
        item_encoding = encoding
    undefined_length = length == UNDEFINED_LENGTH
    return _new_item(elements, implicit, encoding, item_encoding, undefined_length, pos - 8), end


def _scan_item(
    data: bytes,
    pos: int,
    implicit: bool,
    length: int,
    encoding: str | list[str],
    elements: dict,
) -> int:
    """The elements of an item into ``elements``, as pydicom's generator gives
    them: up to the item delimiter (undefined ``length``) or until ``length``
    bytes are read. Answers where the item ends."""
    size = len(data)
    start = pos
    defined = length != UNDEFINED_LENGTH
    count = 0
    while not defined or pos - start < length:
        if implicit:
            group, elem, value_length = _implicit_header(data, pos)
            vr = None
            tell = pos + 8
        else:
            group, elem, raw_vr, value_length = _explicit_header(data, pos)
            entry = _VRS.get(raw_vr)
            if group << 16 | elem == ITEM_DELIMITER and (entry is None or not entry[1]):
                group, elem, value_length = _implicit_header(data, pos)
                vr = None
                tell = pos + 8
            elif entry is None:
                raise _Unsure  # an unknown VR, or one element in implicit VR
            else:
                vr, long_length = entry
                tell = pos + 8
                if long_length:
                    value_length = _uint32(data, tell)[0]
                    tell += 4
        tag = group << 16 | elem
        if tag == ITEM_DELIMITER:
            if defined:
                raise _Unsure  # pydicom ends a defined length item there
            pos = tell
            break
        key = _TAGS.get(tag) or _shared_tag(tag)
        if value_length != UNDEFINED_LENGTH:
            end = tell + value_length
            if end > size:
                raise _Unsure
            value = data[tell:end] if value_length else _EMPTY.get(vr)
            if tag == SPECIFIC_CHARACTER_SET:
                encoding = _encoding_of(value)
            elements[key] = RawDataElement(key, vr, value_length, value, tell, implicit, True)
        else:
            elements[key], end = _undefined_length(data, key, vr, tell, implicit, encoding)
        count += 1
        pos = end
    if count != len(elements):
        raise _Unsure
    return pos


def _undefined_length_vr(tag: int, vr: str | None, data: bytes, tell: int) -> str:
    """The VR pydicom gives an element of undefined length: ``SQ`` for sequences
    (and UN it takes for one), the dictionary's VR in implicit VR files."""
    if vr == "UN":
        if config.settings.infer_sq_for_un_vr:
            return "SQ"
        raise _Unsure
    if vr is None:
        try:
            return _dictionary_vr_fast(tag)  # the lookup pydicom's reader makes
        except KeyError:  # a private tag: pydicom looks at what follows
            if data[tell : tell + 4] == _ITEM:
                return "SQ"
            raise _Unsure from None
    return vr


def _encapsulated_end(data: bytes, pos: int) -> int:
    """The end of an undefined length value made of items (encapsulated pixel
    data), after its sequence delimiter and that delimiter's length: the bytes
    before the delimiter are the value pydicom keeps. Anything else (pydicom then
    searches the delimiter byte by byte) is left to pydicom."""
    size = len(data)
    while True:
        if pos + 4 > size:
            raise _Unsure
        marker = data[pos : pos + 4]
        if marker == _SEQUENCE_DELIMITER:
            end = pos + 8
            if end > size:
                raise _Unsure
            return end
        if marker != _ITEM or pos + 8 > size:
            raise _Unsure
        pos += 8 + _uint32(data, pos + 4)[0]


_SAME_STATE_AS_PYDICOM = _same_state_as_pydicom()
