"""DICOM matching as Orthanc applies it in ``/tools/find``, compiled to portable SQL.

One parsed ``Constraint`` serves two evaluators: ``to_sql`` for tags kept in the
index (so exact values hit the ``(tag, norm)`` index and prefix wildcards become a
range on ``norm``), and ``matches`` for tags that only the files hold. Keeping both
here means the REST find, the C-FIND SCP and the explorer agree on every edge case.

Rules observed on Orthanc: an empty value is universal (no constraint); ``*`` alone
still needs the tag to be present; a ``-`` in a DA/TM/DT value is a range compared as
strings (``A-``, ``-B``, ``A-B``, and ``-`` alone matches any present value), even when
the value also holds a ``\\``; otherwise ``\\`` separates a list of exact values (no
wildcards inside a list); other values are wildcard patterns when they hold ``*`` or
``?``, else single values. Wildcards are refused (400) on VRs other than the text ones,
tags unknown to the dictionary included, and in the bounds of a range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from pydicom.datadict import dictionary_VR

from ..store.index.index import normalize
from .errors import ParameterOutOfRange


class Kind(Enum):
    EQUAL = "equal"
    WILDCARD = "wildcard"
    LIST = "list"
    RANGE = "range"


_RANGE_VRS = frozenset({"DA", "TM", "DT"})
#: The text VRs on which DICOM allows wildcards; Orthanc refuses them on others (dates,
#: times, UIDs, numbers) and on tags its dictionary does not know (private elements,
#: group lengths), and so do we.
_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})


@dataclass(frozen=True)
class Constraint:
    """One matching rule on one tag: ``values`` holds the value, the list, or (low, high)."""

    tag: int
    kind: Kind
    values: tuple[str, ...]
    case_sensitive: bool = False


def tag_vr(tag: int) -> str:
    """The VR of ``tag`` in the dictionary: ``LO`` for private creators, else ``UN``."""
    try:
        return dictionary_VR(tag)
    except KeyError:
        if (tag >> 16) & 1 and 0x0010 <= (tag & 0xFFFF) <= 0x00FF:
            return "LO"  # (gggg,0010-00ff) of an odd group: a private creator
        return "UN"


def parse_constraint(
    tag: int, value: str, case_sensitive: bool, vr: str | None = None
) -> Constraint | None:
    """The constraint for ``value`` on ``tag``, or ``None`` when it matches everything.

    ``vr`` overrides the dictionary's (metadata are matched as text, ``LO``), except
    ``UN``, which says no more than the dictionary (a query element sent as UN).
    """
    if value == "":
        return None
    if not vr or vr == "UN":
        vr = tag_vr(tag)
    wildcard = "*" in value or "?" in value
    if vr in _RANGE_VRS and "-" in value:
        # Before the list: Orthanc reads "A-\\B" as a range whose upper bound is "\\B".
        if wildcard:
            raise _wildcards_refused(tag)
        low, _, high = value.partition("-")
        if not low and not high:  # "-": no bound at all, as Orthanc reads it
            return None
        return Constraint(tag, Kind.RANGE, (low, high), case_sensitive)
    if "\\" in value:
        return Constraint(tag, Kind.LIST, tuple(value.split("\\")), case_sensitive)
    if wildcard:
        if vr not in _WILDCARD_VRS:
            raise _wildcards_refused(tag)
        return Constraint(tag, Kind.WILDCARD, (value,), case_sensitive)
    return Constraint(tag, Kind.EQUAL, (value,), case_sensitive)


def _wildcards_refused(tag: int) -> ParameterOutOfRange:
    return ParameterOutOfRange(
        f"Wildcards are not allowed on tag {tag >> 16:04x},{tag & 0xFFFF:04x}"
    )


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL)


def matches(constraint: Constraint, value: str | None) -> bool:
    """Whether a tag value (``None``: absent) satisfies ``constraint`` (for file tags)."""
    if value is None:
        return False
    if constraint.kind == Kind.RANGE:
        low, high = constraint.values
        return (not low or value >= low) and (not high or value <= high)
    fold = (lambda s: s) if constraint.case_sensitive else normalize
    candidate = fold(value)
    if constraint.kind == Kind.EQUAL:
        return candidate == fold(constraint.values[0])
    if constraint.kind == Kind.LIST:
        return any(candidate == fold(v) for v in constraint.values)
    return _wildcard_regex(fold(constraint.values[0])).fullmatch(candidate) is not None


class SqlParams:
    """Collects bound parameters under unique names while SQL is being assembled."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object) -> str:
        name = f"q{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def to_sql(constraint: Constraint, params: SqlParams, sqlite: bool) -> str:
    """A condition on the ``main_tags`` columns ``norm``/``value`` (tag not included).

    The condition always constrains ``norm`` so the ``(tag, norm)`` index serves it;
    case-sensitive matching adds a check on ``value`` that the index narrowed first.
    """
    kind, values, exact = constraint.kind, constraint.values, constraint.case_sensitive
    if kind == Kind.RANGE:
        low, high = values
        parts = []
        if low:
            parts.append(f"norm >= {params.add(normalize(low))}")
        if high:
            parts.append(f"norm <= {params.add(normalize(high))}")
        return " AND ".join(parts) or "1 = 1"
    if kind == Kind.EQUAL:
        sql = f"norm = {params.add(normalize(values[0]))}"
        return sql + (f" AND value = {params.add(values[0])}" if exact else "")
    if kind == Kind.LIST:
        norms = ", ".join(params.add(normalize(v)) for v in dict.fromkeys(values))
        sql = f"norm IN ({norms})"
        if exact:
            sql += f" AND value IN ({', '.join(params.add(v) for v in dict.fromkeys(values))})"
        return sql
    return _wildcard_sql(values[0], exact, params, sqlite)


