"""GET requests of the routes that run on the event loop (``/system``,
``/{level}/{id}``, ``/tags`` ...) are answered by the connection itself
(``rest/express.py`` ``ExpressReads``): the answers, and everything around a request
(access rules, the HTTP filter, metrics, errors, pipelining), must be those of the
usual way through the application's layers.

The usual way is forced for a comparison by what the lane declines and the
application treats alike: a GET with a body (the application ignores it; the lane
leaves bodies to the usual way).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_checks import upload
from conftest import RunningServer
from dicom_factory import make_dicom
from prometheus_client.parser import text_string_to_metric_families

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def one_worker(make_server: Callable[..., RunningServer], **config: Any) -> RunningServer:
    return make_server(HttpWorkers=1, **config)


def _answer(response: httpx.Response) -> Answer:
    """Status, headers in order (but the date) and body: what the client receives."""
    headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"date"]
    return response.status_code, headers, response.content


def _both(client: httpx.Client, path: str, **kwargs: Any) -> tuple[Answer, Answer]:
    """The answer through the lane, then the usual way's, to the same GET."""
    express = _answer(client.get(path, **kwargs))
    usual = _answer(client.request("GET", path, content=b"x", **kwargs))
    return express, usual


@pytest.fixture
def stored(make_server: Callable[..., RunningServer]) -> tuple[RunningServer, dict[str, Any]]:
    server = one_worker(make_server)
    answer = upload(server.client, make_dicom(patient_id="XRD-1", patient_name="Doe^Jane"))
    return server, answer


def test_reads_are_answered_as_the_usual_way(
    stored: tuple[RunningServer, dict[str, Any]],
) -> None:
    server, answer = stored
    instance, series = answer["ID"], answer["ParentSeries"]
    study, patient = answer["ParentStudy"], answer["ParentPatient"]
    paths = [
        "/system",
        "/statistics",
        "/patients",
        f"/patients/{patient}",
        f"/studies/{study}",
        f"/series/{series}",
        f"/instances/{instance}",
        f"/instances/{instance}/tags",
        f"/instances/{instance}/simplified-tags",
        f"/instances/{instance}/metadata?expand",
        f"/studies/{study}?full",
        f"/studies/{study}?short&requested-tags=0010,0010",
        "/studies?expand&limit=1",
        f"/studies/{study}/instances",
        f"/series/{series}/statistics",
        "/studies/unknown",  # an error answer
        "/instances?since=x",  # another one
        "/studies/unknown/instances",  # a route that is not inline
    ]
    for path in paths:
        express, usual = _both(server.client, path)
        assert express == usual, path
    assert _both(server.client, f"/studies/{study}")[0][0] == 200


def test_access_rules_and_the_http_filter_still_apply(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    script = tmp_path / "no-studies.lua"
    script.write_text(
        "function IncomingHttpRequestFilter(method, uri, ip, username, headers)\n"
        "  return uri ~= '/statistics' and username == 'al'\n"
        "end\n"
    )
    server = one_worker(
        make_server,
        AuthenticationEnabled=True,
        RegisteredUsers={"al": "pw", "bo": "pw"},
        LuaScripts=[str(script)],
    )
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/system").status_code == 401
    client = server.client  # al's
    assert client.get("/system").status_code == 200
    express, usual = _both(client, "/statistics")
    assert express == usual and express[0] == 403
    with httpx.Client(base_url=server.url, auth=("bo", "pw")) as other:
        assert other.get("/system").status_code == 403  # the filter saw the user


def _gets(client: httpx.Client) -> tuple[dict[str, float], float]:
    """GETs answered by status class, and the requests in flight, as scraped."""
    counts: dict[str, float] = {}
    active = -1.0
    for family in text_string_to_metric_families(client.get("/tools/metrics-prometheus").text):
        for sample in family.samples:
            if (
                sample.name == "dicomhub_http_request_duration_seconds_count"
                and sample.labels.get("method") == "GET"
            ):
                counts[sample.labels["status"]] = sample.value
            elif sample.name == "orthanc_rest_api_active_requests":
                active = sample.value
    return counts, active


def test_reads_are_counted_in_the_metrics(make_server: Callable[..., RunningServer]) -> None:
    client = one_worker(make_server).client
    before, active = _gets(client)
    assert active == 1  # the scrape itself, in flight while it is answered
    client.get("/system")
    client.get("/statistics")
    assert client.get("/patients/unknown").status_code == 404
    after, _ = _gets(client)
    assert after.get("2xx", 0) == before.get("2xx", 0) + 3  # with the first scrape
    assert after.get("4xx", 0) == before.get("4xx", 0) + 1


def test_many_pipelined_reads_are_all_answered(
    make_server: Callable[..., RunningServer],
) -> None:
    server = one_worker(make_server)
    server.client.close()
    count = 500
    request = b"GET /system HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request * count)
        sock.settimeout(3)
        data = b""
        try:
            while data.count(b"HTTP/1.1 200") < count:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
    assert data.count(b"HTTP/1.1 200") == count


def _scope(path: str, method: str = "GET", headers: list[Any] | None = None) -> dict[str, Any]:
    target, _, query = path.partition("?")
    return {
        "type": "http",
        "method": method,
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "headers": headers or [(b"host", b"x")],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8042),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
    }


def test_the_lane_takes_inline_reads_only(tmp_path: Path) -> None:
    from dicomhub.server import build

    config = {
        "StorageDirectory": str(tmp_path / "storage"),
        "IndexDirectory": str(tmp_path / "index"),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
    }
    archive, app = build(config)
    try:
        lane = app.reads
        status, headers, body = lane.answer(_scope("/system"))
        assert status == 200 and b'"ApiVersion"' in body
        assert (b"content-length", str(len(body)).encode()) in headers
        assert lane.answer(_scope("/studies/unknown"))[0] == 404
        assert lane.answer(_scope("/statistics?x=1"))[0] == 200
        for declined in (
            _scope("/instances/unknown/file"),  # a route that is not inline
            _scope("/tools/find", "POST"),
            _scope("/system", "HEAD"),
            _scope("//system"),  # the access layer normalizes it first
            _scope("/system", headers=[(b"content-length", b"1")]),  # a body to read
            _scope("/nowhere"),
        ):
            assert lane.answer(declined) is None, declined["path"]
        assert app.reads.metrics.active == 0  # every request counted was finished

        def broken(scope: Any) -> Any:
            raise ValueError("a route that cannot be matched")

        lane.inline.index.full_match = broken  # the connection leaves it to the usual way
        with pytest.raises(ValueError):
            lane.answer(_scope("/system"))
        assert app.reads.metrics.active == 0  # not counted twice in flight
    finally:
        archive.close()
