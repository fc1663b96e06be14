"""The storage area's states: staged, published, trashed, and what recovery does."""

from __future__ import annotations

import os
import threading
import uuid as uuidlib
from pathlib import Path

import pytest

from dicomhub.store.storage.filesystem import FilesystemStorage, StorageError


def test_a_committed_blob_is_readable_before_and_after_publication(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    uuid = str(uuidlib.uuid4())
    storage.stage(uuid, b"payload")
    assert storage.read(uuid) == b"payload"  # committed, not yet published
    storage.publish(uuid)
    assert storage.read(uuid) == b"payload"
    assert storage.read_range(uuid, 1, 4) == b"ayl"
    assert os.listdir(tmp_path / ".incoming") == []


def test_reads_racing_with_publication_always_find_the_blob(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    uuids = [str(uuidlib.uuid4()) for _ in range(300)]
    for uuid in uuids:
        storage.stage(uuid, uuid.encode())
    failures: list[str] = []

    def reader() -> None:
        for uuid in uuids:
            try:
                assert storage.read(uuid) == uuid.encode()
            except StorageError:
                failures.append(uuid)

    thread = threading.Thread(target=reader)
    thread.start()
    for uuid in uuids:
        storage.publish(uuid)
    thread.join(timeout=30)
    assert failures == []


def test_trash_finds_a_blob_in_either_place_and_restore_brings_it_back(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    staged, published = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    storage.stage(staged, b"a")
    storage.stage(published, b"b")
    storage.publish(published)
    storage.trash(staged)
    storage.trash(published)
    with pytest.raises(StorageError):
        storage.read(published)
    storage.restore(published)
    assert storage.read(published) == b"b"
    storage.purge(staged)
    assert os.listdir(tmp_path / ".trash") == []


def test_recovery_keeps_referenced_blobs_and_removes_orphans(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    kept, orphan, deleted, undeleted = (str(uuidlib.uuid4()) for _ in range(4))
    storage.stage(kept, b"k")  # committed before a crash, never published
    storage.stage(orphan, b"o")  # its transaction never committed
    for uuid in (deleted, undeleted):
        storage.stage(uuid, b"d")
        storage.publish(uuid)
        storage.trash(uuid)
    (tmp_path / ".incoming" / "partial.tmp").write_bytes(b"junk")
    referenced = {kept, undeleted}
    assert storage.recover(lambda names: {n for n in names if n in referenced}) == (2, 2)
    assert storage.read(kept) == b"k"
    assert storage.read(undeleted) == b"d"
    for gone in (orphan, deleted):
        with pytest.raises(StorageError):
            storage.read(gone)
    assert os.listdir(tmp_path / ".incoming") == [] and os.listdir(tmp_path / ".trash") == []


def test_identifiers_cannot_leave_the_storage_folder(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    for bad in ("../../etc/passwd", "x" * 36, "", "0" * 17 + "/" + "0" * 18, "." * 36):
        with pytest.raises(StorageError):
            storage.read(bad)


@pytest.mark.parametrize("size", [0, 1, 4096, 3 * 1024 * 1024 + 7])
def test_blobs_of_any_size_come_back_whole(tmp_path: Path, size: int) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=True)
    uuid = str(uuidlib.uuid4())
    data = os.urandom(size)
    storage.stage(uuid, data)
    storage.publish(uuid)
    assert storage.read(uuid) == data
    assert b"".join(storage.iter_chunks(uuid)) == data
    assert (tmp_path / uuid[0:2] / uuid[2:4] / uuid).read_bytes() == data
    fd = storage.open_descriptor(uuid)  # what downloads hand to ``sendfile``
    try:
        assert os.pread(fd, size + 1, 0) == data
    finally:
        os.close(fd)


def test_a_missing_blob_is_a_storage_error(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    with pytest.raises(StorageError, match="missing file"):
        storage.read(str(uuidlib.uuid4()))
    with pytest.raises(StorageError, match="missing file"):
        storage.open_descriptor(str(uuidlib.uuid4()))


def test_publication_makes_missing_folders_even_after_they_were_removed(tmp_path: Path) -> None:
    """The folders are made on the first publication into them, and made again when
    one known to exist was removed behind the storage area's back."""
    import shutil

    storage = FilesystemStorage(str(tmp_path), sync=False)
    first = "abcd" + str(uuidlib.uuid4())[4:]
    second = "abcd" + str(uuidlib.uuid4())[4:]
    storage.stage(first, b"first")
    storage.publish(first)
    assert (tmp_path / "ab" / "cd" / first).read_bytes() == b"first"
    shutil.rmtree(tmp_path / "ab")
    storage.stage(second, b"second")
    storage.publish(second)
    assert (tmp_path / "ab" / "cd" / second).read_bytes() == b"second"
    assert os.listdir(tmp_path / ".incoming") == []


def test_publication_of_an_unusual_identifier_still_lands_in_its_folder(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    odd = "a-" + "0" * 34  # only hex digits and dashes: accepted, not a real UUID
    storage.stage(odd, b"odd")
    storage.publish(odd)
    assert (tmp_path / "a-" / "00" / odd).read_bytes() == b"odd"
    assert storage.read(odd) == b"odd"


def test_publishing_a_blob_never_staged_fails(tmp_path: Path) -> None:
    storage = FilesystemStorage(str(tmp_path), sync=False)
    with pytest.raises(FileNotFoundError):
        storage.publish(str(uuidlib.uuid4()))
