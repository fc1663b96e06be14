"""Query/retrieve operations on remote modalities (``/queries``): what was asked of
which modality, and what it answered.

Orthanc keeps these in the memory of its one process. dicomhub may run several HTTP
workers that must all answer ``GET /queries/{id}`` for a query another worker made,
so each query is one index property (its JSON) and a second property lists their
identifiers, oldest first; past ``QueryRetrieveSize`` the oldest are forgotten, as
Orthanc's bounded archive does.

The rules of the C-FIND we send are here too, as Orthanc applies them (checked on
the wire against Orthanc 1.10.1): with ``Normalize`` (the default) only the keys of
the query level and the levels above are kept, then the level's identifying keys are
added empty when missing (PatientID; StudyInstanceUID and AccessionNumber from the
study level; SeriesInstanceUID; SOPInstanceUID). A retrieve names an answer by the
unique keys of its level only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..dicom.levels import Level
from ..dicom.main_tags import MAIN_TAGS, format_tag
from ..dicom.tag_names import parse_tag
from .archive import Archive
from .describe import TagStyle, render_tags
from .errors import BadFileFormat, BadParameterType, ParameterOutOfRange, UnknownResource
from .transactions import Transaction

PATIENT_ID = 0x00100020
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
ACCESSION_NUMBER = 0x00080050
QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005

#: The computed keys a level may also ask for (beside the main tags up to it).
_EXTRA_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (0x00201200, 0x00201202, 0x00201204),
    Level.STUDY: (0x00080061, 0x00201206, 0x00201208, 0x00080062),
    Level.SERIES: (0x00201209,),
    Level.INSTANCE: (),
}
#: The keys added empty, when missing, to a query of each level.
_LEVEL_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (PATIENT_ID, STUDY_UID, ACCESSION_NUMBER),
    Level.SERIES: (PATIENT_ID, STUDY_UID, ACCESSION_NUMBER, SERIES_UID),
    Level.INSTANCE: (PATIENT_ID, STUDY_UID, ACCESSION_NUMBER, SERIES_UID, SOP_UID),
}
#: The keys that name an answer in a C-MOVE / C-GET, per level.
_RETRIEVE_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (STUDY_UID,),
    Level.SERIES: (STUDY_UID, SERIES_UID),
    Level.INSTANCE: (STUDY_UID, SERIES_UID, SOP_UID),
}
#: QueryRetrieveLevel values on the wire.
WIRE_LEVELS = {
    Level.PATIENT: "PATIENT",
    Level.STUDY: "STUDY",
    Level.SERIES: "SERIES",
    Level.INSTANCE: "IMAGE",
}
_FROM_WIRE = {v: k for k, v in WIRE_LEVELS.items()} | {"INSTANCE": Level.INSTANCE}

_LIST_PROPERTY = "dicomhub.queries"
_ITEM_PROPERTY = "dicomhub.query."


def parse_level(value: Any) -> Level:
    """A ``Level`` field: Orthanc answers "Parameter out of range" for an unknown one."""
    try:
        return Level.parse(str(value))
    except ValueError as exc:
        raise ParameterOutOfRange(f"Unknown resource level: {value}") from exc


def parse_query_keys(value: Any, field_name: str = "Query") -> dict[int, str]:
    """A JSON object of DICOM tags (names or ``gggg,eeee``) to strings."""
    expected = f"Associative array of DICOM tags to strings expected in field: {field_name}"
    if not isinstance(value, dict):
        raise BadFileFormat(expected)
    keys: dict[int, str] = {}
    for name, text in value.items():
        if not isinstance(text, str):
            raise BadFileFormat(expected)
        try:
            keys[parse_tag(name)] = text
        except ValueError as exc:
            raise BadFileFormat(expected) from exc
    return keys


def allowed_keys(level: Level) -> frozenset[int]:
    """What a normalized query of ``level`` may ask: the main tags of the level and of
    the levels above, the level's computed keys, and the character set."""
    tags: set[int] = {SPECIFIC_CHARACTER_SET}
    for upper in Level:
        if upper <= level:
            tags.update(MAIN_TAGS[upper])
    tags.update(_EXTRA_KEYS[level])
    return frozenset(tags)


def find_keys(level: Level, query: Mapping[int, str], normalize: bool) -> dict[int, str]:
    """The keys of the C-FIND identifier sent for a query (without the level itself)."""
    if normalize:
        allowed = allowed_keys(level)
        keys = {tag: value for tag, value in query.items() if tag in allowed}
    else:
        keys = dict(query)
    keys.pop(QUERY_RETRIEVE_LEVEL, None)
    for tag in _LEVEL_KEYS[level]:
        keys.setdefault(tag, "")
    return keys


def answer_level(answer: Mapping[int, str], default: Level) -> Level:
    return _FROM_WIRE.get(answer.get(QUERY_RETRIEVE_LEVEL, "").strip().upper(), default)


