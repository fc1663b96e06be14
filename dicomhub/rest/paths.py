"""How a request's path is read before routing, by every way into the REST API."""

from __future__ import annotations

import re

#: The explorer's page: a folder's URL, so that its relative links find its files.
EXPLORER_PATH = "/app/"

_SLASHES = re.compile(r"/{2,}")


def normalize_path(path: str) -> str:
    """The path as Orthanc reads it: doubled slashes count as one, and a trailing
    slash is ignored (``/patients/`` is ``/patients``, answered, not redirected).
    The explorer's page keeps its slash: its relative links resolve against it."""
    path = _SLASHES.sub("/", path)
    if path == EXPLORER_PATH:
        return path
    return path.rstrip("/") or "/"


def needs_normalizing(path: str) -> bool:
    """Whether ``normalize_path`` would change ``path`` (cheap: most paths are clean)."""
    return "//" in path or (path.endswith("/") and path not in ("/", EXPLORER_PATH))
