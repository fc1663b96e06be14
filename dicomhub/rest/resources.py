"""Browsing the hierarchy: lists, resources, children and parents, deletion, statistics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import deletion, protection, reading, slices
from ..core.errors import BadFileFormat, BadParameterType
from ..dicom.levels import Level
from . import convertors  # noqa: F401 - registers {level:...}
from .common import (
    archive_of,
    expand_arg,
    inline,
    level_of,
    requested_tags,
    response_content_arg,
    tag_style,
)
from .responses import json_response, lexical_integer, text_response

LEVELS = "{level:levels}"


#: Orthanc's words for a ``since`` / ``limit`` it cannot read as a number.
_SYNTAX_ERROR = "Syntax error in some user-supplied data"


def list_window(request: Request) -> tuple[int, int | None]:
    """``since`` and ``limit`` of a list route, read as Orthanc reads them.

    Orthanc reads both as unsigned 64-bit numbers and hands them to SQLite as signed
    ones: ``-1`` wraps to the largest value and comes back as -1, which SQLite reads as
    no limit (for ``limit``) or no offset (for ``since``). Anything else it cannot read
    is refused with "Bad type for a parameter" and its words, which name neither. ``limit`` is ``None`` when absent (the
    whole list) and 0 when the client asked for no resource.
    """
    values: dict[str, int | None] = {}
    for name in ("since", "limit"):
        raw = request.query_params.get(name)
        if raw is None:
            values[name] = None
            continue
        value = lexical_integer(raw, 64, signed=False)
        if value is None:
            raise BadParameterType(_SYNTAX_ERROR)
        values[name] = value - (1 << 64) if value >> 63 else value
    since, limit = values["since"], values["limit"]
    return max(since or 0, 0), limit


@inline
def list_level(request: Request) -> Response:
    level = level_of(request)
    since, limit = list_window(request)
    expand = expand_arg(request, False)
    style = tag_style(request)
    requested = requested_tags(request)
    content = response_content_arg(request)
    if limit == 0:
        return json_response([])
    result = reading.list_resources(
        archive_of(request),
        level,
        expand=expand,
        since=since,
        limit=limit if limit is not None and limit > 0 else 0,  # 0 here: no limit
        style=style,
        requested=requested,
        content=content,
    )
    return json_response(result)


@inline
def get_resource(request: Request) -> Response:
    public_id = request.path_params["id"]
    found = reading.resource(
        archive_of(request),
        public_id,
        level_of(request),
        tag_style(request),
        requested_tags(request),
    )
    return json_response(found)


def delete_resource(request: Request) -> Response:
    public_id = request.path_params["id"]
    done = deletion.delete_resource(archive_of(request), public_id, level_of(request))
    return json_response(done)


@inline
def statistics(request: Request) -> Response:
    public_id = request.path_params["id"]
    found = reading.statistics(archive_of(request), public_id, level_of(request))
    return json_response(found)


def ordered_slices(request: Request) -> Response:
    public_id = request.path_params["id"]
    found = slices.ordered_slices(archive_of(request), public_id)
    return json_response(found)


def _relative_route(level: Level, target: Level) -> Route:
    plural, name = level.plural, (target.plural if target > level else target.title.lower())

    @inline
    def handler(request: Request) -> Response:
        public_id = request.path_params["id"]
        found = reading.relatives(
            archive_of(request),
            public_id,
            level,
            target,
            expand=expand_arg(request, True),
            style=tag_style(request),
            requested=requested_tags(request),
        )
        return json_response(found)

    return Route(f"/{plural}/{{id}}/{name}", handler, methods=["GET"])


@inline
def get_protected(request: Request) -> Response:
    public_id = request.path_params["id"]
    value = protection.is_protected(archive_of(request), public_id)
    return text_response("1" if value else "0")


async def put_protected(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    body = (await request.body()).strip().lower()
    if body not in (b"0", b"1", b"false", b"true"):
        raise BadFileFormat("Boolean value expected")  # what Orthanc answers
    public_id = request.path_params["id"]
    await run_in_threadpool(
        protection.set_protected, archive_of(request), public_id, body in (b"1", b"true")
    )
    return text_response("")


def routes() -> list[Route]:
    found = [
        Route(f"/{LEVELS}", list_level, methods=["GET"]),
        Route(f"/{LEVELS}/{{id}}", get_resource, methods=["GET"]),
        Route(f"/{LEVELS}/{{id}}", delete_resource, methods=["DELETE"]),
        Route(f"/{LEVELS}/{{id}}/statistics", statistics, methods=["GET"]),
        Route("/series/{id}/ordered-slices", ordered_slices, methods=["GET"]),
        Route("/patients/{id}/protected", get_protected, methods=["GET"]),
        Route("/patients/{id}/protected", put_protected, methods=["PUT"]),
    ]
    for level in Level:
        for target in Level:
            if target != level and not (level == Level.PATIENT and target < level):
                found.append(_relative_route(level, target))
    return found
