"""Modality worklist C-FIND served from a folder of ``.wl`` files (``Worklists``),
against dcmtk's ``findscu -W`` and pynetdicom; the answers are compared with dcmtk's
own worklist SCP (``wlmscpfs``) serving the same files, and the REST
``find-worklist`` SCU route is tried against both.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, free_port
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from net import LOOPBACK, dcmtk, dicom_port, output, run, wait_port

PENDING, SUCCESS, CANCEL, UNABLE = 0xFF00, 0x0000, 0xFE00, 0xC000

#: (file name, PatientID, PatientName, Modality, station AET, start date)
ITEMS = [
    ("a.wl", "WL001", "Smith^Anna", "CT", "CTSCANNER", "20240301"),
    ("b.wl", "WL002", "Jones^Bob", "MR", "MRSCANNER", "20240302"),
    ("c.wl", "WL003", "smith^carl", "CT", "CTSCANNER", "20240315"),
    ("d.WL", "WL004", "Brown^Dora", "US", "USSCANNER", "20240401"),
]


def make_worklist(patient_id: str, name: str, modality: str, station: str, date: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.AccessionNumber = "ACC" + patient_id
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureID = "RP" + patient_id
    ds.RequestedProcedureDescription = f"{modality} exam"
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = "090000"
    step.ScheduledProcedureStepDescription = f"{modality} step"
    step.ScheduledProcedureStepID = "SPS" + patient_id
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The worklists, in a subfolder named after dcmtk's AET (wlmscpfs wants that)."""
    path = tmp_path / "worklists" / "WLSCP"
    path.mkdir(parents=True)
    for file_name, *values in ITEMS:
        make_worklist(*values).save_as(path / file_name, enforce_file_format=False)
    (path / "notes.txt").write_text("not a worklist")
    (path / "broken.wl").write_bytes(b"not DICOM at all")
    (path / "lockfile").write_bytes(b"")
    return path


def _server(make_server: Any, folder: Path, **config: Any) -> tuple[RunningServer, int]:
    settings: dict[str, Any] = {
        "DicomBindAddress": LOOPBACK,
        "DicomAlwaysAllowFindWorklist": True,
        "Worklists": {"Enable": True, "Database": str(folder)},
    }
    settings.update(config)
    server = make_server(**settings)
    return server, dicom_port(server)


def query(**keys: Any) -> Dataset:
    """A worklist query: top-level keys, ``Step`` holding the step item's keys."""
    ds = Dataset()
    step = Dataset()
    for keyword, value in keys.pop("Step", {}).items():
        setattr(step, keyword, value)
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


def find(
    port: int, identifier: Dataset, calling: str = "PYWL", called: str = "ORTHANC"
) -> tuple[list[int], list[Dataset]]:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate(LOOPBACK, port, ae_title=called)
    if not assoc.is_established:  # e.g. no accepted presentation context
        return [], []
    statuses: list[int] = []
    answers: list[Dataset] = []
    try:
        if not assoc.accepted_contexts:
            return [], []
        for status, found in assoc.send_c_find(identifier, ModalityWorklistInformationFind):
            if not status:
                statuses.append(-1)
                break
            statuses.append(int(status.Status))
            if found is not None and status.Status == PENDING:
                answers.append(found)
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses, answers


def ids(answers: list[Dataset]) -> list[str]:
    return sorted(str(a.PatientID) for a in answers)


def test_matching_on_top_level_and_sequence_keys(make_server: Any, folder: Path) -> None:
    _, port = _server(make_server, folder)
    # everything (the broken and the non-.wl files are skipped)
    statuses, answers = find(port, query(PatientID="", Step={"Modality": ""}))
    assert statuses[-1] == SUCCESS
    assert ids(answers) == ["WL001", "WL002", "WL003", "WL004"]
    # sequence key: modality and a date range inside ScheduledProcedureStepSequence
    _, answers = find(
        port,
        query(
            PatientID="",
            PatientName="",
            Step={"Modality": "CT", "ScheduledProcedureStepStartDate": "20240301-20240310"},
        ),
    )
    assert ids(answers) == ["WL001"]
    [answer] = answers
    assert answer.PatientName == "Smith^Anna"
    step = answer.ScheduledProcedureStepSequence[0]
    assert step.Modality == "CT"
    assert step.ScheduledProcedureStepStartDate == "20240301"
    # only the asked keys come back
    assert "PatientBirthDate" not in answer and "ScheduledStationAETitle" not in step
    # person names match case-insensitively with wildcards, as Orthanc
    _, answers = find(port, query(PatientName="SMITH*", Step={}))
    assert sorted(str(a.PatientName) for a in answers) == ["Smith^Anna", "smith^carl"]
    # a list of values, and a key that no file matches
    _, answers = find(port, query(PatientID="WL002\\WL004", Step={}))
    assert ids(answers) == ["WL002", "WL004"]
    statuses, answers = find(port, query(AccessionNumber="NONE", Step={}))
    assert (statuses, answers) == ([SUCCESS], [])
    # an empty sequence item asks for the whole sequence
    _, answers = find(port, query(PatientID="WL004", Step={}))
    step = answers[0].ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle) == ("US", "USSCANNER")


