"""C-MOVE and C-GET SCP: the instances an identifier names, sent to the destination.

pynetdicom's C-MOVE service opens the association with the destination and sends the
final response; the C-STORE sub-operations and their Pending responses run in
``move_sub_operations`` (on the bytes, one file read ahead). A C-GET's sub-operations
and responses are pynetdicom's. This module decides what to send and where, and
rewrites the responses pynetdicom builds into Orthanc 1.10.1's (``OrthancMoveAnswers``,
``OrthancGetAnswers``: a C-MOVE stops at the first refused sub-operation and counts
warnings as completed; a refused request gets one final 0xC000 with zero counts and
no identifier).

The resources are found as Orthanc finds them for a retrieve: by the unique key of
the QueryRetrieveLevel (PatientID, StudyInstanceUID, SeriesInstanceUID or
SOPInstanceUID, a ``\\`` list allowed), compared as identifiers (case aside); at the
study level a non-empty AccessionNumber is used instead of the StudyInstanceUID, as
Orthanc 1.10.1 does (it wins over a StudyInstanceUID given with it). A C-MOVE
without a QueryRetrieveLevel is given the level of the deepest unique key present
(an AccessionNumber counting for the study); a C-GET without one, or either with an
unknown level, fails with 0xC000. A C-GET fails as a whole (0xC000, nothing sent)
when a value of its list names nothing; a C-MOVE sends what the other values name.

A C-MOVE destination must be a configured modality (same AET, with
``StrictAetComparison``). An undeclared one gets 0xA801 "move destination unknown",
as the standard has it (Orthanc 1.10.1 answers 0xC000 there). A declared destination
that cannot be reached ends the move with 0xC000 and zero counts, as Orthanc answers.

A C-GET whose requester accepted no presentation context for an instance's SOP class
ends at that instance, as Orthanc's does: one final 0xC000 counting it as failed,
without a Pending response for it. Sub-operations the requester refuses are counted
as the standard has it (Pending responses, 0xB000 or 0xA702 at the end), as Orthanc
counts them too.

With ``SynchronousCMove`` false, Orthanc 1.10.1 sends through a store job and answers
every sub-operation as completed at once. pynetdicom performs each sub-operation it
reports, so here the requester gets a final Success with zero counts at once and a
worker thread sends: either way a slow destination does not hold the requester.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import build_context, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_GET, C_MOVE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from ..core import attachments_io
from ..core.archive import Archive
from ..core.enums import ContentType
from ..core.errors import DicomhubError, InexistentFile
from ..core.modalities import (
    InstanceToSend,
    ModalityRegistry,
    RemoteModality,
    instances_to_send,
    same_aet,
)
from ..core.reading import instance_file
from ..dicom import encoded
from ..dicom.levels import Level
from ..dicom.values import element_string
from ..store.index.records import AttachmentRow
from . import reactor
from .find_scp import FindRefused, query_level
from .move_sub_operations import MoveSubOperations, SubOperationCounts
from .scu import Outgoing, _contexts, no_delay, store

log = logging.getLogger("dicomhub.move")

#: Public IDs per index query when looking the files of a retrieve up.
_LOOKUP_CHUNK = 500

STATUS_SUCCESS = 0x0000
STATUS_WARNING = 0xB000
STATUS_PENDING = 0xFF00
STATUS_CANCEL = 0xFE00
STATUS_UNABLE_TO_PROCESS = 0xC000

#: The unique key that names the resources of each level in a retrieve.
_UNIQUE_KEYS = {
    Level.PATIENT: 0x00100020,
    Level.STUDY: 0x0020000D,
    Level.SERIES: 0x0020000E,
    Level.INSTANCE: 0x00080018,
}


#: AccessionNumber: Orthanc retrieves studies by it too.
ACCESSION_NUMBER = 0x00080050
QUERY_RETRIEVE_LEVEL = 0x00080052


def _retrieve_level(identifier: Dataset, guess: bool) -> Level:
    """The QueryRetrieveLevel; when the element is absent and ``guess`` (a C-MOVE),
    as Orthanc: the level of the deepest unique key present, a non-empty
    AccessionNumber counting for the study. An empty or unknown level is refused."""
    if not guess or QUERY_RETRIEVE_LEVEL in identifier:
        return query_level(identifier)
    for level in (Level.INSTANCE, Level.SERIES, Level.STUDY):
        if _UNIQUE_KEYS[level] in identifier:
            return level
    if _values(identifier, ACCESSION_NUMBER):
        return Level.STUDY
    if _UNIQUE_KEYS[Level.PATIENT] in identifier:
        return Level.PATIENT
    return query_level(identifier)  # refused: no level and nothing to guess it from


def _values(identifier: Dataset, tag: int) -> list[str]:
    """The values of a key (a ``\\`` list), each stripped, the empty ones left out."""
    elem = identifier.get_item(tag)
    text = element_string(elem, ["ISO_IR 192"]) if elem is not None else None
    return [v.strip() for v in (text or "").split("\\") if v.strip()]


def resources_to_send(
    archive: Archive, identifier: Dataset, get: bool = False
) -> list[InstanceToSend]:
    """The instances under the resources the identifier names, each once. For a
    C-GET (``get``), a value naming nothing fails the whole request, as in Orthanc."""
    level = _retrieve_level(identifier, guess=not get)
    tag = _UNIQUE_KEYS[level]
    values = _values(identifier, tag)
    if level == Level.STUDY:
        by_accession = _values(identifier, ACCESSION_NUMBER)
        if by_accession:  # Orthanc 1.10.1 looks it up first, whatever the UID says
            tag, values = ACCESSION_NUMBER, by_accession
    if not values:
        raise FindRefused(STATUS_UNABLE_TO_PROCESS, f"No {level.title} key to retrieve")
    public_ids: list[str] = []
    with archive.read() as session:
        for value in values:
            found = [r.public_id for r in session.lookup_identifier(tag, value) if r.level == level]
            if get and not found:
                raise FindRefused(STATUS_UNABLE_TO_PROCESS, f"Nothing with {tag:08x}={value}")
            public_ids.extend(found)
    if not public_ids:
        # Orthanc fails the whole retrieve rather than answer "nothing to send"
        text = "\\".join(values)
        raise FindRefused(STATUS_UNABLE_TO_PROCESS, f"No {level.title} with {tag:08x}={text}")
    return instances_to_send(archive, list(dict.fromkeys(public_ids)))


def _dicom_files(
    archive: Archive, instances: list[InstanceToSend]
) -> dict[str, AttachmentRow | None]:
    """The DICOM file of each instance, all looked up in one read session rather than
    one index query (and transaction) per sub-operation; an instance deleted meanwhile
    is missing, and its sub-operation fails when its turn comes."""
    found: dict[str, AttachmentRow | None] = {}
    public_ids = [i.public_id for i in instances]
    with archive.read() as session:
        for start in range(0, len(public_ids), _LOOKUP_CHUNK):
            rows = session.lookup_many(public_ids[start : start + _LOOKUP_CHUNK])
            for public_id, row in rows.items():
                found[public_id] = session.attachment(row.id, ContentType.Dicom)
    return found


def _dataset(archive: Archive, public_id: str, file: AttachmentRow | None) -> Dataset:
    """The stored instance, sent as its stored bytes when the peer accepted its syntax."""
    if file is None:
        raise InexistentFile(public_id)
    return encoded.split(attachments_io.read(archive.storage, file))


class OrthancMoveAnswers:
    """The C-MOVE responses of Orthanc 1.10.1, rewritten from pynetdicom's (which
    follow the standard's counting). Observed against Orthanc: a sub-operation the
    destination answers with a warning counts as completed; the first refused (or
    failed) sub-operation ends the move at once with 0xC000 and zero counts, without
    a Failed SOP Instance UID List; no Pending response follows the last
    sub-operation; the final response carries no Number of Remaining Sub-operations.
    ``failed`` is set at the first failed sub-operation: the handler stops sending.
    When the handler runs the sub-operations itself (``MoveSubOperations``), pynetdicom
    counted none of them: the final response takes ``counts`` instead. Uninstalls
    itself once the final response is sent."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.failed = False
        self.counts: SubOperationCounts | None = None

    def __call__(self, response: C_MOVE) -> bool:
        if response.MessageIDBeingRespondedTo != self.message_id:
            return True
        counts = self.counts
        if counts is not None and response.Status != STATUS_PENDING:
            response.NumberOfRemainingSuboperations = counts.remaining
            response.NumberOfCompletedSuboperations = counts.completed
            response.NumberOfFailedSuboperations = counts.failed
            response.NumberOfWarningSuboperations = counts.warning
        completed = (response.NumberOfCompletedSuboperations or 0) + (
            response.NumberOfWarningSuboperations or 0
        )
        if response.NumberOfFailedSuboperations:
            self.failed = True
        if response.Status == STATUS_PENDING:
            if self.failed or not response.NumberOfRemainingSuboperations:
                return False
            response.NumberOfCompletedSuboperations = completed
            response.NumberOfWarningSuboperations = 0
            return True
        reactor.retrieve_responses(None)
        if response.Status == STATUS_CANCEL:
            return True
        response.NumberOfRemainingSuboperations = None
        response.Identifier = None
        if self.failed or response.Status not in (STATUS_SUCCESS, STATUS_WARNING):
            response.Status = STATUS_UNABLE_TO_PROCESS
            completed = 0
        else:
            response.Status = STATUS_SUCCESS
        response.NumberOfCompletedSuboperations = completed
        response.NumberOfFailedSuboperations = 0
        response.NumberOfWarningSuboperations = 0
        return True


