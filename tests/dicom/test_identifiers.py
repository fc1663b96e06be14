"""Orthanc identifiers: SHA-1 of the DICOM identifiers, bit for bit."""

from __future__ import annotations

import hashlib

import pytest

from dicomhub.dicom.identifiers import (
    clean_identifier,
    hash_identifier,
    instance_id,
    looks_like_orthanc_id,
    patient_id,
    series_id,
    study_id,
)

# from DESIGN.md, checked against the reference Orthanc
VECTOR = ("HASHTEST01", "1.2.3.4.5", "1.2.3.4.5.6", "1.2.3.4.5.6.7")


def test_design_test_vector() -> None:
    assert patient_id(VECTOR[0]) == "191ae625-d53ada20-1ab78fdb-cea9a696-7c5202bd"
    assert instance_id(*VECTOR) == "d387eb01-1ac66274-ed5fc504-fd15fc34-b6e558aa"
    assert study_id(*VECTOR[:2]) == "7e52e784-ea23fa92-61f89bc6-a88f88e9-3de7c7d8"
    assert series_id(*VECTOR[:3]) == "890396ab-c2ae1695-6f40dd2a-75e18a05-6eda68fd"


def test_empty_patient_id() -> None:
    assert patient_id("") == "da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709"
    assert patient_id(clean_identifier(None)) == patient_id("")


def test_levels_join_with_pipes() -> None:
    expected = hashlib.sha1(b"P|S|E|I").hexdigest()
    assert instance_id("P", "S", "E", "I").replace("-", "") == expected
    assert hash_identifier("P", "S") == study_id("P", "S")


def test_hashing_is_utf8_and_case_sensitive() -> None:
    digest = hashlib.sha1("MÜLLER".encode()).hexdigest()
    assert patient_id("MÜLLER").replace("-", "") == digest
    assert patient_id("abc") != patient_id("ABC")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("ABC", "ABC"),
        ("ABC ", "ABC"),
        ("ABC  \x00", "ABC"),
        ("ABC\x00", "ABC"),
        ("  ABC", "  ABC"),
        (" A B ", " A B"),
        ("", ""),
        (None, ""),
        ("abc", "abc"),
    ],
)
def test_clean_identifier(raw: str | None, clean: str) -> None:
    assert clean_identifier(raw) == clean


def test_format() -> None:
    value = patient_id("anything")
    assert looks_like_orthanc_id(value)
    assert [len(p) for p in value.split("-")] == [8] * 5
    assert value == value.lower()
    for bad in ("", value.upper(), value[:-1], value.replace("-", ""), value + "-", "x" * 44):
        assert not looks_like_orthanc_id(bad), bad
