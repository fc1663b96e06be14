"""Orthanc's JSON renderings of a DICOM dataset: ``/tags``, ``?simplify``, ``?short``, ``/header``.

The rules below were observed on Orthanc 1.10.1 (``tests/dicom/test_tags_json.py`` pins
them); they are not the DICOM JSON model:

- every leaf is a string: text is decoded to UTF-8, loses its trailing spaces (and
  ends at a NUL) as in ``normalize_text``; binary numbers (US, SS, UL, SL, FL, FD) are printed, floats
  with 17 significant digits, and joined by backslashes; AT shows its first value only;
- OB, OW, OF, OD, OL, OV, SV, UV and UN values, and binary numbers of length zero, are
  ``Null``; a value longer than ``max_length`` UTF-8 bytes is ``TooLong`` (both with a
  null value);
- top-level tags after Pixel Data are left out unless ``whole`` is asked;
- implicit VR values take the dictionary's VR; an explicit UN value of a public text
  tag is shown as decoded, unstripped (only a last NUL goes), any other explicit UN
  value is ``Null``;
- names: the pydicom keyword (``RETIRED_`` prefix for retired tags),
  ``GenericGroupLength`` / ``PrivateGroupLength``, ``PrivateCreator``, private tags by
  pydicom's private dictionary, anything else ``Unknown Tag & Data``.

The walk reads raw element bytes (pydicom has not converted them yet): faster, and
faithful (``1.000000`` stays ``1.000000``). Converted elements are handled too.
"""

from __future__ import annotations

import re
import struct
import warnings
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import get_entry, get_private_entry
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

TagFormat = Literal["full", "simplify", "short"]
Kind = Literal["String", "Null", "TooLong", "Sequence"]
#: (tag, name, private creator, kind, value); a sequence's value is a list of item walks.
Entry = tuple[int, str, str | None, Kind, Any]

#: Orthanc's fixed limit for ``/tags`` and friends (``ignore-length`` lifts it per tag).
DEFAULT_MAX_LENGTH = 256
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_REPRESENTATION = 0x00280103
UNDEFINED_LENGTH = 0xFFFFFFFF
UNKNOWN_NAME = "Unknown Tag & Data"
PRIVATE_CREATOR_NAME = "PrivateCreator"
GROUP_LENGTH_NAMES = ("GenericGroupLength", "PrivateGroupLength")

#: VRs whose values are text.
STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC"}
    | {"UI", "UR", "UT"}
)
#: Binary numbers that Orthanc prints: VR -> (struct code, item size).
NUMBER_VRS: dict[str, tuple[str, int]] = {
    "US": ("H", 2),
    "SS": ("h", 2),
    "UL": ("I", 4),
    "SL": ("i", 4),
    "FL": ("f", 4),
    "FD": ("d", 8),
    "AT": ("H", 2),
}
_WORD = re.compile(r"[A-Za-z0-9]+")
_TEXT_DELIMITERS = {0x0D, 0x0A, 0x09, 0x0C, 0x5C}
_PN_DELIMITERS = _TEXT_DELIMITERS | {0x5E, 0x3D}
_CACHE_LIMIT = 200_000  # a file full of odd tags must not grow the caches forever


class Options(NamedTuple):
    """The caller's limits: ``max_length`` None lifts the limit for every tag."""

    max_length: int | None = DEFAULT_MAX_LENGTH
    ignore_length: frozenset[int] = frozenset()
    whole: bool = False
    skip_binary: bool = False  # /header leaves binary elements out instead of Null


# ------------------------------------------------------------------------- names

_public_cache: dict[int, tuple[str, str]] = {}
_private_cache: dict[tuple[int, str], tuple[str, str]] = {}
_key_cache: dict[int, str] = {}


