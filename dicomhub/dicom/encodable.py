"""Text a file's character set cannot hold is left out, as Orthanc leaves it out.

A value given in JSON (``/tools/create-dicom``, ``Replace`` of a modification) is
Unicode; the file holds it in the character set its SpecificCharacterSet names.
pydicom writes a question mark for each character that set lacks (and warns);
Orthanc drops those characters: a Greek name given for a Latin-1 file is written
without its Greek letters. The values set from JSON are cleaned here before the
file is written, so that the file says what Orthanc's would.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.charset import custom_encoders
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

_TEXT_VRS = frozenset(
    {"AE", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UT"}
)


def drop_unencodable(ds: Dataset, encodings: list[str] | None = None) -> None:
    """Removes from the Unicode values of ``ds`` (and of its sequences' items) the
    characters none of its character sets encodes. Elements still raw (as read from
    a file) are bytes already and are left alone."""
    if encodings is None:
        encodings = _codecs(ds)
    for elem in list(ds._dict.values()):  # noqa: SLF001 - raw elements stay raw
        if not isinstance(elem, DataElement):
            continue
        if elem.VR == "SQ":
            for item in elem.value or ():
                own = "SpecificCharacterSet" in item
                drop_unencodable(item, _codecs(item) if own else encodings)
        elif elem.VR in _TEXT_VRS and elem.value is not None:
            _clean_element(elem, encodings)


def _codecs(ds: Dataset) -> list[str]:
    """pydicom's codec names for ``ds`` (one name, not a list, without a
    SpecificCharacterSet)."""
    codecs = ds._character_set  # noqa: SLF001
    return [codecs] if isinstance(codecs, str) else list(codecs)


def _clean_element(elem: DataElement, encodings: list[str]) -> None:
    value = elem.value
    if isinstance(value, str | PersonName):
        text = str(value)
        cleaned = _encodable_text(text, encodings)
        if cleaned is not text:
            elem.value = cleaned
    elif isinstance(value, MultiValue | list) and any(
        isinstance(v, str | PersonName) for v in value
    ):
        texts = [str(v) for v in value]
        cleaned_texts = [_encodable_text(t, encodings) for t in texts]
        if any(c is not t for c, t in zip(cleaned_texts, texts, strict=True)):
            elem.value = cleaned_texts


def _encodable_text(text: str, encodings: Iterable[str]) -> str:
    """``text`` itself when every character encodes, else the characters that do."""
    codecs = list(encodings)
    if text.isascii() or _encodes(text, codecs):
        return text
    return "".join(char for char in text if _encodes(char, codecs))


def _encodes(text: str, codecs: list[str]) -> bool:
    for codec in codecs:
        encode = custom_encoders.get(codec)  # the JIS sets, stricter than Python's
        try:
            encode(text) if encode is not None else text.encode(codec)
        except (UnicodeError, LookupError):
            continue
        return True
    return False


def encodable_text(text: str, encodings: Iterable[str]) -> str:
    """``text`` without the characters none of ``encodings`` (pydicom's codec names,
    as ``pydicom.charset.convert_encodings`` gives them) can write: the value Orthanc
    writes for it in that character set (``text`` itself when nothing is lost)."""
    return _encodable_text(text, encodings)
