"""``/modalities``: configuration in list and object form, PUT/DELETE, and the sharing of
REST changes with the DICOM listener, other workers and restarts."""

from __future__ import annotations

from pathlib import Path

from archive_checks import assert_orthanc_error
from conftest import RunningServer, start_server
from net import LOOPBACK, dicom_port, echoscu, rejected

LOCAL = {"DicomBindAddress": LOOPBACK}

CONFIGURED = {
    "listed": ["LISTED", "192.168.0.10", 104],
    "listedge": ["LISTEDGE", "192.168.0.11", "11112", "GE"],
    "object": {
        "AET": "OBJECT",
        "Host": "10.0.0.1",
        "Port": 4242,
        "Manufacturer": "Vitrea",
        "AllowEcho": False,
        "AllowStorageCommitment": False,
        "LocalAet": "LOCALX",
        "Timeout": 12,
    },
}

DEFAULTS = {
    "AllowEcho": True,
    "AllowEventReport": True,
    "AllowFind": True,
    "AllowFindWorklist": True,
    "AllowGet": True,
    "AllowMove": True,
    "AllowNAction": True,
    "AllowStore": True,
    "AllowTranscoding": True,
    "LocalAet": "",
    "Manufacturer": "Generic",
    "RetrieveMethod": "SystemDefault",
    "Timeout": 0,
    "UseDicomTls": False,
}


def test_list_and_expand(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(DicomModalities=CONFIGURED, **LOCAL)
    client = server.client
    assert client.get("/modalities").json() == ["listed", "listedge", "object"]
    expanded = client.get("/modalities?expand").json()
    assert expanded["listed"] == {**DEFAULTS, "AET": "LISTED", "Host": "192.168.0.10", "Port": 104}
    assert expanded["listedge"]["Manufacturer"] == "GE"
    assert expanded["listedge"]["Port"] == 11112
    assert expanded["object"] == {
        **DEFAULTS,
        "AET": "OBJECT",
        "Host": "10.0.0.1",
        "Port": 4242,
        "Manufacturer": "Vitrea",
        "AllowEcho": False,
        "AllowNAction": False,
        "AllowEventReport": False,
        "LocalAet": "LOCALX",
        "Timeout": 12,
    }
    assert client.get("/modalities/object/configuration").json() == expanded["object"]
    operations = client.get("/modalities/listed").json()
    assert {"configuration", "echo", "store", "store-straight"} <= set(operations)


def test_unknown_modality(server: RunningServer) -> None:
    client = server.client
    for method, path in (
        ("GET", "/modalities/nope"),
        ("GET", "/modalities/nope/configuration"),
        ("POST", "/modalities/nope/echo"),
    ):
        body = assert_orthanc_error(
            client.request(method, path), 404, "Accessing an inexistent item", 7
        )
        assert body["Details"] == "No modality with symbolic name: nope"
    body = assert_orthanc_error(
        client.delete("/modalities/nope"), 404, "Accessing an inexistent item", 7
    )
    assert body["Details"] == "Unknown DICOM modality with symbolic name: nope"


def test_put_and_delete(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(DicomModalities=CONFIGURED, **LOCAL)
    client = server.client
    response = client.put("/modalities/added", json=["ADDED", "127.0.0.1", 11112])
    assert response.status_code == 200
    assert response.content == b""
    assert client.get("/modalities/added/configuration").json()["AET"] == "ADDED"
    # Replace a configured one, then delete a configured one.
    client.put(
        "/modalities/listed", json={"AET": "NEWAET", "Host": "h", "Port": 1, "AllowGet": False}
    )
    configuration = client.get("/modalities/listed/configuration").json()
    assert configuration["AET"] == "NEWAET" and configuration["AllowGet"] is False
    assert client.delete("/modalities/object").status_code == 200
    assert client.get("/modalities").json() == ["added", "listed", "listedge"]
    assert_orthanc_error(
        client.delete("/modalities/object"), 404, "Accessing an inexistent item", 7
    )


def test_put_validation(server: RunningServer) -> None:
    client = server.client
    for body in (["X", "127.0.0.1"], {"AET": "X", "Host": "h"}, "X", 12, ["X", "h", "port"]):
        assert_orthanc_error(client.put("/modalities/bad", json=body), 400, "Bad file format", 15)
    body = assert_orthanc_error(
        client.put("/modalities/bad", json={"AET": "X", "Port": 104}), 400, "Bad file format", 15
    )
    assert body["Details"] == "String value expected in field: Host"
    body = assert_orthanc_error(
        client.put("/modalities/bad", json=["X", "127.0.0.1", 104, "Bogus"]),
        400,
        "Parameter out of range",
        3,
    )
    assert body["Details"] == 'Unknown modality manufacturer: "Bogus"'
    assert_orthanc_error(client.put("/modalities/bad", content=b"{"), 400, "Bad file format", 15)
    assert client.get("/modalities").json() == []


def test_put_modality_opens_the_listener_to_it(make_server) -> None:  # type: ignore[no-untyped-def]
    """A REST change reaches the DICOM listener (another thread, maybe another process)."""
    server = make_server(
        DicomAlwaysAllowEcho=False, DicomAlwaysAllowStore=False, HttpWorkers=2, **LOCAL
    )
    port = dicom_port(server)
    assert rejected(echoscu(port, calling="NEWONE"), "calling")
    for _ in range(4):  # whichever worker answers, all of them see the same list
        assert (
            server.client.put("/modalities/new", json=["NEWONE", "127.0.0.1", 1]).status_code == 200
        )
        assert server.client.get("/modalities").json() == ["new"]
    assert echoscu(port, calling="NEWONE").returncode == 0
    server.client.delete("/modalities/new")
    assert rejected(echoscu(port, calling="NEWONE"), "calling")


def _restart(server: RunningServer) -> RunningServer:
    server.stop()
    config = dict(server.config)
    return start_server(server.folder, **config)


def test_rest_changes_forgotten_on_restart_unless_in_database(make_server) -> None:  # type: ignore[no-untyped-def]
    memory = make_server(DicomModalities={"listed": ["LISTED", "h", 104]}, **LOCAL)
    memory.client.put("/modalities/added", json=["ADDED", "h", 104])
    memory.client.delete("/modalities/listed")
    memory = _restart(memory)
    try:
        assert memory.client.get("/modalities").json() == ["listed"]
    finally:
        memory.stop()

    database = make_server(
        DicomModalitiesInDatabase=True, DicomModalities={"ignored": ["IGN", "h", 104]}, **LOCAL
    )
    assert database.client.get("/modalities").json() == []  # the file's list is not used
    database.client.put("/modalities/added", json=["ADDED", "h", 104])
    database = _restart(database)
    try:
        assert database.client.get("/modalities").json() == ["added"]
        assert database.client.delete("/modalities/added").status_code == 200
        assert database.client.get("/modalities").json() == []
    finally:
        database.stop()


def test_modalities_route_is_not_a_resource_level(server: RunningServer, tmp_path: Path) -> None:
    assert server.client.get("/modalities").json() == []
    assert server.client.get("/modalities?expand").json() == {}
