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
Only associations of our listener take the short path (``attach``). pynetdicom's
Storage SCP serves every other one unchanged (a C-GET's C-STOREs, received by our SCU),
and ours too whenever something listens to the DIMSE messages or PDUs sent (pynetdicom's
logging) or a response would not fit in the peer's maximum PDU.

Shorter still, the usual C-STORE-RQ never reaches pynetdicom's DIMSE layer: the
reader (DUL) thread hands each whole command it reads to ``_Lane.command``, which
reads it from its bytes (``read_store_command``, about 5 us instead of a pydicom data
set and a validated primitive), and, when the association's own thread is idle and
nobody watches the messages, keeps the data-set fragments and stores and answers the
instance from the reader thread: no queue, no thread hop, one copy of the data set.
Anything else, or anything unusual in the command, goes the way above, where a plain
command is still read from its raw elements (``_store_request``). Outside ingest, a
small instance's C-STORE now costs the server about 0.1 ms of CPU (0.27 ms before the
lane, about 1 ms before this module). The tests compare all these bytes and readings
with pynetdicom's own.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import pynetdicom._config
from pydicom.dataelem import RawDataElement
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import uid_to_service_class

from . import wire

log = logging.getLogger("dicomhub.scp")

#: What our listener does with one C-STORE: (association, the received instance as a
#: DICOM file) -> the response status, or None when the association was aborted (no
#: response); or the status and what to do once the response is sent (the stored
#: file's last move, which the peer need not wait for).
AfterResponse = Callable[[], None]
StoreHandler = Callable[[Any, bytes], "int | None | tuple[int, AfterResponse]"]

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
    """Serve this association's C-STOREs with ``handler`` instead of ``EVT_C_STORE``;
    in its reader thread when it has one that takes commands (``_Lane``)."""
    setattr(assoc, _HANDLER_ATTRIBUTE, handler)
    dul = getattr(assoc, "dul", None)
    if dul is not None and hasattr(dul, "direct_command"):
        dul.direct_command = _Lane(assoc, handler).command


def _respond(
    assoc: Any,
    context_id: int,
    message_id: Any,
    sop_class_uid: Any,
    sop_instance_uid: Any,
    status: int,
) -> None:
    """Send the C-STORE-RSP: written as bytes and sent from this thread when possible,
    pynetdicom's way when someone listens to what is sent or it needs fragments."""
    dimse = assoc.dimse
    command: bytes | None = None
    if not assoc.get_handlers(evt.EVT_DIMSE_SENT):
        try:
            command = store_response(
                int(message_id), str(sop_class_uid), str(sop_instance_uid), status
            )
        except (UnicodeEncodeError, struct.error):
            command = None  # a UID pydicom encodes otherwise: let it
    # the peer's maximum PDU length (0: unlimited), cached by our DIMSE provider
    max_pdu = getattr(dimse, "peer_max_pdu", None)
    if max_pdu is None:
        max_pdu = dimse.maximum_pdu_size
    if command is None or (max_pdu and len(command) + 6 > max_pdu):
        response = C_STORE()
        response.MessageID = message_id
        response.MessageIDBeingRespondedTo = message_id
        response.AffectedSOPInstanceUID = sop_instance_uid
        response.AffectedSOPClassUID = sop_class_uid
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


def _call_handler(
    assoc: Any, handler: StoreHandler, data: bytes
) -> tuple[int | None, AfterResponse | None]:
    """``handler``'s status (``STATUS_HANDLER_FAILED`` when it raises) and what to
    do after the response, if anything."""
    # A handler runs in a thread of the association: an abort from it must not wait
    # for that thread to stop (pynetdicom's SCP does the same around its handlers).
    assoc.abort = assoc._abort_nonblocking
    try:
        outcome = handler(assoc, data)
        return outcome if isinstance(outcome, tuple) else (outcome, None)
    except Exception:
        log.exception("C-STORE handler failed")
        return STATUS_HANDLER_FAILED, None
    finally:
        # back to the class's own abort (pynetdicom sets ``_abort_blocking`` here, which
        # would hide an override in a subclass of Association)
        vars(assoc).pop("abort", None)


