"""Modifying or anonymizing one dataset, in place: the steps Orthanc takes, in its order.

A ``Modification`` says what to do (the tags to empty, remove, replace, keep or
remap, the paths into sequences, the level whose identifiers get new UIDs); ``apply``
does it to one dataset. New UIDs come from a ``UidMapper``: it derives them from a
seed and the old value, so every instance of a study gets the same new study UID,
references inside sequences follow the instances they point to, and a job that is
resumed after a pause or a restart produces exactly the same identifiers again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from . import descriptors, safe_private
from .confidentiality import TagRange
from .encodable import drop_unencodable
from .levels import Level
from .tag_paths import TagPath, format_tag, parse_tag_path, parse_tag_token

PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018
SOP_CLASS_UID = 0x00080016
MEDIA_STORAGE_SOP_CLASS_UID, MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020002, 0x00020003
REFERENCED_SOP_INSTANCE_UID = 0x00081155
REFERENCED_FRAME_OF_REFERENCE_SEQUENCE = 0x30060010
RT_REFERENCED_STUDY_SEQUENCE = 0x30060012
#: The tags a modification may not remove: they make the Orthanc identifiers.
IDENTIFIERS = (PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID)

STRING_VRS = frozenset(
    ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI")
    + ("UR", "UT")
)
_INTEGER_VRS = frozenset(("SL", "SS", "SV", "UL", "US", "UV"))
_FLOAT_VRS = frozenset(("FL", "FD"))
_DATA_URI = re.compile(r"^data:[^,;]*(;[^,;]*)*;base64,", re.IGNORECASE)


class BadReplacement(ValueError):
    """A replacement value whose JSON type does not fit the tag."""


class ForbiddenRemoval(ValueError):
    """Removing PatientID or a UID of the hierarchy (never allowed, Force or not)."""


# ---- new identifiers -----------------------------------------------------------
class UidMapper:
    """Old value -> new value, per level; deterministic for a given seed."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self._registered: dict[tuple[int, str], str] = {}

    def register(self, original: str, mapped: str, level: Level) -> None:
        """A value the user forced: references to ``original`` follow it."""
        self._registered.setdefault((int(level), original.strip()), mapped)

    def map(self, original: str, level: Level) -> str:
        stripped = original.strip()
        found = self._registered.get((int(level), stripped))
        if found is not None:
            return found
        digest = hashlib.sha256(f"{self.seed}|{int(level)}|{stripped}".encode()).digest()
        value = uuid.UUID(bytes=digest[:16], version=4)
        # Orthanc gives a patient a UUID as PatientID; UIDs are the UUID as an OID.
        return str(value) if level == Level.PATIENT else f"2.25.{value.int}"


