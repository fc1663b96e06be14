"""``/{level}/{id}/anonymize`` and ``/tools/bulk-anonymize``: the profile, the new
patient, identifiers remapped consistently, our PS3.15 options; every profile version
the reference Orthanc knows is compared with it tag by tag."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomhub.dicom import confidentiality
from tests.archive_checks import (
    OracleUploads,
    assert_orthanc_error,
    oracle_uploads,
    statistics,
    upload,
)
from tests.dicom_factory import make_dataset, to_bytes


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _rich(patient: str, study_uid: str, series_uid: str, referenced: str) -> Dataset:
    """An instance with nested identifiers, private tags and a reference to another."""
    ds = make_dataset(
        patient_id=patient,
        study_uid=study_uid,
        series_uid=series_uid,
        InstitutionName="General Hospital",
        StudyID="S1",
        FrameOfReferenceUID="1.2.826.0.1.3680043.99.5",
        ReferringPhysicianName="Who^Doctor",
        OtherPatientIDs="OTHER",
    )
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = referenced
    item.AccessionNumber = "NESTED"
    item.add_new(0x00190010, "LO", "ACME")
    item.add_new(0x00191010, "LO", "nested secret")
    ds.ReferencedImageSequence = [item]
    code = Dataset()
    code.CodeValue = "1"
    code.StudyInstanceUID = study_uid
    code.PatientID = "NESTEDPID"
    ds.DerivationCodeSequence = [code]
    ds.add_new(0x00190010, "LO", "ACME")
    ds.add_new(0x00191010, "LO", "secret")
    return ds


def _rich_study(client: httpx.Client) -> dict[str, Any]:
    study_uid, series_uid = generate_uid(), generate_uid()
    first_uid, second_uid = generate_uid(), generate_uid()
    first = _rich("ANON001", study_uid, series_uid, second_uid)
    first.SOPInstanceUID = first.file_meta.MediaStorageSOPInstanceUID = first_uid
    second = _rich("ANON001", study_uid, series_uid, first_uid)
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = second_uid
    a = upload(client, to_bytes(first))
    b = upload(client, to_bytes(second))
    return {"study": a["ParentStudy"], "patient": a["ParentPatient"], "instances": [a, b]}


def _file(client: httpx.Client, instance: str) -> Dataset:
    response = client.get(f"/instances/{instance}/file")
    assert response.status_code == 200
    return dcmread(io.BytesIO(response.content))


def test_anonymize_study(client: httpx.Client) -> None:
    source = _rich_study(client)
    response = client.post(f"/studies/{source['study']}/anonymize", json={})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["IsAnonymization"] is True and answer["Type"] == "Study"
    assert answer["InstancesCount"] == 2
    assert answer["PatientID"] != source["patient"]  # a new patient
    for level, public_id, original in (
        ("studies", answer["ID"], source["study"]),
        ("patients", answer["PatientID"], source["patient"]),
    ):
        meta = client.get(f"/{level}/{public_id}/metadata/AnonymizedFrom")
        assert meta.status_code == 200 and meta.text == original
    instances = client.get(f"/studies/{answer['ID']}/instances").json()
    files = [_file(client, i["ID"]) for i in instances]
    originals = {i["ID"] for i in source["instances"]}
    assert {
        client.get(f"/instances/{i['ID']}/metadata/AnonymizedFrom").text for i in instances
    } == originals
    names = {str(f.PatientName) for f in files}
    assert len(names) == 1 and re.fullmatch(r"Anonymized\d+", names.pop())
    new_sops = {f.SOPInstanceUID for f in files}
    for ds in files:
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethod.endswith(" - PS 3.15-2023b Table E.1-1 Basic Profile")
        assert ds.PatientID not in ("ANON001", "")
        assert "InstitutionName" not in ds and "ReferringPhysicianName" in ds
        assert ds.ReferringPhysicianName == ""  # Z in the basic profile
        assert "OtherPatientIDs" not in ds
        assert ds.StudyID == ""
        assert 0x00191010 not in ds and 0x00190010 not in ds  # private tags go
        item = ds.ReferencedImageSequence[0]
        # The reference follows the instance it points to, inside the same study.
        assert item.ReferencedSOPInstanceUID in new_sops - {ds.SOPInstanceUID}
        assert item.AccessionNumber == ""  # the profile applies inside sequences
        assert 0x00191010 not in item
        nested = ds.DerivationCodeSequence[0]
        assert nested.StudyInstanceUID == ds.StudyInstanceUID
        assert nested.PatientID not in ("NESTEDPID", ds.PatientID)
        assert ds.FrameOfReferenceUID != "1.2.826.0.1.3680043.99.5"
    assert len({f.StudyInstanceUID for f in files}) == 1
    assert len({f.FrameOfReferenceUID for f in files}) == 1  # same old UID, same new UID
    # The source stays.
    assert client.get(f"/studies/{source['study']}").status_code == 200


def test_anonymization_counter_and_customization(client: httpx.Client) -> None:
    source = _rich_study(client)
    instance = source["instances"][0]["ID"]
    numbers = []
    for _ in range(2):
        out = dcmread(io.BytesIO(client.post(f"/instances/{instance}/anonymize", json={}).content))
        numbers.append(int(str(out.PatientName)[len("Anonymized") :]))
    assert numbers[1] == numbers[0] + 1
    custom = client.post(
        f"/instances/{instance}/anonymize",
        json={
            "Replace": {"PatientName": "Chosen"},
            "Keep": ["StudyDescription", "0019,1010"],
            "Remove": ["Modality"],
        },
    )
    assert custom.status_code == 200, custom.text
    out = dcmread(io.BytesIO(custom.content))
    assert out.PatientName == "Chosen"
    assert out.StudyDescription == "Test study"
    assert out[0x00191010].value in ("secret", b"secret")
    assert out[0x00190010].value in ("ACME", b"ACME")  # a kept tag keeps its creator
    assert "Modality" not in out
    # A customized anonymization does not claim to follow the profile.
    assert "DeidentificationMethod" not in out
    kept = client.post(f"/instances/{instance}/anonymize", json={"KeepPrivateTags": True})
    out = dcmread(io.BytesIO(kept.content))
    assert 0x00191010 in out and 0x00191010 in out.ReferencedImageSequence[0]


def test_bad_anonymize_bodies(client: httpx.Client) -> None:
    source = _rich_study(client)
    before = statistics(client)
    cases: list[tuple[Any, int, str, str | None]] = [
        (
            {"DicomVersion": "2099"},
            400,
            "Parameter out of range",
            "Unknown specific version of the DICOM standard: 2099",
        ),
        ({"DicomVersion": 3}, 400, "Bad file format", None),
        ({"KeepPrivateTags": 1}, 400, "Bad file format", None),
        (
            {"Keep": ["PatientID"]},
            400,
            "Bad request",
            'Marking tag "PatientID" as to be kept requires the "Force" option to be set to true',
        ),
        ({"ConfidentialityOptions": "RetainUIDs"}, 400, "Bad file format", None),
        ({"ConfidentialityOptions": ["RetainEverything"]}, 400, "Parameter out of range", None),
        ({"ConfidentialityOptions": ["CleanGraphics"]}, 400, "Parameter out of range", None),
    ]
    for body, status, message, details in cases:
        for route in (f"/studies/{source['study']}", f"/instances/{source['instances'][0]['ID']}"):
            answer = assert_orthanc_error(
                client.post(f"{route}/anonymize", json=body), status, message, None
            )
            if details is not None:
                assert answer["Details"] == details
    assert statistics(client) == before


def test_versions_and_methods(client: httpx.Client) -> None:
    source = _rich_study(client)
    instance = source["instances"][0]["ID"]
    for version in confidentiality.VERSIONS:
        response = client.post(f"/instances/{instance}/anonymize", json={"DicomVersion": version})
        assert response.status_code == 200, response.text
        out = dcmread(io.BytesIO(response.content))
        assert out.DeidentificationMethod.endswith(" - " + confidentiality.profile(version).method)
        # 2008 removes the Accession Number, later editions empty it.
        if version == "2008":
            assert "AccessionNumber" not in out
        else:
            assert out.AccessionNumber == ""


def test_confidentiality_options(client: httpx.Client) -> None:
    ds = make_dataset(
        patient_id="OPT",
        PatientAge="042Y",
        PatientWeight="70",
        InstitutionName="General Hospital",
        StationName="CT01",
        DeviceSerialNumber="SN1",
        AcquisitionDate="20240102",
        FrameOfReferenceUID="1.2.826.0.1.3680043.99.6",
    )
    instance = upload(client, to_bytes(ds))["ID"]

    def anonymize(options: list[str]) -> Dataset:
        response = client.post(
            f"/instances/{instance}/anonymize", json={"ConfidentialityOptions": options}
        )
        assert response.status_code == 200, response.text
        return dcmread(io.BytesIO(response.content))

    plain = anonymize([])
    for keyword in ("PatientAge", "PatientWeight", "InstitutionName", "StationName"):
        assert keyword not in plain
    assert plain.StudyDate == "" and "AcquisitionDate" not in plain
    out = anonymize(["RetainPatientCharacteristics"])
    assert out.PatientAge == "042Y" and out.PatientSex == "M" and "InstitutionName" not in out
    out = anonymize(["RetainInstitutionIdentity", "RetainDeviceIdentity"])
    assert out.InstitutionName == "General Hospital"
    assert out.StationName == "CT01" and out.DeviceSerialNumber == "SN1"
    out = anonymize(["RetainLongitudinalTemporalInformation"])
    assert out.StudyDate == "20240102" and out.AcquisitionDate == "20240102"
    assert out.PatientBirthDate == "19700101"
    out = anonymize(["RetainUIDs"])
    assert out.StudyInstanceUID == ds.StudyInstanceUID
    assert out.SOPInstanceUID == ds.SOPInstanceUID
    assert out.FrameOfReferenceUID == ds.FrameOfReferenceUID
    assert out.PatientID != "OPT"  # the patient is still a new one
    assert "DeidentificationMethod" not in out


def test_bulk_anonymize_and_async(client: httpx.Client) -> None:
    first = upload(client, to_bytes(make_dataset(patient_id="BA1")))
    second = upload(client, to_bytes(make_dataset(patient_id="BA2")))
    response = client.post(
        "/tools/bulk-anonymize", json={"Resources": [first["ParentSeries"], second["ID"]]}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["IsAnonymization"] is True and answer["InstancesCount"] == 2
    patients = [r["ID"] for r in answer["Resources"] if r["Type"] == "Patient"]
    assert len(patients) == 2
    assert not {first["ParentPatient"], second["ParentPatient"]} & set(patients)

    job = client.post(
        f"/patients/{first['ParentPatient']}/anonymize", json={"Synchronous": False}
    ).json()
    import time

    for _ in range(400):
        state = client.get(f"/jobs/{job['ID']}").json()
        if state["State"] in ("Success", "Failure"):
            break
        time.sleep(0.05)
    assert state["State"] == "Success", state
    assert state["Type"] == "ResourceModification"
    assert state["Content"]["Type"] == "Patient"
    assert state["Content"]["IsAnonymization"] is True


# ---- the reference Orthanc: the profile tables, tag by tag -------------------------------
_SAMPLES = {
    "AE": "AETITLE",
    "AS": "030Y",
    "CS": "CODE",
    "DA": "20200102",
    "DS": "1.5",
    "DT": "20200102101010",
    "FL": 1.5,
    "FD": 1.5,
    "IS": "7",
    "LO": "LONGSTR",
    "LT": "LONGTEXT",
    "OB": b"\x01\x02",
    "OW": b"\x01\x02",
    "PN": "Person^Name",
    "SH": "SHORT",
    "SL": 3,
    "SS": 3,
    "ST": "SHORTTEXT",
    "TM": "101010",
    "UC": "UNLIMITED",
    "UL": 3,
    "UN": b"\x01\x02",
    "UR": "http://example.com/x",
    "US": 3,
    "UT": "UTEXT",
}


def _profile_dataset() -> Dataset:
    """Every attribute some profile touches, plus a few none touches."""
    ds = make_dataset(patient_id="PROFILE")
    tags: set[int] = set()
    for version in confidentiality.VERSIONS:
        chosen = confidentiality.profile(version)
        tags |= chosen.remove | chosen.empty | chosen.new_uids
    tags |= {0x00180050, 0x00280030, 0x00080060}  # untouched ones
    for tag in sorted(tags):
        # Command set, file meta and trailing padding never sit in a stored dataset.
        if tag in ds or tag >> 16 in (0x0000, 0x0002, 0xFFFC):
            continue
        vr = dictionary_VR(tag).split(" or ")[0]
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = "KEEPME"
            ds.add(DataElement(tag, "SQ", [item]))
        elif vr == "UI":
            ds.add(DataElement(tag, "UI", f"1.2.826.0.1.3680043.99.8.{tag}"))
        elif vr in _SAMPLES:
            ds.add(DataElement(tag, vr, _SAMPLES[vr]))
    return ds


def _actions(source: Dataset, data: bytes) -> dict[int, str]:
    after = dcmread(io.BytesIO(data))
    found = {}
    for elem in source:
        tag = int(elem.tag)
        if tag in (0x00100010, 0x00100020, 0x0020000D, 0x0020000E, 0x00080018):
            continue
        if tag not in after:
            found[tag] = "X"
        elif after[tag].value in (None, "", b"", []):
            found[tag] = "Z"
        elif after[tag].value != elem.value:
            found[tag] = "U" if elem.VR == "UI" else "changed"
        else:
            found[tag] = "-"
    return found


@pytest.mark.parametrize("version", ["2008", "2017c", "2021b"])
def test_profile_matches_the_oracle(
    client: httpx.Client, oracle: OracleUploads | None, version: str
) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    ds = _profile_dataset()
    data = to_bytes(ds)
    ours = upload(client, data)["ID"]
    theirs = oracle.upload(data)["ID"]
    body = {"DicomVersion": version}
    mine = client.post(f"/instances/{ours}/anonymize", json=body)
    reference = oracle.client.post(f"/instances/{theirs}/anonymize", json=body)
    assert mine.status_code == reference.status_code == 200
    expected, got = _actions(ds, reference.content), _actions(ds, mine.content)
    differences = {f"{t:08X}": (expected[t], got[t]) for t in expected if expected[t] != got[t]}
    assert differences == {}
    # And the table says the same as what both servers did.
    chosen = confidentiality.profile(version)
    for tag, action in got.items():
        if tag not in (0x00120062, 0x00120063):
            assert chosen.action(tag) == action, f"{tag:08X}"


def _shape(data: bytes) -> Any:
    """The anonymized file with generated values replaced by tokens given in order of
    first appearance: equal shapes mean the same tags and the same equalities."""
    ds = dcmread(io.BytesIO(data))
    tokens: dict[str, str] = {}

    def value(elem: DataElement) -> Any:
        text = str(elem.value)
        if elem.VR == "UI" or elem.tag == 0x00100020:
            return tokens.setdefault(text, f"<{len(tokens)}>")
        if elem.tag == 0x00100010:
            return re.sub(r"\d+$", "#", text)
        if elem.tag == 0x00120063:
            return text.split(" - ", 1)[1]
        return text

    def walk(dataset: Dataset) -> list[Any]:
        out: list[Any] = []
        for elem in dataset:
            if elem.VR == "SQ":
                out.append((str(elem.tag), [walk(item) for item in elem.value]))
            elif elem.VR not in ("OB", "OW", "UN"):
                out.append((str(elem.tag), value(elem)))
        return out

    return walk(ds)


@pytest.mark.parametrize(
    "body",
    [
        {"DicomVersion": "2021b"},
        {"DicomVersion": "2017c", "KeepPrivateTags": True},
        {"DicomVersion": "2021b", "Keep": ["ReferencedImageSequence"]},
        {"DicomVersion": "2021b", "Replace": {"PatientName": "Given"}, "Remove": ["Modality"]},
        {"DicomVersion": "2008"},
        {"Keep": ["StudyInstanceUID", "SeriesInstanceUID"], "Force": True},
        {
            "DicomVersion": "2021b",
            "Remove": ["ReferencedImageSequence[0].ReferencedSOPInstanceUID"],
            "Replace": {"DerivationCodeSequence[*].CodeValue": "Z"},
            "Keep": ["AccessionNumber"],
        },
    ],
)
def test_nested_identifiers_match_the_oracle(
    client: httpx.Client, oracle: OracleUploads | None, body: dict[str, Any]
) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    ds = _rich("ORACLEANON", generate_uid(), generate_uid(), "1.2.826.0.1.3680043.99.9")
    data = to_bytes(ds)
    ours = upload(client, data)["ID"]
    theirs = oracle.upload(data)["ID"]
    mine = client.post(f"/instances/{ours}/anonymize", json=body)
    reference = oracle.client.post(f"/instances/{theirs}/anonymize", json=body)
    assert mine.status_code == reference.status_code == 200
    assert _shape(mine.content) == _shape(reference.content)


def test_a_job_killed_in_flight_finishes_after_a_restart(make_server: Any) -> None:
    """Killed (SIGKILL) while the job may still run: after the restart the job is run
    again from its saved parameters and ends with one copy of every instance."""
    from tests.archive_checks import assert_consistent
    from tests.core.test_crash_safety import restart

    server = make_server()
    study_uid, series_uid = generate_uid(), generate_uid()
    for _ in range(30):
        ds = make_dataset(patient_id="KILLED", study_uid=study_uid, series_uid=series_uid)
        stored = upload(server.client, to_bytes(ds))
    response = server.client.post(
        f"/studies/{stored['ParentStudy']}/anonymize", json={"Asynchronous": True}
    )
    job_id = response.json()["ID"]
    server.kill()
    again = restart(server)
    try:
        import time

        for _ in range(600):
            job = again.client.get(f"/jobs/{job_id}").json()
            if job["State"] in ("Success", "Failure"):
                break
            time.sleep(0.05)
        assert job["State"] == "Success", job
        assert statistics(again.client)["CountInstances"] == 60
        new_study = again.client.get(job["Content"]["Path"]).json()
        assert len(again.client.get(f"/studies/{new_study['ID']}/instances").json()) == 30
        assert_consistent(again)
    finally:
        again.stop()


def test_study_answers_match_the_oracle(client: httpx.Client, oracle: OracleUploads | None) -> None:
    """Same study on both servers: the same answer shapes, the same new study (its
    main tags, which of them are emptied), the same job description."""
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    study_uid, series_uid = generate_uid(), generate_uid()
    ours = theirs = None
    for number in range(2):
        ds = _rich("ORACLESTUDY", study_uid, series_uid, "1.2.826.0.1.3680043.99.9")
        ds.InstanceNumber = str(number + 1)
        data = to_bytes(ds)
        ours = upload(client, data)["ParentStudy"]
        theirs = oracle.upload(data)["ParentStudy"]
    created: list[str] = []
    try:
        answers = {}
        for name, http, study in (("ours", client, ours), ("theirs", oracle.client, theirs)):
            sync = http.post(f"/studies/{study}/anonymize", json={})
            assert sync.status_code == 200, sync.text
            job = http.post(f"/studies/{study}/anonymize", json={"Asynchronous": True}).json()
            import time

            for _ in range(400):
                state = http.get(f"/jobs/{job['ID']}").json()
                if state["State"] in ("Success", "Failure"):
                    break
                time.sleep(0.05)
            new_study = http.get(f"/studies/{sync.json()['ID']}").json()
            answers[name] = (sync.json(), state, new_study)
            if name == "theirs":
                created += [sync.json()["PatientID"], state["Content"]["PatientID"]]
        (mine, my_job, my_study), (reference, their_job, their_study) = (
            answers["ours"],
            answers["theirs"],
        )
        assert set(mine) == set(reference)
        for key in (
            "Description",
            "FailedInstancesCount",
            "InstancesCount",
            "IsAnonymization",
            "Type",
        ):
            assert mine[key] == reference[key]
        assert set(my_job) == set(their_job)
        assert my_job["Type"] == their_job["Type"] == "ResourceModification"
        assert set(my_job["Content"]) == set(their_job["Content"])
        assert set(my_study["MainDicomTags"]) == set(their_study["MainDicomTags"])
        for key, value in their_study["MainDicomTags"].items():
            if key != "StudyInstanceUID":
                assert my_study["MainDicomTags"][key] == value, key
        assert len(my_study["Series"]) == len(their_study["Series"])
    finally:
        for patient in created:
            oracle.client.delete(f"/patients/{patient}")
