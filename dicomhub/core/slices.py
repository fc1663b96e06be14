"""The order of the slices of a series, for viewers (``/series/{id}/ordered-slices``).

A series is a 3D volume when every instance has a position and all share the
series' orientation: slices are then sorted along the normal of that orientation,
and two slices at the same depth make it a mere sequence. Otherwise the instances
are sorted by their index in the series (the core metadata ``IndexInSeries``).
Everything comes from the index (main tags and metadata); no file is read.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import dataclass
from typing import Any

from ..dicom.levels import Level
from ..store.index.index import IndexSession
from .archive import Archive, require_resource
from .enums import MetadataType
from .errors import CannotOrderSlices

IMAGE_POSITION_PATIENT = 0x00200032
IMAGE_ORIENTATION_PATIENT = 0x00200037
NUMBER_OF_FRAMES = 0x00280008

#: Orthanc compares positions in single precision: ten float32 epsilons.
_TOLERANCE = 10 * 1.1920929e-07

Vector = tuple[float, float, float]


def _numbers(value: str | None, count: int) -> list[float] | None:
    if value is None:
        return None
    parts = value.split("\\")
    if len(parts) != count:
        return None
    try:
        return [float(part.strip()) for part in parts]
    except ValueError:
        return None


def normal_of(orientation: str | None) -> Vector | None:
    """The cross product of the row and column direction cosines."""
    cosines = _numbers(orientation, 6)
    if cosines is None:
        return None
    r0, r1, r2, c0, c1, c2 = cosines
    return (r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0)


def parallel_or_opposite(u: Vector, v: Vector) -> bool:
    norms = math.hypot(*u) * math.hypot(*v)
    if abs(norms) < _TOLERANCE:
        return False
    cosine = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / norms
    return abs(abs(cosine) - 1.0) < _TOLERANCE


@dataclass(frozen=True)
class Slice:
    instance_id: str
    frames: int
    position: Vector | None
    normal: Vector | None
    index_in_series: int | None

    def depth(self, normal: Vector) -> float:
        assert self.position is not None
        return sum(n * p for n, p in zip(normal, self.position, strict=True))


def _slice(session: IndexSession, internal_id: int, public_id: str) -> Slice:
    tags = session.main_tags(internal_id)
    frames = 1
    with contextlib.suppress(ValueError):
        frames = int(tags.get(NUMBER_OF_FRAMES, "").strip())
    position = _numbers(tags.get(IMAGE_POSITION_PATIENT), 3)
    index = session.get_metadata(internal_id, MetadataType.IndexInSeries)
    index_in_series = int(index[0]) if index and index[0].strip().isdigit() else None
    return Slice(
        public_id,
        frames,
        None if position is None else (position[0], position[1], position[2]),
        normal_of(tags.get(IMAGE_ORIENTATION_PATIENT)),
        index_in_series,
    )


def _by_position(slices: list[Slice], normal: Vector | None) -> list[Slice] | None:
    if normal is None:
        return None
    for item in slices:
        if item.position is None:
            return None
        if item.normal is not None and not parallel_or_opposite(item.normal, normal):
            return None
    ordered = sorted(slices, key=lambda item: item.depth(normal))
    depths = [item.depth(normal) for item in ordered]
    if any(abs(b - a) <= _TOLERANCE for a, b in itertools.pairwise(depths)):
        return None
    return ordered


def _by_index(slices: list[Slice]) -> list[Slice] | None:
    if any(item.index_in_series is None for item in slices):
        return None
    return sorted(slices, key=lambda item: item.index_in_series or 0)


def order_slices(slices: list[Slice], series_normal: Vector | None) -> tuple[list[Slice], bool]:
    """The slices in viewing order, and whether they form a volume."""
    if len(slices) <= 1:
        return slices, False
    ordered = _by_position(slices, series_normal)
    if ordered is not None:
        return ordered, True
    ordered = _by_index(slices)
    if ordered is None:
        raise CannotOrderSlices()
    return ordered, False


def ordered_slices(archive: Archive, series_id: str) -> dict[str, Any]:
    """Orthanc's answer: the files, every frame, and (instance, first, count) triples."""
    with archive.read() as session:
        series = require_resource(session, series_id, int(Level.SERIES))
        series_normal = normal_of(session.main_tags(series.id).get(IMAGE_ORIENTATION_PATIENT))
        slices = [
            _slice(session, child.id, child.public_id) for child in session.children(series.id)
        ]
    try:
        ordered, volume = order_slices(slices, series_normal)
    except CannotOrderSlices:
        raise CannotOrderSlices(f"Unable to order the slices of series {series_id}") from None
    return {
        "Dicom": [f"/instances/{item.instance_id}/file" for item in ordered],
        "Slices": [
            f"/instances/{item.instance_id}/frames/{frame}"
            for item in ordered
            for frame in range(item.frames)
        ],
        "SlicesShort": [[item.instance_id, 0, item.frames] for item in ordered],
        "Type": "Volume" if volume else "Sequence",
    }
