"""The ``ResourceModification`` job on a real archive: run again it finds what it had
stored (restart, resume), stopped it takes back what it created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid

from dicomhub.core import ingest, modification, modification_job, reading
from dicomhub.core.archive import Archive
from dicomhub.core.enums import MetadataType
from dicomhub.core.errors import BadParameterType
from dicomhub.core.jobs import engine
from dicomhub.core.settings import Settings
from dicomhub.dicom.levels import Level
from tests.dicom_factory import make_dataset, to_bytes


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    settings = Settings(
        storage_directory=str(tmp_path / "storage"), index_directory=str(tmp_path / "index")
    )
    opened = Archive(settings)
    yield opened
    opened.close()


def _study(archive: Archive, count: int, nested_every: int = 0) -> str:
    study_uid, series_uid = generate_uid(), generate_uid()
    result = None
    for number in range(count):
        ds = make_dataset(patient_id="JOB", study_uid=study_uid, series_uid=series_uid)
        if nested_every and number % nested_every == 0:
            ds.ReferencedImageSequence = [make_dataset()[0x00080016:0x00080017]]
        result = ingest.store(archive, to_bytes(ds))
    assert result is not None
    return result.ids[Level.STUDY]


def _context(archive: Archive, job_id: str) -> engine.JobContext:
    job = engine.get_job(archive, job_id)
    assert job is not None
    return engine.JobContext(archive, job, {}, 0.0)


def _count(archive: Archive) -> int:
    with archive.read() as session:
        return len(session.list_resources(int(Level.INSTANCE)))


def _submit(archive: Archive, study: str, body: dict) -> str:
    request = modification.parse_anonymize(body, {}, archive.settings)
    return modification_job.submit(archive, request, [study], Level.STUDY, ingest.Origin())


def test_running_again_finds_the_same_resources(archive: Archive) -> None:
    study = _study(archive, 6)
    job_id = _submit(archive, study, {})
    first = _context(archive, job_id)
    modification_job.run_modification(first)
    assert _count(archive) == 12
    # A restart (or a resume) runs the job from its saved parameters again.
    again = _context(archive, job_id)
    modification_job.run_modification(again)
    assert _count(archive) == 12
    assert again.content["ID"] == first.content["ID"]
    assert again.content["PatientID"] == first.content["PatientID"]


def test_a_cancel_request_stops_the_job_and_takes_back_its_work(archive: Archive) -> None:
    study = _study(archive, 4)
    job_id = _submit(archive, study, {})
    archive.write(lambda tx: tx.session.update_job(job_id, request="cancel"))
    with pytest.raises(engine.JobStopped):
        modification_job.run_modification(_context(archive, job_id))
    assert _count(archive) == 4


def test_a_failure_takes_back_what_every_thread_stored(archive: Archive) -> None:
    study = _study(archive, 12, nested_every=5)
    body = {"Replace": {"ReferencedImageSequence[0].PatientName": 3}}
    request = modification.parse_modify(body, Level.STUDY, {}, archive.settings)
    job_id = modification_job.submit(archive, request, [study], Level.STUDY, ingest.Origin())
    with pytest.raises(BadParameterType):
        modification_job.run_modification(_context(archive, job_id))
    assert _count(archive) == 12

    request = modification.parse_modify(
        {**body, "Permissive": True}, Level.STUDY, {}, archive.settings
    )
    job_id = modification_job.submit(archive, request, [study], Level.STUDY, ingest.Origin())
    context = _context(archive, job_id)
    modification_job.run_modification(context)
    assert context.content["FailedInstancesCount"] == 3
    assert _count(archive) == 12 + 9


def _records(archive: Archive, public_ids: list[str]) -> dict[str, Any]:
    """What the index holds about instances and their parents, by public ID, with
    the metadata that depend on the moment or the run left out."""
    volatile = {
        int(MetadataType.ReceptionDate),
        int(MetadataType.LastUpdate),
        int(MetadataType.AnonymizedFrom),
        int(MetadataType.ModifiedFrom),
        int(MetadataType.Origin),
    }
    found: dict[str, Any] = {}
    with archive.read() as session:
        for public_id in public_ids:
            row = session.lookup(public_id)
            while row is not None:
                metadata = {
                    k: v for k, (v, _) in session.metadata(row.id).items() if k not in volatile
                }
                found[row.public_id] = (row.level, session.main_tags(row.id), metadata)
                row = session.get(row.parent_id) if row.parent_id is not None else None
    return found


@pytest.mark.parametrize(
    "body",
    [{}, {"Replace": {"PatientName": "Jérôme^Ünïcode ", "StudyDescription": "Étude"}}],
    ids=["anonymize", "anonymize with replacements"],
)
def test_new_instances_are_indexed_as_a_fresh_upload_indexes_them(
    archive: Archive, tmp_path: Path, body: dict
) -> None:
    """The job builds the index record of a new file from the dataset it wrote (no
    second parse): it must be the record that storing the same file gives."""
    study_uid, series_uid = generate_uid(), generate_uid()
    for number, charset in enumerate(["ISO_IR 100", "ISO_IR 192", None, "ISO_IR 100"]):
        ds = make_dataset(
            patient_id="INDEX",
            patient_name="Müller^Jürgen",
            study_uid=study_uid,
            series_uid=series_uid,
            charset=charset,
            InstanceNumber=str(number + 1),
            ImagesInAcquisition="4",
            NumberOfTemporalPositions="1",
        )
        result = ingest.store(archive, to_bytes(ds))
    study = result.ids[Level.STUDY]
    job_id = _submit(archive, study, body)
    context = _context(archive, job_id)
    modification_job.run_modification(context)
    with archive.read() as session:
        new_study = session.lookup(context.content["ID"])
        assert new_study is not None
        new_ids = [r.public_id for r in session.descendant_instances(new_study)]
    assert len(new_ids) == 4
    fresh = Archive(
        Settings(
            storage_directory=str(tmp_path / "fresh-storage"),
            index_directory=str(tmp_path / "fresh-index"),
        )
    )
    try:
        for public_id in new_ids:
            assert ingest.store(fresh, reading.instance_file(archive, public_id)).status == (
                ingest.STATUS_SUCCESS
            )
        assert _records(archive, new_ids) == _records(fresh, new_ids)
    finally:
        fresh.close()
