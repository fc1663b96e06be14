"""``/tools/find`` and ``/tools/count-resources``: matching, paging, labels, ordering, errors.

Matching is checked differentially: the same files go to dicomhub and to the
reference Orthanc, and both must answer the same ids (Orthanc ids are derived from
the DICOM UIDs, so they agree across servers). Orthanc 1.10.1 lacks the 1.12
options (labels, OrderBy, parents, counts); those are checked against expectations.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from archive_checks import OracleUploads, assert_orthanc_error, oracle_uploads, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom

PREFIX = "FT" + uuid.uuid4().hex[:8].upper()
STUDY_ROOT = f"1.2.826.0.1.3680043.99.{uuid.uuid4().int % 10**12}"

#: (PatientID suffix, PatientName, study, series index, modality, extra tags)
FILES: list[tuple[str, str, int, int, str, dict[str, Any]]] = [
    ("a", "Smith^John", 1, 1, "MR", {"StudyDate": "20240105", "StudyDescription": "Brain MRI"}),
    ("a", "Smith^John", 1, 2, "CT", {"StudyDate": "20240105", "StudyDescription": "Brain MRI"}),
    ("a", "Smith^John", 1, 2, "CT", {"StudyDate": "20240105", "StudyDescription": "Brain MRI"}),
    (
        "B",
        "smith^jane",
        2,
        1,
        "CT",
        {"StudyDate": "20230101", "StudyDescription": "chest", "InstitutionName": ""},
    ),
    (
        "c",
        "O'Brien^Ann",
        3,
        1,
        "MR",
        {"StudyDate": "20221231", "StudyDescription": "Knee_50%", "StudyTime": "235959"},
    ),
]


@functools.cache
def _files() -> list[bytes]:
    """Made once, so both servers get the same SOP Instance UIDs."""
    out = []
    for suffix, name, study, series, modality, extra in FILES:
        rows = 16 if study == 3 else 8
        out.append(
            make_dicom(
                patient_id=PREFIX + suffix,
                patient_name=name,
                study_uid=f"{STUDY_ROOT}.{study}",
                series_uid=f"{STUDY_ROOT}.{study}.{series}",
                modality=modality,
                rows=rows,
                columns=rows,
                **extra,
            )
        )
    return out


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("find"))
    for data in _files():
        upload(server.client, data)
    yield server
    server.stop()


@pytest.fixture
def client(shared: RunningServer) -> httpx.Client:
    return shared.client


@pytest.fixture(scope="module")
def oracle() -> Iterator[OracleUploads | None]:
    for uploads in oracle_uploads():
        if uploads is not None:
            for data in _files():
                uploads.upload(data)
        yield uploads


def find(client: httpx.Client, level: str, query: dict[str, str], **options: Any) -> Any:
    body = {"Level": level, "Query": {"PatientID": PREFIX + "*", **query}, **options}
    response = client.post("/tools/find", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def ids(client: httpx.Client, level: str, query: dict[str, str], **options: Any) -> set[str]:
    return set(find(client, level, query, **options))


DIFFERENTIAL = [
    # computed keys are no count filters: matched against the files, which lack them
    ("Study", {"NumberOfStudyRelatedInstances": "3"}, False),
    ("Study", {"NumberOfStudyRelatedInstances": ""}, False),
    ("Series", {"NumberOfSeriesRelatedInstances": "2"}, False),
    ("Patient", {"NumberOfPatientRelatedStudies": "1"}, False),
    ("Study", {"PatientName": "SMITH*"}, False),
    ("Study", {"PatientName": "smith^john"}, False),
    ("Study", {"PatientName": "*BRIEN*"}, False),
    ("Study", {"PatientName": "?mith*"}, False),
    ("Study", {"PatientName": "Smith^John\\O'Brien^Ann"}, False),
    ("Study", {"StudyDescription": "*"}, False),
    ("Study", {"StudyDescription": ""}, False),
    ("Study", {"StudyDescription": "brain mri"}, False),
    ("Study", {"StudyDescription": "Brai? MRI"}, False),
    ("Study", {"StudyDescription": "Knee_50%"}, False),
    ("Study", {"StudyDescription": "Knee?50*"}, False),
    ("Study", {"StudyDescription": "c%"}, False),
    ("Study", {"StudyDescription": "K_ee*"}, False),
    ("Study", {"StudyDescription": "Brain*\\chest"}, False),
    ("Study", {"StudyDescription": "-"}, False),
    ("Study", {"InstitutionName": "*"}, False),
    ("Study", {"InstitutionName": ""}, False),
    ("Study", {"StudyDate": "20240101-"}, False),
    ("Study", {"StudyDate": "-20240101"}, False),
    ("Study", {"StudyDate": "20230101-20240105"}, False),
    ("Study", {"StudyDate": "-"}, False),
    ("Study", {"StudyDate": "2024-"}, False),
    ("Study", {"StudyDate": "20240105-20230101"}, False),
    ("Study", {"StudyDate": "20240105\\20230101"}, False),
    ("Study", {"StudyDate": "20200101-\\20231231"}, False),  # a range, not a list
    ("Study", {"StudyDate": "20230101\\20240105-"}, False),
    ("Study", {"StudyDate": "2024*\\20230101"}, False),  # a list: no wildcard check
    ("Study", {"StudyDate": "abc"}, False),
    ("Study", {"StudyTime": "10-11"}, False),
    ("Study", {"StudyTime": "12-"}, False),
    ("Study", {"ModalitiesInStudy": "MR"}, False),
    ("Study", {"ModalitiesInStudy": "CT\\XA"}, False),
    ("Study", {"ModalitiesInStudy": "MR", "StudyDate": "2023-"}, False),
    ("Study", {"ModalitiesInStudy": "CT\\XA", "PatientName": "smith*"}, False),
    ("Study", {"ModalitiesInStudy": "m*", "StudyDate": "20230101-20240105"}, False),
    ("Study", {"Modality": "MR", "AccessionNumber": "*"}, False),
    ("Study", {"Rows": "16"}, False),
    ("Study", {"PatientID": PREFIX.lower() + "A"}, False),
    ("Study", {"0010,0010": "smith*"}, False),
    ("Series", {"PatientName": "Smith^John"}, False),
    ("Series", {"StudyDate": "20240105"}, False),
    ("Series", {"Modality": "mr"}, False),
    ("Series", {"Modality": "CT\\MR"}, False),
    ("Series", {"Modality": "CT", "StudyDate": "2023-"}, False),
    ("Instance", {"Modality": "MR"}, False),
    ("Instance", {"Rows": "8"}, False),
    ("Instance", {"PhotometricInterpretation": "mono*"}, False),
    ("Instance", {"Columns": "8\\16"}, False),
    ("Patient", {"PatientName": "smith*"}, False),
    ("Patient", {"StudyDate": "20240105"}, False),
    ("Study", {"SeriesNumber": "1"}, False),
    ("Study", {"StudyDescription": "brain mri"}, True),
    ("Study", {"StudyDescription": "Brain MRI"}, True),
    ("Study", {"PatientName": "smith^john"}, True),
    ("Study", {"PatientName": "smith*"}, True),
    ("Study", {"PatientName": "S*"}, True),
    ("Study", {"PatientID": PREFIX.lower() + "A"}, True),
    ("Study", {"StudyDescription": "BRAIN*\\chest"}, True),
]


@pytest.mark.parametrize(("level", "query", "case_sensitive"), DIFFERENTIAL)
def test_matching_like_orthanc(
    client: httpx.Client,
    oracle: OracleUploads | None,
    level: str,
    query: dict[str, str],
    case_sensitive: bool,
) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    ours = ids(client, level, query, CaseSensitive=case_sensitive)
    theirs = ids(oracle.client, level, query, CaseSensitive=case_sensitive)
    assert ours == theirs


#: Tag names Orthanc reads as PatientName (0010,0010): its exact hex forms, then two
#: hex numbers as C's "%x,%x" reads them (blanks, signs, "0x", few or many digits,
#: anything after the second number), the low 16 bits of each.
LENIENT_NAMES = [
    "0010,0010",
    "0010-0010",
    "00100010",
    " 0010,0010",
    "0010,0010 ",
    "10,10",
    "0010,010",
    "0010, 0010",
    "0x0010,0x0010",
    "+010,0010",
    "-fff0,0010",
    "100010,0010",
    "0010,0010X",
    "0010,0010.0008,0100",
]


@pytest.mark.parametrize("name", LENIENT_NAMES)
def test_lenient_tag_names(client: httpx.Client, oracle: OracleUploads | None, name: str) -> None:
    expected = ids(client, "Patient", {"PatientName": "Smith^John"})
    assert expected
    assert ids(client, "Patient", {name: "Smith^John"}) == expected
    if oracle is not None:
        assert ids(oracle.client, "Patient", {name: "Smith^John"}) == expected


def test_unknown_tag_with_an_empty_value_is_no_error(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    """An empty value matches anything: Orthanc does not even read its tag name."""
    for server in [client] + ([oracle.client] if oracle is not None else []):
        everything = ids(server, "Study", {})
        assert ids(server, "Study", {"Nope": ""}) == everything
        assert ids(server, "Study", {"": "", "0010 ,0010": ""}) == everything
        response = server.post("/tools/find", json={"Level": "Study", "Query": {"Nope": "x"}})
        assert_orthanc_error(response, 500, "Unknown DICOM tag", 27, "POST", "/tools/find")
        assert "Details" not in response.json()


def test_modalities_in_study_means_a_series_has_it(client: httpx.Client) -> None:
    with_mr = ids(client, "Study", {"ModalitiesInStudy": "MR"})
    assert len(with_mr) == 2
    assert len(ids(client, "Study", {"ModalitiesInStudy": "CT\\MR"})) == 3
    narrowed = ids(client, "Study", {"ModalitiesInStudy": "MR", "StudyDate": "2023-"})
    assert set(narrowed) <= set(with_mr)
    # a plain Modality is a series tag: no study matches it, as in Orthanc
    assert not ids(client, "Study", {"Modality": "MR"})


def test_expand_full_short_and_requested_tags(client: httpx.Client) -> None:
    [study] = find(client, "Study", {"StudyDescription": "chest"}, Expand=True)
    assert study["Type"] == "Study"
    assert study["MainDicomTags"]["StudyDescription"] == "chest"
    assert study["PatientMainDicomTags"]["PatientName"] == "smith^jane"
    assert client.get(f"/studies/{study['ID']}").json() == study
    [short] = find(client, "Study", {"StudyDescription": "chest"}, Expand=True, Short=True)
    assert short["MainDicomTags"]["0008,1030"] == "chest"
    [full] = find(client, "Study", {"StudyDescription": "chest"}, Expand=True, Full=True)
    assert full["MainDicomTags"]["0008,1030"]["Value"] == "chest"
    [requested] = find(
        client,
        "Study",
        {"StudyDescription": "Brain MRI"},
        Expand=True,
        RequestedTags=["ModalitiesInStudy", "NumberOfStudyRelatedInstances", "Rows"],
    )
    assert requested["RequestedTags"] == {
        "ModalitiesInStudy": "CT\\MR",
        "NumberOfStudyRelatedInstances": "3",
        "Rows": "8",
    }


def test_date_range_comes_before_list(client: httpx.Client) -> None:
    # "A-\\B" is the range from A to "\\B" (after every digit), as Orthanc reads it
    assert len(ids(client, "Study", {"StudyDate": "20200101-\\20231231"})) == 3
    assert len(ids(client, "Study", {"StudyDate": "20230101\\20240105-"})) == 1


def test_expand_numbers_and_null_query_as_orthanc(
    client: httpx.Client, oracle: OracleUploads | None
) -> None:
    """Orthanc reads Expand as jsoncpp's asBool (numbers, null) and a null Query as {}."""
    plain = sorted(find(client, "Study", {}))
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"Expand": 1}, True),
        ({"Expand": -1}, True),
        ({"Expand": 0.5}, True),
        ({"Expand": 0}, False),
        ({"Expand": None}, False),
    ]
    for options, expanded in cases:
        answer = find(client, "Study", {}, **options)
        if expanded:
            assert sorted(item["ID"] for item in answer) == plain, options
        else:
            assert sorted(answer) == plain, options
    body = {"Level": "Study", "Query": None}
    response = client.post("/tools/find", json=body)
    assert response.status_code == 200, response.text
    assert set(plain) <= set(response.json())
    if oracle is not None:
        assert oracle.client.post("/tools/find", json=body).status_code == 200
        for options, expanded in cases:
            theirs = oracle.client.post(
                "/tools/find",
                json={"Level": "Study", "Query": {"PatientID": PREFIX + "*"}, **options},
            ).json()
            assert all(isinstance(item, dict) is expanded for item in theirs), options


