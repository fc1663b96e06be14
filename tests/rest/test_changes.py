"""The changes log (/changes) and the exports log (/exports)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pytest
from archive_checks import oracle_client, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom

CHANGE_KEYS = {"ChangeType", "Date", "ID", "Path", "ResourceType", "Seq"}
PLURAL = {"Patient": "patients", "Study": "studies", "Series": "series", "Instance": "instances"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("changes"))
    yield server
    server.stop()


def changes(server: RunningServer, **params: str) -> dict:
    response = server.client.get("/changes", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"Changes", "Done", "Last"}
    return body


def test_empty_log(make_server) -> None:
    server = make_server()
    assert changes(server) == {"Changes": [], "Done": True, "Last": 0}
    assert changes(server, last="") == {"Changes": [], "Done": True, "Last": 0}


def test_new_instance_logs_every_new_level(shared: RunningServer) -> None:
    last = changes(shared, last="")["Last"]
    uids = {
        "patient_id": "C" + uuid.uuid4().hex[:8],
        "study_uid": f"1.2.826.0.1.3680043.10.{uuid.uuid4().int}",
        "series_uid": f"1.2.826.0.1.3680043.11.{uuid.uuid4().int}",
    }
    answer = upload(shared.client, make_dicom(**uids))
    log = changes(shared, since=str(last))
    assert log["Done"] is True
    found = [(c["ChangeType"], c["ResourceType"], c["ID"]) for c in log["Changes"]]
    assert found == [
        ("NewInstance", "Instance", answer["ID"]),
        ("NewSeries", "Series", answer["ParentSeries"]),
        ("NewStudy", "Study", answer["ParentStudy"]),
        ("NewPatient", "Patient", answer["ParentPatient"]),
    ]
    for change in log["Changes"]:
        assert set(change) == CHANGE_KEYS
        assert re.match(r"^\d{8}T\d{6}$", change["Date"])
        assert change["Path"] == f"/{PLURAL[change['ResourceType']]}/{change['ID']}"
    seqs = [c["Seq"] for c in log["Changes"]]
    assert seqs == sorted(seqs) and seqs[0] > last
    assert log["Last"] == seqs[-1]

    # a second instance in the same series only logs NewInstance
    again = upload(shared.client, make_dicom(**uids))
    log = changes(shared, since=str(seqs[-1]))
    assert [(c["ChangeType"], c["ID"]) for c in log["Changes"]] == [("NewInstance", again["ID"])]


def _series_log(client, numbers: list[int], expected: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Store instances numbered ``numbers`` in a new series announcing ``expected``; the
    changes logged meanwhile for them, in order, each ID replaced by its level name
    (comparable across servers) and a "|" after each upload. The patient is deleted
    afterwards."""
    uids = {
        "patient_id": "CS" + uuid.uuid4().hex[:8],
        "study_uid": f"1.2.826.0.1.3680043.10.{uuid.uuid4().int}",
        "series_uid": f"1.2.826.0.1.3680043.11.{uuid.uuid4().int}",
    }
    last = client.get("/changes", params={"last": ""}).json()["Last"]
    found: list[tuple[str, str]] = []
    answer: dict = {}
    for number in numbers:
        dicom = make_dicom(CardiacNumberOfImages=str(expected), InstanceNumber=str(number), **uids)
        answer = upload(client, dicom)
        names = {answer[k]: k for k in ("ID", "ParentSeries", "ParentStudy", "ParentPatient")}
        log = client.get("/changes", params={"since": str(last), "limit": "10000"}).json()
        found += [(c["ChangeType"], names[c["ID"]]) for c in log["Changes"] if c["ID"] in names]
        found.append(("|", ""))
        last = log["Last"]
    client.delete(f"/patients/{answer['ParentPatient']}")
    return found


def test_completed_series_is_logged_once_when_the_last_instance_arrives(
    shared: RunningServer,
) -> None:
    found = _series_log(shared.client, [2, 1, 3], 3)
    assert found == [
        ("NewInstance", "ID"),
        ("NewSeries", "ParentSeries"),
        ("NewStudy", "ParentStudy"),
        ("NewPatient", "ParentPatient"),
        ("|", ""),
        ("NewInstance", "ID"),
        ("|", ""),
        ("NewInstance", "ID"),
        ("CompletedSeries", "ParentSeries"),
        ("|", ""),
    ]
    # a series of one instance is complete with its first instance
    assert ("CompletedSeries", "ParentSeries") in _series_log(shared.client, [1], 1)
    # as many instances as announced, but numbered outside 1..3 or twice: not complete
    inconsistent = [_series_log(shared.client, numbers, 3) for numbers in ([1, 2, 4], [1, 2, 2])]
    for log in inconsistent:
        assert ("CompletedSeries", "ParentSeries") not in log
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    try:
        assert _series_log(oracle, [2, 1, 3], 3) == found
        assert [_series_log(oracle, n, 3) for n in ([1, 2, 4], [1, 2, 2])] == inconsistent
    finally:
        oracle.close()


