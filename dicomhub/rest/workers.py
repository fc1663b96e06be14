"""Several HTTP workers answering as one server: the few routes whose effect lives in
a process are sent to the process(es) where it must happen.

With ``HttpWorkers`` > 1, the processes share the archive through the index, but a
little state is, by nature, held in a process: the Lua state of the primary worker
(``/tools/execute-script`` must see the globals of ``LuaScripts``), and settings that
every process applies to itself (log levels, the metrics switch). A client cannot
choose the worker that answers, so:

- every worker also serves the application on a private Unix socket, in a folder that
  the supervisor creates for the run (mode 0700: only this user may connect). Requests
  arriving there have already passed the access checks and the HTTP filters of the
  worker that forwarded them, so they reach the routes directly, marked as forwarded
  (a forwarded request is never forwarded again);
- ``forward_to_primary`` answers with the primary worker's answer;
- ``ask_everyone`` collects every worker's answer (the metrics that each one counts);
- ``apply_everywhere`` sends a setting to every worker, one setting at a time (a lock
  file keeps concurrent changes in the same order everywhere), and records it in the
  run's folder, where a worker that starts again later reads it, so a restarted
  worker applies what the others apply. A new run starts with a new folder: such
  settings are forgotten at restart, as Orthanc forgets them.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import socket
import time
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("dicomhub.rest.workers")

#: Scope key of a request that came over a private socket from another worker.
FORWARDED_KEY = "dicomhub.forwarded"

#: Header of the requests sent between workers: a guard against forwarding in circles
#: should a private request ever be taken for a public one (it is never trusted for
#: anything else: a client setting it only gets this worker's own answer).
HOP_HEADER = "x-dicomhub-forwarded"

#: How long a worker waits for another one to take a setting (it may be starting).
TIMEOUT = 60.0

_SETTINGS = "settings.json"
_LOCK = "settings.lock"
_READY = "primary-ready"


class WorkerGroup:
    """Where this worker stands among the HTTP workers of the run."""

    def __init__(self, folder: str, index: int, count: int) -> None:
        self.folder = folder
        self.index = index
        self.count = count
        #: This worker's routes, called in-process for its own share of a broadcast
        #: (not over its socket: it may not serve yet, e.g. a script's ``Initialize``).
        self.routes_app: ASGIApp | None = None

    @property
    def primary(self) -> bool:
        return self.index == 0

    def socket_path(self, index: int) -> str:
        return os.path.join(self.folder, f"worker-{index}.sock")

    @staticmethod
    def dispatch_path_in(folder: str) -> str:
        """Where the supervisor hands out the HTTP connections (``rest/dispatch.py``)."""
        return os.path.join(folder, "http-dispatch.sock")

    @property
    def dispatch_path(self) -> str:
        return self.dispatch_path_in(self.folder)

    def join(self) -> socket.socket:
        """Opens this worker's private socket, then applies the settings recorded in
        this run: in that order, a setting sent from now on waits in the socket's
        backlog, and one sent before is in the record."""
        sock = self.bind()
        if self.routes_app is not None:
            self.replay(self.routes_app)
        return sock

    def bind(self) -> socket.socket:
        """This worker's private socket (a stale file of a crashed worker is replaced)."""
        path = self.socket_path(self.index)
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(64)
        return sock

    # ---- start-up -----------------------------------------------------------------------
    def mark_ready(self) -> None:
        """The primary has started (scripts initialized, listeners open)."""
        with open(os.path.join(self.folder, _READY), "w", encoding="ascii"):
            pass

    def wait_ready(self, timeout: float = 120) -> None:
        """A single process serves nothing before its scripts' ``Initialize`` has run;
        nor do the other workers before the primary has started."""
        deadline = time.monotonic() + timeout
        path = os.path.join(self.folder, _READY)
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)

    # ---- sending ----------------------------------------------------------------------
    def _send(
        self,
        index: int,
        method: str,
        uri: str,
        body: bytes,
        headers: dict,
        timeout: float | None = TIMEOUT,
    ) -> Response:
        transport = httpx.HTTPTransport(uds=self.socket_path(index))
        headers = {**headers, HOP_HEADER: "1"}
        with httpx.Client(transport=transport, timeout=timeout) as client:
            answer = client.request(method, "http://worker" + uri, content=body, headers=headers)
        kept = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    async def forward_to_primary(self, request: Request, body: bytes) -> Response:
        """The primary worker's answer to this request (however long it takes: a
        script may run up to ``LuaTimeLimit``, and the client waits as it would).

        The primary may not listen yet (it starts, or starts again, while this worker
        already serves): connecting is retried for ``TIMEOUT`` seconds.
        """
        uri, headers = _target(request)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                return await run_in_threadpool(
                    self._send, 0, request.method, uri, body, headers, None
                )
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def apply_everywhere(self, request: Request, body: bytes) -> Response:
        """Sends the request to every worker (this one too, in the same order as the
        others); answers this worker's answer."""
        uri, headers = _target(request)
        return await run_in_threadpool(self._broadcast, request.method, uri, body, headers)

    async def ask_everyone(self, request: Request) -> list[Response]:
        """Every reachable worker's answer to this request (a worker restarting just
        then is left out)."""
        uri, headers = _target(request)
        return await run_in_threadpool(self._ask_all, request.method, uri, headers)

    def _deliver(self, index: int, method: str, uri: str, body: bytes, headers: dict) -> Response:
        if index == self.index and self.routes_app is not None:
            return asyncio.run(_call(self.routes_app, method, uri, body, headers))
        return self._send(index, method, uri, body, headers)

    def _ask_all(self, method: str, uri: str, headers: dict) -> list[Response]:
        answers = []
        for index in range(self.count):
            try:
                answers.append(self._deliver(index, method, uri, b"", headers))
            except (httpx.TransportError, OSError) as exc:
                log.warning("HTTP worker %d did not answer %s %s: %s", index, method, uri, exc)
        return answers

    def _broadcast(self, method: str, uri: str, body: bytes, headers: dict) -> Response:
        with open(os.path.join(self.folder, _LOCK), "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            self._record(method, uri, body, headers)
            own: Response | None = None
            for index in range(self.count):
                try:
                    answer = self._deliver(index, method, uri, body, headers)
                except (httpx.TransportError, OSError) as exc:
                    # Restarting: it reads the recorded setting when it starts.
                    log.warning("HTTP worker %d did not take %s %s: %s", index, method, uri, exc)
                    continue
                if index == self.index:
                    own = answer
        if own is None:
            raise RuntimeError(f"this worker did not take {method} {uri}")
        return own

    # ---- settings recorded for the run ---------------------------------------------
    def _record(self, method: str, uri: str, body: bytes, headers: dict) -> None:
        """Keeps the newest request per URI (each is a whole setting), atomically."""
        recorded = {entry["uri"]: entry for entry in self.recorded()}
        recorded.pop(uri, None)  # re-inserted last: replayed in the order of the changes
        recorded[uri] = {
            "method": method,
            "uri": uri,
            "body": body.decode("latin-1"),
            "headers": headers,
        }
        path = os.path.join(self.folder, _SETTINGS)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(list(recorded.values()), file)
        os.replace(temporary, path)

    def recorded(self) -> list[dict[str, Any]]:
        try:
            with open(os.path.join(self.folder, _SETTINGS), encoding="utf-8") as file:
                return list(json.load(file))
        except (OSError, ValueError):
            return []

    def replay(self, app: ASGIApp) -> None:
        """Applies the settings recorded in this run (a worker starting again)."""
        for entry in self.recorded():
            answer = asyncio.run(
                _call(
                    app,
                    entry["method"],
                    entry["uri"],
                    entry["body"].encode("latin-1"),
                    entry["headers"],
                )
            )
            if answer.status_code >= 400:
                log.warning(
                    "Cannot apply %s %s again: %d",
                    entry["method"],
                    entry["uri"],
                    answer.status_code,
                )


def _target(request: Request) -> tuple[str, dict[str, str]]:
    uri = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = {}
    content_type = request.headers.get("content-type")
    if content_type:
        headers["content-type"] = content_type
    return uri, headers


def group_of(request: Request) -> WorkerGroup | None:
    """The worker group when this request must be sent on: ``None`` with one worker,
    or when the request already came from another worker."""
    if request.scope.get(FORWARDED_KEY) or HOP_HEADER in request.headers:
        return None
    return getattr(request.app.state, "workers", None)


async def _call(app: ASGIApp, method: str, uri: str, body: bytes, headers: dict) -> Response:
    """Runs one request through ``app`` in-process (marked as forwarded)."""
    path, _, query = uri.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": None,
        "server": None,
        FORWARDED_KEY: True,
    }
    status = 500
    kept: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for name, value in message.get("headers", ()):
                if name.lower() == b"content-type":
                    kept["content-type"] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    try:
        await app(scope, receive, send)
    except Exception:
        # Starlette re-raises after answering 500 (the error is already logged).
        status = max(status, 500)
    return Response(b"".join(chunks), status_code=status, headers=kept)


class PrivateChannel:
    """The ASGI app uvicorn serves: requests on this worker's private socket go to the
    routes directly (``routes_app``), all others through the full stack (``app``)."""

    def __init__(self, app: ASGIApp, routes_app: ASGIApp, private_path: str) -> None:
        self.app = app
        self.routes_app = routes_app
        self.private_path = private_path
        # The connections of the public listener may answer plain downloads, uploads
        # and quick reads at once (``rest/express.py``).
        self.express = getattr(app, "express", None)
        self.uploads = getattr(app, "uploads", None)
        self.reads = getattr(app, "reads", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] == "http" and server and server[0] == self.private_path:
            scope = dict(scope)
            scope[FORWARDED_KEY] = True
            await self.routes_app(scope, receive, send)
            return
        await self.app(scope, receive, send)


__all__ = ["FORWARDED_KEY", "PrivateChannel", "WorkerGroup", "group_of"]
