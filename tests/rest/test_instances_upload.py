"""POST /instances: DICOM, ZIP and multipart bodies, identifiers, and bad input."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from archive_checks import (
    assert_consistent,
    assert_orthanc_error,
    file_path,
    oracle_uploads,
    statistics,
    storage_files,
    storage_root,
    upload,
)
from conftest import RunningServer, start_server
from dicom_factory import make_dataset, make_dicom, to_bytes

EMPTY_PATIENT = "da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709"


def orthanc_id(*parts: str) -> str:
    digest = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def unique(prefix: str = "UP") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("upload"))
    yield server
    server.stop()


@pytest.fixture
def oracle() -> Iterator:
    yield from oracle_uploads()


# ---- DICOM bodies ------------------------------------------------------------


def test_upload_answers_orthanc_identifiers(shared: RunningServer) -> None:
    data = make_dicom(
        patient_id="HASHTEST01",
        study_uid="1.2.3.4.5",
        series_uid="1.2.3.4.5.6",
        sop_uid="1.2.3.4.5.6.7",
    )
    answer = upload(shared.client, data)
    assert answer == {
        "ID": "d387eb01-1ac66274-ed5fc504-fd15fc34-b6e558aa",
        "ParentPatient": "191ae625-d53ada20-1ab78fdb-cea9a696-7c5202bd",
        "ParentStudy": orthanc_id("HASHTEST01", "1.2.3.4.5"),
        "ParentSeries": orthanc_id("HASHTEST01", "1.2.3.4.5", "1.2.3.4.5.6"),
        "Path": "/instances/d387eb01-1ac66274-ed5fc504-fd15fc34-b6e558aa",
        "Status": "Success",
    }
    assert shared.client.get(answer["Path"] + "/file").content == data
    assert_consistent(shared)


def test_reupload_is_already_stored(shared: RunningServer) -> None:
    data = make_dicom(patient_id=unique())
    first = upload(shared.client, data)
    before = shared.client.get(first["Path"]).json()
    last_change = shared.client.get("/changes", params={"last": ""}).json()["Last"]
    files = len(storage_files(shared))

    again = upload(shared.client, data)

    assert again == {**first, "Status": "AlreadyStored"}
    assert shared.client.get(first["Path"]).json()["FileUuid"] == before["FileUuid"]
    assert len(storage_files(shared)) == files
    assert shared.client.get("/changes", params={"last": ""}).json()["Last"] == last_change
    assert_consistent(shared)


def test_overwrite_instances_replaces_the_file(make_server) -> None:
    server = make_server(OverwriteInstances=True)
    ds = make_dataset(patient_id="OVERWRITE", patient_name="Before^Name")
    first = upload(server.client, to_bytes(ds))
    old_uuid = server.client.get(first["Path"]).json()["FileUuid"]
    assert file_path(server, old_uuid).is_file()

    ds.InstanceNumber = "42"
    ds.ImageComments = "second version"
    second_data = to_bytes(ds)
    second = upload(server.client, second_data)

    assert second["ID"] == first["ID"]
    assert second["Status"] == "Success"
    described = server.client.get(first["Path"]).json()
    assert described["FileUuid"] != old_uuid
    assert described["MainDicomTags"]["InstanceNumber"] == "42"
    assert not file_path(server, old_uuid).exists()
    assert file_path(server, described["FileUuid"]).is_file()
    assert server.client.get(first["Path"] + "/file").content == second_data
    stats = statistics(server.client)
    assert (stats["CountPatients"], stats["CountInstances"]) == (1, 1)
    assert_consistent(server)


def test_missing_patient_id_hashes_as_empty_string(shared: RunningServer) -> None:
    ds = make_dataset(study_uid="1.2.826.0.1.3680043.10.1.77", series_uid="1.2.3", sop_uid="1.2.4")
    del ds.PatientID
    answer = upload(shared.client, to_bytes(ds))
    assert answer["ParentPatient"] == EMPTY_PATIENT
    assert answer["ID"] == orthanc_id("", "1.2.826.0.1.3680043.10.1.77", "1.2.3", "1.2.4")


@pytest.mark.parametrize(
    ("written", "hashed"),
    [("TRAIL  ", "TRAIL"), ("  LEAD", "  LEAD"), ("MiXeD", "MiXeD"), ("NUL\x00", "NUL")],
)
def test_identifier_padding(shared: RunningServer, written: str, hashed: str) -> None:
    answer = upload(shared.client, make_dicom(patient_id=written))
    assert answer["ParentPatient"] == orthanc_id(hashed)
    described = shared.client.get(f"/patients/{answer['ParentPatient']}").json()
    assert described["MainDicomTags"]["PatientID"] == hashed


@pytest.mark.parametrize(
    ("charset", "patient"),
    [("ISO_IR 100", "MÜLLER^ÉLODIE"), ("ISO_IR 192", "患者^山田"), ("ISO_IR 144", "Люкс")],
)
def test_charset_decoded_patient_id_is_hashed_as_utf8(
    shared: RunningServer, oracle, charset: str, patient: str
) -> None:
    data = make_dicom(patient_id=patient, charset=charset)
    answer = upload(shared.client, data)
    assert answer["ParentPatient"] == orthanc_id(patient)
    tags = shared.client.get(f"/patients/{answer['ParentPatient']}").json()["MainDicomTags"]
    assert tags["PatientID"] == patient
    if oracle is not None:
        assert oracle.upload(data)["ID"] == answer["ID"]


def test_default_encoding_applies_without_specific_character_set(shared: RunningServer) -> None:
    ds = make_dataset(patient_id="X")
    ds.PatientID = "CAFÉ".encode("latin-1")  # raw bytes, no (0008,0005): Latin1 by default
    answer = upload(shared.client, to_bytes(ds))
    assert answer["ParentPatient"] == orthanc_id("CAFÉ")


SAMPLES = {
    # name: (IndexInSeries, PatientName) as the reference Orthanc shows them
    "CT_small.dcm": (1, "CompressedSamples^CT1"),
    "MR_small.dcm": (1, "CompressedSamples^MR1"),
    "rtplan.dcm": (None, "Last^First^mid^pre"),  # implicit VR, no InstanceNumber
    "JPEG2000.dcm": (3, "CompressedSamples^NM1"),
    "chrH31.dcm": (1, "Yamada^Tarou=山田^太郎=やまだ^たろう"),  # ISO 2022 escapes
    "chrX1.dcm": (1, "Wang^XiaoDong=王^小東="),
    "chrI2.dcm": (1, "Hong^Gildong=洪^吉洞=홍^길동"),
}


def _sample(name: str) -> bytes:
    from pydicom.data import get_charset_files, get_testdata_file

    path = get_testdata_file(name, download=False) or get_charset_files(name)[0]
    return Path(path).read_bytes()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_pydicom_sample_files(shared: RunningServer, oracle, name: str) -> None:
    data = _sample(name)
    answer = upload(shared.client, data)
    index, patient_name = SAMPLES[name]
    instance = shared.client.get(answer["Path"]).json()
    patient = shared.client.get(f"/patients/{answer['ParentPatient']}").json()
    assert instance["IndexInSeries"] == index
    assert patient["MainDicomTags"]["PatientName"] == patient_name
    if oracle is None:
        return
    theirs = oracle.upload(data, keep=True)
    assert theirs["ID"] == answer["ID"]
    theirs_p = oracle.client.get(f"/patients/{theirs['ParentPatient']}").json()
    assert patient["MainDicomTags"]["PatientID"] == theirs_p["MainDicomTags"]["PatientID"]


# ---- ZIP and multipart bodies ------------------------------------------------


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_body_stores_every_dicom_member(shared: RunningServer) -> None:
    patient = unique("ZIP")
    one, two = make_dicom(patient_id=patient), make_dicom(patient_id=patient)
    body = zip_of(
        {
            "deep/nested/folder/one.dcm": one,
            "README.txt": b"not a DICOM file",
            "empty-folder/": b"",
            "two": two,
            "junk.bin": os.urandom(300),
        }
    )
    before = statistics(shared.client)["CountInstances"]
    response = shared.client.post("/instances", content=body)
    assert response.status_code == 200, response.text
    answers = response.json()
    assert isinstance(answers, list) and len(answers) == 2
    for answer in answers:
        assert set(answer) == {
            "ID",
            "Path",
            "Status",
            "ParentPatient",
            "ParentStudy",
            "ParentSeries",
        }
        assert answer["Status"] == "Success"
        assert answer["ParentPatient"] == orthanc_id(patient)
    assert statistics(shared.client)["CountInstances"] == before + 2

    again = shared.client.post("/instances", content=body).json()
    assert [a["Status"] for a in again] == ["AlreadyStored", "AlreadyStored"]
    assert_consistent(shared)


def test_bodies_without_announced_size_are_stored(shared: RunningServer) -> None:
    """A chunked body (no Content-Length) goes through the spool, DICOM or ZIP."""
    patient = unique("CHUNK")
    single, member = make_dicom(patient_id=patient), make_dicom(patient_id=patient)

    def chunked(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = shared.client.post("/instances", content=chunked(single))
    assert response.status_code == 200, response.text
    assert response.json()["Status"] == "Success"
    answers = shared.client.post("/instances", content=chunked(zip_of({"m.dcm": member}))).json()
    assert [a["Status"] for a in answers] == ["Success"]
    patient_json = shared.client.get(f"/patients/{orthanc_id(patient)}/instances").json()
    assert len(patient_json) == 2
    assert_consistent(shared)


def test_zip_with_only_junk_stores_nothing(shared: RunningServer) -> None:
    before = statistics(shared.client)
    body = zip_of({"a.txt": b"hello", "b/c.bin": os.urandom(1000), "d.dcm": b"DICM" * 10})
    response = shared.client.post("/instances", content=body)
    assert response.status_code == 200
    assert response.json() == []
    assert statistics(shared.client) == before
    assert_consistent(shared)


def test_multipart_upload(shared: RunningServer) -> None:
    patient = unique("MP")
    before = statistics(shared.client)["CountInstances"]
    files = [
        ("file1", ("a.dcm", make_dicom(patient_id=patient), "application/dicom")),
        ("file2", ("b.dcm", make_dicom(patient_id=patient), "application/octet-stream")),
    ]
    response = shared.client.post("/instances", files=files)
    assert response.status_code == 200
    assert response.content == b""
    assert statistics(shared.client)["CountInstances"] == before + 2
    assert len(shared.client.get(f"/patients/{orthanc_id(patient)}/instances").json()) == 2
    assert_consistent(shared)


def test_multipart_with_a_non_dicom_part_is_rejected(shared: RunningServer) -> None:
    files = [("file", ("junk.txt", b"hello world", "text/plain"))]
    before = statistics(shared.client)
    response = shared.client.post("/instances", files=files)
    assert_orthanc_error(response, 400, "Bad file format", 15, "POST", "/instances")
    assert statistics(shared.client) == before
    assert_consistent(shared)


def test_multipart_with_a_wrong_boundary_gets_an_orthanc_error(shared: RunningServer) -> None:
    body = (
        b'--ABC\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nxx\r\n--ABC--\r\n'
    )
    before = statistics(shared.client)
    response = shared.client.post(
        "/instances",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=XYZ"},
    )
    assert_orthanc_error(response, 400, "Bad request", 8, "POST", "/instances")
    assert statistics(shared.client) == before


# ---- bad input leaves nothing behind -------------------------------------------


def _without(tag: str) -> bytes:
    ds = make_dataset(patient_id=unique("M"))
    delattr(ds, tag)
    return to_bytes(ds)


def _truncated() -> bytes:
    data = make_dicom(patient_id=unique("T"))
    return data[: len(data) - 40]


BAD_BODIES = {
    "not-dicom": (lambda: b"hello, this is not DICOM at all", 400, "Bad file format", 15),
    "empty": (lambda: b"", 400, "Bad file format", 15),
    "truncated": (_truncated, 400, "Bad file format", 15),
    "header-only": (lambda: make_dicom()[:300], 400, "Bad file format", 15),
    "no-sop-uid": (lambda: _without("SOPInstanceUID"), 404, "Inexistent tag", 21),
    "no-study-uid": (lambda: _without("StudyInstanceUID"), 404, "Inexistent tag", 21),
    "no-series-uid": (lambda: _without("SeriesInstanceUID"), 404, "Inexistent tag", 21),
    "corrupt-zip": (lambda: zip_of({"a.dcm": make_dicom()})[:-60], 400, "Bad file format", 15),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_body_is_rejected_and_leaves_nothing(shared: RunningServer, case: str) -> None:
    make_body, status, message, code = BAD_BODIES[case]
    before = statistics(shared.client)
    last_change = shared.client.get("/changes", params={"last": ""}).json()["Last"]
    response = shared.client.post("/instances", content=make_body())
    assert_orthanc_error(response, status, message, code, "POST", "/instances")
    assert statistics(shared.client) == before
    assert shared.client.get("/changes", params={"last": ""}).json()["Last"] == last_change
    assert_consistent(shared)


def test_empty_body_message(shared: RunningServer) -> None:
    body = shared.client.post("/instances", content=b"").json()
    assert body["Details"] == "Received an empty DICOM file"


def test_bad_bodies_match_the_reference(oracle) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    for case in ("not-dicom", "truncated", "no-sop-uid", "corrupt-zip", "empty"):
        make_body, status, message, code = BAD_BODIES[case]
        response = oracle.client.post("/instances", content=make_body())
        assert response.status_code == status, case
        assert response.json()["Message"] == message, case


JSON_ROUTES = ("/tools/find", "/tools/bulk-delete", "/tools/bulk-content", "/tools/create-dicom")


def test_malformed_json_bodies(shared: RunningServer) -> None:
    before = statistics(shared.client)
    served = 0
    for route in JSON_ROUTES:
        for body in (b"{not json", b"[1, 2", b"\xff\xfe"):
            response = shared.client.post(route, content=body)
            if response.status_code in (404, 405) and response.json()["Message"] != "Bad request":
                break  # not served yet
            assert_orthanc_error(response, 400, "Bad request", 8, "POST", route)
        else:
            served += 1
    assert statistics(shared.client) == before
    assert_consistent(shared)
    if not served:
        pytest.skip("no route taking a JSON body is served yet")


def test_storage_quota_in_reject_mode_answers_507(make_server) -> None:
    server = make_server(MaximumStorageSize=1, MaximumStorageMode="Reject")
    big = make_dicom(patient_id="QUOTA1", rows=512, columns=512)  # ~512 kB
    upload(server.client, big)
    before = statistics(server.client)
    response = server.client.post(
        "/instances", content=make_dicom(patient_id="QUOTA2", rows=512, columns=512)
    )
    assert_orthanc_error(response, 507, "The file storage is full", 19, "POST", "/instances")
    assert statistics(server.client) == before
    assert_consistent(server)
    # a file that would never fit is refused as well
    huge = make_dicom(patient_id="QUOTA3", rows=1024, columns=1024)
    assert server.client.post("/instances", content=huge).status_code == 507
    assert_consistent(server)


def test_read_only_storage_folder_fails_cleanly(make_server) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod cannot make the storage folder read-only")
    server = make_server()
    server.client.get("/system")
    root = storage_root(server)
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        response = server.client.post("/instances", content=make_dicom(patient_id="RO"))
        assert_orthanc_error(response, 500, "Cannot write to file", 14, "POST", "/instances")
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert statistics(server.client)["CountInstances"] == 0
    assert_consistent(server)


def test_write_failure_in_the_storage_area_fails_cleanly(make_server) -> None:
    """A real I/O error even root cannot bypass: the staging folder is not a folder."""
    server = make_server()
    server.client.get("/system")  # the port opens before the storage area is set up
    incoming = storage_root(server) / ".incoming"
    shutil.rmtree(incoming)
    incoming.write_bytes(b"")
    try:
        response = server.client.post("/instances", content=make_dicom(patient_id="IOERR"))
        assert_orthanc_error(response, 500, "Cannot write to file", 14, "POST", "/instances")
    finally:
        incoming.unlink()
        incoming.mkdir()
    assert statistics(server.client)["CountInstances"] == 0
    assert_consistent(server)
    # and the server still works once the disk is back
    upload(server.client, make_dicom(patient_id="IOERR"))
    assert_consistent(server)


def test_gzip_encoded_upload_is_inflated(server) -> None:  # type: ignore[no-untyped-def]
    import gzip

    data = make_dicom(patient_id="GZIP1")
    answer = server.client.post(
        "/instances", content=gzip.compress(data), headers={"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 200
    stored = server.client.get(f"/instances/{answer.json()['ID']}/file").content
    assert stored == data


def test_bad_gzip_body_is_refused_and_changes_nothing(server) -> None:  # type: ignore[no-untyped-def]
    import gzip

    truncated = gzip.compress(make_dicom(patient_id="GZIP2"))[:-20]
    for body, encoding in ((b"not gzip at all", "gzip"), (truncated, "gzip"), (b"x", "br")):
        answer = server.client.post(
            "/instances", content=body, headers={"Content-Encoding": encoding}
        )
        assert answer.status_code == 400, (body[:10], encoding)
    assert server.client.get("/instances").json() == []
