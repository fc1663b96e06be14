"""Modality worklists served from a folder of ``.wl`` files (Orthanc's ``Worklists``
configuration section: ``Enable``, ``Database``, ``FilterIssuerAet``, ``LimitAnswers``).

Every C-FIND reads the folder again, as Orthanc's worklist plugin does, so that
files dropped in or removed by a RIS bridge are seen at once; a file that is not
DICOM is skipped, a missing folder fails the C-FIND. A file matches when every
non-empty key of the query matches it with DICOM's rules (the ones
``core.matching`` applies to ``/tools/find``: lists, ``*``/``?`` wildcards on text,
date/time ranges; person names case-insensitive unless ``CaseSensitivePN``); a
sequence key with a non-empty item matches when one item of the file's sequence
matches that item's keys (ScheduledProcedureStepSequence typically); a query
sequence with more than one item is refused. With ``FilterIssuerAet`` the caller's
AET is the ScheduledStationAETitle of the step item used for matching, whatever the
query says there (Orthanc's plugin does the same).

The answer holds the query's keys that the file has, filled from it (a key the file
lacks is left out, as Orthanc does): an empty key is a return key; a sequence key
with no item or an empty item returns the whole sequence, otherwise the file's items
that match the query item (all of them when that item holds no constraint), each
reduced to the item's keys. Every answer names its character set: the file's, or
the term of ``DefaultEncoding`` (the one the file was read with) when it has none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.charset import convert_encodings
from pydicom.datadict import get_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from ..dicom.values import ENCODING_TERMS, dataset_charsets, element_string
from .errors import ParameterOutOfRange
from .matching import matches, parse_constraint

log = logging.getLogger("dicomhub.worklists")

SPECIFIC_CHARACTER_SET = 0x00080005
SCHEDULED_PROCEDURE_STEP_SEQUENCE = 0x00400100
SCHEDULED_STATION_AE_TITLE = 0x00400001


class WorklistQueryError(Exception):
    """The query cannot be answered (e.g. a wildcard on a UID)."""


@dataclass(frozen=True)
class WorklistSettings:
    enabled: bool = False
    folder: str = ""
    filter_issuer_aet: bool = False
    limit: int = 0
    case_sensitive_pn: bool = False
    default_encoding: str = "Latin1"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorklistSettings:
        section = config.get("Worklists") or {}
        if not isinstance(section, dict):
            section = {}
        return cls(
            enabled=bool(section.get("Enable", False)),
            folder=str(section.get("Database") or ""),
            filter_issuer_aet=bool(section.get("FilterIssuerAet", False)),
            limit=max(0, int(section.get("LimitAnswers") or 0)),
            case_sensitive_pn=bool(config.get("CaseSensitivePN", False)),
            default_encoding=str(config.get("DefaultEncoding") or "Latin1"),
        )


def _looks_like_dicom(dataset: Dataset) -> bool:
    """False for what a forced read made of a file that is not DICOM (text, say): no
    public tag at all or, for a bare implicit-VR dataset (where the dictionary gives
    the VRs), a public top-level tag the dictionary does not know. A Part 10 file, or
    an explicit-VR one (pydicom checks its VRs), may hold tags newer than the
    dictionary."""
    part10 = dataset.preamble is not None or len(dataset.file_meta or ()) > 0
    implicit_vr = bool(dataset.original_encoding[0])
    known = 0
    for tag in dataset.keys():  # noqa: SIM118 (iterating the dataset would decode it)
        if tag.is_private or tag.element == 0:
            continue
        if implicit_vr and not part10:
            try:
                get_entry(tag)  # also knows the repeating groups (overlays, curves)
            except KeyError:
                return False
        known += 1
    return known > 0


def read_worklists(folder: str, default_encoding: str = "Latin1") -> list[Dataset]:
    """Every readable ``*.wl`` file of the folder (name order); unreadable ones are
    logged and skipped rather than failing the whole C-FIND. A file without
    SpecificCharacterSet is read with ``DefaultEncoding`` and gets its term, so that
    its answers say how they are encoded. A folder that cannot be listed is an error
    (``WorklistQueryError``), as in Orthanc."""
    found: list[Dataset] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        log.error("Cannot read the worklist folder %s: %s", folder, exc)
        raise WorklistQueryError(f"Cannot read the worklist folder {folder!r}") from exc
    default_term = ENCODING_TERMS.get(default_encoding, "ISO_IR 100")
    for name in names:
        path = os.path.join(folder, name)
        if not name.lower().endswith(".wl") or not os.path.isfile(path):
            continue
        try:
            worklist = dcmread(path, force=True)
            if len(worklist) == 0:
                log.warning("Skipping the empty worklist %s", path)
                continue
            if not _looks_like_dicom(worklist):
                log.warning("Skipping the worklist %s: not a DICOM file", path)
                continue
            if not _has_charset(worklist):
                implicit_vr, little_endian = worklist.original_encoding
                worklist.set_original_encoding(
                    implicit_vr, little_endian, convert_encodings([default_term])
                )
                worklist.SpecificCharacterSet = default_term
            worklist.walk(lambda _ds, _elem: None)  # decodes every element: junk fails here
        except (InvalidDicomError, OSError, ValueError, EOFError, NotImplementedError) as exc:
            log.warning("Skipping the unreadable worklist %s: %s", path, exc)
            continue
        found.append(worklist)
    return found


def _has_charset(dataset: Dataset) -> bool:
    elem = dataset.get_item(SPECIFIC_CHARACTER_SET)
    if elem is None or not elem.value:
        return False
    value = elem.value
    if isinstance(value, bytes):
        return bool(value.strip(b" \x00\\"))
    if isinstance(value, str):
        return bool(value.strip())
    return any(str(term).strip() for term in value)


def _text(elem: DataElement, charsets: list[str]) -> str | None:
    if elem.VR == "PN":
        if elem.value is None:
            return ""
        values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
        return "\\".join(str(v) for v in values).rstrip(" \x00")
    return element_string(elem, charsets)


def _element(dataset: Dataset, tag: int) -> DataElement | None:
    found = dataset.get_item(tag)
    if found is not None and not isinstance(found, DataElement):
        found = dataset[tag]
    return found


class Matcher:
    def __init__(self, settings: WorklistSettings) -> None:
        self.settings = settings

    def _value_matches(
        self, key: DataElement, key_text: str, candidate: DataElement | None, charsets: list[str]
    ) -> bool:
        case_sensitive = key.VR != "PN" or self.settings.case_sensitive_pn
        try:
            constraint = parse_constraint(int(key.tag), key_text, case_sensitive, key.VR)
        except ParameterOutOfRange as exc:  # a wildcard where DICOM allows none
            raise WorklistQueryError(str(exc)) from exc
        if constraint is None:
            return True
        if candidate is None:
            return False
        text = _text(candidate, charsets)
        if text is None:
            return False
        values = text.split("\\") if text else [""]
        return any(matches(constraint, value) for value in values)

    def dataset_matches(
        self, query: Dataset, candidate: Dataset, query_charsets: list[str], charsets: list[str]
    ) -> bool:
        for key in query:
            tag = int(key.tag)
            if tag == SPECIFIC_CHARACTER_SET or key.tag.element == 0:
                continue
            found = _element(candidate, tag)
            if key.VR == "SQ":
                if not self._sequence_matches(key, found, query_charsets, charsets):
                    return False
                continue
            key_text = _text(key, query_charsets) or ""
            if not self._value_matches(key, key_text, found, charsets):
                return False
        return True

    def _sequence_matches(
        self,
        key: DataElement,
        found: DataElement | None,
        query_charsets: list[str],
        charsets: list[str],
    ) -> bool:
        items = list(key.value or [])
        if not items or not _has_constraint(items[0]):
            return True
        if found is None or found.VR != "SQ":
            return False
        return any(
            self.dataset_matches(items[0], item, query_charsets, charsets)
            for item in (found.value or [])
        )


def _has_constraint(item: Dataset) -> bool:
    for elem in item:
        if elem.VR == "SQ":
            if any(_has_constraint(sub) for sub in (elem.value or [])):
                return True
        elif elem.value not in (None, "", b"") and int(elem.tag) != SPECIFIC_CHARACTER_SET:
            return True
    return False


def _check_query(query: Dataset) -> None:
    """A sequence of a C-FIND query holds one item at most (PS3.4 C.2.2.2.6); Orthanc
    refuses more, and so do we."""
    for elem in query:
        if elem.VR != "SQ":
            continue
        items = list(elem.value or [])
        if len(items) > 1:
            raise WorklistQueryError(
                f"The query sequence {elem.tag} has {len(items)} items, one at most is allowed"
            )
        for item in items:
            _check_query(item)


class _Answer:
    """Builds the answers of one query: its keys, filled from a matching worklist."""

    def __init__(self, matcher: Matcher, query: Dataset, query_charsets: list[str]) -> None:
        self.matcher = matcher
        self.query = query
        self.query_charsets = query_charsets

    def build(self, worklist: Dataset, charsets: list[str]) -> Dataset:
        answer = self._fill(self.query, worklist, charsets)
        answer.SpecificCharacterSet = worklist.SpecificCharacterSet  # set when read
        return answer

    def _fill(self, query: Dataset, source: Dataset, charsets: list[str]) -> Dataset:
        answer = Dataset()
        for key in query:
            tag = int(key.tag)
            if key.tag.element == 0 or tag == SPECIFIC_CHARACTER_SET:
                continue
            found = _element(source, tag)
            if found is None:  # not in the file: left out, as Orthanc does
                continue
            if key.VR != "SQ":
                answer.add(DataElement(tag, found.VR, found.value))
                continue
            if found.VR != "SQ":
                continue
            items = list(key.value or [])
            file_items = list(found.value or [])
            if not items or len(items[0]) == 0:
                answer.add(DataElement(tag, "SQ", Sequence(file_items)))
                continue
            item = items[0]
            if _has_constraint(item):  # only the items that match (PS3.4 C.2.2.2.6)
                file_items = [
                    f
                    for f in file_items
                    if self.matcher.dataset_matches(item, f, self.query_charsets, charsets)
                ]
            answer.add(
                DataElement(
                    tag, "SQ", Sequence([self._fill(item, f, charsets) for f in file_items])
                )
            )
        return answer


def _issuer_query(query: Dataset, calling_aet: str) -> Dataset:
    """A copy of ``query`` whose step item asks for the caller's station, for matching
    only (``FilterIssuerAet``): the caller's AET replaces whatever the query put in
    ScheduledStationAETitle, and the step sequence and item are made if absent."""
    matching = Dataset()
    for elem in query:
        if int(elem.tag) != SCHEDULED_PROCEDURE_STEP_SEQUENCE:
            matching.add(elem)
    original = query.get(SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    item = Dataset()
    if original is not None and original.VR == "SQ" and original.value:
        for elem in original.value[0]:
            item.add(elem)
    item.add(DataElement(SCHEDULED_STATION_AE_TITLE, "AE", calling_aet))
    matching.add(DataElement(SCHEDULED_PROCEDURE_STEP_SEQUENCE, "SQ", Sequence([item])))
    return matching


def find_worklists(
    settings: WorklistSettings, query: Dataset, calling_aet: str
) -> tuple[list[Dataset], bool]:
    """The answers to a worklist C-FIND, and whether they are all the matches."""
    _check_query(query)
    matcher = Matcher(settings)
    query_charsets = dataset_charsets(query, settings.default_encoding)
    matching = _issuer_query(query, calling_aet) if settings.filter_issuer_aet else query
    builder = _Answer(matcher, query, query_charsets)
    answers: list[Dataset] = []
    for worklist in read_worklists(settings.folder, settings.default_encoding):
        charsets = dataset_charsets(worklist, settings.default_encoding)
        if not matcher.dataset_matches(matching, worklist, query_charsets, charsets):
            continue
        if settings.limit and len(answers) >= settings.limit:
            return answers, False
        answers.append(builder.build(worklist, charsets))
    return answers, True


__all__ = ["WorklistQueryError", "WorklistSettings", "find_worklists", "read_worklists"]
