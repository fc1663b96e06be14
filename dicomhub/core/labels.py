"""Labels (Orthanc 1.12): value-less tags attached to resources, indexed for search.

A label is 1 to 64 characters among ASCII letters, digits, ``_`` and ``-``, the
rule Orthanc 1.12 enforces so that labels stay portable across database backends
(the length bound is what MySQL can index) and safe in URLs and C-FIND keys.
"""

from __future__ import annotations

import re

from ..dicom.levels import Level
from .archive import Archive, require_resource
from .errors import ParameterOutOfRange
from .transactions import Transaction

MAX_LENGTH = 64
_VALID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_valid(label: str) -> bool:
    return _VALID.fullmatch(label) is not None


def check_valid(label: str) -> None:
    if not is_valid(label):
        raise ParameterOutOfRange(
            f"Invalid label {label!r}: a label has 1 to {MAX_LENGTH} characters, "
            "each an ASCII letter, a digit, '_' or '-'"
        )


def list_labels(archive: Archive, public_id: str, level: Level) -> list[str]:
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        return session.labels(row.id)


def has_label(archive: Archive, public_id: str, level: Level, label: str) -> bool:
    return label in list_labels(archive, public_id, level)


def add_label(archive: Archive, public_id: str, level: Level, label: str) -> None:
    check_valid(label)

    def run(tx: Transaction) -> None:
        row = require_resource(tx.session, public_id, int(level))
        tx.session.add_label(row.id, label)

    archive.write(run)


def remove_label(archive: Archive, public_id: str, level: Level, label: str) -> None:
    """Remove ``label`` from the resource (nothing to do if it does not carry it)."""
    check_valid(label)

    def run(tx: Transaction) -> None:
        row = require_resource(tx.session, public_id, int(level))
        tx.session.remove_label(row.id, label)

    archive.write(run)


def all_labels(archive: Archive) -> list[str]:
    """Every label in use in the archive, sorted."""
    with archive.read() as session:
        return session.all_labels()