# ---- what to do ------------------------------------------------------------------
@dataclass
class Modification:
    """What to do to every instance; mirrors the sets Orthanc keeps, each tag in at
    most one of them (the last operation on a tag wins)."""

    level: Level = Level.INSTANCE
    anonymization: bool = False
    remove_private: bool = False
    removals: set[int] = field(default_factory=set)
    clearings: set[int] = field(default_factory=set)
    uids: set[int] = field(default_factory=set)
    keep: set[int] = field(default_factory=set)
    private_keep: set[int] = field(default_factory=set)
    removed_ranges: list[TagRange] = field(default_factory=list)
    replacements: dict[int, Any] = field(default_factory=dict)
    keep_paths: list[TagPath] = field(default_factory=list)
    remove_paths: list[TagPath] = field(default_factory=list)
    replace_paths: list[tuple[TagPath, Any]] = field(default_factory=list)
    keep_study_uid: bool = False
    keep_series_uid: bool = False
    keep_sop_uid: bool = False
    #: PS3.15 "Retain UIDs": no UID is remapped, not even inside sequences.
    retain_uids: bool = False
    #: PS3.15 "Clean Descriptors": these descriptors are cleaned, not removed.
    clean_descriptors: set[int] = field(default_factory=set)
    #: PS3.15 "Retain Safe Private": removing private tags spares the safe ones.
    retain_safe_private: bool = False
    private_creator: str = ""

    # -- top-level tags (Orthanc's Keep / Remove / Clear / Replace on one tag) --
    def _forget(self, tag: int) -> None:
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)

    def keep_tag(self, tag: int) -> None:
        self._forget(tag)
        self.keep.add(tag)
        if tag == STUDY_UID:
            self.keep_study_uid = True
        elif tag == SERIES_UID:
            self.keep_series_uid = True
        elif tag == SOP_UID:
            self.keep_sop_uid = True
        elif is_private(tag):
            self.private_keep.add(tag)

    def remove_tag(self, tag: int) -> None:
        self._forget(tag)
        self.private_keep.discard(tag)
        self.removals.add(tag)

    def clear_tag(self, tag: int) -> None:
        self._forget(tag)
        self.private_keep.discard(tag)
        self.clearings.add(tag)

    def replace_tag(self, tag: int, value: Any) -> None:
        self._forget(tag)
        self.private_keep.discard(tag)
        self.replacements[tag] = value

    # -- paths ----------------------------------------------------------------------
    def keep_path(self, path: TagPath) -> None:
        if path.is_top_level:
            self.keep_tag(path.tag)
        self.keep_paths.append(path)

    def remove_path(self, path: TagPath) -> None:
        if path.is_top_level:
            self.remove_tag(path.tag)
        else:
            self.remove_paths.append(path)

    def replace_path(self, path: TagPath, value: Any) -> None:
        if path.is_top_level:
            self.replace_tag(path.tag, value)
        else:
            self.replace_paths.append((path, value))

    # -- queries --------------------------------------------------------------------
    def is_removed(self, tag: int) -> bool:
        return tag in self.removals or any(tag in r for r in self.removed_ranges)

    def is_replaced(self, tag: int) -> bool:
        return tag in self.replacements

    def is_manually_modified(self, tag: int) -> bool:
        return tag in self.clearings or self.is_removed(tag) or self.is_replaced(tag)

    def is_kept_path(self, parents: list[tuple[int, int]], tag: int) -> bool:
        return any(path.matches(parents, tag) for path in self.keep_paths)

    # -- saved with the job ------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        def tags(values: Iterable[int]) -> list[str]:
            return sorted(format_tag(t) for t in values)

        return {
            "Level": int(self.level),
            "IsAnonymization": self.anonymization,
            "RemovePrivateTags": self.remove_private,
            "Removals": tags(self.removals),
            "Clearings": tags(self.clearings),
            "Uids": tags(self.uids),
            "Keep": tags(self.keep),
            "PrivateTagsToKeep": tags(self.private_keep),
            "RemovedRanges": [
                [r.group_from, r.group_to, r.element_from, r.element_to]
                for r in self.removed_ranges
            ],
            "Replacements": {format_tag(t): v for t, v in self.replacements.items()},
            "KeepSequences": [p.format() for p in self.keep_paths],
            "RemoveSequences": [p.format() for p in self.remove_paths],
            "SequenceReplacements": [[p.format(), v] for p, v in self.replace_paths],
            "KeepStudyInstanceUID": self.keep_study_uid,
            "KeepSeriesInstanceUID": self.keep_series_uid,
            "KeepSOPInstanceUID": self.keep_sop_uid,
            "RetainUIDs": self.retain_uids,
            "CleanDescriptors": tags(self.clean_descriptors),
            "RetainSafePrivate": self.retain_safe_private,
            "PrivateCreator": self.private_creator,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Modification:
        def tags(key: str) -> set[int]:
            return {parse_tag_token(t) for t in data.get(key, [])}

        return cls(
            level=Level(data["Level"]),
            anonymization=bool(data["IsAnonymization"]),
            remove_private=bool(data["RemovePrivateTags"]),
            removals=tags("Removals"),
            clearings=tags("Clearings"),
            uids=tags("Uids"),
            keep=tags("Keep"),
            private_keep=tags("PrivateTagsToKeep"),
            removed_ranges=[TagRange(*r) for r in data.get("RemovedRanges", [])],
            replacements={parse_tag_token(t): v for t, v in data["Replacements"].items()},
            keep_paths=[parse_tag_path(p) for p in data.get("KeepSequences", [])],
            remove_paths=[parse_tag_path(p) for p in data.get("RemoveSequences", [])],
            replace_paths=[(parse_tag_path(p), v) for p, v in data.get("SequenceReplacements", [])],
            keep_study_uid=bool(data.get("KeepStudyInstanceUID")),
            keep_series_uid=bool(data.get("KeepSeriesInstanceUID")),
            keep_sop_uid=bool(data.get("KeepSOPInstanceUID")),
            retain_uids=bool(data.get("RetainUIDs")),
            clean_descriptors=tags("CleanDescriptors"),
            retain_safe_private=bool(data.get("RetainSafePrivate")),
            private_creator=str(data.get("PrivateCreator", "")),
        )


def is_private(tag: int) -> bool:
    return bool((tag >> 16) & 1)


# ---- doing it ----------------------------------------------------------------------
def apply(ds: Dataset, mod: Modification, mapper: UidMapper) -> None:
    """Modify ``ds`` in place; the file meta follows the new SOP Instance UID."""
    if any(mod.is_removed(tag) for tag in IDENTIFIERS):
        raise ForbiddenRemoval("It is forbidden to remove one of the main Dicom identifiers")
    if mod.anonymization:  # references to a forced UID follow it
        for tag, level in ((STUDY_UID, Level.STUDY), (SERIES_UID, Level.SERIES)):
            _register_forced(ds, mod, mapper, tag, level)
        _register_forced(ds, mod, mapper, SOP_UID, Level.INSTANCE)
    if mod.clean_descriptors:  # first: it looks for the values the next steps remove
        _clean_descriptors(ds, mod)
    if mod.remove_private and mod.retain_safe_private:
        safe_private.remove_unsafe(ds, mod.private_keep.__contains__, mod.is_kept_path)
        mod = replace(mod, remove_private=False)  # what is left is safe or kept
    if mod.remove_private:
        _remove_private(ds, mod.private_keep)
    present = set(_tags(ds))
    for tag in mod.clearings & present:
        _clear(ds[tag])
    for tag in mod.removals & present:
        del ds[tag]
    if mod.removed_ranges:
        for tag in present - mod.removals:
            if any(tag in r for r in mod.removed_ranges):
                del ds[tag]
    for tag, value in mod.replacements.items():
        if tag in (SOP_CLASS_UID, SOP_UID) and not isinstance(value, str):
            # Also written to the file meta, where only a string goes (not even
            # ``null``); Orthanc answers this error without details.
            raise BadReplacement("")
        set_value(ds, tag, value, mod.private_creator)
    for level, tag, kept in (
        (Level.STUDY, STUDY_UID, mod.keep_study_uid),
        (Level.SERIES, SERIES_UID, mod.keep_series_uid),
        (Level.INSTANCE, SOP_UID, mod.keep_sop_uid),
    ):
        if mod.level <= level and not mod.is_replaced(tag) and not kept:
            original = str(ds[tag].value or "") if tag in ds else ""
            ds[tag] = DataElement(tag, "UI", mapper.map(original, level))
    if mod.anonymization:
        _relationships(ds, mod, mapper, [])
    for path in mod.remove_paths:
        for item in _items(ds, path):
            if path.tag in item:
                del item[path.tag]
    for path, value in mod.replace_paths:
        for item in _items(ds, path):
            set_value(item, path.tag, value, mod.private_creator)
    if mod.replacements or mod.replace_paths:
        drop_unencodable(ds)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if SOP_UID in ds:
            meta.MediaStorageSOPInstanceUID = ds[SOP_UID].value
        if SOP_CLASS_UID in ds:
            meta.MediaStorageSOPClassUID = ds[SOP_CLASS_UID].value


def sop_instance_uid(ds: Dataset) -> str:
    """The SOP Instance UID of ``ds`` without its padding ("" when absent or empty)."""
    elem = ds.get(SOP_UID)
    value = elem.value if elem is not None else None
    if isinstance(value, bytes):  # a raw element of an implicit VR file
        value = value.decode("ascii", "replace")
    return str(value or "").strip(" \0")


def write_file(ds: Dataset) -> bytes:
    """``ds`` (read from a file, then modified) as a DICOM file.

    With ``Force`` a user may empty the SOP Instance UID (or, without it, the SOP
    Class UID): Orthanc then answers a file whose file meta carries the empty value
    too. pydicom's writer refuses an empty Media Storage UID, so such a file meta is
    completed as that writer completes it and written as it is."""
    out = io.BytesIO()
    meta = ds.file_meta
    required = (MEDIA_STORAGE_SOP_CLASS_UID, MEDIA_STORAGE_SOP_INSTANCE_UID)
    if all(tag not in meta or not meta[tag].is_empty for tag in required):
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()
    meta.FileMetaInformationGroupLength = 0  # written with its real value
    if "FileMetaInformationVersion" not in meta:
        meta.FileMetaInformationVersion = b"\0\1"
    if "ImplementationClassUID" not in meta or meta["ImplementationClassUID"].is_empty:
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    if len(getattr(ds, "preamble", None) or b"") != 128:
        ds.preamble = b"\0" * 128
    ds.save_as(out, enforce_file_format=False)
    return out.getvalue()


def _clean_descriptors(ds: Dataset, mod: Modification) -> None:
    hidden = mod.removals | mod.clearings | mod.uids | set(mod.replacements)
    descriptors.clean_descriptors(
        ds, mod.clean_descriptors, hidden.__contains__, mod.keep.__contains__
    )


def _register_forced(
    ds: Dataset, mod: Modification, mapper: UidMapper, tag: int, level: Level
) -> None:
    value = mod.replacements.get(tag)
    if isinstance(value, str) and tag in ds:
        mapper.register(str(ds[tag].value or ""), value, level)


def _remove_private(ds: Dataset, keep: set[int]) -> None:
    """Top-level private tags go, but those kept stay with their Private Creator."""
    creators = {(t >> 16) << 16 | ((t & 0xFFFF) >> 8) for t in keep if (t & 0xFFFF) >= 0x1000}
    for tag in _tags(ds):
        if is_private(tag) and tag not in keep and tag not in creators:
            del ds[tag]


def _tags(ds: Dataset) -> list[int]:
    """The top-level tags, copied (so that the loop may delete)."""
    keys = list(ds.keys())
    return [int(t) for t in keys]


def _clear(elem: DataElement) -> None:
    elem.value = [] if elem.VR == "SQ" else ("" if elem.VR in STRING_VRS else None)


def _values(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None:
        return []
    if isinstance(value, MultiValue | list):
        return [str(v) for v in value]
    return [str(value)]


def _mapped(elem: DataElement, mapper: UidMapper, level: Level) -> None:
    values = [mapper.map(v, level) for v in _values(elem)] or [mapper.map("", level)]
    elem.value = values[0] if len(values) == 1 else values


def _relationships(
    ds: Dataset, mod: Modification, mapper: UidMapper, parents: list[tuple[int, int]]
) -> None:
    """Orthanc's last anonymization pass: remap referenced UIDs everywhere, and apply
    the profile's removals inside sequences."""
    for key in sorted(ds.keys()):
        if not parents and _left_alone(ds, mod, key):
            continue
        elem = ds[key]
        tag = int(elem.tag)
        if parents and _removed_inside(ds, elem, mod, parents, tag):
            continue
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or []):
                _relationships(item, mod, mapper, [*parents, (tag, index)])
        elif elem.VR in STRING_VRS:
            _string(elem, mod, mapper, parents, tag)


def _left_alone(ds: Dataset, mod: Modification, tag: int) -> bool:
    """At the top level this pass only remaps the profile's UIDs and walks sequences;
    any other element is left unread: converting every element costs more than the
    rest of the pass, and an element never converted is written back as it came."""
    if tag in mod.uids:
        return False
    vr = ds.get_item(tag).VR  # None for a raw element of an implicit VR file
    return vr is not None and vr not in ("SQ", "UN")


def _removed_inside(
    ds: Dataset,
    elem: DataElement,
    mod: Modification,
    parents: list[tuple[int, int]],
    tag: int,
) -> bool:
    """Inside a sequence: private tags and the removed tags go, cleared ones empty."""
    if mod.is_kept_path(parents, tag):
        return False
    if (mod.remove_private and is_private(tag)) or mod.is_removed(tag):
        del ds[tag]
        return True
    if tag in mod.clearings:
        if elem.VR in STRING_VRS:
            elem.value = ""
            return True
        del ds[tag]
        return True
    return False


def _string(
    elem: DataElement,
    mod: Modification,
    mapper: UidMapper,
    parents: list[tuple[int, int]],
    tag: int,
) -> None:
    if not parents:
        if tag in mod.uids and not mod.is_manually_modified(tag):
            level = Level.PATIENT if tag in (PATIENT_ID, PATIENT_NAME) else Level.INSTANCE
            _mapped(elem, mapper, level)
        return
    if mod.is_kept_path(parents, tag) or tag in mod.clearings or mod.retain_uids:
        return
    if tag == STUDY_UID:
        _mapped(elem, mapper, Level.STUDY)
    elif tag == SERIES_UID:
        _mapped(elem, mapper, Level.SERIES)
    elif tag == SOP_UID:
        _mapped(elem, mapper, Level.INSTANCE)
    elif tag in mod.uids:
        if tag in (PATIENT_ID, PATIENT_NAME):
            _mapped(elem, mapper, Level.PATIENT)
        elif (
            len(parents) == 2
            and parents[0][0] == REFERENCED_FRAME_OF_REFERENCE_SEQUENCE
            and parents[1][0] == RT_REFERENCED_STUDY_SEQUENCE
            and tag == REFERENCED_SOP_INSTANCE_UID
        ):
            # In RT Structure Sets this "SOP Instance" is a study: map it as one.
            _mapped(elem, mapper, Level.STUDY)
        else:
            _mapped(elem, mapper, Level.INSTANCE)


def _items(ds: Dataset, path: TagPath) -> list[Dataset]:
    """The existing items a path's prefix designates (none are created)."""
    current = [ds]
    for step in path.prefix:
        found: list[Dataset] = []
        for item in current:
            if step.tag not in item or item[step.tag].VR != "SQ":
                continue
            seq = item[step.tag].value or []
            if step.index is None:
                found.extend(seq)
            elif step.index < len(seq):
                found.append(seq[step.index])
        current = found
    return current


# ---- values from JSON --------------------------------------------------------------
def tag_vr(ds: Dataset, tag: int) -> str:
    """The VR to write ``tag`` with: the one it has, else the dictionary's, else UN."""
    if tag in ds and ds[tag].VR != "UN":
        return ds[tag].VR
    if is_private(tag):
        return ds[tag].VR if tag in ds else "UN"
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "UN"


def set_value(ds: Dataset, tag: int, value: Any, private_creator: str = "") -> None:
    """Insert or replace ``tag`` with a value given in JSON (Orthanc's ``Replace``)."""
    vr = tag_vr(ds, tag)
    ds[tag] = DataElement(tag, vr, _convert(tag, vr, value, private_creator))
    element = tag & 0xFFFF
    if is_private(tag) and element >= 0x1000 and private_creator:
        creator = (tag >> 16) << 16 | (element >> 8)
        if creator not in ds:
            ds[creator] = DataElement(creator, "LO", private_creator)


def _bad(tag: int) -> BadReplacement:
    return BadReplacement(f"Bad Parameter type for tag {format_tag(tag)}")


def _convert(tag: int, vr: str, value: Any, private_creator: str) -> Any:
    if value is None:
        return [] if vr == "SQ" else ("" if vr in STRING_VRS else None)
    if vr == "SQ":
        if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
            raise _bad(tag)
        items = []
        for source in value:
            item = Dataset()
            for key, sub in source.items():
                set_value(item, parse_tag_token(key), sub, private_creator)
            items.append(item)
        return items
    if not isinstance(value, str):
        raise _bad(tag)
    data: bytes | None = None
    match = _DATA_URI.match(value)
    if match:
        try:
            data = base64.b64decode(value[match.end() :], validate=False)
        except ValueError as exc:
            raise _bad(tag) from exc
    if vr in STRING_VRS:
        return data.decode("utf-8", "replace") if data is not None else value
    try:
        if vr in _INTEGER_VRS:
            return _numbers(value, int)
        if vr in _FLOAT_VRS:
            return _numbers(value, float)
        if vr == "AT":
            return [parse_tag_token(v) for v in value.split("\\")]
    except ValueError as exc:
        raise _bad(tag) from exc
    raw = data if data is not None else value.encode("utf-8")
    return raw + b"\0" if len(raw) % 2 else raw


def _numbers(text: str, kind: type) -> Any:
    values = [kind(v) for v in text.split("\\") if v.strip()]
    return values[0] if len(values) == 1 else values
