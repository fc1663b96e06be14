"""Attachment routes at every level: ``/{level}/{id}/attachments[/{name}[/...]]``.

Every read of one attachment answers its ``ETag`` (``"<revision>-<md5>"``) and
honours ``If-None-Match``; PUT and DELETE take ``If-Match``, as for metadata.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..core import attachments, attachments_io
from ..core.errors import BadRequest, UnknownResource
from ..core.metadata import Expected, ProtectedEntry
from ..dicom.levels import Level
from ..store.index.records import AttachmentRow
from .common import archive_of
from .http_protocol import offers_zero_copy
from .metadata import bare, etag_of, not_modified, per_level, revision_header
from .responses import StoredFileResponse, json_response, text_response

CHUNK = 1 << 20

#: What ``GET .../attachments/{name}`` lists, as Orthanc 1.12 does.
OPERATIONS = [
    "compress",
    "compressed-data",
    "compressed-md5",
    "compressed-size",
    "data",
    "info",
    "is-compressed",
    "md5",
    "size",
    "uncompress",
    "verify-md5",
]


def _target(request: Request) -> tuple[str, int]:
    archive = archive_of(request)
    return request.path_params["id"], attachments.resolve(
        archive.settings, request.path_params["name"]
    )


def _with_etag(response: Response, att: AttachmentRow) -> Response:
    response.headers["ETag"] = etag_of(Expected(att.revision, att.uncompressed_md5))
    return response


def _info(request: Request, level: Level) -> tuple[AttachmentRow, Response | None]:
    """The attachment's row, and the 304 answer to give instead if the client is current."""
    public_id, content_type = _target(request)
    att = attachments.get_info(archive_of(request), public_id, level, content_type)
    return att, not_modified(request, Expected(att.revision, att.uncompressed_md5))


#: What a download name may not hold: it would end the quoted header value.
_NOT_IN_FILENAMES = re.compile(r'["\\\r\n]')


def content_disposition(filename: str) -> str:
    """The ``Content-Disposition`` of a download named ``filename`` (UTF-8 names too)."""
    if _NOT_IN_FILENAMES.search(filename):
        raise BadRequest("Invalid filename")
    if filename.isascii():
        return f'filename="{filename}"'
    fallback = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


# ---- handlers ---------------------------------------------------------------


