"""Building and running the server from a configuration.

The HTTP listener runs on uvicorn (uvloop + httptools); ``core`` is synchronous and
is reached from handlers through Starlette's thread pool.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Mapping
from typing import Any

from .core.archive import Archive
from .core.settings import Settings
from .core.stability import StabilityMonitor

log = logging.getLogger("dicomhub.server")

EXIT_PORT_IN_USE = 2
EXIT_STARTUP_FAILURE = 1


def build(config: Mapping[str, Any]) -> tuple[Archive, Any]:
    from .rest.app import create_app

    archive = Archive(Settings.from_config(config))
    return archive, create_app(archive, config)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(config: Mapping[str, Any], no_jobs: bool = False) -> int:
    import uvicorn

    values = config
    port = int(values.get("HttpPort", 8042) or 8042)
    remote = bool(values.get("RemoteAccessAllowed", False))
    host = str(values.get("HttpBindAddress") or ("0.0.0.0" if remote else "127.0.0.1"))
    try:
        sock = _bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.error("The TCP port of the HTTP server is already in use: %s:%d", host, port)
            return EXIT_PORT_IN_USE
        log.error("Cannot open the HTTP port %s:%d: %s", host, port, exc)
        return EXIT_STARTUP_FAILURE

    try:
        archive, app = build(values)
    except Exception as exc:
        log.error("Cannot start the server: %s", exc)
        sock.close()
        return EXIT_STARTUP_FAILURE
    monitor = StabilityMonitor(archive)
    monitor.start()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_config=None,
            timeout_keep_alive=int(values.get("KeepAliveTimeout", 5) or 5),
            limit_concurrency=None,
        )
    )
    log.info("dicomhub HTTP server listening on %s:%d", host, port)
    try:
        server.run(sockets=[sock])
    finally:
        monitor.stop()
        archive.close()
        sock.close()
        log.info("dicomhub has stopped")
    return 0
