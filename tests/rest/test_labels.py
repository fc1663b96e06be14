"""Labels (Orthanc 1.12) at every level, ``/tools/labels``, and label validation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom

from rest.resource_checks import LEVELS, assert_bare, module_server, url


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from module_server(tmp_path_factory, "labels")


@pytest.fixture
def client(shared: RunningServer) -> httpx.Client:
    return shared.client


def new_instance(client: httpx.Client) -> dict[str, Any]:
    return upload(client, make_dicom(patient_id=f"LB{uuid.uuid4().hex[:10]}"))


def unique_label() -> str:
    return "L" + uuid.uuid4().hex[:12]


@pytest.mark.parametrize("level", LEVELS)
def test_label_lifecycle(client: httpx.Client, level: str) -> None:
    answer = new_instance(client)
    base = url(answer, level)
    label, other = unique_label(), unique_label()
    assert client.get(base + "/labels").json() == []
    assert_bare(client.get(f"{base}/labels/{label}"), 404)

    put = client.put(f"{base}/labels/{label}")
    assert put.status_code == 200 and put.content == b""
    assert client.put(f"{base}/labels/{label}").status_code == 200  # idempotent
    client.put(f"{base}/labels/{other}")
    assert client.get(base + "/labels").json() == sorted([label, other])
    present = client.get(f"{base}/labels/{label}")
    assert present.status_code == 200 and present.content == b""
    assert client.get(base).json()["Labels"] == sorted([label, other])
    assert {label, other} <= set(client.get("/tools/labels").json())

    # only this resource carries them, not its parents or children
    for level_other in LEVELS:
        if level_other != level:
            assert client.get(url(answer, level_other) + "/labels").json() == []

    deleted = client.delete(f"{base}/labels/{label}")
    assert deleted.status_code == 200 and deleted.content == b""
    assert client.delete(f"{base}/labels/{label}").status_code == 200  # idempotent
    assert client.get(base + "/labels").json() == [other]
    assert_bare(client.get(f"{base}/labels/{label}"), 404)
    assert label not in client.get("/tools/labels").json()


def test_tools_labels_is_sorted_and_distinct(client: httpx.Client) -> None:
    first, second = new_instance(client), new_instance(client)
    label = unique_label()
    client.put(url(first, "studies") + f"/labels/{label}")
    client.put(url(second, "instances") + f"/labels/{label}")
    client.put(url(second, "instances") + "/labels/0-first_label")
    labels = client.get("/tools/labels").json()
    assert labels == sorted(set(labels))
    assert labels.count(label) == 1 and "0-first_label" in labels
    client.delete(url(first, "studies") + f"/labels/{label}")
    assert label in client.get("/tools/labels").json()  # still used by the second instance


def test_valid_label_characters_and_length(client: httpx.Client) -> None:
    base = url(new_instance(client), "series")
    longest = "a" * 64
    for label in ("abcXYZ", "0123456789", "with-dash_and_underscore", "-", "_", longest):
        assert client.put(f"{base}/labels/{label}").status_code == 200, label
    assert longest in client.get(base + "/labels").json()


@pytest.mark.parametrize(
    "label",
    ["a" * 65, "with space", "dot.ted", "café", "semi;colon", "star*", "plus+", "per%25cent"],
)
def test_invalid_label_is_refused(client: httpx.Client, label: str) -> None:
    base = url(new_instance(client), "studies")
    before = client.get("/tools/labels").json()
    for method in ("PUT", "DELETE"):
        response = client.request(method, f"{base}/labels/{label}")
        assert_orthanc_error(response, 400, "Parameter out of range", 3, method)
    assert client.get(base + "/labels").json() == []
    assert client.get("/tools/labels").json() == before


def test_unknown_resource(client: httpx.Client) -> None:
    answer = new_instance(client)
    for method, path in (
        ("GET", "/patients/nope/labels"),
        ("GET", "/studies/nope/labels/good"),
        ("PUT", "/series/nope/labels/good"),
        ("DELETE", "/instances/nope/labels/good"),
        ("PUT", f"/patients/{answer['ID']}/labels/good"),  # an instance is no patient
        ("GET", f"/studies/{answer['ParentPatient']}/labels"),
    ):
        response = client.request(method, path)
        assert_orthanc_error(response, 404, "Unknown resource", 17, method, path)
    assert "good" not in client.get("/tools/labels").json()


def test_labels_go_with_the_resource(client: httpx.Client) -> None:
    answer = new_instance(client)
    label = unique_label()
    client.put(url(answer, "series") + f"/labels/{label}")
    assert label in client.get("/tools/labels").json()
    assert client.delete(url(answer, "patients")).status_code == 200
    assert label not in client.get("/tools/labels").json()


def test_labels_survive_a_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("labels-restart")
    server = start_server(folder)
    try:
        answer = new_instance(server.client)
        server.client.put(url(answer, "studies") + "/labels/kept")
    finally:
        server.stop()
    server = start_server(folder)
    try:
        assert server.client.get(url(answer, "studies") + "/labels").json() == ["kept"]
        assert server.client.get("/tools/labels").json() == ["kept"]
    finally:
        server.stop()
