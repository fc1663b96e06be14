"""``/modalities`` and ``/tools/dicom-echo``: the remote modalities and the synchronous
SCU requests sent to them (C-ECHO, C-STORE).

Answers and errors follow Orthanc 1.10.1 as observed: a PUT or DELETE answers an
empty 200, an unknown modality is "Accessing an inexistent item" (404), a failed
association is "Error in the network protocol" (500). An asynchronous store is a
``DicomModalityStore`` job; queries and retrieves are not here yet.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import ingest, reading
from ..core.errors import BadFileFormat
from ..core.job_requests import wants_job
from ..core.jobs import engine as jobs_engine
from ..core.jobs import types as job_types
from ..core.jobs.engine import JobContext
from ..core.modalities import (
    ModalityRegistry,
    RemoteModality,
    instances_to_send,
    log_exports,
    parse_modality,
)
from ..net import scu
from .common import archive_of, body_bool, expand_arg, resources_in_body
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
    import orjson

    if not body.strip():
        if allow_empty:
            return None
        raise BadFileFormat("Must provide a JSON value")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadFileFormat("Must provide a JSON value") from exc


def _options(body: Any) -> Mapping[str, Any]:
    return body if isinstance(body, dict) else {}


def _timeout(request: Request, body: Mapping[str, Any], modality: RemoteModality) -> float:
    """The request's ``Timeout``, else the modality's, else ``DicomScuTimeout``."""
    value = body.get("Timeout")
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadFileFormat('"Timeout" must be a positive integer')
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
    await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    return json_response(_OPERATIONS)


async def get_configuration(request: Request) -> Response:
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    return json_response(modality.to_json())


async def put_modality(request: Request) -> Response:
    modality = parse_modality(_json_body(await request.body(), allow_empty=False))
    await run_in_threadpool(registry_of(request).put, request.path_params["name"], modality)
    return text_response("")


async def delete_modality(request: Request) -> Response:
    await run_in_threadpool(registry_of(request).delete, request.path_params["name"])
    return text_response("")


# ---- C-ECHO -----------------------------------------------------------------------
async def echo_modality(request: Request) -> Response:
    body = _options(_json_body(await request.body(), allow_empty=True))
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    await run_in_threadpool(
        scu.echo,
        modality,
        _local_aet(request, body, modality),
        _timeout(request, body, modality),
    )
    return json_response({})


async def dicom_echo(request: Request) -> Response:
    """``/tools/dicom-echo``: echo a modality described in the body, not registered."""
    body = _json_body(await request.body(), allow_empty=False)
    options: Mapping[str, Any] = {}
    if isinstance(body, dict):
        options = body
        body = {k: v for k, v in body.items() if k not in ("Timeout", "CheckFind")}
    modality = parse_modality(body)
    await run_in_threadpool(
        scu.echo,
        modality,
        _local_aet(request, {}, modality),
        _timeout(request, options, modality),
    )
    return json_response({})


# ---- C-STORE ----------------------------------------------------------------------
async def store(request: Request) -> Response:
    body = _json_body(await request.body(), allow_empty=False)
    resources = resources_in_body(body)
    options = _options(body)
    asynchronous = wants_job(options)
    commitment = body_bool(options, "StorageCommitment", False)
    originator_aet = options.get("MoveOriginatorAet")
    originator_id = options.get("MoveOriginatorID")
    if originator_aet is not None and not isinstance(originator_aet, str):
        raise BadFileFormat('"MoveOriginatorAet" must be a string')
    if originator_id is not None and (
        isinstance(originator_id, bool) or not isinstance(originator_id, int)
    ):
        raise BadFileFormat('"MoveOriginatorID" must be an integer')

    archive = archive_of(request)
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    local_aet = _local_aet(request, options, modality)
    timeout = _timeout(request, options, modality)
    instances = await run_in_threadpool(instances_to_send, archive, resources)
    if asynchronous:
        return await _submit_store(
            request,
            options,
            resources,
            modality,
            local_aet,
            timeout,
            originator_aet,
            originator_id,
            commitment,
        )
    items = [
        scu.Outgoing(
            i.sop_class_uid,
            i.transfer_syntax,
            lambda public_id=i.public_id: reading.instance_file(archive, public_id),
            i.public_id,
        )
        for i in instances
    ]
    sent, failed = await run_in_threadpool(
        scu.store,
        modality,
        items,
        local_aet,
        timeout,
        originator_aet,
        originator_id,
        body_bool(options, "Permissive", False),
        _transcodes(request.app.state.config),
    )
    await run_in_threadpool(log_exports, archive, sent, modality.aet)
    answer: dict[str, Any] = {
        "Description": "REST API",
        "FailedInstancesCount": failed,
        "InstancesCount": len(sent) + failed,
        "LocalAet": local_aet,
        "RemoteAet": modality.aet,
    }
    if resources:
        answer["ParentResources"] = resources
    if originator_aet is not None:
        answer["MoveOriginatorAET"] = originator_aet
    if originator_id is not None:
        answer["MoveOriginatorID"] = originator_id
    if commitment:
        answer["StorageCommitmentTransactionUID"] = await run_in_threadpool(
            _commit, archive, request.app.state.config, modality, local_aet, timeout, sent
        )
    return json_response(answer)


def _commit(
    archive: Any,
    config: Mapping[str, Any],
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    public_ids: list[str],
) -> str:
    """``StorageCommitment``: ask the modality to commit what was sent (imported here:
    the storage commitment module builds on this one)."""
    from .storage_commitment import store_commitment

    return store_commitment(archive, config, modality, local_aet, timeout, public_ids)


STORE_JOB = "DicomModalityStore"
_STORE_BATCH = 16  # instances per association between two checkpoints of a job


async def _submit_store(
    request: Request,
    options: Mapping[str, Any],
    resources: list[str],
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    originator_aet: str | None,
    originator_id: int | None,
    commitment: bool = False,
) -> Response:
    priority = options.get("Priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise BadFileFormat("Integer value expected in field: Priority")
    parameters = {
        "Resources": resources,
        "Modality": dataclasses.asdict(modality),
        "LocalAet": local_aet,
        "Timeout": timeout,
        "MoveOriginatorAet": originator_aet,
        "MoveOriginatorID": originator_id,
        "Permissive": body_bool(options, "Permissive", False),
        "StorageCommitment": commitment,
    }
    job_id = await run_in_threadpool(
        jobs_engine.submit,
        archive_of(request),
        STORE_JOB,
        parameters,
        priority,
        options.get("UserData"),
    )
    return job_created(job_id)


def _transcodes(config: Mapping[str, Any]) -> bool:
    """``TranscodeDicomProtocol``: decompress for a peer that refused the stored syntax."""
    return bool(config.get("TranscodeDicomProtocol", True))


def run_store_job(context: JobContext) -> None:
    """Send in batches, one association each, so cancel and pause are honoured
    between batches; a restarted job sends everything again, as Orthanc's does."""
    params = context.parameters
    archive = context.archive
    modality = RemoteModality(**params["Modality"])
    instances = instances_to_send(archive, params["Resources"])
    content: dict[str, Any] = {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": len(instances),
        "LocalAet": params["LocalAet"],
        "RemoteAet": modality.aet,
    }
    if params["Resources"]:
        content["ParentResources"] = params["Resources"]
    context.content = content
    for start in range(0, len(instances), _STORE_BATCH):
        context.checkpoint(start / max(1, len(instances)), force=True)
        batch = [
            scu.Outgoing(
                i.sop_class_uid,
                i.transfer_syntax,
                lambda public_id=i.public_id: reading.instance_file(archive, public_id),
                i.public_id,
            )
            for i in instances[start : start + _STORE_BATCH]
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
        content["FailedInstancesCount"] += failed
    if params.get("StorageCommitment"):
        content["StorageCommitmentTransactionUID"] = _commit(
            archive,
            context.config,
            modality,
            params["LocalAet"],
            params["Timeout"],
            [i.public_id for i in instances],
        )


job_types.register_kind(STORE_JOB, run_store_job)


async def store_straight(request: Request) -> Response:
    """Send the DICOM file of the body as is, without storing it here."""
    data = await request.body()
    archive = archive_of(request)
    parsed = await run_in_threadpool(ingest.parse, archive, data)
    modality = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    item = scu.Outgoing(parsed.sop_class_uid, parsed.transfer_syntax, lambda: data)
    await run_in_threadpool(
        functools.partial(scu.store, transcode=_transcodes(request.app.state.config)),
        modality,
        [item],
        _local_aet(request, {}, modality),
        _timeout(request, {}, modality),
    )
    return json_response({"SOPClassUID": parsed.sop_class_uid, "SOPInstanceUID": parsed.sop_uid})


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
