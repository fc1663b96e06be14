"""Jobs: the ``/jobs`` routes on a real server, and the engine's lifecycle in-process.

The shapes follow what Orthanc 1.10.1 answered for asynchronous archives: the
``{"ID", "Path"}`` answer, the job description fields, empty 404/400 answers for
unknown jobs or refused transitions, and ``MediaArchiveSize`` evicting old outputs.
Cancel and pause in the middle of a job use a job kind made for the test, so they
happen at a known step rather than by racing a fast archive.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from dicomhub.core.archive import Archive
from dicomhub.core.jobs import engine
from dicomhub.core.jobs.engine import JobContext, JobRunner
from dicomhub.core.settings import Settings
from tests.archive_checks import upload
from tests.conftest import start_server
from tests.dicom_factory import make_dataset, to_bytes

DEADLINE = 20.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Poll ``check`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def finished(client: httpx.Client, job_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = client.get(f"/jobs/{job_id}").json()
        return job if job["State"] in ("Success", "Failure") else None

    return wait_for(check, f"job {job_id}")


def study_of(client: httpx.Client, count: int = 3) -> str:
    patient = f"JOB{uuid.uuid4().hex[:8]}"
    study = None
    series = generate_uid()
    study_uid = generate_uid()
    for _ in range(count):
        dataset = make_dataset(patient_id=patient, study_uid=study_uid, series_uid=series)
        answer = upload(client, to_bytes(dataset))
        study = answer["ParentStudy"]
    assert study is not None
    return study


# ---- REST, on a real server ------------------------------------------------
def test_asynchronous_archive_is_a_job_with_a_zip_output(client: httpx.Client) -> None:
    study = study_of(client)
    body = {"Asynchronous": True, "Priority": 3, "UserData": {"who": "test"}}
    created = client.post(f"/studies/{study}/archive", json=body)
    assert created.status_code == 200, created.text
    job_id = created.json()["ID"]
    assert created.json() == {"ID": job_id, "Path": f"/jobs/{job_id}"}

    job = finished(client, job_id)
    assert job["State"] == "Success"
    assert job["Type"] == "Archive"
    assert job["Priority"] == 3
    assert job["Progress"] == 100
    assert job["ErrorCode"] == 0 and job["ErrorDescription"] == "Success"
    assert job["ErrorDetails"] == ""
    assert job["UserData"] == {"who": "test"}
    assert job["CreationTime"] <= job["CompletionTime"] <= job["Timestamp"]
    assert isinstance(job["EffectiveRuntime"], float)
    content = job["Content"]
    assert content["InstancesCount"] == 3 and content["Description"] == "REST API"
    assert isinstance(content["ArchiveSize"], str) and content["ArchiveSizeMB"] == 0

    response = client.get(f"/jobs/{job_id}/archive")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'filename="archive.zip"'
    assert int(content["ArchiveSize"]) == len(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert len([n for n in archive.namelist() if not n.endswith("/")]) == 3

    assert job_id in client.get("/jobs").json()
    expanded = client.get("/jobs", params={"expand": ""}).json()
    assert [j for j in expanded if j["ID"] == job_id][0]["State"] == "Success"

    missing = client.get(f"/jobs/{job_id}/nope")
    assert missing.status_code == 404
    assert missing.json()["OrthancStatus"] == 7
    assert missing.json()["Details"] == "Job has no such output: nope"


def test_media_job_and_synchronous_false(client: httpx.Client) -> None:
    study = study_of(client, 2)
    job_id = client.post(f"/studies/{study}/media", json={"Synchronous": False}).json()["ID"]
    job = finished(client, job_id)
    assert (job["Type"], job["State"]) == ("Media", "Success")
    data = client.get(f"/jobs/{job_id}/archive").content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "DICOMDIR" in archive.namelist()
    tools = client.post("/tools/create-archive", json={"Resources": [study], "Asynchronous": True})
    assert finished(client, tools.json()["ID"])["Content"]["InstancesCount"] == 2


def test_transitions_answer_like_orthanc(client: httpx.Client) -> None:
    study = study_of(client, 1)
    job_id = client.post(f"/studies/{study}/archive", json={"Asynchronous": True}).json()["ID"]
    finished(client, job_id)
    # On a finished job, cancel and pause are accepted and change nothing...
    for action in ("cancel", "pause"):
        response = client.post(f"/jobs/{job_id}/{action}")
        assert (response.status_code, response.json()) == (200, {})
    assert client.get(f"/jobs/{job_id}").json()["State"] == "Success"
    # ...while resume and resubmit are refused with an empty 400.
    for action in ("resume", "resubmit"):
        response = client.post(f"/jobs/{job_id}/{action}")
        assert (response.status_code, response.content) == (400, b"")
    assert (client.get("/jobs/nope").status_code, client.get("/jobs/nope").content) == (404, b"")
    assert client.post("/jobs/nope/cancel").status_code == 400

    assert client.delete(f"/jobs/{job_id}").json() == {}
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert job_id not in client.get("/jobs").json()
    assert client.delete(f"/jobs/{job_id}").status_code == 404


def test_bad_asynchronous_requests(client: httpx.Client) -> None:
    study = study_of(client, 1)
    response = client.post(
        f"/studies/{study}/archive", json={"Asynchronous": True, "Priority": "x"}
    )
    assert response.status_code == 400
    assert response.json()["Details"] == "Integer value expected in field: Priority"
    response = client.post(
        "/tools/create-archive", json={"Resources": ["nope"], "Asynchronous": True}
    )
    assert response.status_code == 404 and response.json()["OrthancStatus"] == 17
    assert client.get("/jobs").json() == []


def test_media_archive_size_keeps_the_latest_outputs(make_server: Any) -> None:
    client = make_server(MediaArchiveSize=1).client
    study = study_of(client, 1)
    first = client.post(f"/studies/{study}/archive", json={"Asynchronous": True}).json()["ID"]
    finished(client, first)
    second = client.post(f"/studies/{study}/archive", json={"Asynchronous": True}).json()["ID"]
    finished(client, second)
    assert client.get(f"/jobs/{second}/archive").status_code == 200
    assert client.get(f"/jobs/{first}/archive").status_code == 404
    assert client.get(f"/jobs/{first}").json()["State"] == "Success"


def test_jobs_history_size_prunes_finished_jobs(make_server: Any) -> None:
    client = make_server(JobsHistorySize=2, ConcurrentJobs=1).client
    study = study_of(client, 1)
    ids = []
    for _ in range(3):
        job_id = client.post(f"/studies/{study}/archive", json={"Asynchronous": True}).json()["ID"]
        finished(client, job_id)
        ids.append(job_id)
    assert sorted(client.get("/jobs").json()) == sorted(ids[1:])


def test_jobs_submitted_to_any_worker_run_in_the_primary(make_server: Any) -> None:
    client = make_server(HttpWorkers=2).client
    study = study_of(client, 1)
    ids = [
        client.post(f"/studies/{study}/archive", json={"Asynchronous": True}).json()["ID"]
        for _ in range(6)
    ]
    for job_id in ids:
        assert finished(client, job_id)["State"] == "Success"
    assert sorted(client.get("/jobs").json()) == sorted(ids)


def test_jobs_survive_a_restart_unless_no_jobs(tmp_path: Path) -> None:
    folder = tmp_path / "restart"
    server = start_server(folder)
    try:
        study = study_of(server.client, 1)
        answer = server.client.post(f"/studies/{study}/archive", json={"Asynchronous": True})
        job_id = answer.json()["ID"]
        finished(server.client, job_id)
        port = server.port
    finally:
        server.stop()
    server = start_server(folder, HttpPort=port)
    try:
        assert server.client.get(f"/jobs/{job_id}").json()["State"] == "Success"
        assert server.client.get(f"/jobs/{job_id}/archive").status_code == 200
    finally:
        server.stop()
    server = start_server(folder, HttpPort=port, SaveJobs=False)
    try:
        assert wait_for(lambda: server.client.get("/jobs").json() == [], "forgotten jobs")
    finally:
        server.stop()


# ---- the engine, in-process ---------------------------------------------------
@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    settings = Settings.from_config(
        {"StorageDirectory": str(tmp_path / "storage"), "IndexDirectory": str(tmp_path / "index")}
    )
    archive = Archive(settings)
    yield archive
    archive.close()


class Steps:
    """A job kind that counts steps until released, checking in at each step."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.runs = 0

    def __call__(self, context: JobContext) -> None:
        self.runs += 1
        self.started.set()
        step = 0
        while not self.release.is_set():
            step += 1
            context.content = {"Steps": step}
            context.checkpoint(0.5, force=True)
            time.sleep(0.01)
        context.content = {"Done": True}


