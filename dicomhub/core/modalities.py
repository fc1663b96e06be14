"""The remote DICOM modalities this server knows, and what each may ask of it.

Modalities come from the ``DicomModalities`` configuration (list form
``["AET", "host", port, "Manufacturer"?]`` or object form) and from
``PUT /modalities/{name}``, kept as ``core/registry.py`` explains (the DICOM
listener runs in one process, the HTTP workers in several: all see the same list;
``DicomModalitiesInDatabase`` keeps the REST changes across restarts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..dicom.levels import Level
from ..store.index.records import ExportRow
from .archive import Archive
from .clock import now_iso
from .enums import MetadataType
from .errors import BadFileFormat, InexistentItem, ParameterOutOfRange, UnknownResource
from .registry import NamedRegistry
from .transactions import Transaction

#: Orthanc's manufacturer names, spelled exactly so (case matters, as in 1.10.1).
MANUFACTURERS = (
    "Generic",
    "GenericNoWildcardInDates",
    "GenericNoUniversalWildcard",
    "Vitrea",
    "GE",
)

#: Older manufacturer names Orthanc 1.10.1 still accepts, and what it reads them as.
OBSOLETE_MANUFACTURERS = {
    "ClearCanvas": "Generic",
    "Dcm4Chee": "Generic",
    "EFilm2": "Generic",
    "MedInria": "Generic",
    "AgfaImpax": "GenericNoWildcardInDates",
    "SyngoVia": "GenericNoWildcardInDates",
}

#: What the symbolic name of a modality or peer may hold (checked on ``PUT``).
_SYMBOLIC_NAME = re.compile(r"^[A-Za-z0-9_-]*$")


def check_symbolic_name(name: str) -> None:
    """Orthanc refuses a ``PUT /modalities/{name}`` or ``/peers/{name}`` whose name
    holds anything but ASCII letters, digits, dashes and underscores."""
    if not _SYMBOLIC_NAME.match(name):
        raise BadFileFormat(
            "Only alphanumeric, dash characters and underscores are allowed "
            f"in the names of modalities/peers, but found: {name}"
        )


#: The DICOM requests a modality may be allowed or refused.
ECHO, FIND, FIND_WORKLIST, GET, MOVE, STORE, N_ACTION, EVENT_REPORT = (
    "Echo",
    "Find",
    "FindWorklist",
    "Get",
    "Move",
    "Store",
    "NAction",
    "EventReport",
)


@dataclass(frozen=True)
class RemoteModality:
    """One remote application entity, with Orthanc's per-modality permissions."""

    aet: str
    host: str
    port: int
    manufacturer: str = "Generic"
    allow_echo: bool = True
    allow_find: bool = True
    allow_find_worklist: bool = True
    allow_get: bool = True
    allow_move: bool = True
    allow_store: bool = True
    allow_n_action: bool = True
    allow_event_report: bool = True
    allow_transcoding: bool = True
    use_dicom_tls: bool = False
    local_aet: str = ""
    timeout: int = 0
    #: "C-MOVE", "C-GET", or "SystemDefault" (``DicomDefaultRetrieveMethod``), Orthanc 1.12.6
    retrieve_method: str = "SystemDefault"

    def allows(self, request: str) -> bool:
        return {
            ECHO: self.allow_echo,
            FIND: self.allow_find,
            FIND_WORKLIST: self.allow_find_worklist,
            GET: self.allow_get,
            MOVE: self.allow_move,
            STORE: self.allow_store,
            N_ACTION: self.allow_n_action,
            EVENT_REPORT: self.allow_event_report,
        }[request]

    def to_json(self) -> dict[str, Any]:
        """The expanded form Orthanc answers in ``/modalities?expand`` and ``/configuration``:
        every field, with the ``Allow*`` and ``UseDicomTls`` flags of ``_FLAGS``, its
        keys in alphabetical order."""
        answer = {
            "AET": self.aet,
            "Host": self.host,
            "LocalAet": self.local_aet,
            "Manufacturer": self.manufacturer,
            "Port": self.port,
            "RetrieveMethod": self.retrieve_method,
            "Timeout": self.timeout,
        }
        answer.update((key, getattr(self, attribute)) for key, attribute in _FLAGS.items())
        return dict(sorted(answer.items()))


