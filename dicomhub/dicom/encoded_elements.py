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

``IdentifierWriter`` goes one step further for answers sent as bytes (C-FIND pending
responses written straight to the association): the whole data set is written here,
each element's header packed once per request, so an answer costs its values only.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from pydicom.charset import encode_string
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, PersonName

from .encodable import encodable_text

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
    than a failed answer. Characters the character set cannot hold are left out, as
    Orthanc leaves them out (pydicom would write question marks): a Cyrillic name in
    a Latin-1 answer keeps its Latin part only."""
    if vr not in ENCODED_VRS:
        return None
    if not text:
        return b""
    if not text.isascii():  # what the character set cannot hold is left out, as Orthanc
        text = encodable_text(text, encodings if vr in _CHARSET_VRS else ("latin_1",))
    if vr in _CHARSET_VRS and text.isascii() and (vr != "PN" or "=" not in text):
        # ASCII is the same bytes in every DICOM character set (ISO 2022 included:
        # it starts in ASCII and needs no escape for it), as pydicom writes it; a
        # name with component groups is left to ``PersonName`` (it drops empty ones)
        data = text.encode("ascii")
    elif vr in TEXT_VRS:
        data = b"\\".join(encode_string(v, list(encodings)) for v in text.split("\\"))
    elif vr == "PN":
        data = b"\\".join(PersonName(v).encode(list(encodings)) for v in text.split("\\"))
    elif vr in ASCII_VRS:
        data = text.encode("latin_1")
    elif vr == "UI":
        data = text.encode("latin_1")
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


class IdentifierWriter:
    """Writes data sets of one fixed list of elements (the answers to one C-FIND) in
    one transfer syntax, with the bytes pydicom's writer gives for the same elements.

    ``keys`` are (tag, VR) pairs; ``write`` takes each tag's text (Orthanc's string
    form; missing or empty: an empty element) and returns the encoded data set, or
    ``None`` when an element needs pydicom (a value of a VR ``encoded_value`` leaves
    out, or too long for a 16-bit length) and the caller must build a ``Dataset``.
    Each element's header but its length is packed once here, in tag order.
    """

    def __init__(
        self,
        keys: Sequence[tuple[int, str]],
        encodings: Sequence[str],
        implicit_vr: bool,
        little_endian: bool,
    ) -> None:
        self.encodings = list(encodings)
        self.little_endian = little_endian
        order = "<" if little_endian else ">"
        tag_struct = struct.Struct(f"{order}HH")
        self._plan: list[tuple[int, str, bytes, struct.Struct, int]] = []
        for tag, vr in sorted(dict(keys).items()):
            prefix = tag_struct.pack(tag >> 16, tag & 0xFFFF)
            if implicit_vr:
                length, limit = struct.Struct(f"{order}L"), 0xFFFFFFFF
            elif vr in EXPLICIT_VR_LENGTH_32:
                prefix += vr.encode("ascii") + b"\0\0"
                length, limit = struct.Struct(f"{order}L"), 0xFFFFFFFF
            else:
                prefix += vr.encode("ascii")
                length, limit = struct.Struct(f"{order}H"), 0xFFFF
            self._plan.append((tag, vr, prefix, length, limit))

    def write(self, texts: Mapping[int, str]) -> bytes | None:
        parts: list[bytes] = []
        encodings, little = self.encodings, self.little_endian
        for tag, vr, prefix, length, limit in self._plan:
            text = texts.get(tag)
            value = encoded_value(vr, text, encodings, little) if text else b""
            if value is None or len(value) > limit:
                return None
            parts += (prefix, length.pack(len(value)), value)
        return b"".join(parts)


#: The VRs whose text pydicom encodes with the data set's character set.
_CHARSET_VRS = TEXT_VRS | {"PN"}

__all__ = ["IdentifierWriter", "encoded_value", "mark_encoding", "raw_element"]
