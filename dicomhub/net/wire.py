"""The few DIMSE messages a retrieve sends by the hundred, as bytes on the wire.

pynetdicom builds every message through a pydicom ``Dataset`` (a primitive, then a
message, then ``encode``), fragments it into ``P_DATA`` primitives and hands each one
to its DUL thread: about a millisecond of Python per C-STORE sub-operation, far more
than the instance's own bytes cost. The messages of a C-MOVE / C-GET are always the
same few (a C-STORE-RQ, its C-STORE-RSP, a Pending C-MOVE-RSP or C-GET-RSP), so they
are written here directly: a command set is a run of elements in ascending tag order,
each ``tag, length, value`` in Implicit VR Little Endian (PS3.7 6.3.1, 9.3), after
a group length. The tests check these bytes against pynetdicom's own encoding.

Answers are read back with pydicom (``read_dataset``), never parsed here.
"""

from __future__ import annotations

import functools
import io
import struct
from collections.abc import Iterable

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import data_element_generator, read_dataset

#: Command Field values (PS3.7 E.1).
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_GET_RSP = 0x8010
C_MOVE_RSP = 0x8021
#: Command Data Set Type: a data set follows / none follows.
DATASET_PRESENT = 0x0001
NO_DATASET = 0x0101

#: A command element's header (group, element, length: Implicit VR Little Endian),
#: its US and UL values, and the headers of a PDU and of a PDV item (PS3.8 9.3.1,
#: 9.3.5): the framing every module writing or reading DIMSE bytes shares.
ELEMENT = struct.Struct("<HHI")
US = struct.Struct("<H")
UL = struct.Struct("<I")
PDU_HEADER = struct.Struct(">BBL")
PDV_HEADER = struct.Struct(">LBB")
_ELEMENT, _US, _UL, _PDU_HEADER, _PDV_HEADER = ELEMENT, US, UL, PDU_HEADER, PDV_HEADER
#: The smallest P-DATA-TF PDU a C-STORE-RSP can be: PDU and PDV headers, then the group
#: length and the four mandatory US elements (Command Field, Message ID Being
#: Responded To, Command Data Set Type, Status; the UIDs are optional, PS3.7 9.3.1.2).
SMALLEST_STORE_RSP = 6 + 6 + (8 + 4) + 4 * (8 + 2)
#: P-DATA-TF PDU type, and the Message Control Header bits of a PDV (PS3.8 E.2).
P_DATA_TF = 0x04
_COMMAND = 0x01
_LAST = 0x02


def command_element(element: int, value: bytes) -> bytes:
    """One command element (group 0000) in Implicit VR Little Endian."""
    return ELEMENT.pack(0x0000, element, len(value)) + value


_element = command_element


def _us(element: int, value: int) -> bytes:
    return _element(element, _US.pack(value))


def _uid(element: int, value: str) -> bytes:
    raw = value.encode("ascii")
    return _element(element, raw + b"\0" if len(raw) % 2 else raw)


def _ae(element: int, value: str) -> bytes:
    raw = value.encode("ascii")
    return _element(element, raw + b" " if len(raw) % 2 else raw)


def _command(elements: Iterable[bytes]) -> bytes:
    body = b"".join(elements)
    return _element(0x0000, _UL.pack(len(body))) + body


@functools.lru_cache(maxsize=256)
def _store_rq_parts(
    sop_class_uid: str, priority: int, originator_aet: str | None, originator_id: int | None
) -> tuple[bytes, bytes, bytes]:
    """The parts of a C-STORE-RQ that the instances of a C-MOVE share: its elements
    up to the Message ID's value, from there to the SOP Instance UID, and after it."""
    head = _uid(0x0002, sop_class_uid) + _us(0x0100, C_STORE_RQ) + _ELEMENT.pack(0, 0x0110, 2)
    middle = _us(0x0700, priority) + _us(0x0800, DATASET_PRESENT)
    tail = b""
    if originator_aet:
        tail += _ae(0x1030, originator_aet)
    if originator_id is not None:
        tail += _us(0x1031, originator_id)
    return head, middle, tail


