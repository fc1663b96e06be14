"""Storage commitment, push model: dicomhub as SCP (N-ACTION in, N-EVENT-REPORT out on a
new association) and as SCU (``/modalities/{id}/storage-commitment``, ``StorageCommitment``
in a C-STORE, ``/storage-commitment/{id}``), against a second dicomhub, pynetdicom, and
the reference Orthanc (its reports compared with ours; skipped when it is away).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload
from conftest import RunningServer, free_port
from dicom_factory import CT_IMAGE_STORAGE, make_dicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from net import LOOPBACK, dicom_port

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
NO_SUCH_OBJECT, CLASS_CONFLICT = 0x0112, 0x0119


def wait_report(client: httpx.Client, uid: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/storage-commitment/{uid}")
        assert response.status_code == 200, response.text
        report = response.json()
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def _pair(make_server: Any, **source_config: Any) -> tuple[RunningServer, RunningServer]:
    hub_port = free_port()
    modalities = source_config.pop("DicomModalities", {"hub": ["HUB", LOOPBACK, hub_port]})
    source = make_server(DicomAet="SOURCE", DicomModalities=modalities, **source_config)
    hub = make_server(
        DicomAet="HUB",
        DicomPort=hub_port,
        DicomModalities={"source": ["SOURCE", LOOPBACK, dicom_port(source)]},
    )
    dicom_port(hub)
    return hub, source


def test_commitment_between_two_servers(make_server: Any) -> None:
    hub, source = _pair(make_server)
    kept = generate_uid()
    upload(source.client, make_dicom(sop_uid=kept))
    missing = generate_uid()
    body = {
        "DicomInstances": [
            {"SOPClassUID": CT_IMAGE_STORAGE, "SOPInstanceUID": kept},
            [CT_IMAGE_STORAGE, missing],
            {"SOPClassUID": MR_IMAGE_STORAGE, "SOPInstanceUID": kept},
        ]
    }
    response = hub.client.post("/modalities/source/storage-commitment", json=body)
    assert response.status_code == 200, response.text
    uid = response.json()["ID"]
    assert uid.startswith("2.25.")
    assert response.json()["Path"] == f"/storage-commitment/{uid}"
    report = wait_report(hub.client, uid)
    assert report == {
        "RemoteAET": "SOURCE",
        "Status": "Failure",
        "Success": [{"SOPClassUID": CT_IMAGE_STORAGE, "SOPInstanceUID": kept}],
        "Failures": [
            {
                "Description": "One or more of the elements in the Referenced SOP Instance "
                "Sequence was not available",
                "FailureReason": NO_SUCH_OBJECT,
                "SOPClassUID": CT_IMAGE_STORAGE,
                "SOPInstanceUID": missing,
            },
            {
                "Description": "The SOP Class of an element in the Referenced SOP Instance "
                "Sequence did not correspond to the SOP class registered for this SOP "
                "Instance at the SCP",
                "FailureReason": CLASS_CONFLICT,
                "SOPClassUID": MR_IMAGE_STORAGE,
                "SOPInstanceUID": kept,
            },
        ],
    }
    # a failed commitment removes nothing: Orthanc's words, and its HTTP 500
    response = hub.client.post(f"/storage-commitment/{uid}/remove")
    error = assert_orthanc_error(response, 500, "Bad sequence of calls", 6)
    assert error["Details"] == (
        f"Cannot remove DICOM instances after failure in storage commitment transaction: {uid}"
    )
    assert len(source.client.get("/instances").json()) == 1


def test_store_with_commitment_then_remove(make_server: Any) -> None:
    hub, source = _pair(make_server)
    study, series = generate_uid(), generate_uid()
    ids = [
        upload(hub.client, make_dicom(study_uid=study, series_uid=series))["ID"] for _ in range(3)
    ]
    parent = hub.client.get(f"/instances/{ids[0]}").json()["ParentSeries"]
    response = hub.client.post(
        "/modalities/source/store", json={"Resources": [parent], "StorageCommitment": True}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    uid = answer["StorageCommitmentTransactionUID"]
    assert answer["InstancesCount"] == 3
    report = wait_report(hub.client, uid)
    assert report["Status"] == "Success" and report["Failures"] == []
    assert len(report["Success"]) == 3
    assert sorted(source.client.get("/instances").json()) == sorted(ids)
    # committed: the local copies may go
    response = hub.client.post(f"/storage-commitment/{uid}/remove")
    assert response.status_code == 200, response.text
    assert hub.client.get("/instances").json() == []
    # the same as a job
    ids = [upload(hub.client, make_dicom(study_uid=study))["ID"] for _ in range(2)]
    response = hub.client.post(
        "/modalities/source/store",
        json={"Resources": ids, "StorageCommitment": True, "Asynchronous": True},
    )
    job_id = response.json()["ID"]
    deadline = time.monotonic() + 20
    job = hub.client.get(f"/jobs/{job_id}").json()
    while job["State"] not in ("Success", "Failure") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = hub.client.get(f"/jobs/{job_id}").json()
    assert job["State"] == "Success", job
    report = wait_report(hub.client, job["Content"]["StorageCommitmentTransactionUID"])
    assert report["Status"] == "Success" and len(report["Success"]) == 2


def test_rest_errors(make_server: Any) -> None:
    hub, _ = _pair(make_server)
    response = hub.client.get("/storage-commitment/1.2.3")
    error = assert_orthanc_error(response, 404, "Accessing an inexistent item", 7)
    assert error["Details"] == "No storage commitment transaction with UID: 1.2.3"
    response = hub.client.post("/modalities/source/storage-commitment", json=["x"])
    error = assert_orthanc_error(response, 400, "Bad file format", 15)
    assert error["Details"] == "Must provide a JSON object with a list of resources"
    response = hub.client.post(
        "/modalities/source/storage-commitment", json={"DicomInstances": [{"SOPClassUID": 1}]}
    )
    assert_orthanc_error(response, 400, "Bad file format", 15)
    response = hub.client.post("/modalities/nope/storage-commitment", json={"DicomInstances": []})
    assert_orthanc_error(response, 404, "Accessing an inexistent item", 7)


#: Bodies of ``POST /modalities/{id}/storage-commitment`` that Orthanc 1.10.1 refuses
#: with "Bad file format" (400), and its details (observed, typos included).
BAD_BODIES = [
    (
        {},
        'Empty storage commitment request, one of these fields is mandatory: "Resources" or '
        '"DicomInstances"',
    ),
    (
        {"Timeout": 3},
        'Empty storage commitment request, one of these fields is mandatory: "Resources" or '
        '"DicomInstances"',
    ),
    ({"Resources": "x"}, 'The "Resources" field must provide an array of Orthanc resources'),
    ({"Resources": None}, 'The "Resources" field must provide an array of Orthanc resources'),
    ({"Resources": [3]}, 'The "Resources" field must provide an array of strings, found: 3\n'),
    (
        {"Resources": [{"a": 1, "b": [1, 2]}]},
        'The "Resources" field must provide an array of strings, found: '
        '{\n\t"a" : 1,\n\t"b" : \n\t[\n\t\t1,\n\t\t2\n\t]\n}\n',
    ),
    (
        {"DicomInstances": "x"},
        'The "DicomInstances" field must provide an array of DICOM instances',
    ),
    (
        {"DicomInstances": ["x"]},
        'JSON array or object is expected to specify one instance to be queried, found: "x"\n',
    ),
    (
        {"DicomInstances": [0.1]},
        "JSON array or object is expected to specify one instance to be queried, "
        "found: 0.10000000000000001\n",
    ),
    (
        {"DicomInstances": [["a", "b", "c"]]},
        "An instance entry must provide an array with 2 strings: SOP Class UID and "
        "SOP Instance UID",
    ),
    (
        {"DicomInstances": [{"SOPInstanceUID": "1.2"}]},
        'An instance entry must provide an object with 2 string fiels: "SOPClassUID" and '
        '"SOPInstanceUID',
    ),
    # Resources is read first, DicomInstances next
    (
        {"DicomInstances": "x", "Resources": [None]},
        'The "Resources" field must provide an array of strings, found: null\n',
    ),
    (
        {"Resources": [], "DicomInstances": [True]},
        "JSON array or object is expected to specify one instance to be queried, found: true\n",
    ),
]


def test_rest_request_checks_as_orthanc(make_server: Any) -> None:
    hub, _ = _pair(make_server)
    url = "/modalities/source/storage-commitment"
    for body, details in BAD_BODIES:
        response = hub.client.post(url, json=body)
        error = assert_orthanc_error(response, 400, "Bad file format", 15)
        assert error["Details"] == details, body
    # the body is checked before the modality is looked up
    response = hub.client.post("/modalities/nope/storage-commitment", json={})
    assert_orthanc_error(response, 400, "Bad file format", 15)
    # a resource that is unknown, malformed or not: 404 without details, and before a
    # later item that is no string or a bad DicomInstances
    known = upload(hub.client, make_dicom())["ID"]
    for body in (
        {"Resources": ["nope"]},
        {"Resources": ["0" * 8]},
        {"Resources": ["-".join(["0" * 8] * 5)]},
        {"Resources": [known, "nope", 3]},
        {"Resources": ["nope"], "DicomInstances": "x"},
    ):
        response = hub.client.post(url, json=body)
        error = assert_orthanc_error(response, 404, "Unknown resource", 17)
        assert "Details" not in error, body
    # empty UIDs: checked after the modality (unknown: 404 first)
    body = {"DicomInstances": [{"SOPClassUID": "", "SOPInstanceUID": "1.2"}]}
    response = hub.client.post("/modalities/nope/storage-commitment", json=body)
    assert_orthanc_error(response, 404, "Accessing an inexistent item", 7)
    response = hub.client.post(url, json=body)
    error = assert_orthanc_error(response, 400, "Parameter out of range", 3)
    assert error["Details"] == 'The SOP class/instance UIDs cannot be empty, found: "" / "1.2"'


def test_remove_refused_while_pending(make_server: Any) -> None:
    """A peer that acknowledges the N-ACTION and never reports: still pending, and
    removing is refused as after a failure (Orthanc's words and 500)."""
    ae = AE(ae_title="SILENT")
    ae.add_supported_context(StorageCommitmentPushModel)
    port = free_port()
    peer = ae.start_server(
        (LOOPBACK, port),
        block=False,
        evt_handlers=[(evt.EVT_N_ACTION, lambda _event: (0x0000, None))],
    )
    try:
        hub = make_server(DicomModalities={"silent": ["SILENT", LOOPBACK, port]})
        body = {"DicomInstances": [[CT_IMAGE_STORAGE, generate_uid()]]}
        response = hub.client.post("/modalities/silent/storage-commitment", json=body)
        assert response.status_code == 200, response.text
        uid = response.json()["ID"]
        assert hub.client.get(f"/storage-commitment/{uid}").json() == {
            "RemoteAET": "SILENT",
            "Status": "Pending",
        }
        response = hub.client.post(f"/storage-commitment/{uid}/remove")
        error = assert_orthanc_error(response, 500, "Bad sequence of calls", 6)
        assert error["Details"].endswith(f"storage commitment transaction: {uid}")
    finally:
        peer.shutdown()


class ReportListener:
    """A pynetdicom SCU of storage commitment: asks, and takes the report on its own
    listener (the SCP sends it on a new association)."""

    def __init__(self, aet: str = "PYCOMMIT") -> None:
        self.aet = aet
        self.port = free_port()
        self.reports: list[tuple[int, Dataset]] = []
        self.received = threading.Event()
        self.ae = AE(ae_title=aet)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = 10
        self.ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        self.ae.add_requested_context(StorageCommitmentPushModel)
        self.server = self.ae.start_server(
            (LOOPBACK, self.port),
            block=False,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report)],
        )

    def _on_report(self, event: evt.Event) -> tuple[int, None]:
        self.reports.append((int(event.request.EventTypeID), event.event_information))
        self.received.set()
        return 0x0000, None

    def ask(
        self,
        port: int,
        uid: str,
        refs: list[tuple[str, str]],
        instance: str = "1.2.840.10008.1.20.1.1",
    ) -> Dataset | None:
        assoc = self.ae.associate(LOOPBACK, port, ae_title="ORTHANC")
        assert assoc.is_established
        info = Dataset()
        info.TransactionUID = uid
        items = []
        for sop_class, sop in refs:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop
            items.append(item)
        info.ReferencedSOPSequence = items
        status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel, instance)
        if assoc.is_established:
            assoc.release()
        return status

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def listener() -> Any:
    peer = ReportListener()
    try:
        yield peer
    finally:
        peer.stop()


