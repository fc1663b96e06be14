"""``ExtraMainDicomTags``: more tags kept in the index, per level.

Extra tags show in ``MainDicomTags`` like the default ones, are searched in the
index (so ``Limit`` is allowed on them, where a file-read tag is refused), and
resources stored before the configuration changed get them through
``/reconstruct``. A misspelt tag stops the start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from archive_checks import upload
from conftest import ROOT, RunningServer, free_port
from dicom_factory import make_dataset, to_bytes

EXTRA = {
    "Patient": ["PatientWeight"],
    "Study": ["0008,1032"],  # ProcedureCodeSequence: a sequence is accepted, not indexed
    "Series": ["SeriesDescription", "0018,5100"],  # PatientPosition
    "Instance": ["Rows", "Columns", "0008,0016"],
}


def _instance(**tags: object) -> bytes:
    ds = make_dataset(patient_id="EXTRA")
    ds.PatientWeight = "71.5"
    ds.PatientPosition = "HFS"
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return to_bytes(ds)


def test_extra_tags_are_indexed_and_shown(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(ExtraMainDicomTags=EXTRA)
    answer = upload(server.client, _instance())
    instance = server.client.get(f"/instances/{answer['ID']}").json()["MainDicomTags"]
    assert instance["Rows"] == "8" and instance["Columns"] == "8"
    assert instance["SOPClassUID"]
    series = server.client.get(f"/series/{answer['ParentSeries']}").json()["MainDicomTags"]
    assert series["PatientPosition"] == "HFS"
    patient = server.client.get(f"/patients/{answer['ParentPatient']}").json()
    assert patient["MainDicomTags"]["PatientWeight"] == "71.5"
    study = server.client.get(f"/studies/{answer['ParentStudy']}").json()
    assert study["PatientMainDicomTags"]["PatientWeight"] == "71.5"

    query = {"Level": "Series", "Query": {"PatientPosition": "HF*"}, "Limit": 10}
    found = server.client.post("/tools/find", json=query)
    assert found.status_code == 200 and found.json() == [answer["ParentSeries"]]
    query = {"Level": "Study", "Query": {"PatientWeight": "71.5"}, "Limit": 10}
    assert server.client.post("/tools/find", json=query).json() == [answer["ParentStudy"]]


def test_without_extra_tags_limit_is_refused(server: RunningServer) -> None:
    upload(server.client, _instance())
    query = {"Level": "Series", "Query": {"PatientPosition": "HF*"}, "Limit": 10}
    assert server.client.post("/tools/find", json=query).status_code == 400


def test_reconstruct_fills_older_resources(make_server: Callable[..., RunningServer]) -> None:
    server = make_server()
    answer = upload(server.client, _instance())
    server.stop()
    config = {k: v for k, v in server.config.items() if k != "HttpPort"}
    server = make_server(**dict(config, ExtraMainDicomTags=EXTRA))
    series = f"/series/{answer['ParentSeries']}"
    assert "PatientPosition" not in server.client.get(series).json()["MainDicomTags"]
    body = {"LimitToThisLevelMainDicomTags": True}
    assert server.client.post(f"{series}/reconstruct", json=body).status_code == 200
    assert server.client.get(series).json()["MainDicomTags"]["PatientPosition"] == "HFS"


def test_unknown_tag_stops_the_start_up(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    settings = {
        "HttpPort": free_port(),
        "DicomPort": free_port(),
        "StorageDirectory": str(tmp_path / "db"),
        "RemoteAccessAllowed": False,
        "ExtraMainDicomTags": {"Series": ["NoSuchTag"]},
    }
    config.write_text(json.dumps(settings))
    result = subprocess.run(
        [sys.executable, "-m", "dicomhub", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 255
    assert "NoSuchTag" in result.stderr
