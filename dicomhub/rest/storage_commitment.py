"""Storage commitment over REST: ``POST /modalities/{id}/storage-commitment`` asks a
modality to commit instances, ``/storage-commitment/{id}`` shows its report and
``/storage-commitment/{id}/remove`` deletes the committed instances here.

Shapes as Orthanc 1.10.1 answers them: the request answers ``{"ID", "Path"}`` with
the transaction UID; an unknown transaction is "Accessing an inexistent item" (404).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import deletion
from ..core import storage_commitment as sc
from ..core.archive import Archive
from ..core.errors import BadFileFormat, BadSequenceOfCalls
from ..core.modalities import RemoteModality
from ..dicom.levels import Level
from ..net import storage_commitment as scu
from .common import archive_of
from .modalities import _local_aet, _timeout, registry_of
from .responses import json_response


def reports_of(request: Request) -> sc.CommitmentReports:
    state = request.app.state
    reports = getattr(state, "commitment_reports", None)
    if reports is None:
        reports = sc.CommitmentReports(archive_of(request), state.config)
        state.commitment_reports = reports
    return reports


def _dicom_instances(value: Any) -> list[sc.Reference]:
    if not isinstance(value, list):
        raise BadFileFormat('"DicomInstances" must be a list')
    found = []
    for item in value:
        if isinstance(item, dict):
            sop_class, sop = item.get("SOPClassUID"), item.get("SOPInstanceUID")
        elif isinstance(item, list) and len(item) == 2:
            sop_class, sop = item
        else:
            sop_class = sop = None
        if not isinstance(sop_class, str) or not isinstance(sop, str):
            raise BadFileFormat("Each DICOM instance needs a SOPClassUID and a SOPInstanceUID")
        found.append(sc.Reference(sop_class, sop))
    return found


def commit(
    archive: Archive,
    reports: sc.CommitmentReports,
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    references: list[sc.Reference],
) -> str:
    """Record a pending report and send the N-ACTION; returns the transaction UID."""
    uid = sc.new_transaction_uid()
    reports.start(uid, modality.aet)
    scu.request(modality, local_aet, timeout, uid, references, reports)
    return uid


async def request_commitment(request: Request) -> Response:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise BadFileFormat("Must provide a JSON object with a list of resources")
    archive = archive_of(request)
    references: list[sc.Reference] = []
    if "DicomInstances" in body:
        references += _dicom_instances(body["DicomInstances"])
    if "Resources" in body:
        resources = body["Resources"]
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise BadFileFormat('"Resources" must be a list of Orthanc identifiers')
        references += await run_in_threadpool(sc.references_of_resources, archive, resources)
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    uid = await run_in_threadpool(
        commit,
        archive,
        reports_of(request),
        modality,
        _local_aet(request, body, modality),
        _timeout(request, body, modality),
        references,
    )
    return json_response({"ID": uid, "Path": f"/storage-commitment/{uid}"})


async def get_report(request: Request) -> Response:
    report = await run_in_threadpool(reports_of(request).get, request.path_params["id"])
    return json_response(report.to_json())


def _remove(archive: Archive, report: sc.Report) -> None:
    if report.status != "Success":
        raise BadSequenceOfCalls(
            "Cannot remove the instances of a storage commitment that has not succeeded"
        )
    for public_id in sc.local_instances(archive, report.success):
        deletion.delete_resource(archive, public_id, Level.INSTANCE)


async def remove_committed(request: Request) -> Response:
    report = await run_in_threadpool(reports_of(request).get, request.path_params["id"])
    await run_in_threadpool(_remove, archive_of(request), report)
    return json_response({})


def routes() -> list[Route]:
    return [
        Route("/modalities/{name}/storage-commitment", request_commitment, methods=["POST"]),
        Route("/storage-commitment/{id}", get_report, methods=["GET"]),
        Route("/storage-commitment/{id}/remove", remove_committed, methods=["POST"]),
    ]
