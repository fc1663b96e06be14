"""``POST /tools/create-dicom``: a new instance (or series) from JSON tags and a data
URI, stored like an upload; the rules are in ``core/creation.py``."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import creation
from ..core.errors import BadRequest
from .common import archive_of
from .instances import _origin
from .responses import json_response


async def create_dicom(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The body must be a JSON object") from exc
    creator = str(request.app.state.config.get("DefaultPrivateCreator") or "")
    answer = await run_in_threadpool(
        creation.create, archive_of(request), body, _origin(request), creator
    )
    return json_response(answer)


def routes() -> list[Route]:
    return [Route("/tools/create-dicom", create_dicom, methods=["POST"])]
