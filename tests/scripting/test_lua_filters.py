"""Orthanc's synchronous Lua filters, driven by real scripts against a real server and
real DICOM peers, and compared with Orthanc itself.

Orthanc's answers come from a throw-away Orthanc (the Debian package, 1.10.1) started
here on free loopback ports with the same script; those tests are skipped when the
``Orthanc`` binary is missing. What each filter saw is what the script ``print``ed
(``Lua says: ...`` in both servers' logs).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from archive_checks import wait_until
from conftest import RunningServer, free_port
from dicom_factory import make_dicom
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
)

LOOPBACK = "127.0.0.1"
PENDING = 0xFF00

FILTERS = """
function ReceivedInstanceFilter(dicom, origin, info)
  print("RIF " .. dicom.PatientID .. " " .. DumpJson(origin) .. " " .. DumpJson(info))
  if dicom.PatientID == "REFUSE" then return false end
  if dicom.PatientID == "ERROR" then error("refused by an error") end
  if dicom.PatientID == "NOTBOOL" then return 1 end
  return true
end

function IncomingHttpRequestFilter(method, uri, ip, username, headers)
  if headers["x-probe"] then
    print("HTTP " .. method .. " " .. uri .. " " .. ip .. " [" .. username .. "] "
          .. headers["x-probe"] .. " " .. tostring(headers["X-Probe"]))
  end
  if uri == "/forbidden" or headers["x-deny"] then return false end
  if headers["x-fail"] then error("failing on purpose") end
  if headers["x-notbool"] then return "yes" end
  return true
end

function IncomingFindRequestFilter(query, origin)
  print("FIND " .. DumpJson(query, true) .. " " .. DumpJson(origin))
  if query["0010,0020"] == "REWRITE" then query["0010,0020"] = "FILTERPAT" end
  query["0008,0050"] = nil
  return query
end
"""


# ---- peers -------------------------------------------------------------------------
def cstore(port: int, data: bytes, called: str = "ORTHANC", calling: str = "LUASCU") -> int:
    """One C-STORE with pynetdicom; answers the status."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(LOOPBACK, port, ae_title=called)
    assert assoc.is_established
    try:
        import io

        status = assoc.send_c_store(dcmread(io.BytesIO(data)))
        return int(status.Status)
    finally:
        assoc.release()


def cfind(port: int, called: str = "ORTHANC", **keys: Any) -> tuple[list[int], list[Dataset]]:
    ae = AE(ae_title="LUAFIND")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate(LOOPBACK, port, ae_title=called)
    assert assoc.is_established
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    statuses: list[int] = []
    answers: list[Dataset] = []
    try:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            if not status:
                statuses.append(-1)
                break
            statuses.append(int(status.Status))
            if identifier is not None and status.Status == PENDING:
                answers.append(identifier)
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses, answers


