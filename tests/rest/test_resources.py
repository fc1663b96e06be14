"""Browsing the hierarchy: lists, resources, children and parents, statistics, tools."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_uploads, statistics, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dataset, make_dicom, to_bytes

ISO_DATE = re.compile(r"^\d{8}T\d{6}$")
UNKNOWN = "01234567-89abcdef-01234567-89abcdef-01234567"

KEYS = {
    "patients": {"ID", "IsStable", "LastUpdate", "MainDicomTags", "Studies", "Type", "Labels"},
    "studies": {
        "ID",
        "IsStable",
        "LastUpdate",
        "MainDicomTags",
        "ParentPatient",
        "PatientMainDicomTags",
        "Series",
        "Type",
        "Labels",
    },
    "series": {
        "ExpectedNumberOfInstances",
        "ID",
        "Instances",
        "IsStable",
        "LastUpdate",
        "MainDicomTags",
        "ParentStudy",
        "Status",
        "Type",
        "Labels",
    },
    "instances": {
        "FileSize",
        "FileUuid",
        "ID",
        "IndexInSeries",
        "MainDicomTags",
        "ParentSeries",
        "Type",
        "Labels",
    },
}


@dataclass
class Tree:
    """Two patients; the first has two studies, the first study two series."""

    patient: str = ""
    other_patient: str = ""
    studies: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)  # of the first study, then the second
    instances: list[str] = field(default_factory=list)  # se1: 2, se2: 1, se3: 1
    sizes: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("resources"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tree(shared: RunningServer) -> Tree:
    t = Tree()
    pid = "R" + uuid.uuid4().hex[:8]
    st1, st2 = f"1.2.826.0.1.3680043.10.{uuid.uuid4().int}", "1.2.826.0.1.3680043.10.2"
    files = [
        dict(study_uid=st1, series_uid=st1 + ".1", InstanceNumber="1"),
        dict(study_uid=st1, series_uid=st1 + ".1", InstanceNumber="2"),
        dict(study_uid=st1, series_uid=st1 + ".2", InstanceNumber="1", CardiacNumberOfImages="2"),
        dict(study_uid=st2, series_uid=st2 + ".1", InstanceNumber="1", CardiacNumberOfImages="1"),
    ]
    for spec in files:
        data = make_dicom(patient_id=pid, modality="MR", **spec)  # type: ignore[arg-type]
        answer = upload(shared.client, data)
        t.patient = answer["ParentPatient"]
        if answer["ParentStudy"] not in t.studies:
            t.studies.append(answer["ParentStudy"])
        if answer["ParentSeries"] not in t.series:
            t.series.append(answer["ParentSeries"])
        t.instances.append(answer["ID"])
        t.sizes[answer["ID"]] = len(data)
    other = upload(shared.client, make_dicom(patient_id="O" + pid))
    t.other_patient = other["ParentPatient"]
    return t


@pytest.fixture
def oracle() -> Iterator:
    yield from oracle_uploads()


def get(client: httpx.Client, path: str, **params: str) -> object:
    response = client.get(path, params=params)
    assert response.status_code == 200, f"{path}: {response.text}"
    return response.json()


# ---- lists -------------------------------------------------------------------


def test_lists_answer_identifiers(shared: RunningServer, tree: Tree) -> None:
    patients = get(shared.client, "/patients")
    assert patients.index(tree.patient) < patients.index(tree.other_patient)
    assert set(tree.studies) <= set(get(shared.client, "/studies"))
    assert set(tree.series) <= set(get(shared.client, "/series"))
    instances = get(shared.client, "/instances")
    assert instances[: len(tree.instances)] == tree.instances
    assert all(isinstance(i, str) for i in instances)


@pytest.mark.parametrize("level", sorted(KEYS))
def test_expanded_list_matches_each_resource(shared: RunningServer, tree: Tree, level: str) -> None:
    expanded = get(shared.client, f"/{level}", expand="")
    ids = get(shared.client, f"/{level}")
    assert [item["ID"] for item in expanded] == ids
    for item in expanded:
        assert item == get(shared.client, f"/{level}/{item['ID']}")
        assert set(item) == KEYS[level]


def test_since_and_limit_page_through_a_list(shared: RunningServer, tree: Tree) -> None:
    everything = get(shared.client, "/instances")
    assert len(everything) >= 5
    assert get(shared.client, "/instances", since="1", limit="2") == everything[1:3]
    assert get(shared.client, "/instances", since="3", limit="10") == everything[3:]
    assert get(shared.client, "/instances", since="999", limit="10") == []
    expanded = get(shared.client, "/instances", since="2", limit="1", expand="")
    assert [i["ID"] for i in expanded] == everything[2:3]


def test_bad_list_arguments(shared: RunningServer) -> None:
    # as the reference; more cases (negative values, limit=0) in test_list_arguments.py
    for params in ({"since": "abc", "limit": "1"}, {"since": "0", "limit": "1.5"}):
        response = shared.client.get("/instances", params=params)
        assert_orthanc_error(response, 400, "Bad type for a parameter", 5)


def test_short_and_full_tag_styles(shared: RunningServer, tree: Tree) -> None:
    names = get(shared.client, f"/patients/{tree.patient}")["MainDicomTags"]
    short = get(shared.client, f"/patients/{tree.patient}", short="")["MainDicomTags"]
    full = get(shared.client, f"/patients/{tree.patient}", full="")["MainDicomTags"]
    assert short["0010,0020"] == names["PatientID"]
    assert full["0010,0020"] == {"Name": "PatientID", "Type": "String", "Value": names["PatientID"]}
    assert set(short) == set(full) == {"0010,0010", "0010,0020", "0010,0030", "0010,0040"}
    listed = get(shared.client, "/patients", expand="", short="")
    assert any(p["MainDicomTags"] == short for p in listed)
    study = get(shared.client, f"/studies/{tree.studies[0]}", short="")
    assert study["PatientMainDicomTags"]["0010,0020"] == names["PatientID"]


def test_requested_tags(shared: RunningServer, tree: Tree) -> None:
    study = get(
        shared.client,
        f"/studies/{tree.studies[0]}",
        **{
            "requested-tags": "PatientName;0008,0020;NumberOfStudyRelatedInstances;ModalitiesInStudy"
        },
    )
    assert study["RequestedTags"] == {
        "ModalitiesInStudy": "MR",
        "NumberOfStudyRelatedInstances": "3",
        "PatientName": "Doe^John",
        "StudyDate": "20240102",
    }
    listed = get(
        shared.client, "/studies", expand="", **{"requested-tags": "NumberOfStudyRelatedSeries"}
    )
    mine = {s["ID"]: s for s in listed}
    assert mine[tree.studies[0]]["RequestedTags"] == {"NumberOfStudyRelatedSeries": "2"}
    # a tag that is not in the index is read from a file
    instance = get(shared.client, f"/instances/{tree.instances[0]}", **{"requested-tags": "Rows"})
    assert instance["RequestedTags"] == {"Rows": "8"}


# ---- one resource ------------------------------------------------------------


def test_resource_shapes(shared: RunningServer, tree: Tree) -> None:
    patient = get(shared.client, f"/patients/{tree.patient}")
    assert patient["Type"] == "Patient"
    assert patient["Studies"] == tree.studies
    assert patient["MainDicomTags"]["PatientName"] == "Doe^John"

    study = get(shared.client, f"/studies/{tree.studies[0]}")
    assert study["Type"] == "Study"
    assert study["ParentPatient"] == tree.patient
    assert study["Series"] == tree.series[:2]
    assert study["PatientMainDicomTags"] == patient["MainDicomTags"]
    assert "PatientName" not in study["MainDicomTags"]

    for resource in (patient, study):
        assert isinstance(resource["IsStable"], bool)
        assert ISO_DATE.match(resource["LastUpdate"])
        assert resource["Labels"] == []

    series = [get(shared.client, f"/series/{s}") for s in tree.series]
    assert [s["Type"] for s in series] == ["Series"] * 3
    assert series[0]["Instances"] == tree.instances[:2]
    assert (series[0]["Status"], series[0]["ExpectedNumberOfInstances"]) == ("Unknown", None)
    assert (series[1]["Status"], series[1]["ExpectedNumberOfInstances"]) == ("Missing", 2)
    assert (series[2]["Status"], series[2]["ExpectedNumberOfInstances"]) == ("Complete", 1)
    assert series[0]["MainDicomTags"]["Modality"] == "MR"
    assert isinstance(series[0]["IsStable"], bool) and ISO_DATE.match(series[0]["LastUpdate"])

    instance = get(shared.client, f"/instances/{tree.instances[1]}")
    assert instance["Type"] == "Instance"
    assert instance["ParentSeries"] == tree.series[0]
    assert instance["FileSize"] == tree.sizes[tree.instances[1]]
    assert re.match(r"^[0-9a-f-]{36}$", instance["FileUuid"])
    assert instance["IndexInSeries"] == 2
    assert instance["MainDicomTags"]["InstanceNumber"] == "2"
    assert instance["Labels"] == []


def test_shapes_match_the_reference(shared: RunningServer, oracle) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    data = make_dicom(
        patient_id="SHAPE" + uuid.uuid4().hex[:8], NumberOfSlices=3, NumberOfTimeSlices=2
    )
    ours, theirs = upload(shared.client, data), oracle.upload(data)
    assert ours["ID"] == theirs["ID"]
    paths = {
        "patients": ours["ParentPatient"],
        "studies": ours["ParentStudy"],
        "series": ours["ParentSeries"],
        "instances": ours["ID"],
    }
    for level, public_id in paths.items():
        a = get(shared.client, f"/{level}/{public_id}")
        b = get(oracle.client, f"/{level}/{public_id}")
        assert set(a) == set(b) | {"Labels"}, level  # Labels arrived after 1.10.1
        for key, value in b.items():
            assert type(a[key]) is type(value), (level, key)
            if key not in ("LastUpdate", "FileUuid", "IsStable"):
                assert a[key] == value, (level, key)
        sa = get(shared.client, f"/{level}/{public_id}/statistics")
        sb = get(oracle.client, f"/{level}/{public_id}/statistics")
        assert sa == sb, level


SERIES_CASES = {
    # tags of the series' files -> (ExpectedNumberOfInstances, Status) on the reference
    "slices-times-time-slices": (dict(NumberOfSlices=2, NumberOfTimeSlices=3), (6, "Missing")),
    "slices-alone": (dict(NumberOfSlices=2), (None, "Unknown")),
    "images-in-acquisition": (dict(ImagesInAcquisition="3"), (None, "Unknown")),
    "images-times-positions": (
        dict(ImagesInAcquisition="3", NumberOfTemporalPositions="2"),
        (6, "Missing"),
    ),
    "cardiac": (dict(CardiacNumberOfImages="1"), (1, "Complete")),
    "cardiac-wins": (dict(NumberOfSlices=5, CardiacNumberOfImages="2"), (2, "Missing")),
    "index-too-big": (dict(CardiacNumberOfImages="1", InstanceNumber="7"), (1, "Inconsistent")),
    "no-index": (dict(CardiacNumberOfImages="1", InstanceNumber=None), (1, "Missing")),
    "image-index": (
        dict(CardiacNumberOfImages="1", InstanceNumber=None, ImageIndex=1),
        (1, "Complete"),
    ),
}


@pytest.mark.parametrize("case", sorted(SERIES_CASES))
def test_series_status(shared: RunningServer, case: str) -> None:
    tags, expected = SERIES_CASES[case]
    ds = make_dataset(patient_id="STATUS", InstanceNumber="1")
    for key, value in tags.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    answer = upload(shared.client, to_bytes(ds))
    series = get(shared.client, f"/series/{answer['ParentSeries']}")
    assert (series["ExpectedNumberOfInstances"], series["Status"]) == expected
    instance = get(shared.client, answer["Path"])
    index = ds.get("InstanceNumber") or ds.get("ImageIndex")
    assert instance["IndexInSeries"] == (int(index) if index is not None else None)


@pytest.mark.parametrize(
    ("second_number", "status", "recorded"),
    [
        (None, "Missing", None),
        ("", "Unknown", ""),
        ("abc", "Unknown", "abc"),
        ("2", "Complete", "2"),
    ],
)
def test_series_status_with_an_odd_instance_number(
    shared: RunningServer, second_number: str | None, status: str, recorded: str | None
) -> None:
    """As Orthanc: an InstanceNumber present but empty (or not a number) is recorded as
    it is in IndexInSeries, and makes the series' status Unknown."""
    study = f"1.2.826.0.1.3680043.10.{uuid.uuid4().int}"
    first = make_dataset(patient_id="ODDNUM", study_uid=study, series_uid=study + ".1")
    first.InstanceNumber, first.CardiacNumberOfImages = "1", "2"
    second = make_dataset(patient_id="ODDNUM", study_uid=study, series_uid=study + ".1")
    second.CardiacNumberOfImages = "2"
    del second.InstanceNumber
    if second_number is not None:
        second.add_new(0x00200013, "IS", None)
        second[0x00200013]._value = second_number  # as is: pydicom refuses "abc" for IS
    upload(shared.client, to_bytes(first))
    answer = upload(shared.client, to_bytes(second))
    assert get(shared.client, f"/series/{answer['ParentSeries']}")["Status"] == status
    index = shared.client.get(f"{answer['Path']}/metadata/IndexInSeries")
    if recorded is None:
        assert index.status_code == 404
    else:
        assert (index.status_code, index.text) == (200, recorded)
    assert get(shared.client, answer["Path"])["IndexInSeries"] == (2 if recorded == "2" else None)