def test_findscu_worklist(make_server: Any, folder: Path, tmp_path: Path) -> None:
    _, port = _server(make_server, folder)
    out = tmp_path / "rsp"
    out.mkdir()
    result = run(
        [
            dcmtk("findscu"),
            "-v",
            "-W",
            "-aet",
            "FINDSCU",
            "-aec",
            "ORTHANC",
            "-X",
            "-od",
            str(out),
            "-k",
            "PatientName",
            "-k",
            "PatientID",
            "-k",
            "ScheduledProcedureStepSequence[0].Modality=MR",
            "-k",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
            LOOPBACK,
            str(port),
        ]
    )
    assert result.returncode == 0, output(result)
    answers = [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]
    assert ids(answers) == ["WL002"]
    assert answers[0].ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "MRSCANNER"


def test_filter_issuer_aet_and_limit(make_server: Any, folder: Path) -> None:
    _, port = _server(
        make_server,
        folder,
        Worklists={
            "Enable": True,
            "Database": str(folder),
            "FilterIssuerAet": True,
            "LimitAnswers": 1,
        },
    )
    # a caller sees the worklists of its own station only
    statuses, answers = find(port, query(PatientID="", Step={}), calling="MRSCANNER")
    assert (statuses[-1], ids(answers)) == (SUCCESS, ["WL002"])
    # more matches than LimitAnswers: the first answers, then "terminated" (0xFE00)
    statuses, answers = find(port, query(PatientID="", Step={}), calling="CTSCANNER")
    assert statuses == [PENDING, CANCEL]
    assert len(answers) == 1 and answers[0].PatientID in ("WL001", "WL003")
    # the caller's AET replaces the station the query names, for matching only (as
    # Orthanc's plugin): a caller "X" gets nothing, even when asking for "*" or a station
    for station in ("USSCANNER", "*"):
        step = {"ScheduledStationAETitle": station}
        statuses, answers = find(port, query(PatientID="", Step=step), calling="X")
        assert (statuses, answers) == ([SUCCESS], [])
    # ...and the answer is read with the query as sent: no step of MRSCANNER's worklist
    # is at USSCANNER, so its sequence comes back empty
    statuses, answers = find(
        port,
        query(PatientID="", Step={"ScheduledStationAETitle": "USSCANNER"}),
        calling="MRSCANNER",
    )
    assert ids(answers) == ["WL002"]
    assert len(answers[0].ScheduledProcedureStepSequence) == 0


def test_permissions_and_disabled(make_server: Any, folder: Path) -> None:
    # not always allowed: a known modality with AllowFindWorklist false is aborted
    server, port = _server(
        make_server,
        folder,
        DicomAlwaysAllowFindWorklist=False,
        DicomModalities={
            "ris": {"AET": "RIS", "Host": LOOPBACK, "Port": 104},
            "ct": {"AET": "CT", "Host": LOOPBACK, "Port": 104, "AllowFindWorklist": False},
        },
    )
    statuses, answers = find(port, query(PatientID="WL001", Step={}), calling="RIS")
    assert ids(answers) == ["WL001"]
    statuses, answers = find(port, query(PatientID="WL001", Step={}), calling="CT")
    assert statuses == [-1] and answers == []
    assert "Rejected FindWorklist request" in (server.folder / "server.log").read_text()
    # Worklists not enabled: the SOP class is not negotiated
    _, port = _server(make_server, folder, Worklists={"Enable": False, "Database": str(folder)})
    assert find(port, query(PatientID="", Step={})) == ([], [])


def test_bad_query_is_unable_to_process(make_server: Any, folder: Path) -> None:
    _, port = _server(make_server, folder)
    statuses, _ = find(port, query(StudyInstanceUID="1.2*", Step={}))
    assert statuses == [UNABLE]


