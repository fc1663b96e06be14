"""``POST /tools/find`` and ``POST /tools/count-resources``: the body, checked as Orthanc does.

Only the translation of the JSON body lives here; the search itself is
``core/find.py``, shared with C-FIND and the explorer. Unknown fields are ignored,
as Orthanc ignores them, so clients written for newer versions keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from ..core.job_requests import boolean_field
from ..core.matching import parse_constraint
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


def _tag(name: str) -> int:
    """A tag of ``RequestedTags`` or ``OrderBy`` (1.12 fields): unknown, a 400 naming it."""
    try:
        return parse_tag(name)
    except ValueError as exc:
        raise UnknownDicomTag(f"Unknown DICOM tag: {name}") from exc


def _query_tag(name: str) -> int:
    """A key of ``Query``: unknown, Orthanc's 500 names nothing (no ``Details``)."""
    try:
        return parse_tag(name)
    except ValueError as exc:
        raise UnknownQueryTag() from exc


def _string_list(body: dict[str, Any], name: str, split: bool = False) -> list[str]:
    value = body.get(name, [])
    if split and isinstance(value, str):
        value = [v.strip() for v in value.split(";") if v.strip()]  # as ?requested-tags=
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
            _tag(item["Key"])
            if kind == "DicomTag"
            else core_metadata.resolve(settings, item["Key"])
        )
        keys.append(core_find.OrderKey(kind, key, direction == "DESC"))
    return keys


@dataclass
class FindBody:
    """A find or count body, checked: the search and how ``/tools/find`` answers it."""

    query: core_find.FindQuery
    expand: bool = False
    style: str = TagStyle.NAMES


def _expand(body: dict[str, Any]) -> bool:
    """``Expand``: a Boolean, or as Orthanc reads them a number (non-zero: true) or null."""
    value = body.get("Expand")
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return bool(value)
    raise BadRequest('Field "Expand" should be a Boolean')  # Orthanc: an internal error


def _style(body: dict[str, Any]) -> str:
    """``Short``, then ``Full`` unless ``Short`` is true, with Orthanc's error (code 15)."""
    if boolean_field(body, "Short", False):
        return TagStyle.SHORT
    if boolean_field(body, "Full", False):
        return TagStyle.FULL
    return TagStyle.NAMES


def _query(value: Any, case_sensitive: bool) -> dict[int, str]:
    """The ``Query`` object as tags and values, each checked as Orthanc checks it."""
    if value is None:
        return {}  # as Orthanc reads it: no constraint
    if not isinstance(value, dict):
        # Orthanc: an internal error (500); a client error here.
        raise BadRequest('Field "Query" is missing, or should be a JSON object')
    tags: dict[str, int] = {}
    # Orthanc's JSON objects keep their keys sorted: of several bad keys, the error
    # reported is the first one's in that order (its value's type, then its name,
    # then a wildcard where none is allowed). An empty value matches anything: its
    # name is not even read (an unknown one is no error).
    for name in sorted(value):
        text = value[name]
        if not isinstance(text, str):
            raise BadRequest(f'Tag "{name}" should be associated with a string')
        if text == "":
            continue
        tags[name] = _query_tag(name)
        parse_constraint(tags[name], text, case_sensitive)
    return {tags[name]: text for name, text in value.items() if name in tags}


def parse_body(body: dict[str, Any], settings: Any, expand: bool = True) -> FindBody:
    """The checked body of a find (``expand``: read ``Expand``) or count request.

    Fields are checked in the order Orthanc 1.10.1 checks them, so that a body with
    several errors gets the same one: ``Level`` and ``Query`` present, ``CaseSensitive``,
    ``Limit``, ``Since``, ``Expand``, the level's name, each key of ``Query``, ``Short``,
    ``Full``; then the fields of later versions (labels, parents, metadata, order).
    """
    level_name = body.get("Level")
    if not isinstance(level_name, str):
        raise BadRequest('Field "Level" is missing, or should be a string')
    if "Query" not in body:
        raise BadRequest('Field "Query" is missing, or should be a JSON object')
    case_sensitive = _bool(body, "CaseSensitive")
    limit = _count(body, "Limit")
    since = _count(body, "Since")
    expanded = _expand(body) if expand else False
    try:
        level = Level.parse(level_name)
    except ValueError as exc:
        raise ParameterOutOfRange() from exc
    query = _query(body["Query"], case_sensitive)
    style = _style(body)
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
    find_query = core_find.FindQuery(
        level=level,
        query=query,
        case_sensitive=case_sensitive,
        labels=labels,
        labels_constraint=constraint,
        parents=parents,
        metadata={core_metadata.resolve(settings, k): v for k, v in metadata_json.items()},
        order_by=_order_by(body, settings),
        limit=limit,
        since=since,
    )
    return FindBody(find_query, expanded, style)


async def find(request: Request) -> Response:
    archive = archive_of(request)
    body = _load_object(await request.body())
    parsed = parse_body(body, archive.settings)
    query, expand, style = parsed.query, parsed.expand, parsed.style
    core_find.check_paging(query, "Limit" in body or "Since" in body)
    requested = [_tag(t) for t in _string_list(body, "RequestedTags", split=True)]
    content = None
    if "ResponseContent" in body:
        content = response_content(_string_list(body, "ResponseContent"))
    result = await run_in_threadpool(
        core_find.find, archive, query, expand, style, requested or None, content
    )
    return json_response(result)


async def count_resources(request: Request) -> Response:
    archive = archive_of(request)
    # ``Expand`` means nothing to a count; ``Short`` and ``Full`` are checked (1.12 lists them).
    query = parse_body(_load_object(await request.body()), archive.settings, expand=False).query
    return json_response({"Count": await run_in_threadpool(core_find.count, archive, query)})


def routes() -> list[Route]:
    return [
        Route("/tools/find", find, methods=["POST"]),
        Route("/tools/count-resources", count_resources, methods=["POST"]),
    ]
