"""The archive: the one object the faces talk to.

It owns the index, the storage area, the group committer and the event bus, and
it is where the invariants are kept: an instance is in the index if and only if its
file is in storage, a parent exists while it has children, every change is logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TypeVar

from ..dicom.main_tags import configure_extra_main_tags
from ..store.index.engine import open_engine
from ..store.index.index import Index, IndexSession
from ..store.storage.base import StorageArea
from ..store.storage.filesystem import FilesystemStorage
from .clock import now_iso
from .enums import ChangeType
from .events import Change, EventBus
from .settings import Settings
from .transactions import GroupCommitter, Transaction

log = logging.getLogger("dicomhub.archive")

T = TypeVar("T")


class Archive:
    def __init__(
        self, settings: Settings, storage: StorageArea | None = None, recover: bool = True
    ) -> None:
        self.settings = settings
        configure_extra_main_tags(settings.extra_main_tags)
        os.makedirs(settings.storage_directory, exist_ok=True)
        # The storage cache (MaximumStorageCacheSize) is the kernel's page cache:
        # each worker leaves its share of the newest files there.
        cache_share = max(0, settings.storage_cache_mb) * 1024 * 1024 // settings.http_workers
        self.storage = storage or FilesystemStorage(
            settings.storage_directory,
            sync=settings.sync_storage_area,
            page_cache_bytes=cache_share,
        )
        lock_path = None
        if not settings.database_url:
            os.makedirs(settings.index_directory, exist_ok=True)
            lock_path = os.path.join(settings.index_directory, "dicomhub-index.lock")
        self.index = Index(
            open_engine(settings.database_url, settings.index_directory),
            lock_path=lock_path,
        )
        if recover:
            # Only safe while no other process writes (before the HTTP workers start).
            with self.index.read() as session:
                self.storage.recover(session.known_uuids)
        self.committer = GroupCommitter(self.index)
        self.events = EventBus()

    # ---- transactions -------------------------------------------------------
    def write(self, fn: Callable[[Transaction], T]) -> T:
        return self.committer.run(fn)

    def read(self):  # type: ignore[no-untyped-def]
        return self.index.read()

    def log_change(self, tx: Transaction, change: ChangeType, level: int, public_id: str) -> None:
        """Record a change in the log and announce it once the transaction commits."""
        date = now_iso()
        tx.session.log_change(int(change), level, public_id, date)
        event = Change(int(change), level, public_id, date)
        tx.on_commit(lambda: self.events.publish(event))

    def close(self) -> None:
        self.committer.close()
        self.index.close()


def require_resource(session: IndexSession, public_id: str, level: int | None = None):  # type: ignore[no-untyped-def]
    """The resource named ``public_id`` (at ``level`` if given), or UnknownResource.

    The error carries no details, as Orthanc's: the identifier is already in the URI.
    """
    from .errors import UnknownResource

    row = session.lookup(public_id)
    if row is None or (level is not None and row.level != level):
        raise UnknownResource()
    return row