def _two_steps(patient_id: str = "WL005") -> Dataset:
    """A worklist with two steps: US at USSCANNER, then CT at CTSCANNER."""
    ds = make_worklist(patient_id, "Two^Steps", "US", "USSCANNER", "20240501")
    step = Dataset()
    step.Modality = "CT"
    step.ScheduledStationAETitle = "CTSCANNER"
    step.ScheduledProcedureStepStartDate = "20240502"
    step.ScheduledProcedureStepID = "SPS-CT-" + patient_id
    ds.ScheduledProcedureStepSequence.append(step)
    return ds


def _without_charset(ds: Dataset, path: Path) -> None:
    """Save ``ds`` encoded in its own SpecificCharacterSet (explicit VR little endian),
    then cut that element out of the bytes: a file whose text says nothing of its
    character set (pydicom would re-encode the values if the element were deleted)."""
    ds.save_as(path, enforce_file_format=False)
    data = path.read_bytes()
    start = data.index(b"\x08\x00\x05\x00CS")
    length = int.from_bytes(data[start + 6 : start + 8], "little")
    path.write_bytes(data[:start] + data[start + 8 + length :])
    assert "SpecificCharacterSet" not in dcmread(path, force=True)


def test_a_file_that_is_not_dicom_is_no_worklist(make_server: Any, folder: Path) -> None:
    # a forced read makes one unknown element of a text; ten NUL bytes a group length
    (folder / "junk.wl").write_bytes(b"this is not DICOM")
    (folder / "zeros.wl").write_bytes(bytes(10))
    # a bare dataset (no preamble, no meta header) is still a worklist
    bare = make_worklist("WL006", "Bare^Data", "CR", "CRSCANNER", "20240601")
    del bare.file_meta
    bare.save_as(folder / "bare.wl", enforce_file_format=False, implicit_vr=True)
    # and so is a file with a public tag newer than the dictionary
    newer = make_worklist("WL010", "Newer^Tags", "CR", "CRSCANNER", "20240602")
    newer.add_new(0x0040FFF0, "LO", "from the future")
    newer.save_as(folder / "newer.wl", enforce_file_format=False)
    _, port = _server(
        make_server, folder, Worklists={"Enable": True, "Database": str(folder), "LimitAnswers": 6}
    )
    for keys in ({"PatientID": "", "PatientName": ""}, {"PatientComments": "", "PatientID": ""}):
        statuses, answers = find(port, query(**keys, Step={}))
        assert statuses[-1] == SUCCESS, keys  # six answers: not cropped by the junk
        assert ids(answers) == ["WL001", "WL002", "WL003", "WL004", "WL006", "WL010"]


def test_only_the_matching_steps_are_answered(make_server: Any, folder: Path) -> None:
    _two_steps().save_as(folder / "two.wl", enforce_file_format=False)
    _, port = _server(make_server, folder)
    # a constraint in the item: only the steps that meet it come back (PS3.4 C.2.2.2.6)
    for step in (
        {"Modality": "CT", "ScheduledStationAETitle": ""},
        {"ScheduledStationAETitle": "CTSCANNER", "ScheduledProcedureStepStartDate": ""},
        {"ScheduledProcedureStepStartDate": "20240502-", "Modality": ""},
        {"Modality": "CT\\MR", "ScheduledStationAETitle": "CT*"},
    ):
        _, answers = find(port, query(PatientID="WL005", Step=step))
        assert len(answers) == 1, step
        [item] = answers[0].ScheduledProcedureStepSequence
        ct_step = {
            "Modality": "CT",
            "ScheduledStationAETitle": "CTSCANNER",
            "ScheduledProcedureStepStartDate": "20240502",
        }
        assert {k: str(item.get(k)) for k in step} == {k: ct_step[k] for k in step}, step
        assert set(item.dir()) == set(step), step  # only the item's keys
    # no constraint in the item: every step, reduced to the item's keys
    _, answers = find(port, query(PatientID="WL005", Step={"Modality": ""}))
    assert [i.Modality for i in answers[0].ScheduledProcedureStepSequence] == ["US", "CT"]
    assert [i.dir() for i in answers[0].ScheduledProcedureStepSequence] == [["Modality"]] * 2


