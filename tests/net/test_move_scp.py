"""C-MOVE and C-GET SCP against real peers: dcmtk's movescu/getscu/storescp, pynetdicom.

Statuses and counts checked against Orthanc 1.10.1 on the same files, except the
undeclared move destination: the standard's 0xA801 here, where 1.10.1 answers 0xC000.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, unused_port
from dicom_factory import make_dataset, make_dicom, to_bytes
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from net import (
    LOOPBACK,
    StoreScp,
    aborted,
    dcmtk,
    dicom_port,
    get_association,
    output,
    query_dataset,
    run,
    suboperation_counts,
)
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
    assert suboperation_counts(responses[-1]) == (8, 0, 0)
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
    assert suboperation_counts(move(port, storescp.aet, calling="MOVER", **keys)[-1]) == (4, 0, 0)


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

    assoc = get_association(
        port, on_store, [PatientRootQueryRetrieveInformationModelGet], [CTImageStorage]
    )
    query = query_dataset(QueryRetrieveLevel="PATIENT", PatientID="FIND0")
    statuses = list(assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet))
    assoc.release()
    final = statuses[-1][0]
    assert int(final.Status) == SUCCESS
    assert suboperation_counts(final) == (4, 0, 0)
    assert len(set(received)) == 4


def test_get_needs_permission(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp, DicomAlwaysAllowGet=False)
    load(server, patients=1)
    args = [dcmtk("getscu"), "-v", "-P", "-aet", "GETSCU", "-aec", "ORTHANC"]
    args += ["-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID=FIND0", LOOPBACK, str(port)]
    started = time.monotonic()
    assert aborted(run(args))
    assert time.monotonic() - started < 20


# ---- Orthanc 1.10.1's answers, checked on the same files -----------------------
def move_answers(port: int, destination: str, **keys: Any) -> list[tuple[Dataset, Any]]:
    """Every C-MOVE response: (status dataset, identifier or None)."""
    ae = AE(ae_title="PYMOVE")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 15
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate(LOOPBACK, port, ae_title="ORTHANC")
    assert assoc.is_established
    answers = list(
        assoc.send_c_move(
            query_dataset(**keys), destination, StudyRootQueryRetrieveInformationModelMove
        )
    )
    assoc.release()
    assert all(status for status, _ in answers)  # no lost association
    return answers


def get_answers(
    port: int, storage: tuple[str, ...] = (CTImageStorage,), **keys: Any
) -> tuple[list[tuple[Dataset, Any]], list[str]]:
    """Every C-GET response, and the SOP Instance UIDs stored to the requester, which
    accepts the ``storage`` SOP classes (SCP role)."""
    received: list[str] = []

    def on_store(event: evt.Event) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    assoc = get_association(port, on_store, [StudyRootQueryRetrieveInformationModelGet], storage)
    answers = list(
        assoc.send_c_get(query_dataset(**keys), StudyRootQueryRetrieveInformationModelGet)
    )
    assoc.release()
    assert all(status for status, _ in answers)
    return answers, received


def refused(answers: list[tuple[Dataset, Any]]) -> bool:
    """Orthanc's refusal: one final 0xC000, zero counts, no identifier (pynetdicom
    gives an empty data set for none)."""
    [(status, identifier)] = answers
    return (int(status.Status), suboperation_counts(status), bool(identifier)) == (
        UNABLE,
        (0, 0, 0),
        False,
    )


def test_declared_but_unreachable_destination(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    gone = unused_port()  # nothing listens there
    server, port = _server(
        make_server,
        storescp,
        DicomModalities={
            "dest": [storescp.aet, LOOPBACK, storescp.port],
            "gone": ["GONE", LOOPBACK, gone],
        },
    )
    studies = load(server, patients=1)
    keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": studies["FIND0"]}
    # as Orthanc: unable to process, zero counts (pynetdicom's own answer is 0xA801)
    assert refused(move_answers(port, "GONE", **keys))
    text = movescu(port, "GONE", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={studies['FIND0']}")
    assert "Final Move Response (Failed: UnableToProcess)" in text, text
    # nothing to send either: the same answer
    assert refused(move_answers(port, "GONE", QueryRetrieveLevel="STUDY", StudyInstanceUID="1.2"))
    # an undeclared destination keeps the standard's answer
    [(status, _)] = move_answers(port, "NOBODY", **keys)
    assert int(status.Status) == UNKNOWN_DESTINATION


def test_refusals_carry_no_counts_nor_identifier(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    studies = load(server, patients=1)
    for keys in (
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.2.3.4.5.6.7.8.9"},
        {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""},
        {"QueryRetrieveLevel": "STUDY", "PatientID": "FIND0"},
        {"QueryRetrieveLevel": "PATIENT", "PatientID": "NOBODY"},
        {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": studies["FIND0"]},
    ):
        assert refused(move_answers(port, storescp.aet, **keys)), keys
        assert refused(get_answers(port, **keys)[0]), keys
    assert storescp.files() == []


def test_retrieve_by_accession_number(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    studies = load(server, patients=3)  # AccessionNumber ACCFIND<n>
    # a list, compared as Orthanc compares identifiers (case aside), no study UID
    answers = move_answers(
        port, storescp.aet, QueryRetrieveLevel="STUDY", AccessionNumber="accfind0\\ACCFIND1"
    )
    assert (int(answers[-1][0].Status), suboperation_counts(answers[-1][0])) == (SUCCESS, (8, 0, 0))
    assert len(storescp.wait_files(8)) == 8
    # an empty StudyInstanceUID, or none and no level (guessed from the accession)
    for keys in (
        {"QueryRetrieveLevel": "STUDY", "AccessionNumber": "ACCFIND2", "StudyInstanceUID": ""},
        {"AccessionNumber": "ACCFIND2"},
    ):
        answers = move_answers(port, storescp.aet, **keys)
        assert suboperation_counts(answers[-1][0]) == (4, 0, 0), keys
    # as Orthanc 1.10.1, the accession number wins over a study UID given with it
    answers, received = get_answers(
        port,
        QueryRetrieveLevel="STUDY",
        AccessionNumber=" ACCFIND1 ",
        StudyInstanceUID=studies["FIND0"],
    )
    assert (int(answers[-1][0].Status), suboperation_counts(answers[-1][0])) == (SUCCESS, (4, 0, 0))
    found = server.client.post(
        "/tools/find", json={"Level": "Instance", "Query": {"PatientID": "FIND1"}, "Expand": True}
    ).json()
    assert sorted(received) == sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in found)
    # exact values only (no wildcard), and not at another level
    assert refused(
        move_answers(port, storescp.aet, QueryRetrieveLevel="STUDY", AccessionNumber="ACC*")
    )
    assert refused(get_answers(port, QueryRetrieveLevel="SERIES", AccessionNumber="ACCFIND1")[0])


def test_query_retrieve_level_rules(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    studies = load(server, patients=1)
    study = studies["FIND0"]
    # C-GET: no guess, whether the level is missing, empty or unknown
    for level in (None, "", "FOO"):
        keys = {"StudyInstanceUID": study}
        if level is not None:
            keys["QueryRetrieveLevel"] = level
        answers, received = get_answers(port, **keys)
        assert refused(answers) and received == [], level
    # C-MOVE: an empty or unknown level is refused; a missing one is guessed
    for level in ("", "FOO"):
        assert refused(
            move_answers(port, storescp.aet, QueryRetrieveLevel=level, StudyInstanceUID=study)
        )
    assert storescp.files() == []
    answers = move_answers(port, storescp.aet, StudyInstanceUID=study)
    assert suboperation_counts(answers[-1][0]) == (4, 0, 0)


def test_get_list_naming_an_unknown_resource(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    server, port = _server(make_server, storescp)
    load(server, patients=1)
    known = server.client.post(
        "/tools/find", json={"Level": "Instance", "Query": {}, "Expand": True}
    ).json()[0]["MainDicomTags"]["SOPInstanceUID"]
    keys = {"QueryRetrieveLevel": "IMAGE", "SOPInstanceUID": f"{known}\\1.2.3.999"}
    # C-GET fails as a whole, nothing sent, as Orthanc
    answers, received = get_answers(port, **keys)
    assert refused(answers) and received == []
    # C-MOVE sends what it found (Orthanc does too)
    answers = move_answers(port, storescp.aet, **keys)
    assert (int(answers[-1][0].Status), suboperation_counts(answers[-1][0])) == (SUCCESS, (1, 0, 0))


def test_get_without_a_presentation_context(make_server, storescp) -> None:  # type: ignore[no-untyped-def]
    """Orthanc ends a C-GET at the first instance the requester accepted no context
    for: one final 0xC000 counting it as failed, no Pending response for it."""
    server, port = _server(make_server, storescp)
    studies = load(server, patients=1)  # CT Image Storage instances
    answers, received = get_answers(
        port, (MRImageStorage,), QueryRetrieveLevel="STUDY", StudyInstanceUID=studies["FIND0"]
    )
    [(status, identifier)] = answers
    assert (int(status.Status), suboperation_counts(status), bool(identifier)) == (
        UNABLE,
        (0, 1, 0),
        False,
    )
    assert "NumberOfRemainingSuboperations" not in status
    assert received == []
    # the instances before it are sent and reported as usual
    ct = generate_uid()
    mr = generate_uid()
    server.client.post("/instances", content=make_dicom(sop_uid=ct)).raise_for_status()
    mr_image = make_dataset(sop_uid=mr, SOPClassUID=MRImageStorage)
    mr_image.file_meta.MediaStorageSOPClassUID = MRImageStorage
    server.client.post("/instances", content=to_bytes(mr_image)).raise_for_status()
    answers, received = get_answers(
        port, (CTImageStorage,), QueryRetrieveLevel="IMAGE", SOPInstanceUID=f"{ct}\\{mr}"
    )
    assert [int(s.Status) for s, _ in answers] == [PENDING, UNABLE]
    assert suboperation_counts(answers[0][0]) == (1, 0, 0)
    assert suboperation_counts(answers[1][0]) == (1, 1, 0) and not answers[1][1]
    assert received == [ct]
    # a requester refusing the instances is counted as the standard has it
    answers, received = get_answers(
        port, (CTImageStorage, MRImageStorage), QueryRetrieveLevel="IMAGE", SOPInstanceUID=ct
    )
    assert [int(s.Status) for s, _ in answers] == [PENDING, SUCCESS]
