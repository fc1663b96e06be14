"""Following the changes log of the index, for a process that must see every change.

The event bus (``core.events``) only carries the changes committed by its own
process. With several HTTP workers the scripts' callbacks run in one of them (the
primary), yet any worker may store, delete or modify: the changes log in the index is
the one record that all of them write, in one order. A ``ChangeFollower`` reads that
log from a starting sequence number on and hands each new row, once and in order, to
a listener, so the callbacks see exactly what a single process would have published.

Why this is sound on the embedded SQLite index: writers are serialized (the index's
writer lock), so the sequence numbers become visible in increasing order and a
reader never sees number ``n + 1`` before ``n``; ``DELETE /changes`` does not reuse
numbers (the table is ``AUTOINCREMENT``), so the cursor stays valid across it. On a
database whose writers run side by side (PostgreSQL), ``n + 1`` may commit first: a
missing number holds the following ones back until it appears, or for ``GAP_GRACE``
seconds (a rolled-back transaction leaves a hole that never fills).

The follower polls (``interval``), and ``wake()`` makes it read at once: the process
wakes it from its own bus, and the other workers nudge it (``core.nudges``), so a
change reaches the callbacks at once and the poll is only a safety net.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .archive import Archive
from .events import Change

log = logging.getLogger("dicomhub.changes")

#: Rows read per query: enough to drain a burst quickly, small enough to stay cheap.
BATCH = 500

#: How long a hole in the sequence numbers may wait to be filled by a transaction
#: that has not committed yet, before the follower goes past it.
GAP_GRACE = 2.0


def last_seq(archive: Archive) -> int:
    """The newest sequence number of the log (0 when it is empty): where a follower
    starts so that changes older than the start of the server are not replayed."""
    with archive.read() as session:
        last = session.last_change()
    return last.seq if last else 0


class ChangeFollower:
    """A thread that reads the log after ``start_seq`` and calls ``listener`` per row."""

    def __init__(
        self,
        archive: Archive,
        listener: Callable[[Change], None],
        start_seq: int | None = None,
        interval: float = 0.2,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        self.archive = archive
        self.listener = listener
        #: Whether the listener wants changes at all now (cheap, lock-free): while it
        #: does not, only the newest number is followed, as a single process with no
        #: callback queues no change either.
        self.wanted = wanted
        #: Told whether changes are wanted, on the follower's thread, when that
        #: changes (and first when set): the other workers then nudge only while they
        #: are (``core.nudges``).
        self.on_interest: Callable[[bool], None] | None = None
        self._told: tuple[Callable[[bool], None], bool] | None = None
        self.cursor = last_seq(archive) if start_seq is None else start_seq
        self.interval = interval
        # The number after the cursor is the next one to expect, unless the log was
        # empty (it may have been cleared: numbers go on from where they were).
        self._anchored = self.cursor > 0
        self._gap_since: float | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dicomhub-changes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def wake(self, _change: object = None) -> None:
        """Read now (an event bus listener: cheap, it runs in the committing thread)."""
        if self.wanted is None or self.wanted():
            self._wake.set()

    def _tell_interest(self, wanted: bool) -> None:
        tell = self.on_interest
        if tell is None or self._told == (tell, wanted):
            return
        try:
            tell(wanted)
        except Exception:
            log.exception("Cannot tell whether changes are wanted")
            return
        self._told = (tell, wanted)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before reading: a wake-up during the read reads again
            wanted = self.wanted is None or self.wanted()
            self._tell_interest(wanted)
            if not wanted:
                # Keep up with the log by its newest number (one read per interval):
                # once wanted, reading goes on from about when interest began.
                try:
                    self.cursor = last_seq(self.archive)
                except Exception:
                    log.exception("Cannot read the changes log")
                self._anchored = self.cursor > 0
                self._gap_since = None
                self._wake.wait(self.interval)
                continue
            try:
                while self._drain_once() and not self._stopping.is_set():
                    pass
            except Exception:
                log.exception("Cannot read the changes log")
            self._wake.wait(self.interval)

    def _drain_once(self) -> bool:
        """Hands the next batch to the listener; True when there may be more."""
        with self.archive.read() as session:
            rows = session.changes(self.cursor, BATCH)
        for row in rows:
            if self._anchored and row.seq != self.cursor + 1:
                now = time.monotonic()
                if self._gap_since is None:
                    self._gap_since = now
                if now - self._gap_since < GAP_GRACE:
                    return False  # read again later: the hole may fill
                log.info("Changes %d to %d never appeared", self.cursor + 1, row.seq - 1)
            self._gap_since = None
            self._anchored = True
            self.cursor = row.seq
            try:
                self.listener(Change(row.change_type, row.level, row.public_id, row.date))
            except Exception:
                log.exception("Change listener failed on %s", row)
        return len(rows) == BATCH
