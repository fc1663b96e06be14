"""The storage area interface: named blobs, written so that the index can stay exact.

A blob goes through three states so that "an instance is in the index if and only
if its file is in storage" survives a crash at any point:

1. ``stage(uuid, data)``: written in full (and synced) under a staging name;
2. the index transaction that references ``uuid`` commits;
3. ``publish(uuid)``: moved to its final place.

Deletion mirrors it: ``trash`` before the index commit, ``purge`` after, ``restore``
if the commit failed. ``recover(is_referenced)`` at start-up finishes or undoes
whatever a crash interrupted, looking only at the staging and trash areas.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import BinaryIO


class StorageArea(ABC):
    #: Whether ``stage`` and ``publish`` are local file operations, bounded by the
    #: disk alone (no network, no remote service): the faces may then store an
    #: instance without handing it to a thread (``core.ingest.stores_quickly``).
    local_writes: bool = False

    @abstractmethod
    def stage(self, uuid: str, data: bytes) -> None: ...

    @abstractmethod
    def publish(self, uuid: str) -> None: ...

    @abstractmethod
    def discard(self, uuid: str) -> None:
        """Drop a staged blob whose index transaction failed."""

    @abstractmethod
    def trash(self, uuid: str) -> None: ...

    @abstractmethod
    def restore(self, uuid: str) -> None: ...

    @abstractmethod
    def purge(self, uuid: str) -> None: ...

    @abstractmethod
    def read(self, uuid: str) -> bytes: ...

    @abstractmethod
    def read_range(self, uuid: str, start: int, end: int) -> bytes: ...

    @abstractmethod
    def open(self, uuid: str) -> BinaryIO: ...

    def open_descriptor(self, uuid: str) -> int | None:
        """The blob open as a file descriptor (the caller closes it), for the kernel to
        send it (``sendfile``); None where blobs are not local files."""
        return None

    @abstractmethod
    def iter_chunks(self, uuid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    @abstractmethod
    def recover(self, is_referenced: Callable[[list[str]], set[str]]) -> tuple[int, int]:
        """Finish or undo interrupted writes and deletes; answers (kept, removed)."""
