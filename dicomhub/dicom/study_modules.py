"""The patient and study modules, and moving an instance into another study.

Splitting and merging studies (``/studies/{id}/split`` and ``/merge``) move
instances between studies. The tags that belong to a study rather than to a series
or an instance are those of the Patient Module (PS3.3 C.7-1, with the Issuer of
Patient ID macro) and of the General Study Module (PS3.3 C.7-3), in the 2011
edition of the standard that Orthanc follows (the tables are in ``modules``): split
may only change these, merge copies them from the target study.
"""

from __future__ import annotations

import io
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .modification import SERIES_UID, SOP_UID, STUDY_UID, set_value
from .modules import PATIENT_MODULE, STUDY_MODULE
from .parsing import read_dataset
from .tag_paths import format_tag

STUDY_LEVEL_TAGS = PATIENT_MODULE | STUDY_MODULE
#: What a split may replace or remove: the study's own UID is chosen by the split.
SPLIT_TAGS = STUDY_LEVEL_TAGS - {STUDY_UID, SERIES_UID}


def tag_label(tag: int) -> str:
    """``Modality (0008,0060)``, the way error messages name a tag."""
    return f"{keyword_for_tag(tag) or ''} ({format_tag(tag)})"


def _text(elem: DataElement) -> str | None:
    """The value as one string (multiple values joined by ``\\``), or None when it has
    no plain string form (sequences, binary values)."""
    if elem.VR == "SQ":
        return None
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value)


def study_level_values(ds: Dataset) -> tuple[dict[int, str], set[int]]:
    """What a merge writes into every instance it moves into the study of ``ds``:
    the patient and study tags with a plain value (replacements), and the others of
    these modules (removals), so that nothing of the old study is left behind."""
    replacements: dict[int, str] = {}
    removals: set[int] = set()
    for tag in sorted(STUDY_LEVEL_TAGS):
        text = _text(ds[tag]) if tag in ds else None
        if text is None:
            removals.add(tag)
        else:
            replacements[tag] = text
    return replacements, removals


def move_instance(
    data: bytes,
    removals: set[int],
    replacements: dict[int, Any],
    uids: dict[int, str],
) -> bytes:
    """The file ``data`` moved into another study: ``removals`` deleted, then
    ``replacements`` written, then the identifiers of ``uids`` (StudyInstanceUID,
    SeriesInstanceUID, SOPInstanceUID) set; the file meta follows. Everything else,
    private tags included, is kept as it was. May raise ``BadReplacement``."""
    ds, _ = read_dataset(data)
    for tag in removals:
        if tag in ds:
            del ds[tag]
    for tag, value in replacements.items():
        set_value(ds, tag, value)
    for tag, uid in uids.items():
        ds[tag] = DataElement(tag, "UI", uid)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and SOP_UID in ds:
        meta.MediaStorageSOPInstanceUID = ds[SOP_UID].value
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
