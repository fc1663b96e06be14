"""C-FIND SCP against real peers (dcmtk's findscu and pynetdicom).

The expected answers were checked against Orthanc 1.10.1 on the same files; where
dicomhub departs from it on purpose (identifiers case-insensitive, RetrieveAETitle
filled even when the peer sends the key empty) the test says so.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from archive_checks import oracle_client, upload
from conftest import RunningServer
from dicom_factory import make_dicom
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from dicomhub.net.find_scp import quiet_identifier_logs
from net import LOOPBACK, aborted, dcmtk, dicom_port, output, run

FIND = {"DicomBindAddress": LOOPBACK, "DicomAlwaysAllowFind": True}
PENDING, SUCCESS, CANCEL, UNABLE = 0xFF00, 0x0000, 0xFE00, 0xC000


def load(server: RunningServer, patients: int = 3) -> dict[str, str]:
    """Per patient FIND<n>: one study, a CT and an MR series, two instances each.
    Returns PatientID -> StudyInstanceUID."""
    studies: dict[str, str] = {}
    for p in range(patients):
        patient_id = f"FIND{p}"
        study = studies[patient_id] = generate_uid()
        for modality in ("CT", "MR"):
            series = generate_uid()
            for _ in range(2):
                data = make_dicom(
                    patient_id=patient_id,
                    patient_name=f"Doe^Find{p}",
                    study_uid=study,
                    series_uid=series,
                    modality=modality,
                )
                server.client.post("/instances", content=data).raise_for_status()
    return studies


def find(
    port: int,
    model: Any = StudyRootQueryRetrieveInformationModelFind,
    calling: str = "PYFIND",
    **keys: Any,
) -> tuple[list[int], list[Dataset]]:
    """One C-FIND with pynetdicom: the statuses of every response, and the answers."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(model)
    assoc = ae.associate(LOOPBACK, port, ae_title="ORTHANC")
    assert assoc.is_established
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    statuses: list[int] = []
    answers: list[Dataset] = []
    for status, identifier in assoc.send_c_find(query, model):
        if not status:  # the association went away
            statuses.append(-1)
            break
        statuses.append(int(status.Status))
        if identifier is not None and status.Status == PENDING:
            answers.append(identifier)
    if assoc.is_established:
        assoc.release()
    return statuses, answers


def findscu(port: int, folder: Path, *keys: str, root: str = "-S") -> tuple[str, list[Dataset]]:
    """dcmtk's findscu, its answers extracted as files (``-X``) and read back."""
    folder.mkdir(parents=True, exist_ok=True)
    args = [dcmtk("findscu"), "-v", root, "-aet", "FINDSCU", "-aec", "ORTHANC", "-X"]
    args += ["-od", str(folder)]
    for key in keys:
        args += ["-k", key]
    result = run([*args, LOOPBACK, str(port)])
    assert result.returncode == 0, output(result)
    return output(result), [dcmread(p) for p in sorted(folder.glob("rsp*.dcm"))]


@pytest.fixture
def served(make_server) -> tuple[RunningServer, int, dict[str, str]]:  # type: ignore[no-untyped-def]
    server = make_server(**FIND)
    studies = load(server)
    return server, dicom_port(server), studies


