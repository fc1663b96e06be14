"""Small helpers every REST module uses to reach ``core`` from a request."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..core.archive import Archive
from ..core.describe import RESPONSE_CONTENT, TagStyle
from ..core.errors import BadFileFormat, BadRequest, ParameterOutOfRange
from ..dicom.levels import Level
from ..dicom.tag_names import parse_tag
from .responses import flag


def archive_of(request: Request) -> Archive:
    return request.app.state.archive


def level_of(request: Request) -> Level:
    return Level.from_plural(request.path_params["level"])


def tag_style(request: Request) -> str:
    if flag(request, "short"):
        return TagStyle.SHORT
    if flag(request, "full"):
        return TagStyle.FULL
    return TagStyle.NAMES


def requested_tags(request: Request) -> list[int] | None:
    raw = request.query_params.get("requested-tags") or request.query_params.get("RequestedTags")
    if not raw:
        return None
    tags: list[int] = []
    for part in raw.split(";"):
        part = part.strip()
        if not part:
            continue
        try:
            tags.append(parse_tag(part))
        except ValueError as exc:
            raise BadRequest(f"Unknown DICOM tag: {part}") from exc
    return tags


def response_content(values: list[str]) -> frozenset[str]:
    """Check ``ResponseContent`` names (Orthanc 1.12.5): unknown ones are refused."""
    for value in values:
        if value not in RESPONSE_CONTENT:
            raise ParameterOutOfRange(f"Unsupported value for ResponseContent: {value}")
    return frozenset(values)


def response_content_arg(request: Request) -> frozenset[str] | None:
    """The ``response-content`` argument of the list routes, comma-separated."""
    raw = request.query_params.get("response-content")
    if raw is None:
        return None
    return response_content([part.strip() for part in raw.split(",") if part.strip()])


def expand_arg(request: Request, default: bool) -> bool:
    if "expand" not in request.query_params:
        return default
    value = request.query_params["expand"].strip().lower()
    return value not in ("false", "0", "no", "off")


def inline(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
    """Run a quick read-only handler on the event loop instead of the thread pool.

    The hop to a worker thread and back costs more (about 0.1 ms) than the index
    reads of most GET routes; handlers that write, wait on locks or read large files
    stay on the thread pool.
    """

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        return handler(request)

    endpoint.inline_handler = handler  # type: ignore[attr-defined] # for ``InlineRoutes``
    return endpoint


def resources_in_body(body: Any) -> list[str]:
    """The resources a store request names: one ID, a list, or ``{"Resources": [...]}``."""
    if isinstance(body, str):
        return [body]
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        if "Resources" not in body:
            raise BadFileFormat('Missing field in JSON: "Resources"')
        items = body["Resources"]
        if not isinstance(items, list):
            raise BadFileFormat('JSON field "Resources" must contain an array')
    else:
        raise BadFileFormat("Must provide a JSON object, or a JSON array of strings")
    if not all(isinstance(item, str) for item in items):
        raise BadFileFormat("Resources must be given by their Orthanc identifiers")
    return items


def body_bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    """A Boolean field of a JSON body (Orthanc answers "Bad file format" otherwise)."""
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadFileFormat(f'"{key}" must be a Boolean')
    return value
