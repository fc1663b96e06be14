"""A C-MOVE's C-STORE sub-operations, driven here on the destination's association.

pynetdicom's C-MOVE service negotiates the association with the destination and
sends the final response; in between it would, for each instance, take a data set
from the handler's generator, send it with ``send_c_store``, classify the answer
and build a Pending C-MOVE-RSP primitive through its validating setters: most of a
sub-operation's cost on the server, more than reading the file and writing its
bytes. Here the handler runs the whole series itself when pynetdicom asks it for
the first sub-operation, then yields only the final status: pynetdicom still builds
and sends the final response, whose counts ``OrthancMoveAnswers`` takes from
``SubOperationCounts``. Each file is read, its meta located with ``encoded.layout``
and its C-STORE-RQ written with ``wire``; the Pending responses go to the requester
as bytes too. Whatever the short path cannot take (a transfer syntax the
destination did not accept, TLS, pynetdicom's verbose logging, an unusual answer)
goes through ``send_c_store`` and pynetdicom's DIMSE, one sub-operation at a time.

The series is pipelined as far as the protocol lets one C-STORE be outstanding at a
time: the next request leaves as soon as the answer to the previous one is in, ahead
of the Pending response that reports it, and the file after it is read and framed
while the destination stores it. The destination and the requester see the same
messages in the same order as before; only the wait between them is shorter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom.dimse_primitives import C_MOVE
from pynetdicom.status import STORAGE_SERVICE_CLASS_STATUS

from ..core import attachments_io
from ..core.archive import Archive
from ..core.errors import DicomhubError, InexistentFile
from ..core.modalities import InstanceToSend
from ..dicom import encoded
from ..store.index.records import AttachmentRow
from . import reactor, wire

log = logging.getLogger("dicomhub.move")

STATUS_SUCCESS = 0x0000
STATUS_PENDING = 0xFF00
STATUS_CANCEL = 0xFE00
STATUS_UNABLE_TO_PROCESS = 0xC000


@dataclass
class SubOperationCounts:
    """The sub-operation counts as the standard keeps them (PS3.4 C.4.2.1.5): a
    warning is not a completed sub-operation here; Orthanc's answers merge them."""

    remaining: int
    completed: int = 0
    failed: int = 0
    warning: int = 0


@dataclass
class _Item:
    """One sub-operation, read and framed ahead of its turn."""

    public_id: str
    msg_id: int
    data: bytes
    sop_class: str
    sop_instance: str
    context_id: int | None  # None: the destination wants another transfer syntax
    pdus: bytes | None
    sent_directly: bool = False


class _Unreadable(Exception):
    """A sub-operation whose instance cannot be read (deleted meanwhile, a bad file)."""


def _message_id(request_id: int, index: int) -> int:
    """The Message ID of the ``index``-th sub-operation: pynetdicom's numbering
    (the request's ID plus one per sub-operation, within US range)."""
    msg_id = request_id + index + 1
    return msg_id - 65535 if msg_id > 65535 else msg_id


def _category(status: Dataset) -> str:
    """pynetdicom's category of a C-STORE status ("Failure" when unknown or absent)."""
    try:
        return STORAGE_SERVICE_CLASS_STATUS[int(status.Status)][0]
    except (AttributeError, KeyError, TypeError, ValueError):
        return "Failure"


