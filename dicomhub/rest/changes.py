"""The changes log (``/changes``) and the exports log (``/exports``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import changelog
from .common import archive_of, inline
from .responses import json_response, lexical_integer, text_response

NO_UPPER_BOUND = -1


def log_window(request: Request) -> tuple[int, int, int | None]:
    """``since``, ``limit`` and ``to`` of a log query, read as Orthanc reads them.

    A change-follower that sends a value Orthanc cannot read (``since=abc``,
    ``limit=1.5``, an empty value) gets the first page rather than an error: any such
    value puts all three back to their defaults. ``limit`` is 32-bit unsigned, so a
    negative one wraps around (see ``changelog.WRAPPED_LIMIT``); ``since`` may be
    negative, which lists the log from its start.
    """
    params = request.query_params
    since = lexical_integer(params.get("since", "0"), 64, signed=True)
    to = lexical_integer(params.get("to", str(NO_UPPER_BOUND)), 64, signed=True)
    limit = lexical_integer(params.get("limit", str(changelog.DEFAULT_LIMIT)), 32, signed=False)
    if since is None or to is None or limit is None:
        return 0, changelog.DEFAULT_LIMIT, None
    return since, limit, None if to == NO_UPPER_BOUND else to


@inline
def get_changes(request: Request) -> Response:
    archive = archive_of(request)
    # Orthanc only asks whether "last" is there: "?last=0" and "?last=foo" count too.
    if "last" in request.query_params:
        return json_response(changelog.last_change(archive))
    since, limit, to = log_window(request)
    types = request.query_params.get("type")
    return json_response(
        changelog.changes(
            archive,
            since=since,
            limit=limit,
            to=to,
            types=types.split(";") if types else None,
        )
    )


def delete_changes(request: Request) -> Response:
    changelog.clear_changes(archive_of(request))
    return text_response("")  # Orthanc's empty answer


@inline
def get_exports(request: Request) -> Response:
    archive = archive_of(request)
    if "last" in request.query_params:
        return json_response(changelog.last_export(archive))
    since, limit, _ = log_window(request)
    return json_response(changelog.exports(archive, since=since, limit=limit))


def delete_exports(request: Request) -> Response:
    changelog.clear_exports(archive_of(request))
    return text_response("")


def routes() -> list[Route]:
    return [
        Route("/changes", get_changes, methods=["GET"]),
        Route("/changes", delete_changes, methods=["DELETE"]),
        Route("/exports", get_exports, methods=["GET"]),
        Route("/exports", delete_exports, methods=["DELETE"]),
    ]
