"""The HTTP connection: uvicorn's httptools protocol, with three savings per request.

* **Headers and body leave together.** uvicorn writes a response's status line and
  headers as soon as the application starts the response, then its body: two system
  calls, two loopback packets, and the client woken twice. Here the header block is
  held until the body (or the end of the response) follows, and both go in one
  ``writev``.
* **Stored files go from the page cache to the socket** (``sendfile``), never copied
  through Python: the ASGI *zero copy send* extension
  (``http.response.zerocopysend``), which the application uses for the files it
  serves whole (``rest/responses.py``). A download of a CT file cost as much kernel
  time copying it in and out of the process as Orthanc spent on the whole request.
* **A request's body is not copied on its way in.** uvicorn gathers the body's pieces
  into a ``bytearray`` and hands the application a ``bytes`` copy of it, stopping to
  read at 64 KiB until the application asks: a CT upload was copied three times
  (with the application's join of the pieces). Here the pieces are kept as they came
  and joined once when the application asks, and reading goes on up to 1 MiB.

When the socket takes less than the whole file at once (a slow client), the rest
follows as the socket drains, the event loop watching a duplicate of the socket's
descriptor: a large file never sits in memory, and the loop never waits on a client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

if TYPE_CHECKING:  # the application hands its lanes over (``rest/express.py``)
    from .express import ExpressAnswer, ExpressDownloads, ExpressReads, ExpressUploads

log = logging.getLogger("dicomhub.http")

T = TypeVar("T")

#: The ASGI extension this server offers in each HTTP scope.
ZERO_COPY_SEND = "http.response.zerocopysend"


def offers_zero_copy(scope: Scope) -> bool:
    """Whether the server of this request sends files from their descriptors."""
    return ZERO_COPY_SEND in scope.get("extensions", ())


#: Scope key: true when this request's connection is the only one open in this
#: process, so that nothing else waits on the event loop while it is served.
SOLE_CONNECTION = "dicomhub.sole_connection"

#: Body bytes received and not yet asked for, beyond which reading pauses.
BODY_BUFFER_LIMIT = 1 << 20


class _HeldHeaders:
    """Stands for the transport in one request/response cycle, and keeps back the
    header block that uvicorn writes on ``http.response.start`` until more follows."""

    __slots__ = ("transport", "holding", "held")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.holding = False
        self.held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self.holding:
            self.held = data
            return
        held = self.held
        if held is None:
            self.transport.write(data)
        else:
            self.held = None
            if data:
                self.transport.writelines((held, data))
            else:
                self.transport.write(held)

    def flush(self) -> None:
        if self.held is not None:
            self.write(b"")

    def take(self) -> bytes:
        held, self.held = self.held or b"", None
        return held

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol (``http="httptools"``) with the savings above."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A duplicate of the connection's socket, made on the first file sent: the
        # header block goes out with MSG_MORE so that it shares the file's first packet.
        self._raw_socket: socket.socket | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._can_send_files = transport.get_extra_info("socket") is not None
        # The express lane (``rest/express.py``), for TCP clients (not the workers'
        # private sockets, whose requests skip the access layer).
        express = getattr(self.app, "express", None)
        uploads = getattr(self.app, "uploads", None)
        reads = getattr(self.app, "reads", None)
        tcp = self._can_send_files and self.client is not None
        self._express: ExpressDownloads | None = express if tcp else None
        self._uploads: ExpressUploads | None = uploads if tcp else None
        self._reads: ExpressReads | None = reads if tcp else None
        self._completing = False  # in ``on_response_complete``
        self._completions = 0  # calls of it to make once the current one returns

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        if cycle is not None and getattr(cycle, "express_upload", False):
            cycle.express_upload = False  # type: ignore[attr-defined]
            self._uploads.abandoned(cycle.scope)  # type: ignore[union-attr]
        super().connection_lost(exc)
        self._stop_waiting()
        if self._raw_socket is not None:
            self._raw_socket.close()
            self._raw_socket = None

    def on_message_begin(self) -> None:
        # The keep-alive timer a response armed may still run when the next request
        # came in the same packet (an express answer completes while parsing).
        self._unset_keepalive_if_required()
        super().on_message_begin()
        scope = self.scope
        if self._can_send_files:
            scope["extensions"] = {ZERO_COPY_SEND: {}}
        scope[SOLE_CONNECTION] = len(self.connections) == 1

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # None or unchanged: an upgrade; started: the express lane answered it
        if cycle is not None and cycle is not previous and not cycle.response_started:
            self._adopt(cycle)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if (
            self._express is not None
            and app is self.app
            and cycle.keep_alive
            and not self.transport.get_write_buffer_size()  # nothing of an earlier answer
        ):
            method = cycle.scope["method"]
            if method == "GET":
                answer = _decided(self._express.answer, cycle.scope)
                if answer is not None:
                    self._send_express(cycle, answer)
                    return
                read = self._reads and _decided(self._reads.answer, cycle.scope)
                if read:
                    self._answer_whole(cycle, *read)
                    return
            elif (
                method == "POST" and self._uploads and _decided(self._uploads.accepts, cycle.scope)
            ):
                cycle.express_upload = True  # type: ignore[attr-defined]
                if cycle.waiting_for_100_continue:  # as ``receive`` does, asked for the body
                    cycle.waiting_for_100_continue = False
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                if not cycle.more_body:  # a pipelined request, already read whole
                    self._answer_upload(cycle)
                return
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        if getattr(cycle, "express_upload", False) and not cycle.response_complete:
            self._answer_upload(cycle)

    def on_response_complete(self) -> None:
        """uvicorn's, as a loop: an express answer completes within the call that
        starts the next pipelined request, so that call is made here again once the
        current one returns, instead of one level deeper per request (a long pipeline
        ran out of stack)."""
        if self._completing:
            self._completions += 1
            return
        self._completing = True
        try:
            super().on_response_complete()
            while self._completions:
                self._completions -= 1
                super().on_response_complete()
        finally:
            self._completing = False

    def _answer_upload(self, cycle: RequestResponseCycle) -> None:
        """Store an upload of the express lane, its body read whole, and answer it; a
        ZIP archive goes the usual way (the application reads the body kept here)."""
        cycle.express_upload = False  # type: ignore[attr-defined]
        pieces: list[bytes] = cycle.pieces  # type: ignore[attr-defined]
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        answer = self._uploads.answer(cycle.scope, body)  # type: ignore[union-attr]
        if answer is None:
            super()._start_asgi_task(cycle, self.app)
            return
        pieces.clear()
        cycle.pending_bytes = 0  # type: ignore[attr-defined]
        self._answer_whole(cycle, *answer)

    def _answer_whole(
        self,
        cycle: RequestResponseCycle,
        status: int,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
    ) -> None:
        """Write a lane's whole answer, as uvicorn would write it, and complete it."""
        parts = [STATUS_LINE[status]]
        for name, value in (*cycle.default_headers, *headers):
            parts += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:  # the server is stopping (``shutdown``), as uvicorn says
            parts.append(b"connection: close\r\n")
        parts += (b"\r\n", content)
        cycle.response_started = cycle.response_complete = True
        cycle.message_event.set()
        self.transport.write(b"".join(parts))
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()

    def _send_express(self, cycle: RequestResponseCycle, answer: ExpressAnswer) -> None:
        """Send the express lane's answer: the header block as uvicorn writes it, then
        the file; what the socket does not take at once follows in a task."""
        cycle.response_started = True
        parts = [STATUS_LINE[200]]
        for name, value in cycle.default_headers:
            parts += (name, b": ", value, b"\r\n")
        parts += (answer.headers, b"\r\n")
        fd = answer.fd
        try:
            sent = self._send_now(b"".join(parts), fd, 0, answer.size)
            if sent is None:  # the header block went in part: the file follows it
                self.transport.write(os.pread(fd, answer.size, 0))
                sent = answer.size
        except OSError:
            sent = -1
        if 0 <= sent < answer.size:
            task = self.loop.create_task(self._finish_express(cycle, answer, sent))
            task.add_done_callback(self.tasks.discard)
            self.tasks.add(task)
            return
        self._express_done(cycle, answer, sent == answer.size)

    async def _finish_express(
        self, cycle: RequestResponseCycle, answer: ExpressAnswer, sent: int
    ) -> None:
        complete = False
        try:
            sent = await self._send_rest(answer.fd, 0, answer.size, sent)
            complete = sent == answer.size
        except OSError:
            pass
        finally:  # cancelled too (the server stops)
            self._express_done(cycle, answer, complete)

    def _express_done(
        self, cycle: RequestResponseCycle, answer: ExpressAnswer, complete: bool
    ) -> None:
        self._express.finished(answer)  # type: ignore[union-attr]
        cycle.response_complete = True
        cycle.message_event.set()
        if not complete:  # the client went away, or the file is shorter than announced
            cycle.disconnected = True
            self.transport.close()
        elif not cycle.keep_alive:  # the server is shutting down (``shutdown``)
            self.transport.close()
        cycle.on_response()

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        pieces: list[bytes] | None = getattr(cycle, "pieces", None)
        if pieces is None:  # a cycle this class did not adopt
            super().on_body(body)
            return
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        pieces.append(body)
        cycle.pending_bytes += len(body)  # type: ignore[attr-defined]
        if cycle.pending_bytes > BODY_BUFFER_LIMIT:  # type: ignore[attr-defined]
            self.flow.pause_reading()
        cycle.message_event.set()

    def _adopt(self, cycle: RequestResponseCycle) -> None:
        held = _HeldHeaders(cycle.transport)
        cycle.transport = held  # type: ignore[assignment]
        send_message = cycle.send
        pieces: list[bytes] = []
        cycle.pieces = pieces  # type: ignore[attr-defined]
        cycle.pending_bytes = 0  # type: ignore[attr-defined]
        flow = self.flow

        async def receive() -> Any:
            # uvicorn's ``receive``, with the pieces joined once (or not at all).
            if cycle.waiting_for_100_continue and not held.is_closing():
                held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                cycle.waiting_for_100_continue = False
            if not cycle.disconnected and not cycle.response_complete:
                flow.resume_reading()
                await cycle.message_event.wait()
                cycle.message_event.clear()
            if cycle.disconnected or cycle.response_complete:
                return {"type": "http.disconnect"}
            body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            pieces.clear()
            cycle.pending_bytes = 0  # type: ignore[attr-defined]
            return {"type": "http.request", "body": body, "more_body": cycle.more_body}

        cycle.receive = receive  # type: ignore[method-assign]

        async def send(message: Any) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                held.holding = True
                try:
                    await send_message(message)
                finally:
                    held.holding = False
            elif kind == ZERO_COPY_SEND and self._can_send_files:
                await self._send_file(cycle, held, send_message, message)
            else:
                await send_message(message)
                held.flush()

        cycle.send = send  # type: ignore[method-assign]

        completed = cycle.on_response

        def on_response() -> None:
            # What this answer still holds (a HEAD's header block) leaves before the
            # next pipelined request starts, which the express lane may answer at once.
            held.flush()
            completed()

        cycle.on_response = on_response

    async def _send_file(
        self, cycle: RequestResponseCycle, held: _HeldHeaders, send_message: Any, message: Any
    ) -> None:
        fd = message["file"].fileno()
        offset = message.get("offset")
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        count = message.get("count")
        if count is None:
            count = os.fstat(fd).st_size - offset
        more_body = bool(message.get("more_body", False))
        sent = 0
        if (
            cycle.response_started
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.chunked_encoding
            and cycle.scope["method"] != "HEAD"
            and 0 < count <= cycle.expected_content_length
            and held.transport.get_write_buffer_size() == 0
        ):
            try:
                sent = await self._sendfile(held.take(), fd, offset, count)
            except OSError:  # the client went away: as uvicorn does, the send is dropped
                cycle.disconnected = True
                self.transport.close()
                return
            cycle.expected_content_length -= sent
        rest = b""
        if sent < count and cycle.scope["method"] != "HEAD":
            rest = os.pread(fd, count - sent, offset + sent)
        await send_message({"type": "http.response.body", "body": rest, "more_body": more_body})
        held.flush()

    async def _sendfile(self, head: bytes, fd: int, offset: int, count: int) -> int:
        """Send ``head``, then the file's bytes as the socket takes them; answers how
        many of the file's bytes went (fewer than ``count`` if the file is shorter, or
        none if the socket refused part of ``head``, which then goes the usual way)."""
        sent = self._send_now(head, fd, offset, count)
        if sent is None:
            return 0
        return await self._send_rest(fd, offset, count, sent)

    def _send_now(self, head: bytes, fd: int, offset: int, count: int) -> int | None:
        """Send ``head`` (with ``MSG_MORE``: it shares the file's first packet), then
        as much of the file as the socket takes now; answers how many of the file's
        bytes went, or None when part of ``head`` was left to the transport."""
        raw = self._raw_socket
        if raw is None:
            own = self.transport.get_extra_info("socket").fileno()
            raw = self._raw_socket = socket.socket(fileno=os.dup(own))
        if head:
            try:
                written = raw.send(head, socket.MSG_MORE)
            except BlockingIOError:
                written = 0
            if written < len(head):
                self.transport.write(head[written:])
                return None
        out = raw.fileno()
        sent = 0
        while sent < count:
            try:
                n = os.sendfile(out, fd, offset + sent, count - sent)
            except BlockingIOError:
                break
            if n == 0:  # the file is shorter than announced
                break
            sent += n
        return sent

    async def _send_rest(self, fd: int, offset: int, count: int, sent: int) -> int:
        """The rest of the file once the socket takes more (a slow client)."""
        out = self._raw_socket.fileno()  # type: ignore[union-attr]
        while sent < count:
            await self._writable(out)
            try:
                n = os.sendfile(out, fd, offset + sent, count - sent)
            except BlockingIOError:
                continue
            if n == 0:
                break
            sent += n
        return sent

    async def _writable(self, fd: int) -> None:
        """Wait until the socket takes more (a slow client): the event loop watches the
        duplicate descriptor, which the transport does not use."""
        waiter = self._waiter = self.loop.create_future()
        self.loop.add_writer(fd, _resolve, waiter)
        try:
            await waiter
        finally:
            self._stop_waiting()

    def _stop_waiting(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self.loop.remove_writer(self._raw_socket.fileno())  # type: ignore[union-attr]
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("the connection was closed"))


def _decided(decide: Callable[[Scope], T], scope: Scope) -> T | None:
    """An express lane's decision on a request; an unexpected error in it leaves the
    request to the usual way, which answers it as any other: raised in the parser's
    callback, it would become uvicorn's 400 and a closed connection."""
    try:
        return decide(scope)
    except Exception:  # noqa: BLE001 - logged, and answered by the application
        log.exception("express lane: %s %s left to the application", scope["method"], scope["path"])
        return None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


__all__ = ["ZERO_COPY_SEND", "HttpProtocol"]