def test_scp_report_on_the_wire(make_server: Any, listener: ReportListener) -> None:
    server = make_server(
        DicomBindAddress=LOOPBACK,
        DicomModalities={
            "py": [listener.aet, LOOPBACK, listener.port],
            "nocommit": {
                "AET": "NOCOMMIT",
                "Host": LOOPBACK,
                "Port": 104,
                "AllowStorageCommitment": False,
            },
        },
    )
    port = dicom_port(server)
    kept = generate_uid()
    upload(server.client, make_dicom(sop_uid=kept))
    uid, missing = generate_uid(), generate_uid()
    status = listener.ask(port, uid, [(CT_IMAGE_STORAGE, kept), (CT_IMAGE_STORAGE, missing)])
    assert status is not None and status.Status == 0x0000
    assert listener.received.wait(15)
    [(event_type, info)] = listener.reports
    assert event_type == 2  # some failures
    assert info.TransactionUID == uid
    assert [i.ReferencedSOPInstanceUID for i in info.ReferencedSOPSequence] == [kept]
    [failed] = info.FailedSOPSequence
    assert (failed.ReferencedSOPInstanceUID, failed.FailureReason) == (missing, NO_SUCH_OBJECT)
    # everything there: event type 1, no failure sequence
    listener.received.clear()
    uid = generate_uid()
    listener.ask(port, uid, [(CT_IMAGE_STORAGE, kept)])
    assert listener.received.wait(15)
    event_type, info = listener.reports[-1]
    assert (event_type, info.TransactionUID) == (1, uid)
    assert "FailedSOPSequence" not in info
    # nothing committed: ReferencedSOPSequence is still there, empty (Orthanc refuses a
    # report without it), for an empty request and for one whose items all fail
    for refs, expected_type in (([], 1), ([(MR_IMAGE_STORAGE, kept)], 2)):
        listener.received.clear()
        uid = generate_uid()
        status = listener.ask(port, uid, refs)
        assert status is not None and status.Status == 0x0000
        assert listener.received.wait(15)
        event_type, info = listener.reports[-1]
        assert (event_type, info.TransactionUID) == (expected_type, uid)
        assert "ReferencedSOPSequence" in info and len(info.ReferencedSOPSequence) == 0
        assert len(info.get("FailedSOPSequence", [])) == len(refs)
    # a modality that may not ask: the association is aborted
    other = AE(ae_title="NOCOMMIT")
    other.add_requested_context(StorageCommitmentPushModel)
    assoc = other.associate(LOOPBACK, port, ae_title="ORTHANC")
    assert assoc.is_established
    info = Dataset()
    info.TransactionUID = generate_uid()
    info.ReferencedSOPSequence = []
    status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
    assert not status  # aborted
    assert "Rejected NAction request" in (server.folder / "server.log").read_text()


