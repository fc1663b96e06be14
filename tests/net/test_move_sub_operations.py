"""The C-STORE sub-operations of C-MOVE and C-GET (sent through ``dicomhub.net.wire``
and the reactors' direct writes and reads) against pynetdicom peers that misbehave on
purpose: warnings counted as completed and a refusal ending the move (as Orthanc 1.10.1
answers, compared with it when it answers), a peer that aborts half-way, a peer that
wants another transfer syntax, and the server still serving afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from archive_checks import oracle_client, upload
from conftest import RunningServer, free_port
from dicom_factory import CT_IMAGE_STORAGE, make_dicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from net import (
    LOOPBACK,
    StoreScp,
    dcmtk,
    dicom_port,
    get_association,
    output,
    query_dataset,
    run,
    study_move,
    suboperation_counts,
)

PENDING, SUCCESS, WARNING, FAILURE, UNABLE = 0xFF00, 0x0000, 0xB000, 0xA702, 0xC000
REFUSED = 0xA700  # out of resources: a C-STORE failure


class Sink:
    """A pynetdicom storage SCP whose answer to the n-th C-STORE (from 0) is
    ``answer(n, dataset)``: a status, or a status Dataset, or "abort"."""

    def __init__(
        self,
        answer: Callable[[int, Dataset], Any],
        syntaxes: tuple[str, ...] = (ExplicitVRLittleEndian, ImplicitVRLittleEndian),
        aet: str = "SINK",
    ) -> None:
        self.aet = aet
        self.port = free_port()
        self.answer = answer
        self.received: list[Dataset] = []
        self.raw: list[bytes] = []  # the data sets as they came on the wire
        self.syntaxes_seen: list[str] = []
        self.released = threading.Event()
        self.calls = 0
        ae = AE(aet)
        ae.add_supported_context(CT_IMAGE_STORAGE, list(syntaxes))
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 15
        self.server = ae.start_server(
            (LOOPBACK, self.port),
            block=False,
            evt_handlers=[
                (evt.EVT_C_STORE, self._store),
                (evt.EVT_RELEASED, lambda event: self.released.set()),
            ],
        )

    def _store(self, event: evt.Event) -> Any:
        n = self.calls
        self.calls += 1
        self.raw.append(event.request.DataSet.getvalue())
        dataset = event.dataset
        reply = self.answer(n, dataset)
        if reply == "abort":
            event.assoc.abort()
            return 0x0000
        self.syntaxes_seen.append(str(event.context.transfer_syntax))
        status = reply if isinstance(reply, int) else int(reply.Status)
        if status in (SUCCESS, WARNING, 0xB007):
            self.received.append(dataset)
        return reply

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def sinks() -> Iterator[list[Sink]]:
    started: list[Sink] = []
    yield started
    for sink in started:
        sink.stop()


def _start(make_server: Any, sink: Sink, count: int) -> tuple[RunningServer, int, list[str]]:
    """A server knowing ``sink`` as a modality, with one study of ``count`` instances;
    returns the server, its DICOM port and the SOP Instance UIDs in sending order."""
    server = make_server(
        DicomBindAddress=LOOPBACK,
        DicomAlwaysAllowMove=True,
        DicomAlwaysAllowGet=True,
        DicomAlwaysAllowFind=True,
        DicomModalities={"sink": [sink.aet, LOOPBACK, sink.port]},
    )
    study, series = generate_uid(), generate_uid()
    for _ in range(count):
        data = make_dicom(patient_id="SUBOPS", study_uid=study, series_uid=series)
        server.client.post("/instances", content=data).raise_for_status()
    return server, dicom_port(server), [study]


def _move(
    port: int, destination: str, study: str, called: str = "ORTHANC"
) -> list[tuple[Dataset, Dataset | None]]:
    """Every (status, identifier) a pynetdicom C-MOVE SCU receives."""
    assoc, query = study_move(port, called, study)
    answers = []
    for status, identifier in assoc.send_c_move(
        query, destination, StudyRootQueryRetrieveInformationModelMove
    ):
        assert status, "association lost during the C-MOVE"
        answers.append((status, identifier))
    assoc.release()
    return answers


def _failed_list(identifier: Dataset | None) -> list[str]:
    value = identifier.get("FailedSOPInstanceUIDList", []) if identifier else []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _move_answers(answers: list[tuple[Dataset, Dataset | None]]) -> list[tuple[Any, ...]]:
    """Each response as (status, remaining or None, completed, failed, warning, the
    Failed SOP Instance UID List or None)."""
    shown = []
    for status, identifier in answers:
        remaining = status.get("NumberOfRemainingSuboperations")
        failed = identifier.get("FailedSOPInstanceUIDList") if identifier else None
        shown.append(
            (
                int(status.Status),
                None if remaining is None else int(remaining),
                *suboperation_counts(status),
                None if failed is None else _failed_list(identifier),
            )
        )
    return shown


def test_warnings_count_as_completed(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """As Orthanc 1.10.1: a sub-operation answered with a warning is completed, the
    move ends with Success, and no Pending response follows the last sub-operation."""

    def answer(n: int, dataset: Dataset) -> Any:
        if n % 2:  # a warning with a comment: not the plain answer, read by pydicom
            status = Dataset()
            status.Status = WARNING
            status.ErrorComment = "coerced"
            return status
        return 0xB007 if n == 4 else SUCCESS

    sink = Sink(answer)
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 8)
    answers = _move_answers(_move(port, sink.aet, study))
    pending = [(PENDING, 8 - n, n, 0, 0, None) for n in range(1, 8)]
    assert answers == [*pending, (SUCCESS, None, 8, 0, 0, None)]
    assert len(sink.received) == 8
    assert sink.released.wait(10), "the sub-association is released, not dropped"


@pytest.mark.parametrize("refused", [2, 7])
def test_a_refusal_stops_the_move(make_server, sinks, refused: int) -> None:  # type: ignore[no-untyped-def]
    """As Orthanc 1.10.1: the first sub-operation the destination refuses ends the
    move at once (a refusal of the last one too), answered 0xC000 with zero counts
    and no list of failed instances."""
    sink = Sink(lambda n, dataset: REFUSED if n == refused else SUCCESS)
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 8)
    answers = _move_answers(_move(port, sink.aet, study))
    pending = [(PENDING, 8 - n, n, 0, 0, None) for n in range(1, refused + 1)]
    assert answers == [*pending, (UNABLE, None, 0, 0, 0, None)]
    assert sink.calls == refused + 1 and len(sink.received) == refused
    assert sink.released.wait(10), "the sub-association is released, not dropped"


def test_a_destination_that_refuses_everything_fails_the_move(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    sink = Sink(lambda n, dataset: REFUSED)
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 3)
    answers = _move_answers(_move(port, sink.aet, study))
    assert answers == [(UNABLE, None, 0, 0, 0, None)]
    assert sink.calls == 1


def test_sub_operations_answer_as_the_oracle(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """The same study moved by Orthanc 1.10.1 and by dicomhub to a destination that
    accepts everything, warns about the 2nd instance, or refuses it: same responses."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    answers: dict[str, Callable[[int], Any]] = {
        "accepts": lambda n: SUCCESS,
        "warns": lambda n: WARNING if n == 1 else SUCCESS,
        "refuses the last": lambda n: REFUSED if n == 2 else SUCCESS,
        "refuses": lambda n: REFUSED if n == 1 else SUCCESS,
    }
    mode = {"answer": answers["accepts"]}
    sink = Sink(lambda n, dataset: mode["answer"](n))
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 3)
    system = oracle.get("/system").json()
    added: list[str] = []
    names = [f"subops{uuid4().hex[:8]}", f"subops{uuid4().hex[:8]}"]
    try:
        found = server.client.post("/tools/lookup", content=study).json()[0]["ID"]
        for instance in server.client.get(f"/studies/{found}/instances").json():
            data = server.client.get(f"/instances/{instance['ID']}/file").content
            added.append(upload(oracle, data)["ID"])
        for name, aet, peer_port in ((names[0], sink.aet, sink.port), (names[1], "PYMOVE", 9)):
            entry = [aet, LOOPBACK, peer_port]
            assert oracle.put(f"/modalities/{name}", json=entry).status_code == 200
        for name, answer in answers.items():
            mode["answer"] = answer
            sink.calls = 0
            ours = _move_answers(_move(port, sink.aet, study))
            ours_calls, sink.calls = sink.calls, 0
            theirs = _move_answers(
                _move(system["DicomPort"], sink.aet, study, called=system["DicomAet"])
            )
            assert ours == theirs, name
            assert ours_calls == sink.calls, name
        # and on dicomhub alone: the statuses Orthanc gave
        assert [a[0] for a in ours] == [PENDING, UNABLE]
    finally:
        for name in names:
            oracle.delete(f"/modalities/{name}")
        for instance in added:
            oracle.delete(f"/instances/{instance}")
        oracle.close()


