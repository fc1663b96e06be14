"""The four levels of the DICOM hierarchy as Orthanc names them."""

from __future__ import annotations

from enum import IntEnum


class Level(IntEnum):
    PATIENT = 0
    STUDY = 1
    SERIES = 2
    INSTANCE = 3

    @property
    def title(self) -> str:  # "Patient", "Study", ...
        return _TITLES[self]

    @property
    def plural(self) -> str:  # URL segment: "patients", "studies", ...
        return _PLURALS[self]

    @property
    def child(self) -> Level | None:
        return Level(self + 1) if self < Level.INSTANCE else None

    @property
    def parent(self) -> Level | None:
        return Level(self - 1) if self > Level.PATIENT else None

    @classmethod
    def from_plural(cls, name: str) -> Level:
        return _BY_PLURAL[name]

    @classmethod
    def parse(cls, name: str) -> Level:
        """Parse a level name the way Orthanc does (case-insensitive, singular or plural)."""
        key = name.strip().lower()
        if key in _BY_NAME:
            return _BY_NAME[key]
        raise ValueError(name)


_TITLES = {
    Level.PATIENT: "Patient",
    Level.STUDY: "Study",
    Level.SERIES: "Series",
    Level.INSTANCE: "Instance",
}
_PLURALS = {
    Level.PATIENT: "patients",
    Level.STUDY: "studies",
    Level.SERIES: "series",
    Level.INSTANCE: "instances",
}
_BY_PLURAL = {v: k for k, v in _PLURALS.items()}
_BY_NAME = {
    "patient": Level.PATIENT,
    "patients": Level.PATIENT,
    "study": Level.STUDY,
    "studies": Level.STUDY,
    "series": Level.SERIES,
    "instance": Level.INSTANCE,
    "instances": Level.INSTANCE,
    "image": Level.INSTANCE,
}