def test_filter_issuer_aet_matches_the_caller_in_the_same_step(
    make_server: Any, folder: Path
) -> None:
    _two_steps().save_as(folder / "two.wl", enforce_file_format=False)
    _, port = _server(
        make_server,
        folder,
        Worklists={"Enable": True, "Database": str(folder), "FilterIssuerAet": True},
    )
    # USSCANNER has the US step of two.wl, the CT step is another station's
    step = {"Modality": "CT", "ScheduledStationAETitle": ""}
    statuses, answers = find(port, query(PatientID="", Step=step), calling="USSCANNER")
    assert (statuses, answers) == ([SUCCESS], [])
    step = {"Modality": "", "ScheduledStationAETitle": ""}
    _, answers = find(port, query(PatientID="", Step=step), calling="USSCANNER")
    assert ids(answers) == ["WL004", "WL005"]
    # the answer is read with the query as sent: both steps of two.wl
    [two] = [a for a in answers if a.PatientID == "WL005"]
    assert [i.Modality for i in two.ScheduledProcedureStepSequence] == ["US", "CT"]
    # the query's own station is replaced by the caller's: CTSCANNER's worklists,
    # each with the steps at USSCANNER (none for the CT-only ones)
    step = {"ScheduledStationAETitle": "USSCANNER", "Modality": ""}
    _, answers = find(port, query(PatientID="", Step=step), calling="CTSCANNER")
    assert ids(answers) == ["WL001", "WL003", "WL005"]
    steps = {str(a.PatientID): a.ScheduledProcedureStepSequence for a in answers}
    assert (len(steps["WL001"]), len(steps["WL003"])) == (0, 0)
    assert [i.Modality for i in steps["WL005"]] == ["US"]
    # no step sequence in the query at all: still filtered on the caller
    ds = Dataset()
    ds.PatientID = ""
    _, answers = find(port, ds, calling="MRSCANNER")
    assert ids(answers) == ["WL002"] and "ScheduledProcedureStepSequence" not in answers[0]


def test_keys_the_file_lacks_are_left_out(make_server: Any, folder: Path) -> None:
    _, port = _server(make_server, folder)
    ds = query(
        PatientID="WL001",
        PatientComments="",
        PatientWeight="",
        IssuerOfPatientID="",
        Modality="",
        Step={"Modality": "", "ScheduledProcedureStepLocation": ""},
    )
    ds.ReferencedStudySequence = Sequence([])
    ds.ReferencedPatientSequence = Sequence([Dataset()])
    _, [answer] = find(port, ds)
    assert answer.dir() == ["PatientID", "ScheduledProcedureStepSequence", "SpecificCharacterSet"]
    assert answer.ScheduledProcedureStepSequence[0].dir() == ["Modality"]


def test_every_answer_names_its_character_set(
    make_server: Any, folder: Path, tmp_path: Path
) -> None:
    latin = make_worklist("WL007", "Müller^Jürgen", "CT", "CTSCANNER", "20240701")
    _without_charset(latin, folder / "latin.wl")  # read with DefaultEncoding (Latin1)
    utf8 = make_worklist("WL008", "Ivanov^Ivan=Иванов^Иван", "MR", "MRSCANNER", "20240702")
    utf8.SpecificCharacterSet = "ISO_IR 192"
    utf8.save_as(folder / "utf8.wl", enforce_file_format=False)
    _, port = _server(make_server, folder)
    for asked in (True, False):  # never empty, whether the query asks for it or not
        ds = query(PatientID="WL007\\WL008", PatientName="", Step={})
        if asked:
            ds.SpecificCharacterSet = ""
        _, answers = find(port, ds)
        found = {str(a.PatientID): (a.SpecificCharacterSet, str(a.PatientName)) for a in answers}
        assert found == {
            "WL007": ("ISO_IR 100", "Müller^Jürgen"),
            "WL008": ("ISO_IR 192", "Ivanov^Ivan=Иванов^Иван"),  # the file's, kept
        }, asked
    # DefaultEncoding Utf8: a file without a character set is read, and named, as UTF-8
    other = tmp_path / "utf8-default"
    other.mkdir()
    name = "Ivanov^Ivan=Иванов^Иван"
    plain = make_worklist("WL009", name, "MR", "MRSCANNER", "20240703")
    plain.SpecificCharacterSet = "ISO_IR 192"
    _without_charset(plain, other / "plain.wl")
    _, port = _server(make_server, other, DefaultEncoding="Utf8")
    _, [answer] = find(port, query(PatientID="", PatientName="", Step={}))
    assert (answer.SpecificCharacterSet, str(answer.PatientName)) == ("ISO_IR 192", name)


