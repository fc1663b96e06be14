"""DICOM tags of stored instances as JSON: ``/tags``, ``/header``, ``/content``, and the
tag views of higher levels (shared tags, modules, instances' tags).

Rendered answers are cached by attachment UUID and rendering options: a UUID names
immutable content, so a cached answer can never be stale.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from ..dicom import content as dicom_content
from ..dicom import tags_json
from ..dicom.levels import Level
from ..dicom.modules import LEVEL_MODULES
from ..dicom.parsing import file_meta_as_stored, read_dataset
from ..dicom.values import dataset_charsets
from . import attachments_io
from .archive import Archive, require_resource
from .cache import ByteLRU
from .enums import Compression, MetadataType
from .errors import InexistentItem, UnknownDicomTag
from .reading import dicom_attachment

_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
_rendered = ByteLRU(64 << 20)
PIXEL_DATA = 0x7FE00010
#: (7fe0,0010) as a little endian file writes the tag.
_PIXEL_DATA_TAG_LE = b"\xe0\x7f\x10\x00"


def load_dataset(archive: Archive, public_id: str) -> tuple[Dataset, list[str]]:
    att = dicom_attachment(archive, public_id)
    ds, _ = read_dataset(attachments_io.read(archive.storage, att))
    return ds, dataset_charsets(ds, archive.settings.default_encoding)


def tags_json_bytes(
    archive: Archive,
    public_id: str,
    fmt: str,
    ignore_length: Collection[int] = (),
    whole: bool = False,
) -> bytes:
    """The JSON body of ``/instances/{id}/tags`` (``fmt``: full, simplify or short)."""
    att = dicom_attachment(archive, public_id)
    key = (
        "tags",
        att.uuid,
        fmt,
        frozenset(ignore_length),
        whole,
        archive.settings.default_encoding,
    )

    def render() -> bytes:
        ds = _tags_dataset(archive, public_id, att, whole)
        charsets = dataset_charsets(ds, archive.settings.default_encoding)
        rendered = tags_json.render_tags(
            ds,
            charsets,
            fmt,
            ignore_length=ignore_length,
            whole=whole,  # type: ignore[arg-type]
        )
        return orjson.dumps(rendered, option=_JSON)

    return _rendered.get_or_compute(key, render)


def _tags_dataset(archive: Archive, public_id: str, att: Any, whole: bool) -> Dataset:
    """The data set ``/tags`` renders. Without ``whole`` the rendering stops at the
    pixel data, which it shows as ``Null`` whatever they hold: only the file up to
    them is read (its offset is recorded at ingest), not the megabytes after, which
    was half the cost of the tags of a CT image. Any other file is read whole."""
    head = None if whole else _before_pixel_data(archive, public_id, att)
    if head is None:
        return read_dataset(attachments_io.read(archive.storage, att))[0]
    ds, _ = read_dataset(head)
    ds[PIXEL_DATA] = DataElement(PIXEL_DATA, "OB", b"")  # rendered Null, as the real one
    return ds


def _before_pixel_data(archive: Archive, public_id: str, att: Any) -> bytes | None:
    """The stored file up to its Pixel Data element, when it is stored as is (not
    compressed), in little endian, and its recorded offset is that element's; else
    None."""
    if att.compression != Compression.NONE:
        return None
    with archive.index.autocommit() as session:
        row = session.lookup(public_id)
        found = session.get_metadata(row.id, int(MetadataType.PixelDataOffset)) if row else None
    if found is None or not found[0].isdigit():
        return None
    offset = int(found[0])
    if offset <= 132:  # not after a file meta group: read the whole file
        return None
    head = archive.storage.read_range(att.uuid, 0, offset + 4)
    if head[offset:] != _PIXEL_DATA_TAG_LE:
        return None
    return head[:offset]


def header(archive: Archive, public_id: str, fmt: str) -> dict[str, Any]:
    ds, _ = load_dataset(archive, public_id)
    return tags_json.header_tags(file_meta_as_stored(ds), fmt)  # type: ignore[arg-type]


def content(archive: Archive, public_id: str, parts: list[str]) -> list[str] | bytes:
    ds, charsets = load_dataset(archive, public_id)
    try:
        return dicom_content.content(ds, parts, charsets)
    except dicom_content.ContentNotFound as exc:
        raise InexistentItem(f"No such content: {'/'.join(parts)}") from exc
    except dicom_content.UnknownTagError as exc:
        raise UnknownDicomTag(str(exc)) from exc


def _instances_of(archive: Archive, public_id: str, level: Level) -> list[str]:
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        return [r.public_id for r in session.descendant_instances(row)]


def instances_tags(
    archive: Archive, public_id: str, level: Level, fmt: str, ignore_length: Collection[int] = ()
) -> dict[str, Any]:
    """``/{level}/{id}/instances-tags``: instance ID -> its tags."""
    return {
        instance: orjson.loads(tags_json_bytes(archive, instance, fmt, ignore_length))
        for instance in _instances_of(archive, public_id, level)
    }


def shared_tags(archive: Archive, public_id: str, level: Level, fmt: str) -> dict[str, Any]:
    """``/{level}/{id}/shared-tags``: the top-level tags with one same value in all instances."""
    shared: dict[str, Any] | None = None
    for instance in _instances_of(archive, public_id, level):
        full = orjson.loads(tags_json_bytes(archive, instance, "full"))
        if shared is None:
            shared = {k: v for k, v in full.items() if v.get("Type") == "String"}
        else:
            shared = {k: v for k, v in shared.items() if full.get(k) == v}
    return _reformat(shared or {}, fmt)


def _reformat(full: dict[str, Any], fmt: str) -> dict[str, Any]:
    if fmt == "full":
        return full
    if fmt == "short":
        return {k: v.get("Value") for k, v in full.items()}
    return {v.get("Name", k): v.get("Value") for k, v in full.items()}


def representative_instance(archive: Archive, public_id: str, level: Level) -> str | None:
    """The instance whose tags stand for the resource in ``/{level}/{id}/module``.

    Orthanc walks the hierarchy depth first with a stack, so the first instance it
    finds is under the most recently created child at every level: the last
    instance of the last series of the last study. Taking the same one makes the
    answer identical when the instances of a resource disagree (for example two
    studies of one patient with different birth dates). None for a resource without
    instances (which the index never keeps).
    """
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        while row.level < Level.INSTANCE:
            children = session.children(row.id)
            if not children:
                return None
            row = children[-1]
        return row.public_id


def module(
    archive: Archive,
    public_id: str,
    level: Level,
    fmt: str,
    patient_module: bool = False,
    ignore_length: Collection[int] = (),
) -> dict[str, Any]:
    """``/{level}/{id}/module``: the top-level tags of the level's DICOM module (the
    Patient module with ``patient_module``), read from one representative instance,
    rendered as ``/instances/{id}/tags`` renders them (sequences whole, empty values
    kept)."""
    instance = representative_instance(archive, public_id, level)
    if instance is None:
        return {}
    tags = LEVEL_MODULES[Level.PATIENT if patient_module else level]
    wanted = {tags_json.tag_key(t) for t in tags}
    full = orjson.loads(tags_json_bytes(archive, instance, "full", ignore_length))
    kept = {k: v for k, v in full.items() if k in wanted}
    if fmt == "full":
        return kept
    # Sequences are simplified down to their items: take the rendering of ``fmt``.
    rendered = orjson.loads(tags_json_bytes(archive, instance, fmt, ignore_length))
    keys = kept if fmt == "short" else (v["Name"] for v in kept.values())
    return {k: rendered[k] for k in keys if k in rendered}


def invalidate_cached_tags() -> None:
    """``/tools/invalidate-tags``: drop the rendered tags kept in memory.

    They can never be stale (they are keyed by immutable attachment), so this only
    frees memory; Orthanc uses the route to rebuild its stored JSON summaries.
    """
    _rendered.clear()
