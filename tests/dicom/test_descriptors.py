"""PS3.15 Clean Descriptors: which descriptors, what is found in them, what is not."""

from __future__ import annotations

import copy

from pydicom.dataset import Dataset

from dicomhub.dicom import confidentiality, descriptors
from dicomhub.dicom.descriptors import REDACTED, clean_descriptors, clean_text, compile_patterns
from tests.dicom_factory import make_dataset

STUDY_DESCRIPTION, SERIES_DESCRIPTION, IMAGE_COMMENTS = 0x00081030, 0x0008103E, 0x00204000
PROTOCOL_NAME, REQUEST_ATTRIBUTES, MAKER_NOTE = 0x00181030, 0x00400275, 0x0016002B


def test_the_descriptor_list() -> None:
    tags = descriptors.descriptor_tags()
    # Spot checks against the Clean Descriptors column of PS3.15 Table E.1-1.
    for tag in (
        STUDY_DESCRIPTION,
        SERIES_DESCRIPTION,
        IMAGE_COMMENTS,
        PROTOCOL_NAME,
        0x00081080,  # Admitting Diagnoses Description
        0x00102000,  # Medical Alerts
        0x00104000,  # Patient Comments
        0x00400254,  # Performed Procedure Step Description
        0x30060026,  # ROI Name
        REQUEST_ATTRIBUTES,
    ):
        assert tag in tags, f"{tag:08X}"
    for tag in (0x00100010, 0x00080050, 0x00080080, 0x00081010):  # names, IDs, places
        assert tag not in tags
    # Every descriptor is an attribute the 2023b profile removes or empties; those the
    # 2023b edition added to Table E.1-1 are not cleaned with older editions.
    assert confidentiality.descriptor_tags("2023b") == tags
    assert 0x00081088 in tags and 0x00081088 not in confidentiality.descriptor_tags("2021b")
    # The 2008 profile leaves most of them alone: the option does not clean those.
    older = confidentiality.descriptor_tags("2008")
    assert STUDY_DESCRIPTION in older and 0x00180010 not in older  # Contrast/Bolus Agent
    assert older < tags


def _pattern(ds: Dataset, hidden: set[int]) -> object:
    return compile_patterns(
        descriptors.identifying_patterns(ds, hidden.__contains__, lambda t: False)
    )


def test_dates_in_their_printed_forms() -> None:
    ds = make_dataset(PatientBirthDate="19700305")
    pattern = _pattern(ds, {0x00100030})
    for text in (
        "19700305",
        "1970-03-05",
        "1970/3/5",
        "05/03/1970",
        "5.3.1970",
        "03/05/1970",
        "3-5-70",
        "5 March 1970",
        "5th of Mar. 1970",
        "March 5, 1970",
        "mar 5 1970",
    ):
        assert clean_text(f"born {text}!", pattern) == f"born {REDACTED}!", text
    # Other numbers, and the date inside a longer number, are left alone.
    for text in ("19700306", "1970", "319700305", "05/03/1971"):
        assert clean_text(text, pattern) == text


def test_names_and_identifiers() -> None:
    ds = make_dataset(
        patient_id="MRN12345",
        patient_name="Doe^John^Quincy^Dr^Jr",
        AccessionNumber="ACC-77",
        OperatorsName="Van Der Berg^Anna",
        StudyID="S1",
    )
    hidden = {0x00100020, 0x00100010, 0x00080050, 0x00200010}
    pattern = _pattern(ds, hidden)
    assert clean_text("John Doe (mrn12345)", pattern) == "*** *** (***)"
    assert clean_text("DOE, JOHN Q", pattern) == "***, *** Q"
    assert clean_text("Doe^John^Quincy^Dr^Jr", pattern) == REDACTED
    assert clean_text("Quincy, acc ACC-77", pattern) == "***, acc ***"
    # Prefixes and suffixes are not identifying; a part inside a word is not a match.
    assert clean_text("Dr Jr Johnson Doest", pattern) == "Dr Jr Johnson Doest"
    # A person name counts wherever it is (OperatorsName is not in ``hidden``).
    assert clean_text("seen by Anna van der berg", pattern) == "seen by *** ***"
    assert clean_text("Berg", pattern) == REDACTED
    # Values shorter than three characters (StudyID "S1") are not searched for.
    assert clean_text("S1 series", pattern) == "S1 series"


def test_clean_a_dataset() -> None:
    ds = make_dataset(
        patient_id="MRN777",
        patient_name="Li^Jane",
        InstitutionName="Mercy Hospital",
        StudyDescription="MR brain Jane Li MRN777 Mercy Hospital",
        SeriesDescription="T1 axial",
        ImageComments="Janet Janeway, Lima",
        ProtocolName="x" * 61 + " Li",
    )
    ds.add_new(MAKER_NOTE, "OB", b"\x01\x02Li\x00")
    ds.add_new(0x04000565, "CS", "COERCE")  # Reason for the Attribute Modification
    request = Dataset()
    request.RequestedProcedureDescription = "Brain for Li"
    request.RequestedProcedureID = "MRN777"  # a code, not free text: not cleaned
    code = Dataset()
    code.CodeValue = "Li"
    code.CodeMeaning = "Li syndrome"
    request.ReasonForRequestedProcedureCodeSequence = [code]
    ds.RequestAttributesSequence = [request]
    before = copy.deepcopy(ds)
    tags = descriptors.descriptor_tags()
    hidden = {0x00100010, 0x00100020, 0x00080080}

    clean_descriptors(ds, tags, hidden.__contains__, lambda t: False)
    assert ds.StudyDescription == "MR brain *** *** *** ***"
    assert ds.SeriesDescription == "T1 axial"
    assert ds.ImageComments == "Janet Janeway, Lima"  # parts of words are left alone
    assert ds.ProtocolName == "x" * 61 + " **"  # clipped to the 64 characters of LO
    assert MAKER_NOTE not in ds  # binary: cannot be cleaned, so removed
    assert ds[0x04000565].value == "COERCE"  # a defined term: kept as it is
    nested = ds.RequestAttributesSequence[0]
    assert nested.RequestedProcedureDescription == "Brain for ***"
    assert nested.RequestedProcedureID == "MRN777"
    code = nested.ReasonForRequestedProcedureCodeSequence[0]
    assert code.CodeValue == "Li" and code.CodeMeaning == "*** syndrome"
    # The sources themselves are not touched (the profile removes them later).
    assert ds.PatientName == before.PatientName and ds.InstitutionName == "Mercy Hospital"

    # Deterministic: the same input always gives the same output.
    again = copy.deepcopy(before)
    clean_descriptors(again, tags, hidden.__contains__, lambda t: False)
    assert again == ds

    # A kept attribute is no secret: Mercy Hospital stays when institution is kept.
    kept = copy.deepcopy(before)
    clean_descriptors(kept, tags, hidden.__contains__, {0x00080080}.__contains__)
    assert kept.StudyDescription == "MR brain *** *** *** Mercy Hospital"


def test_nothing_to_find() -> None:
    ds = make_dataset(patient_id="", patient_name="", StudyDescription="Chest PA")
    clean_descriptors(ds, descriptors.descriptor_tags(), lambda t: True, lambda t: False)
    assert ds.StudyDescription == "Chest PA"
    assert clean_text("anything", None) == "anything"
