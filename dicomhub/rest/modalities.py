"""``/modalities`` and ``/tools/dicom-echo``: the remote modalities and the SCU
requests sent to them (C-ECHO, C-STORE).

Answers and errors follow Orthanc 1.10.1 as observed: a PUT or DELETE answers an
empty 200, an unknown modality is "Accessing an inexistent item" (404), a failed
association is "Error in the network protocol" (500). A store is a
``DicomModalityStore`` job, which a synchronous request waits for (as Orthanc's, it
is then listed in ``/jobs``); queries and retrieves are not here yet.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import ingest, modification_job, reading
from ..core import storage_commitment as commitments
from ..core.errors import BadFileFormat, BadParameterType, ParameterOutOfRange
from ..core.job_requests import boolean_field, priority, store_body, wants_job
from ..core.jobs import engine as jobs_engine
from ..core.jobs import types as job_types
from ..core.jobs.engine import JobContext
from ..core.modalities import (
    ModalityRegistry,
    RemoteModality,
    check_symbolic_name,
    instances_to_send,
    log_exports,
    parse_modality,
)
from ..net import query_scu, scu
from ..net import storage_commitment as commitment_scu
from .common import archive_of, expand_arg, resources_in_body
from .jobs import job_created
from .responses import json_response, text_response

#: What ``GET /modalities/{id}`` lists (Orthanc's list of sub-routes).
_OPERATIONS = [
    "configuration",
    "echo",
    "find",
    "find-instance",
    "find-patient",
    "find-series",
    "find-study",
    "find-worklist",
    "get",
    "move",
    "query",
    "storage-commitment",
    "store",
    "store-straight",
]


def registry_of(request: Request) -> ModalityRegistry:
    """One registry per application (its state lives in the index, shared by workers)."""
    state = request.app.state
    registry = getattr(state, "modalities", None)
    if registry is None:
        registry = ModalityRegistry(archive_of(request), state.config)
        state.modalities = registry
    return registry


def _json_body(body: bytes, allow_empty: bool) -> Any:
    """The JSON body; a body that is not JSON is "Bad file format", which Orthanc
    words "Cannot parse the JSON body" where an empty body is allowed (an echo)
    and leaves without details on ``PUT``."""
    import orjson

    if not body.strip():
        if allow_empty:
            return None
        raise BadFileFormat()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadFileFormat("Cannot parse the JSON body" if allow_empty else None) from exc


def _options(body: Any) -> Mapping[str, Any]:
    return body if isinstance(body, dict) else {}


def _timeout(request: Request, body: Mapping[str, Any], modality: RemoteModality) -> float:
    """The request's ``Timeout``, else the modality's, else ``DicomScuTimeout``."""
    if "Timeout" in body:
        value = body["Timeout"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadFileFormat("Integer value expected in field: Timeout")
        if value < 0:
            raise BadFileFormat("Unsigned integer value expected in field: Timeout")
        if value > 0:
            return float(value)
    if modality.timeout > 0:
        return float(modality.timeout)
    return float(request.app.state.config.get("DicomScuTimeout") or 10)


def _local_aet(request: Request, body: Mapping[str, Any], modality: RemoteModality) -> str:
    value = body.get("LocalAet")
    if value is not None and not isinstance(value, str):
        raise BadFileFormat('"LocalAet" must be a string')
    return value or modality.local_aet or str(request.app.state.config.get("DicomAet") or "ORTHANC")


# ---- the list ---------------------------------------------------------------------
async def list_modalities(request: Request) -> Response:
    modalities = await run_in_threadpool(registry_of(request).all)
    if expand_arg(request, False):
        return json_response({name: m.to_json() for name, m in modalities.items()})
    return json_response(list(modalities))


async def get_modality(request: Request) -> Response:
    """The sub-routes of a known modality; an unknown one is an empty 404, as in Orthanc."""
    modality = await run_in_threadpool(registry_of(request).find, request.path_params["name"])
    if modality is None:
        return Response(status_code=404)
    return json_response(_OPERATIONS)


async def get_configuration(request: Request) -> Response:
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    return json_response(modality.to_json())


async def put_modality(request: Request) -> Response:
    check_symbolic_name(request.path_params["name"])
    modality = parse_modality(_json_body(await request.body(), allow_empty=False))
    await run_in_threadpool(registry_of(request).put, request.path_params["name"], modality)
    return text_response("")


async def delete_modality(request: Request) -> Response:
    await run_in_threadpool(registry_of(request).delete, request.path_params["name"])
    return text_response("")


# ---- C-ECHO -----------------------------------------------------------------------
def _check_find(body: Mapping[str, Any]) -> bool:
    value = body.get("CheckFind", False)
    if not isinstance(value, bool):
        raise BadFileFormat("Boolean value expected in field: CheckFind")
    return value


def _echo(modality: RemoteModality, local_aet: str, timeout: float, check_find: bool) -> None:
    """C-ECHO; with ``CheckFind``, a study-level C-FIND with no key after it, as
    Orthanc's check that the modality also answers queries."""
    scu.echo(modality, local_aet, timeout)
    if check_find:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query_scu.find(
            modality, local_aet, timeout, query, StudyRootQueryRetrieveInformationModelFind
        )


