"""Storage commitment (push model): which instances this archive holds, and the
reports peers send back about the instances we asked them to keep.

As SCP, an instance is committed when the index holds its SOP Instance UID with
the same SOP Class UID; otherwise it fails with 0x0112 (no such object instance)
or 0x0119 (class/instance conflict), Orthanc's reasons. As SCU, a report starts
"Pending" when the N-ACTION is sent and is completed by the peer's N-EVENT-REPORT.
Reports live in index properties (the DICOM listener, which receives the report,
runs in one process; any HTTP worker may be asked for it), bounded by
``StorageCommitmentReportsSize``, oldest forgotten first.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..dicom.levels import Level
from .archive import Archive
from .enums import MetadataType
from .errors import InexistentItem, UnknownResource
from .transactions import Transaction

SOP_INSTANCE_UID = 0x00080018
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119

#: Orthanc's descriptions of the failure reasons (PS3.4 J.3.3.1.2, wording as reported
#: by Orthanc's ``/storage-commitment/{id}``).
REASONS = {
    0x0110: "A general failure in processing the operation was encountered",
    NO_SUCH_OBJECT_INSTANCE: (
        "One or more of the elements in the Referenced SOP Instance Sequence was not available"
    ),
    0x0213: (
        "The SCP does not currently have enough resources to store the requested SOP Instance(s)"
    ),
    0x0122: (
        "Storage Commitment has been requested for a SOP Instance with a SOP Class "
        "that is not supported by the SCP"
    ),
    CLASS_INSTANCE_CONFLICT: (
        "The SOP Class of an element in the Referenced SOP Instance Sequence did not "
        "correspond to the SOP class registered for this SOP Instance at the SCP"
    ),
    0x0131: "The Transaction UID of the Storage Commitment Request is already in use",
}

_LIST_PROPERTY = "dicomhub.storage-commitment"
_ITEM_PROPERTY = "dicomhub.storage-commitment."


def new_transaction_uid() -> str:
    """A fresh UID under the UUID-derived root 2.25 (as Orthanc makes them)."""
    return f"2.25.{uuid.uuid4().int}"


@dataclass(frozen=True)
class Reference:
    sop_class_uid: str
    sop_instance_uid: str


def check_instances(
    archive: Archive, references: list[Reference]
) -> tuple[list[Reference], list[tuple[Reference, int]]]:
    """The references this archive holds, and the others with their failure reason."""
    success: list[Reference] = []
    failures: list[tuple[Reference, int]] = []
    with archive.read() as session:
        for ref in references:
            rows = [
                r
                for r in session.lookup_identifier(SOP_INSTANCE_UID, ref.sop_instance_uid)
                if r.level == int(Level.INSTANCE)
            ]
            if not rows:
                failures.append((ref, NO_SUCH_OBJECT_INSTANCE))
                continue
            classes = {
                session.metadata(r.id).get(int(MetadataType.SopClassUid), ("", 0))[0] for r in rows
            }
            if ref.sop_class_uid in classes:
                success.append(ref)
            else:
                failures.append((ref, CLASS_INSTANCE_CONFLICT))
    return success, failures


@dataclass
class Report:
    """What a peer said about the instances of one transaction."""

    remote_aet: str
    complete: bool = False
    success: list[Reference] = field(default_factory=list)
    failures: list[tuple[Reference, int]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.complete:
            return "Pending"
        return "Failure" if self.failures else "Success"

    def to_json(self) -> dict[str, Any]:
        """Orthanc's ``GET /storage-commitment/{id}`` (no lists while pending)."""
        if not self.complete:
            return {"RemoteAET": self.remote_aet, "Status": self.status}
        return {
            "RemoteAET": self.remote_aet,
            "Status": self.status,
            "Success": [
                {"SOPClassUID": r.sop_class_uid, "SOPInstanceUID": r.sop_instance_uid}
                for r in self.success
            ],
            "Failures": [
                {
                    "Description": REASONS.get(reason, "Unknown failure reason"),
                    "FailureReason": reason,
                    "SOPClassUID": r.sop_class_uid,
                    "SOPInstanceUID": r.sop_instance_uid,
                }
                for r, reason in self.failures
            ],
        }

    def _stored(self) -> dict[str, Any]:
        return {
            "RemoteAET": self.remote_aet,
            "Complete": self.complete,
            "Success": [[r.sop_class_uid, r.sop_instance_uid] for r in self.success],
            "Failures": [[r.sop_class_uid, r.sop_instance_uid, n] for r, n in self.failures],
        }

    @classmethod
    def _load(cls, value: Mapping[str, Any]) -> Report:
        return cls(
            remote_aet=value["RemoteAET"],
            complete=value["Complete"],
            success=[Reference(c, i) for c, i in value["Success"]],
            failures=[(Reference(c, i), n) for c, i, n in value["Failures"]],
        )