# ---- children and parents ------------------------------------------------------


def test_descendant_routes(shared: RunningServer, tree: Tree) -> None:
    c = shared.client
    cases = {
        f"/patients/{tree.patient}/studies": tree.studies,
        f"/patients/{tree.patient}/series": tree.series,
        f"/patients/{tree.patient}/instances": tree.instances,
        f"/studies/{tree.studies[0]}/series": tree.series[:2],
        f"/studies/{tree.studies[0]}/instances": tree.instances[:3],
        f"/series/{tree.series[0]}/instances": tree.instances[:2],
    }
    for path, expected in cases.items():
        expanded = get(c, path)
        assert [r["ID"] for r in expanded] == expected, path
        level = path.rsplit("/", 1)[1]
        assert expanded[0] == get(c, f"/{level}/{expected[0]}"), path
        assert get(c, path, expand="false") == expected, path


def test_ancestor_routes(shared: RunningServer, tree: Tree) -> None:
    c = shared.client
    instance = tree.instances[2]
    cases = {
        f"/instances/{instance}/series": ("series", tree.series[1]),
        f"/instances/{instance}/study": ("studies", tree.studies[0]),
        f"/instances/{instance}/patient": ("patients", tree.patient),
        f"/series/{tree.series[2]}/study": ("studies", tree.studies[1]),
        f"/series/{tree.series[2]}/patient": ("patients", tree.patient),
        f"/studies/{tree.studies[1]}/patient": ("patients", tree.patient),
    }
    for path, (level, expected) in cases.items():
        assert get(c, path) == get(c, f"/{level}/{expected}"), path
    short = get(c, f"/instances/{instance}/patient", short="")
    assert "0010,0020" in short["MainDicomTags"]


