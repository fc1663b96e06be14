"""Turning raw DICOM element values into the strings Orthanc shows.

Orthanc renders a string-like element as its decoded text (the file's
SpecificCharacterSet, or ``DefaultEncoding`` when it has none), with the values of
a multi-valued element joined by backslashes and the DICOM padding removed. Reading
the raw bytes keeps numbers exactly as written (``1.000000`` stays ``1.000000``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: VRs whose values are text in the file's character set.
TEXT_VRS = frozenset({"SH", "LO", "ST", "PN", "LT", "UC", "UT"})
#: VRs whose values are plain ASCII text.
ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"})
STRING_VRS = TEXT_VRS | ASCII_VRS

#: The byte that starts an ISO 2022 escape sequence, as an integer: ``ESCAPE in data``
#: is then one ``memchr``, where ``b"\x1b" in data`` first fails to read its operand
#: as an integer, and builds and drops a ``TypeError`` for it (a few % of a small
#: upload, which tests each text value it indexes).
ESCAPE = 0x1B
#: Binary integer VRs and their ``struct`` codes.
INTEGER_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}

#: Orthanc's name for each value of ``DefaultEncoding`` -> Python codec.
ENCODINGS: dict[str, str] = {
    "Ascii": "ascii",
    "Utf8": "utf-8",
    "Latin1": "latin_1",
    "Latin2": "iso8859_2",
    "Latin3": "iso8859_3",
    "Latin4": "iso8859_4",
    "Latin5": "iso8859_9",
    "Cyrillic": "iso8859_5",
    "Windows1251": "cp1251",
    "Arabic": "iso8859_6",
    "Greek": "iso8859_7",
    "Hebrew": "iso8859_8",
    "Thai": "iso8859_11",
    "Japanese": "shift_jis",
    "Chinese": "gb18030",
    "Korean": "euc_kr",
    "JapaneseKanji": "iso2022_jp",
    "SimplifiedChinese": "gb2312",
}

_ENCODING_NAMES = {name.upper(): name for name in ENCODINGS}


def canonical_encoding(name: str) -> str | None:
    """Orthanc's spelling of the encoding ``name``, whatever its case (``utf8`` is
    ``Utf8``, as Orthanc reads it); ``None`` for an unknown one."""
    return _ENCODING_NAMES.get(name.strip().upper())


#: Orthanc's ``DefaultEncoding`` name -> the DICOM SpecificCharacterSet term.
ENCODING_TERMS: dict[str, str] = {
    "Ascii": "ISO_IR 6",
    "Utf8": "ISO_IR 192",
    "Latin1": "ISO_IR 100",
    "Latin2": "ISO_IR 101",
    "Latin3": "ISO_IR 109",
    "Latin4": "ISO_IR 110",
    "Latin5": "ISO_IR 148",
    "Cyrillic": "ISO_IR 144",
    "Arabic": "ISO_IR 127",
    "Greek": "ISO_IR 126",
    "Hebrew": "ISO_IR 138",
    "Thai": "ISO_IR 166",
    "Japanese": "ISO_IR 13",
    "Chinese": "GB18030",
    "Korean": "ISO 2022 IR 149",
    "JapaneseKanji": "ISO 2022 IR 87",
    "SimplifiedChinese": "GBK",
}


def dataset_charsets(ds: Dataset, default_encoding: str = "Latin1") -> list[str]:
    """The character sets to decode ``ds`` with, falling back to ``DefaultEncoding``."""
    raw = ds.get_item(0x00080005)
    if raw is not None and raw.value:
        value = raw.value
        if isinstance(value, bytes):
            terms = [t.strip() for t in value.decode("ascii", "replace").split("\\")]
        elif isinstance(value, str):
            terms = [value.strip()]
        else:
            terms = [str(t).strip() for t in value]
        terms = [t or "ISO_IR 6" for t in terms]
        if any(terms):
            return terms
    return [ENCODING_TERMS.get(default_encoding, "ISO_IR 100")]


def strip_padding(text: str) -> str:
    return text.rstrip(" \x00")


def decode_text(raw: bytes, vr: str, charsets: Sequence[str]) -> str:
    # Plain ASCII without escape sequences reads the same in every character set
    # DICOM allows (ISO 2022 switches only on ESC), and it is what most values are.
    if vr not in TEXT_VRS or (raw.isascii() and ESCAPE not in raw):
        return raw.decode("ascii", "replace").rstrip(" \x00")
    try:
        # decode_bytes wants Python codecs, not the DICOM terms of (0008,0005)
        encodings = _codecs(tuple(charsets))
        text = decode_bytes(raw, list(encodings), {"^", "="} if vr == "PN" else set())
    except Exception:  # undecodable bytes: show what can be shown
        text = raw.decode("latin_1")
    return strip_padding(text)


@lru_cache(maxsize=64)
def _codecs(charsets: tuple[str, ...]) -> tuple[str, ...]:
    """Python codecs of the DICOM terms (pydicom's conversion, once per combination)."""
    return tuple(convert_encodings(list(charsets) or ["ISO_IR 6"]))


def element_string(elem: DataElement | RawDataElement, charsets: Sequence[str]) -> str | None:
    """The Orthanc string for a string-like element; ``None`` if it is not string-like."""
    vr = elem.VR or _dictionary_vr(elem.tag)  # implicit VR files carry no VR
    value = elem.value
    if vr in INTEGER_VRS:  # e.g. NumberOfSlices (US): Orthanc shows "2"
        return _integers(elem, vr)
    if isinstance(elem, RawDataElement) or isinstance(value, bytes):
        if vr not in STRING_VRS:
            return None
        return decode_text(value or b"", vr, charsets)
    if vr not in STRING_VRS:
        return None
    if value is None:
        return ""
    if isinstance(value, str):
        return strip_padding(value)
    if isinstance(value, list | tuple | MultiValue):  # not PersonName: it iterates characters
        return strip_padding("\\".join(_one(v) for v in value))
    return strip_padding(_one(value))


def _dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]  # "US or SS": the usual reading
    except KeyError:  # private or unknown tag
        return "UN"


def _integers(elem: DataElement | RawDataElement, vr: str) -> str | None:
    value = elem.value
    if value is None or value == b"":
        return ""
    if isinstance(value, bytes):
        code = INTEGER_VRS[vr]
        count = len(value) // struct.calcsize(code)
        if count == 0:
            return None
        order = "<" if getattr(elem, "is_little_endian", True) else ">"
        value = struct.unpack(f"{order}{count}{code}", value[: count * struct.calcsize(code)])
    if isinstance(value, int):
        return str(value)
    try:
        return "\\".join(str(int(v)) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None


def _one(value: object) -> str:
    original = getattr(value, "original_string", None)
    if original is not None:
        return str(original)
    return str(value)
