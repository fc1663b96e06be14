"""/system, /statistics and the simple /tools routes."""

from __future__ import annotations

import calendar
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dataset, to_bytes

from dicomhub.dicom.identifiers import hash_identifier as orthanc_id

UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("system"), Name="SystemTest", DicomAet="AETEST")
    yield server
    server.stop()


def test_system(shared: RunningServer) -> None:
    response = shared.client.get("/system")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "server" not in response.headers  # as Orthanc: no server named
    system = response.json()
    assert system["Version"] == "1.12.11"
    assert isinstance(system["ApiVersion"], int)
    assert system["Name"] == "SystemTest"
    assert system["DicomAet"] == "AETEST"
    assert system["HttpPort"] == shared.port
    assert system["DicomPort"] == shared.config["DicomPort"]
    assert isinstance(system["DatabaseVersion"], int)
    for flag in ("CheckRevisions", "IsHttpServerSecure", "PluginsEnabled", "OverwriteInstances"):
        assert isinstance(system[flag], bool), flag


def test_system_has_every_key_of_the_reference(shared: RunningServer) -> None:
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    try:
        theirs = oracle.get("/system").json()
    finally:
        oracle.close()
    ours = shared.client.get("/system").json()
    assert set(theirs) <= set(ours)
    for key, value in theirs.items():
        assert type(ours[key]) is type(value) or value is None, key


def _parse_time(text: str) -> float:
    assert re.match(r"^\d{8}T\d{6}$", text), text
    return calendar.timegm(time.strptime(text, "%Y%m%dT%H%M%S"))


def test_tools_now(shared: RunningServer) -> None:
    response = shared.client.get("/tools/now")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert abs(_parse_time(response.text) - time.time()) < 5

    local = shared.client.get("/tools/now-local").text
    expected_local = time.strftime("%Y%m%dT%H%M%S", time.localtime())
    assert abs(_parse_time(local) - _parse_time(expected_local)) < 5


@pytest.mark.parametrize("level", ["patient", "study", "series", "instance"])
def test_generate_uid(shared: RunningServer, level: str) -> None:
    values = set()
    for _ in range(3):
        response = shared.client.get("/tools/generate-uid", params={"level": level})
        assert response.status_code == 200
        value = response.text
        values.add(value)
        if level == "patient":  # the reference answers a UUID for patients
            assert re.match(
                r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", value
            )
        else:
            assert UID.match(value) and len(value) <= 64, value
    assert len(values) == 3


def test_generate_uid_without_a_known_level(shared: RunningServer) -> None:
    """The reference answers 404 (we add Orthanc's JSON error body)."""
    for params in ({}, {"level": "nonsense"}):
        response = shared.client.get("/tools/generate-uid", params=params)
        assert response.status_code == 404


def test_default_encoding(shared: RunningServer) -> None:
    response = shared.client.get("/tools/default-encoding")
    assert response.status_code == 200
    assert response.text == "Latin1"
    try:
        assert shared.client.put("/tools/default-encoding", content="Utf8").status_code == 200
        assert shared.client.get("/tools/default-encoding").text == "Utf8"
        # As Orthanc: any case, and the answer is the encoding now in use.
        answer = shared.client.put("/tools/default-encoding", content="latin2")
        assert (answer.status_code, answer.text) == (200, "Latin2")
        assert shared.client.get("/tools/default-encoding").text == "Latin2"
        shared.client.put("/tools/default-encoding", content="Utf8")
        bad = shared.client.put("/tools/default-encoding", content="Klingon")
        assert_orthanc_error(
            bad, 400, "Parameter out of range", 3, "PUT", "/tools/default-encoding"
        )
        assert shared.client.get("/tools/default-encoding").text == "Utf8"
    finally:
        shared.client.put("/tools/default-encoding", content="Latin1")


def test_empty_statistics(shared: RunningServer) -> None:
    assert shared.client.get("/statistics").json() == {
        "CountInstances": 0,
        "CountPatients": 0,
        "CountSeries": 0,
        "CountStudies": 0,
        "TotalDiskSize": "0",
        "TotalDiskSizeMB": 0,
        "TotalUncompressedSize": "0",
        "TotalUncompressedSizeMB": 0,
    }


