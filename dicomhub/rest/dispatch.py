"""Several HTTP workers: the supervisor accepts the connections and hands each one to
the worker that has the fewest open, as a file descriptor over a Unix socket.

Why not let the kernel spread them: with ``SO_REUSEPORT`` it hashes the peers'
addresses, and the few long-lived connections of a client's keep-alive pool often
land three to one on two workers (measured: one worker saturated its core while the
other idled at a third of its own); with one listening queue shared by the workers,
the first one awake accepts everything waiting. Here every connection goes where
the fewest are open, and a connection costs the supervisor one ``accept`` and one
``sendmsg``; its requests then flow between the client and the worker alone.

A worker registers on the supervisor's Unix socket once it serves (after its
start-up, the primary's scripts included), receives connections on it, and writes
one byte there for each connection that ends. The port is held by the supervisor
alone, so a second server on it fails to start as it would with one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dicomhub.rest.dispatch")

#: What a worker writes on its channel when one of its connections has ended.
_ENDED = b"-"

#: At most this many connections are taken from the queue per wake-up, so that the
#: workers' notices are read between bursts and the counts stay current.
_ACCEPT_BURST = 16


class ConnectionDispatcher:
    """The supervisor's side: accepts on the HTTP port, hands out connections."""

    def __init__(self, listener: socket.socket, registry_path: str) -> None:
        self._listener = listener
        self._listener.setblocking(False)
        self._registry = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._registry.bind(registry_path)
        os.chmod(registry_path, 0o600)
        self._registry.listen(64)
        self._selector = selectors.DefaultSelector()
        # Per registered worker channel: open connections, and when it last got one
        # (ties go to the worker that waited longest).
        self._open: dict[socket.socket, int] = {}
        self._last: dict[socket.socket, int] = {}
        self._handed = 0
        self._listening = False
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="http-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for channel in list(self._open):
            channel.close()
        self._registry.close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def forget(self) -> None:
        """In a worker just forked from the supervisor: close the inherited copies of
        the dispatcher's descriptors (its thread does not exist in the child)."""
        fds = [channel.detach() for channel in self._open]
        fds += [self._registry.detach(), self._wake_r, self._wake_w]
        self._open, self._last = {}, {}
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            self._selector.close()

    def _run(self) -> None:
        select = self._selector
        select.register(self._registry, selectors.EVENT_READ, self._register)
        select.register(self._wake_r, selectors.EVENT_READ, None)
        while not self._stopping:
            for key, _ in select.select():
                if key.data is not None:
                    try:
                        key.data(key.fileobj)
                    except Exception:  # one bad event must not stop the dispatching
                        log.exception("HTTP connection dispatch failed")
            self._listen(bool(self._open))

    def _listen(self, wanted: bool) -> None:
        """Connections wait in the kernel's queue while no worker serves."""
        if wanted and not self._listening:
            self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        elif not wanted and self._listening:
            self._selector.unregister(self._listener)
        self._listening = wanted

    def _register(self, registry: Any) -> None:
        channel, _ = registry.accept()
        self._open[channel] = 0
        self._last[channel] = -1
        self._selector.register(channel, selectors.EVENT_READ, self._notice)

    def _drop(self, channel: socket.socket) -> None:
        self._selector.unregister(channel)
        self._open.pop(channel, None)
        self._last.pop(channel, None)
        channel.close()

    def _notice(self, channel: Any) -> None:
        try:
            data = channel.recv(4096)
        except OSError:
            data = b""
        if not data:  # the worker has ended
            self._drop(channel)
            return
        self._open[channel] = max(0, self._open[channel] - data.count(_ENDED))

    def _accept(self, listener: Any) -> None:
        for _ in range(_ACCEPT_BURST):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. too many open files: try again later
                log.warning("Cannot accept an HTTP connection: %s", exc)
                return
            try:
                self._hand(conn)
            finally:
                conn.close()  # the worker holds its own descriptor now

    def _hand(self, conn: socket.socket) -> None:
        while self._open:
            channel = min(self._open, key=lambda c: (self._open[c], self._last[c]))
            try:
                socket.send_fds(channel, [b"c"], [conn.fileno()])
            except OSError:  # that worker has just ended: try another one
                self._drop(channel)
                continue
            self._open[channel] += 1
            self._handed += 1
            self._last[channel] = self._handed
            return
        # No worker left (all restarting): the client sees the connection close.


class HandedConnections:
    """A worker's side: serves the connections that the supervisor hands over."""

    def __init__(self, registry_path: str, make_protocol: Callable[[], asyncio.Protocol]) -> None:
        self._path = registry_path
        self._make_protocol = make_protocol
        self._channel: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        channel.connect(self._path)
        channel.setblocking(False)
        self._channel, self._loop = channel, loop
        loop.add_reader(channel.fileno(), self._receive)

    def stop(self) -> None:
        """No more connections (those open are drained by the server's shutdown)."""
        channel, self._channel = self._channel, None
        if channel is not None and self._loop is not None:
            self._loop.remove_reader(channel.fileno())
            channel.close()

    def _receive(self) -> None:
        channel, loop = self._channel, self._loop
        if channel is None or loop is None:
            return
        try:
            data, fds, _flags, _addr = socket.recv_fds(channel, 64, 64)
        except (BlockingIOError, InterruptedError):
            return
        if not data and not fds:  # the supervisor has gone (this worker ends with it)
            self.stop()
            return
        for fd in fds:
            loop.create_task(self._serve(loop, socket.socket(fileno=fd)))

    async def _serve(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        conn.setblocking(False)
        try:
            await loop.connect_accepted_socket(self._counted_protocol, conn)
        except OSError:  # the client left before we took over
            conn.close()
            self._ended()

    def _counted_protocol(self) -> asyncio.Protocol:
        protocol = self._make_protocol()
        served_until = protocol.connection_lost

        def connection_lost(exc: Exception | None) -> None:
            try:
                served_until(exc)
            finally:
                self._ended()

        protocol.connection_lost = connection_lost  # type: ignore[method-assign]
        return protocol

    def _ended(self) -> None:
        channel = self._channel
        if channel is not None:
            with contextlib.suppress(OSError):
                channel.send(_ENDED)


def uvicorn_server(config: Any, registry_path: str | None) -> Any:
    """A uvicorn server that, as one of several workers, also serves the connections
    handed over on ``registry_path`` (registering there once it has started)."""
    import uvicorn

    class _Server(uvicorn.Server):
        handed: HandedConnections | None = None

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if registry_path is None or not self.started or self.should_exit:
                return

            def make_protocol() -> asyncio.Protocol:
                return self.config.http_protocol_class(  # type: ignore[no-any-return]
                    config=self.config,
                    server_state=self.server_state,
                    app_state=self.lifespan.state,
                )

            self.handed = HandedConnections(registry_path, make_protocol)
            self.handed.start(asyncio.get_running_loop())

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            if self.handed is not None:
                self.handed.stop()
            await super().shutdown(sockets=sockets)

    return _Server(config)