class OrthancGetAnswers:
    """The C-GET responses of Orthanc 1.10.1: counted as the standard (and pynetdicom)
    has it (warnings, failures, 0xB000 or 0xA702 at the end), a Pending response after
    every sub-operation, but a final response without a Number of Remaining
    Sub-operations nor a Failed SOP Instance UID List. Two endings of Orthanc's own,
    which the handler announces before it yields their failure status: ``refused``
    (nothing to send: zero counts) and ``no_context`` (the requester accepted no
    presentation context for the next instance: that one counted as failed, the
    others as they went). Uninstalls itself once the final is sent (pynetdicom sends
    it after the handler's generator has ended)."""

    def __init__(self) -> None:
        self.refused = False
        self.no_context = False
        self.counts = SubOperationCounts(0)  # as the last Pending response gave them

    def __call__(self, response: C_GET) -> bool:
        if response.Status == STATUS_PENDING:
            self.counts.completed = response.NumberOfCompletedSuboperations or 0
            self.counts.failed = response.NumberOfFailedSuboperations or 0
            self.counts.warning = response.NumberOfWarningSuboperations or 0
            return True
        reactor.retrieve_responses(None)
        if response.Status == STATUS_CANCEL:
            return True
        response.NumberOfRemainingSuboperations = None
        response.Identifier = None
        if self.refused or self.no_context:
            counts = self.counts if self.no_context else SubOperationCounts(0)
            response.Status = STATUS_UNABLE_TO_PROCESS
            response.NumberOfCompletedSuboperations = counts.completed
            response.NumberOfFailedSuboperations = counts.failed + int(self.no_context)
            response.NumberOfWarningSuboperations = counts.warning
        return True


