"""Calling our own ASGI application in-process, from any thread.

Lua's ``RestApiGet`` and friends must reach the same routes as HTTP clients without a
socket (Orthanc calls its REST handlers directly). Lua runs in plain threads, so the
calls are handed to one private event loop owned by this module's caller; using the
server's own loop from a thread it might be waiting on would risk a deadlock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message

from ..rest.paths import normalize_path

#: Scope key marking a request made by a Lua script (so that scripting routes can
#: refuse to re-enter the Lua state they are called from).
LUA_SCOPE_KEY = "dicomhub.lua"


class AsgiCaller:
    """Runs ASGI requests on a dedicated event loop thread."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dicomhub-lua-rest", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def request(
        self,
        method: str,
        uri: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float | None = 600,
    ) -> tuple[int, bytes]:
        """Answers ``(status, body)``; blocks the calling thread, never the loop."""
        future = asyncio.run_coroutine_threadsafe(
            self._call(method, uri, body, headers or {}), self._loop
        )
        return future.result(timeout)

    async def _call(
        self, method: str, uri: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        # Not urlsplit: a path starting with "//" would be read as a host name.
        path, _, query = (uri if uri.startswith("/") else "/" + uri).partition("?")
        path = normalize_path(path.partition("#")[0])  # as the HTTP face reads it
        raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": query.partition("#")[0].encode("latin-1"),
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            LUA_SCOPE_KEY: True,
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            return {"type": "http.disconnect"}

        status = 500
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        try:
            await self.app(scope, receive, send)
        except Exception:
            # Starlette re-raises after answering 500 (the error is already logged).
            return 500, b"".join(chunks)
        return status, b"".join(chunks)
