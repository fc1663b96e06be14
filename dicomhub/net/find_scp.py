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
A computed key given a value (``NumberOfStudyRelatedInstances=3``) is no count
filter there: it is matched against the files like any tag the index does not keep,
so it mostly matches nothing (0x0000 without answers), and a wildcard in it (an IS
or UI key) fails with 0xC000; only ModalitiesInStudy matches the study's series.

As in Orthanc 1.10.1, a file of the resource is read only when a requested key is
no main DICOM tag of any level (nor a computed key): a lower level's main tag asked
at a higher level (Modality at the study level) is then answered empty, else it is
read from the file like the other keys the index does not keep. A sequence key is
answered with the whole sequence of that file, and left out of the answer when the
file has none. Characters the answer's character set cannot hold are left out.

Many answers are cheap: their values come from one batched read of the index
(``core.requested_batch``), each answer is encoded straight to bytes
(``encoded_elements.IdentifierWriter``) and, when the listener hands over the
pynetdicom event, written to the association as a whole pending response
(``find_responses``) instead of going through pynetdicom's DIMSE layer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName
from pynetdicom import _config as _pynetdicom_config

from ..core.archive import Archive
from ..core.errors import DicomhubError
from ..core.find import FindQuery, search
from ..core.requested_batch import requested_tags_many
from ..dicom.encodable import drop_unencodable
from ..dicom.encoded_elements import (
    IdentifierWriter,
    encoded_value,
    mark_encoding,
    raw_element,
)
from ..dicom.levels import Level
from ..dicom.main_tags import indexed_tags
from ..dicom.values import ENCODING_TERMS, dataset_charsets, element_string
from .find_responses import PendingWriter

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

#: Tags the index computes rather than stores (ModalitiesInStudy apart): answered
#: from the index, never read from a file. As constraints they are no special case:
#: like any tag the index does not keep, they are matched against the files (which
#: seldom hold them, so a value other than the universal one mostly matches nothing,
#: and a wildcard is refused as on any number or UID), as Orthanc 1.10.1 does;
#: ModalitiesInStudy is matched by core.find against the series of the study.
COMPUTED_TAGS = frozenset(
    {0x00201200, 0x00201202, 0x00201204, 0x00201206, 0x00201208, 0x00201209, 0x00080062}
)
_ALWAYS_SET = frozenset({SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL, RETRIEVE_AE_TITLE})
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
    # padding ends a value, but a leading space makes another word (Orthanc refuses it)
    level = _LEVELS.get((text or "").rstrip("\0 ").upper())
    if level is None:
        raise FindRefused(STATUS_BAD_IDENTIFIER, f"Bad QueryRetrieveLevel: {text!r}")
    return level


def to_find_query(identifier: Dataset, config: Mapping[str, Any]) -> FindQuery:
    """The ``FindQuery`` for a C-FIND identifier, with Orthanc's C-FIND case rules."""
    level = query_level(identifier)
    charsets = dataset_charsets(identifier, str(config.get("DefaultEncoding") or "Latin1"))
    query: dict[int, str] = {}
    for key in identifier.keys():  # noqa: SIM118 - iterating a Dataset gives elements
        # keep_deferred: an empty key is a raw element without value, which pydicom
        # would otherwise take for a deferred read and convert (checks and all)
        elem = identifier.get_item(key, keep_deferred=True)
        tag = int(key)
        if tag in _ALWAYS_SET or key.is_private or key.element == 0 or _empty(elem.value):
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


def _empty(value: Any) -> bool:
    """A return key rather than a matching key (no value at all)."""
    return value is None or (isinstance(value, bytes | str) and not value)


def _key_text(elem: Any, charsets: list[str]) -> str | None:
    """A query key's text; person names are joined by hand, as ``element_string``
    splits a ``PersonName`` into its characters."""
    value = elem.value
    if isinstance(value, PersonName):
        return str(value).rstrip(" \x00")
    if isinstance(value, MultiValue) and value and isinstance(value[0], PersonName):
        return "\\".join(str(v) for v in value).rstrip(" \x00")
    return element_string(elem, charsets)


