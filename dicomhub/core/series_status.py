"""Series completeness: how many instances a series expects and whether it has them."""

from __future__ import annotations

from pydicom.dataset import Dataset

from ..store.index.index import IndexSession
from .enums import MetadataType

# Tags that announce the number of images of a series, in order of trust.
_EXPECTED_TAGS = (0x00201002, 0x00181090)  # ImagesInAcquisition, CardiacNumberOfImages


def expected_instances(ds: Dataset) -> int | None:
    for tag in _EXPECTED_TAGS:
        elem = ds.get_item(tag)
        if elem is None or not elem.value:
            continue
        raw = elem.value
        text = raw.decode("ascii", "ignore") if isinstance(raw, bytes) else str(raw)
        try:
            value = int(text.strip().split("\\")[0])
        except ValueError:
            continue
        if value > 0:
            return value
    return None


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
        try:
            index = int(value[0]) if value else 0
        except ValueError:
            return "Inconsistent", expected
        if index < 1 or index > expected or index in indices:
            return "Inconsistent", expected
        indices.add(index)
    return ("Complete" if len(indices) == expected else "Missing"), expected
