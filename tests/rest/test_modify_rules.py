"""``/modify`` edge rules: an emptied or non-string SOP UID, emptied UIDs in a job, and
the identifier checks that ``Force`` lifts (Orthanc 1.12's rule).

Where the reference Orthanc answers, the same request is sent to both and the
answers compared; the exact answers are asserted in any case."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.archive_checks import (
    OracleUploads,
    assert_consistent,
    assert_orthanc_error,
    oracle_uploads,
    statistics,
    upload,
)
from tests.dicom_factory import make_dataset, to_bytes

MEDIA_CLASS, MEDIA_INSTANCE = 0x00020002, 0x00020003
SOP_CLASS, SOP_INSTANCE = 0x00080016, 0x00080018
NO_SOP_INSTANCE_UID = "File without SOP instance UID"
EMPTY_UID = "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID"


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _series_files(patient: str = "MODFIXRULES", count: int = 2) -> list[bytes]:
    study, series = generate_uid(), generate_uid()
    return [
        to_bytes(make_dataset(patient_id=patient, study_uid=study, series_uid=series))
        for _ in range(count)
    ]


def _stored(client: httpx.Client, files: list[bytes]) -> dict[str, Any]:
    answers = [upload(client, data) for data in files]
    return {
        "instance": answers[0]["ID"],
        "series": answers[0]["ParentSeries"],
        "study": answers[0]["ParentStudy"],
        "patient": answers[0]["ParentPatient"],
    }


def _oracle_stored(oracle: OracleUploads, files: list[bytes]) -> dict[str, Any]:
    answers = [oracle.upload(data) for data in files]
    return {
        "instance": answers[0]["ID"],
        "series": answers[0]["ParentSeries"],
        "study": answers[0]["ParentStudy"],
    }


def _uids(data: bytes) -> dict[int, str | None]:
    """The file meta's and the data set's SOP UIDs (None: the element is absent)."""
    ds = dcmread(io.BytesIO(data))
    meta = ds.file_meta
    return {
        MEDIA_CLASS: str(meta[MEDIA_CLASS].value) if MEDIA_CLASS in meta else None,
        MEDIA_INSTANCE: str(meta[MEDIA_INSTANCE].value) if MEDIA_INSTANCE in meta else None,
        SOP_CLASS: str(ds[SOP_CLASS].value) if SOP_CLASS in ds else None,
        SOP_INSTANCE: str(ds[SOP_INSTANCE].value) if SOP_INSTANCE in ds else None,
    }


def _error(response: httpx.Response) -> tuple[int, str, int, str | None]:
    body = response.json()
    return body["HttpStatus"], body["Message"], body["OrthancStatus"], body.get("Details")


# ---- an emptied SOP UID ---------------------------------------------------------------
def test_single_instance_with_an_emptied_sop_instance_uid(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    """The file is answered, its SOP Instance UID empty in the data set and in the
    file meta (pydicom's writer refuses that; Orthanc writes it)."""
    files = _series_files(count=1)
    ours = _stored(client, files)
    before = statistics(client)
    body = {"Replace": {"SOPInstanceUID": ""}, "Force": True}
    response = client.post(f"/instances/{ours['instance']}/modify", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom"
    uids = _uids(response.content)
    assert uids[MEDIA_INSTANCE] == "" and uids[SOP_INSTANCE] == ""
    assert uids[MEDIA_CLASS] == uids[SOP_CLASS] == "1.2.840.10008.5.1.4.1.1.2"
    out = dcmread(io.BytesIO(response.content))
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert out.PatientID == "MODFIXRULES" and len(out.PixelData) == 128
    assert statistics(client) == before  # nothing stored

    # Such a file cannot be stored: an empty UID makes a bad file.
    refused = client.post("/instances", content=response.content)
    ours_error = assert_orthanc_error(refused, 400, "Bad file format", 15)
    assert ours_error["Details"] == EMPTY_UID
    assert statistics(client) == before

    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/instances/{theirs['instance']}/modify", json=body)
        assert reference.status_code == 200
        assert _uids(reference.content) == uids
        again = oracle.client.post("/instances", content=reference.content)
        assert _error(again) == _error(refused)


def test_single_instance_with_an_emptied_sop_class_uid(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    """SOPClassUID is no identifier: no ``Force`` needed, and the file meta follows."""
    files = _series_files(count=1)
    ours = _stored(client, files)
    body = {"Replace": {"SOPClassUID": ""}}
    response = client.post(f"/instances/{ours['instance']}/modify", json=body)
    assert response.status_code == 200, response.text
    uids = _uids(response.content)
    assert uids[MEDIA_CLASS] == uids[SOP_CLASS] == ""
    assert uids[MEDIA_INSTANCE] == uids[SOP_INSTANCE] != ""
    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/instances/{theirs['instance']}/modify", json=body)
        assert reference.status_code == 200
        mine = {k: v for k, v in uids.items() if k in (MEDIA_CLASS, SOP_CLASS)}
        assert {k: v for k, v in _uids(reference.content).items() if k in mine} == mine


@pytest.mark.parametrize("level", ["series", "study"])
def test_a_job_that_empties_the_sop_instance_uid_fails(
    server: Any, oracle: OracleUploads | None, level: str
) -> None:
    client = server.client
    files = _series_files()
    ours = _stored(client, files)
    before = statistics(client)
    body = {"Replace": {"SOPInstanceUID": ""}, "Force": True}
    plural = "series" if level == "series" else "studies"
    response = client.post(f"/{plural}/{ours[level]}/modify", json=body)
    error = assert_orthanc_error(response, 400, "Bad file format", 15, "POST")
    assert error["Details"] == NO_SOP_INSTANCE_UID
    assert statistics(client) == before  # nothing stored, nothing half-done
    jobs = client.get("/jobs?expand").json()
    assert [(j["State"], j["ErrorCode"]) for j in jobs] == [("Failure", 15)]
    assert_consistent(server)
    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/{plural}/{theirs[level]}/modify", json=body)
        assert _error(reference) == _error(response)


@pytest.mark.parametrize(
    ("level", "tag"), [("series", "SeriesInstanceUID"), ("study", "StudyInstanceUID")]
)
def test_a_job_that_empties_the_uid_of_its_level_fails(
    client: httpx.Client, oracle: OracleUploads | None, level: str, tag: str
) -> None:
    """The new files cannot be stored: the answer of a POST /instances of such a file."""
    files = _series_files()
    ours = _stored(client, files)
    before = statistics(client)
    body = {"Replace": {tag: ""}, "Force": True}
    plural = "series" if level == "series" else "studies"
    response = client.post(f"/{plural}/{ours[level]}/modify", json=body)
    error = assert_orthanc_error(response, 400, "Bad file format", 15, "POST")
    assert error["Details"] == EMPTY_UID
    assert statistics(client) == before
    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/{plural}/{theirs[level]}/modify", json=body)
        assert _error(reference) == _error(response)


@pytest.mark.parametrize(
    ("route", "replace"),
    [
        ("instances", {"SOPInstanceUID": None}),
        ("instances", {"SOPInstanceUID": 3}),
        ("instances", {"SOPClassUID": None}),
        ("series", {"SOPInstanceUID": None}),
    ],
)
def test_a_sop_uid_that_is_not_a_string(
    client: httpx.Client, oracle: OracleUploads | None, route: str, replace: dict[str, Any]
) -> None:
    """The SOP UIDs also go to the file meta, where only a string is taken: even
    ``null`` (an empty value for any other tag) is a bad type, without details."""
    files = _series_files()
    ours = _stored(client, files)
    before = statistics(client)
    body = {"Replace": replace, "Force": True}
    key = "instance" if route == "instances" else "series"
    response = client.post(f"/{route}/{ours[key]}/modify", json=body)
    error = assert_orthanc_error(response, 400, "Bad type for a parameter", 5, "POST")
    assert "Details" not in error
    assert statistics(client) == before
    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/{route}/{theirs[key]}/modify", json=body)
        assert _error(reference) == _error(response)


def test_null_empties_another_uid(client: httpx.Client, oracle: OracleUploads | None) -> None:
    files = _series_files(count=1)
    ours = _stored(client, files)
    body = {"Replace": {"StudyInstanceUID": None}, "Force": True}
    response = client.post(f"/instances/{ours['instance']}/modify", json=body)
    assert response.status_code == 200, response.text
    assert dcmread(io.BytesIO(response.content)).StudyInstanceUID == ""
    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/instances/{theirs['instance']}/modify", json=body)
        assert reference.status_code == 200
        assert dcmread(io.BytesIO(reference.content)).StudyInstanceUID == ""


# ---- the identifier checks -------------------------------------------------------------
_FORCE_NEEDED = 'Marking tag "{}" as to be replaced requires the "Force" option to be set to true'


@pytest.mark.parametrize(
    ("level", "tag"),
    [
        ("series", "StudyInstanceUID"),
        ("series", "PatientID"),
        ("study", "PatientID"),
        ("instance", "SeriesInstanceUID"),
        ("instance", "StudyInstanceUID"),
    ],
)
def test_a_parent_identifier_needs_force(
    client: httpx.Client, oracle: OracleUploads | None, level: str, tag: str
) -> None:
    files = _series_files()
    ours = _stored(client, files)
    before = statistics(client)
    body = {"Replace": {tag: "1.2.3"}}
    plural = {"series": "series", "study": "studies", "instance": "instances"}[level]
    response = client.post(f"/{plural}/{ours[level]}/modify", json=body)
    error = assert_orthanc_error(response, 400, "Bad request", 8, "POST")
    assert error["Details"] == _FORCE_NEEDED.format(tag)
    assert statistics(client) == before
    assert client.get("/jobs").json() == []
    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/{plural}/{theirs[level]}/modify", json=body)
        assert _error(reference) == _error(response)


def test_force_lets_a_series_change_its_study(client: httpx.Client) -> None:
    """Orthanc 1.12 (since 1.11.3): with ``Force`` a series may get another
    StudyInstanceUID (1.10.1 refused it: "When modifying a series, the parent
    StudyInstanceUID cannot be manually modified")."""
    ours = _stored(client, _series_files())
    response = client.post(
        f"/series/{ours['series']}/modify",
        json={"Replace": {"StudyInstanceUID": "1.2.3"}, "Force": True},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["Type"] == "Series" and answer["InstancesCount"] == 2
    study = client.get(f"/series/{answer['ID']}/study").json()
    assert study["MainDicomTags"]["StudyInstanceUID"] == "1.2.3"
    assert study["ID"] != ours["study"] and study["ParentPatient"] == ours["patient"]


def test_force_lets_a_series_change_its_patient(client: httpx.Client) -> None:
    ours = _stored(client, _series_files())
    response = client.post(
        f"/series/{ours['series']}/modify",
        json={"Replace": {"PatientID": "MODFIXMOVED"}, "Force": True},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["PatientID"] != ours["patient"]
    patient = client.get(f"/patients/{answer['PatientID']}").json()
    assert patient["MainDicomTags"]["PatientID"] == "MODFIXMOVED"


@pytest.mark.parametrize("tag", ["SeriesInstanceUID", "StudyInstanceUID"])
def test_force_lets_an_instance_change_its_parents(
    client: httpx.Client, oracle: OracleUploads | None, tag: str
) -> None:
    """A single instance's level follows what is replaced: 1.10.1 accepts this too."""
    files = _series_files(count=1)
    ours = _stored(client, files)
    body = {"Replace": {tag: "1.2.3"}, "Force": True}
    response = client.post(f"/instances/{ours['instance']}/modify", json=body)
    assert response.status_code == 200, response.text
    out = dcmread(io.BytesIO(response.content))
    assert out[tag].value == "1.2.3"
    original = dcmread(io.BytesIO(files[0]))
    assert out.SOPInstanceUID != original.SOPInstanceUID
    if tag == "StudyInstanceUID":  # the study level also gives a new series UID
        assert out.SeriesInstanceUID != original.SeriesInstanceUID
    if oracle is not None:
        theirs = _oracle_stored(oracle, files)
        reference = oracle.client.post(f"/instances/{theirs['instance']}/modify", json=body)
        assert reference.status_code == 200
        theirs_out = dcmread(io.BytesIO(reference.content))
        assert theirs_out[tag].value == "1.2.3"
        assert (theirs_out.SeriesInstanceUID == original.SeriesInstanceUID) == (
            out.SeriesInstanceUID == original.SeriesInstanceUID
        )


def test_force_lets_a_patient_keep_its_patient_id(client: httpx.Client) -> None:
    """1.12: with ``Force`` a patient modification need not change the PatientID (its
    studies, series and instances get new UIDs under the same patient)."""
    ours = _stored(client, _series_files())
    refused = client.post(
        f"/patients/{ours['patient']}/modify", json={"Replace": {"PatientName": "New^Name"}}
    )
    error = assert_orthanc_error(refused, 400, "Bad request", 8)
    assert error["Details"] == "When modifying a patient, her PatientID is required to be modified."
    response = client.post(
        f"/patients/{ours['patient']}/modify",
        json={"Replace": {"PatientName": "New^Name"}, "Force": True},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["Type"] == "Patient" and answer["ID"] == ours["patient"]
    studies = client.get(f"/patients/{ours['patient']}/studies").json()
    assert len(studies) == 2