def test_findscu_study_level_on_patient_id(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, port, studies = served
    text, answers = findscu(
        port,
        tmp_path / "rsp",
        "QueryRetrieveLevel=STUDY",
        "PatientID=FIND1",
        "PatientName",
        "StudyInstanceUID",
        "StudyDate",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
        "RetrieveAETitle",
    )
    assert len(answers) == 1, text
    answer = answers[0]
    assert answer.StudyInstanceUID == studies["FIND1"]
    assert answer.PatientName == "Doe^Find1"
    assert answer.StudyDate == "20240102"
    assert int(answer.NumberOfStudyRelatedSeries) == 2
    assert int(answer.NumberOfStudyRelatedInstances) == 4
    assert list(answer.ModalitiesInStudy) == ["CT", "MR"]
    assert answer.QueryRetrieveLevel == "STUDY"
    assert answer.SpecificCharacterSet == "ISO_IR 100"  # DefaultEncoding, as Orthanc
    # Orthanc 1.10.1 echoes an empty RetrieveAETitle key; we name ourselves
    assert answer.RetrieveAETitle == "ORTHANC"
    assert "Received Final Find Response (Success)" in text


def test_every_level_in_both_roots(served) -> None:  # type: ignore[no-untyped-def]
    _, port, studies = served
    statuses, answers = find(
        port,
        PatientRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="PATIENT",
        PatientID="FIND2",
        PatientName="",
        NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedSeries="",
        NumberOfPatientRelatedInstances="",
        NumberOfStudyRelatedSeries="",  # not a patient-level count: stays empty
    )
    assert statuses == [PENDING, SUCCESS]
    patient = answers[0]
    assert patient.PatientName == "Doe^Find2"
    assert (
        int(patient.NumberOfPatientRelatedStudies),
        int(patient.NumberOfPatientRelatedSeries),
        int(patient.NumberOfPatientRelatedInstances),
    ) == (1, 2, 4)
    assert patient.NumberOfStudyRelatedSeries in (None, "")
    assert "RetrieveAETitle" in patient  # Orthanc adds it even when not asked

    statuses, answers = find(
        port,
        QueryRetrieveLevel="SERIES",
        StudyInstanceUID=studies["FIND2"],
        SeriesInstanceUID="",
        Modality="",
        NumberOfSeriesRelatedInstances="",
    )
    assert statuses == [PENDING, PENDING, SUCCESS]
    assert sorted(a.Modality for a in answers) == ["CT", "MR"]
    assert {int(a.NumberOfSeriesRelatedInstances) for a in answers} == {2}

    statuses, answers = find(
        port,
        PatientRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="IMAGE",
        PatientID="FIND2",
        SOPInstanceUID="",
        SOPClassUID="",
        Rows=None,  # not in the index: read from the file, with its own VR (US)
    )
    assert statuses == [PENDING] * 4 + [SUCCESS]
    assert {a.Rows for a in answers} == {8}
    assert {a.SOPClassUID for a in answers} == {"1.2.840.10008.5.1.4.1.1.2"}
    assert all(a.QueryRetrieveLevel == "IMAGE" for a in answers)


def test_case_rules(served) -> None:  # type: ignore[no-untyped-def]
    _, port, _ = served

    def count(**keys: Any) -> int:
        statuses, answers = find(port, QueryRetrieveLevel="STUDY", **keys)
        assert statuses[-1] == SUCCESS
        return len(answers)

    assert count(PatientName="doe^find*") == 3  # PN: CaseSensitivePN is false
    assert count(PatientID="find1") == 1  # identifiers: case-insensitive (the design)
    assert count(PatientID="F?ND1") == 1
    assert count(PatientID="FIND1\\FIND2") == 2
    assert count(StudyDescription="test study") == 0  # other text: case-sensitive
    assert count(StudyDescription="Test study") == 3
    assert count(ModalitiesInStudy="MR") == 3
    # Orthanc takes Modality for a series key at the study level: no study matches
    assert count(Modality="MR") == 0
    assert count(PatientID="FIND1", SOPInstanceUID="1.2.3") == 0  # a lower level's key
    statuses, answers = find(port, QueryRetrieveLevel="SERIES", Modality="ct")
    assert (statuses[-1], len(answers)) == (SUCCESS, 0)


def test_case_sensitive_pn(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(CaseSensitivePN=True, **FIND)
    load(server, patients=1)
    port = dicom_port(server)
    assert len(find(port, QueryRetrieveLevel="STUDY", PatientName="doe^find*")[1]) == 0
    assert len(find(port, QueryRetrieveLevel="STUDY", PatientName="Doe^Find*")[1]) == 1


def test_limits_crop_with_cancel_status(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(LimitFindResults=2, LimitFindInstances=3, **FIND)
    load(server)
    port = dicom_port(server)
    statuses, answers = find(port, QueryRetrieveLevel="STUDY", StudyInstanceUID="")
    assert statuses == [PENDING, PENDING, CANCEL] and len(answers) == 2
    statuses, _ = find(port, QueryRetrieveLevel="STUDY", PatientID="FIND1\\FIND2")
    assert statuses == [PENDING, PENDING, SUCCESS]  # exactly the limit: complete
    statuses, answers = find(port, QueryRetrieveLevel="IMAGE", PatientID="FIND0")
    assert statuses == [PENDING] * 3 + [CANCEL] and len(answers) == 3


def test_bad_identifiers_are_unable_to_process(served) -> None:  # type: ignore[no-untyped-def]
    _, port, _ = served
    assert find(port, PatientID="FIND1")[0] == [UNABLE]  # no QueryRetrieveLevel
    assert find(port, QueryRetrieveLevel="FOO", PatientID="FIND1")[0] == [UNABLE]
    assert find(port, QueryRetrieveLevel=" STUDY", PatientID="FIND1")[0] == [UNABLE]
    # wildcards are refused on UIDs and dates, as Orthanc does
    assert find(port, QueryRetrieveLevel="STUDY", StudyInstanceUID="*")[0] == [UNABLE]
    assert find(port, QueryRetrieveLevel="STUDY", StudyDate="2024*")[0] == [UNABLE]


def test_find_needs_permission(make_server) -> None:  # type: ignore[no-untyped-def]
    # Default: echo and store are open to anyone, find is not: the request aborts.
    server = make_server(DicomBindAddress=LOOPBACK)
    load(server, patients=1)
    port = dicom_port(server)
    assert find(port, QueryRetrieveLevel="STUDY", PatientID="FIND0")[0] == [-1]
    result = run(
        [dcmtk("findscu"), "-v", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=X"]
        + ["-aec", "ORTHANC", LOOPBACK, str(port)]
    )
    assert aborted(result), output(result)

    modalities = {
        "finder": {"AET": "FINDER", "Host": LOOPBACK, "Port": 1, "AllowFind": True},
        "nofind": {"AET": "NOFIND", "Host": LOOPBACK, "Port": 2, "AllowFind": False},
    }
    server = make_server(DicomBindAddress=LOOPBACK, DicomModalities=modalities)
    load(server, patients=1)
    port = dicom_port(server)
    statuses, answers = find(port, calling="FINDER", QueryRetrieveLevel="STUDY", PatientID="")
    assert statuses == [PENDING, SUCCESS] and len(answers) == 1
    assert find(port, calling="NOFIND", QueryRetrieveLevel="STUDY", PatientID="")[0] == [-1]


@pytest.mark.parametrize(
    ("default_encoding", "charset"), [("Latin1", "ISO_IR 100"), ("Utf8", "ISO_IR 192")]
)
def test_answers_in_the_syntax_and_charset_of_the_association(  # type: ignore[no-untyped-def]
    make_server, default_encoding: str, charset: str
) -> None:
    """Answers are encoded once from the index strings (``dicom.encoded_elements``):
    they must read back the same in implicit and explicit VR, with accented names in
    the answer's character set, numbers and multi-valued keys included."""
    server = make_server(DefaultEncoding=default_encoding, **FIND)
    study = generate_uid()
    for modality in ("CT", "MR"):
        data = make_dicom(
            patient_id="ACCENT1",
            patient_name="Müller^Jürgen",
            study_uid=study,
            modality=modality,
            charset="ISO_IR 100",
            StudyDescription="Thorax ñ",
        )
        server.client.post("/instances", content=data).raise_for_status()
    port = dicom_port(server)
    for syntax in (ImplicitVRLittleEndian, ExplicitVRLittleEndian):
        ae = AE(ae_title="PYFIND")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind, [syntax])
        assoc = ae.associate(LOOPBACK, port, ae_title="ORTHANC")
        assert assoc.is_established
        query = Dataset()
        query.SpecificCharacterSet = "ISO_IR 100"  # the peer's own, not the answers'
        query.QueryRetrieveLevel = "STUDY"
        query.PatientName = "müller*"
        for keyword in (
            "PatientID",
            "StudyInstanceUID",
            "StudyDescription",
            "StudyDate",
            "ModalitiesInStudy",
            "NumberOfStudyRelatedInstances",
            "AccessionNumber",
            "StudyID",  # not in this data: an empty answer key
        ):
            setattr(query, keyword, "")
        responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
        assoc.release()
        assert [int(s.Status) for s, _ in responses] == [PENDING, SUCCESS], syntax
        answer = responses[0][1]
        assert answer.SpecificCharacterSet == charset
        assert str(answer.PatientName) == "Müller^Jürgen"
        assert answer.StudyDescription == "Thorax ñ"
        assert answer.PatientID == "ACCENT1"
        assert answer.StudyInstanceUID == study
        assert answer.StudyDate == "20240102"
        assert list(answer.ModalitiesInStudy) == ["CT", "MR"]
        assert int(answer.NumberOfStudyRelatedInstances) == 2
        assert answer.AccessionNumber == "ACCACCENT1"
        assert "StudyID" in answer and answer.StudyID in ("", None)
        assert answer.QueryRetrieveLevel == "STUDY" and answer.RetrieveAETitle == "ORTHANC"


def test_identifier_logs_follow_the_pynetdicom_logger() -> None:
    """pynetdicom pretty-prints C-FIND identifiers only when its logger shows them."""
    logger = logging.getLogger("pynetdicom")
    saved = (logger.level, _config.LOG_REQUEST_IDENTIFIERS, _config.LOG_RESPONSE_IDENTIFIERS)
    try:
        quiet_identifier_logs()
        logger.setLevel(logging.WARNING)
        assert not _config.LOG_REQUEST_IDENTIFIERS and not _config.LOG_RESPONSE_IDENTIFIERS
        logger.setLevel(logging.INFO)
        assert _config.LOG_REQUEST_IDENTIFIERS and not _config.LOG_RESPONSE_IDENTIFIERS
        logger.setLevel(logging.DEBUG)
        assert _config.LOG_REQUEST_IDENTIFIERS and _config.LOG_RESPONSE_IDENTIFIERS
    finally:
        logger.setLevel(saved[0])
        _config.LOG_REQUEST_IDENTIFIERS, _config.LOG_RESPONSE_IDENTIFIERS = saved[1:]


@contextmanager
def on_both(
    make_server: Callable[..., RunningServer], files: list[bytes], prefix: str
) -> Iterator[tuple[RunningServer, dict[str, Any], str]]:
    """``files`` stored in a new dicomhub and in the reference Orthanc, each knowing a
    calling AET made up for the test: (our server, Orthanc's /system, that AET).
    Skips when the reference does not answer; removes what it added there."""
    oracle = oracle_client()
    if oracle is None:
        pytest.skip("reference Orthanc not reachable")
    system = oracle.get("/system").json()
    caller = prefix + uuid.uuid4().hex[:8].upper()
    name = f"find-{caller}"
    added: list[str] = []
    try:
        for data in files:
            added.append(upload(oracle, data)["ID"])
        entry = [caller, LOOPBACK, 1]
        assert oracle.put(f"/modalities/{name}", json=entry).status_code == 200
        server = make_server(DicomModalities={"caller": entry}, DicomBindAddress=LOOPBACK)
        for data in files:
            server.client.post("/instances", content=data).raise_for_status()
        yield server, system, caller
    finally:
        oracle.delete(f"/modalities/{name}")
        for instance in added:
            oracle.delete(f"/instances/{instance}")
        oracle.close()


def test_answers_match_the_oracle(make_server) -> None:  # type: ignore[no-untyped-def]
    """The same files in dicomhub and in the reference Orthanc, the same study-level
    C-FIND (implicit VR, accented names, computed keys) to both: the same answer
    values, key by key (RetrieveAETitle apart: each names itself)."""
    patient_id = "CFO" + uuid.uuid4().hex[:8]
    study = generate_uid()
    files = [
        make_dicom(
            patient_id=patient_id,
            patient_name="Müller^Jürgen",
            study_uid=study,
            modality=modality,
            charset="ISO_IR 100",
            StudyDescription="Thorax ñ",
        )
        for modality in ("CT", "MR", "MR")
    ]
    with on_both(make_server, files, "CF") as (server, system, caller):
        keys = {
            "QueryRetrieveLevel": "STUDY",
            "PatientID": patient_id,
            "PatientName": "",
            "PatientBirthDate": "",
            "PatientSex": "",
            "StudyInstanceUID": "",
            "StudyDate": "",
            "StudyTime": "",
            "AccessionNumber": "",
            "StudyDescription": "",
            "StudyID": "",
            "ModalitiesInStudy": "",
            "NumberOfStudyRelatedSeries": "",
            "NumberOfStudyRelatedInstances": "",
        }
        answers = []
        for port, called in (
            (dicom_port(server), "ORTHANC"),
            (system["DicomPort"], system["DicomAet"]),
        ):
            ae = AE(ae_title=caller)
            ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
            ae.add_requested_context(
                StudyRootQueryRetrieveInformationModelFind, [ImplicitVRLittleEndian]
            )
            assoc = ae.associate(LOOPBACK, port, ae_title=called)
            assert assoc.is_established, called
            query = Dataset()
            for keyword, value in keys.items():
                setattr(query, keyword, value)
            responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
            assoc.release()
            assert [int(s.Status) for s, _ in responses] == [PENDING, SUCCESS], called
            answers.append(responses[0][1])
        ours, theirs = answers

        def values(ds: Dataset) -> dict[str, str]:
            return {e.keyword: str(e.value) for e in ds if e.keyword != "RetrieveAETitle"}

        assert values(ours) == values(theirs)
        assert values(ours)["PatientName"] == "Müller^Jürgen"


def _code(value: str, meaning: str, *inner: Dataset) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    if inner:
        item.EquivalentCodeSequence = Sequence(list(inner))
    return item


def _values(ds: Dataset) -> dict[str, Any]:
    """An answer's keys and values, sequences item by item (RetrieveAETitle apart)."""
    out: dict[str, Any] = {}
    for elem in ds:
        if elem.keyword == "RetrieveAETitle":
            continue
        if elem.VR == "SQ":
            out[elem.keyword] = [_values(item) for item in elem.value]
        else:
            out[elem.keyword] = "" if elem.value is None else str(elem.value)
    return out


def test_sequence_keys_are_read_whole_from_a_file(make_server) -> None:  # type: ignore[no-untyped-def]
    """As Orthanc 1.10.1: a sequence return key comes whole (nested items included)
    from a file of each answer, at every level, and is left out of the answers whose
    files have none; an item in the query changes nothing (no sequence matching)."""
    server = make_server(**FIND)
    study, series = generate_uid(), generate_uid()
    codes = Sequence([_code("P1", "Mp1", _code("E1", "Equivalent")), _code("P2", "Mp2")])
    for _ in range(2):
        server.client.post(
            "/instances",
            content=make_dicom(
                patient_id="SEQ1", study_uid=study, series_uid=series, ProcedureCodeSequence=codes
            ),
        ).raise_for_status()
    server.client.post("/instances", content=make_dicom(patient_id="SEQ2")).raise_for_status()
    port = dicom_port(server)
    expected = [
        {
            "CodeValue": "P1",
            "CodingSchemeDesignator": "DCM",
            "CodeMeaning": "Mp1",
            "EquivalentCodeSequence": [
                {"CodeValue": "E1", "CodingSchemeDesignator": "DCM", "CodeMeaning": "Equivalent"}
            ],
        },
        {"CodeValue": "P2", "CodingSchemeDesignator": "DCM", "CodeMeaning": "Mp2"},
    ]
    for level, count in (("STUDY", 1), ("SERIES", 1), ("IMAGE", 2)):
        for key in (Sequence([]), Sequence([_code("", "")])):
            statuses, answers = find(
                port, QueryRetrieveLevel=level, PatientID="SEQ*", ProcedureCodeSequence=key
            )
            assert statuses[-1] == SUCCESS, level
            with_codes = [a for a in answers if a.PatientID == "SEQ1"]
            assert len(with_codes) == count, level
            for answer in with_codes:
                assert _values(answer)["ProcedureCodeSequence"] == expected, level
            [without] = [a for a in answers if a.PatientID == "SEQ2"]
            assert "ProcedureCodeSequence" not in without, level


def test_lower_level_main_tags_are_answered_empty(served) -> None:  # type: ignore[no-untyped-def]
    """Orthanc 1.10.1 reads no file while every key is a main tag (of any level) or
    a computed one: a lower level's main tag is then answered empty. A key the index
    does not keep (Rows here) makes it read one file, which then answers them all."""
    _, port, _ = served

    def first(**keys: Any) -> Dataset:
        statuses, answers = find(port, PatientID="FIND1", **keys)
        assert statuses[-1] == SUCCESS and answers, keys
        return answers[0]

    study = first(
        QueryRetrieveLevel="STUDY",
        Modality="",
        SeriesInstanceUID="",
        SOPInstanceUID="",
        InstanceNumber="",
        NumberOfStudyRelatedInstances="",
    )
    for keyword in ("Modality", "SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber"):
        assert keyword in study and study[keyword].value in ("", None), keyword
    assert int(study.NumberOfStudyRelatedInstances) == 4
    study = first(QueryRetrieveLevel="STUDY", Modality="", Rows=None)
    assert study.Modality in ("CT", "MR") and study.Rows == 8
    patient = first(QueryRetrieveLevel="PATIENT", StudyDescription="", AccessionNumber="")
    assert patient.StudyDescription in ("", None) and patient.AccessionNumber in ("", None)
    patient = first(QueryRetrieveLevel="PATIENT", StudyDescription="", Rows=None)
    assert patient.StudyDescription == "Test study"
    series = first(QueryRetrieveLevel="SERIES", InstanceNumber="", SOPInstanceUID="")
    assert series.InstanceNumber in ("", None) and series.SOPInstanceUID in ("", None)


def test_characters_the_answer_cannot_hold_are_left_out(make_server) -> None:  # type: ignore[no-untyped-def]
    """Answers are in DefaultEncoding (Latin-1): Orthanc leaves out the Cyrillic
    letters of a UTF-8 file rather than writing question marks, in the sequences too,
    whichever way the answer is written (direct, or pynetdicom's for a sequence)."""
    server = make_server(**FIND)
    server.client.post(
        "/instances",
        content=make_dicom(
            patient_id="CYR1",
            patient_name="Ivanov^Ivan=Иванов^Иван",
            charset="ISO_IR 192",
            StudyDescription="Иванов ñ",
            ProcedureCodeSequence=Sequence([_code("P1", "Ω ä")]),
        ),
    ).raise_for_status()
    port = dicom_port(server)
    for extra in ({}, {"ProcedureCodeSequence": Sequence([])}):
        statuses, [answer] = find(
            port,
            QueryRetrieveLevel="STUDY",
            PatientID="CYR1",
            PatientName="",
            StudyDescription="",
            **extra,
        )
        assert statuses[-1] == SUCCESS
        assert answer.SpecificCharacterSet == "ISO_IR 100"
        assert str(answer.PatientName) == "Ivanov^Ivan=^"
        assert answer.StudyDescription == " ñ"
        if extra:
            assert answer.ProcedureCodeSequence[0].CodeMeaning == " ä"


def test_file_keys_match_the_oracle(make_server) -> None:  # type: ignore[no-untyped-def]
    """The same files in dicomhub and in the reference Orthanc: sequence keys, a lower
    level's main tag with and without a key that needs the file, characters Latin-1
    lacks: the same answers, key by key (RetrieveAETitle apart)."""
    patient_id = "CFO" + uuid.uuid4().hex[:8]
    study = generate_uid()
    codes = Sequence([_code("P1", "Ω ä", _code("E1", "Иванов"))])
    files = [
        make_dicom(
            patient_id=patient_id,
            patient_name="Ivanov^Ivan=Иванов^Иван",
            study_uid=study,
            modality="MR",
            charset="ISO_IR 192",
            StudyDescription="Иванов ñ",
            ProcedureCodeSequence=codes,
        )
        for _ in range(2)
    ]
    queries = [
        {
            "QueryRetrieveLevel": "STUDY",
            "PatientID": patient_id,
            "PatientName": "",
            "StudyDescription": "",
            "Modality": "",
            "SeriesInstanceUID": "",
        },
        {
            "QueryRetrieveLevel": "STUDY",
            "PatientID": patient_id,
            "Modality": "",
            "ProcedureCodeSequence": Sequence([]),
            "ReferencedStudySequence": Sequence([]),
        },
        {
            "QueryRetrieveLevel": "IMAGE",
            "PatientID": patient_id,
            "SOPInstanceUID": "",
            "ProcedureCodeSequence": Sequence([_code("", "")]),
        },
    ]
    with on_both(make_server, files, "CF") as (server, system, caller):
        peers = ((dicom_port(server), "ORTHANC"), (system["DicomPort"], system["DicomAet"]))
        for keys in queries:
            got = []
            for port, called in peers:
                ae = AE(ae_title=caller)
                ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
                ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
                assoc = ae.associate(LOOPBACK, port, ae_title=called)
                assert assoc.is_established, called
                query = Dataset()
                for keyword, value in keys.items():
                    setattr(query, keyword, value)
                model = StudyRootQueryRetrieveInformationModelFind
                responses = list(assoc.send_c_find(query, model))
                assoc.release()
                assert int(responses[-1][0].Status) == SUCCESS, called
                answers = [_values(a) for s, a in responses if int(s.Status) == PENDING]
                got.append(sorted(answers, key=repr))
            assert got[0] == got[1], keys


def _raw_query(keys: dict[str, str]) -> Dataset:
    """A C-FIND identifier holding each value as written, even where pydicom would
    refuse it (``*`` in a number): raw elements, encoded as they are."""
    query = Dataset()
    for keyword, value in keys.items():
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        data = value.encode("ascii")
        if len(data) % 2:
            data += b" "
        vr = dictionary_VR(tag)
        query[tag] = RawDataElement(Tag(tag), vr, len(data), data, 0, False, True)
    return query


def raw_find(
    port: int, keys: dict[str, str], called: str = "ORTHANC", calling: str = "PYFIND"
) -> tuple[int, list[dict[str, Any]]]:
    """One C-FIND (Patient Root) of raw values: the final status, and the answers
    (RetrieveAETitle apart), sorted."""
    model = PatientRootQueryRetrieveInformationModelFind
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(model)
    assoc = ae.associate(LOOPBACK, port, ae_title=called)
    assert assoc.is_established, called
    final, answers = -1, []
    for status, identifier in assoc.send_c_find(_raw_query(keys), model):
        if not status:
            break
        final = int(status.Status)
        if identifier is not None and final == PENDING:
            answers.append(_values(identifier))
    assoc.release()
    return final, sorted(answers, key=repr)


#: (level, key, value, answers expected among the 3 FIND<n> patients or 0xC000).
COMPUTED_CONSTRAINTS = [
    ("STUDY", "NumberOfStudyRelatedInstances", "", 3),
    ("STUDY", "NumberOfStudyRelatedInstances", "  ", 3),  # blanks: still universal
    ("STUDY", "NumberOfStudyRelatedInstances", "4", 0),  # the real count: no match
    ("STUDY", "NumberOfStudyRelatedInstances", "1\\4", 0),
    ("STUDY", "NumberOfStudyRelatedInstances", "1-9", 0),
    ("STUDY", "NumberOfStudyRelatedInstances", "*", UNABLE),  # no wildcard on IS
    ("STUDY", "NumberOfStudyRelatedSeries", "2", 0),
    ("STUDY", "NumberOfStudyRelatedSeries", "?", UNABLE),
    ("STUDY", "SOPClassesInStudy", "1.2.840.10008.5.1.4.1.1.2", 0),
    ("STUDY", "SOPClassesInStudy", "*", UNABLE),  # no wildcard on UI
    ("STUDY", "NumberOfPatientRelatedStudies", "1", 0),  # another level's key
    ("STUDY", "ModalitiesInStudy", "CT", 3),  # the one computed key that matches
    ("STUDY", "ModalitiesInStudy", "*", 3),
    ("PATIENT", "NumberOfPatientRelatedStudies", "1", 0),
    ("PATIENT", "NumberOfPatientRelatedInstances", "*", UNABLE),
    ("SERIES", "NumberOfSeriesRelatedInstances", "2", 0),
    ("SERIES", "NumberOfSeriesRelatedInstances", "", 6),
    ("IMAGE", "NumberOfSeriesRelatedInstances", "2", 0),
]


def test_computed_keys_as_constraints(served) -> None:  # type: ignore[no-untyped-def]
    """As Orthanc 1.10.1: a computed key given a value is no count filter but a tag
    the index does not keep, matched against the files (which lack it), so it matches
    nothing; a wildcard in it is refused, even where nothing would match;
    ModalitiesInStudy alone matches the series."""
    _, port, _ = served
    for level, key, value, expected in COMPUTED_CONSTRAINTS:
        keys = {"QueryRetrieveLevel": level, "PatientID": "FIND*", key: value}
        final, answers = raw_find(port, keys)
        if expected == UNABLE:
            assert (final, answers) == (UNABLE, []), keys
            final, _ = raw_find(port, {**keys, "PatientID": "NONE"})
            assert final == UNABLE, keys
        else:
            assert (final, len(answers)) == (SUCCESS, expected), keys


def test_computed_key_held_by_a_file_matches(make_server) -> None:  # type: ignore[no-untyped-def]
    """The files are what a computed key is matched against: one that holds the
    attribute matches its value (as in Orthanc), and the answer still carries the
    count the index computes."""
    server = make_server(**FIND)
    data = make_dicom(patient_id="HOLDER", NumberOfStudyRelatedInstances=7)
    server.client.post("/instances", content=data).raise_for_status()
    port = dicom_port(server)
    keys = {"QueryRetrieveLevel": "STUDY", "PatientID": "HOLDER"}
    final, answers = raw_find(port, {**keys, "NumberOfStudyRelatedInstances": "7"})
    assert final == SUCCESS
    assert [a["NumberOfStudyRelatedInstances"] for a in answers] == ["1"]
    assert raw_find(port, {**keys, "NumberOfStudyRelatedInstances": "1"}) == (SUCCESS, [])


def test_computed_keys_as_constraints_match_the_oracle(make_server) -> None:  # type: ignore[no-untyped-def]
    """The same files in dicomhub and in the reference Orthanc, computed keys with
    values, wildcards and universal values: the same statuses and answers."""
    patient_id = "NFO" + uuid.uuid4().hex[:8]
    study = generate_uid()
    files = [
        make_dicom(patient_id=patient_id, study_uid=study, series_uid=series, modality=modality)
        for series, modality in ((generate_uid(), "CT"), (generate_uid(), "MR"))
        for _ in range(2)
    ]
    files.append(make_dicom(patient_id=patient_id, NumberOfSeriesRelatedInstances=5))
    with on_both(make_server, files, "NF") as (server, system, caller):
        ours, theirs = dicom_port(server), system["DicomPort"]
        for level, key, value, _ in COMPUTED_CONSTRAINTS + [
            ("SERIES", "NumberOfSeriesRelatedInstances", "5", 1),
            ("STUDY", "ModalitiesInStudy", "MR", 1),
        ]:
            keys = {"QueryRetrieveLevel": level, "PatientID": patient_id, key: value}
            got = raw_find(ours, keys, "ORTHANC", caller)
            assert got == raw_find(theirs, keys, system["DicomAet"], caller), keys
