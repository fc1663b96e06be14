"""The listener's C-STORE short path: from the reassembled data set to ``core.ingest``
and back to the C-STORE-RSP, with nothing decoded or re-encoded by pydicom on the way.

pynetdicom's Storage SCP builds a response primitive (every UID checked against a
regular expression), triggers ``EVT_C_STORE`` with a fresh ``Event``, and the handler
then asks for the file: a pydicom ``FileMetaDataset`` built element by element and
written by pydicom's writer, in front of a copy of the data set. The response is
turned into a command-set ``Dataset``, encoded by pydicom and handed to the DUL thread.
Before that, reading the request had converted every command element through pydicom.
Outside ingest, that was about 1 ms of a small instance's C-STORE.

Here the file is the File Meta Information, encoded with ``struct`` (the bytes pydicom
writes for pynetdicom's ``create_file_meta``), joined to the data set bytes in one copy.
The response's command set is encoded the same way (the bytes pynetdicom sends) and
written by the association's own thread when the reactor offers it (``send_direct``).
A plain C-STORE-RQ is read from its raw command elements (``_store_request``).
Only associations of our listener take the short path (``attach``). pynetdicom's
Storage SCP serves every other one unchanged (a C-GET's C-STOREs, received by our SCU),
and ours too whenever something listens to the DIMSE messages or PDUs sent (pynetdicom's
logging) or a response would not fit in the peer's maximum PDU. The tests compare all
these bytes and primitives with pynetdicom's own.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from pydicom.dataelem import RawDataElement
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import StorageServiceClass

from . import wire

log = logging.getLogger("dicomhub.scp")

#: What our listener does with one C-STORE: (association, request, transfer syntax)
#: -> the response status, or None when the association was aborted (no response).
StoreHandler = Callable[[Any, C_STORE, str], "int | None"]

#: The association attribute that holds our handler (absent: pynetdicom's SCP).
_HANDLER_ATTRIBUTE = "_dicomhub_store_handler"

#: The status pynetdicom answers when a C-STORE handler raises (its ``attempt``).
STATUS_HANDLER_FAILED = 0xC211

_PREAMBLE = b"\0" * 128 + b"DICM"
_PDU_HEADER, _PDV_HEADER = wire.PDU_HEADER, wire.PDV_HEADER
_C_STORE_RSP = 0x8001
_NO_DATA_SET = 0x0101


def _uid_value(uid: str) -> bytes:
    """A UI value as pydicom writes it: ASCII, padded with NUL to an even length."""
    data = uid.encode("ascii")
    return data + b"\0" if len(data) % 2 else data


def _explicit(element: int, vr: bytes, value: bytes) -> bytes:
    """A group 0002 element, Explicit VR Little Endian with a 16-bit length."""
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


_META_VERSION = struct.pack("<HH2sHL", 0x0002, 0x0001, b"OB", 0, 2) + b"\0\1"
_META_IMPLEMENTATION = _explicit(
    0x0012, b"UI", _uid_value(str(PYNETDICOM_IMPLEMENTATION_UID))
) + _explicit(
    0x0013,
    b"SH",
    PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")
    + b" " * (len(PYNETDICOM_IMPLEMENTATION_VERSION) % 2),
)


def file_header(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information that pynetdicom's
    ``encode_file_meta(create_file_meta(...))`` writes for a received data set: the same
    bytes, without building and writing a pydicom dataset for each instance."""
    group = b"".join(
        (
            _META_VERSION,
            _explicit(0x0002, b"UI", _uid_value(sop_class_uid)),
            _explicit(0x0003, b"UI", _uid_value(sop_instance_uid)),
            _explicit(0x0010, b"UI", _uid_value(transfer_syntax)),
            _META_IMPLEMENTATION,
        )
    )
    length = struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, len(group))
    return _PREAMBLE + length + group


_implicit = wire.command_element


def store_response(
    message_id: int, sop_class_uid: str, sop_instance_uid: str, status: int
) -> bytes:
    """The C-STORE-RSP command set, as pynetdicom encodes the response primitive its
    Storage SCP sends (PS3.7 9.3.1.2): group length, Affected SOP Class UID, Command
    Field, Message ID Being Responded To, Command Data Set Type, Status, Affected SOP
    Instance UID."""
    body = b"".join(
        (
            _implicit(0x0002, _uid_value(sop_class_uid)),
            _implicit(0x0100, struct.pack("<H", _C_STORE_RSP)),
            _implicit(0x0120, struct.pack("<H", message_id)),
            _implicit(0x0800, struct.pack("<H", _NO_DATA_SET)),
            _implicit(0x0900, struct.pack("<H", status)),
            _implicit(0x1000, _uid_value(sop_instance_uid)),
        )
    )
    return _implicit(0x0000, struct.pack("<L", len(body))) + body


def attach(assoc: Any, handler: StoreHandler) -> None:
    """Serve this association's C-STOREs with ``handler`` instead of ``EVT_C_STORE``."""
    setattr(assoc, _HANDLER_ATTRIBUTE, handler)