async def echo_modality(request: Request) -> Response:
    body = _options(_json_body(await request.body(), allow_empty=True))
    check_find = _check_find(body)
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    await run_in_threadpool(
        _echo,
        modality,
        _local_aet(request, body, modality),
        _timeout(request, body, modality),
        check_find,
    )
    return json_response({})


async def dicom_echo(request: Request) -> Response:
    """``/tools/dicom-echo``: echo a modality described in the body, not registered."""
    body = _json_body(await request.body(), allow_empty=False)
    options: Mapping[str, Any] = {}
    if isinstance(body, dict):
        options = body
        body = {k: v for k, v in body.items() if k not in ("Timeout", "CheckFind")}
    check_find = _check_find(options)
    modality = parse_modality(body)
    await run_in_threadpool(
        _echo,
        modality,
        _local_aet(request, {}, modality),
        _timeout(request, options, modality),
        check_find,
    )
    return json_response({})


# ---- C-STORE ----------------------------------------------------------------------
STORE_JOB = "DicomModalityStore"
_STORE_BATCH = 16  # instances per association between two checkpoints of a job


def _move_originator(options: Mapping[str, Any], own_aet: str) -> tuple[str | None, int | None]:
    """``MoveOriginatorAet`` / ``MoveOriginatorID`` as Orthanc reads them: a wrong
    type is "Bad type for a parameter", an ID beyond 16 bits "Parameter out of
    range"; an ID of 0 (or none) means no originator, and an ID without an AET has
    this server's own AET as originator."""
    aet = options.get("MoveOriginatorAet", "")
    if not isinstance(aet, str):
        raise BadParameterType()
    number = options.get("MoveOriginatorID", 0)
    if isinstance(number, bool) or not isinstance(number, int):
        raise BadParameterType()
    if not 0 <= number <= 0xFFFF:
        raise ParameterOutOfRange()
    if number == 0:
        return None, None
    return aet or own_aet, number


def _store_content(params: Mapping[str, Any], instances_count: int) -> dict[str, Any]:
    """Orthanc's ``Content`` of a ``DicomModalityStore`` job, from its submission on."""
    content: dict[str, Any] = {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": instances_count,
        "LocalAet": params["LocalAet"],
        "RemoteAet": params["Modality"]["aet"],
    }
    if params["Resources"]:
        content["ParentResources"] = params["Resources"]
    if params.get("MoveOriginatorID") is not None:
        content["MoveOriginatorAET"] = params["MoveOriginatorAet"]
        content["MoveOriginatorID"] = params["MoveOriginatorID"]
    if params.get("StorageCommitmentTransactionUID"):
        content["StorageCommitmentTransactionUID"] = params["StorageCommitmentTransactionUID"]
    return content


async def store(request: Request) -> Response:
    """A ``DicomModalityStore`` job; a synchronous request (the default) waits for it
    and answers its content, as Orthanc does, so it is listed in ``/jobs`` too."""
    body = store_body(await request.body())
    resources = resources_in_body(body)
    options = _options(body)
    job_priority = priority(options)
    asynchronous = wants_job(options)
    if not isinstance(options.get("StorageCommitment", False), bool):
        raise BadParameterType()
    commitment = bool(options.get("StorageCommitment", False))
    if not isinstance(options.get("LocalAet", ""), str):
        raise BadParameterType()
    config = request.app.state.config
    originator_aet, originator_id = _move_originator(
        options, str(config.get("DicomAet") or "ORTHANC")
    )
    permissive = boolean_field(options, "Permissive", False)

    archive = archive_of(request)
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    local_aet = _local_aet(request, options, modality)
    timeout = _timeout(request, options, modality)
    instances = await run_in_threadpool(instances_to_send, archive, resources)
    parameters = {
        "Resources": resources,
        "Modality": dataclasses.asdict(modality),
        "LocalAet": local_aet,
        "Timeout": timeout,
        "MoveOriginatorAet": originator_aet,
        "MoveOriginatorID": originator_id,
        "Permissive": permissive,
        "StorageCommitment": commitment,
        # fixed now, as Orthanc shows it from the submission on
        "StorageCommitmentTransactionUID": (
            commitments.new_transaction_uid() if commitment else None
        ),
        "Synchronous": not asynchronous,
    }
    job_id = await run_in_threadpool(
        jobs_engine.submit,
        archive,
        STORE_JOB,
        parameters,
        job_priority,
        options.get("UserData"),
        _store_content(parameters, len(instances)),
    )
    if asynchronous:
        return job_created(job_id)
    return json_response(await run_in_threadpool(modification_job.wait, archive, job_id))


