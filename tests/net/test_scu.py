"""REST-driven C-ECHO and C-STORE against real peers: dcmtk's storescp, a second
dicomhub, and the reference Orthanc when it runs."""

from __future__ import annotations

import io
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload, wait_until
from conftest import RunningServer, free_port, unused_port
from dicom_factory import CT_IMAGE_STORAGE, make_dicom
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt

from net import LOOPBACK, StoreScp, dicom_port, storescp_fixture

LOCAL = {"DicomBindAddress": LOOPBACK}


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StoreScp]:
    yield from storescp_fixture(tmp_path)


def _sender(make_server, storescp: StoreScp, **config: object) -> RunningServer:  # type: ignore[no-untyped-def]
    modalities = {
        "scp": [storescp.aet, LOOPBACK, storescp.port],
        "closed": ["CLOSED", LOOPBACK, unused_port()],
    }
    return make_server(DicomModalities=modalities, **LOCAL, **config)


def _study(server: RunningServer, count: int, patient: str = "SCU1") -> list[dict]:
    study = generate_uid()
    series = generate_uid()
    return [
        upload(server.client, make_dicom(patient_id=patient, study_uid=study, series_uid=series))
        for _ in range(count)
    ]


# ---- C-ECHO -----------------------------------------------------------------------
def test_echo_registered_modality(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    response = server.client.post("/modalities/scp/echo")
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert server.client.post("/modalities/scp/echo", json={"Timeout": 5}).json() == {}


def test_echo_failures(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    body = assert_orthanc_error(
        server.client.post("/modalities/closed/echo"), 500, "Error in the network protocol", 9
    )
    assert 'connecting to AET "CLOSED"' in body["Details"]
    body = assert_orthanc_error(
        server.client.post("/modalities/nope/echo"), 404, "Accessing an inexistent item", 7
    )
    assert body["Details"] == "No modality with symbolic name: nope"


def test_tools_dicom_echo(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    for body in (
        [storescp.aet, LOOPBACK, storescp.port],
        {"AET": storescp.aet, "Host": LOOPBACK, "Port": storescp.port, "Timeout": 5},
    ):
        response = server.client.post("/tools/dicom-echo", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {}
    assert_orthanc_error(
        server.client.post("/tools/dicom-echo", json="scp"), 400, "Bad file format", 15
    )
    assert_orthanc_error(
        server.client.post("/tools/dicom-echo", json=["CLOSED", LOOPBACK, unused_port()]),
        500,
        "Error in the network protocol",
        9,
    )
    assert "/tools/dicom-echo" in [f"/tools/{name}" for name in server.client.get("/tools").json()]


# ---- C-STORE ----------------------------------------------------------------------
def test_store_one_instance(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    (instance,) = _study(server, 1)
    response = server.client.post("/modalities/scp/store", content=f'"{instance["ID"]}"')
    assert response.status_code == 200, response.text
    assert response.json() == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 1,
        "LocalAet": "ORTHANC",
        "ParentResources": [instance["ID"]],
        "RemoteAet": "STORESCP",
    }
    (received,) = storescp.wait_files(1)
    original = server.client.get(f"/instances/{instance['ID']}/file").content
    # Sent as stored: the peer's data set equals ours element by element
    assert dcmread(received) == dcmread(io.BytesIO(original))


def test_store_list_at_any_level_with_options(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    study = _study(server, 3, patient="SCU2")
    other = _study(server, 1, patient="SCU3")
    body = {
        "Resources": [study[0]["ParentStudy"], other[0]["ParentPatient"], study[1]["ID"]],
        "Synchronous": True,
        "LocalAet": "MYAET",
        "MoveOriginatorAet": "MOVER",
        "MoveOriginatorID": 7,
        "Timeout": 10,
    }
    response = server.client.post("/modalities/scp/store", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 4,  # each instance once
        "LocalAet": "MYAET",
        "MoveOriginatorAET": "MOVER",
        "MoveOriginatorID": 7,
        "ParentResources": body["Resources"],
        "RemoteAet": "STORESCP",
    }
    assert len(storescp.wait_files(4)) == 4


def test_store_empty_list(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    response = server.client.post("/modalities/scp/store", json=[])
    assert response.json() == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 0,
        "LocalAet": "ORTHANC",
        "RemoteAet": "STORESCP",
    }


def test_store_errors(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    (instance,) = _study(server, 1)
    post = server.client.post
    assert_orthanc_error(
        post("/modalities/scp/store", json="0eea483a-3ddac27d-96486c73-f5dbcfde-c7799dff"),
        404,
        "Unknown resource",
        17,
    )
    body = assert_orthanc_error(
        post("/modalities/scp/store", json="nope"), 400, "Bad file format", 15
    )
    assert body["Details"] == "This string is not a valid Orthanc identifier: nope"
    body = assert_orthanc_error(post("/modalities/scp/store", json={}), 400, "Bad file format", 15)
    assert body["Details"] == 'Missing field in JSON: "Resources"'
    body = assert_orthanc_error(
        post("/modalities/scp/store", json={"Resources": instance["ID"]}),
        400,
        "Bad file format",
        15,
    )
    assert body["Details"] == 'JSON field "Resources" must contain an array'
    assert_orthanc_error(post("/modalities/scp/store", content=b"xx"), 400, "Bad file format", 15)
    assert_orthanc_error(
        post("/modalities/nope/store", json=instance["ID"]), 404, "Accessing an inexistent item", 7
    )
    body = assert_orthanc_error(
        post("/modalities/closed/store", json=instance["ID"]),
        500,
        "Error in the network protocol",
        9,
    )
    assert body["Details"].startswith('DicomAssociation - connecting to AET "CLOSED"')
    assert storescp.files() == []


def test_store_straight(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp)
    data = make_dicom(patient_id="STRAIGHT")
    response = server.client.post("/modalities/scp/store-straight", content=data)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"SOPClassUID", "SOPInstanceUID"}
    (received,) = storescp.wait_files(1)
    assert dcmread(received).SOPInstanceUID == answer["SOPInstanceUID"]
    assert server.client.get("/instances").json() == []  # not stored here
    assert_orthanc_error(
        server.client.post("/modalities/scp/store-straight", content=b"junk"),
        400,
        "Bad file format",
        15,
    )


def test_store_between_two_dicomhubs(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receiver = make_server(DicomAet="RECEIVER", **LOCAL)
    port = dicom_port(receiver)
    sender = make_server(
        DicomAet="SENDER", DicomModalities={"receiver": ["RECEIVER", LOOPBACK, port]}, **LOCAL
    )
    instances = _study(sender, 2, patient="PAIR1")
    response = sender.client.post("/modalities/receiver/store", json=[instances[0]["ParentStudy"]])
    assert response.status_code == 200, response.text
    assert response.json()["InstancesCount"] == 2
    assert sorted(receiver.client.get("/instances").json()) == sorted(i["ID"] for i in instances)
    metadata = receiver.client.get(f"/instances/{instances[0]['ID']}/metadata?expand").json()
    assert metadata["RemoteAET"] == "SENDER"
    assert metadata["CalledAET"] == "RECEIVER"
    assert metadata["Origin"] == "DicomProtocol"
    # Byte for byte the same file on both sides (same transfer syntax, no rewrite).
    a = sender.client.get(f"/instances/{instances[0]['ID']}/file").content
    b = receiver.client.get(f"/instances/{instances[0]['ID']}/file").content
    assert dcmread(io.BytesIO(a)).PixelData == dcmread(io.BytesIO(b)).PixelData


def test_reference_orthanc_stores_into_dicomhub_and_back(make_server) -> None:  # type: ignore[no-untyped-def]
    """The reference Orthanc as SCU towards our listener, and as SCP for our SCU."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    system = oracle.get("/system").json()
    oracle_aet = system["DicomAet"]
    server = make_server(
        DicomModalities={"oracle": [oracle_aet, LOOPBACK, system["DicomPort"]]},
        DicomAet="DICOMHUB",
        **LOCAL,
    )
    port = dicom_port(server)
    name = f"dicomhub-test-{port}"
    data = make_dicom(patient_id=f"ORC{port}")
    added: list[str] = []
    try:
        assert (
            oracle.put(f"/modalities/{name}", json=["DICOMHUB", LOOPBACK, port]).status_code == 200
        )
        answer = upload(oracle, data)
        added.append(answer["ID"])
        response = oracle.post(f"/modalities/{name}/store", json=[answer["ID"]])
        assert response.status_code == 200, response.text
        metadata = server.client.get(f"/instances/{answer['ID']}/metadata?expand").json()
        assert metadata["RemoteAET"] == oracle_aet
        assert metadata["CalledAET"] == "DICOMHUB"
        # and back: delete on the oracle, send from dicomhub
        oracle.delete(f"/instances/{answer['ID']}")
        response = server.client.post("/modalities/oracle/store", json=answer["ID"])
        assert response.status_code == 200, response.text
        assert response.json()["RemoteAet"] == oracle_aet
        back = oracle.get(f"/instances/{answer['ID']}/metadata?expand").json()
        assert back["RemoteAET"] == "DICOMHUB"
        assert server.client.post("/modalities/oracle/echo").status_code == 200
    finally:
        for instance in added:
            oracle.delete(f"/instances/{instance}")
        oracle.delete(f"/modalities/{name}")
        oracle.close()


def test_exports_logged_when_configured(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = _sender(make_server, storescp, LogExportedResources=True)
    instances = _study(server, 2, patient="EXPORT1")
    response = server.client.post("/modalities/scp/store", json=[instances[0]["ParentSeries"]])
    assert response.status_code == 200, response.text
    exports = server.client.get("/exports").json()["Exports"]
    assert sorted(e["ID"] for e in exports) == sorted(i["ID"] for i in instances)
    assert {e["RemoteModality"] for e in exports} == {"STORESCP"}
    assert {e["PatientID"] for e in exports} == {"EXPORT1"}
    assert all(e["ResourceType"] == "Instance" for e in exports)


def _refusing_scp(refused_patient: str) -> tuple[object, int]:
    """A pynetdicom SCP that refuses (0xA700) the instances of one patient."""

    def on_store(event: evt.Event) -> int:
        return 0xA700 if event.dataset.PatientID == refused_patient else 0x0000

    ae = AE(ae_title="REFUSER")
    ae.add_supported_context(CT_IMAGE_STORAGE, ExplicitVRLittleEndian)
    port = free_port()
    server = ae.start_server(
        (LOOPBACK, port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    return server, port


def test_store_failure_and_permissive(make_server) -> None:  # type: ignore[no-untyped-def]
    peer, port = _refusing_scp("REFUSED")
    try:
        server = make_server(DicomModalities={"refuser": ["REFUSER", LOOPBACK, port]}, **LOCAL)
        good = _study(server, 1, patient="ACCEPTED")[0]
        bad = _study(server, 1, patient="REFUSED")[0]
        body = assert_orthanc_error(
            server.client.post("/modalities/refuser/store", json=[bad["ID"], good["ID"]]),
            500,
            "Error in the network protocol",
            9,
        )
        assert "0xA700" in body["Details"]
        response = server.client.post(
            "/modalities/refuser/store",
            json={"Resources": [bad["ID"], good["ID"]], "Permissive": True},
        )
        assert response.status_code == 200, response.text
        assert response.json()["FailedInstancesCount"] == 1
        assert response.json()["InstancesCount"] == 2
    finally:
        peer.shutdown()  # type: ignore[attr-defined]


# ---- a peer that cannot be reached: Orthanc's words, whatever the request ---------
#: (route, body) of every outgoing request a REST call makes; "{id}": an instance.
OUTGOING = [
    ("echo", {}),
    ("store", "{id}"),
    ("store", {"Resources": ["{id}"], "Synchronous": True}),
    ("query", {"Level": "Study", "Query": {"PatientID": "X"}}),
    ("find-patient", {"PatientID": "X"}),
    ("find-worklist", {}),
    ("move", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3"}], "TargetAet": "X"}),
    ("storage-commitment", {"DicomInstances": [["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]]}),
]


def _with_id(body: object, instance: str) -> object:
    if isinstance(body, str):
        return body.replace("{id}", instance)
    if isinstance(body, dict):
        return {k: _with_id(v, instance) for k, v in body.items()}
    if isinstance(body, list):
        return [_with_id(v, instance) for v in body]
    return body


def _closing_listener() -> tuple[socket.socket, threading.Thread]:
    """A TCP peer that accepts connections and closes them at once (no DICOM)."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(0.2)

    def serve() -> None:
        while listener.fileno() != -1:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def _failures(client: httpx.Client, name: str, instance: str, routes=OUTGOING) -> list[str]:  # type: ignore[no-untyped-def]
    found = []
    for route, body in routes:
        response = client.post(f"/modalities/{name}/{route}", json=_with_id(body, instance))
        error = assert_orthanc_error(response, 500, "Error in the network protocol", 9)
        found.append(error["Details"])
    return found


def test_unreachable_peer_in_orthancs_words(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    """Every outgoing request shares one way to open an association, and Orthanc's
    words when it fails: the system's reason for a refused connection, an unknown
    host, a rejected or an aborted association. (C-GET too: 1.10.1 has no C-GET.)"""
    listener, thread = _closing_listener()
    try:
        peer = make_server(DicomAet="PICKY", DicomCheckCalledAet=True, **LOCAL)
        server = _sender(make_server, storescp)
        client = server.client
        for name, entry in {
            "nohost": ["NOHOST", "nosuchhost.invalid", 104],
            "wrongaet": ["WRONG", LOOPBACK, dicom_port(peer)],
            "closer": ["CLOSER", LOOPBACK, listener.getsockname()[1]],
        }.items():
            assert client.put(f"/modalities/{name}", json=entry).status_code == 200
        instance = upload(client, make_dicom(patient_id="UNREACHED"))["ID"]
        get = [("get", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3"}]})]
        prefix = "DicomAssociation - connecting to AET"
        refused = f'{prefix} "CLOSED": TCP Initialization Error: Connection refused'
        assert _failures(client, "closed", instance, OUTGOING + get) == [refused] * 9
        unknown = f'{prefix} "NOHOST": Attempt to connect to unknown host: nosuchhost.invalid'
        assert set(_failures(client, "nohost", instance, OUTGOING + get)) == {unknown}
        rejected = f'{prefix} "WRONG": DUL Association Rejected'
        assert set(_failures(client, "wrongaet", instance, OUTGOING[:4] + get)) == {rejected}
        aborted = f'{prefix} "CLOSER": Peer aborted Association (or never connected)'
        assert set(_failures(client, "closer", instance, OUTGOING[:4])) == {aborted}
        # the jobs fail with the same words
        response = client.post(
            "/modalities/closed/store", json={"Resources": [instance], "Asynchronous": True}
        )
        job = response.json()["ID"]
        state = wait_until(lambda: _finished(client, job))
        assert state["State"] == "Failure" and state["ErrorDetails"] == refused
    finally:
        listener.close()
        thread.join(timeout=5)


def _finished(client: httpx.Client, job: str) -> dict | None:  # type: ignore[type-arg]
    state = client.get(f"/jobs/{job}").json()
    return state if state["State"] in ("Success", "Failure") else None


#: What Orthanc 1.10.1 says of a peer that accepts the connection and closes it at
#: once, depending on timing (both seen on the reference).
CLOSED_AT_ONCE = ("Peer aborted Association (or never connected)", "DUL network read timeout")


def test_unreachable_peer_like_the_oracle(make_server) -> None:  # type: ignore[no-untyped-def]
    """The same unreachable peers declared in dicomhub and in the reference Orthanc:
    the same error bodies (Uri apart, as the modality names differ)."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    listener, thread = _closing_listener()
    tag = uuid.uuid4().hex[:8]
    entries = {
        "closed": ["CLOSED", LOOPBACK, unused_port()],
        "nohost": ["NOHOST", "nosuchhost.invalid", 104],
        "closer": ["CLOSER", LOOPBACK, listener.getsockname()[1]],
    }
    added: list[str] = []
    try:
        server = make_server(DicomModalities=entries, **LOCAL)
        data = make_dicom(patient_id=f"NFU{tag}")
        ours = upload(server.client, data)["ID"]
        theirs = upload(oracle, data)["ID"]
        added.append(theirs)
        for name, entry in entries.items():
            assert oracle.put(f"/modalities/netfind-{tag}-{name}", json=entry).status_code == 200
        for name in entries:
            for route, body in OUTGOING:
                mine = server.client.post(f"/modalities/{name}/{route}", json=_with_id(body, ours))
                reference = oracle.post(
                    f"/modalities/netfind-{tag}-{name}/{route}", json=_with_id(body, theirs)
                )
                a, b = mine.json(), reference.json()
                a.pop("Uri"), b.pop("Uri")
                if name == "closer":
                    # Orthanc's words for a peer that closes at once depend on which
                    # comes first, the close or its read: either is its answer.
                    for answer in (a, b):
                        for words in CLOSED_AT_ONCE:
                            answer["Details"] = answer["Details"].replace(words, "(closed)")
                assert (mine.status_code, a) == (reference.status_code, b), (name, route)
    finally:
        for name in entries:
            oracle.delete(f"/modalities/netfind-{tag}-{name}")
        for instance in added:
            oracle.delete(f"/instances/{instance}")
        oracle.close()
        listener.close()
        thread.join(timeout=5)
