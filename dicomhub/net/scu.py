"""Outgoing DICOM requests (SCU): C-ECHO and C-STORE to a remote modality.

A fresh pynetdicom ``ApplicationEntity`` per request keeps requests independent
(each has its own calling AET and timeouts) and is cheap next to a TCP handshake.
Every failure is raised as ``NetworkProtocol`` with the reason in its details, which
the REST face answers as Orthanc does (HTTP 500, "Error in the network protocol").
Every outgoing association (here, ``query_scu`` and ``storage_commitment``) is opened
by ``open_association``, so that a peer that cannot be reached is reported in
Orthanc's words whatever the request: ``DicomAssociation - connecting to AET "X":
TCP Initialization Error: Connection refused`` (the system's words for the failed
TCP connection), ``...: Attempt to connect to unknown host: <host>``, ``...: DUL
Association Rejected`` or ``...: Peer aborted Association (or never connected)``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AddressInformation, AssociationSocket

from ..core.errors import DicomhubError, NetworkProtocol, NoPresentationContext
from ..core.modalities import RemoteModality
from ..dicom import encoded, transcoding

log = logging.getLogger("dicomhub.scu")

#: The most presentation contexts one association may propose (DICOM PS3.8).
MAX_CONTEXTS = 128
#: C-STORE statuses that mean the instance was kept (success and warnings).
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}


@dataclass(frozen=True)
class Outgoing:
    """One instance to send: what to negotiate before reading it, and how to read it."""

    sop_class_uid: str
    transfer_syntax: str
    load: Callable[[], bytes]
    label: str = ""


class _RecordingSocket(socket.socket):
    """A TCP socket that keeps why its connect failed (pynetdicom only logs it)."""

    connect_error: OSError | None = None

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except OSError as exc:
            self.connect_error = exc
            raise


class _AssociationSocket(AssociationSocket):
    """pynetdicom's association socket over a ``_RecordingSocket``."""

    tcp: _RecordingSocket | None = None

    def _create_socket(self, address: AddressInformation) -> socket.socket:
        plain = super()._create_socket(address)  # bound, options set, not connected
        timeout = plain.gettimeout()
        self.tcp = _RecordingSocket(plain.family, plain.type, plain.proto, plain.detach())
        self.tcp.settimeout(timeout)
        return self.tcp


class _AE(AE):
    """An AE whose outgoing associations tell why the TCP connection failed."""

    def _create_socket(
        self, assoc: Association, address: AddressInformation, tls_args: Any
    ) -> AssociationSocket:
        sock = _AssociationSocket(assoc, address=address)
        sock.tls_args = tls_args
        return sock


def _ae(local_aet: str, timeout: float | None) -> AE:
    ae = _AE(ae_title=local_aet)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    return ae


def _connect_error(assoc: Association) -> str:
    """The system's words for a failed TCP connection ("Connection refused"), as
    Orthanc reports them after "TCP Initialization Error: "."""
    tcp = getattr(getattr(assoc.dul, "socket", None), "tcp", None)
    error = getattr(tcp, "connect_error", None)
    if error is None:
        return "cannot connect"
    return error.strerror or str(error) or type(error).__name__


def _no_context(modality: RemoteModality) -> DicomhubError:
    return NoPresentationContext(
        f'Unable to negotiate a presentation context with AET "{modality.aet}"'
    )


def _failure(modality: RemoteModality, assoc: Association, connected: bool) -> NetworkProtocol:
    if not connected:
        reason = f"TCP Initialization Error: {_connect_error(assoc)}"
    elif assoc.is_rejected:
        reason = "DUL Association Rejected"
    else:  # the peer closed or aborted the connection before accepting
        reason = "Peer aborted Association (or never connected)"
    return _association_error(modality, reason)


def _association_error(modality: RemoteModality, reason: str) -> NetworkProtocol:
    return NetworkProtocol(f'DicomAssociation - connecting to AET "{modality.aet}": {reason}')


#: The words Orthanc reports (DCMTK's) for an operation left without an answer: the
#: peer dropped the association, or the DIMSE timeout ran out.
PEER_ABORTED = "Peer aborted Association (or never connected)"
NO_ANSWER_IN_TIME = "DIMSE No data available (timeout in non-blocking mode)"


