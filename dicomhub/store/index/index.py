"""The index: every question ``core`` asks of the database, in portable SQL.

``Index.read()`` and ``Index.write()`` hand out an ``IndexSession`` bound to one
connection; a write session is one transaction. The SQL is the common subset of
SQLite and PostgreSQL (``RETURNING``, ``ON CONFLICT``), so a second dialect is a
second engine, not a second index.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from .checkpoints import WalCheckpointer
from .records import AttachmentRow, ChangeRow, ExportRow, ResourceRow
from .schema import (
    COUNTER_NAMES,
    PATIENT_ROWS,
    RETIRED_INDEXES,
    SCHEMA_VERSION,
    UNSTABLE_ROWS,
    metadata,
)

_RESOURCE_COLS = "id, public_id, level, parent_id, protected, stable"
_ATTACHMENT_COLS = (
    "content_type, uuid, compressed_size, uncompressed_size, compression, "
    "uncompressed_md5, compressed_md5, revision"
)
_LEVEL_COUNTERS = ("patients", "studies", "series", "instances")
_RESOURCE_ATTACHMENT_SQL = (
    f"SELECT r.level, {', '.join('a.' + c.strip() for c in _ATTACHMENT_COLS.split(','))} "
    "FROM resources r LEFT JOIN attachments a "
    "ON a.resource_id = r.id AND a.content_type = :c WHERE r.public_id = :p"
)


def _resource(row) -> ResourceRow:  # type: ignore[no-untyped-def]
    return ResourceRow(row[0], row[1], row[2], row[3], bool(row[4]), bool(row[5]))


def _attachment(row) -> AttachmentRow:  # type: ignore[no-untyped-def]
    return AttachmentRow(*row)


def _level_and_attachment(row) -> tuple[int, AttachmentRow | None]:  # type: ignore[no-untyped-def]
    """A row of ``_RESOURCE_ATTACHMENT_SQL``: the level, and the attachment if any."""
    return row[0], (AttachmentRow(*row[1:]) if row[2] is not None else None)


class Index:
    def __init__(self, engine: Engine, lock_path: str | None = None) -> None:
        self.engine = engine
        self._write_lock = threading.Lock()  # one writer at a time, as SQLite wants
        # Several processes may share the index (HTTP workers): a file lock makes them
        # take turns in the kernel, where SQLite's busy handler would poll and sleep.
        self._lock_file = open(lock_path, "a+b") if lock_path else None  # noqa: SIM115
        # SQLite: each thread keeps its own connection, out of the pool. Checking a
        # pooled connection out and back in (with its reset) cost about a tenth of a
        # small ingest, paid by every request; a thread's transactions never overlap.
        self._sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._kept: list[Any] = []
        self._kept_lock = threading.Lock()
        self._checkpointer: WalCheckpointer | None = None
        metadata.create_all(engine)
        # An existing table does not get the indexes a later version added with it.
        for table in metadata.sorted_tables:
            for table_index in table.indexes:
                table_index.create(engine, checkfirst=True)
        with self.write() as session:
            session.initialize()

    @contextmanager
    def read(self) -> Iterator[IndexSession]:
        with self._session("DEFERRED") as session:
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[IndexSession]:
        """A session without an explicit transaction: each statement is its own.

        For reads of a single statement (the download of a file, the "already
        stored?" check of ingest): BEGIN and COMMIT would double the statements such
        a request runs. Several statements here do not see one snapshot.
        """
        if not self._sqlite:
            with self._session("DEFERRED") as session:
                yield session
            return
        yield IndexSession(self._thread_connection(), True)

    def resource_attachment(
        self, public_id: str, content_type: int
    ) -> tuple[int, AttachmentRow | None] | None:
        """``IndexSession.resource_attachment`` as one statement of its own: every
        file download and ``/tags`` asks it first, and on SQLite a session around it
        (context manager, session, cursor) cost as much Python as the query."""
        if not self._sqlite:
            with self._session("DEFERRED") as session:
                return session.resource_attachment(public_id, content_type)
        params = {"p": public_id, "c": content_type}
        # All rows fetched: the statement ends here, not when the cursor is freed.
        rows = self._thread_connection().execute(_RESOURCE_ATTACHMENT_SQL, params).fetchall()
        return _level_and_attachment(rows[0]) if rows else None

    @contextmanager
    def write(self) -> Iterator[IndexSession]:
        with self.writers_excluded(), self._session("IMMEDIATE") as session:
            yield session

    @contextmanager
    def writers_excluded(self) -> Iterator[None]:
        """No other writer, in this process or another, until the block ends."""
        with self._write_lock:
            if self._lock_file is not None:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if self._lock_file is not None:
                    fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)

    def checkpoint_in_background(self) -> None:
        """Checkpoint the SQLite log from a thread of this process, until ``close``
        (``checkpoints.py``); for one process of those sharing the index."""
        if self._sqlite and self._checkpointer is None:
            self._checkpointer = WalCheckpointer(self)
            self._checkpointer.start()

    @contextmanager
    def _session(self, sqlite_mode: str) -> Iterator[IndexSession]:
        """One transaction on a driver connection, without ORM bookkeeping."""
        sqlite = self._sqlite
        raw = self._thread_connection() if sqlite else self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if sqlite:
                cursor.execute(f"BEGIN {sqlite_mode}")
            session = IndexSession(raw, sqlite)
            try:
                yield session
            except BaseException:
                if sqlite:
                    cursor.execute("ROLLBACK")
                else:
                    raw.rollback()
                raise
            session.flush_counters()
            if not sqlite:
                raw.commit()
            else:
                cursor.execute("COMMIT")
                if session.durable:
                    self._sync_log()
        finally:
            if not sqlite:
                raw.close()
            elif raw.in_transaction:  # BEGIN or ROLLBACK itself failed
                with contextlib.suppress(Exception):
                    raw.rollback()

    def _sync_log(self) -> None:
        """Makes the last commit durable. SQLite commits are not synced one by one
        (``engine.py``), but one that deletes files is synced before they go, so that
        a power cut cannot leave rows whose files are gone: the write-ahead log holds
        the commit, and syncing that file (SQLite's ``-wal``) is what SQLite itself
        does when told to sync every commit (which cannot be switched on for a
        single transaction)."""
        database = self.engine.url.database
        if not database:
            return
        try:
            fd = os.open(f"{database}-wal", os.O_RDONLY)
        except FileNotFoundError:  # no log: the commit went to the database file
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def thread_connection(self) -> Any:
        """This thread's own driver connection to the SQLite index."""
        return self._thread_connection()

    def _thread_connection(self) -> Any:
        raw = getattr(self._local, "raw", None)
        if raw is None:
            fairy = self.engine.raw_connection()  # opened as the engine sets them up
            raw = fairy.dbapi_connection
            fairy.detach()  # this thread's own from now on; closed by ``close``
            self._local.raw = raw
            with self._kept_lock:
                self._kept.append(raw)
        return raw

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._kept_lock:
            kept, self._kept = self._kept, []
        for raw in kept:
            with contextlib.suppress(Exception):
                raw.close()
        self.engine.dispose()
        if self._lock_file is not None:
            self._lock_file.close()


class IndexSession:
    """Reads and writes on one connection (inside one transaction)."""

    def __init__(self, conn: Any, sqlite: bool) -> None:
        # Statements run on the driver's cursor: ingest issues a few dozen small
        # statements per instance, and the driver is ten times cheaper per statement
        # than going through SQLAlchemy's execution layer.
        self.conn = conn
        self.sqlite = sqlite
        self._cursor = conn.cursor()
        self._translate = None if sqlite else _NAMED_TO_PYFORMAT
        self._savepoints = 0
        #: Sync this transaction's commit even though commits are not synced by
        #: default: set by a transaction that deletes files after it commits.
        self.durable = False
        # Counter updates are summed in memory and written once per transaction, so a
        # group commit of many instances touches each counter row once.
        self._pending_counters: dict[str, int] = {}

    def _sql(self, sql: str) -> str:
        if self._translate is None:
            return sql
        cached = _PYFORMAT_CACHE.get(sql)
        if cached is None:
            cached = _PYFORMAT_CACHE[sql] = self._translate.sub(r"%(\1)s", sql.replace("%", "%%"))
        return cached

    def _all(self, sql: str, **params):  # type: ignore[no-untyped-def]
        cursor = self._cursor
        cursor.execute(self._sql(sql), params)
        return cursor.fetchall()

    def _one(self, sql: str, **params):  # type: ignore[no-untyped-def]
        cursor = self._cursor
        cursor.execute(self._sql(sql), params)
        return cursor.fetchone()

    def _run(self, sql: str, **params) -> int:  # type: ignore[no-untyped-def]
        cursor = self._cursor
        cursor.execute(self._sql(sql), params)
        return cursor.rowcount

    def _rows_after(self, table: str, columns: str, since: int, limit: int) -> list[Any]:
        """The rows of the log ``table`` (``changes``, ``exports``, ``job_events``) after
        the sequence number ``since``, oldest first, at most ``limit``: ``seq`` then
        ``columns``."""
        return self._all(
            f"SELECT seq, {columns} FROM {table} WHERE seq > :s ORDER BY seq LIMIT :l",
            s=since,
            l=limit,
        )

    def _max_seq(self, table: str) -> int:
        """The highest ``seq`` in ``table``, 0 if it is empty."""
        row = self._one(f"SELECT MAX(seq) FROM {table}")
        return (row[0] or 0) if row else 0

    def _many(self, sql: str, rows: list[dict]) -> None:  # type: ignore[type-arg]
        self._cursor.executemany(self._sql(sql), rows)

    def _insert_rows(self, head: str, group: str, tail: str, rows: list[tuple]) -> None:  # type: ignore[type-arg]
        """``head VALUES group, group, ... tail`` for ``rows``: one statement for many
        rows, where ``executemany`` steps one statement per row (half the cost of
        ingest's metadata and main tags). ``group`` has one ``?`` per value of a row;
        rows must not repeat a conflict key (PostgreSQL refuses to update a row twice
        in one statement)."""
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            key = (head, group, tail, len(chunk), self.sqlite)
            sql = _INSERT_CACHE.get(key)
            if sql is None:
                sql = f"{head} VALUES {', '.join([group] * len(chunk))} {tail}"
                if not self.sqlite:
                    sql = sql.replace("%", "%%").replace("?", "%s")
                if len(_INSERT_CACHE) < 4096:
                    _INSERT_CACHE[key] = sql
            self._cursor.execute(sql, [value for row in chunk for value in row])

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: a failure inside rolls back only its own work."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        pending = dict(self._pending_counters)
        self._cursor.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self._cursor.execute(f"RELEASE SAVEPOINT {name}")
            self._pending_counters = pending
            raise
        self._cursor.execute(f"RELEASE SAVEPOINT {name}")

    # ---- set-up -------------------------------------------------------------
    def initialize(self) -> None:
        for name in RETIRED_INDEXES:
            self._run(f"DROP INDEX IF EXISTS {name}")
        for name in COUNTER_NAMES:
            self._run(
                "INSERT INTO counters (name, value) VALUES (:n, 0) ON CONFLICT (name) DO NOTHING",
                n=name,
            )
        self._run(
            "INSERT INTO properties (name, value) VALUES ('SchemaVersion', :v) "
            "ON CONFLICT (name) DO NOTHING",
            v=str(SCHEMA_VERSION),
        )

    # ---- resources ----------------------------------------------------------
    def lookup(self, public_id: str) -> ResourceRow | None:
        row = self._one(f"SELECT {_RESOURCE_COLS} FROM resources WHERE public_id = :p", p=public_id)
        return _resource(row) if row else None

    def get(self, internal_id: int) -> ResourceRow | None:
        row = self._one(f"SELECT {_RESOURCE_COLS} FROM resources WHERE id = :i", i=internal_id)
        return _resource(row) if row else None

    def lookup_many(self, public_ids: list[str]) -> dict[str, ResourceRow]:
        names, params = _in_list(public_ids)
        rows = self._all(
            f"SELECT {_RESOURCE_COLS} FROM resources WHERE public_id IN ({names})", **params
        )
        return {r[1]: _resource(r) for r in rows}

    def touch_many(
        self, internal_ids: list[int], now: int, recycle: tuple[int, int] | None = None
    ) -> None:
        """Mark resources as just updated; ``recycle`` = (patient among them, its new
        recycling order), set in the same statement."""
        names, params = _in_list(internal_ids)
        if recycle is None:
            self._run(
                f"UPDATE resources SET stable = :f, last_update = :now WHERE id IN ({names})",
                f=False,
                now=now,
                **params,
            )
            return
        self._run(
            "UPDATE resources SET stable = :f, last_update = :now, recycle_seq = "
            f"CASE WHEN id = :rp THEN :rs ELSE recycle_seq END WHERE id IN ({names})",
            f=False,
            now=now,
            rp=recycle[0],
            rs=recycle[1],
            **params,
        )

    def set_metadata_on_many(self, internal_ids: list[int], kind: int, value: str) -> None:
        self.set_metadata_rows([(r, kind, value) for r in internal_ids])

    def set_metadata_rows(self, rows: list[tuple[int, int, str]]) -> None:
        """Set (resource, type, value) metadata rows in one batch (revisions kept)."""
        if rows:
            # One row per (resource, type): the last value given wins, as it would
            # with one statement per row.
            unique = list({(r, t): (r, t, v) for r, t, v in rows}.values())
            # A value that does not change is not written again (the LastUpdate of a
            # series receiving many instances within a second): its page of the
            # table stays clean, one WAL frame fewer to write in that commit.
            same = "IS" if self.sqlite else "IS NOT DISTINCT FROM"
            self._insert_rows(
                "INSERT INTO metadata (resource_id, type, value, revision)",
                "(?, ?, ?, 0)",
                "ON CONFLICT (resource_id, type) DO UPDATE SET value = excluded.value "
                f"WHERE NOT (metadata.value {same} excluded.value)",
                unique,
            )

    def public_id(self, internal_id: int) -> str | None:
        row = self._one("SELECT public_id FROM resources WHERE id = :i", i=internal_id)
        return row[0] if row else None

    def children(self, internal_id: int) -> list[ResourceRow]:
        rows = self._all(
            f"SELECT {_RESOURCE_COLS} FROM resources WHERE parent_id = :i ORDER BY id",
            i=internal_id,
        )
        return [_resource(r) for r in rows]

    def children_public_ids(self, internal_id: int) -> list[str]:
        rows = self._all(
            "SELECT public_id FROM resources WHERE parent_id = :i ORDER BY id", i=internal_id
        )
        return [r[0] for r in rows]

    def children_metadata(self, internal_id: int, kind: int) -> list[str | None]:
        """Each child's metadata ``kind`` (``None`` where a child lacks it), one query."""
        rows = self._all(
            "SELECT m.value FROM resources r LEFT JOIN metadata m "
            "ON m.resource_id = r.id AND m.type = :t WHERE r.parent_id = :i",
            i=internal_id,
            t=kind,
        )
        return [r[0] for r in rows]

    def count_children(self, internal_id: int) -> int:
        return self._one("SELECT COUNT(*) FROM resources WHERE parent_id = :i", i=internal_id)[0]

    def descendant_instances(self, row: ResourceRow) -> list[ResourceRow]:
        """All instances under ``row`` (itself if it is an instance), in insertion order."""
        ids = [row]
        for _ in range(3 - row.level):
            nxt: list[ResourceRow] = []
            for r in ids:
                nxt.extend(self.children(r.id))
            ids = nxt
        return ids

    def list_resources(self, level: int, since: int = 0, limit: int = 0) -> list[str]:
        sql = "SELECT public_id FROM resources WHERE level = :l ORDER BY id"
        if limit > 0:
            sql += " LIMIT :lim OFFSET :off"
            return [r[0] for r in self._all(sql, l=level, lim=limit, off=since)]
        if since > 0:
            sql += " LIMIT -1 OFFSET :off" if self.sqlite else " OFFSET :off"
            return [r[0] for r in self._all(sql, l=level, off=since)]
        return [r[0] for r in self._all(sql, l=level)]

    def create_resource(
        self, public_id: str, level: int, parent_id: int | None, now: int, stable: bool = False
    ) -> int:
        row = self._one(
            "INSERT INTO resources (public_id, level, parent_id, protected, stable, last_update) "
            "VALUES (:p, :l, :parent, :prot, :st, :now) RETURNING id",
            p=public_id,
            l=level,
            parent=parent_id,
            prot=False,
            st=stable,
            now=now,
        )
        self.add_counter(_LEVEL_COUNTERS[level], 1)
        return row[0]

    def touch(self, internal_id: int, now: int) -> None:
        """Mark a resource as just updated (and so not stable yet)."""
        self._run(
            "UPDATE resources SET stable = :f, last_update = :now WHERE id = :i",
            f=False,
            now=now,
            i=internal_id,
        )

    def set_recycle_seq(self, patient_id: int, seq: int) -> None:
        self._run("UPDATE resources SET recycle_seq = :s WHERE id = :i", s=seq, i=patient_id)

    def set_protected(self, patient_id: int, protected: bool) -> None:
        self._run("UPDATE resources SET protected = :p WHERE id = :i", p=protected, i=patient_id)

    def oldest_unprotected_patient(self, exclude: int | None) -> ResourceRow | None:
        row = self._one(
            f"SELECT {_RESOURCE_COLS} FROM resources WHERE {PATIENT_ROWS} AND protected = :f "
            "AND id != :ex ORDER BY recycle_seq, id LIMIT 1",
            f=False,
            ex=exclude if exclude is not None else -1,
        )
        return _resource(row) if row else None

    def unstable_older_than(self, cutoff: int, limit: int = 1000) -> list[ResourceRow]:
        return [row for row, _ in self.unstable_due(cutoff, limit)]

    def unstable_due(self, cutoff: int, limit: int = 1000) -> list[tuple[ResourceRow, int]]:
        """Unstable resources last updated at ``cutoff`` or before, with that time: the
        oldest first, and on a tie the deepest level first (the partial index serves
        the range and the first key; only ties are sorted)."""
        rows = self._all(
            f"SELECT {_RESOURCE_COLS}, last_update FROM resources WHERE {UNSTABLE_ROWS} "
            "AND last_update <= :c ORDER BY last_update, level DESC, id LIMIT :lim",
            c=cutoff,
            lim=limit,
        )
        return [(_resource(r), int(r[6])) for r in rows]

    def set_stable(self, internal_id: int, updated_by: int | None = None) -> bool:
        """Mark a resource stable; with ``updated_by``, only if it is still unstable and
        was last updated at that time or before (an instance that arrived since the
        caller read the due rows keeps it waiting). Answers whether it changed."""
        if updated_by is None:
            sql = "UPDATE resources SET stable = :t WHERE id = :i"
        else:
            sql = (
                f"UPDATE resources SET stable = :t WHERE id = :i AND {UNSTABLE_ROWS} "
                "AND last_update <= :c"
            )
        return self._run(sql, t=True, i=internal_id, c=updated_by) > 0

    def mark_all_stable(self) -> None:
        self._run(f"UPDATE resources SET stable = :t WHERE {UNSTABLE_ROWS}", t=True)

    def delete_resource(self, row: ResourceRow) -> None:
        """Delete ``row`` and its descendants (the caller collected their files first)."""
        counts = {row.level: 1}
        frontier = [row.id]
        for _ in range(3 - row.level):
            if not frontier:
                break
            nxt: list[int] = []
            for chunk in _chunks(frontier, 500):
                names, params = _in_list(chunk)
                rows = self._all(
                    f"SELECT id, level FROM resources WHERE parent_id IN ({names})", **params
                )
                for rid, lvl in rows:
                    nxt.append(rid)
                    counts[lvl] = counts.get(lvl, 0) + 1
            frontier = nxt
        self._run("DELETE FROM resources WHERE id = :i", i=row.id)
        for lvl, n in counts.items():
            self.add_counter(_LEVEL_COUNTERS[lvl], -n)

    # ---- main DICOM tags ----------------------------------------------------
    def set_main_tags(self, internal_id: int, tags: dict[int, str]) -> None:
        if not tags:
            return
        self._insert_rows(
            "INSERT INTO main_tags (resource_id, tag, value, norm)",
            "(?, ?, ?, ?)",
            "ON CONFLICT (resource_id, tag) DO UPDATE SET value = excluded.value, "
            "norm = excluded.norm",
            [(internal_id, t, v, normalize(v)) for t, v in tags.items()],
        )

    def replace_main_tags(self, internal_id: int, tags: dict[int, str]) -> None:
        self._run("DELETE FROM main_tags WHERE resource_id = :r", r=internal_id)
        self.set_main_tags(internal_id, tags)

    def main_tags(self, internal_id: int) -> dict[int, str]:
        rows = self._all("SELECT tag, value FROM main_tags WHERE resource_id = :r", r=internal_id)
        return {r[0]: r[1] for r in rows}

    # Batch reads for answers with many matches (C-FIND): one statement per 500
    # resources instead of a few per resource. Missing resources are left out.
    def main_tags_many(
        self, internal_ids: list[int], tags: list[int] | None = None
    ) -> dict[int, dict[int, str]]:
        """The main tags of each resource (only ``tags`` when given): id -> {tag: value}."""
        found: dict[int, dict[int, str]] = {}
        tag_names, tag_params = _in_list(list(dict.fromkeys(tags or [])), "t")
        only = f" AND tag IN ({tag_names})" if tags else ""
        for chunk in _chunks(list(dict.fromkeys(internal_ids)), 500):
            names, params = _in_list(chunk)
            for rid, tag, value in self._all(
                f"SELECT resource_id, tag, value FROM main_tags WHERE resource_id IN ({names})"
                + only,
                **params,
                **tag_params,
            ):
                found.setdefault(rid, {})[tag] = value
        return found

    def parents_many(self, internal_ids: list[int]) -> dict[int, int | None]:
        """The parent of each resource: id -> parent id (``None`` for a patient)."""
        found: dict[int, int | None] = {}
        for chunk in _chunks(list(dict.fromkeys(internal_ids)), 500):
            names, params = _in_list(chunk)
            rows = self._all(f"SELECT id, parent_id FROM resources WHERE id IN ({names})", **params)
            found.update((r[0], r[1]) for r in rows)
        return found

    def descendant_counts(self, internal_ids: list[int], depth: int) -> dict[int, int]:
        """How many resources lie ``depth`` levels (1-3) below each resource; a
        resource without any is left out (count 0)."""
        joins = "".join(
            f" JOIN resources d{k} ON d{k}.parent_id = d{k - 1}.id" for k in range(2, depth + 1)
        )
        found: dict[int, int] = {}
        for chunk in _chunks(list(dict.fromkeys(internal_ids)), 500):
            names, params = _in_list(chunk)
            rows = self._all(
                f"SELECT d1.parent_id, COUNT(*) FROM resources d1{joins} "
                f"WHERE d1.parent_id IN ({names}) GROUP BY d1.parent_id",
                **params,
            )
            found.update((r[0], r[1]) for r in rows)
        return found

    def children_tag_values(self, internal_ids: list[int], tag: int) -> dict[int, list[str]]:
        """The value of ``tag`` of each child that has it, per parent, in child order."""
        found: dict[int, list[str]] = {}
        for chunk in _chunks(list(dict.fromkeys(internal_ids)), 500):
            names, params = _in_list(chunk)
            rows = self._all(
                "SELECT c.parent_id, m.value FROM resources c CROSS JOIN main_tags m "
                f"WHERE c.parent_id IN ({names}) AND m.resource_id = c.id AND m.tag = :tag "
                "ORDER BY c.parent_id, c.id",
                tag=tag,
                **params,
            )
            for parent, value in rows:
                found.setdefault(parent, []).append(value)
        return found

    def lookup_identifier(self, tag: int, value: str) -> list[ResourceRow]:
        """The resources whose identifier ``tag`` is ``value``, ignoring case, as
        Orthanc matches identifiers (``lookup``, C-MOVE)."""
        rows = self._all(
            f"SELECT {', '.join('r.' + c.strip() for c in _RESOURCE_COLS.split(','))} "
            "FROM main_tags m JOIN resources r ON r.id = m.resource_id "
            "WHERE m.tag = :t AND m.norm = :n ORDER BY r.level, r.id",
            t=tag,
            n=normalize(value),
        )
        return [_resource(r) for r in rows]

    # ---- metadata -----------------------------------------------------------
    def metadata(self, internal_id: int) -> dict[int, tuple[str, int]]:
        rows = self._all(
            "SELECT type, value, revision FROM metadata WHERE resource_id = :r", r=internal_id
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def get_metadata(self, internal_id: int, kind: int) -> tuple[str, int] | None:
        row = self._one(
            "SELECT value, revision FROM metadata WHERE resource_id = :r AND type = :t",
            r=internal_id,
            t=kind,
        )
        return (row[0], row[1]) if row else None

    def set_metadata(self, internal_id: int, kind: int, value: str, revision: int = 0) -> None:
        self._run(
            "INSERT INTO metadata (resource_id, type, value, revision) VALUES (:r, :t, :v, :rev) "
            "ON CONFLICT (resource_id, type) DO UPDATE SET value = excluded.value, "
            "revision = excluded.revision",
            r=internal_id,
            t=kind,
            v=value,
            rev=revision,
        )

    def set_many_metadata(self, internal_id: int, values: dict[int, str]) -> None:
        if values:
            self._many(
                "INSERT INTO metadata (resource_id, type, value, revision) "
                "VALUES (:r, :t, :v, 0) ON CONFLICT (resource_id, type) "
                "DO UPDATE SET value = excluded.value",
                [{"r": internal_id, "t": k, "v": v} for k, v in values.items()],
            )

    def delete_metadata(self, internal_id: int, kind: int) -> bool:
        return (
            self._run(
                "DELETE FROM metadata WHERE resource_id = :r AND type = :t", r=internal_id, t=kind
            )
            > 0
        )

    # ---- attachments --------------------------------------------------------
    def attachments(self, internal_id: int) -> list[AttachmentRow]:
        rows = self._all(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE resource_id = :r ORDER BY content_type",
            r=internal_id,
        )
        return [_attachment(r) for r in rows]

    def attachment(self, internal_id: int, content_type: int) -> AttachmentRow | None:
        row = self._one(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE resource_id = :r AND content_type = :c",
            r=internal_id,
            c=content_type,
        )
        return _attachment(row) if row else None

    def resource_attachment(
        self, public_id: str, content_type: int
    ) -> tuple[int, AttachmentRow | None] | None:
        """The level of ``public_id`` and its attachment of ``content_type``, in one
        query (a download asks both); ``None`` if there is no such resource."""
        row = self._one(_RESOURCE_ATTACHMENT_SQL, p=public_id, c=content_type)
        return None if row is None else _level_and_attachment(row)

    def attachments_under(self, rows: Iterable[ResourceRow]) -> list[AttachmentRow]:
        found: list[AttachmentRow] = []
        for chunk in _chunks([r.id for r in rows], 500):
            names, params = _in_list(chunk)
            found.extend(
                _attachment(r)
                for r in self._all(
                    f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE resource_id IN ({names})",
                    **params,
                )
            )
        return found

    def add_attachment(self, internal_id: int, att: AttachmentRow) -> None:
        self._run(
            "INSERT INTO attachments (resource_id, content_type, uuid, compressed_size, "
            "uncompressed_size, compression, uncompressed_md5, compressed_md5, revision) "
            "VALUES (:r, :c, :u, :cs, :us, :comp, :umd5, :cmd5, :rev)",
            r=internal_id,
            c=att.content_type,
            u=att.uuid,
            cs=att.compressed_size,
            us=att.uncompressed_size,
            comp=att.compression,
            umd5=att.uncompressed_md5,
            cmd5=att.compressed_md5,
            rev=att.revision,
        )
        self.add_counter("compressed_size", att.compressed_size)
        self.add_counter("uncompressed_size", att.uncompressed_size)

    def delete_attachment(self, internal_id: int, content_type: int) -> AttachmentRow | None:
        att = self.attachment(internal_id, content_type)
        if att is None:
            return None
        self._run(
            "DELETE FROM attachments WHERE resource_id = :r AND content_type = :c",
            r=internal_id,
            c=content_type,
        )
        self.add_counter("compressed_size", -att.compressed_size)
        self.add_counter("uncompressed_size", -att.uncompressed_size)
        return att

    def forget_attachments_sizes(self, atts: Iterable[AttachmentRow]) -> None:
        """Update the size counters for attachments removed by a cascade delete."""
        comp = uncomp = 0
        for att in atts:
            comp += att.compressed_size
            uncomp += att.uncompressed_size
        if comp or uncomp:
            self.add_counter("compressed_size", -comp)
            self.add_counter("uncompressed_size", -uncomp)

    # ---- labels -------------------------------------------------------------
    def labels(self, internal_id: int) -> list[str]:
        rows = self._all(
            "SELECT label FROM labels WHERE resource_id = :r ORDER BY label", r=internal_id
        )
        return [r[0] for r in rows]

    def add_label(self, internal_id: int, label: str) -> None:
        self._run(
            "INSERT INTO labels (resource_id, label) VALUES (:r, :l) ON CONFLICT DO NOTHING",
            r=internal_id,
            l=label,
        )

    def remove_label(self, internal_id: int, label: str) -> None:
        self._run(
            "DELETE FROM labels WHERE resource_id = :r AND label = :l", r=internal_id, l=label
        )

    def all_labels(self) -> list[str]:
        return [r[0] for r in self._all("SELECT DISTINCT label FROM labels ORDER BY label")]

    # ---- changes and exports ------------------------------------------------
    def log_change(self, change_type: int, level: int, public_id: str, date: str) -> None:
        self._run(
            "INSERT INTO changes (change_type, level, public_id, date) VALUES (:c, :l, :p, :d)",
            c=change_type,
            l=level,
            p=public_id,
            d=date,
        )

    def changes(self, since: int, limit: int) -> list[ChangeRow]:
        rows = self._rows_after("changes", "change_type, level, public_id, date", since, limit)
        return [ChangeRow(*r) for r in rows]

    def last_change(self) -> ChangeRow | None:
        row = self._one(
            "SELECT seq, change_type, level, public_id, date FROM changes ORDER BY seq DESC LIMIT 1"
        )
        return ChangeRow(*row) if row else None

    def clear_changes(self) -> None:
        self._run("DELETE FROM changes")

    def last_change_seq(self) -> int:
        """The last sequence number given to a change, even when the log was cleared
        since (``DELETE /changes``): the counter of the ``seq`` column, 0 if unused."""
        if self.sqlite:
            # AUTOINCREMENT keeps its counter in sqlite_sequence.
            row = self._one("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
        else:
            # The column's sequence; pg_sequences says NULL until a value was drawn.
            row = self._one(
                "SELECT last_value FROM pg_sequences WHERE "
                "quote_ident(schemaname) || '.' || quote_ident(sequencename) "
                "= pg_get_serial_sequence('changes', 'seq')"
            )
        return int(row[0] or 0) if row else 0

    def log_export(self, row: ExportRow) -> None:
        self._run(
            "INSERT INTO exports (level, public_id, remote_modality, patient_id, study_uid, "
            "series_uid, sop_uid, date) VALUES (:l, :p, :m, :pid, :st, :se, :so, :d)",
            l=row.level,
            p=row.public_id,
            m=row.remote_modality,
            pid=row.patient_id,
            st=row.study_uid,
            se=row.series_uid,
            so=row.sop_uid,
            d=row.date,
        )

    def exports(self, since: int, limit: int) -> list[ExportRow]:
        columns = (
            "level, public_id, remote_modality, patient_id, study_uid, series_uid, sop_uid, date"
        )
        return [ExportRow(*r) for r in self._rows_after("exports", columns, since, limit)]

    def last_export_seq(self) -> int:
        return self._max_seq("exports")

    def clear_exports(self) -> None:
        self._run("DELETE FROM exports")

    # ---- counters and properties -------------------------------------------
    def add_counter(self, name: str, delta: int) -> None:
        self._pending_counters[name] = self._pending_counters.get(name, 0) + delta

    def flush_counters(self) -> None:
        """Apply the summed counter updates in one statement."""
        changed = [(n, d) for n, d in self._pending_counters.items() if d]
        self._pending_counters = {}
        if not changed:
            return
        params: dict[str, object] = {}
        cases = []
        for i, (name, delta) in enumerate(changed):
            params[f"n{i}"], params[f"d{i}"] = name, delta
            cases.append(f"WHEN :n{i} THEN :d{i}")
        names = ", ".join(f":n{i}" for i in range(len(changed)))
        self._run(
            f"UPDATE counters SET value = value + CASE name {' '.join(cases)} ELSE 0 END "
            f"WHERE name IN ({names})",
            **params,
        )

    def counters(self) -> dict[str, int]:
        values = {r[0]: r[1] for r in self._all("SELECT name, value FROM counters")}
        for name, delta in self._pending_counters.items():
            values[name] = values.get(name, 0) + delta
        return values

    def next_sequence(self, name: str) -> int:
        """A persistent counter (e.g. the recycling order): returns the incremented value."""
        self._run(
            "INSERT INTO counters (name, value) VALUES (:n, 0) ON CONFLICT (name) DO NOTHING",
            n=name,
        )
        return self._one(
            "UPDATE counters SET value = value + 1 WHERE name = :n RETURNING value", n=name
        )[0]

    def get_property(self, name: str) -> str | None:
        row = self._one("SELECT value FROM properties WHERE name = :n", n=name)
        return row[0] if row else None

    def set_property(self, name: str, value: str) -> None:
        self._run(
            "INSERT INTO properties (name, value) VALUES (:n, :v) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            n=name,
            v=value,
        )

    def delete_property(self, name: str) -> None:
        self._run("DELETE FROM properties WHERE name = :n", n=name)

    def known_uuids(self, uuids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(uuids, 500):
            names, params = _in_list(chunk)
            found.update(
                r[0]
                for r in self._all(
                    f"SELECT uuid FROM attachments WHERE uuid IN ({names})", **params
                )
            )
        return found

    # ---- search (core/find.py compiles the conditions) ----------------------
    def search(
        self,
        level: int,
        where: list[str],
        params: dict[str, object],
        order: list[str] | None = None,
        limit: int = 0,
        since: int = 0,
    ) -> list[ResourceRow]:
        """Resources at ``level`` meeting every condition on ``r``, in a stable order.

        The conditions are SQL built by ``core/matching.py`` on the same portable
        subset; ordering always ends on the internal id so Since/Limit pages never
        overlap or skip.
        """
        cols = ", ".join("r." + c.strip() for c in _RESOURCE_COLS.split(","))
        sql = f"SELECT {cols} FROM resources r WHERE " + " AND ".join(["r.level = :lvl", *where])
        sql += " ORDER BY " + ", ".join([*(order or []), "r.id"])
        if limit > 0:
            sql += " LIMIT :lim OFFSET :off"
        elif since > 0:
            sql += " LIMIT -1 OFFSET :off" if self.sqlite else " OFFSET :off"
        rows = self._all(sql, lvl=level, lim=limit, off=since, **params)
        return [_resource(r) for r in rows]

    def search_ordered_by_tag(
        self,
        level: int,
        where: list[str],
        params: dict[str, object],
        tag: int,
        descending: bool,
        limit: int = 0,
        since: int = 0,
        walk: tuple[int, str] | None = None,
    ) -> list[ResourceRow]:
        """Like ``search`` ordered on one main tag (case-folded), missing values last.

        The rows carrying the tag are read in ``(tag, norm)`` index order, so a page
        costs its size rather than a sort of every match; the rows lacking the tag
        follow in id order. ``walk`` = (position in ``where``, condition on
        ``norm``/``value``): a condition on the ordering tag itself, applied to the
        walked rows directly (a date range bounds the walk) instead of as a subquery.
        """
        cols = ", ".join("r." + c.strip() for c in _RESOURCE_COLS.split(","))
        direction = "DESC" if descending else "ASC"
        present_where = list(where)
        if walk is not None:
            present_where = [w for i, w in enumerate(where) if i != walk[0]] + [walk[1]]
        conds = " AND ".join(["o.tag = :otag", "r.level = :lvl", *present_where])
        present = (
            f"SELECT {cols} FROM main_tags o JOIN resources r ON r.id = o.resource_id "
            f"WHERE {conds} ORDER BY o.norm {direction}, o.resource_id {direction}"
        )
        missing_where = [
            *where,
            "r.id NOT IN (SELECT resource_id FROM main_tags WHERE tag = :otag)",
        ]
        args = dict(params, otag=tag, lvl=level)
        tie = [f"r.id {direction}"]
        if limit <= 0:
            rows = [_resource(r) for r in self._all(present, **args)]
            rows += self.search(level, missing_where, dict(params, otag=tag), tie)
            return rows[since:]
        rows = [
            _resource(r)
            for r in self._all(present + " LIMIT :lim OFFSET :off", lim=limit, off=since, **args)
        ]
        if len(rows) < limit:
            counted = self._one(
                f"SELECT COUNT(*) FROM main_tags o JOIN resources r ON r.id = o.resource_id "
                f"WHERE {conds}",
                **args,
            )[0]
            rows += self.search(
                level,
                missing_where,
                dict(params, otag=tag),
                tie,
                limit=limit - len(rows),
                since=max(0, since - counted),
            )
        return rows

    def search_count(self, level: int, where: list[str], params: dict[str, object]) -> int:
        sql = "SELECT COUNT(*) FROM resources r WHERE " + " AND ".join(["r.level = :lvl", *where])
        return self._one(sql, lvl=level, **params)[0]

    # ---- jobs (core/jobs/engine.py gives them meaning) ----------------------
    _JOB_COLS = (
        "id, seq, type, state, priority, progress, creation_time, completion_time, runtime, "
        "error_code, error_details, request, user_data, parameters, content, outputs"
    )

    def _job(self, row) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        return dict(zip([c.strip() for c in self._JOB_COLS.split(",")], row, strict=True))

    def insert_job(self, job: dict[str, Any]) -> None:
        cols = [c.strip() for c in self._JOB_COLS.split(",")]
        self._run(
            f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})",
            **{c: job.get(c) for c in cols},
        )

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self._one(f"SELECT {self._JOB_COLS} FROM jobs WHERE id = :i", i=job_id)
        return self._job(row) if row else None

    def jobs(self) -> list[dict[str, Any]]:
        return [self._job(r) for r in self._all(f"SELECT {self._JOB_COLS} FROM jobs ORDER BY seq")]

    def update_job(self, job_id: str, **values: Any) -> None:
        sets = ", ".join(f"{name} = :{name}" for name in values)
        self._run(f"UPDATE jobs SET {sets} WHERE id = :job_id", job_id=job_id, **values)

    def claim_job(self, job_id: str, from_state: str, to_state: str) -> bool:
        """Move a job between states only if nobody moved it first."""
        return (
            self._run(
                "UPDATE jobs SET state = :t WHERE id = :i AND state = :f",
                t=to_state,
                i=job_id,
                f=from_state,
            )
            == 1
        )

    def next_pending_job(self) -> str | None:
        row = self._one(
            "SELECT id FROM jobs WHERE state = 'Pending' ORDER BY priority DESC, seq LIMIT 1"
        )
        return row[0] if row else None

    def next_job_seq(self) -> int:
        return self._max_seq("jobs") + 1

    def delete_job(self, job_id: str) -> None:
        self._run("DELETE FROM jobs WHERE id = :i", i=job_id)

    # ---- job events (the scripts' job callbacks, ``core.change_feed``) -------
    def log_job_events(self, events: list[tuple[int, str, str]]) -> None:
        """Appends ``(change type, job ID, date)`` rows, and forgets the rows older
        than the newest ``JOB_EVENTS_KEPT`` (a follower reads them within a poll)."""
        for change_type, job_id, date in events:
            self._run(
                "INSERT INTO job_events (change_type, job_id, date) VALUES (:c, :j, :d)",
                c=change_type,
                j=job_id,
                d=date,
            )
        self._run(
            "DELETE FROM job_events WHERE seq <= (SELECT MAX(seq) FROM job_events) - :k",
            k=JOB_EVENTS_KEPT,
        )

    def job_events(self, since: int, limit: int) -> list[ChangeRow]:
        """The job events after ``since``, as rows of the changes log (level -1)."""
        rows = self._rows_after("job_events", "change_type, job_id, date", since, limit)
        return [ChangeRow(seq, kind, -1, job_id, date) for seq, kind, job_id, date in rows]

    def last_job_event_seq(self) -> int:
        return self._max_seq("job_events")


#: Job events kept in the index: many more than a burst of jobs between two reads of
#: the primary worker's follower.
JOB_EVENTS_KEPT = 1000

_NAMED_TO_PYFORMAT = re.compile(r"(?<![:\w]):(\w+)")
_PYFORMAT_CACHE: dict[str, str] = {}

#: Rows per multi-row INSERT: 4 values a row stay below 999 variables, the limit of
#: SQLite before 3.32 (32766 since).
_ROWS_PER_INSERT = 200
_INSERT_CACHE: dict[tuple[str, str, str, int, bool], str] = {}


def _in_list(values: list, prefix: str = "p") -> tuple[str, dict]:  # type: ignore[type-arg]
    """Placeholders and parameters for ``IN (...)`` over ``values``."""
    return ", ".join(f":{prefix}{i}" for i in range(len(values))), {
        f"{prefix}{i}": v for i, v in enumerate(values)
    }


def normalize(value: str) -> str:
    """The case-folded form used for case-insensitive matching."""
    return value.upper()


def _chunks(items: list, size: int) -> Iterator[list]:  # type: ignore[type-arg]
    for i in range(0, len(items), size):
        yield items[i : i + size]