def public_entry(tag: int) -> tuple[str, str]:
    """(Orthanc name, dictionary VR) of a public tag."""
    found = _public_cache.get(tag)
    if found is not None:
        return found
    if not tag & 0xFFFF and tag != 0x00020000:
        found = (GROUP_LENGTH_NAMES[tag >> 16 & 1], "UL")
    else:
        try:
            vr, _vm, _desc, retired, keyword = get_entry(tag)
        except KeyError:
            found = (UNKNOWN_NAME, "UN")
        else:
            name = ("RETIRED_" + keyword if retired else keyword) if keyword else UNKNOWN_NAME
            found = (name, vr)
    if len(_public_cache) < _CACHE_LIMIT:
        _public_cache[tag] = found
    return found


def private_entry(tag: int, creator: str) -> tuple[str, str]:
    """(name, VR) of a private tag known to pydicom's private dictionary.

    Orthanc names them from DCMTK's private dictionary, which is not ours to copy;
    pydicom's descriptions in CamelCase give the same name in most cases
    (``Full fidelity`` -> ``FullFidelity``, ``x-ray On position`` -> ``XrayOnPosition``).
    """
    key = (tag, creator)
    found = _private_cache.get(key)
    if found is not None:
        return found
    try:
        vr, _vm, desc, _retired = get_private_entry(tag, creator)
    except KeyError:
        found = (UNKNOWN_NAME, "UN")
    else:
        words = _WORD.findall(desc.replace("-", "").replace("'", ""))
        found = ("".join(w[0].upper() + w[1:] for w in words) or UNKNOWN_NAME, vr)
    if len(_private_cache) < _CACHE_LIMIT:
        _private_cache[key] = found
    return found


def tag_key(tag: int) -> str:
    """Orthanc's ``gggg,eeee`` spelling of a tag (lowercase hex)."""
    key = _key_cache.get(tag)
    if key is None:
        key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
        if len(_key_cache) < _CACHE_LIMIT:
            _key_cache[tag] = key
    return key


# -------------------------------------------------------------------------- text


@lru_cache(maxsize=256)
def python_encodings(charsets: tuple[str, ...]) -> tuple[str, ...]:
    """Python codecs for DICOM character set terms (unknown terms fall back quietly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(convert_encodings(list(charsets) or ["ISO_IR 6"]))


def decode(raw: bytes, vr: str, encodings: Sequence[str]) -> str:
    """Decode text bytes with the dataset's character sets; bad bytes are replaced."""
    if 0x1B not in raw:
        if raw.isascii():
            return raw.decode("ascii")
        try:
            return raw.decode(encodings[0])
        except (UnicodeDecodeError, LookupError):
            return raw.decode(encodings[0] if _codec_exists(encodings[0]) else "latin_1", "replace")
    with warnings.catch_warnings():  # ISO 2022 escape sequences
        warnings.simplefilter("ignore")
        try:
            delimiters = _PN_DELIMITERS if vr == "PN" else _TEXT_DELIMITERS
            return decode_bytes(raw, list(encodings), delimiters)
        except Exception:  # undecodable escape sequences: show what can be shown
            return raw.decode("latin_1")


@lru_cache(maxsize=64)
def _codec_exists(codec: str) -> bool:
    try:
        b"".decode(codec)
    except LookupError:
        return False
    return True


def stored_text(text: str, vr: str) -> str:
    """A text value as DCMTK keeps it once loaded (``/content`` answers it re-padded).

    Observed: trailing spaces go; a UI also loses trailing NULs and the spaces around
    each of its values. A value of odd length was padded with a NUL when read (see
    ``_text``), which shields its trailing spaces. Leading spaces always stay.
    """
    if vr != "UI":
        return text.rstrip(" ")
    text = text.rstrip(" \x00")
    if " " not in text:
        return text
    if "\\" in text:
        return "\\".join([v.strip(" ") for v in text.split("\\")])
    return text.strip(" ")


