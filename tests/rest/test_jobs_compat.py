"""Jobs as Orthanc 1.10.1 shows them (sweep ``diff-jobs``): the ``Content`` of a job
from its submission on, the finished jobs that synchronous stores and archives leave
in ``/jobs``, the store job's request fields, error 37's text, and how the store
routes read their bodies.

Each test runs a real server on a loopback port; where the reference Orthanc answers
(``tests.archive_checks.oracle_client``), the same requests go to it and the answers
are compared, leaving aside what differs by design (IDs, times, AETs, sizes).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from dicomhub.core.errors import CanceledJob
from tests.archive_checks import (
    OracleUploads,
    assert_orthanc_error,
    oracle_uploads,
    upload,
    wait_until,
)
from tests.conftest import RunningServer, unused_port
from tests.dicom_factory import make_dataset, to_bytes

LOOPBACK = "127.0.0.1"


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


class Hanging:
    """A DICOM peer that accepts connections and never answers: a job sending to it
    stays Running until its ``Timeout``, so the jobs behind it stay Pending."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.held.append(connection)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for connection in self.held:
            connection.close()
        self.listener.close()


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    peer = Hanging()
    yield peer
    peer.stop()


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[Any]:
    from tests.net import storescp_fixture

    yield from storescp_fixture(tmp_path)


def study_files(count: int = 2) -> list[bytes]:
    patient = f"JOBSFIX{uuid.uuid4().hex[:6]}"  # short: AccessionNumber is ACC + it
    study, series = generate_uid(), generate_uid()
    return [
        to_bytes(
            make_dataset(
                patient_id=patient, study_uid=study, series_uid=series, AccessionNumber="JOBS"
            )
        )
        for _ in range(count)
    ]


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def new_jobs(client: httpx.Client, before: set[str]) -> list[dict[str, Any]]:
    return [job(client, j) for j in client.get("/jobs").json() if j not in before]


def one_new_job(
    client: httpx.Client, kind: str, call: Callable[[], httpx.Response]
) -> tuple[Any, Any]:
    """The answer of ``call`` and the one job of type ``kind`` it left in ``/jobs``
    (the reference Orthanc is shared: others may submit jobs of other types)."""
    before = set(client.get("/jobs").json())
    answer = call()
    found = [j for j in new_jobs(client, before) if j["Type"] == kind]
    assert len(found) == 1, found
    return answer, found[0]


def async_job(client: httpx.Client, path: str, body: dict[str, Any]) -> str:
    answer = client.post(path, json={**body, "Asynchronous": True})
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


# ---- 1. Content from submission; error 37 ------------------------------------------
def test_jobs_show_their_content_from_submission_and_keep_it_when_cancelled(
    make_server: Callable[..., RunningServer], hanging: Hanging
) -> None:
    peer_url = f"http://{LOOPBACK}:{unused_port()}/"
    server = make_server(
        ConcurrentJobs=1,
        DicomModalities={
            "hang": ["HANG", LOOPBACK, hanging.port],
            "closed": ["CLOSED", LOOPBACK, unused_port()],
        },
        OrthancPeers={"down": [peer_url]},
    )
    client = server.client
    files = study_files()
    answers = [upload(client, data) for data in files]
    study = answers[0]["ParentStudy"]
    blocker = async_job(client, "/modalities/hang/store", {"Resources": [study], "Timeout": 4})
    wait_until(lambda: job(client, blocker)["State"] == "Running")

    archive_content = {
        "ArchiveSize": "0",
        "ArchiveSizeMB": 0,
        "Description": "REST API",
        "InstancesCount": 2,
        "UncompressedSize": str(sum(len(data) for data in files)),
        "UncompressedSizeMB": 0,
    }
    store = {
        "Resources": [study],
        "StorageCommitment": True,
        "MoveOriginatorAet": "MOVER",
        "MoveOriginatorID": 7,
    }
    submitted = {
        "Archive": async_job(client, f"/studies/{study}/archive", {}),
        "Media": async_job(client, f"/studies/{study}/media", {}),
        "DicomModalityStore": async_job(client, "/modalities/closed/store", store),
        "OrthancPeerStore": async_job(client, "/peers/down/store", {"Resources": [study]}),
        "ResourceModification": async_job(
            client, "/tools/bulk-modify", {"Resources": [study], "Replace": {"StudyID": "S1"}}
        ),
    }
    pending = {kind: job(client, job_id) for kind, job_id in submitted.items()}
    assert {j["State"] for j in pending.values()} == {"Pending"}
    assert pending["Archive"]["Content"] == archive_content
    assert pending["Media"]["Content"] == archive_content
    stored = pending["DicomModalityStore"]["Content"]
    uid = stored.pop("StorageCommitmentTransactionUID")
    assert uid.startswith("2.25.")
    assert stored == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 2,
        "LocalAet": "ORTHANC",
        "MoveOriginatorAET": "MOVER",
        "MoveOriginatorID": 7,
        "ParentResources": [study],
        "RemoteAet": "CLOSED",
    }
    assert pending["OrthancPeerStore"]["Content"] == {
        "Compress": False,
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 2,
        "ParentResources": [study],
        "Peer": [peer_url],
        "Size": "0",
        "SizeMB": 0,
    }
    assert pending["ResourceModification"]["Content"] == {  # a bulk job lists its Resources
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 2,
        "IsAnonymization": False,
        "Resources": [],
    }

    for kind, job_id in submitted.items():
        assert client.post(f"/jobs/{job_id}/cancel").json() == {}
        cancelled = job(client, job_id)
        assert (cancelled["State"], cancelled["ErrorCode"]) == ("Failure", 37)
        assert cancelled["ErrorDescription"] == "This job was canceled"
        assert cancelled["Content"] == pending[kind]["Content"] | (
            {"StorageCommitmentTransactionUID": uid} if kind == "DicomModalityStore" else {}
        )
    client.post(f"/jobs/{blocker}/cancel")


