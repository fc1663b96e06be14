"""Pending C-FIND responses written directly (``net.find_responses``) against real peers.

Two pynetdicom SCPs serve the same archive with the same ``FindService``: one hands
the event to ``handle`` (answers written as bytes straight to the association), the
other does not (answers yielded to pynetdicom, the path checked against Orthanc in
``test_find_scp``). Real SCUs (pynetdicom with each transfer syntax, dcmtk's
findscu) must get the same responses from both, cancel and limits included.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from dicom_factory import make_dicom
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import AE, evt
from pynetdicom.dimse_messages import C_FIND_RSP
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from dicomhub.core import ingest
from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings
from dicomhub.net import reactor
from dicomhub.net.find_responses import pending_command
from dicomhub.net.find_scp import FindService
from net import LOOPBACK, dcmtk, output, run

PENDING, SUCCESS, CANCEL = 0xFF00, 0x0000, 0xFE00
SYNTAXES = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
]
STUDY_KEYS = {
    "QueryRetrieveLevel": "STUDY",
    "PatientName": "Müller*",
    "PatientID": "",
    "PatientBirthDate": "",
    "StudyInstanceUID": "",
    "StudyDate": "",
    "StudyDescription": "",
    "AccessionNumber": "",
    "ModalitiesInStudy": "",
    "NumberOfStudyRelatedSeries": "",
    "NumberOfStudyRelatedInstances": "",
    "ReferencedStudySequence": [],
    "StudyID": "",
}


class FindPeer:
    """A pynetdicom C-FIND SCP answering with ``FindService``; ``direct`` passes the
    event to ``handle``. ``hold`` makes the second cancel check wait (bounded) for a
    C-CANCEL, so that a test can cancel between two answers deterministically."""

    def __init__(self, archive: Archive, direct: bool, **config: Any) -> None:
        reactor.install()
        self.service = FindService(archive, {"DefaultEncoding": "Latin1", **config}, "PEER")
        self.direct = direct
        self.hold = False
        self.port = free_port()
        self.pending_via_pynetdicom = 0
        self.yielded: list[int] = []  # statuses the handler gave pynetdicom
        self.finished = threading.Event()
        ae = AE("PEER")
        for model in (
            StudyRootQueryRetrieveInformationModelFind,
            PatientRootQueryRetrieveInformationModelFind,
        ):
            ae.add_supported_context(model, SYNTAXES)
        handlers = [(evt.EVT_C_FIND, self._find), (evt.EVT_DIMSE_SENT, self._sent)]
        self.server = ae.start_server((LOOPBACK, self.port), block=False, evt_handlers=handlers)

    def _sent(self, event: evt.Event) -> None:
        status = event.message.command_set.get("Status")
        if isinstance(event.message, C_FIND_RSP) and status == PENDING:
            self.pending_via_pynetdicom += 1

    def _find(self, event: evt.Event) -> Iterator[tuple[int, Any]]:
        checks = 0

        def is_cancelled() -> bool:  # pynetdicom's answer is True once only
            nonlocal checks
            checks += 1
            cancelled = bool(event.is_cancelled)
            deadline = time.monotonic() + 5
            while self.hold and checks == 2 and not cancelled and time.monotonic() < deadline:
                if event.assoc.acse.is_aborted():  # seen before the reactor marks it
                    break
                time.sleep(0.01)
                cancelled = bool(event.is_cancelled)
            return cancelled

        self.finished.clear()
        for status, answer in self.service.handle(
            event.identifier, is_cancelled, event if self.direct else None
        ):
            self.yielded.append(status)
            yield status, answer
        self.finished.set()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """Six patients named Müller, a study each with CT and MR series."""
    folder: Path = tmp_path_factory.mktemp("direct-find")
    opened = Archive(
        Settings(
            storage_directory=str(folder / "s"),
            index_directory=str(folder / "i"),
            sync_storage_area=False,
        )
    )
    for p in range(6):
        study = generate_uid()
        for modality in ("CT", "MR"):
            series = generate_uid()
            for _ in range(2):
                data = make_dicom(
                    patient_id=f"DIRECT{p}",
                    patient_name=f"Müller^Jürgen{p}",
                    study_uid=study,
                    series_uid=series,
                    modality=modality,
                    charset="ISO_IR 100",
                    StudyDescription="Thorax ñ",
                )
                ingest.store(opened, data)
    yield opened
    opened.close()


@pytest.fixture
def peers(archive: Archive) -> Iterator[Callable[..., FindPeer]]:
    started: list[FindPeer] = []

    def factory(direct: bool, **config: Any) -> FindPeer:
        peer = FindPeer(archive, direct, **config)
        started.append(peer)
        return peer

    yield factory
    for peer in started:
        peer.stop()


def query(keys: dict[str, Any]) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def c_find(
    port: int,
    keys: dict[str, Any],
    syntax: str = ImplicitVRLittleEndian,
    max_pdu: int | None = None,
    cancel_after: int | None = None,
) -> tuple[list[int], list[Dataset]]:
    """One C-FIND: every response status and the pending identifiers; with
    ``cancel_after``, a C-CANCEL is sent once that many answers came."""
    ae = AE("SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    if max_pdu is not None:
        ae.maximum_pdu_size = max_pdu
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind, [syntax])
    assoc = ae.associate(LOOPBACK, port, ae_title="PEER")
    assert assoc.is_established
    statuses: list[int] = []
    answers: list[Dataset] = []
    try:
        for status, identifier in assoc.send_c_find(
            query(keys), StudyRootQueryRetrieveInformationModelFind, msg_id=7
        ):
            if not status:
                statuses.append(-1)
                break
            statuses.append(int(status.Status))
            if status.Status == PENDING:
                answers.append(identifier)
                if cancel_after is not None and len(answers) == cancel_after:
                    assoc.send_c_cancel(7, query_model=StudyRootQueryRetrieveInformationModelFind)
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses, answers


def elements(ds: Dataset) -> list[tuple[int, str, str]]:
    return [(int(e.tag), str(e.VR), str(e.value)) for e in ds]


def test_pending_command_is_what_pynetdicom_encodes() -> None:
    for message_id, uid in ((7, StudyRootQueryRetrieveInformationModelFind), (65535, "1.2.3")):
        primitive = C_FIND()
        primitive.MessageIDBeingRespondedTo = message_id
        primitive.AffectedSOPClassUID = uid
        primitive.Status = PENDING
        primitive.Identifier = io.BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
        message = C_FIND_RSP()
        message.primitive_to_message(primitive)
        assert pending_command(message_id, uid) == encode(message.command_set, True, True)


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_direct_answers_are_pynetdicoms(peers: Callable[..., FindPeer], syntax: str) -> None:
    """Same statuses, same answers, element by element, whichever way they went; the
    direct peer sent no pending answer through pynetdicom (but the deflated ones)."""
    direct, usual = peers(True), peers(False)
    got = [c_find(peer.port, STUDY_KEYS, syntax) for peer in (direct, usual)]
    assert got[0][0] == got[1][0] == [PENDING] * 6 + [SUCCESS]
    assert [elements(a) for a in got[0][1]] == [elements(a) for a in got[1][1]]
    first = got[0][1][0]
    assert str(first.PatientName).startswith("Müller^Jürgen")
    assert first.StudyDescription == "Thorax ñ"
    assert list(first.ModalitiesInStudy) == ["CT", "MR"]
    # a sequence the files lack is left out of the answers, as Orthanc leaves it out
    assert "ReferencedStudySequence" not in first
    assert usual.pending_via_pynetdicom == 6
    assert direct.pending_via_pynetdicom == (6 if syntax == DeflatedExplicitVRLittleEndian else 0)


def test_fragmented_when_the_peer_takes_small_pdus(peers: Callable[..., FindPeer]) -> None:
    """A peer whose maximum PDU is smaller than an answer gets it in fragments."""
    direct, usual = peers(True), peers(False)
    got = [
        c_find(peer.port, STUDY_KEYS, ExplicitVRLittleEndian, max_pdu=64)
        for peer in (direct, usual)
    ]
    assert got[0][0] == [PENDING] * 6 + [SUCCESS]
    assert [elements(a) for a in got[0][1]] == [elements(a) for a in got[1][1]]
    assert direct.pending_via_pynetdicom == 0


def test_cancel_between_answers(peers: Callable[..., FindPeer]) -> None:
    direct = peers(True)
    direct.hold = True
    statuses, answers = c_find(direct.port, STUDY_KEYS, cancel_after=1)
    assert statuses == [PENDING, CANCEL] and len(answers) == 1


def test_limits_crop_with_cancel_status(peers: Callable[..., FindPeer]) -> None:
    direct = peers(True, LimitFindResults=4)
    statuses, answers = c_find(direct.port, STUDY_KEYS)
    assert statuses == [PENDING] * 4 + [CANCEL] and len(answers) == 4


def test_findscu_reads_the_direct_answers(peers: Callable[..., FindPeer], tmp_path: Path) -> None:
    """dcmtk's findscu (its own upper layer) takes the answers, both PDVs in a PDU."""
    direct = peers(True)
    keys = ["QueryRetrieveLevel=STUDY", "PatientID=DIRECT*", "StudyDescription", "PatientName"]
    args = [dcmtk("findscu"), "-v", "-S", "-aet", "FINDSCU", "-aec", "PEER", "-X"]
    args += ["-od", str(tmp_path)]
    for key in keys:
        args += ["-k", key]
    result = run([*args, LOOPBACK, str(direct.port)])
    assert result.returncode == 0, output(result)
    answers = [dcmread(p) for p in sorted(tmp_path.glob("rsp*.dcm"))]
    assert len(answers) == 6, output(result)
    assert sorted(a.PatientID for a in answers) == [f"DIRECT{p}" for p in range(6)]
    assert {a.StudyDescription for a in answers} == {"Thorax ñ"}
    assert all(str(a.PatientName).startswith("Müller^Jürgen") for a in answers)
    assert direct.pending_via_pynetdicom == 0


def test_an_association_lost_midway_stops_the_answers(peers: Callable[..., FindPeer]) -> None:
    """The peer aborts after the first answer: the handler ends without writing or
    yielding anything more."""
    direct = peers(True)
    direct.hold = True
    ae = AE("SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate(LOOPBACK, direct.port, ae_title="PEER")
    assert assoc.is_established
    for status, _ in assoc.send_c_find(
        query(STUDY_KEYS), StudyRootQueryRetrieveInformationModelFind
    ):
        assert status.Status == PENDING
        assoc.abort()
        break
    assert direct.finished.wait(10)
    assert direct.yielded == []
    direct.hold = False
    assert c_find(direct.port, STUDY_KEYS)[0] == [PENDING] * 6 + [SUCCESS]
