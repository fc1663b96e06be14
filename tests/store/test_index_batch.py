"""The index's batch reads give what the one-resource reads give, resource by resource.

C-FIND reads the values of all its answers with ``main_tags_many``, ``parents_many``,
``descendant_counts`` and ``children_tag_values``; each is checked here against
``main_tags``, ``get`` and ``children`` on a real SQLite index filled by ingest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import make_dicom
from pydicom.uid import generate_uid

from dicomhub.core import ingest
from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings
from dicomhub.dicom.levels import Level
from dicomhub.store.index.index import IndexSession
from dicomhub.store.index.records import ResourceRow

MODALITY = 0x00080060
PATIENT_NAME = 0x00100010
STUDY_DATE = 0x00080020


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """Three patients; the first has two studies; series of 1-3 instances, CT and MR,
    one series without Modality."""
    folder: Path = tmp_path_factory.mktemp("batch")
    opened = Archive(
        Settings(
            storage_directory=str(folder / "s"),
            index_directory=str(folder / "i"),
            sync_storage_area=False,
        )
    )
    for p in range(3):
        for s in range(2 if p == 0 else 1):
            study = generate_uid()
            for k, modality in enumerate(("CT", "MR", "CT", None)[: 2 + p + s]):
                series = generate_uid()
                for _ in range(1 + (k + p) % 3):
                    ds = make_dicom(
                        patient_id=f"BATCH{p}",
                        patient_name=f"Doe^Batch{p}",
                        study_uid=study,
                        series_uid=series,
                        modality=modality or "CT",
                        **({"Modality": None} if modality is None else {}),
                    )
                    ingest.store(opened, ds)
    yield opened
    opened.close()


def _all(session: IndexSession) -> dict[Level, list[ResourceRow]]:
    found: dict[Level, list[ResourceRow]] = {}
    for level in Level:
        found[level] = [
            row
            for public_id in session.list_resources(int(level))
            if (row := session.lookup(public_id)) is not None
        ]
    return found


def test_main_tags_many(archive: Archive) -> None:
    with archive.read() as session:
        rows = [r for level in _all(session).values() for r in level]
        ids = [r.id for r in rows]
        everything = session.main_tags_many(ids)
        assert everything == {r.id: session.main_tags(r.id) for r in rows}
        some = session.main_tags_many(ids + ids[:3], [PATIENT_NAME, STUDY_DATE, 0x7FE00010])
        expected = {}
        for r in rows:
            own = session.main_tags(r.id)
            wanted = {t: v for t, v in own.items() if t in (PATIENT_NAME, STUDY_DATE)}
            if wanted:
                expected[r.id] = wanted
        assert some == expected
        assert session.main_tags_many([]) == {}
        assert session.main_tags_many([10**9]) == {}


def test_parents_many(archive: Archive) -> None:
    with archive.read() as session:
        rows = [r for level in _all(session).values() for r in level]
        assert session.parents_many([r.id for r in rows] + [10**9]) == {
            r.id: r.parent_id for r in rows
        }


def test_descendant_counts(archive: Archive) -> None:
    with archive.read() as session:
        levels = _all(session)
        for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
            for depth in range(1, 4 - level):
                ids = [r.id for r in levels[level]]
                counts = session.descendant_counts(ids, depth)
                for row in levels[level]:
                    below = [row]
                    for _ in range(depth):
                        below = [c for r in below for c in session.children(r.id)]
                    assert counts.get(row.id, 0) == len(below), (level, depth)
        assert session.descendant_counts([levels[Level.INSTANCE][0].id], 1) == {}


def test_children_tag_values(archive: Archive) -> None:
    with archive.read() as session:
        studies = _all(session)[Level.STUDY]
        found = session.children_tag_values([r.id for r in studies], MODALITY)
        for study in studies:
            expected = [
                tags[MODALITY]
                for child in session.children(study.id)
                if MODALITY in (tags := session.main_tags(child.id))
            ]
            assert found.get(study.id, []) == expected
        assert any(len(v) > 2 for v in found.values())


def test_batches_span_several_statements(archive: Archive) -> None:
    """More resources than one statement takes (500): the chunks add up."""
    with archive.read() as session:
        instances = _all(session)[Level.INSTANCE]
        ids = [r.id for r in instances] * 200  # duplicates: asked once each
        assert len(ids) > 1000
        assert session.main_tags_many(ids) == {r.id: session.main_tags(r.id) for r in instances}
        assert session.parents_many(ids) == {r.id: r.parent_id for r in instances}
