"""Browsing the hierarchy: lists, resources, children and parents, deletion, statistics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import deletion, protection, reading, slices
from ..core.errors import BadFileFormat
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
from .responses import int_arg, json_response, text_response

LEVELS = "{level:levels}"


@inline
def list_level(request: Request) -> Response:
    level = level_of(request)
    result = reading.list_resources(
        archive_of(request),
        level,
        expand=expand_arg(request, False),
        since=int_arg(request, "since", 0),
        limit=int_arg(request, "limit", 0),
        style=tag_style(request),
        requested=requested_tags(request),
        content=response_content_arg(request),
    )
    return json_response(result)


@inline
def get_resource(request: Request) -> Response:
    return json_response(
        reading.resource(
            archive_of(request),
            request.path_params["id"],
            level_of(request),
            tag_style(request),
            requested_tags(request),
        )
    )


def delete_resource(request: Request) -> Response:
    return json_response(
        deletion.delete_resource(archive_of(request), request.path_params["id"], level_of(request))
    )


@inline
def statistics(request: Request) -> Response:
    return json_response(
        reading.statistics(archive_of(request), request.path_params["id"], level_of(request))
    )


def ordered_slices(request: Request) -> Response:
    return json_response(slices.ordered_slices(archive_of(request), request.path_params["id"]))


def _relative_route(level: Level, target: Level) -> Route:
    plural, name = level.plural, (target.plural if target > level else target.title.lower())

    @inline
    def handler(request: Request) -> Response:
        return json_response(
            reading.relatives(
                archive_of(request),
                request.path_params["id"],
                level,
                target,
                expand=expand_arg(request, True),
                style=tag_style(request),
                requested=requested_tags(request),
            )
        )

    return Route(f"/{plural}/{{id}}/{name}", handler, methods=["GET"])


@inline
def get_protected(request: Request) -> Response:
    value = protection.is_protected(archive_of(request), request.path_params["id"])
    return text_response("1" if value else "0")


async def put_protected(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    body = (await request.body()).strip().lower()
    if body not in (b"0", b"1", b"false", b"true"):
        raise BadFileFormat("Boolean value expected")  # what Orthanc answers
    await run_in_threadpool(
        protection.set_protected,
        archive_of(request),
        request.path_params["id"],
        body in (b"1", b"true"),
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
