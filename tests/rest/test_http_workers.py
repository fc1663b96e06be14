"""Several HTTP workers (``HttpWorkers`` > 1) answer as one server: the scripts'
callbacks see every worker's changes once, in the order of the changes log, and the
routes whose effect lives in a process act on the right one(s), whichever worker the
connection reaches.

Each upload or request below goes over a new connection, which the supervisor hands
to the worker with the fewest open; the uploads go on until each worker has read some
(checked in ``/proc``), so the tests do not depend on timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_checks import bytes_read, fresh_client, wait_until, worker_pids
from conftest import RunningServer, start_server
from dicom_factory import make_dicom

HOOKS = """
import json

OUT = {out!r}


def _record(*values):
    with open(OUT, "a") as handle:
        handle.write(json.dumps(values) + "\\n")


def on_stored_instance(instance_id, tags, metadata, origin):
    _record("stored", instance_id, origin["RequestOrigin"], origin.get("RemoteIp"))


def on_deleted_study(study_id):
    _record("deleted", study_id)


def on_updated_instance(instance_id):
    _record("updated", instance_id)
"""

LUA = """
answer = 42
stored = {}
order = {}
function OnStoredInstance(id, tags, metadata, origin)
  stored[id] = (stored[id] or 0) + 1
  table.insert(order, id)
end
function OnDeletedStudy(id)
  table.insert(order, "deleted " .. id)
