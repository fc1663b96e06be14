"""Lua scripting driven by real scripts against a real server (and the oracle's answers
observed for ``/tools/execute-script``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_checks import upload, wait_until
from conftest import ROOT, RunningServer, free_port
from dicom_factory import make_dicom


def _script(tmp_path: Path, name: str, code: str) -> str:
    path = tmp_path / name
    path.write_text(code)
    return str(path)


def _wait(predicate: Callable[[], Any], timeout: float = 15) -> Any:
    return wait_until(predicate, timeout)


def _run(server: RunningServer, code: str) -> httpx.Response:
    return server.client.post("/tools/execute-script", content=code)


@pytest.fixture
def lua(make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server(ExecuteLuaEnabled=True, LuaTimeLimit=2)


def test_execute_script_disabled_by_default(server: RunningServer) -> None:
    # As Orthanc 1.10.1 answers when ExecuteLuaEnabled is false.
    answer = _run(server, 'print("hi")')
    assert answer.status_code == 403 and answer.content == b""


def test_execute_script_answers_what_it_prints(lua: RunningServer) -> None:
    answer = _run(lua, 'print(1, "a", nil, true, 2.5) print(2)')
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "1, a, nil, true, 2.5\n2\n"
    # One state: globals survive between requests.
    _run(lua, "counter = 41")
    assert _run(lua, "counter = counter + 1 print(counter)").text == "42\n"


@pytest.mark.parametrize(
    ("code", "details"),
    [
        ("x = ", '[string "line"]:1: unexpected symbol near <eof>'),
        ('error("boom")', '[string "line"]:1: boom'),
        ("error(42)", "42"),
    ],
)
def test_execute_script_errors_like_orthanc(lua: RunningServer, code: str, details: str) -> None:
    answer = _run(lua, code)
    assert answer.status_code == 500
    body = answer.json()
    assert body["OrthancStatus"] == 2031
    assert body["Message"] == "Cannot execute a Lua command"
    assert body["Details"] == details


@pytest.mark.parametrize("code", ["error({code=1})", "error(nil)", "error(true)"])
def test_execute_script_error_that_is_not_text(lua: RunningServer, code: str) -> None:
    # As Orthanc 1.10.1: no message to give, an internal error.
    answer = _run(lua, code)
    assert answer.status_code == 500
    body = answer.json()
    assert (body["OrthancStatus"], body["Message"]) == (-1, "Internal error")
    assert body["Details"] == "An unhandled exception was generated inside the HTTP server"
    assert _run(lua, "print(pcall(error, {}))").text.startswith("false, table: ")


def test_infinite_loop_is_stopped_and_server_keeps_serving(lua: RunningServer) -> None:
    answer = _run(lua, "while true do end")
    assert answer.status_code == 500 and "longer than 2 seconds" in answer.json()["Details"]
    assert _run(lua, 'print("alive")').text == "alive\n"


def test_script_cannot_reenter_execute_script(lua: RunningServer) -> None:
    code = 'print(RestApiPost("/tools/execute-script", "print(1)"))'
    assert _run(lua, code).text == "nil\n"


def test_json_helpers_match_orthanc(lua: RunningServer) -> None:
    code = """
    print(DumpJson({a=1,b={1,2,3}}))
    print(DumpJson({a=1,b={1,2,3}}, true))
    print(DumpJson({}))
    print(DumpJson({1, "x", true, 2.5, {}}))
    local t = ParseJson('{"a": [1,2,{"b": null}], "c": 1.5, "d": true}')
    print(t.a[1], t.a[3].b, t.c, t.d, #t.a, math.type(t.a[1]))
    PrintRecursive({b={1,2}})
    PrintRecursive(5)
    """
    assert _run(lua, code).text == (
        '{"a":1,"b":[1,2,3]}\n'
        '{"a":"1","b":["1","2","3"]}\n'
        "[]\n"
        '[1,"x",true,2.5,[]]\n'
        "1.0, nil, 1.5, true, 3, float\n"
        "table\n"
        "\t[b], table\n"
        "\t[b]\t[1], number, 1\n"
        "\t[b]\t[2], number, 2\n"
        "number, 5\n"
    )


@pytest.mark.parametrize(
    ("code", "printed"),
    [  # as Orthanc 1.10.1 prints and answers (in ``pairs`` order: arrays here)
        (
            'print(PrintRecursive({{2, {3, 4}}, "x", true}))',
            "table\n\t[1], table\n\t[1]\t[1], number, 2\n\t[1]\t[2], table\n"
            "\t[1]\t[2]\t[1], number, 3\n\t[1]\t[2]\t[2], number, 4\n"
            "\t[2], string, x\n\t[3], boolean, true\n95\n",
        ),
        (
            "print(PrintRecursive({1,2,3}, 2))",
            "table\n\t[1], number, 1\n\t[2], number, 2\nERROR: Item limit reached.\n-1\n",
        ),
        (
            "print(PrintRecursive({a={b={c=1}}}, 100, 3))",
            "3, table\n3\t[a], table\n3\t[a]\t[b], table\n3\t[a]\t[b]\t[c], number, 1\n99\n",
        ),
        ('print(PrintRecursive("str"))', "string, str\n99\n"),
        ("print(PrintRecursive(nil))", "nil, nil\n99\n"),
        ("print(PrintRecursive({}))", "table\n100\n"),
        ("print(PrintRecursive({x=1}, 0))", "ERROR: Item limit reached.\n-1\n"),
        (
            "print(PrintRecursive({x={1,2}}, 2))",
            "table\n\t[x], table\n\t[x]\t[1], number, 1\n\t[x]\t[2], number, 2\n0\n",
        ),
    ],
)
def test_print_recursive_as_orthanc(lua: RunningServer, code: str, printed: str) -> None:
    answer = _run(lua, code)
    assert answer.status_code == 200 and answer.text == printed


def test_configuration_uid_and_rest_api(lua: RunningServer) -> None:
    code = """
    local config = GetOrthancConfiguration()
    print(config.Name, config.ExecuteLuaEnabled)
    print(string.match(GenerateDicomUid("study"), "^[0-9.]+$") ~= nil)
    print(ParseJson(RestApiGet("/system")).Name)
    print(ParseJson(RestApiGet("//system/")).Name)
    print(RestApiGet("/nope"))
    print(type(python), f)
    """
    expected = "dicomhub-test, true\ntrue\ndicomhub-test\ndicomhub-test\nnil\nnil, nil\n"
    assert _run(lua, code).text == expected


def test_rest_api_upload_metadata_and_delete(lua: RunningServer) -> None:
    data = make_dicom(patient_id="LUAREST")
    instance = upload(lua.client, data)["ID"]
    code = f"""
    print(type(RestApiPut("/instances/{instance}/metadata/1024", "hello")))
    print(RestApiGet("/instances/{instance}/metadata/1024"))
    print(RestApiGet("/instances", false, {{["Accept"] = "application/json"}}) ~= nil)
    local file = RestApiGet("/instances/{instance}/file")
    print(#file == {len(data)}, string.sub(file, 129, 132))
    print(RestApiDelete("/instances/{instance}"), RestApiDelete("/patients/nope"))
    """
    assert _run(lua, code).text == "string\nhello\ntrue\ntrue, DICM\ntrue, nil\n"
    assert lua.client.get(f"/instances/{instance}").status_code == 404


def test_http_client_functions(
    lua: RunningServer, make_server: Callable[..., RunningServer]
) -> None:
    other = make_server(AuthenticationEnabled=True, RegisteredUsers={"alice": "secret"})
    code = f"""
    print(HttpGet("{other.url}/system"))
    SetHttpCredentials("alice", "secret")
    SetHttpTimeout(5)
    print(ParseJson(HttpGet("{other.url}/system")).Name)
    print(HttpPost("{other.url}/tools/lookup", "1.2.3"))
    print(HttpDelete("{other.url}/patients/nope"))
    print(HttpDelete("{other.url}/changes"))
    print(HttpGet("http://127.0.0.1:9/unreachable"))
    print(type(HttpGet), ParseJson(HttpGet("http://127.0.0.1:9/unreachable")))
    """
    # As Orthanc: an HTTP error status answers "" (the 401 of the first call), only a
    # failed connection nil; a DELETE answers "SUCCESS"; ParseJson of nil is nil.
    expected = "\ndicomhub-test\n[]\nnil\nSUCCESS\nnil\nfunction, nil\n"
    assert _run(lua, code).text == expected


def test_callbacks_from_configured_script(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    script = _script(
        tmp_path,
        "callbacks.lua",
        """
        stored = {}
        deleted = {}
        function Initialize() initialized = true end
        function OnStoredInstance(id, tags, metadata, origin)
          if tags.PatientID == "CRASH" then error("failing on purpose") end
          if tags.PatientID == "LOOP" then while true do end end
          stored[#stored + 1] = id .. "|" .. tags.PatientID .. "|" .. origin.RequestOrigin
            .. "|" .. metadata.Origin
          RestApiPut("/instances/" .. id .. "/metadata/1024", "seen by lua")
          if tags.PatientID == "DROPME" then Delete(id) end
        end
        function OnDeletedPatient(id) deleted[#deleted + 1] = id end
        function OnStableSeries(id, tags, metadata) stable = tags.Modality end
        beats = 0
        function OnHeartBeat() beats = beats + 1 end
        """,
    )
    server = make_server(
        LuaScripts=[script],
        ExecuteLuaEnabled=True,
        StableAge=1,
        LuaHeartBeatPeriod=1,
        LuaTimeLimit=1,
    )
    assert _run(server, "print(initialized)").text == "true\n"
    crash = upload(server.client, make_dicom(patient_id="CRASH"))["ID"]
    upload(server.client, make_dicom(patient_id="LOOP"))
    kept = upload(server.client, make_dicom(patient_id="KEEP"))["ID"]
    dropped_answer = upload(server.client, make_dicom(patient_id="DROPME"))
    dropped = dropped_answer["ID"]
    _wait(lambda: _run(server, "print(#deleted)").text == "1\n")
    assert _run(server, "print(table.concat(stored, ' '))").text == (
        f"{kept}|KEEP|RestApi|RestApi {dropped}|DROPME|RestApi|RestApi\n"
    )
    assert _run(server, "print(deleted[1])").text == f"{dropped_answer['ParentPatient']}\n"
    assert server.client.get(f"/instances/{kept}/metadata/1024").text == "seen by lua"
    assert server.client.get(f"/instances/{dropped}").status_code == 404
    assert server.client.get(f"/instances/{crash}").status_code == 200
    log = (server.folder / "server.log").read_text()
    assert "failing on purpose" in log and "longer than 1 seconds" in log
    _wait(lambda: _run(server, "print(stable)").text == "CT\n", timeout=30)
    _wait(lambda: _run(server, "print(beats > 0)").text == "true\n")


def test_auto_routing_to_a_peer(tmp_path: Path, make_server: Callable[..., RunningServer]) -> None:
    target = make_server()
    script = _script(
        tmp_path,
        "route.lua",
        """
        function OnStoredInstance(id, tags, metadata, origin)
          SendToPeer(id, "target")
          Delete(id)
        end
        """,
    )
    source = make_server(LuaScripts=[script], OrthancPeers={"target": [target.url + "/"]})
    data = make_dicom(patient_id="ROUTED")
    instance = upload(source.client, data)["ID"]
    _wait(lambda: target.client.get(f"/instances/{instance}").status_code == 200)
    _wait(lambda: source.client.get(f"/instances/{instance}").status_code == 404)


def test_set_stable_status(tmp_path: Path, make_server: Callable[..., RunningServer]) -> None:
    script = _script(
        tmp_path,
        "stable.lua",
        """
        stable = {}
        function OnStableStudy(id, tags, metadata) stable[#stable + 1] = id end
        """,
    )
    server = make_server(LuaScripts=[script], ExecuteLuaEnabled=True, StableAge=3600)
    answer = upload(server.client, make_dicom(patient_id="STABLE"))
    study, instance = answer["ParentStudy"], answer["ID"]
    assert server.client.get(f"/studies/{study}").json()["IsStable"] is False
    code = f"""
    print(SetStableStatus("{study}", true))
    print(SetStableStatus("{study}", true))
    print(SetStableStatus("{instance}", true), SetStableStatus("nope", true))
    """
    assert _run(server, code).text == "true\nfalse\nnil, nil\n"
    assert server.client.get(f"/studies/{study}").json()["IsStable"] is True
    # The forced Stable* change reaches the callbacks like the monitor's would.
    _wait(lambda: _run(server, "print(stable[1])").text == f"{study}\n")
    changes = server.client.get("/changes?limit=100").json()["Changes"]
    assert [c["ID"] for c in changes if c["ChangeType"] == "StableStudy"] == [study]
    assert _run(server, f'print(SetStableStatus("{study}", false))').text == "true\n"
    assert server.client.get(f"/studies/{study}").json()["IsStable"] is False


def test_call_system_gets_a_copy_of_the_instance(lua: RunningServer, tmp_path: Path) -> None:
    data = make_dicom(patient_id="SYSCALL")
    instance = upload(lua.client, data)["ID"]
    copy = tmp_path / "copy.dcm"
    # Orthanc appends the temporary file after the arguments: with ``sh -c``, $0 is
    # the copy's path and $1 the file.
    code = f"""
    print(CallSystem("{instance}", "sh", {{"-c", 'cp "$1" "$0"', "{copy}"}}) == "{instance}")
    print(CallSystem("{instance}", "false", {{}}))
    print(CallSystem("nope", "true"))
    """
    assert _run(lua, code).text == "true\nnil\nnil\n"
    assert copy.read_bytes() == lua.client.get(f"/instances/{instance}/file").content


def test_modify_instance_stores_a_lua_copy(lua: RunningServer) -> None:
    original = upload(lua.client, make_dicom(patient_id="MODIFY", StationName="OLD"))["ID"]
    code = f"""
    local modified = ModifyInstance("{original}", {{StationName = "LUA"}}, {{"StudyDescription"}})
    print(modified ~= "{original}")
    local tags = ParseJson(RestApiGet("/instances/" .. modified .. "/simplified-tags"))
    print(tags.StationName, tags.StudyDescription, tags.PatientID)
    print(RestApiGet("/instances/" .. modified .. "/metadata/Origin"))
    print(pcall(ModifyInstance, nil, {{}}))
    """
    lines = _run(lua, code).text.splitlines()
    assert lines[:3] == ["true", "LUA, nil, MODIFY", "Lua"]
    assert lines[3].startswith("false") and "nonexistent resource" in lines[3]


def test_finalize_runs_when_the_server_is_terminated(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    marker = tmp_path / "finalized.txt"
    script = _script(
        tmp_path,
        "finalize.lua",
        f"""
        function Finalize()
          local f = io.open("{marker}", "w")
          f:write("bye")
          f:close()
        end
        """,
    )
    server = make_server(LuaScripts=[script], ExecuteLuaEnabled=True)
    assert _run(server, "print(1)").text == "1\n"  # scripts loaded and serving
    server.stop()  # SIGTERM
    assert server.process.returncode == 0
    assert marker.read_text() == "bye"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_callback_defined_by_execute_script_gets_the_next_changes(
    make_server: Callable[..., RunningServer], workers: int
) -> None:
    """With no change callback defined, changes are not even queued; a callback that
    ``execute-script`` defines later still gets the changes made after it (one
    worker or several; with several, the primary may also pass on the changes of the
    last poll interval before it, ``core.change_feed``)."""
    server = make_server(ExecuteLuaEnabled=True, HttpWorkers=workers)
    upload(server.client, make_dicom(patient_id="BEFORE"))
    defined = _run(
        server,
        "stored = {}\n"
        "function OnStoredInstance(id, tags, metadata, origin)\n"
        "  table.insert(stored, tags['PatientID'])\n"
        "end\n",
    )
    assert defined.status_code == 200
    for name in ("AFTER1", "AFTER2"):
        upload(server.client, make_dicom(patient_id=name))

    def seen() -> list[str]:
        printed = _run(server, "for _, p in ipairs(stored) do print(p) end").text
        names = printed.split()
        return names if {"AFTER1", "AFTER2"} <= set(names) else []

    names = _wait(seen)
    if workers == 1:  # several: the changes of the last poll interval may come too
        assert "BEFORE" not in names


JOB_CALLBACKS = """
jobs = {}
function OnJobSubmitted(id) table.insert(jobs, 'submitted ' .. id) end
function OnJobSuccess(id) table.insert(jobs, 'success ' .. id) end
function OnJobFailure(id) table.insert(jobs, 'failure ' .. id) end
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_job_callbacks(
    make_server: Callable[..., RunningServer], tmp_path: Path, workers: int
) -> None:
    """OnJobSubmitted, OnJobSuccess and OnJobFailure get the job's ID, as in Orthanc,
    a job's submission first, whichever worker took the request."""
    server = make_server(
        ExecuteLuaEnabled=True,
        HttpWorkers=workers,
        LuaScripts=[_script(tmp_path, "jobs.lua", JOB_CALLBACKS)],
        DicomModalities={"nowhere": ["NOWHERE", "127.0.0.1", 9]},
    )
    study = upload(server.client, make_dicom(patient_id="JOBS"))["ParentStudy"]
    done = server.client.post(f"/studies/{study}/archive", json={"Asynchronous": True})
    failed = server.client.post(
        "/modalities/nowhere/store", json={"Resources": [study], "Asynchronous": True}
    )
    done_id, failed_id = done.json()["ID"], failed.json()["ID"]

    def lines() -> list[str]:
        found = _run(server, "for _, j in ipairs(jobs) do print(j) end").text.splitlines()
        wanted = {f"success {done_id}", f"failure {failed_id}"}
        return found if wanted <= set(found) else []

    found = _wait(lines, timeout=60)
    assert f"submitted {done_id}" in found and f"submitted {failed_id}" in found
    assert found.index(f"submitted {done_id}") < found.index(f"success {done_id}")
    assert found.index(f"submitted {failed_id}") < found.index(f"failure {failed_id}")
    assert f"failure {done_id}" not in found and f"success {failed_id}" not in found


def test_configuration_holds_what_the_file_gives(lua: RunningServer) -> None:
    """As Orthanc's ``GetOrthancConfiguration()``: the file's options, not the defaults."""
    code = """
    local config = GetOrthancConfiguration()
    print(config.Name, config.StableAge == 60, config.DicomAet, config.MaximumPatientCount)
    """
    assert _run(lua, code).text == "dicomhub-test, true, nil, nil\n"


def test_lua52_functions_and_json_as_orthancs_lua_offers_them(lua: RunningServer) -> None:
    """Orthanc's Lua 5.3 keeps Lua 5.2's ``bit32`` and ``math`` functions; its
    ``ParseJson`` answers nil for what is not JSON, its ``DumpJson`` escapes non-ASCII."""
    code = """
    print(bit32.band(0xFF, 0x0F), bit32.bor(1, 2, 4), bit32.bnot(0), bit32.lshift(1, 31))
    print(bit32.arshift(0x80000000, 4), bit32.lrotate(0x80000001, 1), bit32.extract(0xF0, 4, 4))
    print(math.pow(2, 10), math.log10(1000), math.ldexp(0.5, 3), math.frexp(8))
    print(ParseJson("not json"), ParseJson(""), ParseJson(nil))
    print(pcall(RestApiGet), DumpJson())
    print(DumpJson({name = "\\195\\169"}))
    """
    assert _run(lua, code).text == (
        "15, 7, 4294967295, 2147483648\n"
        "4160749568, 3, 15\n"
        "1024.0, 3.0, 4.0, 0.5, 4\n"
        "nil, nil, nil\n"
        "true, nil\n"  # (pcall's first value only, in the middle of a list)
        '{"name":"\\u00e9"}\n'
    )


BOOK_GUARDED_ROUTING = """
seen = {}
function OnStoredInstance(instanceId, tags, metadata, origin)
  seen[#seen + 1] = instanceId .. '|' .. origin['RequestOrigin'] .. '|'
    .. tostring(metadata['ModifiedFrom']) .. '|' .. tostring(tags['StationName'])
  -- The Orthanc Book's guard: ignore the instances that result from a modification
  if metadata['ModifiedFrom'] == nil and metadata['AnonymizedFrom'] == nil then
    local replace = {}
    replace['StationName'] = 'ROUTED'
    SendToModality(ModifyInstance(instanceId, replace, {}, true), 'target')
  end
end
"""


def test_modify_instance_copy_carries_modified_from_so_the_books_guard_stops_the_loop(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    """As Orthanc: the copy ``ModifyInstance`` stores has the metadata ``ModifiedFrom``
    already when its own ``OnStoredInstance`` runs, so the Book's guard routes each
    instance once (without it, every copy was modified and sent again, forever)."""
    target = make_server(DicomAet="TARGET")
    target_port = int(target.config["DicomPort"])
    source = make_server(
        LuaScripts=[_script(tmp_path, "route.lua", BOOK_GUARDED_ROUTING)],
        ExecuteLuaEnabled=True,
        DicomModalities={"target": ["TARGET", "127.0.0.1", target_port]},
    )
    original = upload(source.client, make_dicom(patient_id="GUARD", StationName="OLD"))["ID"]

    def seen() -> list[str]:
        lines = _run(source, "for _, s in ipairs(seen) do print(s) end").text.splitlines()
        return lines if len(lines) >= 2 else []

    first = _wait(seen)
    copy = first[1].split("|")[0]
    assert first == [f"{original}|RestApi|nil|OLD", f"{copy}|Lua|{original}|ROUTED"]
    assert source.client.get(f"/instances/{copy}/metadata/ModifiedFrom").text == original
    assert source.client.get(f"/instances/{copy}/metadata/Origin").text == "Lua"
    _wait(lambda: len(target.client.get("/instances").json()) == 1)
    time.sleep(1.5)  # a loop would have made more copies by now
    assert len(_run(source, "for _, s in ipairs(seen) do print(s) end").text.splitlines()) == 2
    assert sorted(source.client.get("/instances").json()) == sorted([original, copy])
    received = target.client.get("/instances").json()
    assert received == [copy]
    tags = target.client.get(f"/instances/{copy}/simplified-tags").json()
    assert tags["StationName"] == "ROUTED"


@pytest.mark.parametrize(
    ("code", "workers"),
    [
        ("x = = 1", 1),  # a syntax error
        ('x = 1\nerror("refusing to load")', 2),  # an error raised at load time
    ],
)
def test_a_script_that_fails_to_load_stops_the_start(
    tmp_path: Path, code: str, workers: int
) -> None:
    """As Orthanc 1.10.1 (status 255, "Uncaught exception, stopping now: [Cannot
    execute a Lua command] (code 2031)"): never serve without a configured script,
    which may define the filters that lock the server."""
    guard = _script(tmp_path, "guard.lua", "function IncomingHttpRequestFilter() return false end")
    broken = _script(tmp_path, "broken.lua", code)
    settings = {
        "HttpPort": free_port(),
        "DicomPort": free_port(),
        "StorageDirectory": str(tmp_path / "db"),
        "IndexDirectory": str(tmp_path / "db"),
        "HttpWorkers": workers,
        "LuaScripts": [broken, guard],
    }
    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORTHANC")}
    environment["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "dicomhub", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=environment,
    )
    assert result.returncode == 255, result.stderr
    assert f"Error in the Lua script {broken}: " in result.stderr
    assert "[Cannot execute a Lua command] (code 2031)" in result.stderr
    assert "restarting it" not in result.stderr  # the workers are not started again
    assert "dicomhub has started" not in result.stderr
