"""An outgoing operation left without an answer: the peer aborts the association in
the middle of it, or says nothing until the modality's timeout. Orthanc reports both
in DCMTK's words, ``DicomAssociation - C-FIND to AET "X": <why>`` (500, network
protocol error), for C-FIND (query, find routes, echo's ``CheckFind``), C-MOVE and
C-STORE alike."""

from __future__ import annotations

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


def test_a_peer_aborting_like_the_oracle(
    make_server: Callable[..., RunningServer], aborter: int
) -> None:
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    name = f"lost-{uuid.uuid4().hex[:8]}"
    data = make_dicom(patient_id=f"LOST{name[-8:]}")
    client = make_server(DicomModalities={name: ["ABORTER", LOOPBACK, aborter]}).client
    ours = upload(client, data)["ID"]
    theirs = upload(oracle, data)["ID"]
    try:
        assert (
            oracle.put(f"/modalities/{name}", json=["ABORTER", LOOPBACK, aborter]).status_code
            == 200
        )
        assert _details(oracle, name, theirs) == _details(client, name, ours)
    finally:
        oracle.delete(f"/modalities/{name}")
        oracle.delete(f"/instances/{theirs}")
        oracle.close()
