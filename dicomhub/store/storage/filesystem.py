"""The storage area on a local folder, laid out as Orthanc does (``ab/cd/abcd...``).

Blobs are staged in ``.incoming/`` and deleted through ``.trash/``; both are flat
folders on the same file system as the final tree, so the moves are atomic renames
and recovery after a crash only has to look at those two folders.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import BinaryIO

from .base import StorageArea

log = logging.getLogger("dicomhub.storage")

INCOMING = ".incoming"
TRASH = ".trash"
_FADVISE = hasattr(os, "posix_fadvise")  # not on every system (macOS)


class StorageError(OSError):
    """The storage area cannot hold or give back a blob (disk full, missing file...)."""


class FilesystemStorage(StorageArea):
    local_writes = True

    def __init__(self, root: str, sync: bool = True, page_cache_bytes: int = 0) -> None:
        self.root = os.path.abspath(root)
        self.sync = sync
        #: How many bytes of the newest files stay in the kernel's page cache (see
        #: ``_leave_in_page_cache``); older synced files are dropped from it.
        self.page_cache_bytes = page_cache_bytes if sync and _FADVISE else 0
        self._recent: deque[tuple[str, int]] = deque()
        self._recent_size = 0
        self._recent_lock = threading.Lock()
        self.incoming = os.path.join(self.root, INCOMING)
        self.trash_dir = os.path.join(self.root, TRASH)
        os.makedirs(self.incoming, exist_ok=True)
        os.makedirs(self.trash_dir, exist_ok=True)
        # Paths are built on every read and write: plain concatenation is cheaper
        # than ``os.path.join`` (the parts are checked UUIDs, never absolute).
        self._prefix = os.path.join(self.root, "")
        self._incoming_prefix = os.path.join(self.incoming, "")
        # One bit per ``ab/cd`` folder known to exist: a blob is moved there with one
        # rename, and a new folder costs one ``mkdir`` (not a failed rename, a
        # ``stat`` of the parent and the retry). Folders are never removed here; one
        # removed by hand is made again when the rename fails.
        self._folders = bytearray(1 << 13)

    # ---- paths --------------------------------------------------------------
    def path(self, uuid: str) -> str:
        _check_uuid(uuid)
        return f"{self._prefix}{uuid[0:2]}/{uuid[2:4]}/{uuid}"

    def _staged(self, uuid: str) -> str:
        _check_uuid(uuid)
        return f"{self._incoming_prefix}{uuid}"

    def _trashed(self, uuid: str) -> str:
        _check_uuid(uuid)
        return os.path.join(self.trash_dir, uuid)

    def _places(self, uuid: str) -> tuple[str, str, str]:
        """Where a committed blob may be: published, still staged, or published by now.

        The move from staging to the final place is atomic, so a blob missed at the
        final place and then at the staging place was moved in between: looking at
        the final place once more finds it.
        """
        final = self.path(uuid)
        return final, self._staged(uuid), final

    def _open_readable(self, uuid: str) -> BinaryIO:
        for path in self._places(uuid):
            try:
                return open(path, "rb")  # noqa: SIM115 - the caller closes it
            except FileNotFoundError:
                continue
        raise StorageError(f"missing file in the storage area: {uuid}")

    # ---- writes -------------------------------------------------------------
    def stage(self, uuid: str, data: bytes) -> None:
        path = self._staged(uuid)
        try:
            # Straight to the file descriptor: a buffered file object adds nothing to
            # one whole write, and its set-up is paid by every ingest.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.sync:
                    # The data and what reading it back needs (size, blocks), as
                    # Orthanc syncs; the file's times may follow later.
                    os.fdatasync(fd)
                    if _FADVISE and not self.page_cache_bytes:
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            if self.page_cache_bytes:
                self._leave_in_page_cache(uuid, len(data))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise StorageError(f"cannot write to the storage area: {exc.strerror or exc}") from exc

    def _leave_in_page_cache(self, uuid: str, size: int) -> None:
        """Keeps the newest files in the kernel's page cache, up to
        ``page_cache_bytes``, and drops the older ones from it.

        Letting every synced file stay in the page cache made each write dearer on
        this project's virtual machine (1.5 ms of kernel time per 0.5 MB file, against
        0.25 ms when the pages of dropped files are reused): the page cache kept
        taking pages the machine had never used. A window of recent files keeps that
        reuse, and is the storage cache of ``MaximumStorageCacheSize``: a file asked
        for soon after it arrived is read from memory, by any HTTP worker, and the
        memory is the kernel's, not copied into each process. Only synced files are
        dropped: their pages are clean and go at once, where unsynced ones would be
        written back there and then (1.4 ms against 0.1).
        """
        old: list[str] = []
        with self._recent_lock:
            self._recent.append((uuid, size))
            self._recent_size += size
            while self._recent_size > self.page_cache_bytes and len(self._recent) > 1:
                dropped, dropped_size = self._recent.popleft()
                self._recent_size -= dropped_size
                old.append(dropped)
        for name in old:
            self._drop_from_page_cache(name)

    def _drop_from_page_cache(self, uuid: str) -> None:
        for path in self._places(uuid)[:2]:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:  # moved on, or deleted (which frees its pages anyway)
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            return

    def publish(self, uuid: str) -> None:
        final = self.path(uuid)
        folder = final[: -len(uuid) - 1]
        head = uuid[0:4]
        slot = int(head, 16) if "-" not in head else -1  # "-" passes _check_uuid
        known = slot >= 0 and self._folders[slot >> 3] & (1 << (slot & 7))
        if not known:
            _make_folder(folder)
            if slot >= 0:
                self._folders[slot >> 3] |= 1 << (slot & 7)
        try:
            os.replace(self._staged(uuid), final)
        except FileNotFoundError:
            if not known:
                raise  # the folder was just made: the staged file is missing
            os.makedirs(folder, exist_ok=True)
            os.replace(self._staged(uuid), final)
        # No directory fsync here: if this rename is lost in a power cut, the blob is
        # still in the staging folder and recover() publishes it again.

    def discard(self, uuid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._staged(uuid))

    def trash(self, uuid: str) -> None:
        for source in self._places(uuid):
            try:
                os.replace(source, self._trashed(uuid))
                return
            except FileNotFoundError:
                continue
        log.warning("file to delete was already missing from the storage area: %s", uuid)

    def restore(self, uuid: str) -> None:
        final = self.path(uuid)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self._trashed(uuid), final)

    def purge(self, uuid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._trashed(uuid))

    # ---- reads --------------------------------------------------------------
    def read(self, uuid: str) -> bytes:
        # The file descriptor directly (no buffered file object): a download reads
        # the whole file once, in one system call when its size is known.
        fd = self._open_fd(uuid)
        try:
            size = os.fstat(fd).st_size
            data = os.read(fd, size + 1)
            if len(data) != size:  # a short read, or a file that grew: read to the end
                parts = [data]
                while chunk := os.read(fd, 1 << 20):
                    parts.append(chunk)
                data = b"".join(parts)
            return data
        finally:
            os.close(fd)

    def _open_fd(self, uuid: str) -> int:
        for path in self._places(uuid):
            try:
                return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
        raise StorageError(f"missing file in the storage area: {uuid}")

    def read_range(self, uuid: str, start: int, end: int) -> bytes:
        with self._open_readable(uuid) as f:
            f.seek(start)
            return f.read(max(0, end - start))

    def open(self, uuid: str) -> BinaryIO:
        return self._open_readable(uuid)

    def open_descriptor(self, uuid: str) -> int:
        return self._open_fd(uuid)

    def iter_chunks(self, uuid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open(uuid) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    # ---- crash recovery -----------------------------------------------------
    def recover(self, is_referenced: Callable[[list[str]], set[str]]) -> tuple[int, int]:
        kept = removed = 0
        for folder, referenced_action, orphan_action in (
            (self.incoming, self.publish, self.discard),
            (self.trash_dir, self.restore, self.purge),
        ):
            names = [n for n in os.listdir(folder) if _is_uuid(n)]
            for n in os.listdir(folder):
                if not _is_uuid(n):  # a partial write's leftovers
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(folder, n))
            referenced = is_referenced(names) if names else set()
            for name in names:
                if name in referenced:
                    referenced_action(name)
                    kept += 1
                else:
                    orphan_action(name)
                    removed += 1
        if kept or removed:
            log.warning("storage recovery: %d file(s) kept, %d removed", kept, removed)
        return kept, removed


def _make_folder(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` starting from the likely case: only the
    last level is missing (or none is)."""
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)


def _sync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_uuid(name: str) -> bool:
    # ``strip`` removes every character when all are allowed ones (one C call).
    return len(name) == 36 and not name.strip("0123456789abcdef-")


def _check_uuid(uuid: str) -> None:
    """Refuse anything that is not a plain UUID, so no path can leave the storage folder."""
    if not _is_uuid(uuid):
        raise StorageError(f"invalid storage identifier: {uuid!r}")