def _return_keys(identifier: Dataset) -> list[tuple[int, str]]:
    """The keys an answer carries (all but the three it always sets), with their VR:
    the request's, or the dictionary's when the request's syntax had none. Read from
    the raw elements: converting them would check every value for nothing."""
    keys = []
    for key in identifier.keys():  # noqa: SIM118 - a Dataset iterates its elements
        tag = int(key)
        if tag in _ALWAYS_SET or key.element == 0:
            continue
        vr = identifier.get_item(key, keep_deferred=True).VR
        keys.append((tag, _vr(tag) if vr in ("UN", None) else str(vr)))
    return keys


def _needs_files(identifier: Dataset) -> bool:
    """Whether the answers read a file of each resource, as Orthanc 1.10.1 decides it:
    when a key of the request (a constraint or a return key) is neither a main tag of
    some level, nor one the index computes, nor the character set or the level."""
    main = indexed_tags()
    for key in identifier.keys():  # noqa: SIM118 - a Dataset iterates its elements
        tag = int(key)
        if key.element == 0 or tag in (SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL):
            continue
        if tag not in main and tag not in COMPUTED_TAGS and tag != MODALITIES_IN_STUDY:
            return True
    return False


def _wire_encoding(identifier: Dataset) -> tuple[bool, bool]:
    """(implicit VR, little endian) of the request, which the answers go back in
    (explicit little endian when unknown, e.g. after a filter rebuilt the query)."""
    implicit, little = identifier.original_encoding
    return (bool(implicit), True if little is None else bool(little))


def quiet_identifier_logs() -> None:
    """Let pynetdicom print each C-FIND request and answer only when its logger would
    show them: by default it pretty-prints them all (decoding the request a second
    time) and the logger drops the lines, about a tenth of the CPU of a C-FIND. The
    switches follow the logger's level, so ``--verbose-dicom`` still shows them."""
    _pynetdicom_config.LOG_REQUEST_IDENTIFIERS = _LoggerEnabled(logging.INFO)
    _pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = _LoggerEnabled(logging.DEBUG)


class _LoggerEnabled:
    """True while pynetdicom's logger passes records of ``level``."""

    def __init__(self, level: int) -> None:
        self.level = level

    def __bool__(self) -> bool:
        return logging.getLogger("pynetdicom").isEnabledFor(self.level)


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


