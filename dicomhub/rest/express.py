"""The express lanes: a plain file download, a plain upload of one small DICOM file,
or a quick read, answered by the HTTP connection itself.

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

The upload lane (``ExpressUploads``) does the same for ``POST /instances`` with one
small DICOM file in the body, where the usual way would store it on the event loop
anyway (``instances.PostInstances``): the connection gathers the body, stores it and
writes the answer (or Orthanc's error) in one piece. A ZIP archive found in the body
goes the usual way, with the body already read.

The read lane (``ExpressReads``) answers the GET requests of the routes whose handler
runs on the event loop anyway (``common.inline``: ``/system``, ``/{level}/{id}``,
``/tags``, the lists ...), found and run as the application would
(``app.InlineRoutes``), and writes their answer in one piece.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import Scope

from ..core.archive import Archive
from ..core.hooks import INCOMING_HTTP_REQUEST, Hooks
from ..core.ingest import store
from ..core.metrics import HttpMetrics
from ..core.uploads import is_zip
from .app import CLIENT_LEFT, InlineRoutes, describe_error
from .http_protocol import BODY_BUFFER_LIMIT
from .instances import (
    json_answer,
    may_store_on_loop,
    plain_download_id,
    scope_origin,
    stored_file_descriptor,
)
from .paths import needs_normalizing
from .security import AccessPolicy


@dataclass
class ExpressAnswer:
    """A stored file to send whole (its open descriptor and size), the header lines
    of its response (uvicorn's defaults apart), and when its answer started (for the
    metrics)."""

    fd: int
    size: int
    headers: bytes
    started: float = field(default_factory=time.perf_counter)


class _Lane:
    """What a lane needs to answer as the application would: the archive, its access
    rules and filters, its metrics and its request log."""

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


class ExpressDownloads(_Lane):
    """Answers plain file downloads for the connection, or leaves them (None)."""

    def answer(self, scope: Scope) -> ExpressAnswer | None:
        """The file to send for this request, or None for the usual way."""
        if needs_normalizing(scope["path"]):
            return None
        public_id = plain_download_id(scope)
        if public_id is None or _admitted_user(self, scope, with_body=False) is None:
            return None
        stored = stored_file_descriptor(self.archive, public_id)
        if stored is None:
            return None
        self.metrics.started()
        return ExpressAnswer(*stored)

    def finished(self, answer: ExpressAnswer) -> None:
        """The answer went (or the client left): close the file, count the request."""
        os.close(answer.fd)
        self.metrics.finished("GET", 200, time.perf_counter() - answer.started)


class ExpressUploads(_Lane):
    """Stores plain uploads of one small DICOM file for the connection.

    ``accepts`` decides on the request line and headers; the connection then gathers
    the body and asks ``answer`` for the whole response. The lane takes an upload only
    where ``instances.PostInstances`` would store it on the event loop (the
    connection is the only one of its process, storing is quick), with a body the
    connection keeps whole without pausing its reads.
    """

    def __init__(self, config: Mapping[str, Any], *args: Any) -> None:
        super().__init__(*args)
        self.config = config

    def accepts(self, scope: Scope) -> bool:
        """Whether the lane takes this upload; from then on it counts as in flight
        (its body still coming), as it does in the application's metrics layer."""
        if scope["path"] != "/instances" or scope["query_string"]:
            return False
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if length is not None or not value.isdigit():
                    return False
                length = int(value)
            elif (
                name in _UPLOAD_DECLINED
                or (name == b"content-type" and value.startswith(b"multipart/"))
                or (name == b"expect" and value.lower() != b"100-continue")
            ):
                return False
        if length is None or not 0 < length <= BODY_BUFFER_LIMIT:
            return False
        user = _admitted_user(self, scope, with_body=True)
        if user is None or not may_store_on_loop(scope, self.archive, length):
            return False
        scope["dicomhub.user"] = user
        scope[_STARTED] = time.perf_counter()
        self.metrics.started()
        return True

    def answer(
        self, scope: Scope, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Store the upload: the status, headers and body of the answer; None for a
        ZIP archive, which the usual way stores in a thread (and counts)."""
        if is_zip(body[:4]):
            self.metrics.withdrawn()
            return None
        try:
            stored = store(self.archive, body, scope_origin(scope))
            headers, content = json_answer(stored.to_json())
            status = 200
        except Exception as exc:  # noqa: BLE001 - answered as the application does
            response = describe_error(exc, "POST", "/instances", self.config, [])
            status, headers, content = response.status_code, response.raw_headers, response.body
        self.metrics.finished("POST", status, time.perf_counter() - scope[_STARTED])
        return status, headers, content

    def abandoned(self, scope: Scope) -> None:
        """The client left before the end of the body: counted as the application
        counts it (``describe_error``)."""
        self.metrics.finished("POST", CLIENT_LEFT, time.perf_counter() - scope[_STARTED])


class ExpressReads(_Lane):
    """Answers GET requests of the routes that run on the event loop (``@inline``:
    ``/system``, ``/{level}/{id}``, ``/tags`` ...) for the connection.

    ``app.InlineRoutes`` finds the route and runs its handler as the application
    would; the connection writes the answer at once, without the request's task and
    the ASGI layers around the handler (access, metrics), whose work the lane does
    itself. An answer that is not a whole body (a stream) goes the usual way.
    """

    def __init__(self, inline: InlineRoutes, *args: Any) -> None:
        super().__init__(*args)
        self.inline = inline

    def answer(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The status, headers and body of the answer; None for the usual way."""
        if needs_normalizing(scope["path"]):
            return None
        user = _admitted_user(self, scope, with_body=False)
        if user is None:
            return None
        if self.policy.authentication_enabled:
            scope["dicomhub.user"] = user
        started = time.perf_counter()
        self.metrics.started()  # in flight while its handler runs, as the usual way
        try:
            response = self.inline.answer(scope)
        except BaseException:  # left to the usual way (``_decided``), which counts it
            self.metrics.withdrawn()
            raise
        if response is None or not _whole(response):
            self.metrics.withdrawn()
            return None
        status = response.status_code
        self.metrics.finished("GET", status, time.perf_counter() - started)
        return status, response.raw_headers, response.body


def _whole(response: Response) -> bool:
    """Whether ``response`` is a body known in full, sent as Starlette would send it."""
    return (
        type(response).__call__ is Response.__call__
        and response.background is None
        and isinstance(response.body, bytes)
        and (
            response.status_code in (204, 304)
            or any(name == b"content-length" for name, _ in response.raw_headers)
        )
    )


#: Scope key: when the upload lane took the request.
_STARTED = "dicomhub.express_started"

#: Headers that send an upload the usual way: a body in chunks or encoded.
_UPLOAD_DECLINED = frozenset((b"transfer-encoding", b"content-encoding"))


def _admitted_user(lane: _Lane, scope: Scope, with_body: bool) -> str | None:
    """Whether the access layer would pass this request on untouched: the
    authenticated user ("" without authentication), or None if not."""
    if lane.request_log.isEnabledFor(logging.INFO):
        return None
    if lane.hooks is not None and lane.hooks.active(INCOMING_HTTP_REQUEST):
        return None
    client = scope.get("client")
    if not lane.policy.is_client_allowed(client[0] if client else None):
        return None
    authorization: Any = None
    for name, value in scope["headers"]:
        if not with_body and name in (b"content-length", b"transfer-encoding") and value != b"0":
            return None  # a GET with a body: the usual way reads it
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    if not lane.policy.authentication_enabled:
        return ""
    return lane.policy.authenticate(authorization)
