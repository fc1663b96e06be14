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

The messages a retrieve sends by the hundred (a C-STORE-RQ of stored bytes, a Pending
C-MOVE/C-GET-RSP) skip pynetdicom's DIMSE encoding and the hand-off to the DUL thread:
``dicomhub.net.wire`` writes their bytes and the sending thread writes them to the
socket itself, under the lock that the DUL thread holds while it acts, and only when
the association is established with nothing queued before (otherwise the message
goes pynetdicom's way). On an association we requested, the sending thread also reads
the C-STORE-RSP itself ("direct mode", the DUL thread then leaves the socket alone):
it takes the next PDU only when it is that response, whole; anything else (an abort,
a release, a fragmented or unexpected message) is left in the socket, direct mode
ends, and the DUL reads it as usual.

The DUL thread reads the P-DATA-TF PDUs of an established association itself
(``_read_p_data``): a data set arriving in dozens of PDUs no longer goes through
pynetdicom's PDU objects, event queue and state machine once per PDU, and reaches its
DIMSE layer as one P-DATA. Everything else keeps pynetdicom's reading. On our
listener's associations, a whole command may be taken by ``direct_command`` instead
(``store_scp``: a C-STORE-RQ served by this thread); the reader then keeps it and its
data set back from DIMSE, and hands them over if anything else comes first.
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pynetdicom._config
import pynetdicom.ae
import pynetdicom.association
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_GET, C_MOVE, C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA

from ..dicom.encoded import EncodedDataset
from . import wire

log = logging.getLogger("dicomhub.net")
_PYNETDICOM_LOG = logging.getLogger("pynetdicom")

#: Longest sleep of an idle thread: the resolution of the ARTIM and network timeouts
#: (whole seconds in practice) and of a kill that nobody announced.
IDLE_CHECK_S = 0.05
#: How long ``kill`` looks closely for the DUL to stop before pynetdicom's 10 ms polls.
_KILL_FAST_WAIT_S = 0.02
#: The association state in which DIMSE messages flow (PS3.8 9.2, "Sta6").
_ESTABLISHED = "Sta6"
#: Status of a Pending C-MOVE / C-GET response.
_PENDING = 0xFF00
#: Largest PDU the direct reader takes (a C-STORE-RSP is ~100 bytes).
_PEEK_BYTES = 65536
#: Status, and the status elements a C-STORE-RSP may carry with it (as pynetdicom
#: keeps them): OffendingElement, ErrorComment.
_STATUS_TAGS = (0x00000900, 0x00000901, 0x00000902)
_STATUS = BaseTag(0x00000900)
_PDU_HEADER, _PDV_HEADER = wire.PDU_HEADER, wire.PDV_HEADER
#: Longest P-DATA-TF PDU read directly (our MaximumPduLength is at most 128 kB; a
#: longer one, allowed to a peer that ignores it, goes pynetdicom's way).
_LONGEST_P_DATA = 1 << 20
#: Events whose handlers see every PDU received: bound, pynetdicom reads it.
_PDU_EVENTS = (evt.EVT_DATA_RECV, evt.EVT_PDU_RECV, evt.EVT_FSM_TRANSITION)
#: ``recv`` flags to look at what is already there (combined once: an ``enum.Flag``
#: operation costs about 2 us, once per PDU of a data set).
_PEEK_NOW = int(socket.MSG_PEEK | socket.MSG_DONTWAIT)


def _views_accepted() -> bool:
    """Whether a P-DATA keeps its PDV list in the attribute ``_to_dimse`` sets (its
    setter accepts only bytes, which would copy each fragment once more)."""
    probe = P_DATA()
    pdvs = [[1, memoryview(b"\x02")]]
    try:
        probe._presentation_data_value_list = pdvs
        return probe.presentation_data_value_list is pdvs
    except Exception:  # noqa: BLE001 - another pynetdicom: bytes then
        return False


_PDVS_AS_VIEWS = _views_accepted()


def _recv_chunked() -> bool:
    """pynetdicom writes received data sets to a file as they come: its way then."""
    return bool(pynetdicom._config.STORE_RECV_CHUNKED_DATASET)


def _pdvs(pdu: memoryview) -> list[tuple[int, int, int, int]] | None:
    """(context ID, message control header, start, end of the fragment) of each PDV
    of a P-DATA-TF PDU, None unless they fill it exactly (each at least its context
    ID and control header)."""
    pdvs = []
    end = len(pdu)
    offset = 6
    while offset < end:
        if end - offset < 6:
            return None
        length, context_id, control = _PDV_HEADER.unpack_from(pdu, offset)
        stop = offset + 4 + length
        if length < 2 or stop > end:
            return None
        pdvs.append((context_id, control, offset + 6, stop))
        offset = stop
    return pdvs or None


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
        # Held while the state machine acts (and so sends): direct writes take it too.
        # Re-entrant, so that an event handler an action runs may send without a hang
        self._send_lock = threading.RLock()
        # Direct mode: a user thread reads the socket; the DUL thread does not
        self._direct = False
        self._park_ack: threading.Event | None = None
        # Whether ``take_pdu`` may first wait for the size its caller expects
        self._size_hints = True
        # Data-set PDVs of the message being received, not yet handed to DIMSE
        self._fragments: list[list[Any]] = []
        # Given each whole command PDV read (context ID, command set), the function
        # that serves the message from its data-set PDVs, or None (DIMSE takes it):
        # set by ``store_scp.attach`` on our listener's associations
        self.direct_command: Callable[[int, memoryview], Any] | None = None
        # (context ID, command PDV, server) of the message that function takes
        self._held: tuple[int, memoryview, Callable[[list[list[Any]]], None]] | None = None

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
        ack = self._park_ack
        if self._direct and ack is not None and not ack.is_set():
            return  # a user thread waits for us to leave the socket
        if raw is not None and getattr(wrapper, "_is_connected", False) and not self._direct:
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
                direct = self._direct
                if direct:
                    ack = self._park_ack
                    if ack is not None:
                        ack.set()  # from now on this thread does not read the socket
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    if (
                        not self._process_recv_primitive()
                        and not direct
                        and self._is_transport_event()
                    ):
                        self._idle_timer.restart()
                except Exception:
                    self._abort_after_failure()
                    return
                with self._send_lock:
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

    # ---- P-DATA-TF PDUs read directly ---------------------------------------------
    def _read_pdu_data(self) -> None:
        """Read the next PDU: a plain P-DATA-TF PDU of an established association is
        read here, anything else (and anything unusual) the way pynetdicom reads it."""
        if not self._read_p_data():
            self._flush_fragments()
            super()._read_pdu_data()

    def _read_p_data(self) -> bool:
        """Read P-DATA-TF PDUs when it is safe to bypass pynetdicom's PDU classes.

        pynetdicom reads a PDU 4 kB per ``recv``, copies it four times, builds PDU
        and PDV item objects, runs its state machine through the event queue and
        hands each PDV to DIMSE, which copies it into the message, all once per PDU
        through the DUL loop (two ``select`` calls each): for a CT in 16 kB PDUs
        that was a third of the DUL thread's time. Here a PDU is read in one
        ``recv_into``, its PDVs cut with ``struct``, the data-set fragments of a
        message kept as views and handed to pynetdicom's DIMSE together as one P-DATA
        when the last one came (``_take_p_data``), and the PDUs of a data set already
        in the socket are read one after the other without going round the loop.

        Only in state Sta6 (where the state machine's answer to a P-DATA-TF PDU is to
        pass it to DIMSE and stay there), on a plain TCP socket, with no event queued
        before it and nobody listening to PDUs, data or transitions; nor when
        pynetdicom writes received data sets to files as they come. False, with
        nothing read, otherwise: the caller hands DIMSE the fragments read so far and
        pynetdicom reads the PDU. A PDU whose PDVs do not add up goes to pynetdicom's
        decoder, which judges it (and ends the association).
        """
        raw = self._plain_socket()
        if (
            raw is None
            or self.state_machine.current_state != _ESTABLISHED
            or self.event_queue.qsize()
            or _recv_chunked()
            or any(self.assoc.get_handlers(event) for event in _PDU_EVENTS)
        ):
            return False
        # The rest of a data set is read in one go while its PDUs are already here
        # (not the loop of the DUL thread once per PDU), unless something else is due
        taken = self._take_p_data(raw, socket.MSG_PEEK)
        if taken is None:
            return False
        while (
            taken
            and (self._fragments or self._held)
            and not self._kill_thread
            and not self.event_queue.qsize()
            and not self.to_provider_queue.qsize()
        ):
            taken = self._take_p_data(raw, _PEEK_NOW)
        return True

    def _take_p_data(self, raw: socket.socket, peek: int) -> bool | None:
        """Read and hand on the next PDU if it is a P-DATA-TF PDU whose header ``peek``
        finds: True, or False when the association must then end (the connection
        ended inside it, or its PDVs do not add up). None, with nothing read, for any
        other PDU or no whole header yet."""
        try:
            header = raw.recv(6, peek)
        except OSError:  # nothing there with MSG_DONTWAIT, or the connection failed
            return None
        if len(header) < 6:
            return None
        kind, _, length = _PDU_HEADER.unpack(header)
        if kind != wire.P_DATA_TF or not 6 <= length <= _LONGEST_P_DATA:
            return None
        pdu = bytearray(6 + length)
        view = memoryview(pdu)
        taken = 0
        try:
            while taken < len(pdu):
                count = raw.recv_into(view[taken:])
                if not count:
                    break
                taken += count
        except OSError:
            pass
        if taken < len(pdu):
            # as pynetdicom: the connection ended (or timed out) inside a PDU
            log.error("Connection closed before the entire PDU was received")
            self._flush_fragments()
            self.event_queue.put("Evt17")
            return False
        pdvs = _pdvs(view)
        with self._send_lock:
            if pdvs is None:
                self._flush_fragments()
                self._decode_as_pynetdicom(bytes(pdu))
                return False
            for context_id, control, start, end in pdvs:
                if control & 1:  # a command fragment: after the data before it
                    self._flush_fragments()
                    serve = None
                    if control & 2 and self.direct_command is not None:
                        serve = self.direct_command(context_id, view[start:end])
                    if serve is not None:
                        self._held = (context_id, view[start - 1 : end], serve)
                    else:
                        self._to_dimse([[context_id, view[start - 1 : end]]])
                    continue
                held = self._held
                if held is not None and held[0] != context_id:
                    self._flush_fragments()  # not what the command said: DIMSE judges
                    held = None
                self._fragments.append([context_id, view[start - 1 : end]])
                if control & 2:  # the last fragment of the data set
                    if held is not None:
                        fragments, self._fragments, self._held = self._fragments, [], None
                        held[2](fragments)
                    else:
                        self._flush_fragments()
        return True

    def _to_dimse(self, pdvs: list[list[Any]]) -> None:
        """What pynetdicom's state machine does with a P-DATA-TF PDU in Sta6: the
        P-DATA to DIMSE. Its PDVs are views of the PDUs read (DIMSE only slices them
        and writes them to its message buffers), given as they are when the P-DATA
        takes them (``_PDVS_AS_VIEWS``), as bytes otherwise."""
        primitive = P_DATA()
        if _PDVS_AS_VIEWS:
            primitive._presentation_data_value_list = pdvs
        else:
            primitive.presentation_data_value_list = [[cx, bytes(pdv)] for cx, pdv in pdvs]
        self.assoc.dimse.receive_primitive(primitive)

    def _flush_fragments(self) -> None:
        """Hand the data-set fragments read so far to DIMSE as one P-DATA: at the last
        one, and before anything else reaches DIMSE, so that it sees every PDV in order.
        A command held for ``direct_command`` goes first: DIMSE takes the message over."""
        held = self._held
        if held is not None:
            self._held = None
            pdvs, self._fragments = [[held[0], held[1]], *self._fragments], []
            self._to_dimse(pdvs)
        elif self._fragments:
            pdvs = self._fragments
            self._fragments = []
            self._to_dimse(pdvs)

    def _decode_as_pynetdicom(self, pdu: bytes) -> None:
        """pynetdicom's handling of a PDU it read (the end of ``_read_pdu_data``)."""
        try:
            decoded, event = self._decode_pdu(bytearray(pdu))
            self.event_queue.put(event)
        except Exception:  # noqa: BLE001 - as pynetdicom: an invalid PDU, Evt19
            log.exception("Unable to decode the received PDU data")
            self.event_queue.put("Evt19")
            return
        self._recv_pdu.put(decoded)

    # ---- direct writes and reads ---------------------------------------------------
    def _plain_socket(self) -> socket.socket | None:
        """The connected TCP socket, None when closed or TLS (TLS keeps the usual way:
        its buffered records would escape the ``select`` of the direct reader)."""
        wrapper = self.socket
        raw = getattr(wrapper, "socket", None) if wrapper is not None else None
        if type(raw) is not socket.socket or not getattr(wrapper, "_is_connected", False):
            return None
        return raw

    def send_direct(self, data: bytes) -> bool:
        """Write whole PDUs from the calling thread; False (nothing written) unless the
        association is established and no primitive or event is waiting before them."""
        raw = self._plain_socket()
        if raw is None:
            return False
        with self._send_lock:
            if (
                self.state_machine.current_state != _ESTABLISHED
                or self.to_provider_queue.qsize()
                or self.event_queue.qsize()
            ):
                return False
            try:
                raw.sendall(data)
            except OSError:
                # as pynetdicom's own send: the connection is gone
                self.event_queue.put("Evt17")
        return True

    def begin_direct(self, timeout: float) -> bool:
        """Direct mode: returns True once the DUL thread has stopped reading the socket
        (it still sends what is queued and runs its timers)."""
        if self._plain_socket() is None or self.state_machine.current_state != _ESTABLISHED:
            return False
        ack = threading.Event()
        self._park_ack = ack
        self._direct = True
        self._doorbell.ring()
        if ack.wait(timeout):
            return True
        self.end_direct()
        return False

    def end_direct(self) -> None:
        """Give the socket back to the DUL thread."""
        if self._direct:
            self._direct = False
            self._park_ack = None
            self._doorbell.ring()

    @property
    def is_direct(self) -> bool:
        return self._direct

    def take_pdu(
        self, accept: Callable[[bytes], Any], timeout: float | None, expected: int = 0
    ) -> Any:
        """In direct mode: wait for the next PDU and consume it if ``accept(pdu)`` gives
        something other than None, which is returned. None: the PDU (or the end of the
        connection) was left for the DUL. TimeoutError after ``timeout`` seconds.

        ``expected``: the least the PDU can be. A peer often writes a PDU in two parts
        (its header, then the rest), and waking up for each costs a context switch
        and more system calls: the first wait is for that many bytes. Should less
        come and nothing more (found once the wait times out), this association's
        PDUs are waited for byte by byte from then on."""
        raw = self._plain_socket()
        if raw is None or not self._direct:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        hint = expected if expected > 6 and self._size_hints else 0
        # bytes that must be buffered before the socket reads as ready
        wanted = hint or 1
        while True:
            if self._kill_thread or self.state_machine.current_state != _ESTABLISHED:
                return None
            wait = IDLE_CHECK_S
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no DIMSE answer in time")
                wait = min(wait, left)
            try:
                if wanted > 1:
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, wanted)
                try:
                    ready = select.select([raw], [], [], wait)[0]
                finally:
                    if wanted > 1:
                        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
                if not ready:
                    if hint and wanted == hint and select.select([raw], [], [], 0)[0]:
                        # fewer bytes than expected came, and nothing more: not the
                        # usual answer, nor are this peer's answers what we expect
                        self._size_hints = False
                        wanted = 1
                    continue
                data = raw.recv(_PEEK_BYTES, socket.MSG_PEEK)
            except (OSError, ValueError):
                return None
            if len(data) < wanted or not data:
                # ready with fewer bytes than waited for: the peer closed the connection
                # (in the middle of a PDU); the DUL reports it
                return None
            if len(data) < 6:
                wanted = 6
                continue
            kind, _, length = struct.unpack_from(">BBL", data)
            size = 6 + length
            if kind != wire.P_DATA_TF or size > _PEEK_BYTES:
                return None
            if len(data) >= size:
                break
            wanted = size
        result = accept(bytes(data[:size]))
        if result is None:
            return None
        with contextlib.suppress(OSError):
            taken = 0
            while taken < size:  # already buffered: recv returns at once
                chunk = raw.recv(size - taken)
                if not chunk:
                    break
                taken += len(chunk)
        self._idle_timer.restart()
        return result

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
        self.dimse = DirectDIMSE(self)
        self.dimse.msg_queue = _RingingQueue(bell.set)
        # False once a C-STORE-RSP had to go pynetdicom's way on this association (or,
        # for a C-GET, during this request)
        self._direct_reads = True
        # The reactor thread while it serves a request (a C-GET sends C-STOREs then)
        self._serving_thread: int | None = None

    def kill(self) -> None:
        self._kill = True
        self._end_direct()
        _association_bell(self).set()
        # pynetdicom's kill looks every 10 ms whether the DUL has reached Sta1 (the
        # connection closed); after a release it gets there well within a
        # millisecond, so look more often first. A C-MOVE releases the association
        # with its destination before its final response: 10 ms less for each.
        dul = getattr(self, "dul", None)
        if dul is not None:
            deadline = time.monotonic() + _KILL_FAST_WAIT_S
            while (
                dul.is_alive()
                and dul.state_machine.current_state != "Sta1"
                and time.monotonic() < deadline
            ):
                time.sleep(0.0002)
        super().kill()

    def release(self) -> None:
        self._end_direct()
        super().release()

    def abort(self, block: bool = True) -> None:
        self._end_direct()
        super().abort(block)

    def _end_direct(self) -> None:
        dul = getattr(self, "dul", None)
        if isinstance(dul, EventDrivenDUL):
            dul.end_direct()

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
            context_id = self._context_for(dataset.sop_class_uid, dataset.transfer_syntax)
            if context_id is None:
                dataset = dataset.decode()
            else:
                return self._send_encoded(
                    dataset, context_id, msg_id, priority, originator_aet, originator_id
                )
        return super().send_c_store(dataset, msg_id, priority, originator_aet, originator_id)

    def _context_for(self, sop_class: str, syntax: str) -> int | None:
        """The accepted context to send ``sop_class`` in ``syntax`` (cached: the
        accepted contexts do not change once the association is established)."""
        cache: dict[tuple[str, str], int | None] = self.__dict__.setdefault("_contexts_for", {})
        key = (sop_class, syntax)
        if key not in cache:
            cache[key] = next(
                (
                    context.context_id
                    for context in self.accepted_contexts
                    if context.abstract_syntax == sop_class
                    and context.transfer_syntax
                    and context.transfer_syntax[0] == syntax
                    and context.as_scu
                ),
                None,
            )
        return cache[key]

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
        sop_class = dataset.sop_class_uid
        sop_instance = dataset.sop_instance_uid
        pdus = wire.p_data(
            context_id,
            wire.c_store_rq(
                msg_id, sop_class, sop_instance, priority, originator_aet, originator_id
            ),
            dataset.payload,
            self.dimse.peer_max_pdu,
        )
        if self.send_store_directly(pdus):
            return self.store_status_directly(context_id, msg_id, sop_class, sop_instance)
        dul = self.dul if isinstance(self.dul, EventDrivenDUL) and _quiet() else None

        def request() -> C_STORE:
            primitive = C_STORE()
            primitive.MessageID = msg_id
            primitive.Priority = priority
            primitive.AffectedSOPClassUID = sop_class
            primitive.AffectedSOPInstanceUID = sop_instance
            primitive.MoveOriginatorApplicationEntityTitle = originator_aet
            primitive.MoveOriginatorMessageID = originator_id
            primitive.DataSet = io.BytesIO(dataset.payload)
            return primitive

        def send() -> None:
            if dul is None or not dul.send_direct(pdus):
                self.dimse.send_msg(request(), context_id)

        return self._status_of(self._exchange(None, context_id, send))

    def send_store_directly(self, pdus: bytes) -> bool:
        """Write the PDUs of a C-STORE-RQ (``wire.p_data``) from the calling thread and
        keep the socket to read the answer, which ``store_status_directly`` must take
        next: True when sent so, False (nothing sent) when the request must go
        pynetdicom's way."""
        dul = self.dul if isinstance(self.dul, EventDrivenDUL) else None
        if dul is None:
            return False
        if not _quiet():
            # the "dicom" log category is verbose: pynetdicom's path logs it all
            dul.end_direct()
            return False
        # Our own association carries only what we send; the peer's, only while this
        # thread serves its request (a C-GET): then the answers are read directly too
        own = self.is_requestor or self._serving_thread == threading.get_ident()
        if not (self._direct_reads and own):
            return False
        if (dul.is_direct or dul.begin_direct(IDLE_CHECK_S * 20)) and dul.send_direct(pdus):
            return True
        dul.end_direct()
        self._direct_reads = False
        return False

    def store_status_directly(
        self, context_id: int, msg_id: int, sop_class: str, sop_instance: str
    ) -> Dataset:
        """The status answered to the C-STORE-RQ that ``send_store_directly`` sent:
        read from the socket when it is the plain C-STORE-RSP, else (after which
        this association's answers go pynetdicom's way) decoded by pynetdicom."""
        dul = cast(EventDrivenDUL, self.dul)
        try:
            status = dul.take_pdu(
                lambda pdu: _store_status(pdu, msg_id, sop_class, sop_instance),
                self.dimse_timeout,
                wire.SMALLEST_STORE_RSP,
            )
        except TimeoutError:
            self._direct_reads = False
            dul.end_direct()
            self._handle_no_response()
            return Dataset()
        if status is not None:
            return status
        # not the plain answer: the DUL reads it, pynetdicom decodes it
        self._direct_reads = False
        response = self._exchange(None, context_id, dul.end_direct)
        return self._status_of(response)

    def _status_of(self, response: Any) -> Dataset:
        if response is None:
            self._handle_no_response()
            return Dataset()
        return self._check_received_status(response)

    def _exchange(
        self, request: Any, context_id: int, send: Callable[[], None] | None = None
    ) -> Any:
        """Send one DIMSE request (``request``, or whatever ``send`` does) and take its
        response, with the reactor held at its checkpoint meanwhile so that it cannot
        take the response first."""
        self._reactor_checkpoint.clear()
        while not self._is_paused:
            time.sleep(0.00005)
        try:
            if send is not None:
                send()
            else:
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
                self._serving_thread = threading.get_ident()
                try:
                    self._serve_request(message, context_id)  # type: ignore[arg-type]
                finally:
                    # a C-GET's C-STOREs may have read their answers directly: the DUL
                    # reads the next request
                    self._serving_thread = None
                    self._end_direct()
                    self._direct_reads = True
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


