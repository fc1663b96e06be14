"""The synchronous filters that the faces consult before they act.

Orthanc lets scripts veto or rewrite requests where they happen: an instance before
it is stored, an HTTP request before it is routed, a C-FIND query before it is
answered or sent. Those checks belong to no single face (an instance arrives over
REST, DICOM or from a script alike), so the faces ask this registry, and whoever
wants a say (the Lua engine, Python hooks) registers a callable here. With nothing
registered every check is a cheap no-op, so the hot paths pay nothing.

The registry hangs off the archive (``hooks_of``): one per server process, shared by
every face of that process.

Shapes follow Orthanc's Lua API, so that scripts and Python hooks see the same data:

- instance filters get ``(tags, origin, info)``: the simplified tags of the file,
  the origin as Orthanc formats it (``RequestOrigin``, ``RemoteIp``, ``RemoteAet``,
  ``CalledAet``, ``Username``) and ``{"HasPixelData", "TransferSyntaxUID"}``;
- HTTP filters get ``(method, uri, ip, username, headers)`` (lower-case header names);
- C-FIND filters get a query ``{"gggg,eeee": value}`` and answer the query to use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..dicom.parsing import ParsedInstance
from ..dicom.tags_json import simplified_tags
from .errors import DicomhubError

log = logging.getLogger("dicomhub.hooks")

#: The kinds of filters, by the name a Python hook module gives its function
#: (``<kind>_filter``); Lua's names are in ``scripting/lua_filters.py``.
RECEIVED_INSTANCE = "received_instance"
INCOMING_CSTORE_INSTANCE = "incoming_cstore_instance"
INCOMING_HTTP_REQUEST = "incoming_http_request"
INCOMING_FIND_REQUEST = "incoming_find_request"
INCOMING_WORKLIST_REQUEST = "incoming_worklist_request"
OUTGOING_FIND_REQUEST = "outgoing_find_request"
KINDS = (
    RECEIVED_INSTANCE,
    INCOMING_CSTORE_INSTANCE,
    INCOMING_HTTP_REQUEST,
    INCOMING_FIND_REQUEST,
    INCOMING_WORKLIST_REQUEST,
    OUTGOING_FIND_REQUEST,
)

#: DIMSE status of a C-STORE whose instance ``ReceivedInstanceFilter`` refused:
#: Orthanc keeps answering success there, for backward compatibility.
STATUS_SUCCESS = 0x0000


class FilterError(DicomhubError):
    """A filter failed (raised, timed out, answered the wrong type). The request it
    guarded is refused: an error answer over HTTP, a failure status over DICOM."""

    code = -1
    name = "Internal error"
    http_status = 500


class _Origin(Protocol):
    origin: str
    remote_ip: str
    remote_aet: str
    called_aet: str
    http_username: str


def origin_json(origin: _Origin) -> dict[str, str]:
    """The ``origin`` table of Orthanc's instance callbacks (its fields depend on
    where the instance came from, as Orthanc's ``DicomInstanceOrigin`` formats it)."""
    answer = {"RequestOrigin": origin.origin}
    if origin.origin == "DicomProtocol":
        answer.update(
            RemoteIp=origin.remote_ip, RemoteAet=origin.remote_aet, CalledAet=origin.called_aet
        )
    elif origin.origin == "RestApi":
        answer.update(RemoteIp=origin.remote_ip, Username=origin.http_username)
    return answer


def find_origin(remote_ip: str, remote_aet: str, called_aet: str, manufacturer: str) -> dict:
    """The ``origin`` table of Orthanc's C-FIND filters."""
    return {
        "RemoteIp": remote_ip,
        "RemoteAet": remote_aet,
        "CalledAet": called_aet,
        "Manufacturer": manufacturer,
    }


Filter = Callable[..., Any]


