"""The index's log is copied back beside the writers, and still starts over.

``store/index/checkpoints.py``: a thread checkpoints the SQLite log while others
write; past ``CATCH_UP_FRAMES`` it copies the rest with the writers held, so that the
next writer starts the log afresh. Checked on a real SQLite index filled by ingest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import make_dicom

from dicomhub.core import ingest
from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings
from dicomhub.store.index import checkpoints
from dicomhub.store.index.checkpoints import WalCheckpointer


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    opened = Archive(
        Settings(
            storage_directory=str(tmp_path / "s"),
            index_directory=str(tmp_path / "i"),
            sync_storage_area=False,
        )
    )
    yield opened
    opened.close()


def _store(archive: Archive, count: int, prefix: str) -> list[str]:
    ids = []
    for n in range(count):
        data = make_dicom(patient_id=f"{prefix}{n % 3}", instance_number=n + 1)
        ids.append(ingest.store(archive, data).instance_id)
    return ids


def _log_frames(archive: Archive) -> int:
    """Pages in the log now (a checkpoint that finds nothing to copy tells)."""
    row = archive.index.thread_connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
    return row.fetchone()[1]


def test_the_connections_leave_checkpoints_to_the_thread(archive: Archive) -> None:
    connection = archive.index.thread_connection()
    (pages,) = connection.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == checkpoints.AUTOMATIC_FRAMES > checkpoints.CATCH_UP_FRAMES


def test_a_checkpoint_copies_the_log_and_a_long_log_starts_over(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "CATCH_UP_FRAMES", 10)
    checkpointer = WalCheckpointer(archive.index)
    stored = _store(archive, 12, "CKPT-A")
    frames = checkpointer.checkpoint()
    assert frames >= 10  # long: copied, the writers held
    _store(archive, 1, "CKPT-B")  # this writer starts the log over: its pages only
    assert _log_frames(archive) < frames / 4
    with archive.index.read() as session:  # nothing lost on the way
        assert all(session.lookup(public_id) is not None for public_id in stored)


def test_a_short_log_is_copied_without_holding_the_writers(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "CATCH_UP_FRAMES", 1 << 30)
    checkpointer = WalCheckpointer(archive.index)
    _store(archive, 3, "CKPT-C")
    database = Path(archive.settings.index_directory) / "dicomhub-index.db"
    before = database.stat().st_size
    taken = []
    real = archive.index.writers_excluded

    def spy():  # type: ignore[no-untyped-def]
        taken.append(True)
        return real()

    monkeypatch.setattr(archive.index, "writers_excluded", spy)
    frames = checkpointer.checkpoint()
    assert frames > 0 and not taken
    assert database.stat().st_size > before  # the pages reached the database file


def test_the_thread_checkpoints_until_the_index_closes(archive: Archive) -> None:
    database = Path(archive.settings.index_directory) / "dicomhub-index.db"
    archive.index.checkpoint_in_background()
    thread = archive.index._checkpointer._thread  # noqa: SLF001
    size = database.stat().st_size
    _store(archive, 3, "CKPT-D")
    deadline = time.monotonic() + 10
    while database.stat().st_size == size and time.monotonic() < deadline:
        time.sleep(0.02)
    assert database.stat().st_size > size  # copied by the thread, nobody else
    archive.index.close()
    assert not thread.is_alive()
