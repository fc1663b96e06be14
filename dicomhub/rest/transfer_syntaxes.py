"""``/tools/accepted-transfer-syntaxes``: what the DICOM listener accepts (GET), and
changing it until the server stops (PUT), as in Orthanc."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import accepted_syntaxes
from .common import archive_of
from .responses import json_response


async def get_accepted(request: Request) -> Response:
    archive = archive_of(request)
    answer = await run_in_threadpool(accepted_syntaxes.current, archive, request.app.state.config)
    return json_response(answer)


async def put_accepted(request: Request) -> Response:
    patterns = accepted_syntaxes.parse_body(await request.body())
    answer = await run_in_threadpool(accepted_syntaxes.replace, archive_of(request), patterns)
    return json_response(answer)


def routes() -> list[Route]:
    return [
        Route("/tools/accepted-transfer-syntaxes", get_accepted, methods=["GET"]),
        Route("/tools/accepted-transfer-syntaxes", put_accepted, methods=["PUT"]),
    ]