def test_method_not_allowed(shared: RunningServer) -> None:
    response = shared.client.delete("/system")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/instances", "GET,POST"),
        ("POST", "/tools/default-encoding", "GET,PUT"),
        ("POST", "/changes", "GET,DELETE"),
        ("POST", "/patients/0b1c3a4e-1c0c1d6e-4e1a6a3c-8d9f2b2e-00000000/protected", "GET,PUT"),
        ("POST", "/instances/any/metadata/1024", "GET,PUT,DELETE"),
    ],
)
def test_method_not_allowed_lists_every_method_of_the_path(
    shared: RunningServer, method: str, path: str, allowed: str
) -> None:
    """As Orthanc's ``Allow``: all the methods the path has, not those of one route."""
    response = shared.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed


def test_default_encoding_decodes_new_uploads(make_server) -> None:
    server = make_server()
    ds = make_dataset()
    ds.PatientID = "ŽLUŤ".encode()  # UTF-8 bytes, no SpecificCharacterSet
    data = to_bytes(ds)
    latin1 = upload(server.client, data)["ParentPatient"]
    assert latin1 == orthanc_id("ŽLUŤ".encode().decode("latin-1"))
    server.client.put("/tools/default-encoding", content="Utf8")
    server.client.delete(f"/patients/{latin1}")
    assert upload(server.client, data)["ParentPatient"] == orthanc_id("ŽLUŤ")


def test_default_encoding_of_the_configuration_in_any_case(make_server) -> None:
    """``"DefaultEncoding": "utf8"`` is Orthanc's ``Utf8``, as it reads the name."""
    server = make_server(DefaultEncoding="utf8")
    assert server.client.get("/tools/default-encoding").text == "Utf8"
    ds = make_dataset()
    ds.PatientID = "ŽLUŤ".encode()  # UTF-8 bytes, no SpecificCharacterSet
    assert upload(server.client, to_bytes(ds))["ParentPatient"] == orthanc_id("ŽLUŤ")


def test_errors_are_not_described_when_told_not_to(make_server) -> None:
    """``HttpDescribeErrors: false``: Orthanc answers the status with an empty body."""
    server = make_server(HttpDescribeErrors=False)
    for response in (
        server.client.get("/instances/unknown"),
        server.client.post("/instances", content=b"not dicom"),
        server.client.delete("/system"),
    ):
        assert response.status_code in (400, 404, 405)
        assert response.content == b""


def _text_routes(client, instance: str, patient: str) -> list[tuple[str, str, bytes | None]]:  # type: ignore[no-untyped-def]
    """Routes that answer text, with the body to send."""
    base = f"/instances/{instance}"
    return [
        ("GET", f"{base}/metadata/1030", None),
        ("GET", f"{base}/metadata/ReceptionDate", None),
        ("GET", f"{base}/attachments/dicom/size", None),
        ("GET", f"{base}/attachments/dicom/md5", None),
        ("GET", f"{base}/attachments/dicom/is-compressed", None),
        ("GET", f"{base}/attachments/dicom/compressed-size", None),
        ("GET", f"{base}/attachments/dicom/compressed-md5", None),
        ("GET", f"{base}/matlab", None),
        ("GET", f"/patients/{patient}/protected", None),
        ("GET", "/tools/generate-uid?level=study", None),
        ("GET", "/tools/now", None),
        ("GET", "/tools/now-local", None),
        ("GET", "/tools/default-encoding", None),
        ("GET", "/tools/log-level", None),
        ("GET", "/tools/metrics", None),
        ("PUT", f"{base}/metadata/1030", b"hello"),
        ("PUT", f"/patients/{patient}/protected", b"0"),
        ("PUT", "/tools/metrics", b"1"),
        ("POST", "/tools/reconstruct", b""),
        ("DELETE", "/exports", None),
    ]


