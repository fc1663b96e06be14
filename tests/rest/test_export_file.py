"""``POST /instances/{id}/export``: writing a stored file onto the server's filesystem.

Refused (403, empty body) unless ``RestApiWriteToFileSystemEnabled``, as Orthanc
1.12 and Debian's patched 1.10.1 do; when enabled, the file written is the stored
one byte for byte, and an unwritable target is Orthanc's "Cannot write to file".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from archive_checks import assert_orthanc_error, upload
from conftest import RunningServer
from dicom_factory import make_dicom

UNKNOWN = "00000000-00000000-00000000-00000000-00000000"


def test_refused_by_default(server: RunningServer, tmp_path: Path) -> None:
    instance = upload(server.client, make_dicom())["ID"]
    target = tmp_path / "out.dcm"
    for public_id in (instance, UNKNOWN):
        answer = server.client.post(f"/instances/{public_id}/export", content=str(target))
        assert answer.status_code == 403 and answer.content == b""
    assert not target.exists()


def test_writes_the_stored_file(make_server: Callable[..., RunningServer], tmp_path: Path) -> None:
    server = make_server(RestApiWriteToFileSystemEnabled=True)
    data = make_dicom()
    instance = upload(server.client, data)["ID"]
    target = tmp_path / "out.dcm"
    answer = server.client.post(f"/instances/{instance}/export", content=str(target))
    assert answer.status_code == 200 and answer.json() == {}
    assert target.read_bytes() == server.client.get(f"/instances/{instance}/file").content

    for bad in ("", str(tmp_path), str(tmp_path / "missing-folder" / "x.dcm")):
        refused = server.client.post(f"/instances/{instance}/export", content=bad)
        assert_orthanc_error(refused, 500, "Cannot write to file", 14)
    missing = server.client.post(f"/instances/{UNKNOWN}/export", content=str(target))
    assert_orthanc_error(missing, 404, "Unknown resource", 17)