def test_refused_queries_and_a_missing_folder(make_server: Any, folder: Path) -> None:
    _, port = _server(make_server, folder)
    # more than one item in a query sequence, at the top or deeper
    ds = query(PatientID="")
    ds.ScheduledProcedureStepSequence.append(Dataset())
    assert find(port, ds)[0] == [UNABLE]
    ds = query(PatientID="", Step={})
    ds.ReferencedStudySequence = Sequence([Dataset(), Dataset()])
    assert find(port, ds)[0] == [UNABLE]
    # the Database folder is gone: the C-FIND fails instead of answering nothing
    hidden = folder.with_name("hidden")
    folder.rename(hidden)
    try:
        assert find(port, query(PatientID="", Step={}))[0] == [UNABLE]
    finally:
        hidden.rename(folder)
    assert find(port, query(PatientID="", Step={}))[0][-1] == SUCCESS


# ---- compared with dcmtk's worklist SCP, and the REST SCU route -----------------
@pytest.fixture
def wlmscpfs(folder: Path) -> Iterator[int]:
    port = free_port()
    log = open(folder.parent / "wlmscpfs.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [dcmtk("wlmscpfs"), "-v", "-dfp", str(folder.parent), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _plain(ds: Dataset) -> dict[str, Any]:
    """Keyword -> value, sequences as lists of the same, without the character set."""
    found: dict[str, Any] = {}
    for elem in ds:
        if elem.keyword == "SpecificCharacterSet":
            continue
        if elem.VR == "SQ":
            found[elem.keyword] = [_plain(item) for item in elem.value]
        else:
            found[elem.keyword] = str(elem.value) if elem.value is not None else ""
    return found


@pytest.mark.parametrize(
    "keys",
    [
        {
            "PatientID": "",
            "PatientName": "",
            "Step": {"Modality": "CT", "ScheduledStationAETitle": ""},
        },
        {
            "PatientName": "Jones*",
            "AccessionNumber": "",
            "Step": {"ScheduledProcedureStepStartDate": ""},
        },
        {
            "PatientID": "",
            "Step": {"ScheduledProcedureStepStartDate": "20240302-20240401", "Modality": ""},
        },
    ],
)
def test_same_answers_as_dcmtk_wlmscpfs(
    make_server: Any, folder: Path, wlmscpfs: int, keys: dict[str, Any]
) -> None:
    _, port = _server(make_server, folder)
    _, ours = find(port, query(**dict(keys)))
    _, theirs = find(wlmscpfs, query(**dict(keys)), called="WLSCP")
    # wlmscpfs reads "*.wl" in lower case only; Orthanc's plugin (and we) any case
    ours = [a for a in ours if a.get("PatientID") != "WL004"]
    assert ours, keys
    assert sorted(map(str, map(_plain, ours))) == sorted(map(str, map(_plain, theirs)))


def test_rest_find_worklist(make_server: Any, folder: Path, wlmscpfs: int) -> None:
    source, port = _server(make_server, folder)
    hub = make_server(
        DicomModalities={
            "source": ["ORTHANC", LOOPBACK, port],
            "dcmtk": ["WLSCP", LOOPBACK, wlmscpfs],
        }
    )
    body = {
        "PatientID": "",
        "PatientName": "",
        "ScheduledProcedureStepSequence": [{"Modality": "CT", "ScheduledStationAETitle": ""}],
    }
    results = {}
    for name in ("source", "dcmtk"):
        response = hub.client.post(f"/modalities/{name}/find-worklist", json=body)
        assert response.status_code == 200, response.text
        results[name] = sorted(response.json(), key=lambda a: a["PatientID"])
    assert [a["PatientID"] for a in results["source"]] == ["WL001", "WL003"]
    # we also name the file's character set in each answer; wlmscpfs does not
    assert [a.pop("SpecificCharacterSet") for a in results["source"]] == ["ISO_IR 100"] * 2
    assert results["source"] == results["dcmtk"]
    assert results["source"][0]["ScheduledProcedureStepSequence"] == [
        {"Modality": "CT", "ScheduledStationAETitle": "CTSCANNER"}
    ]
    response = hub.client.post("/modalities/source/find-worklist", json={"PatientID": 3})
    assert response.status_code == 400
    # the 1.12 form, with "Query" and "Short"
    response = hub.client.post(
        "/modalities/source/find-worklist",
        json={"Query": {"PatientID": "WL002", "PatientName": ""}, "Short": True},
    )
    assert response.json() == [
        {"0008,0005": "ISO_IR 100", "0010,0010": "Jones^Bob", "0010,0020": "WL002"}
    ]