#: The flags of the object form (each a ``RemoteModality`` field), read and answered alike.
_FLAGS = {
    "AllowEcho": "allow_echo",
    "AllowFind": "allow_find",
    "AllowFindWorklist": "allow_find_worklist",
    "AllowGet": "allow_get",
    "AllowMove": "allow_move",
    "AllowStore": "allow_store",
    "AllowNAction": "allow_n_action",
    "AllowEventReport": "allow_event_report",
    "AllowTranscoding": "allow_transcoding",
    "UseDicomTls": "use_dicom_tls",
}


_PORT_TEXT = re.compile(r"^[+-]?[0-9]+$")


def _port(value: Any) -> int:
    """A TCP port: an integer, or a string of digits; 1 to 65534 as in Orthanc."""
    if isinstance(value, bool):
        raise BadFileFormat()
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and _PORT_TEXT.match(value):
        port = int(value)
    else:
        raise BadFileFormat()
    if not 0 < port < 65535:
        raise ParameterOutOfRange(
            f"A TCP port number must be in range [1..65534], but found: {port}"
        )
    return port


def _manufacturer(value: Any) -> str:
    if not isinstance(value, str):
        raise BadFileFormat("String value expected in field: Manufacturer")
    if value in MANUFACTURERS:
        return value
    if value in OBSOLETE_MANUFACTURERS:
        return OBSOLETE_MANUFACTURERS[value]
    raise ParameterOutOfRange(f'Unknown modality manufacturer: "{value}"')


