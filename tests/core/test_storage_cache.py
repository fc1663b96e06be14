"""The storage cache (``MaximumStorageCacheSize``) is the kernel's page cache: the
newest synced files stay there up to the configured size, older ones are dropped.

Whether a file is in the page cache is asked of the kernel itself: a read with
``RWF_NOWAIT`` fails rather than wait for the disk when the page is not cached.
"""

from __future__ import annotations

import os
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path

import pytest
from dicom_factory import make_dicom

from dicomhub.core.archive import Archive
from dicomhub.core.deletion import delete_resource
from dicomhub.core.ingest import Origin, store
from dicomhub.dicom.levels import Level
from dicomhub.store.storage.filesystem import FilesystemStorage

pytestmark = pytest.mark.skipif(
    not hasattr(os, "RWF_NOWAIT") or not hasattr(os, "posix_fadvise"),
    reason="needs Linux's RWF_NOWAIT reads and posix_fadvise",
)

KB = 1024


def _in_page_cache(storage: FilesystemStorage, uuid: str) -> bool:
    """Whether the first page of the stored file can be read without the disk."""
    fd = os.open(storage.path(uuid), os.O_RDONLY)
    try:
        try:
            os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
        except BlockingIOError:
            return False
        return True
    finally:
        os.close(fd)


def _write(storage: FilesystemStorage, count: int, size: int) -> list[str]:
    uuids = [str(uuidlib.uuid4()) for _ in range(count)]
    for uuid in uuids:
        storage.stage(uuid, os.urandom(size))
        storage.publish(uuid)
    return uuids


def test_the_newest_files_stay_in_the_page_cache_up_to_the_size(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=True, page_cache_bytes=100 * KB)
    uuids = _write(storage, 10, 20 * KB)  # 200 kB written, 100 kB kept
    resident = [_in_page_cache(storage, uuid) for uuid in uuids]
    assert resident == [False] * 5 + [True] * 5
    for uuid in uuids:  # dropped from memory, never from the disk
        assert len(storage.read(uuid)) == 20 * KB


def test_without_a_cache_each_file_leaves_the_page_cache_once_synced(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=True, page_cache_bytes=0)
    uuids = _write(storage, 3, 20 * KB)
    assert [_in_page_cache(storage, uuid) for uuid in uuids] == [False] * 3


def test_unsynced_files_are_left_to_the_kernel(tmp_path: Path) -> None:
    """Dropping dirty pages would write them back there and then: without
    SyncStorageArea nothing is dropped, whatever the size."""
    storage = FilesystemStorage(str(tmp_path), sync=False, page_cache_bytes=10 * KB)
    assert storage.page_cache_bytes == 0
    uuids = _write(storage, 4, 20 * KB)
    assert all(_in_page_cache(storage, uuid) for uuid in uuids)


def test_a_file_deleted_while_in_the_window_is_skipped(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=True, page_cache_bytes=40 * KB)
    first = _write(storage, 2, 20 * KB)
    storage.trash(first[0])
    storage.purge(first[0])
    later = _write(storage, 2, 20 * KB)  # pushes both first files out of the window
    assert not _in_page_cache(storage, first[1])
    assert all(_in_page_cache(storage, uuid) for uuid in later)


def test_a_file_larger_than_the_cache_is_dropped_by_the_next_one(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=True, page_cache_bytes=10 * KB)
    big, small = _write(storage, 1, 50 * KB) + _write(storage, 1, 1 * KB)
    assert not _in_page_cache(storage, big)
    assert _in_page_cache(storage, small)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"HttpWorkers": 1}, 128 * 1024 * KB),
        ({"MaximumStorageCacheSize": 10, "HttpWorkers": 2}, 5 * 1024 * KB),
        ({"MaximumStorageCacheSize": 0}, 0),
        ({"MaximumStorageCacheSize": 10, "SyncStorageArea": False}, 0),
    ],
)
def test_the_archive_shares_the_configured_size_among_the_workers(
    make_archive: Callable[..., Archive], config: dict[str, object], expected: int
) -> None:
    archive = make_archive(**config)
    assert isinstance(archive.storage, FilesystemStorage)
    assert archive.storage.page_cache_bytes == expected


def test_an_instance_just_stored_is_read_from_memory(make_archive: Callable[..., Archive]) -> None:
    archive = make_archive(MaximumStorageCacheSize=1)
    storage = archive.storage
    assert isinstance(storage, FilesystemStorage)
    data = make_dicom(patient_id="CACHED")
    instance = store(archive, data, Origin(origin="RestApi")).instance_id
    with archive.read() as session:
        row = session.lookup(instance)
        assert row is not None
        att = session.attachment(row.id, 1)
    assert att is not None and _in_page_cache(storage, att.uuid)
    delete_resource(archive, instance, Level.INSTANCE)
    assert not os.path.exists(storage.path(att.uuid))
