"""Following the changes log (``core.change_feed``) on a real SQLite index, as the
primary HTTP worker does for the scripts' callbacks."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from dicomhub.core import change_feed
from dicomhub.core.archive import Archive
from dicomhub.core.change_feed import ChangeFollower, last_seq
from dicomhub.core.changelog import clear_changes
from dicomhub.core.enums import ChangeType
from dicomhub.core.events import Change
from dicomhub.dicom.levels import Level


@pytest.fixture
def archive(make_archive: Callable[..., Archive]) -> Archive:
    return make_archive()


def _log(archive: Archive, public_id: str) -> None:
    archive.write(
        lambda tx: archive.log_change(tx, ChangeType.NewInstance, int(Level.INSTANCE), public_id)
    )


def _log_with_seq(archive: Archive, seq: int, public_id: str) -> None:
    """A row with a chosen number: what a database with concurrent writers shows when
    a later transaction commits first."""

    def run(tx: Any) -> None:
        tx.session._run(
            "INSERT INTO changes (seq, change_type, level, public_id, date) "
            "VALUES (:s, :c, :l, :p, :d)",
            s=seq,
            c=int(ChangeType.NewInstance),
            l=int(Level.INSTANCE),
            p=public_id,
            d="20260101T000000",
        )

    archive.write(run)


class Seen:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, change: Change) -> None:
        with self._lock:
            self.ids.append(change.public_id)

    def wait_for(self, count: int, timeout: float = 15) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.ids) < count:
            time.sleep(0.02)
        return list(self.ids)


def _following(archive: Archive, seen: Callable[[Change], None], **kw: Any) -> ChangeFollower:
    follower = ChangeFollower(archive, seen, interval=0.05, **kw)
    follower.start()
    return follower


def test_every_change_once_in_order_and_nothing_older(archive: Archive) -> None:
    _log(archive, "old-1")
    _log(archive, "old-2")
    seen = Seen()
    follower = _following(archive, seen)
    try:
        names = [f"new-{n}" for n in range(1200)]  # more than one batch
        for name in names:
            _log(archive, name)
        assert seen.wait_for(len(names)) == names
        clear_changes(archive)  # numbers go on: the follower is not disturbed
        _log(archive, "after-clear")
        assert seen.wait_for(len(names) + 1)[-1] == "after-clear"
        time.sleep(0.2)
        assert len(seen.ids) == len(names) + 1
    finally:
        follower.stop()


def test_a_log_cleared_before_the_start_is_followed(archive: Archive) -> None:
    for n in range(3):
        _log(archive, f"old-{n}")
    clear_changes(archive)
    assert last_seq(archive) == 0  # empty, but the next number is 4
    seen = Seen()
    follower = _following(archive, seen, start_seq=0)
    try:
        _log(archive, "first")
        assert seen.wait_for(1) == ["first"]
    finally:
        follower.stop()


def test_a_later_number_waits_for_the_earlier_one(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_feed, "GAP_GRACE", 30.0)
    _log(archive, "start")
    start = last_seq(archive)
    seen = Seen()
    follower = _following(archive, seen)
    try:
        _log_with_seq(archive, start + 2, "second")
        time.sleep(0.3)
        assert seen.ids == []  # held back: number start + 1 may still commit
        _log_with_seq(archive, start + 1, "first")
        assert seen.wait_for(2) == ["first", "second"]
    finally:
        follower.stop()


def test_a_hole_that_never_fills_is_passed_after_the_grace(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(change_feed, "GAP_GRACE", 0.3)
    _log(archive, "start")
    start = last_seq(archive)
    seen = Seen()
    follower = _following(archive, seen)
    try:
        _log_with_seq(archive, start + 5, "after-a-rollback")
        assert seen.wait_for(1) == ["after-a-rollback"]
        _log(archive, "next")
        assert seen.wait_for(2) == ["after-a-rollback", "next"]
    finally:
        follower.stop()


def test_the_follower_tells_when_changes_become_wanted_or_not(archive: Archive) -> None:
    wanted = threading.Event()
    told: queue.Queue[bool] = queue.Queue()
    follower = _following(archive, Seen(), wanted=wanted.is_set)
    try:
        follower.on_interest = told.put  # set after the start, as the server does
        assert told.get(timeout=10) is False
        wanted.set()
        assert told.get(timeout=10) is True
        wanted.clear()
        assert told.get(timeout=10) is False
        follower.wake()
        time.sleep(0.2)  # several more rounds: nothing new to tell
        assert told.empty()
    finally:
        follower.stop()
