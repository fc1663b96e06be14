"""``dicomhub.net.wire`` writes, byte for byte, what pynetdicom writes for the same
messages (C-STORE-RQ, Pending C-MOVE-RSP and C-GET-RSP, their P-DATA-TF PDUs), and
recognizes a C-STORE-RSP as pynetdicom encodes it."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import C_GET_RSP, C_MOVE_RSP, C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_GET, C_MOVE, C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF

from dicomhub.net import wire

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


def _pynetdicom_pdus(message: object, primitive: object, context_id: int, max_pdu: int) -> bytes:
    message.primitive_to_message(primitive)  # type: ignore[attr-defined]
    out = b""
    for p_data in message.encode_msg(context_id, max_pdu):  # type: ignore[attr-defined]
        pdu = P_DATA_TF()
        pdu.from_primitive(p_data)
        out += pdu.encode()
    return out


@pytest.mark.parametrize("max_pdu", [16384, 0, 1000, 70])
@pytest.mark.parametrize(
    ("instance", "originator_aet", "originator_id"),
    [
        ("1.2.3.4.5", "DICOMHUB", 7),  # odd UID, even AE title
        ("1.2.3.44", "ODD", None),  # even UID, odd AE title
        ("1.2.826.0.1.3680043.8.498.1", None, None),
    ],
)
def test_c_store_rq_as_pynetdicom_sends_it(
    instance: str, originator_aet: str | None, originator_id: int | None, max_pdu: int
) -> None:
    payload = bytes(range(256)) * 40 + b"\x01"  # odd length, several PDUs when small
    primitive = C_STORE()
    primitive.MessageID = 12
    primitive.Priority = 2
    primitive.AffectedSOPClassUID = CT
    primitive.AffectedSOPInstanceUID = instance
    primitive.MoveOriginatorApplicationEntityTitle = originator_aet
    primitive.MoveOriginatorMessageID = originator_id
    primitive.DataSet = io.BytesIO(payload)
    expected = _pynetdicom_pdus(C_STORE_RQ(), primitive, 3, max_pdu)
    command = wire.c_store_rq(12, CT, instance, 2, originator_aet, originator_id)
    assert wire.p_data(3, command, payload, max_pdu) == expected


@pytest.mark.parametrize(
    ("primitive_class", "message_class", "command_field"),
    [(C_MOVE, C_MOVE_RSP, wire.C_MOVE_RSP), (C_GET, C_GET_RSP, wire.C_GET_RSP)],
)
def test_pending_retrieve_responses_as_pynetdicom_sends_them(
    primitive_class: type, message_class: type, command_field: int
) -> None:
    primitive = primitive_class()
    primitive.MessageIDBeingRespondedTo = 5
    primitive.AffectedSOPClassUID = STUDY_ROOT_MOVE
    primitive.Status = 0xFF00
    primitive.NumberOfRemainingSuboperations = 499
    primitive.NumberOfCompletedSuboperations = 1
    primitive.NumberOfFailedSuboperations = 2
    primitive.NumberOfWarningSuboperations = 3
    expected = _pynetdicom_pdus(message_class(), primitive, 1, 16384)
    command = wire.retrieve_pending_rsp(command_field, 5, STUDY_ROOT_MOVE, 0xFF00, 499, 1, 2, 3)
    assert wire.p_data(1, command, None, 16384) == expected


@pytest.mark.parametrize("max_pdu", [16384, 0, 60])
@pytest.mark.parametrize("sop_class", [STUDY_ROOT_MOVE, None])
@pytest.mark.parametrize(
    ("primitive_class", "message_class", "command_field"),
    [(C_MOVE, C_MOVE_RSP, wire.C_MOVE_RSP), (C_GET, C_GET_RSP, wire.C_GET_RSP)],
)
def test_pending_responses_of_one_request_as_pynetdicom_sends_them(
    primitive_class: type,
    message_class: type,
    command_field: int,
    sop_class: str | None,
    max_pdu: int,
) -> None:
    """``PendingResponses`` writes each response once its counts are known: the same
    PDUs as pynetdicom, also when a tiny maximum PDU length cuts the command."""
    pending = wire.PendingResponses(command_field, 65535, sop_class, 7, max_pdu)
    for counts in ((499, 1, 0, 0), (0, 65535, 2, 3), (250, 125, 100, 25)):
        primitive = primitive_class()
        primitive.MessageIDBeingRespondedTo = 65535
        primitive.AffectedSOPClassUID = sop_class
        primitive.Status = 0xFF00
        (
            primitive.NumberOfRemainingSuboperations,
            primitive.NumberOfCompletedSuboperations,
            primitive.NumberOfFailedSuboperations,
            primitive.NumberOfWarningSuboperations,
        ) = counts
        expected = _pynetdicom_pdus(message_class(), primitive, 7, max_pdu)
        assert pending.encode(*counts) == expected


def _store_rsp(status: int, message_id: int = 9, comment: str | None = None) -> bytes:
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = message_id
    primitive.AffectedSOPClassUID = CT
    primitive.AffectedSOPInstanceUID = "1.2.3.4.5"
    primitive.Status = status
    if comment:
        primitive.ErrorComment = comment
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    return bytes(encode(message.command_set, True, True))  # type: ignore[arg-type]


def test_the_usual_c_store_rsp_is_recognized() -> None:
    for status in (0x0000, 0xB000, 0xA700):
        command = _store_rsp(status)
        assert wire.plain_store_status(command, 9, CT, "1.2.3.4.5") == status
        pdu = wire.p_data(1, command, None, 16384)
        assert wire.single_command(pdu) == (1, command)
        assert len(pdu) > wire.SMALLEST_STORE_RSP


def test_the_smallest_c_store_rsp() -> None:
    """Without its optional UIDs, as pynetdicom would write it: what the direct reader
    waits for at least."""
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = 65535
    primitive.Status = 0
    pdus = _pynetdicom_pdus(C_STORE_RSP(), primitive, 1, 16384)
    assert len(pdus) == wire.SMALLEST_STORE_RSP


def test_anything_else_is_left_to_pydicom() -> None:
    assert wire.plain_store_status(_store_rsp(0), 10, CT, "1.2.3.4.5") is None
    assert wire.plain_store_status(_store_rsp(0), 9, CT, "1.2.3.4.6") is None
    with_comment = _store_rsp(0xB000, comment="coerced")
    assert wire.plain_store_status(with_comment, 9, CT, "1.2.3.4.5") is None
    values = wire.command_values(with_comment)
    assert wire.us(values.get(0x00000900)) == 0xB000
    assert wire.read_command(with_comment).ErrorComment == "coerced"
    # a command cut over two PDUs is not one whole command
    fragments = wire.p_data(1, with_comment, None, 40)
    assert wire.single_command(fragments) is None
    assert wire.single_command(fragments[: 6 + 34]) is None


def test_read_command_reads_what_wire_writes() -> None:
    command = wire.c_store_rq(3, CT, "1.2.3", 1, "ME", 4)
    read = wire.read_command(command)
    assert isinstance(read, Dataset)
    assert (read.CommandField, read.MessageID, read.Priority) == (1, 3, 1)
    assert (read.AffectedSOPInstanceUID, read.MoveOriginatorApplicationEntityTitle) == (
        "1.2.3",
        "ME",
    )
    assert read.CommandGroupLength == len(command) - 12
