"""Storing a DICOM instance: parse, stage the file, index it in one transaction.

The file is staged before the transaction and published after its commit (or
discarded after a rollback), so the index and the storage area never disagree,
whatever fails and wherever the process dies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from ..dicom.levels import Level
from ..dicom.parsing import InvalidDicom, MissingTag, ParsedInstance, parse_instance
from ..store.index.records import AttachmentRow
from ..store.storage.filesystem import StorageError
from . import attachments_io
from .archive import Archive
from .clock import now_iso, now_seconds
from .enums import ChangeType, ContentType, MetadataType
from .errors import BadFileFormat, CannotWriteFile, FullStorage, InexistentTag
from .events import STORED_AGAIN, Change
from .hooks import RECEIVED_INSTANCE, hooks_of, origin_json
from .recycling import make_room
from .transactions import Transaction
from .transcoding import ingest_transcoding

STATUS_SUCCESS = "Success"
STATUS_ALREADY_STORED = "AlreadyStored"
STATUS_FILTERED_OUT = "FilteredOut"

#: From this size on, an upload is first looked up in the index, so that a file sent
#: again is not written only to be dropped. A smaller file is written first and the
#: indexing transaction finds it known (as Orthanc does for every file): for new
#: instances, the usual case, that saves a statement and a read of the index in a
#: transaction of its own (about 2 % of the CPU of a small upload, more with several
#: HTTP workers, whose read transactions each reload the index pages the others
#: changed), for the price of writing a small file again now and then.
PRECHECK_MIN_BYTES = 64 << 10


@dataclass
class Origin:
    """Where an instance came from (recorded as Orthanc's origin metadata)."""

    origin: str = "Unknown"  # RestApi, DicomProtocol, Lua, Plugins, Unknown
    remote_ip: str = ""
    remote_aet: str = ""
    called_aet: str = ""
    http_username: str = ""
    #: The instance this one is a modified copy of (``ModifiedFrom`` metadata), for a
    #: copy stored by Lua's ``ModifyInstance``: written with the instance, so that the
    #: copy's own ``OnStoredInstance`` already sees it.
    modified_from: str = ""


@dataclass
class StoreResult:
    status: str
    ids: dict[Level, str]
    #: The C-STORE status when a filter refused the instance (``FilteredOut``).
    dimse_status: int = 0
    #: With ``store_parsed(publish=False)``: the stored file, committed but still in
    #: the staging folder; ``finish`` moves it to its place.
    unpublished: str | None = None

    @property
    def instance_id(self) -> str:
        return self.ids[Level.INSTANCE]

    def to_json(self) -> dict[str, str]:
        return {
            "ID": self.ids[Level.INSTANCE],
            "ParentPatient": self.ids[Level.PATIENT],
            "ParentSeries": self.ids[Level.SERIES],
            "ParentStudy": self.ids[Level.STUDY],
            "Path": f"/instances/{self.ids[Level.INSTANCE]}",
            "Status": self.status,
        }


def parse(archive: Archive, data: bytes) -> ParsedInstance:
    try:
        return parse_instance(data, archive.settings.default_encoding)
    except InvalidDicom as exc:
        raise BadFileFormat(str(exc)) from exc
    except MissingTag as exc:
        raise InexistentTag(str(exc)) from exc


def stores_quickly(archive: Archive) -> bool:
    """Whether storing an instance here is a parse, a local file write and one index
    transaction, and nothing that may take long: no ingest transcoding, no instance
    filter (a script runs for as long as it likes), no recycling to make room (which
    deletes a whole patient), and a storage area on the local disk.

    A face may then store on the thread that received the instance, when nothing
    else waits on that thread: handing a small upload to another thread and back
    cost about a tenth of its CPU (two cross-thread wake-ups, each a system call and
    an interrupt between the virtual machine's cores).
    """
    settings = archive.settings
    return (
        archive.storage.local_writes
        and settings.ingest_transcoding is None
        and not settings.maximum_storage_size_mb
        and not settings.maximum_patient_count
        and not hooks_of(archive).active(RECEIVED_INSTANCE)
    )


def store(archive: Archive, data: bytes, origin: Origin | None = None) -> StoreResult:
    parsed = parse(archive, data)
    return store_parsed(archive, parsed, data, origin or Origin())


def store_parsed(
    archive: Archive, parsed: ParsedInstance, data: bytes, origin: Origin, publish: bool = True
) -> StoreResult:
    """Store a parsed instance. ``publish=False`` leaves the file's move from the
    staging folder to its place to ``finish``, for a caller that answers first: the
    instance is committed and readable either way (readers look in both places, and
    the storage recovery finishes the move after a crash), and on a new storage area
    that move often makes a folder too: about a tenth of a small C-STORE."""
    settings = archive.settings
    if settings.ingest_transcoding:  # before filters and identifiers, as in Orthanc
        parsed, data = ingest_transcoding(settings, parsed, data)
    refused = hooks_of(archive).admit_instance(parsed, origin)
    if refused is not None:  # Orthanc still answers the identifiers
        return StoreResult(STATUS_FILTERED_OUT, parsed.ids, refused)
    if not settings.overwrite_instances and len(data) > PRECHECK_MIN_BYTES:
        # One statement, no transaction: the indexing transaction checks again.
        with archive.index.autocommit() as session:
            if session.lookup(parsed.ids[Level.INSTANCE]) is not None:
                _stored_again(archive, parsed, origin)
                return StoreResult(STATUS_ALREADY_STORED, parsed.ids)
    try:
        att = attachments_io.prepare(
            archive.storage, ContentType.Dicom, data, settings.storage_compression
        )
    except StorageError as exc:
        raise CannotWriteFile(str(exc)) from exc

    def index_it(tx: Transaction) -> str:
        tx.on_rollback(lambda: archive.storage.discard(att.uuid))
        return _index_instance(archive, tx, parsed, att, origin)

    status = archive.write(index_it)
    # Published here rather than in the writer thread, which stays free for the next
    # batch; until then readers find the committed file in the staging folder, and a
    # crash in between is finished by the storage recovery.
    if status != STATUS_SUCCESS:
        return StoreResult(status, parsed.ids)
    if not publish:
        return StoreResult(status, parsed.ids, unpublished=att.uuid)
    archive.storage.publish(att.uuid)
    return StoreResult(status, parsed.ids)


def finish(archive: Archive, result: StoreResult) -> None:
    """The move ``store_parsed(publish=False)`` left to do, if any."""
    if result.unpublished is not None:
        archive.storage.publish(result.unpublished)
        result.unpublished = None


def _index_instance(
    archive: Archive,
    tx: Transaction,
    parsed: ParsedInstance,
    att: AttachmentRow,
    origin: Origin,
) -> str:
    from .deletion import delete_in_transaction

    session = tx.session
    settings = archive.settings
    now = now_seconds()
    date = now_iso()
    instance_public = parsed.ids[Level.INSTANCE]
    ancestors = (Level.PATIENT, Level.STUDY, Level.SERIES)

    # The instance and its ancestors in one query.
    wanted = [parsed.ids[level] for level in ancestors] + [instance_public]
    known = session.lookup_many(wanted)
    existing = known.get(instance_public)
    replaced: list[Change] = []
    if existing is not None:
        if not settings.overwrite_instances:
            tx.on_commit(lambda: archive.storage.discard(att.uuid))
            tx.on_commit(lambda: _stored_again(archive, parsed, origin))
            return STATUS_ALREADY_STORED
        # As Orthanc (1.10.1): no ``Deleted`` row; ``OnDeleted*`` for the copy
        # replaced (and its ancestors left empty) after the new copy's changes, so
        # ``OnStoredInstance`` comes first.
        delete_in_transaction(archive, tx, existing, log_deleted=False, events=replaced)
        # The deletion may have removed ancestors left without children.
        known = session.lookup_many(wanted[:3])

    make_room(archive, tx, att.compressed_size, parsed.ids[Level.PATIENT])

    # Create the missing ancestors, top-down; remember which ones are new.
    parent: int | None = None
    internal: dict[Level, int] = {}
    created: list[Level] = []
    touched: list[int] = []
    for level in ancestors:
        row = known.get(parsed.ids[level])
        if row is None:
            rid = session.create_resource(parsed.ids[level], int(level), parent, now)
            session.set_main_tags(rid, parsed.main_tags[level])
            created.append(level)
        else:
            rid = row.id
            if row.level != level:  # a hash collision across levels cannot happen
                raise BadFileFormat("identifier clash between levels")
            touched.append(rid)
        internal[level] = rid
        parent = rid

    series_internal = internal[Level.SERIES]
    patient_internal = internal[Level.PATIENT]
    instance_internal = session.create_resource(
        instance_public, int(Level.INSTANCE), series_internal, now, stable=True
    )
    # Internal IDs only grow: the newest instance's ID orders patients for recycling.
    if touched and touched[0] == patient_internal:
        session.touch_many(touched, now, recycle=(patient_internal, instance_internal))
    else:
        if touched:
            session.touch_many(touched, now)
        session.set_recycle_seq(patient_internal, instance_internal)
    session.set_main_tags(instance_internal, parsed.main_tags[Level.INSTANCE])
    session.add_attachment(instance_internal, att)

    index_in_series = _index_in_series(parsed)
    metadata = {
        MetadataType.ReceptionDate: date,
        MetadataType.RemoteAET: origin.remote_aet,
        MetadataType.Origin: origin.origin,
        MetadataType.TransferSyntax: parsed.transfer_syntax,
        MetadataType.RemoteIP: origin.remote_ip,
    }
    if parsed.sop_class_uid is not None:  # as Orthanc: not for a file without one
        metadata[MetadataType.SopClassUid] = parsed.sop_class_uid
    if origin.origin == "RestApi":  # Orthanc records the HTTP user only for REST uploads
        metadata[MetadataType.HttpUsername] = origin.http_username
    if index_in_series is not None:
        metadata[MetadataType.IndexInSeries] = index_in_series
    if origin.origin == "DicomProtocol":
        metadata[MetadataType.CalledAET] = origin.called_aet
    if origin.modified_from:
        metadata[MetadataType.ModifiedFrom] = origin.modified_from
    if parsed.pixel_data_offset is not None:
        metadata[MetadataType.PixelDataOffset] = str(parsed.pixel_data_offset)
        if parsed.pixel_data_vr:
            metadata[MetadataType.PixelDataVR] = parsed.pixel_data_vr
    # LastUpdate of the ancestors and the instance's metadata: one batch.
    rows = [(rid, int(MetadataType.LastUpdate), date) for rid in internal.values()]
    rows += [(instance_internal, int(k), v) for k, v in metadata.items()]
    # As Orthanc, the instance being stored tells how many instances its series
    # expects; the series keeps the number announced by its first instance.
    expected = parsed.expected_instances
    if Level.SERIES in created:
        # As Orthanc, a new series records who sent its first instance.
        rows.append((series_internal, int(MetadataType.RemoteAET), origin.remote_aet))
        if expected is not None:
            rows.append(
                (series_internal, int(MetadataType.ExpectedNumberOfInstances), str(expected))
            )
    session.set_metadata_rows(rows)

    archive.log_change(tx, ChangeType.NewInstance, Level.INSTANCE, instance_public)
    for level in reversed(created):
        change = {
            Level.SERIES: ChangeType.NewSeries,
            Level.STUDY: ChangeType.NewStudy,
            Level.PATIENT: ChangeType.NewPatient,
        }[level]
        archive.log_change(tx, change, int(level), parsed.ids[level])

    if expected is not None and _series_complete(session, series_internal, expected):
        archive.log_change(tx, ChangeType.CompletedSeries, Level.SERIES, parsed.ids[Level.SERIES])
    for event in replaced:
        tx.on_commit(partial(archive.events.publish, event))
    return STATUS_SUCCESS


def _stored_again(archive: Archive, parsed: ParsedInstance, origin: Origin) -> None:
    """An instance already stored arrived again: nothing changes and ``/changes`` says
    nothing (as Orthanc), but Orthanc calls ``OnStoredInstance`` again, with the new
    request's origin (seen on 1.10.1): a script event (``core.events``) tells it."""
    public_id = parsed.ids[Level.INSTANCE]
    event = Change(STORED_AGAIN, Level.INSTANCE, public_id, now_iso(), origin_json(origin))
    archive.events.publish(event)


def _index_in_series(parsed: ParsedInstance) -> str | None:
    """The instance's position as the file tells it (InstanceNumber, else ImageIndex),
    as Orthanc records it; not the arrival order. A tag present but empty is recorded
    empty, as Orthanc does (its series then has an Unknown status)."""
    tags = parsed.main_tags[Level.INSTANCE]
    for tag in (0x00200013, 0x00541330):  # InstanceNumber, ImageIndex
        value = tags.get(tag)
        if value is not None:
            return value.strip()
    return None


def _series_complete(session, series_internal: int, expected: int) -> bool:  # type: ignore[no-untyped-def]
    """Orthanc's "Complete" status for ``expected`` instances: the IndexInSeries of the
    children (those that have one) are exactly 1..expected, each once.

    The count of children comes first: below ``expected`` the series cannot be
    complete, and that query stays cheap however long the series grows.
    """
    if session.count_children(series_internal) < expected:
        return False
    seen: set[int] = set()
    for value in session.children_metadata(series_internal, MetadataType.IndexInSeries):
        if value is None:  # no InstanceNumber nor ImageIndex: not counted
            continue
        try:
            index = int(value)
        except ValueError:
            return False
        if index < 1 or index > expected or index in seen:
            return False
        seen.add(index)
    return len(seen) == expected


__all__ = [
    "FullStorage",
    "Origin",
    "StoreResult",
    "finish",
    "parse",
    "store",
    "store_parsed",
    "stores_quickly",
]