def test_scp_refuses_another_sop_instance(make_server: Any, listener: ReportListener) -> None:
    """Orthanc leaves such an N-ACTION unanswered; we refuse it at once: 0x0117
    (invalid object instance), and no report follows."""
    server = make_server(
        DicomBindAddress=LOOPBACK,
        DicomModalities={"py": [listener.aet, LOOPBACK, listener.port]},
    )
    port = dicom_port(server)
    kept = generate_uid()
    upload(server.client, make_dicom(sop_uid=kept))
    status = listener.ask(port, generate_uid(), [(CT_IMAGE_STORAGE, kept)], instance="1.2.3")
    assert status is not None and status.Status == 0x0117
    assert not listener.received.wait(2)
    # the push model's instance is served as before
    status = listener.ask(port, generate_uid(), [(CT_IMAGE_STORAGE, kept)])
    assert status is not None and status.Status == 0x0000
    assert listener.received.wait(15)


# ---- the reference Orthanc ----------------------------------------------------
def test_same_reports_as_orthanc(make_server: Any) -> None:
    """The oracle asks us and asks itself about the same instances: same reports; we
    ask the oracle and get the report the oracle gets from itself."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    aet = "SC" + uuid.uuid4().hex[:8].upper()
    port = free_port()
    names = (f"sc-self-{aet}", f"sc-hub-{aet}")
    kept = generate_uid()
    data = make_dicom(sop_uid=kept)
    added: list[str] = []
    try:
        added.append(upload(oracle, data)["ID"])
        system = oracle.get("/system").json()
        oracle_aet, oracle_port = system["DicomAet"], system["DicomPort"]
        oracle.put(f"/modalities/{names[0]}", json=[oracle_aet, LOOPBACK, oracle_port])
        oracle.put(f"/modalities/{names[1]}", json=[aet, LOOPBACK, port])
        hub = make_server(
            DicomAet=aet,
            DicomPort=port,
            DicomModalities={"oracle": [oracle_aet, LOOPBACK, oracle_port]},
        )
        dicom_port(hub)
        upload(hub.client, data)
        body = {
            "DicomInstances": [
                {"SOPClassUID": CT_IMAGE_STORAGE, "SOPInstanceUID": kept},
                {"SOPClassUID": CT_IMAGE_STORAGE, "SOPInstanceUID": generate_uid()},
                {"SOPClassUID": MR_IMAGE_STORAGE, "SOPInstanceUID": kept},
            ]
        }
        reference_uid = oracle.post(f"/modalities/{names[0]}/storage-commitment", json=body)
        reference = wait_report(oracle, reference_uid.json()["ID"])
        # the oracle asks us: our SCP's answer, as the oracle records it
        theirs = oracle.post(f"/modalities/{names[1]}/storage-commitment", json=body)
        assert theirs.status_code == 200, theirs.text
        via_us = wait_report(oracle, theirs.json()["ID"])
        assert via_us["Status"] == "Failure"
        assert {**via_us, "RemoteAET": oracle_aet} == reference
        # we ask the oracle: our SCU's record of the oracle's answer
        ours = hub.client.post("/modalities/oracle/storage-commitment", json=body)
        assert ours.status_code == 200, ours.text
        assert wait_report(hub.client, ours.json()["ID"]) == reference
    finally:
        for name in names:
            oracle.delete(f"/modalities/{name}")
        for instance in added:
            oracle.delete(f"/instances/{instance}")
        oracle.close()
