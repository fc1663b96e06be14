"""The C-MOVE sub-operations that dicomhub drives itself (``net/move_sub_operations``):
what the destination receives is what pynetdicom's own C-MOVE service sends (Message
IDs, Move Originator, priority, the stored bytes), and a file that cannot be read
half-way ends the move as before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dicom_factory import make_dicom
from pydicom.uid import generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelMove,
)

from net import LOOPBACK, dicom_port, study_move, suboperation_counts
from net.test_move_sub_operations import (
    PENDING,
    SUCCESS,
    UNABLE,
    Sink,
    _move_answers,
)


@pytest.fixture
def sinks() -> Iterator[list[Sink]]:
    started: list[Sink] = []
    yield started
    for sink in started:
        sink.stop()


class RecordingSink(Sink):
    """A sink that also keeps the command of each C-STORE-RQ it receives."""

    def __init__(self) -> None:
        super().__init__(lambda n, dataset: SUCCESS)
        self.requests: list[tuple[int, int, str, int]] = []

    def _store(self, event: evt.Event) -> Any:
        request = event.request
        self.requests.append(
            (
                int(request.MessageID),
                int(request.MoveOriginatorMessageID),
                str(request.MoveOriginatorApplicationEntityTitle).strip(),
                int(request.Priority),
            )
        )
        return super()._store(event)


def _server(make_server: Any, sink: Sink, count: int, **config: Any) -> tuple[Any, int, str]:
    server = make_server(
        DicomAet="DHUB",
        DicomAlwaysAllowMove=True,
        DicomModalities={"sink": [sink.aet, LOOPBACK, sink.port]},
        **config,
    )
    study = generate_uid()
    series = generate_uid()
    for _ in range(count):
        data = make_dicom(patient_id="DRIVEN", study_uid=study, series_uid=series)
        server.client.post("/instances", content=data).raise_for_status()
    return server, dicom_port(server), study


def _move(port: int, study: str, destination: str, msg_id: int) -> list[Any]:
    assoc, query = study_move(port, "DHUB", study)
    answers = []
    try:
        for status, identifier in assoc.send_c_move(
            query, destination, StudyRootQueryRetrieveInformationModelMove, msg_id=msg_id
        ):
            assert status, "association lost during the C-MOVE"
            answers.append((status, identifier))
    finally:
        assoc.release()
    return answers


def test_sub_operations_are_numbered_as_pynetdicom_numbers_them(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """Message ID of the request + 1, + 2... (past 65535 from 1 again), the move's
    Message ID and our AET as Move Originator, medium priority."""
    sink = RecordingSink()
    sinks.append(sink)
    server, port, study = _server(make_server, sink, 4)
    answers = _move_answers(_move(port, study, sink.aet, 65533))
    assert answers == [
        (PENDING, 3, 1, 0, 0, None),
        (PENDING, 2, 2, 0, 0, None),
        (PENDING, 1, 3, 0, 0, None),
        (SUCCESS, None, 4, 0, 0, None),
    ]
    assert sink.requests == [
        (65534, 65533, "DHUB", 2),
        (65535, 65533, "DHUB", 2),
        (1, 65533, "DHUB", 2),
        (2, 65533, "DHUB", 2),
    ]
    # the stored bytes, in the order the server lists the study's instances
    listed = server.client.get(f"/studies/{_study_id(server, study)}/instances").json()
    sent = [str(dataset.SOPInstanceUID) for dataset in sink.received]
    assert sorted(sent) == sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in listed)
    assert len(set(sent)) == 4


def _study_id(server: Any, study: str) -> str:
    found = server.client.post(
        "/tools/lookup", content=study, headers={"Content-Type": "text/plain"}
    ).json()
    return str(found[0]["ID"])


def test_an_unreadable_file_half_way_ends_the_move(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """A file gone from the storage area (deleted behind the server's back) is a
    failed sub-operation when its turn comes: the instances before it are sent and
    reported as Pending, then the move ends with 0xC000 and zero counts."""
    sink = RecordingSink()
    sinks.append(sink)
    # no storage cache: the file is read from the disk when its turn comes
    server, port, study = _server(make_server, sink, 5, MaximumStorageCacheSize=0)
    # the order the server sends in: one move first
    first = _move(port, study, sink.aet, 3)
    assert int(first[-1][0].Status) == SUCCESS and suboperation_counts(first[-1][0]) == (5, 0, 0)
    order = [str(dataset.SOPInstanceUID) for dataset in sink.received]
    sink.received.clear()
    third = server.client.post(
        "/tools/lookup", content=order[2], headers={"Content-Type": "text/plain"}
    ).json()[0]["ID"]
    info = server.client.get(f"/instances/{third}/attachments/dicom/info").json()
    uuid = info["Uuid"]
    path = Path(server.config["StorageDirectory"]) / uuid[0:2] / uuid[2:4] / uuid
    path.unlink()
    answers = _move_answers(_move(port, study, sink.aet, 9))
    assert answers == [
        (PENDING, 4, 1, 0, 0, None),
        (PENDING, 3, 2, 0, 0, None),
        (UNABLE, None, 0, 0, 0, None),
    ]
    assert [str(dataset.SOPInstanceUID) for dataset in sink.received] == order[:2]
    deadline = time.monotonic() + 10
    while not sink.released.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.released.is_set()
