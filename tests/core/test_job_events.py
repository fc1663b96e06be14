"""Job events in the index (``core.jobs.engine`` writes them, ``core.change_feed``
follows them): what lets the primary HTTP worker's callbacks hear of every worker's
jobs, once each and in order, on a real SQLite index."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dicomhub.core.archive import Archive
from dicomhub.core.change_feed import ChangeFollower, last_job_event_seq
from dicomhub.core.enums import ChangeType
from dicomhub.core.errors import InexistentItem
from dicomhub.core.events import Change
from dicomhub.core.jobs import engine
from dicomhub.store.index import index as index_module

SUBMITTED, SUCCESS, FAILURE = (
    int(ChangeType.JobSubmitted),
    int(ChangeType.JobSuccess),
    int(ChangeType.JobFailure),
)


class Seen:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []
        self._lock = threading.Lock()

    def __call__(self, change: Change) -> None:
        with self._lock:
            self.events.append((change.change_type, change.public_id))

    def wait_for(self, count: int, timeout: float = 15) -> list[tuple[int, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.events) < count:
            time.sleep(0.02)
        return list(self.events)


def _finished(archive: Archive, error: InexistentItem | None = None) -> str:
    """A synchronous download's job, pruned at once (``JobsHistorySize`` 0)."""
    return engine.record_finished(
        archive, {"JobsHistorySize": 0}, "Archive", {}, {}, engine.job_time(), 3, error
    )


def test_every_job_event_once_in_order_even_of_pruned_jobs(
    make_archive: Callable[..., Archive],
) -> None:
    archive = make_archive()
    engine.submit(archive, "Archive", {})  # before the start: not replayed
    changes, jobs, bus = Seen(), Seen(), Seen()
    archive.events.subscribe(bus)
    follower = ChangeFollower(archive, changes, interval=0.05)
    follower.follow_jobs(jobs)
    follower.start()
    try:
        pending = engine.submit(archive, "Archive", {})
        done = _finished(archive)
        failed = _finished(archive, InexistentItem("gone"))
        expected = [
            (SUBMITTED, pending),
            (SUBMITTED, done),
            (SUCCESS, done),
            (SUBMITTED, failed),
            (FAILURE, failed),
        ]
        assert jobs.wait_for(len(expected)) == expected
        assert engine.get_job(archive, done) is None  # pruned, yet announced
        assert bus.events == expected  # and on this process's bus, in the same order
        time.sleep(0.2)
        assert jobs.events == expected
        assert changes.events == []  # not in the changes log
        with archive.read() as session:
            assert session.last_change() is None
    finally:
        follower.stop()


def test_job_events_are_not_read_while_unwanted(make_archive: Callable[..., Archive]) -> None:
    archive = make_archive()
    wanted = threading.Event()
    jobs = Seen()
    follower = ChangeFollower(archive, Seen(), interval=0.05, wanted=lambda: False)
    follower.follow_jobs(jobs, wanted=wanted.is_set)
    follower.start()
    try:
        _finished(archive)
        time.sleep(0.3)
        assert jobs.events == []
        wanted.set()
        follower.wake_jobs()
        later = _finished(archive)
        assert jobs.wait_for(2) == [(SUBMITTED, later), (SUCCESS, later)]
    finally:
        follower.stop()


def test_a_job_event_on_the_bus_wakes_only_the_job_events(
    make_archive: Callable[..., Archive],
) -> None:
    archive = make_archive()
    follower = ChangeFollower(archive, Seen(), interval=60, wanted=lambda: False)
    follower.follow_jobs(Seen(), wanted=lambda: True)
    follower.wake(Change(SUBMITTED, -1, "job", "20260101T000000"))
    assert follower._wake.is_set()
    follower._wake.clear()
    follower.wake(Change(int(ChangeType.NewInstance), 3, "instance", "20260101T000000"))
    assert not follower._wake.is_set()  # changes are not wanted


def test_the_runner_announces_the_end_of_a_job(make_archive: Callable[..., Archive]) -> None:
    archive = make_archive()
    jobs = Seen()
    follower = ChangeFollower(archive, Seen(), interval=0.05, wanted=lambda: False)
    follower.follow_jobs(jobs)
    follower.start()

    def fail(_context: engine.JobContext) -> None:
        raise InexistentItem("nothing")

    runner = engine.JobRunner(archive, {}, {"Fine": lambda _context: None, "Fails": fail})
    runner.start()
    try:
        fine = engine.submit(archive, "Fine", {})
        fails = engine.submit(archive, "Fails", {})
        events = jobs.wait_for(4)
        assert sorted(events) == sorted(
            [(SUBMITTED, fine), (SUBMITTED, fails), (SUCCESS, fine), (FAILURE, fails)]
        )
        assert events.index((SUBMITTED, fine)) < events.index((SUCCESS, fine))
        assert events.index((SUBMITTED, fails)) < events.index((FAILURE, fails))
    finally:
        runner.stop()
        follower.stop()


def test_only_the_newest_job_events_are_kept(
    make_archive: Callable[..., Archive], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "JOB_EVENTS_KEPT", 4)
    archive = make_archive()
    for _ in range(5):
        _finished(archive)
    with archive.read() as session:
        rows = session.job_events(0, 100)
    assert [row.seq for row in rows] == [7, 8, 9, 10]
    assert last_job_event_seq(archive) == 10


def test_an_index_made_before_job_events_gets_the_table(
    make_archive: Callable[..., Archive], tmp_path: Path
) -> None:
    make_archive().close()
    with sqlite3.connect(tmp_path / "index" / "dicomhub-index.db") as database:
        database.execute("DROP TABLE job_events")
    archive = make_archive()
    done = _finished(archive)
    with archive.read() as session:
        assert [row.public_id for row in session.job_events(0, 10)] == [done, done]