def state(archive: Archive, job_id: str) -> str:
    job = engine.get_job(archive, job_id)
    assert job is not None
    return job["state"]


def reach(archive: Archive, job_id: str, wanted: str) -> None:
    wait_for(lambda: state(archive, job_id) == wanted, f"{job_id} to be {wanted}")


def make_runner(archive: Archive, kind: Steps, **config: Any) -> JobRunner:
    runner = JobRunner(
        archive, {"ConcurrentJobs": 1, **config}, {"Steps": kind}, poll_interval=0.05
    )
    runner.start()
    return runner


def test_pending_jobs_pause_resume_cancel_resubmit(archive: Archive) -> None:
    job_id = engine.submit(archive, "Steps", {})
    assert state(archive, job_id) == "Pending"
    assert engine.pause(archive, job_id)
    assert state(archive, job_id) == "Paused"
    assert engine.resume(archive, job_id)
    assert state(archive, job_id) == "Pending"
    assert engine.cancel(archive, job_id)
    job = engine.get_job(archive, job_id)
    assert job is not None and (job["state"], job["error_code"]) == ("Failure", 37)
    assert engine.resubmit(archive, job_id)
    assert state(archive, job_id) == "Pending"
    assert not engine.cancel(archive, "nope")


def test_running_job_is_paused_and_cancelled_between_steps(archive: Archive) -> None:
    kind = Steps()
    runner = make_runner(archive, kind)
    try:
        job_id = engine.submit(archive, "Steps", {})
        reach(archive, job_id, "Running")
        engine.pause(archive, job_id)
        reach(archive, job_id, "Paused")
        engine.resume(archive, job_id)
        wait_for(lambda: kind.runs == 2, "the job to start again")
        engine.cancel(archive, job_id)
        reach(archive, job_id, "Failure")
        job = engine.get_job(archive, job_id)
        assert job is not None and job["error_code"] == 37 and job["completion_time"]
        engine.resubmit(archive, job_id)
        kind.release.set()
        reach(archive, job_id, "Success")
        job = engine.get_job(archive, job_id)
        assert job is not None and job["progress"] == 100 and '"Done"' in job["content"]
    finally:
        kind.release.set()
        runner.stop()


