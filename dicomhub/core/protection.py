"""Protection of patients against recycling (``/patients/{id}/protected``)."""

from __future__ import annotations

from ..dicom.levels import Level
from .archive import Archive, require_resource
from .transactions import Transaction


def is_protected(archive: Archive, patient_id: str) -> bool:
    with archive.read() as session:
        return require_resource(session, patient_id, int(Level.PATIENT)).protected


def set_protected(archive: Archive, patient_id: str, protected: bool) -> None:
    def run(tx: Transaction) -> None:
        row = require_resource(tx.session, patient_id, int(Level.PATIENT))
        tx.session.set_protected(row.id, protected)

    archive.write(run)
