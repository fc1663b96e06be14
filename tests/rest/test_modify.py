"""``/{level}/{id}/modify`` and ``/tools/bulk-modify``: new resources, identifiers,
jobs, bad bodies; the single-instance answer compared with the reference Orthanc."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from tests.archive_checks import (
    OracleUploads,
    assert_consistent,
    assert_orthanc_error,
    oracle_uploads,
    statistics,
    upload,
)
from tests.dicom_factory import make_dataset, to_bytes


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _referencing(ds: Dataset, sop_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = sop_uid
    item.AccessionNumber = "NESTED"
    ds.ReferencedImageSequence = [item, Dataset()]
    ds.ReferencedImageSequence[1].ReferencedSOPInstanceUID = "1.2.3.4.5"
    return ds


def _study(client: httpx.Client, patient: str = "MOD001", series: int = 2, per: int = 2) -> dict:
    """A study of ``series`` x ``per`` instances; answers its IDs and the files' UIDs."""
    study_uid = generate_uid()
    answers = []
    for _ in range(series):
        series_uid = generate_uid()
        for _ in range(per):
            ds = make_dataset(patient_id=patient, study_uid=study_uid, series_uid=series_uid)
            ds.add_new(0x00190010, "LO", "ACME")
            ds.add_new(0x00191010, "LO", "secret")
            answers.append(upload(client, to_bytes(ds)))
    return {
        "study": answers[0]["ParentStudy"],
        "patient": answers[0]["ParentPatient"],
        "series": sorted({a["ParentSeries"] for a in answers}),
        "instances": [a["ID"] for a in answers],
        "study_uid": study_uid,
    }


def _tags(client: httpx.Client, instance: str) -> dict[str, Any]:
    response = client.get(f"/instances/{instance}/simplified-tags")
    assert response.status_code == 200, response.text
    return response.json()


def _instances(client: httpx.Client, level: str, public_id: str) -> list[str]:
    response = client.get(f"/{level}/{public_id}/instances")
    assert response.status_code == 200, response.text
    return [i["ID"] for i in response.json()]


