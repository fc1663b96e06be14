"""ZIP archives and DICOMDIR media, streamed synchronously, named as Orthanc names them.

Naming is checked against the reference Orthanc (same files uploaded to both) when it
answers; the rules it showed are also pinned here without it.
"""

from __future__ import annotations

import io
import socket
import subprocess
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from dicomhub.core.archives import clean_name, file_name
from tests.archive_checks import OracleUploads, assert_orthanc_error, oracle_uploads, upload
from tests.dicom_factory import make_dataset, to_bytes


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _zip(response: httpx.Response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(response.content))


def _tricky_study(tag: str) -> tuple[list[bytes], str]:
    """One study whose names exercise every cleaning and de-duplication rule."""
    warnings.simplefilter("ignore")  # over-long values are wanted here
    common: dict[str, Any] = {
        "patient_id": f"ARX/{tag}:*?",
        "patient_name": 'Dé^Jöhn "q" <x>|y, a;b-c_d.e  f',
        "charset": "ISO_IR 100",
        "study_uid": generate_uid(),
        "StudyDescription": "  Brain / Head\\Neck  ",
        "AccessionNumber": "",
    }
    files: list[bytes] = []
    series = generate_uid()
    for _ in range(3):
        files.append(
            to_bytes(make_dataset(series_uid=series, SeriesDescription="Ax T1.", **common))
        )
    files.append(
        to_bytes(make_dataset(series_uid=generate_uid(), SeriesDescription="Ax T1.", **common))
    )
    files.append(to_bytes(make_dataset(series_uid=generate_uid(), modality="MR", **common)))
    files.append(to_bytes(make_dataset(series_uid=generate_uid(), modality="RTPLAN", **common)))
    files.append(to_bytes(make_dataset(series_uid=generate_uid(), modality="M", **common)))
    no_modality = make_dataset(series_uid=generate_uid(), SeriesDescription="Tab\there", **common)
    del no_modality.Modality
    files.append(to_bytes(no_modality))
    nothing = make_dataset(series_uid=generate_uid(), **common)
    del nothing.Modality
    files.append(to_bytes(nothing))
    return files, common["study_uid"]


def _upload_all(client: httpx.Client, files: list[bytes]) -> list[dict[str, Any]]:
    return [upload(client, data) for data in files]


def _contents(z: zipfile.ZipFile) -> dict[str, bytes]:
    return {name: z.read(name) for name in z.namelist()}


# ---- naming rules (no server) ---------------------------------------------------
def test_clean_name_keeps_letters_digits_dot_underscore_and_single_spaces() -> None:
    assert clean_name('ARX/1:*? Dé^Jöhn "q" <x>|y') == "ARX1 D Jhn q xy"
    assert (
        clean_name("a,b;c.d'e!f@g#h$i%j&k(l)m[n]o{p}q=r+s~t`u-v_w") == "abc.defghijklmnopqrstuv_w"
    )
    assert clean_name("  lead  and  trail  ") == "lead and trail"
    assert clean_name("Tab\there") == "Tabhere"
    assert clean_name("Dé^Jöhn", utf8=True) == "Dé Jöhn"


def test_file_names_pad_the_counter_to_eight_characters() -> None:
    assert file_name("CT", 0) == "CT000000.dcm"
    assert file_name("RTPLAN", 12) == "RT000012.dcm"
    assert file_name("M", 1) == "M0000001.dcm"
    assert file_name("", 2) == "00000002.dcm"


