"""Shared by the tests of what every level of resource carries (metadata,
attachments, labels): the levels, their URLs, revisions' ETags, bare answers, and a
server for a whole test module."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from archive_checks import OracleUploads, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom

LEVELS = ("patients", "studies", "series", "instances")
# The key of an upload's answer that holds the resource's ID at each level.
PARENT = {
    "patients": "ParentPatient",
    "studies": "ParentStudy",
    "series": "ParentSeries",
    "instances": "ID",
}
RESOURCE_TYPE = {
    "patients": "Patient",
    "studies": "Study",
    "series": "Series",
    "instances": "Instance",
}


def module_server(
    factory: pytest.TempPathFactory, name: str, **config: Any
) -> Iterator[RunningServer]:
    """Generator body for a module-scoped fixture (``yield from module_server(...)``)."""
    server = start_server(factory.mktemp(name), **config)
    yield server
    server.stop()


def md5(data: str | bytes) -> str:
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


def etag(revision: int, value: str | bytes) -> str:
    return f'"{revision}-{md5(value)}"'


def url(answer: dict[str, Any], level: str) -> str:
    """The URL of the resource at ``level`` of an upload's ``answer``."""
    return f"/{level}/{answer[PARENT[level]]}"


def last_change(client: httpx.Client) -> dict[str, Any] | None:
    changes = client.get("/changes", params={"last": ""}).json()["Changes"]
    return changes[-1] if changes else None


def assert_bare(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.content == b""


def upload_on_both(
    client: httpx.Client, oracle: OracleUploads | None, prefix: str
) -> dict[str, Any]:
    """Uploads a new instance (its patient ID ``prefix`` and some random letters) to
    dicomhub and to the reference Orthanc (the test skipped when that does not
    answer); answers dicomhub's answer, whose IDs are checked to be the reference's."""
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    data = make_dicom(patient_id=f"{prefix}{uuid.uuid4().hex[:6]}")
    ours, theirs = upload(client, data), oracle.upload(data)
    assert ours["ID"] == theirs["ID"]
    return ours
