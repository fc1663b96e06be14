"""The storage SOP classes the DICOM listener accepts, and the unknown-class switch.

The accepted classes come from the configuration only (``AcceptedSopClasses`` and
``RejectedSopClasses``, with ``*`` and ``?``), as in Orthanc 1.12, where
``GET /tools/accepted-sop-classes`` lists them and nothing changes them.

``UnknownSopClassAccepted`` (SOP classes no dictionary knows, e.g. private ones) can
be switched at run time with ``PUT /tools/unknown-sop-class-accepted`` until the
server stops. Like the accepted transfer syntaxes (``core.accepted_syntaxes``), the
switched value lives in the index, so the HTTP worker that answers the PUT and the
worker that runs the DICOM listener agree, and the listener applies it from the next
association on. It is cleared at start-up, so a restart goes back to the
configuration.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from pynetdicom.sop_class import _STORAGE_CLASSES  # type: ignore[attr-defined]

from .archive import Archive
from .errors import BadFileFormat

PROPERTY = "dicomhub.unknown-sop-class-accepted"


def _patterns(value: Any, default: list[str]) -> list[str]:
    if not value:
        return default
    if isinstance(value, str):
        return [value]
    return [str(p) for p in value]


def known_storage_classes() -> list[str]:
    """Every storage SOP class the listener knows, sorted as text (like Orthanc's set)."""
    return sorted({str(uid) for uid in _STORAGE_CLASSES.values()})


def is_rejected(uid: str, config: Mapping[str, Any]) -> bool:
    """Whether ``RejectedSopClasses`` refuses ``uid`` (it wins over every acceptance)."""
    rejected = _patterns(config.get("RejectedSopClasses"), [])
    return any(fnmatch.fnmatchcase(uid, p) for p in rejected)


def accepted(config: Mapping[str, Any]) -> list[str]:
    """The known storage classes accepted: matching ``AcceptedSopClasses`` (all when
    unset) and not ``RejectedSopClasses``."""
    patterns = _patterns(config.get("AcceptedSopClasses"), ["*"])
    return [
        uid
        for uid in known_storage_classes()
        if any(fnmatch.fnmatchcase(uid, p) for p in patterns) and not is_rejected(uid, config)
    ]


def unknown_from_config(config: Mapping[str, Any]) -> bool:
    value = config.get("UnknownSopClassAccepted")
    return bool(value) if value is not None else False


def unknown_accepted(archive: Archive, config: Mapping[str, Any]) -> bool:
    """Whether unknown SOP classes are stored now: the last PUT, else the configuration."""
    with archive.read() as session:
        stored = session.get_property(PROPERTY)
    if stored is None:
        return unknown_from_config(config)
    return stored == "1"


def parse_boolean(body: bytes) -> bool:
    """Orthanc's Boolean body: ``1``/``true`` or ``0``/``false`` (surrounding blanks
    ignored, case kept: the reference answers 400 to ``FALSE``)."""
    text = body.decode("utf-8", "replace").strip()
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise BadFileFormat("Boolean value expected")


def set_unknown_accepted(archive: Archive, value: bool) -> None:
    """Accept (or refuse) unknown SOP classes from the listener's next association."""
    text = "1" if value else "0"
    archive.write(lambda tx: tx.session.set_property(PROPERTY, text))


def reset(archive: Archive) -> None:
    """Back to the configuration (at start-up)."""
    archive.write(lambda tx: tx.session.delete_property(PROPERTY))
