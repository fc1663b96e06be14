"""Forcing the stability of a patient, study or series (``SetStableStatus``).

A script that knows a study is complete (say, it received the last instance a
worklist announced) need not wait ``StableAge`` seconds: marking it stable now raises
the same ``Stable*`` change, and so the same ``OnStable*`` callbacks, as the monitor
would. Marking it unstable restarts its ``StableAge`` wait. Orthanc's plugin SDK
offers the same operation (``OrthancPluginSetStableStatus``).
"""

from __future__ import annotations

from ..dicom.levels import Level
from .archive import Archive
from .clock import now_seconds
from .errors import BadRequest, UnknownResource
from .stability import _STABLE_CHANGE
from .transactions import Transaction


def set_stable_status(archive: Archive, public_id: str, stable: bool) -> bool:
    """Answers whether the status changed; instances have no stability of their own."""

    def run(tx: Transaction) -> bool:
        row = tx.session.lookup(public_id)
        if row is None:
            raise UnknownResource(f"Unknown resource: {public_id}")
        level = Level(row.level)
        if level not in _STABLE_CHANGE:
            raise BadRequest("Only patients, studies and series have a stable status")
        if bool(row.stable) == stable:
            return False
        if stable:
            tx.session.set_stable(row.id)
            archive.log_change(tx, _STABLE_CHANGE[level], row.level, row.public_id)
        else:
            tx.session.touch(row.id, now_seconds())
        return True

    return archive.write(run)


__all__ = ["set_stable_status"]
