"""Reading an incoming DICOM file into what the archive needs to index it.

Pure: bytes in, a ``ParsedInstance`` out, or ``InvalidDicom`` / ``MissingTag``.
pydicom is lenient with truncated files (it silently keeps the short value), so
the declared length of every top-level element is checked against what was read,
as a strict reader would.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset

from .identifiers import clean_identifier, instance_id, patient_id, series_id, study_id
from .levels import Level
from .main_tags import MAIN_TAGS
from .values import dataset_charsets, element_string

UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
IMPLICIT_LITTLE_ENDIAN = "1.2.840.10008.1.2"


class InvalidDicom(ValueError):
    """The bytes are not a readable DICOM file."""


class MissingTag(ValueError):
    """A DICOM file lacks a tag the archive needs (a UID of the hierarchy)."""


@dataclass
class ParsedInstance:
    dataset: Dataset
    charsets: list[str]
    patient_id: str  # the DICOM PatientID (cleaned)
    study_uid: str
    series_uid: str
    sop_uid: str
    ids: dict[Level, str]  # Orthanc identifiers per level
    main_tags: dict[Level, dict[int, str]]
    transfer_syntax: str
    sop_class_uid: str
    pixel_data_offset: int | None
    pixel_data_vr: str | None


def read_dataset(data: bytes) -> tuple[FileDataset, int]:
    """Parse ``data``; answers the dataset and the offset where pixel data start."""
    if len(data) < 8:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)")
    stream = io.BytesIO(data)
    try:
        ds = dcmread(stream, force=True)
    except Exception as exc:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)") from exc
    _check_complete(ds, len(data))
    offset = _pixel_data_offset(data, ds)
    return ds, offset


def _check_complete(ds: Dataset, size: int) -> None:
    raw_items = ds._dict.values()  # noqa: SLF001 - raw access avoids converting values
    if not raw_items:
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)")
    for elem in raw_items:
        if (
            isinstance(elem, RawDataElement)
            and elem.length != UNDEFINED_LENGTH
            and elem.value is not None
            and len(elem.value) != elem.length
        ):
            raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)")
    # A file cut inside an element header: pydicom silently stops before the last bytes.
    last = list(raw_items)[-1]
    value_tell = getattr(last, "value_tell", None)
    if (
        isinstance(last, RawDataElement)
        and last.length != UNDEFINED_LENGTH
        and value_tell is not None
        and value_tell + last.length < size
    ):
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)")


def _pixel_data_offset(data: bytes, ds: Dataset) -> int:
    """Offset of the Pixel Data element's tag in the file, or -1 when it has none."""
    for tag in PIXEL_DATA_TAGS:
        elem = ds.get_item(tag)
        if elem is None:
            continue
        value_tell = getattr(elem, "value_tell", None)
        if value_tell is not None:
            # tag (4) + VR (2) + reserved (2) + length (4) for OB/OW in explicit VR,
            # tag (4) + length (4) in implicit VR.
            header = 8 if getattr(elem, "is_implicit_VR", False) else 12
            start = value_tell - header
            if start >= 0:
                return start
        needle = tag.to_bytes(4, "big")
        little = needle[1::-1] + needle[3:1:-1]
        found = data.rfind(little)
        return found
    return -1


def parse_instance(data: bytes, default_encoding: str = "Latin1") -> ParsedInstance:
    if data[128:132] != b"DICM":  # as the reference: a DICOM file, not a bare dataset
        raise InvalidDicom(f"Cannot parse an invalid DICOM file (size: {len(data)} bytes)")
    ds, offset = read_dataset(data)
    charsets = dataset_charsets(ds, default_encoding)

    def text(tag: int) -> str | None:
        elem = ds.get_item(tag)
        if elem is None:
            return None
        value = element_string(elem, charsets)
        return clean_identifier(value) if value is not None else None

    patient = text(0x00100020) or ""
    study = text(0x0020000D)
    series = text(0x0020000E)
    sop = text(0x00080018)
    if not study or not series or not sop:
        raise MissingTag("StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID are required")

    ids = {
        Level.PATIENT: patient_id(patient),
        Level.STUDY: study_id(patient, study),
        Level.SERIES: series_id(patient, study, series),
        Level.INSTANCE: instance_id(patient, study, series, sop),
    }
    main: dict[Level, dict[int, str]] = {}
    for level, tags in MAIN_TAGS.items():
        found: dict[int, str] = {}
        for tag in tags:
            elem = ds.get_item(tag)
            if elem is not None:
                value = element_string(elem, charsets)
                if value is not None:
                    found[tag] = value
        main[level] = found
    # Orthanc copies the patient tags onto the study, so studies can be searched by them.
    main[Level.STUDY].update(
        {t: v for t, v in main[Level.PATIENT].items() if t in MAIN_TAGS[Level.PATIENT]}
    )

    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta else ""
    if not transfer_syntax:
        transfer_syntax = IMPLICIT_LITTLE_ENDIAN
    sop_class = text(0x00080016) or ""
    pixel_vr = None
    if offset >= 0:
        pix = ds.get_item(0x7FE00010)
        pixel_vr = pix.VR if pix is not None else None
    return ParsedInstance(
        dataset=ds,
        charsets=charsets,
        patient_id=patient,
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        ids=ids,
        main_tags=main,
        transfer_syntax=transfer_syntax,
        sop_class_uid=sop_class,
        pixel_data_offset=offset if offset >= 0 else None,
        pixel_data_vr=pixel_vr,
    )
