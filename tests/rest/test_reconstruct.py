"""Reconstruction: the index is rewritten from the stored files.

An index that disagrees with its files (as one filled by an older version would)
is simulated by editing the SQLite index of a stopped server; reconstruction must
bring back what the files say, at every level, and nothing else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from archive_checks import assert_orthanc_error, upload
from conftest import RunningServer
from dicom_factory import make_dicom
from pydicom.uid import generate_uid

UNKNOWN = "00000000-00000000-00000000-00000000-00000000"
PATIENT_NAME, STUDY_DESCRIPTION = 0x00100010, 0x00081030


def _damage_index(server: RunningServer, public_ids: list[str]) -> None:
    """Drop some main tags and change others, as a stale index would have them."""
    db = sqlite3.connect(Path(server.config["IndexDirectory"]) / "dicomhub-index.db")
    with db:
        for public_id in public_ids:
            (internal,) = db.execute(
                "SELECT id FROM resources WHERE public_id = ?", (public_id,)
            ).fetchone()
            db.execute(
                "UPDATE main_tags SET value = 'STALE', norm = 'STALE' WHERE resource_id = ?",
                (internal,),
            )
            db.execute(
                "DELETE FROM main_tags WHERE resource_id = ? AND tag IN (?, ?)",
                (internal, PATIENT_NAME, STUDY_DESCRIPTION),
            )
    db.close()


def _levels(client, instance: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    answer = client.get(f"/instances/{instance}").json()
    series = client.get(f"/series/{answer['ParentSeries']}").json()
    study = client.get(f"/studies/{series['ParentStudy']}").json()
    patient = client.get(f"/patients/{study['ParentPatient']}").json()
    return {"instances": answer, "series": series, "studies": study, "patients": patient}


def _tags(levels: dict[str, dict]) -> dict[str, dict]:
    return {name: value["MainDicomTags"] for name, value in levels.items()}


def test_reconstruct_restores_the_main_tags(make_server: Callable[..., RunningServer]) -> None:
    server = make_server()
    study = generate_uid()
    instances = [
        upload(server.client, make_dicom(study_uid=study, patient_name="Doe^Jane"))["ID"]
        for _ in range(2)
    ]
    before = _levels(server.client, instances[0])
    ids = [value["ID"] for value in before.values()]
    server.stop()
    _damage_index(server, ids)
    server = make_server(**{k: v for k, v in server.config.items() if k != "HttpPort"})
    damaged = _tags(_levels(server.client, instances[0]))
    assert damaged != _tags(before)
    assert "PatientName" not in damaged["patients"]

    answer = server.client.post(f"/studies/{before['studies']['ID']}/reconstruct")
    assert answer.status_code == 200 and answer.content == b""
    assert _tags(_levels(server.client, instances[0])) == _tags(before)
    find = server.client.post(
        "/tools/find", json={"Level": "Patient", "Query": {"PatientName": "Doe^Jane"}}
    )
    assert find.json() == [before["patients"]["ID"]]


def test_limit_to_this_level_and_whole_index(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server()
    instance = upload(server.client, make_dicom())["ID"]
    before = _levels(server.client, instance)
    ids = [value["ID"] for value in before.values()]
    server.stop()
    _damage_index(server, ids)
    server = make_server(**{k: v for k, v in server.config.items() if k != "HttpPort"})

    series = before["series"]["ID"]
    body = {"LimitToThisLevelMainDicomTags": True}
    assert server.client.post(f"/series/{series}/reconstruct", json=body).status_code == 200
    partly = _tags(_levels(server.client, instance))
    assert partly["series"] == _tags(before)["series"]
    assert partly["instances"] != _tags(before)["instances"]

    assert server.client.post("/tools/reconstruct", content=b"not json").status_code == 200
    assert _tags(_levels(server.client, instance)) == _tags(before)


def test_reconstruct_files_applies_storage_compression(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server()
    data = make_dicom()
    instance = upload(server.client, data)["ID"]
    compressed = f"/instances/{instance}/attachments/dicom/is-compressed"
    assert server.client.get(compressed).text == "0"
    server.stop()
    config = {k: v for k, v in server.config.items() if k != "HttpPort"}
    server = make_server(**dict(config, StorageCompression=True))
    patient = server.client.get(f"/instances/{instance}/patient").json()["ID"]
    assert server.client.post(f"/patients/{patient}/reconstruct", json={}).status_code == 200
    assert server.client.get(compressed).text == "0"
    body = {"ReconstructFiles": True}
    assert server.client.post(f"/patients/{patient}/reconstruct", json=body).status_code == 200
    assert server.client.get(compressed).text == "1"
    assert server.client.get(f"/instances/{instance}/file").content == data


def test_unknown_resource(server: RunningServer) -> None:
    answer = server.client.post(f"/studies/{UNKNOWN}/reconstruct")
    assert_orthanc_error(answer, 404, "Unknown resource", 17)
    instance = upload(server.client, make_dicom())["ID"]
    wrong_level = server.client.post(f"/studies/{instance}/reconstruct")
    assert_orthanc_error(wrong_level, 404, "Unknown resource", 17)
