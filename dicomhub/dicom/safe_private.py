"""PS3.15 E.3.10, the Retain Safe Private Option: when private tags are removed, the
private data elements that the standard lists as safe (Table E.3.10-1, kept as data in
``data/safe_private.tsv``) stay, with the Private Creator element of their block.

A private element is found by what identifies it across files: its group, its Private
Creator (the value of ``(gggg,00xx)`` that reserved the block ``xx``) and the low byte
of its element number; the block ``xx`` itself varies from file to file. The VR the
table gives must match the element's own VR, unless that is ``UN`` (an implicit-VR
file whose creator pydicom does not know).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pydicom.dataset import Dataset

PRIVATE_CREATORS = range(0x10, 0x100)


@dataclass(frozen=True)
class SafeElement:
    """One row of Table E.3.10-1."""

    creator: str
    group: int
    element: int  # the low byte: (gggg,xxee) -> ee
    vrs: frozenset[str]  # empty: the table gives no VR
    meaning: str


@cache
def table() -> dict[tuple[str, int, int], SafeElement]:
    """``(creator, group, low byte)`` -> row, read once from the data file."""
    text = resources.files(__package__).joinpath("data/safe_private.tsv").read_text()
    rows: dict[tuple[str, int, int], SafeElement] = {}
    creator = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            creator = line[1:-1]
            continue
        tag, vr, meaning = (line.split(None, 2) + [""])[:3]
        group, element = tag.split(",")
        vrs = frozenset() if vr == "-" else frozenset(vr.split("/"))
        row = SafeElement(creator, int(group, 16), int(element[2:], 16), vrs, meaning)
        rows[(creator, row.group, row.element)] = row
    return rows


def _creator(ds: Dataset, group: int, block: int) -> str | None:
    tag = group << 16 | block
    if tag not in ds:
        return None
    value = ds[tag].value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).strip(" \0") if value is not None else None


def is_safe(ds: Dataset, tag: int) -> bool:
    """Whether the private element ``tag`` of ``ds`` is in Table E.3.10-1."""
    group, element = tag >> 16, tag & 0xFFFF
    if not group & 1 or element < 0x1000:
        return False
    creator = _creator(ds, group, element >> 8)
    if creator is None:
        return False
    row = table().get((creator, group, element & 0xFF))
    if row is None:
        return False
    vr = ds[tag].VR
    return not row.vrs or vr == "UN" or vr in row.vrs


def kept_private_tags(ds: Dataset, keep: Callable[[int], bool]) -> set[int]:
    """The private tags of ``ds`` (this level only) that stay: the safe ones, those
    ``keep`` names, and the Private Creators of their blocks."""
    private = [int(t) for t in list(ds.keys()) if t.is_private]
    kept = {t for t in private if (t & 0xFFFF) >= 0x1000 and (keep(t) or is_safe(ds, t))}
    creators = {(t >> 16) << 16 | ((t & 0xFFFF) >> 8) for t in kept}
    return kept | creators


def remove_unsafe(
    ds: Dataset,
    keep_top: Callable[[int], bool],
    keep_nested: Callable[[list[tuple[int, int]], int], bool],
    parents: list[tuple[int, int]] | None = None,
) -> None:
    """Remove, at any depth, the private elements that are neither safe nor kept
    (``keep_top`` at the top level, ``keep_nested`` inside sequences)."""
    parents = parents or []
    if parents:
        kept = kept_private_tags(ds, lambda t: keep_nested(parents, t))
    else:
        kept = kept_private_tags(ds, keep_top)
    for tag in [int(t) for t in list(ds.keys())]:
        if (tag >> 16) & 1 and tag not in kept:
            del ds[tag]
        elif _is_sequence(ds, tag):
            for index, item in enumerate(ds[tag].value or []):
                remove_unsafe(item, keep_top, keep_nested, [*parents, (tag, index)])


def _is_sequence(ds: Dataset, tag: int) -> bool:
    """Without decoding the element when its VR is already known (pixel data...)."""
    vr = ds.get_item(tag).VR
    return (vr or ds[tag].VR) == "SQ"
