"""Where an upload is stored: on the event loop when its connection is the only one
the process serves, in an upload thread otherwise (``rest/instances.py``).

Each test holds the index's write lock (the file lock the HTTP workers take turns
on), so that an upload stops inside its index transaction; ``/proc`` then shows which
of the server's threads waits in ``flock``. Nothing depends on timing: the tests wait
for the server to reach the lock, and release it themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from archive_checks import wait_until
from conftest import RunningServer, start_server
from dicom_factory import make_dicom

FLOCK_SYSCALL = 73  # x86-64; the tests read it from /proc/<pid>/task/<tid>/syscall

pytestmark = pytest.mark.skipif(
    os.uname().machine != "x86_64", reason="reads x86-64 system call numbers in /proc"
)


def one_worker(folder: Path, **config: object) -> RunningServer:
    """One worker, whose connections stay open between requests."""
    running = start_server(folder, HttpWorkers=1, KeepAliveTimeout=60, **config)
    # Ready (index open) once it answers; that connection closes with its answer.
    httpx.get(f"{running.url}/system", headers={"Connection": "close"}, timeout=30)
    return running


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A new server for each test, so that no connection is left over from another."""
    running = one_worker(tmp_path)
    yield running
    running.stop()


@contextlib.contextmanager
def index_locked(server: RunningServer) -> Iterator[None]:
    path = Path(server.config["IndexDirectory"]) / "dicomhub-index.lock"
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def threads_in_flock(pid: int) -> set[int]:
    waiting = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            call = Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()
            if call and call[0] == str(FLOCK_SYSCALL):
                waiting.add(int(tid))
    return waiting


class Upload(threading.Thread):
    """One upload over its own connection, answered once the lock is released."""

    def __init__(self, server: RunningServer, patient: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=server.url, timeout=60)
        self.body = make_dicom(patient_id=patient)
        self.response: httpx.Response | None = None

    def run(self) -> None:
        self.response = self.client.post("/instances", content=self.body)

    def finish(self) -> httpx.Response:
        self.join(timeout=60)
        self.client.close()
        assert self.response is not None
        return self.response


def test_an_upload_alone_on_its_process_is_stored_by_the_event_loop(server: RunningServer):
    pid = server.process.pid
    with index_locked(server):
        upload = Upload(server, "LOOP-AL")
        upload.start()
        wait_until(lambda: threads_in_flock(pid), timeout=20)
        # The event loop's thread (the process's main thread) is the one waiting.
        assert threads_in_flock(pid) == {pid}
    response = upload.finish()
    assert response.status_code == 200
    assert response.json()["Status"] == "Success"


def test_an_upload_waiting_on_the_index_does_not_hold_another_connection_up(
    server: RunningServer,
):
    pid = server.process.pid
    with httpx.Client(base_url=server.url, timeout=10) as other:
        assert other.get("/system").status_code == 200  # a second connection, kept open
        with index_locked(server):
            upload = Upload(server, "LOOP-SH")
            upload.start()
            wait_until(lambda: threads_in_flock(pid), timeout=20)
            assert pid not in threads_in_flock(pid)  # an upload thread waits, not the loop
            # The loop still serves the other connection (a blocked loop would leave
            # this request unanswered until the lock goes, and the client time out).
            assert other.get("/system").status_code == 200
            assert upload.is_alive()  # still waiting for the lock
        response = upload.finish()
        assert response.status_code == 200
        assert response.json()["Status"] == "Success"
        assert other.get(f"/instances/{response.json()['ID']}").status_code == 200


def test_an_upload_that_may_have_to_make_room_is_stored_in_a_thread(tmp_path: Path):
    """Recycling may delete a whole patient's files: never on the event loop."""
    server = one_worker(tmp_path, MaximumPatientCount=100)
    try:
        pid = server.process.pid
        with index_locked(server):
            upload = Upload(server, "LOOP-RC")
            upload.start()
            wait_until(lambda: threads_in_flock(pid), timeout=20)
            assert pid not in threads_in_flock(pid)
        assert upload.finish().status_code == 200
    finally:
        server.stop()
