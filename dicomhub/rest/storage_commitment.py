"""Storage commitment over REST: ``POST /modalities/{id}/storage-commitment`` asks a
modality to commit instances, ``/storage-commitment/{id}`` shows its report and
``/storage-commitment/{id}/remove`` deletes the committed instances here.

Shapes as Orthanc 1.10.1 answers them: the request answers ``{"ID", "Path"}`` with
the transaction UID; an unknown transaction is "Accessing an inexistent item" (404).
The body is checked in Orthanc's order and with its words: ``Resources`` (each one
looked up: unknown or malformed is 404), then ``DicomInstances``, then the modality,
then empty UIDs; a body with neither field is refused. Removing the instances of a
transaction that has not succeeded (failed, or still pending) is "Bad sequence of
calls" with HTTP 500, as Orthanc answers this route.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import deletion
from ..core import storage_commitment as sc
from ..core.archive import Archive
from ..core.errors import BadFileFormat, BadSequenceOfCalls, ParameterOutOfRange
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


def _styled(value: Any, depth: int = 0) -> str:
    """``value`` as Orthanc's JSON writer prints it in error details: tab-indented,
    ``"key" : value``, numbers as C prints doubles (``%.17g``)."""
    tabs = "\t" * depth
    if isinstance(value, dict) and value:
        members = [
            f"{tabs}\t{json.dumps(key)} : {_member(item, depth + 1)}" for key, item in value.items()
        ]
        return "{\n" + ",\n".join(members) + f"\n{tabs}}}"
    if isinstance(value, list) and value:
        items = [f"{tabs}\t{_styled(item, depth + 1)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{tabs}]"
    if isinstance(value, float):
        text = f"{value:.17g}"
        return text if any(c in text for c in ".eni") else text + ".0"
    return json.dumps(value)  # bool, null, int, string (non-ASCII escaped), {} and []


def _member(value: Any, depth: int) -> str:
    if isinstance(value, dict | list) and value:  # a container starts on its own line
        return "\n" + "\t" * depth + _styled(value, depth)
    return _styled(value, depth)


def _found(value: Any) -> str:
    return _styled(value) + "\n"


def _dicom_instances(value: Any) -> list[sc.Reference]:
    """``DicomInstances``: ``[SOPClassUID, SOPInstanceUID]`` pairs or objects."""
    if not isinstance(value, list):
        raise BadFileFormat('The "DicomInstances" field must provide an array of DICOM instances')
    found = []
    for item in value:
        if isinstance(item, list):
            if len(item) != 2 or not all(isinstance(uid, str) for uid in item):
                raise BadFileFormat(
                    "An instance entry must provide an array with 2 strings: "
                    "SOP Class UID and SOP Instance UID"
                )
            sop_class, sop = item
        elif isinstance(item, dict):
            sop_class, sop = item.get("SOPClassUID"), item.get("SOPInstanceUID")
            if not isinstance(sop_class, str) or not isinstance(sop, str):
                raise BadFileFormat(  # Orthanc's words, typo and unclosed quote included
                    "An instance entry must provide an object with 2 string fiels: "
                    '"SOPClassUID" and "SOPInstanceUID'
                )
        else:
            raise BadFileFormat(
                "JSON array or object is expected to specify one instance to be queried, "
                f"found: {_found(item)}"
            )
        found.append(sc.Reference(sop_class, sop))
    return found


def _resources(archive: Archive, value: Any) -> list[sc.Reference]:
    """``Resources``: Orthanc identifiers of any level, looked up in order, so that an
    unknown one before an item that is not a string is what gets reported."""
    if not isinstance(value, list):
        raise BadFileFormat('The "Resources" field must provide an array of Orthanc resources')
    public_ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            sc.references_of_resources(archive, public_ids)
            raise BadFileFormat(
                f'The "Resources" field must provide an array of strings, found: {_found(item)}'
            )
        public_ids.append(item)
    return sc.references_of_resources(archive, public_ids)


def _check_uids(references: list[sc.Reference]) -> None:
    for ref in references:
        if not ref.sop_class_uid or not ref.sop_instance_uid:
            raise ParameterOutOfRange(
                "The SOP class/instance UIDs cannot be empty, found: "
                f'"{ref.sop_class_uid}" / "{ref.sop_instance_uid}"'
            )


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
    if "Resources" not in body and "DicomInstances" not in body:
        raise BadFileFormat(
            "Empty storage commitment request, one of these fields is mandatory: "
            '"Resources" or "DicomInstances"'
        )
    archive = archive_of(request)
    references: list[sc.Reference] = []
    if "Resources" in body:
        references += await run_in_threadpool(_resources, archive, body["Resources"])
    if "DicomInstances" in body:
        references += _dicom_instances(body["DicomInstances"])
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    local_aet = _local_aet(request, body, modality)
    timeout = _timeout(request, body, modality)
    _check_uids(references)
    uid = await run_in_threadpool(
        commit, archive, reports_of(request), modality, local_aet, timeout, references
    )
    return json_response({"ID": uid, "Path": f"/storage-commitment/{uid}"})


async def get_report(request: Request) -> Response:
    report = await run_in_threadpool(reports_of(request).get, request.path_params["id"])
    return json_response(report.to_json())


class _RemoveRefused(BadSequenceOfCalls):
    """Orthanc answers this one "Bad sequence of calls" with HTTP 500, not 400."""

    http_status = 500


def _remove(archive: Archive, uid: str, report: sc.Report) -> None:
    if report.status != "Success":
        raise _RemoveRefused(
            f"Cannot remove DICOM instances after failure in storage commitment transaction: {uid}"
        )
    for public_id in sc.local_instances(archive, report.success):
        deletion.delete_resource(archive, public_id, Level.INSTANCE)


async def remove_committed(request: Request) -> Response:
    uid = request.path_params["id"]
    report = await run_in_threadpool(reports_of(request).get, uid)
    await run_in_threadpool(_remove, archive_of(request), uid, report)
    return json_response({})


def routes() -> list[Route]:
    return [
        Route("/modalities/{name}/storage-commitment", request_commitment, methods=["POST"]),
        Route("/storage-commitment/{id}", get_report, methods=["GET"]),
        Route("/storage-commitment/{id}/remove", remove_committed, methods=["POST"]),
    ]
