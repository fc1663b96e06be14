"""Wake-up calls between the processes of one server (several HTTP workers).

The primary worker polls the index for the work that other workers leave there (new
changes for the scripts' callbacks, new jobs for the runner). Polling alone would
trade latency against idle CPU; a nudge lets it do both well: a worker that commits
a change or submits a job sends one datagram ("changes", "jobs") to a Unix socket of
the primary, which then reads the index at once. A nudge carries no data and may be
lost (a full buffer, a primary restarting): the poll still finds the work, later.

A nudge also costs: a system call in the sender, and in the primary a thread woken
to take the interpreter lock from whatever it serves (measured: about 5 % of the CPU
of a small upload with four workers). So the primary says which nudges it wants now,
by a flag file beside its socket, and the senders look at that flag at most ten
times a second: most servers have no script that follows the changes, and their
workers send none.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("dicomhub.nudges")

CHANGES = b"changes"
JOBS = b"jobs"

#: How long a sender trusts what it last saw of a flag (seconds).
FLAG_CHECK_PERIOD = 0.1

_clock = time.monotonic


def flag_path(path: str, message: bytes) -> str:
    """The file whose presence says that the primary listening on ``path`` wants
    ``message`` nudges."""
    return f"{path}.{message.decode('ascii')}"


class NudgeSender:
    """Sends nudges to the primary, those it wants; never blocks, never fails."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._seen: dict[bytes, tuple[float, bool]] = {}  # message: (when, wanted)

    def send(self, message: bytes) -> None:
        if not self._wanted(message):
            return
        with contextlib.suppress(OSError):  # no primary just now, or its buffer is full
            self._socket.sendto(message, self.path)

    def _wanted(self, message: bytes) -> bool:
        now = _clock()
        seen = self._seen.get(message)
        if seen is None or now - seen[0] >= FLAG_CHECK_PERIOD:
            seen = (now, os.path.exists(flag_path(self.path, message)))
            self._seen[message] = seen
        return seen[1]

    def close(self) -> None:
        self._socket.close()


class NudgeListener:
    """The primary's side: a thread that calls ``targets[message]`` per nudge.

    Every target is wanted from the start; ``want`` changes that."""

    def __init__(self, path: str, targets: Mapping[bytes, Callable[[], None]]) -> None:
        self.path = path
        self.targets = dict(targets)
        for message in (CHANGES, JOBS):  # and no flag left by a primary that died
            self.want(message, message in self.targets)
        if os.path.exists(path):  # left by a primary that died
            os.unlink(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(path)
        os.chmod(path, 0o600)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="dicomhub-nudges", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def want(self, message: bytes, wanted: bool) -> None:
        """Whether the senders should send ``message`` (they see it within
        ``FLAG_CHECK_PERIOD``; the poll covers the meantime)."""
        flag = flag_path(self.path, message)
        if wanted:
            with open(flag, "ab"):
                pass
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(flag)

    def stop(self) -> None:
        # A datagram to ourselves unblocks ``recv``; then the socket goes.
        self._closing = True
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as wake, contextlib.suppress(OSError):
            wake.sendto(b"", self.path)
        self._thread.join(5)
        self._socket.close()
        for message in self.targets:
            self.want(message, False)

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
