"""ZIP downloads: ``/{level}/{id}/archive``, ``/media``, ``/tools/create-archive``,
``/tools/create-media`` and ``/tools/create-media-extended``.

Like Orthanc, these routes are synchronous (streamed) unless the POST body asks
for ``"Asynchronous": true`` (or ``"Synchronous": false``): then the archive is
built by a job and downloaded from ``/jobs/{id}/archive``. A synchronous archive
is built while it is sent, then recorded as a finished job (as Orthanc lists it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..core import archives, transcoding
from ..core.errors import BadFileFormat, BadRequest, DicomhubError, InternalError
from ..core.job_requests import priority, wants_job
from ..core.jobs import engine as jobs_engine
from ..core.jobs import types as job_types
from ..dicom.levels import Level
from . import convertors  # noqa: F401 - registers {level:upper_levels}
from .common import archive_of, level_of
from .jobs import job_created

log = logging.getLogger("dicomhub.archives")


@dataclass
class _Options:
    resources: list[str]
    filename: str
    extended: bool
    utf8: bool
    asynchronous: bool = False
    priority: int = 0
    user_data: Any = None
    transcode: str | None = None
    quality: int = 90


def _body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadFileFormat("Expected a list of resources to archive in the body") from exc


def _truthy(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadFileFormat(f'The field "{name}" must be a Boolean')
    return value


def _check_transcode(syntax: Any) -> str | None:
    """The target syntax of ``transcode`` / ``Transcode`` (an unknown UID is a 400, an
    empty one too, as in Orthanc)."""
    if syntax is None:
        return None
    return str(transcoding.parse_syntax(syntax))


def _check_filename(filename: str) -> str:
    """The name goes verbatim into a header: refuse what could break out of it."""
    if any(c in filename for c in '"\\') or not filename.isprintable():
        raise BadRequest("Invalid filename")
    try:
        filename.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise BadRequest("Invalid filename") from exc
    return filename


async def _options(request: Request, default_name: str, tools: bool, extended: bool) -> _Options:
    utf8 = bool(request.app.state.config.get("ZipUseUtf8", False))
    settings = archive_of(request).settings
    if request.method == "GET":
        query = request.query_params
        syntax = _check_transcode(query.get("transcode"))
        quality = transcoding.parse_quality(query.get("lossy-quality"), settings)
        resources = [r for r in query.get("resources", "").split(",") if r] if tools else []
        if "extended" in query:  # as Orthanc: present means extended, whatever its value
            extended = True
        return _Options(
            resources,
            _check_filename(query.get("filename") or default_name),
            extended,
            utf8,
            transcode=syntax,
            quality=quality,
        )

    body = _body(await request.body())
    if tools and isinstance(body, list):  # the historical form: a bare list of IDs
        body = {"Resources": body}
    if not isinstance(body, dict):
        body = {}
    asynchronous = wants_job(body)
    job_priority = priority(body)
    if "Transcode" in body and not isinstance(body["Transcode"], str):  # null too
        raise BadFileFormat("String value expected in field: Transcode")
    syntax = _check_transcode(body.get("Transcode"))
    quality = transcoding.parse_quality(body.get("LossyQuality"), settings)
    resources: list[str] = []
    if tools:
        if "Resources" not in body:
            raise BadFileFormat("Missing field Resources in the JSON body")
        resources = body["Resources"]
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise BadFileFormat("Expected a list of strings (Orthanc identifiers)")
    if "Extended" in body:
        extended = _truthy(body["Extended"], "Extended")
    if "Utf8" in body:
        utf8 = _truthy(body["Utf8"], "Utf8")
    filename = body.get("Filename")
    if not isinstance(filename, str) or not filename:  # Orthanc ignores a non-string
        filename = default_name
    return _Options(
        resources,
        _check_filename(filename),
        extended,
        utf8,
        asynchronous,
        job_priority,
        body.get("UserData"),
        syntax,
        quality,
    )


def _parameters(
    ids: list[str], level: Level | None, options: _Options, media: bool
) -> dict[str, Any]:
    parameters = job_types.archive_parameters(ids, level, media, options.extended, options.utf8)
    if options.transcode:
        parameters.update(Transcode=options.transcode, LossyQuality=options.quality)
    return parameters


async def _answer(
    request: Request, ids: list[str], level: Level | None, options: _Options, media: bool
) -> Response:
    archive = archive_of(request)
    if options.asynchronous:
        return await _submit(request, ids, level, options, media)
    if media:
        items = await run_in_threadpool(archives.plan_media, archive, ids, level)
    else:
        items = await run_in_threadpool(archives.plan_archive, archive, ids, level, options.utf8)
    stream = archives.stream_zip(
        archive.storage,
        items,
        options.extended if media else None,
        transcoding.sender(options.transcode, options.quality),
    )
    return StreamingResponse(
        _recorded(request, stream, items, _parameters(ids, level, options, media), options),
        200,
        media_type="application/zip",
        headers={"Content-Disposition": f'filename="{options.filename}"'},
    )


def _recorded(
    request: Request,
    stream: Iterable[bytes],
    items: list[archives.ArchiveItem],
    parameters: dict[str, Any],
    options: _Options,
) -> Iterator[bytes]:
    """Pass the ZIP on, then record it as a finished ``Archive`` or ``Media`` job
    (its failure too). A client that goes away before the end leaves no job."""
    archive = archive_of(request)
    created, started = jobs_engine.job_time(), time.monotonic()
    written = 0

    def record(error: DicomhubError | None) -> None:
        try:
            jobs_engine.record_finished(
                archive,
                request.app.state.config,
                job_types.MEDIA if parameters["Media"] else job_types.ARCHIVE,
                parameters,
                job_types.archive_content(items, written),
                created,
                int((time.monotonic() - started) * 1000),
                error,
                options.priority,
                options.user_data,
            )
        except Exception:  # the client has its archive: do not break the answer
            log.exception("cannot record the synchronous archive job")

    try:
        for chunk in stream:
            written += len(chunk)
            yield chunk
    except DicomhubError as exc:
        record(exc)
        raise
    except Exception as exc:
        record(InternalError(str(exc)))
        raise
    record(None)


async def _submit(
    request: Request, ids: list[str], level: Level | None, options: _Options, media: bool
) -> Response:
    """Check the resources now (unknown ones fail the request, as in Orthanc), then
    leave the building of the archive to a job, its content known from the start."""
    archive = archive_of(request)
    if media:
        items = await run_in_threadpool(archives.plan_media, archive, ids, level)
    else:
        items = await run_in_threadpool(archives.plan_archive, archive, ids, level, options.utf8)
    job_id = await run_in_threadpool(
        jobs_engine.submit,
        archive,
        job_types.MEDIA if media else job_types.ARCHIVE,
        _parameters(ids, level, options, media),
        options.priority,
        options.user_data,
        job_types.archive_content(items, 0),
    )
    return job_created(job_id)


async def resource_archive(request: Request) -> Response:
    public_id = request.path_params["id"]
    options = await _options(request, f"{public_id}.zip", tools=False, extended=False)
    return await _answer(request, [public_id], level_of(request), options, media=False)


async def resource_media(request: Request) -> Response:
    public_id = request.path_params["id"]
    options = await _options(request, f"{public_id}.zip", tools=False, extended=False)
    return await _answer(request, [public_id], level_of(request), options, media=True)


async def create_archive(request: Request) -> Response:
    options = await _options(request, "Archive.zip", tools=True, extended=False)
    return await _answer(request, options.resources, None, options, media=False)


async def create_media(request: Request) -> Response:
    options = await _options(request, "Archive.zip", tools=True, extended=False)
    return await _answer(request, options.resources, None, options, media=True)


async def create_media_extended(request: Request) -> Response:
    options = await _options(request, "Archive.zip", tools=True, extended=True)
    return await _answer(request, options.resources, None, options, media=True)


def routes() -> list[Route]:
    both = ["GET", "POST"]
    return [
        Route("/{level:upper_levels}/{id}/archive", resource_archive, methods=both),
        Route("/{level:upper_levels}/{id}/media", resource_media, methods=both),
        Route("/tools/create-archive", create_archive, methods=both),
        Route("/tools/create-media", create_media, methods=both),
        Route("/tools/create-media-extended", create_media_extended, methods=both),
    ]
