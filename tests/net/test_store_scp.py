"""The listener's C-STORE short path (``dicomhub.net.store_scp``): the bytes it writes
are pynetdicom's own, the file stored is the header plus the data set as received, and
pynetdicom's way is still taken where the short path does not apply."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import pytest
from archive_checks import assert_consistent
from dicom_factory import make_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context
from pynetdicom.dimse_messages import C_STORE_RQ, C_STORE_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, encode, encode_file_meta
from pynetdicom.pdu_primitives import P_DATA

from dicomhub.net import store_scp
from net import LOOPBACK, dicom_port, output, storescu

CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
LOCAL = {"DicomBindAddress": LOOPBACK}

#: UIDs of odd and even lengths (the odd ones get a NUL pad).
UID_CASES = [
    (CT, "1.2.3.45", ExplicitVRLittleEndian),
    ("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4", ImplicitVRLittleEndian),
    (
        "1.2.826.0.1.3680043.8.498.1.99",
        "2.25.123456789012345678901234567890123",
        "1.2.840.10008.1.2.4.50",
    ),
]


# ---- the bytes: what pynetdicom writes ----------------------------------------------
@pytest.mark.parametrize(("sop_class", "sop_instance", "syntax"), UID_CASES)
def test_file_header_is_pynetdicom_file_meta(
    sop_class: str, sop_instance: str, syntax: str
) -> None:
    expected = encode_file_meta(
        create_file_meta(
            sop_class_uid=UID(sop_class),
            sop_instance_uid=UID(sop_instance),
            transfer_syntax=UID(syntax),
        )
    )
    assert (
        store_scp.file_header(sop_class, sop_instance, syntax) == b"\0" * 128 + b"DICM" + expected
    )


@pytest.mark.parametrize(("sop_class", "sop_instance", "syntax"), UID_CASES)
@pytest.mark.parametrize("status", [0x0000, 0xB000, 0xA700, 0xC000, 0x0110])
def test_store_response_is_pynetdicom_command(
    sop_class: str, sop_instance: str, syntax: str, status: int
) -> None:
    for message_id in (1, 258, 65535):
        response = C_STORE()
        response.MessageIDBeingRespondedTo = message_id
        response.AffectedSOPClassUID = sop_class
        response.AffectedSOPInstanceUID = sop_instance
        response.Status = status
        message = C_STORE_RSP()
        message.primitive_to_message(response)
        expected = encode(message.command_set, True, True)
        assert store_scp.store_response(message_id, sop_class, sop_instance, status) == expected


def _received(request: C_STORE, data_set: bytes) -> DIMSEMessage:
    """A C-STORE-RQ as pynetdicom's DIMSE provider reassembles it from P-DATA."""
    request.DataSet = None
    sent = C_STORE_RQ()
    sent.primitive_to_message(request)
    message = DIMSEMessage()
    for control, payload in ((b"\x03", encode(sent.command_set, True, True)), (b"\x02", data_set)):
        pdata = P_DATA()
        pdata.presentation_data_value_list = [[1, control + payload]]
        message.decode_msg(pdata)
    return message


_PRIMITIVE_FIELDS = (
    "MessageID",
    "AffectedSOPClassUID",
    "AffectedSOPInstanceUID",
    "Priority",
    "MoveOriginatorApplicationEntityTitle",
    "MoveOriginatorMessageID",
    "_context_id",
    "_dataset_path",
    "_dataset_file",
)


