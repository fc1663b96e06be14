"""Storage commitment, push model (PS3.4 J): N-ACTION asks, N-EVENT-REPORT answers.

As SCP, the listener acknowledges the N-ACTION at once and, from a worker thread,
checks the instances and sends the N-EVENT-REPORT on a new association to the
requesting modality (taking the SCP role there), which is what Orthanc does
(observed on 1.10.1); the report always holds ReferencedSOPSequence, empty when
nothing is committed. A malformed N-ACTION, which Orthanc leaves unanswered, is
refused: 0x0117 for a Requested SOP Instance other than the push model's, 0x0123
for another action type, 0x0115 without TransactionUID or ReferencedSOPSequence.
As SCU, ``request`` sends the N-ACTION; the peer's report comes back to the
listener (on a new association, or on ours while it is open) and completes the
pending report in ``core.storage_commitment`` (a report without
ReferencedSOPSequence is accepted too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pydicom.dataset import Dataset
from pynetdicom import build_role, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from ..core.archive import Archive
from ..core.errors import DicomhubError, NetworkProtocol
from ..core.modalities import RemoteModality
from ..core.storage_commitment import CommitmentReports, Reference, check_instances
from .scu import _ae, open_association

log = logging.getLogger("dicomhub.commitment")

PUSH_MODEL = str(StorageCommitmentPushModel)
#: The well-known SOP Instance of the push model.
PUSH_MODEL_INSTANCE = "1.2.840.10008.1.20.1.1"
ACTION_REQUEST = 1
EVENT_ALL_SUCCESS, EVENT_SOME_FAILURES = 1, 2
STATUS_SUCCESS = 0x0000
STATUS_PROCESSING_FAILURE = 0x0110
STATUS_INVALID_ARGUMENT = 0x0115
STATUS_INVALID_OBJECT_INSTANCE = 0x0117
STATUS_NO_SUCH_ACTION = 0x0123


def _references(sequence: object) -> list[Reference]:
    found = []
    for item in sequence or []:  # type: ignore[attr-defined]
        found.append(
            Reference(
                str(item.get("ReferencedSOPClassUID", "") or ""),
                str(item.get("ReferencedSOPInstanceUID", "") or ""),
            )
        )
    return found


def _items(references: list[Reference]) -> list[Dataset]:
    items = []
    for ref in references:
        item = Dataset()
        item.ReferencedSOPClassUID = ref.sop_class_uid
        item.ReferencedSOPInstanceUID = ref.sop_instance_uid
        items.append(item)
    return items


def _on_report(reports: CommitmentReports) -> Callable[[evt.Event], tuple[int, None]]:
    def handler(event: evt.Event) -> tuple[int, None]:
        info = event.event_information
        uid = str(info.get("TransactionUID", "") or "") if info is not None else ""
        success = _references(info.get("ReferencedSOPSequence")) if info is not None else []
        failures = []
        for item in (info.get("FailedSOPSequence") if info is not None else None) or []:
            reason = int(item.get("FailureReason", 0x0110) or 0x0110)
            failures.append((_references([item])[0], reason))
        if not reports.complete(uid, success, failures):
            log.warning("Storage commitment report for an unknown transaction: %s", uid)
            return STATUS_INVALID_ARGUMENT, None
        log.info("Storage commitment report %s: %d ok, %d failed", uid, len(success), len(failures))
        return STATUS_SUCCESS, None

    return handler


# ---- SCU ------------------------------------------------------------------------
def request(
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    transaction_uid: str,
    references: list[Reference],
    reports: CommitmentReports,
) -> None:
    """Send the N-ACTION of a transaction (its pending report already recorded)."""
    ae = _ae(local_aet, timeout)
    ae.add_requested_context(PUSH_MODEL)
    assoc = open_association(ae, modality, handlers=[(evt.EVT_N_EVENT_REPORT, _on_report(reports))])
    try:
        if not assoc.accepted_contexts:
            raise NetworkProtocol(f'AET "{modality.aet}" does not accept storage commitment')
        info = Dataset()
        info.TransactionUID = transaction_uid
        info.ReferencedSOPSequence = _items(references)
        status, _ = assoc.send_n_action(info, ACTION_REQUEST, PUSH_MODEL, PUSH_MODEL_INSTANCE)
        code = int(status.Status) if status else None
        if code != STATUS_SUCCESS:  # in Orthanc's words
            reason = (
                "Unable to read N-ACTION response from AET"
                if code is None
                else "The request cannot be handled by remote AET"
            )
            raise NetworkProtocol(f"Storage commitment - {reason}: {modality.aet}")
    finally:
        if assoc.is_established:
            assoc.release()


# ---- SCP ------------------------------------------------------------------------
def send_report(
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    transaction_uid: str,
    success: list[Reference],
    failures: list[tuple[Reference, int]],
) -> None:
    """The N-EVENT-REPORT, on a new association where we take the SCP role."""
    ae = _ae(local_aet, timeout)
    ae.add_requested_context(PUSH_MODEL)
    assoc = open_association(ae, modality, ext_neg=[build_role(PUSH_MODEL, scp_role=True)])
    try:
        info = Dataset()
        info.TransactionUID = transaction_uid
        # always there, empty when nothing is committed: Orthanc (1.10.1) refuses a report
        # without it and would keep its request pending forever
        info.ReferencedSOPSequence = _items(success)
        if failures:
            items = _items([ref for ref, _ in failures])
            for item, (_, reason) in zip(items, failures, strict=True):
                item.FailureReason = reason
            info.FailedSOPSequence = items
        event_type = EVENT_SOME_FAILURES if failures else EVENT_ALL_SUCCESS
        status, _ = assoc.send_n_event_report(info, event_type, PUSH_MODEL, PUSH_MODEL_INSTANCE)
        if not status or int(status.Status) != STATUS_SUCCESS:
            log.warning("AET %s did not acknowledge storage commitment report", modality.aet)
    finally:
        if assoc.is_established:
            assoc.release()


class CommitmentService:
    """The listener's storage commitment SCP (and receiver of the reports we asked for)."""

    def __init__(self, archive: Archive, aet: str, reports: CommitmentReports) -> None:
        self.archive = archive
        self.aet = aet
        self.reports = reports
        self.on_report = _on_report(reports)

    def on_action(self, event: evt.Event, requester: RemoteModality | None) -> tuple[int, None]:
        instance = str(event.request.RequestedSOPInstanceUID or "").rstrip("\x00 ")
        if instance != PUSH_MODEL_INSTANCE:  # the push model has one well-known instance
            log.warning("Storage commitment asked of an unknown SOP instance: %s", instance)
            return STATUS_INVALID_OBJECT_INSTANCE, None
        if int(event.request.ActionTypeID or 0) != ACTION_REQUEST:
            return STATUS_NO_SUCH_ACTION, None
        info = event.action_information
        uid = str(info.get("TransactionUID", "") or "") if info is not None else ""
        if not uid or info is None or "ReferencedSOPSequence" not in info:
            return STATUS_INVALID_ARGUMENT, None
        if requester is None:
            log.warning("Storage commitment from an unknown modality: no way to report")
            return STATUS_PROCESSING_FAILURE, None
        references = _references(info.ReferencedSOPSequence)
        threading.Thread(
            target=self._report,
            args=(requester, uid, references),
            name="storage-commitment",
            daemon=True,
        ).start()
        return STATUS_SUCCESS, None

    def _report(self, modality: RemoteModality, uid: str, references: list[Reference]) -> None:
        try:
            success, failures = check_instances(self.archive, references)
            timeout = float(modality.timeout) if modality.timeout else 10.0
            send_report(modality, self.aet, timeout, uid, success, failures)
            log.info(
                "Storage commitment %s answered to %s: %d ok, %d failed",
                uid,
                modality.aet,
                len(success),
                len(failures),
            )
        except DicomhubError as exc:
            log.error("Cannot send the storage commitment report to %s: %s", modality.aet, exc)
        except Exception:
            log.exception("Storage commitment report to %s failed", modality.aet)


__all__ = ["PUSH_MODEL", "CommitmentService", "request", "send_report"]
