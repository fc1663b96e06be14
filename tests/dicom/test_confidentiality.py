"""The profile tables (spot checks against PS3.15 Table E.1-1), tag paths, and the
pure modification of a dataset."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from dicomhub.dicom import confidentiality
from dicomhub.dicom.levels import Level
from dicomhub.dicom.modification import (
    BadReplacement,
    ForbiddenRemoval,
    Modification,
    UidMapper,
    apply,
)
from dicomhub.dicom.tag_paths import PathItem, TagPathError, UnknownTagName, parse_tag_path
from tests.dicom_factory import make_dataset

# (tag, action) per edition, read from PS3.15 Table E.1-1 of that edition, with the
# combined codes resolved the way Orthanc resolves them (X/Z/D -> X, Z/D -> Z).
SPOT_CHECKS = {
    "2008": [
        (0x00080050, "X"),  # Accession Number
        (0x00080080, "X"),  # Institution Name
        (0x00100030, "X"),  # Patient's Birth Date
        (0x00200052, "U"),  # Frame of Reference UID
        (0x00080020, "-"),  # Study Date: not in the 2008 table
    ],
    "2017c": [
        (0x00080050, "Z"),  # Accession Number
        (0x00080020, "Z"),  # Study Date
        (0x00080021, "X"),  # Series Date (X/D)
        (0x00080080, "X"),  # Institution Name (X/Z/D)
        (0x00081155, "U"),  # Referenced SOP Instance UID
        (0x00100030, "Z"),  # Patient's Birth Date
        (0x00101000, "X"),  # Other Patient IDs
        (0x00181000, "X"),  # Device Serial Number (X/Z/D)
        (0x00200010, "Z"),  # Study ID
        (0x00080060, "-"),  # Modality
    ],
    "2021b": [
        (0x00080050, "Z"),  # Accession Number
        (0x00080090, "Z"),  # Referring Physician's Name
        (0x00081030, "X"),  # Study Description (X)
        (0x0008103E, "X"),  # Series Description (X)
        (0x00100040, "Z"),  # Patient's Sex
        (0x00101010, "X"),  # Patient's Age
        (0x00181002, "U"),  # Device UID
        (0x00200052, "U"),  # Frame of Reference UID
        (0x00120062, "-"),  # Patient Identity Removed: set, not in the table
        (0x00280010, "-"),  # Rows
    ],
}
SPOT_CHECKS["2023b"] = [
    *SPOT_CHECKS["2021b"],
    (0x30020121, "X"),  # Position Acquisition Template Name (new since 2021b)
    (0x50000010, "X"),  # Curve Data (50xx,xxxx)
    (0x60003000, "X"),  # Overlay Data (60xx,3000)
    (0x60004000, "X"),  # Overlay Comments (60xx,4000)
    (0x60000010, "-"),  # Overlay Rows
    # Rows added to Table E.1-1 after 2021b (the 2021b column leaves them alone):
    (0x00080012, "X"),  # Instance Creation Date (X/D)
    (0x00080017, "U"),  # Acquisition UID
    (0x00080055, "X"),  # Station AE Title
    (0x00181203, "Z"),  # Calibration DateTime
    (0x00189074, "Z"),  # Frame Acquisition DateTime (D)
    (0x00321040, "X"),  # Study Arrival Date
    (0x00420011, "Z"),  # Encapsulated Document (D)
    (0x006A0006, "X"),  # Annotation Group Description
    (0x300A0785, "U"),  # Referenced Treatment Position Group UID
    (0x40080040, "X"),  # Results ID
    (0x30100077, "X"),  # Treatment Site: D in 2021b, X/D in 2023b
]
SPOT_CHECKS["2021b"].append((0x30020121, "-"))
SPOT_CHECKS["2021b"] += [
    (tag, "Z" if tag == 0x30100077 else "-") for tag, _ in SPOT_CHECKS["2023b"][-11:]
]


@pytest.mark.parametrize("version", confidentiality.VERSIONS)
def test_spot_checks(version: str) -> None:
    chosen = confidentiality.profile(version)
    for tag, action in SPOT_CHECKS[version]:
        assert chosen.action(tag) == action, f"{version} {tag:08X}"


def test_versions() -> None:
    assert confidentiality.DEFAULT_VERSION == "2023b"
    with pytest.raises(ValueError, match="Unknown specific version"):
        confidentiality.profile("2099")
    sizes = [len(confidentiality.profile(v).remove) for v in confidentiality.VERSIONS]
    assert sizes[0] < sizes[1] < sizes[2] < sizes[3]  # each edition covers more attributes
    # The identifiers of the hierarchy and the patient are handled apart from the table.
    for version in confidentiality.VERSIONS:
        chosen = confidentiality.profile(version)
        for tag in (0x00100010, 0x00100020, 0x0020000D, 0x0020000E, 0x00080018):
            assert chosen.action(tag) == "-"


def test_options_keep_only_what_the_profile_touches() -> None:
    chosen = confidentiality.profile()
    for tags in confidentiality.RETAINED.values():
        assert all(chosen.action(t) != "-" for t in tags)
    temporal = confidentiality.temporal_tags()
    assert 0x00080020 in temporal and 0x00100030 in temporal  # Study Date, Birth Date
    assert 0x00080050 not in temporal


def test_tag_paths() -> None:
    path = parse_tag_path("ReferencedImageSequence[1].ReferencedSOPInstanceUID")
    assert path.prefix == (PathItem(0x00081140, 1),) and path.tag == 0x00081155
    assert path.format() == "(0008,1140)[1].(0008,1155)"
    assert parse_tag_path(path.format()) == path
    universal = parse_tag_path("0008,1140[*].00081155")
    assert universal.prefix[0].index is None
    assert universal.matches([(0x00081140, 5)], 0x00081155)
    assert not path.matches([(0x00081140, 0)], 0x00081155)
    assert parse_tag_path("(0010,0010)").is_top_level
    sequence = parse_tag_path("SourceImageSequence")
    assert sequence.matches([(0x00082112, 0)], 0x00081155)  # its content
    # Each part is a tag name as Orthanc reads it (dicom.tag_names), between blanks and
    # parentheses if wished; a "/" is no separator, so its name stops there.
    for lenient, expected in (
        ("10,4000", ((), 0x00104000)),
        ("0x0010,0x4000", ((), 0x00104000)),
        ("0010, 4000", ((), 0x00104000)),
        ("0010,4000X", ((), 0x00104000)),
        (" 10,4000 ", ((), 0x00104000)),
        ("-fff0,4000", ((), 0x00104000)),
        (" PatientComments ", ((), 0x00104000)),
        ("9,1001", ((), 0x00091001)),
        ("0008,1140/0/0008,1155", ((), 0x00081140)),
        ("8,1140[0].8,1155", ((PathItem(0x00081140, 0),), 0x00081155)),
        ("0x8,0x1140[1].0008,1155X", ((PathItem(0x00081140, 1),), 0x00081155)),
        ("ReferencedImageSequence [ 0 ]. (0008,1155) ", ((PathItem(0x00081140, 0),), 0x00081155)),
    ):
        parsed = parse_tag_path(lenient)
        assert (parsed.prefix, parsed.tag) == expected, lenient
    for bad, error in (
        ("ReferencedImageSequence.ReferencedSOPInstanceUID", TagPathError),
        ("0010,4000.0008,0100", TagPathError),
        ("ReferencedImageSequence[-2].ReferencedSOPInstanceUID", TagPathError),
        ("ReferencedImageSequence[a].ReferencedSOPInstanceUID", TagPathError),
        ("[0].PatientName", TagPathError),
        ("NotATag", UnknownTagName),
        ("", UnknownTagName),
        ("patientcomments", UnknownTagName),
        ("0010 ,4000", UnknownTagName),
        ("(0008,1140)[0].(0008,1155)X", UnknownTagName),
        ("ReferencedImageSequence/0/ReferencedSOPInstanceUID", UnknownTagName),
        ("ReferencedImageSequence[0].", UnknownTagName),
    ):
        with pytest.raises(error):
            parse_tag_path(bad)


def test_uid_mapper_is_deterministic_per_seed() -> None:
    first, again, other = UidMapper("a"), UidMapper("a"), UidMapper("b")
    uid = first.map("1.2.3", Level.STUDY)
    assert uid == again.map("1.2.3 ", Level.STUDY)
    assert uid != other.map("1.2.3", Level.STUDY)
    assert uid != first.map("1.2.3", Level.SERIES)
    assert uid.startswith("2.25.") and len(uid) <= 64
    assert len(first.map("PAT", Level.PATIENT)) == 36  # a UUID, like Orthanc's
    first.register("1.2.3", "9.9", Level.SERIES)
    assert first.map("1.2.3", Level.SERIES) == "9.9"


def test_apply_modification_levels_and_json_round_trip() -> None:
    ds = make_dataset(patient_id="P")
    original = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    mod = Modification(level=Level.SERIES)
    mod.replace_tag(0x0008103E, "new series")
    mod.remove_tag(0x00081030)
    mod = Modification.from_json(mod.to_json())
    apply(ds, mod, UidMapper("seed"))
    assert ds.SeriesDescription == "new series" and "StudyDescription" not in ds
    assert ds.StudyInstanceUID == original[0]
    assert ds.SeriesInstanceUID != original[1] and ds.SOPInstanceUID != original[2]
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_apply_refuses_bad_input() -> None:
    ds = make_dataset()
    forbidden = Modification()
    forbidden.remove_tag(0x0020000D)
    with pytest.raises(ForbiddenRemoval):
        apply(ds, forbidden, UidMapper("s"))
    for value in (3, True, {"a": "b"}, ["x"]):
        bad = Modification()
        bad.replace_tag(0x00100010, value)
        with pytest.raises(BadReplacement, match="0010,0010"):
            apply(make_dataset(), bad, UidMapper("s"))


def test_replace_values_by_vr() -> None:
    ds = make_dataset()
    mod = Modification()
    mod.replace_tag(0x00280010, "16")  # US from a string
    mod.replace_tag(0x00180050, "2.5")  # DS
    mod.replace_tag(0x00091010, "private")  # a private tag, no creator
    mod.replace_tag(0x00081140, [{"ReferencedSOPInstanceUID": "1.2"}])
    mod.replace_tag(0x00104000, "data:application/octet-stream;base64,SGVsbG8=")
    apply(ds, mod, UidMapper("s"))
    assert ds.Rows == 16 and float(ds.SliceThickness) == 2.5
    assert ds[0x00091010].VR == "UN" and ds[0x00091010].value == b"private\0"
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2"
    assert ds.PatientComments == "Hello"
    item = Dataset()
    item.CodeValue = "x"
    ds.DerivationCodeSequence = [item]
    with_creator = Modification(private_creator="ME")
    with_creator.replace_tag(0x00111001, "v")
    apply(ds, with_creator, UidMapper("s"))
    assert ds[0x00110010].value == "ME"