@pytest.mark.parametrize("move_originator", [None, ("MOVESCU", 17)])
@pytest.mark.parametrize(("sop_class", "sop_instance", "syntax"), UID_CASES)
def test_request_primitive_is_pynetdicom_one(
    sop_class: str, sop_instance: str, syntax: str, move_originator: tuple[str, int] | None
) -> None:
    """Plain requests are read by ``store_scp``, those with a Move Originator by
    pynetdicom: either way the primitive is the one pynetdicom's reading gives."""
    request = C_STORE()
    request.MessageID = 4321
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = sop_instance
    request.Priority = 1
    if move_originator:
        request.MoveOriginatorApplicationEntityTitle = move_originator[0]
        request.MoveOriginatorMessageID = move_originator[1]
    data_set = b"\x08\x00\x18\x00" + b"data set bytes"
    ours = store_scp._store_request(_received(request, data_set))  # type: ignore[arg-type]
    theirs = store_scp._pynetdicom_to_primitive(_received(request, data_set))  # type: ignore[arg-type]
    for field in _PRIMITIVE_FIELDS:
        assert getattr(ours, field) == getattr(theirs, field), field
    assert type(ours.AffectedSOPInstanceUID) is type(theirs.AffectedSOPInstanceUID)
    assert ours.DataSet.getvalue() == theirs.DataSet.getvalue() == data_set  # type: ignore[union-attr]
    assert ours.is_valid_request


# ---- the command read from its bytes (``read_store_command``) ------------------------
def _command_bytes(request: C_STORE) -> bytes:
    """A C-STORE-RQ command set as pynetdicom encodes it for sending (a data set
    follows)."""
    request.DataSet = io.BytesIO(b"\x08\x00\x18\x00")
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    return bytes(encode(message.command_set, True, True))


def _request(
    sop_class: str,
    sop_instance: str,
    message_id: int = 4321,
    priority: int = 1,
    originator: tuple[str, int] | None = None,
) -> C_STORE:
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = sop_class
    request.AffectedSOPInstanceUID = sop_instance
    request.Priority = priority
    if originator:
        request.MoveOriginatorApplicationEntityTitle = originator[0]
        request.MoveOriginatorMessageID = originator[1]
    return request


@pytest.mark.parametrize("originator", [None, ("MOVESCU", 17), ("ODD", 0), ("A" * 16, 65535)])
@pytest.mark.parametrize(("message_id", "priority"), [(1, 2), (258, 0), (65535, 1)])
@pytest.mark.parametrize(("sop_class", "sop_instance", "syntax"), UID_CASES)
def test_command_read_from_bytes_as_pynetdicom_reads_it(
    sop_class: str,
    sop_instance: str,
    syntax: str,
    message_id: int,
    priority: int,
    originator: tuple[str, int] | None,
) -> None:
    """What ``read_store_command`` reads from the bytes pynetdicom sends is what
    pynetdicom's own reading (a pydicom data set, then a primitive) gives."""
    request = _request(sop_class, sop_instance, message_id, priority, originator)
    command = _command_bytes(request)
    ours = store_scp.read_store_command(memoryview(bytearray(command)))
    theirs = store_scp._pynetdicom_to_primitive(  # type: ignore[arg-type]
        _received(_request(sop_class, sop_instance, message_id, priority, originator), b"\0")
    )
    assert ours is not None
    assert ours.message_id == theirs.MessageID
    assert ours.priority == theirs.Priority
    assert ours.sop_class_uid == theirs.AffectedSOPClassUID
    assert ours.sop_instance_uid == theirs.AffectedSOPInstanceUID


def _elements(command: bytes) -> list[tuple[int, bytes]]:
    """(element, value) of each command element, in order."""
    out, offset = [], 0
    while offset < len(command):
        _, element, length = struct.unpack_from("<HHI", command, offset)
        out.append((element, command[offset + 8 : offset + 8 + length]))
        offset += 8 + length
    return out


def _join(elements: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack("<HHI", 0, e, len(v)) + v for e, v in elements)


def _replaced(command: bytes, element: int, value: bytes | None) -> bytes:
    """``command`` with ``element`` set to ``value`` (None: removed, else added)."""
    found = dict(_elements(command))
    if value is None:
        found.pop(element)
    else:
        found[element] = value
    return _join(sorted(found.items()))


_PLAIN = _command_bytes(_request(CT, "1.2.3.45"))