def test_since_limit_done_and_last(shared: RunningServer) -> None:
    for _ in range(3):
        upload(shared.client, make_dicom(patient_id="C" + uuid.uuid4().hex[:8]))
    everything = changes(shared, limit="10000")
    assert everything["Done"] is True
    seqs = [c["Seq"] for c in everything["Changes"]]
    assert len(seqs) >= 12
    assert everything["Last"] == seqs[-1]

    page = changes(shared, since="0", limit="5")
    assert [c["Seq"] for c in page["Changes"]] == seqs[:5]
    assert page["Done"] is False
    assert page["Last"] == seqs[4]

    # walking with since=Last visits every change once
    walked: list[int] = []
    since = 0
    for _ in range(100):
        page = changes(shared, since=str(since), limit="4")
        walked.extend(c["Seq"] for c in page["Changes"])
        since = page["Last"]
        if page["Done"]:
            break
    assert walked == seqs

    tail = changes(shared, since=str(seqs[-2]), limit="1")
    assert [c["Seq"] for c in tail["Changes"]] == [seqs[-1]]
    assert tail["Done"] is True

    # nothing after "since": Orthanc answers the newest sequence number as Last
    assert changes(shared, since=str(seqs[-1])) == {"Changes": [], "Done": True, "Last": seqs[-1]}
    assert changes(shared, since="999999") == {"Changes": [], "Done": True, "Last": seqs[-1]}

    last = changes(shared, last="")
    assert last["Done"] is True and last["Last"] == seqs[-1]
    assert last["Changes"] == everything["Changes"][-1:]


def test_unreadable_arguments_fall_back_to_defaults(shared: RunningServer) -> None:
    # as the reference; more cases in test_list_arguments.py
    for params in ({"since": "abc"}, {"limit": "1.5"}, {"since": "3", "limit": "x"}):
        assert changes(shared, **params) == changes(shared), params


def test_delete_changes_keeps_numbering(make_server) -> None:
    server = make_server()
    upload(server.client, make_dicom(patient_id="CLEAR1"))
    before = changes(server)["Last"]
    assert before > 0
    response = server.client.delete("/changes")
    assert (response.status_code, response.content) == (200, b"")  # as Orthanc
    # The emptied log still answers the last sequence number as Last (Orthanc 1.10.1),
    # so a client polling with since=Last does not start again from 0.
    emptied = {"Changes": [], "Done": True, "Last": before}
    assert changes(server) == emptied
    for params in ({"last": ""}, {"limit": "0"}, {"since": "5"}, {"limit": "1"}):
        assert changes(server, **params) == emptied, params
    answer = upload(server.client, make_dicom(patient_id="CLEAR2"))
    log = changes(server)
    assert log["Changes"][0]["ID"] == answer["ID"]
    assert min(c["Seq"] for c in log["Changes"]) > before, "sequence numbers must not be reused"


def test_stable_changes_after_stable_age(make_server) -> None:
    server = make_server(StableAge=1)
    answer = upload(server.client, make_dicom(patient_id="STABLE"))
    wanted = {
        ("StableSeries", answer["ParentSeries"]),
        ("StableStudy", answer["ParentStudy"]),
        ("StablePatient", answer["ParentPatient"]),
    }
    deadline = time.monotonic() + 15
    found: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        found = [(c["ChangeType"], c["ID"]) for c in changes(server)["Changes"]]
        if wanted <= set(found):
            break
        time.sleep(0.2)
    assert wanted <= set(found), found
    stable = [f for f in found if f[0].startswith("Stable")]
    assert [f[0] for f in stable] == ["StableSeries", "StableStudy", "StablePatient"]
    for level, key in (
        ("patients", "ParentPatient"),
        ("studies", "ParentStudy"),
        ("series", "ParentSeries"),
    ):
        assert server.client.get(f"/{level}/{answer[key]}").json()["IsStable"] is True


def test_not_stable_before_stable_age(shared: RunningServer) -> None:
    answer = upload(shared.client, make_dicom(patient_id="C" + uuid.uuid4().hex[:8]))
    for level, key in (("patients", "ParentPatient"), ("studies", "ParentStudy")):
        assert shared.client.get(f"/{level}/{answer[key]}").json()["IsStable"] is False
    assert shared.client.get(f"/series/{answer['ParentSeries']}").json()["IsStable"] is False
    kinds = {c["ChangeType"] for c in changes(shared, limit="10000")["Changes"]}
    assert not any(kind.startswith("Stable") for kind in kinds)


def test_change_type_filter(shared: RunningServer) -> None:
    log = changes(shared, limit="10000", type="NewPatient")
    assert log["Changes"] and {c["ChangeType"] for c in log["Changes"]} == {"NewPatient"}


def test_exports_log(shared: RunningServer) -> None:
    response = shared.client.get("/exports")
    assert response.status_code == 200
    assert response.json() == {"Done": True, "Exports": [], "Last": 0}
    # the reference answers the "since" argument as Last when nothing follows it
    assert shared.client.get("/exports", params={"since": "5", "limit": "3"}).json() == {
        "Done": True,
        "Exports": [],
        "Last": 5,
    }
    deleted = shared.client.delete("/exports")
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert shared.client.get("/exports").json()["Exports"] == []
