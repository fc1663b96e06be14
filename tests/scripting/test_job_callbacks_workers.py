"""Job callbacks with several HTTP workers: every job, whichever worker took it.

Orthanc (one process) calls ``OnJobSubmitted`` for every submitted job and
``OnJobSuccess`` / ``OnJobFailure`` for every finished one, synchronous archive
downloads included (Orthanc records them as jobs). dicomhub's callbacks run in the
primary worker, which follows the job events that every worker writes to the index
(``core.change_feed``, ``core.jobs.engine``). Here asynchronous archives, synchronous
archive downloads and failing stores go over new connections from several threads,
until every worker has served some, and Lua and a Python hook must each see every
job's events exactly once, its submission before its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archive_checks import bytes_read, fresh_client, wait_until, worker_pids
from conftest import RunningServer
from dicom_factory import make_dicom

LUA = """
events = {}
function OnJobSubmitted(id) table.insert(events, 'submitted ' .. id) end
function OnJobSuccess(id) table.insert(events, 'success ' .. id) end
function OnJobFailure(id) table.insert(events, 'failure ' .. id) end
"""

HOOKS = """
OUT = {out!r}


def _record(kind, job_id):
    with open(OUT, "a") as handle:
        handle.write(kind + " " + job_id + "\\n")


def on_job_submitted(job_id):
    _record("submitted", job_id)


def on_job_success(job_id):
    _record("success", job_id)


def on_job_failure(job_id):
    _record("failure", job_id)
"""

WORKERS = 4


def _lua_events(server: RunningServer) -> list[str]:
    with fresh_client(server.url, 60) as client:
        answer = client.post(
            "/tools/execute-script", content="for _, e in ipairs(events) do print(e) end"
        )
        assert answer.status_code == 200, answer.text
        return answer.text.splitlines()


def _hook_events(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _check(events: list[str], outcomes: dict[str, str]) -> None:
    """Each job: one submission, then its one end; nothing else."""
    assert len(events) == 2 * len(outcomes), events
    for job_id, outcome in outcomes.items():
        submitted = events.index(f"submitted {job_id}")
        assert events.count(f"submitted {job_id}") == 1
        assert events.count(f"{outcome} {job_id}") == 1
        assert submitted < events.index(f"{outcome} {job_id}")


def test_every_workers_jobs_reach_the_job_callbacks_once_in_order(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    out = tmp_path / "jobs.out"
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS.format(out=str(out)))
    lua = tmp_path / "jobs.lua"
    lua.write_text(LUA)
    server = make_server(
        HttpWorkers=WORKERS,
        LuaScripts=[str(lua)],
        PythonHooks=[str(hooks)],
        ExecuteLuaEnabled=True,
        JobsHistorySize=1000,  # every job stays in /jobs, to learn the downloads' IDs
        DicomModalities={"nowhere": ["NOWHERE", "127.0.0.1", 9]},  # nothing listens
    )
    uploaded = server.client.post("/instances", content=make_dicom(patient_id="HELPER-JOBS"))
    patient = uploaded.json()["ParentPatient"]
    workers = worker_pids(server)
    before = {pid: bytes_read(pid) for pid in workers}

    def request(number: int) -> tuple[str, str | None]:
        """Answers the kind of request and the ID of the job it submitted, if any."""
        with fresh_client(server.url, 60) as client:
            if number % 4 == 3:
                answer = client.post(
                    "/modalities/nowhere/store", json={"Resources": [patient], "Asynchronous": True}
                )
                assert answer.status_code == 200, answer.text
                return "failure", answer.json()["ID"]
            if number % 2:
                download = client.get(f"/patients/{patient}/archive")
                assert download.status_code == 200 and download.content[:2] == b"PK"
                return "download", None
            answer = client.post(f"/patients/{patient}/archive", json={"Asynchronous": True})
            assert answer.status_code == 200, answer.text
            return "success", answer.json()["ID"]

    submitted: dict[str, str] = {}
    downloads = 0
    with ThreadPoolExecutor(4) as pool:
        for _ in range(10):  # bounded: one or two rounds reach every worker in practice
            for kind, job_id in pool.map(request, range(8)):
                if job_id is None:
                    downloads += 1
                else:
                    submitted[job_id] = kind
            if all(bytes_read(pid) - before[pid] > 1000 for pid in workers):
                break
        else:
            raise AssertionError("the requests did not reach every worker")

    def finished() -> dict[str, str] | None:
        jobs = server.client.get("/jobs", params={"expand": ""}).json()
        if len(jobs) != len(submitted) + downloads:
            return None
        if any(job["State"] not in ("Success", "Failure") for job in jobs):
            return None
        return {job["ID"]: job["State"].lower() for job in jobs}

    outcomes = wait_until(finished, 120)
    for job_id, kind in submitted.items():
        assert outcomes[job_id] == kind
    assert list(outcomes.values()).count("success") == downloads + list(submitted.values()).count(
        "success"
    )

    wait_until(lambda: len(_lua_events(server)) >= 2 * len(outcomes), 60)
    wait_until(lambda: len(_hook_events(out)) >= 2 * len(outcomes), 60)
    time.sleep(0.5)  # nothing more may come
    lua_events, hook_events = _lua_events(server), _hook_events(out)
    _check(lua_events, outcomes)
    assert hook_events == lua_events  # the same queue, in the same order
    # job events are not changes, as in Orthanc
    changes = server.client.get("/changes", params={"limit": 1000}).json()["Changes"]
    assert all(not c["ChangeType"].startswith("Job") for c in changes)


def test_a_job_callback_defined_later_gets_the_next_jobs(
    make_server: Callable[..., RunningServer],
) -> None:
    """With no job callback defined the job events are not followed; one defined by
    ``execute-script`` then gets the jobs of every worker from then on."""
    server = make_server(HttpWorkers=WORKERS, ExecuteLuaEnabled=True, JobsHistorySize=1000)
    uploaded = server.client.post("/instances", content=make_dicom(patient_id="HELPER-JOBS2"))
    patient = uploaded.json()["ParentPatient"]

    def download(_: int) -> None:
        with fresh_client(server.url, 60) as client:
            answer = client.get(f"/patients/{patient}/archive")
            assert answer.status_code == 200 and answer.content[:2] == b"PK"

    def job_ids() -> set[str]:
        return set(server.client.get("/jobs").json())

    download(0)
    first = wait_until(job_ids, 30)
    defined = server.client.post("/tools/execute-script", content=LUA)
    assert defined.status_code == 200, defined.text
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(download, range(8)))
    every = wait_until(lambda: len(found := job_ids()) == 9 and found)
    later = {job_id: "success" for job_id in every - first}

    def seen() -> list[str] | None:
        events = _lua_events(server)
        return events if {f"success {job_id}" for job_id in later} <= set(events) else None

    wait_until(seen, 30)
    time.sleep(0.5)  # nothing more may come
    events = _lua_events(server)
    _check([e for e in events if e.split()[1] in later], later)
    # The download before the definition: both its events or none (it may fall in
    # the last poll interval before the definition, as changes do).
    (before,) = first
    assert [e for e in events if e.split()[1] == before] in (
        [],
        [f"submitted {before}", f"success {before}"],
    )