@pytest.mark.parametrize(
    ("case", "command"),
    [
        ("a C-ECHO-RQ", _replaced(_replaced(_PLAIN, 0x0100, b"\x30\x00"), 0x0800, b"\x01\x01")),
        ("a C-STORE-RSP", _replaced(_PLAIN, 0x0100, b"\x01\x80")),
        ("no data set", _replaced(_PLAIN, 0x0800, b"\x01\x01")),
        ("no SOP instance", _replaced(_PLAIN, 0x1000, None)),
        ("no priority", _replaced(_PLAIN, 0x0700, None)),
        ("another element", _replaced(_PLAIN, 0x0901, b"\x00\x00")),
        ("a US of 4 bytes", _replaced(_PLAIN, 0x0110, b"\x01\x00\x00\x00")),
        ("a leading zero in a UID", _replaced(_PLAIN, 0x1000, b"1.2.03.4")),
        ("two UIDs", _replaced(_PLAIN, 0x1000, b"1.2.3\\1.2.4\0")),
        ("a UID of 66 characters", _replaced(_PLAIN, 0x1000, b"1." + b"2" * 64)),
        ("an originator with a backslash", _replaced(_PLAIN, 0x1030, b"A\\B ")),
        ("an originator of 18 characters", _replaced(_PLAIN, 0x1030, b"A" * 18)),
        ("an originator not in ASCII", _replaced(_PLAIN, 0x1030, "\u00c9A".encode("latin-1"))),
        ("elements out of order", _join(list(reversed(_elements(_PLAIN))))),
        ("an element in another group", _PLAIN + struct.pack("<HHI", 8, 0x18, 2) + b"12"),
        ("a truncated element", _PLAIN[:-3]),
        ("a value longer than the command", _PLAIN + struct.pack("<HHI", 0, 0x1031, 99)),
        ("nothing", b""),
    ],
)
def test_anything_unusual_is_left_to_pynetdicom(case: str, command: bytes) -> None:
    """None, so that pynetdicom reads and judges the command as usual."""
    assert store_scp.read_store_command(_PLAIN) is not None  # the unchanged one is read
    assert store_scp.read_store_command(command) is None, case


# ---- against a running server -------------------------------------------------------
def _associate(port: int, max_pdu: int = 16382) -> object:
    ae = AE(ae_title="SHORTPATH")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.maximum_pdu_size = max_pdu
    return ae.associate(
        LOOPBACK,
        port,
        [
            build_context(CT, ExplicitVRLittleEndian),
            build_context(CT, ImplicitVRLittleEndian),
            build_context(VERIFICATION),
        ],
        ae_title="ORTHANC",
    )


def test_stored_file_is_header_and_received_bytes(make_server) -> None:  # type: ignore[no-untyped-def]
    """No decoding on the way: the file is our header, then the data set as sent."""
    server = make_server(**LOCAL)
    assoc = _associate(dicom_port(server))
    assert assoc.is_established  # type: ignore[attr-defined]
    for number, syntax in enumerate((ExplicitVRLittleEndian, ImplicitVRLittleEndian)):
        patient = f"BYTES{number}"
        ds = make_dataset(patient_id=patient, rows=16, columns=16)
        ds.file_meta.TransferSyntaxUID = syntax
        status = assoc.send_c_store(ds)  # type: ignore[attr-defined]
        assert status.Status == 0x0000
        implicit = syntax == ImplicitVRLittleEndian
        expected = store_scp.file_header(CT, str(ds.SOPInstanceUID), syntax) + encode(
            ds, implicit, True
        )
        found = server.client.post(
            "/tools/find", json={"Level": "Instance", "Query": {"PatientID": patient}}
        ).json()
        assert len(found) == 1
        stored = server.client.get(f"/instances/{found[0]}/file").content
        assert stored == expected
    assoc.release()  # type: ignore[attr-defined]
    assert_consistent(server)