def _commit(
    archive: Any,
    config: Mapping[str, Any],
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    public_ids: list[str],
    transaction_uid: str,
) -> None:
    """``StorageCommitment``: ask the modality to commit what was sent, under the
    transaction UID the job was given at its submission."""
    references = commitments.references_of_resources(archive, public_ids)
    reports = commitments.CommitmentReports(archive, config)
    reports.start(transaction_uid, modality.aet)
    commitment_scu.request(modality, local_aet, timeout, transaction_uid, references, reports)


def _transcodes(config: Mapping[str, Any]) -> bool:
    """``TranscodeDicomProtocol``: decompress for a peer that refused the stored syntax."""
    return bool(config.get("TranscodeDicomProtocol", True))


def run_store_job(context: JobContext) -> None:
    """A synchronous store waits for its job: the outcome is left for it."""
    modification_job.run_and_publish(context, _send)


def _send(context: JobContext) -> None:
    """Send in batches, one association each, so cancel and pause are honoured
    between batches; a restarted job sends everything again, as Orthanc's does. A
    synchronous store sends everything in one association, as it always did."""
    params = context.parameters
    archive = context.archive
    modality = RemoteModality(**params["Modality"])
    instances = instances_to_send(archive, params["Resources"])
    content = _store_content(params, len(instances))
    context.content = content
    batch_size = max(1, len(instances)) if params.get("Synchronous") else _STORE_BATCH
    stored: list[str] = []
    for start in range(0, len(instances), batch_size):
        context.checkpoint(start / max(1, len(instances)), force=True)
        batch = [
            scu.Outgoing(
                i.sop_class_uid,
                i.transfer_syntax,
                lambda public_id=i.public_id: reading.instance_file(archive, public_id),
                i.public_id,
            )
            for i in instances[start : start + batch_size]
        ]
        sent, failed = scu.store(
            modality,
            batch,
            params["LocalAet"],
            params["Timeout"],
            params["MoveOriginatorAet"],
            params["MoveOriginatorID"],
            params["Permissive"],
            _transcodes(context.config),
        )
        log_exports(archive, sent, modality.aet)
        stored += sent
        content["FailedInstancesCount"] += failed
    if params.get("StorageCommitment"):
        uid = params.get("StorageCommitmentTransactionUID") or commitments.new_transaction_uid()
        content["StorageCommitmentTransactionUID"] = uid
        _commit(
            archive,
            context.config,
            modality,
            params["LocalAet"],
            params["Timeout"],
            stored,
            uid,
        )


job_types.register_kind(STORE_JOB, run_store_job)


async def store_straight(request: Request) -> Response:
    """Send the DICOM file of the body as is, without storing it here."""
    data = await request.body()
    archive = archive_of(request)
    parsed = await run_in_threadpool(ingest.parse, archive, data)
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    item = scu.Outgoing(parsed.sop_class_uid or "", parsed.transfer_syntax, lambda: data)
    await run_in_threadpool(
        functools.partial(scu.store, transcode=_transcodes(request.app.state.config)),
        modality,
        [item],
        _local_aet(request, {}, modality),
        _timeout(request, {}, modality),
    )
    return json_response(
        {"SOPClassUID": parsed.sop_class_uid or "", "SOPInstanceUID": parsed.sop_uid}
    )


def routes() -> list[Route]:
    return [
        Route("/modalities", list_modalities, methods=["GET"]),
        Route("/modalities/{name}", get_modality, methods=["GET"]),
        Route("/modalities/{name}", put_modality, methods=["PUT"]),
        Route("/modalities/{name}", delete_modality, methods=["DELETE"]),
        Route("/modalities/{name}/configuration", get_configuration, methods=["GET"]),
        Route("/modalities/{name}/echo", echo_modality, methods=["POST"]),
        Route("/modalities/{name}/store", store, methods=["POST"]),
        Route("/modalities/{name}/store-straight", store_straight, methods=["POST"]),
        Route("/tools/dicom-echo", dicom_echo, methods=["POST"]),
    ]
