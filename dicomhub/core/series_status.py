"""Series completeness: how many instances a series expects and whether it has them."""

from __future__ import annotations

from pydicom.dataset import Dataset

from ..dicom.values import element_string
from ..store.index.index import IndexSession
from .enums import MetadataType

_NUMBER_OF_SLICES = 0x00540081
_NUMBER_OF_TIME_SLICES = 0x00540101
_CARDIAC_NUMBER_OF_IMAGES = 0x00181090
_IMAGES_IN_ACQUISITION = 0x00201002
_NUMBER_OF_TEMPORAL_POSITIONS = 0x00200105


def _number(ds: Dataset, tag: int) -> int | None:
    elem = ds.get_item(tag)
    text = element_string(elem, ["ISO_IR 6"]) if elem is not None else None
    try:
        return int(text.split("\\")[0]) if text else None
    except ValueError:
        return None


def expected_instances(ds: Dataset) -> int | None:
    """What the reference Orthanc announces: ImagesInAcquisition x
    NumberOfTemporalPositions when both are there (as ``/tools/create-dicom`` writes
    them), else NumberOfSlices x NumberOfTimeSlices, else CardiacNumberOfImages.
    ImagesInAcquisition alone is ignored: it often spans several series."""
    images = _number(ds, _IMAGES_IN_ACQUISITION)
    positions = _number(ds, _NUMBER_OF_TEMPORAL_POSITIONS)
    if images is not None and positions is not None:
        return images * positions if images * positions > 0 else None
    slices = _number(ds, _NUMBER_OF_SLICES)
    time_slices = _number(ds, _NUMBER_OF_TIME_SLICES)
    value = slices * time_slices if slices and time_slices else None
    if value is None:
        value = _number(ds, _CARDIAC_NUMBER_OF_IMAGES)
    return value if value and value > 0 else None


def series_status(session: IndexSession, series_internal: int) -> tuple[str, int | None]:
    """Orthanc's ``Status`` (Unknown, Missing, Complete, Inconsistent) and the expected count."""
    meta = session.get_metadata(series_internal, MetadataType.ExpectedNumberOfInstances)
    if meta is None:
        return "Unknown", None
    try:
        expected = int(meta[0])
    except ValueError:
        return "Unknown", None
    indices: set[int] = set()
    for child in session.children(series_internal):
        value = session.get_metadata(child.id, MetadataType.IndexInSeries)
        if value is None:  # no InstanceNumber nor ImageIndex: Orthanc skips the instance
            continue
        try:
            index = int(value[0])
        except ValueError:  # an empty or non-numeric InstanceNumber, as Orthanc
            return "Unknown", expected
        if index < 1 or index > expected or index in indices:
            return "Inconsistent", expected
        indices.add(index)
    return ("Complete" if len(indices) == expected else "Missing"), expected
