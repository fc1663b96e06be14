"""Outgoing query/retrieve (SCU): C-FIND, C-MOVE and C-GET to a remote modality.

Failures are raised as Orthanc raises them, so the REST face answers the same
status: a refused association or a lost peer is "Error in the network protocol"
(500); a final status 0xC000 ("unable to process") is the same error with HTTP 422;
a peer that does not accept the information model is Orthanc's
"DicomFindUnavailable" / "DicomMoveUnavailable" (500).

A C-GET brings the instances back on the same association: they are stored here
through ``core.ingest``, as an incoming C-STORE would be.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pynetdicom import StoragePresentationContexts, build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from ..core import ingest
from ..core.archive import Archive
from ..core.errors import (
    BadFileFormat,
    DicomFindUnavailable,
    DicomhubError,
    DicomMoveUnavailable,
    NetworkProtocol,
)
from ..core.modalities import RemoteModality
from ..core.queries import (
    QUERY_RETRIEVE_LEVEL,
    SOP_UID,
    SPECIFIC_CHARACTER_SET,
    WIRE_LEVELS,
    find_keys,
)
from ..dicom.levels import Level
from ..dicom.tag_names import parse_tag
from ..dicom.values import dataset_charsets, element_string
from .scu import AnswerWatch, _ae, _associate, open_association

log = logging.getLogger("dicomhub.scu")

_PENDING = (0xFF00, 0xFF01)
_UNABLE_TO_PROCESS = 0xC000
#: (0002,0003): Orthanc lists it in every C-FIND answer that has a SOPInstanceUID.
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
_STORED = (0x0000, 0xB000, 0xB006, 0xB007)


class UnprocessableNetworkProtocol(NetworkProtocol):
    """The peer answered "unable to process": Orthanc's network error with HTTP 422."""

    http_status = 422


def _find_unavailable(modality: RemoteModality) -> DicomhubError:
    return DicomFindUnavailable(f"Remote AET is {modality.aet}")


def _move_unavailable(modality: RemoteModality) -> DicomhubError:
    return DicomMoveUnavailable(f"Remote AET is {modality.aet}")


def _vr(tag: int) -> str:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "LO"


def _element(tag: int, text: str) -> DataElement | RawDataElement:
    vr = _vr(tag)
    if vr in ("US", "SS", "UL", "SL", "FL", "FD"):
        cast = float if vr in ("FL", "FD") else int
        try:
            numbers = [cast(v) for v in text.split("\\") if v.strip()]
        except ValueError:
            numbers = []
        value: Any = numbers[0] if len(numbers) == 1 else (numbers or None)
        return DataElement(tag, vr, value)
    if vr == "SQ":
        return DataElement(tag, vr, [])
    parts = text.split("\\")
    if vr in ("IS", "DS") and not all(_is_number(vr, part) for part in parts):
        return _raw_text(tag, vr, text)
    return DataElement(tag, vr, (parts[0] if len(parts) == 1 else parts) if text else None)


def _is_number(vr: str, text: str) -> bool:
    """Whether pydicom can hold ``text`` as an IS / DS value (empty included)."""
    text = text.strip()
    if not text:
        return True
    try:
        number = float(text)
    except ValueError:
        return False
    return math.isfinite(number) and (vr == "DS" or number.is_integer())


def _raw_text(tag: int, vr: str, text: str) -> RawDataElement:
    """A number key sent as written (``*``, ``1-3``): pydicom cannot hold it as a
    number, but the peer decides what it means (Orthanc sends it as given, and
    answers a wildcard on a number with 0xC000, which the caller then gets as 422)."""
    data = text.encode("ascii", "replace")
    if len(data) % 2:
        data += b" "
    return RawDataElement(Tag(tag), vr, len(data), data, 0, False, True)


def identifier(keys: Mapping[int, str], charset: str | None) -> Dataset:
    """A query identifier from tag -> text (``charset``: the DICOM term sent as
    SpecificCharacterSet, as Orthanc sends its default encoding)."""
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    for tag in sorted(keys):
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        ds[tag] = _element(tag, keys[tag])
    return ds


