"""C-FIND identifiers as the JSON tables that Orthanc's query filters see, and back.

Orthanc hands a C-FIND query to ``IncomingFindRequestFilter`` and friends as a table
``{"gggg,eeee": "value"}`` (sequences as lists of such tables) and builds the query
it answers from whatever table the filter returns. A filter may add a key, blank
it, or drop it; a returned key may also be a tag keyword (``"PatientID"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.valuerep import PersonName

from .values import element_string

_INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})


def tag_key(tag: int) -> str:
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def parse_key(key: str) -> int | None:
    """``"0010,0020"``, ``"00100020"`` or a keyword as a tag; ``None`` if unknown."""
    text = key.strip()
    hexa = text.replace(",", "").replace("(", "").replace(")", "")
    if len(hexa) == 8:
        try:
            return int(hexa, 16)
        except ValueError:
            pass
    return tag_for_keyword(text)


def _text(elem: DataElement, charsets: Sequence[str]) -> str:
    value = elem.value
    if isinstance(value, PersonName):
        return str(value).rstrip(" \x00")
    if isinstance(value, MultiValue) and value and isinstance(value[0], PersonName):
        return "\\".join(str(v) for v in value).rstrip(" \x00")
    if value is None or value == "" or value == b"":
        return ""
    text = element_string(elem, charsets)
    if text is None:
        return "\\".join(str(v) for v in value) if isinstance(value, MultiValue) else str(value)
    return text


def dataset_to_query(ds: Dataset, charsets: Sequence[str]) -> dict[str, Any]:
    """The filter's view of an identifier (group lengths left out, as Orthanc does)."""
    query: dict[str, Any] = {}
    for elem in ds:
        if elem.tag.element == 0 or elem.tag.group == 0x0002:
            continue
        if elem.VR == "SQ":
            query[tag_key(int(elem.tag))] = [
                dataset_to_query(item, charsets) for item in elem.value
            ]
        else:
            query[tag_key(int(elem.tag))] = _text(elem, charsets)
    return query


def _vr(tag: int, original: Dataset | None) -> str:
    if original is not None and tag in original:
        vr = original[tag].VR
        if vr and vr != "UN":
            return str(vr)
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "LO"  # a private or unknown key: carried as text


def _value(vr: str, value: Any) -> Any:
    if value is None:
        return None
    text = str(value).strip() if not isinstance(value, bool) else ("1" if value else "0")
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if text == "":
        return None
    parts = text.split("\\")
    if vr in _INTEGER_VRS | _FLOAT_VRS:
        cast = int if vr in _INTEGER_VRS else float
        try:
            numbers = [cast(float(p)) if cast is int else cast(p) for p in parts if p.strip()]
        except ValueError:
            return None
        return numbers[0] if len(numbers) == 1 else numbers
    return parts[0] if len(parts) == 1 else parts


def query_to_dataset(query: Mapping[str, Any], original: Dataset | None = None) -> Dataset:
    """The identifier for a filter's answer; VRs come from ``original`` when it has
    the key, else from the dictionary. Keys that are not tags are skipped."""
    ds = Dataset()
    for key, value in query.items():
        tag = parse_key(str(key))
        if tag is None:
            continue
        vr = _vr(tag, original)
        if vr == "SQ" or isinstance(value, list | tuple):
            template = None
            if original is not None and tag in original and original[tag].VR == "SQ":
                items = original[tag].value
                template = items[0] if items else None
            entries = value if isinstance(value, list | tuple) else []
            ds.add(
                DataElement(
                    tag,
                    "SQ",
                    DicomSequence(
                        [
                            query_to_dataset(item, template)
                            for item in entries
                            if isinstance(item, Mapping)
                        ]
                    ),
                )
            )
            continue
        ds.add(DataElement(tag, vr, _value(vr, value)))
    return ds


__all__ = ["dataset_to_query", "parse_key", "query_to_dataset", "tag_key"]
