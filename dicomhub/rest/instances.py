"""Uploading instances and reading their files."""

from __future__ import annotations

import io
import tempfile
import zlib
from typing import IO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import attachments_io, reading, transcoding, uploads
from ..core.archive import Archive
from ..core.errors import BadFileFormat, BadRequest
from ..core.ingest import Origin, store
from ..scripting.asgi_call import LUA_SCOPE_KEY
from .common import archive_of
from .responses import json_response

SPOOL_LIMIT = 64 << 20


def _origin(request: Request) -> Origin:
    if request.scope.get(LUA_SCOPE_KEY):  # RestApiPost("/instances") from a script
        return Origin(origin="Lua")
    client = request.scope.get("client")
    return Origin(
        origin="RestApi",
        remote_ip=client[0] if client else "",
        http_username=request.scope.get("dicomhub.user", "") or "",
    )


async def post_instances(request: Request) -> Response:
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
    syntax = None
    if request.scope.get("query_string"):  # most downloads have no arguments: skip parsing
        filename = request.query_params.get("filename")
        if filename:
            if any(c in filename for c in '"\r\n'):
                raise BadRequest("Invalid filename")
            headers["Content-Disposition"] = f'filename="{filename}"'
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
    if att.uncompressed_size <= INLINE_READ_LIMIT:
        data = attachments_io.read(archive.storage, att)
    else:
        data = await run_in_threadpool(attachments_io.read, archive.storage, att)
    return Response(data, 200, media_type="application/dicom", headers=headers)


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
        Route("/instances", post_instances, methods=["POST"]),
        Route("/instances/{id}/file", get_file, methods=["GET"]),
        Route("/instances/{id}/export", export_file, methods=["POST"]),
    ]
