"""``/jobs``: list, inspect, cancel, pause, resume, resubmit and delete jobs, and
download their outputs.

The job rows live in the index, so whichever HTTP worker answers sees the same
jobs. Where Orthanc answers an unknown job or a refused transition with an empty
body (404 or 400), so does this module: clients compare status codes only.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ..core import errors
from ..core.jobs import engine
from .common import archive_of, expand_arg
from .responses import empty_json, json_response


def _descriptions() -> dict[int, str]:
    found = {0: "Success"}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.DicomhubError):
            found.setdefault(value.code, value.name)
    return found


_DESCRIPTIONS = _descriptions()


def job_json(job: dict[str, Any]) -> dict[str, Any]:
    """Orthanc's description of a job (``GET /jobs/{id}``)."""
    body: dict[str, Any] = {
        "ID": job["id"],
        "Type": job["type"],
        "State": job["state"],
        "Priority": job["priority"],
        "Progress": job["progress"],
        "CreationTime": job["creation_time"],
        "EffectiveRuntime": round(job["runtime"] / 1000.0, 3),
        "ErrorCode": job["error_code"],
        "ErrorDescription": _DESCRIPTIONS.get(job["error_code"], "Internal error"),
        "ErrorDetails": job["error_details"] or "",
        "Content": orjson.loads(job["content"]),
        "Timestamp": engine.job_time(),
    }
    if job["completion_time"]:
        body["CompletionTime"] = job["completion_time"]
    if job["user_data"] is not None:
        body["UserData"] = orjson.loads(job["user_data"])
    return body


def job_created(job_id: str) -> Response:
    """What a route answers once it has submitted a job."""
    return json_response({"ID": job_id, "Path": f"/jobs/{job_id}"})


async def list_jobs(request: Request) -> Response:
    jobs = await run_in_threadpool(engine.list_jobs, archive_of(request))
    if expand_arg(request, False):
        return json_response([job_json(job) for job in jobs])
    return json_response([job["id"] for job in jobs])


async def get_job(request: Request) -> Response:
    job = await run_in_threadpool(engine.get_job, archive_of(request), request.path_params["id"])
    if job is None:
        return Response(status_code=404)
    return json_response(job_json(job))


def _action(name: str):  # type: ignore[no-untyped-def]
    action = getattr(engine, name)

    async def endpoint(request: Request) -> Response:
        try:
            found = await run_in_threadpool(action, archive_of(request), request.path_params["id"])
        except errors.BadSequenceOfCalls:
            return Response(status_code=400)
        # Orthanc answers 400 (not 404) to an action on an unknown job.
        return empty_json() if found else Response(status_code=400)

    return endpoint


async def delete_job(request: Request) -> Response:
    job_id = request.path_params["id"]
    if not await run_in_threadpool(engine.delete, archive_of(request), job_id):
        return Response(status_code=404)
    return empty_json()


async def get_output(request: Request) -> Response:
    found = await run_in_threadpool(
        engine.output, archive_of(request), request.path_params["id"], request.path_params["key"]
    )
    return FileResponse(
        found["path"],
        media_type=found["mime"],
        headers={"Content-Disposition": f'filename="{found["filename"]}"'},
    )


async def delete_output(request: Request) -> Response:
    await run_in_threadpool(
        engine.delete_output,
        archive_of(request),
        request.path_params["id"],
        request.path_params["key"],
    )
    return empty_json()


def routes() -> list[Route]:
    return [
        Route("/jobs", list_jobs, methods=["GET"]),
        Route("/jobs/{id}", get_job, methods=["GET"]),
        Route("/jobs/{id}", delete_job, methods=["DELETE"]),
        *(
            Route(f"/jobs/{{id}}/{name}", _action(name), methods=["POST"])
            for name in ("cancel", "pause", "resume", "resubmit")
        ),
        Route("/jobs/{id}/{key}", get_output, methods=["GET"]),
        Route("/jobs/{id}/{key}", delete_output, methods=["DELETE"]),
    ]
