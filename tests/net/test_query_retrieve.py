"""Query/retrieve over REST (``/modalities/{id}/query``, ``/queries``, ``move``, ``get``,
the ``find-*`` routes) against real peers: a second dicomhub, dcmtk's ``dcmqrscp``,
and the reference Orthanc (answers compared with its own, skipped when it is away).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload
from conftest import RunningServer, free_port, unused_port
from dicom_factory import make_dicom
from pydicom.uid import generate_uid

from net import LOOPBACK, dcmtk, dicom_port, wait_port

ALLOW_ALL = {
    "DicomAlwaysAllowFind": True,
    "DicomAlwaysAllowMove": True,
    "DicomAlwaysAllowGet": True,
}


class Pair:
    """``hub`` (AET HUB) knows ``source`` (AET SOURCE) as modality "source"; the source
    knows the hub as a C-MOVE destination. Data lives in the source."""

    def __init__(self, make_server: Any, **hub_config: Any) -> None:
        hub_port = free_port()
        self.source = make_server(
            DicomAet="SOURCE",
            DicomModalities={"hub": ["HUB", LOOPBACK, hub_port]},
            **ALLOW_ALL,
        )
        source_port = dicom_port(self.source)
        self.hub = make_server(
            DicomAet="HUB",
            DicomPort=hub_port,
            DicomModalities={"source": ["SOURCE", LOOPBACK, source_port]},
            **hub_config,
        )
        dicom_port(self.hub)
        self.studies: dict[str, str] = {}
        self.series: dict[str, list[str]] = {}
        self.instances: dict[str, list[str]] = {}

    def load(self, patients: int = 2) -> None:
        """Per patient QR<n>: one study, a CT and an MR series of two instances each."""
        for p in range(patients):
            patient_id = f"QR{p}"
            study = self.studies[patient_id] = generate_uid()
            self.series[study] = []
            for modality in ("CT", "MR"):
                series = generate_uid()
                self.series[study].append(series)
                for _ in range(2):
                    sop = generate_uid()
                    self.instances.setdefault(series, []).append(sop)
                    data = make_dicom(
                        patient_id=patient_id,
                        patient_name=f"Doe^Qr{p}",
                        study_uid=study,
                        series_uid=series,
                        sop_uid=sop,
                        modality=modality,
                    )
                    upload(self.source.client, data)


@pytest.fixture
def pair(make_server: Any) -> Pair:
    pair = Pair(make_server)
    pair.load()
    return pair


def query(client: httpx.Client, modality: str = "source", **body: Any) -> str:
    response = client.post(f"/modalities/{modality}/query", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["Path"] == f"/queries/{answer['ID']}"
    return answer["ID"]


def answers(client: httpx.Client, query_id: str) -> list[dict[str, str]]:
    response = client.get(f"/queries/{query_id}/answers?expand&simplify")
    assert response.status_code == 200, response.text
    return response.json()


def sop_uids(client: httpx.Client) -> set[str]:
    found = client.post("/tools/find", json={"Level": "Instance", "Query": {}, "Expand": True})
    assert found.status_code == 200, found.text
    return {i["MainDicomTags"]["SOPInstanceUID"] for i in found.json()}


# ---- C-FIND -------------------------------------------------------------------
def test_study_query_and_its_routes(pair: Pair) -> None:
    client = pair.hub.client
    qid = query(client, Level="Study", Query={"PatientID": "QR1", "StudyDescription": ""})
    assert client.get(f"/queries/{qid}").json() == [
        "answers",
        "level",
        "modality",
        "query",
        "retrieve",
    ]
    assert client.get(f"/queries/{qid}/answers").json() == ["0"]
    [answer] = answers(client, qid)
    # the identifying keys of the level are added to the query, as Orthanc does
    assert answer == {
        "AccessionNumber": "ACCQR1",
        "PatientID": "QR1",
        "QueryRetrieveLevel": "STUDY",
        "RetrieveAETitle": "SOURCE",
        "SpecificCharacterSet": "ISO_IR 100",
        "StudyDescription": "Test study",
        "StudyInstanceUID": pair.studies["QR1"],
    }
    full = client.get(f"/queries/{qid}/answers/0/content").json()
    assert full["0010,0020"] == {"Name": "PatientID", "Type": "String", "Value": "QR1"}
    short = client.get(f"/queries/{qid}/answers/0/content?short").json()
    assert short["0020,000d"] == pair.studies["QR1"]
    expanded = client.get(f"/queries/{qid}/answers?expand").json()
    assert expanded == [full]
    assert client.get(f"/queries/{qid}/answers/0").json() == [
        "content",
        "retrieve",
        "query-series",
        "query-instances",
    ]
    level = client.get(f"/queries/{qid}/level")
    assert (level.status_code, level.text) == (200, "Study")
    assert level.headers["content-type"].startswith("text/plain")
    assert client.get(f"/queries/{qid}/modality").text == "source"
    assert client.get(f"/queries/{qid}/query?simplify").json() == {
        "PatientID": "QR1",
        "StudyDescription": "",
    }
    assert client.get(f"/queries/{qid}/query").json()["0010,0020"]["Value"] == "QR1"
    assert client.get("/queries").json() == [qid]

    # child queries carry the answer's unique key
    response = client.post(f"/queries/{qid}/answers/0/query-series", json={"Query": {}})
    assert response.status_code == 200, response.text
    series_query = response.json()["ID"]
    series = answers(client, series_query)
    assert sorted(s["SeriesInstanceUID"] for s in series) == sorted(
        pair.series[pair.studies["QR1"]]
    )
    assert {s["QueryRetrieveLevel"] for s in series} == {"SERIES"}
    assert client.get(f"/queries/{series_query}/level").text == "Series"
    response = client.post(
        f"/queries/{series_query}/answers/0/query-instances", json={"Query": {"InstanceNumber": ""}}
    )
    instances = answers(client, response.json()["ID"])
    assert len(instances) == 2
    assert {i["SeriesInstanceUID"] for i in instances} == {series[0]["SeriesInstanceUID"]}
    assert all(i["InstanceNumber"] for i in instances)
    # a study answer has no child studies
    response = client.post(f"/queries/{qid}/answers/0/query-studies", json={})
    assert_orthanc_error(response, 404, "Unknown resource", 17)

    assert client.delete(f"/queries/{qid}").status_code == 200
    assert qid not in client.get("/queries").json()
    assert_orthanc_error(client.get(f"/queries/{qid}"), 404, "Unknown resource", 17)
    assert client.delete(f"/queries/{qid}").status_code == 200  # as Orthanc: no error


def test_patient_query_lists_child_studies(pair: Pair) -> None:
    client = pair.hub.client
    qid = query(client, Level="Patient", Query={"PatientID": "QR*"})
    found = answers(client, qid)
    assert sorted(a["PatientID"] for a in found) == ["QR0", "QR1"]
    assert client.get(f"/queries/{qid}/answers/0").json() == [
        "content",
        "retrieve",
        "query-study",  # sic, Orthanc's spelling in this list
        "query-series",
        "query-instances",
    ]
    response = client.post(f"/queries/{qid}/answers/1/query-studies", json={})
    assert response.status_code == 200, response.text
    [study] = answers(client, response.json()["ID"])
    assert study["StudyInstanceUID"] == pair.studies[found[1]["PatientID"]]


def test_normalize_drops_keys_of_lower_levels(pair: Pair) -> None:
    """A study query with a series key: normalized, the key is not sent and both studies
    match; not normalized, the source (like Orthanc) matches no study on Modality."""
    client = pair.hub.client
    normalized = query(client, Level="Study", Query={"PatientID": "QR*", "Modality": "CT"})
    assert len(answers(client, normalized)) == 2
    raw = query(
        client, Level="Study", Query={"PatientID": "QR*", "Modality": "CT"}, Normalize=False
    )
    assert answers(client, raw) == []


@pytest.mark.parametrize(
    ("body", "status", "message", "code", "details"),
    [
        ([], 400, "Bad file format", 15, "Must provide a JSON object"),
        ({"Query": {}}, 400, "Bad file format", 15, "The JSON body must contain field Level"),
        ({"Level": "Bad"}, 400, "Parameter out of range", 3, None),
        (
            {"Level": "Study", "Query": []},
            400,
            "Bad file format",
            15,
            "The field Query must contain a JSON object",
        ),
        (
            {"Level": "Study", "Query": {"PatientID": 3}},
            400,
            "Bad file format",
            15,
            "Associative array of DICOM tags to strings expected in field: Query",
        ),
        (
            {"Level": "Study", "Query": {"NoSuchTag": "x"}},
            400,
            "Bad file format",
            15,
            "Associative array of DICOM tags to strings expected in field: Query",
        ),
        (
            {"Level": "Study", "Normalize": 1},
            400,
            "Bad file format",
            15,
            "The field Normalize must contain a Boolean",
        ),
        (
            {"Level": "Study", "LocalAet": 3},
            400,
            "Bad file format",
            15,
            "The field LocalAet must contain a string",
        ),
        (
            {"Level": "Study", "Timeout": "a"},
            400,
            "Bad file format",
            15,
            "Integer value expected in field: Timeout",
        ),
    ],
)
def test_bad_query_bodies(
    server: RunningServer,
    body: Any,
    status: int,
    message: str,
    code: int,
    details: str | None,
) -> None:
    """Checked before any association (the modality does not even answer here)."""
    client = server.client
    assert (
        client.put("/modalities/nobody", json=["NOBODY", LOOPBACK, unused_port()]).status_code
        == 200
    )
    response = client.post("/modalities/nobody/query", json=body)
    error = assert_orthanc_error(response, status, message, code)
    if details is not None:
        assert error["Details"] == details
    assert client.get("/queries").json() == []


def test_unknown_things(pair: Pair) -> None:
    client = pair.hub.client
    response = client.post("/modalities/nope/query", json={"Level": "Study"})
    error = assert_orthanc_error(response, 404, "Accessing an inexistent item", 7)
    assert error["Details"] == "No modality with symbolic name: nope"
    for path in ("", "/answers", "/level", "/modality", "/query", "/answers/0/content"):
        assert_orthanc_error(client.get(f"/queries/nope{path}"), 404, "Unknown resource", 17)
    response = client.post("/queries/nope/retrieve", json={})
    assert_orthanc_error(response, 404, "Unknown resource", 17)
    qid = query(client, Level="Study", Query={"PatientID": "QR0"})
    assert_orthanc_error(
        client.get(f"/queries/{qid}/answers/5/content"), 400, "Parameter out of range", 3
    )
    assert_orthanc_error(
        client.get(f"/queries/{qid}/answers/x/content"), 400, "Bad type for a parameter", 5
    )
    assert_orthanc_error(
        client.post(f"/queries/{qid}/answers/1/query-series", json={}),
        400,
        "Parameter out of range",
        3,
    )


def test_unable_to_process_is_422(pair: Pair) -> None:
    """The source refuses a wildcard on a UID with 0xC000: Orthanc's network error, 422."""
    response = pair.hub.client.post(
        "/modalities/source/query",
        json={"Level": "Study", "Query": {"StudyInstanceUID": "1.2*"}},
    )
    error = assert_orthanc_error(response, 422, "Error in the network protocol", 9)
    assert "0xC000" in error["Details"]
    assert pair.hub.client.get("/queries").json() == []