def c_store_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    priority: int = 2,
    originator_aet: str | None = None,
    originator_id: int | None = None,
) -> bytes:
    """The command set of a C-STORE-RQ (PS3.7 9.3.1.1) whose data set follows."""
    head, middle, tail = _store_rq_parts(sop_class_uid, priority, originator_aet, originator_id)
    body = b"".join((head, _US.pack(message_id), middle, _uid(0x1000, sop_instance_uid), tail))
    return _element(0x0000, _UL.pack(len(body))) + body


@functools.lru_cache(maxsize=256)
def _store_rsp_parts(sop_class_uid: str) -> tuple[bytes, bytes]:
    """The constant parts of the usual C-STORE-RSP for a SOP class: its elements up to
    the Message ID Being Responded To's value, and from there to the Status value."""
    head = _uid(0x0002, sop_class_uid) + _us(0x0100, C_STORE_RSP) + _ELEMENT.pack(0, 0x0120, 2)
    middle = _us(0x0800, NO_DATASET) + _ELEMENT.pack(0, 0x0900, 2)
    return head, middle


def plain_store_status(
    command: bytes, message_id: int, sop_class_uid: str, sop_instance_uid: str
) -> int | None:
    """The Status of ``command`` when it is the C-STORE-RSP (PS3.7 9.3.1.2) that a
    peer usually answers to ``message_id``: exactly the elements and values expected,
    only the status to be read. None for any other command (then read it with pydicom:
    another element, another order or an Error Comment are all allowed)."""
    head, middle = _store_rsp_parts(sop_class_uid)
    tail = _uid(0x1000, sop_instance_uid)
    at = 12 + len(head)  # after the group length element and the head
    status_at = at + 2 + len(middle)
    expected_length = status_at + 2 + len(tail)
    if (
        len(command) != expected_length
        or command[:12] != _element(0x0000, _UL.pack(expected_length - 12))
        or command[12:at] != head
        or _US.unpack_from(command, at)[0] != message_id
        or command[at + 2 : status_at] != middle
        or command[status_at + 2 :] != tail
    ):
        return None
    return int(_US.unpack_from(command, status_at)[0])


def retrieve_pending_rsp(
    command_field: int,
    message_id: int,
    sop_class_uid: str | None,
    status: int,
    remaining: int,
    completed: int,
    failed: int,
    warning: int,
) -> bytes:
    """The command set of a C-MOVE-RSP or C-GET-RSP without identifier (PS3.7 9.3.4.2,
    9.3.3.2): a Pending one with the sub-operation counts."""
    elements = []
    if sop_class_uid:
        elements.append(_uid(0x0002, sop_class_uid))
    elements += [
        _us(0x0100, command_field),
        _us(0x0120, message_id),
        _us(0x0800, NO_DATASET),
        _us(0x0900, status),
        _us(0x1020, remaining),
        _us(0x1021, completed),
        _us(0x1022, failed),
        _us(0x1023, warning),
    ]
    return _command(elements)


#: The four sub-operation counts of a retrieve response (PS3.7 9.3.3.2, 9.3.4.2):
#: Number of Remaining, Completed, Failed and Warning Sub-operations, each a US.
_COUNTS = struct.Struct("<" + "HHIH" * 4)
_COUNT_ELEMENTS = (0x1020, 0x1021, 0x1022, 0x1023)