def _send_response(
    service: StorageServiceClass, request: C_STORE, context_id: int, status: int
) -> None:
    assoc = service.assoc
    dimse = service.dimse
    command: bytes | None = None
    if not assoc.get_handlers(evt.EVT_DIMSE_SENT):
        try:
            command = store_response(
                int(request.MessageID),  # type: ignore[arg-type]
                str(request.AffectedSOPClassUID),
                str(request.AffectedSOPInstanceUID),
                status,
            )
        except (UnicodeEncodeError, struct.error):
            command = None  # a UID pydicom encodes otherwise: let it
    max_pdu = dimse.maximum_pdu_size
    if command is None or (max_pdu and len(command) + 6 > max_pdu):
        response = C_STORE()
        response.MessageID = request.MessageID
        response.MessageIDBeingRespondedTo = request.MessageID
        response.AffectedSOPInstanceUID = request.AffectedSOPInstanceUID
        response.AffectedSOPClassUID = request.AffectedSOPClassUID
        response.Status = status
        dimse.send_msg(response, context_id)
        return
    dul = dimse.dul
    send_direct = getattr(dul, "send_direct", None)
    if send_direct is not None and not assoc.get_handlers(evt.EVT_PDU_SENT):
        # one PDU holding one PDV, the last and only fragment of the command (PS3.8 9.3.5)
        pdu = _PDU_HEADER.pack(0x04, 0, len(command) + 6) + _PDV_HEADER.pack(
            len(command) + 2, context_id, 0x03
        )
        if send_direct(pdu + command):
            return
    data = P_DATA()
    data.presentation_data_value_list.append((context_id, b"\x03" + command))
    dul.send_pdu(data)


_pynetdicom_scp = StorageServiceClass.SCP


def _storage_scp(self: StorageServiceClass, req: C_STORE, context: PresentationContext) -> None:
    """``StorageServiceClass.SCP`` for every association: ours take the short path."""
    handler: StoreHandler | None = getattr(self.assoc, _HANDLER_ATTRIBUTE, None)
    if handler is None or req._dataset_file is not None:
        _pynetdicom_scp(self, req, context)
        return
    assoc = self.assoc
    context_id = int(context.context_id)  # type: ignore[arg-type]
    # A handler runs in the association's own thread: an abort from it must not wait
    # for that thread to stop (pynetdicom's SCP does the same around its handlers).
    assoc.abort = assoc._abort_nonblocking
    try:
        status = handler(assoc, req, str(context.transfer_syntax[0]))
    except Exception:
        log.exception("C-STORE handler failed")
        status = STATUS_HANDLER_FAILED
    finally:
        # back to the class's own abort (pynetdicom sets ``_abort_blocking`` here, which
        # would hide an override in a subclass of Association)
        vars(assoc).pop("abort", None)
    if status is None or not assoc.is_established:
        return
    _send_response(self, req, context_id, status)


#: The command elements of a plain C-STORE-RQ (PS3.7 9.3.1.1) without the Move
#: Originator ones: group length, SOP class, command field, message ID, priority, data
#: set type, SOP instance.
_PLAIN_REQUEST_TAGS = frozenset(
    (0x00000000, 0x00000002, 0x00000100, 0x00000110, 0x00000700, 0x00000800, 0x00001000)
)


class _Unusual(Exception):
    """A command value that pynetdicom's own conversion should judge."""


def _us(element: Any) -> int:
    if type(element) is not RawDataElement or element.value is None or len(element.value) != 2:
        raise _Unusual
    return int(struct.unpack("<H", element.value)[0])


def _ui(element: Any) -> str:
    """A UI value as pydicom reads it (without its trailing NUL or space padding)."""
    if type(element) is not RawDataElement or not element.value:
        raise _Unusual
    value = element.value.decode("latin-1").rstrip("\0 ")
    if "\\" in value:  # several values: pynetdicom takes the first one and warns
        raise _Unusual
    return value


_pynetdicom_to_primitive = C_STORE_RQ.message_to_primitive


def _store_request(self: C_STORE_RQ) -> C_STORE:
    """``message_to_primitive`` of a C-STORE-RQ: the same primitive, from the command
    elements as read (pynetdicom converts every element of the command set through
    pydicom, about 0.1 ms per message, then validates the values again when it sets
    them). The primitive's own setters still check every value; a command with any
    other element (a Move Originator, something unexpected) or an unusual value goes
    pynetdicom's way."""
    elements = self.command_set._dict  # noqa: SLF001 - the raw elements, unconverted
    if not elements.keys() <= _PLAIN_REQUEST_TAGS:
        return _pynetdicom_to_primitive(self)
    try:
        message_id = _us(elements.get(0x00000110))
        priority = _us(elements.get(0x00000700))
        sop_class = _ui(elements.get(0x00000002))
        sop_instance = _ui(elements.get(0x00001000))
    except _Unusual:
        return _pynetdicom_to_primitive(self)
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = sop_class
    primitive.AffectedSOPInstanceUID = sop_instance
    primitive.Priority = priority
    primitive.DataSet = self.data_set
    primitive._context_id = self.context_id
    primitive._dataset_path = self._data_set_path
    primitive._dataset_file = self._data_set_file
    return primitive


def install() -> None:
    """Route pynetdicom's Storage SCP through ``_storage_scp`` and read C-STORE-RQ
    commands with ``_store_request``. Idempotent."""
    StorageServiceClass.SCP = _storage_scp  # type: ignore[method-assign]
    C_STORE_RQ.message_to_primitive = _store_request  # type: ignore[method-assign]


def data_set_file(request: C_STORE, transfer_syntax: str) -> bytes:
    """The received instance as a DICOM file: our header and the data set bytes as
    they came, joined in one copy."""
    stream = request.DataSet
    with stream.getbuffer() as view:  # type: ignore[union-attr]
        return b"".join(
            (
                file_header(
                    str(request.AffectedSOPClassUID),
                    str(request.AffectedSOPInstanceUID),
                    transfer_syntax,
                ),
                view,
            )
        )
