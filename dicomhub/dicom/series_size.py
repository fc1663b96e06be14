"""How many instances a series announces, read from one of its instances as the
reference Orthanc reads it (its ``ExpectedNumberOfInstances`` metadata)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydicom.dataset import Dataset

from .values import element_string

NUMBER_OF_SLICES = 0x00540081
NUMBER_OF_TIME_SLICES = 0x00540101
CARDIAC_NUMBER_OF_IMAGES = 0x00181090
IMAGES_IN_ACQUISITION = 0x00201002
NUMBER_OF_TEMPORAL_POSITIONS = 0x00200105
#: The tags whose values announce the count.
ANNOUNCING_TAGS = frozenset(
    (
        NUMBER_OF_SLICES,
        NUMBER_OF_TIME_SLICES,
        CARDIAC_NUMBER_OF_IMAGES,
        IMAGES_IN_ACQUISITION,
        NUMBER_OF_TEMPORAL_POSITIONS,
    )
)


def expected_instances(ds: Dataset) -> int | None:
    """The count ``ds`` announces for its series (see ``_announced``)."""

    def number(tag: int) -> int | None:
        elem = ds.get_item(tag)
        return _first_integer(element_string(elem, ["ISO_IR 6"]) if elem is not None else None)

    return _announced(number)


def expected_instances_of_strings(strings: Mapping[int, str]) -> int | None:
    """``expected_instances`` of a file whose values of these tags are ``strings``
    (the element strings, for a file whose values are plain ASCII text)."""
    return _announced(lambda tag: _first_integer(strings.get(tag)))


def _first_integer(text: str | None) -> int | None:
    try:
        return int(text.split("\\")[0]) if text else None
    except ValueError:
        return None


def _announced(number: Callable[[int], int | None]) -> int | None:
    """What the reference Orthanc announces: ImagesInAcquisition x
    NumberOfTemporalPositions when both are there (as ``/tools/create-dicom`` writes
    them), else NumberOfSlices x NumberOfTimeSlices, else CardiacNumberOfImages.
    ImagesInAcquisition alone is ignored: it often spans several series."""
    images = number(IMAGES_IN_ACQUISITION)
    positions = number(NUMBER_OF_TEMPORAL_POSITIONS)
    if images is not None and positions is not None:
        return images * positions if images * positions > 0 else None
    slices = number(NUMBER_OF_SLICES)
    time_slices = number(NUMBER_OF_TIME_SLICES)
    value = slices * time_slices if slices and time_slices else None
    if value is None:
        value = number(CARDIAC_NUMBER_OF_IMAGES)
    return value if value and value > 0 else None
