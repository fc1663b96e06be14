"""Label routes (Orthanc 1.12): ``/{level}/{id}/labels[/{label}]`` and ``/tools/labels``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import labels
from ..dicom.levels import Level
from .common import archive_of
from .metadata import bare, per_level
from .responses import json_response, text_response


def list_labels(request: Request, level: Level) -> Response:
    return json_response(labels.list_labels(archive_of(request), request.path_params["id"], level))


def get_label(request: Request, level: Level) -> Response:
    """An empty 200 when the resource carries the label, a bare 404 when it does not."""
    found = labels.has_label(
        archive_of(request), request.path_params["id"], level, request.path_params["label"]
    )
    return text_response("") if found else bare(404)


def put_label(request: Request, level: Level) -> Response:
    labels.add_label(
        archive_of(request), request.path_params["id"], level, request.path_params["label"]
    )
    return text_response("")


def delete_label(request: Request, level: Level) -> Response:
    labels.remove_label(
        archive_of(request), request.path_params["id"], level, request.path_params["label"]
    )
    return text_response("")


def all_labels(request: Request) -> Response:
    return json_response(labels.all_labels(archive_of(request)))


def routes() -> list[Route]:
    return [
        Route("/tools/labels", all_labels, methods=["GET"]),
        *per_level("/labels", list_labels, "GET"),
        *per_level("/labels/{label}", get_label, "GET"),
        *per_level("/labels/{label}", put_label, "PUT"),
        *per_level("/labels/{label}", delete_label, "DELETE"),
    ]