def test_wildcards_on_private_tags(client: httpx.Client) -> None:
    # A private creator is LO: wildcards allowed. Other private elements have no VR
    # in the dictionary: refused, as by Orthanc (checked against it in BAD_BODIES).
    assert find(client, "Instance", {"0009,0010": "a*"}) == []
    assert find(client, "Instance", {"0009,1001": "secret"}) == []
    body = {"Level": "Instance", "Query": {"0009,1001": "*"}}
    for route in ("/tools/find", "/tools/count-resources"):
        answer = assert_orthanc_error(
            client.post(route, json=body), 400, "Parameter out of range", 3, "POST", route
        )
        assert answer["Details"] == "Wildcards are not allowed on tag 0009,1001"


def test_paging_is_stable(client: httpx.Client) -> None:
    everything = find(client, "Instance", {})
    assert len(everything) == 5
    pages = [find(client, "Instance", {}, Since=s, Limit=2) for s in (0, 2, 4)]
    assert [i for page in pages for i in page] == everything
    assert find(client, "Instance", {}, Since=3) == everything[3:]
    assert find(client, "Instance", {}, Limit=0) == everything
    assert find(client, "Instance", {}, Since=10) == []


def test_file_tags_refuse_limit_and_since(client: httpx.Client) -> None:
    for extra in ({"Limit": 1}, {"Since": 0}, {"Limit": 0}):
        body = {"Level": "Instance", "Query": {"Rows": "8"}, **extra}
        response = client.post("/tools/find", json=body)
        body = assert_orthanc_error(response, 400, "Bad request", 8)
        assert "Limit or Since" in body["Details"]
    # universal values do not read files, so paging stays allowed
    body = {"Level": "Instance", "Query": {"PatientID": PREFIX + "*", "Rows": ""}, "Limit": 2}
    assert len(client.post("/tools/find", json=body).json()) == 2


