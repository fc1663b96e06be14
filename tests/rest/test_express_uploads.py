"""``POST /instances`` with one small DICOM file is answered by the connection itself
(``rest/express.py`` ``ExpressUploads``) where the usual way would store it on the
event loop: the answer, what is stored, and everything around a request (access
rules, the HTTP filter, metrics, errors, keep-alive, pipelining) must be those of the
usual way.

The usual way is forced for a comparison by what the lane declines and the
application treats alike: a query string (``?x=1``), or a second connection open on
the same (only) worker. Each server runs one worker, so that a test's own connection
is the only one of its process, as the lane requires.
"""

from __future__ import annotations

import io
import re
import signal
import socket
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_checks import statistics, storage_files, upload, wait_until
from conftest import RunningServer
from dicom_factory import make_dataset, make_dicom, to_bytes
from prometheus_client.parser import text_string_to_metric_families

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
USUAL = {"x": "1"}  # a query string: the application ignores it, the lane declines it


def one_worker(make_server: Callable[..., RunningServer], **config: Any) -> RunningServer:
    server = make_server(HttpWorkers=1, **config)
    # Serving once it answers (it accepts connections earlier); this one then closes.
    users = config.get("RegisteredUsers") or {}
    auth = next(iter(users.items()), None)
    ready = httpx.get(f"{server.url}/system", headers={"Connection": "close"}, auth=auth)
    assert ready.status_code == 200
    return server


def _answer(response: httpx.Response) -> Answer:
    """Status, headers in order (but the date) and body: what the client receives."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"date"]
    return response.status_code, headers, response.content


def _both(client: httpx.Client, body: bytes, **kwargs: Any) -> tuple[Answer, Answer]:
    """The answer through the lane, then the usual way's, to the same upload."""
    express = _answer(client.post("/instances", content=body, **kwargs))
    usual = _answer(client.post("/instances", content=body, params=USUAL, **kwargs))
    return express, usual


def _post(body: bytes, target: str = "/instances", extra: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n"
        % (target.encode(), len(body), extra)
        + body
    )


GET_SYSTEM = b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n"

#: The lane's path, and one it declines but the application answers alike.
BOTH_WAYS = pytest.mark.parametrize("target", ["/instances", "/instances?x=1"])


