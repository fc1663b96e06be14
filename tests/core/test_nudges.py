"""Nudges between workers (``core.nudges``) over a real Unix datagram socket: the
primary's targets run per nudge, and senders send only what the primary wants."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomhub.core import nudges
from dicomhub.core.nudges import CHANGES, JOBS, NudgeListener, NudgeSender, flag_path


@pytest.fixture
def received() -> queue.Queue[bytes]:
    return queue.Queue()


@pytest.fixture
def listener(tmp_path: Path, received: queue.Queue[bytes]) -> Iterator[NudgeListener]:
    path = str(tmp_path / "nudges.sock")
    running = NudgeListener(
        path, {CHANGES: lambda: received.put(CHANGES), JOBS: lambda: received.put(JOBS)}
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def sender(listener: NudgeListener, monkeypatch: pytest.MonkeyPatch) -> Iterator[NudgeSender]:
    monkeypatch.setattr(nudges, "FLAG_CHECK_PERIOD", 0.0)  # look at the flag every time
    running = NudgeSender(listener.path)
    yield running
    running.close()


def test_every_target_is_wanted_from_the_start(
    listener: NudgeListener, sender: NudgeSender, received: queue.Queue[bytes]
) -> None:
    sender.send(CHANGES)
    sender.send(JOBS)
    assert received.get(timeout=10) == CHANGES
    assert received.get(timeout=10) == JOBS


def test_a_nudge_the_primary_does_not_want_is_not_sent(
    listener: NudgeListener, sender: NudgeSender, received: queue.Queue[bytes]
) -> None:
    listener.want(CHANGES, False)
    sender.send(CHANGES)
    sender.send(JOBS)
    # Datagrams from one socket arrive in order: a CHANGES sent would come first.
    assert received.get(timeout=10) == JOBS
    listener.want(CHANGES, True)
    sender.send(CHANGES)
    assert received.get(timeout=10) == CHANGES


def test_a_sender_looks_at_the_flag_again_after_the_check_period(
    listener: NudgeListener, received: queue.Queue[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr(nudges, "_clock", lambda: clock[0])
    sender = NudgeSender(listener.path)
    try:
        sender.send(CHANGES)  # wanted, as seen now
        assert received.get(timeout=10) == CHANGES
        listener.want(CHANGES, False)
        clock[0] += 2 * nudges.FLAG_CHECK_PERIOD  # the flag is looked at again
        sender.send(CHANGES)
        sender.send(JOBS)
        assert received.get(timeout=10) == JOBS
    finally:
        sender.close()


def test_stopping_withdraws_the_flags_and_a_new_primary_starts_clean(tmp_path: Path) -> None:
    path = str(tmp_path / "nudges.sock")
    first = NudgeListener(path, {JOBS: lambda: None})
    first.start()
    assert Path(flag_path(path, JOBS)).exists()
    assert not Path(flag_path(path, CHANGES)).exists()
    first.stop()
    assert not Path(flag_path(path, JOBS)).exists()
    Path(flag_path(path, CHANGES)).touch()  # left by a primary that died
    second = NudgeListener(path, {JOBS: lambda: None})
    second.start()
    try:
        assert not Path(flag_path(path, CHANGES)).exists()
        assert Path(flag_path(path, JOBS)).exists()
    finally:
        second.stop()