class CommitmentReports:
    """The reports of the transactions this archive asked for, shared through the index."""

    def __init__(self, archive: Archive, config: Mapping[str, Any]) -> None:
        self.archive = archive
        size = config.get("StorageCommitmentReportsSize", 100)
        self.size = 100 if size is None else max(1, int(size))

    def start(self, transaction_uid: str, remote_aet: str) -> None:
        """A pending report, recorded before the N-ACTION goes out (the answer may come
        back before the request returns)."""

        def run(tx: Transaction) -> None:
            raw = tx.session.get_property(_LIST_PROPERTY)
            uids: list[str] = json.loads(raw) if raw else []
            uids.append(transaction_uid)
            while len(uids) > self.size:
                tx.session.delete_property(_ITEM_PROPERTY + uids.pop(0))
            report = Report(remote_aet)
            tx.session.set_property(_ITEM_PROPERTY + transaction_uid, json.dumps(report._stored()))
            tx.session.set_property(_LIST_PROPERTY, json.dumps(uids))

        self.archive.write(run)

    def complete(
        self,
        transaction_uid: str,
        success: list[Reference],
        failures: list[tuple[Reference, int]],
    ) -> bool:
        """Record a peer's answer; False for a transaction we do not know."""

        def run(tx: Transaction) -> bool:
            raw = tx.session.get_property(_ITEM_PROPERTY + transaction_uid)
            if not raw:
                return False
            report = Report._load(json.loads(raw))
            report.complete = True
            report.success, report.failures = success, failures
            tx.session.set_property(_ITEM_PROPERTY + transaction_uid, json.dumps(report._stored()))
            return True

        return self.archive.write(run)

    def get(self, transaction_uid: str) -> Report:
        with self.archive.read() as session:
            raw = session.get_property(_ITEM_PROPERTY + transaction_uid)
        if not raw:
            raise InexistentItem(f"No storage commitment transaction with UID: {transaction_uid}")
        return Report._load(json.loads(raw))


def references_of_resources(archive: Archive, public_ids: list[str]) -> list[Reference]:
    """SOP Class and Instance UIDs of the local instances under the given resources.
    An identifier that names nothing here is an unknown resource (404), a malformed
    one too, as Orthanc answers (a C-STORE says "bad file format" for the latter)."""
    from .modalities import instances_to_send  # the same resolution as a C-STORE

    with archive.read() as session:
        for public_id in public_ids:
            if session.lookup(public_id) is None:
                raise UnknownResource()
    found: list[Reference] = []
    instances = instances_to_send(archive, public_ids)
    with archive.read() as session:
        for instance in instances:
            row = session.lookup(instance.public_id)
            if row is None:
                continue
            sop = session.main_tags(row.id).get(SOP_INSTANCE_UID, "")
            found.append(Reference(instance.sop_class_uid, sop))
    return found


def local_instances(archive: Archive, references: list[Reference]) -> list[str]:
    """The Orthanc identifiers of the local instances with these SOP Instance UIDs."""
    found: list[str] = []
    with archive.read() as session:
        for ref in references:
            found.extend(
                r.public_id
                for r in session.lookup_identifier(SOP_INSTANCE_UID, ref.sop_instance_uid)
                if r.level == int(Level.INSTANCE)
            )
    return found


__all__ = [
    "CommitmentReports",
    "Reference",
    "Report",
    "check_instances",
    "local_instances",
    "references_of_resources",
    "new_transaction_uid",
]
