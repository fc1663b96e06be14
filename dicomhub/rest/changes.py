"""The changes log (``/changes``) and the exports log (``/exports``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import changelog
from ..core.errors import BadRequest
from .common import archive_of, inline
from .responses import flag, int_arg, json_response


@inline
def get_changes(request: Request) -> Response:
    archive = archive_of(request)
    if flag(request, "last"):
        return json_response(changelog.last_change(archive))
    types = request.query_params.get("type")
    to = request.query_params.get("to")
    try:
        to_value = int(to) if to else None
    except ValueError as exc:
        raise BadRequest("Argument 'to' must be an integer") from exc
    return json_response(
        changelog.changes(
            archive,
            since=int_arg(request, "since", 0),
            limit=int_arg(request, "limit", changelog.DEFAULT_LIMIT),
            to=to_value,
            types=types.split(";") if types else None,
        )
    )


def delete_changes(request: Request) -> Response:
    changelog.clear_changes(archive_of(request))
    return json_response({})


@inline
def get_exports(request: Request) -> Response:
    return json_response(
        changelog.exports(
            archive_of(request),
            since=int_arg(request, "since", 0),
            limit=int_arg(request, "limit", changelog.DEFAULT_LIMIT),
        )
    )


def delete_exports(request: Request) -> Response:
    changelog.clear_exports(archive_of(request))
    return json_response({})


def routes() -> list[Route]:
    return [
        Route("/changes", get_changes, methods=["GET"]),
        Route("/changes", delete_changes, methods=["DELETE"]),
        Route("/exports", get_exports, methods=["GET"]),
        Route("/exports", delete_exports, methods=["DELETE"]),
    ]
