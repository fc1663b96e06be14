"""In-process notifications of what happened to the archive.

Faces and scripting (Lua, Python hooks) subscribe here; ``core`` publishes after the
index transaction committed, so a listener never sees a change that was rolled back.
A failing listener is logged and does not disturb the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("dicomhub.events")

#: Events for the scripts' callbacks only, never rows of ``/changes`` (numbered past
#: Orthanc's change types). As Orthanc, a deletion calls ``OnDeleted*`` for every
#: resource it removed, though ``/changes`` says nothing of them; and an instance that
#: arrives again (``AlreadyStored``) goes through ``OnStoredInstance`` again, with the
#: origin of the new request, though nothing changed.
#:
#: ``DELETED_RESOURCES``: one deletion; ``level`` and ``public_id`` are the topmost
#: resource removed, ``details`` every removed resource as ``(level, public_id)``, in
#: the order Orthanc calls back (``core.deletion``).
DELETED_RESOURCES = 1001
#: ``STORED_AGAIN``: the instance ``public_id`` was already stored; ``details`` is the
#: new request's origin, in the shape of the callbacks' ``origin`` argument.
STORED_AGAIN = 1002
SCRIPT_EVENTS = frozenset({DELETED_RESOURCES, STORED_AGAIN})


@dataclass(frozen=True, slots=True)
class Change:
    change_type: int
    level: int
    public_id: str
    date: str
    #: What a script event carries besides (``SCRIPT_EVENTS``); None for a change.
    details: Any = None


Listener = Callable[[Change], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def publish(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                log.exception("listener failed on %s", change)
