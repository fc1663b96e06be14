"""Stability: a patient, study or series becomes stable after ``StableAge`` seconds
without a new instance, which raises the Stable* changes (and Lua's OnStable*).

The "unstable since" time lives in the index, so the checker finds its work with
one indexed query and survives restarts.
"""

from __future__ import annotations

import logging
import threading

from ..dicom.levels import Level
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


def check_stability(archive: Archive) -> int:
    """Mark as stable what waited long enough; answers how many became stable."""
    cutoff = now_seconds() - archive.settings.stable_age
    with archive.read() as session:
        candidates = session.unstable_older_than(cutoff)
    if not candidates:
        return 0

    def run(tx: Transaction) -> int:
        count = 0
        # Deepest first: a series is announced stable before its study and patient.
        for row in sorted(candidates, key=lambda r: -r.level):
            current = tx.session.get(row.id)
            if current is None or current.stable:
                continue
            tx.session.set_stable(row.id)
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