def retrieve_keys(level: Level, answer: Mapping[int, str]) -> dict[int, str]:
    """The identifier keys of the C-MOVE / C-GET that retrieves one answer."""
    keys = {tag: answer[tag] for tag in _RETRIEVE_KEYS[level] if tag in answer}
    keys[QUERY_RETRIEVE_LEVEL] = WIRE_LEVELS[level]
    return keys


def job_query_item(answer: Mapping[int, str]) -> dict[int, str]:
    """What a retrieve job lists of one answer in its ``Query`` (its identifying keys)."""
    kept = (QUERY_RETRIEVE_LEVEL, PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID, ACCESSION_NUMBER)
    return {tag: answer[tag] for tag in kept if tag in answer}


def render(tags: Mapping[int, str], style: str) -> dict[str, Any]:
    """A tag map in Orthanc's full (default), short or simplified JSON."""
    return render_tags(dict(tags), tuple(sorted(tags)), style)


def child_level_allowed(parent: Level, child: Level) -> bool:
    return child > parent


@dataclass
class Query:
    """One C-FIND issued over REST and its answers (tag -> text, as Orthanc keeps
    them: sequences and binary values are not part of a query answer)."""

    modality: str
    level: Level
    query: dict[int, str]
    normalize: bool = True
    local_aet: str = ""
    timeout: int | None = None
    answers: list[dict[int, str]] = field(default_factory=list)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def answer(self, index: str | int) -> dict[int, str]:
        """An answer by its index in the URL (Orthanc: 400 for a bad or past index)."""
        number = answer_index(index)
        if number >= len(self.answers):
            raise ParameterOutOfRange(f"No answer {number} in query {self.id}")
        return self.answers[number]

    def to_json(self) -> dict[str, Any]:
        return {
            "Modality": self.modality,
            "Level": int(self.level),
            "Query": {format_tag(t): v for t, v in self.query.items()},
            "Normalize": self.normalize,
            "LocalAet": self.local_aet,
            "Timeout": self.timeout,
            "Answers": [{format_tag(t): v for t, v in a.items()} for a in self.answers],
        }

    @classmethod
    def from_json(cls, query_id: str, value: Mapping[str, Any]) -> Query:
        def tags(d: Mapping[str, str]) -> dict[int, str]:
            return {parse_tag(k): v for k, v in d.items()}

        return cls(
            modality=value["Modality"],
            level=Level(value["Level"]),
            query=tags(value["Query"]),
            normalize=bool(value["Normalize"]),
            local_aet=value["LocalAet"],
            timeout=value["Timeout"],
            answers=[tags(a) for a in value["Answers"]],
            id=query_id,
        )


def answer_index(text: str | int) -> int:
    if isinstance(text, int):
        return text
    if not text.isdigit():
        raise BadParameterType("Syntax error in some user-supplied data")
    return int(text)


class QueryRegistry:
    """The remembered queries, shared by every worker through the index."""

    def __init__(self, archive: Archive, config: Mapping[str, Any]) -> None:
        self.archive = archive
        size = config.get("QueryRetrieveSize", 100)
        self.size = 100 if size is None else max(1, int(size))

    @staticmethod
    def _ids(session: Any) -> list[str]:
        raw = session.get_property(_LIST_PROPERTY)
        return json.loads(raw) if raw else []

    def add(self, query: Query) -> str:
        def run(tx: Transaction) -> None:
            ids = self._ids(tx.session)
            ids.append(query.id)
            while len(ids) > self.size:
                tx.session.delete_property(_ITEM_PROPERTY + ids.pop(0))
            tx.session.set_property(_ITEM_PROPERTY + query.id, json.dumps(query.to_json()))
            tx.session.set_property(_LIST_PROPERTY, json.dumps(ids))

        self.archive.write(run)
        return query.id

    def list(self) -> list[str]:
        with self.archive.read() as session:
            return self._ids(session)

    def get(self, query_id: str) -> Query:
        with self.archive.read() as session:
            raw = session.get_property(_ITEM_PROPERTY + query_id)
        if not raw:
            raise UnknownResource(f"Unknown query: {query_id}")
        return Query.from_json(query_id, json.loads(raw))

    def delete(self, query_id: str) -> None:
        """Forget a query; an unknown one is no error (as Orthanc)."""

        def run(tx: Transaction) -> None:
            ids = self._ids(tx.session)
            if query_id in ids:
                ids.remove(query_id)
                tx.session.set_property(_LIST_PROPERTY, json.dumps(ids))
            tx.session.delete_property(_ITEM_PROPERTY + query_id)

        self.archive.write(run)


__all__ = [
    "Query",
    "QueryRegistry",
    "TagStyle",
    "WIRE_LEVELS",
    "allowed_keys",
    "answer_level",
    "find_keys",
    "job_query_item",
    "parse_level",
    "parse_query_keys",
    "render",
    "retrieve_keys",
]