def _get(port: int, study: str, answer: Callable[[int], Any], called: str = "ORTHANC") -> Any:
    """The responses a pynetdicom C-GET SCU receives (as ``_move_answers``) and the
    number of C-STOREs it was sent, answering the n-th with ``answer(n)``."""
    calls: list[int] = []

    def on_store(event: evt.Event) -> Any:
        calls.append(len(calls))
        return answer(len(calls) - 1)

    assoc = get_association(
        port,
        on_store,
        [StudyRootQueryRetrieveInformationModelGet],
        [CT_IMAGE_STORAGE],
        [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
        called=called,
        timeout=20,
    )
    query = query_dataset(QueryRetrieveLevel="STUDY", StudyInstanceUID=study)
    answers = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    assert all(status for status, _ in answers), "association lost during the C-GET"
    return _move_answers(answers), len(calls)


def test_c_get_answers_as_the_oracle(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """The same study got from Orthanc 1.10.1 and from dicomhub by a requester that
    accepts everything, warns about one instance, refuses one or refuses all."""
    sink = Sink(lambda n, dataset: SUCCESS)  # only to configure a modality
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 3)
    answers: dict[str, Callable[[int], Any]] = {
        "accepts": lambda n: SUCCESS,
        "warns": lambda n: WARNING if n == 1 else SUCCESS,
        "refuses": lambda n: REFUSED if n == 1 else SUCCESS,
        "refuses all": lambda n: REFUSED,
    }
    ours = {name: _get(port, study, answer) for name, answer in answers.items()}
    # on dicomhub alone: the final statuses and counts Orthanc gave, 3 pending before
    expected = {
        "accepts": (SUCCESS, None, 3, 0, 0, None),
        "warns": (WARNING, None, 2, 0, 1, None),
        "refuses": (WARNING, None, 2, 1, 0, None),
        "refuses all": (FAILURE, None, 0, 3, 0, None),
    }
    for name, (responses, calls) in ours.items():
        assert responses[-1] == expected[name] and calls == 3, name
        assert [r[:2] for r in responses[:-1]] == [(PENDING, 2), (PENDING, 1), (PENDING, 0)]
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    system = oracle.get("/system").json()
    added: list[str] = []
    name = f"subops{uuid4().hex[:8]}"
    try:
        found = server.client.post("/tools/lookup", content=study).json()[0]["ID"]
        for instance in server.client.get(f"/studies/{found}/instances").json():
            data = server.client.get(f"/instances/{instance['ID']}/file").content
            added.append(upload(oracle, data)["ID"])
        entry = ["PYGET", LOOPBACK, 9]
        assert oracle.put(f"/modalities/{name}", json=entry).status_code == 200
        for label, answer in answers.items():
            theirs = _get(system["DicomPort"], study, answer, called=system["DicomAet"])
            assert ours[label] == theirs, label
    finally:
        oracle.delete(f"/modalities/{name}")
        for instance in added:
            oracle.delete(f"/instances/{instance}")
        oracle.close()


def test_a_destination_that_aborts_half_way(make_server, sinks, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sink = Sink(lambda n, dataset: "abort" if n == 2 else SUCCESS)
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 6)
    answers = _move_answers(_move(port, sink.aet, study))
    # a failed sub-operation, like a refusal: the move stops there
    assert answers[-1] == (UNABLE, None, 0, 0, 0, None)
    assert [a[0] for a in answers[:-1]] == [PENDING, PENDING]
    assert len(sink.received) == 2
    # the server goes on serving: the next move to a well-behaved peer is complete
    dcmtk_sink = StoreScp(tmp_path / "again", aet="AGAIN")
    try:
        server.client.put(
            "/modalities/again", json={"AET": "AGAIN", "Host": LOOPBACK, "Port": dcmtk_sink.port}
        ).raise_for_status()
        args = [dcmtk("movescu"), "-v", "-S", "-aet", "MOVESCU", "-aem", "AGAIN"]
        args += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}"]
        text = output(run([*args, "-aec", "ORTHANC", LOOPBACK, str(port)]))
        assert "Received Final Move Response (Success)" in text, text
        assert len(dcmtk_sink.wait_files(6)) == 6
    finally:
        dcmtk_sink.stop()


