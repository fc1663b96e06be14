"""``/studies/{id}/split`` and ``/studies/{id}/merge``: new studies and series, the
tags replaced or copied, the sources, jobs, bad bodies; compared with the reference
Orthanc on the same files and bodies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.archive_checks import (
    OracleUploads,
    assert_consistent,
    assert_orthanc_error,
    file_path,
    oracle_uploads,
    staged_files,
    statistics,
    upload,
)
from tests.conftest import RunningServer
from tests.dicom_factory import make_dataset, to_bytes

#: Tags that are new on every run (UIDs, dates of reception): not compared.
VOLATILE = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber"}


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _files(
    patient: str = "SPLIT01", series: int = 2, per: int = 2, **extra: Any
) -> list[list[bytes]]:
    """The files of one study: ``series`` lists of ``per`` files."""
    study_uid = generate_uid()
    files = []
    for number in range(series):
        series_uid = generate_uid()
        found = []
        for _ in range(per):
            ds = make_dataset(
                patient_id=patient, study_uid=study_uid, series_uid=series_uid, **extra
            )
            ds.SeriesNumber = str(number + 1)
            ds.ReferringPhysicianName = "Ref^Doctor"
            ds.add_new(0x00190010, "LO", "ACME")
            ds.add_new(0x00191010, "LO", "private value")
            found.append(to_bytes(ds))
        files.append(found)
    return files


def _store(send: Any, files: list[list[bytes]]) -> dict[str, Any]:
    """Upload with ``send`` (a client's or the oracle's upload); the study's IDs."""
    answers = [[send(data) for data in series] for series in files]
    return {
        "study": answers[0][0]["ParentStudy"],
        "patient": answers[0][0]["ParentPatient"],
        "series": [series[0]["ParentSeries"] for series in answers],
        "instances": [[a["ID"] for a in series] for series in answers],
    }


def _study(client: httpx.Client, **kwargs: Any) -> dict[str, Any]:
    return _store(lambda data: upload(client, data), _files(**kwargs))


