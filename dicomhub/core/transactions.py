"""Group commit: every write to the index goes through one writer thread.

Concurrent uploads each prepare their work (parse, stage the file) in their own
thread, then hand a small function to the writer. The writer runs whatever is
queued in ONE database transaction, each function inside its own savepoint, so a
failing item rolls back alone while the others share a single commit (one fsync
for many instances). Files are published or discarded by hooks that run after the
commit or the rollback, which keeps index and storage in step.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..store.index.index import Index, IndexSession
from ..store.storage.base import StorageArea

log = logging.getLogger("dicomhub.index")

T = TypeVar("T")

MAX_BATCH = 64


class Transaction:
    """What a write function sees: the session plus commit / rollback hooks."""

    def __init__(self, session: IndexSession) -> None:
        self.session = session
        self._on_commit: list[Callable[[], None]] = []
        self._on_rollback: list[Callable[[], None]] = []

    def on_commit(self, hook: Callable[[], None]) -> None:
        self._on_commit.append(hook)

    def on_rollback(self, hook: Callable[[], None]) -> None:
        self._on_rollback.append(hook)

    def delete_file_on_commit(self, storage: StorageArea, uuid: str) -> None:
        """Deletes a stored file with this transaction: moved to the trash now, put
        back if it rolls back, purged once it commits (synced first, so that a power
        cut cannot keep the rows of a file already gone)."""
        storage.trash(uuid)
        self.session.durable = True
        self.on_rollback(lambda: storage.restore(uuid))
        self.on_commit(lambda: storage.purge(uuid))

    def run_hooks(self, committed: bool) -> None:
        for hook in self._on_commit if committed else reversed(self._on_rollback):
            try:
                hook()
            except Exception:  # a hook must never break the writer
                log.exception("transaction hook failed")


class _Item:
    """One queued write and, once its batch ran, its outcome.

    Not a ``concurrent.futures.Future``: nobody waits on it (the caller waits on
    the writer lock), so a Future's condition variable and its locking on every
    set and read were pure overhead on every write.
    """

    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn: Callable[[Transaction], Any]) -> None:
        self.fn = fn
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def set_result(self, result: Any) -> None:
        self.result = result
        self.done = True

    def set_exception(self, error: BaseException) -> None:
        self.error = error
        self.done = True


class _RollBack(Exception):
    """Abandons a transaction whose only item failed."""


class GroupCommitter:
    """Flat combining: whoever holds the writer lock commits everyone's queued work.

    A caller queues its function, then takes the lock. If an earlier holder already
    committed the function meanwhile, it just returns; otherwise it drains the queue
    (its own function included) into one transaction. One uncontended upload thus
    commits in its own thread without a hand-off, and concurrent uploads share
    commits: while one thread waits for the disk, the others queue up behind it.
    """

    def __init__(self, index: Index) -> None:
        self.index = index
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    def run(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` in a write transaction and wait for its commit."""
        if getattr(self._local, "writing", False):
            raise RuntimeError("nested write transaction")
        if self._closed:
            raise RuntimeError("the index is closed")
        item = _Item(fn)
        self._queue.put(item)
        while not item.done:
            with self._lock:
                if item.done:
                    break
                batch: list[_Item] = []  # FIFO: our item is in this batch or a later one
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                self._local.writing = True
                try:
                    self._run_batch(batch)
                finally:
                    self._local.writing = False
        if item.error is not None:
            raise item.error
        return item.result

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _run_batch(self, batch: list[_Item]) -> None:
        done: list[tuple[_Item, Transaction, Any]] = []
        failed: list[tuple[_Item, Transaction, BaseException]] = []
        # Alone in its transaction, an item needs no savepoint: its failure rolls
        # the whole transaction back.
        alone = len(batch) == 1
        try:
            with self.index.write() as session:
                for item in batch:
                    tx = Transaction(session)
                    try:
                        if alone:
                            result = item.fn(tx)
                        else:
                            with session.savepoint():
                                result = item.fn(tx)
                        done.append((item, tx, result))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        failed.append((item, tx, exc))
                        if alone:
                            raise _RollBack from exc
        except _RollBack:
            pass  # the failed item is answered below; nothing else was in the batch
        except BaseException as exc:  # the commit itself failed: nothing was written
            log.error("index transaction failed: %s", exc)
            for item, tx, _ in done:
                tx.run_hooks(committed=False)
                item.set_exception(exc)
            for item, tx, err in failed:
                tx.run_hooks(committed=False)
                item.set_exception(err)
            for item in batch:
                if not item.done:
                    item.set_exception(exc)
            return
        for item, tx, result in done:
            tx.run_hooks(committed=True)
            item.set_result(result)
        for item, tx, err in failed:
            tx.run_hooks(committed=False)
            item.set_exception(err)
