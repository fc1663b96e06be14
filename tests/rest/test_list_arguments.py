"""How ``since``, ``limit``, ``to`` and ``last`` are read by /changes, /exports and the
list routes (/patients, /studies, /series, /instances), odd values included.

Orthanc reads these arguments with C++ casts: the logs fall back to their defaults on a
value they cannot read, negative numbers wrap around in unsigned types, and ``last``
only has to be present. The checks that need no particular log content run against the
reference Orthanc too (skipped when it does not answer).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_uploads, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom
from net import LOOPBACK, dicom_port

LEVELS = ("patients", "studies", "series", "instances")
# (httpx sends "1 " as "1+", which neither server reads as a number)
BAD_NUMBERS = ("abc", "1.5", "", "1 ", "0x10", "-", "18446744073709551616")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("arguments"))
    for _ in range(4):
        upload(server.client, make_dicom(patient_id="ARGX" + uuid.uuid4().hex[:8]))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oracle() -> Iterator[httpx.Client | None]:
    """The reference Orthanc with three patients of ours in it (deleted afterwards)."""
    uploads_iter = oracle_uploads()
    uploads = next(uploads_iter)
    if uploads is not None:
        for _ in range(3):
            uploads.upload(make_dicom(patient_id="ARGX" + uuid.uuid4().hex[:8]))
    yield None if uploads is None else uploads.client
    next(uploads_iter, None)  # deletes what was uploaded


def both(shared: RunningServer, oracle: httpx.Client | None) -> list[httpx.Client]:
    return [shared.client] + ([oracle] if oracle is not None else [])


def get(client: httpx.Client, url: str, **params: str) -> Any:
    response = client.get(url, params=params)
    assert response.status_code == 200, (url, params, response.text)
    return response.json()


# ---- /changes ---------------------------------------------------------------------


def test_changes_fall_back_to_defaults_on_unreadable_values(shared: RunningServer) -> None:
    default = get(shared.client, "/changes")
    assert len(default["Changes"]) == 16 and default["Done"] is True
    for value in BAD_NUMBERS:
        assert get(shared.client, "/changes", limit=value) == default, value
        assert get(shared.client, "/changes", since=value) == default, value
    assert get(shared.client, "/changes", limit="4294967296") == default  # 32-bit
    # one unreadable value resets the others as well
    assert get(shared.client, "/changes", since="5", limit="abc") == default
    assert get(shared.client, "/changes", since="abc", limit="2") == default
    assert get(shared.client, "/changes", limit="2", to="xyz") == default
    assert get(shared.client, "/changes", since="99999999999999999999") == default


def test_changes_default_limit_is_100(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server()
    for _ in range(26):  # four changes each: 104 in all
        upload(server.client, make_dicom(patient_id="ARGX" + uuid.uuid4().hex[:8]))
    everything = get(server.client, "/changes", limit="1000")["Changes"]
    assert len(everything) == 104
    for params in ({}, {"limit": "abc"}, {"since": "-x"}):
        page = get(server.client, "/changes", **params)
        assert page["Changes"] == everything[:100] and page["Done"] is False, params
        assert page["Last"] == everything[99]["Seq"]


def test_changes_signed_since_and_wrapped_limit(shared: RunningServer) -> None:
    everything = get(shared.client, "/changes", limit="1000")
    seqs = [c["Seq"] for c in everything["Changes"]]
    assert get(shared.client, "/changes", since="-1") == everything
    page = get(shared.client, "/changes", since="-5", limit="3")
    assert [c["Seq"] for c in page["Changes"]] == seqs[:3] and page["Last"] == seqs[2]
    # a negative limit wraps to a huge unsigned one...
    assert get(shared.client, "/changes", limit="-5") == everything
    # ...except -1 (the largest value), which the reference answers with nothing
    for value in ("-1", "4294967295"):
        nothing = {"Changes": [], "Done": True, "Last": seqs[-1]}
        assert get(shared.client, "/changes", limit=value) == nothing


def test_changes_limit_zero(shared: RunningServer) -> None:
    seqs = [c["Seq"] for c in get(shared.client, "/changes", limit="1000")["Changes"]]
    for params in ({"limit": "0"}, {"since": "0", "limit": "0"}, {"since": "3", "limit": "-0"}):
        assert get(shared.client, "/changes", **params) == {
            "Changes": [],
            "Done": False,
            "Last": seqs[-1],
        }, params
    assert get(shared.client, "/changes", since=str(seqs[-1]), limit="0") == {
        "Changes": [],
        "Done": True,
        "Last": seqs[-1],
    }


def test_changes_last_only_needs_to_be_present(shared: RunningServer) -> None:
    last = get(shared.client, "/changes", last="")
    assert len(last["Changes"]) == 1 and last["Done"] is True
    assert last["Last"] == last["Changes"][0]["Seq"]
    for params in ({"last": "foo"}, {"last": "0"}, {"last": "false", "limit": "1"}):
        assert get(shared.client, "/changes", **params) == last, params
    assert get(shared.client, "/changes", last="", since="3", limit="abc") == last


def test_changes_arguments_like_the_reference(
    shared: RunningServer, oracle: httpx.Client | None
) -> None:
    """Relations that hold whatever the log holds, on both servers."""
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    for client in both(shared, oracle):
        for params in ({"limit": "0"}, {"since": "-1", "limit": "0"}):
            page = get(client, "/changes", **params)
            assert page["Changes"] == [] and page["Done"] is False, params
        for params in ({"limit": "-1"}, {"since": "0", "limit": "4294967295"}):
            page = get(client, "/changes", **params)
            assert page["Changes"] == [] and page["Done"] is True, params
        assert len(get(client, "/changes", since="abc", limit="2")["Changes"]) > 2
        assert len(get(client, "/changes", since="-5", limit="3")["Changes"]) == 3
        for value in ("foo", "0", ""):
            page = get(client, "/changes", last=value, limit="5")
            assert len(page["Changes"]) == 1 and page["Done"] is True, value


# ---- /exports ---------------------------------------------------------------------


def test_exports_arguments_on_an_empty_log(
    shared: RunningServer, oracle: httpx.Client | None
) -> None:
    for client in both(shared, oracle):
        empty = {"Done": True, "Exports": [], "Last": 0}
        for params in ({}, {"limit": "abc"}, {"since": "abc"}, {"limit": "0"}, {"last": "foo"}):
            assert get(client, "/exports", **params) == empty, params
        # with nothing listed, "Last" repeats "since", negative or not
        assert get(client, "/exports", since="-3", limit="2") == {**empty, "Last": -3}
        assert get(client, "/exports", since="7", limit="-1") == {**empty, "Last": 7}


def test_exports_paging_and_last(make_server) -> None:  # type: ignore[no-untyped-def]
    receiver = make_server(DicomAet="RECEIVER", DicomBindAddress=LOOPBACK)
    port = dicom_port(receiver)
    sender = make_server(
        DicomAet="SENDER",
        DicomBindAddress=LOOPBACK,
        DicomModalities={"receiver": ["RECEIVER", LOOPBACK, port]},
        LogExportedResources=True,
    )
    ids = [upload(sender.client, make_dicom(patient_id=f"ARGXEXP{i}"))["ID"] for i in range(3)]
    response = sender.client.post("/modalities/receiver/store", json=ids)
    assert response.status_code == 200, response.text
    everything = get(sender.client, "/exports")
    assert everything["Done"] is True and len(everything["Exports"]) == 3
    seqs = [e["Seq"] for e in everything["Exports"]]
    assert everything["Last"] == seqs[-1]

    last = get(sender.client, "/exports", last="")
    assert last == {"Done": True, "Exports": everything["Exports"][-1:], "Last": seqs[-1]}
    assert get(sender.client, "/exports", last="no", since="0") == last

    page = get(sender.client, "/exports", since="-1", limit="2")
    assert page == {"Done": False, "Exports": everything["Exports"][:2], "Last": seqs[1]}
    assert get(sender.client, "/exports", since="abc", limit="2") == everything
    assert get(sender.client, "/exports", limit="0") == {"Done": False, "Exports": [], "Last": 0}
    assert get(sender.client, "/exports", since=str(seqs[-1]), limit="0") == {
        "Done": True,
        "Exports": [],
        "Last": seqs[-1],
    }
    assert get(sender.client, "/exports", limit="-5") == everything
    assert get(sender.client, "/exports", limit="-1") == {"Done": True, "Exports": [], "Last": 0}


# ---- list routes ------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_list_limit_zero_and_wrapped_values(
    shared: RunningServer, oracle: httpx.Client | None, level: str
) -> None:
    for client in both(shared, oracle):
        everything = get(client, f"/{level}")
        assert len(everything) >= 3
        for since in ("0", "1", "1000"):
            assert get(client, f"/{level}", since=since, limit="0") == []
        assert get(client, f"/{level}", since="0", limit="0", expand="") == []
        # -1 wraps to the largest unsigned value, which SQLite reads back as -1:
        # no limit, or no offset
        assert get(client, f"/{level}", since="0", limit="-1") == everything
        assert get(client, f"/{level}", since="1", limit="-1") == everything[1:]
        assert get(client, f"/{level}", since="-1", limit="2") == everything[:2]
        assert get(client, f"/{level}", since="18446744073709551615", limit="2") == everything[:2]
        assert get(client, f"/{level}", since="0", limit="4294967296") == everything


@pytest.mark.parametrize("level", LEVELS)
def test_list_unreadable_values_are_bad_types(
    shared: RunningServer, oracle: httpx.Client | None, level: str
) -> None:
    for client in both(shared, oracle):
        for value in BAD_NUMBERS:
            for params in ({"since": value, "limit": "3"}, {"since": "0", "limit": value}):
                response = client.get(f"/{level}", params=params)
                body = assert_orthanc_error(response, 400, "Bad type for a parameter", 5)
                # Orthanc's words, which name neither argument
                assert body["Details"] == "Syntax error in some user-supplied data"


def test_list_since_or_limit_alone(shared: RunningServer) -> None:
    """Orthanc 1.10.1 refuses either argument alone (400, "Bad request"); dicomhub
    reads the missing one as its default (docs/compatibility.md)."""
    everything = get(shared.client, "/instances")
    assert get(shared.client, "/instances", since="2") == everything[2:]
    assert get(shared.client, "/instances", limit="2") == everything[:2]
    assert get(shared.client, "/instances", limit="0") == []
    response = shared.client.get("/instances", params={"since": ""})
    assert_orthanc_error(response, 400, "Bad type for a parameter", 5)
