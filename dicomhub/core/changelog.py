"""Reading the changes and exports logs in Orthanc's shapes."""

from __future__ import annotations

from typing import Any

from ..dicom.levels import Level
from ..store.index.records import ChangeRow, ExportRow
from .archive import Archive
from .enums import ChangeType
from .errors import BadRequest
from .transactions import Transaction

DEFAULT_LIMIT = 100
MAX_LIMIT = 10000
# Orthanc reads ``limit`` as a 32-bit unsigned number and asks its database for one
# row more than that, so that ``limit=-1`` (the largest value) wraps the query's own
# limit to 0: the answer is empty and says ``Done`` (seen on Orthanc 1.10.1).
WRAPPED_LIMIT = (1 << 32) - 1


def change_json(row: ChangeRow) -> dict[str, Any]:
    level = Level(row.level)
    return {
        "ChangeType": ChangeType(row.change_type).name,
        "Date": row.date,
        "ID": row.public_id,
        "Path": f"/{level.plural}/{row.public_id}",
        "ResourceType": level.title,
        "Seq": row.seq,
    }


def changes(
    archive: Archive,
    since: int,
    limit: int,
    to: int | None = None,
    types: list[str] | None = None,
) -> dict[str, Any]:
    """A page of the changes log after ``since`` (up to ``to``), as Orthanc pages it.

    ``limit`` 0 answers no change but says whether any follows ``since`` (``Done``);
    larger limits are capped at ``MAX_LIMIT`` to bound the answer.
    """
    wanted: set[int] | None = None
    if types:
        try:
            wanted = {int(ChangeType[t.strip()]) for t in types if t.strip()}
        except KeyError as exc:
            raise BadRequest(f"Unknown change type: {exc.args[0]}") from exc
    with archive.read() as session:
        last = session.last_change()
        newest = last.seq if last else 0
        # ``Last`` when no change is listed: the newest sequence number, which an
        # emptied log (DELETE /changes) still remembers, as Orthanc does.
        last_seq = newest if last else session.last_change_seq()
        if limit in (0, WRAPPED_LIMIT):
            bound = newest if to is None else min(to, newest)
            done = limit == WRAPPED_LIMIT or bound <= since
            return {"Changes": [], "Done": done, "Last": last_seq}
        limit = min(limit, MAX_LIMIT)
        rows: list[ChangeRow] = []
        cursor = since
        exhausted = False
        while len(rows) < limit and not exhausted:
            batch = session.changes(cursor, limit)
            exhausted = len(batch) < limit
            for row in batch:
                if to is not None and row.seq > to:
                    exhausted = True
                    break
                cursor = row.seq
                if wanted is None or row.change_type in wanted:
                    rows.append(row)
                    if len(rows) == limit:
                        break
    return {
        "Changes": [change_json(r) for r in rows],
        "Done": exhausted or cursor >= newest or (to is not None and cursor >= to),
        # Nothing after ``since``: Orthanc answers the newest sequence number instead.
        "Last": cursor if cursor != since else last_seq,
    }


def last_change(archive: Archive) -> dict[str, Any]:
    with archive.read() as session:
        last = session.last_change()
        last_seq = last.seq if last else session.last_change_seq()
    return {
        "Changes": [change_json(last)] if last else [],
        "Done": True,
        "Last": last_seq,
    }


def clear_changes(archive: Archive) -> None:
    def run(tx: Transaction) -> None:
        tx.session.clear_changes()

    archive.write(run)


def export_json(row: ExportRow) -> dict[str, Any]:
    level = Level(row.level)
    result: dict[str, Any] = {
        "Date": row.date,
        "ID": row.public_id,
        "Path": f"/{level.plural}/{row.public_id}",
        "PatientID": row.patient_id,
        "RemoteModality": row.remote_modality,
        "ResourceType": level.title,
        "Seq": row.seq,
    }
    if level >= Level.STUDY:
        result["StudyInstanceUID"] = row.study_uid
    if level >= Level.SERIES:
        result["SeriesInstanceUID"] = row.series_uid
    if level >= Level.INSTANCE:
        result["SOPInstanceUID"] = row.sop_uid
    return result


def exports(archive: Archive, since: int, limit: int) -> dict[str, Any]:
    """A page of the exports log after ``since``; ``limit`` as in ``changes``."""
    if limit == WRAPPED_LIMIT:
        return {"Exports": [], "Done": True, "Last": since}
    limit = min(limit, MAX_LIMIT)
    with archive.read() as session:
        rows = session.exports(since, limit + 1)
    done = len(rows) <= limit
    rows = rows[:limit]
    return {
        "Exports": [export_json(r) for r in rows],
        "Done": done,
        "Last": rows[-1].seq if rows else since,  # as Orthanc: /exports?since=5 -> Last 5
    }


def last_export(archive: Archive) -> dict[str, Any]:
    """The newest entry of the exports log (``/exports?last``), in the list's shape."""
    with archive.read() as session:
        seq = session.last_export_seq()
        rows = session.exports(seq - 1, 1) if seq else []
    return {
        "Exports": [export_json(r) for r in rows],
        "Done": True,
        "Last": rows[0].seq if rows else 0,
    }


def clear_exports(archive: Archive) -> None:
    def run(tx: Transaction) -> None:
        tx.session.clear_exports()

    archive.write(run)
