"""The listener's P-DATA-TF reader (``EventDrivenDUL._read_p_data`` in
dicomhub/net/reactor.py) against a running server: data sets split into many PDUs,
PDUs mixing command and data PDVs in every arrangement the standard allows, and PDUs
whose PDVs do not add up (left to pynetdicom, which ends the association). What is
stored must be the header plus the data set bytes as sent, whatever the framing."""

from __future__ import annotations

import struct
import time

import pytest
from archive_checks import assert_consistent
from dicom_factory import make_dataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, build_context
from pynetdicom.dsutils import encode

from dicomhub.net import store_scp, wire
from net import LOOPBACK, dicom_port, output, storescu

CT = "1.2.840.10008.5.1.4.1.1.2"

#: PDV message control headers (PS3.8 E.2).
DATA, COMMAND, LAST = 0x00, 0x01, 0x02


def _associate(port: int) -> object:
    ae = AE(ae_title="PDVPEER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    return ae.associate(
        LOOPBACK, port, [build_context(CT, ExplicitVRLittleEndian)], ae_title="ORTHANC"
    )


def _pdu(*pdvs: tuple[int, int, bytes]) -> bytes:
    """One P-DATA-TF PDU holding ``(context ID, control header, fragment)`` PDVs."""
    items = b"".join(
        struct.pack(">LBB", len(data) + 2, context, control) + data
        for context, control, data in pdvs
    )
    return struct.pack(">BBL", wire.P_DATA_TF, 0, len(items)) + items


def _cut(data: bytes, *sizes: int) -> list[bytes]:
    """``data`` in pieces of ``sizes`` bytes, the rest in a last piece."""
    pieces, start = [], 0
    for size in sizes:
        pieces.append(data[start : start + size])
        start += size
    return [*pieces, data[start:]]


def _stored(server, patient: str) -> bytes:  # type: ignore[no-untyped-def]
    found = server.client.post(
        "/tools/find", json={"Level": "Instance", "Query": {"PatientID": patient}}
    ).json()
    assert len(found) == 1
    return server.client.get(f"/instances/{found[0]}/file").content


def _exchange(assoc, pdus: bytes):  # type: ignore[no-untyped-def]
    """Send raw PDUs and take the answer, with the association's reactor held at its
    checkpoint meanwhile (as pynetdicom's own ``send_c_store`` does)."""
    assoc._reactor_checkpoint.clear()
    try:
        deadline = time.monotonic() + 10
        while not assoc._is_paused and time.monotonic() < deadline:
            time.sleep(0.001)
        assoc.dul.socket.send(pdus)
        return assoc.dimse.get_msg(block=True)[1]
    finally:
        assoc._reactor_checkpoint.set()


def _expected(ds) -> bytes:  # type: ignore[no-untyped-def]
    return store_scp.file_header(CT, str(ds.SOPInstanceUID), ExplicitVRLittleEndian) + encode(
        ds, False, True
    )


def _layouts(context: int, command: bytes, data: bytes) -> dict[str, list[bytes]]:
    """The same C-STORE-RQ framed in different ways."""
    c1, c2 = _cut(command, 20)
    d1, d2, d3, d4 = _cut(data, 1000, 7, 3000)
    return {
        "command and whole data set in one PDU": [
            _pdu((context, COMMAND | LAST, command), (context, DATA | LAST, data))
        ],
        "command with the first fragment, then two fragments per PDU": [
            _pdu((context, COMMAND | LAST, command), (context, DATA, d1)),
            _pdu((context, DATA, d2), (context, DATA, d3)),
            _pdu((context, DATA | LAST, d4)),
        ],
        "command in two fragments over two PDUs, data set in one PDV per PDU": [
            _pdu((context, COMMAND, c1)),
            _pdu((context, COMMAND | LAST, c2), (context, DATA, d1)),
            *(_pdu((context, DATA, piece)) for piece in (d2, d3)),
            _pdu((context, DATA | LAST, d4)),
        ],
        "fragments of two bytes and of none": [
            _pdu((context, COMMAND | LAST, command)),
            _pdu((context, DATA, d1[:2]), (context, DATA, b""), (context, DATA, d1[2:])),
            _pdu((context, DATA, d2 + d3), (context, DATA | LAST, d4)),
        ],
    }


