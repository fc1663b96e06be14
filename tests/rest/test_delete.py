"""DELETE at each level: what remains, what is gone, files and counters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from archive_checks import assert_consistent, file_path, statistics, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("delete"))
    yield server
    server.stop()


@dataclass
class Patient:
    id: str
    studies: list[str]
    series: list[str]  # study 1: series 1 and 2; study 2: series 3
    instances: list[str]  # series 1: two, series 2: one, series 3: one
    uuids: dict[str, str]


def make_patient(server: RunningServer) -> Patient:
    pid = "D" + uuid.uuid4().hex[:8]
    st1, st2 = (f"1.2.826.0.1.3680043.{n}.{uuid.uuid4().int}" for n in (10, 11))
    specs = [(st1, st1 + ".1"), (st1, st1 + ".1"), (st1, st1 + ".2"), (st2, st2 + ".1")]
    p = Patient("", [], [], [], {})
    for study, series in specs:
        answer = upload(
            server.client, make_dicom(patient_id=pid, study_uid=study, series_uid=series)
        )
        p.id = answer["ParentPatient"]
        for attr, key in (("studies", "ParentStudy"), ("series", "ParentSeries")):
            if answer[key] not in getattr(p, attr):
                getattr(p, attr).append(answer[key])
        p.instances.append(answer["ID"])
        p.uuids[answer["ID"]] = server.client.get(answer["Path"]).json()["FileUuid"]
    return p


def exists(server: RunningServer, level: str, public_id: str) -> bool:
    status = server.client.get(f"/{level}/{public_id}").status_code
    assert status in (200, 404)
    return status == 200


def delete(server: RunningServer, path: str) -> object:
    response = server.client.delete(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"RemainingAncestor"}
    return body["RemainingAncestor"]


def test_delete_instance_keeps_a_non_empty_series(shared: RunningServer) -> None:
    p = make_patient(shared)
    before = statistics(shared.client)
    remaining = delete(shared, f"/instances/{p.instances[0]}")
    assert remaining == {"ID": p.series[0], "Path": f"/series/{p.series[0]}", "Type": "Series"}
    assert not exists(shared, "instances", p.instances[0])
    assert not file_path(shared, p.uuids[p.instances[0]]).exists()
    assert shared.client.get(f"/series/{p.series[0]}").json()["Instances"] == [p.instances[1]]
    after = statistics(shared.client)
    assert after["CountInstances"] == before["CountInstances"] - 1
    assert after["CountSeries"] == before["CountSeries"]
    assert_consistent(shared)


def test_deleting_the_last_instance_removes_the_empty_series(shared: RunningServer) -> None:
    p = make_patient(shared)
    before = statistics(shared.client)
    remaining = delete(shared, f"/instances/{p.instances[2]}")
    assert remaining == {"ID": p.studies[0], "Path": f"/studies/{p.studies[0]}", "Type": "Study"}
    assert not exists(shared, "series", p.series[1])
    assert shared.client.get(f"/studies/{p.studies[0]}").json()["Series"] == [p.series[0]]
    after = statistics(shared.client)
    assert after["CountInstances"] == before["CountInstances"] - 1
    assert after["CountSeries"] == before["CountSeries"] - 1
    assert after["CountStudies"] == before["CountStudies"]
    assert_consistent(shared)


def test_delete_series_and_study(shared: RunningServer) -> None:
    p = make_patient(shared)
    before = statistics(shared.client)
    remaining = delete(shared, f"/series/{p.series[0]}")
    assert remaining == {"ID": p.studies[0], "Path": f"/studies/{p.studies[0]}", "Type": "Study"}
    for instance in p.instances[:2]:
        assert not exists(shared, "instances", instance)
        assert not file_path(shared, p.uuids[instance]).exists()

    remaining = delete(shared, f"/studies/{p.studies[0]}")
    assert remaining == {"ID": p.id, "Path": f"/patients/{p.id}", "Type": "Patient"}
    assert not exists(shared, "series", p.series[1])
    assert shared.client.get(f"/patients/{p.id}").json()["Studies"] == [p.studies[1]]

    after = statistics(shared.client)
    assert after["CountInstances"] == before["CountInstances"] - 3
    assert after["CountSeries"] == before["CountSeries"] - 2
    assert after["CountStudies"] == before["CountStudies"] - 1
    assert after["CountPatients"] == before["CountPatients"]
    assert_consistent(shared)


def test_deleting_the_only_study_removes_the_patient(shared: RunningServer) -> None:
    p = make_patient(shared)
    delete(shared, f"/studies/{p.studies[0]}")
    assert delete(shared, f"/studies/{p.studies[1]}") is None
    assert not exists(shared, "patients", p.id)
    assert_consistent(shared)


def test_delete_patient(shared: RunningServer) -> None:
    p = make_patient(shared)
    before = statistics(shared.client)
    assert delete(shared, f"/patients/{p.id}") is None
    for level, ids in (
        ("patients", [p.id]),
        ("studies", p.studies),
        ("series", p.series),
        ("instances", p.instances),
    ):
        for public_id in ids:
            assert not exists(shared, level, public_id)
    for file_uuid in p.uuids.values():
        assert not file_path(shared, file_uuid).exists()
    after = statistics(shared.client)
    assert after["CountPatients"] == before["CountPatients"] - 1
    assert after["CountStudies"] == before["CountStudies"] - 2
    assert after["CountSeries"] == before["CountSeries"] - 3
    assert after["CountInstances"] == before["CountInstances"] - 4
    assert int(after["TotalDiskSize"]) < int(before["TotalDiskSize"])
    assert_consistent(shared)
    # deleting twice: the patient is unknown now
    assert shared.client.delete(f"/patients/{p.id}").status_code == 404


def test_deleted_resources_are_logged_and_older_changes_kept(shared: RunningServer) -> None:
    """dicomhub logs ``Deleted`` (Orthanc does not) and keeps the history of the resource."""
    p = make_patient(shared)
    last = shared.client.get("/changes", params={"last": ""}).json()["Last"]
    delete(shared, f"/patients/{p.id}")
    changes = shared.client.get("/changes", params={"since": str(last)}).json()["Changes"]
    assert [(c["ChangeType"], c["ResourceType"], c["ID"]) for c in changes] == [
        ("Deleted", "Patient", p.id)
    ]
    history = shared.client.get("/changes", params={"limit": "10000"}).json()["Changes"]
    assert ("NewPatient", p.id) in {(c["ChangeType"], c["ID"]) for c in history}


def test_reupload_after_delete(shared: RunningServer) -> None:
    data = make_dicom(patient_id="D" + uuid.uuid4().hex[:8])
    answer = upload(shared.client, data)
    delete(shared, answer["Path"])
    again = upload(shared.client, data)
    assert again["Status"] == "Success"
    assert shared.client.get(answer["Path"] + "/file").content == data
    assert_consistent(shared)
