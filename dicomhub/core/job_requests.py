"""How Orthanc reads the requests that can run as a job: whether they ask for one
(``Synchronous`` / ``Asynchronous`` in their JSON body), their ``Priority``, their
Boolean options, and the body of a store request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .errors import BadFileFormat

_INT32 = (-(2**31), 2**31 - 1)


def wants_job(body: Mapping[str, Any], synchronous_by_default: bool = True) -> bool:
    """``Synchronous`` is read first and wins when both are given; either must be a
    Boolean (Orthanc's "Bad file format" otherwise); without both, the route's
    default."""
    if "Synchronous" in body:
        return not boolean_field(body, "Synchronous", True)
    return boolean_field(body, "Asynchronous", not synchronous_by_default)


def boolean_field(body: Mapping[str, Any], key: str, default: bool) -> bool:
    """A Boolean option of a job request (``KeepSource``, ``Permissive``, ...)."""
    if key not in body:
        return default
    value = body[key]
    if not isinstance(value, bool):
        raise BadFileFormat(f"Boolean value expected in field: {key}")
    return value


def priority(body: Mapping[str, Any]) -> int:
    """The ``Priority`` of a job request (0 by default): a 32-bit integer, as
    Orthanc keeps it (Orthanc 1.10.1 fails with an internal error beyond that)."""
    value = body.get("Priority", 0)
    if not isinstance(value, int) or isinstance(value, bool) or not _INT32[0] <= value <= _INT32[1]:
        raise BadFileFormat("Integer value expected in field: Priority")
    return value


def _is_orthanc_id(text: str) -> bool:
    """The shape of an Orthanc identifier: 44 characters, dashes every 9th (Orthanc
    checks the shape only, so an unknown or non-hex one is then "Unknown resource")."""
    return len(text) == 44 and all((c == "-") == (i % 9 == 8) for i, c in enumerate(text))


def store_body(raw: bytes) -> Any:
    """The body of ``/modalities/{id}/store`` or ``/peers/{id}/store``: JSON, or (as
    Orthanc still accepts it) one Orthanc identifier as plain text, spaces around it
    ignored."""
    text = raw.strip()
    if text:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            decoded = text.decode("utf-8", "replace")
            if _is_orthanc_id(decoded):
                return decoded
    raise BadFileFormat("Must provide a JSON value")
