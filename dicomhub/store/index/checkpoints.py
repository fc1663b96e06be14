"""Checkpoints of the SQLite index's write-ahead log, out of the writers' way.

SQLite copies the log back into the database (a checkpoint) in the connection whose
commit makes the log pass 1,000 pages, and that commit returns only once the copy is
synced (the log, then the database: two ``fsync``). The HTTP workers take turns on
the index under a file lock held until their commit returns, so every worker waited
for each checkpoint: with four clients uploading small files, all workers stood idle
4 % of the time, three in the lock and the fourth in the disk, and the lock's wait
took a fifth of each worker's time.

Here a thread of the primary worker checkpoints every 50 ms while the others write
(SQLite lets a checkpoint run beside a writer), so a commit only appends to the log.
A log copied while writers keep appending never ends up fully copied at the start of
a write, which is when SQLite starts it over: once it has grown past
``CATCH_UP_FRAMES``, the thread copies the few pages left while holding the writers'
lock, and the next writer starts the log afresh. The connections keep SQLite's own
checkpoint as a safety net, at a size this thread never lets the log reach (a
process without the thread, such as a maintenance command, still checkpoints).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .index import Index

log = logging.getLogger("dicomhub.index")

#: Seconds between two checkpoints beside the writers.
INTERVAL_S = 0.05

#: Pages in the log from which a checkpoint also lets SQLite start it over.
CATCH_UP_FRAMES = 4096

#: SQLite's own checkpoint (``wal_autocheckpoint``), in pages: the safety net.
AUTOMATIC_FRAMES = 4 * CATCH_UP_FRAMES


class WalCheckpointer:
    """The thread that checkpoints the index's log (``start`` / ``stop``)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def checkpoint(self) -> int:
        """One checkpoint beside the writers, and the catch-up if the log is long;
        answers the pages left in the log after them."""
        connection = self.index.thread_connection()
        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames >= CATCH_UP_FRAMES:
            with self.index.writers_excluded():
                _busy, frames, _copied = connection.execute(
                    "PRAGMA wal_checkpoint(PASSIVE)"
                ).fetchone()
        return frames

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            try:
                self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("index checkpoint failed: %s", exc)
