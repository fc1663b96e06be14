"""Reading resources: descriptions, children and parents, files, statistics.

The REST face and, later, Lua and the explorer call these; they only read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydicom.dataset import Dataset

from ..dicom.levels import Level
from ..dicom.main_tags import tag_name
from ..dicom.parsing import read_dataset
from ..dicom.values import dataset_charsets, element_string
from ..store.index.index import IndexSession
from ..store.index.records import AttachmentRow, ResourceRow
from . import attachments_io, metadata
from .archive import Archive, require_resource
from .describe import TagStyle, describe, describe_content
from .enums import ContentType
from .errors import CannotWriteFile, InexistentFile, ParameterOutOfRange, UnknownResource


def resource(
    archive: Archive,
    public_id: str,
    level: Level,
    style: str = TagStyle.NAMES,
    requested: list[int] | None = None,
) -> dict[str, Any]:
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        return describe_with_requested(archive, session, row, style, requested)


def describe_with_requested(
    archive: Archive,
    session: IndexSession,
    row: ResourceRow,
    style: str,
    requested: list[int] | None,
    content: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Orthanc's expanded resource, or only the ``content`` parts when given."""
    if content is None:
        result = describe(session, row, style)
    else:
        result = describe_content(
            session, row, content, style, lambda kind: metadata.name_of(archive.settings, kind)
        )
    if requested:
        result["RequestedTags"] = requested_tags(archive, session, row, requested, style)
    return result


def list_resources(
    archive: Archive,
    level: Level,
    expand: bool,
    since: int,
    limit: int,
    style: str,
    requested: list[int] | None,
    content: frozenset[str] | None = None,
) -> list[Any]:
    with archive.read() as session:
        ids = session.list_resources(int(level), since, limit)
        if not expand and not content:
            return ids
        out = []
        for public_id in ids:
            row = session.lookup(public_id)
            if row is not None:
                out.append(
                    describe_with_requested(archive, session, row, style, requested, content)
                )
        return out


def relatives(
    archive: Archive,
    public_id: str,
    level: Level,
    target: Level,
    expand: bool,
    style: str,
    requested: list[int] | None,
) -> Any:
    """Descendants at ``target`` (a list) or the ancestor at ``target`` (one object)."""
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        if target < level:
            current = row
            while current.level > target:
                assert current.parent_id is not None
                parent = session.get(current.parent_id)
                assert parent is not None
                current = parent
            return describe_with_requested(archive, session, current, style, requested)
        rows = [row]
        for _ in range(target - level):
            rows = [c for r in rows for c in session.children(r.id)]
        if not expand:
            return [r.public_id for r in rows]
        return [describe_with_requested(archive, session, r, style, requested) for r in rows]


#: The DICOM file's content type as the driver binds it fastest (a plain int).
_DICOM = int(ContentType.Dicom)


def dicom_attachment(archive: Archive, public_id: str) -> AttachmentRow:
    """The DICOM file attachment of an instance (UnknownResource if no such instance).

    One statement outside an explicit transaction: this runs for every file
    download, where BEGIN, two lookups and COMMIT cost more than the query.
    """
    found = archive.index.resource_attachment(public_id, _DICOM)
    if found is None or found[0] != Level.INSTANCE:
        raise UnknownResource()
    if found[1] is None:
        raise InexistentFile(public_id)
    return found[1]


def instance_file(archive: Archive, public_id: str) -> bytes:
    return attachments_io.read(archive.storage, dicom_attachment(archive, public_id))


def write_instance_file(archive: Archive, public_id: str, target: str) -> None:
    """Copy an instance's DICOM file to a path of the server's filesystem.

    The REST face allows this only with ``RestApiWriteToFileSystemEnabled``: whoever
    calls it can overwrite any file the server may write.
    """
    data = instance_file(archive, public_id)
    try:
        with open(target, "wb") as out:
            out.write(data)
    except (OSError, ValueError) as exc:
        raise CannotWriteFile(f"{target}: {exc}") from None


