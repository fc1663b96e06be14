"""``/modalities``: configuration in list and object form, PUT/DELETE, and the sharing of
REST changes with the DICOM listener, other workers and restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archive_checks import assert_orthanc_error, put_read_delete, reference_orthanc
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
    unknown = client.get("/modalities/nope")  # an empty 404, as in Orthanc 1.10.1
    assert unknown.status_code == 404 and unknown.content == b""
    for method, path in (
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
    body = assert_orthanc_error(
        client.put("/modalities/bad", content=b"{"), 400, "Bad file format", 15
    )
    assert "Details" not in body
    assert client.get("/modalities").json() == []


def _configuration(client: Any, name: str, body: Any) -> dict[str, Any]:
    response = client.put(f"/modalities/{name}", json=body)
    assert response.status_code == 200, response.text
    return client.get(f"/modalities/{name}/configuration").json()


def test_put_checks_as_orthanc(server: RunningServer) -> None:
    """Ports, manufacturers, flags and names as Orthanc 1.10.1 reads them."""
    client = server.client
    for port in (0, 65535, 70000, -1, "65535"):
        body = assert_orthanc_error(
            client.put("/modalities/bad", json=["X", "h", port]), 400, "Parameter out of range", 3
        )
        assert body["Details"] == (
            f"A TCP port number must be in range [1..65534], but found: {int(port)}"
        )
    for port in (" 104", "104.0", "1e2", "", True, None, 104.5):
        body = assert_orthanc_error(
            client.put("/modalities/bad", json=["X", "h", port]), 400, "Bad file format", 15
        )
    assert _configuration(client, "ok", ["X", "h", "+0104"])["Port"] == 104
    assert _configuration(client, "ok", ["X", "h", 65534])["Port"] == 65534
    # manufacturers: exact case; the older names read as their replacement
    for name in ("ge", "generic", "StoreScp"):
        body = assert_orthanc_error(
            client.put("/modalities/bad", json=["X", "h", 104, name]),
            400,
            "Parameter out of range",
            3,
        )
        assert body["Details"] == f'Unknown modality manufacturer: "{name}"'
    for name, read in (
        ("GE", "GE"),
        ("GenericNoUniversalWildcard", "GenericNoUniversalWildcard"),
        ("ClearCanvas", "Generic"),
        ("Dcm4Chee", "Generic"),
        ("EFilm2", "Generic"),
        ("MedInria", "Generic"),
        ("AgfaImpax", "GenericNoWildcardInDates"),
        ("SyngoVia", "GenericNoWildcardInDates"),
    ):
        assert _configuration(client, "ok", ["X", "h", 104, name])["Manufacturer"] == read
    # AllowStorageCommitment wins over AllowNAction / AllowEventReport, whatever the order
    for body in (
        {"AET": "X", "Host": "h", "Port": 1, "AllowNAction": False, "AllowStorageCommitment": True},
        {"AET": "X", "Host": "h", "Port": 1, "AllowStorageCommitment": True, "AllowNAction": False},
    ):
        configuration = _configuration(client, "ok", body)
        assert configuration["AllowNAction"] is True and configuration["AllowEventReport"] is True
    configuration = _configuration(
        client, "ok", {"AET": "X", "Host": "h", "Port": 1, "AllowEventReport": False}
    )
    assert configuration["AllowEventReport"] is False and configuration["AllowNAction"] is True
    body = assert_orthanc_error(
        client.put("/modalities/bad", json={"AET": "X", "Host": "h", "Port": 1, "Timeout": -3}),
        400,
        "Bad file format",
        15,
    )
    assert body["Details"] == "Unsigned integer value expected in field: Timeout"
    # names: letters, digits, dashes and underscores only
    for name in ("a b", "a.b", "a+b", "é", "a;b"):
        body = assert_orthanc_error(
            client.put(f"/modalities/{name}", json=["X", "h", 104]), 400, "Bad file format", 15
        )
        assert body["Details"].endswith(f"but found: {name}")
    assert _configuration(client, "Up_per-9", ["X", "h", 104])["AET"] == "X"
    assert client.get("/modalities").json() == ["Up_per-9", "ok"]


def test_echo_body_forms(make_server) -> None:  # type: ignore[no-untyped-def]
    """Echo bodies: none, ``{}``, ``Timeout``, ``CheckFind`` (an echo, then a C-FIND)."""
    server = make_server(DicomAet="SELFAET", **LOCAL)
    client = server.client
    port = dicom_port(server)
    # declared under its own AET, the server answers its own C-FIND too
    assert client.put("/modalities/self", json=["SELFAET", LOOPBACK, port]).status_code == 200
    for content in (b"", b"{}", b'{"Timeout": 3}', b'{"CheckFind": true}', b"[]", b"5"):
        response = client.post("/modalities/self/echo", content=content)
        assert response.status_code == 200 and response.json() == {}, content
    for content, details in (
        (b'{"CheckFind": "x"}', "Boolean value expected in field: CheckFind"),
        (b"not json", "Cannot parse the JSON body"),
        (b'{"Timeout": -1}', "Unsigned integer value expected in field: Timeout"),
    ):
        body = assert_orthanc_error(
            client.post("/modalities/self/echo", content=content), 400, "Bad file format", 15
        )
        assert body["Details"] == details, content


_ORACLE_BODIES: list[Any] = [
    ["MODSX", "h", 104],
    ["MODSX", "h", "0104", "GE"],
    ["MODSX", "h", 65535],
    ["MODSX", "h", " 104"],
    ["MODSX", "h", 104, "ge"],
    ["MODSX", "h", 104, "SyngoVia"],
    ["MODSX", "h", 104, "StoreScp"],
    {
        "AET": "MODSX",
        "Host": "h",
        "Port": 11112,
        "Manufacturer": "Vitrea",
        "AllowEcho": False,
        "AllowFind": False,
        "AllowGet": False,
        "AllowMove": False,
        "AllowStore": False,
        "AllowTranscoding": False,
        "UseDicomTls": True,
        "LocalAet": "LOC",
        "Timeout": 7,
    },
    {"AET": "MODSX", "Host": "h", "Port": 1, "AllowNAction": False, "AllowStorageCommitment": True},
    {"AET": "MODSX", "Host": "h", "Port": 1, "AllowFindWorklist": False, "AllowNAction": False},
    {"AET": "MODSX", "Host": "h", "Port": 1, "Timeout": -3},
    {"AET": "MODSX", "Host": "h"},
]


def _answer(client: Any, name: str, body: Any) -> tuple[int, Any]:
    status, answer = put_read_delete(client, f"/modalities/{name}", body)
    if status != 200:
        return status, (answer["OrthancStatus"], answer.get("Details"))
    answer.pop("RetrieveMethod", None)  # Orthanc 1.12.6, not in 1.10.1
    return status, answer


def test_put_answers_as_the_oracle(server: RunningServer) -> None:
    name = "mods-test-put"
    with reference_orthanc(cleanup=f"/modalities/{name}") as oracle:
        for body in _ORACLE_BODIES:
            assert _answer(server.client, name, body) == _answer(oracle, name, body), body
        for bad in ("mods-test-a.b", "mods-test-a b"):
            ours = server.client.put(f"/modalities/{bad}", json=["X", "h", 1])
            theirs = oracle.put(f"/modalities/{bad}", json=["X", "h", 1])
            assert (ours.status_code, ours.json()["Details"]) == (
                theirs.status_code,
                theirs.json()["Details"],
            )
        assert oracle.get(f"/modalities/{name}").status_code == 404
        assert server.client.get(f"/modalities/{name}").content == b""


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
