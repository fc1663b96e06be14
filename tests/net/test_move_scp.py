"""C-MOVE and C-GET SCP against real peers: dcmtk's movescu/getscu/storescp, pynetdicom.

Statuses checked against Orthanc 1.10.1 on the same files, except the unknown move
destination: the standard's 0xA801 here, where 1.10.1 answers 0xC000.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from net import LOOPBACK, StoreScp, aborted, dcmtk, dicom_port, output, run
from net.test_find_scp import load

PENDING, SUCCESS, UNABLE, UNKNOWN_DESTINATION = 0xFF00, 0x0000, 0xC000, 0xA801


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StoreScp]:
    peer = StoreScp(tmp_path / "received")
    try:
        yield peer
    finally:
        peer.stop()


def _server(make_server: Any, peer: StoreScp, **config: Any) -> tuple[RunningServer, int]:
    settings: dict[str, Any] = {
        "DicomBindAddress": LOOPBACK,
        "DicomAlwaysAllowMove": True,
        "DicomAlwaysAllowGet": True,
        "DicomModalities": {"dest": [peer.aet, LOOPBACK, peer.port]},
    }
    settings.update(config)
    server = make_server(**settings)
    return server, dicom_port(server)


def movescu(port: int, destination: str, *keys: str) -> str:
    args = [dcmtk("movescu"), "-v", "-S", "-aet", "MOVESCU", "-aem", destination]
    for key in keys:
        args += ["-k", key]
    result = run([*args, "-aec", "ORTHANC", LOOPBACK, str(port)])
    return output(result)


def move(port: int, destination: str, calling: str = "PYMOVE", **keys: Any) -> list[Dataset]:
    """The status datasets of every C-MOVE response (an empty one: association lost)."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 15
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate(LOOPBACK, port, ae_title="ORTHANC")
    assert assoc.is_established
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    responses: list[Dataset] = []
    for status, _ in assoc.send_c_move(
        query, destination, StudyRootQueryRetrieveInformationModelMove
    ):
        if not status:
            responses.append(Dataset())
            break
        responses.append(status)
    if assoc.is_established:
        assoc.release()
    return responses


def _counts(status: Dataset) -> tuple[int, int, int]:
    return (
        int(status.get("NumberOfCompletedSuboperations", 0)),
        int(status.get("NumberOfFailedSuboperations", 0)),
        int(status.get("NumberOfWarningSuboperations", 0)),
    )


