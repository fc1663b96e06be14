"""``ResponseContent`` in ``/tools/find`` and ``response-content`` on the list routes.

Each part named is present with the same value as in the full description of the
resource (``GET /{level}/{id}``), and nothing else is: explorers ask for the main
tags alone to draw long study lists cheaply.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, upload
from dicom_factory import make_dicom
from pydicom.uid import generate_uid

PARTS = {
    "Parent": {"ParentPatient", "ParentStudy", "ParentSeries"},
    "Children": {"Studies", "Series", "Instances"},
    "Status": {"Status"},
    "IsStable": {"IsStable"},
    "MainDicomTags": {"MainDicomTags", "PatientMainDicomTags"},
    "Labels": {"Labels"},
}
LEVELS = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}


@pytest.fixture
def stored(client: httpx.Client) -> dict[str, Any]:
    study = generate_uid()
    answers = [upload(client, make_dicom(study_uid=study)) for _ in range(2)]
    client.put(f"/studies/{answers[0]['ParentStudy']}/labels/Reviewed")
    return answers[0]


def _one(answers: list[dict[str, Any]], stored: dict[str, Any], level: str) -> dict[str, Any]:
    """The answer about the first uploaded instance or its ancestor at ``level``."""
    key = "ID" if level == "Instance" else f"Parent{level}"
    (found,) = [a for a in answers if a["ID"] == stored[key]]
    return found


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_each_part_matches_the_full_description(
    client: httpx.Client, stored: dict[str, Any], level: str
) -> None:
    for part, keys in PARTS.items():
        body = {"Level": level, "Query": {}, "ResponseContent": [part]}
        answer = _one(client.post("/tools/find", json=body).json(), stored, level)
        full = client.get(f"/{LEVELS[level]}/{answer['ID']}").json()
        expected = {"ID", "Type"} | (keys & set(full))
        if part == "IsStable" and level == "Instance":
            expected -= {"IsStable"}
        assert set(answer) == expected, (level, part)
        for key in expected:
            assert answer[key] == full[key], (level, part, key)


def test_metadata_and_attachments(client: httpx.Client, stored: dict[str, Any]) -> None:
    instance = stored["ID"]
    body = {"Level": "Instance", "Query": {}, "ResponseContent": ["Metadata", "Attachments"]}
    answer = _one(client.post("/tools/find", json=body).json(), stored, "Instance")
    metadata = client.get(f"/instances/{instance}/metadata?expand").json()
    assert answer["Metadata"] == metadata
    (attachment,) = answer["Attachments"]
    info = client.get(f"/instances/{instance}/attachments/dicom/info").json()
    assert attachment["Uuid"] == info["Uuid"] and attachment["ContentType"] == 1
    assert attachment["UncompressedSize"] == info["UncompressedSize"]
    assert attachment["UncompressedMD5"] == info["UncompressedMD5"]


def test_empty_content_gives_identifiers_and_list_routes(
    client: httpx.Client, stored: dict[str, Any]
) -> None:
    body = {"Level": "Study", "Query": {}, "Expand": True, "ResponseContent": []}
    assert client.post("/tools/find", json=body).json() == [stored["ParentStudy"]]
    listed = client.get("/studies?response-content=MainDicomTags,Labels").json()
    assert listed == [
        {
            "ID": stored["ParentStudy"],
            "Type": "Study",
            "Labels": ["Reviewed"],
            "MainDicomTags": client.get(f"/studies/{stored['ParentStudy']}").json()[
                "MainDicomTags"
            ],
            "PatientMainDicomTags": client.get(f"/studies/{stored['ParentStudy']}").json()[
                "PatientMainDicomTags"
            ],
        }
    ]


def test_unknown_parts_are_refused(client: httpx.Client, stored: dict[str, Any]) -> None:
    body = {"Level": "Study", "Query": {}, "ResponseContent": ["Everything"]}
    assert_orthanc_error(client.post("/tools/find", json=body), 400, "Parameter out of range", 3)
    body = {"Level": "Study", "Query": {}, "ResponseContent": "MainDicomTags"}
    assert client.post("/tools/find", json=body).status_code == 400
    assert client.get("/studies?response-content=Nope").status_code == 400


def test_system_announces_the_extended_find(client: httpx.Client) -> None:
    capabilities = client.get("/system").json()["Capabilities"]
    assert capabilities["HasExtendedFind"] is True
    assert capabilities["HasExtendedChanges"] is True
