"""Pending C-FIND responses written straight to the association, as bytes.

pynetdicom sends every pending answer of a C-FIND the general way: the identifier
is encoded by pydicom, a response primitive becomes a DIMSE message whose command
set is built and encoded (twice) through a pydicom ``Dataset``, and its P-DATA
primitives go to the DUL thread, which encodes and sends them. For a C-FIND with a
hundred matches that was most of the server's time. The response of a pending
answer is always the same command set (PS3.7 9.1.2.1.6, C-FIND-RSP: Affected SOP
Class, Command Field, Message ID Being Responded To, a data set follows, Status
0xFF00) followed by the identifier, so it is packed once per request here and each
answer is written with the identifier bytes that ``encoded_elements.IdentifierWriter``
made, by the reactor's ``send_direct`` (``net.reactor``: from the calling thread,
under the DUL's lock, only while the association is established and nothing waits
in the DUL's queues). When that is not possible (TLS, a message queued before) the
caller sends the answer pynetdicom's way, which keeps the order of the messages.

A response that fits the peer's maximum PDU length goes as one P-DATA-TF PDU with
two PDVs, the command set then the identifier (PS3.8 9.3.5 allows several PDVs per
PDU; a message only must not interleave with another): the peer's upper layer then
handles one PDU per answer instead of two, which a pynetdicom peer feels.

The final response (success, cancel, failure) is left to pynetdicom, as are
deflated transfer syntaxes.
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom.uid import UID

from . import wire

log = logging.getLogger("dicomhub.find")

#: Command Field of a C-FIND-RSP (PS3.7 E.1) and the Pending status.
C_FIND_RSP = 0x8020
STATUS_PENDING = 0xFF00
_DATASET_PRESENT = 0x0001
_US, _UL, _PDU_HEADER, _PDV_HEADER = wire.US, wire.UL, wire.PDU_HEADER, wire.PDV_HEADER
#: Message Control Headers (PS3.8 E.2): last fragment of a command / of a data set.
_LAST_COMMAND = 0x03
_LAST_DATASET = 0x02
#: Bytes a PDV item adds to its fragment (item length, context ID, control header).
_PDV_OVERHEAD = 6


_element = wire.command_element


def pending_command(message_id: int, sop_class_uid: str) -> bytes:
    """The command set of a Pending C-FIND-RSP carrying an identifier."""
    uid = sop_class_uid.encode("ascii")
    body = b"".join(
        (
            _element(0x0002, uid + b"\0" if len(uid) % 2 else uid),
            _element(0x0100, _US.pack(C_FIND_RSP)),
            _element(0x0120, _US.pack(message_id)),
            _element(0x0800, _US.pack(_DATASET_PRESENT)),
            _element(0x0900, _US.pack(STATUS_PENDING)),
        )
    )
    return _element(0x0000, _UL.pack(len(body))) + body


class PendingWriter:
    """Writes the pending responses of one C-FIND request (``for_event``)."""

    def __init__(self, assoc: Any, send: Any, context_id: int, command: bytes) -> None:
        self.assoc = assoc
        self._send = send
        self.context_id = context_id
        self.command = command
        self.max_pdu = int(assoc.dimse.maximum_pdu_size or 0)

    @classmethod
    def for_event(cls, event: Any) -> PendingWriter | None:
        """A writer for the C-FIND of ``event`` (pynetdicom's ``EVT_C_FIND``), or None
        when its answers must go pynetdicom's way: no direct sending on this
        association, or a deflated syntax (whose data sets pynetdicom compresses)."""
        assoc = getattr(event, "assoc", None)
        send = getattr(getattr(assoc, "dul", None), "send_direct", None)
        if send is None:
            return None
        context = event.context
        if UID(context.transfer_syntax).is_deflated:
            return None
        request = event.request
        command = pending_command(int(request.MessageID), str(request.AffectedSOPClassUID))
        return cls(assoc, send, int(context.context_id), command)

    def ended(self) -> bool:
        """Whether the association is over (aborted, released or being released):
        pynetdicom's own loop stops sending answers then."""
        acse = self.assoc.acse
        return not self.assoc.is_established or acse.is_aborted() or acse.is_release_requested()

    def pdus(self, identifier: bytes) -> bytes:
        """The PDUs of one pending response: one holding both PDVs when it fits the
        peer's maximum (the PDVs' length, as the Maximum Length Sub-Item counts it),
        else fragmented as pynetdicom does."""
        size = 2 * _PDV_OVERHEAD + len(self.command) + len(identifier)
        if self.max_pdu and size > self.max_pdu:
            return wire.p_data(self.context_id, self.command, identifier, self.max_pdu)
        context = self.context_id
        return b"".join(
            (
                _PDU_HEADER.pack(wire.P_DATA_TF, 0, size),
                _PDV_HEADER.pack(len(self.command) + 2, context, _LAST_COMMAND),
                self.command,
                _PDV_HEADER.pack(len(identifier) + 2, context, _LAST_DATASET),
                identifier,
            )
        )

    def send(self, identifier: bytes) -> bool:
        """Write one pending response; False when it was not written (send it the
        usual way: the DUL has something queued, or the connection is not plain)."""
        return bool(self._send(self.pdus(identifier)))


__all__ = ["PendingWriter", "pending_command"]
