"""DICOM matching: the parser, the Python evaluator and the SQL they compile to agree.

The SQL runs on a real SQLite index (the schema dicomhub creates), so the LIKE
escaping, the prefix ranges and the case folding are checked where they execute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import make_dicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomhub.core import find, ingest
from dicomhub.core.archive import Archive
from dicomhub.core.errors import ParameterOutOfRange
from dicomhub.core.matching import (
    Kind,
    SqlParams,
    matches,
    parse_constraint,
    tag_vr,
    to_sql,
    value_sql,
)
from dicomhub.core.settings import Settings
from dicomhub.dicom.levels import Level
from dicomhub.store.index.engine import sqlite_engine
from dicomhub.store.index.index import Index

PATIENT_NAME = 0x00100010  # PN
STUDY_DESCRIPTION = 0x00081030  # LO
STUDY_DATE = 0x00080020  # DA
STUDY_TIME = 0x00080030  # TM
STUDY_UID = 0x0020000D  # UI
ROWS = 0x00280010  # US
PRIVATE_CREATOR = 0x00090010  # LO
PRIVATE_ELEMENT = 0x00091001  # unknown to the dictionary


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    folder: Path = tmp_path_factory.mktemp("matching")
    idx = Index(sqlite_engine(str(folder)))
    yield idx
    idx.close()


def sql_matches(index: Index, tag: int, query: str, value: str, case_sensitive: bool) -> bool:
    """Store ``value`` and ask the compiled SQL whether ``query`` selects it."""
    constraint = parse_constraint(tag, query, case_sensitive)
    assert constraint is not None
    with index.write() as session:
        rid = session.create_resource("matching-probe", 1, None, 0)
        session.set_main_tags(rid, {tag: value})
        params = SqlParams()
        cond = to_sql(constraint, params, sqlite=True)
        found = session.search(
            1,
            [
                f"r.id IN (SELECT resource_id FROM main_tags WHERE tag = {params.add(tag)} AND {cond})"
            ],
            params.values,
        )
        session.delete_resource(session.lookup("matching-probe"))  # type: ignore[arg-type]
    return bool(found)


def test_universal_and_kinds() -> None:
    assert parse_constraint(PATIENT_NAME, "", False) is None
    assert parse_constraint(PATIENT_NAME, "*", False).kind == Kind.WILDCARD  # type: ignore[union-attr]
    assert parse_constraint(PATIENT_NAME, "A\\B*", False).kind == Kind.LIST  # type: ignore[union-attr]
    assert parse_constraint(STUDY_DATE, "2024-", False).kind == Kind.RANGE  # type: ignore[union-attr]
    # "-" bounds nothing: as in Orthanc it matches everything, resources without the tag too.
    assert parse_constraint(STUDY_DATE, "-", False) is None
    assert parse_constraint(STUDY_DESCRIPTION, "a-b", False).kind == Kind.EQUAL  # type: ignore[union-attr]
    assert parse_constraint(STUDY_DATE, "2024\\2023", False).kind == Kind.LIST  # type: ignore[union-attr]
    # A "-" makes a DA/TM/DT value a range before a "\\" makes it a list (as Orthanc).
    assert parse_constraint(STUDY_DATE, "2024\\2023-", False).values == ("2024\\2023", "")  # type: ignore[union-attr]
    assert parse_constraint(STUDY_DESCRIPTION, "a-b\\c", False).kind == Kind.LIST  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "tag",
    [
        STUDY_DATE,
        STUDY_TIME,
        STUDY_UID,
        ROWS,
        PRIVATE_ELEMENT,  # no VR in the dictionary: Orthanc refuses wildcards there too
        0x00291010,
        0x00089999,  # not in the dictionary
        0x00080000,  # a group length
        0x00090001,  # odd group, but not a private creator
    ],
)
@pytest.mark.parametrize("value", ["1*", "*", "?"])
def test_wildcards_refused_on_non_text_vrs(tag: int, value: str) -> None:
    with pytest.raises(ParameterOutOfRange) as error:
        parse_constraint(tag, value, False)
    assert (
        error.value.args[0]
        == f"Wildcards are not allowed on tag {tag >> 16:04x},{tag & 0xFFFF:04x}"
    )


def test_private_creators_are_text() -> None:
    assert tag_vr(PRIVATE_CREATOR) == tag_vr(0x002900FF) == "LO"
    assert tag_vr(PRIVATE_ELEMENT) == tag_vr(0x00090001) == tag_vr(0x00080000) == "UN"
    assert parse_constraint(PRIVATE_CREATOR, "sec*", False).kind == Kind.WILDCARD  # type: ignore[union-attr]
    # exact values and lists stay allowed where wildcards are not
    assert parse_constraint(PRIVATE_ELEMENT, "secret", False).kind == Kind.EQUAL  # type: ignore[union-attr]
    assert parse_constraint(PRIVATE_ELEMENT, "a\\b*", False).kind == Kind.LIST  # type: ignore[union-attr]
    assert parse_constraint(STUDY_DATE, "2024*\\2023", False).kind == Kind.LIST  # type: ignore[union-attr]
    # an element sent as UN (a worklist query) takes the dictionary's VR
    assert parse_constraint(PATIENT_NAME, "SM*", False, vr="UN").kind == Kind.WILDCARD  # type: ignore[union-attr]
    with pytest.raises(ParameterOutOfRange):
        parse_constraint(PRIVATE_ELEMENT, "sec*", False, vr="UN")


@pytest.mark.parametrize("value", ["2024*-", "-2024*", "2020?-2021", "20200101-\\2023*"])
def test_wildcards_refused_in_ranges(value: str) -> None:
    with pytest.raises(ParameterOutOfRange):
        parse_constraint(STUDY_DATE, value, False)


CASES = [
    # tag, query, value, case-sensitive, expected
    (PATIENT_NAME, "SMITH*", "Smith^John", False, True),
    (PATIENT_NAME, "SMITH*", "Smith^John", True, False),
    (PATIENT_NAME, "Smith*", "Smith^John", True, True),
    (PATIENT_NAME, "?mith^J*n", "Smith^John", False, True),
    (PATIENT_NAME, "*", "", False, True),
    (PATIENT_NAME, "*john", "Smith^John", False, True),
    (PATIENT_NAME, "*john", "Smith^Johnny", False, False),
    (STUDY_DESCRIPTION, "50%", "50x", False, False),
    (STUDY_DESCRIPTION, "50%", "50%", False, True),
    (STUDY_DESCRIPTION, "a_b", "axb", False, False),
    (STUDY_DESCRIPTION, "a!b*", "a!bc", False, True),
    (STUDY_DESCRIPTION, "[ab]*", "[ab]c", True, True),
    (STUDY_DESCRIPTION, "[ab]*", "ac", True, False),
    (STUDY_DESCRIPTION, "Brain*\\chest", "Brain MRI", False, False),
    (STUDY_DESCRIPTION, "Brain MRI\\chest", "CHEST", False, True),
    (STUDY_DESCRIPTION, "Brain MRI\\chest", "CHEST", True, False),
    (STUDY_DESCRIPTION, "élan*", "ÉLAN vital", False, True),
    (STUDY_DESCRIPTION, "élan*", "ÉLAN vital", True, False),
    (STUDY_DATE, "20240101-", "20240105", False, True),
    (STUDY_DATE, "-20240101", "20240105", False, False),
    (STUDY_DATE, "20230101-20240105", "20240105", False, True),
    (STUDY_DATE, "20240105-20230101", "20240105", False, False),
    (STUDY_DATE, "2024-", "20240105", False, True),
    (STUDY_DATE, "20200101-\\20231231", "20220101", False, True),  # upper bound "\\2023..."
    (STUDY_DATE, "20200101-\\20231231", "20231231", False, True),
    (STUDY_DATE, "20200101-\\20231231", "20191231", False, False),
    (STUDY_TIME, "10-11", "101010", False, True),
    (STUDY_TIME, "12-", "101010", False, False),
    (STUDY_UID, "1.2.3", "1.2.3", True, True),
    (STUDY_UID, "1.2.3", "1.2.30", True, False),
]


@pytest.mark.parametrize(("tag", "query", "value", "case_sensitive", "expected"), CASES)
def test_cases_in_python_and_sql(
    index: Index, tag: int, query: str, value: str, case_sensitive: bool, expected: bool
) -> None:
    constraint = parse_constraint(tag, query, case_sensitive)
    assert constraint is not None
    assert matches(constraint, value) is expected
    assert sql_matches(index, tag, query, value, case_sensitive) is expected


def test_absent_tag_never_matches() -> None:
    constraint = parse_constraint(PATIENT_NAME, "*", False)
    assert constraint is not None
    assert not matches(constraint, None)


def test_metadata_value_sql_is_case_sensitive() -> None:
    constraint = parse_constraint(0, "ab*", True, vr="LO")
    assert constraint is not None
    params = SqlParams()
    assert value_sql(constraint, params, sqlite=True) == "value GLOB :q0"
    assert params.values == {"q0": "ab*"}


_TEXT = st.text(alphabet="aAbB*?%_!^[ é", max_size=6)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pattern=_TEXT, value=st.text(alphabet="aAbB%_!^[ é", max_size=6), exact=st.booleans())
def test_sql_agrees_with_python(index: Index, pattern: str, value: str, exact: bool) -> None:
    constraint = parse_constraint(STUDY_DESCRIPTION, pattern, exact)
    if constraint is None:
        return
    assert sql_matches(index, STUDY_DESCRIPTION, pattern, value, exact) == matches(
        constraint, value
    )


def test_cfind_case_options(tmp_path: Path) -> None:
    """C-FIND's rules: PN follows CaseSensitivePN, identifiers ignore case, others exact."""
    archive = Archive(
        Settings(
            storage_directory=str(tmp_path / "s"),
            index_directory=str(tmp_path / "i"),
            sync_storage_area=False,
        )
    )
    try:
        ingest.store(
            archive,
            make_dicom(patient_id="CfIndX", patient_name="Doe^Jane", StudyDescription="Knee"),
        )

        def hits(query: dict[int, str], **options: object) -> int:
            return find.count(archive, find.FindQuery(Level.STUDY, query, **options))  # type: ignore[arg-type]

        assert hits({PATIENT_NAME: "doe^jane"}, case_sensitive=True) == 0
        assert hits({PATIENT_NAME: "doe^jane"}, case_sensitive=True, case_sensitive_pn=False) == 1
        assert hits({PATIENT_NAME: "doe^jane"}, case_sensitive=False, case_sensitive_pn=True) == 0
        assert hits({0x00100020: "CFINDX"}, case_sensitive=True) == 0
        assert (
            hits({0x00100020: "CFINDX"}, case_sensitive=True, identifiers_case_insensitive=True)
            == 1
        )
        assert (
            hits(
                {STUDY_DESCRIPTION: "knee"}, case_sensitive=True, identifiers_case_insensitive=True
            )
            == 0
        )
    finally:
        archive.close()