def identifier_from_json(value: Mapping[str, Any], charset: str | None) -> Dataset:
    """A query identifier from Orthanc's JSON form, where a sequence is a list of
    objects (worklist queries need ScheduledProcedureStepSequence)."""
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    for name, item in value.items():
        try:
            tag = parse_tag(name)
        except ValueError as exc:
            raise BadFileFormat(f"Unknown DICOM tag: {name}") from exc
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        if isinstance(item, str):
            ds[tag] = _element(tag, item)
        elif isinstance(item, list) and all(isinstance(i, dict) for i in item):
            items = [identifier_from_json(i, None) for i in item]
            ds.add(DataElement(tag, "SQ", Sequence(items)))
        else:
            raise BadFileFormat(f"Bad value for the DICOM tag: {name}")
    return ds


def summary(ds: Dataset, default_encoding: str = "Latin1") -> dict[int, str]:
    """An answer as Orthanc keeps it: every non-sequence element as text."""
    charsets = dataset_charsets(ds, default_encoding)
    found: dict[int, str] = {}
    for elem in ds:
        if elem.VR == "SQ" or elem.tag.element == 0:
            continue
        if elem.VR == "PN" and elem.value is not None:
            values = elem.value if isinstance(elem.value, MultiValue) else [elem.value]
            text: str | None = "\\".join(str(v) for v in values).rstrip(" \x00")
        else:
            text = element_string(elem, charsets)
        found[int(elem.tag)] = "" if text is None else text
    return found


def _status_error(operation: str, modality: RemoteModality, code: int) -> NetworkProtocol:
    prefix = f'{operation} SCU to AET "{modality.aet}" has failed with DIMSE status 0x{code:04X}'
    if code == _UNABLE_TO_PROCESS:
        reason = "invalid query" if operation == "C-FIND" else "resource not found"
        return UnprocessableNetworkProtocol(f"{prefix} (unable to process - {reason} ?)")
    return NetworkProtocol(prefix)


# ---- C-FIND -------------------------------------------------------------------
#: Rewrites an outgoing C-FIND identifier for the AET it goes to.
Outgoing = Callable[[Dataset, str], Dataset]


def find(
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    query: Dataset,
    model: Any,
    outgoing: Outgoing | None = None,
) -> list[Dataset]:
    """One C-FIND; the answer identifiers in the order the peer sent them.

    ``outgoing`` rewrites the identifier just before it leaves (Orthanc's
    ``OutgoingFindRequestFilter``; see ``net/find_filters.py``).
    """
    if outgoing is not None:
        query = outgoing(query, modality.aet)
    ae = _ae(local_aet, timeout)
    ae.add_requested_context(model)
    answers: list[Dataset] = []
    with _associate(ae, modality, unsupported=_find_unavailable) as assoc:
        if not any(c.abstract_syntax == model for c in assoc.accepted_contexts):
            raise _find_unavailable(modality)
        final: int | None = None
        watch = AnswerWatch(assoc)
        for status, found in assoc.send_c_find(query, model):
            if not status:
                raise watch.lost("C-FIND", modality)
            watch.answered()
            code = int(status.Status)
            if code in _PENDING:
                if found is not None:
                    answers.append(found)
                continue
            final = code
        if final is None:
            raise watch.lost("C-FIND", modality)
        if final != 0x0000:
            if final == 0xFE00:  # "matching terminated due to cancel": a cropped answer
                log.warning("C-FIND to %s: the answers were cropped", modality.aet)
            else:
                raise _status_error("C-FIND", modality, final)
    return answers