# ---- statistics ----------------------------------------------------------------


def test_resource_statistics(shared: RunningServer, tree: Tree) -> None:
    sizes = [tree.sizes[i] for i in tree.instances]

    def size_fields(total: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for prefix in ("Disk", "Uncompressed", "DicomDisk", "DicomUncompressed"):
            out[f"{prefix}Size"] = str(total)
            out[f"{prefix}SizeMB"] = total // (1024 * 1024)
        return out

    assert get(shared.client, f"/patients/{tree.patient}/statistics") == {
        "CountStudies": 2,
        "CountSeries": 3,
        "CountInstances": 4,
        **size_fields(sum(sizes)),
    }
    assert get(shared.client, f"/studies/{tree.studies[0]}/statistics") == {
        "CountSeries": 2,
        "CountInstances": 3,
        **size_fields(sum(sizes[:3])),
    }
    assert get(shared.client, f"/series/{tree.series[0]}/statistics") == {
        "CountInstances": 2,
        **size_fields(sum(sizes[:2])),
    }
    assert get(shared.client, f"/instances/{tree.instances[3]}/statistics") == size_fields(sizes[3])


def test_global_statistics(shared: RunningServer, tree: Tree) -> None:
    stats = statistics(shared.client)
    assert set(stats) == {
        "CountInstances",
        "CountPatients",
        "CountSeries",
        "CountStudies",
        "TotalDiskSize",
        "TotalDiskSizeMB",
        "TotalUncompressedSize",
        "TotalUncompressedSizeMB",
    }
    assert stats["CountPatients"] == len(get(shared.client, "/patients"))
    assert stats["CountStudies"] == len(get(shared.client, "/studies"))
    assert stats["CountSeries"] == len(get(shared.client, "/series"))
    instances = get(shared.client, "/instances", expand="")
    assert stats["CountInstances"] == len(instances)
    assert stats["TotalDiskSize"] == str(sum(i["FileSize"] for i in instances))
    assert stats["TotalUncompressedSize"] == stats["TotalDiskSize"]


# ---- protection and lookup -----------------------------------------------------


def test_protected_flag(shared: RunningServer, tree: Tree) -> None:
    path = f"/patients/{tree.other_patient}/protected"
    assert shared.client.get(path).text == "0"
    for body, expected in (("1", "1"), ("0", "0"), ("true", "1"), ("false", "0"), (" 1\n", "1")):
        response = shared.client.put(path, content=body)
        assert response.status_code == 200, body
        assert shared.client.get(path).text == expected, body
    for bad in ("2", "", "yes"):
        response = shared.client.put(path, content=bad)
        assert_orthanc_error(response, 400, "Bad file format", 15, "PUT", path)
    assert shared.client.get(path).text == "1"
    shared.client.put(path, content="0")
    # only patients can be protected
    response = shared.client.get(f"/studies/{tree.studies[0]}/protected")
    assert response.status_code in (404, 405)


def test_tools_lookup(shared: RunningServer, tree: Tree) -> None:
    patient_id = get(shared.client, f"/patients/{tree.patient}")["MainDicomTags"]["PatientID"]
    study = get(shared.client, f"/studies/{tree.studies[1]}")
    sop = get(shared.client, f"/instances/{tree.instances[0]}")["MainDicomTags"]["SOPInstanceUID"]

    def lookup(value: str) -> list[dict[str, str]]:
        response = shared.client.post("/tools/lookup", content=value)
        assert response.status_code == 200
        return response.json()

    assert lookup(patient_id) == [
        {"ID": tree.patient, "Path": f"/patients/{tree.patient}", "Type": "Patient"}
    ]
    uid = study["MainDicomTags"]["StudyInstanceUID"]
    assert lookup(uid) == [
        {"ID": tree.studies[1], "Path": f"/studies/{tree.studies[1]}", "Type": "Study"}
    ]
    assert lookup(sop + "\n") == [
        {"ID": tree.instances[0], "Path": f"/instances/{tree.instances[0]}", "Type": "Instance"}
    ]
    assert lookup("no-such-identifier") == []
    # Identifiers match whatever their case; other tags (AccessionNumber) do not.
    assert [hit["ID"] for hit in lookup(f" {patient_id.lower()} ")] == [tree.patient]
    assert lookup(study["MainDicomTags"]["AccessionNumber"]) == []


# ---- unknown identifiers -------------------------------------------------------

UNKNOWN_ROUTES = [
    ("GET", "/patients/{x}"),
    ("GET", "/studies/{x}"),
    ("GET", "/series/{x}"),
    ("GET", "/instances/{x}"),
    ("GET", "/patients/{x}/statistics"),
    ("GET", "/studies/{x}/statistics"),
    ("GET", "/series/{x}/statistics"),
    ("GET", "/instances/{x}/statistics"),
    ("GET", "/patients/{x}/studies"),
    ("GET", "/patients/{x}/instances"),
    ("GET", "/studies/{x}/series"),
    ("GET", "/studies/{x}/patient"),
    ("GET", "/series/{x}/instances"),
    ("GET", "/series/{x}/study"),
    ("GET", "/instances/{x}/series"),
    ("GET", "/instances/{x}/patient"),
    ("GET", "/instances/{x}/file"),
    ("GET", "/patients/{x}/protected"),
    ("PUT", "/patients/{x}/protected"),
    ("GET", "/instances/{x}/tags"),
    ("GET", "/instances/{x}/simplified-tags"),
    ("GET", "/instances/{x}/metadata"),
    ("GET", "/series/{x}/attachments"),
    ("GET", "/studies/{x}/labels"),
    ("GET", "/patients/{x}/archive"),
    ("DELETE", "/patients/{x}"),
    ("DELETE", "/studies/{x}"),
    ("DELETE", "/series/{x}"),
    ("DELETE", "/instances/{x}"),
]


@pytest.mark.parametrize(("method", "route"), UNKNOWN_ROUTES)
def test_unknown_identifier_answers_404(shared: RunningServer, method: str, route: str) -> None:
    for public_id in (UNKNOWN, "not-an-id"):
        path = route.format(x=public_id)
        response = shared.client.request(method, path, content=b"1" if method == "PUT" else None)
        assert_orthanc_error(response, 404, "Unknown resource", 17, method, path)


#: A walk over the routes below /{level}/{id}, with every method: Orthanc's 404 for an
#: unknown identifier has no Details (the identifier is in the URI already). 1.10.1
#: answers GET and DELETE /{level}/{id} with an empty body, /instances/{id}/frames/{n}
#: without looking the instance up, /patients/{id}/protected with a 400
#: (docs/compatibility.md), and accepts a user attachment on an unknown identifier
#: with 200 "{}": these are checked without the oracle.
UNNAMED_404_ROUTES: list[tuple[str, str, bytes | None]] = [
    ("GET", "/patients/{x}/studies", None),
    ("GET", "/patients/{x}/series", None),
    ("GET", "/patients/{x}/instances", None),
    ("GET", "/studies/{x}/patient", None),
    ("GET", "/studies/{x}/series", None),
    ("GET", "/studies/{x}/instances", None),
    ("GET", "/series/{x}/patient", None),
    ("GET", "/series/{x}/study", None),
    ("GET", "/series/{x}/instances", None),
    ("GET", "/instances/{x}/patient", None),
    ("GET", "/instances/{x}/study", None),
    ("GET", "/instances/{x}/series", None),
    ("GET", "/patients/{x}/statistics", None),
    ("GET", "/instances/{x}/statistics", None),
    ("GET", "/series/{x}/ordered-slices", None),
    ("GET", "/instances/{x}/tags", None),
    ("GET", "/instances/{x}/simplified-tags", None),
    ("GET", "/instances/{x}/header", None),
    ("GET", "/instances/{x}/file", None),
    ("GET", "/instances/{x}/content", None),
    ("GET", "/instances/{x}/content/0010,0010", None),
    ("GET", "/instances/{x}/frames", None),
    ("GET", "/instances/{x}/pdf", None),
    ("GET", "/series/{x}/numpy", None),
    ("GET", "/patients/{x}/metadata", None),
    ("GET", "/studies/{x}/metadata/LastUpdate", None),
    ("GET", "/series/{x}/shared-tags", None),
    ("GET", "/series/{x}/instances-tags", None),
    ("GET", "/studies/{x}/module", None),
    ("GET", "/studies/{x}/module-patient", None),
    ("GET", "/studies/{x}/attachments", None),
    ("GET", "/instances/{x}/attachments/dicom/info", None),
    ("GET", "/patients/{x}/archive", None),
    ("GET", "/series/{x}/media", None),
    ("POST", "/patients/{x}/archive", b"{}"),
    ("POST", "/studies/{x}/media", b"{}"),
    ("POST", "/studies/{x}/anonymize", b"{}"),
    ("POST", "/series/{x}/modify", b"{}"),
    ("POST", "/patients/{x}/modify", b"{}"),  # before "her PatientID is required"
    ("POST", "/instances/{x}/modify", b"{}"),
    ("POST", "/studies/{x}/reconstruct", b"{}"),
    ("POST", "/series/{x}/attachments/dicom/verify-md5", b""),
    ("POST", "/instances/{x}/attachments/dicom/compress", b""),
    ("PUT", "/instances/{x}/metadata/1024", b"value"),
    ("DELETE", "/series/{x}/metadata/1024", None),
    ("DELETE", "/patients/{x}/attachments/1025", None),
]

#: Checked without the oracle (see above).
UNNAMED_404_DIFFERENT = [
    ("GET", "/studies/{x}", None),
    ("DELETE", "/series/{x}", None),
    ("GET", "/instances/{x}/frames/0", None),
    ("GET", "/patients/{x}/protected", None),
    ("PUT", "/patients/{x}/protected", b"1"),
    ("PUT", "/studies/{x}/attachments/1025", b"value"),  # 1.10.1: 200 {}, nothing stored
]


def test_unknown_identifier_is_not_repeated_in_details(shared: RunningServer, oracle) -> None:  # type: ignore[no-untyped-def]
    """The 404 of an unknown identifier on every kind of route: the same body as
    Orthanc's, without Details."""
    clients = [shared.client] + ([oracle.client] if oracle is not None else [])
    for method, route, content in UNNAMED_404_ROUTES + UNNAMED_404_DIFFERENT:
        compared = clients if (method, route, content) in UNNAMED_404_ROUTES else clients[:1]
        for public_id in (UNKNOWN, "not-an-id"):
            path = route.format(x=public_id)
            bodies = []
            for client in compared:
                response = client.request(method, path, content=content)
                bodies.append(
                    assert_orthanc_error(response, 404, "Unknown resource", 17, method, path)
                )
            assert "Details" not in bodies[0], (method, path)
            assert all(body == bodies[0] for body in bodies), (method, path, bodies)


def test_identifier_of_another_level_answers_404(shared: RunningServer, tree: Tree) -> None:
    before = statistics(shared.client)
    for path in (
        f"/studies/{tree.patient}",
        f"/patients/{tree.studies[0]}",
        f"/series/{tree.instances[0]}",
        f"/instances/{tree.series[0]}/file",
    ):
        assert_orthanc_error(shared.client.get(path), 404, "Unknown resource", 17, "GET", path)
    response = shared.client.delete(f"/instances/{tree.patient}")
    assert response.status_code == 404
    assert statistics(shared.client) == before


def test_unknown_route_answers_404(shared: RunningServer) -> None:
    response = shared.client.get("/no-such-route")
    assert_orthanc_error(response, 404, "Unknown resource", 17, "GET", "/no-such-route")


def test_instance_file(shared: RunningServer, tree: Tree) -> None:
    response = shared.client.get(f"/instances/{tree.instances[0]}/file")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"
    assert len(response.content) == tree.sizes[tree.instances[0]]
    assert response.content[128:132] == b"DICM"
