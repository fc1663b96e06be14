"""Response helpers shared by the REST modules."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..core.errors import BadRequest

_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def json_response(content: Any, status_code: int = 200) -> Response:
    """JSON with sorted keys and indentation, as Orthanc answers."""
    return Response(
        orjson.dumps(content, option=_JSON_OPTIONS), status_code, media_type="application/json"
    )


def text_response(content: str | bytes, status_code: int = 200) -> Response:
    return Response(content, status_code, media_type="text/plain")


def empty_json() -> Response:
    return json_response({})


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
    """An Orthanc boolean query argument: present without value, or true/1."""
    if name not in request.query_params:
        return False
    value = request.query_params[name].strip().lower()
    return value in ("", "true", "1", "yes", "on")


def int_arg(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"Argument '{name}' must be an integer") from exc
    if value < 0:
        raise BadRequest(f"Argument '{name}' must be a positive integer")
    return value