@dataclass
class _Answers:
    """The answers to one C-FIND: each one's values, and how to encode them."""

    level: Level
    returned: list[tuple[int, str]]
    values: list[dict[int, Any]]  # text, or a pydicom Sequence for a sequence key
    encoding: tuple[bool, bool]  # (implicit VR, little endian)
    complete: bool  # all the matches (not cropped by a limit)


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
        self.encodings = convert_encodings(self.default_charset)
        self._charset_element = DataElement(SPECIFIC_CHARACTER_SET, "CS", self.default_charset)
        quiet_identifier_logs()

    def _limit(self, level: Level) -> int:
        return self.limit_instances if level == Level.INSTANCE else self.limit_results

    def _search(self, identifier: Dataset) -> _Answers:
        """Match the identifier and read the values of every answer (one batch)."""
        query = to_find_query(identifier, self.config)
        limit = self._limit(query.level)
        query.limit = limit + 1 if limit else 0
        returned = _return_keys(identifier)
        with self.archive.read() as session:
            rows = search(self.archive, session, query)
            complete = not limit or len(rows) <= limit
            if not complete:
                rows = rows[:limit]
            keys = [tag for tag, vr in returned if vr != "SQ"]
            sequences = [tag for tag, vr in returned if vr == "SQ"]
            values = requested_tags_many(
                self.archive,
                session,
                rows,
                keys,
                sequences=sequences,
                from_files=_needs_files(identifier),
            )
        return _Answers(query.level, returned, values, _wire_encoding(identifier), complete)

    def _fixed_values(self, level: Level) -> dict[int, str]:
        """The keys every answer carries whatever the request asked."""
        return {
            SPECIFIC_CHARACTER_SET: self.default_charset,
            QUERY_RETRIEVE_LEVEL: _LEVEL_NAMES[level],
            RETRIEVE_AE_TITLE: self.aet,
        }

    def _writer(self, found: _Answers) -> IdentifierWriter:
        keys = [(SPECIFIC_CHARACTER_SET, "CS"), (QUERY_RETRIEVE_LEVEL, "CS")]
        keys += [(RETRIEVE_AE_TITLE, "AE")]
        # no sequence: an answer that has one goes pynetdicom's way (``handle``)
        keys += [(tag, vr) for tag, vr in found.returned if vr != "SQ"]
        return IdentifierWriter(keys, self.encodings, *found.encoding)

    def _answer(
        self,
        level: Level,
        returned: list[tuple[int, str]],
        values: dict[int, Any],
        encoding: tuple[bool, bool],
    ) -> Dataset:
        """One answer: its values encoded once, straight from the index strings (see
        ``dicom.encoded_elements``), in the syntax the request came in."""
        implicit, little = encoding
        ds = Dataset()
        ds[SPECIFIC_CHARACTER_SET] = self._charset_element  # shared: never changed
        answer = {
            QUERY_RETRIEVE_LEVEL: ("CS", _LEVEL_NAMES[level]),
            RETRIEVE_AE_TITLE: ("AE", self.aet),
        }
        sequences: list[tuple[int, Sequence]] = []
        for tag, vr in returned:
            if vr != "SQ":
                answer[tag] = (vr, values.get(tag) or "")
            elif isinstance(values.get(tag), Sequence):
                sequences.append((tag, values[tag]))
            # else: a sequence the file lacks is left out, as Orthanc leaves it out
        for tag, (vr, text) in answer.items():
            value = encoded_value(vr, text, self.encodings, little)
            if value is not None:
                ds[tag] = raw_element(tag, vr, value, implicit, little)
            else:
                ds.add(DataElement(tag, vr, _answer_value(vr, text) if text else None))
        for tag, sequence in sequences:
            ds.add(DataElement(tag, "SQ", sequence))
            for item in sequence:
                drop_unencodable(item, self.encodings)
        mark_encoding(ds, implicit, little, self.encodings)
        return ds

    def handle(
        self,
        identifier: Dataset,
        is_cancelled: Callable[[], bool] | None = None,
        event: Any = None,
    ) -> Iterator[tuple[int, Any]]:
        """pynetdicom's C-FIND handler protocol: (pending, answer)..., then final.

        With ``event`` (the ``EVT_C_FIND`` being answered), the pending answers are
        written to its association directly where it allows (``find_responses``);
        the others, and the final status, are yielded to pynetdicom."""
        try:
            found = self._search(identifier)
        except FindRefused as exc:
            log.warning("C-FIND refused: %s", exc)
            yield exc.status, None
            return
        except DicomhubError as exc:
            log.warning("C-FIND failed: %s", exc)
            yield STATUS_UNABLE_TO_PROCESS, None
            return
        writer = PendingWriter.for_event(event) if event is not None and found.values else None
        if writer is None:
            datasets = (
                self._answer(found.level, found.returned, values, found.encoding)
                for values in found.values
            )
            yield from stream_answers(datasets, found.complete, is_cancelled, "results")
            return
        encoder = self._writer(found)
        fixed = self._fixed_values(found.level)
        for values in found.values:
            if is_cancelled is not None and is_cancelled():
                yield STATUS_CANCEL, None
                return
            if writer.ended():
                return  # as pynetdicom: nothing more to send on this association
            has_sequence = any(isinstance(v, Sequence) for v in values.values())
            data = None if has_sequence else encoder.write({**values, **fixed})
            if data is None or not writer.send(data):
                yield (
                    STATUS_PENDING,
                    self._answer(found.level, found.returned, values, found.encoding),
                )
        if not found.complete:
            _log_cropped("results")
            yield STATUS_CANCEL, None


def stream_answers(
    answers: Iterable[Dataset],
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
        _log_cropped(what)
        yield STATUS_CANCEL, None


def _log_cropped(what: str) -> None:
    log.warning("Too many %s for an incoming C-FIND query; the answers were cropped", what)


__all__ = ["FindRefused", "FindService", "query_level", "to_find_query"]