def test_higher_priority_runs_first(archive: Archive) -> None:
    order: list[str] = []

    def record(context: JobContext) -> None:
        order.append(context.parameters["name"])

    engine.submit(archive, "Record", {"name": "low"}, priority=-1)
    engine.submit(archive, "Record", {"name": "normal"})
    engine.submit(archive, "Record", {"name": "high"}, priority=5)
    runner = JobRunner(archive, {"ConcurrentJobs": 1}, {"Record": record}, poll_interval=0.05)
    runner.start()
    try:
        wait_for(lambda: len(order) == 3, "three jobs")
    finally:
        runner.stop()
    assert order == ["high", "normal", "low"]


def test_failures_are_recorded(archive: Archive) -> None:
    def broken(context: JobContext) -> None:
        from dicomhub.core.errors import UnknownResource

        raise UnknownResource("gone")

    runner = JobRunner(archive, {}, {"Broken": broken}, poll_interval=0.05)
    runner.start()
    try:
        job_id = engine.submit(archive, "Broken", {})
        unknown = engine.submit(archive, "NoSuchKind", {})
        reach(archive, job_id, "Failure")
        reach(archive, unknown, "Failure")
    finally:
        runner.stop()
    job = engine.get_job(archive, job_id)
    assert job is not None and (job["error_code"], job["error_details"]) == (17, "gone")