class AnswerWatch:
    """When the peer last answered in an association, so that an operation left
    without an answer is reported as Orthanc reports it, ``DicomAssociation - C-FIND
    to AET "X": <why>``: pynetdicom aborts the association itself when the DIMSE
    timeout runs out, and hands back the same empty status as for a peer's abort; the
    time waited since the last answer tells the two apart."""

    def __init__(self, assoc: Association) -> None:
        self.timeout: float | None = assoc.dimse_timeout
        self.last = time.monotonic()

    def answered(self) -> None:
        self.last = time.monotonic()

    def lost(self, operation: str, modality: RemoteModality) -> NetworkProtocol:
        waited = time.monotonic() - self.last
        timed_out = self.timeout is not None and waited >= self.timeout
        reason = NO_ANSWER_IN_TIME if timed_out else PEER_ABORTED
        return NetworkProtocol(f'DicomAssociation - {operation} to AET "{modality.aet}": {reason}')


def no_delay(event: evt.Event) -> None:
    """Nagle's algorithm holds back the second of two small writes (a C-STORE's command
    and its dataset) until the peer's delayed ACK, ~40 ms per instance sent, so it is
    off on outgoing DICOM sockets too, as on the listener's."""
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def open_association(
    ae: AE,
    modality: RemoteModality,
    contexts: list | None = None,
    ext_neg: list | None = None,
    handlers: Iterable[tuple[Any, Callable[..., Any]]] = (),
    unsupported: Callable[[RemoteModality], DicomhubError] = _no_context,
) -> Association:
    """An established association with ``modality``, or ``NetworkProtocol`` worded
    as Orthanc's (an unknown host, a refused connection, a rejected association),
    for every outgoing request (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, N-ACTION,
    N-EVENT-REPORT). A peer that accepts the association but none of its contexts
    (pynetdicom then aborts it) gets ``unsupported(modality)``: Orthanc's "No acceptable
    presentation context" by default, its "command is not supported" for C-FIND and
    C-MOVE."""
    connected: list[bool] = []

    def opened(event: evt.Event) -> None:
        connected.append(True)
        no_delay(event)

    try:
        assoc = ae.associate(
            modality.host,
            modality.port,
            contexts,
            ae_title=modality.aet,
            ext_neg=ext_neg,
            evt_handlers=[(evt.EVT_CONN_OPEN, opened), *handlers],
        )
    except socket.gaierror as exc:  # the host name does not resolve
        raise _association_error(
            modality, f"Attempt to connect to unknown host: {modality.host}"
        ) from exc
    if not assoc.is_established:
        if connected and assoc.rejected_contexts and not assoc.accepted_contexts:
            raise unsupported(modality)
        raise _failure(modality, assoc, bool(connected))
    return assoc


@contextmanager
def _associate(
    ae: AE,
    modality: RemoteModality,
    contexts: list | None = None,
    unsupported: Callable[[RemoteModality], DicomhubError] = _no_context,
) -> Iterator[Association]:
    assoc = open_association(ae, modality, contexts, unsupported=unsupported)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def echo(modality: RemoteModality, local_aet: str, timeout: float | None) -> None:
    """C-ECHO the modality; raises ``NetworkProtocol`` unless it answers Success."""
    ae = _ae(local_aet, timeout)
    ae.add_requested_context(Verification)
    with _associate(ae, modality) as assoc:
        status = assoc.send_c_echo()
    if not status or status.get("Status") != 0x0000:
        raise NetworkProtocol(f'C-ECHO to AET "{modality.aet}" failed')


