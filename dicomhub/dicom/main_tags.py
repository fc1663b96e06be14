"""The main DICOM tags Orthanc keeps in its index for each level.

These lists are the defaults of Orthanc 1.12 (unchanged since 1.4.2); the study
level also carries the patient tags (``PatientMainDicomTags`` in the study JSON).
``ExtraMainDicomTags`` adds tags per level: the server configures them once at
start-up (``configure_extra_main_tags``), and every reader of ``MAIN_TAGS`` sees
them, as Orthanc's own list is process-wide.
"""

from __future__ import annotations

import functools

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from .levels import Level
from .values import element_string

PATIENT_TAGS: tuple[int, ...] = (
    0x00100010,  # PatientName
    0x00100030,  # PatientBirthDate
    0x00100040,  # PatientSex
    0x00101000,  # OtherPatientIDs
    0x00100020,  # PatientID
)
STUDY_TAGS: tuple[int, ...] = (
    0x00080020,  # StudyDate
    0x00080030,  # StudyTime
    0x00200010,  # StudyID
    0x00081030,  # StudyDescription
    0x00080050,  # AccessionNumber
    0x0020000D,  # StudyInstanceUID
    0x00321060,  # RequestedProcedureDescription
    0x00080080,  # InstitutionName
    0x00321032,  # RequestingPhysician
    0x00080090,  # ReferringPhysicianName
)
SERIES_TAGS: tuple[int, ...] = (
    0x00080021,  # SeriesDate
    0x00080031,  # SeriesTime
    0x00080060,  # Modality
    0x00080070,  # Manufacturer
    0x00081010,  # StationName
    0x0008103E,  # SeriesDescription
    0x00180015,  # BodyPartExamined
    0x00180024,  # SequenceName
    0x00181030,  # ProtocolName
    0x00200011,  # SeriesNumber
    0x00181090,  # CardiacNumberOfImages
    0x00201002,  # ImagesInAcquisition
    0x00200105,  # NumberOfTemporalPositions
    0x00540081,  # NumberOfSlices
    0x00540101,  # NumberOfTimeSlices
    0x0020000E,  # SeriesInstanceUID
    0x00200037,  # ImageOrientationPatient
    0x00541000,  # SeriesType
    0x00081070,  # OperatorsName
    0x00400254,  # PerformedProcedureStepDescription
    0x00181400,  # AcquisitionDeviceProcessingDescription
    0x00180010,  # ContrastBolusAgent
)
INSTANCE_TAGS: tuple[int, ...] = (
    0x00080012,  # InstanceCreationDate
    0x00080013,  # InstanceCreationTime
    0x00200012,  # AcquisitionNumber
    0x00541330,  # ImageIndex
    0x00200013,  # InstanceNumber
    0x00280008,  # NumberOfFrames
    0x00200100,  # TemporalPositionIdentifier
    0x00080018,  # SOPInstanceUID
    0x00200032,  # ImagePositionPatient
    0x00204000,  # ImageComments
    0x00200037,  # ImageOrientationPatient
)

DEFAULT_MAIN_TAGS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: PATIENT_TAGS,
    Level.STUDY: STUDY_TAGS,
    Level.SERIES: SERIES_TAGS,
    Level.INSTANCE: INSTANCE_TAGS,
}
#: The tags indexed per level: the defaults plus ``ExtraMainDicomTags``. Mutated in
#: place by ``configure_extra_main_tags`` so that modules holding it see the change.
MAIN_TAGS: dict[Level, tuple[int, ...]] = dict(DEFAULT_MAIN_TAGS)
#: Every tag of ``MAIN_TAGS``, whatever its level (kept with it).
_INDEXED: list[frozenset[int]] = [frozenset().union(*MAIN_TAGS.values())]

_LEVEL_NAMES = {
    "Patient": Level.PATIENT,
    "Study": Level.STUDY,
    "Series": Level.SERIES,
    "Instance": Level.INSTANCE,
}


def parse_extra_main_tags(value: object) -> dict[Level, tuple[int, ...]]:
    """Read Orthanc's ``ExtraMainDicomTags`` (``{"Study": ["Name" or "gggg,eeee", ...]}``).

    Raises ``ValueError`` on an unknown level or tag, so a typo stops the start-up
    instead of silently indexing nothing.
    """
    from .tag_names import parse_tag

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError('"ExtraMainDicomTags" must be an object with one list per level')
    extra: dict[Level, tuple[int, ...]] = {}
    for name, tags in value.items():
        level = _LEVEL_NAMES.get(name)
        if level is None:
            raise ValueError(f'Unknown level in "ExtraMainDicomTags": {name}')
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError(f'"ExtraMainDicomTags.{name}" must be a list of tag names')
        parsed = []
        for text in tags:
            try:
                parsed.append(parse_tag(text))
            except ValueError:
                raise ValueError(
                    f'Unknown DICOM tag in "ExtraMainDicomTags.{name}": {text}'
                ) from None
        extra[level] = tuple(dict.fromkeys(parsed))
    return extra


def configure_extra_main_tags(extra: dict[Level, tuple[int, ...]]) -> None:
    """Index ``extra`` tags beyond the defaults, per level (an empty dict restores them)."""
    for level, defaults in DEFAULT_MAIN_TAGS.items():
        added = tuple(t for t in extra.get(level, ()) if t not in defaults)
        MAIN_TAGS[level] = defaults + added
    _INDEXED[0] = frozenset().union(*MAIN_TAGS.values())


def indexed_tags() -> frozenset[int]:
    """Every main tag, of any level (the tags ingest must read from each file)."""
    return _INDEXED[0]


#: Tags that identify a resource; Orthanc matches them case-insensitively in find.
IDENTIFIER_TAGS: frozenset[int] = frozenset(
    {0x00100020, 0x0020000D, 0x00080050, 0x0020000E, 0x00080018}
)


@functools.lru_cache(maxsize=4096)
def tag_name(tag: int) -> str:
    """The tag's keyword (or ``gggg,eeee``). Remembered: pydicom builds a ``Tag`` and
    searches its dictionaries for each look-up, and every description of a resource
    looks up each of its main tags twice (to sort them, then to name them)."""
    return keyword_for_tag(tag) or f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def format_tag(tag: int) -> str:
    """Orthanc's ``gggg,eeee`` spelling of a tag (lowercase hex)."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def extract_main_tags(ds: Dataset, tags: tuple[int, ...], charsets: list[str]) -> dict[int, str]:
    """The values of ``tags`` present in ``ds`` (an empty element gives ``""``)."""
    found: dict[int, str] = {}
    for tag in tags:
        elem = ds.get_item(tag)
        if elem is None:
            continue
        text = element_string(elem, charsets)
        if text is not None:
            found[tag] = text
    return found
