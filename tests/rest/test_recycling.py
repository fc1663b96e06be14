"""Storage quotas in Recycle mode: the oldest unprotected patients make room."""

from __future__ import annotations

import hashlib

from archive_checks import assert_consistent, assert_orthanc_error, statistics, upload
from conftest import RunningServer
from dicom_factory import make_dicom


def patient(name: str) -> str:
    digest = hashlib.sha1(name.encode()).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def patients(server: RunningServer) -> set[str]:
    return set(server.client.get("/patients").json())


def test_maximum_patient_count_recycles_the_oldest(make_server) -> None:
    server = make_server(MaximumPatientCount=2)
    upload(server.client, make_dicom(patient_id="P1"))
    upload(server.client, make_dicom(patient_id="P2"))
    assert patients(server) == {patient("P1"), patient("P2")}

    upload(server.client, make_dicom(patient_id="P3"))
    assert patients(server) == {patient("P2"), patient("P3")}

    # a new instance of a known patient is not a new patient, and refreshes it
    upload(server.client, make_dicom(patient_id="P2"))
    assert patients(server) == {patient("P2"), patient("P3")}
    upload(server.client, make_dicom(patient_id="P4"))
    assert patients(server) == {patient("P2"), patient("P4")}
    assert statistics(server.client)["CountPatients"] == 2
    assert_consistent(server)


def test_protected_patients_are_not_recycled(make_server) -> None:
    server = make_server(MaximumPatientCount=2)
    upload(server.client, make_dicom(patient_id="P1"))
    upload(server.client, make_dicom(patient_id="P2"))
    assert server.client.put(f"/patients/{patient('P1')}/protected", content="1").status_code == 200

    upload(server.client, make_dicom(patient_id="P3"))
    assert patients(server) == {patient("P1"), patient("P3")}
    assert_consistent(server)


def test_everything_protected_means_full_storage(make_server) -> None:
    server = make_server(MaximumPatientCount=1)
    upload(server.client, make_dicom(patient_id="P1"))
    server.client.put(f"/patients/{patient('P1')}/protected", content="1")
    before = statistics(server.client)
    response = server.client.post("/instances", content=make_dicom(patient_id="P2"))
    assert_orthanc_error(response, 507, "The file storage is full", 19, "POST", "/instances")
    assert statistics(server.client) == before
    assert_consistent(server)

    server.client.put(f"/patients/{patient('P1')}/protected", content="0")
    upload(server.client, make_dicom(patient_id="P2"))
    assert patients(server) == {patient("P2")}
    assert_consistent(server)


def test_maximum_storage_size_recycles(make_server) -> None:
    server = make_server(MaximumStorageSize=1)  # MB, Recycle mode by default
    limit = 1024 * 1024
    for name in ("S1", "S2", "S3"):  # ~290 kB each
        upload(server.client, make_dicom(patient_id=name, rows=380, columns=380))
    assert patients(server) == {patient("S1"), patient("S2"), patient("S3")}

    upload(server.client, make_dicom(patient_id="S4", rows=380, columns=380))
    assert patients(server) == {patient("S2"), patient("S3"), patient("S4")}
    assert int(statistics(server.client)["TotalDiskSize"]) <= limit

    # one big file needs two patients to go
    upload(server.client, make_dicom(patient_id="S5", rows=560, columns=560))  # ~630 kB
    assert patients(server) == {patient("S4"), patient("S5")}
    assert int(statistics(server.client)["TotalDiskSize"]) <= limit
    assert_consistent(server)
