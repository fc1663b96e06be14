"""Series completeness: whether a series has the instances it expects (the count its
first instance announced, ``dicom/series_size.py``)."""

from __future__ import annotations

from ..store.index.index import IndexSession
from .enums import MetadataType


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