# ---- archives ---------------------------------------------------------------------
def test_archives_match_orthanc_names_and_hold_the_stored_files(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    files, _ = _tricky_study(uuid.uuid4().hex[:8])
    answers = _upload_all(client, files)
    by_instance = {a["ID"]: data for a, data in zip(answers, files, strict=True)}
    study = answers[0]["ParentStudy"]
    patient = answers[0]["ParentPatient"]
    series = answers[0]["ParentSeries"]

    z = _zip(client.get(f"/studies/{study}/archive"))
    names = z.namelist()
    assert len(names) == len(files)
    assert sorted(z.read(n) for n in names) == sorted(by_instance.values())
    expected_series = {
        "MR": ["MR000000.dcm"],
        "RTPLAN": ["RT000000.dcm"],
        "M": ["M0000000.dcm"],
        "Unknown Series": ["00000000.dcm"],
        "Tabhere": ["00000000.dcm"],
    }
    seen: dict[str, list[str]] = {}
    for name in names:
        patient_dir, study_dir, series_dir, leaf = name.split("/")
        assert patient_dir.startswith("ARX") and patient_dir.endswith(" D Jhn q xy abc_d.e f")
        assert study_dir == "Brain HeadNeck"
        seen.setdefault(series_dir, []).append(leaf)
    # the two "Ax T1." series: whichever comes second (by identifier) gets "-2"
    twins = sorted([seen.pop("CT Ax T1."), seen.pop("CT Ax T1.-2")], key=len)
    assert twins == [["CT000000.dcm"], ["CT000000.dcm", "CT000001.dcm", "CT000002.dcm"]]
    assert seen == expected_series

    patient_names = _zip(client.get(f"/patients/{patient}/archive")).namelist()
    assert patient_names == names
    series_names = _zip(client.get(f"/series/{series}/archive")).namelist()
    # alone in its archive, the series has no twin to be told apart from
    assert [n.split("/")[2:] for n in series_names] == [
        ["CT Ax T1.", f"CT00000{i}.dcm"] for i in range(3)
    ]
    tools = _zip(client.post("/tools/create-archive", json={"Resources": [series, study]}))
    assert tools.namelist() == names

    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    theirs = [oracle.upload(data) for data in files]
    assert [a["ID"] for a in theirs] == [a["ID"] for a in answers]
    assert _zip(oracle.client.get(f"/studies/{study}/archive")).namelist() == names
    assert _zip(oracle.client.get(f"/patients/{patient}/archive")).namelist() == names
    assert _zip(oracle.client.get(f"/series/{series}/archive")).namelist() == series_names


def test_instances_keep_their_arrival_order(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    study, series = generate_uid(), generate_uid()
    files = [
        to_bytes(
            make_dataset(
                patient_id="ARXORDER", study_uid=study, series_uid=series, InstanceNumber=str(n)
            )
        )
        for n in (3, 5, 1, 4, 2)
    ]
    answers = _upload_all(client, files)
    series_id = answers[0]["ParentSeries"]
    ours = _zip(client.get(f"/series/{series_id}/archive"))
    assert [ours.read(n) for n in ours.namelist()] == files
    media = _zip(client.get(f"/series/{series_id}/media"))
    assert [media.read(f"IMAGES/IM{i}") for i in range(5)] == files
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    for data in files:
        oracle.upload(data)
    theirs = _zip(oracle.client.get(f"/series/{series_id}/archive"))
    assert _contents(theirs) == _contents(ours)


def test_create_archive_of_several_patients_matches_orthanc(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    tag = uuid.uuid4().hex[:6]
    files = [
        to_bytes(
            make_dataset(patient_id=f"ARXP1{tag}", AccessionNumber="A-1", StudyDescription="Knee")
        ),
        to_bytes(make_dataset(patient_id=f"ARXP2{tag}", patient_name="Solo", AccessionNumber="")),
        to_bytes(make_dataset(patient_id=f"ARXP2{tag}", patient_name="Solo", StudyDescription="")),
    ]
    answers = _upload_all(client, files)
    resources = [answers[0]["ParentPatient"], answers[1]["ParentStudy"], answers[2]["ID"]]
    ours = _zip(client.post("/tools/create-archive", json={"Resources": resources}))
    names = ours.namelist()
    assert f"ARXP1{tag} Doe John/A1 Knee/CT/CT000000.dcm" in names
    assert f"ARXP2{tag} Solo/Test study/CT/CT000000.dcm" in names
    assert f"ARXP2{tag} Solo/ACCARXP2{tag}/CT/CT000000.dcm" in names
    utf8 = _zip(
        client.post(f"/patients/{answers[0]['ParentPatient']}/archive", json={"Utf8": True})
    )
    assert utf8.namelist() == [f"ARXP1{tag} Doe John/A1 Knee/CT/CT000000.dcm"]
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    for data in files:
        oracle.upload(data)
    theirs = _zip(oracle.client.post("/tools/create-archive", json={"Resources": resources}))
    assert _contents(theirs) == _contents(ours)


def test_utf8_keeps_accented_letters(client: httpx.Client) -> None:
    data = to_bytes(make_dataset(patient_id="ARXUTF", patient_name="Jöhn^Dé", charset="ISO_IR 100"))
    study = upload(client, data)["ParentStudy"]
    plain = _zip(client.get(f"/studies/{study}/archive")).namelist()
    assert plain[0].startswith("ARXUTF Jhn D/")
    kept = _zip(client.post(f"/studies/{study}/archive", json={"Utf8": True}))
    assert kept.namelist()[0].startswith("ARXUTF Jöhn Dé/")
    assert kept.infolist()[0].flag_bits & 0x800  # the ZIP "names are UTF-8" flag


def test_archive_streams_with_content_disposition(client: httpx.Client) -> None:
    answer = upload(client, to_bytes(make_dataset(patient_id=f"ARXD{uuid.uuid4().hex[:6]}")))
    study = answer["ParentStudy"]
    response = client.get(f"/studies/{study}/archive")
    assert response.headers["content-disposition"] == f'filename="{study}.zip"'
    assert "content-length" not in response.headers  # streamed, not buffered
    response = client.get(f"/studies/{study}/archive", params={"filename": "my study.zip"})
    assert response.headers["content-disposition"] == 'filename="my study.zip"'
    response = client.post(f"/studies/{study}/archive", json={"Filename": "b.zip"})
    assert response.headers["content-disposition"] == 'filename="b.zip"'
    _zip(response)
    response = client.post(f"/studies/{study}/archive", json={"Synchronous": True})
    _zip(response)
    response = client.post(f"/studies/{study}/archive", content=b"")
    _zip(response)
    response = client.post("/tools/create-archive", json={"Resources": [study]})
    assert response.headers["content-disposition"] == 'filename="Archive.zip"'
    for name in ('a"b', "a\r\nX-Injected: 1", "snow\u2603.zip"):
        bad = client.get(f"/studies/{study}/archive", params={"filename": name})
        assert_orthanc_error(bad, 400, "Bad request", 8)
    assert client.get("/system").status_code == 200


def test_small_members_are_readable_by_streaming_readers(client: httpx.Client) -> None:
    """Each member's sizes follow its data (the ZIP is streamed); Java's
    ``ZipInputStream`` then refuses a member that is stored rather than deflated, so
    every member is deflated, as in Orthanc's archives."""
    patient = f"ARXS{uuid.uuid4().hex[:6]}"
    answer = upload(client, to_bytes(make_dataset(patient_id=patient)))
    for path in (
        f"/studies/{answer['ParentStudy']}/archive",
        f"/patients/{answer['ParentPatient']}/media",
    ):
        members = zipfile.ZipFile(io.BytesIO(client.get(path).content)).infolist()
        assert members, path
        for member in members:
            assert member.file_size < 16 << 10 or member.filename == "DICOMDIR"
            if member.flag_bits & 0x08:  # sizes in a data descriptor
                assert member.compress_type == zipfile.ZIP_DEFLATED, (path, member.filename)


def test_synchronous_is_read_first_and_must_be_a_boolean(client: httpx.Client) -> None:
    """As Orthanc reads a job request: ``Synchronous`` wins over ``Asynchronous``."""
    answer = upload(client, to_bytes(make_dataset(patient_id=f"ARXJ{uuid.uuid4().hex[:6]}")))
    path = f"/studies/{answer['ParentStudy']}/archive"
    both = client.post(path, json={"Synchronous": True, "Asynchronous": True})
    assert both.headers["content-type"] == "application/zip"
    _zip(both)
    job = client.post(path, json={"Synchronous": False, "Asynchronous": False})
    assert set(job.json()) == {"ID", "Path"}
    for body in ({"Synchronous": "yes"}, {"Asynchronous": "true"}):
        assert_orthanc_error(client.post(path, json=body), 400, "Bad file format", 15)


def test_create_archive_inputs(client: httpx.Client) -> None:
    answer = upload(client, to_bytes(make_dataset(patient_id=f"ARXI{uuid.uuid4().hex[:6]}")))
    instance, study = answer["ID"], answer["ParentStudy"]
    # a bare list (the older form) and instance identifiers are accepted
    assert len(_zip(client.post("/tools/create-archive", json=[study])).namelist()) == 1
    assert (
        len(_zip(client.post("/tools/create-archive", json={"Resources": [instance]})).namelist())
        == 1
    )
    assert _zip(client.post("/tools/create-archive", json={"Resources": []})).namelist() == []
    empty_media = _zip(client.post("/tools/create-media", json={"Resources": []}))
    assert empty_media.namelist() == ["DICOMDIR"]
    assert len(dcmread(io.BytesIO(empty_media.read("DICOMDIR"))).DirectoryRecordSequence) == 0
    assert (
        len(_zip(client.get("/tools/create-archive", params={"resources": study})).namelist()) == 1
    )
    response = client.post("/tools/create-archive", json={})
    body = assert_orthanc_error(response, 400, "Bad file format", 15)
    assert body["Details"] == "Missing field Resources in the JSON body"
    response = client.post("/tools/create-archive", json={"Resources": study})
    assert_orthanc_error(response, 400, "Bad file format", 15)
    response = client.post("/tools/create-archive", content=b"{bad")
    assert_orthanc_error(response, 400, "Bad file format", 15)
    response = client.post("/tools/create-archive", json={"Resources": ["nope"]})
    assert_orthanc_error(response, 404, "Unknown resource", 17)
    assert_orthanc_error(client.get("/studies/nope/archive"), 404, "Unknown resource", 17)
    assert_orthanc_error(client.get(f"/series/{study}/archive"), 404, "Unknown resource", 17)


def test_unsupported_options_are_refused_clearly(client: httpx.Client) -> None:
    answer = upload(client, to_bytes(make_dataset(patient_id=f"ARXU{uuid.uuid4().hex[:6]}")))
    study = answer["ParentStudy"]
    # Asynchronous archives are jobs now: tests/rest/test_jobs.py covers them.
    response = client.get(f"/studies/{study}/archive", params={"transcode": "bad"})
    assert_orthanc_error(response, 400, "Parameter out of range", 3)
    # Transcoding is built (tests/rest/test_transcoding.py): 16-bit pixels cannot be
    # JPEG baseline, so the file goes into the archive as stored, as in Orthanc.
    response = client.post(
        f"/studies/{study}/archive", json={"Transcode": "1.2.840.10008.1.2.4.50"}
    )
    [name] = _zip(response).namelist()
    assert dcmread(io.BytesIO(_zip(response).read(name))).file_meta.TransferSyntaxUID == (
        "1.2.840.10008.1.2.1"
    )


def test_compressed_storage_is_inflated_into_the_archive(make_server: Any) -> None:
    server = make_server(StorageCompression=True)
    data = to_bytes(make_dataset(patient_id="ARXZ", rows=64, columns=64))
    answer = upload(server.client, data)
    z = _zip(server.client.get(f"/studies/{answer['ParentStudy']}/archive"))
    assert [z.read(n) for n in z.namelist()] == [data]


def test_client_leaving_mid_stream_does_not_hurt_the_server(server: Any) -> None:
    client = server.client
    study = generate_uid()
    series = generate_uid()
    for _ in range(40):
        upload(
            client,
            to_bytes(
                make_dataset(
                    patient_id="ARXS", study_uid=study, series_uid=series, rows=256, columns=256
                )
            ),
        )
    study_id = client.get("/studies").json()[0]
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(f"GET /studies/{study_id}/archive HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        # closed with most of the archive unsent
    assert client.get("/system").status_code == 200
    z = _zip(client.get(f"/studies/{study_id}/archive"))
    assert len(z.namelist()) == 40 and z.testzip() is None
    assert server.process.poll() is None


# ---- media ------------------------------------------------------------------------
def _media_records(root: Path) -> list[tuple[Any, ...]]:
    """Per record: type, identifying UID or ID, file ID and the attributes it holds."""
    ds = dcmread(root / "DICOMDIR")
    out: list[tuple[Any, ...]] = []
    for record in ds.DirectoryRecordSequence:
        file_id = record.get("ReferencedFileID")
        parts = (
            ()
            if file_id is None
            else tuple(file_id)
            if not isinstance(file_id, str)
            else (file_id,)
        )
        key = next(
            (
                str(record.get(k))
                for k in (
                    "ReferencedSOPInstanceUIDInFile",
                    "SeriesInstanceUID",
                    "StudyInstanceUID",
                    "PatientID",
                )
                if k in record
            ),
            "",
        )
        keywords = sorted(e.keyword for e in record if e.tag.group != 0x0004)
        out.append((record.DirectoryRecordType, key, parts, keywords))
    return out


def test_media_records_of_sparse_files_match_orthanc(
    client: httpx.Client, oracle: OracleUploads | None, tmp_path: Path
) -> None:
    sparse = make_dataset(patient_id=f"ARXSP{uuid.uuid4().hex[:6]}", StudyID="S1")
    for keyword in ("StudyDate", "StudyTime", "AccessionNumber", "StudyDescription"):
        del sparse[keyword]
    for keyword in ("SeriesNumber", "InstanceNumber", "PatientName", "Modality"):
        del sparse[keyword]
    data = to_bytes(sparse)
    study = upload(client, data)["ParentStudy"]
    ours = _zip(client.get(f"/studies/{study}/media"))
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "DICOMDIR").write_bytes(ours.read("DICOMDIR"))
    records = _media_records(tmp_path / "ours")
    assert [r[3] for r in records] == [
        ["PatientID", "PatientName"],
        [
            "AccessionNumber",
            "StudyDate",
            "StudyDescription",
            "StudyID",
            "StudyInstanceUID",
            "StudyTime",
        ],
        ["Modality", "SeriesInstanceUID"],
        ["InstanceNumber"],
    ]
    study_record = dcmread(tmp_path / "ours" / "DICOMDIR").DirectoryRecordSequence[1]
    assert len(study_record.StudyDate) == 8 and study_record.StudyTime  # type 1: "now"
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    oracle.upload(data)
    theirs = _zip(oracle.client.get(f"/studies/{study}/media"))
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "DICOMDIR").write_bytes(theirs.read("DICOMDIR"))
    assert _media_records(tmp_path / "theirs") == records


def test_media_has_a_dicomdir_readable_by_pydicom_and_dcmtk(
    client: httpx.Client, oracle: OracleUploads | None, tmp_path: Path
) -> None:
    files, study_uid = _tricky_study(uuid.uuid4().hex[:8])
    answers = _upload_all(client, files)
    study = answers[0]["ParentStudy"]
    z = _zip(client.get(f"/studies/{study}/media"))
    names = z.namelist()
    assert names == [f"IMAGES/IM{i}" for i in range(len(files))] + ["DICOMDIR"]
    assert sorted(z.read(n) for n in names[:-1]) == sorted(files)
    z.extractall(tmp_path / "ours")

    fs = FileSet(tmp_path / "ours" / "DICOMDIR")
    assert fs.ID == "ORTHANC_MEDIA"
    assert len(fs) == len(files)
    for instance in fs:
        assert Path(instance.path).relative_to(tmp_path / "ours").parts[0] == "IMAGES"
        assert instance.load().SOPInstanceUID == instance.SOPInstanceUID
    patient_record = dcmread(tmp_path / "ours" / "DICOMDIR").DirectoryRecordSequence[0]
    assert patient_record.DirectoryRecordType == "PATIENT"
    assert str(patient_record.PatientName).startswith("Dé^Jöhn")
    assert fs.find_values("StudyInstanceUID") == [study_uid]

    dump = subprocess.run(
        ["dcmdump", "+sd", "DICOMDIR"],
        cwd=tmp_path / "ours",
        capture_output=True,
        encoding="latin-1",
    )
    assert dump.returncode == 0, dump.stderr
    assert "IMAGES\\IM0" in dump.stdout and "ORTHANC_MEDIA" in dump.stdout
    check = subprocess.run(
        ["dcmftest", "DICOMDIR", *names[:-1]],
        cwd=tmp_path / "ours",
        capture_output=True,
        encoding="latin-1",
    )
    assert check.returncode == 0 and "no:" not in check.stdout, check.stdout

    extended = _zip(client.post(f"/studies/{study}/media", json={"Extended": True}))
    records = dcmread(io.BytesIO(extended.read("DICOMDIR"))).DirectoryRecordSequence
    assert any("SeriesDescription" in r for r in records if r.DirectoryRecordType == "SERIES")
    # As Orthanc: "?extended" asks for it when present, whatever its value.
    for value in ("", "false"):
        media = _zip(client.get(f"/studies/{study}/media", params={"extended": value}))
        records = dcmread(io.BytesIO(media.read("DICOMDIR"))).DirectoryRecordSequence
        series = [r for r in records if r.DirectoryRecordType == "SERIES"]
        assert any("SeriesDescription" in r for r in series), value
    tools = _zip(client.post("/tools/create-media-extended", json={"Resources": [study]}))
    assert tools.namelist() == names
    assert _zip(client.get("/tools/create-media", params={"resources": study})).namelist() == names

    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    for data in files:
        oracle.upload(data)
    theirs = _zip(oracle.client.get(f"/studies/{study}/media"))
    assert theirs.namelist() == names
    assert [theirs.read(n) for n in names[:-1]] == [z.read(n) for n in names[:-1]]
    theirs.extractall(tmp_path / "theirs")
    assert _media_records(tmp_path / "theirs") == _media_records(tmp_path / "ours")
    theirs = _zip(oracle.client.post(f"/studies/{study}/media", json={"Extended": True}))
    (tmp_path / "theirs" / "DICOMDIR").write_bytes(theirs.read("DICOMDIR"))
    (tmp_path / "ours" / "DICOMDIR").write_bytes(extended.read("DICOMDIR"))
    assert _media_records(tmp_path / "theirs") == _media_records(tmp_path / "ours")


def test_media_record_of_a_structured_report_has_the_keys_its_type_requires(
    client: httpx.Client,
) -> None:
    """An SR DOCUMENT record needs its completion and verification flags, content date
    and time and concept name (PS3.3); a file without what its record type requires
    gets an IMAGE record, as Orthanc writes for every instance."""
    report = Path(get_testdata_file("reportsi.dcm", download=False)).read_bytes()
    answer = upload(client, report)
    z = _zip(client.get(f"/patients/{answer['ParentPatient']}/media"))
    leaf = dcmread(io.BytesIO(z.read("DICOMDIR"))).DirectoryRecordSequence[-1]
    assert leaf.DirectoryRecordType == "SR DOCUMENT"
    for keyword in ("CompletionFlag", "VerificationFlag", "ContentDate", "ContentTime"):
        assert keyword in leaf, keyword
    assert leaf.ConceptNameCodeSequence[0].CodeValue
    assert "ContentSequence" not in leaf  # the report's tree stays in its file
    client.delete(f"/patients/{answer['ParentPatient']}")
