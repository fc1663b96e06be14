"""Metadata routes at every level: ``/{level}/{id}/metadata[/{name}]``.

Revisions travel as HTTP entity tags, ``"<revision>-<md5 of the value>"``: GET
answers one in ``ETag`` (and 304 for a matching ``If-None-Match``); PUT and
DELETE take the one the client read in ``If-Match``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import metadata
from ..core.errors import BadRequest, ParameterOutOfRange, UnknownResource
from ..core.metadata import Expected, ProtectedEntry
from ..dicom.levels import Level
from .common import archive_of, expand_arg
from .responses import json_response, text_response

_REVISION = re.compile(r"\+?[0-9]+", re.ASCII)
_INT64_MAX = (1 << 63) - 1  # revisions are 64-bit: a larger one is malformed (400)

Handler = Callable[[Request, Level], Response | Awaitable[Response]]


# ---- helpers shared with the attachments routes -----------------------------


def revision_header(request: Request, header: str) -> Expected | None:
    """The ETag in ``header`` (``If-Match`` / ``If-None-Match``), None if absent."""
    raw = request.headers.get(header)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    revision, dash, md5 = value.partition("-")
    if not dash or not _REVISION.fullmatch(revision) or int(revision) > _INT64_MAX:
        raise ParameterOutOfRange(
            f'The "{header}" header must hold an ETag (a revision number, a dash and '
            f"an MD5 hash), not: {raw}"
        )
    return Expected(int(revision), md5)


def not_modified(request: Request, current: Expected) -> Response | None:
    """A 304 answer when the client's ``If-None-Match`` names the current revision."""
    seen = revision_header(request, "If-None-Match")
    if seen is not None and seen == current:
        return Response(status_code=304, headers={"ETag": etag_of(current)})
    return None


def etag_of(current: Expected) -> str:
    return metadata.etag(current.revision, current.md5)


def bare(status: int) -> Response:
    """An answer without a body, as Orthanc gives for a missing item or a refused write."""
    return Response(status_code=status)


def per_level(path: str, handler: Handler, method: str) -> list[Route]:
    """One route per level for ``/{level}/{id}`` + ``path``, the level bound to the handler."""
    routes = []
    for level in Level:
        routes.append(
            Route(f"/{level.plural}/{{id}}{path}", _bind(handler, level), methods=[method])
        )
    return routes


def _bind(handler: Handler, level: Level) -> Callable[[Request], object]:
    if inspect.iscoroutinefunction(handler):

        async def endpoint_async(request: Request) -> Response:
            return await handler(request, level)  # type: ignore[misc]

        return endpoint_async

    def endpoint(request: Request) -> Response:
        return handler(request, level)  # type: ignore[return-value]

    return endpoint


# ---- handlers ---------------------------------------------------------------


def list_metadata(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    items = metadata.list_metadata(archive, request.path_params["id"], level)
    numeric = "numeric" in request.query_params
    settings = archive.settings

    def key(kind: int) -> str:
        return str(kind) if numeric else metadata.name_of(settings, kind)

    if expand_arg(request, False):
        return json_response({key(kind): value for kind, value in items})
    if numeric:
        return json_response([kind for kind, _ in items])
    return json_response([key(kind) for kind, _ in items])


def get_metadata(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    kind = metadata.resolve(archive.settings, request.path_params["name"])
    found = metadata.get_metadata(archive, request.path_params["id"], level, kind)
    if found is None:
        return bare(404)
    value, revision = found
    current = Expected(revision, metadata.md5_hex(value.encode("utf-8")))
    cached = not_modified(request, current)
    if cached is not None:
        return cached
    response = text_response(value.encode("utf-8"))
    response.headers["ETag"] = etag_of(current)
    return response


async def put_metadata(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    kind = metadata.resolve(archive.settings, request.path_params["name"])
    body = await request.body()
    if not metadata.is_user_metadata(kind):
        return bare(403)
    expected = revision_header(request, "If-Match")
    try:
        value = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("The value of a metadata must be UTF-8 text") from exc
    try:
        revision = await run_in_threadpool(
            metadata.set_metadata,
            archive,
            request.path_params["id"],
            level,
            kind,
            value,
            expected,
        )
    except ProtectedEntry:
        return bare(403)
    response = text_response("")
    response.headers["ETag"] = metadata.etag(revision, metadata.md5_hex(body))
    return response


def delete_metadata(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    kind = metadata.resolve(archive.settings, request.path_params["name"])
    if not metadata.is_user_metadata(kind):
        return bare(403)
    expected = revision_header(request, "If-Match")
    try:
        found = metadata.delete_metadata(archive, request.path_params["id"], level, kind, expected)
    except ProtectedEntry:
        return bare(403)
    if not found:
        raise UnknownResource()  # as Orthanc: no Details
    return text_response("")


def routes() -> list[Route]:
    return [
        *per_level("/metadata", list_metadata, "GET"),
        *per_level("/metadata/{name}", get_metadata, "GET"),
        *per_level("/metadata/{name}", put_metadata, "PUT"),
        *per_level("/metadata/{name}", delete_metadata, "DELETE"),
    ]