def said(log: Path, prefix: str) -> list[str]:
    """What the scripts printed starting with ``prefix``."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    found = []
    for line in lines:
        match = re.search(r"Lua says: (.*)$", line)
        if match and match.group(1).startswith(prefix):
            found.append(match.group(1))
    return found


def _wait(predicate: Callable[[], Any], timeout: float = 15) -> Any:
    return wait_until(predicate, timeout)


# ---- servers -----------------------------------------------------------------------
class Peer:
    """One server under test: its REST client, DICOM port and log."""

    def __init__(self, client: httpx.Client, dicom_port: int, log: Path) -> None:
        self.client = client
        self.dicom_port = dicom_port
        self.log = log


def _ours(server: RunningServer) -> Peer:
    port = int(server.config["DicomPort"])
    _wait(lambda: _listening(port))
    return Peer(server.client, port, server.folder / "server.log")


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def script(tmp_path: Path) -> str:
    path = tmp_path / "filters.lua"
    path.write_text(FILTERS)
    return str(path)


@pytest.fixture
def ours(make_server: Callable[..., RunningServer], script: str) -> Peer:
    return _ours(
        make_server(LuaScripts=[script], DicomAlwaysAllowFind=True, DicomBindAddress=LOOPBACK)
    )


@pytest.fixture
def orthanc(tmp_path: Path, script: str) -> Iterator[Peer]:
    """A throw-away Orthanc with the same script, stopped by its own handle."""
    binary = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )
    if binary is None:
        pytest.skip("Orthanc is not installed")
    folder = tmp_path / "orthanc"
    folder.mkdir()
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "LuaFilters",
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomAlwaysAllowFind": True,
        "LuaScripts": [script],
        "Plugins": [],
    }
    (folder / "config.json").write_text(json.dumps(config))
    log = folder / "orthanc.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [binary, str(folder / "config.json")], stdout=output, stderr=output
        )
    client = httpx.Client(base_url=f"http://{LOOPBACK}:{http_port}", timeout=30)
    try:
        try:
            _wait(lambda: _answers(client) and _listening(dicom_port), timeout=20)
        except AssertionError:
            pytest.skip("Orthanc did not start")
        yield Peer(client, dicom_port, log)
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/system").status_code == 200
    except httpx.HTTPError:
        return False


# ---- ReceivedInstanceFilter --------------------------------------------------------
def _received_instance_answers(peer: Peer) -> dict[str, Any]:
    """What a server answers to REST uploads the filter accepts, refuses or fails on."""
    result: dict[str, Any] = {}
    for patient in ("ACCEPT", "REFUSE", "ERROR", "NOTBOOL"):
        answer = peer.client.post("/instances", content=make_dicom(patient_id=patient))
        body = answer.json()
        stored = "ID" in body and peer.client.get(f"/instances/{body['ID']}").status_code == 200
        shape = {k: v for k, v in body.items() if k not in ("Details",)}
        for key in ("ID", "ParentPatient", "ParentStudy", "ParentSeries", "Path"):
            if key in shape:
                shape[key] = "<id>"
        result[patient] = (answer.status_code, shape, stored)
    return result


def test_received_instance_filter_over_rest(ours: Peer) -> None:
    answers = _received_instance_answers(ours)
    assert answers["ACCEPT"][0] == 200 and answers["ACCEPT"][1]["Status"] == "Success"
    assert answers["ACCEPT"][2]
    # Refused: Orthanc answers 200 with the identifiers and "FilteredOut", stores nothing.
    assert answers["REFUSE"] == (
        200,
        {
            "ID": "<id>",
            "ParentPatient": "<id>",
            "ParentSeries": "<id>",
            "ParentStudy": "<id>",
            "Path": "<id>",
            "Status": "FilteredOut",
        },
        False,
    )
    assert answers["ERROR"][0] == 500 and answers["ERROR"][1]["OrthancStatus"] == 2031
    assert answers["NOTBOOL"][0] == 500 and answers["NOTBOOL"][1]["OrthancStatus"] == 2034
    assert ours.client.get("/patients").json() and len(ours.client.get("/instances").json()) == 1
    seen = said(ours.log, "RIF ACCEPT")
    assert seen == [
        'RIF ACCEPT {"RemoteIp":"127.0.0.1","RequestOrigin":"RestApi","Username":""} '
        '{"HasPixelData":true,"TransferSyntaxUID":"1.2.840.10008.1.2.1"}'
    ]


def test_received_instance_filter_answers_as_orthanc(ours: Peer, orthanc: Peer) -> None:
    mine = _received_instance_answers(ours)
    theirs = _received_instance_answers(orthanc)
    for patient in ("ERROR", "NOTBOOL"):  # Lua's message differs in the chunk name only
        mine[patient][1].pop("Details", None)
        theirs[patient][1].pop("Details", None)
    assert mine == theirs
    assert said(ours.log, "RIF") == said(orthanc.log, "RIF")


def _dicom_answers(peer: Peer) -> tuple[list[int], list[str]]:
    """C-STORE statuses for instances the filter accepts, refuses and fails on, and
    the patients stored afterwards."""
    statuses = [
        cstore(peer.dicom_port, make_dicom(patient_id=patient))
        for patient in ("ACCEPT", "REFUSE", "ERROR")
    ]
    patients = [
        peer.client.get(f"/patients/{p}").json()["MainDicomTags"]["PatientID"]
        for p in peer.client.get("/patients").json()
    ]
    return statuses, patients


def test_received_instance_filter_over_dicom(ours: Peer) -> None:
    # Orthanc answers success to a refused C-STORE (backward compatibility), and "out
    # of resources" when the filter fails.
    assert _dicom_answers(ours) == ([0, 0, 0xA700], ["ACCEPT"])
    assert said(ours.log, "RIF ACCEPT") == [
        'RIF ACCEPT {"CalledAet":"ORTHANC","RemoteAet":"LUASCU","RemoteIp":"127.0.0.1",'
        '"RequestOrigin":"DicomProtocol"} '
        '{"HasPixelData":true,"TransferSyntaxUID":"1.2.840.10008.1.2.1"}'
    ]


def test_received_instance_filter_over_dicom_as_orthanc(ours: Peer, orthanc: Peer) -> None:
    assert _dicom_answers(ours) == _dicom_answers(orthanc)
    assert said(ours.log, "RIF") == said(orthanc.log, "RIF")


# ---- ReceivedCStoreInstanceFilter ----------------------------------------------------
def test_cstore_instance_filter_chooses_the_status(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    path = tmp_path / "cstore.lua"
    path.write_text(
        """
        function ReceivedCStoreInstanceFilter(dicom, origin, info)
          print("CSTORE " .. dicom.PatientID .. " " .. origin.RemoteAet .. " " .. info.TransferSyntaxUID)
          if dicom.PatientID == "FULL" then return 0xA700 end
          if dicom.PatientID == "NO" then return false end
          if dicom.PatientID == "YES" then return true end
          return 0
        end
        """
    )
    peer = _ours(make_server(LuaScripts=[str(path)], DicomBindAddress=LOOPBACK))
    assert cstore(peer.dicom_port, make_dicom(patient_id="FULL")) == 0xA700
    assert cstore(peer.dicom_port, make_dicom(patient_id="NO")) == 0xA700
    assert cstore(peer.dicom_port, make_dicom(patient_id="YES")) == 0
    assert cstore(peer.dicom_port, make_dicom(patient_id="ZERO")) == 0
    # Only C-STORE goes through it: a REST upload does not.
    assert (
        peer.client.post("/instances", content=make_dicom(patient_id="FULL")).json()["Status"]
        == "Success"
    )
    stored = sorted(
        peer.client.get(f"/patients/{p}").json()["MainDicomTags"]["PatientID"]
        for p in peer.client.get("/patients").json()
    )
    assert stored == ["FULL", "YES", "ZERO"]
    assert said(peer.log, "CSTORE FULL") == ["CSTORE FULL LUASCU 1.2.840.10008.1.2.1"]


# ---- IncomingHttpRequestFilter -------------------------------------------------------
def _http_answers(peer: Peer) -> list[tuple[int, bytes | dict[str, Any]]]:
    c = peer.client
    answers = [
        c.get("/system", headers={"X-Probe": "probe1"}),
        c.get("/forbidden"),
        c.post("/forbidden", content=b"x"),
        c.delete("/patients/nope", headers={"X-Deny": "1"}),
        c.get("/statistics?expand", headers={"X-Probe": "probe2"}),
        c.get("/system", headers={"X-Fail": "1"}),
        c.get("/system", headers={"X-NotBool": "1"}),
        # HEAD is filtered as the GET it answers like (else it would get past a filter).
        c.head("/forbidden"),
    ]
    shapes: list[tuple[int, bytes | dict[str, Any]]] = []
    for answer in answers:
        if answer.status_code == 500:
            body = answer.json()
            body.pop("Details", None)
            shapes.append((500, body))
        else:
            shapes.append(
                (answer.status_code, answer.content if answer.status_code == 403 else b"")
            )
    return shapes


def test_incoming_http_request_filter(ours: Peer) -> None:
    shapes = _http_answers(ours)
    assert [s[0] for s in shapes] == [200, 403, 403, 403, 200, 500, 500, 403]
    assert shapes[1][1] == b""
    assert isinstance(shapes[5][1], dict) and shapes[5][1]["OrthancStatus"] == 2031
    assert isinstance(shapes[6][1], dict) and shapes[6][1]["OrthancStatus"] == 2034
    # uri without the query string, the client's IP, no user, lower-case header names
    assert said(ours.log, "HTTP") == [
        "HTTP GET /system 127.0.0.1 [] probe1 nil",
        "HTTP GET /statistics 127.0.0.1 [] probe2 nil",
    ]


def test_incoming_http_request_filter_answers_as_orthanc(ours: Peer, orthanc: Peer) -> None:
    assert _http_answers(ours) == _http_answers(orthanc)
    assert said(ours.log, "HTTP") == said(orthanc.log, "HTTP")


def test_http_filter_sees_the_user_and_spares_scripts(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    path = tmp_path / "acl.lua"
    path.write_text(
        """
        function IncomingHttpRequestFilter(method, uri, ip, username, headers)
          return method == "GET" or username == "admin"
        end
        """
    )
    server = make_server(
        LuaScripts=[str(path)],
        ExecuteLuaEnabled=True,
        AuthenticationEnabled=True,
        RegisteredUsers={"admin": "pw", "guest": "pw"},
    )
    guest = httpx.Client(base_url=server.url, auth=("guest", "pw"), timeout=30)
    try:
        data = make_dicom(patient_id="ACL")
        assert guest.get("/system").status_code == 200
        assert guest.post("/instances", content=data).status_code == 403
        assert server.client.post("/instances", content=data).status_code == 200  # admin
        # RestApi* calls from scripts do not go through the filter (as in Orthanc).
        code = 'print(RestApiPost("/tools/lookup", "1.2.3"))'
        assert server.client.post("/tools/execute-script", content=code).text == "[]\n"
    finally:
        guest.close()


# ---- IncomingFindRequestFilter -------------------------------------------------------
def _find_answers(peer: Peer) -> list[tuple[str, str | None]]:
    for patient in ("FILTERPAT", "OTHERPAT"):
        upload = peer.client.post("/instances", content=make_dicom(patient_id=patient))
        assert upload.json()["Status"] == "Success"
    statuses, answers = cfind(
        peer.dicom_port,
        QueryRetrieveLevel="STUDY",
        PatientID="REWRITE",
        AccessionNumber="",
        StudyDate="",
        ModalitiesInStudy=["CT", "MR"],
        SpecificCharacterSet="ISO_IR 100",
    )
    assert statuses[-1] == 0
    return sorted(
        (str(a.PatientID), str(a.get("StudyDate")), "AccessionNumber" in a) for a in answers
    )


def test_incoming_find_request_filter(ours: Peer) -> None:
    # The filter rewrote the PatientID key and dropped AccessionNumber from the query.
    assert _find_answers(ours) == [("FILTERPAT", "20240102", False)]
    # As Orthanc shows a query: every key as text, empty ones included.
    assert said(ours.log, "FIND") == [
        'FIND {"0008,0005":"ISO_IR 100","0008,0020":"","0008,0050":"","0008,0052":"STUDY",'
        '"0008,0061":"CT\\\\MR","0010,0020":"REWRITE"} '
        '{"CalledAet":"ORTHANC","Manufacturer":"Generic","RemoteAet":"LUAFIND",'
        '"RemoteIp":"127.0.0.1"}'
    ]


def test_incoming_find_request_filter_answers_as_orthanc(ours: Peer, orthanc: Peer) -> None:
    assert _find_answers(ours) == _find_answers(orthanc)
    assert said(ours.log, "FIND") == said(orthanc.log, "FIND")


def test_filters_run_apart_from_the_callbacks_state(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    """A filter redefined through execute-script does not replace the configured one:
    as in Orthanc (checked on 1.10.1), filters have a Lua state of their own, so a slow
    callback holding the callbacks' state cannot hold up ingest."""
    path = tmp_path / "state.lua"
    path.write_text(
        """
        function ReceivedInstanceFilter(dicom, origin, info)
          return dicom.PatientID ~= "REFUSE"
        end
        function OnStoredInstance(id, tags, metadata, origin) done = (done or 0) + 1 end
        """
    )
    server = make_server(LuaScripts=[str(path)], ExecuteLuaEnabled=True)
    data = make_dicom(patient_id="FIRST")
    assert server.client.post("/instances", content=data).json()["Status"] == "Success"

    def run(code: str) -> str:
        return server.client.post("/tools/execute-script", content=code).text

    _wait(lambda: run("print(done)") == "1\n")  # callbacks and execute-script share a state
    run("function ReceivedInstanceFilter() return true end")
    answer = server.client.post("/instances", content=make_dicom(patient_id="REFUSE"))
    assert answer.json()["Status"] == "FilteredOut"