end
"""


def _wait(predicate: Callable[[], Any], timeout: float = 30) -> Any:
    return wait_until(predicate, timeout)


def _upload_over_all_workers(server: RunningServer, minimum: int) -> list[str]:
    """Uploads over new connections from 4 threads until there are ``minimum``
    instances and every worker has read at least one upload; answers the IDs."""
    workers = worker_pids(server)
    before = {pid: bytes_read(pid) for pid in workers}
    size = len(make_dicom())

    def upload(_: int) -> str:
        with fresh_client(server.url) as client:
            answer = client.post("/instances", content=make_dicom(patient_id="WORKERS"))
            assert answer.status_code == 200
            return answer.json()["ID"]

    ids: list[str] = []
    with ThreadPoolExecutor(4) as pool:
        for _ in range(25):  # bounded: a few rounds are enough in practice
            ids += pool.map(upload, range(8))
            if len(ids) >= minimum and all(
                bytes_read(pid) - before[pid] >= size for pid in workers
            ):
                return ids
    raise AssertionError("the uploads did not reach every worker")


def _hook_lines(path: Path) -> list[list[Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _server(tmp_path: Path, make_server: Callable[..., RunningServer], **config: Any):
    out = tmp_path / "hooks.out"
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS.format(out=str(out)))
    lua = tmp_path / "callbacks.lua"
    lua.write_text(LUA)
    server = make_server(
        HttpWorkers=2,
        PythonHooks=[str(hooks)],
        LuaScripts=[str(lua)],
        ExecuteLuaEnabled=True,
        **config,
    )
    return server, out


def _execute(server: RunningServer, code: str) -> str:
    with fresh_client(server.url) as client:
        answer = client.post("/tools/execute-script", content=code)
        assert answer.status_code == 200, answer.text
        return answer.text


def test_callbacks_see_every_workers_changes_once_in_log_order(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    server, out = _server(tmp_path, make_server)
    ids = _upload_over_all_workers(server, 16)
    stored = _wait(lambda: [line for line in _hook_lines(out) if line[0] == "stored"])
    _wait(lambda: len([line for line in _hook_lines(out) if line[0] == "stored"]) >= len(ids))
    stored = [line for line in _hook_lines(out) if line[0] == "stored"]
    assert sorted(line[1] for line in stored) == sorted(ids)  # each instance exactly once
    assert {line[2] for line in stored} == {"RestApi"}  # the origin, from the metadata
    assert {line[3] for line in stored} == {"127.0.0.1"}
    log = server.client.get("/changes", params={"limit": 1000}).json()["Changes"]
    new = [c["ID"] for c in log if c["ChangeType"] == "NewInstance"]
    assert [line[1] for line in stored] == new  # in the order of the changes log
    # Lua saw them too, once each (read from the primary's state, from any worker)
    counts = json.loads(_execute(server, "print(DumpJson(stored))"))
    assert counts == {instance: 1 for instance in ids}

    # deletions and updates made by either worker reach the callbacks as well (each
    # instance is alone in its study: Orthanc logs the deletion of the study)
    gone = [server.client.get(f"/instances/{i}/study").json()["ID"] for i in ids[:6]]
    for instance in ids[:6]:
        with fresh_client(server.url) as client:
            assert client.delete(f"/instances/{instance}").status_code == 200
    for instance in ids[6:12]:
        with fresh_client(server.url) as client:
            assert client.put(f"/instances/{instance}/metadata/1024", content=b"x").is_success
    _wait(lambda: len([line for line in _hook_lines(out) if line[0] != "stored"]) >= 12)
    lines = _hook_lines(out)
    assert [line[1] for line in lines if line[0] == "deleted"] == gone
    assert [line[1] for line in lines if line[0] == "updated"] == ids[6:12]
    order = json.loads(_execute(server, "print(DumpJson(order))"))
    assert order[len(ids) :] == [f"deleted {study}" for study in gone]


def test_callbacks_go_on_after_the_changes_log_is_cleared(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    server, out = _server(tmp_path, make_server)
    first = _upload_over_all_workers(server, 4)
    _wait(lambda: len(_hook_lines(out)) >= len(first))
    assert server.client.delete("/changes").status_code == 200
    second = _upload_over_all_workers(server, 4)
    _wait(lambda: len(_hook_lines(out)) >= len(first) + len(second))
    time.sleep(0.5)  # nothing more may come (no replay after the clearing)
    assert sorted(line[1] for line in _hook_lines(out)) == sorted(first + second)


def test_a_restart_does_not_replay_older_changes(tmp_path: Path) -> None:
    out = tmp_path / "hooks.out"
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS.format(out=str(out)))
    folder = tmp_path / "server"
    server = start_server(folder, HttpWorkers=2, PythonHooks=[str(hooks)])
    try:
        before = _upload_over_all_workers(server, 4)
        _wait(lambda: len(_hook_lines(out)) >= len(before))
        port = server.port
    finally:
        server.stop()
    out.unlink()
    server = start_server(folder, HttpWorkers=2, PythonHooks=[str(hooks)], HttpPort=port)
    try:
        after = _upload_over_all_workers(server, 2)
        _wait(lambda: len(_hook_lines(out)) >= len(after))
        time.sleep(0.5)
        assert sorted(line[1] for line in _hook_lines(out)) == sorted(after)
    finally:
        server.stop()


def test_execute_script_runs_in_the_state_of_the_lua_scripts(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    server, _ = _server(tmp_path, make_server)
    _upload_over_all_workers(server, 1)  # both workers are serving
    # every worker answers from the one state: the scripts' globals, and globals that
    # earlier requests set, whichever worker took them
    answers = [
        _execute(server, "counter = (counter or 0) + 1 print(answer .. ' ' .. counter)")
        for _ in range(12)
    ]
    assert answers == [f"42 {n}\n" for n in range(1, 13)]
    with fresh_client(server.url) as client:
        failed = client.post("/tools/execute-script", content="error('no')")
    assert failed.status_code == 500
    assert failed.json()["OrthancError"] == "Cannot execute a Lua command"


def test_runtime_settings_apply_to_every_worker(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    server = make_server(HttpWorkers=2)
    _upload_over_all_workers(server, 1)

    def everywhere(uri: str) -> set[str]:
        answers = set()
        for _ in range(12):
            with fresh_client(server.url) as client:
                answers.add(client.get(uri).text)
        return answers

    for uri, value in (
        ("/tools/log-level-dicom", "trace"),
        ("/tools/log-level-http", "verbose"),
        ("/tools/metrics", "0"),
        ("/tools/default-encoding", "Utf8"),
    ):
        before = everywhere(uri)
        assert len(before) == 1 and value not in before  # the same start everywhere
        with fresh_client(server.url) as client:
            assert client.put(uri, content=value).status_code == 200
        assert everywhere(uri) == {value}
    # the global level sets every category, on every worker
    with fresh_client(server.url) as client:
        assert client.put("/tools/log-level", content="default").status_code == 200
    assert everywhere("/tools/log-level-http") == {"default"}
    with fresh_client(server.url) as client:
        assert client.put("/tools/log-level-dicom", content="trace").status_code == 200
    # bad values are refused and change nothing, on any worker
    with fresh_client(server.url) as client:
        assert client.put("/tools/log-level", content="loud").status_code == 400
        assert client.put("/tools/metrics", content="maybe").status_code == 400
    assert everywhere("/tools/log-level-dicom") == {"trace"}
    assert everywhere("/tools/metrics") == {"0"}

    # a worker that dies and is started again takes the settings of the run
    victim = worker_pids(server)[-1]
    os.kill(victim, signal.SIGKILL)  # a worker of the server this test started
    _wait(lambda: victim not in worker_pids(server) and len(worker_pids(server)) == 2)
    _upload_over_all_workers(server, 1)
    assert everywhere("/tools/log-level-dicom") == {"trace"}
    assert everywhere("/tools/metrics") == {"0"}
    assert everywhere("/tools/default-encoding") == {"Utf8"}


def _samples(scrape: str, name: str) -> dict[str, float]:
    found = {}
    for line in scrape.splitlines():
        if line.startswith(name + "{"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def test_the_prometheus_scrape_counts_the_requests_of_every_worker(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(HttpWorkers=2)
    uploads = _upload_over_all_workers(server, 1)
    for _ in range(20):
        with fresh_client(server.url) as client:
            assert client.get("/system").status_code == 200
    with fresh_client(server.url) as client:
        scrape = client.get("/tools/metrics-prometheus").text
    counts = _samples(scrape, "dicomhub_http_request_duration_seconds_count")
    assert counts == {
        'dicomhub_http_request_duration_seconds_count{method="GET",status="2xx"}': 20,
        'dicomhub_http_request_duration_seconds_count{method="POST",status="2xx"}': len(uploads),
    }
    assert f"orthanc_count_instances {len(uploads)} " in scrape
    assert "orthanc_rest_api_active_requests 1 " in scrape  # the scrape itself
    assert scrape.count("# TYPE dicomhub_http_request_duration_seconds histogram") == 1


def test_a_setting_made_by_initialize_reaches_every_worker(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    # The primary's ``Initialize`` runs before that worker serves HTTP: its own share
    # of the setting is applied in-process, the other worker's over its socket (or
    # from the run's record, if it starts later).
    script = tmp_path / "initialize.lua"
    script.write_text(
        """
        function Initialize()
          RestApiPut('/tools/log-level-dicom', 'trace')
          RestApiPut('/tools/default-encoding', 'Utf8')
        end
        """
    )
    server = make_server(HttpWorkers=2, LuaScripts=[str(script)])
    _upload_over_all_workers(server, 1)
    for _ in range(12):
        with fresh_client(server.url) as client:
            assert client.get("/tools/log-level-dicom").text == "trace"
            assert client.get("/tools/default-encoding").text == "Utf8"


def test_workers_stop_when_the_supervisor_is_killed(make_server) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL of the supervisor (which cannot pass it on) ends its workers too, as it
    would end a single process: no worker is left serving the port."""
    server = make_server(HttpWorkers=2)
    workers = worker_pids(server)
    assert len(workers) == 2
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)

    def all_gone() -> bool:
        return not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers)

    _wait(all_gone)
    try:
        httpx.get(f"{server.url}/system", timeout=2)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("a worker still answers after its supervisor was killed")


