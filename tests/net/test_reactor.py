"""The event-driven association reactors (dicomhub/net/reactor.py) with real pynetdicom
peers on loopback: requests and answers in a long run, releases and aborts from either
side, and C-STOREs sent as the stored bytes or decoded for a peer that wants another
transfer syntax."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator

import pytest
from conftest import free_port
from dicom_factory import CT_IMAGE_STORAGE, make_dataset, to_bytes
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from dicomhub.dicom import encoded
from dicomhub.net import reactor

LOOPBACK = "127.0.0.1"


class Peer:
    """A pynetdicom storage SCP that keeps what it receives."""

    def __init__(self, syntaxes: list[str]) -> None:
        self.received: list[Dataset] = []
        self.released = threading.Event()
        self.port = free_port()
        ae = AE("PEER")
        ae.add_supported_context(Verification)
        ae.add_supported_context(CT_IMAGE_STORAGE, syntaxes)
        handlers = [
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_RELEASED, lambda event: self.released.set()),
        ]
        self.server = ae.start_server((LOOPBACK, self.port), block=False, evt_handlers=handlers)
        self.ae = ae

    def _store(self, event: evt.Event) -> int:
        self.received.append(event.dataset)
        return 0x0000

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def peer() -> Iterator[Peer]:
    running = Peer([ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    yield running
    running.stop()


def _requestor(*contexts: object) -> AE:
    ae = AE("SENDER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for context in contexts:
        ae.add_requested_context(*context)  # type: ignore[misc]
    return ae


def test_associations_use_the_event_driven_reactors(peer: Peer) -> None:
    assoc = _requestor((Verification,)).associate(LOOPBACK, peer.port, ae_title="PEER")
    try:
        assert isinstance(assoc, reactor.EventDrivenAssociation)
        assert isinstance(assoc.dul, reactor.EventDrivenDUL)
        (server_side,) = peer.server.active_associations
        assert isinstance(server_side, reactor.EventDrivenAssociation)
    finally:
        assoc.release()


def test_a_long_run_of_requests_gets_every_answer(peer: Peer) -> None:
    """Stock pynetdicom's reactor could take a fast peer's response off the queue
    before the sender did (the sender then waited out its DIMSE timeout)."""
    assoc = _requestor((Verification,)).associate(LOOPBACK, peer.port, ae_title="PEER")
    try:
        statuses = [assoc.send_c_echo(msg_id=n % 65535 + 1).get("Status") for n in range(1500)]
    finally:
        assoc.release()
    assert statuses == [0x0000] * 1500


def test_release_and_abort_from_either_side(peer: Peer) -> None:
    ae = _requestor((Verification,))
    assoc = ae.associate(LOOPBACK, peer.port, ae_title="PEER")
    assoc.release()
    assert assoc.is_released
    assert peer.released.wait(5)

    assoc = ae.associate(LOOPBACK, peer.port, ae_title="PEER")
    assoc.abort()
    assert assoc.is_aborted
    assoc.join(5)
    assert not assoc.is_alive()

    # The peer ends the association: our side notices without being asked
    assoc = ae.associate(LOOPBACK, peer.port, ae_title="PEER")
    (server_side,) = peer.server.active_associations
    server_side.abort()
    assoc.join(5)
    assert not assoc.is_alive()
    assert assoc.is_aborted


def test_stored_bytes_are_sent_as_they_are(peer: Peer) -> None:
    original = make_dataset(rows=16, columns=16, PatientComments="kept as stored")
    stored = encoded.split(to_bytes(original))
    assert stored.SOPInstanceUID == original.SOPInstanceUID
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    ae = _requestor((CT_IMAGE_STORAGE, [ExplicitVRLittleEndian]))
    assoc = ae.associate(LOOPBACK, peer.port, ae_title="PEER")
    try:
        assert assoc.send_c_store(stored).Status == 0x0000
    finally:
        assoc.release()
    (received,) = peer.received
    assert received.PatientComments == "kept as stored"
    assert received.PixelData == original.PixelData
    assert [e.tag for e in received] == [e.tag for e in original]


def test_a_peer_with_another_syntax_gets_the_decoded_data_set() -> None:
    implicit_only = Peer([ImplicitVRLittleEndian])
    try:
        original = make_dataset(rows=8, columns=8)
        ae = _requestor((CT_IMAGE_STORAGE, [ImplicitVRLittleEndian]))
        assoc = ae.associate(LOOPBACK, implicit_only.port, ae_title="PEER")
        try:
            status = assoc.send_c_store(encoded.split(to_bytes(original)))
        finally:
            assoc.release()
        assert status.Status == 0x0000
        (received,) = implicit_only.received
        assert received.SOPInstanceUID == original.SOPInstanceUID
        assert received.PixelData == original.PixelData
    finally:
        implicit_only.stop()


def test_a_file_without_its_meta_information_is_refused() -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    stream = io.BytesIO()
    stream.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(stream, meta, enforce_standard=False)
    with pytest.raises(ValueError, match="MediaStorageSOPInstanceUID"):
        encoded.split(stream.getvalue())


def test_no_context_for_the_class_fails_like_pynetdicom(peer: Peer) -> None:
    assoc = _requestor((Verification,)).associate(LOOPBACK, peer.port, ae_title="PEER")
    try:
        with pytest.raises(ValueError):
            assoc.send_c_store(encoded.split(to_bytes(make_dataset())))
    finally:
        assoc.release()


def _stored(n: int) -> list[encoded.EncodedDataset]:
    return [encoded.split(to_bytes(make_dataset(rows=8, columns=8))) for _ in range(n)]


def test_a_long_run_of_stored_bytes_read_directly(peer: Peer) -> None:
    """Our own association reads its C-STORE answers itself ("direct mode"): every
    answer arrives, the DUL thread gets the socket back for the release."""
    datasets = _stored(300)
    assoc = _requestor((CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])).associate(
        LOOPBACK, peer.port, ae_title="PEER"
    )
    try:
        statuses = [
            assoc.send_c_store(d, msg_id=n + 1).get("Status") for n, d in enumerate(datasets)
        ]
        assert assoc.dul.is_direct
    finally:
        assoc.release()
    assert statuses == [0x0000] * 300
    assert assoc.is_released and peer.released.wait(5)
    assert [r.SOPInstanceUID for r in peer.received] == [d.SOPInstanceUID for d in datasets]


def test_answers_in_small_pdus_go_pynetdicoms_way(peer: Peer) -> None:
    """A small maximum PDU length makes the peer split each answer over several PDUs:
    not one whole answer, so the DUL reads them and pynetdicom decodes them."""
    ae = _requestor((CT_IMAGE_STORAGE, [ExplicitVRLittleEndian]))
    datasets = _stored(5)
    assoc = ae.associate(LOOPBACK, peer.port, ae_title="PEER", max_pdu=64)
    try:
        statuses = [
            assoc.send_c_store(d, msg_id=n + 1).get("Status") for n, d in enumerate(datasets)
        ]
        assert not assoc.dul.is_direct
    finally:
        assoc.release()
    assert statuses == [0x0000] * 5
    assert len(peer.received) == 5


def test_a_peer_aborting_instead_of_answering() -> None:
    aborting = Peer([ExplicitVRLittleEndian])
    calls: list[int] = []

    def store(event: evt.Event) -> int:
        calls.append(1)
        if len(calls) == 2:
            event.assoc.abort()
        return 0x0000

    aborting.server.unbind(evt.EVT_C_STORE, aborting._store)
    aborting.server.bind(evt.EVT_C_STORE, store)
    try:
        datasets = _stored(3)
        assoc = _requestor((CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])).associate(
            LOOPBACK, aborting.port, ae_title="PEER"
        )
        assert assoc.send_c_store(datasets[0]).Status == 0x0000
        assert "Status" not in assoc.send_c_store(datasets[1], msg_id=2)
        assoc.join(5)
        assert assoc.is_aborted and not assoc.is_alive()
        with pytest.raises(RuntimeError):
            assoc.send_c_store(datasets[2], msg_id=3)
    finally:
        aborting.stop()


def test_a_peer_that_does_not_answer_in_time() -> None:
    slow = Peer([ExplicitVRLittleEndian])
    gate = threading.Event()

    def store(event: evt.Event) -> int:
        gate.wait(10)
        return 0x0000

    slow.server.unbind(evt.EVT_C_STORE, slow._store)
    slow.server.bind(evt.EVT_C_STORE, store)
    try:
        ae = _requestor((CT_IMAGE_STORAGE, [ExplicitVRLittleEndian]))
        ae.dimse_timeout = 1
        assoc = ae.associate(LOOPBACK, slow.port, ae_title="PEER")
        status = assoc.send_c_store(_stored(1)[0])
        gate.set()
        assert "Status" not in status
        assoc.join(5)
        assert assoc.is_aborted and not assoc.is_alive()
    finally:
        gate.set()
        slow.stop()


def test_verbose_dicom_logging_takes_pynetdicoms_path(peer: Peer) -> None:
    """With pynetdicom's logger verbose (the "dicom" log category), C-STOREs go through
    pynetdicom's DIMSE layer, which logs them; even when it turns verbose mid-way."""
    pynetdicom_log = logging.getLogger("pynetdicom")
    level = pynetdicom_log.level
    datasets = _stored(3)
    assoc = _requestor((CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])).associate(
        LOOPBACK, peer.port, ae_title="PEER"
    )
    try:
        assert assoc.send_c_store(datasets[0], msg_id=1).Status == 0x0000
        assert assoc.dul.is_direct
        pynetdicom_log.setLevel(logging.INFO)
        assert assoc.send_c_store(datasets[1], msg_id=2).Status == 0x0000
        assert not assoc.dul.is_direct
        assert assoc.send_c_store(datasets[2], msg_id=3).Status == 0x0000
    finally:
        pynetdicom_log.setLevel(level)
        assoc.release()
    assert [r.SOPInstanceUID for r in peer.received] == [d.SOPInstanceUID for d in datasets]
