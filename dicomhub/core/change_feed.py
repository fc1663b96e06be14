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

Job events (``OnJobSubmitted``, ``OnJobSuccess``, ``OnJobFailure``) are not in the
changes log, as in Orthanc; the jobs engine writes them to a table of their own
(``job_events``), numbered the same way, with the job row they are about. The same
thread follows that table too (``follow_jobs``), with its own cursor and its own
interest: a server whose scripts define only job callbacks reads no changes, and
one that defines none reads no job events. The other workers nudge it through the
jobs engine's nudge (``core.jobs.engine.wake_runner``). Within each log the order is
kept (a job's submission comes before its end); between the two logs it is that of
the reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .archive import Archive
from .enums import ChangeType
from .events import Change

log = logging.getLogger("dicomhub.changes")

#: Rows read per query: enough to drain a burst quickly, small enough to stay cheap.
BATCH = 500

#: How long a hole in the sequence numbers may wait to be filled by a transaction
#: that has not committed yet, before the follower goes past it.
GAP_GRACE = 2.0

#: The change types of the job events (``follow_jobs``), not in the changes log.
JOB_CHANGES = frozenset(
    int(kind) for kind in (ChangeType.JobSubmitted, ChangeType.JobSuccess, ChangeType.JobFailure)
)


def last_seq(archive: Archive) -> int:
    """The newest sequence number of the log (0 when it is empty): where a follower
    starts so that changes older than the start of the server are not replayed."""
    with archive.read() as session:
        return _last_change(session)


def last_job_event_seq(archive: Archive) -> int:
    """The newest number of the job events (0 when there is none yet)."""
    with archive.read() as session:
        return int(session.last_job_event_seq())


def _last_change(session: Any) -> int:
    last = session.last_change()
    return last.seq if last else 0


class _Feed:
    """One numbered log, followed: where the follower is in it, and what it waits for."""

    def __init__(
        self,
        name: str,
        last: Callable[[Any], int],
        rows: Callable[[Any, int, int], list[Any]],
        listener: Callable[[Change], None],
        cursor: int,
        wanted: Callable[[], bool] | None,
    ) -> None:
        self.name = name
        self.last = last
        self.rows = rows
        self.listener = listener
        self.wanted = wanted
        self.cursor = cursor
        # The number after the cursor is the next one to expect, unless the log was
        # empty (it may have been cleared: numbers go on from where they were).
        self.anchored = cursor > 0
        self.gap_since: float | None = None

    def is_wanted(self) -> bool:
        return self.wanted is None or self.wanted()

    def skip_to(self, last: int) -> None:
        """Not wanted now: keep up with the newest number (once wanted, reading goes
        on from about when interest began)."""
        self.cursor = last
        self.anchored = last > 0
        self.gap_since = None

    def take(self, rows: list[Any]) -> bool:
        """Hands ``rows`` (read after the cursor) to the listener, in order, up to a
        hole that may still fill; True when there may be more to read at once."""
        for row in rows:
            if self.anchored and row.seq != self.cursor + 1:
                now = time.monotonic()
                if self.gap_since is None:
                    self.gap_since = now
                if now - self.gap_since < GAP_GRACE:
                    return False  # read again later: the hole may fill
                log.info("%s %d to %d never appeared", self.name, self.cursor + 1, row.seq - 1)
            self.gap_since = None
            self.anchored = True
            self.cursor = row.seq
            try:
                self.listener(Change(row.change_type, row.level, row.public_id, row.date))
            except Exception:
                log.exception("%s listener failed on %s", self.name, row)
        return len(rows) == BATCH


class ChangeFollower:
    """A thread that reads the log after ``start_seq`` and calls ``listener`` per row
    (and, once ``follow_jobs`` was called, the job events likewise)."""

    def __init__(
        self,
        archive: Archive,
        listener: Callable[[Change], None],
        start_seq: int | None = None,
        interval: float = 0.2,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        self.archive = archive
        # ``wanted``: whether the listener wants changes at all now (cheap,
        # lock-free): while it does not, only the newest number is followed, as a
        # single process with no callback queues no change either.
        cursor = last_seq(archive) if start_seq is None else start_seq
        self._changes = _Feed(
            "Changes", _last_change, lambda s, c, n: s.changes(c, n), listener, cursor, wanted
        )
        self._jobs: _Feed | None = None
        self._feeds = [self._changes]
        #: Told whether changes are wanted, on the follower's thread, when that
        #: changes (and first when set): the other workers then nudge only while they
        #: are (``core.nudges``).
        self.on_interest: Callable[[bool], None] | None = None
        self._told: tuple[Callable[[bool], None], bool] | None = None
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dicomhub-changes", daemon=True)

    @property
    def cursor(self) -> int:
        """The number of the last change handed to the listener (or skipped)."""
        return self._changes.cursor

    def follow_jobs(
        self,
        listener: Callable[[Change], None],
        start_seq: int | None = None,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Also hand the job events after ``start_seq`` (default: the newest now) to
        ``listener``, while ``wanted`` says so. Before ``start``."""
        cursor = last_job_event_seq(self.archive) if start_seq is None else start_seq
        self._jobs = _Feed(
            "Job events",
            lambda s: int(s.last_job_event_seq()),
            lambda s, c, n: s.job_events(c, n),
            listener,
            cursor,
            wanted,
        )
        self._feeds = [self._changes, self._jobs]

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def wake(self, change: object = None) -> None:
        """Read now (an event bus listener: cheap, it runs in the committing thread).
        A job event wakes the follower of the job events (``wake_jobs``)."""
        if isinstance(change, Change) and change.change_type in JOB_CHANGES:
            self.wake_jobs()
        elif self._changes.is_wanted():
            self._wake.set()

    def wake_jobs(self) -> None:
        """Read the job events now (new ones were committed, here or elsewhere)."""
        jobs = self._jobs
        if jobs is not None and jobs.is_wanted():
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
            wanted = [feed for feed in self._feeds if feed.is_wanted()]
            idle = [feed for feed in self._feeds if feed not in wanted]
            self._tell_interest(self._changes in wanted)
            try:
                while wanted or idle:
                    wanted = self._read_once(wanted, idle)
                    idle = []
                    if self._stopping.is_set():
                        break
            except Exception:
                log.exception("Cannot read the changes log")
            self._wake.wait(self.interval)

    def _read_once(self, wanted: list[_Feed], idle: list[_Feed]) -> list[_Feed]:
        """One read (one transaction) of the logs: the next batch of those wanted,
        handed to their listeners; the newest number of the ``idle`` ones. Answers
        the logs that may have more to read at once."""
        with self.archive.read() as session:
            batches = [(feed, feed.rows(session, feed.cursor, BATCH)) for feed in wanted]
            newest = [(feed, feed.last(session)) for feed in idle]
        for feed, last in newest:
            feed.skip_to(last)
        return [feed for feed, rows in batches if feed.take(rows)]
