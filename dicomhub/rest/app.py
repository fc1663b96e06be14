"""The HTTP face: routing, access control and the one place errors become answers.

Every ``DicomhubError`` raised below is turned into Orthanc's error body and
status here; anything else is an internal error (500) with the same body shape,
logged with its traceback.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.archive import Archive
from ..core.errors import DicomhubError
from ..core.hooks import Hooks, hooks_of
from .http_filter import passes_http_filter
from .paths import needs_normalizing, normalize_path
from .responses import json_response
from .route_index import RouteIndex
from .security import AccessPolicy

log = logging.getLogger("dicomhub.http")


def error_body(
    status: int, method: str, uri: str, message: str, code: int | None, details: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "HttpError": HTTPStatus(status).phrase,
        "HttpStatus": status,
        "Message": message,
        "Method": method,
        "Uri": uri,
    }
    if code is not None:
        body["OrthancError"] = message
        body["OrthancStatus"] = code
    if details and details != message:
        body["Details"] = details
    return body


def error_response(request: Request, exc: Exception) -> Response:
    config = getattr(request.app.state, "config", None) or {}
    return describe_error(exc, request.method, request.url.path, config, request.app.router.routes)


#: The status counted for a request whose client left before the end of its body.
CLIENT_LEFT = 400


def describe_error(
    exc: Exception, method: str, path: str, config: Mapping[str, Any], routes: list[Any]
) -> Response:
    """Orthanc's answer to an error of a request (``routes``: the application's, for
    the ``Allow`` header of a 405)."""
    if isinstance(exc, DicomhubError):
        status, message, code, details = exc.http_status, exc.name, exc.code, exc.details
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        if status == 404:
            message, code, details = "Unknown resource", 17, None
        elif status == 405:
            message, code, details = "Method not allowed", None, None
        elif status == 400:  # e.g. a multipart body Starlette cannot read
            message, code, details = "Bad request", 8, str(exc.detail)
        else:
            message, code, details = str(exc.detail), None, None
    elif isinstance(exc, ClientDisconnect):
        # The client left before the end of its body: nobody reads this answer, and
        # it is the client's doing, not the server's (the metrics count a 4xx).
        log.info("%s %s: the client left before the end of its request", method, path)
        status, message, code, details = CLIENT_LEFT, "Bad request", 8, None
    else:
        log.exception("internal error on %s %s", method, path)
        status, message, code, details = 500, "Internal error", -1, str(exc) or None
    if config.get("HttpDescribeErrors", True) is False:
        response: Response = Response(b"", status)  # as Orthanc: the status alone
    else:
        response = json_response(error_body(status, method, path, message, code, details), status)
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)
    if status == 405:
        response.headers["allow"] = allowed_methods(routes, path)
    return response


#: The methods an Orthanc ``Allow`` header lists, in its order.
_ALLOW_ORDER = ("GET", "POST", "PUT", "DELETE")


def allowed_methods(routes: list[Any], path: str) -> str:
    """The ``Allow`` header of a 405 on ``path``: the methods of every route of that
    path (each method is a route of its own here, and Starlette names only those of
    the first), listed as Orthanc does."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return ",".join(m for m in _ALLOW_ORDER if m in methods)


#: The methods Orthanc's REST API answers.
_ORTHANC_METHODS = frozenset(("GET", "POST", "PUT", "DELETE"))

#: The WebDAV methods Orthanc reads before its routes, with the method its HTTP filter
#: sees for each; outside a WebDAV share (dicomhub has none) they answer a bare 404.
_WEBDAV_METHODS = {
    "HEAD": "GET",
    "OPTIONS": "GET",
    "PROPFIND": "GET",
    "PROPPATCH": "PUT",
    "LOCK": "PUT",
    "UNLOCK": "PUT",
    "MKCOL": "PUT",
}


def _serves_head(path: str) -> bool:
    """Whether ``HEAD`` answers as ``GET`` without its body: only on the web
    explorer's static files (dicomhub's own, documented in docs/compatibility.md)."""
    return path.startswith("/app/")


class AccessMiddleware:
    """Normalizes the path, then enforces remote access and authentication."""

    #: The lanes the connection may answer plain downloads, uploads and quick reads
    #: with (``rest/express.py``).
    express: Any = None
    uploads: Any = None
    reads: Any = None

    def __init__(self, app: ASGIApp, policy: AccessPolicy, hooks: Hooks | None = None) -> None:
        self.app = app
        self.policy = policy
        self.hooks = hooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if needs_normalizing(path):
            scope = dict(scope)
            scope["path"] = normalize_path(path)
            scope["raw_path"] = normalize_path(scope["raw_path"].decode("latin-1")).encode(
                "latin-1"
            )
        client = scope.get("client")
        if not self.policy.is_client_allowed(client[0] if client else None):
            await _plain(send, 403, b"Remote access is not allowed")
            return
        if self.policy.authentication_enabled:
            auth = None
            for name, value in scope.get("headers", ()):
                if name == b"authorization":
                    auth = value.decode("latin-1")
                    break
            user = self.policy.authenticate(auth)
            if user is None:
                await _plain(
                    send,
                    401,
                    b"",
                    [(b"www-authenticate", b'Basic realm="dicomhub"')],
                )
                return
            scope = dict(scope)
            scope["dicomhub.user"] = user
        method = scope["method"]
        if method not in _ORTHANC_METHODS:
            # As Orthanc: a WebDAV method passes the filter as the GET or PUT it reads or
            # writes like, then finds no WebDAV share at this path (a bare 404; HEAD too,
            # except on the explorer's own files); any other method is a bare 400.
            as_method = _WEBDAV_METHODS.get(method)
            if as_method is None:
                await _plain(send, 400, b"")
                return
            if not await passes_http_filter(self.hooks, scope, send, as_method):
                return
            if not (method == "HEAD" and _serves_head(scope["path"])):
                await _plain(send, 404, b"")
                return
        elif not await passes_http_filter(self.hooks, scope, send):
            return
        if log.isEnabledFor(logging.INFO):  # --verbose: each request, as Orthanc logs it
            log.info("%s %s", scope["method"], scope["path"])
        await self.app(scope, receive, send)


