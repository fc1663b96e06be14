"""Wake-up calls between the processes of one server (several HTTP workers).

The primary worker polls the index for the work that other workers leave there (new
changes for the scripts' callbacks, new jobs for the runner). Polling alone would
trade latency against idle CPU; a nudge lets it do both well: a worker that commits
a change or submits a job sends one datagram ("changes", "jobs") to a Unix socket of
the primary, which then reads the index at once. A nudge carries no data and may be
lost (a full buffer, a primary restarting): the poll still finds the work, later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping

log = logging.getLogger("dicomhub.nudges")

CHANGES = b"changes"
JOBS = b"jobs"


class NudgeSender:
    """Sends nudges to the primary; never blocks, never fails."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def send(self, message: bytes) -> None:
        with contextlib.suppress(OSError):  # no primary just now, or its buffer is full
            self._socket.sendto(message, self.path)

    def close(self) -> None:
        self._socket.close()


class NudgeListener:
    """The primary's side: a thread that calls ``targets[message]`` per nudge."""

    def __init__(self, path: str, targets: Mapping[bytes, Callable[[], None]]) -> None:
        self.path = path
        self.targets = dict(targets)
        if os.path.exists(path):  # left by a primary that died
            os.unlink(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(path)
        os.chmod(path, 0o600)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="dicomhub-nudges", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        # A datagram to ourselves unblocks ``recv``; then the socket goes.
        self._closing = True
        sender = NudgeSender(self.path)
        sender.send(b"")
        sender.close()
        self._thread.join(5)
        self._socket.close()

    def _run(self) -> None:
        while not self._closing:
            try:
                message = self._socket.recv(64)
            except OSError:
                return
            target = self.targets.get(message)
            if target is not None:
                try:
                    target()
                except Exception:
                    log.exception("Nudge %r failed", message)


__all__ = ["CHANGES", "JOBS", "NudgeListener", "NudgeSender"]