def normalize_text(text: str, vr: str) -> str:
    """The ``/tags`` string of a decoded value: DCMTK's stored value, up to a NUL."""
    text = stored_text(text, vr)
    return text.split("\x00", 1)[0] if "\x00" in text else text


def _plain(raw: bytes) -> bool:
    """Even, ASCII, no NUL, no escape: nothing to do but strip trailing spaces."""
    # int membership is a memchr; a bytes needle would go through a slower search
    return not len(raw) & 1 and raw.isascii() and not (0 in raw or 0x1B in raw)


def _text(elem: DataElement | RawDataElement, vr: str, encodings: Sequence[str]) -> str:
    value = elem.value
    if isinstance(value, bytes | bytearray):
        if len(value) & 1:  # DCMTK pads an odd value with a NUL when it reads it
            value = bytes(value) + b"\x00"
        return normalize_text(decode(bytes(value), vr, encodings), vr)
    if value is None:
        return ""
    if isinstance(value, str):
        return normalize_text(value, vr)
    if _is_multi(value):
        return normalize_text("\\".join([_one_text(v) for v in value]), vr)
    return normalize_text(_one_text(value), vr)


def _un_text(value: object, vr: str, encodings: Sequence[str]) -> str:
    """Text that came as UN: decoded, but only its last NUL dropped (DCMTK's padding)."""
    if not isinstance(value, bytes | bytearray):
        return _one_text(value) if value is not None else ""
    text = decode(bytes(value), vr, encodings)
    return text[:-1] if text.endswith("\x00") else text


def _one_text(value: object) -> str:
    """A converted value as it was written (``DSfloat`` keeps ``1.000000``)."""
    original = getattr(value, "original_string", None)
    return original if isinstance(original, str) else str(value)


def _is_multi(value: object) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


# ----------------------------------------------------------------------- numbers

#: VR -> (struct for one value, little endian, size, is float), for the common case.
_SINGLE = {
    vr: (struct.Struct("<" + code), size, code in "fd")
    for vr, (code, size) in NUMBER_VRS.items()
    if vr != "AT"
}


def format_numbers(raw: bytes, vr: str, little_endian: bool = True) -> str | None:
    """The Orthanc string of binary numbers, or ``None`` (Null) when there are none."""
    single = _SINGLE.get(vr)
    if single is not None and little_endian and len(raw) == single[1]:
        value = single[0].unpack(raw)[0]
        return "%.17g" % value if single[2] else str(value)  # noqa: UP031 - printf %g
    code, size = NUMBER_VRS[vr]
    count = len(raw) // size
    if count == 0:
        return None
    order = "<" if little_endian else ">"
    return _join_numbers(struct.unpack_from(f"{order}{count}{code}", raw), vr)


def _join_numbers(values: Sequence[Any], vr: str) -> str:
    if vr == "AT":  # Orthanc shows the first tag only
        return f"{values[0]:04x},{values[1]:04x}" if len(values) > 1 else f"{values[0]:04x}"
    if vr == "FL" or vr == "FD":
        return "\\".join(["%.17g" % v for v in values])  # noqa: UP031 - printf %g
    return "\\".join(map(str, values))


def _numbers(elem: DataElement | RawDataElement, vr: str) -> str | None:
    value = elem.value
    if isinstance(value, bytes):
        return format_numbers(value, vr, getattr(elem, "is_little_endian", True) is not False)
    if value is None or value == "":
        return None
    values = list(value) if _is_multi(value) else [value]
    if not values:
        return None
    if vr == "AT":
        first = int(values[0])
        return f"{first >> 16:04x},{first & 0xFFFF:04x}"
    return _join_numbers(values, vr)


# ----------------------------------------------------------------------- walking


