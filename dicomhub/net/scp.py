"""The DICOM listener (SCP): C-ECHO and C-STORE on ``DicomPort`` as ``DicomAet``.

Access control follows what Orthanc 1.10.1 does on the wire (checked against it):

- a called AET other than ``DicomAet`` is rejected (permanent, service user,
  "called AE title not recognized") when ``DicomCheckCalledAet``;
- unless some ``DicomAlwaysAllow*`` option is true, a caller must be a configured
  modality (same AET, and same IP when ``DicomCheckModalityHost``), otherwise it is
  rejected with "calling AE title not recognized";
- a request the caller may not make (neither ``DicomAlwaysAllow<Request>`` nor the
  modality's ``Allow<Request>``) aborts the association, as Orthanc does.

AETs compare case-insensitively unless ``StrictAetComparison``. Stored instances go
through ``core.ingest`` in the association's own thread, so a malformed dataset
or an aborted association leaves nothing behind and other associations go on.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import logging
import socket
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

import orjson
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.pdu_primitives import SOPClassCommonExtendedNegotiation
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import ServiceClass
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    _QR_CLASSES,
    _STORAGE_CLASSES,
    Verification,
    uid_to_service_class,
)

from ..core import accepted_sop_classes, accepted_syntaxes, ingest
from ..core.archive import Archive
from ..core.errors import (
    BadFileFormat,
    DicomhubError,
    FullStorage,
    InexistentTag,
)
from ..core.hooks import INCOMING_WORKLIST_REQUEST, FilterError
from ..core.modalities import (
    ECHO,
    FIND,
    FIND_WORKLIST,
    GET,
    MOVE,
    N_ACTION,
    STORE,
    ModalityRegistry,
    same_aet,
)
from ..core.storage_commitment import CommitmentReports
from . import store_scp
from .find_filters import filtered_identifier
from .find_scp import STATUS_UNABLE_TO_PROCESS, FindService
from .move_scp import RetrieveService
from .storage_commitment import PUSH_MODEL, CommitmentService
from .worklist_scp import WORKLIST_FIND, WorklistService

log = logging.getLogger("dicomhub.scp")


def _copy_context(self: PresentationContext, memo: dict[int, Any]) -> PresentationContext:
    """A cheap deep copy: the UIDs inside are immutable strings and can be shared.

    pynetdicom deep-copies every supported presentation context for each incoming
    association; with ~170 storage classes times ~40 transfer syntaxes, the generic
    deep copy of the UIDs cost tens of milliseconds per association.
    """
    clone = copy.copy(self)
    for name, value in vars(self).items():
        if isinstance(value, list):
            setattr(clone, name, list(value))
    return clone


PresentationContext.__deepcopy__ = _copy_context  # type: ignore[attr-defined]
store_scp.install()  # our associations' C-STOREs take the short path of ``store_scp``

#: pynetdicom's logging handlers, bound to every association; they log only at INFO
#: and DEBUG, yet build their texts (and copy each received data set) regardless.
_PYNETDICOM_LOG_HANDLERS = (
    (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
)

#: Association rejection (result, source, reason) of PS3.8 9.3.4.
REJECT_CALLING_AET = (0x01, 0x01, 0x03)
REJECT_CALLED_AET = (0x01, 0x01, 0x07)

#: C-STORE failure statuses (PS3.4 B.2.3).
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_PROCESSING_FAILURE = 0x0110

_ALWAYS_ALLOW_KEYS = (
    "DicomAlwaysAllowEcho",
    "DicomAlwaysAllowFind",
    "DicomAlwaysAllowFindWorklist",
    "DicomAlwaysAllowGet",
    "DicomAlwaysAllowMove",
    "DicomAlwaysAllowStore",
)

#: Transfer syntax families that Orthanc lets the configuration switch off.
_FAMILY_SWITCHES: dict[str, tuple[str, ...]] = {
    "DeflatedTransferSyntaxAccepted": ("1.2.840.10008.1.2.1.99",),
    "JpegTransferSyntaxAccepted": tuple(
        f"1.2.840.10008.1.2.4.{n}" for n in (50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61)
    )
    + tuple(f"1.2.840.10008.1.2.4.{n}" for n in (62, 63, 64, 65, 66, 70)),
    "Jpeg2000TransferSyntaxAccepted": tuple(
        f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93, 201, 202, 203)
    ),
    "JpegLosslessTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "JpipTransferSyntaxAccepted": ("1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95"),
    "Mpeg2TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "Mpeg4TransferSyntaxAccepted": tuple(
        f"1.2.840.10008.1.2.4.{n}" for n in (102, 103, 104, 105, 106)
    ),
    "H265TransferSyntaxAccepted": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
    "RleTransferSyntaxAccepted": ("1.2.840.10008.1.2.5",),
}


def _flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    return default if value is None else bool(value)


def transfer_syntaxes(config: Mapping[str, Any]) -> list[str]:
    """The transfer syntaxes C-STORE accepts, after the configuration's switches."""
    refused = {
        uid
        for key, uids in _FAMILY_SWITCHES.items()
        if not _flag(config, key, True)
        for uid in uids
    }
    patterns = config.get("AcceptedTransferSyntaxes")
    if isinstance(patterns, str):
        patterns = [patterns]
    # The acceptor keeps the first of its own syntaxes that the peer proposes: Explicit
    # VR Little Endian first, as Orthanc ends up accepting from dcmtk's storescu.
    preferred = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"]
    ordered = preferred + [str(u) for u in AllTransferSyntaxes if str(u) not in preferred]
    syntaxes: list[str] = []
    for uid in ordered:
        if uid in refused:
            continue
        if patterns and not any(fnmatch.fnmatchcase(uid, str(p)) for p in patterns):
            continue
        syntaxes.append(uid)
    return syntaxes


