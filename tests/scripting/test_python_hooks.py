"""Python hooks (``PythonHooks``): the Lua callbacks and filters written in Python,
driven through a real server, real uploads and real DICOM peers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archive_checks import wait_until
from conftest import RunningServer
from dicom_factory import make_dicom

from scripting.test_lua_filters import LOOPBACK, _ours, cfind, cstore

HOOKS = """
import json

OUT = {out!r}


def _record(*values):
    with open(OUT, "a") as handle:
        handle.write(json.dumps(values) + "\\n")


def initialize(api):
    global API
    API = api
    _record("initialize", json.loads(api.get("/system"))["Name"])


def finalize():
    _record("finalize")


def on_stored_instance(instance_id, tags, metadata, origin):
    if tags["PatientID"] == "CRASH":
        raise RuntimeError("failing on purpose")
    _record("stored", instance_id, tags["PatientID"], metadata["Origin"], origin)
    API.put("/instances/" + instance_id + "/metadata/1024", "seen by python")


def on_deleted_patient(patient_id):
    _record("deleted", patient_id)


def received_instance_filter(tags, origin, info):
    _record("filter", tags["PatientID"], origin["RequestOrigin"], info["TransferSyntaxUID"])
    if tags["PatientID"] == "BROKEN":
        raise ValueError("broken filter")
    return tags["PatientID"] != "REFUSE"


def incoming_cstore_instance_filter(tags, origin, info):
    return 0xA700 if tags["PatientID"] == "FULL" else 0


def incoming_http_request_filter(method, uri, ip, username, headers):
    return uri != "/forbidden" and "x-deny" not in headers


def incoming_find_request_filter(query, origin):
    _record("find", origin["RemoteAet"], query.get("0010,0020"))
    if query.get("0010,0020") == "REWRITE":
        query["0010,0020"] = "PYFIND"
    return query
"""


def _wait(predicate: Callable[[], Any], timeout: float = 15) -> Any:
    return wait_until(predicate, timeout)


def _records(out: Path) -> list[list[Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def _server(
    tmp_path: Path, make_server: Callable[..., RunningServer], **config: Any
) -> tuple[RunningServer, Path]:
    out = tmp_path / "records.jsonl"
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS.format(out=str(out)))
    broken = tmp_path / "broken.py"
    broken.write_text("this is not python\n")
    server = make_server(
        PythonHooks=[str(broken), str(hooks)],
        DicomBindAddress=LOOPBACK,
        DicomAlwaysAllowFind=True,
        **config,
    )
    return server, out


def test_callbacks_and_filters_in_python(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    server, out = _server(tmp_path, make_server)
    _wait(lambda: ["initialize", "dicomhub-test"] in _records(out))
    assert "Cannot load the Python hooks" in (server.folder / "server.log").read_text()

    client = server.client
    crash = client.post("/instances", content=make_dicom(patient_id="CRASH")).json()
    kept = client.post("/instances", content=make_dicom(patient_id="KEEP")).json()
    refused = client.post("/instances", content=make_dicom(patient_id="REFUSE"))
    assert refused.status_code == 200 and refused.json()["Status"] == "FilteredOut"
    assert client.get(f"/instances/{refused.json()['ID']}").status_code == 404
    failing = client.post("/instances", content=make_dicom(patient_id="BROKEN"))
    assert failing.status_code == 500 and "broken filter" in failing.json()["Details"]

    # The callback queue went on after the failing callback.
    _wait(lambda: client.get(f"/instances/{kept['ID']}/metadata/1024").status_code == 200)
    assert client.get(f"/instances/{kept['ID']}/metadata/1024").text == "seen by python"
    assert client.get(f"/instances/{crash['ID']}").status_code == 200
    stored = [r for r in _records(out) if r[0] == "stored"]
    assert stored == [
        [
            "stored",
            kept["ID"],
            "KEEP",
            "RestApi",
            {"RemoteIp": "127.0.0.1", "RequestOrigin": "RestApi", "Username": ""},
        ]
    ]
    filtered = [r[1] for r in _records(out) if r[0] == "filter"]
    assert filtered == ["CRASH", "KEEP", "REFUSE", "BROKEN"]

    client.delete(f"/patients/{kept['ParentPatient']}")
    _wait(lambda: ["deleted", kept["ParentPatient"]] in _records(out))

    assert client.get("/forbidden").status_code == 403
    assert client.get("/system", headers={"X-Deny": "1"}).status_code == 403
    assert client.get("/system").status_code == 200

    server.stop()
    assert _records(out)[-1] == ["finalize"]


def test_python_filters_over_dicom(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    server, out = _server(tmp_path, make_server)
    peer = _ours(server)
    assert cstore(peer.dicom_port, make_dicom(patient_id="FULL")) == 0xA700
    assert cstore(peer.dicom_port, make_dicom(patient_id="REFUSE")) == 0  # as Orthanc
    assert cstore(peer.dicom_port, make_dicom(patient_id="PYFIND")) == 0
    assert [r[1:3] for r in _records(out) if r[0] == "filter"] == [
        ["FULL", "DicomProtocol"],
        ["REFUSE", "DicomProtocol"],
        ["PYFIND", "DicomProtocol"],
    ]
    statuses, answers = cfind(peer.dicom_port, QueryRetrieveLevel="STUDY", PatientID="REWRITE")
    assert statuses[-1] == 0
    assert [str(a.PatientID) for a in answers] == ["PYFIND"]
    assert ["find", "LUAFIND", "REWRITE"] in _records(out)


def test_lua_and_python_share_the_queue(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    lua = tmp_path / "both.lua"
    lua.write_text(
        'function OnStoredInstance(id) RestApiPut("/instances/" .. id .. "/metadata/1025", "lua") end'
    )
    server, out = _server(tmp_path, make_server, LuaScripts=[str(lua)])
    instance = server.client.post("/instances", content=make_dicom(patient_id="BOTH")).json()["ID"]
    for slot, text in (("1024", "seen by python"), ("1025", "lua")):
        _wait(
            lambda s=slot: (
                server.client.get(f"/instances/{instance}/metadata/{s}").status_code == 200
            )
        )
        assert server.client.get(f"/instances/{instance}/metadata/{slot}").text == text
