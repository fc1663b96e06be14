"""``/{level}/{id}/modify``, ``/{level}/{id}/anonymize``, ``/tools/bulk-modify`` and
``/tools/bulk-anonymize``.

A single instance is answered as the modified DICOM file (nothing is stored); the
other routes run a ``ResourceModification`` job that stores new resources. Like
Orthanc, they wait for the job (synchronous) unless the body asks for
``"Asynchronous": true`` or ``"Synchronous": false``: then they answer the job.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import modification, modification_job
from ..core.archive import require_resource
from ..core.errors import BadFileFormat
from ..core.jobs import types as job_types
from ..dicom.levels import Level
from . import convertors  # noqa: F401 - registers {level:levels}
from .common import archive_of, level_of
from .instances import _origin
from .jobs import job_created
from .responses import json_response

job_types.register_kind(modification_job.RESOURCE_MODIFICATION, modification_job.run_modification)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadFileFormat("The body must contain a JSON object") from exc


def _parse(request: Request, body: Any, anonymize: bool, level: Level | None, bulk: bool):  # type: ignore[no-untyped-def]
    config = request.app.state.config
    archive = archive_of(request)
    settings = archive.settings
    if anonymize:
        instance = level is None and not bulk
        return modification.parse_anonymize(body, config, settings, bulk=bulk, instance=instance)
    look_up = None
    if level is not None:  # a patient, study or series: see parse_modify

        def look_up() -> None:
            with archive.read() as session:
                require_resource(session, request.path_params["id"], level)

    return modification.parse_modify(body, level, config, settings, bulk=bulk, look_up=look_up)


async def _run(
    request: Request,
    parsed: modification.Request,
    resources: list[str],
    level: Level | None,
) -> Response:
    archive = archive_of(request)
    job_id = await run_in_threadpool(
        modification_job.submit, archive, parsed, resources, level, _origin(request)
    )
    if parsed.asynchronous:
        return job_created(job_id)
    content = await run_in_threadpool(modification_job.wait, archive, job_id)
    return json_response(content)


def _endpoint(anonymize: bool):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        level = level_of(request)
        public_id = request.path_params["id"]
        body = await _body(request)
        if level == Level.INSTANCE:
            parsed = _parse(request, body, anonymize, None, bulk=False)
            data = await run_in_threadpool(
                modification.modify_instance, archive_of(request), public_id, parsed
            )
            return Response(data, media_type="application/dicom")
        parsed = await run_in_threadpool(_parse, request, body, anonymize, level, False)
        return await _run(request, parsed, [public_id], level)

    return endpoint


def _bulk(anonymize: bool):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        body = await _body(request)
        parsed = _parse(request, body, anonymize, None, bulk=True)
        return await _run(request, parsed, parsed.resources, None)

    return endpoint


def routes() -> list[Route]:
    return [
        Route("/{level:levels}/{id}/modify", _endpoint(False), methods=["POST"]),
        Route("/{level:levels}/{id}/anonymize", _endpoint(True), methods=["POST"]),
        Route("/tools/bulk-modify", _bulk(False), methods=["POST"]),
        Route("/tools/bulk-anonymize", _bulk(True), methods=["POST"]),
    ]
