"""DICOM files made by code for the tests (no binary fixtures)."""

from __future__ import annotations

import io
import itertools

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_counter = itertools.count(1)


def make_dataset(
    patient_id: str = "PAT001",
    patient_name: str = "Doe^John",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    modality: str = "CT",
    rows: int = 8,
    columns: int = 8,
    charset: str | None = None,
    **extra: object,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.AccessionNumber = "ACC" + patient_id
    ds.StudyDescription = "Test study"
    ds.Modality = modality
    ds.SeriesNumber = "1"
    ds.InstanceNumber = str(next(_counter))
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(rows * columns, dtype=np.uint16) % 4096).tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_dicom(**kwargs: object) -> bytes:
    return to_bytes(make_dataset(**kwargs))  # type: ignore[arg-type]