class StoreStatus(Dataset):
    """The status of a C-STORE answered with the Status alone: one read-only data set
    per status code, shared (building a pydicom data set per sub-operation cost a
    sixth of a C-MOVE's time). Changing it raises ``TypeError``."""

    _shared: dict[int, StoreStatus] = {}

    @classmethod
    def of(cls, code: int) -> StoreStatus:
        status = cls._shared.get(code)
        if status is None:
            status = cls({_STATUS: DataElement(_STATUS, "US", code)})
            # also a plain attribute: ``status.Status`` (pynetdicom reads it for each
            # sub-operation) is then found without Dataset.__getattr__'s tag lookups
            object.__setattr__(status, "Status", code)
            object.__setattr__(status, "_frozen", True)
            cls._shared[code] = status
        return status

    def _refuse(self, *args: Any) -> None:
        raise TypeError("a shared C-STORE status is read-only: copy it to change it")

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            self._refuse()
        super().__setattr__(name, value)

    def __setitem__(self, key: Any, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            self._refuse()
        super().__setitem__(key, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_frozen"):
            self._refuse()
        super().__delattr__(name)

    def __delitem__(self, key: Any) -> None:
        if self.__dict__.get("_frozen"):
            self._refuse()
        super().__delitem__(key)


def _quiet() -> bool:
    """pynetdicom logs nothing per message (the "dicom" log category at its default
    level): the direct paths, which skip its logging handlers, lose nothing."""
    return not _PYNETDICOM_LOG.isEnabledFor(logging.INFO)


def _store_status(pdu: bytes, msg_id: int, sop_class: str, sop_instance: str) -> Dataset | None:
    """The status of ``pdu`` when it is the whole C-STORE-RSP to ``msg_id`` (without a
    data set, as the standard has it), else None."""
    found = wire.single_command(pdu)
    if found is None:
        return None
    code = wire.plain_store_status(found[1], msg_id, sop_class, sop_instance)
    if code is not None:  # the usual answer, byte for byte: nothing else to read
        return StoreStatus.of(code)
    try:
        values = wire.command_values(found[1])
        code = wire.us(values.get(0x00000900))
        if (
            code is None
            or wire.us(values.get(0x00000100)) != wire.C_STORE_RSP
            or wire.us(values.get(0x00000120)) != msg_id
            or wire.us(values.get(0x00000800)) != wire.NO_DATASET
        ):
            return None
    except Exception:  # noqa: BLE001 - not the plain answer: pynetdicom judges it
        return None
    # pydicom's own raw elements: converted only if someone reads them
    return Dataset({tag: element for tag, element in values.items() if tag in _STATUS_TAGS})


#: How the current thread answers the retrieve it serves (see ``retrieve_responses``).
_retrieve_responses = threading.local()


def retrieve_responses(rewrite: Callable[[C_MOVE | C_GET], bool] | None) -> None:
    """Pass every C-MOVE / C-GET response this thread sends from now on through
    ``rewrite`` (None: stop), which may change it and returns False to send nothing.
    pynetdicom builds and sends the responses of a retrieve from its own counts on the
    thread that serves the request; this lets the SCP answer as Orthanc does instead."""
    _retrieve_responses.rewrite = rewrite


class DirectDIMSE(DIMSEServiceProvider):
    """pynetdicom's DIMSE provider, with the Pending C-MOVE / C-GET responses written
    directly (one per sub-operation, the bulk of a retrieve's answers)."""

    _peer_max_pdu: int | None = None

    @property
    def peer_max_pdu(self) -> int:
        """The peer's maximum PDU length (0: unlimited), looked up once: it is fixed
        when the association is established."""
        cached = self._peer_max_pdu
        if cached is None:
            cached = int(self.maximum_pdu_size or 0)
            if self.assoc.is_established:
                self._peer_max_pdu = cached
        return cached

    def send_msg(self, primitive: Any, context_id: int) -> None:
        if type(primitive) in (C_MOVE, C_GET):
            rewrite = getattr(_retrieve_responses, "rewrite", None)
            if rewrite is not None and not rewrite(primitive):
                return
        dul = self.dul
        if (
            type(primitive) in (C_MOVE, C_GET)
            and isinstance(dul, EventDrivenDUL)
            and _quiet()
            and primitive.MessageIDBeingRespondedTo is not None
            and primitive.Status == _PENDING
            and primitive.Identifier is None
        ):
            command = wire.retrieve_pending_rsp(
                wire.C_MOVE_RSP if type(primitive) is C_MOVE else wire.C_GET_RSP,
                primitive.MessageIDBeingRespondedTo,
                primitive.AffectedSOPClassUID,
                _PENDING,
                primitive.NumberOfRemainingSuboperations or 0,
                primitive.NumberOfCompletedSuboperations or 0,
                primitive.NumberOfFailedSuboperations or 0,
                primitive.NumberOfWarningSuboperations or 0,
            )
            if dul.send_direct(wire.p_data(context_id, command, None, self.peer_max_pdu)):
                return
        super().send_msg(primitive, context_id)


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
