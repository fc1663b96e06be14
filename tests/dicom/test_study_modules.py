"""The patient/study module tables and ``move_instance`` on files made by pydicom."""

from __future__ import annotations

import io

from pydicom import dcmread
from pydicom.dataset import Dataset

from dicomhub.dicom.modification import SERIES_UID, SOP_UID, STUDY_UID
from dicomhub.dicom.study_modules import (
    PATIENT_MODULE,
    SPLIT_TAGS,
    STUDY_MODULE,
    move_instance,
    study_level_values,
    tag_label,
)
from dicomhub.dicom.tag_paths import parse_tag_token
from tests.dicom_factory import make_dataset, to_bytes


def test_module_tables_spot_checks() -> None:
    for name in ("PatientID", "PatientName", "IssuerOfPatientID", "PatientIdentityRemoved"):
        assert parse_tag_token(name) in PATIENT_MODULE
    for name in ("StudyInstanceUID", "AccessionNumber", "StudyID", "ReferencedStudySequence"):
        assert parse_tag_token(name) in STUDY_MODULE
    for name in ("Modality", "SeriesInstanceUID", "SOPInstanceUID", "PatientAge"):
        assert parse_tag_token(name) not in PATIENT_MODULE | STUDY_MODULE
    assert STUDY_UID not in SPLIT_TAGS and parse_tag_token("PatientID") in SPLIT_TAGS
    assert tag_label(parse_tag_token("Modality")) == "Modality (0008,0060)"


def test_study_level_values_replace_plain_values_and_remove_the_rest() -> None:
    ds = make_dataset(patient_id="VALUES")
    ds.OtherPatientIDs = ["A", "B"]
    ds.ReferencedStudySequence = [Dataset()]
    del ds.AccessionNumber
    replacements, removals = study_level_values(ds)
    assert replacements[parse_tag_token("PatientID")] == "VALUES"
    assert replacements[parse_tag_token("OtherPatientIDs")] == "A\\B"
    assert replacements[STUDY_UID] == ds.StudyInstanceUID
    assert parse_tag_token("AccessionNumber") in removals
    assert parse_tag_token("ReferencedStudySequence") in removals  # no plain value
    assert set(replacements) | removals == PATIENT_MODULE | STUDY_MODULE
    assert not set(replacements) & removals


def test_move_instance_keeps_everything_else() -> None:
    ds = make_dataset(patient_id="MOVE")
    ds.add_new(0x00190010, "LO", "ACME")
    ds.add_new(0x00191010, "LO", "kept")
    uids = {STUDY_UID: "1.2.3", SERIES_UID: "1.2.3.4", SOP_UID: "1.2.3.4.5"}
    data = move_instance(
        to_bytes(ds),
        {parse_tag_token("AccessionNumber"), parse_tag_token("PatientComments")},
        {parse_tag_token("StudyDescription"): "Moved", parse_tag_token("StudyID"): "7"},
        uids,
    )
    moved = dcmread(io.BytesIO(data))
    assert moved.StudyInstanceUID == "1.2.3" and moved.SeriesInstanceUID == "1.2.3.4"
    assert moved.SOPInstanceUID == moved.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"
    assert "AccessionNumber" not in moved
    assert moved.StudyDescription == "Moved" and moved.StudyID == "7"
    assert moved[0x00191010].value == "kept"
    assert moved.PixelData == ds.PixelData and moved.PatientName == ds.PatientName
