"""The JSON description of a resource, exactly as Orthanc's ``GET /{level}/{id}``.

Used by the REST list and resource routes (and later by find, Lua and the
explorer), so the shape is decided once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..dicom.levels import Level
from ..dicom.main_tags import MAIN_TAGS, format_tag, tag_name
from ..store.index.index import IndexSession
from ..store.index.records import ResourceRow
from .enums import ContentType, MetadataType
from .series_status import series_status

_CHILD_KEY = {Level.PATIENT: "Studies", Level.STUDY: "Series", Level.SERIES: "Instances"}
_PARENT_KEY = {
    Level.STUDY: "ParentPatient",
    Level.SERIES: "ParentStudy",
    Level.INSTANCE: "ParentSeries",
}


class TagStyle:
    """How tags are keyed: ``full``/default by keyword, ``short`` by ``gggg,eeee``."""

    NAMES = "names"
    SHORT = "short"
    FULL = "full"


def render_tags(tags: dict[int, str], order: tuple[int, ...], style: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in sorted(
        (t for t in order if t in tags), key=tag_name if style == TagStyle.NAMES else int
    ):
        value = tags[tag]
        if style == TagStyle.SHORT:
            out[format_tag(tag)] = value
        elif style == TagStyle.FULL:
            out[format_tag(tag)] = {"Name": tag_name(tag), "Type": "String", "Value": value}
        else:
            out[tag_name(tag)] = value
    return out


def describe(
    session: IndexSession,
    row: ResourceRow,
    style: str = TagStyle.NAMES,
    stable_overrides: bool | None = None,
) -> dict[str, Any]:
    level = Level(row.level)
    tags = session.main_tags(row.id)
    result: dict[str, Any] = {
        "ID": row.public_id,
        "Type": level.title,
        "MainDicomTags": render_tags(tags, MAIN_TAGS[level], style),
        "Labels": session.labels(row.id),
    }
    if level == Level.STUDY:
        result["PatientMainDicomTags"] = render_tags(tags, MAIN_TAGS[Level.PATIENT], style)
    if level in _PARENT_KEY and row.parent_id is not None:
        result[_PARENT_KEY[level]] = session.public_id(row.parent_id)
    if level in _CHILD_KEY:
        result[_CHILD_KEY[level]] = session.children_public_ids(row.id)
        result["IsStable"] = row.stable
        last = session.get_metadata(row.id, MetadataType.LastUpdate)
        result["LastUpdate"] = last[0] if last else ""
    if level == Level.SERIES:
        status, expected = series_status(session, row.id)
        result["Status"] = status
        result["ExpectedNumberOfInstances"] = expected
    if level == Level.INSTANCE:
        att = session.attachment(row.id, ContentType.Dicom)
        result["FileSize"] = att.uncompressed_size if att else 0
        result["FileUuid"] = att.uuid if att else ""
        index = session.get_metadata(row.id, MetadataType.IndexInSeries)
        result["IndexInSeries"] = int(index[0]) if index and index[0].isdigit() else None
    return dict(sorted(result.items()))


#: The parts a caller may ask for with ``ResponseContent`` (Orthanc 1.12.5).
RESPONSE_CONTENT: tuple[str, ...] = (
    "Attachments",
    "Children",
    "IsStable",
    "Labels",
    "MainDicomTags",
    "Metadata",
    "Parent",
    "Status",
)


def describe_content(
    session: IndexSession,
    row: ResourceRow,
    content: frozenset[str],
    style: str,
    metadata_name: Callable[[int], str],
) -> dict[str, Any]:
    """Only the asked parts of a resource's description, read only when asked.

    A study list that needs the main tags alone then costs one query per study,
    instead of children, labels, metadata and series status.
    """
    level = Level(row.level)
    result: dict[str, Any] = {"ID": row.public_id, "Type": level.title}
    if "Parent" in content and level in _PARENT_KEY and row.parent_id is not None:
        result[_PARENT_KEY[level]] = session.public_id(row.parent_id)
    if "Children" in content and level in _CHILD_KEY:
        result[_CHILD_KEY[level]] = session.children_public_ids(row.id)
    if "Status" in content and level == Level.SERIES:
        result["Status"] = series_status(session, row.id)[0]
    if "IsStable" in content and level != Level.INSTANCE:
        result["IsStable"] = row.stable
    if "MainDicomTags" in content:
        tags = session.main_tags(row.id)
        result["MainDicomTags"] = render_tags(tags, MAIN_TAGS[level], style)
        if level == Level.STUDY:
            result["PatientMainDicomTags"] = render_tags(tags, MAIN_TAGS[Level.PATIENT], style)
    if "Labels" in content:
        result["Labels"] = session.labels(row.id)
    if "Metadata" in content:
        result["Metadata"] = {
            metadata_name(kind): value for kind, (value, _) in session.metadata(row.id).items()
        }
    if "Attachments" in content:
        result["Attachments"] = [
            {
                "CompressedMD5": att.compressed_md5,
                "CompressedSize": att.compressed_size,
                "ContentType": att.content_type,
                "UncompressedMD5": att.uncompressed_md5,
                "UncompressedSize": att.uncompressed_size,
                "Uuid": att.uuid,
            }
            for att in session.attachments(row.id)
        ]
    return dict(sorted(result.items()))