def test_every_pdv_arrangement_stores_the_bytes_sent(make_server) -> None:  # type: ignore[no-untyped-def]
    """Each framing of a C-STORE-RQ, sent raw over one association, is answered and
    stores the data set exactly as sent."""
    server = make_server(DicomBindAddress=LOOPBACK)
    assoc = _associate(dicom_port(server))
    assert assoc.is_established  # type: ignore[attr-defined]
    context = assoc.accepted_contexts[0].context_id  # type: ignore[attr-defined]
    patients: dict[str, object] = {}
    for number, (name, _) in enumerate(_layouts(context, b"", b"").items()):
        ds = make_dataset(patient_id=f"PDV{number}", rows=48, columns=48)
        command = wire.c_store_rq(number + 1, CT, str(ds.SOPInstanceUID))
        pdus = _layouts(context, command, encode(ds, False, True))[name]
        response = _exchange(assoc, b"".join(pdus))
        assert response is not None, name
        assert response.Status == 0x0000, name
        assert response.MessageIDBeingRespondedTo == number + 1, name
        patients[f"PDV{number}"] = ds
    assoc.release()  # type: ignore[attr-defined]
    for patient, ds in patients.items():
        assert _stored(server, patient) == _expected(ds)
    assert_consistent(server)


def test_data_sets_in_many_small_pdus(make_server) -> None:  # type: ignore[no-untyped-def]
    """With the smallest maximum PDU length, an image comes in dozens of PDUs (from
    pynetdicom and from dcmtk's storescu) and is stored as sent."""
    server = make_server(DicomBindAddress=LOOPBACK, MaximumPduLength=4096)
    assoc = _associate(dicom_port(server))
    assert assoc.is_established  # type: ignore[attr-defined]
    sent = [make_dataset(patient_id=f"SMALLPDU{n}", rows=160, columns=160) for n in range(3)]
    for ds in sent:
        assert assoc.send_c_store(ds).Status == 0x0000  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
    for n, ds in enumerate(sent):
        assert _stored(server, f"SMALLPDU{n}") == _expected(ds)

    ds = make_dataset(patient_id="SMALLPDUDCMTK", rows=128, columns=128)
    path = server.folder / "dcmtk.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = storescu(dicom_port(server), [path])
    assert result.returncode == 0, output(result)
    assert _stored(server, "SMALLPDUDCMTK") == _expected(ds)
    assert_consistent(server)


@pytest.mark.parametrize(
    "bad_pdu",
    [
        pytest.param(
            struct.pack(">BBLLBB", wire.P_DATA_TF, 0, 10, 40, 1, DATA) + b"\0" * 4,
            id="PDV longer than its PDU",
        ),
        pytest.param(
            struct.pack(">BBLLBB", wire.P_DATA_TF, 0, 6, 1, 1, DATA), id="PDV without its header"
        ),
    ],
)
def test_pdvs_that_do_not_add_up_go_pynetdicoms_way(make_server, bad_pdu: bytes) -> None:  # type: ignore[no-untyped-def]
    """A malformed P-DATA-TF PDU is judged by pynetdicom's decoder: the association
    ends without anything stored, and the server serves the next one."""
    server = make_server(DicomBindAddress=LOOPBACK)
    assoc = _associate(dicom_port(server))
    assert assoc.is_established  # type: ignore[attr-defined]
    context = assoc.accepted_contexts[0].context_id  # type: ignore[attr-defined]
    ds = make_dataset(patient_id="BADPDV")
    command = wire.c_store_rq(1, CT, str(ds.SOPInstanceUID))
    assoc.dul.socket.send(_pdu((context, COMMAND | LAST, command)) + bad_pdu)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while assoc.is_established and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.02)
    assert not assoc.is_established  # type: ignore[attr-defined]
    assert server.client.get("/instances").json() == []

    again = _associate(dicom_port(server))
    assert again.send_c_store(ds).Status == 0x0000  # type: ignore[attr-defined]
    again.release()  # type: ignore[attr-defined]
    assert _stored(server, "BADPDV") == _expected(ds)