def test_text_answers_are_plain_text_as_orthanc(client) -> None:  # type: ignore[no-untyped-def]
    """Orthanc sends ``text/plain`` alone: no ``charset`` (Starlette would add one)."""
    answer = upload(client, to_bytes(make_dataset(patient_id="TEXT1")))
    client.put(f"/instances/{answer['ID']}/metadata/1030", content=b"hello")
    for method, path, body in _text_routes(client, answer["ID"], answer["ParentPatient"]):
        response = client.request(method, path, content=body)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "text/plain", path
    prometheus = client.get("/tools/metrics-prometheus")
    assert prometheus.headers["content-type"] == "text/plain; version=0.0.4"


def test_text_answers_like_the_oracle(client) -> None:  # type: ignore[no-untyped-def]
    reference = oracle_client()
    if reference is None:
        pytest.skip("the reference Orthanc does not answer")
    data = to_bytes(make_dataset(patient_id="HELPER-compat13-text"))
    try:
        answers = [upload(c, data) for c in (client, reference)]
        for c, answer in zip((client, reference), answers, strict=True):
            c.put(f"/instances/{answer['ID']}/metadata/1030", content=b"hello")
        routes = _text_routes(client, answers[0]["ID"], answers[0]["ParentPatient"])
        for method, path, body in routes:
            if (path.startswith("/tools/") and method != "GET") or path == "/exports":
                continue  # the reference is shared: its settings and logs stay as they are
            types = [
                c.request(method, path, content=body).headers["content-type"]
                for c in (client, reference)
            ]
            assert types[0] == types[1], path
    finally:
        reference.delete(f"/patients/{answers[1]['ParentPatient']}")
        reference.close()


def _json_requests(instance: str) -> list[tuple[str, str, Any]]:
    """Requests answered with JSON: documents, and the ``{}`` of an operation."""
    return [
        ("GET", "/system", None),
        ("GET", "/patients", None),
        ("GET", f"/instances/{instance}", None),
        ("GET", f"/instances/{instance}/tags", None),
        ("GET", f"/instances/{instance}/tags?simplify", None),
        ("GET", f"/instances/{instance}/metadata?expand", None),
        ("GET", "/changes?limit=1", None),
        ("POST", "/tools/find", {"Level": "Study", "Query": {}}),
        ("POST", "/tools/lookup", "nothing-of-that-name"),
        ("POST", "/modalities/{self}/echo", {}),
    ]


def _json_types(client: httpx.Client, data: bytes) -> list[str]:
    stored = client.post("/instances", content=data)
    own = client.get("/system").json()
    name = f"self-{uuid.uuid4().hex[:8]}"
    client.put(f"/modalities/{name}", json=[own["DicomAet"], "127.0.0.1", own["DicomPort"]])
    try:
        types = [stored.headers["content-type"]]
        for method, path, body in _json_requests(stored.json()["ID"]):
            path = path.replace("{self}", name)
            content = body if isinstance(body, str) else None
            answer = client.request(method, path, json=None if content else body, content=content)
            assert answer.status_code == 200, (path, answer.text)
            types.append(answer.headers["content-type"])
        return types
    finally:
        client.delete(f"/modalities/{name}")
        client.delete(f"/instances/{stored.json()['ID']}")


def test_json_documents_say_their_charset_as_orthanc(
    make_server: Callable[..., RunningServer],
) -> None:
    """Orthanc sends a JSON document as ``application/json; charset=utf-8``, and the
    bare ``{}`` of an operation (here an echo) as ``application/json``."""
    client = make_server(DicomBindAddress="127.0.0.1").client
    data = to_bytes(make_dataset(patient_id="JSONTYPE1"))
    document = "application/json; charset=utf-8"
    expected = [document] * (len(_json_requests("x"))) + ["application/json"]
    assert _json_types(client, data) == expected


def test_json_answers_like_the_oracle(make_server: Callable[..., RunningServer]) -> None:
    reference = oracle_client()
    if reference is None:
        pytest.skip("the reference Orthanc does not answer")
    client = make_server(DicomBindAddress="127.0.0.1").client
    data = to_bytes(make_dataset(patient_id="JSONTYPE2"))
    try:
        assert _json_types(client, data) == _json_types(reference, data)
    finally:
        reference.close()
