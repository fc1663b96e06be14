"""The explorer's static files under ``/app/``, and the ``/`` redirect to it.

The files ship inside the package (``dicomhub/web``) and have no hashed names,
so browsers must revalidate them (``no-cache`` plus an ``ETag``): an upgrade of
dicomhub then takes effect on the next page load without stale scripts. Only
the files found in that folder at start-up are served, so no request path can
reach anything else on disk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .paths import EXPLORER_PATH

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

#: Explicit types: the platform's ``mimetypes`` table varies, and ES modules are
#: refused by browsers unless served as JavaScript.
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

#: Everything the explorer loads comes from this server; the policy makes the
#: browser enforce it (no script, style or image from another host).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)

#: The page Orthanc serves; kept as an alias of our explorer's page.
ALIASES = {"": "index.html", "explorer.html": "index.html"}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


@cache
def static_files() -> dict[str, StaticFile]:
    """The servable files, keyed by their path relative to ``WEB_DIR``."""
    found: dict[str, StaticFile] = {}
    if not WEB_DIR.is_dir():
        return found
    for path in sorted(WEB_DIR.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if not path.is_file() or content_type is None or path.name.startswith("."):
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        found[path.relative_to(WEB_DIR).as_posix()] = StaticFile(body, content_type, etag)
    return found


def serve(request: Request) -> Response:
    name = request.path_params.get("path", "")
    name = ALIASES.get(name, name)
    found = static_files().get(name)
    if found is None:
        raise HTTPException(404)
    headers = {
        "Cache-Control": "no-cache",
        "ETag": found.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if found.content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = CSP
        headers["Referrer-Policy"] = "same-origin"
    wanted = request.headers.get("if-none-match", "")
    if found.etag in (tag.strip() for tag in wanted.split(",")) or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)


def redirect_to_app(request: Request) -> Response:
    """``/`` and ``/app`` lead to ``/app/``; relative, as Orthanc does, so that it also works behind a path-prefixing proxy."""
    return RedirectResponse("app/", status_code=301)


def routes() -> list[Route]:
    return [
        Route("/", redirect_to_app, methods=["GET"]),
        Route("/app", redirect_to_app, methods=["GET"]),
        Route(EXPLORER_PATH, serve, methods=["GET"]),
        Route("/app/{path:path}", serve, methods=["GET"]),
    ]