def test_a_destination_wanting_another_syntax_gets_it(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """The files are Explicit VR Little Endian; this peer takes only Implicit: each
    instance is decoded and re-encoded by pynetdicom rather than sent as stored."""
    sink = Sink(lambda n, dataset: SUCCESS, syntaxes=(ImplicitVRLittleEndian,))
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 3)
    answers = _move(port, sink.aet, study)
    assert int(answers[-1][0].Status) == SUCCESS
    assert suboperation_counts(answers[-1][0]) == (3, 0, 0)
    assert sink.syntaxes_seen == [ImplicitVRLittleEndian] * 3
    assert all(d.PatientID == "SUBOPS" and "PixelData" in d for d in sink.received)


def test_stored_bytes_arrive_unchanged(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    sink = Sink(lambda n, dataset: SUCCESS)
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 2)
    answers = _move(port, sink.aet, study)
    assert suboperation_counts(answers[-1][0]) == (2, 0, 0)
    assert sink.syntaxes_seen == [ExplicitVRLittleEndian] * 2
    for received, raw in zip(sink.received, sink.raw, strict=True):
        found = server.client.post("/tools/lookup", content=str(received.SOPInstanceUID))
        stored = server.client.get(f"/instances/{found.json()[0]['ID']}/file").content
        # the file is its meta information, then exactly what was sent
        assert stored.endswith(raw) and len(stored) - len(raw) < 400


