"""``/tools/bulk-content``, ``/tools/bulk-delete`` and the ``/tools`` index."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import bulk
from ..core.describe import TagStyle
from ..core.errors import BadFileFormat, BadRequest
from ..dicom.levels import Level
from .common import archive_of
from .responses import json_response, parse_json_body, text_response


def _resources(body: dict[str, Any]) -> list[str]:
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise BadFileFormat("List of strings expected in field: Resources")  # as Orthanc
    return resources


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f'"{key}" must be a Boolean')
    return value


async def bulk_content(request: Request) -> Response:
    body = parse_json_body(await request.body(), dict)
    level = None
    if "Level" in body:
        try:
            level = Level.parse(str(body["Level"]))
        except ValueError as exc:
            raise BadRequest(f"Unknown resource level: {body['Level']}") from exc
    style = TagStyle.NAMES
    if _bool(body, "Short", False):
        style = TagStyle.SHORT
    elif _bool(body, "Full", False):
        style = TagStyle.FULL
    result = await run_in_threadpool(
        bulk.bulk_content,
        archive_of(request),
        _resources(body),
        level,
        style,
        _bool(body, "Metadata", True),
    )
    return json_response(result)


async def bulk_delete(request: Request) -> Response:
    body = parse_json_body(await request.body(), dict)
    await run_in_threadpool(bulk.bulk_delete, archive_of(request), _resources(body))
    return text_response("")  # Orthanc's empty answer


def tools_index(request: Request) -> Response:
    """The ``/tools/...`` routes this server has, as Orthanc lists its own."""
    from .app import create_app_routes

    names = {
        route.path.split("/")[2]
        for route in create_app_routes()
        if isinstance(route, Route) and route.path.startswith("/tools/")
    }
    return json_response(sorted(names))


def routes() -> list[Route]:
    return [
        Route("/tools", tools_index, methods=["GET"]),
        Route("/tools/bulk-content", bulk_content, methods=["POST"]),
        Route("/tools/bulk-delete", bulk_delete, methods=["POST"]),
    ]
