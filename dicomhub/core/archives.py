"""ZIP archives and DICOMDIR media of resources, streamed while they are built.

Two passes: ``plan_*`` walks the index once (a short read transaction, so a long
download never pins the database) and names every file; ``stream_zip`` then reads
the files one by one from storage and deflates them into the response as it goes.
Nothing but the plan (one small record per instance) is held in memory, so a 2 GB
archive costs no more memory than a 2 MB one.

Naming follows what Orthanc 1.10.1 answers (checked against the reference server):

- folders ``PatientID PatientName`` / ``AccessionNumber StudyDescription`` /
  ``Modality SeriesDescription``, each cleaned to ASCII letters, digits, ``.``,
  ``_`` and single spaces (``^`` counts as a space; everything else, tabs
  included, is dropped),
  ``Unknown Patient|Study|Series`` when nothing is left, ``-2``, ``-3``... appended
  when two siblings clean to the same name;
- files: the first two letters of the modality, then a per-series counter, padded
  to eight characters (``CT000000.dcm``, ``M0000001.dcm``, ``00000000.dcm``);
- patients, studies and series are visited in order of their Orthanc identifier,
  the instances of a series in the order they arrived.

Media archives put every file in ``IMAGES/IM<n>`` and end with a ``DICOMDIR``.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import zipstream
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..dicom.dicomdir import DicomDirBuilder
from ..dicom.levels import Level
from ..store.index.index import IndexSession
from ..store.index.records import AttachmentRow, ResourceRow
from ..store.storage.base import StorageArea
from .archive import Archive, require_resource
from .enums import Compression, ContentType

log = logging.getLogger("dicomhub.archives")

#: zlib level for the ZIP members. DICOM pixel data barely shrinks beyond level 1,
#: while higher levels cost several times the CPU of the download itself.
COMPRESS_LEVEL = 1
#: Every member is deflated, small ones too, though a zlib stream costs about 80 µs
#: to set up: the ZIP library writes each member's sizes after its data (a data
#: descriptor), which Java's ``ZipInputStream`` refuses on a stored member ("only
#: DEFLATED entries can have EXT descriptor"), and Orthanc's archives open there.
#: Chunks handed to the HTTP layer are gathered up to this size (fewer thread hops).
CHUNK_SIZE = 256 << 10

_PATIENT_ID, _PATIENT_NAME = 0x00100020, 0x00100010
_ACCESSION, _STUDY_DESCRIPTION = 0x00080050, 0x00081030
_MODALITY, _SERIES_DESCRIPTION = 0x00080060, 0x0008103E


@dataclass(frozen=True, slots=True)
class ArchiveItem:
    """One file of the archive: where it goes and which stored file it is."""

    path: str
    instance_id: str
    attachment: AttachmentRow


@dataclass
class _Node:
    row: ResourceRow
    children: dict[str, _Node] = field(default_factory=dict)


# ---- naming -------------------------------------------------------------------
def clean_name(text: str, utf8: bool = False) -> str:
    """A folder name as Orthanc writes it: safe characters and single spaces only.

    With ``utf8`` (the 1.12.11 ``Utf8`` option) non-ASCII letters and digits are
    kept instead of dropped.
    """
    out: list[str] = []
    for char in text.replace("^", " "):
        if char == " ":  # Orthanc 1.10.1 drops tabs and other white space
            if out and out[-1] != " ":
                out.append(" ")
        elif char in "._" or (char.isalnum() and (utf8 or char.isascii())):
            out.append(char)
    return "".join(out).strip()


def _joined(*values: str) -> str:
    return " ".join(v for v in values if v)


class _UniqueNames:
    """Orthanc's rule for siblings that clean to the same name: ``name-2``, ``name-3``..."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def __call__(self, name: str) -> str:
        count = self._used.get(name, 0) + 1
        self._used[name] = count
        return name if count == 1 else f"{name}-{count}"


def file_name(modality: str, index: int) -> str:
    """``CT000000.dcm``: two letters of the modality, counter padded to 8 characters."""
    prefix = clean_name(modality)[:2]
    return f"{prefix}{index:0{8 - len(prefix)}d}.dcm"