def instance_dataset(archive: Archive, public_id: str) -> tuple[Dataset, list[str]]:
    data = instance_file(archive, public_id)
    ds, _ = read_dataset(data)
    return ds, dataset_charsets(ds, archive.settings.default_encoding)


def _representative_instance(session: IndexSession, row: ResourceRow) -> ResourceRow | None:
    current = row
    while current.level < Level.INSTANCE:
        children = session.children(current.id)
        if not children:
            return None
        current = children[0]
    return current


def file_values(
    archive: Archive,
    session: IndexSession,
    row: ResourceRow,
    tags: Iterable[int],
    other: Callable[[Dataset, Any, list[str]], Any],
) -> dict[int, Any]:
    """Values of ``tags`` read from one file of ``row`` (its first instance's): the
    text of each, or, where an element has no text (a sequence), what ``other``
    makes of it (``None``: left out). An unreadable file only loses these values,
    which the index does not keep and are optional in every answer."""
    instance = _representative_instance(session, row)
    if instance is None:
        return {}
    att = session.attachment(instance.id, ContentType.Dicom)
    if att is None:
        return {}
    found: dict[int, Any] = {}
    try:
        ds, _ = read_dataset(attachments_io.read(archive.storage, att))
        charsets = dataset_charsets(ds, archive.settings.default_encoding)
        for tag in tags:
            elem = ds.get_item(tag)
            if elem is None:
                continue
            value = element_string(elem, charsets)
            if value is None:
                value = other(ds, tag, charsets)
            if value is not None:
                found[tag] = value
    except Exception:  # noqa: BLE001 - see above
        pass
    return found


def requested_tags(
    archive: Archive, session: IndexSession, row: ResourceRow, tags: list[int], style: str
) -> dict[str, Any]:
    """Values of ``tags`` for ``row``: from the index where kept, else from a file."""
    values: dict[int, str] = {}
    current: ResourceRow | None = row
    while current is not None:
        for tag, value in session.main_tags(current.id).items():
            values.setdefault(tag, value)
        current = session.get(current.parent_id) if current.parent_id is not None else None
    values.update(computed_tags(session, row, tags))
    missing = [t for t in tags if t not in values]
    if missing:
        values.update(file_values(archive, session, row, missing, lambda *_: None))
    out: dict[str, Any] = {}
    for tag in tags:
        if tag not in values:
            continue
        if style == TagStyle.NAMES:
            out[tag_name(tag)] = values[tag]
        else:
            key = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
            out[key] = (
                values[tag]
                if style == TagStyle.SHORT
                else {"Name": tag_name(tag), "Type": "String", "Value": values[tag]}
            )
    return out


_COUNT_TAGS = {
    0x00201200: (Level.PATIENT, Level.STUDY),  # NumberOfPatientRelatedStudies
    0x00201202: (Level.PATIENT, Level.SERIES),  # NumberOfPatientRelatedSeries
    0x00201204: (Level.PATIENT, Level.INSTANCE),  # NumberOfPatientRelatedInstances
    0x00201206: (Level.STUDY, Level.SERIES),  # NumberOfStudyRelatedSeries
    0x00201208: (Level.STUDY, Level.INSTANCE),  # NumberOfStudyRelatedInstances
    0x00201209: (Level.SERIES, Level.INSTANCE),  # NumberOfSeriesRelatedInstances
}


def computed_tags(session: IndexSession, row: ResourceRow, tags: list[int]) -> dict[int, str]:
    """The tags Orthanc computes from the index (counts, ModalitiesInStudy, ...)."""
    out: dict[int, str] = {}
    for tag in tags:
        if tag in _COUNT_TAGS and _COUNT_TAGS[tag][0] == row.level:
            rows = [row]
            for _ in range(_COUNT_TAGS[tag][1] - row.level):
                rows = [c for r in rows for c in session.children(r.id)]
            out[tag] = str(len(rows))
        elif tag == 0x00080061 and row.level == Level.STUDY:  # ModalitiesInStudy
            modalities = sorted(
                {session.main_tags(s.id).get(0x00080060, "") for s in session.children(row.id)}
                - {""}
            )
            out[tag] = "\\".join(modalities)
        elif tag == 0x00080062 and row.level == Level.STUDY:  # SOPClassesInStudy
            from .enums import MetadataType

            classes: set[str] = set()
            for s in session.children(row.id):
                for i in session.children(s.id):
                    meta = session.get_metadata(i.id, MetadataType.SopClassUid)
                    if meta and meta[0]:
                        classes.add(meta[0])
            out[tag] = "\\".join(sorted(classes))
    return out


