"""The DICOM modules whose attributes ``/{level}/{id}/module`` answers.

Orthanc answers ``/patients/{id}/module`` (and ``/studies/{id}/module-patient``),
``/studies/{id}/module``, ``/series/{id}/module`` and ``/instances/{id}/module`` with
the attributes of one module of PS3.3, in the 2011 edition of the standard it
follows: the Patient Module (Table C.7-1, with the Issuer of Patient ID macro), the
General Study Module (C.7-3), the General Series Module (C.7-5, with the Performed
Procedure Step Summary macro) and the SOP Common Module (C.12-1). Only the
top-level attributes are listed: a sequence comes whole, with its items.

The lists were checked against Orthanc 1.10.1 with a file holding every public tag;
two attributes of the 2011 tables never appear in its answers, so they are left out
here: Largest Pixel Value in Series (0028,0109) of the General Series Module, and
Digital Signatures Sequence (FFFA,FFFA) of the SOP Common Module (which its
``/tags`` never shows either).

Splitting and merging studies use the patient and study modules too
(``study_modules``): the tags a study owns.
"""

from __future__ import annotations

from .levels import Level
from .tag_paths import parse_tag_token


def _tags(*keywords: str) -> frozenset[int]:
    return frozenset(parse_tag_token(k) for k in keywords)


#: PS3.3 (2011) Table C.7-1 Patient Module, and the Issuer of Patient ID macro.
PATIENT_MODULE: frozenset[int] = _tags(
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "PatientBirthDate",
    "PatientSex",
    "ReferencedPatientSequence",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "EthnicGroup",
    "PatientComments",
    "PatientSpeciesDescription",
    "PatientSpeciesCodeSequence",
    "PatientBreedDescription",
    "PatientBreedCodeSequence",
    "BreedRegistrationSequence",
    "ResponsiblePerson",
    "ResponsiblePersonRole",
    "ResponsibleOrganization",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
)

#: PS3.3 (2011) Table C.7-3 General Study Module.
STUDY_MODULE: frozenset[int] = _tags(
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "ReferringPhysicianIdentificationSequence",
    "StudyID",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyDescription",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence",
    "RequestingServiceCodeSequence",
    "ReferencedStudySequence",
    "ProcedureCodeSequence",
    "ReasonForPerformedProcedureCodeSequence",
)

#: PS3.3 (2011) Table C.7-5 General Series Module, with the Performed Procedure Step
#: Summary macro (C.7-5b); without Largest Pixel Value in Series (see above).
SERIES_MODULE: frozenset[int] = _tags(
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "Laterality",
    "SeriesDate",
    "SeriesTime",
    "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence",
    "ProtocolName",
    "SeriesDescription",
    "SeriesDescriptionCodeSequence",
    "OperatorsName",
    "OperatorIdentificationSequence",
    "ReferencedPerformedProcedureStepSequence",
    "RelatedSeriesSequence",
    "BodyPartExamined",
    "PatientPosition",
    "SmallestPixelValueInSeries",
    "RequestAttributesSequence",
    "PerformedProcedureStepID",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepDescription",
    "PerformedProtocolCodeSequence",
    "CommentsOnThePerformedProcedureStep",
    "AnatomicalOrientationType",
)

#: PS3.3 (2011) Table C.12-1 SOP Common Module, with the MAC Parameters Sequence of
#: the Digital Signatures macro; without Digital Signatures Sequence (see above).
SOP_COMMON_MODULE: frozenset[int] = _tags(
    "SOPClassUID",
    "SOPInstanceUID",
    "SpecificCharacterSet",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "InstanceCreatorUID",
    "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID",
    "CodingSchemeIdentificationSequence",
    "TimezoneOffsetFromUTC",
    "ContributingEquipmentSequence",
    "InstanceNumber",
    "SOPInstanceStatus",
    "SOPAuthorizationDateTime",
    "SOPAuthorizationComment",
    "AuthorizationEquipmentCertificationNumber",
    "MACParametersSequence",
    "EncryptedAttributesSequence",
    "OriginalAttributesSequence",
    "HL7StructuredDocumentReferenceSequence",
    "LongitudinalTemporalInformationModified",
)

#: The module ``/{level}/{id}/module`` answers for each level.
LEVEL_MODULES: dict[Level, frozenset[int]] = {
    Level.PATIENT: PATIENT_MODULE,
    Level.STUDY: STUDY_MODULE,
    Level.SERIES: SERIES_MODULE,
    Level.INSTANCE: SOP_COMMON_MODULE,
}