class PendingResponses:
    """The Pending C-MOVE-RSPs or C-GET-RSPs of one request, as whole P-DATA-TF PDUs.

    They differ only in their four counts, which have a fixed length: the bytes
    before them (PDU and PDV headers, group length, the other elements) are written
    once, and each response is those bytes plus the counts, as ``p_data`` of
    ``retrieve_pending_rsp`` would write it."""

    def __init__(
        self,
        command_field: int,
        message_id: int,
        sop_class_uid: str | None,
        context_id: int,
        max_pdu: int,
    ) -> None:
        self._shape = (command_field, message_id, sop_class_uid, context_id, max_pdu)
        command = retrieve_pending_rsp(command_field, message_id, sop_class_uid, 0xFF00, 0, 0, 0, 0)
        pdu = p_data(context_id, command, None, max_pdu)
        # one PDU (the usual case): everything but the counts is the same every time
        self._head = pdu[: -_COUNTS.size] if len(pdu) == len(command) + 12 else None

    def encode(self, remaining: int, completed: int, failed: int, warning: int) -> bytes:
        """The PDUs of the Pending response with these counts."""
        if self._head is None:  # a peer with a tiny maximum PDU: fragments
            command_field, message_id, sop_class_uid, context_id, max_pdu = self._shape
            command = retrieve_pending_rsp(
                command_field,
                message_id,
                sop_class_uid,
                0xFF00,
                remaining,
                completed,
                failed,
                warning,
            )
            return p_data(context_id, command, None, max_pdu)
        a, b, c, d = _COUNT_ELEMENTS
        return self._head + _COUNTS.pack(
            0, a, 2, remaining, 0, b, 2, completed, 0, c, 2, failed, 0, d, 2, warning
        )


def p_data(context_id: int, command: bytes, dataset: bytes | None, max_pdu: int) -> bytes:
    """``command`` then ``dataset`` as P-DATA-TF PDUs of one PDV each, every PDU within
    the peer's maximum length (0: unlimited), as pynetdicom fragments them."""
    out = bytearray()
    for payload, control in ((command, _COMMAND), (dataset, 0)):
        if not payload:
            continue
        size = len(payload)
        step = max_pdu - 6 if max_pdu > 6 else max(size, 1)
        view = memoryview(payload)
        start = 0
        while True:
            chunk = view[start : start + step]
            start += step
            last = start >= size
            flags = control | (_LAST if last else 0)
            out += _PDU_HEADER.pack(P_DATA_TF, 0, len(chunk) + 6)
            out += _PDV_HEADER.pack(len(chunk) + 2, context_id, flags)
            out += chunk
            if last:
                break
    return bytes(out)


def single_command(pdu: bytes) -> tuple[int, bytes] | None:
    """(context ID, command set) when ``pdu`` is one whole P-DATA-TF PDU holding
    exactly one PDV that is a complete command; None for anything else."""
    if len(pdu) < 12:
        return None
    kind, _, length = _PDU_HEADER.unpack_from(pdu)
    item_length, context_id, flags = _PDV_HEADER.unpack_from(pdu, 6)
    if kind != P_DATA_TF or length != len(pdu) - 6 or item_length != length - 4:
        return None
    if flags != _COMMAND | _LAST:
        return None
    return context_id, pdu[12:]


def read_command(command: bytes) -> Dataset:
    """A command set (Implicit VR Little Endian) read by pydicom."""
    return read_dataset(io.BytesIO(command), is_implicit_VR=True, is_little_endian=True)


def command_values(command: bytes) -> dict[int, RawDataElement]:
    """The elements of a command set as pydicom's element reader delimits them, not yet
    converted: cheaper than a ``Dataset`` when a few US values are all we need."""
    elements = data_element_generator(
        io.BytesIO(command), is_implicit_VR=True, is_little_endian=True
    )
    return {element.tag: element for element in elements}


def us(element: RawDataElement | None) -> int | None:
    """The US value of a ``command_values`` element (None when absent or malformed)."""
    raw = element.value if element is not None else None
    return _US.unpack(raw)[0] if raw is not None and len(raw) == 2 else None


__all__ = [
    "C_GET_RSP",
    "C_MOVE_RSP",
    "C_STORE_RSP",
    "NO_DATASET",
    "PendingResponses",
    "SMALLEST_STORE_RSP",
    "c_store_rq",
    "command_values",
    "p_data",
    "plain_store_status",
    "read_command",
    "retrieve_pending_rsp",
    "single_command",
    "us",
]
