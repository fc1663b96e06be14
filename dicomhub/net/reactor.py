"""Event-driven reactors for pynetdicom associations.

pynetdicom runs two threads per association, and both poll: the DUL thread (socket and
outgoing queue) sleeps 1 ms whenever it finds nothing to do, and the association's
reactor (incoming DIMSE messages, release, abort) sleeps 1 ms on every loop. Each
C-STORE therefore waits up to three such naps (request in, message handed to the
reactor, response out), which is most of the time of a small instance on loopback, and
an idle association still wakes 2,000 times a second.

Here both threads sleep until something happens instead: the DUL thread waits in
``select`` on its socket and on a wake-up socket pair that every put on its queues
rings, and the association reactor waits on an event that the DIMSE message queue and
the DUL's to-user queue set. A slow timeout keeps the time-based checks (ARTIM and
network timeouts) working. ``install()`` makes pynetdicom build its associations with
these classes; pynetdicom's own logic (state machine, DIMSE, ACSE) is unchanged.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import pynetdicom.ae
import pynetdicom.association
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ

from ..dicom.encoded import EncodedDataset

log = logging.getLogger("dicomhub.net")

#: Longest sleep of an idle thread: the resolution of the ARTIM and network timeouts
#: (whole seconds in practice) and of a kill that nobody announced.
IDLE_CHECK_S = 0.05


class _RingingQueue(queue.Queue):  # type: ignore[type-arg]
    """A queue that wakes its consumer's thread on every put."""

    def __init__(self, ring: Callable[[], None]) -> None:
        super().__init__()
        self._ring = ring

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._ring()


class _Doorbell:
    """A socket pair the DUL thread can ``select`` on together with its connection.

    Only a thread that finds the DUL asleep rings (a syscall); the DUL looks at its
    queues once more after saying it sleeps, so a put just before is not missed. A
    closed socket object refuses to send (its descriptor becomes -1), so a late ring
    after the association ended can never write into a reused descriptor.
    """

    def __init__(self) -> None:
        self._inside, self._outside = socket.socketpair()
        self._inside.setblocking(False)
        self._outside.setblocking(False)
        self.asleep = False

    def ring(self) -> None:
        if self.asleep:
            with contextlib.suppress(OSError):  # full (already rung) or closed
                self._outside.send(b"\0")

    def fileno(self) -> int:
        return self._inside.fileno()

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while self._inside.recv(4096):
                pass

    def close(self) -> None:
        self._inside.close()
        self._outside.close()


def _association_bell(assoc: Any) -> threading.Event:
    bell = getattr(assoc, "_wake_reactor", None)
    if bell is None:
        bell = threading.Event()
        assoc._wake_reactor = bell
    return bell


class EventDrivenDUL(DULServiceProvider):
    """The DUL thread, sleeping in ``select`` until data, a primitive or an event comes."""

    def __init__(self, assoc: Any) -> None:
        super().__init__(assoc)
        self._doorbell = _Doorbell()
        self.event_queue = _RingingQueue(self._doorbell.ring)
        self.to_provider_queue = _RingingQueue(self._doorbell.ring)
        self.to_user_queue = _RingingQueue(_association_bell(assoc).set)

    def kill_dul(self) -> None:
        super().kill_dul()
        self._doorbell.ring()

    def stop_dul(self) -> bool:
        self._doorbell.ring()
        return super().stop_dul()

    def _wait(self) -> None:
        """Sleep until the connection has data, a queue was put to, or the idle check."""
        waits: list[Any] = [self._doorbell]
        wrapper = self.socket
        raw = getattr(wrapper, "socket", None) if wrapper is not None else None
        if raw is not None and getattr(wrapper, "_is_connected", False):
            if isinstance(raw, ssl.SSLSocket) and raw.pending():
                return  # decrypted bytes already buffered: select would not see them
            waits.append(raw)
        ready: list[Any] = []
        self._doorbell.asleep = True
        try:
            idle = self.to_provider_queue.empty() and self.event_queue.empty()
            if idle and not self._kill_thread:
                # A connection that went away fails the select: the transport check
                # reports it
                with contextlib.suppress(OSError, ValueError):
                    ready = select.select(waits, [], [], IDLE_CHECK_S)[0]
        finally:
            self._doorbell.asleep = False
        if self._doorbell in ready:
            self._doorbell.drain()

    def run_reactor(self) -> None:
        self._idle_timer.start()
        idle = False
        try:
            while True:
                if not self.assoc._dul_ready.is_set():
                    self.assoc._dul_ready.set()
                    idle = True
                if idle:
                    self._wait()
                if self._kill_thread:
                    break
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    if not self._process_recv_primitive() and self._is_transport_event():
                        self._idle_timer.restart()
                except Exception:
                    self._abort_after_failure()
                    return
                try:
                    event = self.event_queue.get(block=False)
                except queue.Empty:
                    idle = True
                    continue
                self.state_machine.do_action(event)
                idle = False
        finally:
            _association_bell(self.assoc).set()
            self._doorbell.close()

    def _abort_after_failure(self) -> None:
        """An error inside the DUL leaves its state machine unusable: tell the peer
        with an A-ABORT sent directly and stop both threads."""
        log.exception("DICOM upper layer failure, aborting the association")
        abort = A_ABORT_RQ()
        abort.source = 0x02
        abort.reason_diagnostic = 0x00
        with contextlib.suppress(Exception):
            self.socket.send(abort.encode())  # type: ignore[union-attr]
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc._kill = True
        self._kill_thread = True


