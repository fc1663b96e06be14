"""The kinds of jobs: what each one does once the runner hands it a context.

A kind keeps no state between steps outside its ``JobContext``: a job is started
again from its saved parameters after a pause or a restart, so the parameters must
say everything needed to redo it.
"""

from __future__ import annotations

import os
from typing import Any

from ...dicom.levels import Level
from .. import archives, reading, transcoding
from ..modalities import instances_to_send
from ..modification_job import run_and_publish
from ..peers import PeerRegistry, post_instance
from .engine import JobContext, JobKind

ARCHIVE, MEDIA = "Archive", "Media"
_MB = 1024 * 1024


def archive_parameters(
    resources: list[str],
    level: Level | None,
    media: bool,
    extended: bool,
    utf8: bool,
) -> dict[str, Any]:
    return {
        "Resources": resources,
        "Level": None if level is None else int(level),
        "Extended": extended,
        "Utf8": utf8,
        "Media": media,
    }


def _plan(context: JobContext) -> list[archives.ArchiveItem]:
    params = context.parameters
    level = None if params.get("Level") is None else Level(params["Level"])
    if params.get("Media"):
        return archives.plan_media(context.archive, params["Resources"], level)
    return archives.plan_archive(
        context.archive, params["Resources"], level, bool(params.get("Utf8"))
    )


def archive_content(items: list[archives.ArchiveItem], archive_size: int) -> dict[str, Any]:
    """Orthanc's ``Content`` of an archive job (sizes as strings, as Orthanc has them)."""
    uncompressed = sum(item.attachment.uncompressed_size for item in items)
    return {
        "ArchiveSize": str(archive_size),
        "ArchiveSizeMB": archive_size // _MB,
        "Description": "REST API",
        "InstancesCount": len(items),
        "UncompressedSize": str(uncompressed),
        "UncompressedSizeMB": uncompressed // _MB,
    }


def run_archive(context: JobContext) -> None:
    """Write the ZIP to the job's folder, checking for cancel/pause between chunks."""
    items = _plan(context)
    total = max(1, sum(item.attachment.uncompressed_size for item in items))
    media = bool(context.parameters.get("Media"))
    extended = bool(context.parameters.get("Extended")) if media else None
    os.makedirs(context.folder, exist_ok=True)
    path = os.path.join(context.folder, "archive.zip")
    written = 0
    context.content = archive_content(items, 0)
    transcode = _sender(context.parameters)
    with open(path, "wb") as out:
        for chunk in archives.stream_zip(context.archive.storage, items, extended, transcode):
            out.write(chunk)
            written += len(chunk)
            context.checkpoint(min(written / total, 0.99))
    context.content = archive_content(items, written)
    context.add_output("archive", path, "application/zip", "archive.zip")


def _sender(params: dict[str, Any]):  # type: ignore[no-untyped-def]
    """The ``Transcode`` / ``LossyQuality`` a job was submitted with, as a function."""
    syntax = params.get("Transcode")
    return transcoding.sender(syntax, int(params.get("LossyQuality") or 90)) if syntax else None


PEER_STORE = "OrthancPeerStore"


def peer_store_content(
    peer_json: Any, resources: list[str], instances_count: int, compress: bool
) -> dict[str, Any]:
    """Orthanc's ``Content`` of an ``OrthancPeerStore`` job, from its submission on."""
    content: dict[str, Any] = {
        "Compress": compress,
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": instances_count,
        "Peer": peer_json,
        "Size": "0",
        "SizeMB": 0,
    }
    if resources:
        content["ParentResources"] = resources
    return content


def run_peer_store(context: JobContext) -> None:
    """A synchronous store (``Synchronous`` in its parameters) waits for the job:
    its outcome is left for the waiting request."""
    run_and_publish(context, _send_to_peer)


def _send_to_peer(context: JobContext) -> None:
    """POST each instance to the peer on one connection, with a checkpoint between
    two instances; the peer is looked up again by name, so a restarted job uses the
    peer as configured now."""
    params = context.parameters
    registry = PeerRegistry(context.archive, context.config)
    peer = registry.get(params["Peer"])
    instances = instances_to_send(context.archive, params["Resources"])
    compress = bool(params.get("Compress"))
    content = peer_store_content(
        peer.to_store_json(), params["Resources"], len(instances), compress
    )
    context.content = content
    size = 0
    transcode = _sender(params)
    with registry.client(peer) as client:
        for number, instance in enumerate(instances):
            context.checkpoint(number / max(1, len(instances)))
            data = reading.instance_file(context.archive, instance.public_id)
            if transcode is not None:
                data = transcode(data)
            post_instance(client, data, compress)
            size += len(data)
            content["Size"], content["SizeMB"] = str(size), size // _MB


#: Every kind the runner knows, by Orthanc's job type name.
KINDS: dict[str, JobKind] = {ARCHIVE: run_archive, MEDIA: run_archive, PEER_STORE: run_peer_store}


def register_kind(name: str, kind: JobKind) -> None:
    """Add a kind that needs a face below which ``core`` may not reach (the DICOM
    SCU for ``DicomModalityStore``): the face registers it when it is imported,
    which happens in every worker before its runner starts."""
    KINDS[name] = kind