def storage_classes(config: Mapping[str, Any]) -> list[str]:
    """The storage SOP classes accepted: known to pynetdicom, filtered like Orthanc's
    ``AcceptedSopClasses`` / ``RejectedSopClasses`` (with ``*`` and ``?``)."""
    return accepted_sop_classes.accepted(config)


#: The Storage Service Class: unknown SOP classes are served as storage.
STORAGE_SERVICE_CLASS = "1.2.840.10008.4.2"


def is_unknown_sop_class(uid: str) -> bool:
    """A SOP class no dictionary names (private or newer than pynetdicom), the kind
    ``UnknownSopClassAccepted`` lets in; a known non-storage class is not one."""
    if uid in _STORAGE_CLASSES.values():
        return False
    # pynetdicom knows the service of every class it names (its names differ from
    # pydicom's keywords, e.g. the worklist Find class): unknown means the generic one.
    return uid_to_service_class(uid) is ServiceClass


class DicomListener:
    """One pynetdicom server bound to ``DicomPort``, serving until ``stop``."""

    def __init__(
        self, archive: Archive, config: Mapping[str, Any], modalities: ModalityRegistry
    ) -> None:
        self.archive = archive
        self.config = config
        self.modalities = modalities
        self.aet = str(config.get("DicomAet") or "ORTHANC")
        self.port = int(config.get("DicomPort") or 4242)
        # Orthanc listens for DICOM on every interface whatever RemoteAccessAllowed says
        # (modalities are remote by nature); "DicomBindAddress" is a dicomhub extension.
        self.host = str(config.get("DicomBindAddress") or "0.0.0.0")
        self.check_called_aet = _flag(config, "DicomCheckCalledAet", False)
        self.strict_aet = _flag(config, "StrictAetComparison", False)
        self.always_allow = {
            ECHO: _flag(config, "DicomAlwaysAllowEcho", True),
            STORE: _flag(config, "DicomAlwaysAllowStore", True),
            FIND: _flag(config, "DicomAlwaysAllowFind", False),
            MOVE: _flag(config, "DicomAlwaysAllowMove", False),
            GET: _flag(config, "DicomAlwaysAllowGet", False),
            FIND_WORKLIST: _flag(config, "DicomAlwaysAllowFindWorklist", False),
        }
        self.finder = FindService(archive, config, self.aet)
        self.worklists = WorklistService(config)
        self.commitment = CommitmentService(archive, self.aet, CommitmentReports(archive, config))
        self.default_encoding = str(config.get("DefaultEncoding") or "Latin1")
        self.retriever = RetrieveService(archive, config, self.aet, modalities)
        self.any_always_allowed = any(
            _flag(config, key, key in ("DicomAlwaysAllowEcho", "DicomAlwaysAllowStore"))
            for key in _ALWAYS_ALLOW_KEYS
        )
        self._server: Any = None

    # ---- life cycle ---------------------------------------------------------
    def _application_entity(self) -> AE:
        timeout = float(self.config.get("DicomScpTimeout") or 30)
        ae = AE(ae_title=self.aet)
        ae.network_timeout = timeout
        ae.acse_timeout = timeout
        ae.dimse_timeout = timeout
        ae.maximum_pdu_size = int(self.config.get("MaximumPduLength") or 16384)
        ae.maximum_associations = max(10, int(self.config.get("DicomThreadsCount") or 4) * 8)
        ae.require_called_aet = False  # checked here, with Orthanc's comparison rules
        ae.add_supported_context(Verification)
        syntaxes = transfer_syntaxes(self.config)
        self._storage_classes = set(storage_classes(self.config))
        self._all_syntaxes = transfer_syntaxes({})
        for uid in storage_classes(self.config):
            # the peer may take the SCP role too: C-GET sends back on the same association
            ae.add_supported_context(uid, syntaxes, scu_role=True, scp_role=True)
        for name in _QR_ROOTS:
            ae.add_supported_context(_QR_CLASSES[name])
        if self.worklists.enabled:  # Orthanc offers worklists only with its plugin on
            ae.add_supported_context(WORKLIST_FIND)
        # storage commitment: peers ask (N-ACTION) and report back (N-EVENT-REPORT, SCP role)
        ae.add_supported_context(PUSH_MODEL, scu_role=True, scp_role=True)
        # Unknown SOP classes are added per association (``_admit_unknown_classes``), not
        # with pynetdicom's process-wide switch, which would also accept the rejected
        # classes and any transfer syntax.
        return ae

    def start(self) -> None:
        handlers = [
            (evt.EVT_CONN_OPEN, self._on_connection),
            (evt.EVT_REQUESTED, self._on_association_request),
            (evt.EVT_ACCEPTED, self._on_association_accepted),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_N_ACTION, self._on_n_action),
            (evt.EVT_N_EVENT_REPORT, self.commitment.on_report),
        ]
        accepted_syntaxes.reset(self.archive)  # a restart goes back to the configuration
        accepted_sop_classes.reset(self.archive)
        self._server = self._application_entity().start_server(
            (self.host, self.port), block=False, evt_handlers=handlers
        )
        log.warning("DICOM server listening with AET %s on port: %d", self.aet, self.port)

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            associations = server.active_associations
            server.shutdown()
            # An open association must not keep the process alive until its timeout.
            for assoc in associations:
                assoc.abort()

    # ---- access control -----------------------------------------------------
    def _on_connection(self, event: evt.Event) -> None:
        """Nagle's algorithm holds back the small DIMSE responses until the peer's delayed
        ACK (tens of milliseconds per C-STORE), so it is always off on DICOM sockets."""
        sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
            # Nothing they write would be shown: spare their cost on every PDU/message.
            for event_type, handler in _PYNETDICOM_LOG_HANDLERS:
                event.assoc.unbind(event_type, handler)

    def _on_association_request(self, event: evt.Event) -> None:
        assoc = event.assoc
        self._apply_accepted_syntaxes(assoc)
        self._admit_unknown_classes(assoc)
        request = assoc.requestor.primitive
        called = _text(request.called_ae_title)
        calling = _text(request.calling_ae_title)
        remote_ip = assoc.requestor.address
        if self.check_called_aet and not same_aet(called, self.aet, self.strict_aet):
            log.warning("Rejected association, because of a bad called AET (%s)", called)
            self._reject(event, REJECT_CALLED_AET)
            return
        if not self.any_always_allowed and not self.modalities.matching(calling, remote_ip):
            log.warning("Rejected association for remote AET %s on IP %s", calling, remote_ip)
            self._reject(event, REJECT_CALLING_AET)

    def _apply_accepted_syntaxes(self, assoc: Any) -> None:
        """``PUT /tools/accepted-transfer-syntaxes`` applies from the next association:
        the storage contexts of this one offer only the syntaxes now accepted."""
        with self.archive.read() as session:
            stored = session.get_property(accepted_syntaxes.PROPERTY)
        if stored is None:
            return
        allowed = set(orjson.loads(stored))
        for context in assoc.acceptor.supported_contexts:
            if context.abstract_syntax in self._storage_classes:
                context.transfer_syntax = [u for u in self._all_syntaxes if u in allowed]

    def _admit_unknown_classes(self, assoc: Any) -> None:
        """``UnknownSopClassAccepted`` (configuration, or the last ``PUT
        /tools/unknown-sop-class-accepted``): the unknown SOP classes the peer proposes
        become supported for this association, with the accepted transfer syntaxes,
        unless ``RejectedSopClasses`` refuses them."""
        if not accepted_sop_classes.unknown_accepted(self.archive, self.config):
            return
        contexts = assoc.acceptor.supported_contexts
        supported = {str(cx.abstract_syntax) for cx in contexts}
        syntaxes = next(
            (
                list(cx.transfer_syntax)
                for cx in contexts
                if cx.abstract_syntax in self._storage_classes
            ),
            transfer_syntaxes(self.config),
        )
        for requested in assoc.requestor.primitive.presentation_context_definition_list:
            uid = str(requested.abstract_syntax)
            if uid in supported or not is_unknown_sop_class(uid):
                continue
            if accepted_sop_classes.is_rejected(uid, self.config):
                continue
            context = PresentationContext()
            context.abstract_syntax = uid
            context.transfer_syntax = syntaxes
            context.scu_role = True
            context.scp_role = True
            contexts.append(context)
            supported.add(uid)

    def _on_association_accepted(self, event: evt.Event) -> None:
        """An accepted unknown SOP class is served by the storage service: pynetdicom
        dispatches a C-STORE through the SOP Class Common Extended mapping. C-STOREs go
        to ``_c_store`` directly (``store_scp``)."""
        store_scp.attach(event.assoc, self._c_store)
        acceptor = event.assoc.acceptor
        for context in event.assoc.accepted_contexts:
            uid = context.abstract_syntax
            if is_unknown_sop_class(str(uid)) and uid not in acceptor.accepted_common_extended:
                item = SOPClassCommonExtendedNegotiation()
                item.sop_class_uid = uid
                item.service_class_uid = STORAGE_SERVICE_CLASS
                acceptor._common_ext[uid] = item

    @staticmethod
    def _reject(event: evt.Event, reason: tuple[int, int, int]) -> None:
        event.assoc.acse.send_reject(*reason)
        event.assoc.kill()

    def _allowed(self, event: evt.Event, request: str) -> bool:
        return self._allowed_for(event.assoc, request)

    def _allowed_for(self, assoc: Any, request: str) -> bool:
        if self.always_allow.get(request, False):
            return True
        calling = _text(assoc.requestor.ae_title)
        remote_ip = assoc.requestor.address
        if any(m.allows(request) for m in self.modalities.matching(calling, remote_ip)):
            return True
        log.warning(
            'Rejected %s request from remote DICOM modality with AET "%s" and hostname "%s"',
            request,
            calling,
            remote_ip,
        )
        return False

    # ---- services -----------------------------------------------------------
    def _on_echo(self, event: evt.Event) -> int:
        if not self._allowed(event, ECHO):
            event.assoc.abort()
            return STATUS_PROCESSING_FAILURE
        return 0x0000

    def _store_grant(self, assoc: Any) -> ingest.Origin | None:
        """Whether this association may store, decided at its first C-STORE and kept
        for the others: the origin its instances get, or None (refused)."""
        grant = getattr(assoc, "_dicomhub_store_grant", False)
        if grant is False:
            grant = None
            if self._allowed_for(assoc, STORE):
                grant = ingest.Origin(
                    origin="DicomProtocol",
                    remote_ip=assoc.requestor.address,
                    remote_aet=_text(assoc.requestor.ae_title),
                    called_aet=_text(assoc.requestor.primitive.called_ae_title),
                )
            assoc._dicomhub_store_grant = grant
        return grant

    def _c_store(self, assoc: Any, data: bytes) -> int | None | tuple[int, Callable[[], None]]:
        """One C-STORE of our listener (``store_scp``), the received instance as a
        file: None when refused (aborted). The stored file is moved to its place
        after the response is sent (``ingest.finish``): the peer sends the next
        instance meanwhile."""
        origin = self._store_grant(assoc)
        if origin is None:
            assoc.abort()
            return None
        status, result = self._store(data, origin, publish=False)
        if result is None or result.unpublished is None:
            return status
        return status, partial(ingest.finish, self.archive, result)

    def _on_store(self, event: evt.Event) -> int:
        """``EVT_C_STORE``, for a C-STORE that does not take ``store_scp``'s path."""
        origin = self._store_grant(event.assoc)
        if origin is None:
            event.assoc.abort()
            return STATUS_PROCESSING_FAILURE
        return self._ingest(event.encoded_dataset(include_meta=True), origin)

    def _ingest(self, data: bytes, origin: ingest.Origin) -> int:
        """Store one received file; the C-STORE status to answer."""
        return self._store(data, origin)[0]

    def _store(
        self, data: bytes, origin: ingest.Origin, publish: bool = True
    ) -> tuple[int, ingest.StoreResult | None]:
        """Store one received file: the C-STORE status to answer, and the result
        (None when it failed)."""
        try:
            parsed = ingest.parse(self.archive, data)
            result = ingest.store_parsed(self.archive, parsed, data, origin, publish)
        except (BadFileFormat, InexistentTag) as exc:
            log.warning("C-STORE from %s refused: %s", origin.remote_aet, exc)
            return STATUS_CANNOT_UNDERSTAND, None
        except (FullStorage, FilterError) as exc:  # a failing filter: as Orthanc answers
            log.warning("C-STORE from %s refused: %s", origin.remote_aet, exc)
            return STATUS_OUT_OF_RESOURCES, None
        except DicomhubError as exc:
            log.error("C-STORE from %s failed: %s", origin.remote_aet, exc)
            return STATUS_PROCESSING_FAILURE, None
        except Exception:
            log.exception("C-STORE from %s failed", origin.remote_aet)
            return STATUS_PROCESSING_FAILURE, None
        if result.status == ingest.STATUS_FILTERED_OUT:
            return result.dimse_status, result
        return 0x0000, result

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int, Any]]:
        if str(event.request.AffectedSOPClassUID) == WORKLIST_FIND:
            yield from self._on_find_worklist(event)
            return
        if not self._allowed(event, FIND):
            event.assoc.abort()
            return
        try:
            identifier = filtered_identifier(
                self.archive, self.modalities, event, default_encoding=self.default_encoding
            )
        except FilterError as exc:
            log.error("C-FIND refused by a failing filter: %s", exc)
            yield STATUS_UNABLE_TO_PROCESS, None
            return
        yield from self.finder.handle(identifier, lambda: event.is_cancelled, event)

    def _on_find_worklist(self, event: evt.Event) -> Iterator[tuple[int, Any]]:
        if not self._allowed(event, FIND_WORKLIST):
            event.assoc.abort()
            return
        calling = _text(event.assoc.requestor.ae_title)
        try:
            identifier = filtered_identifier(
                self.archive,
                self.modalities,
                event,
                INCOMING_WORKLIST_REQUEST,
                default_encoding=self.default_encoding,
            )
        except FilterError as exc:
            log.error("Worklist C-FIND refused by a failing filter: %s", exc)
            yield STATUS_UNABLE_TO_PROCESS, None
            return
        yield from self.worklists.handle(identifier, calling, lambda: event.is_cancelled)

    def _on_n_action(self, event: evt.Event) -> tuple[int, None]:
        """Storage commitment request: only from a known modality allowed to ask, since
        the report goes back to it."""
        if not self._allowed(event, N_ACTION):
            event.assoc.abort()
            return 0x0110, None
        calling = _text(event.assoc.requestor.ae_title)
        known = self.modalities.matching(calling, event.assoc.requestor.address)
        return self.commitment.on_action(event, known[0] if known else None)

    def _on_move(self, event: evt.Event) -> Iterator[Any]:
        if not self._allowed(event, MOVE):
            event.assoc.abort()
            yield None, None
            return
        destination = _text(event.move_destination)
        message_id = int(event.request.MessageID or 0)
        yield from self.retriever.handle_move(
            event.identifier, destination, message_id, lambda: event.is_cancelled, event
        )

    def _on_get(self, event: evt.Event) -> Iterator[Any]:
        if not self._allowed(event, GET):
            event.assoc.abort()
            yield 0
            return
        yield from self.retriever.handle_get(event.identifier, lambda: event.is_cancelled)


