"""The transfer syntaxes the DICOM listener accepts, changeable at run time.

They start from the configuration (``AcceptedTransferSyntaxes`` and the
``*TransferSyntaxAccepted`` switches). ``PUT /tools/accepted-transfer-syntaxes``
replaces them until the server stops, as in Orthanc; the new list lives in the
index, so the HTTP worker that answers the PUT and the worker that runs the DICOM
listener agree, and the listener applies it from the next association on. It is
cleared at start-up, so a restart goes back to the configuration.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

import orjson
from pydicom.uid import AllTransferSyntaxes

from .archive import Archive
from .errors import BadFileFormat

PROPERTY = "dicomhub.accepted-transfer-syntaxes"

#: Families that Orthanc's configuration switches off with one Boolean.
FAMILY_SWITCHES: dict[str, tuple[str, ...]] = {
    "DeflatedTransferSyntaxAccepted": ("1.2.840.10008.1.2.1.99",),
    "JpegTransferSyntaxAccepted": tuple(f"1.2.840.10008.1.2.4.{n}" for n in (*range(50, 67), 70)),
    "Jpeg2000TransferSyntaxAccepted": tuple(
        f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93, 201, 202, 203)
    ),
    "JpegLosslessTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "JpipTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95"),
    "Mpeg2TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "Mpeg4TransferSyntaxAccepted": tuple(
        f"1.2.840.10008.1.2.4.{n}" for n in (102, 103, 104, 105, 106)
    ),
    "H265TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
    "RleTransferSyntaxAccepted": ("1.2.840.10008.1.2.5",),
}


def _numeric(uid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in uid.split(".") if part.isdigit())


def known_syntaxes() -> list[str]:
    """Every transfer syntax the listener can negotiate, in UID order."""
    return sorted({str(uid) for uid in AllTransferSyntaxes}, key=_numeric)


def matching(patterns: list[str]) -> list[str]:
    """The known syntaxes matched by ``patterns`` (``*`` and ``?`` allowed)."""
    return [uid for uid in known_syntaxes() if any(fnmatch.fnmatchcase(uid, p) for p in patterns)]


def from_config(config: Mapping[str, Any]) -> list[str]:
    """The accepted syntaxes the configuration asks for."""
    patterns = config.get("AcceptedTransferSyntaxes") or ["1.2.840.10008.1.*"]
    if isinstance(patterns, str):
        patterns = [patterns]
    refused = {
        uid
        for key, uids in FAMILY_SWITCHES.items()
        if config.get(key) is not None and not config.get(key)
        for uid in uids
    }
    return [uid for uid in matching([str(p) for p in patterns]) if uid not in refused]


def parse_body(body: bytes) -> list[str]:
    """A JSON list of UIDs, a JSON string, or one UID as plain text; wildcards allowed."""
    text = body.decode("utf-8", "replace").strip()
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadFileFormat("Expected a transfer syntax UID or a list of them")
    return [v.strip() for v in value]


def current(archive: Archive, config: Mapping[str, Any]) -> list[str]:
    """What the listener accepts now: the last PUT, else the configuration."""
    with archive.read() as session:
        stored = session.get_property(PROPERTY)
    if stored is None:
        return from_config(config)
    return list(orjson.loads(stored))


def replace(archive: Archive, patterns: list[str]) -> list[str]:
    """Accept exactly the known syntaxes matching ``patterns`` from now on."""
    accepted = matching(patterns)
    value = orjson.dumps(accepted).decode()

    def write(tx: Any) -> None:
        tx.session.set_property(PROPERTY, value)

    archive.write(write)
    return accepted


def reset(archive: Archive) -> None:
    """Back to the configuration (at start-up)."""
    archive.write(lambda tx: tx.session.delete_property(PROPERTY))