def _get(client: httpx.Client, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def _tags(client: httpx.Client, study: str) -> list[dict[str, Any]]:
    """The simplified tags of every instance of ``study``."""
    instances = _get(client, f"/studies/{study}/instances")
    return [_get(client, f"/instances/{i['ID']}/simplified-tags") for i in instances]


def _wait_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    for _ in range(400):
        job = _get(client, f"/jobs/{job_id}")
        if job["State"] in ("Success", "Failure"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


# ---- split -----------------------------------------------------------------------------
def test_split_moves_series_into_a_new_study(client: httpx.Client, server: Any) -> None:
    source = _study(client)
    moved = source["series"][0]
    old_tags = _tags(client, source["study"])
    response = client.post(
        f"/studies/{source['study']}/split",
        json={
            "Series": [moved],
            "Replace": {"StudyDescription": "Split part", "0010,0010": "New^Name"},
            "Remove": ["AccessionNumber", "ReferringPhysicianName"],
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {
        "Description",
        "FailedInstancesCount",
        "InstancesCount",
        "TargetStudy",
        "TargetStudyUID",
    }
    assert answer["InstancesCount"] == 2 and answer["FailedInstancesCount"] == 0
    target = _get(client, f"/studies/{answer['TargetStudy']}")
    assert target["MainDicomTags"]["StudyInstanceUID"] == answer["TargetStudyUID"]
    assert target["MainDicomTags"]["StudyDescription"] == "Split part"
    assert "AccessionNumber" not in target["MainDicomTags"]
    assert target["ParentPatient"] == source["patient"]  # same PatientID, same patient
    assert len(target["Series"]) == 1
    new_tags = _tags(client, answer["TargetStudy"])
    assert len(new_tags) == 2
    old_sops = {t["SOPInstanceUID"] for t in old_tags}
    old_series_uids = {t["SeriesInstanceUID"] for t in old_tags}
    for tags in new_tags:
        assert tags["StudyInstanceUID"] == answer["TargetStudyUID"]
        assert tags["SOPInstanceUID"] not in old_sops
        assert tags["SeriesInstanceUID"] not in old_series_uids
        assert tags["PatientName"] == "New^Name"
        assert "AccessionNumber" not in tags and "ReferringPhysicianName" not in tags
        assert tags["SeriesNumber"] == "1" and tags["Modality"] == "CT"
    one = _get(client, f"/studies/{answer['TargetStudy']}/instances")[0]["ID"]
    private = client.get(f"/instances/{one}/content/0019-1010")
    assert private.text.strip("\0 ") == "private value"
    # Orthanc links nothing: no ModifiedFrom on the new resources.
    metadata = _get(client, f"/instances/{one}/metadata")
    assert "ModifiedFrom" not in metadata
    assert client.get(f"/instances/{one}/metadata/Origin").text == "RestApi"
    # KeepSource defaults to false: the moved series left the source study.
    remaining = _get(client, f"/studies/{source['study']}")
    assert remaining["Series"] == [source["series"][1]]
    assert client.get(f"/series/{moved}").status_code == 404
    assert statistics(client)["CountInstances"] == 4
    assert_consistent(server)


def test_split_instances_keeping_the_source(client: httpx.Client) -> None:
    source = _study(client, series=1, per=3)
    picked = source["instances"][0][:2]
    response = client.post(
        f"/studies/{source['study']}/split",
        json={"Instances": picked, "KeepSource": True},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    target = _get(client, f"/studies/{answer['TargetStudy']}")
    assert len(target["Series"]) == 1  # both come from one series: one new series
    assert len(_get(client, f"/studies/{answer['TargetStudy']}/instances")) == 2
    assert len(_get(client, f"/studies/{source['study']}/instances")) == 3
    tags = _tags(client, answer["TargetStudy"])
    assert {t["StudyDescription"] for t in tags} == {"Test study"}  # nothing replaced


def test_split_moves_each_instance_once(client: httpx.Client) -> None:
    source = _study(client)
    series = source["series"][0]
    response = client.post(
        f"/studies/{source['study']}/split",
        json={
            "Series": [series, series],
            "Instances": [source["instances"][0][0]],
            "KeepSource": True,
            "Synchronous": True,
            "Asynchronous": True,  # "Synchronous" wins, as in Orthanc
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["InstancesCount"] == 2
    assert len(_get(client, f"/studies/{response.json()['TargetStudy']}/instances")) == 2


def test_split_every_series_empties_the_source_study(client: httpx.Client) -> None:
    source = _study(client)
    response = client.post(f"/studies/{source['study']}/split", json={"Series": source["series"]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["InstancesCount"] == 4
    assert client.get(f"/studies/{source['study']}").status_code == 404
    target = _get(client, f"/studies/{answer['TargetStudy']}")
    assert len(target["Series"]) == 2
    assert _get(client, "/studies") == [answer["TargetStudy"]]


def test_split_asynchronous_job(client: httpx.Client) -> None:
    source = _study(client)
    response = client.post(
        f"/studies/{source['study']}/split",
        json={
            "Series": [source["series"][1]],
            "Asynchronous": True,
            "Priority": 4,
            "UserData": {"who": "split"},
            "KeepSource": True,
        },
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["ID"]
    assert response.json() == {"ID": job_id, "Path": f"/jobs/{job_id}"}
    job = _wait_job(client, job_id)
    assert job["State"] == "Success", job
    assert job["Type"] == "SplitStudy"
    assert job["Priority"] == 4 and job["UserData"] == {"who": "split"}
    content = job["Content"]
    assert content["InstancesCount"] == 2
    target = _get(client, f"/studies/{content['TargetStudy']}")
    assert target["MainDicomTags"]["StudyInstanceUID"] == content["TargetStudyUID"]
    assert len(_get(client, f"/studies/{source['study']}/instances")) == 4


def test_split_keep_labels(client: httpx.Client) -> None:
    source = _study(client)
    for path in (f"/studies/{source['study']}", f"/series/{source['series'][0]}"):
        response = client.put(f"{path}/labels/research")
        assert response.status_code == 200, response.text
    response = client.post(
        f"/studies/{source['study']}/split",
        json={"Series": [source["series"][0]], "KeepLabels": True, "KeepSource": True},
    )
    assert response.status_code == 200, response.text
    target = response.json()["TargetStudy"]
    assert _get(client, f"/studies/{target}/labels") == ["research"]
    new_series = _get(client, f"/studies/{target}")["Series"][0]
    assert _get(client, f"/series/{new_series}/labels") == ["research"]
    response = client.post(
        f"/studies/{source['study']}/split",
        json={"Series": [source["series"][1]], "KeepSource": True},
    )
    assert _get(client, f"/studies/{response.json()['TargetStudy']}/labels") == []


@pytest.fixture
def damaged_disk_server(make_server: Callable[..., RunningServer]) -> RunningServer:
    """A server without storage cache, so that a file damaged on the disk is read as
    it is there (the cache would still hold the bytes it was given)."""
    return make_server(MaximumStorageCacheSize=0)


def _corrupt(client: httpx.Client, server: Any, instance: str) -> None:
    """Make the stored file of ``instance`` unreadable as DICOM (a damaged disk)."""
    info = _get(client, f"/instances/{instance}/attachments/dicom/info")
    file_path(server, info["Uuid"]).write_bytes(b"not a DICOM file any more")


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_failing_split_leaves_nothing_behind(
    damaged_disk_server: RunningServer, asynchronous: bool
) -> None:
    """An instance that cannot be read fails the job: the instances it had stored
    already are taken back, and the sources stay (KeepSource is false)."""
    server, client = damaged_disk_server, damaged_disk_server.client
    source = _study(client, series=1, per=6)
    _corrupt(client, server, source["instances"][0][3])
    response = client.post(
        f"/studies/{source['study']}/split",
        json={"Series": source["series"], "Asynchronous": asynchronous},
    )
    if asynchronous:
        job = _wait_job(client, response.json()["ID"])
        assert job["State"] == "Failure", job
        assert job["ErrorCode"] != 0 and job["ErrorDescription"] != "Success"
    else:
        assert response.status_code >= 400, response.text
    assert _get(client, "/studies") == [source["study"]]
    assert len(_get(client, f"/studies/{source['study']}/instances")) == 6
    assert staged_files(server) == []


def test_a_permissive_split_skips_what_it_cannot_read(
    damaged_disk_server: RunningServer,
) -> None:
    server, client = damaged_disk_server, damaged_disk_server.client
    source = _study(client, series=1, per=3)
    _corrupt(client, server, source["instances"][0][1])
    response = client.post(
        f"/studies/{source['study']}/split",
        json={"Series": source["series"], "Permissive": True, "KeepSource": True},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["InstancesCount"] == 3 and answer["FailedInstancesCount"] == 1
    assert len(_get(client, f"/studies/{answer['TargetStudy']}/instances")) == 2


def test_split_replacing_a_sequence_by_a_string(client: httpx.Client, server: Any) -> None:
    source = _study(client)
    before = statistics(client)
    response = client.post(
        f"/studies/{source['study']}/split",
        json={"Series": [source["series"][0]], "Replace": {"ReferencedPatientSequence": "x"}},
    )
    error = assert_orthanc_error(response, 400, "Bad file format", 15)
    assert error["Details"] == (
        'While creating a DICOM instance, tag (0008,1120) has out-of-range value: "x"'
    )
    assert statistics(client) == before
    assert_consistent(server)


def test_split_resources_of_the_wrong_level(client: httpx.Client) -> None:
    source = _study(client)
    url = f"/studies/{source['study']}/split"
    for body in ({"Series": [source["instances"][0][0]]}, {"Instances": [source["series"][0]]}):
        assert_orthanc_error(client.post(url, json=body), 400, "Bad type for a parameter", 5)


SPLIT_ERRORS = [
    ({}, 400, "Bad request", 'Both the "Series" and the "Instances" fields are missing'),
    (
        {"Series": []},
        400,
        "Bad request",
        'Both the "Series" and the "Instances" fields are missing',
    ),
    ({"Series": "x"}, 400, "Bad file format", "List of strings expected in field: Series"),
    ({"Instances": [1]}, 400, "Bad file format", "List of strings expected in field: Instances"),
    ({"Series": ["nope"]}, 404, "Unknown resource", None),
    (
        {"Series": ["{series}"], "Replace": {"Modality": "MR"}},
        400,
        "Parameter out of range",
        "Cannot modify the following tag while splitting a study "
        "(not in the patient/study modules): Modality (0008,0060)",
    ),
    (
        {"Series": ["{series}"], "Remove": ["StudyInstanceUID"]},
        400,
        "Parameter out of range",
        "Cannot modify the following tag while splitting a study "
        "(not in the patient/study modules): StudyInstanceUID (0020,000d)",
    ),
    ({"Series": ["{series}"], "Replace": {"StudyDescription": 3}}, 400, "Bad file format", None),
    ({"Series": ["{series}"], "Replace": ["StudyDescription"]}, 400, "Bad file format", None),
    ({"Series": ["{series}"], "Remove": "StudyDescription"}, 400, "Bad file format", None),
    ({"Series": ["{series}"], "Remove": ["NoSuchTagName"]}, None, "Unknown DICOM tag", None),
    (
        {"Series": ["{series}"], "KeepSource": "yes"},
        400,
        "Bad file format",
        "Boolean value expected in field: KeepSource",
    ),
    (
        {"Series": ["{series}"], "Priority": "high"},
        400,
        "Bad file format",
        "Integer value expected in field: Priority",
    ),
    (
        {"Series": ["{series}"], "Synchronous": "no"},
        400,
        "Bad file format",
        "Boolean value expected in field: Synchronous",
    ),
    (
        {"Series": ["{series}"], "Permissive": 1},
        400,
        "Bad file format",
        "Boolean value expected in field: Permissive",
    ),
]


def _fill(body: Any, values: dict[str, str]) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, values) for v in body]
    if isinstance(body, str) and body.startswith("{") and body.endswith("}"):
        return values[body[1:-1]]
    return body


@pytest.mark.parametrize(("body", "status", "message", "details"), SPLIT_ERRORS)
def test_split_bad_bodies_change_nothing(
    client: httpx.Client,
    server: Any,
    body: dict[str, Any],
    status: int | None,
    message: str,
    details: str | None,
) -> None:
    source = _study(client)
    other = _study(client, patient="SPLIT02", series=1, per=1)
    body = _fill(body, {"series": source["series"][0], "other": other["series"][0]})
    before = statistics(client)
    jobs = _get(client, "/jobs")
    response = client.post(f"/studies/{source['study']}/split", json=body)
    error = assert_orthanc_error(response, status or response.status_code, message, None)
    if details is not None:
        assert error["Details"] == details
    assert statistics(client) == before
    assert _get(client, "/jobs") == jobs
    assert_consistent(server)


def test_split_resources_of_another_study(client: httpx.Client) -> None:
    source = _study(client)
    other = _study(client, patient="SPLIT02", series=1, per=1)
    url = f"/studies/{source['study']}/split"
    series, instance = other["series"][0], other["instances"][0][0]
    error = assert_orthanc_error(
        client.post(url, json={"Series": [series]}), 404, "Unknown resource", 17
    )
    assert error["Details"] == f"This series does not belong to the study to be split: {series}"
    error = assert_orthanc_error(
        client.post(url, json={"Instances": [instance]}), 404, "Unknown resource", 17
    )
    assert error["Details"] == f"This instance does not belong to the study to be split: {instance}"
    error = assert_orthanc_error(
        client.post("/studies/nope/split", json={"Series": [series]}), 404, "Unknown resource", 17
    )
    assert error["Details"] == "Cannot split unknown study nope"
    response = client.post(url, content=b"not json")
    assert_orthanc_error(response, 400, "Bad file format", 15, "POST", url)


# ---- merge -----------------------------------------------------------------------------
def test_merge_series_of_another_patient(client: httpx.Client, server: Any) -> None:
    target = _study(client, series=1, per=2)
    source = _study(
        client,
        patient="OTHER01",
        series=2,
        per=1,
        PatientName="Other^Patient",
        StudyDescription="Other study",
        AccessionNumber="OTHERACC",
    )
    target_tags = _tags(client, target["study"])[0]
    response = client.post(
        f"/studies/{target['study']}/merge", json={"Resources": [source["series"][0]]}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 1,
        "TargetStudy": target["study"],
    }
    study = _get(client, f"/studies/{target['study']}")
    assert len(study["Series"]) == 2
    for tags in _tags(client, target["study"]):
        for name in ("PatientID", "PatientName", "StudyInstanceUID", "AccessionNumber"):
            assert tags[name] == target_tags[name]
        assert tags["StudyDescription"] == "Test study"
    # The moved series left its study; the study and patient stay with the other one.
    assert client.get(f"/series/{source['series'][0]}").status_code == 404
    assert _get(client, f"/studies/{source['study']}")["Series"] == [source["series"][1]]
    assert statistics(client)["CountInstances"] == 4
    assert_consistent(server)


def test_merge_whole_study_removes_the_source_patient(client: httpx.Client) -> None:
    target = _study(client, series=1, per=1)
    source = _study(client, patient="OTHER02", series=2, per=2)
    response = client.post(
        f"/studies/{target['study']}/merge", json={"Resources": [source["study"]]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["InstancesCount"] == 4
    assert client.get(f"/studies/{source['study']}").status_code == 404
    assert client.get(f"/patients/{source['patient']}").status_code == 404
    assert len(_get(client, f"/studies/{target['study']}")["Series"]) == 3
    assert _get(client, "/patients") == [target["patient"]]


def test_merge_removes_study_tags_the_target_lacks(client: httpx.Client) -> None:
    target_ds = make_dataset(patient_id="MERGE03")
    del target_ds.AccessionNumber
    del target_ds.StudyDescription
    target = upload(client, to_bytes(target_ds))
    source = _study(client, patient="MERGE04", series=1, per=2)
    response = client.post(
        f"/studies/{target['ParentStudy']}/merge",
        json={"Resources": source["instances"][0], "KeepSource": True, "Asynchronous": True},
    )
    assert response.status_code == 200, response.text
    job = _wait_job(client, response.json()["ID"])
    assert job["State"] == "Success" and job["Type"] == "MergeStudy", job
    assert job["Content"]["TargetStudy"] == target["ParentStudy"]
    tags = _tags(client, target["ParentStudy"])
    assert len(tags) == 3
    for found in tags:
        assert "AccessionNumber" not in found and "StudyDescription" not in found
        assert "ReferringPhysicianName" not in found  # the target has none either
    # both instances came from one series: they make one new series
    assert len(_get(client, f"/studies/{target['ParentStudy']}")["Series"]) == 2
    assert len(_get(client, f"/studies/{source['study']}/instances")) == 2  # KeepSource


def test_merge_nothing(client: httpx.Client) -> None:
    target = _study(client, series=1, per=1)
    response = client.post(f"/studies/{target['study']}/merge", json={"Resources": []})
    assert response.status_code == 200, response.text
    assert response.json()["InstancesCount"] == 0


def test_merge_bad_resources_change_nothing(client: httpx.Client, server: Any) -> None:
    target = _study(client, series=1, per=2)
    other = _study(client, patient="OTHER05", series=1, per=1)
    url = f"/studies/{target['study']}/merge"
    own_series, own_instance = target["series"][0], target["instances"][0][0]
    cases = [
        ({}, 400, "Bad file format", "List of strings expected in field: Resources"),
        (
            {"Resources": "x"},
            400,
            "Bad file format",
            "List of strings expected in field: Resources",
        ),
        (
            {"Resources": [target["study"]]},
            404,
            "Unknown resource",
            f"Cannot merge a study into the same study: {target['study']}",
        ),
        (
            {"Resources": [other["series"][0], own_series]},
            404,
            "Unknown resource",
            f"Cannot merge series {own_series} into its parent study {target['study']}",
        ),
        (
            {"Resources": [own_instance]},
            404,
            "Unknown resource",
            f"Cannot merge instance {own_instance} into its parent study {target['study']}",
        ),
        (
            {"Resources": [other["patient"]]},
            404,
            "Unknown resource",
            "This resource is neither a study, nor a series, nor an instance: "
            f"{other['patient']} is a Patient",
        ),
        ({"Resources": ["nope"]}, 404, "Unknown resource", "Cannot find this resource: nope"),
        (
            {"Resources": [other["study"]], "KeepSource": 0},
            400,
            "Bad file format",
            "Boolean value expected in field: KeepSource",
        ),
    ]
    before = statistics(client)
    for body, status, message, details in cases:
        error = assert_orthanc_error(client.post(url, json=body), status, message, None)
        assert error["Details"] == details, body
    error = assert_orthanc_error(
        client.post("/studies/nope/merge", json={"Resources": []}), 404, "Unknown resource", 17
    )
    assert error["Details"] == "Cannot merge into an unknown study: nope"
    error = assert_orthanc_error(
        client.post(f"/studies/{own_series}/merge", json={"Resources": []}),
        404,
        "Unknown resource",
        17,
    )
    assert statistics(client) == before
    assert _get(client, "/jobs") == []
    assert_consistent(server)


# ---- side by side with the reference Orthanc ------------------------------------------
def _shape(client: httpx.Client, study: str) -> list[tuple[int, list[dict[str, Any]]]]:
    """A study as (instances per series, tags without the new UIDs), for comparing."""
    found = []
    for series in _get(client, f"/studies/{study}/series"):
        instances = _get(client, f"/series/{series['ID']}/instances")
        tags = [_get(client, f"/instances/{i['ID']}/simplified-tags") for i in instances]
        stripped = [{k: v for k, v in t.items() if k not in VOLATILE} for t in tags]
        found.append((len(instances), sorted(stripped, key=repr)))
    return sorted(found, key=repr)


def _oracle_study(oracle: OracleUploads, files: list[list[bytes]]) -> dict[str, Any]:
    return _store(oracle.upload, files)


def _forget_oracle_results(oracle: OracleUploads, study: str) -> None:
    for instance in oracle.client.get(f"/studies/{study}/instances").json():
        oracle.added.append(instance["ID"])


def test_split_matches_the_oracle(client: httpx.Client, oracle: OracleUploads | None) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    files = _files(patient="SPLITORACLE")
    ours, theirs = _store(lambda d: upload(client, d), files), _oracle_study(oracle, files)
    body = {
        "Replace": {"StudyDescription": "Part 2", "PatientSex": "F", "StudyID": "S2"},
        "Remove": ["AccessionNumber"],
    }
    mine = client.post(
        f"/studies/{ours['study']}/split", json={**body, "Series": [ours["series"][1]]}
    )
    reference = oracle.client.post(
        f"/studies/{theirs['study']}/split", json={**body, "Series": [theirs["series"][1]]}
    )
    assert reference.status_code == 200, reference.text
    _forget_oracle_results(oracle, reference.json()["TargetStudy"])
    assert mine.status_code == 200, mine.text
    assert set(mine.json()) == set(reference.json())
    assert mine.json()["InstancesCount"] == reference.json()["InstancesCount"]
    assert _shape(client, mine.json()["TargetStudy"]) == _shape(
        oracle.client, reference.json()["TargetStudy"]
    )
    assert _shape(client, ours["study"]) == _shape(oracle.client, theirs["study"])


def test_merge_matches_the_oracle(client: httpx.Client, oracle: OracleUploads | None) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    target_files = _files(patient="MERGEORACLE1", series=1, per=2)
    source_files = _files(
        patient="MERGEORACLE2",
        series=2,
        per=1,
        PatientName="Source^Patient",
        AccessionNumber="SRCACC",
        StudyDescription="Source study",
        PatientBirthDate="20010203",
    )
    answers = {}
    for name, http, send in (
        ("ours", client, lambda d: upload(client, d)),
        ("theirs", oracle.client, oracle.upload),
    ):
        target, source = _store(send, target_files), _store(send, source_files)
        response = http.post(
            f"/studies/{target['study']}/merge",
            json={"Resources": [source["series"][0], source["instances"][1][0]]},
        )
        assert response.status_code == 200, response.text
        if name == "theirs":
            _forget_oracle_results(oracle, target["study"])
        answers[name] = (
            response.json(),
            _shape(http, target["study"]),
            http.get(f"/studies/{source['study']}").status_code,
        )
    ours, theirs = answers["ours"], answers["theirs"]
    assert set(ours[0]) == set(theirs[0]) and ours[0]["InstancesCount"] == 2
    assert ours[1] == theirs[1]
    assert ours[2] == theirs[2] == 404  # every instance of the source study moved


def test_bad_bodies_match_the_oracle(client: httpx.Client, oracle: OracleUploads | None) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    files = _files(patient="BADORACLE")
    ours, theirs = _store(lambda d: upload(client, d), files), _oracle_study(oracle, files)
    for body, status, _, _ in SPLIT_ERRORS:
        if status is None:  # Orthanc 1.10.1 answers 500 for an unknown tag name
            continue
        mine = client.post(
            f"/studies/{ours['study']}/split", json=_fill(body, {"series": ours["series"][0]})
        )
        reference = oracle.client.post(
            f"/studies/{theirs['study']}/split",
            json=_fill(body, {"series": theirs["series"][0]}),
        )
        assert mine.status_code == reference.status_code, body
        assert mine.json()["Message"] == reference.json()["Message"], body
        assert mine.json().get("Details") == reference.json().get("Details"), body
    for key in ("none", "self", "unknown"):
        mine = client.post(f"/studies/{ours['study']}/merge", json=_merge_body(key, ours))
        reference = oracle.client.post(
            f"/studies/{theirs['study']}/merge", json=_merge_body(key, theirs)
        )
        assert mine.status_code == reference.status_code, key
        mine_details = mine.json().get("Details", "").replace(ours["study"], "ID")
        assert mine_details == reference.json().get("Details", "").replace(theirs["study"], "ID")


def _merge_body(key: str, study: dict[str, Any]) -> dict[str, Any]:
    return {
        "none": {},
        "self": {"Resources": [study["study"]]},
        "unknown": {"Resources": ["nope"]},
    }[key]
