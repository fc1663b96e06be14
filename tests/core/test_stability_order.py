"""The order of the Stable* changes: Orthanc announces each resource when its own wait
is over (oldest update first), and a resource right after its descendants updated
with it, not every series of a check before every study."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import make_dicom

from dicomhub.core import changelog, ingest, stability
from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings
from dicomhub.dicom.levels import Level
from dicomhub.store.index.records import ResourceRow


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    archive = Archive(
        Settings.from_config(
            {
                "StorageDirectory": str(tmp_path / "storage"),
                "IndexDirectory": str(tmp_path / "index"),
                "StableAge": 5,
            }
        )
    )
    yield archive
    archive.close()


def store_at(
    archive: Archive, monkeypatch: pytest.MonkeyPatch, second: int, **tags: str
) -> dict[str, str]:
    """Store an instance as if it arrived at ``second``; its public ids by level name."""
    monkeypatch.setattr(ingest, "now_seconds", lambda: second)
    ids = ingest.store(archive, make_dicom(**tags)).ids
    return {"patient": ids[Level.PATIENT], "study": ids[Level.STUDY], "series": ids[Level.SERIES]}


def stable_changes(archive: Archive) -> list[tuple[str, str]]:
    log = changelog.changes(archive, 0, 1000)["Changes"]
    return [(c["ChangeType"], c["ID"]) for c in log if c["ChangeType"].startswith("Stable")]


def test_each_resource_in_the_order_its_wait_ends(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    # second 100: patient A (study A1) then patient B; second 101: a second study of A.
    a1 = store_at(archive, monkeypatch, 100, patient_id="ORDER-A", study_uid="1.2.3.91.1")
    b1 = store_at(archive, monkeypatch, 100, patient_id="ORDER-B", study_uid="1.2.3.91.2")
    a2 = store_at(archive, monkeypatch, 101, patient_id="ORDER-A", study_uid="1.2.3.91.3")
    assert a1["patient"] == a2["patient"]
    monkeypatch.setattr(stability, "now_seconds", lambda: 1000)
    assert stability.check_stability(archive) == 8
    assert stable_changes(archive) == [
        # second 100: A's patient was updated again at 101, so it waits
        ("StableSeries", a1["series"]),
        ("StableStudy", a1["study"]),
        ("StableSeries", b1["series"]),
        ("StableStudy", b1["study"]),
        ("StablePatient", b1["patient"]),
        # second 101
        ("StableSeries", a2["series"]),
        ("StableStudy", a2["study"]),
        ("StablePatient", a2["patient"]),
    ]
    assert stability.check_stability(archive) == 0


def test_only_what_waited_long_enough(archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
    old = store_at(archive, monkeypatch, 100, patient_id="ORDER-C", study_uid="1.2.3.92.1")
    store_at(archive, monkeypatch, 103, patient_id="ORDER-D", study_uid="1.2.3.92.2")
    monkeypatch.setattr(stability, "now_seconds", lambda: 106)  # StableAge 5: up to 101
    assert stability.check_stability(archive) == 3
    assert stable_changes(archive) == [
        ("StableSeries", old["series"]),
        ("StableStudy", old["study"]),
        ("StablePatient", old["patient"]),
    ]


def test_an_instance_arriving_during_the_check_keeps_its_parents_waiting(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check reads the due rows, then writes: a new instance stored in between (by
    another thread or worker) must keep its series, study and patient unstable."""
    tags = {"patient_id": "ORDER-E", "study_uid": "1.2.3.93.1", "series_uid": "1.2.3.93.1.1"}
    first = store_at(archive, monkeypatch, 100, **tags)
    order = stability.announcement_order

    def read_then_store(due: list[tuple[ResourceRow, int]]) -> list[ResourceRow]:
        store_at(archive, monkeypatch, 1000, **tags)  # the same series, just now
        return order(due)

    monkeypatch.setattr(stability, "announcement_order", read_then_store)
    monkeypatch.setattr(stability, "now_seconds", lambda: 1000)
    assert stability.check_stability(archive) == 0
    assert stable_changes(archive) == []
    with archive.read() as session:
        assert not any(session.lookup(first[name]).stable for name in first)


def row(internal_id: int, level: Level, parent: int | None) -> ResourceRow:
    return ResourceRow(internal_id, f"r{internal_id}", int(level), parent, stable=False)


def test_announcement_order_walks_each_second_children_first() -> None:
    patient, study, series = (
        row(1, Level.PATIENT, None),
        row(2, Level.STUDY, 1),
        row(3, Level.SERIES, 2),
    )
    other_series = row(7, Level.SERIES, 6)  # its study was updated later
    lone_patient, its_study = row(8, Level.PATIENT, None), row(9, Level.STUDY, 8)
    due = [
        (series, 10),
        (other_series, 10),
        (its_study, 10),
        (study, 10),
        (lone_patient, 10),
        (patient, 10),
        (row(6, Level.STUDY, 1), 11),
    ]
    order = [r.id for r in stability.announcement_order(due)]
    assert order == [3, 2, 1, 7, 9, 8, 6]


def test_the_due_query_uses_the_partial_index(archive: Archive, tmp_path: Path) -> None:
    with archive.read() as session:
        assert session.unstable_due(2**40) == []
    with sqlite3.connect(tmp_path / "index" / "dicomhub-index.db") as conn:
        plan = " ".join(
            r[3]
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM resources WHERE stable = false "
                "AND last_update <= 5 ORDER BY last_update, level DESC, id LIMIT 1000"
            )
        )
    assert "ix_resources_unstable_since" in plan, plan