def list_attachments(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    numbers = attachments.list_attachments(archive, request.path_params["id"], level)
    names = [(attachments.name_of(archive.settings, n), n) for n in numbers]
    if "full" in request.query_params:
        return json_response(dict(names))
    return json_response([name for name, _ in names])


def operations(request: Request, level: Level) -> Response:
    att, cached = _info(request, level)
    return cached or _with_etag(json_response(OPERATIONS), att)


def info(request: Request, level: Level) -> Response:
    att, cached = _info(request, level)
    if cached:
        return cached
    body = {
        "CompressedMD5": att.compressed_md5,
        "CompressedSize": att.compressed_size,
        "ContentType": att.content_type,
        "UncompressedMD5": att.uncompressed_md5,
        "UncompressedSize": att.uncompressed_size,
        "Uuid": att.uuid,
    }
    return _with_etag(json_response(body), att)


def _text_field(field: str):  # type: ignore[no-untyped-def]
    def handler(request: Request, level: Level) -> Response:
        att, cached = _info(request, level)
        if cached:
            return cached
        if field == "is-compressed":
            text = "1" if attachments.is_compressed(att) else "0"
        else:
            text = str(
                {
                    "size": att.uncompressed_size,
                    "compressed-size": att.compressed_size,
                    "md5": att.uncompressed_md5,
                    "compressed-md5": att.compressed_md5,
                }[field]
            )
        return _with_etag(text_response(text), att)

    return handler


def _open(request: Request, level: Level) -> tuple[AttachmentRow, BinaryIO | None, Response | None]:
    """The row and an open handle on the stored blob, or the 304 answer instead."""
    public_id, content_type = _target(request)
    att, handle = attachments.open_stored(archive_of(request), public_id, level, content_type)
    try:
        cached = not_modified(request, Expected(att.revision, att.uncompressed_md5))
    except BaseException:
        handle.close()
        raise
    if cached is not None:
        handle.close()
        return att, None, cached
    return att, handle, None


def data(request: Request, level: Level) -> Response:
    """The content, uncompressed, streamed from storage when it is stored as is."""
    att, handle, cached = _open(request, level)
    if handle is None:
        return cached  # type: ignore[return-value]
    try:
        filename = request.query_params.get("filename") or attachments.default_filename(att)
        headers = {"Content-Disposition": content_disposition(filename)}
        media_type = attachments.mime_of(archive_of(request).settings, att.content_type)
        if attachments.is_compressed(att):
            with handle:
                content = attachments_io.decompress(handle.read())
            # The configured MIME type as is (no charset added to a text/* type), as
            # when the stored file is sent (_as_stored).
            headers["Content-Type"] = media_type
            return _with_etag(Response(content, 200, headers), att)
    except BaseException:
        handle.close()
        raise
    return _with_etag(_as_stored(request, handle, att, headers, media_type), att)


def compressed_data(request: Request, level: Level) -> Response:
    """The content as stored on disk (zlib with size prefix when compressed)."""
    att, handle, cached = _open(request, level)
    if handle is None:
        return cached  # type: ignore[return-value]
    headers = {}
    filename = request.query_params.get("filename")
    try:
        if filename:
            headers["Content-Disposition"] = content_disposition(filename)
    except BaseException:
        handle.close()
        raise
    return _with_etag(_as_stored(request, handle, att, headers, attachments.DEFAULT_MIME), att)


def _as_stored(
    request: Request, handle: BinaryIO, att: AttachmentRow, headers: dict[str, str], mime: str
) -> Response:
    """The stored blob as the answer: sent by the server from its descriptor when it
    can (``http_protocol.py``), else streamed in chunks."""
    if offers_zero_copy(request.scope):
        return StoredFileResponse(handle, mime, headers)
    headers["Content-Length"] = str(att.compressed_size)
    headers["Content-Type"] = mime  # as is: no charset added to a text/* type
    return StreamingResponse(_chunks(handle), 200, headers)


async def put_attachment(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    public_id, content_type = _target(request)
    body = await request.body()
    if not attachments.is_user_content(content_type):
        return bare(403)
    expected = revision_header(request, "If-Match")
    try:
        att = await run_in_threadpool(
            attachments.put_attachment, archive, public_id, level, content_type, body, expected
        )
    except ProtectedEntry:
        return bare(403)
    return _with_etag(json_response({}), att)


def delete_attachment(request: Request, level: Level) -> Response:
    archive = archive_of(request)
    public_id, content_type = _target(request)
    if not attachments.may_delete(content_type):
        return bare(403)
    expected = revision_header(request, "If-Match")
    try:
        found = attachments.delete_attachment(archive, public_id, level, content_type, expected)
    except ProtectedEntry:
        return bare(403)
    if not found:
        raise UnknownResource()  # as Orthanc: no Details
    return text_response("")


def _compression(compressed: bool):  # type: ignore[no-untyped-def]
    def handler(request: Request, level: Level) -> Response:
        public_id, content_type = _target(request)
        attachments.set_compression(archive_of(request), public_id, level, content_type, compressed)
        return json_response({})

    return handler


def verify_md5(request: Request, level: Level) -> Response:
    public_id, content_type = _target(request)
    ok = attachments.verify_md5(archive_of(request), public_id, level, content_type)
    if not ok:  # no such attachment, or a corrupted one: Orthanc answers a bare 400
        return bare(400)
    return json_response({})


def routes() -> list[Route]:
    base = "/attachments/{name}"
    found = [
        *per_level("/attachments", list_attachments, "GET"),
        *per_level(base, operations, "GET"),
        *per_level(base, put_attachment, "PUT"),
        *per_level(base, delete_attachment, "DELETE"),
        *per_level(base + "/info", info, "GET"),
        *per_level(base + "/data", data, "GET"),
        *per_level(base + "/compressed-data", compressed_data, "GET"),
        *per_level(base + "/compress", _compression(True), "POST"),
        *per_level(base + "/uncompress", _compression(False), "POST"),
        *per_level(base + "/verify-md5", verify_md5, "POST"),
    ]
    for field in ("size", "compressed-size", "md5", "compressed-md5", "is-compressed"):
        found.extend(per_level(f"{base}/{field}", _text_field(field), "GET"))
    return found