def test_response_fragmented_for_a_peer_with_tiny_pdus(make_server) -> None:  # type: ignore[no-untyped-def]
    """A response longer than the peer's maximum PDU goes pynetdicom's way, in fragments."""
    server = make_server(**LOCAL)
    assoc = _associate(dicom_port(server), max_pdu=64)
    assert assoc.is_established  # type: ignore[attr-defined]
    for _ in range(2):
        assert assoc.send_c_store(make_dataset(patient_id="TINYPDU")).Status == 0x0000  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
    assert len(server.client.get("/instances").json()) == 2


def _log_lines(server, text: str) -> int:  # type: ignore[no-untyped-def]
    log = Path(server.folder) / "server.log"
    return log.read_text(encoding="utf-8", errors="replace").count(text)


def test_dicom_logging_restores_pynetdicom_messages(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With the "dicom" log category verbose, pynetdicom's logging handlers stay bound
    (from the next association) and the C-STORE still succeeds; back at the default
    level they are left out again."""
    server = make_server(**LOCAL)
    port = dicom_port(server)
    files = []
    for i in range(2):
        path = tmp_path / f"log{i}.dcm"
        make_dataset(patient_id="LOGGED").save_as(path, enforce_file_format=True)
        files.append(path)
    marker = "Received Store Request"
    assert server.client.put("/tools/log-level-dicom", content="verbose").status_code == 200
    result = storescu(port, files[:1])
    assert result.returncode == 0, output(result)
    deadline = time.monotonic() + 5
    while _log_lines(server, marker) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _log_lines(server, marker) == 1
    assert server.client.put("/tools/log-level-dicom", content="default").status_code == 200
    result = storescu(port, files[1:])
    assert result.returncode == 0, output(result)
    assert _log_lines(server, marker) == 1
    assert len(server.client.get("/instances").json()) == 2


@pytest.mark.parametrize(
    ("sop_instance", "originator"),
    [
        ("1.2.3.4.5.6", None),  # read from its bytes, served by the reader thread
        ("1.2.3.4.5.7", ("MOVER", 9)),  # the same, with a Move Originator
        ("1.2.03.4.5.8", None),  # not conformant: pynetdicom reads it (and warns)
    ],
)
def test_either_way_the_same_file_and_answer(  # type: ignore[no-untyped-def]
    make_server, sop_instance: str, originator: tuple[str, int] | None
) -> None:
    """A C-STORE-RQ read from its bytes and one left to pynetdicom store the same file
    and get the same answer, and a C-ECHO in between is answered in order."""
    server = make_server(**LOCAL)
    assoc = _associate(dicom_port(server))
    assert assoc.is_established  # type: ignore[attr-defined]
    patient = "EITHER" + sop_instance.replace(".", "")
    ds = make_dataset(patient_id=patient, sop_uid=sop_instance, rows=16, columns=16)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    aet, message_id = originator or (None, None)
    status = assoc.send_c_store(ds, originator_aet=aet, originator_id=message_id)  # type: ignore[attr-defined]
    assert status.Status == 0x0000
    assert assoc.send_c_echo().Status == 0x0000  # type: ignore[attr-defined]
    again = assoc.send_c_store(ds)  # type: ignore[attr-defined]
    assert again.Status == 0x0000
    assoc.release()  # type: ignore[attr-defined]
    expected = store_scp.file_header(CT, sop_instance, ExplicitVRLittleEndian) + encode(
        ds, False, True
    )
    found = server.client.post(
        "/tools/find", json={"Level": "Instance", "Query": {"PatientID": patient}}
    ).json()
    assert len(found) == 1
    assert server.client.get(f"/instances/{found[0]}/file").content == expected
    origin = server.client.get(f"/instances/{found[0]}/metadata?expand").json()
    assert origin["Origin"] == "DicomProtocol"
    assert origin["RemoteAET"] == "SHORTPATH"
    assert origin["CalledAET"] == "ORTHANC"
    assert_consistent(server)