def _string(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadFileFormat(f"String value expected in field: {key}")
    return value


def parse_modality(value: Any) -> RemoteModality:
    """A modality from its configuration form (list or object), checked like Orthanc."""
    if isinstance(value, list):
        if len(value) not in (3, 4) or not all(isinstance(v, (str, int)) for v in value):
            raise BadFileFormat()
        if not isinstance(value[0], str) or not isinstance(value[1], str):
            raise BadFileFormat()
        if len(value) == 4 and not isinstance(value[3], str):
            raise BadFileFormat()
        manufacturer = _manufacturer(value[3]) if len(value) == 4 else "Generic"
        return RemoteModality(value[0], value[1], _port(value[2]), manufacturer)
    if not isinstance(value, dict):
        raise BadFileFormat()
    if "Port" not in value:
        raise BadFileFormat()
    kwargs: dict[str, Any] = {
        "aet": _string(value, "AET"),
        "host": _string(value, "Host"),
        "port": _port(value["Port"]),
    }
    if "Manufacturer" in value:
        kwargs["manufacturer"] = _manufacturer(value["Manufacturer"])
    for key, attribute in _FLAGS.items():
        if key in value:
            kwargs[attribute] = _flag(value, key)
    if "AllowStorageCommitment" in value:
        # read last, as Orthanc does: it overrides AllowNAction and AllowEventReport
        flag = _flag(value, "AllowStorageCommitment")
        kwargs["allow_n_action"] = kwargs["allow_event_report"] = flag
    if "LocalAet" in value:
        kwargs["local_aet"] = _string(value, "LocalAet")
    if "RetrieveMethod" in value:
        kwargs["retrieve_method"] = parse_retrieve_method(value["RetrieveMethod"])
    if "Timeout" in value:
        timeout = value["Timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise BadFileFormat("Integer value expected in field: Timeout")
        if timeout < 0:
            raise BadFileFormat("Unsigned integer value expected in field: Timeout")
        kwargs["timeout"] = timeout
    return RemoteModality(**kwargs)


RETRIEVE_METHODS = ("C-MOVE", "C-GET", "SystemDefault")


def parse_retrieve_method(value: Any) -> str:
    """A modality's ``RetrieveMethod``: one of ``RETRIEVE_METHODS`` (case kept)."""
    if not isinstance(value, str):
        raise BadFileFormat("String value expected in field: RetrieveMethod")
    if value not in RETRIEVE_METHODS:
        raise ParameterOutOfRange(f"Unknown retrieve method: {value}")
    return value


def retrieve_method(requested: Any, modality: RemoteModality, config: Mapping[str, Any]) -> str:
    """C-MOVE or C-GET for ``/queries/.../retrieve``: the body's ``RetrieveMethod``, else
    the modality's own (unless "SystemDefault"), else ``DicomDefaultRetrieveMethod``."""
    value = requested
    if not value and modality.retrieve_method != "SystemDefault":
        value = modality.retrieve_method
    if not value:
        value = config.get("DicomDefaultRetrieveMethod")
    text = str(value or "C-MOVE").strip().upper()
    if text not in ("C-MOVE", "C-GET"):
        raise ParameterOutOfRange(f"Unknown retrieve method: {value}")
    return text


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise BadFileFormat(f"Boolean value expected in field: {key}")
    return value


def same_aet(a: str, b: str, strict: bool) -> bool:
    """Orthanc compares AETs case-insensitively unless ``StrictAetComparison``."""
    a, b = a.strip(), b.strip()
    return a == b if strict else a.upper() == b.upper()


class ModalityRegistry(NamedRegistry[RemoteModality]):
    """The known modalities, shared through the index by every process of the server."""

    def __init__(self, archive: Archive, config: Mapping[str, Any]) -> None:
        super().__init__(
            archive,
            config,
            "DicomModalities",
            RemoteModality,
            parse_modality,
            "Unknown DICOM modality with symbolic name",
        )
        self.strict_aet = bool(config.get("StrictAetComparison", False))
        self.check_host = bool(config.get("DicomCheckModalityHost", False))

    def get(self, name: str) -> RemoteModality:
        modality = self.find(name)
        if modality is None:
            raise InexistentItem(f"No modality with symbolic name: {name}")
        return modality

    def matching(self, aet: str, remote_ip: str | None) -> list[RemoteModality]:
        """The modalities a caller may be: same AET and, when checked, same host."""
        return [
            m
            for m in self.all().values()
            if same_aet(m.aet, aet, self.strict_aet)
            and (not self.check_host or remote_ip is None or m.host == remote_ip)
        ]


_IDENTIFIER = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{8}){4}$")


@dataclass(frozen=True)
class InstanceToSend:
    """What an SCU must negotiate for one stored instance, known before reading it."""

    public_id: str
    sop_class_uid: str
    transfer_syntax: str


def instances_to_send(archive: Archive, public_ids: list[str]) -> list[InstanceToSend]:
    """The instances under the given resources (any level), each once, checked first so
    that a bad or unknown identifier fails the request before any association opens."""
    for public_id in public_ids:
        if not _IDENTIFIER.match(public_id):
            raise BadFileFormat(f"This string is not a valid Orthanc identifier: {public_id}")
    found: list[InstanceToSend] = []
    seen: set[str] = set()
    with archive.read() as session:
        for public_id in public_ids:
            row = session.lookup(public_id)
            if row is None:
                raise UnknownResource()
            for instance in session.descendant_instances(row):
                if instance.public_id in seen:
                    continue
                seen.add(instance.public_id)
                metadata = session.metadata(instance.id)
                sop_class = metadata.get(int(MetadataType.SopClassUid), ("", 0))[0]
                syntax = metadata.get(int(MetadataType.TransferSyntax), ("", 0))[0]
                found.append(InstanceToSend(instance.public_id, sop_class, syntax))
    return found


def log_exports(archive: Archive, instance_ids: list[str], remote_aet: str) -> None:
    """Record the sent instances in ``/exports`` when ``LogExportedResources`` is on
    (one entry per instance, as an Orthanc store job records them)."""
    if not archive.settings.log_exported_resources or not instance_ids:
        return
    date = now_iso()

    def run(tx: Transaction) -> None:
        session = tx.session
        for public_id in instance_ids:
            row = session.lookup(public_id)
            if row is None:  # deleted meanwhile
                continue
            tags: dict[int, str] = {}
            current: Any = row
            while current is not None:
                tags.update(session.main_tags(current.id))
                current = session.get(current.parent_id) if current.parent_id else None
            session.log_export(
                ExportRow(
                    0,
                    int(Level.INSTANCE),
                    public_id,
                    remote_aet,
                    tags.get(0x00100020, ""),
                    tags.get(0x0020000D, ""),
                    tags.get(0x0020000E, ""),
                    tags.get(0x00080018, ""),
                    date,
                )
            )

    archive.write(run)