def test_computed_keys_and_lenient_names_in_a_query(pair: Pair) -> None:
    """A computed key's value goes to the peer as written, a wildcard in a number
    included (which the peer refuses: 422, as from Orthanc); the query's tag names are
    read as Orthanc reads them (``10,20`` is PatientID)."""
    client = pair.hub.client
    body = {"Level": "Study", "Query": {"PatientID": "QR*", "NumberOfStudyRelatedInstances": ""}}
    found = answers(client, query(client, **body))
    assert sorted(a["NumberOfStudyRelatedInstances"] for a in found) == ["4", "4"]
    body["Query"]["NumberOfStudyRelatedInstances"] = "4"  # no count filter: no match
    assert answers(client, query(client, **body)) == []
    for value in ("*", "4?"):
        body["Query"]["NumberOfStudyRelatedInstances"] = value
        response = client.post("/modalities/source/query", json=body)
        error = assert_orthanc_error(response, 422, "Error in the network protocol", 9)
        assert error["Details"] == (
            'C-FIND SCU to AET "SOURCE" has failed with DIMSE status 0xC000 '
            "(unable to process - invalid query ?)"
        )
    found = answers(client, query(client, Level="Patient", Query={"10,20": "QR1"}))
    assert [a["PatientID"] for a in found] == ["QR1"]