# ---- planning -----------------------------------------------------------------
def _collect(session: IndexSession, rows: Iterable[ResourceRow]) -> dict[str, _Node]:
    """The patient > study > series > instance tree covering ``rows``."""
    patients: dict[str, _Node] = {}
    cache: dict[int, ResourceRow] = {}

    def get(internal_id: int) -> ResourceRow:
        if internal_id not in cache:
            found = session.get(internal_id)
            assert found is not None
            cache[internal_id] = found
        return cache[internal_id]

    for row in rows:
        chain = [row]
        while chain[0].parent_id is not None:
            chain.insert(0, get(chain[0].parent_id))
        level = patients
        for ancestor in chain:
            node = level.setdefault(ancestor.public_id, _Node(ancestor))
            level = node.children
        if row.level < Level.INSTANCE:
            base = node
            for instance in session.descendant_instances(row):
                series = get(instance.parent_id)  # type: ignore[arg-type]
                level = base.children
                if row.level < Level.SERIES:
                    study = get(series.parent_id) if row.level < Level.STUDY else row  # type: ignore[arg-type]
                    if row.level < Level.STUDY:
                        level = level.setdefault(study.public_id, _Node(study)).children
                    level = level.setdefault(series.public_id, _Node(series)).children
                level.setdefault(instance.public_id, _Node(instance))
    return patients


def _sorted(nodes: dict[str, _Node]) -> list[_Node]:
    """Orthanc's visiting order: by identifier, except instances (in arrival order)."""
    if any(node.row.level == Level.INSTANCE for node in nodes.values()):
        return sorted(nodes.values(), key=lambda node: node.row.id)
    return [nodes[k] for k in sorted(nodes)]


def _resolve(
    session: IndexSession, public_ids: list[str], level: Level | None
) -> list[ResourceRow]:
    return [
        require_resource(session, pid, None if level is None else int(level)) for pid in public_ids
    ]


def _attachment(session: IndexSession, instance: ResourceRow) -> AttachmentRow | None:
    att = session.attachment(instance.id, ContentType.Dicom)
    if att is None:
        log.warning("instance %s has no DICOM file, left out of the archive", instance.public_id)
    return att


def plan_archive(
    archive: Archive, public_ids: list[str], level: Level | None = None, utf8: bool = False
) -> list[ArchiveItem]:
    """The files of a ZIP archive of ``public_ids`` with Orthanc's folder names.

    ``level``: the level every identifier must have (the ``/{level}/{id}`` routes);
    ``None`` accepts any level (``/tools/create-archive``). Unknown identifiers raise
    ``UnknownResource`` before anything is streamed.
    """
    items: list[ArchiveItem] = []
    with archive.read() as session:
        tree = _collect(session, _resolve(session, public_ids, level))
        patient_names = _UniqueNames()
        for patient in _sorted(tree):
            tags = session.main_tags(patient.row.id)
            patient_dir = patient_names(
                clean_name(_joined(tags.get(_PATIENT_ID, ""), tags.get(_PATIENT_NAME, "")), utf8)
                or "Unknown Patient"
            )
            study_names = _UniqueNames()
            for study in _sorted(patient.children):
                tags = session.main_tags(study.row.id)
                study_dir = study_names(
                    clean_name(
                        _joined(tags.get(_ACCESSION, ""), tags.get(_STUDY_DESCRIPTION, "")), utf8
                    )
                    or "Unknown Study"
                )
                series_names = _UniqueNames()
                for series in _sorted(study.children):
                    tags = session.main_tags(series.row.id)
                    modality = tags.get(_MODALITY, "")
                    series_dir = series_names(
                        clean_name(_joined(modality, tags.get(_SERIES_DESCRIPTION, "")), utf8)
                        or "Unknown Series"
                    )
                    folder = f"{patient_dir}/{study_dir}/{series_dir}/"
                    index = 0
                    for instance in _sorted(series.children):
                        att = _attachment(session, instance.row)
                        if att is None:
                            continue
                        name = folder + file_name(modality, index)
                        items.append(ArchiveItem(name, instance.row.public_id, att))
                        index += 1
    return items


