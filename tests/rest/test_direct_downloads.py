"""``GET /instances/{id}/file`` without arguments is answered by the connection
itself (``rest/express.py``), or else before the routing (``rest/instances.py``
``DirectFileDownloads``): the answer must be the one the routed path gives, and
everything around a request (access rules, the HTTP filter, metrics, request logs,
errors) must still apply to it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
from archive_checks import assert_orthanc_error, file_path, upload
from conftest import RunningServer
from dicom_factory import make_dicom
from prometheus_client.parser import text_string_to_metric_families

GETS_ANSWERED = "dicomhub_http_request_duration_seconds_count"


def _comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date",)}
    return response.status_code, headers, response.content


def test_the_direct_answer_is_the_routed_one(client: httpx.Client) -> None:
    data = make_dicom(patient_id="DIRECT1", rows=32, columns=32)
    instance = upload(client, data)["ID"]
    direct = client.get(f"/instances/{instance}/file")
    uuid = client.get(f"/instances/{instance}").json()["FileUuid"]
    # An argument sends the request through the routing; this one changes nothing.
    routed = client.get(f"/instances/{instance}/file", params={"filename": f"{uuid}.dcm"})
    assert direct.content == data
    assert _comparable(direct) == _comparable(routed)
    # The path is normalized before: doubled and trailing slashes lead to the same file.
    for path in (f"/instances//{instance}/file/", f"/instances/{instance}//file"):
        assert _comparable(client.get(path)) == _comparable(direct)
    # HEAD is one of the WebDAV methods to Orthanc: a bare 404 outside a share.
    head = client.head(f"/instances/{instance}/file")
    assert head.status_code == 404 and head.content == b""


def test_what_is_not_a_stored_instance_goes_the_usual_way(client: httpx.Client) -> None:
    answer = upload(client, make_dicom(patient_id="DIRECT2"))
    for resource in (answer["ParentSeries"], "nope", "a/b"):
        assert_orthanc_error(client.get(f"/instances/{resource}/file"), 404, "Unknown resource", 17)
    assert client.post(f"/instances/{answer['ID']}/file").status_code == 405


def test_a_file_missing_from_the_storage_is_answered_as_the_routed_path_answers(
    server: RunningServer,
) -> None:
    client = server.client
    instance = upload(client, make_dicom(patient_id="DIRECT6"))["ID"]
    file_path(server, client.get(f"/instances/{instance}").json()["FileUuid"]).unlink()
    direct = client.get(f"/instances/{instance}/file")
    routed = client.get(f"/instances/{instance}/file", params={"filename": "x.dcm"})
    assert direct.status_code == routed.status_code >= 400
    assert direct.json() == routed.json()


def test_compressed_storage_is_sent_uncompressed(
    make_server: Callable[..., RunningServer],
) -> None:
    client = make_server(StorageCompression=True).client
    data = make_dicom(patient_id="DIRECT3", rows=32, columns=32)
    instance = upload(client, data)["ID"]
    assert client.get(f"/instances/{instance}/file").content == data


def _gets_answered(client: httpx.Client) -> float:
    text = client.get("/tools/metrics-prometheus").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == GETS_ANSWERED and sample.labels == {"method": "GET", "status": "2xx"}:
                return sample.value
    return 0.0


def test_downloads_are_counted_in_the_metrics(make_server: Callable[..., RunningServer]) -> None:
    client = make_server(HttpWorkers=1).client  # one process: one set of counters
    instance = upload(client, make_dicom(patient_id="DIRECT4"))["ID"]
    before = _gets_answered(client)
    for _ in range(3):
        assert client.get(f"/instances/{instance}/file").status_code == 200
    assert _gets_answered(client) == before + 4  # the three downloads and the first scrape


def test_access_rules_and_the_http_filter_still_apply(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    script = tmp_path / "no-files.lua"
    script.write_text(
        "function IncomingHttpRequestFilter(method, uri, ip, username, headers)\n"
        "  return not string.find(uri, '/file$')\n"
        "end\n"
    )
    server = make_server(
        LuaScripts=[str(script)],
        AuthenticationEnabled=True,
        RegisteredUsers={"alice": "secret"},
    )
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/instances/x/file").status_code == 401
    with httpx.Client(base_url=server.url, auth=("alice", "secret")) as alice:
        instance = upload(alice, make_dicom(patient_id="DIRECT5"))["ID"]
        assert alice.get(f"/instances/{instance}").status_code == 200
        assert alice.get(f"/instances/{instance}/file").status_code == 403


def test_credentials_are_checked_on_every_download(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(AuthenticationEnabled=True, RegisteredUsers={"alice": "secret"})
    data = make_dicom(patient_id="DIRECT7", rows=16, columns=16)
    with httpx.Client(base_url=server.url, auth=("alice", "secret")) as alice:
        instance = upload(alice, data)["ID"]
        for _ in range(3):
            assert alice.get(f"/instances/{instance}/file").content == data
    for auth in (None, ("alice", "wrong"), ("bob", "secret")):
        with httpx.Client(base_url=server.url, auth=auth) as other:
            answer = other.get(f"/instances/{instance}/file")
            assert answer.status_code == 401 and answer.content == b""


def test_downloads_are_logged_when_the_log_is_verbose(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(HttpWorkers=1)
    client = server.client
    instance = upload(client, make_dicom(patient_id="DIRECT8"))["ID"]
    line = f"GET /instances/{instance}/file"
    assert client.get(f"/instances/{instance}/file").status_code == 200
    assert client.put("/tools/log-level", content=b"verbose").status_code == 200
    assert client.get(f"/instances/{instance}/file").status_code == 200
    log = (server.folder / "server.log").read_text()
    assert log.count(line) == 1  # the verbose one only


def test_a_download_request_with_a_body_keeps_the_connection_in_step(
    server: RunningServer,
) -> None:
    data = make_dicom(patient_id="DIRECT9", rows=16, columns=16)
    instance = upload(server.client, data)["ID"]
    request = (
        f"GET /instances/{instance}/file HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        f"GET /system HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b'"ApiVersion"' not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(1 << 16)
            assert chunk, received[-200:]
            received += chunk
    first, rest = received.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200")
    assert rest[: len(data)] == data
    assert rest[len(data) :].startswith(b"HTTP/1.1 200")
