"""Uploading instances and reading their files."""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core import attachments_io, reading, transcoding, uploads
from ..core.archive import Archive
from ..core.attachments import default_filename
from ..core.errors import BadFileFormat, BadRequest, DicomhubError
from ..core.ingest import Origin, store, stores_quickly
from ..scripting.asgi_call import LUA_SCOPE_KEY
from .attachments import content_disposition
from .common import archive_of
from .http_protocol import SOLE_CONNECTION, offers_zero_copy
from .responses import JSON_DOCUMENT, StoredFileResponse, json_response

SPOOL_LIMIT = 64 << 20

#: Uploads up to this size may be stored on the event loop (``PostInstances``).
ON_LOOP_LIMIT = 4 << 20

T = TypeVar("T")

#: The threads that store uploads. ``loop.run_in_executor`` costs about 10 µs less
#: CPU per call than anyio's ``to_thread`` (capacity limiter, cancel scope, run
#: variables, all paid on the event loop), and every upload pays it. As many
#: threads as anyio's default limiter allows; threads start on demand.
_UPLOAD_THREADS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="upload")


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_UPLOAD_THREADS, fn, *args)


def _origin(request: Request) -> Origin:
    return scope_origin(request.scope)


def scope_origin(scope: Scope) -> Origin:
    if scope.get(LUA_SCOPE_KEY):  # RestApiPost("/instances") from a script
        return Origin(origin="Lua")
    client = scope.get("client")
    return Origin(
        origin="RestApi",
        remote_ip=client[0] if client else "",
        http_username=scope.get("dicomhub.user", "") or "",
    )


class PostInstances:
    """``POST /instances`` as a plain ASGI application.

    The common upload (one DICOM file of known size, not encoded) is read, stored and
    answered straight from the ASGI messages: no ``Request``, no ``Response``, no
    exception-wrapping layer of Starlette's per-route adapter, whose cost every
    upload pays on the event loop, the one core that serves them all. Anything else
    (multipart forms, gzip, chunked or large bodies) goes to ``post_instances``.
    Errors raised here reach the application's exception handlers as those of any
    route, so the answers are the same.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = length = encoding = None
        for name, value in scope["headers"]:  # the first of each, as Request.headers
            if name == b"content-length":
                length = value if length is None else length
            elif name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"content-encoding":
                encoding = value if encoding is None else encoding
        if (
            length is None
            or not length.isdigit()
            or int(length) > SPOOL_LIMIT
            or (content_type is not None and content_type.startswith(b"multipart/form-data"))
            or (encoding is not None and encoding.strip().lower() not in (b"", b"identity"))
        ):
            request = Request(scope, receive, send)
            response = await post_instances(request)
            await response(scope, receive, send)
            return
        archive: Archive = scope["app"].state.archive
        origin = scope_origin(scope)
        data = await _read_body(receive)
        if uploads.is_zip(data[:4]):
            result = await _in_thread(uploads.store_zip, archive, io.BytesIO(data), origin)
            await _send_json(send, result)
            return
        if not data:
            raise BadFileFormat("Received an empty DICOM file")
        if may_store_on_loop(scope, archive, len(data)):
            stored = store(archive, data, origin)
        else:
            stored = await _in_thread(store, archive, data, origin)
        await _send_json(send, stored.to_json())


def may_store_on_loop(scope: Scope, archive: Archive, size: int) -> bool:
    """Whether an upload may be stored right here, blocking the event loop: when its
    connection is the only one this process serves (no other request can wait on the
    loop meanwhile), the file is not large, and storing is quick
    (``stores_quickly``). This saves the two cross-thread wake-ups of
    the hand-off to an upload thread and back, measured at 8-9 % of the CPU of a small
    upload; a process serving several connections keeps storing in threads, so that
    one upload's disk wait does not hold the others up."""
    return (
        scope.get(SOLE_CONNECTION, False)
        and size <= ON_LOOP_LIMIT
        and not scope.get(LUA_SCOPE_KEY)
        and stores_quickly(archive)
    )