def test_unreachable_modality(server: RunningServer) -> None:
    client = server.client
    client.put("/modalities/gone", json=["GONE", LOOPBACK, unused_port()])
    response = client.post("/modalities/gone/query", json={"Level": "Study", "Timeout": 2})
    error = assert_orthanc_error(response, 500, "Error in the network protocol", 9)
    assert error["Details"] == (
        'DicomAssociation - connecting to AET "GONE": TCP Initialization Error: Connection refused'
    )
    assert client.get("/queries").json() == []


def test_query_retrieve_size_bounds_the_list(make_server: Any) -> None:
    pair = Pair(make_server, QueryRetrieveSize=2)
    client = pair.hub.client
    ids = [query(client, Level="Patient", Query={"PatientID": f"X{i}"}) for i in range(3)]
    assert client.get("/queries").json() == ids[1:]
    assert client.get(f"/queries/{ids[0]}").status_code == 404


# ---- retrieve -----------------------------------------------------------------
def test_retrieve_all_answers_synchronously(pair: Pair) -> None:
    client = pair.hub.client
    qid = query(client, Level="Study", Query={"PatientID": "QR*"})
    response = client.post(f"/queries/{qid}/retrieve", json={})
    assert response.status_code == 200, response.text
    content = response.json()
    assert content["Description"] == "REST API"
    assert (content["LocalAet"], content["RemoteAet"], content["TargetAet"]) == (
        "HUB",
        "SOURCE",
        "HUB",
    )
    assert sorted(item["0010,0020"] for item in content["Query"]) == ["QR0", "QR1"]
    assert {item["0008,0052"] for item in content["Query"]} == {"STUDY"}
    expected = {sop for sops in pair.instances.values() for sop in sops}
    assert sop_uids(client) == expected
    # the instances came in over DICOM, from the source
    instance = client.get("/instances").json()[0]
    origin = client.get(f"/instances/{instance}/metadata/RemoteAET")
    assert origin.text == "SOURCE"