def value_sql(constraint: Constraint, params: SqlParams, sqlite: bool) -> str:
    """A case-sensitive condition on a ``value`` column alone (metadata has no ``norm``)."""
    kind, values = constraint.kind, constraint.values
    if kind == Kind.EQUAL:
        return f"value = {params.add(values[0])}"
    if kind == Kind.LIST:
        return f"value IN ({', '.join(params.add(v) for v in dict.fromkeys(values))})"
    if kind == Kind.RANGE:
        low, high = values
        parts = [f"value >= {params.add(low)}"] if low else []
        parts += [f"value <= {params.add(high)}"] if high else []
        return " AND ".join(parts) or "1 = 1"
    if sqlite:
        return f"value GLOB {params.add(_glob(values[0]))}"
    return f"value LIKE {params.add(_like(values[0]))} ESCAPE '!'"


def _wildcard_sql(pattern: str, exact: bool, params: SqlParams, sqlite: bool) -> str:
    upper = normalize(pattern)
    parts = []
    prefix = re.split(r"[*?]", upper, maxsplit=1)[0]
    if prefix and sqlite:
        # SQLite compares text by code point: a prefix becomes an index range.
        parts.append(f"norm >= {params.add(prefix)}")
        parts.append(f"norm < {params.add(prefix[:-1] + chr(ord(prefix[-1]) + 1))}")
    if upper != "*":
        parts.append(f"norm LIKE {params.add(_like(upper))} ESCAPE '!'")
    if exact and pattern.upper() != pattern.lower():
        if sqlite:
            parts.append(f"value GLOB {params.add(_glob(pattern))}")
        else:
            parts.append(f"value LIKE {params.add(_like(pattern))} ESCAPE '!'")
    return " AND ".join(parts) or "1 = 1"


def _like(pattern: str) -> str:
    out = []
    for c in pattern:
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c in "%_!":
            out.append("!" + c)
        else:
            out.append(c)
    return "".join(out)


def _glob(pattern: str) -> str:
    return "".join("[[]" if c == "[" else c for c in pattern)
