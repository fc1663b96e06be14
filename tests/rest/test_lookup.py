"""``/tools/lookup`` refuses wildcards as Orthanc does (more lookups in test_resources.py)."""

from __future__ import annotations

import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload
from dicom_factory import make_dicom

WILDCARDS = ["HELPER-FIND-*", "*", "?", "1.2.*", "a*b", "HELPER?FIND-A", " x* \n"]


def test_wildcards_are_refused(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    upload(server.client, make_dicom(patient_id="LOOKUP-A"))
    for value in WILDCARDS:
        response = server.client.post("/tools/lookup", content=value)
        body = assert_orthanc_error(
            response, 400, "Parameter out of range", 3, "POST", "/tools/lookup"
        )
        assert body["Details"] == "Wildcards are not allowed on tag 0010,0020", value
    # characters that are not wildcards still look up (and find nothing)
    for value in ("LOOKUP-A\\x", "LOOKUP-%", ""):
        response = server.client.post("/tools/lookup", content=value)
        assert (response.status_code, response.json()) == (200, []), value
    assert len(server.client.post("/tools/lookup", content="lookup-a").json()) == 1


def test_wildcards_like_orthanc() -> None:
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    try:
        for value in WILDCARDS:
            body = oracle.post("/tools/lookup", content=value).json()
            assert (body["HttpStatus"], body["OrthancStatus"], body["Details"]) == (
                400,
                3,
                "Wildcards are not allowed on tag 0010,0020",
            ), value
    finally:
        oracle.close()
