"""Paths to tags, possibly inside sequences: ``PatientName``, ``0010,0010``,
``ReferencedImageSequence[0].ReferencedSOPInstanceUID`` or ``(0008,1140)[*].(0008,1155)``.

This is the syntax of Orthanc's ``Replace`` / ``Remove`` / ``Keep`` fields (itself the
syntax of dcmtk's ``dcmodify``): the parts are separated by dots, every part but the
last names a sequence and an item (``[n]``, from 0) or all of its items (``[*]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .tag_names import parse_tag


class TagPathError(ValueError):
    """A path whose structure is wrong (missing index, negative index...)."""


class UnknownTagName(ValueError):
    """A part that names no DICOM tag."""


@dataclass(frozen=True)
class PathItem:
    """One step into a sequence: its tag and the item (``None``: every item)."""

    tag: int
    index: int | None

    def format(self) -> str:
        return f"({format_tag(self.tag)})[{'*' if self.index is None else self.index}]"


@dataclass(frozen=True)
class TagPath:
    prefix: tuple[PathItem, ...]
    tag: int

    @property
    def is_top_level(self) -> bool:
        return not self.prefix

    def format(self) -> str:
        return "".join(item.format() + "." for item in self.prefix) + f"({format_tag(self.tag)})"

    def matches(self, parents: Sequence[tuple[int, int]], tag: int) -> bool:
        """Whether the element ``tag`` found under ``parents`` ((sequence, item) pairs)
        is this path or lies under it (a path naming a sequence covers its content)."""
        if len(parents) < len(self.prefix):
            return False
        for step, (seq, index) in zip(self.prefix, parents, strict=False):
            if step.tag != seq or (step.index is not None and step.index != index):
                return False
        if len(parents) == len(self.prefix):
            return tag == self.tag
        return parents[len(self.prefix)][0] == self.tag


def format_tag(tag: int) -> str:
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def parse_tag_token(token: str) -> int:
    """A tag named as Orthanc names tags (:func:`.tag_names.parse_tag`: ``0010,0010``,
    ``10,10``, ``00100010``, ``PatientName``...), possibly between blanks and in
    parentheses (``(0010,0010)``)."""
    token = token.strip()
    if token.startswith("(") and token.endswith(")"):
        token = token[1:-1].strip()
    try:
        return parse_tag(token)
    except ValueError:
        raise UnknownTagName(f"Unknown DICOM tag: {token!r}") from None


def parse_tag_path(text: str) -> TagPath:
    parts = text.split(".")
    final = parse_tag_token(parts[-1])
    prefix: list[PathItem] = []
    for part in parts[:-1]:
        if "[" not in part:
            raise TagPathError("Parent path doesn't contain an index")
        left, right = part.split("[", 1)
        left, right = left.strip(), right.strip()
        if not left:
            raise TagPathError("Parent path doesn't contain a tag")
        if not right.endswith("]"):
            raise TagPathError("Parent path doesn't contain the end of the index")
        tag = parse_tag_token(left)
        index_text = right[:-1].strip()
        if index_text == "*":
            prefix.append(PathItem(tag, None))
            continue
        try:
            index = int(index_text)
        except ValueError as exc:
            raise TagPathError(f"Not a valid index in parent path: [{right}") from exc
        if index < 0:
            raise TagPathError(f"Negative index in parent path: {index_text}")
        prefix.append(PathItem(tag, index))
    return TagPath(tuple(prefix), final)