_pynetdicom_scp = StorageServiceClass.SCP


def _storage_scp(self: StorageServiceClass, req: C_STORE, context: PresentationContext) -> None:
    """``StorageServiceClass.SCP`` for every association: ours take the short path."""
    handler: StoreHandler | None = getattr(self.assoc, _HANDLER_ATTRIBUTE, None)
    if handler is None or req._dataset_file is not None:
        _pynetdicom_scp(self, req, context)
        return
    assoc = self.assoc
    data = data_set_file(req, str(context.transfer_syntax[0]))
    status, after = _call_handler(assoc, handler, data)
    try:
        if status is None or not assoc.is_established:
            return
        _respond(
            assoc,
            int(context.context_id),  # type: ignore[arg-type]
            req.MessageID,
            req.AffectedSOPClassUID,
            req.AffectedSOPInstanceUID,
            status,
        )
    finally:
        _run_after(after)


def _run_after(after: AfterResponse | None) -> None:
    if after is None:
        return
    try:
        after()
    except Exception:
        log.exception("C-STORE: finishing a stored instance failed")


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


# ---- the reader thread's lane ---------------------------------------------------------
#: A UID as pynetdicom takes it without a word: 1 to 64 characters, conformant (PS3.5
#: 9.1). Anything else (pynetdicom may warn, or refuse) goes its way.
_CONFORMANT_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
#: A Move Originator AE title that pydicom and pynetdicom read without a remark.
_PLAIN_AE = re.compile(rb"[\x20-\x5b\x5d-\x7e]{1,16}")
#: Command elements a C-STORE-RQ may have (PS3.7 9.3.1.1), and the required ones.
_STORE_RQ_ELEMENTS = frozenset(
    (0x0000, 0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000, 0x1030, 0x1031)
)
_STORE_RQ_REQUIRED = frozenset((0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000))
_ELEMENT = wire.ELEMENT
_US = wire.US


class StoreCommand(NamedTuple):
    """What a C-STORE-RQ's command set says that answering and storing it needs."""

    message_id: int
    priority: int
    sop_class_uid: str
    sop_instance_uid: str


def _uid(value: bytes) -> str | None:
    text = value.rstrip(b"\0 ").decode("ascii", "replace")
    if len(text) > 64 or not _CONFORMANT_UID.fullmatch(text):
        return None
    return text


def read_store_command(command: bytes | memoryview) -> StoreCommand | None:
    """A C-STORE-RQ command set with a data set following, read from its bytes
    (Implicit VR Little Endian, PS3.7 6.3.1), or None for anything else and anything
    unusual: an element another message would have, a tag out of order or repeated,
    a value of unexpected length, a non-conformant UID, a Move Originator AE title
    that is not plain ASCII. None is not a judgement: pynetdicom then reads the
    command as usual (a pydicom data set, then a primitive, about 0.1 ms)."""
    values: dict[int, bytes] = {}
    end = len(command)
    offset = 0
    last = -1
    while offset < end:
        if end - offset < 8:
            return None
        group, element, length = _ELEMENT.unpack_from(command, offset)
        offset += 8
        if group or element <= last or length > end - offset:
            return None
        values[element] = bytes(command[offset : offset + length])
        offset += length
        last = element
    if not _STORE_RQ_REQUIRED <= values.keys() <= _STORE_RQ_ELEMENTS:
        return None
    shorts = {}
    for element in (0x0100, 0x0110, 0x0700, 0x0800, 0x1031):
        value = values.get(element)
        if value is not None:
            if len(value) != 2:
                return None
            shorts[element] = _US.unpack(value)[0]
    if shorts[0x0100] != wire.C_STORE_RQ or shorts[0x0800] == wire.NO_DATASET:
        return None
    if 0x0000 in values and len(values[0x0000]) != 4:
        return None
    originator = values.get(0x1030)
    if originator is not None and not _PLAIN_AE.fullmatch(originator.rstrip(b" ")):
        return None
    sop_class = _uid(values[0x0002])
    sop_instance = _uid(values[0x1000])
    if sop_class is None or sop_instance is None:
        return None
    return StoreCommand(shorts[0x0110], shorts[0x0700], sop_class, sop_instance)