def test_restart_resumes_interrupted_jobs_or_forgets_them(archive: Archive) -> None:
    job_id = engine.submit(archive, "Steps", {})
    # A crash left the job Running: the next runner starts it again.
    archive.write(lambda tx: tx.session.claim_job(job_id, "Pending", "Running"))
    kind = Steps()
    kind.release.set()
    runner = make_runner(archive, kind)
    try:
        reach(archive, job_id, "Success")
    finally:
        runner.stop()
    assert kind.runs == 1
    runner = JobRunner(archive, {}, {}, no_jobs=True)
    runner.start()
    runner.stop()
    assert engine.list_jobs(archive) == []


def test_concurrent_jobs_zero_means_one_per_core() -> None:
    import os

    assert engine.concurrent_jobs({}) == 2
    assert engine.concurrent_jobs({"ConcurrentJobs": 0}) == (os.cpu_count() or 1)
    assert engine.concurrent_jobs({"ConcurrentJobs": 3}) == 3


# ---- asynchronous C-STORE ------------------------------------------------------
@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[Any]:
    from tests.net import storescp_fixture

    yield from storescp_fixture(tmp_path)


def test_asynchronous_store_to_a_modality(make_server: Any, storescp: Any) -> None:
    from tests.conftest import unused_port
    from tests.net import LOOPBACK

    modalities = {
        "scp": [storescp.aet, LOOPBACK, storescp.port],
        "closed": ["CLOSED", LOOPBACK, unused_port()],
    }
    client = make_server(DicomModalities=modalities, DicomBindAddress=LOOPBACK).client
    study = study_of(client, 3)
    body = {"Resources": [study], "Asynchronous": True, "UserData": "u"}
    answer = client.post("/modalities/scp/store", json=body)
    assert answer.status_code == 200, answer.text
    job = finished(client, answer.json()["ID"])
    assert (job["Type"], job["State"], job["UserData"]) == ("DicomModalityStore", "Success", "u")
    assert job["Content"] == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 3,
        "LocalAet": "ORTHANC",
        "ParentResources": [study],
        "RemoteAet": storescp.aet,
    }
    assert len(storescp.wait_files(3)) == 3

    failed = client.post("/modalities/closed/store", json={**body, "Priority": 1}).json()["ID"]
    job = finished(client, failed)
    assert (job["State"], job["ErrorCode"]) == ("Failure", 9)
    assert job["ErrorDescription"] == "Error in the network protocol"
    assert client.post(f"/jobs/{failed}/resubmit").json() == {}
    assert finished(client, failed)["State"] == "Failure"
    bad = client.post("/modalities/scp/store", json={**body, "Priority": True})
    assert bad.status_code == 400
    assert (
        client.post(
            "/modalities/scp/store", json={"Resources": ["nope"], "Asynchronous": True}
        ).status_code
        == 400
    )


def test_asynchronous_store_to_a_peer(make_server: Any) -> None:
    target = make_server()
    client = make_server().client
    study = study_of(client, 2)
    client.put("/peers/target", json=[target.url])
    body = {"Resources": [study], "Asynchronous": True, "Compress": True}
    job_id = client.post("/peers/target/store", json=body).json()["ID"]
    job = finished(client, job_id)
    assert (job["Type"], job["State"]) == ("OrthancPeerStore", "Success")
    content = job["Content"]
    assert content["InstancesCount"] == 2 and content["Compress"] is True
    assert content["Peer"] == [target.url + "/"] and content["ParentResources"] == [study]
    assert int(content["Size"]) > 0 and content["FailedInstancesCount"] == 0
    assert len(target.client.get("/instances").json()) == 2
