"""``POST /tools/find`` and ``POST /tools/count-resources``: the body, checked as Orthanc does.

Only the translation of the JSON body lives here; the search itself is
``core/find.py``, shared with C-FIND and the explorer. Unknown fields are ignored,
as Orthanc ignores them, so clients written for newer versions keep working.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import find as core_find
from ..core import labels as core_labels
from ..core import metadata as core_metadata
from ..core.describe import TagStyle
from ..core.errors import BadRequest, ParameterOutOfRange, UnknownDicomTag
from ..dicom.levels import Level
from ..dicom.tag_names import parse_tag
from .common import archive_of, response_content
from .responses import json_response


class UnknownQueryTag(UnknownDicomTag):
    """Orthanc answers an unknown tag in ``Query`` with a 500, not the usual 400."""

    http_status = 500


_PARENTS = {
    "ParentPatient": Level.PATIENT,
    "ParentStudy": Level.STUDY,
    "ParentSeries": Level.SERIES,
}


def _load_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("The body must contain a JSON object")
    return body


def _bool(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f'Field "{name}" should be a Boolean')
    return value


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f'Field "{name}" should be an integer')
    if value < 0:
        raise ParameterOutOfRange(f'Field "{name}" should be a positive integer')
    return value


def _tag(name: str, error: type[Exception] = UnknownQueryTag) -> int:
    try:
        return parse_tag(name)
    except ValueError as exc:
        raise error(f"Unknown DICOM tag: {name}") from exc


def _string_list(body: dict[str, Any], name: str, split: bool = False) -> list[str]:
    value = body.get(name, [])
    if split and isinstance(value, str):
        value = [v for v in value.split(";") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f'Field "{name}" should be a list of strings')
    return value


def _order_by(body: dict[str, Any], settings: Any) -> list[core_find.OrderKey]:
    raw = body.get("OrderBy", [])
    if not isinstance(raw, list):
        raise BadRequest('Field "OrderBy" should be a list')
    keys = []
    for item in raw:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) for k in ("Type", "Key", "Direction")
        ):
            raise BadRequest('Field "OrderBy" should contain objects with Type, Key and Direction')
        kind, direction = item["Type"], item["Direction"].upper()
        if kind not in ("DicomTag", "Metadata") or direction not in ("ASC", "DESC"):
            raise ParameterOutOfRange(
                'OrderBy: "Type" must be "DicomTag" or "Metadata" and "Direction" "ASC" or "DESC"'
            )
        key = (
            _tag(item["Key"], UnknownDicomTag)
            if kind == "DicomTag"
            else core_metadata.resolve(settings, item["Key"])
        )
        keys.append(core_find.OrderKey(kind, key, direction == "DESC"))
    return keys


def parse_query(body: dict[str, Any], settings: Any) -> core_find.FindQuery:
    """The ``FindQuery`` of a find or count body; raises Orthanc's 400 on bad input."""
    level_name = body.get("Level")
    if not isinstance(level_name, str):
        raise BadRequest('Field "Level" is missing, or should be a string')
    query_json = body.get("Query")
    if not isinstance(query_json, dict):
        raise BadRequest('Field "Query" is missing, or should be a JSON object')
    try:
        level = Level.parse(level_name)
    except ValueError as exc:
        raise ParameterOutOfRange() from exc
    query: dict[int, str] = {}
    for name, value in query_json.items():
        if not isinstance(value, str):
            raise BadRequest(f'Tag "{name}" should be associated with a string')
        query[_tag(name)] = value
    labels = _string_list(body, "Labels")
    for label in labels:
        core_labels.check_valid(label)
    constraint = body.get("LabelsConstraint", "All")
    if constraint not in ("All", "Any", "None"):
        raise ParameterOutOfRange('Field "LabelsConstraint" must be "All", "Any" or "None"')
    parents: dict[Level, str] = {}
    for key, parent_level in _PARENTS.items():
        if key in body:
            if not isinstance(body[key], str):
                raise BadRequest(f'Field "{key}" should be a string')
            parents[parent_level] = body[key]
    metadata_json = body.get("MetadataQuery", {})
    if not isinstance(metadata_json, dict) or not all(
        isinstance(v, str) for v in metadata_json.values()
    ):
        raise BadRequest('Field "MetadataQuery" should be a JSON object of strings')
    return core_find.FindQuery(
        level=level,
        query=query,
        case_sensitive=_bool(body, "CaseSensitive"),
        labels=labels,
        labels_constraint=constraint,
        parents=parents,
        metadata={core_metadata.resolve(settings, k): v for k, v in metadata_json.items()},
        order_by=_order_by(body, settings),
        limit=_count(body, "Limit"),
        since=_count(body, "Since"),
    )


async def find(request: Request) -> Response:
    archive = archive_of(request)
    body = _load_object(await request.body())
    query = parse_query(body, archive.settings)
    core_find.check_paging(query, "Limit" in body or "Since" in body)
    expand = _bool(body, "Expand")
    style = TagStyle.NAMES
    if _bool(body, "Short"):
        style = TagStyle.SHORT
    elif _bool(body, "Full"):
        style = TagStyle.FULL
    requested = [_tag(t, UnknownDicomTag) for t in _string_list(body, "RequestedTags", split=True)]
    content = None
    if "ResponseContent" in body:
        content = response_content(_string_list(body, "ResponseContent"))
    result = await run_in_threadpool(
        core_find.find, archive, query, expand, style, requested or None, content
    )
    return json_response(result)


async def count_resources(request: Request) -> Response:
    archive = archive_of(request)
    query = parse_query(_load_object(await request.body()), archive.settings)
    return json_response({"Count": await run_in_threadpool(core_find.count, archive, query)})


def routes() -> list[Route]:
    return [
        Route("/tools/find", find, methods=["POST"]),
        Route("/tools/count-resources", count_resources, methods=["POST"]),
    ]