def plan_media(
    archive: Archive, public_ids: list[str], level: Level | None = None
) -> list[ArchiveItem]:
    """The files of a DICOMDIR media archive: ``IMAGES/IM0``, ``IMAGES/IM1``..."""
    items: list[ArchiveItem] = []
    with archive.read() as session:
        tree = _collect(session, _resolve(session, public_ids, level))
        for patient in _sorted(tree):
            for study in _sorted(patient.children):
                for series in _sorted(study.children):
                    for instance in _sorted(series.children):
                        att = _attachment(session, instance.row)
                        if att is not None:
                            path = f"IMAGES/IM{len(items)}"
                            items.append(ArchiveItem(path, instance.row.public_id, att))
    return items


# ---- streaming ----------------------------------------------------------------
def file_chunks(storage: StorageArea, att: AttachmentRow) -> Iterator[bytes]:
    """The bytes of a stored file, decompressed on the fly if stored compressed."""
    if att.compression != Compression.ZLIB_WITH_SIZE:
        yield from storage.iter_chunks(att.uuid)
        return
    inflater = zlib.decompressobj()
    skip = 8  # Orthanc's "zlib with size" header: the uncompressed size
    for chunk in storage.iter_chunks(att.uuid):
        if skip:
            head, chunk = chunk[:skip], chunk[skip:]
            skip -= len(head)
        if chunk:
            yield inflater.decompress(chunk)
    yield inflater.flush()


def _read_header(storage: StorageArea, att: AttachmentRow) -> Dataset:
    if att.compression == Compression.ZLIB_WITH_SIZE:
        source = io.BytesIO(b"".join(file_chunks(storage, att)))
        return dcmread(source, stop_before_pixels=True, force=True)
    with storage.open(att.uuid) as f:
        return dcmread(f, stop_before_pixels=True, force=True)


def _member(
    storage: StorageArea,
    item: ArchiveItem,
    dicomdir: DicomDirBuilder | None,
    transcode: Callable[[bytes], bytes] | None = None,
) -> Iterator[bytes]:
    """One ZIP member; runs only when the ZIP writer reaches it (nothing read ahead)."""
    try:
        if transcode is not None:
            # Transcoding needs the whole file; still one file at a time in memory.
            data = transcode(b"".join(file_chunks(storage, item.attachment)))
            if dicomdir is not None:
                try:
                    header = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
                except (InvalidDicomError, ValueError, EOFError) as exc:
                    log.warning("instance %s has an unreadable header: %s", item.instance_id, exc)
                else:
                    dicomdir.add(header, item.path.split("/"))
            yield data
            return
        if dicomdir is not None:
            try:
                header = _read_header(storage, item.attachment)
            except (InvalidDicomError, ValueError, EOFError) as exc:
                # The file still goes on the medium; only its DICOMDIR entry is lost.
                log.warning("instance %s has an unreadable header: %s", item.instance_id, exc)
            else:
                dicomdir.add(header, item.path.split("/"))
        yield from file_chunks(storage, item.attachment)
    except FileNotFoundError:
        # Deleted after the plan was made: the member ends up empty rather than the
        # whole download failing halfway.
        log.warning("instance %s vanished while its archive was streamed", item.instance_id)


def _dicomdir_member(builder: DicomDirBuilder) -> Iterator[bytes]:
    yield builder.to_bytes()


def stream_zip(
    storage: StorageArea,
    items: list[ArchiveItem],
    media_extended: bool | None = None,
    transcode: Callable[[bytes], bytes] | None = None,
) -> Iterator[bytes]:
    """The ZIP bytes of ``items``; with ``media_extended`` set, a DICOMDIR ends it.
    ``transcode`` (``Transcode`` of the request) is applied to each file."""
    zs = zipstream.ZipStream(compress_type=zipstream.ZIP_DEFLATED)
    builder = DicomDirBuilder(extended=bool(media_extended)) if media_extended is not None else None
    for item in items:
        member = _member(storage, item, builder, transcode)
        zs.add(member, item.path, compress_level=COMPRESS_LEVEL)
    if builder is not None:
        zs.add(_dicomdir_member(builder), "DICOMDIR")
    pending: list[bytes] = []
    size = 0
    for chunk in zs:
        pending.append(chunk)
        size += len(chunk)
        if size >= CHUNK_SIZE:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)
