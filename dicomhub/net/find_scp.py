"""C-FIND SCP (Patient Root and Study Root): DICOM query keys in, index answers out.

The face only translates: the query keys become a ``core.find.FindQuery`` and each
match is rendered back as an identifier holding the requested return keys, so that
C-FIND, ``/tools/find`` and the explorer share one matching engine.

Matching follows Orthanc's C-FIND rules (checked on Orthanc 1.10.1): values are
case-sensitive except person names (``CaseSensitivePN``, false by default);
identifiers (PatientID, UIDs, AccessionNumber) match case-insensitively as the
design asks (1.10.1 itself compares them case-sensitively on the wire). When more
resources match than ``LimitFindResults`` (patient, study, series) or
``LimitFindInstances`` (instance) allow, the first ones are sent as pending answers
and the final status is "matching terminated due to cancel" (0xFE00), which is what
Orthanc answers for a cropped result.

Answers carry SpecificCharacterSet = ``DefaultEncoding`` whatever the peer asked, and
RetrieveAETitle = our AET, as Orthanc adds it to every answer (1.10.1 only leaves it
empty when the peer sends the key empty, which helps no peer: we fill it). A bad or
missing QueryRetrieveLevel and wildcards on UIDs or dates fail with 0xC000, a key
of a lower level (Modality at the study level included) matches nothing, as there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from ..core.archive import Archive
from ..core.describe import TagStyle
from ..core.errors import DicomhubError
from ..core.find import FindQuery, search
from ..core.reading import requested_tags
from ..dicom.levels import Level
from ..dicom.values import ENCODING_TERMS, dataset_charsets, element_string

log = logging.getLogger("dicomhub.find")

STATUS_PENDING = 0xFF00
STATUS_SUCCESS = 0x0000
STATUS_CANCEL = 0xFE00
#: "Unable to process" (PS3.4 C.4.1.1.4).
STATUS_UNABLE_TO_PROCESS = 0xC000
#: A bad or missing QueryRetrieveLevel: Orthanc answers "unable to process" too.
STATUS_BAD_IDENTIFIER = 0xC000

SPECIFIC_CHARACTER_SET = 0x00080005
QUERY_RETRIEVE_LEVEL = 0x00080052
RETRIEVE_AE_TITLE = 0x00080054
MODALITIES_IN_STUDY = 0x00080061

_LEVELS = {
    "PATIENT": Level.PATIENT,
    "STUDY": Level.STUDY,
    "SERIES": Level.SERIES,
    "IMAGE": Level.INSTANCE,
    "INSTANCE": Level.INSTANCE,
}
_LEVEL_NAMES = {
    Level.PATIENT: "PATIENT",
    Level.STUDY: "STUDY",
    Level.SERIES: "SERIES",
    Level.INSTANCE: "IMAGE",
}

#: Tags the index computes rather than stores: return keys, never matching keys
#: (except ModalitiesInStudy, which core.find matches against the series).
COMPUTED_TAGS = frozenset(
    {0x00201200, 0x00201202, 0x00201204, 0x00201206, 0x00201208, 0x00201209, 0x00080062}
)
_NOT_MATCHING = COMPUTED_TAGS | {SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL, RETRIEVE_AE_TITLE}
_INTEGER_VRS = frozenset({"US", "SS", "UL", "SL"})
_FLOAT_VRS = frozenset({"FL", "FD"})


class FindRefused(Exception):
    """The identifier cannot be answered; carries the DIMSE failure status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _vr(tag: int, fallback: str = "UN") -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return fallback


def query_level(identifier: Dataset) -> Level:
    elem = identifier.get_item(QUERY_RETRIEVE_LEVEL)
    text = element_string(elem, ["ISO_IR 6"]) if elem is not None else None
    level = _LEVELS.get((text or "").strip().upper())
    if level is None:
        raise FindRefused(STATUS_BAD_IDENTIFIER, f"Bad QueryRetrieveLevel: {text!r}")
    return level


def to_find_query(identifier: Dataset, config: Mapping[str, Any]) -> FindQuery:
    """The ``FindQuery`` for a C-FIND identifier, with Orthanc's C-FIND case rules."""
    level = query_level(identifier)
    charsets = dataset_charsets(identifier, str(config.get("DefaultEncoding") or "Latin1"))
    query: dict[int, str] = {}
    for key in identifier.keys():  # noqa: SIM118 - iterating a Dataset gives elements
        elem = identifier.get_item(key)
        tag = int(key)
        if tag in _NOT_MATCHING or key.is_private or key.element == 0:
            continue
        if elem.VR == "SQ":
            continue  # sequence matching is not supported by Orthanc either
        value = _key_text(elem, charsets)
        if not value:
            continue
        query[tag] = value
    return FindQuery(
        level=level,
        query=query,
        case_sensitive=True,
        case_sensitive_pn=bool(config.get("CaseSensitivePN", False)),
        identifiers_case_insensitive=True,
    )


