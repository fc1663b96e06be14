"""A server killed with SIGKILL comes back with its index and storage in step."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from typing import Any

import httpx
from archive_checks import assert_consistent, file_path, statistics, storage_root, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom


def restart(server: RunningServer) -> RunningServer:
    """Start again on the same folders (a new HTTP port: the old one may linger)."""
    config: dict[str, Any] = {
        k: v for k, v in server.config.items() if k not in ("HttpPort", "DicomPort")
    }
    again = start_server(server.folder, **config)
    again.client.get("/system")  # the port opens before recovery has run
    return again


def test_recovery_after_kill(make_server) -> None:
    server = make_server()
    originals: dict[str, bytes] = {}
    for n in range(4):
        data = make_dicom(patient_id=f"CRASH{n}")
        originals[upload(server.client, data)["ID"]] = data
    uuids = {i: server.client.get(f"/instances/{i}").json()["FileUuid"] for i in originals}
    server.kill()

    root = storage_root(server)
    trashed, staged = list(originals)[:2]
    # a delete that crashed before its commit: the file sits in the trash, still indexed
    os.replace(file_path(server, uuids[trashed]), root / ".trash" / uuids[trashed])
    # an upload that committed but was not published yet
    os.replace(file_path(server, uuids[staged]), root / ".incoming" / uuids[staged])
    # an upload that never committed, and a half-written staging file
    orphan = root / ".incoming" / str(uuid.uuid4())
    orphan.write_bytes(make_dicom(patient_id="ORPHAN"))
    partial = root / ".incoming" / "tmp-partial-write"
    partial.write_bytes(b"\x00" * 100)
    # a purge that crashed after its commit: a trashed file nobody references
    forgotten = root / ".trash" / str(uuid.uuid4())
    forgotten.write_bytes(b"old bytes")

    again = restart(server)
    try:
        assert not orphan.exists() and not partial.exists() and not forgotten.exists()
        assert file_path(again, uuids[trashed]).is_file()
        assert file_path(again, uuids[staged]).is_file()
        assert statistics(again.client)["CountInstances"] == len(originals)
        for instance, data in originals.items():
            response = again.client.get(f"/instances/{instance}/file")
            assert response.status_code == 200, instance
            assert response.content == data
        assert_consistent(again)
        # and the archive keeps working
        upload(again.client, make_dicom(patient_id="AFTER"))
        assert again.client.delete(f"/instances/{trashed}").status_code == 200
        assert_consistent(again)
    finally:
        again.stop()


def test_kill_during_uploads_and_deletes(make_server) -> None:
    server = make_server()
    keeper = server.client.post("/instances", content=make_dicom(patient_id="KEEPER")).json()
    stop = threading.Event()
    stored: list[str] = []

    def hammer(prefix: str) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answer = client.post(
                        "/instances", content=make_dicom(patient_id=f"{prefix}{n % 5}")
                    ).json()
                    stored.append(answer["ID"])
                    if n % 3 == 0:
                        client.delete(f"/patients/{answer['ParentPatient']}")
                except (httpx.HTTPError, ValueError, KeyError):
                    return

    threads = [threading.Thread(target=hammer, args=(f"K{t}",)) for t in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(stored) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)

    again = restart(server)
    try:
        assert_consistent(again)
        instances = again.client.get("/instances").json()
        for instance in instances:
            assert again.client.get(f"/instances/{instance}/file").status_code == 200
        assert keeper["ID"] in instances  # committed before the storm: must survive it
    finally:
        again.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