#: The query/retrieve models served (Patient/Study Only Root is retired).
_QR_ROOTS = (
    "PatientRootQueryRetrieveInformationModelFind",
    "StudyRootQueryRetrieveInformationModelFind",
    "PatientRootQueryRetrieveInformationModelMove",
    "StudyRootQueryRetrieveInformationModelMove",
    "PatientRootQueryRetrieveInformationModelGet",
    "StudyRootQueryRetrieveInformationModelGet",
)


def _text(value: Any) -> str:
    """An AE title as text (pynetdicom gives ``str`` in v3, ``bytes`` before)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


def dicom_port_problem(config: Mapping[str, Any]) -> str | None:
    """Why the DICOM port of ``config`` cannot be opened (``None``: it can, or no DICOM
    server is configured). Checked once before the workers start, as the listener
    opens it later in the primary worker: Orthanc does not start without its port."""
    if not _flag(config, "DicomServerEnabled", True):
        return None
    port = int(config.get("DicomPort") or 4242)
    host = str(config.get("DicomBindAddress") or "0.0.0.0")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"The TCP port of the DICOM server is privileged or already in use ({host}:{port}: {exc.strerror})"
    return None


def start_listener(archive: Archive, config: Mapping[str, Any]) -> DicomListener | None:
    """Start the listener of the primary process (None when ``DicomServerEnabled`` is
    false or the port cannot be opened: the HTTP server still runs, as logged)."""
    try:
        modalities = ModalityRegistry(archive, config)
    except DicomhubError as exc:
        log.error("Bad DicomModalities configuration, no DICOM listener: %s", exc)
        return None
    if not _flag(config, "DicomServerEnabled", True):
        return None
    listener = DicomListener(archive, config, modalities)
    try:
        listener.start()
    except OSError as exc:
        log.error("Cannot open the DICOM port %s:%d: %s", listener.host, listener.port, exc)
        return None
    return listener


__all__ = [
    "DicomListener",
    "dicom_port_problem",
    "start_listener",
    "storage_classes",
    "transfer_syntaxes",
]
