"""``/peers``: the Orthanc peers and the sending of resources to them.

Answers follow Orthanc 1.10.1 as observed: PUT and DELETE answer an empty 200, an
unknown peer is "Unknown resource" (404) on its sub-routes and "Accessing an
inexistent item" (404) on DELETE, ``GET /peers/{unknown}`` an empty 404. The store
answer carries ``Compress``, ``Description``, the instance counts, the peer (with
its header values, without its password) and the size sent. A store is an
``OrthancPeerStore`` job, which a synchronous request waits for; ``Transcode``
(with ``LossyQuality``) changes the transfer syntax of each file sent (a file that
cannot be transcoded goes as stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import modification_job, transcoding
from ..core.errors import BadFileFormat
from ..core.job_requests import boolean_field, priority, store_body, wants_job
from ..core.jobs import engine as jobs_engine
from ..core.jobs import types as job_types
from ..core.modalities import check_symbolic_name, instances_to_send
from ..core.peers import PeerRegistry, parse_peer, peer_system, store_straight
from .common import archive_of, expand_arg, resources_in_body
from .jobs import job_created
from .responses import json_response, text_response

#: What ``GET /peers/{id}`` lists (Orthanc's sub-routes of a peer).
_OPERATIONS = ["configuration", "store", "store-straight", "system"]


def registry_of(request: Request) -> PeerRegistry:
    """One registry per application (its state lives in the index, shared by workers)."""
    state = request.app.state
    registry = getattr(state, "peers", None)
    if registry is None:
        registry = PeerRegistry(archive_of(request), state.config)
        state.peers = registry
    return registry


def _json_body(body: bytes) -> Any:
    if not body.strip():
        raise BadFileFormat("Must provide a JSON value")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadFileFormat("Must provide a JSON value") from exc


async def list_peers(request: Request) -> Response:
    peers = await run_in_threadpool(registry_of(request).all)
    if expand_arg(request, False):
        return json_response({name: peer.to_json() for name, peer in peers.items()})
    return json_response(list(peers))


async def get_peer(request: Request) -> Response:
    peers = await run_in_threadpool(registry_of(request).all)
    if request.path_params["name"] not in peers:
        return Response(status_code=404)
    return json_response(_OPERATIONS)


async def get_configuration(request: Request) -> Response:
    peer = await run_in_threadpool(registry_of(request).get, request.path_params["name"])
    return json_response(peer.to_json())


async def put_peer(request: Request) -> Response:
    check_symbolic_name(request.path_params["name"])
    peer = await run_in_threadpool(parse_peer, _json_body(await request.body()))
    await run_in_threadpool(registry_of(request).put, request.path_params["name"], peer)
    return text_response("")


async def delete_peer(request: Request) -> Response:
    await run_in_threadpool(registry_of(request).delete, request.path_params["name"])
    return text_response("")


async def system(request: Request) -> Response:
    answer = await run_in_threadpool(peer_system, registry_of(request), request.path_params["name"])
    return json_response(answer)


async def store(request: Request) -> Response:
    """An ``OrthancPeerStore`` job; a synchronous request (the default) waits for it
    and answers its content, as Orthanc does, so it is listed in ``/jobs`` too."""
    body = store_body(await request.body())
    resources = resources_in_body(body)
    options: Mapping[str, Any] = body if isinstance(body, dict) else {}
    job_priority = priority(options)
    asynchronous = wants_job(options)
    compress = boolean_field(options, "Compress", False)
    # As Orthanc's peer store job reads ``Transcode`` (before the peer is looked up).
    target = transcoding.parse_job_syntax(options["Transcode"]) if "Transcode" in options else None
    quality = transcoding.parse_quality(options.get("LossyQuality"), archive_of(request).settings)
    archive = archive_of(request)
    name = request.path_params["name"]
    peer = await run_in_threadpool(registry_of(request).get, name)
    instances = await run_in_threadpool(instances_to_send, archive, resources)
    parameters: dict[str, Any] = {"Peer": name, "Resources": resources, "Compress": compress}
    if target is not None:
        parameters.update(Transcode=str(target), LossyQuality=quality)
    parameters["Synchronous"] = not asynchronous
    content = job_types.peer_store_content(
        peer.to_store_json(), resources, len(instances), compress
    )
    job_id = await run_in_threadpool(
        jobs_engine.submit,
        archive,
        job_types.PEER_STORE,
        parameters,
        job_priority,
        options.get("UserData"),
        content,
    )
    if asynchronous:
        return job_created(job_id)
    return json_response(await run_in_threadpool(modification_job.wait, archive, job_id))


async def store_straight_route(request: Request) -> Response:
    """Forward the body (a DICOM file) to the peer as is, without storing it here."""
    data = await request.body()
    answer = await run_in_threadpool(
        store_straight, registry_of(request), request.path_params["name"], data
    )
    return json_response(answer)


def routes() -> list[Route]:
    return [
        Route("/peers", list_peers, methods=["GET"]),
        Route("/peers/{name}", get_peer, methods=["GET"]),
        Route("/peers/{name}", put_peer, methods=["PUT"]),
        Route("/peers/{name}", delete_peer, methods=["DELETE"]),
        Route("/peers/{name}/configuration", get_configuration, methods=["GET"]),
        Route("/peers/{name}/system", system, methods=["GET"]),
        Route("/peers/{name}/store", store, methods=["POST"]),
        Route("/peers/{name}/store-straight", store_straight_route, methods=["POST"]),
    ]