def statistics(archive: Archive, public_id: str, level: Level) -> dict[str, Any]:
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        rows = [row]
        everything = [row]  # attachments on the resource and every level below count
        counts: dict[int, int] = {}
        for lvl in range(row.level + 1, 4):
            rows = [c for r in rows for c in session.children(r.id)]
            counts[lvl] = len(rows)
            everything += rows
        atts = session.attachments_under(everything)
    disk = sum(a.compressed_size for a in atts)
    uncompressed = sum(a.uncompressed_size for a in atts)
    dicom_disk = sum(a.compressed_size for a in atts if a.content_type == ContentType.Dicom)
    dicom_unc = sum(a.uncompressed_size for a in atts if a.content_type == ContentType.Dicom)
    out: dict[str, Any] = {
        "DiskSize": str(disk),
        "DiskSizeMB": disk // (1024 * 1024),
        "UncompressedSize": str(uncompressed),
        "UncompressedSizeMB": uncompressed // (1024 * 1024),
        "DicomDiskSize": str(dicom_disk),
        "DicomDiskSizeMB": dicom_disk // (1024 * 1024),
        "DicomUncompressedSize": str(dicom_unc),
        "DicomUncompressedSizeMB": dicom_unc // (1024 * 1024),
    }
    names = {
        Level.STUDY: "CountStudies",
        Level.SERIES: "CountSeries",
        Level.INSTANCE: "CountInstances",
    }
    for lvl, n in counts.items():
        out[names[Level(lvl)]] = n
    return out


def global_statistics(archive: Archive) -> dict[str, Any]:
    with archive.read() as session:
        c = session.counters()
    return {
        "CountPatients": c["patients"],
        "CountStudies": c["studies"],
        "CountSeries": c["series"],
        "CountInstances": c["instances"],
        "TotalDiskSize": str(c["compressed_size"]),
        "TotalDiskSizeMB": c["compressed_size"] // (1024 * 1024),
        "TotalUncompressedSize": str(c["uncompressed_size"]),
        "TotalUncompressedSizeMB": c["uncompressed_size"] // (1024 * 1024),
    }


def lookup(archive: Archive, value: str) -> list[dict[str, str]]:
    """``/tools/lookup``: the resources whose DICOM identifier is ``value`` (PatientID
    and the three UIDs only, ignoring case and surrounding spaces, as Orthanc).

    ``*`` and ``?`` are refused as Orthanc refuses them, naming the first tag it tries.
    """
    value = value.strip()
    if "*" in value or "?" in value:
        raise ParameterOutOfRange("Wildcards are not allowed on tag 0010,0020")
    targets = {
        0x00100020: Level.PATIENT,
        0x0020000D: Level.STUDY,
        0x0020000E: Level.SERIES,
        0x00080018: Level.INSTANCE,
    }
    found: list[dict[str, str]] = []
    seen: set[str] = set()
    with archive.read() as session:
        for tag, level in targets.items():
            for row in session.lookup_identifier(tag, value):
                if row.level == level and row.public_id not in seen:
                    seen.add(row.public_id)
                    found.append(
                        {
                            "ID": row.public_id,
                            "Path": f"/{level.plural}/{row.public_id}",
                            "Type": level.title,
                        }
                    )
    return found


def require(archive: Archive, public_id: str, level: Level) -> ResourceRow:
    with archive.read() as session:
        return require_resource(session, public_id, int(level))


__all__ = ["UnknownResource"]