def test_modify_study_creates_a_new_study_with_consistent_uids(client: httpx.Client) -> None:
    source = _study(client)
    response = client.post(
        f"/studies/{source['study']}/modify",
        json={"Replace": {"StudyDescription": "Changed", "InstitutionName": "Clinic"}},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {
        "Description",
        "FailedInstancesCount",
        "ID",
        "InstancesCount",
        "IsAnonymization",
        "Path",
        "PatientID",
        "Type",
    }
    assert answer["Type"] == "Study" and answer["Path"] == f"/studies/{answer['ID']}"
    assert answer["PatientID"] == source["patient"]  # same patient
    assert answer["InstancesCount"] == 4 and answer["FailedInstancesCount"] == 0
    assert answer["IsAnonymization"] is False
    assert answer["ID"] != source["study"]

    new_study = client.get(f"/studies/{answer['ID']}").json()
    assert new_study["MainDicomTags"]["StudyDescription"] == "Changed"
    assert new_study["MainDicomTags"]["StudyInstanceUID"] != source["study_uid"]
    assert len(new_study["Series"]) == 2  # the two series stay two series
    new_instances = _instances(client, "studies", answer["ID"])
    assert len(new_instances) == 4
    study_uids = {_tags(client, i)["StudyInstanceUID"] for i in new_instances}
    assert len(study_uids) == 1
    for instance in new_instances:
        tags = _tags(client, instance)
        assert tags["InstitutionName"] == "Clinic"
        assert tags["PatientID"] == "MOD001"
        short = client.get(f"/instances/{instance}/tags?short").json()
        assert short["0019,1010"] == "secret"  # a modification keeps private tags

    meta = client.get(f"/studies/{answer['ID']}/metadata/ModifiedFrom")
    assert meta.status_code == 200 and meta.text == source["study"]
    series_meta = client.get(f"/series/{new_study['Series'][0]}/metadata/ModifiedFrom").text
    assert series_meta in source["series"]
    instance_meta = client.get(f"/instances/{new_instances[0]}/metadata/ModifiedFrom").text
    assert instance_meta in source["instances"]
    # The patient did not change: it gets no ModifiedFrom.
    assert client.get(f"/patients/{source['patient']}/metadata/ModifiedFrom").status_code == 404
    # The source is kept by default.
    assert client.get(f"/studies/{source['study']}").status_code == 200
    assert statistics(client)["CountInstances"] == 8


def test_keep_source_false_deletes_the_original(client: httpx.Client) -> None:
    source = _study(client, series=1)
    response = client.post(
        f"/series/{source['series'][0]}/modify",
        json={"Replace": {"SeriesDescription": "moved"}, "KeepSource": False},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["Type"] == "Series"
    assert client.get(f"/series/{source['series'][0]}").status_code == 404
    new = client.get(f"/series/{answer['ID']}").json()
    assert new["MainDicomTags"]["SeriesDescription"] == "moved"
    assert new["ParentStudy"] == source["study"]  # a series keeps its study
    assert statistics(client)["CountInstances"] == 2


def test_modify_patient_needs_force_and_a_new_patient_id(client: httpx.Client) -> None:
    source = _study(client, series=1, per=1)
    refused = client.post(
        f"/patients/{source['patient']}/modify", json={"Replace": {"PatientID": "NEW"}}
    )
    body = assert_orthanc_error(refused, 400, "Bad request", 8)
    assert body["Details"] == (
        'Marking tag "PatientID" as to be replaced requires the "Force" option to be set to true'
    )
    refused = client.post(
        f"/patients/{source['patient']}/modify",
        json={"Replace": {"PatientName": "X"}, "Force": False},
    )
    assert assert_orthanc_error(refused, 400, "Bad request", 8)["Details"] == (
        "When modifying a patient, her PatientID is required to be modified."
    )
    response = client.post(
        f"/patients/{source['patient']}/modify",
        json={"Replace": {"PatientID": "NEW", "PatientName": "New^Name"}, "Force": True},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["Type"] == "Patient" and answer["ID"] == answer["PatientID"]
    patient = client.get(f"/patients/{answer['ID']}").json()
    assert patient["MainDicomTags"]["PatientID"] == "NEW"
    assert patient["MainDicomTags"]["PatientName"] == "New^Name"
    meta = client.get(f"/patients/{answer['ID']}/metadata/ModifiedFrom")
    assert meta.text == source["patient"]


_BAD_BODIES: list[tuple[str, Any, int, str, str | None]] = [
    (
        "studies",
        {"Replace": {"PatientID": "X"}},
        400,
        "Bad request",
        'Marking tag "PatientID" as to be replaced requires the "Force" option to be set to true',
    ),
    (
        "studies",
        {"Remove": ["SeriesInstanceUID"]},
        400,
        "Bad request",
        'Marking tag "SeriesInstanceUID" as to be removed requires the "Force" option to be '
        "set to true",
    ),
    ("studies", {"Replace": {"NoSuchTag": "x"}}, 400, "Unknown DICOM tag", None),
    ("studies", {"Replace": "x"}, 400, "Bad request", None),
    ("studies", {"Remove": [1]}, 400, "Bad request", None),
    (
        "studies",
        {"Force": "yes"},
        400,
        "Bad file format",
        'Member "Force" should be a Boolean value',
    ),
    (
        "studies",
        {"Replace": {"ReferencedImageSequence.ReferencedSOPInstanceUID": "1"}},
        400,
        "Parameter out of range",
        "Parent path doesn't contain an index",
    ),
    (
        "studies",
        {"Replace": {"ReferencedImageSequence[-1].ReferencedSOPInstanceUID": "1"}},
        400,
        "Parameter out of range",
        "Negative index in parent path: -1",
    ),
    (
        "studies",
        {"Replace": {"ReferencedImageSequence[x].ReferencedSOPInstanceUID": "1"}},
        400,
        "Parameter out of range",
        "Not a valid index in parent path: [x]",
    ),
    (
        "studies",
        {"KeepSource": "no"},
        400,
        "Bad file format",
        "Boolean value expected in field: KeepSource",
    ),
    (
        "studies",
        {"Priority": "high"},
        400,
        "Bad file format",
        "Integer value expected in field: Priority",
    ),
    (
        "studies",
        {"PrivateCreator": 3},
        400,
        "Bad file format",
        "String value expected in field: PrivateCreator",
    ),
    (
        "studies",
        {"Transcode": "1.2.3"},
        400,
        "Bad file format",  # as Orthanc's modification job reads it
        "Unknown transfer syntax UID: 1.2.3",
    ),
    ("studies", [1], 400, "Bad file format", None),
]


def test_bad_modify_bodies_change_nothing(client: httpx.Client) -> None:
    source = _study(client, series=1, per=1)
    before = statistics(client)
    for route, body, status, message, details in _BAD_BODIES:
        public_id = source["study"] if route == "studies" else source["series"][0]
        response = client.post(f"/{route}/{public_id}/modify", json=body)
        answer = assert_orthanc_error(response, status, message, None, "POST")
        if details is not None:
            assert answer["Details"] == details, body
    assert statistics(client) == before
    assert client.get("/jobs").json() == []


def test_force_lets_a_study_change_its_patient(client: httpx.Client) -> None:
    """Orthanc 1.12 skips the parent checks with Force (1.10.1 refused this)."""
    source = _study(client, series=1, per=1)
    response = client.post(
        f"/studies/{source['study']}/modify",
        json={"Replace": {"PatientID": "MOVED"}, "Force": True},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["PatientID"] != source["patient"]
    patient = client.get(f"/patients/{answer['PatientID']}").json()
    assert patient["MainDicomTags"]["PatientID"] == "MOVED"


def test_removing_an_identifier_is_refused_even_with_force(client: httpx.Client) -> None:
    source = _study(client, series=1, per=1)
    response = client.post(
        f"/studies/{source['study']}/modify", json={"Remove": ["PatientID"], "Force": True}
    )
    body = assert_orthanc_error(response, 400, "Bad request", 8)
    assert body["Details"] == "It is forbidden to remove one of the main Dicom identifiers"
    assert statistics(client)["CountInstances"] == 1
    assert_consistent_after_jobs(client)


def assert_consistent_after_jobs(client: httpx.Client) -> None:
    jobs = client.get("/jobs?expand").json()
    assert all(job["State"] in ("Success", "Failure") for job in jobs)


def test_not_json_and_unknown_resource(client: httpx.Client) -> None:
    source = _study(client, series=1, per=1)
    response = client.post(f"/studies/{source['study']}/modify", content=b"not json")
    assert_orthanc_error(response, 400, "Bad file format", 15)
    response = client.post("/studies/nope/modify", json={})
    assert_orthanc_error(response, 404, "Unknown resource", 17)
    response = client.post(f"/series/{source['study']}/modify", json={})
    assert_orthanc_error(response, 404, "Unknown resource", 17)
    response = client.post("/instances/nope/modify", json={})
    assert_orthanc_error(response, 404, "Unknown resource", 17)


def test_single_instance_answers_the_modified_file(client: httpx.Client) -> None:
    ds = _referencing(make_dataset(patient_id="ONE"), "1.2.3.4")
    ds.DerivationCodeSequence = [Dataset()]
    ds.DerivationCodeSequence[0].CodeValue = "1"
    stored = upload(client, to_bytes(ds))
    before = statistics(client)
    response = client.post(
        f"/instances/{stored['ID']}/modify",
        json={
            "Replace": {
                "PatientName": "Other^Name",
                "ReferencedImageSequence[*].ReferencedSOPInstanceUID": "9.9",
                "DerivationCodeSequence[0].CodeMeaning": "added",
                "OtherPatientIDsSequence[0].PatientID": "not created",
            },
            "Remove": ["ReferencedImageSequence[0].AccessionNumber", "StudyDescription"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom"
    out = dcmread(io.BytesIO(response.content))
    assert out.PatientName == "Other^Name"
    assert out.PatientID == "ONE"
    assert [i.ReferencedSOPInstanceUID for i in out.ReferencedImageSequence] == ["9.9", "9.9"]
    assert "AccessionNumber" not in out.ReferencedImageSequence[0]
    assert out.DerivationCodeSequence[0].CodeMeaning == "added"
    assert "OtherPatientIDsSequence" not in out
    assert "StudyDescription" not in out
    # A single instance gets a new SOP Instance UID, and keeps its study and series.
    assert out.SOPInstanceUID != ds.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.StudyInstanceUID == ds.StudyInstanceUID
    assert out.SeriesInstanceUID == ds.SeriesInstanceUID
    assert statistics(client) == before  # nothing stored


def test_replaced_text_keeps_what_the_charset_holds(client: httpx.Client) -> None:
    """As Orthanc: characters the file's character set lacks are left out, not
    written as question marks."""
    stored = upload(client, to_bytes(make_dataset(patient_id="LATIN")))
    response = client.post(
        f"/instances/{stored['ID']}/modify",
        json={"Replace": {"PatientName": "Ελλη Ab", "StudyDescription": "日本x"}, "Force": True},
    )
    assert response.status_code == 200, response.text
    out = dcmread(io.BytesIO(response.content))
    assert out.get("SpecificCharacterSet", "ISO_IR 100") in ("", "ISO_IR 100")
    assert (out.PatientName, out.StudyDescription) == (" Ab", "x")


def test_single_instance_keep_and_force_and_sequences(client: httpx.Client) -> None:
    ds = make_dataset(patient_id="KEEP")
    stored = upload(client, to_bytes(ds))
    response = client.post(
        f"/instances/{stored['ID']}/modify",
        json={
            "Keep": ["SOPInstanceUID"],
            "Force": True,
            "Replace": {
                "DerivationCodeSequence": [{"CodeValue": "5", "CodingSchemeDesignator": "X"}],
                "OtherPatientIDs": None,
                "Rows": "16",
            },
        },
    )
    assert response.status_code == 200, response.text
    out = dcmread(io.BytesIO(response.content))
    assert out.SOPInstanceUID == ds.SOPInstanceUID
    assert out.DerivationCodeSequence[0].CodeValue == "5"
    assert out.OtherPatientIDs == ""
    assert out.Rows == 16
    bad = client.post(f"/instances/{stored['ID']}/modify", json={"Replace": {"PatientName": 3}})
    body = assert_orthanc_error(bad, 400, "Bad type for a parameter", 5)
    assert body["Details"] == "Bad Parameter type for tag 0010,0010"


def test_single_instance_with_force_moves_to_a_new_patient(client: httpx.Client) -> None:
    ds = make_dataset(patient_id="FORCE")
    stored = upload(client, to_bytes(ds))
    response = client.post(
        f"/instances/{stored['ID']}/modify", json={"Replace": {"PatientID": "P2"}, "Force": True}
    )
    assert response.status_code == 200, response.text
    out = dcmread(io.BytesIO(response.content))
    assert out.PatientID == "P2"
    # Modifying the PatientID works at the patient level: every UID is new.
    assert out.StudyInstanceUID != ds.StudyInstanceUID
    assert out.SeriesInstanceUID != ds.SeriesInstanceUID


def test_transcode_single_instance(client: httpx.Client) -> None:
    stored = upload(client, to_bytes(make_dataset(patient_id="TS")))
    response = client.post(
        f"/instances/{stored['ID']}/modify",
        json={"Replace": {"StudyDescription": "ts"}, "Transcode": ImplicitVRLittleEndian},
    )
    assert response.status_code == 200, response.text
    out = dcmread(io.BytesIO(response.content))
    assert out.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert out.StudyDescription == "ts"


def test_asynchronous_modification_is_a_job(client: httpx.Client) -> None:
    source = _study(client, series=1)
    response = client.post(
        f"/studies/{source['study']}/modify",
        json={
            "Replace": {"StudyDescription": "async"},
            "Asynchronous": True,
            "Priority": 3,
            "UserData": {"who": "test"},
        },
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["ID"]
    assert response.json()["Path"] == f"/jobs/{job_id}"
    job = _wait_job(client, job_id)
    assert job["Type"] == "ResourceModification"
    assert job["State"] == "Success", job
    assert job["Priority"] == 3 and job["UserData"] == {"who": "test"}
    content = job["Content"]
    assert content["Type"] == "Study" and content["InstancesCount"] == 2
    study = client.get(content["Path"]).json()
    assert study["MainDicomTags"]["StudyDescription"] == "async"


def _wait_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    import time

    for _ in range(400):
        job = client.get(f"/jobs/{job_id}").json()
        if job["State"] in ("Success", "Failure"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_bulk_modify(client: httpx.Client) -> None:
    first = _study(client, patient="B1", series=1, per=1)
    second = _study(client, patient="B2", series=1, per=2)
    response = client.post(
        "/tools/bulk-modify",
        json={
            "Resources": [first["instances"][0], second["series"][0]],
            "Replace": {"SeriesDescription": "bulk"},
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["InstancesCount"] == 3 and "ID" not in answer
    types = [r["Type"] for r in answer["Resources"]]
    assert types.count("Instance") == 3 and types.count("Patient") == 2
    plural = {
        "Instance": "instances",
        "Series": "series",
        "Study": "studies",
        "Patient": "patients",
    }
    for resource in answer["Resources"]:
        assert resource["Path"] == f"/{plural[resource['Type']]}/{resource['ID']}"
    # Instance level by default: new instances in the same series.
    for resource in answer["Resources"]:
        if resource["Type"] == "Instance":
            tags = _tags(client, resource["ID"])
            assert tags["SeriesDescription"] == "bulk"
    series = [r["ID"] for r in answer["Resources"] if r["Type"] == "Series"]
    assert sorted(series) == sorted(first["series"] + second["series"])

    study_level = client.post(
        "/tools/bulk-modify",
        json={"Resources": [first["study"]], "Level": "Study", "Replace": {"StudyID": "S1"}},
    )
    assert study_level.status_code == 200, study_level.text
    studies = [r["ID"] for r in study_level.json()["Resources"] if r["Type"] == "Study"]
    assert studies and first["study"] not in studies

    missing = client.post("/tools/bulk-modify", json={"Replace": {"StudyID": "S1"}})
    assert_orthanc_error(missing, 400, "Bad file format", 15)
    unknown = client.post("/tools/bulk-modify", json={"Resources": ["nope"]})
    assert_orthanc_error(unknown, 404, "Unknown resource", 17)


def test_failure_takes_back_what_was_created_and_permissive_goes_on(
    client: httpx.Client,
) -> None:
    study_uid, series_uid = generate_uid(), generate_uid()
    plain = make_dataset(patient_id="FAIL", study_uid=study_uid, series_uid=series_uid)
    nested = _referencing(
        make_dataset(patient_id="FAIL", study_uid=study_uid, series_uid=series_uid), "1.2.3"
    )
    upload(client, to_bytes(plain))
    stored = upload(client, to_bytes(nested))
    study = stored["ParentStudy"]
    # A number is a bad value only where the nested item exists: one instance fails.
    body: dict[str, Any] = {"Replace": {"ReferencedImageSequence[0].PatientName": 3}}
    before = statistics(client)
    response = client.post(f"/studies/{study}/modify", json=body)
    assert_orthanc_error(response, 400, "Bad type for a parameter", 5)
    assert statistics(client) == before  # nothing half-modified is left
    jobs = client.get("/jobs?expand").json()
    assert [j["State"] for j in jobs] == ["Failure"]
    assert jobs[0]["ErrorCode"] == 5

    response = client.post(f"/studies/{study}/modify", json={**body, "Permissive": True})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["FailedInstancesCount"] == 1 and answer["InstancesCount"] == 2
    assert len(_instances(client, "studies", answer["ID"])) == 1


def test_keep_labels(client: httpx.Client) -> None:
    source = _study(client, series=1, per=1)
    assert client.put(f"/studies/{source['study']}/labels/research").status_code == 200
    kept = client.post(
        f"/studies/{source['study']}/modify",
        json={"Replace": {"StudyDescription": "l"}, "KeepLabels": True},
    ).json()
    assert client.get(f"/studies/{kept['ID']}/labels").json() == ["research"]
    dropped = client.post(
        f"/studies/{source['study']}/modify", json={"Replace": {"StudyDescription": "m"}}
    ).json()
    assert client.get(f"/studies/{dropped['ID']}/labels").json() == []


def test_storage_stays_consistent(server: Any) -> None:
    client = server.client
    source = _study(client, series=2, per=2)
    response = client.post(
        f"/studies/{source['study']}/modify", json={"Replace": {"StudyDescription": "x"}}
    )
    assert response.status_code == 200
    assert_consistent(server)


# ---- the reference Orthanc -------------------------------------------------------------
_COMPARED_BODIES: list[dict[str, Any]] = [
    {"Replace": {"PatientName": "Z^Z", "InstitutionName": "Here"}, "Remove": ["StudyDescription"]},
    {
        "Replace": {"ReferencedImageSequence[*].ReferencedSOPInstanceUID": "9.9"},
        "Remove": ["ReferencedImageSequence[1].ReferencedSOPInstanceUID"],
    },
    {"RemovePrivateTags": True},
    {"Replace": {"DerivationCodeSequence[0].CodeMeaning": "added"}},
]


def _comparable(data: bytes) -> dict[str, Any]:
    """Tags and values, without the UIDs each server generates on its own."""
    ds = dcmread(io.BytesIO(data))

    def walk(dataset: Dataset) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for elem in dataset:
            if elem.tag in (0x00080018, 0x00020003):
                continue
            if elem.VR == "SQ":
                out[str(elem.tag)] = [walk(item) for item in elem.value]
            elif elem.VR not in ("OB", "OW", "UN"):
                out[str(elem.tag)] = str(elem.value)
        return out

    return walk(ds)


@pytest.mark.parametrize("body", _COMPARED_BODIES)
def test_single_instance_matches_the_oracle(
    client: httpx.Client, oracle: OracleUploads | None, body: dict[str, Any]
) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    ds = _referencing(make_dataset(patient_id="ORACLEMOD", InstitutionName="There"), "1.2.3")
    ds.DerivationCodeSequence = [Dataset()]
    ds.DerivationCodeSequence[0].CodeValue = "1"
    ds.add_new(0x00190010, "LO", "ACME")
    ds.add_new(0x00191010, "LO", "secret")
    data = to_bytes(ds)
    ours = upload(client, data)["ID"]
    theirs = oracle.upload(data)["ID"]
    mine = client.post(f"/instances/{ours}/modify", json=body)
    reference = oracle.client.post(f"/instances/{theirs}/modify", json=body)
    assert mine.status_code == reference.status_code == 200
    assert _comparable(mine.content) == _comparable(reference.content)


def test_transcode_in_a_job(client: httpx.Client) -> None:
    source = _study(client, series=1, per=2)
    response = client.post(
        f"/studies/{source['study']}/modify",
        json={"Replace": {"StudyDescription": "ts"}, "Transcode": ImplicitVRLittleEndian},
    )
    assert response.status_code == 200, response.text
    for instance in _instances(client, "studies", response.json()["ID"]):
        syntax = client.get(f"/instances/{instance}/metadata/TransferSyntax").text
        assert syntax == ImplicitVRLittleEndian


def test_synchronous_answer_without_job_history(make_server: Any) -> None:
    """With ``JobsHistorySize`` 0 a job is forgotten as it ends: the synchronous answer
    still comes, errors included."""
    client = make_server(JobsHistorySize=0).client
    source = _study(client, series=1, per=2)
    response = client.post(
        f"/studies/{source['study']}/modify", json={"Replace": {"StudyDescription": "h0"}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["InstancesCount"] == 2
    assert client.get("/jobs").json() == []
    failed = client.post(
        f"/studies/{source['study']}/modify",
        json={"Replace": {"DerivationCodeSequence": "not a list"}},
    )
    assert_orthanc_error(failed, 400, "Bad type for a parameter", 5)


def _named_tags_file() -> bytes:
    ds = make_dataset(patient_id="MOD-NAMES")
    ds.PatientComments = "old"
    _referencing(ds, "1.2.3.0")
    return to_bytes(ds)


def _changes(original: bytes, modified: bytes) -> dict[str, str]:
    """What changed among the elements the names below reach."""

    def reached(ds: Dataset) -> dict[str, str]:
        found = {"comments": str(ds.get("PatientComments", "<removed>"))}
        for i, item in enumerate(ds.get("ReferencedImageSequence", [])):
            found[f"ref{i}"] = str(item.get("ReferencedSOPInstanceUID", "<removed>"))
        return found

    before, after = reached(dcmread(io.BytesIO(original))), reached(dcmread(io.BytesIO(modified)))
    return {k: v for k, v in after.items() if v != before.get(k)} | {
        k: "<removed>" for k in before if k not in after
    }


#: (name, what Replace / Remove do with it): names as Orthanc reads them.
LENIENT_NAMES = [
    ("10,4000", {"comments"}),
    ("0x0010,0x4000", {"comments"}),
    ("0010, 4000", {"comments"}),
    ("0010,4000X", {"comments"}),
    ("(0010,4000)", {"comments"}),
    (" PatientComments ", {"comments"}),
    ("8,1140[0].8,1155", {"ref0"}),
    ("0x8,0x1140[1].0008,1155X", {"ref1"}),
]


def test_lenient_tag_names_in_keys_and_content(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    """``Replace`` / ``Remove`` / ``Keep`` keys and ``/content/...`` segments read tag
    names as Orthanc does (``10,4000`` is PatientComments); a ``/`` in a key is no path
    (``0008,1140/0/0008,1155`` names the sequence)."""
    data = _named_tags_file()
    targets = [(client, upload(client, data)["ID"])]
    if oracle is not None:
        targets.append((oracle.client, oracle.upload(data)["ID"]))
    for name, reached in LENIENT_NAMES:
        for server, instance in targets:
            replaced = server.post(
                f"/instances/{instance}/modify", json={"Replace": {name: "NEW"}, "Force": True}
            )
            assert replaced.status_code == 200, (name, replaced.text)
            assert _changes(data, replaced.content) == dict.fromkeys(reached, "NEW"), name
            removed = server.post(
                f"/instances/{instance}/modify", json={"Remove": [name], "Force": True}
            )
            assert _changes(data, removed.content) == dict.fromkeys(reached, "<removed>"), name
    for server, instance in targets:
        removed = server.post(
            f"/instances/{instance}/modify",
            json={"Remove": ["0008,1140/0/0008,1155"], "Force": True},
        )
        assert _changes(data, removed.content) == {"ref0": "<removed>", "ref1": "<removed>"}
        kept = server.post(
            f"/instances/{instance}/anonymize", json={"Keep": ["10,4000"], "Force": True}
        )
        assert kept.status_code == 200 and "comments" not in _changes(data, kept.content)
        for name in ("10,4000", "0010,4000X", "8,1140/1/0x8,0x1155"):
            answer = server.get(f"/instances/{instance}/content/{name}")
            assert answer.status_code == 200, (name, answer.text)
            assert answer.content.rstrip(b" \0") in (b"old", b"1.2.3.4.5"), name
        for name in ("patientcomments", "0010 ,4000", "(0010,4000)"):
            answer = server.get(f"/instances/{instance}/content/{name}")
            assert answer.json()["OrthancStatus"] == 27  # 400 here, 500 in Orthanc
