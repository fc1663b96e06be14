"""A modality's own ``RetrieveMethod`` (Orthanc 1.12.6) for ``/queries/.../retrieve``, and
the ``MediaStorageSOPInstanceUID`` that Orthanc's C-FIND SCU puts in its instance
queries and answers (compared with the reference, which a pynetdicom peer observes)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload
from dicom_factory import make_dicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from net import LOOPBACK, dicom_port

#: The source lets anyone find and get, but knows no C-MOVE destination: a C-MOVE
#: fails (0xA801), a C-GET brings the instances back on the same association.
SOURCE = {"DicomAet": "SOURCE", "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True}


def _source_with_study(make_server: Any) -> tuple[Any, str, set[str]]:
    source = make_server(**SOURCE)
    study = generate_uid()
    sops = {generate_uid() for _ in range(3)}
    series = generate_uid()
    for sop in sops:
        upload(
            source.client,
            make_dicom(patient_id="RM1", study_uid=study, series_uid=series, sop_uid=sop),
        )
    return source, study, sops


def _sops(client: httpx.Client) -> set[str]:
    found = client.post("/tools/find", json={"Level": "Instance", "Query": {}, "Expand": True})
    return {i["MainDicomTags"]["SOPInstanceUID"] for i in found.json()}


def _query(client: httpx.Client) -> str:
    response = client.post(
        "/modalities/source/query", json={"Level": "Study", "Query": {"PatientID": "RM1"}}
    )
    assert response.status_code == 200, response.text
    return response.json()["ID"]


def test_modality_retrieve_method_is_used_without_a_body_one(make_server: Any) -> None:
    source, _, sops = _source_with_study(make_server)
    entry = {
        "AET": "SOURCE",
        "Host": LOOPBACK,
        "Port": dicom_port(source),
        "RetrieveMethod": "C-GET",
    }
    hub = make_server(DicomAet="HUB", DicomModalities={"source": entry})
    configuration = hub.client.get("/modalities/source/configuration").json()
    assert configuration["RetrieveMethod"] == "C-GET"
    qid = _query(hub.client)
    # the body's method wins: C-MOVE, refused since the source does not know HUB
    response = hub.client.post(f"/queries/{qid}/retrieve", json={"RetrieveMethod": "C-MOVE"})
    assert_orthanc_error(response, 500, "Error in the network protocol", 9)
    assert _sops(hub.client) == set()
    # no method in the body: the modality's C-GET, before DicomDefaultRetrieveMethod
    response = hub.client.post(f"/queries/{qid}/retrieve", json={})
    assert response.status_code == 200, response.text
    assert "TargetAet" not in response.json()  # a C-GET has no target
    assert _sops(hub.client) == sops


def test_system_default_falls_back_to_the_global_option(make_server: Any) -> None:
    source, _, sops = _source_with_study(make_server)
    port = dicom_port(source)
    hub = make_server(
        DicomAet="HUB",
        DicomDefaultRetrieveMethod="C-GET",
        DicomModalities={"source": {"AET": "SOURCE", "Host": LOOPBACK, "Port": port}},
    )
    assert hub.client.get("/modalities/source/configuration").json()["RetrieveMethod"] == (
        "SystemDefault"
    )
    qid = _query(hub.client)
    assert hub.client.post(f"/queries/{qid}/retrieve", content=b"").status_code == 200
    assert _sops(hub.client) == sops
    # a modality saying C-MOVE overrides the global C-GET
    put = hub.client.put(
        "/modalities/source",
        json={"AET": "SOURCE", "Host": LOOPBACK, "Port": port, "RetrieveMethod": "C-MOVE"},
    )
    assert put.status_code == 200
    qid = _query(hub.client)
    response = hub.client.post(f"/queries/{qid}/retrieve", json={})
    assert_orthanc_error(response, 500, "Error in the network protocol", 9)


def test_bad_retrieve_method_in_modality(make_server: Any) -> None:
    hub = make_server()
    body = {"AET": "X", "Host": LOOPBACK, "Port": 104}
    bad = hub.client.put("/modalities/x", json={**body, "RetrieveMethod": "C-FOO"})
    assert_orthanc_error(bad, 400, "Parameter out of range", 3)
    bad = hub.client.put("/modalities/x", json={**body, "RetrieveMethod": 1})
    assert_orthanc_error(bad, 400, "Bad file format", 15)
    assert hub.client.get("/modalities").json() == []


# ---- MediaStorageSOPInstanceUID in instance-level C-FIND ------------------------
class FindProbe:
    """A pynetdicom C-FIND SCP that records the identifiers it gets and answers each
    with the same keys, identifying keys filled in (no group 0002 in the answer)."""

    VALUES = {
        "PatientID": "PROBE01",
        "StudyInstanceUID": "1.2.826.0.1.3680043.10.1",
        "SeriesInstanceUID": "1.2.826.0.1.3680043.10.1.2",
        "SOPInstanceUID": "1.2.826.0.1.3680043.10.1.2.3",
    }

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            self.port = probe.getsockname()[1]
        self.queries: list[Dataset] = []
        ae = AE("PROBE")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(PatientRootQueryRetrieveInformationModelFind)
        handlers = [(evt.EVT_C_FIND, self._on_find)]
        self.server = ae.start_server((LOOPBACK, self.port), block=False, evt_handlers=handlers)

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        self.queries.append(query)
        answer = Dataset()
        for elem in query:
            if elem.tag.group != 0x0002:
                answer.add(elem)
        for name, value in self.VALUES.items():
            if name in answer:
                setattr(answer, name, value)
        yield 0xFF00, answer
        yield 0x0000, None

    def entry(self) -> dict[str, Any]:
        return {"AET": "PROBE", "Host": LOOPBACK, "Port": self.port}


@pytest.fixture
def probe() -> Iterator[FindProbe]:
    found = FindProbe()
    yield found
    found.server.shutdown()


def _find_instance(client: httpx.Client, probe: FindProbe) -> tuple[list[dict[str, Any]], set[str]]:
    probe.queries.clear()
    body = {
        "PatientID": FindProbe.VALUES["PatientID"],
        "StudyInstanceUID": FindProbe.VALUES["StudyInstanceUID"],
        "SeriesInstanceUID": FindProbe.VALUES["SeriesInstanceUID"],
    }
    response = client.post("/modalities/probe/find-instance", json=body)
    assert response.status_code == 200, response.text
    [query] = probe.queries
    return response.json(), {elem.keyword for elem in query}


def test_find_instance_media_storage_uid_like_orthanc(make_server: Any, probe: FindProbe) -> None:
    hub = make_server(DicomModalities={"probe": probe.entry()})
    answers, asked = _find_instance(hub.client, probe)
    sop = FindProbe.VALUES["SOPInstanceUID"]
    assert "MediaStorageSOPInstanceUID" in asked
    [answer] = answers
    assert answer["MediaStorageSOPInstanceUID"] == sop == answer["SOPInstanceUID"]
    # /queries answers at instance level carry it as well; study answers do not
    response = hub.client.post(
        "/modalities/probe/query",
        json={
            "Level": "Instance",
            "Query": {"SeriesInstanceUID": FindProbe.VALUES["SeriesInstanceUID"]},
        },
    )
    qid = response.json()["ID"]
    content = hub.client.get(f"/queries/{qid}/answers/0/content?simplify").json()
    assert content["MediaStorageSOPInstanceUID"] == sop
    [study] = hub.client.post("/modalities/probe/find-study", json={"PatientID": "PROBE01"}).json()
    assert "MediaStorageSOPInstanceUID" not in study

    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    name = f"probe-{probe.port}"
    try:
        assert oracle.put(f"/modalities/{name}", json=probe.entry()).status_code == 200
        probe.queries.clear()
        theirs = oracle.post(
            f"/modalities/{name}/find-instance",
            json={
                "PatientID": FindProbe.VALUES["PatientID"],
                "StudyInstanceUID": FindProbe.VALUES["StudyInstanceUID"],
                "SeriesInstanceUID": FindProbe.VALUES["SeriesInstanceUID"],
            },
        )
        [their_query] = probe.queries
        assert {elem.keyword for elem in their_query} == asked
        assert theirs.json() == answers
    finally:
        oracle.delete(f"/modalities/{name}")
        oracle.close()


# ---- outgoing associations -------------------------------------------------------
def test_outgoing_associations_turn_nagle_off(probe: FindProbe) -> None:
    """Every outgoing association (store, find, move, get SCU) disables Nagle's
    algorithm: with it, each C-STORE sub-operation waited for a delayed ACK."""
    from dicomhub.core.modalities import RemoteModality
    from dicomhub.net.scu import _ae, _associate

    ae = _ae("HUB", 10)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    with _associate(ae, RemoteModality("PROBE", LOOPBACK, probe.port)) as assoc:
        sock = assoc.dul.socket.socket
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
