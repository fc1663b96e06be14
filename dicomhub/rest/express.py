"""The express lane: a plain file download answered by the HTTP connection itself.

``GET /instances/{id}/file`` without arguments is what a viewer or a migration asks
most, and its own work is small (one indexed query, ``open``, the headers,
``sendfile``). Through the ASGI application it also paid an event-loop task, the
access, metrics and routing layers, each an ``await`` and a wrapped ``send``: more
Python than the download itself. The connection (``http_protocol.HttpProtocol``)
asks ``ExpressDownloads.answer`` first, synchronously, and sends what it gets from
the file's descriptor; anything the lane does not take goes the usual way, which
answers it as before.

The lane takes a request only where the layers it skips would let it through
untouched: the same remote-access and authentication rules (``AccessPolicy``), no
Lua ``IncomingHttpRequestFilter``, no request logging (``--verbose``), a clean path,
no body; and it feeds the same request metrics.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from starlette.types import Scope

from ..core.archive import Archive
from ..core.hooks import INCOMING_HTTP_REQUEST, Hooks
from ..core.metrics import HttpMetrics
from .instances import plain_download_id, stored_file_response
from .paths import needs_normalizing
from .security import AccessPolicy


@dataclass
class ExpressAnswer:
    """A stored file to send whole, with its response headers (uvicorn's defaults
    apart), and when its answer started (for the metrics)."""

    file: BinaryIO
    size: int
    headers: list[tuple[bytes, bytes]]
    started: float = field(default_factory=time.perf_counter)


class ExpressDownloads:
    """Answers plain file downloads for the connection, or leaves them (None)."""

    def __init__(
        self,
        archive: Archive,
        policy: AccessPolicy,
        hooks: Hooks | None,
        metrics: HttpMetrics,
        request_log: logging.Logger,
    ) -> None:
        self.archive = archive
        self.policy = policy
        self.hooks = hooks
        self.metrics = metrics
        self.request_log = request_log

    def answer(self, scope: Scope) -> ExpressAnswer | None:
        """The file to send for this request, or None for the usual way."""
        if needs_normalizing(scope["path"]):
            return None
        public_id = plain_download_id(scope)
        if public_id is None or not self._admitted(scope):
            return None
        response = stored_file_response(self.archive, public_id)
        if response is None:
            return None
        self.metrics.started()
        return ExpressAnswer(response.file, response.size, response.raw_headers)

    def finished(self, answer: ExpressAnswer) -> None:
        """The answer went (or the client left): close the file, count the request."""
        answer.file.close()
        self.metrics.finished("GET", 200, time.perf_counter() - answer.started)

    def _admitted(self, scope: Scope) -> bool:
        """Whether the access layer would pass this request on untouched."""
        if self.request_log.isEnabledFor(logging.INFO):
            return False
        if self.hooks is not None and self.hooks.active(INCOMING_HTTP_REQUEST):
            return False
        client = scope.get("client")
        if not self.policy.is_client_allowed(client[0] if client else None):
            return False
        authorization: Any = None
        for name, value in scope["headers"]:
            if name in (b"content-length", b"transfer-encoding") and value not in (b"0",):
                return False  # a GET with a body: the usual way reads it
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
        return not self.policy.authentication_enabled or (
            self.policy.authenticate(authorization) is not None
        )