class _Level:
    """What rendering one dataset (the top level or a sequence item) needs."""

    __slots__ = ("ds", "encodings", "pixel_rep", "creators")

    def __init__(self, ds: Dataset, encodings: tuple[str, ...], pixel_rep: int) -> None:
        self.ds = ds
        self.encodings = encodings
        self.pixel_rep = pixel_rep
        self.creators: dict[int, str | None] = {}

    def creator(self, tag: int) -> str | None:
        """The private creator that reserved the block of ``tag`` in this dataset."""
        ctag = (tag & 0xFFFF0000) | ((tag >> 8) & 0xFF)
        if ctag not in self.creators:
            elem = self.ds._dict.get(ctag)  # noqa: SLF001 - no conversion needed
            # a creator written as UN reserves nothing for DCMTK, hence for Orthanc
            known = elem is not None and elem.VR != "UN"
            self.creators[ctag] = (_text(elem, "LO", self.encodings) or None) if known else None
        return self.creators[ctag]

    def child(self, item: Dataset) -> _Level:
        """Items use their parent's character sets unless they declare their own."""
        encodings = self.encodings
        own = item._dict.get(SPECIFIC_CHARACTER_SET)  # noqa: SLF001
        if own is not None and own.value:
            terms = _text(own, "CS", ("ascii",))
            if terms:
                encodings = python_encodings(tuple(t.strip() for t in terms.split("\\")))
        return _Level(item, encodings, self.pixel_rep)


def _identify_private(tag: int, level: _Level) -> tuple[str, str, str | None]:
    """(name, dictionary VR, creator) of a tag in an odd group."""
    element = tag & 0xFFFF
    if element >= 0x1000:
        ctag = (tag & 0xFFFF0000) | (element >> 8)
        creators = level.creators
        creator = creators[ctag] if ctag in creators else level.creator(tag)
        if creator is not None:
            name, vr = _private_cache.get((tag, creator)) or private_entry(tag, creator)
            return name, vr, creator
    elif element == 0:
        return GROUP_LENGTH_NAMES[1], "UL", None
    elif 0x0010 <= element <= 0x00FF:
        return PRIVATE_CREATOR_NAME, "LO", None
    return UNKNOWN_NAME, "UN", None


def _undefined_length(elem: DataElement | RawDataElement) -> bool:
    if type(elem) is RawDataElement:
        return elem.length == UNDEFINED_LENGTH
    return bool(getattr(elem, "is_undefined_length", False))


def resolve_vr(elem: DataElement | RawDataElement, dict_vr: str, pixel_rep: int) -> str:
    """The VR Orthanc reads an element with: the file's, else the dictionary's."""
    vr = elem.VR
    if vr is None or vr == "UN":
        if _undefined_length(elem):
            return "SQ"  # DCMTK, like pydicom, parses an undefined-length UN as a sequence
        vr = dict_vr
    if " or " in vr:  # ambiguous in the dictionary
        if "SQ" in vr:
            return "SQ"
        if "OW" in vr or "OB" in vr:
            return "OW"
        return "SS" if pixel_rep == 1 and "SS" in vr else "US"
    return vr


def element_vr(ds: Dataset, tag: int, elem: DataElement | RawDataElement) -> str:
    """The VR Orthanc reads an element of ``ds`` with; an explicit UN stays UN."""
    if elem.VR == "UN" and not _undefined_length(elem):
        return "UN"
    if tag & 0x10000:
        dict_vr = _identify_private(tag, _Level(ds, ("latin_1",), 0))[1]
    else:
        dict_vr = public_entry(tag)[1]
    return resolve_vr(elem, dict_vr, 0)