def test_retrieve_one_answer_as_a_job(pair: Pair) -> None:
    client = pair.hub.client
    qid = query(client, Level="Series", Query={"PatientID": "QR0", "Modality": "MR"})
    [series] = answers(client, qid)
    response = client.post(
        f"/queries/{qid}/answers/0/retrieve",
        json={"Asynchronous": True, "Simplify": True, "UserData": {"k": 1}},
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["ID"]
    job = wait_job(client, job_id)
    assert job["State"] == "Success", job
    assert job["Type"] == "DicomMoveScu"
    assert job["UserData"] == {"k": 1}
    assert job["Content"]["Query"] == [
        {
            "AccessionNumber": "ACCQR0",
            "PatientID": "QR0",
            "QueryRetrieveLevel": "SERIES",
            "SeriesInstanceUID": series["SeriesInstanceUID"],
            "StudyInstanceUID": pair.studies["QR0"],
        }
    ]
    assert sop_uids(client) == set(pair.instances[series["SeriesInstanceUID"]])


def test_retrieve_with_plain_text_target_and_c_get(pair: Pair) -> None:
    client = pair.hub.client
    qid = query(client, Level="Study", Query={"PatientID": "QR0"})
    # plain text body: the target AET (an unknown one: the source refuses with 0xA801)
    response = client.post(f"/queries/{qid}/answers/0/retrieve", content=b"NOWHERE")
    error = assert_orthanc_error(response, 500, "Error in the network protocol", 9)
    assert "0xA801" in error["Details"]
    assert sop_uids(client) == set()
    response = client.post(f"/queries/{qid}/retrieve", json={"RetrieveMethod": "C-GET"})
    assert response.status_code == 200, response.text
    assert "TargetAet" not in response.json()
    study = pair.studies["QR0"]
    assert sop_uids(client) == {s for series in pair.series[study] for s in pair.instances[series]}
    response = client.post(f"/queries/{qid}/retrieve", json={"RetrieveMethod": "C-FOO"})
    assert_orthanc_error(response, 400, "Parameter out of range", 3)
    # a bad Priority is refused whether the retrieve is a job or not, as for every job route
    for body in ({"Priority": "high"}, {"Priority": 1 << 40, "Synchronous": False}):
        response = client.post(f"/queries/{qid}/retrieve", json=body)
        assert_orthanc_error(response, 400, "Bad file format", 15)


def test_modality_move_and_get_routes(pair: Pair) -> None:
    client = pair.hub.client
    study = pair.studies["QR1"]
    ct, mr = pair.series[study]
    response = client.post(
        "/modalities/source/move",
        json={
            "Level": "Series",
            "Resources": [{"StudyInstanceUID": study, "SeriesInstanceUID": ct}],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["Query"] == [
        {"0008,0052": "SERIES", "0020,000d": study, "0020,000e": ct}
    ]
    assert sop_uids(client) == set(pair.instances[ct])
    response = client.post(
        "/modalities/source/get",
        json={
            "Level": "Instance",
            "Resources": [{"SOPInstanceUID": pair.instances[mr][0]}],
            "Asynchronous": True,
        },
    )
    job = wait_job(client, response.json()["ID"])
    assert (job["State"], job["Type"]) == ("Success", "DicomGetScu"), job
    assert sop_uids(client) == set(pair.instances[ct]) | {pair.instances[mr][0]}
    # a resource that the source does not have: "unable to process", 422
    response = client.post(
        "/modalities/source/move",
        json={"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3.4.404"}]},
    )
    assert_orthanc_error(response, 422, "Error in the network protocol", 9)
    for body in ({"Level": "Study"}, {"Resources": []}, {"Level": "Study", "Resources": {}}, []):
        response = client.post("/modalities/source/move", json=body)
        assert_orthanc_error(response, 400, "Bad file format", 15)
    response = client.post("/modalities/nope/get", json={"Level": "Study", "Resources": []})
    assert_orthanc_error(response, 404, "Accessing an inexistent item", 7)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["State"] in ("Success", "Failure") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


# ---- the older find routes ----------------------------------------------------
def test_find_routes(pair: Pair) -> None:
    client = pair.hub.client
    study = pair.studies["QR0"]
    ct = pair.series[study][0]
    body = {"PatientID": "QR0", "StudyInstanceUID": study, "SeriesInstanceUID": ct}
    [patient] = client.post("/modalities/source/find-patient", json=body).json()
    assert patient == {
        "OtherPatientIDs": "",
        "PatientBirthDate": "19700101",
        "PatientID": "QR0",
        "PatientName": "Doe^Qr0",
        "PatientSex": "M",
        "QueryRetrieveLevel": "PATIENT",
        "RetrieveAETitle": "SOURCE",
        "SpecificCharacterSet": "ISO_IR 100",
    }
    [found] = client.post("/modalities/source/find-study", json=body).json()
    assert set(found) == {
        "AccessionNumber",
        "PatientID",
        "QueryRetrieveLevel",
        "ReferringPhysicianName",
        "RetrieveAETitle",
        "SpecificCharacterSet",
        "StudyDate",
        "StudyDescription",
        "StudyID",
        "StudyInstanceUID",
        "StudyTime",
    }
    series = client.post("/modalities/source/find-series", json=body).json()
    assert [s["SeriesInstanceUID"] for s in series] == [ct]
    assert series[0]["Modality"] == "CT"
    instances = client.post("/modalities/source/find-instance", json=body).json()
    assert sorted(i["SOPInstanceUID"] for i in instances) == sorted(pair.instances[ct])
    [tree] = client.post("/modalities/source/find", json={"PatientID": "QR0"}).json()
    assert [s["StudyInstanceUID"] for s in tree["Studies"]] == [study]
    assert len(tree["Studies"][0]["Series"]) == 2
    # too broad: Orthanc answers 400 with no body rather than query everything
    response = client.post("/modalities/source/find-study", json={"PatientID": "Q*"})
    assert (response.status_code, response.content) == (400, b"")


# ---- dcmtk's dcmqrscp as the remote archive ------------------------------------
class DcmQrScp:
    """dcmtk's query/retrieve SCP over a folder indexed with dcmqridx."""

    def __init__(self, folder: Path, hub_port: int) -> None:
        self.port = free_port()
        self.aet = "DCMQR"
        storage = folder / "db"
        storage.mkdir(parents=True)
        config = folder / "dcmqrscp.cfg"
        config.write_text(
            f"NetworkTCPPort = {self.port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
            "HostTable BEGIN\n"
            f"hub = (HUB, {LOOPBACK}, {hub_port})\n"
            "HostTable END\nVendorTable BEGIN\nVendorTable END\n"
            "AETable BEGIN\n"
            f"{self.aet} {storage} RW (200, 1024mb) ANY\n"
            "AETable END\n"
        )
        self.storage = storage
        self.config = config
        self.log = open(folder / "dcmqrscp.log", "wb")  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    def add(self, files: list[Path]) -> None:
        subprocess.run(
            [dcmtk("dcmqridx"), str(self.storage), *map(str, files)], check=True, timeout=30
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [dcmtk("dcmqrscp"), "-c", str(self.config), "-d", str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def dcmqrscp(tmp_path: Path) -> Iterator[tuple[DcmQrScp, int]]:
    hub_port = free_port()
    peer = DcmQrScp(tmp_path / "dcmqr", hub_port)
    try:
        yield peer, hub_port
    finally:
        peer.stop()


def test_query_and_retrieve_from_dcmqrscp(
    make_server: Any, dcmqrscp: tuple[DcmQrScp, int], tmp_path: Path
) -> None:
    peer, hub_port = dcmqrscp
    study, series_uid = generate_uid(), generate_uid()
    files = []
    for number in range(3):
        path = tmp_path / f"f{number}.dcm"
        path.write_bytes(make_dicom(patient_id="DCMQR1", study_uid=study, series_uid=series_uid))
        files.append(path)
    peer.add(files)
    peer.start()
    hub = make_server(
        DicomAet="HUB",
        DicomPort=hub_port,
        DicomModalities={"dcmqr": [peer.aet, LOOPBACK, peer.port]},
    )
    dicom_port(hub)
    client = hub.client
    qid = query(client, "dcmqr", Level="Study", Query={"PatientID": "DCMQR1"})
    [answer] = answers(client, qid)
    assert answer["StudyInstanceUID"] == study
    response = client.post(f"/queries/{qid}/answers/0/query-series", json={})
    [series] = answers(client, response.json()["ID"])
    assert series["SeriesInstanceUID"] == series_uid
    response = client.post(f"/queries/{qid}/retrieve", json={})
    assert response.status_code == 200, response.text
    assert len(client.get("/instances").json()) == 3
    # C-GET from dcmqrscp too, after deleting what came
    for instance in client.get("/instances").json():
        client.delete(f"/instances/{instance}")
    response = client.post(f"/queries/{qid}/retrieve", json={"RetrieveMethod": "C-GET"})
    assert response.status_code == 200, response.text
    assert len(client.get("/instances").json()) == 3


# ---- the reference Orthanc ----------------------------------------------------
def test_same_answers_as_orthanc(make_server: Any) -> None:
    """dicomhub queries the oracle; the oracle queries itself: same answers, same
    shapes; then dicomhub retrieves from the oracle."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    aet = "QR" + uuid.uuid4().hex[:8].upper()
    hub_port = free_port()
    patient_id = "QRO" + uuid.uuid4().hex[:6]
    study = generate_uid()
    names = (f"qr-self-{aet}", f"qr-hub-{aet}")
    added: list[str] = []
    try:
        for _ in range(2):
            added.append(upload(oracle, make_dicom(patient_id=patient_id, study_uid=study))["ID"])
        system = oracle.get("/system").json()
        oracle_aet, oracle_port = system["DicomAet"], system["DicomPort"]
        assert (
            oracle.put(
                f"/modalities/{names[0]}", json=[oracle_aet, LOOPBACK, oracle_port]
            ).status_code
            == 200
        )
        assert (
            oracle.put(f"/modalities/{names[1]}", json=[aet, LOOPBACK, hub_port]).status_code == 200
        )
        hub = make_server(
            DicomAet=aet,
            DicomPort=hub_port,
            DicomModalities={"oracle": [oracle_aet, LOOPBACK, oracle_port]},
        )
        dicom_port(hub)
        body = {"Level": "Series", "Query": {"PatientID": patient_id, "Modality": ""}}
        ours = query(hub.client, "oracle", **body)
        theirs = oracle.post(f"/modalities/{names[0]}/query", json=body).json()["ID"]
        for path in (
            "",
            "/answers",
            "/answers?expand",
            "/answers?expand&simplify",
            "/answers/0",
            "/answers/0/content?short",
            "/query",
            "/query?simplify",
        ):
            mine = hub.client.get(f"/queries/{ours}{path}")
            reference = oracle.get(f"/queries/{theirs}{path}")
            assert mine.status_code == reference.status_code == 200, path
            assert mine.json() == reference.json(), path
        assert (
            hub.client.get(f"/queries/{ours}/level").text
            == oracle.get(f"/queries/{theirs}/level").text
        )
        mine = hub.client.get(f"/queries/{ours}/answers/9")
        reference = oracle.get(f"/queries/{theirs}/answers/9")
        assert mine.status_code == reference.status_code == 400
        assert mine.json()["Message"] == reference.json()["Message"]
        oracle.delete(f"/queries/{theirs}")

        response = hub.client.post(f"/queries/{ours}/retrieve", json={})
        assert response.status_code == 200, response.text
        content = response.json()
        assert content["RemoteAet"] == oracle_aet and content["TargetAet"] == aet
        assert sorted(hub.client.get("/instances").json()) == sorted(added)
    finally:
        for name in names:
            oracle.delete(f"/modalities/{name}")
        for instance in added:
            oracle.delete(f"/instances/{instance}")
        oracle.close()