def find_level(
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    level: Level,
    keys: Mapping[int, str],
    charset: str,
    default_encoding: str,
    outgoing: Outgoing | None = None,
) -> list[dict[int, str]]:
    """A query/retrieve C-FIND at ``level`` (Patient Root for patients, Study Root
    otherwise, as Orthanc); the answers as tag -> text, each with its level.

    ``keys`` are the caller's keys plus the level's return keys (``find_keys``).
    As in Orthanc, ``outgoing`` (the ``OutgoingFindRequestFilter``) sees the caller's
    keys only; the QueryRetrieveLevel, the character set and the return keys are
    added to what it answers, where it lacks them (so a filter answering a new table
    still sends a valid query)."""
    if outgoing is None:
        query = identifier(keys, charset)
        query.QueryRetrieveLevel = WIRE_LEVELS[level]
    else:
        query = _filtered(outgoing, modality.aet, level, keys, charset)
    model = (
        PatientRootQueryRetrieveInformationModelFind
        if level == Level.PATIENT
        else StudyRootQueryRetrieveInformationModelFind
    )
    answers = []
    for ds in find(modality, local_aet, timeout, query, model):
        answer = summary(ds, default_encoding)
        answer.setdefault(QUERY_RETRIEVE_LEVEL, WIRE_LEVELS[level])
        if answer.get(SOP_UID):
            # Orthanc's answers go through a DICOM file whose meta header takes the
            # SOP instance UID, whatever the peer sent (checked against 1.10.1)
            answer[MEDIA_STORAGE_SOP_INSTANCE_UID] = answer[SOP_UID]
        answers.append(answer)
    return answers


def _filtered(
    outgoing: Outgoing, aet: str, level: Level, keys: Mapping[int, str], charset: str
) -> Dataset:
    """The identifier ``find_level`` sends once ``outgoing`` rewrote the caller's keys.

    The return keys that ``find_keys`` added empty are held back from the filter;
    a caller's key that was itself given empty is held back with them, which only
    changes what a script iterating over the query sees. So are the (empty) file
    meta keys a route asks for, which a filter's table cannot hold."""
    added = {tag for tag in find_keys(level, {}, False) if keys.get(tag) == ""}
    added |= {tag for tag, value in keys.items() if tag >> 16 == 0x0002 and value == ""}
    given = {tag: value for tag, value in keys.items() if tag not in added}
    query = outgoing(identifier(given, None), aet)
    if SPECIFIC_CHARACTER_SET not in query and charset:
        query.SpecificCharacterSet = charset
    if QUERY_RETRIEVE_LEVEL not in query:
        query.QueryRetrieveLevel = WIRE_LEVELS[level]
    for tag in sorted(added):
        if tag not in query:
            query[tag] = _element(tag, "")
    return query


def find_worklist(
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    query: Dataset,
    outgoing: Outgoing | None = None,
) -> list[Dataset]:
    return find(modality, local_aet, timeout, query, ModalityWorklistInformationFind, outgoing)


