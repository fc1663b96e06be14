"""Elements encoded once, for datasets that are built only to be written (C-FIND answers).

pydicom checks and converts every value given to a ``DataElement`` (a regular
expression per VR, ``IS``/``DS``/``PersonName`` objects), and writing the dataset turns
each value back into bytes; for a C-FIND answer, built from index strings just to be
sent, that round trip was most of the cost of an answer. ``encoded_value`` turns the
string straight into the bytes pydicom's writer produces for it, and ``raw_element``
wraps them in a ``RawDataElement``, which the writer copies as it is when the dataset
says it was "read" with the transfer syntax and character set it is written with
(``mark_encoding``). When they differ (a peer that negotiated another syntax), pydicom
decodes the raw elements first: the bytes on the wire are still right, only slower.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from pydicom.charset import encode_string
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import PersonName

#: Charset-dependent text VRs (pydicom's ``write_text``); PN is apart.
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UC", "UT"})
#: VRs pydicom writes as plain ISO 8859 strings padded with a space.
ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "IS", "DS", "UR"})
#: Binary numbers: their ``struct`` code and the Python type their text converts to.
NUMBER_VRS: dict[str, tuple[str, type]] = {
    "US": ("H", int),
    "SS": ("h", int),
    "UL": ("L", int),
    "SL": ("l", int),
    "UV": ("Q", int),
    "SV": ("q", int),
    "FL": ("f", float),
    "FD": ("d", float),
}
ENCODED_VRS = TEXT_VRS | ASCII_VRS | NUMBER_VRS.keys() | {"PN", "UI"}


def encoded_value(
    vr: str, text: str, encodings: Sequence[str], little_endian: bool = True
) -> bytes | None:
    """The value bytes pydicom writes for ``text`` (Orthanc's string form, values
    separated by backslashes) as ``vr``, padded to an even length. ``encodings`` are
    Python codecs (``pydicom.charset.convert_encodings``). ``None`` for a VR this
    module does not encode (sequences, binary and tag values): build a ``DataElement``.
    Numbers that do not parse or fit give an empty value, as no value is better
    than a failed answer."""
    if vr not in ENCODED_VRS:
        return None
    if not text:
        return b""
    if vr in TEXT_VRS:
        data = b"\\".join(encode_string(v, list(encodings)) for v in text.split("\\"))
    elif vr == "PN":
        data = b"\\".join(PersonName(v).encode(list(encodings)) for v in text.split("\\"))
    elif vr in ASCII_VRS:
        data = text.encode("latin_1", "replace")
    elif vr == "UI":
        data = text.encode("latin_1", "replace")
        return data + b"\0" if len(data) % 2 else data
    else:
        code, cast = NUMBER_VRS[vr]
        try:
            numbers = [cast(v) for v in text.split("\\") if v.strip()]
            return struct.pack(f"{'<' if little_endian else '>'}{len(numbers)}{code}", *numbers)
        except (ValueError, struct.error):
            return b""
    return data + b" " if len(data) % 2 else data


def raw_element(
    tag: int, vr: str, value: bytes, implicit_vr: bool, little_endian: bool
) -> RawDataElement:
    """An element whose value is already encoded; ``vr`` is kept even for an implicit
    VR syntax, so that pydicom never has to look it up."""
    return RawDataElement(
        BaseTag(tag), vr, len(value), value, 0, implicit_vr, little_endian, True, False
    )


def mark_encoding(
    ds: Dataset, implicit_vr: bool, little_endian: bool, encodings: Sequence[str]
) -> None:
    """Declare ``ds`` as read with this syntax and character set, so that writing it
    with the same ones copies its raw elements instead of decoding them."""
    ds.set_original_encoding(implicit_vr, little_endian, list(encodings))


__all__ = ["encoded_value", "mark_encoding", "raw_element"]
