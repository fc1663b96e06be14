"""DICOM tags as JSON: ``/instances/{id}/tags`` and friends, ``/header``, ``/content``,
and the tag views of the other levels."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import instance_tags
from ..core.errors import UnknownDicomTag
from ..dicom.content import UnknownTagError, parse_tag
from ..dicom.levels import Level
from . import convertors  # noqa: F401 - registers {level:...}
from .common import archive_of, inline, level_of
from .responses import JSON_DOCUMENT, flag, json_response


def _format(request: Request, default: str = "full") -> str:
    if flag(request, "simplify"):
        return "simplify"
    if flag(request, "short"):
        return "short"
    return default


def _ignore_length(request: Request) -> list[int]:
    raw = request.query_params.get("ignore-length")
    if not raw:
        return []
    try:
        return [parse_tag(part) for part in raw.split(",") if part.strip()]
    except UnknownTagError as exc:
        # Orthanc's error (27) without details, as a 400 (docs/compatibility.md).
        raise UnknownDicomTag() from exc


def _raw_json(body: bytes) -> Response:
    return Response(body, 200, media_type=JSON_DOCUMENT)


@inline
def get_tags(request: Request) -> Response:
    return _raw_json(
        instance_tags.tags_json_bytes(
            archive_of(request),
            request.path_params["id"],
            _format(request),
            _ignore_length(request),
            whole=flag(request, "whole"),
        )
    )


@inline
def get_simplified_tags(request: Request) -> Response:
    return _raw_json(
        instance_tags.tags_json_bytes(
            archive_of(request),
            request.path_params["id"],
            "simplify",
            _ignore_length(request),
            whole=flag(request, "whole"),
        )
    )


@inline
def get_header(request: Request) -> Response:
    return json_response(
        instance_tags.header(archive_of(request), request.path_params["id"], _format(request))
    )


@inline
def get_content(request: Request) -> Response:
    path = request.path_params.get("path", "")
    found = instance_tags.content(
        archive_of(request), request.path_params["id"], [p for p in path.split("/") if p]
    )
    if isinstance(found, bytes):
        return Response(found, 200, media_type="application/octet-stream")
    return json_response(found)


def get_shared_tags(request: Request) -> Response:
    return json_response(
        instance_tags.shared_tags(
            archive_of(request), request.path_params["id"], level_of(request), _format(request)
        )
    )


@inline
def get_module(request: Request) -> Response:
    return json_response(
        instance_tags.module(
            archive_of(request),
            request.path_params["id"],
            level_of(request),
            _format(request),
            ignore_length=_ignore_length(request),
        )
    )


@inline
def get_module_patient(request: Request) -> Response:
    return json_response(
        instance_tags.module(
            archive_of(request),
            request.path_params["id"],
            Level.STUDY,
            _format(request),
            patient_module=True,
            ignore_length=_ignore_length(request),
        )
    )


def get_instances_tags(request: Request) -> Response:
    return json_response(
        instance_tags.instances_tags(
            archive_of(request),
            request.path_params["id"],
            level_of(request),
            _format(request),
            _ignore_length(request),
        )
    )


def invalidate_tags(request: Request) -> Response:
    instance_tags.invalidate_cached_tags()
    return Response(b"", 200)


def routes() -> list[Route]:
    upper = "{level:upper_levels}"
    return [
        Route("/tools/invalidate-tags", invalidate_tags, methods=["POST"]),
        Route("/instances/{id}/tags", get_tags, methods=["GET"]),
        Route("/instances/{id}/simplified-tags", get_simplified_tags, methods=["GET"]),
        Route("/instances/{id}/header", get_header, methods=["GET"]),
        Route("/instances/{id}/content", get_content, methods=["GET"]),
        Route("/instances/{id}/content/{path:path}", get_content, methods=["GET"]),
        Route("/{level:levels}/{id}/module", get_module, methods=["GET"]),
        Route("/studies/{id}/module-patient", get_module_patient, methods=["GET"]),
        Route(f"/{upper}/{{id}}/shared-tags", get_shared_tags, methods=["GET"]),
        Route(f"/{upper}/{{id}}/instances-tags", get_instances_tags, methods=["GET"]),
    ]
