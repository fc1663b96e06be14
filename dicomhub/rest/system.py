"""Server-wide routes: ``/system``, ``/statistics`` and the simple ``/tools``."""

from __future__ import annotations

from datetime import datetime

from pydicom.uid import generate_uid
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import ORTHANC_API_VERSION, __version__
from ..core import reading
from ..core.clock import now_iso
from ..core.errors import BadRequest, ParameterOutOfRange, UnknownResource
from ..dicom.levels import Level
from ..dicom.values import canonical_encoding
from .common import archive_of, inline
from .responses import json_response, text_response
from .workers import group_of

#: Orthanc's REST API revision number for the API level we implement.
API_REVISION = 31
#: dicomhub's own UID root (a UUID-derived root, as PS3.5 B.2 allows).
UID_ROOT = "2.25."


@inline
def system(request: Request) -> Response:
    archive = archive_of(request)
    s = archive.settings
    return json_response(
        {
            "ApiVersion": API_REVISION,
            "Capabilities": {
                "HasExtendedChanges": True,
                "HasExtendedFind": True,
                "HasLabels": True,
            },
            "CheckRevisions": s.check_revisions,
            "DatabaseBackendPlugin": None,
            "DatabaseServerIdentifier": "dicomhub",
            "DatabaseVersion": 6,
            "DicomAet": s.dicom_aet,
            "DicomPort": s.dicom_port,
            "HasLabels": True,
            "HttpPort": s.http_port,
            "IsHttpServerSecure": not request.app.state.config.get("RemoteAccessAllowed", False)
            or bool(request.app.state.config.get("AuthenticationEnabled", True)),
            "MaximumPatientCount": s.maximum_patient_count,
            "MaximumStorageMode": s.maximum_storage_mode,
            "MaximumStorageSize": s.maximum_storage_size_mb,
            "Name": s.name,
            "OverwriteInstances": s.overwrite_instances,
            "PluginsEnabled": False,
            "ReadOnly": False,
            "StorageAreaPlugin": None,
            "StorageCompression": s.storage_compression,
            "UserMetadata": dict(s.user_metadata),
            "Version": ORTHANC_API_VERSION,
            "DicomhubVersion": __version__,
            "Product": "dicomhub",
        }
    )


@inline
def statistics(request: Request) -> Response:
    return json_response(reading.global_statistics(archive_of(request)))


@inline
def tools_now(request: Request) -> Response:
    return text_response(now_iso(utc=True))


@inline
def tools_now_local(request: Request) -> Response:
    return text_response(datetime.now().strftime("%Y%m%dT%H%M%S"))


@inline
def generate_uid_route(request: Request) -> Response:
    level = request.query_params.get("level", "")
    try:
        parsed = Level.parse(level)
    except ValueError as exc:  # the reference answers 404 to a missing or unknown level
        raise UnknownResource(f"Unknown resource level: {level!r}") from exc
    if parsed == Level.PATIENT:
        import uuid

        return text_response(str(uuid.uuid4()))
    return text_response(generate_uid(prefix=UID_ROOT))


async def lookup(request: Request) -> Response:
    body = await request.body()
    try:
        value = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("The body must be UTF-8 text") from exc
    return json_response(await run_in_threadpool(reading.lookup, archive_of(request), value))


@inline
def get_default_encoding(request: Request) -> Response:
    return text_response(archive_of(request).settings.default_encoding)


async def put_default_encoding(request: Request) -> Response:
    body = await request.body()
    value = body.decode("utf-8", "replace").strip()
    encoding = canonical_encoding(value)
    if encoding is None:
        raise ParameterOutOfRange(f"Unknown encoding: {value}")
    if group := group_of(request):  # held in each process: every HTTP worker takes it
        return await group.apply_everywhere(request, body)
    archive_of(request).settings.default_encoding = encoding
    return text_response(encoding)  # as Orthanc, the name of the encoding now in use


def routes() -> list[Route]:
    return [
        Route("/system", system, methods=["GET"]),
        Route("/statistics", statistics, methods=["GET"]),
        Route("/tools/now", tools_now, methods=["GET"]),
        Route("/tools/now-local", tools_now_local, methods=["GET"]),
        Route("/tools/generate-uid", generate_uid_route, methods=["GET"]),
        Route("/tools/lookup", lookup, methods=["POST"]),
        Route("/tools/default-encoding", get_default_encoding, methods=["GET"]),
        Route("/tools/default-encoding", put_default_encoding, methods=["PUT"]),
    ]