def _contexts(items: list[Outgoing]) -> list:
    """For each SOP class: its files' own transfer syntaxes, then the uncompressed pair,
    each in its own context so that the peer's choice does not hide another."""
    contexts: list = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for item in items:
        for syntaxes in ([item.transfer_syntax], [ExplicitVRLittleEndian, ImplicitVRLittleEndian]):
            # keyed on the whole list: Explicit VR files still offer Implicit VR
            key = (item.sop_class_uid, tuple(syntaxes))
            if key not in seen:
                seen.add(key)
                contexts.append(build_context(item.sop_class_uid, syntaxes))
    if len(contexts) > MAX_CONTEXTS:
        raise NetworkProtocol(
            f"Too many SOP classes and transfer syntaxes to send in one association "
            f"({len(contexts)} presentation contexts, at most {MAX_CONTEXTS})"
        )
    return contexts


def store(
    modality: RemoteModality,
    items: Iterable[Outgoing],
    local_aet: str,
    timeout: float | None,
    move_originator_aet: str | None = None,
    move_originator_id: int | None = None,
    permissive: bool = False,
    transcode: bool = True,
) -> tuple[list[str], int]:
    """C-STORE every item in one association; returns the labels of the items sent
    and how many failed. ``transcode``: ``TranscodeDicomProtocol``.

    Unless ``permissive``, the first instance the peer does not keep raises
    ``NetworkProtocol``, as an Orthanc store job fails unless it is permissive.
    """
    items = list(items)
    if not items:
        return [], 0
    ae = _ae(local_aet, timeout)
    sent: list[str] = []
    failed = 0
    with _associate(ae, modality, _contexts(items)) as assoc:
        for item in items:
            try:
                _store_one(
                    assoc, modality, item, move_originator_aet, move_originator_id, transcode
                )
                sent.append(item.label)
            except NetworkProtocol as exc:
                if not permissive or not assoc.is_established:
                    raise
                log.warning("%s", exc.details)
                failed += 1
    log.info("sent %d instance(s) to %s, %d failed", len(sent), modality.aet, failed)
    return sent, failed


def _negotiated(assoc: Association, dataset: encoded.EncodedDataset, transcode: bool) -> Dataset:
    """``dataset`` in a transfer syntax the peer accepted for its SOP class.

    The stored syntax and the uncompressed pair were proposed; a peer that took only
    the uncompressed ones gets the pixels decompressed first, as Orthanc does with
    ``TranscodeDicomProtocol`` (and the modality's ``AllowTranscoding``). A peer that
    took the stored syntax gets the stored bytes as they are.
    """
    syntax = dataset.transfer_syntax
    sop_class = dataset.sop_class_uid
    accepted = [
        str(context.transfer_syntax[0])
        for context in assoc.accepted_contexts
        if context.abstract_syntax == sop_class and context.transfer_syntax
    ]
    if not transcode or not accepted or not syntax or syntax in accepted:
        return dataset
    target = ExplicitVRLittleEndian if ExplicitVRLittleEndian in accepted else accepted[0]
    try:
        data = transcoding.transcode(dataset.decode(), target, allow_new_sop_instance_uid=False)
    except transcoding.TranscodingError as exc:
        raise NetworkProtocol(f"Cannot transcode to {target} for the peer: {exc}") from exc
    return dcmread(io.BytesIO(data))


def _store_one(
    assoc: Association,
    modality: RemoteModality,
    item: Outgoing,
    move_originator_aet: str | None,
    move_originator_id: int | None,
    transcode: bool = True,
) -> None:
    try:
        stored = encoded.split(item.load())
    except (ValueError, InvalidDicomError) as exc:
        raise NetworkProtocol(f"C-STORE of {item.label}: {exc}") from exc
    label = item.label or str(stored.SOPInstanceUID)
    dataset = _negotiated(assoc, stored, transcode and modality.allow_transcoding)
    watch = AnswerWatch(assoc)
    try:
        status = assoc.send_c_store(
            dataset,
            originator_aet=move_originator_aet or None,
            originator_id=move_originator_id,
        )
    except (ValueError, RuntimeError) as exc:  # e.g. no accepted presentation context
        raise NetworkProtocol(f'C-STORE of {label} to AET "{modality.aet}": {exc}') from exc
    code = status.get("Status") if status else None
    if code is None:
        raise watch.lost("C-STORE", modality)
    if code not in _STORED:
        raise NetworkProtocol(
            f'C-STORE of {label} to AET "{modality.aet}" failed: status 0x{code:04X}'
        )
