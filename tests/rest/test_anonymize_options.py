"""The PS3.15 options beyond Orthanc, through a real server: Clean Descriptors and
Retain Safe Private on single instances and in study jobs; where no identifying text
is involved, the result is compared with what the reference Orthanc does when told to
``Keep`` the same attributes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.archive_checks import OracleUploads, oracle_uploads, upload
from tests.dicom_factory import make_dataset, to_bytes

CLEAN = {"ConfidentialityOptions": ["CleanDescriptors"]}
SAFE = {"ConfidentialityOptions": ["RetainSafePrivate"]}
B_VALUE, GRADIENT, CSA_TYPE = 0x0019110C, 0x0019110E, 0x00191108


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _identified(patient: str, study_uid: str) -> Dataset:
    ds = make_dataset(
        patient_id=patient,
        patient_name="Doe^John",
        study_uid=study_uid,
        PatientBirthDate="19700305",
        AccessionNumber="ACC4711",
        InstitutionName="Mercy Hospital",
        StudyDescription="CT head John Doe born 05/03/1970",
        SeriesDescription=f"Follow-up {patient} at Mercy Hospital",
        ImageComments="Acc ACC4711, seen by Dr House",
        ProtocolName="Head routine",
        OperatorsName="House^Gregory",
    )
    request = Dataset()
    request.RequestedProcedureDescription = "Head CT for Doe"
    request.RequestedProcedureID = "RP1"
    ds.RequestAttributesSequence = [request]
    return ds


def _read(response: httpx.Response) -> Dataset:
    assert response.status_code == 200, response.text
    return dcmread(io.BytesIO(response.content))


def _check_cleaned(ds: Dataset, patient: str) -> None:
    assert ds.StudyDescription == "CT head *** *** born ***"
    assert ds.SeriesDescription == "Follow-up *** at ***"
    assert ds.ImageComments == "Acc ***, seen by Dr ***"
    assert ds.ProtocolName == "Head routine"
    assert ds.RequestAttributesSequence[0].RequestedProcedureDescription == "Head CT for ***"
    assert "RequestedProcedureID" not in ds.RequestAttributesSequence[0]  # the profile
    # The rest is the basic profile as usual.
    assert ds.PatientID != patient and str(ds.PatientName).startswith("Anonymized")
    assert ds.AccessionNumber == "" and ds.PatientBirthDate == ""
    assert "InstitutionName" not in ds and "OperatorsName" not in ds
    assert "DeidentificationMethod" not in ds  # an option: not the plain profile


def test_clean_descriptors(client: httpx.Client) -> None:
    study_uid = generate_uid()
    first = upload(client, to_bytes(_identified("CLEAN01", study_uid)))
    upload(client, to_bytes(_identified("CLEAN01", study_uid)))
    _check_cleaned(_read(client.post(f"/instances/{first['ID']}/anonymize", json=CLEAN)), "CLEAN01")
    # Without the option the descriptors go, as in Orthanc.
    plain = _read(client.post(f"/instances/{first['ID']}/anonymize", json={}))
    assert "StudyDescription" not in plain and "ImageComments" not in plain
    # A study job (its modification is saved as JSON and read back).
    response = client.post(f"/studies/{first['ParentStudy']}/anonymize", json=CLEAN)
    assert response.status_code == 200, response.text
    instances = client.get(f"/studies/{response.json()['ID']}/instances").json()
    assert len(instances) == 2
    for instance in instances:
        _check_cleaned(_read(client.get(f"/instances/{instance['ID']}/file")), "CLEAN01")
    # Older editions clean only what they would have removed.
    old = _read(
        client.post(f"/instances/{first['ID']}/anonymize", json={**CLEAN, "DicomVersion": "2008"})
    )
    assert old.StudyDescription == "CT head *** *** born ***"


def _with_private(patient: str) -> Dataset:
    ds = make_dataset(patient_id=patient, StudyDescription="Chest", SeriesDescription="PA")
    ds.add_new(0x00190010, "LO", "ACME 1.0")
    ds.add_new(0x00190011, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x00191001, "LO", "ACME secret")
    ds.add_new(B_VALUE, "IS", "1000")
    ds.add_new(GRADIENT, "FD", [0.0, 0.6, 0.8])
    ds.add_new(CSA_TYPE, "CS", "IMAGE NUM 4")  # SIEMENS MR HEADER, but not listed
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = generate_uid()
    item.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    item.add_new(0x0019100C, "IS", "500")
    item.add_new(0x00191008, "CS", "NESTED")
    ds.ReferencedImageSequence = [item]
    return ds


def _private(ds: Dataset) -> dict[int, Any]:
    return {int(e.tag): e.value for e in ds if e.tag.is_private}


def test_retain_safe_private(client: httpx.Client) -> None:
    source = upload(client, to_bytes(_with_private("SAFE01")))
    out = _read(client.post(f"/instances/{source['ID']}/anonymize", json=SAFE))
    assert _private(out) == {
        0x00190011: "SIEMENS MR HEADER",
        B_VALUE: "1000",
        GRADIENT: [0.0, 0.6, 0.8],
    }
    assert _private(out.ReferencedImageSequence[0]) == {
        0x00190010: "SIEMENS MR HEADER",
        0x0019100C: "500",
    }
    assert "DeidentificationMethod" not in out and out.PatientID != "SAFE01"
    # Without the option every private tag goes; with KeepPrivateTags every one stays.
    plain = _read(client.post(f"/instances/{source['ID']}/anonymize", json={}))
    assert _private(plain) == {} and _private(plain.ReferencedImageSequence[0]) == {}
    everything = _read(
        client.post(f"/instances/{source['ID']}/anonymize", json={**SAFE, "KeepPrivateTags": True})
    )
    assert CSA_TYPE in everything and 0x00191001 in everything
    # In a study job, with another option.
    response = client.post(
        f"/studies/{source['ParentStudy']}/anonymize",
        json={"ConfidentialityOptions": ["RetainSafePrivate", "CleanDescriptors"]},
    )
    assert response.status_code == 200, response.text
    (instance,) = client.get(f"/studies/{response.json()['ID']}/instances").json()
    stored = _read(client.get(f"/instances/{instance['ID']}/file"))
    assert set(_private(stored)) == {0x00190011, B_VALUE, GRADIENT}
    assert stored.StudyDescription == "Chest" and stored.SeriesDescription == "PA"


def _visible(data: bytes) -> dict[int, Any]:
    """The top-level tags and values that do not vary from run to run."""
    ds = dcmread(io.BytesIO(data))
    generated = (0x00100010, 0x00100020, 0x0020000D, 0x0020000E, 0x00080018, 0x00200052)
    return {
        int(e.tag): (e.VR, None if int(e.tag) in generated else e.value)
        for e in ds
        if e.VR != "SQ" and int(e.tag) != 0x7FE00010
    }


def test_the_rest_matches_the_oracle(client: httpx.Client, oracle: OracleUploads | None) -> None:
    """Descriptors without identifying text come out as Orthanc keeps them with
    ``Keep``, the safe private element as Orthanc keeps it with ``Keep``; all the
    other attributes are the basic profile in both servers."""
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    ds = _with_private("ORACLEOPT")
    ds.ImageComments = "no identifying text"
    ds.AdmittingDiagnosesDescription = "fracture"
    ds.InstitutionName = "Mercy Hospital"
    ds.FrameOfReferenceUID = generate_uid()
    data = to_bytes(ds)
    ours, theirs = upload(client, data)["ID"], oracle.upload(data)["ID"]
    version = {"DicomVersion": "2021b"}
    keep = ["StudyDescription", "SeriesDescription", "ImageComments"]
    keep += ["AdmittingDiagnosesDescription"]
    for body, oracle_body, creators in (
        (CLEAN, {"Keep": keep}, set()),
        (SAFE, {"Keep": ["0019,110c", "0019,110e"]}, {0x00190011}),
    ):
        mine = client.post(f"/instances/{ours}/anonymize", json={**body, **version})
        reference = oracle.client.post(
            f"/instances/{theirs}/anonymize", json={**oracle_body, **version}
        )
        assert mine.status_code == reference.status_code == 200, reference.text
        got, expected = _visible(mine.content), _visible(reference.content)
        # Orthanc drops the creator of a kept private element; dicomhub keeps it.
        assert {t: v for t, v in got.items() if t not in creators} == expected


def test_rows_added_after_2021b(client: httpx.Client) -> None:
    """2023b handles the attributes added to Table E.1-1 after 2021b; 2021b (like
    the reference Orthanc 1.10.1, see test_anonymize.py) leaves them alone."""
    acquisition_uid = generate_uid()
    ds = make_dataset(
        patient_id="ROWS2023",
        InstanceCreationDate="20240102",
        StationAETitle="CT_SCANNER_7",
        AcquisitionUID=acquisition_uid,
        CalibrationDateTime="20231231120000",
        StudyArrivalDate="20240102",
    )
    instance = upload(client, to_bytes(ds))["ID"]

    def anonymize(body: dict[str, Any]) -> Dataset:
        return _read(client.post(f"/instances/{instance}/anonymize", json=body))

    new = anonymize({"DicomVersion": "2023b"})
    assert "InstanceCreationDate" not in new and "StationAETitle" not in new
    assert "StudyArrivalDate" not in new and new.CalibrationDateTime == ""
    assert new.AcquisitionUID not in ("", acquisition_uid)
    old = anonymize({"DicomVersion": "2021b"})
    assert old.InstanceCreationDate == "20240102" and old.StationAETitle == "CT_SCANNER_7"
    assert old.AcquisitionUID == acquisition_uid
    # The longitudinal option keeps the new dates too (it goes by VR).
    kept = anonymize({"ConfidentialityOptions": ["RetainLongitudinalTemporalInformation"]})
    assert kept.InstanceCreationDate == "20240102"
    assert kept.CalibrationDateTime == "20231231120000"
    assert "StationAETitle" not in kept
