"""The index's partial indexes on a real SQLite file: the recycling and stability
queries use them, instance rows stay out of them, and an index file made by an
earlier version gets them when it is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dicom_factory import make_dicom

from dicomhub.core import ingest
from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings
from dicomhub.store.index.schema import RETIRED_INDEXES


def open_archive(folder: Path) -> Archive:
    return Archive(
        Settings.from_config(
            {"StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index")}
        )
    )


def database(folder: Path) -> sqlite3.Connection:
    return sqlite3.connect(folder / "index" / "dicomhub-index.db")


def indexes(folder: Path) -> dict[str, str]:
    with database(folder) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'resources' "
            "AND sql IS NOT NULL"
        ).fetchall()
    return dict(rows)


def plan(folder: Path, query: str) -> str:
    with database(folder) as conn:
        return " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query))


def test_the_recycling_and_stability_queries_use_the_partial_indexes(tmp_path: Path) -> None:
    archive = open_archive(tmp_path)
    for number in range(3):
        ingest.store(archive, make_dicom(patient_id=f"SCHEMA{number}"))
    with archive.read() as session:
        # Through the session's own queries, whose conditions must match the indexes'.
        assert session.oldest_unprotected_patient(None) is not None
        assert len(session.unstable_older_than(2**40)) == 9  # 3 patients, studies, series
    archive.close()
    assert "ix_resources_patient_recycling" in plan(
        tmp_path,
        "SELECT id FROM resources WHERE level = 0 AND protected = 0 AND id != -1 "
        "ORDER BY recycle_seq, id LIMIT 1",
    )
    assert "ix_resources_unstable_since" in plan(
        tmp_path,
        "SELECT id FROM resources WHERE stable = false AND last_update <= 1 "
        "ORDER BY last_update LIMIT 10",
    )
    with database(tmp_path) as conn:  # instance rows (stable from the start) are not in them
        counts = conn.execute(
            "SELECT (SELECT COUNT(*) FROM resources INDEXED BY ix_resources_unstable_since "
            "WHERE stable = false), (SELECT COUNT(*) FROM resources INDEXED BY "
            "ix_resources_patient_recycling WHERE level = 0)"
        ).fetchone()
    assert counts == (9, 3)


def test_an_index_made_by_an_earlier_version_gets_the_partial_indexes(tmp_path: Path) -> None:
    open_archive(tmp_path).close()
    with database(tmp_path) as conn:  # as the earlier version left it
        conn.execute("DROP INDEX ix_resources_patient_recycling")
        conn.execute("DROP INDEX ix_resources_unstable_since")
        conn.execute(
            "CREATE INDEX ix_resources_recycle ON resources (level, protected, recycle_seq)"
        )
        conn.execute("CREATE INDEX ix_resources_unstable ON resources (stable, last_update)")
    archive = open_archive(tmp_path)
    ingest.store(archive, make_dicom(patient_id="SCHEMAOLD"))
    archive.close()
    found = indexes(tmp_path)
    assert not set(RETIRED_INDEXES) & set(found)
    assert found["ix_resources_patient_recycling"].endswith("WHERE level = 0")
    assert found["ix_resources_unstable_since"].endswith("WHERE stable = false")
