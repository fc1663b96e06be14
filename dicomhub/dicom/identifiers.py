"""Orthanc resource identifiers.

Orthanc names every resource by the SHA-1 of its DICOM identifiers joined by ``|``,
written as 40 lowercase hex digits in five groups of eight. Clients store these IDs,
so they must match Orthanc bit for bit.
"""

from __future__ import annotations

import hashlib
import re

_ID_RE = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")


def clean_identifier(value: str | None) -> str:
    """Strip DICOM padding (trailing spaces and NULs); keep leading spaces and case."""
    if value is None:
        return ""
    return value.rstrip(" \x00")


def hash_identifier(*parts: str) -> str:
    d = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()
    return f"{d[:8]}-{d[8:16]}-{d[16:24]}-{d[24:32]}-{d[32:]}"  # four of them per stored file


def patient_id(patient: str) -> str:
    return hash_identifier(patient)


def study_id(patient: str, study_uid: str) -> str:
    return hash_identifier(patient, study_uid)


def series_id(patient: str, study_uid: str, series_uid: str) -> str:
    return hash_identifier(patient, study_uid, series_uid)


def instance_id(patient: str, study_uid: str, series_uid: str, sop_uid: str) -> str:
    return hash_identifier(patient, study_uid, series_uid, sop_uid)


def looks_like_orthanc_id(value: str) -> bool:
    return bool(_ID_RE.match(value))
