"""Attachments at every level: reads, user files, protection of the DICOM file,
revisions, compression, MD5 verification and the storage they leave behind.

The expected answers were observed on the reference Orthanc (1.10.1) and checked
against the Orthanc 1.12 REST documentation (1.12 no longer lists "uuid" among
the operations of an attachment).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from archive_checks import (
    assert_orthanc_error,
    file_path,
    oracle_uploads,
    replay_on_both,
    staged_files,
    statistics,
    storage_files,
    upload,
)
from conftest import RunningServer
from dicom_factory import make_dicom

from rest.resource_checks import (
    LEVELS,
    PARENT,
    RESOURCE_TYPE,
    assert_bare,
    etag,
    last_change,
    md5,
    module_server,
    upload_on_both,
    url,
)

USER_CONTENT = {"pdf": [1030, "application/pdf"], "notes": 1031, "text": [1033, "text/plain"]}
OPERATIONS = [
    "compress",
    "compressed-data",
    "compressed-md5",
    "compressed-size",
    "data",
    "info",
    "is-compressed",
    "md5",
    "size",
    "uncompress",
    "verify-md5",
]
REVISION_MESSAGE = (
    "A bad revision number was provided, which might indicate conflict between multiple writers"
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from module_server(tmp_path_factory, "attachments", UserContentType=USER_CONTENT)


@pytest.fixture
def client(shared: RunningServer) -> httpx.Client:
    return shared.client


def new_instance(client: httpx.Client) -> tuple[dict[str, Any], bytes]:
    data = make_dicom(patient_id=f"AT{uuid.uuid4().hex[:10]}")
    return upload(client, data), data


def disk_size(client: httpx.Client) -> int:
    return int(statistics(client)["TotalDiskSize"])


def assert_storage_exact(server: RunningServer) -> None:
    """Every byte on disk is counted and every counted byte is on disk."""
    assert staged_files(server) == []
    on_disk = sum(f.stat().st_size for f in storage_files(server))
    assert on_disk == disk_size(server.client)


def info(client: httpx.Client, base: str, name: str) -> dict[str, Any]:
    response = client.get(f"{base}/attachments/{name}/info")
    assert response.status_code == 200, response.text
    return response.json()


# ---- the DICOM file of an instance ---------------------------------------------


def test_listing(client: httpx.Client) -> None:
    answer, _ = new_instance(client)
    base = url(answer, "instances")
    assert client.get(base + "/attachments").json() == ["dicom"]
    assert client.get(base + "/attachments", params={"full": ""}).json() == {"dicom": 1}
    for level in ("patients", "studies", "series"):
        assert client.get(url(answer, level) + "/attachments").json() == []
        assert client.get(url(answer, level) + "/attachments", params={"full": ""}).json() == {}


def test_dicom_attachment_reads(client: httpx.Client) -> None:
    answer, data = new_instance(client)
    base = url(answer, "instances")
    file_uuid = client.get(base).json()["FileUuid"]
    tag = etag(0, data)

    for name in ("dicom", "1"):
        ops = client.get(f"{base}/attachments/{name}")
        assert ops.json() == OPERATIONS and ops.headers["etag"] == tag
    assert info(client, base, "dicom") == {
        "CompressedMD5": md5(data),
        "CompressedSize": len(data),
        "ContentType": 1,
        "UncompressedMD5": md5(data),
        "UncompressedSize": len(data),
        "Uuid": file_uuid,
    }
    for field, expected in (
        ("size", str(len(data))),
        ("compressed-size", str(len(data))),
        ("md5", md5(data)),
        ("compressed-md5", md5(data)),
        ("is-compressed", "0"),
    ):
        response = client.get(f"{base}/attachments/dicom/{field}")
        assert response.status_code == 200 and response.text == expected, field
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["etag"] == tag

    got = client.get(base + "/attachments/dicom/data")
    assert got.content == data
    assert got.headers["content-type"] == "application/dicom"
    assert got.headers["content-disposition"] == f'filename="{file_uuid}.dcm"'
    assert got.headers["etag"] == tag
    named = client.get(base + "/attachments/dicom/data", params={"filename": "scan.dcm"})
    assert named.headers["content-disposition"] == 'filename="scan.dcm"'
    accented = client.get(base + "/attachments/dicom/data", params={"filename": "scän.dcm"})
    assert accented.headers["content-disposition"] == (
        "filename=\"sc_n.dcm\"; filename*=UTF-8''sc%C3%A4n.dcm"
    )
    raw = client.get(base + "/attachments/dicom/compressed-data")
    assert raw.content == data and raw.headers["content-type"] == "application/octet-stream"
    assert "content-disposition" not in raw.headers

    verified = client.post(base + "/attachments/dicom/verify-md5")
    assert verified.status_code == 200 and verified.json() == {}


def test_bad_download_filename(client: httpx.Client) -> None:
    base = url(new_instance(client)[0], "instances")
    response = client.get(base + "/attachments/dicom/data", params={"filename": 'a"b'})
    assert_orthanc_error(response, 400, "Bad request", 8, "GET")


def test_if_none_match(client: httpx.Client) -> None:
    answer, data = new_instance(client)
    base = url(answer, "instances")
    for suffix in ("", "/info", "/size", "/data", "/compressed-data"):
        cached = client.get(
            f"{base}/attachments/dicom{suffix}", headers={"If-None-Match": etag(0, data)}
        )
        assert cached.status_code == 304 and cached.content == b"", suffix
        assert cached.headers["etag"] == etag(0, data)
    fresh = client.get(base + "/attachments/dicom/data", headers={"If-None-Match": etag(1, data)})
    assert fresh.status_code == 200 and fresh.content == data
    bad = client.get(base + "/attachments/dicom/size", headers={"If-None-Match": "nonsense"})
    assert_orthanc_error(bad, 400, "Parameter out of range", 3, "GET")


def test_dicom_attachment_is_protected(client: httpx.Client) -> None:
    answer, data = new_instance(client)
    base = url(answer, "instances")
    before = info(client, base, "dicom")
    change = last_change(client)
    for name in ("dicom", "1"):
        assert_bare(client.put(f"{base}/attachments/{name}", content=b"forged"), 403)
        assert_bare(client.delete(f"{base}/attachments/{name}"), 403)
    for name in ("dicom-as-json", "dicom-until-pixel-data", "1023", "0", "70000"):
        assert_bare(client.put(f"{base}/attachments/{name}", content=b"forged"), 403)
    assert_bare(client.delete(base + "/attachments/dicom-until-pixel-data"), 403)
    # the DICOM-as-JSON cache may be deleted (there is none here)
    response = client.delete(base + "/attachments/dicom-as-json")
    assert_orthanc_error(response, 404, "Unknown resource", 17, "DELETE")
    assert info(client, base, "dicom") == before
    assert client.get(base + "/file").content == data
    assert client.get(base + "/attachments").json() == ["dicom"]
    assert last_change(client) == change


def test_unknown_names_resources_and_attachments(shared: RunningServer) -> None:
    client = shared.client
    answer, _ = new_instance(client)
    base = url(answer, "instances")
    for method, suffix in (("GET", ""), ("GET", "/data"), ("PUT", ""), ("DELETE", "")):
        response = client.request(method, f"{base}/attachments/Nope{suffix}", content=b"x")
        assert_orthanc_error(response, 404, "Accessing an inexistent item", 7, method)
        response = client.request(
            method, f"/instances/nope/attachments/notes{suffix}", content=b"x"
        )
        assert_orthanc_error(response, 404, "Unknown resource", 17, method)
    for path in ("/instances/nope/attachments", f"/patients/{answer['ID']}/attachments"):
        assert_orthanc_error(client.get(path), 404, "Unknown resource", 17, "GET", path)
    put = client.put(f"/studies/{answer['ID']}/attachments/notes", content=b"x")
    assert_orthanc_error(put, 404, "Unknown resource", 17, "PUT")

    for method, suffix in (
        ("GET", ""),
        ("GET", "/info"),
        ("GET", "/data"),
        ("GET", "/md5"),
        ("DELETE", ""),
        ("POST", "/compress"),
        ("POST", "/uncompress"),
    ):
        response = client.request(method, f"{base}/attachments/notes{suffix}")
        assert_orthanc_error(response, 404, "Unknown resource", 17, method)
    # Orthanc answers a bare 400 to verify-md5 on a missing attachment
    assert_bare(client.post(base + "/attachments/notes/verify-md5"), 400)
    assert_orthanc_error(
        client.post("/instances/nope/attachments/notes/verify-md5"), 404, "Unknown resource", 17
    )
    assert client.get(base + "/attachments").json() == ["dicom"]
    assert staged_files(shared) == []


@pytest.mark.parametrize("name", ["%201", "1%20", "1%0A", "2147483648", "-2147483649"])
def test_badly_written_number_is_a_bad_parameter(client: httpx.Client, name: str) -> None:
    """As Orthanc reads attachment names: digits with spaces around, or beyond 32 bits."""
    answer, _ = new_instance(client)
    base = url(answer, "instances")
    for method, suffix in (("GET", "/size"), ("PUT", ""), ("DELETE", ""), ("POST", "/compress")):
        response = client.request(method, f"{base}/attachments/{name}{suffix}", content=b"x")
        assert_orthanc_error(response, 400, "Bad type for a parameter", 5, method)
    assert client.get(base + "/attachments").json() == ["dicom"]


def test_attachment_numbers_as_orthanc_reads_them(client: httpx.Client) -> None:
    answer, data = new_instance(client)
    base = url(answer, "instances")
    assert client.get(base + "/attachments/01/size").text == str(len(data))
    for method, suffix in (("GET", "/size"), ("PUT", ""), ("DELETE", "")):
        response = client.request(method, f"{base}/attachments/+1{suffix}", content=b"x")
        assert_orthanc_error(response, 404, "Accessing an inexistent item", 7, method)
    for number in ("0", "-1", "2147483647"):  # numbers, without such an attachment
        response = client.get(f"{base}/attachments/{number}/info")
        assert_orthanc_error(response, 404, "Unknown resource", 17, "GET")
    assert client.get(base + "/attachments").json() == ["dicom"]


# ---- user attachments ----------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_user_attachment_lifecycle(shared: RunningServer, level: str) -> None:
    client = shared.client
    answer, _ = new_instance(client)
    base = url(answer, level)
    size = disk_size(client)
    body = b"%PDF-1.4 first version"

    put = client.put(base + "/attachments/pdf", content=body)
    assert put.status_code == 200 and put.json() == {}
    assert put.headers["etag"] == etag(0, body)
    change = last_change(client)
    assert change is not None and change["ChangeType"] == "UpdatedAttachment"
    assert change["ResourceType"] == RESOURCE_TYPE[level] and change["ID"] == answer[PARENT[level]]
    assert disk_size(client) == size + len(body)

    names = client.get(base + "/attachments").json()
    assert "pdf" in names
    assert client.get(base + "/attachments", params={"full": ""}).json()["pdf"] == 1030
    first = info(client, base, "pdf")
    assert first["ContentType"] == 1030 and first["UncompressedSize"] == len(body)
    assert file_path(shared, first["Uuid"]).read_bytes() == body

    got = client.get(base + "/attachments/1030/data")
    assert got.content == body
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == f'filename="{first["Uuid"]}"'
    assert got.headers["etag"] == etag(0, body)

    # replacing swaps the file and bumps the revision
    second_body = b"%PDF-1.4 second, longer version"
    again = client.put(base + "/attachments/pdf", content=second_body)
    assert again.headers["etag"] == etag(1, second_body)
    second = info(client, base, "pdf")
    assert second["Uuid"] != first["Uuid"]
    assert not file_path(shared, first["Uuid"]).exists()
    assert file_path(shared, second["Uuid"]).read_bytes() == second_body
    assert client.get(base + "/attachments/pdf/data").content == second_body
    assert disk_size(client) == size + len(second_body)

    deleted = client.delete(base + "/attachments/pdf")
    assert deleted.status_code == 200 and deleted.content == b""
    assert not file_path(shared, second["Uuid"]).exists()
    assert disk_size(client) == size
    assert "pdf" not in client.get(base + "/attachments").json()
    assert last_change(client)["ChangeType"] == "UpdatedAttachment"  # type: ignore[index]
    assert_storage_exact(shared)


def test_unnamed_and_numbered_user_attachments(client: httpx.Client) -> None:
    base = url(new_instance(client)[0], "series")
    client.put(base + "/attachments/2000", content=b"numbered")
    client.put(base + "/attachments/notes", content=b"named")
    assert client.get(base + "/attachments").json() == ["notes", "2000"]
    assert client.get(base + "/attachments", params={"full": ""}).json() == {
        "notes": 1031,
        "2000": 2000,
    }
    got = client.get(base + "/attachments/2000/data")
    assert got.content == b"numbered"
    assert got.headers["content-type"] == "application/octet-stream"
    assert client.get(base + "/attachments/1031/data").content == b"named"


def test_empty_attachment(client: httpx.Client) -> None:
    base = url(new_instance(client)[0], "studies")
    assert client.put(base + "/attachments/notes", content=b"").status_code == 200
    assert client.get(base + "/attachments/notes/size").text == "0"
    assert client.get(base + "/attachments/notes/data").content == b""


def test_if_match_guards_attachments(shared: RunningServer) -> None:
    client = shared.client
    base = url(new_instance(client)[0], "patients")
    current = client.put(base + "/attachments/notes", content=b"one").headers["etag"]
    before = info(client, base, "notes")
    size = disk_size(client)
    seq = last_change(client)["Seq"]  # type: ignore[index]

    for stale in (etag(4, b"one"), etag(0, b"two")):
        for method in ("PUT", "DELETE"):
            response = client.request(
                method, base + "/attachments/notes", content=b"two", headers={"If-Match": stale}
            )
            assert_orthanc_error(response, 409, REVISION_MESSAGE, 43, method)
    for method in ("PUT", "DELETE"):
        response = client.request(
            method, base + "/attachments/notes", content=b"two", headers={"If-Match": "nonsense"}
        )
        assert_orthanc_error(response, 400, "Parameter out of range", 3, method)
    assert info(client, base, "notes") == before
    assert client.get(base + "/attachments/notes/data").content == b"one"
    assert disk_size(client) == size
    assert last_change(client)["Seq"] == seq  # type: ignore[index]
    assert staged_files(shared) == []

    ok = client.put(base + "/attachments/notes", content=b"two", headers={"If-Match": current})
    assert ok.headers["etag"] == etag(1, b"two")
    gone = client.delete(base + "/attachments/notes", headers={"If-Match": etag(1, b"two")})
    assert gone.status_code == 200


def test_check_revisions(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(CheckRevisions=True, UserContentType=USER_CONTENT)
    client = server.client
    base = url(new_instance(client)[0], "instances")
    created = client.put(base + "/attachments/notes", content=b"one")
    assert created.status_code == 200
    blind = client.put(base + "/attachments/notes", content=b"two")
    assert_orthanc_error(blind, 409, REVISION_MESSAGE, 43, "PUT")
    blind = client.delete(base + "/attachments/notes")
    assert_orthanc_error(blind, 409, REVISION_MESSAGE, 43, "DELETE")
    assert client.get(base + "/attachments/notes/data").content == b"one"
    assert staged_files(server) == []
    deleted = client.delete(
        base + "/attachments/notes", headers={"If-Match": created.headers["etag"]}
    )
    assert deleted.status_code == 200


# ---- compression and verification ---------------------------------------------


def test_compress_and_uncompress_user_attachment(shared: RunningServer) -> None:
    client = shared.client
    answer, _ = new_instance(client)
    base = url(answer, "studies")
    body = b"compressible " * 100
    client.put(base + "/attachments/notes", content=body)
    plain = info(client, base, "notes")
    size = disk_size(client)

    assert client.post(base + "/attachments/notes/compress").json() == {}
    packed = info(client, base, "notes")
    assert client.get(base + "/attachments/notes/is-compressed").text == "1"
    assert packed["UncompressedMD5"] == md5(body) and packed["UncompressedSize"] == len(body)
    assert packed["CompressedSize"] < len(body)
    stored = client.get(base + "/attachments/notes/compressed-data").content
    assert len(stored) == packed["CompressedSize"] and md5(stored) == packed["CompressedMD5"]
    assert struct.unpack("<Q", stored[:8])[0] == len(body)
    assert zlib.decompress(stored[8:]) == body
    assert client.get(base + "/attachments/notes/data").content == body
    assert client.post(base + "/attachments/notes/verify-md5").status_code == 200
    assert client.get(base + "/attachments/notes").headers["etag"] == etag(1, body)
    assert disk_size(client) == size - len(body) + packed["CompressedSize"]
    assert not file_path(shared, plain["Uuid"]).exists()
    change = last_change(client)
    assert change["ChangeType"] == "UpdatedAttachment" and change["ID"] == answer["ParentStudy"]  # type: ignore[index]

    # compressing again changes nothing
    assert client.post(base + "/attachments/notes/compress").status_code == 200
    assert info(client, base, "notes") == packed

    assert client.post(base + "/attachments/notes/uncompress").json() == {}
    unpacked = info(client, base, "notes")
    assert client.get(base + "/attachments/notes/is-compressed").text == "0"
    assert unpacked["CompressedSize"] == len(body) and unpacked["CompressedMD5"] == md5(body)
    assert client.get(base + "/attachments/notes/compressed-data").content == body
    assert client.get(base + "/attachments/notes").headers["etag"] == etag(2, body)
    assert disk_size(client) == size
    assert_storage_exact(shared)


def test_configured_mime_type_is_sent_as_is(client: httpx.Client) -> None:
    """Orthanc sends a text/* MIME type of ``UserContentType`` without adding a
    charset, the attachment compressed or not; the stored bytes are octet-stream."""
    answer, _ = new_instance(client)
    base = url(answer, "series")
    body = "é text " * 50
    assert client.put(base + "/attachments/text", content=body.encode("utf-8")).status_code == 200
    for operation in ("compress", "uncompress", "compress"):
        response = client.get(base + "/attachments/text/data")
        assert response.headers["content-type"] == "text/plain"
        assert response.content == body.encode("utf-8")
        stored = client.get(base + "/attachments/text/compressed-data")
        assert stored.headers["content-type"] == "application/octet-stream"
        assert client.post(f"{base}/attachments/text/{operation}").status_code == 200


def test_compress_dicom_attachment(shared: RunningServer) -> None:
    client = shared.client
    answer, data = new_instance(client)
    base = url(answer, "instances")
    change = last_change(client)
    assert client.post(base + "/attachments/dicom/compress").status_code == 200
    assert client.get(base + "/attachments/dicom/is-compressed").text == "1"
    assert client.get(base + "/file").content == data
    assert client.get(base + "/attachments/dicom/data").content == data
    assert client.get(base).json()["FileUuid"] == info(client, base, "dicom")["Uuid"]
    assert last_change(client) == change  # system attachments log no change
    assert client.post(base + "/attachments/dicom/uncompress").status_code == 200
    assert client.get(base + "/file").content == data


def test_verify_md5_detects_corruption(shared: RunningServer) -> None:
    client = shared.client
    base = url(new_instance(client)[0], "series")
    client.put(base + "/attachments/notes", content=b"precious data")
    stored = file_path(shared, info(client, base, "notes")["Uuid"])
    assert client.post(base + "/attachments/notes/verify-md5").status_code == 200
    stored.write_bytes(b"precious dat4")
    assert_bare(client.post(base + "/attachments/notes/verify-md5"), 400)


def test_storage_compression(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(StorageCompression=True, UserContentType=USER_CONTENT)
    client = server.client
    base = url(new_instance(client)[0], "patients")
    body = b"abc" * 1000
    put = client.put(base + "/attachments/notes", content=body)
    assert put.headers["etag"] == etag(0, body)
    assert client.get(base + "/attachments/notes/is-compressed").text == "1"
    described = info(client, base, "notes")
    assert described["CompressedSize"] < len(body)
    assert client.get(base + "/attachments/notes/data").content == body
    assert client.post(base + "/attachments/notes/verify-md5").status_code == 200


def test_deleting_the_resource_removes_its_attachments(shared: RunningServer) -> None:
    client = shared.client
    answer, data = new_instance(client)
    size = disk_size(client)
    client.put(url(answer, "studies") + "/attachments/notes", content=b"bye")
    stored = file_path(shared, info(client, url(answer, "studies"), "notes")["Uuid"])
    assert stored.exists()
    assert client.delete(url(answer, "patients")).status_code == 200
    assert not stored.exists()
    assert disk_size(client) == size - len(data)
    assert_storage_exact(shared)


# ---- differential check against the reference Orthanc ---------------------------


@pytest.fixture
def oracle() -> Iterator[Any]:
    yield from oracle_uploads()


def test_same_answers_as_orthanc(client: httpx.Client, oracle: Any) -> None:
    ours = upload_on_both(client, oracle, "ATDIFF")
    instance, study = f"/instances/{ours['ID']}", f"/studies/{ours['ParentStudy']}"
    requests = [
        ("GET", f"{instance}/attachments", None),
        ("GET", f"{instance}/attachments?full", None),
        ("GET", f"{study}/attachments", None),
        ("GET", f"{instance}/attachments/dicom/size", None),
        ("GET", f"{instance}/attachments/dicom/md5", None),
        ("GET", f"{instance}/attachments/dicom/is-compressed", None),
        ("GET", f"{instance}/attachments/dicom/data", None),
        ("POST", f"{instance}/attachments/dicom/verify-md5", None),
        ("GET", f"{instance}/attachments/dicom-as-json", None),
        ("GET", f"{instance}/attachments/1024", None),
        ("GET", f"{instance}/attachments/Nope", None),
        ("GET", f"{instance}/attachments/+1", None),
        ("GET", f"{instance}/attachments/01/size", None),
        ("GET", f"{instance}/attachments/%201/size", None),
        ("PUT", f"{instance}/attachments/2147483648", b"x"),
        ("DELETE", f"{instance}/attachments/1025%20", None),
        ("GET", "/instances/nope/attachments", None),
        ("PUT", f"{instance}/attachments/dicom", b"x"),
        ("DELETE", f"{instance}/attachments/dicom", None),
        ("PUT", f"{instance}/attachments/dicom-as-json", b"x"),
        ("DELETE", f"{instance}/attachments/dicom-as-json", None),
        ("DELETE", f"{study}/attachments/1025", None),
        ("PUT", f"{study}/attachments/1025", b"hello world"),
        ("GET", f"{study}/attachments?full", None),
        ("GET", f"{study}/attachments/1025/data", None),
        ("GET", f"{study}/attachments/1025/compressed-size", None),
        ("POST", f"{study}/attachments/1025/compress", None),
        ("GET", f"{study}/attachments/1025/is-compressed", None),
        ("GET", f"{study}/attachments/1025/compressed-size", None),
        ("GET", f"{study}/attachments/1025/data", None),
        ("POST", f"{study}/attachments/1025/verify-md5", None),
        ("POST", f"{study}/attachments/1025/uncompress", None),
        ("PUT", f"{study}/attachments/1025", b"v", {"If-Match": etag(9, b"x")}),
        ("PUT", f"{study}/attachments/1025", b"v", {"If-Match": "garbage"}),
        ("PUT", f"{study}/attachments/1025", b"v", {"If-Match": "1" * 20 + "-x"}),
        ("DELETE", f"{study}/attachments/1025", None),
        ("POST", f"{study}/attachments/1025/verify-md5", None),
        ("POST", f"{study}/attachments/1025/compress", None),
        ("GET", f"{study}/attachments/1025/data", None),
    ]
    for method, path, mine, reference in replay_on_both(client, oracle.client, requests):
        if reference.status_code == 200 and method == "GET" and not path.endswith("/data"):
            assert mine.content.split() == reference.content.split() or (
                mine.json() == reference.json()
            ), (method, path)
        if reference.status_code == 200 and path.endswith("/data"):
            assert mine.content == reference.content
            assert mine.headers["content-type"] == reference.headers["content-type"]


def test_concurrent_replacements_keep_storage_exact(shared: RunningServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = shared.client
    base = url(new_instance(client)[0], "studies")
    size = disk_size(client)
    bodies = [f"version {i} ".encode() * (i + 1) for i in range(24)]

    def put(body: bytes) -> int:
        with httpx.Client(base_url=shared.url, timeout=30) as own:
            return own.put(base + "/attachments/notes", content=body).status_code

    def read(_: int) -> bytes:
        with httpx.Client(base_url=shared.url, timeout=30) as own:
            response = own.get(base + "/attachments/notes/data")
            return response.content if response.status_code == 200 else b""

    with ThreadPoolExecutor(8) as pool:
        writes = pool.map(put, bodies)
        reads = list(pool.map(read, range(24)))
        assert list(writes) == [200] * len(bodies)
    assert all(r == b"" or r in bodies for r in reads)
    final = info(client, base, "notes")
    content = client.get(base + "/attachments/notes/data").content
    assert content in bodies
    assert client.get(base + "/attachments/notes").headers["etag"] == etag(len(bodies) - 1, content)
    assert file_path(shared, final["Uuid"]).read_bytes() == content
    assert disk_size(client) == size + len(content)
    assert_storage_exact(shared)


def test_resource_statistics_count_attachments_at_every_level(client: httpx.Client) -> None:
    """As Orthanc: a patient's, study's or series' sizes include the attachments stored
    on it and on the levels between it and its instances, not only the instances'."""
    answer, data = new_instance(client)
    on_patient, on_series = b"p" * 500, b"s" * 300
    assert client.put(f"{url(answer, 'patients')}/attachments/1025", content=on_patient).is_success
    assert client.put(f"{url(answer, 'series')}/attachments/1025", content=on_series).is_success
    expected = {
        "patients": len(data) + len(on_patient) + len(on_series),
        "studies": len(data) + len(on_series),
        "series": len(data) + len(on_series),
        "instances": len(data),
    }
    for level, size in expected.items():
        stats = client.get(f"{url(answer, level)}/statistics").json()
        assert int(stats["DiskSize"]) == size, level
        assert int(stats["UncompressedSize"]) == size, level
        assert int(stats["DicomDiskSize"]) == len(data), level


def _missing_attachment_requests(
    instance: str, patient: str
) -> list[tuple[str, str, bytes | None]]:
    requests: list[tuple[str, str, bytes | None]] = []
    for base, name in (
        (f"/instances/{instance}", "1030"),
        (f"/instances/{instance}", "nope"),
        (f"/patients/{patient}", "dicom"),
    ):
        for sub in ("", "/data", "/compressed-data", "/size", "/md5", "/info", "/is-compressed"):
            requests.append(("GET", f"{base}/attachments/{name}{sub}", None))
        for sub in ("/compress", "/uncompress"):
            requests.append(("POST", f"{base}/attachments/{name}{sub}", b""))
        if name != "dicom":  # (a bare 403: the DICOM file is never deleted alone)
            requests.append(("DELETE", f"{base}/attachments/{name}", None))
    return requests


def test_missing_attachment_is_a_404_without_details(client: httpx.Client) -> None:
    """As Orthanc: a missing attachment is 404 Unknown resource, an unknown name 404
    Accessing an inexistent item, neither with Details."""
    answer = upload(client, make_dicom(patient_id="ATT-MISSING"))
    for method, path, body in _missing_attachment_requests(answer["ID"], answer["ParentPatient"]):
        response = client.request(method, path, content=body)
        expected = (
            ("Accessing an inexistent item", 7) if "/nope" in path else ("Unknown resource", 17)
        )
        error = assert_orthanc_error(response, 404, *expected)
        assert "Details" not in error, (method, path)


def test_missing_attachment_like_the_oracle(client: httpx.Client, oracle) -> None:  # type: ignore[no-untyped-def]
    answer = upload_on_both(client, oracle, "HELPER-compat13-att")
    requests = _missing_attachment_requests(answer["ID"], answer["ParentPatient"])
    for _method, _path, ours, theirs in replay_on_both(client, oracle.client, requests):
        assert ours.json().get("Details") == theirs.json().get("Details")