class EventDrivenAssociation(Association):
    """An association whose reactor sleeps until a DIMSE message or an A-RELEASE /
    A-ABORT arrives instead of polling every millisecond."""

    def __init__(self, ae: Any, mode: str) -> None:
        bell = _association_bell(self)
        super().__init__(ae, mode)
        self.dimse.msg_queue = _RingingQueue(bell.set)

    def kill(self) -> None:
        self._kill = True
        _association_bell(self).set()
        super().kill()

    def send_c_store(  # type: ignore[override]
        self,
        dataset: Any,
        msg_id: int = 1,
        priority: int = 2,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> Dataset:
        """pynetdicom's C-STORE, plus ``EncodedDataset``: sent as its stored bytes when
        the peer accepted its transfer syntax, decoded (and converted by pynetdicom
        between the uncompressed syntaxes) otherwise."""
        if isinstance(dataset, EncodedDataset):
            context_id = self._context_for(
                str(dataset.SOPClassUID), str(dataset.file_meta.TransferSyntaxUID)
            )
            if context_id is None:
                dataset = dataset.decode()
            else:
                return self._send_encoded(
                    dataset, context_id, msg_id, priority, originator_aet, originator_id
                )
        return super().send_c_store(dataset, msg_id, priority, originator_aet, originator_id)

    def _context_for(self, sop_class: str, syntax: str) -> int | None:
        for context in self.accepted_contexts:
            if (
                context.abstract_syntax == sop_class
                and context.transfer_syntax
                and context.transfer_syntax[0] == syntax
                and context.as_scu
            ):
                return context.context_id
        return None

    def _send_encoded(
        self,
        dataset: EncodedDataset,
        context_id: int,
        msg_id: int,
        priority: int,
        originator_aet: str | None,
        originator_id: int | None,
    ) -> Dataset:
        if not self.is_established:
            raise RuntimeError("The association is not established")
        request = C_STORE()
        request.MessageID = msg_id
        request.Priority = priority
        request.AffectedSOPClassUID = dataset.SOPClassUID
        request.AffectedSOPInstanceUID = dataset.SOPInstanceUID
        request.MoveOriginatorApplicationEntityTitle = originator_aet
        request.MoveOriginatorMessageID = originator_id
        request.DataSet = io.BytesIO(dataset.payload)
        response = self._exchange(request, context_id)
        if response is None:
            self._handle_no_response()
            return Dataset()
        return self._check_received_status(response)

    def _exchange(self, request: Any, context_id: int) -> Any:
        """Send one DIMSE request and take its response, with the reactor held at its
        checkpoint meanwhile so that it cannot take the response first."""
        self._reactor_checkpoint.clear()
        while not self._is_paused:
            time.sleep(0.00005)
        try:
            self.dimse.send_msg(request, context_id)
            return self.dimse.get_msg(block=True)[1]
        finally:
            self._reactor_checkpoint.set()

    def _run_reactor(self) -> None:
        bell = _association_bell(self)
        self._is_paused = False
        while not self._kill:
            # Paused while asleep: a send_*() call on another thread may take over the
            # DIMSE queue as soon as it sees the reactor paused at the checkpoint.
            self._is_paused = True
            bell.wait(IDLE_CHECK_S)
            self._reactor_checkpoint.wait()
            self._is_paused = False
            if not self._reactor_checkpoint.is_set():
                continue  # a sender asked for the pause after we passed the checkpoint
            bell.clear()
            if self._kill:
                return
            context_id, message = self.dimse.get_msg(block=False)
            if message:
                self._serve_request(message, context_id)  # type: ignore[arg-type]
                bell.set()  # another message may already be waiting
            if self._ended_by_peer_or_timeout():
                return

    def _ended_by_peer_or_timeout(self) -> bool:
        """pynetdicom's end-of-association checks: release or abort from the peer, the
        DUL thread gone, the network timeout."""
        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            log.debug("association released by the peer")
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return True
        if self.acse.is_aborted():
            self.dul.receive_pdu(wait=False)  # so that EVT_ACSE_RECV handlers see it
            self.is_aborted = True
            self.is_established = False
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return True
        if not self.dul.is_alive():
            self.kill()
            return True
        if self.dul.idle_timer_expired():
            log.warning("DICOM network timeout reached, ending the association")
            if self.network_timeout_response == "A-RELEASE":
                self._is_paused = True
                self._reactor_checkpoint.wait()
                self.release()
                self._is_paused = False
            else:
                self.abort()
            self.kill()
            return True
        return False


_installed = False
#: What the reactors rely on inside pynetdicom (checked at install, so that a pynetdicom
#: release that changes them fails loudly at start-up rather than mid-association).
_REQUIRED = (
    (
        DULServiceProvider,
        ("_process_recv_primitive", "_is_transport_event", "kill_dul", "stop_dul"),
    ),
    (Association, ("_serve_request", "_check_received_status", "_handle_no_response")),
    (pynetdicom.association, ("DULServiceProvider", "Association", "evt")),
    (pynetdicom.ae, ("Association",)),
)


def install() -> None:
    """Make pynetdicom build every association (ours as requestor and the listener's)
    with the event-driven reactors. Idempotent."""
    global _installed
    if _installed:
        return
    for owner, names in _REQUIRED:
        missing = [name for name in names if not hasattr(owner, name)]
        if missing:
            raise RuntimeError(f"unsupported pynetdicom version: {owner} lacks {missing}")
    pynetdicom.association.DULServiceProvider = EventDrivenDUL  # type: ignore[misc]
    pynetdicom.association.Association = EventDrivenAssociation  # type: ignore[misc]
    pynetdicom.ae.Association = EventDrivenAssociation  # type: ignore[misc]
    _installed = True
