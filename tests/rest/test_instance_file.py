"""``GET /instances/{id}/file``: the stored bytes, their headers, and the errors."""

from __future__ import annotations

import httpx
from archive_checks import assert_orthanc_error, upload
from dicom_factory import make_dicom


def test_the_file_comes_back_byte_for_byte_with_its_headers(client: httpx.Client) -> None:
    data = make_dicom(patient_id="FILE1", rows=64, columns=64)
    answer = upload(client, data)
    got = client.get(f"/instances/{answer['ID']}/file")
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "application/dicom"
    assert got.headers["content-length"] == str(len(data))
    # As Orthanc: named after the stored file (its FileUuid).
    file_uuid = client.get(f"/instances/{answer['ID']}").json()["FileUuid"]
    assert got.headers["content-disposition"] == f'filename="{file_uuid}.dcm"'

    named = client.get(f"/instances/{answer['ID']}/file", params={"filename": "scan.dcm"})
    assert named.content == data
    assert named.headers["content-disposition"] == 'filename="scan.dcm"'
    bad = client.get(f"/instances/{answer['ID']}/file", params={"filename": 'a"b.dcm'})
    assert bad.status_code == 400


def test_other_levels_and_unknown_ids_are_unknown_resources(client: httpx.Client) -> None:
    answer = upload(client, make_dicom(patient_id="FILE2"))
    for resource in (answer["ParentSeries"], answer["ParentPatient"], "nope"):
        response = client.get(f"/instances/{resource}/file")
        assert_orthanc_error(response, 404, "Unknown resource", 17)