# ---- C-MOVE and C-GET ---------------------------------------------------------
@dataclass
class RetrieveCounts:
    """Sub-operations of one retrieve, as the last response reported them."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0

    def update(self, status: Dataset) -> None:
        self.completed = int(status.get("NumberOfCompletedSuboperations", self.completed) or 0)
        self.failed = int(status.get("NumberOfFailedSuboperations", self.failed) or 0)
        self.warning = int(status.get("NumberOfWarningSuboperations", self.warning) or 0)
        self.remaining = int(status.get("NumberOfRemainingSuboperations", 0) or 0)


def _models(kind: str) -> tuple[Any, Any]:
    if kind == "move":
        return (
            PatientRootQueryRetrieveInformationModelMove,
            StudyRootQueryRetrieveInformationModelMove,
        )
    return PatientRootQueryRetrieveInformationModelGet, StudyRootQueryRetrieveInformationModelGet


def _level_of(keys: Mapping[int, str]) -> Level:
    text = keys.get(QUERY_RETRIEVE_LEVEL, "").strip().upper()
    for level, wire in WIRE_LEVELS.items():
        if wire == text:
            return level
    return Level.STUDY


def _final(
    operation: str, modality: RemoteModality, assoc: Association, responses: Iterable[Any]
) -> RetrieveCounts:
    counts = RetrieveCounts()
    final: int | None = None
    watch = AnswerWatch(assoc)
    for status, _ in responses:
        if not status:
            raise watch.lost(operation, modality)
        watch.answered()
        counts.update(status)
        code = int(status.Status)
        if code != 0xFF00:
            final = code
    if final is None:
        raise watch.lost(operation, modality)
    if final != 0x0000:
        raise _status_error(operation, modality, final)
    return counts


def move(
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    target_aet: str,
    identifiers: list[dict[int, str]],
    message_id: int | None = None,
    on_done: Callable[[int, RetrieveCounts], None] | None = None,
) -> RetrieveCounts:
    """One C-MOVE per identifier, all in one association; the counts summed."""
    patient_root, study_root = _models("move")
    ae = _ae(local_aet, timeout)
    ae.add_requested_context(patient_root)
    ae.add_requested_context(study_root)
    total = RetrieveCounts()
    with _associate(ae, modality, unsupported=_move_unavailable) as assoc:
        accepted = {c.abstract_syntax for c in assoc.accepted_contexts}
        if not accepted:
            raise _move_unavailable(modality)
        for number, keys in enumerate(identifiers):
            model = patient_root if _level_of(keys) == Level.PATIENT else study_root
            if model not in accepted:
                model = next(iter(accepted))
            query = identifier(keys, None)
            responses = assoc.send_c_move(query, target_aet, model, msg_id=message_id or 1)
            counts = _final("C-MOVE", modality, assoc, responses)
            total.completed += counts.completed
            total.failed += counts.failed
            total.warning += counts.warning
            if on_done is not None:
                on_done(number, total)
    return total


def get(
    archive: Archive,
    modality: RemoteModality,
    local_aet: str,
    timeout: float | None,
    identifiers: list[dict[int, str]],
    on_done: Callable[[int, RetrieveCounts], None] | None = None,
) -> RetrieveCounts:
    """One C-GET per identifier, all in one association; each instance the peer
    sends back is stored here. The storage classes proposed are pynetdicom's 120
    usual ones (Orthanc also proposes "the most common" ones)."""
    patient_root, study_root = _models("get")
    ae = _ae(local_aet, timeout)
    ae.add_requested_context(patient_root)
    ae.add_requested_context(study_root)
    roles = []
    for context in StoragePresentationContexts[: 128 - 2]:
        ae.add_requested_context(context.abstract_syntax)
        roles.append(build_role(context.abstract_syntax, scp_role=True))

    def on_store(event: evt.Event) -> int:
        assoc = event.assoc
        origin = ingest.Origin(
            origin="DicomProtocol",
            remote_ip=assoc.acceptor.address,
            remote_aet=modality.aet,
            called_aet=local_aet,
        )
        try:
            data = event.encoded_dataset(include_meta=True)
            ingest.store_parsed(archive, ingest.parse(archive, data), data, origin)
        except DicomhubError as exc:
            log.warning("C-GET from %s: instance refused: %s", modality.aet, exc)
            return 0xC000
        return 0x0000

    total = RetrieveCounts()
    assoc = open_association(ae, modality, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        accepted = {c.abstract_syntax for c in assoc.accepted_contexts}
        if patient_root not in accepted and study_root not in accepted:
            raise NetworkProtocol(f'C-GET: AET "{modality.aet}" refused the C-GET models')
        for number, keys in enumerate(identifiers):
            model = patient_root if _level_of(keys) == Level.PATIENT else study_root
            if model not in accepted:
                model = study_root if study_root in accepted else patient_root
            responses = assoc.send_c_get(identifier(keys, None), model)
            counts = _final("C-GET", modality, assoc, responses)
            total.completed += counts.completed
            total.failed += counts.failed
            total.warning += counts.warning
            if on_done is not None:
                on_done(number, total)
    finally:
        if assoc.is_established:
            assoc.release()
    return total


__all__ = [
    "DicomFindUnavailable",
    "DicomMoveUnavailable",
    "RetrieveCounts",
    "UnprocessableNetworkProtocol",
    "find",
    "find_level",
    "find_worklist",
    "get",
    "identifier",
    "identifier_from_json",
    "move",
    "summary",
]
