"""``/{level}/{id}/reconstruct`` and ``/tools/reconstruct``: rebuild the index from the files.

Like Orthanc 1.10.1, the routes do not refuse a body they cannot read: the options
(``ReconstructFiles``, ``LimitToThisLevelMainDicomTags``) are taken from a JSON
object when there is one, and default to false otherwise. The answer is empty.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import reconstruction
from . import convertors  # noqa: F401 - registers {level:...}
from .common import archive_of, level_of
from .responses import text_response


def _options(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _option(options: dict[str, Any], name: str) -> bool:
    return options.get(name) is True


async def reconstruct_resource(request: Request) -> Response:
    options = _options(await request.body())
    await run_in_threadpool(
        reconstruction.reconstruct,
        archive_of(request),
        request.path_params["id"],
        level_of(request),
        _option(options, "ReconstructFiles"),
        _option(options, "LimitToThisLevelMainDicomTags"),
    )
    return text_response("")


async def reconstruct_everything(request: Request) -> Response:
    options = _options(await request.body())
    await run_in_threadpool(
        reconstruction.reconstruct_everything,
        archive_of(request),
        _option(options, "ReconstructFiles"),
    )
    return text_response("")


def routes() -> list[Route]:
    return [
        Route("/{level:levels}/{id}/reconstruct", reconstruct_resource, methods=["POST"]),
        Route("/tools/reconstruct", reconstruct_everything, methods=["POST"]),
    ]
