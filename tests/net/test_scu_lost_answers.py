"""Outgoing operations that fail at the peer, answered in Orthanc's words: left
without an answer (the peer aborts in the middle, or says nothing until the
modality's timeout: ``DicomAssociation - C-FIND to AET "X": <why>``, for C-FIND
(query, find routes, echo's ``CheckFind``), C-MOVE and C-STORE alike); a peer that
accepts the association and none of its contexts; a storage commitment request that
gets no answer or a failure status."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload
from conftest import RunningServer, free_port
from dicom_factory import make_dicom
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    StorageCommitmentPushModel,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from net import LOOPBACK

ABORTED = "Peer aborted Association (or never connected)"
TIMED_OUT = "DIMSE No data available (timeout in non-blocking mode)"


def _routes(instance: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation Orthanc names, route, body) for each outgoing operation."""
    move = {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3"}], "TargetAet": "X"}
    return [
        ("C-FIND", "echo", {"CheckFind": True}),
        ("C-FIND", "query", {"Level": "Study", "Query": {"PatientID": "X"}}),
        ("C-FIND", "find-patient", {"PatientID": "X"}),
        ("C-FIND", "find-worklist", {}),
        ("C-MOVE", "move", move),
        ("C-STORE", "store", {"Resources": [instance], "Synchronous": True}),
    ]


def _peer(aet: str, react: Callable[[Any], None]) -> Iterator[int]:
    """A peer that accepts the association and the echo, then calls ``react`` on
    each C-FIND, C-MOVE and C-STORE request instead of answering it."""
    ae = AE(ae_title=aet)
    for model in (
        Verification,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
        PatientRootQueryRetrieveInformationModelFind,
        ModalityWorklistInformationFind,
    ):
        ae.add_supported_context(model)
    ae.supported_contexts = ae.supported_contexts + AllStoragePresentationContexts[:100]

    def no_answers(event: Any) -> Iterator[Any]:
        react(event)
        return iter(())

    def no_status(event: Any) -> int:
        react(event)
        return 0

    port = free_port()
    handlers = [
        (evt.EVT_C_FIND, no_answers),
        (evt.EVT_C_MOVE, no_answers),
        (evt.EVT_C_STORE, no_status),
    ]
    server = ae.start_server((LOOPBACK, port), block=False, evt_handlers=handlers)
    try:
        yield port
    finally:
        server.shutdown()


@pytest.fixture
def aborter() -> Iterator[int]:
    yield from _peer("ABORTER", lambda event: event.assoc.abort())


@pytest.fixture
def sleeper() -> Iterator[int]:
    woken = threading.Event()
    yield from _peer("SLEEPER", lambda _event: woken.wait(5))
    woken.set()


def _details(client: httpx.Client, name: str, instance: str) -> list[tuple[str, str]]:
    found = []
    for operation, route, body in _routes(instance):
        response = client.post(f"/modalities/{name}/{route}", json=body)
        error = assert_orthanc_error(response, 500, "Error in the network protocol", 9)
        found.append((operation, error["Details"]))
    return found


def _expected(aet: str, why: str, instance: str) -> list[tuple[str, str]]:
    return [
        (operation, f'DicomAssociation - {operation} to AET "{aet}": {why}')
        for operation, _, _ in _routes(instance)
    ]


def test_a_peer_aborting_in_the_middle(
    make_server: Callable[..., RunningServer], aborter: int
) -> None:
    client = make_server(DicomModalities={"aborter": ["ABORTER", LOOPBACK, aborter]}).client
    instance = upload(client, make_dicom(patient_id="LOST1"))["ID"]
    assert _details(client, "aborter", instance) == _expected("ABORTER", ABORTED, instance)


def test_a_peer_silent_until_the_timeout(
    make_server: Callable[..., RunningServer], sleeper: int
) -> None:
    modality = {"AET": "SLEEPER", "Host": LOOPBACK, "Port": sleeper, "Timeout": 1}
    client = make_server(DicomModalities={"sleeper": modality}).client
    instance = upload(client, make_dicom(patient_id="LOST2"))["ID"]
    assert _details(client, "sleeper", instance) == _expected("SLEEPER", TIMED_OUT, instance)


def _like_the_oracle(
    make_server: Callable[..., RunningServer],
    aet: str,
    port: int,
    answers: Callable[[httpx.Client, str, str], list[Any]],
) -> None:
    """The same peer declared in dicomhub and in the reference: the same ``answers``
    (taken with the modality's name and a stored instance of each)."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    name = f"{aet.lower()}-{uuid.uuid4().hex[:8]}"
    data = make_dicom(patient_id=f"LOST{name[-8:]}")
    client = make_server(DicomModalities={name: [aet, LOOPBACK, port]}).client
    ours = upload(client, data)["ID"]
    theirs = upload(oracle, data)["ID"]
    try:
        assert oracle.put(f"/modalities/{name}", json=[aet, LOOPBACK, port]).status_code == 200
        assert answers(oracle, name, theirs) == answers(client, name, ours)
    finally:
        oracle.delete(f"/modalities/{name}")
        oracle.delete(f"/instances/{theirs}")
        oracle.close()


def test_a_peer_aborting_like_the_oracle(
    make_server: Callable[..., RunningServer], aborter: int
) -> None:
    _like_the_oracle(make_server, "ABORTER", aborter, _details)


# ---- a peer that accepts the association and none of its contexts --------------------
@pytest.fixture
def echo_only() -> Iterator[int]:
    ae = AE(ae_title="ECHOONLY")
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server((LOOPBACK, port), block=False)
    try:
        yield port
    finally:
        server.shutdown()


COMMITMENT = {"DicomInstances": [["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]]}


def _unsupported_answers(client: httpx.Client, name: str, instance: str) -> list[Any]:
    found = []
    for _, route, body in [*_routes(instance), ("N-ACTION", "storage-commitment", COMMITMENT)]:
        answer = client.post(f"/modalities/{name}/{route}", json=body)
        error = answer.json()
        found.append((route, answer.status_code, error["OrthancStatus"], error["Details"]))
    return found


def test_a_peer_without_the_service(
    make_server: Callable[..., RunningServer], echo_only: int
) -> None:
    """As Orthanc: C-FIND and C-MOVE "not supported by the remote SCP", anything else
    "no acceptable presentation context" (the echo itself goes through)."""
    client = make_server(DicomModalities={"echo": ["ECHOONLY", LOOPBACK, echo_only]}).client
    instance = upload(client, make_dicom(patient_id="LOST3"))["ID"]
    assert client.post("/modalities/echo/echo", json={}).status_code == 200
    remote = "Remote AET is ECHOONLY"
    no_context = 'Unable to negotiate a presentation context with AET "ECHOONLY"'
    assert _unsupported_answers(client, "echo", instance) == [
        ("echo", 500, 2016, remote),
        ("query", 500, 2016, remote),
        ("find-patient", 500, 2016, remote),
        ("find-worklist", 500, 2016, remote),
        ("move", 500, 2017, remote),
        ("store", 500, 2015, no_context),
        ("storage-commitment", 500, 2015, no_context),
    ]


def test_a_peer_without_the_service_like_the_oracle(
    make_server: Callable[..., RunningServer], echo_only: int
) -> None:
    _like_the_oracle(make_server, "ECHOONLY", echo_only, _unsupported_answers)


# ---- storage commitment: no answer, or a failure status ------------------------------
@contextlib.contextmanager
def _commitment_peer(status: int | None) -> Iterator[int]:
    ae = AE(ae_title="COMMITTER")
    ae.add_supported_context(StorageCommitmentPushModel)

    def on_action(event: Any) -> tuple[int, None]:
        if status is None:
            event.assoc.abort()
            return 0x0000, None
        return status, None

    port = free_port()
    server = ae.start_server(
        (LOOPBACK, port), block=False, evt_handlers=[(evt.EVT_N_ACTION, on_action)]
    )
    try:
        yield port
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (None, "Unable to read N-ACTION response from AET"),
        (0x0110, "The request cannot be handled by remote AET"),
    ],
)
def test_a_storage_commitment_request_that_fails(
    make_server: Callable[..., RunningServer], status: int | None, why: str
) -> None:
    with _commitment_peer(status) as port:
        client = make_server(DicomModalities={"sc": ["COMMITTER", LOOPBACK, port]}).client
        answer = client.post("/modalities/sc/storage-commitment", json=COMMITMENT)
        error = assert_orthanc_error(answer, 500, "Error in the network protocol", 9)
        assert error["Details"] == f"Storage commitment - {why}: COMMITTER"
        oracle = oracle_client()
        if oracle is not None:  # the reference says the same
            name = f"sc-{uuid.uuid4().hex[:8]}"
            try:
                oracle.put(f"/modalities/{name}", json=["COMMITTER", LOOPBACK, port])
                theirs = oracle.post(f"/modalities/{name}/storage-commitment", json=COMMITMENT)
                assert (theirs.status_code, theirs.json()) == (
                    500,
                    {**error, "Uri": f"/modalities/{name}/storage-commitment"},
                )
            finally:
                oracle.delete(f"/modalities/{name}")
                oracle.close()
