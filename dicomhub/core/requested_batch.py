"""The requested tags of many resources at once: the values of C-FIND answers.

``reading.requested_tags`` reads one resource at a time: its main tags and each
ancestor's, then the computed tags (children counts, ModalitiesInStudy) from its
descendants, a dozen statements per resource. A C-FIND with a hundred matches spent
most of its time there. ``requested_tags_many`` gives the same values for a list of
resources with a handful of batched statements (``IndexSession.*_many``): the parent
chain level by level, the main tags of every resource of every chain, and each
computed tag for all resources of its level. A resource still lacking a tag (one the
index does not keep) has it read from one of its files, as ``requested_tags`` reads
it, the file read once for all such tags.

Two options serve the C-FIND SCP, which answers as Orthanc 1.10.1 does: ``sequences``
are read whole from the file (pydicom ``Sequence`` values, absent when the file has
none), and ``from_files=False`` leaves out whatever the index lacks instead of
reading a file (Orthanc reads one only when a requested key is no main tag of any
level: a lower level's main tag is then left empty).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ..dicom.levels import Level
from ..store.index.index import IndexSession
from ..store.index.records import ResourceRow
from .archive import Archive
from .reading import _COUNT_TAGS, computed_tags, file_values

MODALITY = 0x00080060
MODALITIES_IN_STUDY = 0x00080061


def _ancestors(session: IndexSession, rows: list[ResourceRow]) -> dict[int, int | None]:
    """Parent of every resource on the chains of ``rows`` (one statement per level)."""
    parents: dict[int, int | None] = {r.id: r.parent_id for r in rows}
    wanted = {p for p in parents.values() if p is not None}
    for _ in range(int(Level.INSTANCE)):
        wanted -= parents.keys()
        if not wanted:
            break
        found = session.parents_many(sorted(wanted))
        parents.update(found)
        wanted = {p for p in found.values() if p is not None}
    return parents


def _chain(row: ResourceRow, parents: dict[int, int | None]) -> list[int]:
    """``row`` then its ancestors, up to the first one the index does not hold."""
    chain = [row.id]
    current = row.parent_id
    while current is not None and current in parents:
        chain.append(current)
        current = parents[current]
    return chain


def _computed_many(
    session: IndexSession, rows: list[ResourceRow], tags: list[int]
) -> dict[int, dict[int, str]]:
    """``reading.computed_tags`` for every row, each tag in one statement per level."""
    out: dict[int, dict[int, str]] = {r.id: {} for r in rows}
    for tag in dict.fromkeys(tags):
        if tag in _COUNT_TAGS:
            level, below = _COUNT_TAGS[tag]
            ids = [r.id for r in rows if r.level == level]
            if ids:
                counts = session.descendant_counts(ids, below - level)
                for rid in ids:
                    out[rid][tag] = str(counts.get(rid, 0))
            continue
        studies = [r for r in rows if r.level == Level.STUDY]
        if not studies:
            continue
        if tag == MODALITIES_IN_STUDY:
            found = session.children_tag_values([r.id for r in studies], MODALITY)
            for row in studies:
                modalities = sorted(set(found.get(row.id, ())) - {""})
                out[row.id][tag] = "\\".join(modalities)
        else:  # the rarer ones (SOPClassesInStudy): one resource at a time
            for row in studies:
                out[row.id].update(computed_tags(session, row, [tag]))
    return out


def requested_tags_many(
    archive: Archive,
    session: IndexSession,
    rows: list[ResourceRow],
    tags: list[int],
    *,
    sequences: Collection[int] = (),
    from_files: bool = True,
) -> list[dict[int, Any]]:
    """The values of ``tags`` for each of ``rows`` (tag -> value, absent when
    unknown), the same as ``reading.requested_tags`` gives for each row; with the
    whole ``sequences`` read from a file too (see the module's docstring)."""
    if not rows or not (tags or sequences):
        return [{} for _ in rows]
    parents = _ancestors(session, rows)
    chains = [_chain(row, parents) for row in rows]
    main = session.main_tags_many([rid for chain in chains for rid in chain], tags) if tags else {}
    computed = _computed_many(session, rows, tags)
    wanted = set(tags)
    answers: list[dict[int, Any]] = []
    for row, chain in zip(rows, chains, strict=True):
        values: dict[int, Any] = {}
        for rid in chain:  # the resource's own values first, then its ancestors'
            for tag, value in main.get(rid, {}).items():
                values.setdefault(tag, value)
        values.update(computed[row.id])
        missing = [t for t in dict.fromkeys(tags) if t not in values]
        if from_files and (missing or sequences):
            values.update(_from_file(archive, session, row, missing, sequences))
        answers.append({t: v for t, v in values.items() if t in wanted or t in sequences})
    return answers


def _from_file(
    archive: Archive,
    session: IndexSession,
    row: ResourceRow,
    tags: list[int],
    sequences: Collection[int],
) -> dict[int, Any]:
    """``tags`` (as text) and ``sequences`` (whole) read from one file of ``row``, the
    one ``reading.requested_tags`` reads."""

    def sequence(ds: Dataset, tag: int, _charsets: list[str]) -> Sequence | None:
        elem = ds[tag]
        if tag in sequences and elem.VR == "SQ":
            return Sequence([_decoded(item) for item in elem.value])
        return None

    return file_values(archive, session, row, [*tags, *sequences], sequence)


def _decoded(item: Dataset) -> Dataset:
    """A sequence item rebuilt from its decoded elements (text in Unicode, read with
    the file's character set), so that it can be written in another one; its own
    SpecificCharacterSet, if any, is left out with the rest of its encoding."""
    copy = Dataset()
    for elem in item:  # converts each raw element with the item's character set
        if elem.tag == 0x00080005:
            continue
        if elem.VR == "SQ":
            elem.value = Sequence([_decoded(inner) for inner in elem.value])
        copy.add(elem)
    return copy


__all__ = ["requested_tags_many"]
