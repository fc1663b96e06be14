"""Response helpers shared by the REST modules."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, BinaryIO

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..core.errors import BadRequest
from .http_protocol import ZERO_COPY_SEND, offers_zero_copy

_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


#: The type of a JSON document, as Orthanc sends it; the bare ``{}`` that answers an
#: operation (echo, shutdown, a stored attachment, ...) goes as ``application/json``.
JSON_DOCUMENT = "application/json; charset=utf-8"


def json_response(content: Any, status_code: int = 200) -> Response:
    """JSON with sorted keys and indentation, as Orthanc answers."""
    media_type = "application/json" if content == {} else JSON_DOCUMENT
    return Response(orjson.dumps(content, option=_JSON_OPTIONS), status_code, media_type=media_type)


def text_response(
    content: str | bytes, status_code: int = 200, media_type: str = "text/plain"
) -> Response:
    """A text answer with ``media_type`` exactly, as Orthanc sends it: without the
    ``; charset=utf-8`` Starlette adds to a ``text/*`` type given as ``media_type``."""
    return Response(content, status_code, headers={"Content-Type": media_type})


def empty_json() -> Response:
    return json_response({})


class StoredFileResponse(Response):
    """A stored file, sent whole from its open descriptor.

    Where the server offers the ASGI zero copy send (ours does: ``http_protocol.py``),
    the kernel sends the file from the page cache; elsewhere (another ASGI server, a
    Lua script's in-process call) it is read and sent as an ordinary body. Either
    way the file is closed once sent.
    """

    def __init__(
        self,
        file: BinaryIO,
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.file = file
        # The file's own size, not the index's: what is sent is what is stored.
        self.size = size = os.fstat(file.fileno()).st_size
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.body = b""
        self.raw_headers = [
            (b"content-type", media_type.encode("latin-1")),
            (b"content-length", str(size).encode("latin-1")),
        ]
        for name, value in (headers or {}).items():
            self.raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.file:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if offers_zero_copy(scope):
                message = {
                    "type": ZERO_COPY_SEND,
                    "file": self.file,
                    "offset": 0,
                    "count": self.size,
                }
            else:
                message = {"type": "http.response.body", "body": self.file.read(self.size)}
            await send(message)


def parse_json_body(body: bytes, expect: type | tuple[type, ...] | None = None) -> Any:
    try:
        value = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The body must contain a valid JSON document") from exc
    if expect is not None and not isinstance(value, expect):
        names = {dict: "a JSON object", list: "a JSON array", str: "a JSON string"}
        wanted = names.get(expect, "valid JSON") if isinstance(expect, type) else "valid JSON"
        raise BadRequest(f"The body must contain {wanted}")
    return value


def flag(request: Request, name: str) -> bool:
    """An Orthanc boolean query argument: on when present (Orthanc 1.10.1 reads only
    its presence), except with an explicit false value, as Orthanc 1.12 reads
    ``expand=false`` (``expand_arg``)."""
    if name not in request.query_params:
        return False
    value = request.query_params[name].strip().lower()
    return value not in ("false", "0", "no", "off")


_LEXICAL_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def lexical_integer(raw: str, bits: int, signed: bool) -> int | None:
    """``raw`` read as Orthanc reads a number argument (Boost's ``lexical_cast`` to a
    C++ integer of ``bits`` bits), or ``None`` where Orthanc's cast fails.

    Only an optional sign and decimal digits are accepted: no spaces, no ``1.5``, no
    ``0x10``, not the empty string, nothing out of the type's range. As in C++, an
    unsigned type takes a minus sign by wrapping around (``-1`` is its largest value):
    Orthanc answers such values rather than refusing them, so the routes must see them.
    """
    if not _LEXICAL_INTEGER.fullmatch(raw):
        return None
    value = int(raw)
    if signed:
        half = 1 << (bits - 1)
        return value if -half <= value < half else None
    if abs(value) >> bits:
        return None
    return value % (1 << bits)
