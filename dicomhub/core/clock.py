"""Time as Orthanc writes it (ISO basic format, ``20240131T235959``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_iso(utc: bool = True) -> str:
    moment = datetime.now(UTC) if utc else datetime.now()
    return moment.strftime("%Y%m%dT%H%M%S")


def now_seconds() -> int:
    return int(time.time())
