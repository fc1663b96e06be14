"""``IncomingHttpRequestFilter``: asking ``core.hooks`` whether a request may go on.

Orthanc consults the filter after authentication and before routing, for GET, POST,
PUT and DELETE, with the path (no query string), the client's IP, the user name
(empty without authentication) and the headers (lower-case names). A refusal is a
403 with an empty body; a failing filter is a 500 with Orthanc's error body (both as
Orthanc 1.10.1 answers). Requests that scripts make through ``RestApi*`` do not pass
here, as in Orthanc.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.types import Scope, Send

from ..core.errors import DicomhubError
from ..core.hooks import INCOMING_HTTP_REQUEST, Hooks
from .responses import json_response


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }


async def passes_http_filter(
    hooks: Hooks | None, scope: Scope, send: Send, as_method: str | None = None
) -> bool:
    """True if the request may go on; otherwise the answer has been sent.
    ``as_method``: the method the filter is told (Orthanc tells GET for HEAD)."""
    if hooks is None or not hooks.active(INCOMING_HTTP_REQUEST):
        return True
    client = scope.get("client")
    method = as_method or str(scope["method"])
    path = str(scope["path"])
    try:
        allowed = await anyio.to_thread.run_sync(
            hooks.allow_http,
            method,
            path,
            client[0] if client else "",
            str(scope.get("dicomhub.user") or ""),
            _headers(scope),
        )
    except DicomhubError as exc:
        from .app import error_body

        body = error_body(exc.http_status, method, path, exc.name, exc.code, exc.details)
        response = json_response(body, exc.http_status)
        await response(scope, _no_receive, send)
        return False
    if allowed:
        return True
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
    return False


async def _no_receive() -> dict[str, str]:
    return {"type": "http.disconnect"}
