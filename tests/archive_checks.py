"""Checks shared by the archive tests: error bodies, leftovers, the reference Orthanc."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ORACLE_URL = os.environ.get("DICOMHUB_ORACLE_URL", "http://127.0.0.1:18042")
STAGING_FOLDERS = (".incoming", ".trash")


def storage_root(server: Any) -> Path:
    return Path(server.config["StorageDirectory"])


def storage_files(server: Any) -> list[Path]:
    """The published files of the storage area (staging and trash folders excluded)."""
    root = storage_root(server)
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        if Path(folder) == root:
            subfolders[:] = [d for d in subfolders if d not in STAGING_FOLDERS]
        found.extend(Path(folder) / f for f in files)
    return found


def staged_files(server: Any) -> list[Path]:
    root = storage_root(server)
    return [
        p for name in STAGING_FOLDERS if (root / name).is_dir() for p in (root / name).iterdir()
    ]


def file_path(server: Any, uuid: str) -> Path:
    return storage_root(server) / uuid[0:2] / uuid[2:4] / uuid


def statistics(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/statistics")
    assert response.status_code == 200, response.text
    return response.json()


def assert_consistent(server: Any) -> None:
    """Nothing half-done: staging areas empty, exactly one file per indexed instance."""
    assert staged_files(server) == []
    stats = statistics(server.client)
    files = storage_files(server)
    assert len(files) == stats["CountInstances"], files
    assert sum(f.stat().st_size for f in files) == int(stats["TotalDiskSize"])


def assert_orthanc_error(
    response: httpx.Response,
    status: int,
    message: str,
    code: int | None,
    method: str | None = None,
    uri: str | None = None,
) -> dict[str, Any]:
    """The response is Orthanc's JSON error body for ``status`` / ``message`` / ``code``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["HttpStatus"] == status
    assert body["Message"] == message
    assert isinstance(body["HttpError"], str) and body["HttpError"]
    if code is not None:
        assert body["OrthancStatus"] == code
        assert body["OrthancError"] == message
    if method is not None:
        assert body["Method"] == method
    if uri is not None:
        assert body["Uri"] == uri
    assert set(body) <= {
        "Details",
        "HttpError",
        "HttpStatus",
        "Message",
        "Method",
        "OrthancError",
        "OrthancStatus",
        "Uri",
    }
    return body


def upload(client: httpx.Client, data: bytes) -> dict[str, Any]:
    response = client.post("/instances", content=data)
    assert response.status_code == 200, response.text
    return response.json()


def oracle_client() -> httpx.Client | None:
    """A client of the reference Orthanc, or ``None`` when it does not answer."""
    client = httpx.Client(base_url=ORACLE_URL, timeout=30)
    try:
        if client.get("/system").status_code == 200:
            return client
    except httpx.HTTPError:
        pass
    client.close()
    return None


@contextlib.contextmanager
def reference_orthanc(cleanup: str) -> Iterator[httpx.Client]:
    """A client of the reference Orthanc (the test skipped when it does not answer);
    on the way out, ``cleanup`` is deleted there and the client closed."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    try:
        yield oracle
    finally:
        oracle.delete(cleanup)
        oracle.close()


class OracleUploads:
    """Uploads to the shared reference Orthanc, deleting afterwards only what we added."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.added: list[str] = []

    def upload(self, data: bytes, keep: bool = False) -> dict[str, Any]:
        """``keep``: well-known files (pydicom's) others may upload too stay there."""
        answer = upload(self.client, data)
        if answer["Status"] == "Success" and not keep:
            self.added.append(answer["ID"])
        return answer

    def cleanup(self) -> None:
        for instance in self.added:
            self.client.delete(f"/instances/{instance}")
        self.client.close()


def oracle_uploads() -> Iterator[OracleUploads | None]:
    """Generator body for a fixture (``yield from oracle_uploads()``)."""
    client = oracle_client()
    if client is None:
        yield None
        return
    uploads = OracleUploads(client)
    try:
        yield uploads
    finally:
        uploads.cleanup()


def put_read_delete(client: httpx.Client, route: str, body: Any) -> tuple[int, Any]:
    """PUTs ``body`` at ``route`` (``/modalities/NAME``, ``/peers/NAME``): answers the
    status and the error's body, or 200 and the configuration read back (then deleted)."""
    put = client.put(route, json=body)
    if put.status_code != 200:
        return put.status_code, put.json()
    configuration = client.get(f"{route}/configuration").json()
    client.delete(route)
    return 200, configuration


def outcome(response: httpx.Response) -> tuple[int, Any]:
    """What must agree between two servers' answers: the status, and the Orthanc error
    code or whether the body is empty."""
    if response.status_code >= 400 and response.content:
        return response.status_code, response.json().get("OrthancStatus")
    return response.status_code, response.content == b""


def replay_on_both(
    client: httpx.Client, reference: httpx.Client, requests: list[tuple[Any, ...]]
) -> Iterator[tuple[str, str, httpx.Response, httpx.Response]]:
    """Sends each ``(method, path, body[, headers])`` to dicomhub and to the reference
    Orthanc, checks that the outcomes agree, and yields ``(method, path, ours,
    theirs)`` for the caller's further checks."""
    for method, path, body, *headers in requests:
        extra = headers[0] if headers else {}
        ours = client.request(method, path, content=body, headers=extra)
        theirs = reference.request(method, path, content=body, headers=extra)
        assert outcome(ours) == outcome(theirs), (method, path)
        yield method, path, ours, theirs


def wait_until(predicate: Callable[[], Any], timeout: float = 15) -> Any:
    """Polls ``predicate`` until it answers something true (returned), for at most
    ``timeout`` seconds: for what a server does in the background (callbacks, jobs,
    workers starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def bytes_read(pid: int) -> int:
    """What process ``pid`` has read so far (``rchar``): a worker that served a
    request has read it from its connection."""
    with open(f"/proc/{pid}/io", encoding="ascii") as io:
        for line in io:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    return 0


def worker_pids(server: Any, timeout: float = 30) -> list[int]:
    """The worker processes, once all ``HttpWorkers`` of them are there (the port
    accepts connections as soon as the supervisor has bound it, before it forks)."""
    pid = server.process.pid
    expected = int(server.config.get("HttpWorkers") or 1)

    def children() -> list[int]:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
            found = [int(p) for p in listing.read().split()]
        return found if len(found) == expected else []

    return wait_until(children, timeout)


def fresh_client(
    url: str, timeout: float = 30, auth: tuple[str, str] | None = None
) -> httpx.Client:
    """A client on a new connection, which the supervisor may give to any worker."""
    return httpx.Client(base_url=url, timeout=timeout, auth=auth)
