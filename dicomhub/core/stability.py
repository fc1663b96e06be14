"""Stability: a patient, study or series becomes stable after ``StableAge`` seconds
without a new instance, which raises the Stable* changes (and Lua's OnStable*).

The "unstable since" time lives in the index, so the checker finds its work with
one indexed query and survives restarts.
"""

from __future__ import annotations

import logging
import math
import threading
from itertools import groupby

from ..dicom.levels import Level
from ..store.index.records import ResourceRow
from .archive import Archive
from .clock import now_seconds
from .enums import ChangeType
from .transactions import Transaction

log = logging.getLogger("dicomhub.stability")

_STABLE_CHANGE = {
    Level.PATIENT: ChangeType.StablePatient,
    Level.STUDY: ChangeType.StableStudy,
    Level.SERIES: ChangeType.StableSeries,
}


def announcement_order(due: list[tuple[ResourceRow, int]]) -> list[ResourceRow]:
    """The resources of ``due`` (with their last update, oldest first) in the order
    Orthanc announces them: each when its own wait is over, so by last update.

    An instance updates its series, then its study, then its patient, so within one
    second (the resolution of the times kept) a resource comes right after its
    descendants updated in that second: a walk of each second's trees, children
    before their parent, siblings and trees by internal id (their creation order).
    """
    ordered: list[ResourceRow] = []
    for _, group in groupby(due, key=lambda item: item[1]):
        ordered.extend(_children_first({row.id: row for row, _ in group}))
    return ordered


def _children_first(rows: dict[int, ResourceRow]) -> list[ResourceRow]:
    def key(row: ResourceRow) -> tuple[float, ...]:
        path = [float(row.id)]
        while row.parent_id in rows:
            row = rows[row.parent_id]
            path.append(float(row.id))
        return (*reversed(path), math.inf)  # inf: after its own descendants

    return sorted(rows.values(), key=key)


def check_stability(archive: Archive) -> int:
    """Mark as stable what waited long enough; answers how many became stable."""
    cutoff = now_seconds() - archive.settings.stable_age
    with archive.read() as session:
        due = session.unstable_due(cutoff)
    if not due:
        return 0
    candidates = announcement_order(due)

    def run(tx: Transaction) -> int:
        count = 0
        for row in candidates:
            if not tx.session.set_stable(row.id, updated_by=cutoff):
                continue  # deleted, already stable, or updated since it was read
            archive.log_change(tx, _STABLE_CHANGE[Level(row.level)], row.level, row.public_id)
            count += 1
        return count

    return archive.write(run)


class StabilityMonitor:
    def __init__(self, archive: Archive, period: float = 1.0) -> None:
        self.archive = archive
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stability", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                check_stability(self.archive)
            except Exception:
                log.exception("stability check failed")