def _walk(
    level: _Level,
    opts: Options,
    top: bool,
    only: list[tuple[int, DataElement | RawDataElement]] | None = None,
) -> list[Entry]:
    ds = level.ds
    items = ds._dict  # noqa: SLF001 - raw elements, unconverted
    encodings = level.encodings
    limit = opts.max_length
    quick = limit // 4 if limit is not None else 0  # below this, no UTF-8 check needed
    stop = PIXEL_DATA if top and not opts.whole else 0xFFFFFFFF
    out: list[Entry] = []
    append = out.append
    # int keys: pydicom's BaseTag compares in Python, which would dominate the sort
    pairs = only if only is not None else zip(map(int, items), items.values(), strict=True)
    for tag, elem in sorted(pairs):
        if tag > stop:
            break
        if tag & 0x10000:
            name, dict_vr, creator = _identify_private(tag, level)
            un_stays = creator is not None or name == UNKNOWN_NAME
        else:
            name, dict_vr = _public_cache.get(tag) or public_entry(tag)
            creator = None
            un_stays = False
        vr = elem.VR
        value: str | None = None
        if vr == "UN" and not _undefined_length(elem):
            # explicit UN: the text of a public tag is shown raw, anything else is binary
            if not un_stays and dict_vr in STRING_VRS:
                value = _un_text(_loaded(ds, tag, elem).value, dict_vr, encodings)
        else:
            if vr is None or vr == "UN" or " or " in vr:
                vr = resolve_vr(elem, dict_vr, level.pixel_rep)
            if vr in STRING_VRS:
                elem = _loaded(ds, tag, elem)
                raw = elem.value
                if vr != "UI" and type(raw) is bytes and _plain(raw):
                    value = raw.decode("ascii").rstrip(" ")  # the common case, inlined
                else:
                    value = _text(elem, vr, encodings)
            elif vr in NUMBER_VRS:
                elem = _loaded(ds, tag, elem)
                raw = elem.value
                if type(raw) is bytes and type(elem) is RawDataElement:
                    value = format_numbers(raw, vr, elem.is_little_endian)
                else:
                    value = _numbers(elem, vr)
            elif vr == "SQ":
                if type(elem) is RawDataElement:
                    elem = ds[tag]  # pydicom parses the items
                seq = elem.value if isinstance(elem.value, DicomSequence) else ()
                items_out = [_walk(level.child(item), opts, False) for item in seq]
                append((tag, name, creator, "Sequence", items_out))
                continue
        if value is None:  # binary (a deferred value is not even read) or no number
            if not opts.skip_binary:
                append((tag, name, creator, "Null", None))
        elif (
            limit is not None
            and len(value) > quick
            and (len(value) > limit or len(value.encode()) > limit)
            and tag not in opts.ignore_length
        ):
            append((tag, name, creator, "TooLong", None))
        else:
            append((tag, name, creator, "String", value))
    return out


def _loaded(
    ds: Dataset, tag: int, elem: DataElement | RawDataElement
) -> DataElement | RawDataElement:
    """The element with its value read, when pydicom deferred reading it."""
    if type(elem) is RawDataElement and elem.value is None and elem.length:
        return ds[tag]
    return elem


def _top(ds: Dataset, charsets: Sequence[str]) -> _Level:
    rep = ds._dict.get(PIXEL_REPRESENTATION)  # noqa: SLF001
    text = _numbers(rep, "US") if rep is not None else None
    return _Level(ds, python_encodings(tuple(charsets)), 1 if text and text[:1] == "1" else 0)


# -------------------------------------------------------------------- formatting