class MoveSubOperations:
    """The C-STOREs of one C-MOVE on ``store_assoc`` (established by pynetdicom), with
    the Pending C-MOVE-RSPs sent on ``requester`` (the C-MOVE's association) the way
    Orthanc 1.10.1 sends them: warnings counted as completed, none after the last
    sub-operation, and the first failed sub-operation ends the move."""

    def __init__(
        self,
        archive: Archive,
        files: Mapping[str, AttachmentRow | None],
        store_assoc: Any,
        requester: Any,
        context_id: int,
        request: C_MOVE,
        is_cancelled: Callable[[], bool] | None,
    ) -> None:
        self.archive = archive
        self.files = files
        self.store_assoc = store_assoc
        self.requester = requester
        self.context_id = context_id
        self.message_id = int(request.MessageID or 0)
        self.sop_class = str(request.AffectedSOPClassUID or "") or None
        self.is_cancelled = is_cancelled
        self.originator = str(getattr(requester.ae, "ae_title", "") or "") or None
        self._max_pdu = int(getattr(store_assoc.dimse, "peer_max_pdu", 0) or 0)
        self._pending_pdus = wire.PendingResponses(
            wire.C_MOVE_RSP,
            self.message_id,
            self.sop_class,
            context_id,
            int(getattr(requester.dimse, "peer_max_pdu", 0) or 0),
        )

    # ---- one sub-operation ------------------------------------------------------
    def _prepare(self, instance: InstanceToSend, index: int) -> _Item | _Unreadable:
        """Read and frame the ``index``-th instance (a failure is kept for its turn)."""
        try:
            file = self.files.get(instance.public_id)
            if file is None:
                raise InexistentFile(instance.public_id)
            data = attachments_io.read(self.archive.storage, file)
            found = encoded.layout(data)
            if found is None:  # pydicom then says what is wrong, or reads it
                split = encoded.split(data)
                sop_class, sop_instance = split.sop_class_uid, split.sop_instance_uid
                syntax, start = split.transfer_syntax, len(data) - len(split.payload)
            else:
                sop_class, sop_instance = found.sop_class_uid, found.sop_instance_uid
                syntax, start = found.transfer_syntax_uid, found.payload_start
        except (DicomhubError, OSError, ValueError, InvalidDicomError) as exc:
            log.warning("C-MOVE/C-GET cannot read %s: %s", instance.public_id, exc)
            return _Unreadable(str(exc))
        msg_id = _message_id(self.message_id, index)
        context_id = self.store_assoc._context_for(sop_class, syntax)
        pdus = None
        if context_id is not None:
            command = wire.c_store_rq(
                msg_id, sop_class, sop_instance, 2, self.originator, self.message_id
            )
            pdus = wire.p_data(context_id, command, memoryview(data)[start:], self._max_pdu)
        return _Item(instance.public_id, msg_id, data, sop_class, sop_instance, context_id, pdus)

    def _send(self, item: _Item) -> None:
        """Send the request now when the short path takes it (else at ``_status``)."""
        assoc = self.store_assoc
        if item.pdus is not None and assoc.is_established:
            item.sent_directly = assoc.send_store_directly(item.pdus)

    def _status(self, item: _Item) -> Dataset:
        """The destination's answer to ``item`` (sent now if ``_send`` could not)."""
        assoc = self.store_assoc
        try:
            if item.sent_directly:
                assert item.context_id is not None
                return assoc.store_status_directly(
                    item.context_id, item.msg_id, item.sop_class, item.sop_instance
                )
            # pynetdicom's way: decoded and converted if the syntax was not accepted
            return assoc.send_c_store(
                encoded.split(item.data),
                msg_id=item.msg_id,
                originator_aet=self.originator,
                originator_id=self.message_id,
            )
        except Exception as exc:  # noqa: BLE001 - as pynetdicom: a failed sub-operation
            log.warning("C-STORE sub-operation of %s failed: %s", item.public_id, exc)
            return Dataset()

    def _pending(self, counts: SubOperationCounts) -> None:
        """Orthanc's Pending C-MOVE-RSP: warnings counted as completed."""
        completed = counts.completed + counts.warning
        dul = self.requester.dul
        if isinstance(dul, reactor.EventDrivenDUL) and reactor._quiet():
            pdus = self._pending_pdus.encode(counts.remaining, completed, counts.failed, 0)
            if dul.send_direct(pdus):
                return
        response = C_MOVE()
        response.MessageIDBeingRespondedTo = self.message_id
        response.AffectedSOPClassUID = self.sop_class
        response.Status = STATUS_PENDING
        response.NumberOfRemainingSuboperations = counts.remaining
        response.NumberOfCompletedSuboperations = completed
        response.NumberOfFailedSuboperations = counts.failed
        response.NumberOfWarningSuboperations = 0
        self.requester.dimse.send_msg(response, self.context_id)

    # ---- the series -------------------------------------------------------------
    def _stopped(self) -> int | None:
        """The final status when the move must stop before the next sub-operation."""
        if not self.requester.is_established:
            return STATUS_SUCCESS  # pynetdicom sees it and sends nothing
        if self.is_cancelled is not None and self.is_cancelled():
            return STATUS_CANCEL
        return None

    def run(self, instances: list[InstanceToSend], counts: SubOperationCounts) -> int:
        """Send every instance in turn; the status of the final response (Success,
        Cancel, or 0xC000 when a sub-operation failed), ``counts`` kept up to date."""
        total = len(instances)
        if not total:
            return STATUS_SUCCESS
        stop = self._stopped()
        if stop is not None:
            return stop
        item = self._prepare(instances[0], 0)
        if isinstance(item, _Unreadable):
            return STATUS_UNABLE_TO_PROCESS
        self._send(item)
        for index in range(total):
            # read and frame the next file while the destination stores this one
            upcoming = self._prepare(instances[index + 1], index + 1) if index + 1 < total else None
            category = _category(self._status(item))
            counts.remaining -= 1
            if category == "Failure":
                counts.failed += 1
                return STATUS_UNABLE_TO_PROCESS  # as Orthanc: no further sub-operation
            if category == "Warning":
                counts.warning += 1
            else:
                counts.completed += 1
            if upcoming is None:
                return STATUS_SUCCESS  # no Pending after the last sub-operation
            stop = self._stopped()
            if stop is None and isinstance(upcoming, _Item):
                self._send(upcoming)  # the next request first, then this Pending
            self._pending(counts)
            if stop is not None:
                return stop
            if isinstance(upcoming, _Unreadable):
                return STATUS_UNABLE_TO_PROCESS
            item = upcoming
        return STATUS_SUCCESS


__all__ = ["MoveSubOperations", "SubOperationCounts"]