def _accepts(assoc: Any, dataset: Any) -> bool:
    """Whether the requester of a C-GET accepted a presentation context (SCP role on
    its side) that pynetdicom can send ``dataset`` on: the one it looks for, with
    the conversions it allows. True when it cannot be told (not pynetdicom's)."""
    find = getattr(assoc, "_get_valid_context", None)
    sop_class = getattr(dataset, "sop_class_uid", None)
    syntax = getattr(dataset, "transfer_syntax", None)
    if find is None or sop_class is None or syntax is None:
        return True
    try:
        find(sop_class, syntax, "scu")
    except ValueError:
        return False
    return True


def _serving_association() -> Any:
    """The association whose request this thread serves: pynetdicom runs each
    association, its handlers included, on the association's own thread."""
    thread = threading.current_thread()
    return thread if isinstance(thread, Association) else None


class RetrieveService:
    """Answers C-MOVE and C-GET requests against one archive."""

    def __init__(
        self,
        archive: Archive,
        config: Mapping[str, Any],
        aet: str,
        modalities: ModalityRegistry,
    ) -> None:
        self.archive = archive
        self.aet = aet
        self.modalities = modalities
        self.strict_aet = bool(config.get("StrictAetComparison", False))
        self.transcode = bool(config.get("TranscodeDicomProtocol", True))
        synchronous = config.get("SynchronousCMove", True)
        self.synchronous = True if synchronous is None else bool(synchronous)

    def destination(self, aet: str) -> RemoteModality | None:
        for modality in self.modalities.all().values():
            if same_aet(modality.aet, aet, self.strict_aet):
                return modality
        return None

    def _datasets(
        self, instances: list[InstanceToSend], is_cancelled: Callable[[], bool] | None
    ) -> Iterator[tuple[int, Dataset | None]]:
        try:
            files = _dicom_files(self.archive, instances)
        except DicomhubError as exc:
            log.warning("C-MOVE/C-GET cannot list the files to send: %s", exc)
            yield STATUS_UNABLE_TO_PROCESS, None
            return
        for instance in instances:
            if is_cancelled is not None and is_cancelled():
                yield STATUS_CANCEL, None
                return
            try:
                dataset = _dataset(self.archive, instance.public_id, files.get(instance.public_id))
            except (DicomhubError, OSError, ValueError, InvalidDicomError) as exc:
                # deleted meanwhile, or an unreadable file: a failed sub-operation
                log.warning("C-MOVE/C-GET cannot read %s: %s", instance.public_id, exc)
                yield STATUS_UNABLE_TO_PROCESS, None
                return
            yield STATUS_PENDING, dataset

    def _instances(
        self, identifier: Dataset, get: bool = False
    ) -> list[InstanceToSend] | FindRefused:
        try:
            return resources_to_send(self.archive, identifier, get)
        except FindRefused as exc:
            return exc
        except DicomhubError as exc:
            return FindRefused(STATUS_UNABLE_TO_PROCESS, str(exc))

    def handle_move(
        self,
        identifier: Dataset,
        move_destination: str,
        message_id: int,
        is_cancelled: Callable[[], bool] | None,
        event: Any = None,
    ) -> Iterator[Any]:
        """pynetdicom's C-MOVE protocol: destination, count, then (status, dataset).
        Given the request's ``event``, the sub-operations run here
        (``MoveSubOperations``) and the handler yields only the final status."""
        reactor.retrieve_responses(None)  # a generator left unfinished on this thread
        modality = self.destination(move_destination)
        if modality is None:
            log.warning("C-MOVE to an unknown destination AET: %s", move_destination)
            yield None, None
            return
        found = self._instances(identifier)
        instances = [] if isinstance(found, FindRefused) else found
        # one item per (SOP class, transfer syntax): all the contexts need to know
        kinds = {(i.sop_class_uid, i.transfer_syntax): i for i in instances}
        items = [
            Outgoing(i.sop_class_uid, i.transfer_syntax, bytes, i.public_id) for i in kinds.values()
        ]
        # pynetdicom connects to the destination before it takes a failure status, and
        # needs one context to do so
        contexts = _contexts(items) if items else [build_context(Verification)]
        # Nagle off, or each sub-operation waits for a delayed ACK (~40 ms)
        handlers: list[tuple[Any, Callable[[Any], None]]] = [(evt.EVT_CONN_OPEN, no_delay)]
        # the association pynetdicom opens to the destination, to run the
        # sub-operations on
        destinations: list[Any] = []
        if event is not None:
            handlers.append((evt.EVT_CONN_OPEN, lambda opened: destinations.append(opened.assoc)))
        yield (
            modality.host,
            modality.port,
            {"ae_title": modality.aet, "contexts": contexts, "evt_handlers": handlers},
        )
        # until the final response, which pynetdicom sends after the last sub-operation
        # (once this generator has ended) or when it is given a status; installed
        # before the count, after which pynetdicom connects to the destination and
        # answers 0xA801 itself when it cannot (Orthanc: 0xC000, zero counts)
        answers = OrthancMoveAnswers(message_id)
        reactor.retrieve_responses(answers)
        if isinstance(found, FindRefused):
            log.warning("C-MOVE refused: %s", found)
            yield 1
            yield found.status, None  # rewritten: zero counts, no identifier
            return
        if not self.synchronous:
            self._send_in_background(modality, instances, message_id)
            yield 0
            return
        yield len(instances)
        if destinations and isinstance(destinations[0], reactor.EventDrivenAssociation):
            yield self._run_sub_operations(instances, destinations[0], event, answers, is_cancelled)
            return
        remaining = len(instances)
        for status, dataset in self._datasets(instances, is_cancelled):
            yield status, dataset
            remaining -= 1
            if status != STATUS_PENDING:
                return
            if answers.failed:  # as Orthanc: no further sub-operation
                if remaining:  # else pynetdicom ends the move itself
                    yield STATUS_UNABLE_TO_PROCESS, None
                return

    def _run_sub_operations(
        self,
        instances: list[InstanceToSend],
        destination: Any,
        event: Any,
        answers: OrthancMoveAnswers,
        is_cancelled: Callable[[], bool] | None,
    ) -> tuple[int, None]:
        """Every sub-operation on ``destination``; the final (status, None) to yield."""
        try:
            files = _dicom_files(self.archive, instances)
        except DicomhubError as exc:
            log.warning("C-MOVE/C-GET cannot list the files to send: %s", exc)
            return STATUS_UNABLE_TO_PROCESS, None
        counts = SubOperationCounts(len(instances))
        answers.counts = counts
        run = MoveSubOperations(
            self.archive,
            files,
            destination,
            event.assoc,
            event.context.context_id,
            event.request,
            is_cancelled,
        )
        status = run.run(instances, counts)
        if status == STATUS_UNABLE_TO_PROCESS:
            answers.failed = True
        return status, None

    def _send_in_background(
        self, modality: RemoteModality, instances: list[InstanceToSend], message_id: int
    ) -> None:
        items = [
            Outgoing(
                i.sop_class_uid,
                i.transfer_syntax,
                lambda public_id=i.public_id: instance_file(self.archive, public_id),  # type: ignore[misc]
                i.public_id,
            )
            for i in instances
        ]

        def run() -> None:
            try:
                store(
                    modality,
                    items,
                    self.aet,
                    None,
                    self.aet,
                    message_id,
                    permissive=True,
                    transcode=self.transcode,
                )
            except DicomhubError as exc:
                log.error("Asynchronous C-MOVE to %s failed: %s", modality.aet, exc)

        threading.Thread(target=run, name="c-move", daemon=True).start()

    def handle_get(
        self, identifier: Dataset, is_cancelled: Callable[[], bool] | None
    ) -> Iterator[Any]:
        """pynetdicom's C-GET protocol: count, then (status, dataset) per instance."""
        reactor.retrieve_responses(None)  # a generator left unfinished on this thread
        answers = OrthancGetAnswers()
        found = self._instances(identifier, get=True)
        if isinstance(found, FindRefused):
            log.warning("C-GET refused: %s", found)
            answers.refused = True
            reactor.retrieve_responses(answers)
            yield 1
            yield found.status, None
            return
        requester = _serving_association()
        yield len(found)
        reactor.retrieve_responses(answers)
        for status, dataset in self._datasets(found, is_cancelled):
            if status == STATUS_PENDING and not _accepts(requester, dataset):
                log.warning(
                    "C-GET: the requester accepted no presentation context for %s",
                    getattr(dataset, "sop_class_uid", "?"),
                )
                answers.no_context = True
                yield STATUS_UNABLE_TO_PROCESS, None
                return
            yield status, dataset


__all__ = ["OrthancGetAnswers", "OrthancMoveAnswers", "RetrieveService", "resources_to_send"]
