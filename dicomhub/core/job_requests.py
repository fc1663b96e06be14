"""Whether a request that can run as a job asks for one (``Synchronous`` /
``Asynchronous`` in its JSON body), read as Orthanc reads it everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import BadFileFormat


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
    """The ``Priority`` of a job request (0 by default)."""
    value = body.get("Priority", 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadFileFormat("Integer value expected in field: Priority")
    return value
