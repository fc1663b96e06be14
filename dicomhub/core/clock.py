"""Time as Orthanc writes it (ISO basic format, ``20240131T235959``)."""

from __future__ import annotations

import time

#: (utc, second) -> its text: an ingest asks several times within the same second,
#: and formatting a datetime costs more than the rest of a metadata row.
_formatted: dict[bool, tuple[int, str]] = {}


def now_iso(utc: bool = True) -> str:
    second = int(time.time())
    cached = _formatted.get(utc)
    if cached is not None and cached[0] == second:
        return cached[1]
    text = time.strftime("%Y%m%dT%H%M%S", time.gmtime(second) if utc else time.localtime(second))
    _formatted[utc] = (second, text)
    return text


def now_seconds() -> int:
    return int(time.time())
