"""PS3.15 E.3.5, the Clean Descriptors Option: free-text descriptors are kept, but
every identifying value that the same dataset carries elsewhere is cut out of them.

The standard asks to "replace with values of similar meaning known not to contain
identifying information". Understanding free text is out of reach of a rule, so the
cleaning here is deliberately mechanical and deterministic: the identifying values
are the ones the anonymization hides anyway (the attributes it removes, empties,
replaces or gives new UIDs, and every person name), and each occurrence of one of
them, or of a usual printed form of it, inside a descriptor becomes ``***``. What the
dataset does not carry (a name that appears only in the free text, a nickname, an
address typed by hand) cannot be found and stays: ``docs/anonymization.md`` lists
exactly what is and is not caught.

The attributes cleaned are the ``C`` entries of the Clean Descriptors column of
PS3.15 Table E.1-1, kept as data in ``data/clean_descriptors.tsv``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache, lru_cache
from importlib import resources

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

REDACTED = "***"
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020

#: Descriptor VRs whose text is cleaned; a coded descriptor (CS: a defined term such as
#: Reason for the Attribute Modification) carries no free text and is kept as it is; a
#: descriptor of another VR (binary, e.g. the EXIF Maker Note) cannot be read as text
#: and is removed instead.
TEXT_VRS = frozenset(("LO", "SH", "ST", "LT", "UT", "UC"))
CODE_VRS = frozenset(("CS",))
#: Inside a descriptor that is a sequence (a code sequence, Request Attributes): the
#: free-text VRs are cleaned, codes (SH, CS) are left as they are.
NESTED_TEXT_VRS = frozenset(("LO", "ST", "LT", "UT", "UC"))
#: The longest value each VR allows (PS3.5 6.2); a cleaned value never exceeds it.
MAX_LENGTH = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240}
#: The VRs whose values, in an attribute the anonymization hides, are searched for.
_LITERAL_VRS = frozenset(("LO", "SH", "AE", "UI", "UC"))
#: Shorter identifying values are not searched for (they would match common words).
MIN_LITERAL = 3
MIN_NAME_PART = 2
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")
_MONTHS += ("September", "October", "November", "December")


@cache
def descriptor_tags() -> frozenset[int]:
    """The attributes of the Clean Descriptors column (read once from the data file)."""
    text = resources.files(__package__).joinpath("data/clean_descriptors.tsv").read_text()
    tags = set()
    for line in text.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            tags.add(int(fields[0].replace(",", ""), 16))
    return frozenset(tags)


# ---- what is identifying ---------------------------------------------------------------
def _strings(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None or isinstance(value, bytes | bytearray):
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _literal(value: str) -> str | None:
    """The pattern of one identifying value, or None when it is too short to search."""
    value = value.strip()
    if len(value) < MIN_LITERAL:
        return None
    words = [re.escape(w) for w in value.split()]
    return r"\s+".join(words)


def _name_patterns(value: str) -> list[str]:
    """A person name as written (``Doe^John``) and each of its family, given and
    middle name parts (prefixes and suffixes such as ``Dr`` are not identifying)."""
    found = [p for p in [_literal(value)] if p]
    for group in value.split("="):
        parts = group.split("^")
        for part in parts[:3]:
            part = part.strip()
            if len(part) >= MIN_NAME_PART:
                found.append(r"\s+".join(re.escape(w) for w in part.split()))
            words = part.split()
            if len(words) > 1:
                found.extend(re.escape(w) for w in words if len(w) >= MIN_LITERAL)
    return found


def _date_patterns(value: str) -> list[str]:
    """``YYYYMMDD`` and the usual ways of printing it: numeric with ``-``, ``/`` or
    ``.`` in year-month-day, day-month-year and month-day-year order (with or without
    leading zeros, two-digit years in the last two), and English month names."""
    digits = value.strip()[:8]
    if len(digits) != 8 or not digits.isdigit():
        return []
    y, m, d = digits[:4], int(digits[4:6]), int(digits[6:8])
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return []
    mm, dd = rf"0?{m}", rf"0?{d}"
    years = rf"(?:{y}|{y[2:]})"
    sep = r"[-/. ]"
    month = _MONTHS[m - 1]
    month_names = rf"(?:{month}|{month[:3]}\.?)"
    ordinal = r"(?:st|nd|rd|th)?"
    return [
        digits,
        rf"{y}{sep}{mm}{sep}{dd}",
        rf"{dd}{sep}{mm}{sep}{years}",
        rf"{mm}{sep}{dd}{sep}{years}",
        rf"{dd}{ordinal}\s+(?:of\s+)?{month_names},?\s+{y}",
        rf"{month_names}\s+{dd}{ordinal},?\s+{y}",
    ]


def identifying_patterns(
    ds: Dataset, hidden: Callable[[int], bool], kept: Callable[[int], bool]
) -> list[str]:
    """The patterns of the identifying values ``ds`` carries, at any depth.

    ``hidden(tag)``: the anonymization removes, empties, replaces or remaps ``tag``.
    ``kept(tag)``: the user or an option keeps ``tag`` (its value is not secret then).
    Person names count wherever they are, unless kept; descriptors are not sources.
    """
    patterns: set[str] = set()
    for elem in _sources(ds, hidden, kept, descriptor_tags()):
        if elem.VR == "PN":
            for value in _strings(elem):
                patterns.update(_name_patterns(value))
        elif elem.VR in _LITERAL_VRS:
            patterns.update(p for p in map(_literal, _strings(elem)) if p)
        elif elem.VR in ("DA", "DT"):
            for value in _strings(elem):
                patterns.update(_date_patterns(value))
    return sorted(patterns, key=lambda p: (-len(p), p))


def _sources(
    ds: Dataset, hidden: Callable[[int], bool], kept: Callable[[int], bool], skip: frozenset
) -> Iterator[DataElement]:
    """The elements whose values are searched for, at any depth; only those (and the
    sequences) are decoded, the rest of the header is left as read."""
    for key in list(ds.keys()):
        tag = int(key)
        vr = _vr(ds, tag)
        if vr == "SQ":  # nested identifiers count, also inside a descriptor sequence
            for item in ds[tag].value or []:
                yield from _sources(item, hidden, kept, skip)
        elif tag in skip or kept(tag):
            continue
        elif vr == "PN" or hidden(tag):
            yield ds[tag]


def _vr(ds: Dataset, tag: int) -> str:
    """The VR, without decoding the element when the file states it."""
    return ds.get_item(tag).VR or ds[tag].VR


# ---- cleaning -----------------------------------------------------------------------------
def compile_patterns(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern; a match may not start or end inside a word."""
    return _compiled(tuple(patterns))


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """The instances of one study carry the same values: compile them once."""
    if not patterns:
        return None
    return re.compile(
        r"(?<![0-9A-Za-z])(?:" + "|".join(patterns) + r")(?![0-9A-Za-z])", re.IGNORECASE
    )


