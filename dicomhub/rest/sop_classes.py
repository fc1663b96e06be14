"""``/tools/accepted-sop-classes`` and ``/tools/unknown-sop-class-accepted``: which
storage SOP classes the DICOM listener takes, as in Orthanc 1.12.

The list of accepted classes follows the configuration; the unknown-class switch can
be changed until the server stops (``core.accepted_sop_classes`` keeps it in the
index so every HTTP worker and the listener see the same value)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import accepted_sop_classes
from .common import archive_of
from .responses import json_response, text_response


async def get_accepted_classes(request: Request) -> Response:
    return json_response(accepted_sop_classes.accepted(request.app.state.config))


async def get_unknown_accepted(request: Request) -> Response:
    archive = archive_of(request)
    value = await run_in_threadpool(
        accepted_sop_classes.unknown_accepted, archive, request.app.state.config
    )
    return text_response("1" if value else "0")


async def put_unknown_accepted(request: Request) -> Response:
    value = accepted_sop_classes.parse_boolean(await request.body())
    await run_in_threadpool(accepted_sop_classes.set_unknown_accepted, archive_of(request), value)
    return text_response("")


def routes() -> list[Route]:
    return [
        Route("/tools/accepted-sop-classes", get_accepted_classes, methods=["GET"]),
        Route("/tools/unknown-sop-class-accepted", get_unknown_accepted, methods=["GET"]),
        Route("/tools/unknown-sop-class-accepted", put_unknown_accepted, methods=["PUT"]),
    ]