def test_order_by(client: httpx.Client) -> None:
    def order(level: str, *keys: tuple[str, str, str]) -> list[str]:
        order_by = [{"Type": t, "Key": k, "Direction": d} for t, k, d in keys]
        found = find(client, level, {}, Expand=True, OrderBy=order_by)
        return [r["ID"] for r in found]

    studies = {
        s["MainDicomTags"]["StudyDate"]: s["ID"] for s in find(client, "Study", {}, Expand=True)
    }
    by_date = [studies[d] for d in sorted(studies)]
    assert order("Study", ("DicomTag", "StudyDate", "ASC")) == by_date
    assert order("Study", ("DicomTag", "0008,0020", "DESC")) == by_date[::-1]
    # a patient tag ordering studies, then series through their study's date
    series = find(client, "Series", {}, Expand=True)
    parents = {s["ID"]: s["ParentStudy"] for s in series}
    ordered = order("Series", ("DicomTag", "StudyDate", "DESC"), ("DicomTag", "Modality", "ASC"))
    assert [parents[s] for s in ordered] == sorted(
        (parents[s] for s in ordered), key=by_date.index, reverse=True
    )
    ordered_limit = client.post(
        "/tools/find",
        json={
            "Level": "Study",
            "Query": {"PatientID": PREFIX + "*"},
            "OrderBy": [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"}],
            "Limit": 1,
        },
    ).json()
    assert ordered_limit == [by_date[-1]]


def test_order_by_modalities_in_study(client: httpx.Client) -> None:
    """Beyond Orthanc: studies sorted by the first of their modalities (A to Z)."""
    studies = find(client, "Study", {}, Expand=True, RequestedTags=["ModalitiesInStudy"])
    first = {s["ID"]: min(s["RequestedTags"]["ModalitiesInStudy"].split("\\")) for s in studies}
    for direction in ("ASC", "DESC"):
        order_by = [{"Type": "DicomTag", "Key": "ModalitiesInStudy", "Direction": direction}]
        ordered = [r["ID"] for r in find(client, "Study", {}, Expand=True, OrderBy=order_by)]
        keys = [first[i].upper() for i in ordered]
        assert keys == sorted(keys, reverse=direction == "DESC")
        assert sorted(ordered) == sorted(first)


@pytest.mark.parametrize("keys", [["InstitutionName"], ["InstitutionName", "PatientSex"]])
@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_order_by_pages_and_missing_values(
    client: httpx.Client, keys: list[str], direction: str
) -> None:
    """Missing values come last; pages of an ordered search tile the whole answer."""
    order_by = [{"Type": "DicomTag", "Key": k, "Direction": direction} for k in keys]
    everything = find(client, "Study", {}, OrderBy=order_by)
    by_id = find(client, "Study", {})
    [with_institution] = find(client, "Study", {"InstitutionName": "*"})
    rest = [s for s in by_id if s != with_institution]
    assert everything == [with_institution, *(rest if direction == "ASC" else rest[::-1])]
    pages = [find(client, "Study", {}, OrderBy=order_by, Since=s, Limit=2) for s in (0, 1, 2, 3)]
    assert pages == [everything[0:2], everything[1:3], everything[2:3], []]
    assert find(client, "Study", {}, OrderBy=order_by, Since=1) == everything[1:]


def test_metadata_query_and_order(client: httpx.Client) -> None:
    studies = find(client, "Study", {})
    for rank, study in enumerate(studies):
        response = client.put(f"/studies/{study}/metadata/1024", content=f"rank{2 - rank}")
        assert response.status_code == 200, response.text
    assert find(client, "Study", {}, MetadataQuery={"1024": "rank0"}) == [studies[2]]
    assert set(find(client, "Study", {}, MetadataQuery={"1024": "rank[0-1]*"})) == set()
    assert set(find(client, "Study", {}, MetadataQuery={"1024": "rank?"})) == set(studies)
    order_by = [{"Type": "Metadata", "Key": "1024", "Direction": "ASC"}]
    assert find(client, "Study", {}, OrderBy=order_by) == studies[::-1]


def test_parents(client: httpx.Client) -> None:
    [study] = find(client, "Study", {"StudyDescription": "Brain MRI"}, Expand=True)
    patient = study["ParentPatient"]
    assert find(client, "Study", {}, ParentPatient=patient) == [study["ID"]]
    assert set(find(client, "Series", {}, ParentStudy=study["ID"])) == set(study["Series"])
    assert len(find(client, "Instance", {}, ParentPatient=patient)) == 3
    assert len(find(client, "Instance", {"Modality": "CT"}, ParentStudy=study["ID"])) == 2
    assert find(client, "Study", {}, ParentPatient="unknown") == []
    assert find(client, "Study", {}, ParentPatient=study["ID"]) == []


def test_labels(client: httpx.Client) -> None:
    studies = find(client, "Study", {})
    first, second = "F" + uuid.uuid4().hex[:10], "G" + uuid.uuid4().hex[:10]
    client.put(f"/studies/{studies[0]}/labels/{first}").raise_for_status()
    client.put(f"/studies/{studies[0]}/labels/{second}").raise_for_status()
    client.put(f"/studies/{studies[1]}/labels/{first}").raise_for_status()

    def labelled(labels: list[str], constraint: str | None = None) -> list[str]:
        options: dict[str, Any] = {"Labels": labels}
        if constraint:
            options["LabelsConstraint"] = constraint
        return find(client, "Study", {}, **options)

    assert labelled([first]) == studies[:2]
    assert labelled([first, second]) == studies[:1]
    assert labelled([first, second], "All") == studies[:1]
    assert labelled([first, second], "Any") == studies[:2]
    assert labelled([second], "None") == studies[1:]
    assert labelled([]) == studies
    # labels belong to the resource itself, not to its children
    assert find(client, "Series", {}, Labels=[first]) == []
    body = {"Level": "Study", "Query": {}, "Labels": [first], "LabelsConstraint": "Any"}
    assert client.post("/tools/count-resources", json=body).json() == {"Count": 2}


def test_count_resources(client: httpx.Client) -> None:
    def count(level: str, query: dict[str, str]) -> int:
        body = {"Level": level, "Query": {"PatientID": PREFIX + "*", **query}}
        response = client.post("/tools/count-resources", json=body)
        assert response.status_code == 200, response.text
        return response.json()["Count"]

    assert count("Patient", {}) == 3
    assert count("Study", {}) == 3
    assert count("Series", {}) == 4
    assert count("Instance", {}) == 5
    assert count("Study", {"PatientName": "smith*"}) == 2
    assert count("Instance", {"Rows": "16"}) == 1
    assert count("Study", {"SeriesNumber": "1"}) == 0


def test_unknown_fields_are_ignored(client: httpx.Client) -> None:
    assert len(find(client, "studies", {}, Whatever={"x": 1})) == 3


BAD_BODIES: list[tuple[Any, int, str, str | None]] = [
    (b"", 400, "Bad request", "The body must contain a JSON object"),
    (b"[]", 400, "Bad request", "The body must contain a JSON object"),
    (b"{", 400, "Bad request", "The body must contain a JSON object"),
    (
        {"Level": "Study"},
        400,
        "Bad request",
        'Field "Query" is missing, or should be a JSON object',
    ),
    ({"Query": {}}, 400, "Bad request", 'Field "Level" is missing, or should be a string'),
    (
        {"Level": 1, "Query": {}},
        400,
        "Bad request",
        'Field "Level" is missing, or should be a string',
    ),
    ({"Level": "Foo", "Query": {}}, 400, "Parameter out of range", None),
    (
        {"Level": "Study", "Query": {"PatientName": 3}},
        400,
        "Bad request",
        'Tag "PatientName" should be associated with a string',
    ),
    (
        {"Level": "Study", "Query": {}, "Limit": "3"},
        400,
        "Bad request",
        'Field "Limit" should be an integer',
    ),
    (
        {"Level": "Study", "Query": {}, "Limit": 1.5},
        400,
        "Bad request",
        'Field "Limit" should be an integer',
    ),
    (
        {"Level": "Study", "Query": {}, "Limit": -1},
        400,
        "Parameter out of range",
        'Field "Limit" should be a positive integer',
    ),
    (
        {"Level": "Study", "Query": {}, "Since": -1},
        400,
        "Parameter out of range",
        'Field "Since" should be a positive integer',
    ),
    (
        {"Level": "Study", "Query": {}, "CaseSensitive": 1},
        400,
        "Bad request",
        'Field "CaseSensitive" should be a Boolean',
    ),
    ({"Level": "Study", "Query": {"Foo": "x"}}, 500, "Unknown DICOM tag", None),
    (
        {"Level": "Study", "Query": {"StudyDate": "2024*"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0008,0020",
    ),
    (
        {"Level": "Study", "Query": {"StudyDate": "2024*-"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0008,0020",
    ),
    (
        {"Level": "Instance", "Query": {"SOPInstanceUID": "*"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0008,0018",
    ),
    (
        {"Level": "Instance", "Query": {"Rows": "?"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0028,0010",
    ),
    # tags without a VR in the dictionary (private elements, unknown, group lengths)
    (
        {"Level": "Instance", "Query": {"0009,1001": "sec*"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0009,1001",
    ),
    (
        {"Level": "Study", "Query": {"0008,9999": "*"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0008,9999",
    ),
    (
        {"Level": "Study", "Query": {"0008,0000": "?"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0008,0000",
    ),
    # tag names are taken as written: empty, or with spaces around a keyword
    ({"Level": "Study", "Query": {"": "x"}}, 500, "Unknown DICOM tag", None),
    ({"Level": "Study", "Query": {" ": "x"}}, 500, "Unknown DICOM tag", None),
    ({"Level": "Study", "Query": {"PatientID ": "x"}}, 500, "Unknown DICOM tag", None),
    ({"Level": "Study", "Query": {" PatientID": "x"}}, 500, "Unknown DICOM tag", None),
    # hex names that even C's "%x,%x" does not read (see test_lenient_tag_names)
    ({"Level": "Study", "Query": {"0010 ,0010": "x"}}, 500, "Unknown DICOM tag", None),
    ({"Level": "Study", "Query": {"(0010,0010)": "x"}}, 500, "Unknown DICOM tag", None),
    ({"Level": "Study", "Query": {"00100010 ": "x"}}, 500, "Unknown DICOM tag", None),
    ({"Level": "Study", "Query": {"0010-0010 ": "x"}}, 500, "Unknown DICOM tag", None),
    ({"Level": "Study", "Query": {"0010.0010": "x"}}, 500, "Unknown DICOM tag", None),
    # Short and Full: Orthanc's "Bad file format"
    (
        {"Level": "Study", "Query": {}, "Full": "true"},
        400,
        "Bad file format",
        "Boolean value expected in field: Full",
    ),
    (
        {"Level": "Study", "Query": {}, "Full": None},
        400,
        "Bad file format",
        "Boolean value expected in field: Full",
    ),
    (
        {"Level": "Study", "Query": {}, "Short": 1, "Full": "x"},
        400,
        "Bad file format",
        "Boolean value expected in field: Short",
    ),
    (
        {"Level": "Study", "Query": {}, "Expand": 1, "Short": {}},
        400,
        "Bad file format",
        "Boolean value expected in field: Short",
    ),
    # the order of the checks, when a body has two errors
    (
        {"Level": "Foo", "CaseSensitive": "x"},
        400,
        "Bad request",
        'Field "Query" is missing, or should be a JSON object',
    ),
    (
        {"Level": "Study", "Query": {"Nope": "1"}, "CaseSensitive": "x"},
        400,
        "Bad request",
        'Field "CaseSensitive" should be a Boolean',
    ),
    (
        {"Level": "Foo", "Query": {}, "Limit": "x"},
        400,
        "Bad request",
        'Field "Limit" should be an integer',
    ),
    (
        {"Level": "Study", "Query": {"PatientID": 1}, "Limit": "x"},
        400,
        "Bad request",
        'Field "Limit" should be an integer',
    ),
    (
        {"Level": "Study", "Query": [], "Since": "x"},
        400,
        "Bad request",
        'Field "Since" should be an integer',
    ),
    ({"Level": "Foo", "Query": {"Nope": "1"}}, 400, "Parameter out of range", None),
    ({"Level": "Foo", "Query": {}, "Short": "x"}, 400, "Parameter out of range", None),
    ({"Level": "Study", "Query": {"Nope": "1"}, "Short": "x"}, 500, "Unknown DICOM tag", None),
    (
        {"Level": "Study", "Query": {"StudyDate": "2020*"}, "Full": "x"},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0008,0020",
    ),
    # Query's keys in sorted order: type, then name, then wildcards, key by key
    (
        {"Level": "Study", "Query": {"Zzz": "1", "StudyDate": "2020*"}},
        400,
        "Parameter out of range",
        "Wildcards are not allowed on tag 0008,0020",
    ),
    (
        {"Level": "Study", "Query": {"StudyDate": "2020*", "Nope": "1"}},
        500,
        "Unknown DICOM tag",
        None,
    ),
    (
        {"Level": "Study", "Query": {"b": "1", "a": 1}},
        400,
        "Bad request",
        'Tag "a" should be associated with a string',
    ),
    (
        {"Level": "Study", "Query": {"StudyDate": "2020*", "PatientID": 1}},
        400,
        "Bad request",
        'Tag "PatientID" should be associated with a string',
    ),
]


@pytest.mark.parametrize(("body", "status", "message", "details"), BAD_BODIES)
def test_bad_bodies_like_orthanc(
    client: httpx.Client,
    oracle: OracleUploads | None,
    body: Any,
    status: int,
    message: str,
    details: str | None,
) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = assert_orthanc_error(
        client.post("/tools/find", **kwargs), status, message, None, "POST", "/tools/find"
    )
    assert answer.get("Details") == details  # none at all where Orthanc has none
    if oracle is not None:
        theirs = oracle.client.post("/tools/find", **kwargs).json()
        assert (theirs["HttpStatus"], theirs["Message"]) == (status, message)
        assert theirs.get("Details") == details


@pytest.mark.parametrize(
    "extra",
    [
        {"Expand": "yes"},
        {"Labels": ["bad label!"]},
        {"Labels": "x"},
        {"LabelsConstraint": "Some"},
        {"OrderBy": [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "UP"}]},
        {"OrderBy": [{"Type": "Tag", "Key": "StudyDate", "Direction": "ASC"}]},
        {"OrderBy": {"Type": "DicomTag"}},
        {"ParentPatient": 3},
        {"MetadataQuery": {"1024": 3}},
        {"RequestedTags": [3]},
        {"RequestedTags": [""]},
        {"RequestedTags": [" PatientName"]},
        {"Full": 1},
        {"Short": "true"},
        {"Query": {"": "x"}},
    ],
)
def test_bad_options_are_refused(client: httpx.Client, extra: dict[str, Any]) -> None:
    for route in ("/tools/find", "/tools/count-resources"):
        response = client.post(route, json={"Level": "Study", "Query": {}, **extra})
        if route.endswith("count-resources") and set(extra) & {"Expand", "RequestedTags"}:
            assert response.status_code == 200
            continue
        status = 500 if "Query" in extra else 400  # an unknown tag in Query: 500
        assert response.status_code == status, (route, response.text)
        assert_orthanc_error(response, status, response.json()["Message"], None, "POST", route)


def test_order_by_a_tag_that_is_also_filtered(client: httpx.Client) -> None:
    """A range on the ordering tag bounds the ordered walk; answers are unchanged."""
    studies = {
        s["MainDicomTags"]["StudyDate"]: s["ID"] for s in find(client, "Study", {}, Expand=True)
    }
    dates = sorted(studies)
    assert len(dates) >= 3
    low, high = dates[1], dates[-1]
    expected = [studies[d] for d in dates if low <= d <= high]
    order_by = [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"}]
    query = {"StudyDate": f"{low}-{high}"}
    assert find(client, "Study", query, OrderBy=order_by) == expected[::-1]
    assert find(client, "Study", query, OrderBy=order_by, Limit=1, Since=1) == [expected[-2]]