def clean_text(text: str, pattern: re.Pattern[str] | None, vr: str = "UT") -> str:
    """``text`` with every identifying value replaced by ``***`` (clipped to the VR)."""
    if pattern is None or not text:
        return text
    cleaned = pattern.sub(REDACTED, text)
    limit = MAX_LENGTH.get(vr)
    return cleaned[:limit] if limit is not None else cleaned


def _clean_element(elem: DataElement, pattern: re.Pattern[str] | None, vrs: frozenset) -> None:
    if elem.VR not in vrs or elem.value is None:
        return
    if isinstance(elem.value, MultiValue | list):
        elem.value = [clean_text(str(v), pattern, elem.VR) for v in elem.value]
    elif isinstance(elem.value, str):
        elem.value = clean_text(elem.value, pattern, elem.VR)


def _clean_item(item: Dataset, pattern: re.Pattern[str] | None) -> None:
    for elem in item:
        if elem.VR == "SQ":
            for sub in elem.value or []:
                _clean_item(sub, pattern)
        else:
            _clean_element(elem, pattern, NESTED_TEXT_VRS)


def clean_descriptors(
    ds: Dataset,
    tags: Iterable[int],
    hidden: Callable[[int], bool],
    kept: Callable[[int], bool],
) -> None:
    """Clean, in place and at any depth, the descriptors ``tags`` of ``ds``; a
    descriptor whose VR is not text is removed. Must run before the anonymization
    removes the identifying values it looks for."""
    chosen = frozenset(tags)
    if not chosen:
        return
    pattern = compile_patterns(identifying_patterns(ds, hidden, kept))
    _clean_dataset(ds, chosen, pattern)


def _clean_dataset(ds: Dataset, tags: frozenset[int], pattern: re.Pattern[str] | None) -> None:
    for tag in [int(t) for t in list(ds.keys())]:
        if tag in tags:
            elem = ds[tag]
            if elem.VR == "SQ":
                for item in elem.value or []:
                    _clean_item(item, pattern)
            elif elem.VR in TEXT_VRS:
                _clean_element(elem, pattern, TEXT_VRS)
            elif elem.VR not in CODE_VRS:
                del ds[tag]
        elif _vr(ds, tag) == "SQ":
            for item in ds[tag].value or []:
                _clean_dataset(item, tags, pattern)
