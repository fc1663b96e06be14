"""Rebuilding the index from the stored files (``/{level}/{id}/reconstruct``).

The index keeps, per resource, the main DICOM tags and some metadata read from the
files at ingest. When the rules that pick them change (a new version, another
``ExtraMainDicomTags``) or an old index was filled by buggy software, reconstruction
reads every file again and rewrites what the index says about it, at every level.
With ``ReconstructFiles`` the files themselves are stored again with the current
storage settings (``StorageCompression``).
"""

from __future__ import annotations

import logging

from ..dicom.levels import Level
from ..store.index.records import ResourceRow
from . import attachments, attachments_io
from .archive import Archive, require_resource
from .enums import ContentType, MetadataType
from .ingest import parse
from .transactions import Transaction

log = logging.getLogger("dicomhub.reconstruct")


def _ancestors(tx: Transaction, row: ResourceRow) -> dict[Level, ResourceRow]:
    chain = {Level(row.level): row}
    current = row
    while current.parent_id is not None:
        parent = tx.session.get(current.parent_id)
        assert parent is not None
        chain[Level(parent.level)] = parent
        current = parent
    return chain


def reconstruct_instance(
    archive: Archive, instance: ResourceRow, levels: tuple[Level, ...] = tuple(Level)
) -> None:
    """Read one instance's file again; rewrite the main tags of ``levels`` and its metadata."""
    att = attachments.get_info(archive, instance.public_id, Level.INSTANCE, ContentType.Dicom)
    parsed = parse(archive, attachments_io.read(archive.storage, att))

    def run(tx: Transaction) -> None:
        session = tx.session
        current = session.lookup(instance.public_id)
        if current is None:  # deleted meanwhile: nothing left to rebuild
            return
        chain = _ancestors(tx, current)
        for level in levels:
            session.replace_main_tags(chain[level].id, parsed.main_tags[level])
        if Level.INSTANCE in levels:
            values = {MetadataType.TransferSyntax: parsed.transfer_syntax}
            if parsed.sop_class_uid is not None:
                values[MetadataType.SopClassUid] = parsed.sop_class_uid
            if parsed.pixel_data_offset is not None:
                values[MetadataType.PixelDataOffset] = str(parsed.pixel_data_offset)
            session.set_many_metadata(current.id, {int(k): v for k, v in values.items()})

    archive.write(run)


def reconstruct(
    archive: Archive,
    public_id: str,
    level: Level,
    reconstruct_files: bool = False,
    only_this_level: bool = False,
) -> None:
    """Reconstruct a resource from its instances' files.

    ``only_this_level`` (Orthanc's ``LimitToThisLevelMainDicomTags``) rewrites only
    the main tags of the resource itself, from one of its instances: much faster
    after changing the ``ExtraMainDicomTags`` of one level.
    """
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        instances = session.descendant_instances(row)
    if only_this_level:
        if instances:
            reconstruct_instance(archive, instances[-1], (level,))
        return
    for instance in instances:
        if reconstruct_files:
            attachments.set_compression(
                archive,
                instance.public_id,
                Level.INSTANCE,
                ContentType.Dicom,
                archive.settings.storage_compression,
            )
        reconstruct_instance(archive, instance)


def reconstruct_everything(archive: Archive, reconstruct_files: bool = False) -> int:
    """Every patient in turn (``/tools/reconstruct``); answers how many were rebuilt."""
    with archive.read() as session:
        patients = session.list_resources(int(Level.PATIENT))
    for public_id in patients:
        reconstruct(archive, public_id, Level.PATIENT, reconstruct_files)
        log.info("reconstructed patient %s", public_id)
    return len(patients)
