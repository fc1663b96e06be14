"""Opening the index database.

SQLite is the embedded default (WAL, one writer, many readers, each thread on its
own pooled connection). PostgreSQL is a second dialect of the same schema and SQL:
nothing outside this module knows which one is in use.
"""

from __future__ import annotations

import os

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from .checkpoints import AUTOMATIC_FRAMES


def sqlite_engine(index_directory: str) -> Engine:
    os.makedirs(index_directory, exist_ok=True)
    path = os.path.join(os.path.abspath(index_directory), "dicomhub-index.db")
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=QueuePool,
        pool_size=16,
        max_overflow=48,
        connect_args={"check_same_thread": False, "timeout": 60},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite: the index issues BEGIN,
        # SAVEPOINT and COMMIT itself (per-instance savepoints in group commits).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # A commit is written to the WAL but not synced (as Orthanc's SQLite index
        # does not sync its commits either): it survives the process being killed,
        # and a power cut may undo the last ones, leaving consistent tables and at
        # worst files nobody indexes. Commits that delete files are synced
        # (``IndexSession.durable``), and the WAL is synced at each checkpoint.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-8192")  # per connection
        cursor.execute("PRAGMA temp_store=MEMORY")
        # No memory-mapped reads: a connection that finds the database changed by
        # another drops its whole mapping and maps it again, so with writes from
        # several processes nearly every transaction paid an mmap, a munmap and
        # page faults (measured: 4-7 % of the CPU of a small upload).
        cursor.execute("PRAGMA mmap_size=0")
        # Checkpoints run beside the writers (``checkpoints.py``); SQLite's own, in
        # the committing connection, only past a size that thread never lets the log
        # reach.
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOMATIC_FRAMES}")
        cursor.close()

    return engine


def open_engine(url: str | None, index_directory: str) -> Engine:
    """An engine for ``url`` (PostgreSQL) or the embedded SQLite file by default."""
    if url:
        return create_engine(url, pool_size=16, max_overflow=48, pool_pre_ping=True)
    return sqlite_engine(index_directory)