def test_c_get_counts_refusals(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    sink = Sink(lambda n, dataset: SUCCESS)  # only to configure a modality
    sinks.append(sink)
    server, port, _ = _start(make_server, sink, 5)
    calls: list[str] = []

    def on_store(event: evt.Event) -> int:
        calls.append(str(event.dataset.SOPInstanceUID))
        return REFUSED if len(calls) == 2 else SUCCESS

    assoc = get_association(
        port,
        on_store,
        [PatientRootQueryRetrieveInformationModelGet],
        [CT_IMAGE_STORAGE],
        [ImplicitVRLittleEndian, ExplicitVRLittleEndian],
    )
    query = query_dataset(QueryRetrieveLevel="PATIENT", PatientID="SUBOPS")
    answers = list(assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet))
    assoc.release()
    # as Orthanc 1.10.1: a C-GET goes on after a refusal, counts it, and ends with a
    # Warning without the remaining count nor a Failed SOP Instance UID List
    statuses = [int(s.Status) for s, _ in answers]
    assert statuses == [PENDING] * 5 + [WARNING]
    assert suboperation_counts(answers[-1][0]) == (4, 1, 0)
    assert "NumberOfRemainingSuboperations" not in answers[-1][0]
    assert _failed_list(answers[-1][1]) == [] and len(calls) == 5


def test_a_cancel_stops_the_move(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """C-CANCEL arrives on the requester's association while the sub-operations run:
    the move stops with a Cancel status and the counts so far."""

    def slow(n: int, dataset: Dataset) -> int:
        time.sleep(0.1)
        return SUCCESS

    sink = Sink(slow)
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 30)
    assoc, query = study_move(port, "ORTHANC", study)
    statuses = []
    for status, _ in assoc.send_c_move(
        query, sink.aet, StudyRootQueryRetrieveInformationModelMove, msg_id=7
    ):
        assert status
        statuses.append(status)
        if len(statuses) == 2:
            assoc.send_c_cancel(7, query_model=StudyRootQueryRetrieveInformationModelMove)
    assoc.release()
    final = statuses[-1]
    assert int(final.Status) == 0xFE00
    completed, failed, warning = suboperation_counts(final)
    remaining = int(final.NumberOfRemainingSuboperations)
    assert completed >= 2 and remaining > 0 and completed + failed + remaining == 30
    assert len(sink.received) == completed
    assert sink.released.wait(10)


def test_c_gets_on_one_association_and_a_cancel(make_server, sinks) -> None:  # type: ignore[no-untyped-def]
    """C-GET answers are read straight from the requester's association while the
    C-GET runs: the association still serves the next request, a C-CANCEL among the
    answers stops the next C-GET, and a C-FIND afterwards is answered."""
    sink = Sink(lambda n, dataset: SUCCESS)  # only to configure a modality
    sinks.append(sink)
    server, port, (study,) = _start(make_server, sink, 12)
    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        time.sleep(0.02)
        return SUCCESS

    assoc = get_association(
        port,
        on_store,
        [PatientRootQueryRetrieveInformationModelGet, PatientRootQueryRetrieveInformationModelFind],
        [CT_IMAGE_STORAGE],
        [ExplicitVRLittleEndian],
    )
    query = query_dataset(QueryRetrieveLevel="PATIENT", PatientID="SUBOPS")
    try:
        first = list(assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet))
        assert int(first[-1][0].Status) == SUCCESS and suboperation_counts(first[-1][0]) == (
            12,
            0,
            0,
        )
        statuses = []
        for status, _ in assoc.send_c_get(
            query, PatientRootQueryRetrieveInformationModelGet, msg_id=9
        ):
            assert status
            statuses.append(status)
            if len(statuses) == 2:
                assoc.send_c_cancel(9, query_model=PatientRootQueryRetrieveInformationModelGet)
        final = statuses[-1]
        assert int(final.Status) == 0xFE00
        assert int(final.NumberOfRemainingSuboperations) > 0
        find = query_dataset(QueryRetrieveLevel="PATIENT", PatientID="SUBOPS")
        answers = list(assoc.send_c_find(find, PatientRootQueryRetrieveInformationModelFind))
        assert [int(s.Status) for s, _ in answers] == [PENDING, SUCCESS]
    finally:
        assoc.release()
    assert len(received) == 12 + suboperation_counts(final)[0]
