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
    for key, synchronous_if_true in (("Synchronous", True), ("Asynchronous", False)):
        if key in body:
            value = body[key]
            if not isinstance(value, bool):
                raise BadFileFormat(f"Boolean value expected in field: {key}")
            return value != synchronous_if_true
    return not synchronous_by_default