def test_error_37_reads_as_orthancs() -> None:
    """Orthanc lists its error texts with ``--errors``: compare when it is installed."""
    assert CanceledJob.name == "This job was canceled"
    binary = shutil.which("Orthanc")
    if binary is None:
        pytest.skip("no Orthanc binary to compare with")
    listing = subprocess.run(
        [binary, "--errors"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    line = next(line for line in listing.splitlines() if line.split()[:1] == ["37"])
    assert line.split(None, 1)[1].strip() == CanceledJob.name


# ---- 2. synchronous calls leave a finished job ---------------------------------------
JOB_CALLBACKS = """
jobs = {}
function OnJobSubmitted(id) table.insert(jobs, 'submitted ' .. id) end
function OnJobSuccess(id) table.insert(jobs, 'success ' .. id) end
function OnJobFailure(id) table.insert(jobs, 'failure ' .. id) end
"""


def comparable(found: dict[str, Any]) -> dict[str, Any]:
    """What must match Orthanc's job: IDs, times, sizes of our ZIPs and the text of
    network errors differ by design."""
    content = dict(found["Content"])
    for key in ("ArchiveSize", "ArchiveSizeMB", "Size", "SizeMB", "Peer"):
        content.pop(key, None)
    uid = content.pop("StorageCommitmentTransactionUID", None)
    return {
        "Type": found["Type"],
        "State": found["State"],
        "Priority": found["Priority"],
        "Progress": found["Progress"],
        "ErrorCode": found["ErrorCode"],
        "ErrorDescription": found["ErrorDescription"],
        "Finished": "CompletionTime" in found,
        "Content": content,
        "CommitmentUID": uid is not None and uid.startswith("2.25."),
    }


def synchronous_calls(client: httpx.Client, study: str, modality: str, peer: str) -> list[Any]:
    """Each synchronous call and the job it left: (status, comparable job)."""
    calls: list[tuple[str, Callable[[], httpx.Response]]] = [
        ("DicomModalityStore", lambda: client.post(
            f"/modalities/{modality}/store",
            json={
                "Resources": [study],
                "Priority": 4,
                "MoveOriginatorID": 5,
                "StorageCommitment": True,
            },
        )),
        ("Archive", lambda: client.get(f"/studies/{study}/archive")),
        ("Media", lambda: client.post(f"/studies/{study}/media", json={"Priority": 2})),
        ("Archive", lambda: client.post(
            "/tools/create-archive", json={"Resources": [study], "Priority": 1}
        )),
        ("OrthancPeerStore", lambda: client.post(
            f"/peers/{peer}/store", json={"Resources": [study], "Priority": 3}
        )),
    ]  # fmt: skip
    found = []
    for kind, call in calls:
        answer, recorded = one_new_job(client, kind, call)
        found.append((answer.status_code, comparable(recorded), answer, recorded))
    return found


def test_synchronous_calls_are_finished_jobs(
    make_server: Callable[..., RunningServer],
    storescp: Any,
    tmp_path: Path,
    oracle: OracleUploads | None,
) -> None:
    script = tmp_path / "jobs.lua"
    script.write_text(JOB_CALLBACKS)
    own_aet = oracle.client.get("/system").json()["DicomAet"] if oracle else "ORTHANC"
    closed_port = unused_port()
    server = make_server(
        DicomAet=own_aet,
        DicomModalities={
            "closed": ["CLOSED", LOOPBACK, closed_port],
            "scp": [storescp.aet, LOOPBACK, storescp.port],
        },
        OrthancPeers={"down": [f"http://{LOOPBACK}:{unused_port()}/"]},
        ExecuteLuaEnabled=True,
        LuaScripts=[str(script)],
        # One process: with several, the callbacks (in the first worker) do not see
        # the jobs that another worker submits or records (test_lua.py's note).
        HttpWorkers=1,
    )
    client = server.client
    files = study_files()
    study = [upload(client, data) for data in files][-1]["ParentStudy"]

    ours = synchronous_calls(client, study, "closed", "down")
    statuses = [status for status, *_ in ours]
    assert statuses == [500, 200, 200, 200, 500]
    store, archive, media, created, peer = (c for _, c, *_ in ours)
    assert store["Type"] == "DicomModalityStore" and store["State"] == "Failure"
    assert (store["ErrorCode"], store["Priority"], store["Progress"]) == (9, 4, 0)
    assert store["Content"]["MoveOriginatorAET"] == own_aet
    assert store["Content"]["MoveOriginatorID"] == 5 and store["CommitmentUID"]
    assert store["Finished"]
    for found, kind, priority in ((archive, "Archive", 0), (media, "Media", 2)):
        assert (found["Type"], found["State"], found["Progress"]) == (kind, "Success", 100)
        assert found["Priority"] == priority and found["Content"]["InstancesCount"] == 2
    assert (created["Type"], created["Priority"]) == ("Archive", 1)
    zipped = ours[1][3]["Content"]
    assert zipped["ArchiveSize"] == str(len(ours[1][2].content))
    assert (peer["Type"], peer["State"], peer["ErrorCode"]) == ("OrthancPeerStore", "Failure", 9)

    # a synchronous store that succeeds, and its answer is the job's content
    answer, sent = one_new_job(
        client,
        "DicomModalityStore",
        lambda: client.post("/modalities/scp/store", json={"Resources": [study]}),
    )
    assert answer.status_code == 200, answer.text
    assert (sent["State"], sent["Progress"]) == ("Success", 100)
    assert answer.json() == sent["Content"]
    assert len(storescp.wait_files(2)) == 2

    # the scripts' job callbacks see them all
    ids = [recorded["ID"] for *_, recorded in ours]
    events = {f"submitted {i}" for i in ids}
    events |= {f"failure {ids[0]}", f"failure {ids[4]}"}
    events |= {f"success {i}" for i in ids[1:4]}

    def lines() -> set[str] | None:
        code = "for _, j in ipairs(jobs) do print(j) end"
        found = set(client.post("/tools/execute-script", content=code).text.splitlines())
        return found if events <= found else None

    wait_until(lines, timeout=30)

    if oracle is None:
        return
    name = f"dicomhub-test-jobs-{server.port}"
    for data in files:
        oracle.upload(data)
    oracle.client.put(f"/modalities/{name}", json=["CLOSED", LOOPBACK, closed_port])
    oracle.client.put(f"/peers/{name}", json=[f"http://{LOOPBACK}:{unused_port()}/"])
    try:
        theirs = synchronous_calls(oracle.client, study, name, name)
    finally:
        oracle.client.delete(f"/modalities/{name}")
        oracle.client.delete(f"/peers/{name}")
    assert [t[:2] for t in ours] == [t[:2] for t in theirs]


# ---- 3. how the store routes read their requests ------------------------------------
def store_cases(instance: str) -> list[tuple[str, str, Any, int, int, str | None, bool]]:
    """(route kind, label, body, status, Orthanc status, Details, compare with Orthanc).
    The modality and the peer are unreachable: an accepted request fails with 9."""
    ok = [instance]
    return [
        ("modality", "priority", {"Resources": ok, "Priority": "x"}, 400, 15,
         "Integer value expected in field: Priority", True),
        # Orthanc 1.10.1 answers an internal error (500) there
        ("modality", "priority-range", {"Resources": ok, "Priority": 2**31, "Asynchronous": True},
         400, 15, "Integer value expected in field: Priority", False),
        ("modality", "commitment", {"Resources": ok, "StorageCommitment": "x"}, 400, 5, None, True),
        ("modality", "originator-id", {"Resources": ok, "MoveOriginatorID": "x"}, 400, 5, None,
         True),
        ("modality", "originator-range", {"Resources": ok, "MoveOriginatorID": 65536}, 400, 3,
         None, True),
        ("modality", "originator-aet", {"Resources": ok, "MoveOriginatorAet": 5}, 400, 5, None,
         True),
        ("modality", "local-aet", {"Resources": ok, "LocalAet": 5}, 400, 5, None, True),
        ("modality", "permissive", {"Resources": ok, "Permissive": "x"}, 400, 15,
         "Boolean value expected in field: Permissive", True),
        ("modality", "timeout", {"Resources": ok, "Timeout": "x"}, 400, 15,
         "Integer value expected in field: Timeout", True),
        ("modality", "timeout-sign", {"Resources": ok, "Timeout": -1}, 400, 15,
         "Unsigned integer value expected in field: Timeout", True),
        ("modality", "plain-id", f"  {instance}\n", 500, 9, None, True),
        ("modality", "plain-text", "nope", 400, 15, "Must provide a JSON value", True),
        ("modality", "number", 42, 400, 15,
         "Must provide a JSON object, or a JSON array of strings", True),
        ("peer", "plain-id", instance, 500, 9, None, True),
        ("peer", "priority", {"Resources": ok, "Priority": "x"}, 400, 15,
         "Integer value expected in field: Priority", True),
        ("peer", "compress", {"Resources": ok, "Compress": "x"}, 400, 15,
         "Boolean value expected in field: Compress", True),
    ]  # fmt: skip


def post_case(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    if isinstance(body, str):
        return client.post(path, content=body.encode())
    return client.post(path, json=body)


def test_store_requests_are_read_as_orthanc_reads_them(
    make_server: Callable[..., RunningServer], oracle: OracleUploads | None
) -> None:
    closed = unused_port()
    server = make_server(
        DicomModalities={"closed": ["CLOSED", LOOPBACK, closed]},
        OrthancPeers={"down": [f"http://{LOOPBACK}:{unused_port()}/"]},
    )
    client = server.client
    data = study_files(1)[0]
    instance = upload(client, data)["ID"]
    name = f"dicomhub-test-jobs-{server.port}"
    if oracle is not None:
        oracle.upload(data)
        oracle.client.put(f"/modalities/{name}", json=["CLOSED", LOOPBACK, closed])
        oracle.client.put(f"/peers/{name}", json=[f"http://{LOOPBACK}:{unused_port()}/"])
    try:
        for kind, label, body, status, code, details, compare in store_cases(instance):
            path = "/modalities/closed/store" if kind == "modality" else "/peers/down/store"
            answer = post_case(client, path, body)
            error = answer.json()
            assert (answer.status_code, error.get("OrthancStatus")) == (status, code), label
            if details is not None:
                assert error["Details"] == details, label
            elif code != 9:
                assert "Details" not in error, label
            if oracle is not None and compare:
                other = "modalities" if kind == "modality" else "peers"
                theirs = post_case(oracle.client, f"/{other}/{name}/store", body)
                expected = {k: v for k, v in error.items() if k not in ("Details", "Uri")}
                if code != 9:
                    expected["Details"] = error.get("Details")
                got = {k: v for k, v in theirs.json().items() if k != "Uri"}
                if code == 9:
                    got.pop("Details", None)
                else:
                    got.setdefault("Details", None)
                assert got == expected, label
    finally:
        if oracle is not None:
            oracle.client.delete(f"/modalities/{name}")
            oracle.client.delete(f"/peers/{name}")


def test_archive_requests_answer_as_orthanc(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    data = study_files(1)[0]
    series = upload(client, data)["ParentSeries"]
    ours = client.post(f"/series/{series}/archive", json={"Filename": 5})
    assert ours.status_code == 200
    assert ours.headers["content-disposition"] == f'filename="{series}.zip"'
    missing = client.get("/jobs/nope/archive")
    body = assert_orthanc_error(missing, 404, "Accessing an inexistent item", 7)
    assert body["Details"] == "Job has no such output: archive"
    if oracle is None:
        return
    oracle.upload(data)
    theirs = oracle.client.post(f"/series/{series}/archive", json={"Filename": 5})
    assert theirs.status_code == 200
    theirs = oracle.client.get("/jobs/nope/archive")
    assert theirs.status_code == 404 and theirs.json()["Details"] == body["Details"]