def _alive(pid: int) -> bool:
    """Running (not a zombie waiting to be reaped by init)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("second_workers", [1, 2])
def test_a_port_held_by_workers_is_refused_to_another_server(
    make_server, tmp_path: Path, second_workers: int
) -> None:  # type: ignore[no-untyped-def]
    """The supervisor holds the port for its workers; another server started on that
    port must fail as on a port in use, not share it."""
    import subprocess
    import sys

    first = make_server(HttpWorkers=2)
    worker_pids(first)  # both listening
    folder = tmp_path / "second"
    folder.mkdir()
    config = {
        "HttpPort": first.port,
        "DicomPort": 0,
        "HttpWorkers": second_workers,
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
    }
    (folder / "config.json").write_text(json.dumps(config))
    second = subprocess.run(
        [sys.executable, "-m", "dicomhub", str(folder / "config.json")],
        capture_output=True,
        timeout=60,
        cwd=folder,
    )
    assert second.returncode == 2, second.stderr
    assert b"already in use" in second.stderr + second.stdout
    assert first.client.get("/system").status_code == 200


def _established(pid: int, port: int) -> int:
    """How many established TCP connections to ``port`` the process ``pid`` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count


def test_connections_opened_together_are_spread_evenly(make_server) -> None:  # type: ignore[no-untyped-def]
    """A client's keep-alive pool (4 connections opened at once) is shared 2 and 2 by
    two workers, whatever the peers' ports: each goes where the fewest are open."""
    server = make_server(HttpWorkers=2)
    workers = worker_pids(server)
    _upload_over_all_workers(server, 1)  # both workers serve (and are handed nothing)
    _wait(lambda: all(_established(p, server.port) == 0 for p in workers))
    clients = [fresh_client(server.url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda c: c.get("/system").status_code, clients))
        assert answers == [200] * 4
        counts = _wait(
            lambda: (c := sorted(_established(p, server.port) for p in workers)) == [2, 2] and c
        )
        assert counts == [2, 2]
        for client in clients:  # they keep serving on the connections they were handed
            assert client.post("/instances", content=make_dicom()).status_code == 200
    finally:
        for client in clients:
            client.close()
    # A closed connection is counted off: the next 2 go one to each worker.
    _wait(lambda: all(_established(p, server.port) == 0 for p in workers))
    again = [fresh_client(server.url) for _ in range(2)]
    try:
        for client in again:
            assert client.get("/system").status_code == 200
        assert sorted(_established(p, server.port) for p in workers) == [1, 1]
    finally:
        for client in again:
            client.close()