async def _unused(*_args: Any) -> Any:
    raise RuntimeError("an inline handler has no body to read or messages to send")


class InlineRoutes:
    """GET routes whose handler runs on the event loop (``common.inline``), called
    without Starlette's layers.

    Between the server and such a handler, Starlette stacks its application, its two
    exception layers, the router, the route and the endpoint's wrapper, each an
    ``await``, and every message of the answer passes three wrapped ``send``: more
    Python than ``/system`` or ``GET /studies/{id}`` themselves. Here the route is
    found as the router finds it (``RouteIndex.full_match``: the first full match, in
    order), the scope gets what the router would give it, and an error is answered by
    the application's handler (``error_response``); any other request goes the usual
    way.
    """

    def __init__(self, app: ASGIApp, starlette: Starlette, index: RouteIndex) -> None:
        self.app = app
        self.starlette = starlette
        self.index = index

    def answer(
        self, scope: Scope, receive: Receive = _unused, send: Send = _unused
    ) -> Response | None:
        """The answer of the inline route this GET request goes to (its handler's, or
        the application's error answer), or None if no inline route takes it."""
        if scope["method"] != "GET":
            return None
        found = self.index.full_match(scope)
        endpoint = getattr(found[0], "endpoint", None) if found else None  # a Mount has none
        handler = getattr(endpoint, "inline_handler", None)
        if handler is None:
            return None
        route, child_scope = found  # type: ignore[misc]
        scope["app"] = self.starlette
        scope.setdefault("router", self.index.router)
        scope["route"] = route
        scope.update(child_scope)
        request = Request(scope, receive, send)
        try:
            response: Response = handler(request)
        except Exception as exc:  # noqa: BLE001 - answered as the application does
            response = error_response(request, exc)
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.answer(scope, receive, send) if scope["type"] == "http" else None
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)


async def _plain(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: The REST modules, in matching order; each has ``routes() -> list[Route]``. The
#: generic ``/{level}/{id}`` routes of ``resources`` come last.
ROUTE_MODULES: tuple[str, ...] = (
    "system",
    "bulk",
    "changes",
    "instances",
    "tags",
    "metadata",
    "attachments",
    "labels",
    "images",
    "find",
    "modalities",
    "archives",
    "operations",
    "peers",
    "jobs",
    "scripting",
    "web",
    "reconstruction",
    "queries",
    "storage_commitment",
    "transfer_syntaxes",
    "creation",
    "modification",
    "study_reorganization",
    "sop_classes",
    "resources",
)


def create_app_routes() -> list[Route]:
    """Every route, in matching order."""
    routes: list[Route] = []
    for name in ROUTE_MODULES:
        routes.extend(importlib.import_module(f"{__package__}.{name}").routes())
    return routes


async def answer_error(request: Request, exc: Exception) -> Response:
    """``error_response`` as Starlette's exception handler: a coroutine, since the
    framework runs a plain function handler on its thread pool, and that round trip
    cost more than the rest of an error answer (a 404 took 0.4 ms instead of 0.05)."""
    return error_response(request, exc)


def create_app(archive: Archive, config: Mapping[str, Any]) -> ASGIApp:
    app = Starlette(
        routes=create_app_routes(),
        exception_handlers={
            DicomhubError: answer_error,
            HTTPException: answer_error,
            Exception: answer_error,
        },
    )
    app.state.archive = archive
    app.state.config = config
    # A trailing slash is dropped before routing (``normalize_path``), as Orthanc
    # ignores it: no redirect, which clients that do not follow one (and a proxy that
    # serves the API under a prefix) would get wrong.
    app.router.redirect_slashes = False
    # Route by first path segment instead of trying all routes in turn (same answers).
    index = app.router.middleware_stack = RouteIndex(app.router)
    from .express import ExpressDownloads, ExpressReads, ExpressUploads
    from .instances import DirectFileDownloads
    from .operations import instrument

    policy, hooks = AccessPolicy.from_config(config), hooks_of(archive)
    inline = InlineRoutes(app, app, index)
    served = AccessMiddleware(
        instrument(app, config, DirectFileDownloads(inline, archive)), policy, hooks
    )
    # Plain downloads, answered by the connection itself when this is what it serves.
    lane = (archive, policy, hooks, app.state.metrics, log)
    served.express = ExpressDownloads(*lane)
    served.uploads = ExpressUploads(config, *lane)
    served.reads = ExpressReads(inline, *lane)
    return served