async def _read_body(receive: Receive) -> bytes:
    """The whole body from the ASGI messages (one chunk in the common case)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                chunks.append(body)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_JSON_TYPE = JSON_DOCUMENT.encode("latin-1")
_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def json_answer(content: object) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body ``json_response`` gives a successful answer."""
    body = orjson.dumps(content, option=_JSON_OPTIONS)
    return [(b"content-length", b"%d" % len(body)), (b"content-type", _JSON_TYPE)], body


async def _send_json(send: Send, content: object) -> None:
    """The answer ``json_response`` gives (same headers, same bytes), sent directly."""
    headers, body = json_answer(content)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def post_instances(request: Request) -> Response:
    """``POST /instances`` in general (see ``PostInstances`` for the common case)."""
    archive = archive_of(request)
    origin = _origin(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=100000, max_part_size=1 << 30)
        try:
            for _name, value in form.multi_items():
                if isinstance(value, str):
                    continue
                data = await value.read()
                await run_in_threadpool(_store_any, archive, data, origin)
        finally:
            await form.close()
        return Response(b"", 200)

    data = await _small_plain_body(request)
    if data is None:  # large, encoded or of unknown size: spooled (to disk if large)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT) as spool:
            await _spool_body(request, spool)
            spool.seek(0)
            head = spool.read(4)
            spool.seek(0)
            if uploads.is_zip(head):
                result = await run_in_threadpool(uploads.store_zip, archive, spool, origin)
                return json_response(result)
            data = spool.read()
    elif uploads.is_zip(data[:4]):
        result = await run_in_threadpool(uploads.store_zip, archive, io.BytesIO(data), origin)
        return json_response(result)
    if not data:
        raise BadFileFormat("Received an empty DICOM file")
    stored = await run_in_threadpool(store, archive, data, origin)
    return json_response(stored.to_json())