def test_movescu_sends_a_study_to_a_configured_storescp(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    studies = load(server, patients=2)
    text = movescu(
        port, storescp.aet, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={studies['FIND1']}"
    )
    assert "Received Final Move Response (Success)" in text, text
    assert len(storescp.wait_files(4)) == 4


def test_sub_operation_counts(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    studies = load(server, patients=2)
    uids = "\\".join(studies.values())  # a list of studies in one request
    responses = move(port, storescp.aet, QueryRetrieveLevel="STUDY", StudyInstanceUID=uids)
    # as Orthanc 1.10.1: no Pending response after the last sub-operation, and the
    # final response without a Number of Remaining Sub-operations
    assert [int(r.Status) for r in responses] == [PENDING] * 7 + [SUCCESS]
    remaining = [int(r.NumberOfRemainingSuboperations) for r in responses[:-1]]
    assert remaining == list(range(7, 0, -1))
    assert "NumberOfRemainingSuboperations" not in responses[-1]
    assert _counts(responses[-1]) == (8, 0, 0)
    assert len(storescp.wait_files(8)) == 8


def test_unknown_destination_and_unknown_resource(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    studies = load(server, patients=1)
    study = f"StudyInstanceUID={studies['FIND0']}"
    text = movescu(port, "NOBODY", "QueryRetrieveLevel=STUDY", study)
    assert "Refused: MoveDestinationUnknown" in text, text
    responses = move(port, "NOBODY", QueryRetrieveLevel="STUDY", StudyInstanceUID=studies["FIND0"])
    assert [int(r.Status) for r in responses] == [UNKNOWN_DESTINATION]
    # a study that is not here, or no unique key for the level: unable to process
    text = movescu(port, storescp.aet, "QueryRetrieveLevel=STUDY", "StudyInstanceUID=1.2.3")
    assert "Final Move Response (Failed: UnableToProcess)" in text, text
    text = movescu(port, storescp.aet, "QueryRetrieveLevel=STUDY", "PatientID=FIND0")
    assert "Final Move Response (Failed: UnableToProcess)" in text, text
    for keys in ({"StudyInstanceUID": "1.2.3"}, {"PatientID": "FIND0"}):
        responses = move(port, storescp.aet, QueryRetrieveLevel="STUDY", **keys)
        assert [int(r.Status) for r in responses] == [UNABLE]
    assert storescp.files() == []


def test_move_needs_permission(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(
        make_server,
        storescp,
        DicomAlwaysAllowMove=False,
        DicomModalities={
            "dest": [storescp.aet, LOOPBACK, storescp.port],
            "mover": {"AET": "MOVER", "Host": LOOPBACK, "Port": 1, "AllowMove": True},
            "nomove": {"AET": "NOMOVE", "Host": LOOPBACK, "Port": 2, "AllowMove": False},
        },
    )
    studies = load(server, patients=1)
    keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": studies["FIND0"]}
    assert "Status" not in move(port, storescp.aet, calling="NOMOVE", **keys)[-1]  # aborted
    assert aborted(
        run(
            [dcmtk("movescu"), "-S", "-aem", storescp.aet, "-aec", "ORTHANC"]
            + ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={studies['FIND0']}"]
            + [LOOPBACK, str(port)]
        )
    )
    assert _counts(move(port, storescp.aet, calling="MOVER", **keys)[-1]) == (4, 0, 0)


def test_asynchronous_move_answers_before_sending(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp, SynchronousCMove=False)
    studies = load(server, patients=1)
    responses = move(
        port, storescp.aet, QueryRetrieveLevel="STUDY", StudyInstanceUID=studies["FIND0"]
    )
    assert [int(r.Status) for r in responses] == [SUCCESS]
    assert len(storescp.wait_files(4)) == 4


def test_getscu_retrieves_a_series(make_server, storescp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    studies = load(server, patients=1)
    series = server.client.post(
        "/tools/find",
        json={"Level": "Series", "Query": {"Modality": "MR"}, "Expand": True},
    ).json()[0]["MainDicomTags"]["SeriesInstanceUID"]
    folder = tmp_path / "got"
    folder.mkdir()
    args = [dcmtk("getscu"), "-v", "-S", "-aet", "GETSCU", "-aec", "ORTHANC", "-od", str(folder)]
    args += ["-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={studies['FIND0']}"]
    args += ["-k", f"SeriesInstanceUID={series}", LOOPBACK, str(port)]
    result = run(args)
    assert result.returncode == 0, output(result)
    assert len(list(folder.iterdir())) == 2, output(result)


def test_pynetdicom_get_counts(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    load(server, patients=1)
    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        received.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    ae = AE(ae_title="PYGET")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 15
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(
        LOOPBACK,
        port,
        ae_title="ORTHANC",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = "FIND0"
    statuses = list(assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet))
    assoc.release()
    final = statuses[-1][0]
    assert int(final.Status) == SUCCESS
    assert _counts(final) == (4, 0, 0)
    assert len(set(received)) == 4


def test_get_needs_permission(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp, DicomAlwaysAllowGet=False)
    load(server, patients=1)
    args = [dcmtk("getscu"), "-v", "-P", "-aet", "GETSCU", "-aec", "ORTHANC"]
    args += ["-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=FIND0", LOOPBACK, str(port)]
    started = time.monotonic()
    assert aborted(run(args))
    assert time.monotonic() - started < 20