def _read_answers(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` answers (status line and headers, body) read from ``sock``; each
    has a Content-Length."""
    data, answers = b"", []
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end]
            found = re.search(rb"(?im)^content-length: *(\d+)", head)
            assert found, head
            stop = end + 4 + int(found.group(1))
            if len(data) >= stop:
                answers.append((head, data[end + 4 : stop]))
                data = data[stop:]
                continue
        chunk = sock.recv(1 << 16)
        assert chunk, f"closed after {len(answers)} answers"
        data += chunk
    return answers


def _count_answers(sock: socket.socket, expected: int, wait: float = 2) -> int:
    """How many answers arrive (the last one a ``/system``) before the connection
    stays silent for ``wait`` seconds."""
    sock.settimeout(wait)
    data = b""
    try:
        while data.count(b"HTTP/1.1 ") < expected or not data.endswith(b"}"):
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data.count(b"HTTP/1.1 ")


def _nothing_stored(server: RunningServer) -> None:
    assert statistics(server.client)["CountInstances"] == 0
    assert storage_files(server) == []


# ---- answers --------------------------------------------------------------------------
def test_new_and_already_stored_uploads_are_answered_as_the_usual_way(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server, KeepAliveTimeout=30)
    client, data = server.client, make_dicom(patient_id="XUP-NEW")
    express = _answer(client.post("/instances", content=data))
    answer = upload(client, data)  # AlreadyStored now, through the lane
    assert answer["Status"] == "AlreadyStored"
    assert client.delete(f"/instances/{answer['ID']}").status_code == 200
    usual = _answer(client.post("/instances", content=data, params=USUAL))
    assert express == usual
    assert express[0] == 200 and b'"Status": "Success"' in express[2]
    assert [k for k, _ in express[1]] == [b"content-length", b"content-type"]
    express, usual = _both(client, data)
    assert express == usual and b'"Status": "AlreadyStored"' in express[2]
    # A second connection open on the worker: the application stores in a thread.
    with httpx.Client(base_url=server.url, limits=httpx.Limits(keepalive_expiry=20)) as other:
        assert other.get("/system").status_code == 200
        assert _answer(client.post("/instances", content=data)) == express


def test_the_stored_instance_is_described_as_by_the_usual_way(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server, AuthenticationEnabled=True, RegisteredUsers={"al": "pw"})
    client, data = server.client, make_dicom(patient_id="XUP-META")

    def stored(params: dict[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        instance = client.post("/instances", content=data, params=params).json()["ID"]
        metadata = client.get(f"/instances/{instance}/metadata", params={"expand": ""}).json()
        described = client.get(f"/instances/{instance}").json()
        assert client.delete(f"/instances/{instance}").status_code == 200
        del metadata["ReceptionDate"], described["FileUuid"]
        return metadata, described

    express = stored(None)
    assert express == stored(USUAL)
    metadata = express[0]
    assert metadata["Origin"] == "RestApi"
    assert metadata["RemoteIP"] == "127.0.0.1"
    assert metadata["HttpUsername"] == "al"
    assert metadata["TransferSyntax"] == "1.2.840.10008.1.2.1"


def test_credentials_are_checked_as_the_usual_way(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server, AuthenticationEnabled=True, RegisteredUsers={"al": "pw"})
    data = make_dicom(patient_id="XUP-AUTH")
    for auth in (None, ("al", "wrong"), ("bob", "pw")):
        with httpx.Client(base_url=server.url, auth=auth) as other:
            express, usual = _both(other, data)
        assert express == usual and express[0] == 401 and express[2] == b""
    _nothing_stored(server)
    assert upload(server.client, data)["Status"] == "Success"


def test_bad_uploads_are_refused_as_the_usual_way_and_leave_nothing(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server)
    data = make_dicom(patient_id="XUP-BAD")
    no_uid = make_dataset(patient_id="XUP-NOUID")
    del no_uid.SOPInstanceUID
    cases = {
        b"": 400,  # declined by the lane (no body): the usual way's answer
        data[:300]: 400,  # truncated in the header
        data[:-1]: 400,  # truncated in the pixel data
        b"not a DICOM file " * 30: 400,
        to_bytes(no_uid): 404,  # "Inexistent tag", as Orthanc
    }
    for body, status in cases.items():
        express, usual = _both(server.client, body)
        assert express == usual
        assert express[0] == status and b'"Uri": "/instances"' in express[2]
    _nothing_stored(server)
    assert upload(server.client, data)["Status"] == "Success"  # the connection still serves


def test_without_described_errors_the_status_comes_alone(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server, HttpDescribeErrors=False)
    express, usual = _both(server.client, b"not a DICOM file")
    assert express == usual
    assert express[0] == 400 and express[2] == b""
    _nothing_stored(server)


def test_a_zip_archive_goes_the_usual_way(make_server: Callable[..., RunningServer]) -> None:
    server = one_worker(make_server)
    client = server.client
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in ("a.dcm", "b.dcm"):
            zipped.writestr(name, make_dicom(patient_id="XUP-ZIP"))
    body = archive.getvalue()
    express = _answer(client.post("/instances", content=body))
    assert express[0] == 200
    assert statistics(client)["CountInstances"] == 2
    assert len(storage_files(server)) == 2
    for instance in client.get("/instances").json():
        assert client.delete(f"/instances/{instance}").status_code == 200
    assert express == _answer(client.post("/instances", content=body, params=USUAL))
    express, usual = _both(client, body)  # both already stored
    assert express == usual


def test_a_large_upload_goes_the_usual_way(make_server: Callable[..., RunningServer]) -> None:
    server = one_worker(make_server)
    data = make_dicom(patient_id="XUP-LARGE", rows=1024, columns=1024)
    assert len(data) > 1 << 20
    answer = upload(server.client, data)
    assert answer["Status"] == "Success"
    assert server.client.get(f"/instances/{answer['ID']}/file").content == data
    express, usual = _both(server.client, data)
    assert express == usual and b'"Status": "AlreadyStored"' in express[2]


# ---- the connection -------------------------------------------------------------------
def test_pipelined_uploads_are_answered_in_order(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server)
    first, second = make_dicom(patient_id="XUP-PIPE1"), make_dicom(patient_id="XUP-PIPE2")
    requests = _post(first) + _post(b"not DICOM") + _post(second) + _post(first) + GET_SYSTEM
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(requests)
        answers = _read_answers(sock, 5)
        # Then the connection still serves, through the lane.
        sock.sendall(_post(make_dicom(patient_id="XUP-PIPE3")))
        answers += _read_answers(sock, 1)
    statuses = [head.split(b"\r\n", 1)[0] for head, _ in answers]
    assert statuses == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request"] + [b"HTTP/1.1 200 OK"] * 4
    assert b'"Status": "Success"' in answers[0][1] and b'"Status": "Success"' in answers[2][1]
    assert b'"Status": "AlreadyStored"' in answers[3][1]
    assert b'"ApiVersion"' in answers[4][1]
    assert statistics(server.client)["CountInstances"] == 3
    assert len(storage_files(server)) == 3


def test_a_client_leaving_halfway_leaves_nothing(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server)
    data = make_dicom(patient_id="XUP-HALF")
    request = _post(data)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request[: len(request) - len(data) // 2])
        time.sleep(0.2)  # the server has the headers and half of the body
    _nothing_stored(server)
    assert upload(server.client, data)["Status"] == "Success"


# ---- the layers around a request ----------------------------------------------------
def test_the_http_filter_still_refuses(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    script = tmp_path / "no-posts.lua"
    script.write_text(
        "function IncomingHttpRequestFilter(method, uri, ip, username, headers)\n"
        "  return method ~= 'POST'\n"
        "end\n"
    )
    server = one_worker(make_server, LuaScripts=[str(script)])
    express, usual = _both(server.client, make_dicom(patient_id="XUP-LUA"))
    assert express == usual and express[0] == 403
    _nothing_stored(server)


METRIC = "dicomhub_http_request_duration_seconds_count"


def _posts_answered(client: httpx.Client) -> dict[str, float]:
    counts = {"2xx": 0.0, "4xx": 0.0}
    for family in text_string_to_metric_families(client.get("/tools/metrics-prometheus").text):
        for sample in family.samples:
            if sample.name == METRIC and sample.labels.get("method") == "POST":
                counts[sample.labels["status"]] = sample.value
    return counts


def test_uploads_are_counted_in_the_metrics(make_server: Callable[..., RunningServer]) -> None:
    client = one_worker(make_server).client
    before = _posts_answered(client)
    upload(client, make_dicom(patient_id="XUP-MET1"))
    upload(client, make_dicom(patient_id="XUP-MET2"))
    assert client.post("/instances", content=b"not DICOM").status_code == 400
    after = _posts_answered(client)
    assert after["2xx"] == before["2xx"] + 2
    assert after["4xx"] == before["4xx"] + 1


# ---- found in review: long pipelines, stopping, metrics, odd credentials, workers ----
def test_many_pipelined_uploads_behind_a_routed_request_are_all_answered(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server)
    count = 400  # queued behind the first request, each ~60 bytes: one read
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(GET_SYSTEM + _post(b"not DICOM") * count + GET_SYSTEM)
        assert _count_answers(sock, count + 2) == count + 2


def test_many_pipelined_downloads_behind_a_routed_request_are_all_answered(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server)
    instance = upload(server.client, make_dicom(patient_id="XUP-DL", rows=2, columns=2))["ID"]
    server.client.close()  # the raw connection below is the only one
    time.sleep(0.2)
    download = f"GET /instances/{instance}/file HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    count = 400
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(GET_SYSTEM + download * count + GET_SYSTEM)
        assert _count_answers(sock, count + 2) == count + 2


@BOTH_WAYS
def test_an_upload_received_while_stopping_is_answered_with_connection_close(
    make_server: Callable[..., RunningServer], target: str
) -> None:
    server = one_worker(make_server)
    server.client.close()
    request = _post(make_dicom(patient_id="XUP-STOP"), target)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request[:-100])
        time.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        wait_until(lambda: not _listening(server.port))  # stopping: waits for this one
        sock.sendall(request[-100:])
        ((head, body),) = _read_answers(sock, 1)
        assert sock.recv(10) == b""  # then it closes the connection
    assert head.startswith(b"HTTP/1.1 200") and b'"Success"' in body
    assert b"\r\nconnection: close" in head


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _active_requests(server: RunningServer) -> float:
    with httpx.Client(base_url=server.url) as other:
        text = other.get("/tools/metrics-prometheus").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "orthanc_rest_api_active_requests":
                return sample.value
    raise AssertionError("no orthanc_rest_api_active_requests")


@BOTH_WAYS
def test_an_upload_whose_body_is_coming_is_in_flight(
    make_server: Callable[..., RunningServer], target: str
) -> None:
    server = one_worker(make_server)
    server.client.close()
    request = _post(make_dicom(patient_id="XUP-GAUGE"), target)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request[:-100])
        time.sleep(0.2)
        in_flight = _active_requests(server)  # the upload and the scrape
        sock.sendall(request[-100:])
        assert _read_answers(sock, 1)[0][0].startswith(b"HTTP/1.1 200")
    assert in_flight == 2


def test_credentials_that_are_not_ascii_are_refused_both_ways(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server, AuthenticationEnabled=True, RegisteredUsers={"al": "pw"})
    server.client.close()
    data = make_dicom(patient_id="XUP-LATIN")
    heads = []
    for target in ("/instances", "/instances?x=1"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(_post(data, target, b"Authorization: Basic \xe9t\xe9\r\n"))
            heads.append(_read_answers(sock, 1)[0][0].split(b"\r\n", 1)[0])
    assert heads == [b"HTTP/1.1 401 Unauthorized"] * 2  # as Orthanc: credentials it cannot read


def test_several_workers_offer_the_upload_lane(tmp_path: Path) -> None:
    from dicomhub.rest.workers import PrivateChannel
    from dicomhub.server import build

    config = {
        "StorageDirectory": str(tmp_path / "storage"),
        "IndexDirectory": str(tmp_path / "index"),
    }
    archive, app = build(config)
    try:
        channel = PrivateChannel(app, app, str(tmp_path / "private.sock"))
        assert getattr(channel, "uploads", None) is app.uploads
    finally:
        archive.close()


@BOTH_WAYS
def test_a_client_that_waits_for_100_continue_gets_it_then_its_answer(
    make_server: Callable[..., RunningServer], target: str
) -> None:
    """curl asks for ``100 Continue`` before sending a body of more than 1 KiB."""
    server = one_worker(make_server)
    server.client.close()
    request = _post(make_dicom(patient_id="XUP-EXPECT"), target, b"Expect: 100-continue\r\n")
    head, _, body = request.partition(b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + b"\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        ((answer, content),) = _read_answers(sock, 1)
    assert answer.startswith(b"HTTP/1.1 200") and b'"Success"' in content


def _posts_counted(server: RunningServer) -> dict[str, float]:
    with httpx.Client(base_url=server.url) as other:
        return _posts_answered(other)


@BOTH_WAYS
def test_a_client_that_leaves_in_the_middle_of_its_body_is_no_server_error(
    make_server: Callable[..., RunningServer], target: str
) -> None:
    """Nobody reads an answer then: no traceback in the log, counted as the client's
    error (4xx) both ways, nothing stored, the server goes on."""
    server = one_worker(make_server)
    server.client.close()
    before = _posts_counted(server)
    request = _post(make_dicom(patient_id="XUP-LEFT"), target)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request[: len(request) // 2])
        time.sleep(0.2)
    wait_until(lambda: _posts_counted(server) != before)
    after = _posts_counted(server)
    assert after == {"2xx": before["2xx"], "4xx": before["4xx"] + 1}
    log = (server.folder / "server.log").read_text()
    assert "Traceback" not in log and "internal error" not in log
    with httpx.Client(base_url=server.url) as other:
        assert statistics(other)["CountInstances"] == 0
    assert storage_files(server) == []