async def _small_plain_body(request: Request) -> bytes | None:
    """The body in memory when it is not encoded and announces a size up to
    ``SPOOL_LIMIT``: its chunks joined once, where a spool would copy it twice (write,
    then read back). ``None``: the caller spools it."""
    headers = request.headers
    length = headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > SPOOL_LIMIT:
        return None
    if headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    chunks = [chunk async for chunk in request.stream()]
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _spool_body(request: Request, spool: IO[bytes]) -> None:
    """Copy the body to ``spool``, inflating it on the way when it is gzip-encoded
    (as Orthanc peers send it with ``Compress``)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        async for chunk in request.stream():
            spool.write(chunk)
        return
    if encoding != "gzip":
        raise BadRequest(f"Unsupported Content-Encoding: {encoding}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        async for chunk in request.stream():
            spool.write(inflater.decompress(chunk))
        spool.write(inflater.flush())
    except zlib.error as exc:
        raise BadFileFormat(f"Cannot decompress the gzip body: {exc}") from exc
    if not inflater.eof:
        raise BadFileFormat("Truncated gzip body")


def _store_any(archive, data: bytes, origin: Origin):  # type: ignore[no-untyped-def]
    import io

    if uploads.is_zip(data[:4]):
        return uploads.store_zip(archive, io.BytesIO(data), origin)
    return store(archive, data, origin).to_json()


#: Files up to this size are read on the event loop (from the page cache, that is
#: cheaper than a thread hop); larger ones are read on the thread pool.
INLINE_READ_LIMIT = 4 << 20


async def get_file(request: Request) -> Response:
    archive = archive_of(request)
    headers = {}
    syntax = filename = None
    if request.scope.get("query_string"):  # most downloads have no arguments: skip parsing
        filename = request.query_params.get("filename")
        if filename:
            headers["Content-Disposition"] = content_disposition(filename)
        syntax = request.query_params.get("transcode")
    if syntax is not None:  # Orthanc 1.12: the file in another transfer syntax
        target = transcoding.parse_syntax(syntax)
        quality = transcoding.parse_quality(
            request.query_params.get("lossy-quality"), archive.settings
        )
        data = await run_in_threadpool(
            _transcoded_file, archive, request.path_params["id"], target, quality
        )
        return Response(data, 200, media_type="application/dicom", headers=headers)
    att = reading.dicom_attachment(archive, request.path_params["id"])
    if not filename:  # as Orthanc, named after the stored file
        headers["Content-Disposition"] = content_disposition(default_filename(att))
    if offers_zero_copy(request.scope):
        stored = attachments_io.open_as_is(archive.storage, att)
        if stored is not None:
            return StoredFileResponse(stored, "application/dicom", headers)
    if att.uncompressed_size <= INLINE_READ_LIMIT:
        data = attachments_io.read(archive.storage, att)
    else:
        data = await run_in_threadpool(attachments_io.read, archive.storage, att)
    return Response(data, 200, media_type="application/dicom", headers=headers)


class DirectFileDownloads:
    """``GET /instances/{id}/file`` answered before the framework's routing.

    A download is the most frequent request of a viewer or a migration, and the
    routing, error and request layers cost more Python than the download itself.
    Only the plain case is taken here (no arguments, a stored file that can be sent
    as it is): anything else, or any error, goes the usual way through ``app``,
    which answers it as every route does.
    """

    def __init__(self, app: ASGIApp, archive: Archive) -> None:
        self.app = app
        self.archive = archive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        public_id = plain_download_id(scope) if offers_zero_copy(scope) else None
        if public_id is not None:
            response = stored_file_response(self.archive, public_id)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def plain_download_id(scope: Scope) -> str | None:
    """The instance a plain download asks for (``GET /instances/{id}/file`` without
    arguments), else None."""
    path: str = scope.get("path", "")
    if (
        scope["method"] != "GET"
        or scope.get("query_string")
        or not path.startswith("/instances/")
        or not path.endswith("/file")
    ):
        return None
    public_id = path[11:-5]
    return public_id if public_id and "/" not in public_id else None


def stored_file_response(archive: Archive, public_id: str) -> StoredFileResponse | None:
    try:
        att = reading.dicom_attachment(archive, public_id)
        stored = attachments_io.open_as_is(archive.storage, att)
    except (DicomhubError, OSError):  # the usual way answers it as every error
        return None
    if stored is None:
        return None
    headers = {"Content-Disposition": content_disposition(default_filename(att))}
    return StoredFileResponse(stored, "application/dicom", headers)


def stored_file_descriptor(archive: Archive, public_id: str) -> tuple[int, int, bytes] | None:
    """``stored_file_response`` for the connection's express lane: the file's
    descriptor (the caller closes it), its size, and the header lines the response
    would carry, without a file object or a response object."""
    try:
        att = reading.dicom_attachment(archive, public_id)
        fd = attachments_io.descriptor_as_is(archive.storage, att)
    except (DicomhubError, OSError):  # the usual way answers it as every error
        return None
    if fd is None:
        return None
    try:
        size = os.lseek(fd, 0, os.SEEK_END)  # cheaper than ``fstat``'s whole record
    except OSError:
        os.close(fd)
        return None
    disposition = content_disposition(default_filename(att)).encode("latin-1")
    return fd, size, _DOWNLOAD_HEADERS % (size, disposition)


#: What ``StoredFileResponse`` writes for a download, in its order.
_DOWNLOAD_HEADERS = (
    b"content-type: application/dicom\r\ncontent-length: %d\r\ncontent-disposition: %s\r\n"
)


async def export_file(request: Request) -> Response:
    """``POST /instances/{id}/export``: the body is a path on the server."""
    if not request.app.state.config.get("RestApiWriteToFileSystemEnabled", False):
        return Response(status_code=403)
    target = (await request.body()).decode("utf-8", "replace")
    await run_in_threadpool(
        reading.write_instance_file, archive_of(request), request.path_params["id"], target
    )
    return json_response({})


def _transcoded_file(archive: Archive, public_id: str, target: str, quality: int) -> bytes:
    return transcoding.transcode_or_fail(reading.instance_file(archive, public_id), target, quality)


def routes() -> list[Route]:
    return [
        Route("/instances", PostInstances(), methods=["POST"], name="post_instances"),
        Route("/instances/{id}/file", get_file, methods=["GET"]),
        Route("/instances/{id}/export", export_file, methods=["POST"]),
    ]
