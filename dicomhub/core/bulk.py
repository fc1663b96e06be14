"""Operations on a list of resources of any level (``/tools/bulk-*``)."""

from __future__ import annotations

from typing import Any

from ..dicom.levels import Level
from ..store.index.index import IndexSession
from ..store.index.records import ResourceRow
from .archive import Archive
from .deletion import delete_in_transaction
from .describe import describe
from .metadata import name_of
from .transactions import Transaction


def _at_level(session: IndexSession, row: ResourceRow, level: Level) -> list[ResourceRow]:
    """``row`` moved up to its ancestor or down to its descendants at ``level``."""
    if row.level >= level:
        current = row
        while current.level > level and current.parent_id is not None:
            parent = session.get(current.parent_id)
            if parent is None:
                return []
            current = parent
        return [current]
    rows = [row]
    for _ in range(level - row.level):
        rows = [c for r in rows for c in session.children(r.id)]
    return rows


def bulk_content(
    archive: Archive,
    public_ids: list[str],
    level: Level | None,
    style: str,
    with_metadata: bool,
) -> list[dict[str, Any]]:
    """Descriptions of the given resources (unknown IDs are skipped, as Orthanc does)."""
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    with archive.read() as session:
        for public_id in public_ids:
            row = session.lookup(public_id)
            if row is None:
                continue
            for target in _at_level(session, row, level) if level is not None else [row]:
                if target.id in seen:
                    continue
                seen.add(target.id)
                item = describe(session, target, style)
                if with_metadata:
                    item["Metadata"] = {
                        name_of(archive.settings, kind): value
                        for kind, (value, _rev) in sorted(session.metadata(target.id).items())
                    }
                out.append(item)
    return out


def bulk_delete(archive: Archive, public_ids: list[str]) -> None:
    """Delete every listed resource that exists, in one transaction."""

    def run(tx: Transaction) -> None:
        for public_id in public_ids:
            row = tx.session.lookup(public_id)  # already gone with an earlier ancestor?
            if row is not None:
                delete_in_transaction(archive, tx, row)

    archive.write(run)
