"""The storage cache (``MaximumStorageCacheSize``): recent files are served from
memory, the least recently used go first, deleted files are forgotten.

The files are real ones in a real storage area; whether a read came from the cache
is seen by removing the file from the disk behind the cache's back.
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
from dicomhub.core.storage_cache import StorageCache, with_cache
from dicomhub.dicom.levels import Level
from dicomhub.store.storage.filesystem import FilesystemStorage, StorageError

KB = 1024


def _cache(tmp_path: Path, capacity: int) -> tuple[StorageCache, FilesystemStorage]:
    disk = FilesystemStorage(str(tmp_path / "storage"), sync=False)
    return StorageCache(disk, capacity), disk


def _write(cache: StorageCache, uuid: str, data: bytes) -> None:
    cache.stage(uuid, data)
    cache.publish(uuid)


def _off_disk(disk: FilesystemStorage, uuid: str) -> None:
    os.unlink(disk.path(uuid))


def _uuid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def test_a_written_file_is_read_from_memory(tmp_path: Path) -> None:
    cache, disk = _cache(tmp_path, 1024 * KB)
    _write(cache, _uuid(1), b"first file")
    _off_disk(disk, _uuid(1))
    assert cache.read(_uuid(1)) == b"first file"
    assert cache.read_range(_uuid(1), 6, 10) == b"file"
    with cache.open(_uuid(1)) as stream:
        assert stream.read() == b"first file"
    assert b"".join(cache.iter_chunks(_uuid(1), 4)) == b"first file"


def test_a_file_read_from_disk_is_kept(tmp_path: Path) -> None:
    cache, disk = _cache(tmp_path, 1024 * KB)
    disk.stage(_uuid(2), b"written by another process")
    disk.publish(_uuid(2))
    assert cache.read(_uuid(2)) == b"written by another process"
    _off_disk(disk, _uuid(2))
    assert cache.read(_uuid(2)) == b"written by another process"


def test_reads_fill_free_room_but_push_nothing_out(tmp_path: Path) -> None:
    cache, disk = _cache(tmp_path, 700 * KB)
    for n in range(3):
        disk.stage(_uuid(n), bytes([n]) * 300 * KB)
        disk.publish(_uuid(n))
    for n in range(3):  # the first two fit, the third would push one out
        assert cache.read(_uuid(n)) == bytes([n]) * 300 * KB
    for n in range(3):
        _off_disk(disk, _uuid(n))
    for n in (0, 1):
        assert cache.read(_uuid(n)) == bytes([n]) * 300 * KB
    with pytest.raises(StorageError):
        cache.read(_uuid(2))


def test_the_least_recently_used_go_first(tmp_path: Path) -> None:
    cache, disk = _cache(tmp_path, 1000 * KB)
    for n in range(4):
        _write(cache, _uuid(n), bytes([n]) * 300 * KB)
    assert cache.cached_bytes <= 1000 * KB
    # 0 was dropped to make room for 3; 1 is read (used) so that 4 drops 2 instead.
    assert cache.read(_uuid(1)) == bytes([1]) * 300 * KB
    _write(cache, _uuid(4), bytes([4]) * 300 * KB)
    for n in range(5):
        _off_disk(disk, _uuid(n))
    for n in (1, 3, 4):
        assert cache.read(_uuid(n)) == bytes([n]) * 300 * KB
    for n in (0, 2):
        with pytest.raises(StorageError):
            cache.read(_uuid(n))


def test_a_file_bigger_than_half_the_cache_is_not_kept(tmp_path: Path) -> None:
    cache, disk = _cache(tmp_path, 100 * KB)
    _write(cache, _uuid(5), b"x" * 60 * KB)
    assert cache.cached_bytes == 0
    _off_disk(disk, _uuid(5))
    with pytest.raises(StorageError):
        cache.read(_uuid(5))


def test_discarded_and_deleted_files_are_forgotten(tmp_path: Path) -> None:
    cache, _disk = _cache(tmp_path, 1024 * KB)
    cache.stage(_uuid(6), b"never committed")
    cache.discard(_uuid(6))
    _write(cache, _uuid(7), b"deleted")
    cache.trash(_uuid(7))
    cache.purge(_uuid(7))
    assert cache.cached_bytes == 0
    for uuid in (_uuid(6), _uuid(7)):
        with pytest.raises(StorageError):
            cache.read(uuid)


def test_the_size_is_shared_by_the_workers_and_zero_turns_it_off(tmp_path: Path) -> None:
    disk = FilesystemStorage(str(tmp_path / "storage"))
    shared = with_cache(disk, 128, workers=2)
    assert isinstance(shared, StorageCache) and shared.capacity == 64 * 1024 * KB
    assert with_cache(disk, 0) is disk


@pytest.fixture
def archive(make_archive: Callable[..., Archive]) -> Archive:
    return make_archive(MaximumStorageCacheSize=1)


def test_the_archive_uses_the_configured_cache(archive: Archive) -> None:
    assert isinstance(archive.storage, StorageCache)
    assert archive.storage.capacity == 1024 * KB
    data = make_dicom(patient_id="CACHED")
    instance = store(archive, data, Origin(origin="RestApi")).instance_id
    assert archive.storage.cached_bytes == len(data)
    delete_resource(archive, instance, Level.INSTANCE)
    assert archive.storage.cached_bytes == 0
