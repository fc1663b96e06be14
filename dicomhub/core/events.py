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

log = logging.getLogger("dicomhub.events")


@dataclass(frozen=True, slots=True)
class Change:
    change_type: int
    level: int
    public_id: str
    date: str


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