# ---- IncomingWorklistRequestFilter -------------------------------------------------
def _worklist(path: Path, patient_id: str, station: str) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID = patient_id
    ds.PatientName = "Doe^" + patient_id
    ds.StudyInstanceUID = generate_uid()
    step = Dataset()
    step.Modality = "CT"
    step.ScheduledStationAETitle = station
    ds.ScheduledProcedureStepSequence = Sequence([step])
    ds.save_as(path / f"{patient_id}.wl", enforce_file_format=False)


def test_incoming_worklist_request_filter(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    """The Orthanc Book's example: answer a modality only its own scheduled steps."""
    from pydicom.sequence import Sequence
    from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore

    folder = tmp_path / "worklists"
    folder.mkdir()
    _worklist(folder, "WLCT", "CTSCANNER")
    _worklist(folder, "WLMR", "MRSCANNER")
    path = tmp_path / "worklist.lua"
    path.write_text(
        """
        function IncomingWorklistRequestFilter(query, origin)
          print("WL " .. origin.RemoteAet .. " " .. tostring(query["0010,0020"]))
          query["0040,0100"][1]["0040,0001"] = origin.RemoteAet
          return query
        end
        """
    )
    server = make_server(
        LuaScripts=[str(path)],
        DicomBindAddress=LOOPBACK,
        DicomAlwaysAllowFindWorklist=True,
        Worklists={"Enable": True, "Database": str(folder)},
    )
    peer = _ours(server)
    ae = AE(ae_title="CTSCANNER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate(LOOPBACK, peer.dicom_port, ae_title="ORTHANC")
    assert assoc.is_established
    query = Dataset()
    query.PatientID = ""
    step = Dataset()
    step.ScheduledStationAETitle = ""
    step.Modality = ""
    query.ScheduledProcedureStepSequence = Sequence([step])
    found = []
    try:
        for status, identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
            if status and status.Status == PENDING and identifier is not None:
                found.append(str(identifier.PatientID))
    finally:
        assoc.release()
    assert found == ["WLCT"]
    assert said(peer.log, "WL") == ["WL CTSCANNER "]


# ---- OutgoingFindRequestFilter (called by the C-FIND SCU through core.hooks) -------
def test_outgoing_find_request_filter_through_the_hooks(tmp_path: Path) -> None:
    """The Book's example (``*`` becomes universal matching), run by the Lua state of
    a real server build, as the C-FIND SCU calls it through ``core.hooks``."""
    from dicomhub.core.hooks import hooks_of
    from dicomhub.net.find_filters import outgoing_identifier
    from dicomhub.scripting.callbacks import start_filters
    from dicomhub.server import build

    path = tmp_path / "outgoing.lua"
    path.write_text(
        """
        function OutgoingFindRequestFilter(query, modality)
          for key, value in pairs(query) do
            if value == "*" then query[key] = "" end
          end
          query["0008,0090"] = modality
          return query
        end
        """
    )
    config = {
        "StorageDirectory": str(tmp_path / "db"),
        "IndexDirectory": str(tmp_path / "db"),
        "LuaScripts": [str(path)],
    }
    archive, app = build(config)
    engine, removers = start_filters(archive, app, config)
    try:
        assert engine is not None and len(removers) == 1
        query = {"0008,0052": "STUDY", "0010,0010": "*", "0010,0020": "PAT1"}
        assert hooks_of(archive).outgoing_find(query, "REMOTE") == {
            "0008,0052": "STUDY",
            "0008,0090": "REMOTE",
            "0010,0010": "",
            "0010,0020": "PAT1",
        }
        assert query["0010,0010"] == "*"  # the caller's query is left alone
        # What the C-FIND SCU calls on its identifier before sending it.
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.PatientName = "*"
        sent = outgoing_identifier(archive, identifier, "REMOTE")
        assert not sent["PatientName"].value and sent.ReferringPhysicianName == "REMOTE"
        assert sent.QueryRetrieveLevel == "STUDY" and identifier.PatientName == "*"
    finally:
        for remove in removers:
            remove()
        if engine is not None:
            engine.close()
        archive.close()
    assert not hooks_of(archive).active("outgoing_find_request")


def test_query_tables_round_trip() -> None:
    """The tables the C-FIND filters see become identifiers again, sequences included."""
    from pydicom.sequence import Sequence

    from dicomhub.dicom.query_json import dataset_to_query, query_to_dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = "Doe^John"
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.NumberOfStudyRelatedInstances = None
    step = Dataset()
    step.Modality = "CT"
    ds.ScheduledProcedureStepSequence = Sequence([step])
    table = dataset_to_query(ds, ["ISO_IR 100"])
    assert table == {
        "0008,0052": "STUDY",
        "0008,0061": "CT\\MR",
        "0010,0010": "Doe^John",
        "0020,1208": "",
        "0040,0100": [{"0008,0060": "CT"}],
    }
    table["PatientID"] = "P1"
    back = query_to_dataset(table, ds)
    assert back.PatientID == "P1" and list(back.ModalitiesInStudy) == ["CT", "MR"]
    assert back.ScheduledProcedureStepSequence[0].Modality == "CT"
    assert (
        back["NumberOfStudyRelatedInstances"].VR == "IS"
        and back.NumberOfStudyRelatedInstances is None
    )


def test_filters_guard_every_http_worker(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    """With several HTTP workers each one has the filters (only the callbacks are
    limited to the primary worker): no request slips through another worker."""
    path = tmp_path / "guard.lua"
    path.write_text(
        """
        function IncomingHttpRequestFilter(method, uri) return uri ~= "/forbidden" end
        function ReceivedInstanceFilter(dicom) return dicom.PatientID ~= "REFUSE" end
        """
    )
    server = make_server(LuaScripts=[str(path)], HttpWorkers=2)
    for _ in range(12):
        # a new connection each time, so that both workers get some
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/forbidden").status_code == 403
            upload = client.post("/instances", content=make_dicom(patient_id="REFUSE"))
            assert upload.json()["Status"] == "FilteredOut"
    assert server.client.get("/instances").json() == []
