"""Deleting resources: a subtree, its files, and the parents it leaves empty.

Files go to the storage area's trash before the commit and are purged after it
(or restored if the transaction rolls back), so a crash never leaves an index row
without its file or a file without its row.
"""

from __future__ import annotations

from typing import Any

from ..dicom.levels import Level
from ..store.index.records import ResourceRow
from .archive import Archive, require_resource
from .enums import ChangeType
from .transactions import Transaction


def delete_in_transaction(
    archive: Archive, tx: Transaction, row: ResourceRow, log_deleted: bool = True
) -> dict[str, Any] | None:
    """Delete ``row`` and its subtree, then its empty ancestors; answer the remaining one."""
    session = tx.session
    storage = archive.storage
    # Walk up first: the topmost ancestor that would be left empty goes too.
    target = row
    while target.parent_id is not None and session.count_children(target.parent_id) == 1:
        parent = session.get(target.parent_id)
        assert parent is not None
        target = parent
    remaining: ResourceRow | None = None
    if target.parent_id is not None:
        remaining = session.get(target.parent_id)

    subtree = _subtree(session, target)
    atts = session.attachments_under(subtree)
    for att in atts:
        tx.delete_file_on_commit(storage, att.uuid)
    session.forget_attachments_sizes(atts)
    session.delete_resource(target)
    if log_deleted:
        archive.log_change(tx, ChangeType.Deleted, target.level, target.public_id)
    if remaining is None:
        return None
    return {
        "ID": remaining.public_id,
        "Path": f"/{Level(remaining.level).plural}/{remaining.public_id}",
        "Type": Level(remaining.level).title,
    }


def _subtree(session, row: ResourceRow) -> list[ResourceRow]:  # type: ignore[no-untyped-def]
    found = [row]
    frontier = [row]
    while frontier:
        nxt: list[ResourceRow] = []
        for r in frontier:
            nxt.extend(session.children(r.id))
        found.extend(nxt)
        frontier = nxt
    return found


def delete_resource(archive: Archive, public_id: str, level: Level) -> dict[str, Any]:
    def run(tx: Transaction) -> dict[str, Any] | None:
        row = require_resource(tx.session, public_id, int(level))
        return delete_in_transaction(archive, tx, row)

    return {"RemainingAncestor": archive.write(run)}