class Hooks:
    """The filters of one server process, by kind, in registration order."""

    def __init__(self) -> None:
        self._filters: dict[str, tuple[Filter, ...]] = {kind: () for kind in KINDS}
        self._lock = threading.Lock()

    def register(self, kind: str, function: Filter) -> Callable[[], None]:
        """Adds a filter; answers the function that removes it again."""
        if kind not in self._filters:
            raise ValueError(f"unknown kind of filter: {kind}")
        with self._lock:
            self._filters[kind] = (*self._filters[kind], function)

        def unregister() -> None:
            with self._lock:
                self._filters[kind] = tuple(f for f in self._filters[kind] if f is not function)

        return unregister

    def active(self, kind: str) -> bool:
        return bool(self._filters[kind])

    def _run(self, kind: str, function: Filter, *args: Any) -> Any:
        try:
            return function(*args)
        except DicomhubError:
            raise
        except Exception as exc:
            log.exception("The %s filter failed", kind)
            raise FilterError(f"The {kind} filter failed: {exc}") from exc

    # ---- instances ---------------------------------------------------------------
    def admit_instance(self, parsed: ParsedInstance, origin: _Origin) -> int | None:
        """``None`` if the instance may be stored; otherwise the DIMSE status that a
        C-STORE answers (``ReceivedInstanceFilter`` refusals answer success, as in
        Orthanc; the C-STORE filter chooses its status)."""
        received = self._filters[RECEIVED_INSTANCE]
        cstore = self._filters[INCOMING_CSTORE_INSTANCE] if origin.origin == "DicomProtocol" else ()
        if not received and not cstore:
            return None
        tags = simplified_tags(parsed.dataset, parsed.charsets)
        source = origin_json(origin)
        info: dict[str, Any] = {
            "HasPixelData": parsed.pixel_data_offset is not None,
            "TransferSyntaxUID": parsed.transfer_syntax,
        }
        for function in received:
            if not self._run(RECEIVED_INSTANCE, function, tags, source, info):
                log.info("An incoming instance has been discarded by the filter")
                return STATUS_SUCCESS
        for function in cstore:
            status = int(self._run(INCOMING_CSTORE_INSTANCE, function, tags, source, info) or 0)
            if status != 0:
                log.info("An incoming C-STORE instance was refused with status 0x%04X", status)
                return status
        return None

    # ---- HTTP ----------------------------------------------------------------------
    def allow_http(
        self, method: str, uri: str, ip: str, username: str, headers: Mapping[str, str]
    ) -> bool:
        """Whether an HTTP request may go on; Orthanc only filters the four methods, and a
        HEAD request as the GET it answers like (else HEAD would get past a filter)."""
        if method == "HEAD":
            method = "GET"
        if method not in ("GET", "POST", "PUT", "DELETE"):
            return True
        for function in self._filters[INCOMING_HTTP_REQUEST]:
            if not self._run(INCOMING_HTTP_REQUEST, function, method, uri, ip, username, headers):
                log.info("An incoming HTTP request has been discarded by the filter")
                return False
        return True

    # ---- C-FIND ----------------------------------------------------------------------
    def _chain(self, kind: str, query: dict[str, Any], extra: Any) -> dict[str, Any]:
        for function in self._filters[kind]:
            answer = self._run(kind, function, dict(query), extra)
            if not isinstance(answer, Mapping):
                raise FilterError(f"The {kind} filter must answer the query (a table)")
            query = dict(answer)
        return query

    def incoming_find(self, query: dict[str, Any], origin: Mapping[str, str]) -> dict[str, Any]:
        """The C-FIND query (``{"gggg,eeee": value}``) to answer, as the filters fixed it."""
        return self._chain(INCOMING_FIND_REQUEST, query, dict(origin))

    def incoming_worklist(self, query: dict[str, Any], origin: Mapping[str, str]) -> dict[str, Any]:
        """The same for a worklist C-FIND (Orthanc keeps a separate filter for those)."""
        return self._chain(INCOMING_WORKLIST_REQUEST, query, dict(origin))

    def outgoing_find(self, query: dict[str, Any], modality_aet: str) -> dict[str, Any]:
        """The query a C-FIND SCU sends to ``modality_aet`` (the modality's AET, as in
        Orthanc's ``OutgoingFindRequestFilter(query, modality)``)."""
        return self._chain(OUTGOING_FIND_REQUEST, query, modality_aet)


_attach_lock = threading.Lock()


def hooks_of(archive: Any) -> Hooks:
    """The registry of ``archive``'s process (made on first use)."""
    hooks = getattr(archive, "hooks", None)
    if hooks is None:
        with _attach_lock:
            hooks = getattr(archive, "hooks", None)
            if hooks is None:
                hooks = Hooks()
                archive.hooks = hooks
    return hooks


__all__ = [
    "FilterError",
    "Hooks",
    "KINDS",
    "find_origin",
    "hooks_of",
    "origin_json",
]