def _key_text(elem: Any, charsets: list[str]) -> str | None:
    """A query key's text; person names are joined by hand, as ``element_string``
    splits a ``PersonName`` into its characters."""
    value = elem.value
    if isinstance(value, PersonName):
        return str(value).rstrip(" \x00")
    if isinstance(value, MultiValue) and value and isinstance(value[0], PersonName):
        return "\\".join(str(v) for v in value).rstrip(" \x00")
    return element_string(elem, charsets)


def _answer_value(vr: str, text: str) -> Any:
    """A value as pydicom wants it for ``vr`` (multi-valued text split on ``\\``)."""
    if vr in _INTEGER_VRS | _FLOAT_VRS:
        numbers = [v for v in text.split("\\") if v.strip()]
        try:
            cast = int if vr in _INTEGER_VRS else float
            values = [cast(v) for v in numbers]
        except ValueError:
            return None
        return values[0] if len(values) == 1 else (values or None)
    parts = text.split("\\")
    return parts[0] if len(parts) == 1 else parts


class FindService:
    """Answers C-FIND requests against one archive."""

    def __init__(self, archive: Archive, config: Mapping[str, Any], aet: str) -> None:
        self.archive = archive
        self.config = config
        self.aet = aet
        self.limit_results = int(config.get("LimitFindResults") or 0)
        self.limit_instances = int(config.get("LimitFindInstances") or 0)
        encoding = str(config.get("DefaultEncoding") or "Latin1")
        self.default_charset = ENCODING_TERMS.get(encoding, "ISO_IR 100")

    def _limit(self, level: Level) -> int:
        return self.limit_instances if level == Level.INSTANCE else self.limit_results

    def answers(self, identifier: Dataset) -> tuple[list[Dataset], bool]:
        """The answer identifiers, and whether they are all the matches (not cropped)."""
        query = to_find_query(identifier, self.config)
        limit = self._limit(query.level)
        query.limit = limit + 1 if limit else 0
        keys = [
            int(e.tag)
            for e in identifier
            if int(e.tag) not in (SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL, RETRIEVE_AE_TITLE)
            and e.tag.element != 0
        ]
        charset = self.default_charset
        with self.archive.read() as session:
            rows = search(self.archive, session, query)
            complete = not limit or len(rows) <= limit
            if not complete:
                rows = rows[:limit]
            answers = []
            for row in rows:
                values = requested_tags(self.archive, session, row, keys, TagStyle.SHORT)
                answers.append(self._answer(identifier, query.level, charset, keys, values))
        return answers, complete

    def _answer(
        self,
        identifier: Dataset,
        level: Level,
        charset: str,
        keys: list[int],
        values: dict[str, str],
    ) -> Dataset:
        ds = Dataset()
        ds.SpecificCharacterSet = charset
        ds.QueryRetrieveLevel = _LEVEL_NAMES[level]
        ds.RetrieveAETitle = self.aet
        for tag in keys:
            request = identifier[tag]
            vr = request.VR if request.VR not in ("UN", None) else _vr(tag)
            if vr == "SQ":
                ds.add(DataElement(tag, "SQ", Sequence([])))
                continue
            text = values.get(f"{tag >> 16:04x},{tag & 0xFFFF:04x}")
            value = _answer_value(vr, text) if text else None
            ds.add(DataElement(tag, vr, value))
        return ds

    def handle(
        self, identifier: Dataset, is_cancelled: Callable[[], bool] | None = None
    ) -> Iterator[tuple[int, Any]]:
        """pynetdicom's C-FIND handler protocol: (pending, answer)..., then final."""
        try:
            answers, complete = self.answers(identifier)
        except FindRefused as exc:
            log.warning("C-FIND refused: %s", exc)
            yield exc.status, None
            return
        except DicomhubError as exc:
            log.warning("C-FIND failed: %s", exc)
            yield STATUS_UNABLE_TO_PROCESS, None
            return
        yield from stream_answers(answers, complete, is_cancelled, "results")


def stream_answers(
    answers: list[Dataset],
    complete: bool,
    is_cancelled: Callable[[], bool] | None,
    what: str,
) -> Iterator[tuple[int, Any]]:
    """The pending answers of a C-FIND, stopping on a cancel; a cropped list ends
    with "cancel" (0xFE00), as Orthanc signals the answer limits."""
    for answer in answers:
        if is_cancelled is not None and is_cancelled():
            yield STATUS_CANCEL, None
            return
        yield STATUS_PENDING, answer
    if not complete:
        log.warning("Too many %s for an incoming C-FIND query; the answers were cropped", what)
        yield STATUS_CANCEL, None


__all__ = ["FindRefused", "FindService", "query_level", "to_find_query"]