#: Events whose handlers see the DIMSE messages received or sent, or the PDUs sent:
#: with any bound, pynetdicom serves the C-STORE.
_WATCHED_EVENTS = (evt.EVT_DIMSE_RECV, evt.EVT_DIMSE_SENT, evt.EVT_PDU_SENT)


class _Lane:
    """A listener association's C-STOREs served in its reader (DUL) thread.

    pynetdicom hands a message from the reader thread to the association's thread
    through a queue: the command set decoded by pydicom into a ``Dataset``, then a
    primitive whose setters validate every value again, the data set copied into a
    ``BytesIO``, a wake-up of the other thread, its service class lookup, and a copy
    more to make the file. The reader thread gives ``command`` each whole command it
    reads; when it is a plain C-STORE-RQ that nobody but us watches and the
    association's thread is idle (so that the answers keep their order), the reader
    keeps the data-set fragments as they come and calls the returned function with
    them at the last one: the file is made in one copy, stored, and answered from
    that thread. The peer sends nothing else meanwhile (one operation at a time).
    Anything else is left to pynetdicom, which then gets the command and fragments
    the reader held back (``EventDrivenDUL._flush_fragments``).
    """

    __slots__ = ("_assoc", "_handler", "_stored_classes")

    def __init__(self, assoc: Any, handler: StoreHandler) -> None:
        self._assoc = assoc
        self._handler = handler
        self._stored_classes: dict[str, bool] = {}

    def _open(self) -> bool:
        assoc = self._assoc
        dimse = assoc.dimse
        return bool(
            assoc.is_established
            and not assoc._sent_release
            and getattr(assoc, "_is_paused", False)
            and getattr(assoc, "_serving_thread", None) is None
            and dimse.message is None
            and not dimse.msg_queue.qsize()
            and getattr(assoc, _HANDLER_ATTRIBUTE, None) is self._handler
            and not any(assoc.get_handlers(event) for event in _WATCHED_EVENTS)
        )

    def _stored_by_us(self, sop_class: str) -> bool:
        """Whether pynetdicom would serve ``sop_class`` with ``_storage_scp`` (its
        ``Association._serve_request``'s choice of service class)."""
        known = self._stored_classes.get(sop_class)
        if known is None:
            class_uid = sop_class
            with contextlib.suppress(KeyError):
                class_uid = self._assoc.acceptor.accepted_common_extended[class_uid][0]
            if pynetdicom._config.UNRESTRICTED_STORAGE_SERVICE:
                class_uid = "1.2.840.10008.5.1.4.1.1.1"
            known = uid_to_service_class(class_uid).SCP is _storage_scp
            self._stored_classes[sop_class] = known
        return known

    def command(
        self, context_id: int, command: memoryview
    ) -> Callable[[list[list[Any]]], None] | None:
        """The function that serves the C-STORE-RQ ``command`` from its data-set
        fragments, or None: pynetdicom's way."""
        if not self._open():
            return None
        request = read_store_command(command)
        if request is None:
            return None
        context = self._assoc._accepted_cx.get(context_id)
        if context is None or not self._stored_by_us(request.sop_class_uid):
            return None
        syntax = str(context.transfer_syntax[0])

        def serve(fragments: list[list[Any]]) -> None:
            self._serve(request, context_id, syntax, fragments)

        return serve

    def _serve(
        self, request: StoreCommand, context_id: int, syntax: str, fragments: list[list[Any]]
    ) -> None:
        """Store the instance (PDVs with their control byte first) and answer."""
        header = file_header(request.sop_class_uid, request.sop_instance_uid, syntax)
        data = b"".join([header, *(pdv[1:] for _, pdv in fragments)])
        assoc = self._assoc
        status, after = _call_handler(assoc, self._handler, data)
        try:
            if status is None or not assoc.is_established:
                return
            _respond(
                assoc,
                context_id,
                request.message_id,
                request.sop_class_uid,
                request.sop_instance_uid,
                status,
            )
        finally:
            _run_after(after)
