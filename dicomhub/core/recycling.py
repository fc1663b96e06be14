"""Storage quotas: ``MaximumStorageSize`` and ``MaximumPatientCount``.

When a new instance would exceed a quota, Orthanc either recycles (deletes the
patients that received nothing for the longest time, skipping protected ones and
the patient being stored to) or rejects the instance (``MaximumStorageMode`` =
``Reject``). The decision is taken inside the indexing transaction, so it sees the
same counters the commit will change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import FullStorage

if TYPE_CHECKING:
    from .archive import Archive
    from .transactions import Transaction


def _over_quota(
    archive: Archive, counters: dict[str, int], incoming: int, new_patient: bool
) -> bool:
    s = archive.settings
    if s.maximum_storage_size_mb > 0:
        limit = s.maximum_storage_size_mb * 1024 * 1024
        if counters["compressed_size"] + incoming > limit:
            return True
    return bool(
        s.maximum_patient_count > 0
        and new_patient
        and counters["patients"] + 1 > s.maximum_patient_count
    )


def make_room(archive: Archive, tx: Transaction, incoming: int, patient_public: str) -> None:
    from .deletion import delete_in_transaction

    s = archive.settings
    if s.maximum_storage_size_mb <= 0 and s.maximum_patient_count <= 0:
        return
    session = tx.session
    target = session.lookup(patient_public)
    new_patient = target is None
    if s.maximum_storage_size_mb > 0 and incoming > s.maximum_storage_size_mb * 1024 * 1024:
        raise FullStorage("the instance is larger than the maximum storage size")
    while _over_quota(archive, session.counters(), incoming, new_patient):
        if s.maximum_storage_mode.lower() == "reject":
            raise FullStorage("the storage quota is reached (MaximumStorageMode is Reject)")
        victim = session.oldest_unprotected_patient(target.id if target else None)
        if victim is None:
            raise FullStorage("cannot recycle: every other patient is protected")
        delete_in_transaction(archive, tx, victim)