def _full(entries: list[Entry]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for tag, name, creator, kind, value in entries:
        if kind == "Sequence":
            value = [_full(item) for item in value]
        if creator is None:
            result[_key_cache.get(tag) or tag_key(tag)] = {
                "Name": name,
                "Type": kind,
                "Value": value,
            }
        else:
            result[_key_cache.get(tag) or tag_key(tag)] = {
                "Name": name,
                "PrivateCreator": creator,
                "Type": kind,
                "Value": value,
            }
    return result


def _simplified(entries: list[Entry]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for _tag, name, _creator, kind, value in entries:
        # the later tag wins when two share a name, as in Orthanc
        result[name] = [_simplified(item) for item in value] if kind == "Sequence" else value
    return dict(sorted(result.items()))  # Orthanc's JSON writer sorts object keys


def _short(entries: list[Entry]) -> dict[str, Any]:
    return {
        _key_cache.get(tag) or tag_key(tag): [_short(i) for i in value]
        if kind == "Sequence"
        else value
        for tag, _name, _creator, kind, value in entries
    }


_FORMATTERS = {"full": _full, "simplify": _simplified, "short": _short}


def render_tags(
    ds: Dataset,
    charsets: Sequence[str],
    fmt: TagFormat = "full",
    max_length: int | None = DEFAULT_MAX_LENGTH,
    *,
    ignore_length: Collection[int] = (),
    whole: bool = False,
) -> dict[str, Any]:
    """``/instances/{id}/tags`` in one of its three formats (see the module docstring).

    ``charsets``: DICOM terms, as ``values.dataset_charsets`` gives them (it applies
    ``DefaultEncoding``). ``max_length=None`` lifts the limit, ``ignore_length`` lifts
    it for some tags (``?ignore-length=``), ``whole`` keeps the top-level tags that
    follow Pixel Data (Orthanc 1.12 ``?whole``).
    """
    opts = Options(max_length, frozenset(ignore_length), whole)
    return _FORMATTERS[fmt](_walk(_top(ds, charsets), opts, True))


def full_tags(
    ds: Dataset,
    charsets: Sequence[str],
    max_length: int | None = DEFAULT_MAX_LENGTH,
    *,
    ignore_length: Collection[int] = (),
    whole: bool = False,
) -> dict[str, Any]:
    """``GET /instances/{id}/tags``: ``{"gggg,eeee": {"Name", ["PrivateCreator"], "Type", "Value"}}``."""
    return render_tags(ds, charsets, "full", max_length, ignore_length=ignore_length, whole=whole)


def simplified_tags(
    ds: Dataset,
    charsets: Sequence[str],
    max_length: int | None = DEFAULT_MAX_LENGTH,
    *,
    ignore_length: Collection[int] = (),
    whole: bool = False,
) -> dict[str, Any]:
    """``/simplified-tags`` and ``/tags?simplify``: name -> string, list of items or null."""
    return render_tags(
        ds, charsets, "simplify", max_length, ignore_length=ignore_length, whole=whole
    )


def short_tags(
    ds: Dataset,
    charsets: Sequence[str],
    max_length: int | None = DEFAULT_MAX_LENGTH,
    *,
    ignore_length: Collection[int] = (),
    whole: bool = False,
) -> dict[str, Any]:
    """``/tags?short``: ``gggg,eeee`` -> string, list of items or null."""
    return render_tags(ds, charsets, "short", max_length, ignore_length=ignore_length, whole=whole)


def tag_value(
    ds: Dataset, tag: int, charsets: Sequence[str], max_length: int | None = None
) -> str | None:
    """The ``/tags`` string of one element of ``ds``; ``None`` if absent, Null,
    TooLong or a sequence. Main DICOM tags taken from here agree with ``/tags``.
    """
    elem = ds._dict.get(tag)  # noqa: SLF001
    if elem is None:
        return None
    opts = Options(max_length, frozenset(), True)
    entries = _walk(_top(ds, charsets), opts, False, [(tag, elem)])
    return entries[0][4] if entries and entries[0][3] == "String" else None


def header_tags(
    file_meta: Dataset | None, fmt: TagFormat = "full", max_length: int | None = DEFAULT_MAX_LENGTH
) -> dict[str, Any]:
    """``GET /instances/{id}/header``: the file meta group as the file holds it.

    Unlike ``/tags``, Orthanc leaves binary elements out here (no
    ``FileMetaInformationVersion``); the group length is shown.
    """
    if file_meta is None:
        return {}
    opts = Options(max_length, frozenset(), True, skip_binary=True)
    return _FORMATTERS[fmt](_walk(_Level(file_meta, ("ascii",), 0), opts, False))
