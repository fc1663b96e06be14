"""``/peers``: configuration forms, REST changes, ``/system``, store and store-straight,
against a second dicomhub, a recording HTTP server and the reference Orthanc."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_checks import (
    assert_orthanc_error,
    oracle_client,
    put_read_delete,
    reference_orthanc,
    upload,
)
from conftest import RunningServer, free_port, start_server, unused_port
from dicom_factory import make_dicom

ALICE = {"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"}}


@pytest.fixture
def target(make_server: Callable[..., RunningServer]) -> RunningServer:
    """The receiving dicomhub, behind authentication."""
    return make_server(**ALICE)


class Recorder:
    """A minimal HTTP server that records what a peer client sends it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                recorder.requests.append((self.command, self.path, dict(self.headers), body))
                payload = b'{"Status": "Success"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


def _peer(server: RunningServer, password: str = "secret") -> dict[str, Any]:
    return {"Url": server.url, "Username": "alice", "Password": password}


# ---- configuration and REST changes ------------------------------------------------
def test_configured_peers_in_list_and_object_form(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(
        OrthancPeers={
            "plain": ["http://127.0.0.1:9/"],
            "listed": ["http://127.0.0.1:9", "bob", "pw"],
            "object": {
                "Url": "http://127.0.0.1:9/orthanc",
                "Username": "carol",
                "Password": "pw2",
                "HttpHeaders": {"X-Token": "abc", "X-Site": "a"},
                "Timeout": 7,
            },
        }
    )
    client = server.client
    assert client.get("/peers").json() == ["listed", "object", "plain"]
    expanded = client.get("/peers", params={"expand": ""}).json()
    assert expanded["plain"] == {
        "HttpHeaders": [],
        "Pkcs11": False,
        "Timeout": 0,
        "Url": "http://127.0.0.1:9/",
    }
    # The URL gets its trailing slash; the password is never shown.
    assert expanded["listed"] == {
        "HttpHeaders": [],
        "Password": None,
        "Pkcs11": False,
        "Timeout": 0,
        "Url": "http://127.0.0.1:9/",
        "Username": "bob",
    }
    assert expanded["object"]["HttpHeaders"] == ["X-Site", "X-Token"]
    assert expanded["object"]["Timeout"] == 7
    assert client.get("/peers/object/configuration").json() == expanded["object"]
    assert client.get("/peers/object").json() == [
        "configuration",
        "store",
        "store-straight",
        "system",
    ]


def test_put_and_delete_peers(server: RunningServer) -> None:
    client = server.client
    put = client.put("/peers/remote", json=["http://127.0.0.1:9", "u", "p"])
    assert put.status_code == 200 and put.text == ""
    assert client.get("/peers").json() == ["remote"]
    assert client.get("/peers/remote/configuration").json()["Username"] == "u"
    client.put("/peers/remote", json={"Url": "http://127.0.0.1:10/"})
    assert client.get("/peers/remote/configuration").json()["Url"] == "http://127.0.0.1:10/"
    assert "Username" not in client.get("/peers/remote/configuration").json()
    delete = client.delete("/peers/remote")
    assert delete.status_code == 200 and delete.text == ""
    assert client.get("/peers").json() == []
    assert_orthanc_error(
        client.delete("/peers/remote"), 404, "Accessing an inexistent item", 7, "DELETE"
    )


def test_unknown_peer_and_bad_bodies(server: RunningServer) -> None:
    client = server.client
    unknown = client.get("/peers/nope")
    assert unknown.status_code == 404 and unknown.content == b""
    for path in ("/peers/nope/configuration", "/peers/nope/system"):
        body = assert_orthanc_error(client.get(path), 404, "Unknown resource", 17, "GET", path)
        assert "nope" in body["Details"]
    for bad in (b"", b"{", b"3", b'{"Username": "x"}', b'["http://h/", "only-user"]'):
        assert_orthanc_error(client.put("/peers/x", content=bad), 400, "Bad file format", 15)
    missing = client.put("/peers/x", json={"Url": "http://h/", "CertificateFile": "/nonexistent"})
    assert_orthanc_error(missing, 404, "Inexistent file", 13)
    assert client.get("/peers").json() == []


def test_put_peer_checks_as_orthanc(server: RunningServer, tmp_path: Path) -> None:
    """URLs, credentials, certificates, other fields and names as Orthanc 1.10.1 reads them."""
    client = server.client

    def configuration(body: Any) -> dict[str, Any]:
        response = client.put("/peers/p", json=body)
        assert response.status_code == 200, response.text
        return client.get("/peers/p/configuration").json()

    for url in ("ftp://x", "HTTP://x", "file:///x", "x://y"):
        body = assert_orthanc_error(client.put("/peers/p", json=[url]), 400, "Bad file format", 15)
        assert body["Details"] == f"Bad URL: {url}"
    assert configuration(["https://x"])["Url"] == "https://x/"
    assert configuration(["x"])["Url"] == "x/"  # no scheme: taken as it is
    # an empty user name is no credentials; a password needs a user name
    plain = {"HttpHeaders": [], "Pkcs11": False, "Timeout": 0, "Url": "http://x/"}
    assert configuration(["http://x", "", ""]) == plain
    assert configuration({"Url": "http://x", "Username": "", "Password": ""}) == plain
    for bad in (
        ["http://x", "", "p"],
        {"Url": "http://x", "Password": "p"},
        {"Url": "http://x", "Username": None},
        {"Url": "http://x", "Username": "u", "Password": None},
    ):
        assert_orthanc_error(client.put("/peers/p", json=bad), 400, "Bad file format", 15)
    body = assert_orthanc_error(
        client.put("/peers/p", json={"Url": "http://x", "Timeout": -1}), 400, "Bad file format", 15
    )
    assert body["Details"] == "Unsigned integer value expected in field: Timeout"
    # a certificate without its key file is accepted; the key file is never shown
    certificate = tmp_path / "c.pem"
    certificate.write_text("x")
    shown = configuration({"Url": "http://x", "CertificateFile": str(certificate)})
    assert shown["CertificateFile"] == str(certificate)
    assert shown["CertificateKeyFile"] is None and shown["CertificateKeyPassword"] is None
    shown = configuration(
        {
            "Url": "http://x",
            "CertificateFile": str(certificate),
            "CertificateKeyFile": str(certificate),
        }
    )
    assert shown["CertificateKeyFile"] is None
    missing = {"Url": "http://x", "CertificateFile": str(certificate), "CertificateKeyFile": "/no"}
    body = assert_orthanc_error(client.put("/peers/p", json=missing), 404, "Inexistent file", 13)
    assert body["Details"] == "Cannot open key file: /no"
    # other fields are user-defined properties: kept as strings, shown
    shown = configuration({"Url": "http://x", "Site": "a", "Flag": True, "Off": False, "N": -5})
    assert (shown["Site"], shown["Flag"], shown["Off"], shown["N"]) == ("a", "1", "0", "-5")
    for value in (2.5, None, [], {"a": 1}):
        body = assert_orthanc_error(
            client.put("/peers/p", json={"Url": "http://x", "Other": value}),
            400,
            "Bad file format",
            15,
        )
        assert body["Details"] == (
            "User-defined properties associated with a Web service must be strings: Other"
        )
    for name in ("a b", "a.b", "a@b"):
        body = assert_orthanc_error(
            client.put(f"/peers/{name}", json=["http://x"]), 400, "Bad file format", 15
        )
        assert body["Details"].endswith(f"but found: {name}")
    assert client.get("/peers").json() == ["p"]


_ORACLE_PEERS: list[Any] = [
    ["http://127.0.0.1:9"],
    ["http://127.0.0.1:9", "alice", "secret"],
    ["http://x", "", ""],
    ["ftp://x"],
    ["http://x", "", "p"],
    {"Url": "http://x", "Password": "p"},
    {
        "Url": "http://127.0.0.1:9/orthanc",
        "Username": "bob",
        "Password": "pw",
        "HttpHeaders": {"X-B": "2", "X-A": "1"},
        "Timeout": 9,
        "Pkcs11": True,
        "Site": "a",
        "Flag": True,
    },
    {"Url": "http://x", "Other": 2.5},
    {"Url": "http://x", "Timeout": -1},
    {"Url": "http://x", "CertificateFile": "/etc/hostname"},
    {"Url": "http://x", "CertificateFile": "/etc/hostname", "CertificateKeyFile": "/nonexistent"},
]


def _peer_answer(client: httpx.Client, name: str, body: Any) -> tuple[int, Any]:
    status, answer = put_read_delete(client, f"/peers/{name}", body)
    return status, answer if status == 200 else answer["OrthancStatus"]


def test_put_peer_answers_as_the_oracle(server: RunningServer) -> None:
    name = "mods-test-peer"
    with reference_orthanc(cleanup=f"/peers/{name}") as oracle:
        for body in _ORACLE_PEERS:
            assert _peer_answer(server.client, name, body) == _peer_answer(oracle, name, body), body


def test_rest_changes_are_seen_by_every_worker(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(HttpWorkers=3, OrthancPeers={"conf": ["http://127.0.0.1:9/"]})
    client = server.client
    client.put("/peers/added", json=["http://127.0.0.1:11/"])
    client.delete("/peers/conf")
    for _ in range(12):  # new connections land on the workers in turn
        with httpx.Client(base_url=server.url) as fresh:
            assert fresh.get("/peers").json() == ["added"]


def test_rest_changes_are_forgotten_on_restart(tmp_path: Path) -> None:
    port = free_port()
    config = {"HttpPort": port, "OrthancPeers": {"conf": ["http://127.0.0.1:9/"]}}
    first = start_server(tmp_path / "s", **dict(config))
    try:
        first.client.put("/peers/added", json=["http://127.0.0.1:11/"])
        first.client.delete("/peers/conf")
        assert first.client.get("/peers").json() == ["added"]
    finally:
        first.stop()
    second = start_server(tmp_path / "s", **dict(config))
    try:
        assert second.client.get("/peers").json() == ["conf"]
    finally:
        second.stop()


def test_peers_in_database_survive_restart(tmp_path: Path) -> None:
    config = {
        "HttpPort": free_port(),
        "OrthancPeersInDatabase": True,
        "OrthancPeers": {"ignored": ["http://127.0.0.1:9/"]},
    }
    first = start_server(tmp_path / "s", **dict(config))
    try:
        assert first.client.get("/peers").json() == []
        first.client.put("/peers/kept", json={"Url": "http://127.0.0.1:12/", "Timeout": 3})
    finally:
        first.stop()
    second = start_server(tmp_path / "s", **dict(config))
    try:
        assert second.client.get("/peers").json() == ["kept"]
        assert second.client.get("/peers/kept/configuration").json()["Timeout"] == 3
    finally:
        second.stop()


# ---- talking to peers ----------------------------------------------------------------
def test_system_of_a_peer(server: RunningServer, target: RunningServer) -> None:
    server.client.put("/peers/good", json=_peer(target))
    server.client.put("/peers/bad", json=_peer(target, "wrong"))
    server.client.put("/peers/down", json=[f"http://127.0.0.1:{unused_port()}/"])
    answer = server.client.get("/peers/good/system")
    assert answer.status_code == 200
    assert answer.json()["Version"] == target.client.get("/system").json()["Version"]
    assert_orthanc_error(
        server.client.get("/peers/bad/system"),
        500,
        "This HTTP status is not allowed in a REST API",
        2005,
    )
    down = assert_orthanc_error(
        server.client.get("/peers/down/system"), 500, "Error in the network protocol", 9
    )
    assert down["Uri"] == "/peers/down/system"
    assert down["Details"] == "libCURL error: Couldn't connect to server"  # Orthanc's words
    # a peer answering 404 (a wrong URL path) is the same error as a 401 (1.10.1)
    nowhere = {**_peer(target), "Url": f"{target.url.rstrip('/')}/nothing/"}
    server.client.put("/peers/nowhere", json=nowhere)
    assert_orthanc_error(
        server.client.get("/peers/nowhere/system"),
        500,
        "This HTTP status is not allowed in a REST API",
        2005,
    )


def test_store_any_level_to_a_peer(server: RunningServer, target: RunningServer) -> None:
    a = upload(server.client, make_dicom(patient_id="PEER1"))
    b = upload(server.client, make_dicom(patient_id="PEER1", study_uid=None))
    c = upload(server.client, make_dicom(patient_id="PEER2"))
    server.client.put("/peers/target", json=_peer(target))

    answer = server.client.post("/peers/target/store", json=a["ID"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    size = len(server.client.get(f"/instances/{a['ID']}/file").content)
    assert body == {
        "Compress": False,
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 1,
        "ParentResources": [a["ID"]],
        # Orthanc's compact form: only a URL and credentials, the password blanked.
        "Peer": [target.url + "/", "alice", ""],
        "Size": str(size),
        "SizeMB": 0,
    }
    assert target.client.get("/instances").json() == [a["ID"]]

    # A patient (two studies) and a series, listed; the instance sent twice counts once.
    both = server.client.post(
        "/peers/target/store",
        json={"Resources": [a["ParentPatient"], c["ParentSeries"], c["ID"]], "Synchronous": True},
    ).json()
    assert both["InstancesCount"] == 3
    assert sorted(target.client.get("/instances").json()) == sorted([a["ID"], b["ID"], c["ID"]])
    # The files arrive intact.
    assert (
        target.client.get(f"/instances/{b['ID']}/file").content
        == server.client.get(f"/instances/{b['ID']}/file").content
    )


def test_store_errors(server: RunningServer, target: RunningServer) -> None:
    a = upload(server.client, make_dicom(patient_id="PEERERR"))
    server.client.put("/peers/bad", json=_peer(target, "wrong"))
    server.client.put("/peers/down", json=[f"http://127.0.0.1:{unused_port()}/"])
    server.client.put("/peers/good", json=_peer(target))

    unknown = "01234567-89abcdef-01234567-89abcdef-01234567"
    for peer in ("down", "good"):  # checked before the peer is contacted
        assert_orthanc_error(
            server.client.post(f"/peers/{peer}/store", json=[unknown]),
            404,
            "Unknown resource",
            17,
        )
    invalid = assert_orthanc_error(
        server.client.post("/peers/good/store", json="0123"), 400, "Bad file format", 15
    )
    assert "0123" in invalid["Details"]
    assert_orthanc_error(
        server.client.post("/peers/nope/store", json=[a["ID"]]), 404, "Unknown resource", 17
    )
    for peer in ("bad", "down"):
        assert_orthanc_error(
            server.client.post(f"/peers/{peer}/store", json=[a["ID"]]),
            500,
            "Error in the network protocol",
            9,
            "POST",
            f"/peers/{peer}/store",
        )
    # Asynchronous stores are jobs (tests/rest/test_jobs.py); a dead peer fails the job.
    job = server.client.post(
        "/peers/down/store", json={"Resources": [a["ID"]], "Asynchronous": True}
    ).json()["ID"]
    deadline = time.monotonic() + 20
    while server.client.get(f"/jobs/{job}").json()["State"] != "Failure":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert target.client.get("/instances").json() == []
    # The server keeps serving after the failures.
    assert server.client.get("/system").status_code == 200


def test_store_empty_list(server: RunningServer, recorder: Recorder) -> None:
    server.client.put("/peers/rec", json=[recorder.url])
    body = server.client.post("/peers/rec/store", json=[]).json()
    assert body["InstancesCount"] == 0 and body["Size"] == "0" and "ParentResources" not in body
    assert recorder.requests == []


def test_headers_credentials_and_compression_on_the_wire(
    server: RunningServer, recorder: Recorder
) -> None:
    a = upload(server.client, make_dicom(patient_id="WIRE"))
    data = server.client.get(f"/instances/{a['ID']}/file").content
    server.client.put(
        "/peers/rec",
        json={
            "Url": recorder.url,
            "Username": "u",
            "Password": "p",
            "HttpHeaders": {"X-Site": "north"},
        },
    )
    body = server.client.post(
        "/peers/rec/store", json={"Resources": [a["ID"]], "Compress": True}
    ).json()
    assert body["Compress"] is True
    assert body["Peer"] == {
        "HttpHeaders": {"X-Site": "north"},
        "Pkcs11": False,
        "Timeout": 0,
        "Url": recorder.url,
        "Username": "u",
    }
    assert body["Size"] == str(len(data))
    method, path, headers, sent = recorder.requests[-1]
    assert (method, path) == ("POST", "/instances")
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["x-site"] == "north"
    assert lower["authorization"] == httpx.BasicAuth("u", "p")._auth_header
    assert lower["content-encoding"] == "gzip"
    assert gzip.decompress(sent) == data

    server.client.post("/peers/rec/store", json=[a["ID"]])
    _, _, headers, sent = recorder.requests[-1]
    assert "content-encoding" not in {k.lower() for k in headers}
    assert sent == data


def test_store_straight(server: RunningServer, target: RunningServer) -> None:
    data = make_dicom(patient_id="STRAIGHT")
    server.client.put("/peers/target", json=_peer(target))
    answer = server.client.post("/peers/target/store-straight", content=data)
    assert answer.status_code == 200, answer.text
    assert answer.json()["Status"] == "Success"
    assert target.client.get("/instances").json() == [answer.json()["ID"]]
    assert server.client.get("/instances").json() == []  # not stored here

    server.client.put("/peers/bad", json=_peer(target, "wrong"))
    failed = assert_orthanc_error(
        server.client.post("/peers/bad/store-straight", content=data),
        500,
        "Error in the network protocol",
        9,
    )
    assert failed["Details"] == "Cannot send DICOM to remote peer: bad"


# ---- the reference Orthanc -----------------------------------------------------------
def test_store_to_the_oracle(server: RunningServer) -> None:
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    a = upload(server.client, make_dicom(patient_id="DHPEERORACLE"))
    try:
        server.client.put("/peers/oracle", json=[str(oracle.base_url)])
        system = server.client.get("/peers/oracle/system").json()
        assert system["Version"] == oracle.get("/system").json()["Version"]
        for compress in (False, True):  # Orthanc accepts gzip-encoded uploads
            answer = server.client.post(
                "/peers/oracle/store", json={"Resources": [a["ID"]], "Compress": compress}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["InstancesCount"] == 1
            assert oracle.get(f"/instances/{a['ID']}").status_code == 200
            oracle.delete(f"/instances/{a['ID']}")
        straight = server.client.post(
            "/peers/oracle/store-straight",
            content=server.client.get(f"/instances/{a['ID']}/file").content,
        ).json()
        assert straight["ID"] == a["ID"]
    finally:
        oracle.delete(f"/instances/{a['ID']}")
        oracle.close()


def test_the_oracle_stores_to_us(server: RunningServer) -> None:
    """Orthanc as the sender: its store answer has the shape ours has."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    name = f"dicomhub-test-{server.port}"
    data = make_dicom(patient_id="DHPEERORTHANC")
    instance = upload(oracle, data)["ID"]
    try:
        assert oracle.put(f"/peers/{name}", json=[server.url]).status_code == 200
        theirs = oracle.post(f"/peers/{name}/store", json=[instance])
        assert theirs.status_code == 200, theirs.text
        assert server.client.get("/instances").json() == [instance]
        upload(server.client, data)
        server.client.put("/peers/back", json=[f"http://127.0.0.1:{unused_port()}/"])
        server.client.put("/peers/back", json=[server.url])  # ourselves as a peer
        ours = server.client.post("/peers/back/store", json=[instance]).json()
        assert set(ours) == set(theirs.json())
        assert ours["Peer"] == [server.url + "/"]
        assert theirs.json()["Peer"] == [server.url + "/"]
        assert ours["Size"] == theirs.json()["Size"]
    finally:
        oracle.delete(f"/peers/{name}")
        oracle.delete(f"/instances/{instance}")
        oracle.close()


def test_unreachable_peer_system_like_the_oracle(server: RunningServer) -> None:
    """The same refused connection, declared in both: the same error body (Uri apart)."""
    reference = oracle_client()
    if reference is None:
        pytest.skip("the reference Orthanc does not answer")
    name = "HELPER-compat13-down"
    entry = [f"http://127.0.0.1:{unused_port()}/"]
    try:
        answers = []
        for client in (server.client, reference):
            assert client.put(f"/peers/{name}", json=entry).status_code == 200
            answers.append(client.get(f"/peers/{name}/system"))
        assert answers[0].status_code == answers[1].status_code == 500
        assert answers[0].json() == answers[1].json()
    finally:
        reference.delete(f"/peers/{name}")
        reference.close()
