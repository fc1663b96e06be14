"""Index commits are not synced one by one (as Orthanc's are not), except those that
delete files: their write-ahead log is synced before the files are purged, so that a
power cut cannot leave rows whose files are gone.

The syncs are observed (``os.fsync`` is wrapped, still called), on a real archive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from dicom_factory import make_dicom

from dicomhub.core.archive import Archive
from dicomhub.core.deletion import delete_resource
from dicomhub.core.ingest import Origin, store
from dicomhub.dicom.levels import Level


@pytest.fixture
def archive(make_archive: Callable[..., Archive]) -> Archive:
    return make_archive(SyncStorageArea=False)  # only the index's syncs are seen below


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, set[str]]]:
    """Each fsync: the file synced, and the files in the trash at that moment."""
    calls: list[tuple[str, set[str]]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        trash = Path(path).parents[1] / "storage" / ".trash"
        calls.append((path, set(os.listdir(trash)) if trash.is_dir() else set()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def _upload(archive: Archive, patient: str) -> str:
    return store(archive, make_dicom(patient_id=patient), Origin(origin="RestApi")).instance_id


def test_an_upload_commits_without_syncing_the_index(
    archive: Archive, synced: list[tuple[str, set[str]]]
) -> None:
    _upload(archive, "FAST")
    assert not [path for path, _ in synced if path.endswith("-wal")]


def test_a_delete_syncs_its_commit_before_purging_the_files(
    archive: Archive, synced: list[tuple[str, set[str]]]
) -> None:
    instance = _upload(archive, "GONE")
    with archive.index.read() as session:
        row = session.lookup(instance)
        assert row is not None
        uuids = {att.uuid for att in session.attachments_under([row])}
    synced.clear()
    delete_resource(archive, instance, Level.INSTANCE)
    log_syncs = [trash for path, trash in synced if path.endswith("dicomhub-index.db-wal")]
    assert log_syncs, synced
    # At the sync, the deleted file still waited in the trash; it is gone now.
    assert uuids <= log_syncs[0]
    assert not os.listdir(Path(archive.settings.storage_directory) / ".trash")
