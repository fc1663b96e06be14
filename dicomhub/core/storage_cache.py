"""The storage cache: files recently written or read, kept in memory.

As in Orthanc (``MaximumStorageCacheSize``, 128 MB by default, 0 turns it off), the
stored bytes of recent files are kept in the process, least recently used dropped
first. A file asked for soon after it arrived (a viewer opening a study just
received, a Lua callback forwarding each new instance, the ``/tags`` of a new
instance) is served without touching the disk. Files are immutable under their
UUID, and a UUID is never reused, so an entry is never stale; deleting a file drops
its entry in this process (another worker's copy can no longer be asked for, since
the index no longer names it).

The storage area itself drops new files from the kernel's page cache once synced
(``store/storage/filesystem.py``): this cache is where recent files live instead.
Files read from the disk are kept while there is room, without pushing others out
(``_admit``).
With several HTTP workers, each holds an equal share of the configured size.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..store.storage.base import StorageArea


class StorageCache(StorageArea):
    """A storage area behind a least-recently-used cache of whole files."""

    def __init__(self, inner: StorageArea, capacity_bytes: int) -> None:
        self.inner = inner
        self.capacity = capacity_bytes
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    # ---- the cache ------------------------------------------------------------------
    def _get(self, uuid: str) -> bytes | None:
        with self._lock:
            data = self._files.get(uuid)
            if data is not None:
                self._files.move_to_end(uuid)
            return data

    def _put(self, uuid: str, data: bytes) -> None:
        size = len(data)
        if size > self.capacity // 2:  # one file must not wipe out the others
            return
        with self._lock:
            old = self._files.pop(uuid, None)
            if old is not None:
                self._size -= len(old)
            self._files[uuid] = data
            self._size += size
            while self._size > self.capacity:
                _, dropped = self._files.popitem(last=False)
                self._size -= len(dropped)

    def _admit(self, uuid: str, data: bytes) -> None:
        """A file read from the disk is kept only while there is room: reads never
        push files out. A client going round more files than the cache holds (a
        study downloaded again and again) would otherwise replace every file before
        it is asked for again, paying for each read twice and never hitting; the
        kernel's page cache serves such reads as well."""
        if self._size + len(data) <= self.capacity:
            self._put(uuid, data)

    def _forget(self, uuid: str) -> None:
        with self._lock:
            old = self._files.pop(uuid, None)
            if old is not None:
                self._size -= len(old)

    @property
    def cached_bytes(self) -> int:
        return self._size

    # ---- writes ---------------------------------------------------------------------
    def stage(self, uuid: str, data: bytes) -> None:
        self.inner.stage(uuid, data)
        # Cached now: nothing reads a UUID before its index transaction commits, and
        # a transaction that does not commit discards the file (below).
        self._put(uuid, bytes(data))

    def publish(self, uuid: str) -> None:
        self.inner.publish(uuid)

    def discard(self, uuid: str) -> None:
        self._forget(uuid)
        self.inner.discard(uuid)

    def trash(self, uuid: str) -> None:
        self._forget(uuid)
        self.inner.trash(uuid)

    def restore(self, uuid: str) -> None:
        self.inner.restore(uuid)

    def purge(self, uuid: str) -> None:
        self._forget(uuid)
        self.inner.purge(uuid)

    # ---- reads ----------------------------------------------------------------------
    def read(self, uuid: str) -> bytes:
        data = self._get(uuid)
        if data is None:
            data = self.inner.read(uuid)
            self._admit(uuid, data)
        return data

    def read_range(self, uuid: str, start: int, end: int) -> bytes:
        data = self._get(uuid)
        if data is None:
            return self.inner.read_range(uuid, start, end)
        return data[start:end]

    def open(self, uuid: str) -> BinaryIO:
        data = self._get(uuid)
        if data is None:
            return self.inner.open(uuid)
        return io.BytesIO(data)

    def iter_chunks(self, uuid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        data = self._get(uuid)
        if data is None:
            yield from self.inner.iter_chunks(uuid, chunk_size)
            return
        view = memoryview(data)
        for start in range(0, len(data), chunk_size):
            yield bytes(view[start : start + chunk_size])

    def recover(self, is_referenced: Callable[[list[str]], set[str]]) -> tuple[int, int]:
        return self.inner.recover(is_referenced)


def with_cache(storage: StorageArea, capacity_mb: int, workers: int = 1) -> StorageArea:
    """``storage`` behind a cache of ``capacity_mb`` shared by ``workers`` processes
    (each holds its share); the storage itself when the size is 0."""
    capacity = max(0, capacity_mb) * 1024 * 1024 // max(1, workers)
    return StorageCache(storage, capacity) if capacity > 0 else storage


def uncached(storage: StorageArea) -> StorageArea:
    """The storage area behind the cache, if any: for what must see the disk itself
    (``verify-md5``)."""
    return storage.inner if isinstance(storage, StorageCache) else storage
