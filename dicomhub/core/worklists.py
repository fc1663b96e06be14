"""Modality worklists served from a folder of ``.wl`` files (Orthanc's ``Worklists``
configuration section: ``Enable``, ``Database``, ``FilterIssuerAet``, ``LimitAnswers``).

Every C-FIND reads the folder again, as Orthanc's worklist plugin does, so that
files dropped in or removed by a RIS bridge are seen at once. A file matches when
every non-empty key of the query matches it with DICOM's rules (the ones
``core.matching`` applies to ``/tools/find``: lists, ``*``/``?`` wildcards on text,
date/time ranges; person names case-insensitive unless ``CaseSensitivePN``); a
sequence key with a non-empty item matches when one item of the file's sequence
matches that item's keys (ScheduledProcedureStepSequence typically). The answer
holds the query's keys filled from the file: an empty key is a return key, a
sequence key with no item or an empty item returns the whole sequence.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from ..dicom.values import dataset_charsets, element_string
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


def read_worklists(folder: str) -> list[Dataset]:
    """Every readable ``*.wl`` file of the folder (name order); unreadable ones are
    logged and skipped rather than failing the whole C-FIND."""
    found: list[Dataset] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        log.error("Cannot read the worklist folder %s: %s", folder, exc)
        return found
    for name in names:
        path = os.path.join(folder, name)
        if not name.lower().endswith(".wl") or not os.path.isfile(path):
            continue
        try:
            worklist = dcmread(path, force=True)
            worklist.walk(lambda _ds, _elem: None)  # decodes every element: junk fails here
        except (InvalidDicomError, OSError, ValueError, EOFError, NotImplementedError) as exc:
            log.warning("Skipping the unreadable worklist %s: %s", path, exc)
            continue
        if len(worklist) == 0:
            log.warning("Skipping the empty worklist %s", path)
            continue
        found.append(worklist)
    return found


def _text(elem: DataElement, charsets: list[str]) -> str | None:
    if elem.VR == "PN":
        if elem.value is None:
            return ""
        values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
        return "\\".join(str(v) for v in values).rstrip(" \x00")
    return element_string(elem, charsets)


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
            found = candidate.get_item(tag)
            if found is not None and not isinstance(found, DataElement):
                found = candidate[tag]
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
        if not items or not any(_has_constraint(item) for item in items):
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


def _answer(query: Dataset, worklist: Dataset) -> Dataset:
    """The query's keys filled from the worklist (absent there: sent empty)."""
    answer = Dataset()
    for key in query:
        tag = int(key.tag)
        if key.tag.element == 0:
            continue
        found = worklist.get_item(tag)
        if found is not None and not isinstance(found, DataElement):
            found = worklist[tag]
        if key.VR == "SQ":
            items = list(key.value or [])
            source = list(found.value or []) if found is not None and found.VR == "SQ" else []
            if not items or len(items[0]) == 0:
                answer.add(DataElement(tag, "SQ", Sequence(source)))
            else:
                answer.add(DataElement(tag, "SQ", Sequence([_answer(items[0], s) for s in source])))
            continue
        if found is None:
            answer.add(DataElement(tag, key.VR, None))
        else:
            answer.add(DataElement(tag, found.VR, found.value))
    if SPECIFIC_CHARACTER_SET in worklist:
        answer.SpecificCharacterSet = worklist.SpecificCharacterSet
    return answer


def _station_aets(worklist: Dataset, charsets: list[str]) -> set[str]:
    found: set[str] = set()
    sequence = worklist.get((0x0040, 0x0100))
    for item in (sequence.value if sequence is not None else None) or []:
        elem = item.get((0x0040, 0x0001))
        text = element_string(elem, charsets) if elem is not None else None
        found.update(v.strip() for v in (text or "").split("\\") if v.strip())
    return found


def _query_sets_station(query: Dataset, charsets: list[str]) -> bool:
    sequence = query.get((0x0040, 0x0100))
    for item in (sequence.value if sequence is not None else None) or []:
        elem = item.get((0x0040, 0x0001))
        if elem is not None and (element_string(elem, charsets) or "").strip():
            return True
    return False


def find_worklists(
    settings: WorklistSettings, query: Dataset, calling_aet: str
) -> tuple[list[Dataset], bool]:
    """The answers to a worklist C-FIND, and whether they are all the matches."""
    matcher = Matcher(settings)
    query_charsets = dataset_charsets(query, settings.default_encoding)
    filter_station = settings.filter_issuer_aet and not _query_sets_station(query, query_charsets)
    answers: list[Dataset] = []
    for worklist in read_worklists(settings.folder):
        charsets = dataset_charsets(worklist, settings.default_encoding)
        if filter_station and calling_aet.strip() not in _station_aets(worklist, charsets):
            continue
        if not matcher.dataset_matches(query, worklist, query_charsets, charsets):
            continue
        if settings.limit and len(answers) >= settings.limit:
            return answers, False
        answers.append(_answer(query, worklist))
    return answers, True


__all__ = ["WorklistQueryError", "WorklistSettings", "find_worklists", "read_worklists"]
