"""Deleting resources: a subtree, its files, and the parents it leaves empty.

Files go to the storage area's trash before the commit and are purged after it
(or restored if the transaction rolls back), so a crash never leaves an index row
without its file or a file without its row.

``/changes`` gets one ``Deleted`` row, for the topmost resource removed (Orthanc
writes none). The scripts' callbacks hear of every removed resource, as in Orthanc:
once committed, one ``DELETED_RESOURCES`` event (``core.events``, not a change) lists
them in the order Orthanc calls ``OnDeleted*``.
"""

from __future__ import annotations

from typing import Any

from ..dicom.levels import Level
from ..store.index.records import ResourceRow
from .archive import Archive, require_resource
from .clock import now_iso
from .enums import ChangeType
from .events import DELETED_RESOURCES, Change
from .transactions import Transaction


def delete_in_transaction(
    archive: Archive,
    tx: Transaction,
    row: ResourceRow,
    log_deleted: bool = True,
    events: list[Change] | None = None,
) -> dict[str, Any] | None:
    """Delete ``row`` and its subtree, then its empty ancestors; answer the remaining one.

    ``events``: the ``DELETED_RESOURCES`` event is added there, for the caller to
    publish after its own changes, rather than published at commit (an instance
    replaced by ``OverwriteInstances``: Orthanc reports the new copy stored first)."""
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

    subtree, children = _subtree(session, target)
    atts = session.attachments_under(subtree)
    for att in atts:
        tx.delete_file_on_commit(storage, att.uuid)
    session.forget_attachments_sizes(atts)
    session.delete_resource(target)
    if log_deleted:
        archive.log_change(tx, ChangeType.Deleted, target.level, target.public_id)
    removed = tuple((r.level, r.public_id) for r in _callback_order(row, target, children))
    event = Change(DELETED_RESOURCES, target.level, target.public_id, now_iso(), removed)
    if events is not None:
        events.append(event)
    else:
        tx.on_commit(lambda: archive.events.publish(event))
    if remaining is None:
        return None
    return {
        "ID": remaining.public_id,
        "Path": f"/{Level(remaining.level).plural}/{remaining.public_id}",
        "Type": Level(remaining.level).title,
    }


def _subtree(session, row: ResourceRow) -> tuple[list[ResourceRow], dict[int, list[ResourceRow]]]:  # type: ignore[no-untyped-def]
    """``row`` and its descendants; and the children of each (oldest first)."""
    found = [row]
    children: dict[int, list[ResourceRow]] = {}
    frontier = [row]
    while frontier:
        nxt: list[ResourceRow] = []
        for r in frontier:
            children[r.id] = session.children(r.id)
            nxt.extend(children[r.id])
        found.extend(nxt)
        frontier = nxt
    return found, children


def _callback_order(
    row: ResourceRow, target: ResourceRow, children: dict[int, list[ResourceRow]]
) -> list[ResourceRow]:
    """The resources a deletion of ``row`` removes (``target``: its topmost ancestor
    left empty, or ``row``), in the order Orthanc calls ``OnDeleted*`` (seen on
    1.10.1): the descendants of ``row``, each after its own children; then the
    ancestors removed with it, from the topmost down; then ``row``. Deleting a patient
    thus reports its instances before their series, the series before their study;
    deleting the last instance of a patient reports the patient, the study, the
    series, then the instance."""
    order: list[ResourceRow] = []

    def after_children(parent: ResourceRow) -> None:
        for child in children.get(parent.id, ()):
            after_children(child)
            order.append(child)

    after_children(row)
    ancestors: list[ResourceRow] = []
    current = target
    while current.id != row.id:  # the only child of each is on the way down to ``row``
        ancestors.append(current)
        current = children[current.id][0]
    return order + ancestors + [row]


def delete_resource(archive: Archive, public_id: str, level: Level) -> dict[str, Any]:
    def run(tx: Transaction) -> dict[str, Any] | None:
        row = require_resource(tx.session, public_id, int(level))
        return delete_in_transaction(archive, tx, row)

    return {"RemainingAncestor": archive.write(run)}
