"""PS3.15 Annex E: the Basic Application Level Confidentiality Profile, as data.

One table lists, for every attribute the profile touches, its action in each
version of the standard dicomhub offers: ``X`` remove, ``Z`` empty (zero length),
``U`` replace the UID by a new one (the same new one wherever the old one appears),
``-`` not touched. ``D`` (dummy) and the combined codes of the standard (``X/Z``,
``Z/D``, ``X/Z/D``, ``X/Z/U*``) are resolved as Orthanc resolves them, which is
what its answers show: each becomes one of ``X``, ``Z`` or ``U``.

Where the rows come from: PS3.15 Table E.1-1 of each edition, checked tag by tag
against what the reference Orthanc 1.10.1 does for ``DicomVersion`` 2008, 2017c and
2021b (a file carrying every public attribute of the data dictionary, anonymized
once per version, each attribute classified as removed, emptied, remapped or kept).
The 2023b column has the 2021b rows plus the 151 rows the 2023b edition added
(dates and times such as Instance Creation Date, AE titles, Acquisition UID,
descriptions; Treatment Site goes from D to X/D), established from the 2023b table
(Orthanc 1.12's 2023b list and the current standard, read as facts; the reference
Orthanc 1.10.1 leaves every one of them alone with 2017c and 2021b, which the test
suite checks), and the repeating groups the standard lists: Curve Data (50xx,xxxx),
Overlay Data (60xx,3000) and Overlay Comments (60xx,4000). See
``docs/anonymization.md``.

Patient's Name and Patient ID are not in the table: like Orthanc, anonymization
gives them new values of its own (see ``dicomhub.core.modification``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

VERSIONS = ("2008", "2017c", "2021b", "2023b")
DEFAULT_VERSION = "2023b"

REMOVE, EMPTY, NEW_UID, UNTOUCHED = "X", "Z", "U", "-"

#: tag, then the action in 2008, 2017c, 2021b and 2023b; the keyword is a comment.
_TABLE = """
# tag     2008 2017c 2021b 2023b  keyword
0000,1000  -  -  -  X  AffectedSOPInstanceUID
0000,1001  -  -  -  U  RequestedSOPInstanceUID
0002,0003  -  -  -  U  MediaStorageSOPInstanceUID
0004,1511  -  U  U  U  ReferencedSOPInstanceUIDInFile
0008,0012  -  -  -  X  InstanceCreationDate
0008,0013  -  -  -  X  InstanceCreationTime
0008,0014  U  U  U  U  InstanceCreatorUID
0008,0015  -  X  X  X  InstanceCoercionDateTime
0008,0017  -  -  -  U  AcquisitionUID
0008,0019  -  -  -  U  PyramidUID
0008,0020  -  Z  Z  Z  StudyDate
0008,0021  -  X  X  X  SeriesDate
0008,0022  -  X  X  X  AcquisitionDate
0008,0023  -  Z  Z  Z  ContentDate
0008,0024  -  X  X  X  OverlayDate
0008,0025  -  X  X  X  CurveDate
0008,002A  -  X  X  X  AcquisitionDateTime
0008,0030  -  Z  Z  Z  StudyTime
0008,0031  -  X  X  X  SeriesTime
0008,0032  -  X  X  X  AcquisitionTime
0008,0033  -  Z  Z  Z  ContentTime
0008,0034  -  X  X  X  OverlayTime
0008,0035  -  X  X  X  CurveTime
0008,0050  X  Z  Z  Z  AccessionNumber
0008,0054  -  -  -  X  RetrieveAETitle
0008,0055  -  -  -  X  StationAETitle
0008,0058  -  U  U  U  FailedSOPInstanceUIDList
0008,0080  X  X  X  X  InstitutionName
0008,0081  X  X  X  X  InstitutionAddress
0008,0082  -  X  X  X  InstitutionCodeSequence
0008,0090  X  Z  Z  Z  ReferringPhysicianName
0008,0092  X  X  X  X  ReferringPhysicianAddress
0008,0094  X  X  X  X  ReferringPhysicianTelephoneNumbers
0008,0096  -  X  X  X  ReferringPhysicianIdentificationSequence
0008,009C  -  Z  Z  Z  ConsultingPhysicianName
0008,009D  -  X  X  X  ConsultingPhysicianIdentificationSequence
0008,0106  -  -  -  Z  ContextGroupVersion
0008,0107  -  -  -  Z  ContextGroupLocalVersion
0008,0201  -  X  X  X  TimezoneOffsetFromUTC
0008,1000  -  -  -  X  NetworkID
0008,1010  X  X  X  X  StationName
0008,1030  X  X  X  X  StudyDescription
0008,103E  X  X  X  X  SeriesDescription
0008,1040  X  X  X  X  InstitutionalDepartmentName
0008,1041  -  -  X  X  InstitutionalDepartmentTypeCodeSequence
0008,1048  X  X  X  X  PhysiciansOfRecord
0008,1049  -  X  X  X  PhysiciansOfRecordIdentificationSequence
0008,1050  X  X  X  X  PerformingPhysicianName
0008,1052  -  X  X  X  PerformingPhysicianIdentificationSequence
0008,1060  X  X  X  X  NameOfPhysiciansReadingStudy
0008,1062  -  X  X  X  PhysiciansReadingStudyIdentificationSequence
0008,1070  X  X  X  X  OperatorsName
0008,1072  -  X  X  X  OperatorIdentificationSequence
0008,1080  X  X  X  X  AdmittingDiagnosesDescription
0008,1084  -  X  X  X  AdmittingDiagnosesCodeSequence
0008,1088  -  -  -  X  PyramidDescription
0008,1110  -  X  X  X  ReferencedStudySequence
0008,1111  -  X  X  X  ReferencedPerformedProcedureStepSequence
0008,1120  -  X  X  X  ReferencedPatientSequence
0008,1155  U  U  U  U  ReferencedSOPInstanceUID
0008,1195  -  U  U  U  TransactionUID
0008,2111  X  X  X  X  DerivationDescription
0008,3010  -  U  U  U  IrradiationEventUID
0008,4000  -  X  X  X  IdentifyingComments
0010,0021  -  X  X  X  IssuerOfPatientID
0010,0030  X  Z  Z  Z  PatientBirthDate
0010,0032  X  X  X  X  PatientBirthTime
0010,0040  X  Z  Z  Z  PatientSex
0010,0050  -  X  X  X  PatientInsurancePlanCodeSequence
0010,0101  -  X  X  X  PatientPrimaryLanguageCodeSequence
0010,0102  -  X  X  X  PatientPrimaryLanguageModifierCodeSequence
0010,1000  X  X  X  X  OtherPatientIDs
0010,1001  X  X  X  X  OtherPatientNames
0010,1002  -  X  X  X  OtherPatientIDsSequence
0010,1005  -  X  X  X  PatientBirthName
0010,1010  X  X  X  X  PatientAge
0010,1020  X  X  X  X  PatientSize
0010,1030  X  X  X  X  PatientWeight
0010,1040  X  X  X  X  PatientAddress
0010,1050  -  X  X  X  InsurancePlanIdentification
0010,1060  -  X  X  X  PatientMotherBirthName
0010,1080  -  X  X  X  MilitaryRank
0010,1081  -  X  X  X  BranchOfService
0010,1090  X  X  X  X  MedicalRecordLocator
0010,1100  -  X  X  X  ReferencedPatientPhotoSequence
0010,2000  X  X  X  X  MedicalAlerts
0010,2110  -  X  X  X  Allergies
0010,2150  -  X  X  X  CountryOfResidence
0010,2152  -  X  X  X  RegionOfResidence
0010,2154  X  X  X  X  PatientTelephoneNumbers
0010,2155  -  X  X  X  PatientTelecomInformation
0010,2160  X  X  X  X  EthnicGroup
0010,2180  X  X  X  X  Occupation
0010,21A0  -  X  X  X  SmokingStatus
0010,21B0  X  X  X  X  AdditionalPatientHistory
0010,21C0  -  X  X  X  PregnancyStatus
0010,21D0  -  X  X  X  LastMenstrualDate
0010,21F0  -  X  X  X  PatientReligiousPreference
0010,2203  -  X  X  X  PatientSexNeutered
0010,2297  -  X  X  X  ResponsiblePerson
0010,2299  -  X  X  X  ResponsibleOrganization
0010,4000  X  X  X  X  PatientComments
0012,0010  -  -  Z  Z  ClinicalTrialSponsorName
0012,0020  -  -  Z  Z  ClinicalTrialProtocolID
0012,0021  -  -  Z  Z  ClinicalTrialProtocolName
0012,0030  -  -  Z  Z  ClinicalTrialSiteID
0012,0031  -  -  Z  Z  ClinicalTrialSiteName
0012,0040  -  -  Z  Z  ClinicalTrialSubjectID
0012,0042  -  -  Z  Z  ClinicalTrialSubjectReadingID
0012,0050  -  -  Z  Z  ClinicalTrialTimePointID
0012,0051  -  -  X  X  ClinicalTrialTimePointDescription
0012,0060  -  -  Z  Z  ClinicalTrialCoordinatingCenterName
0012,0071  -  -  X  X  ClinicalTrialSeriesID
0012,0072  -  -  X  X  ClinicalTrialSeriesDescription
0012,0081  -  -  Z  Z  ClinicalTrialProtocolEthicsCommitteeName
0012,0082  -  -  X  X  ClinicalTrialProtocolEthicsCommitteeApprovalNumber
0012,0086  -  -  -  X  EthicsCommitteeApprovalEffectivenessStartDate
0012,0087  -  -  -  X  EthicsCommitteeApprovalEffectivenessEndDate
0014,407C  -  -  -  X  CalibrationTime
0014,407E  -  -  -  X  CalibrationDate
0016,002B  -  -  X  X  MakerNote
0016,004B  -  -  X  X  DeviceSettingDescription
0016,004D  -  -  X  X  CameraOwnerName
0016,004E  -  -  X  X  LensSpecification
0016,004F  -  -  X  X  LensMake
0016,0050  -  -  X  X  LensModel
0016,0051  -  -  X  X  LensSerialNumber
0016,0070  -  -  X  X  GPSVersionID
0016,0071  -  -  X  X  GPSLatitudeRef
0016,0072  -  -  X  X  GPSLatitude
0016,0073  -  -  X  X  GPSLongitudeRef
0016,0074  -  -  X  X  GPSLongitude
0016,0075  -  -  X  X  GPSAltitudeRef
0016,0076  -  -  X  X  GPSAltitude
0016,0077  -  -  X  X  GPSTimeStamp
0016,0078  -  -  X  X  GPSSatellites
0016,0079  -  -  X  X  GPSStatus
0016,007A  -  -  X  X  GPSMeasureMode
0016,007B  -  -  X  X  GPSDOP
0016,007C  -  -  X  X  GPSSpeedRef
0016,007D  -  -  X  X  GPSSpeed
0016,007E  -  -  X  X  GPSTrackRef
0016,007F  -  -  X  X  GPSTrack
0016,0080  -  -  X  X  GPSImgDirectionRef
0016,0081  -  -  X  X  GPSImgDirection
0016,0082  -  -  X  X  GPSMapDatum
0016,0083  -  -  X  X  GPSDestLatitudeRef
0016,0084  -  -  X  X  GPSDestLatitude
0016,0085  -  -  X  X  GPSDestLongitudeRef
0016,0086  -  -  X  X  GPSDestLongitude
0016,0087  -  -  X  X  GPSDestBearingRef
0016,0088  -  -  X  X  GPSDestBearing
0016,0089  -  -  X  X  GPSDestDistanceRef
0016,008A  -  -  X  X  GPSDestDistance
0016,008B  -  -  X  X  GPSProcessingMethod
0016,008C  -  -  X  X  GPSAreaInformation
0016,008D  -  -  X  X  GPSDateStamp
0016,008E  -  -  X  X  GPSDifferential
0018,0010  -  Z  Z  Z  ContrastBolusAgent
0018,0027  -  -  -  X  InterventionDrugStopTime
0018,0035  -  -  -  X  InterventionDrugStartTime
0018,1000  X  X  X  X  DeviceSerialNumber
0018,1002  -  U  U  U  DeviceUID
0018,1004  -  X  X  X  PlateID
0018,1005  -  X  X  X  GeneratorID
0018,1007  -  X  X  X  CassetteID
0018,1008  -  X  X  X  GantryID
0018,1009  -  -  X  X  UniqueDeviceIdentifier
0018,100A  -  -  X  X  UDISequence
0018,100B  -  -  U  U  ManufacturerDeviceClassUID
0018,1012  -  -  -  X  DateOfSecondaryCapture
0018,1014  -  -  -  X  TimeOfSecondaryCapture
0018,1030  X  X  X  X  ProtocolName
0018,1042  -  -  -  X  ContrastBolusStartTime
0018,1043  -  -  -  X  ContrastBolusStopTime
0018,1072  -  -  -  X  RadiopharmaceuticalStartTime
0018,1073  -  -  -  X  RadiopharmaceuticalStopTime
0018,1078  -  -  -  X  RadiopharmaceuticalStartDateTime
0018,1079  -  -  -  X  RadiopharmaceuticalStopDateTime
0018,11BB  -  -  Z  Z  AcquisitionFieldOfViewLabel
0018,1200  -  -  -  X  DateOfLastCalibration
0018,1201  -  -  -  X  TimeOfLastCalibration
0018,1202  -  -  -  X  DateTimeOfLastCalibration
0018,1203  -  -  -  Z  CalibrationDateTime
0018,1400  -  X  X  X  AcquisitionDeviceProcessingDescription
0018,2042  -  U  U  U  TargetUID
0018,4000  -  X  X  X  AcquisitionComments
0018,5011  -  -  X  X  TransducerIdentificationSequence
0018,700A  -  X  X  X  DetectorID
0018,700C  -  -  -  X  DateOfLastDetectorCalibration
0018,700E  -  -  -  X  TimeOfLastDetectorCalibration
0018,9074  -  -  -  Z  FrameAcquisitionDateTime
0018,9151  -  -  -  Z  FrameReferenceDateTime
0018,9185  -  -  X  X  RespiratoryMotionCompensationTechniqueDescription
0018,9367  -  -  Z  Z  XRaySourceID
0018,9369  -  -  Z  Z  SourceStartDateTime
0018,936A  -  -  Z  Z  SourceEndDateTime
0018,9371  -  -  Z  Z  XRayDetectorID
0018,9373  -  -  X  X  XRayDetectorLabel
0018,937B  -  -  X  X  MultienergyAcquisitionDescription
0018,937F  -  -  X  X  DecompositionDescription
0018,9424  -  X  X  X  AcquisitionProtocolDescription
0018,9516  -  X  X  X  StartAcquisitionDateTime
0018,9517  -  X  X  X  EndAcquisitionDateTime
0018,9623  -  -  -  Z  FunctionalSyncPulse
0018,9701  -  -  -  Z  DecayCorrectionDateTime
0018,9804  -  -  -  Z  ExclusionStartDateTime
0018,9919  -  -  -  Z  InstructionPerformedDateTime
0018,9937  -  -  X  X  RequestedSeriesDescription
0018,A002  -  -  -  X  ContributionDateTime
0018,A003  -  X  X  X  ContributionDescription
0020,0010  X  Z  Z  Z  StudyID
0020,0027  -  -  -  X  PyramidLabel
0020,0052  U  U  U  U  FrameOfReferenceUID
0020,0200  U  U  U  U  SynchronizationFrameOfReferenceUID
0020,3401  -  X  X  X  ModifyingDeviceID
0020,3403  -  -  -  X  ModifiedImageDate
0020,3404  -  X  -  -  ModifyingDeviceManufacturer
0020,3405  -  -  -  X  ModifiedImageTime
0020,3406  -  X  X  X  ModifiedImageDescription
0020,4000  X  X  X  X  ImageComments
0020,9158  -  X  X  X  FrameComments
0020,9161  -  U  U  U  ConcatenationUID
0020,9164  -  U  U  U  DimensionOrganizationUID
0028,1199  -  U  U  U  PaletteColorLookupTableUID
0028,1214  -  U  U  U  LargePaletteColorLookupTableUID
0028,4000  -  X  X  X  ImagePresentationComments
0032,0012  -  X  X  X  StudyIDIssuer
0032,0032  -  -  -  X  StudyVerifiedDate
0032,0033  -  -  -  X  StudyVerifiedTime
0032,0034  -  -  -  X  StudyReadDate
0032,0035  -  -  -  X  StudyReadTime
0032,1000  -  -  -  X  ScheduledStudyStartDate
0032,1001  -  -  -  X  ScheduledStudyStartTime
0032,1010  -  -  -  X  ScheduledStudyStopDate
0032,1011  -  -  -  X  ScheduledStudyStopTime
0032,1020  -  X  X  X  ScheduledStudyLocation
0032,1021  -  X  X  X  ScheduledStudyLocationAETitle
0032,1030  -  X  X  X  ReasonForStudy
0032,1032  X  X  X  X  RequestingPhysician
0032,1033  -  X  X  X  RequestingService
0032,1040  -  -  -  X  StudyArrivalDate
0032,1041  -  -  -  X  StudyArrivalTime
0032,1050  -  -  -  X  StudyCompletionDate
0032,1051  -  -  -  X  StudyCompletionTime
0032,1060  -  X  X  X  RequestedProcedureDescription
0032,1066  -  -  X  X  ReasonForVisit
0032,1067  -  -  X  X  ReasonForVisitCodeSequence
0032,1070  -  X  X  X  RequestedContrastAgent
0032,4000  -  X  X  X  StudyComments
0034,0001  -  -  Z  Z  FlowIdentifierSequence
0034,0002  -  -  Z  Z  FlowIdentifier
0034,0005  -  -  Z  Z  SourceIdentifier
0034,0007  -  -  Z  Z  FrameOriginTimestamp
0038,0004  -  X  X  X  ReferencedPatientAliasSequence
0038,0010  -  X  X  X  AdmissionID
0038,0011  -  X  X  X  IssuerOfAdmissionID
0038,0014  -  -  X  X  IssuerOfAdmissionIDSequence
0038,001A  -  -  -  X  ScheduledAdmissionDate
0038,001B  -  -  -  X  ScheduledAdmissionTime
0038,001C  -  -  -  X  ScheduledDischargeDate
0038,001D  -  -  -  X  ScheduledDischargeTime
0038,001E  -  X  X  X  ScheduledPatientInstitutionResidence
0038,0020  -  X  X  X  AdmittingDate
0038,0021  -  X  X  X  AdmittingTime
0038,0030  -  -  -  X  DischargeDate
0038,0032  -  -  -  X  DischargeTime
0038,0040  -  X  X  X  DischargeDiagnosisDescription
0038,0050  -  X  X  X  SpecialNeeds
0038,0060  -  X  X  X  ServiceEpisodeID
0038,0061  -  X  X  X  IssuerOfServiceEpisodeID
0038,0062  -  X  X  X  ServiceEpisodeDescription
0038,0064  -  -  X  X  IssuerOfServiceEpisodeIDSequence
0038,0300  -  X  X  X  CurrentPatientLocation
0038,0400  -  X  X  X  PatientInstitutionResidence
0038,0500  -  X  X  X  PatientState
0038,4000  -  X  X  X  VisitComments
003A,0310  -  -  U  U  MultiplexGroupUID
003A,0314  -  -  Z  Z  ImpedanceMeasurementDateTime
003A,0329  -  -  -  X  WaveformFilterDescription
003A,032B  -  -  -  X  FilterLookupTableDescription
0040,0001  -  X  X  X  ScheduledStationAETitle
0040,0002  -  X  X  X  ScheduledProcedureStepStartDate
0040,0003  -  X  X  X  ScheduledProcedureStepStartTime
0040,0004  -  X  X  X  ScheduledProcedureStepEndDate
0040,0005  -  X  X  X  ScheduledProcedureStepEndTime
0040,0006  -  X  X  X  ScheduledPerformingPhysicianName
0040,0007  -  X  X  X  ScheduledProcedureStepDescription
0040,0009  -  -  X  X  ScheduledProcedureStepID
0040,000B  -  X  X  X  ScheduledPerformingPhysicianIdentificationSequence
0040,0010  -  X  X  X  ScheduledStationName
0040,0011  -  X  X  X  ScheduledProcedureStepLocation
0040,0012  -  X  X  X  PreMedication
0040,0241  -  X  X  X  PerformedStationAETitle
0040,0242  -  X  X  X  PerformedStationName
0040,0243  -  X  X  X  PerformedLocation
0040,0244  -  X  X  X  PerformedProcedureStepStartDate
0040,0245  -  X  X  X  PerformedProcedureStepStartTime
0040,0250  -  X  X  X  PerformedProcedureStepEndDate
0040,0251  -  X  X  X  PerformedProcedureStepEndTime
0040,0253  -  X  X  X  PerformedProcedureStepID
0040,0254  -  X  X  X  PerformedProcedureStepDescription
0040,0275  X  X  X  X  RequestAttributesSequence
0040,0280  -  X  X  X  CommentsOnThePerformedProcedureStep
0040,0310  -  -  X  X  CommentsOnRadiationDose
0040,050A  -  -  X  X  SpecimenAccessionNumber
0040,0512  -  -  Z  Z  ContainerIdentifier
0040,0513  -  -  Z  Z  IssuerOfTheContainerIdentifierSequence
0040,051A  -  -  X  X  ContainerDescription
0040,0551  -  -  Z  Z  SpecimenIdentifier
0040,0554  -  -  U  U  SpecimenUID
0040,0555  -  X  X  X  AcquisitionContextSequence
0040,0562  -  -  Z  Z  IssuerOfTheSpecimenIdentifierSequence
0040,0600  -  -  X  X  SpecimenShortDescription
0040,0602  -  -  X  X  SpecimenDetailedDescription
0040,0610  -  -  Z  Z  SpecimenPreparationSequence
0040,06FA  -  -  X  X  SlideIdentifier
0040,1001  -  X  X  X  RequestedProcedureID
0040,1002  -  -  X  X  ReasonForTheRequestedProcedure
0040,1004  -  X  X  X  PatientTransportArrangements
0040,1005  -  X  X  X  RequestedProcedureLocation
0040,100A  -  -  X  X  ReasonForRequestedProcedureCodeSequence
0040,1010  -  X  X  X  NamesOfIntendedRecipientsOfResults
0040,1011  -  X  X  X  IntendedRecipientsOfResultsIdentificationSequence
0040,1101  -  Z  Z  Z  PersonIdentificationCodeSequence
0040,1102  -  X  X  X  PersonAddress
0040,1103  -  X  X  X  PersonTelephoneNumbers
0040,1104  -  X  X  X  PersonTelecomInformation
0040,1400  -  X  X  X  RequestedProcedureComments
0040,2001  -  X  X  X  ReasonForTheImagingServiceRequest
0040,2004  -  -  -  X  IssueDateOfImagingServiceRequest
0040,2005  -  -  -  X  IssueTimeOfImagingServiceRequest
0040,2008  -  X  X  X  OrderEnteredBy
0040,2009  -  X  X  X  OrderEntererLocation
0040,2010  -  X  X  X  OrderCallbackPhoneNumber
0040,2011  -  X  X  X  OrderCallbackTelecomInformation
0040,2016  -  Z  Z  Z  PlacerOrderNumberImagingServiceRequest
0040,2017  -  Z  Z  Z  FillerOrderNumberImagingServiceRequest
0040,2400  -  X  X  X  ImagingServiceRequestComments
0040,3001  -  X  X  X  ConfidentialityConstraintOnPatientDataDescription
0040,4005  -  X  X  X  ScheduledProcedureStepStartDateTime
0040,4008  -  -  X  X  ScheduledProcedureStepExpirationDateTime
0040,4010  -  X  X  X  ScheduledProcedureStepModificationDateTime
0040,4011  -  X  X  X  ExpectedCompletionDateTime
0040,4023  -  U  U  U  ReferencedGeneralPurposeScheduledProcedureStepTransactionUID
0040,4025  -  X  X  X  ScheduledStationNameCodeSequence
0040,4027  -  X  X  X  ScheduledStationGeographicLocationCodeSequence
0040,4028  -  X  X  X  PerformedStationNameCodeSequence
0040,4030  -  X  X  X  PerformedStationGeographicLocationCodeSequence
0040,4034  -  X  X  X  ScheduledHumanPerformersSequence
0040,4035  -  X  X  X  ActualHumanPerformersSequence
0040,4036  -  X  X  X  HumanPerformerOrganization
0040,4037  -  X  X  X  HumanPerformerName
0040,4050  -  X  X  X  PerformedProcedureStepStartDateTime
0040,4051  -  X  X  X  PerformedProcedureStepEndDateTime
0040,4052  -  X  X  X  ProcedureStepCancellationDateTime
0040,A023  -  -  -  X  FindingsGroupRecordingDateTrial
0040,A024  -  -  -  X  FindingsGroupRecordingTimeTrial
0040,A027  -  X  Z  Z  VerifyingOrganization
0040,A030  -  -  -  Z  VerificationDateTime
0040,A032  -  -  -  X  ObservationDateTime
0040,A033  -  -  -  X  ObservationStartDateTime
0040,A073  -  Z  Z  Z  VerifyingObserverSequence
0040,A075  -  Z  Z  Z  VerifyingObserverName
0040,A078  -  X  X  X  AuthorObserverSequence
0040,A07A  -  X  X  X  ParticipantSequence
0040,A07C  -  X  X  X  CustodialOrganizationSequence
0040,A082  -  -  -  Z  ParticipationDateTime
0040,A088  -  Z  Z  Z  VerifyingObserverIdentificationCodeSequence
0040,A110  -  -  -  X  DateOfDocumentOrVerbalTransactionTrial
0040,A112  -  -  -  X  TimeOfDocumentCreationOrVerbalTransactionTrial
0040,A120  -  -  -  Z  DateTime
0040,A121  -  -  -  Z  Date
0040,A122  -  -  -  Z  Time
0040,A123  -  Z  Z  Z  PersonName
0040,A124  U  U  U  U  UID
0040,A13A  -  -  -  Z  ReferencedDateTime
0040,A171  -  U  U  U  ObservationUID
0040,A172  -  U  U  U  ReferencedObservationUIDTrial
0040,A192  -  X  X  X  ObservationDateTrial
0040,A193  -  X  X  X  ObservationTimeTrial
0040,A307  -  X  X  X  CurrentObserverTrial
0040,A352  -  X  X  X  VerbalSourceTrial
0040,A353  -  X  X  X  AddressTrial
0040,A354  -  X  X  X  TelephoneNumberTrial
0040,A358  -  X  X  X  VerbalSourceIdentifierCodeSequenceTrial
0040,A402  -  U  U  U  ObservationSubjectUIDTrial
0040,A730  X  X  Z  Z  ContentSequence
0040,DB06  -  -  -  X  TemplateVersion
0040,DB07  -  -  -  X  TemplateLocalVersion
0040,DB0C  -  U  U  U  TemplateExtensionOrganizationUID
0040,DB0D  -  U  U  U  TemplateExtensionCreatorUID
0040,E004  -  -  -  X  HL7DocumentEffectiveTime
0042,0011  -  -  -  Z  EncapsulatedDocument
0044,0004  -  -  -  X  ApprovalStatusDateTime
0044,000B  -  -  -  X  ProductExpirationDateTime
0044,0010  -  -  -  X  SubstanceAdministrationDateTime
0044,0104  -  -  -  Z  AssertionDateTime
0044,0105  -  -  -  X  AssertionExpirationDateTime
0050,001B  -  -  X  X  ContainerComponentID
0050,0020  -  -  X  X  DeviceDescription
0050,0021  -  -  X  X  LongDeviceDescription
0062,0021  -  U  U  U  TrackingUID
0064,0003  -  -  -  U  SourceFrameOfReferenceUID
0068,6226  -  -  -  Z  EffectiveDateTime
0068,6270  -  -  -  Z  InformationIssueDateTime
006A,0003  -  -  -  Z  AnnotationGroupUID
006A,0005  -  -  -  Z  AnnotationGroupLabel
006A,0006  -  -  -  X  AnnotationGroupDescription
0070,0001  -  Z  Z  Z  GraphicAnnotationSequence
0070,0082  -  -  -  X  PresentationCreationDate
0070,0083  -  -  -  X  PresentationCreationTime
0070,0084  -  Z  Z  Z  ContentCreatorName
0070,0086  -  X  X  X  ContentCreatorIdentificationCodeSequence
0070,031A  -  U  U  U  FiducialUID
0070,1101  -  U  U  U  PresentationDisplayCollectionUID
0070,1102  -  U  U  U  PresentationSequenceCollectionUID
0072,000A  -  -  -  Z  HangingProtocolCreationDateTime
0072,005E  -  -  -  Z  SelectorAEValue
0072,005F  -  -  -  Z  SelectorASValue
0072,0061  -  -  -  Z  SelectorDAValue
0072,0063  -  -  -  Z  SelectorDTValue
0072,0065  -  -  -  Z  SelectorOBValue
0072,0066  -  -  -  Z  SelectorLOValue
0072,0068  -  -  -  Z  SelectorLTValue
0072,006A  -  -  -  Z  SelectorPNValue
0072,006B  -  -  -  Z  SelectorTMValue
0072,006C  -  -  -  Z  SelectorSHValue
0072,006D  -  -  -  Z  SelectorUNValue
0072,006E  -  -  -  Z  SelectorSTValue
0072,0070  -  -  -  Z  SelectorUTValue
0072,0071  -  -  -  Z  SelectorURValue
0074,1234  -  -  -  X  ReceivingAE
0074,1236  -  -  -  X  RequestingAE
0088,0140  U  U  U  U  StorageMediaFileSetUID
0088,0200  -  X  X  X  IconImageSequence
0088,0904  -  X  X  X  TopicTitle
0088,0906  -  X  X  X  TopicSubject
0088,0910  -  X  X  X  TopicAuthor
0088,0912  -  X  X  X  TopicKeywords
0100,0420  -  -  -  X  SOPAuthorizationDateTime
0400,0100  -  X  U  U  DigitalSignatureUID
0400,0105  -  -  -  Z  DigitalSignatureDateTime
0400,0115  -  -  -  Z  CertificateOfSigner
0400,0310  -  -  -  X  CertifiedTimestamp
0400,0402  -  X  X  X  ReferencedDigitalSignatureSequence
0400,0403  -  X  X  X  ReferencedSOPInstanceMACSequence
0400,0404  -  X  X  X  MAC
0400,0550  -  X  X  X  ModifiedAttributesSequence
0400,0551  -  -  X  X  NonconformingModifiedAttributesSequence
0400,0552  -  -  X  X  NonconformingDataElementValue
0400,0561  -  X  X  X  OriginalAttributesSequence
0400,0562  -  -  -  Z  AttributeModificationDateTime
0400,0563  -  -  -  Z  ModifyingSystem
0400,0564  -  -  -  Z  SourceOfPreviousValues
0400,0565  -  -  -  Z  ReasonForTheAttributeModification
0400,0600  -  -  X  X  InstanceOriginStatus
2030,0020  -  X  X  X  TextString
2100,0040  -  -  -  X  CreationDate
2100,0050  -  -  -  X  CreationTime
2100,0070  -  -  -  X  Originator
2100,0140  -  -  -  Z  DestinationAE
2200,0002  -  -  X  X  LabelText
2200,0005  -  -  X  X  BarcodeValue
3002,0121  -  -  -  X  PositionAcquisitionTemplateName
3002,0123  -  -  -  X  PositionAcquisitionTemplateDescription
3006,0002  -  -  Z  Z  StructureSetLabel
3006,0004  -  -  X  X  StructureSetName
3006,0006  -  -  X  X  StructureSetDescription
3006,0008  -  -  Z  Z  StructureSetDate
3006,0009  -  -  Z  Z  StructureSetTime
3006,0024  U  U  U  U  ReferencedFrameOfReferenceUID
3006,0026  -  -  Z  Z  ROIName
3006,0028  -  -  X  X  ROIDescription
3006,0038  -  -  X  X  ROIGenerationDescription
3006,0085  -  -  X  X  ROIObservationLabel
3006,0088  -  -  X  X  ROIObservationDescription
3006,00A6  -  -  Z  Z  ROIInterpreter
3006,00C2  U  U  U  U  RelatedFrameOfReferenceUID
3008,0024  -  -  -  Z  TreatmentControlPointDate
3008,0025  -  -  -  Z  TreatmentControlPointTime
3008,0054  -  -  X  X  FirstTreatmentDate
3008,0056  -  -  X  X  MostRecentTreatmentDate
3008,0105  -  X  X  X  SourceSerialNumber
3008,0162  -  -  -  Z  SafePositionExitDate
3008,0164  -  -  -  Z  SafePositionExitTime
3008,0166  -  -  -  Z  SafePositionReturnDate
3008,0168  -  -  -  Z  SafePositionReturnTime
3008,0250  -  -  X  X  TreatmentDate
3008,0251  -  -  X  X  TreatmentTime
300A,0002  -  -  Z  Z  RTPlanLabel
300A,0003  -  -  X  X  RTPlanName
300A,0004  -  -  X  X  RTPlanDescription
300A,0006  -  -  X  X  RTPlanDate
300A,0007  -  -  X  X  RTPlanTime
300A,000B  -  -  -  X  TreatmentSites
300A,000E  -  -  X  X  PrescriptionDescription
300A,0013  -  U  U  U  DoseReferenceUID
300A,0016  -  -  X  X  DoseReferenceDescription
300A,0072  -  -  X  X  FractionGroupDescription
300A,0083  -  -  U  U  ReferencedDoseReferenceUID
300A,00B2  -  -  X  X  TreatmentMachineName
300A,00C3  -  -  X  X  BeamDescription
300A,00DD  -  -  X  X  BolusDescription
300A,0196  -  -  X  X  FixationDeviceDescription
300A,01A6  -  -  X  X  ShieldingDeviceDescription
300A,01B2  -  -  X  X  SetupTechniqueDescription
300A,0216  -  -  X  X  SourceManufacturer
300A,022C  -  -  -  Z  SourceStrengthReferenceDate
300A,022E  -  -  -  Z  SourceStrengthReferenceTime
300A,02EB  -  -  X  X  CompensatorDescription
300A,0608  -  -  Z  Z  TreatmentPositionGroupLabel
300A,0609  -  -  U  U  TreatmentPositionGroupUID
300A,0611  -  -  Z  Z  RTAccessoryHolderSlotID
300A,0615  -  -  Z  Z  RTAccessoryDeviceSlotID
300A,0619  -  -  Z  Z  RadiationDoseIdentificationLabel
300A,0623  -  -  Z  Z  RadiationDoseInVivoMeasurementLabel
300A,062A  -  -  Z  Z  RTToleranceSetLabel
300A,0650  -  -  U  U  PatientSetupUID
300A,0676  -  -  X  X  EquipmentFrameOfReferenceDescription
300A,067C  -  -  Z  Z  RadiationGenerationModeLabel
300A,067D  -  -  Z  Z  RadiationGenerationModeDescription
300A,0700  -  -  U  U  TreatmentSessionUID
300A,0734  -  -  Z  Z  TreatmentToleranceViolationDescription
300A,0736  -  -  Z  Z  TreatmentToleranceViolationDateTime
300A,073A  -  -  Z  Z  RecordedRTControlPointDateTime
300A,0741  -  -  Z  Z  InterlockDateTime
300A,0742  -  -  Z  Z  InterlockDescription
300A,0760  -  -  Z  Z  OverrideDateTime
300A,0783  -  -  Z  Z  InterlockOriginDescription
300A,0785  -  -  -  U  ReferencedTreatmentPositionGroupUID
300A,078E  -  -  -  X  PatientTreatmentPreparationProcedureParameterDescription
300A,0792  -  -  -  X  PatientTreatmentPreparationMethodDescription
300A,0794  -  -  -  X  PatientSetupPhotoDescription
300A,079A  -  -  -  X  DisplacementReferenceLabel
300C,0113  -  X  X  X  ReasonForOmissionDescription
300C,0127  -  -  -  Z  BeamHoldTransitionDateTime
300E,0004  -  -  -  Z  ReviewDate
300E,0005  -  -  -  Z  ReviewTime
300E,0008  -  X  X  X  ReviewerName
3010,0006  -  -  U  U  ConceptualVolumeUID
3010,000B  -  -  U  U  ReferencedConceptualVolumeUID
3010,000F  -  -  Z  Z  ConceptualVolumeCombinationDescription
3010,0013  -  -  U  U  ConstituentConceptualVolumeUID
3010,0015  -  -  U  U  SourceConceptualVolumeUID
3010,0017  -  -  Z  Z  ConceptualVolumeDescription
3010,001B  -  -  Z  Z  DeviceAlternateIdentifier
3010,002D  -  -  Z  Z  DeviceLabel
3010,0031  -  -  U  U  ReferencedFiducialsUID
3010,0033  -  -  Z  Z  UserContentLabel
3010,0034  -  -  Z  Z  UserContentLongLabel
3010,0035  -  -  Z  Z  EntityLabel
3010,0036  -  -  X  X  EntityName
3010,0037  -  -  X  X  EntityDescription
3010,0038  -  -  Z  Z  EntityLongLabel
3010,003B  -  -  U  U  RTTreatmentPhaseUID
3010,0043  -  -  Z  Z  ManufacturerDeviceIdentifier
3010,004C  -  -  X  X  IntendedPhaseStartDate
3010,004D  -  -  X  X  IntendedPhaseEndDate
3010,0054  -  -  Z  Z  RTPrescriptionLabel
3010,0056  -  -  X  X  RTTreatmentApproachLabel
3010,005A  -  -  Z  Z  RTPhysicianIntentNarrative
3010,005C  -  -  Z  Z  ReasonForSuperseding
3010,0061  -  -  X  X  PriorTreatmentDoseDescription
3010,006E  -  -  U  U  DosimetricObjectiveUID
3010,006F  -  -  U  U  ReferencedDosimetricObjectiveUID
3010,0077  -  -  Z  X  TreatmentSite
3010,007A  -  -  Z  Z  TreatmentTechniqueNotes
3010,007B  -  -  Z  Z  PrescriptionNotes
3010,007F  -  -  Z  Z  FractionationNotes
3010,0081  -  -  Z  Z  PrescriptionNotesSequence
3010,0085  -  -  -  X  IntendedFractionStartTime
4000,0010  -  X  X  X  Arbitrary
4000,4000  -  X  X  X  TextComments
4008,0040  -  -  -  X  ResultsID
4008,0042  -  X  X  X  ResultsIDIssuer
4008,0100  -  -  -  X  InterpretationRecordedDate
4008,0101  -  -  -  X  InterpretationRecordedTime
4008,0102  -  X  X  X  InterpretationRecorder
4008,0108  -  -  -  X  InterpretationTranscriptionDate
4008,0109  -  -  -  X  InterpretationTranscriptionTime
4008,010A  -  X  X  X  InterpretationTranscriber
4008,010B  -  X  X  X  InterpretationText
4008,010C  -  X  X  X  InterpretationAuthor
4008,0111  -  X  X  X  InterpretationApproverSequence
4008,0112  -  -  -  X  InterpretationApprovalDate
4008,0113  -  -  -  X  InterpretationApprovalTime
4008,0114  -  X  X  X  PhysicianApprovingInterpretation
4008,0115  -  X  X  X  InterpretationDiagnosisDescription
4008,0118  -  X  X  X  ResultsDistributionListSequence
4008,0119  -  X  X  X  DistributionName
4008,011A  -  X  X  X  DistributionAddress
4008,0200  -  -  -  X  InterpretationID
4008,0202  -  X  X  X  InterpretationIDIssuer
4008,0300  -  X  X  X  Impressions
4008,4000  -  X  X  X  ResultsComments
FFFA,FFFA  -  X  X  X  DigitalSignaturesSequence
FFFC,FFFC  -  -  -  X  DataSetTrailingPadding
"""


@dataclass(frozen=True)
class TagRange:
    """A block of tags the standard names with ``xx`` (a repeating group)."""

    group_from: int
    group_to: int
    element_from: int
    element_to: int

    def __contains__(self, tag: int) -> bool:
        group, element = tag >> 16, tag & 0xFFFF
        return (
            self.group_from <= group <= self.group_to
            and self.element_from <= element <= self.element_to
        )


_RANGES_2023B = (
    TagRange(0x5000, 0x50FF, 0x0000, 0xFFFF),  # Curve Data
    TagRange(0x6000, 0x60FF, 0x3000, 0x3000),  # Overlay Data
    TagRange(0x6000, 0x60FF, 0x4000, 0x4000),  # Overlay Comments
)


@dataclass(frozen=True)
class Profile:
    """The basic profile of one edition: what it removes, empties and remaps."""

    version: str
    remove: frozenset[int]
    empty: frozenset[int]
    new_uids: frozenset[int]
    removed_ranges: tuple[TagRange, ...]

    @property
    def method(self) -> str:
        """The edition's name as written into Deidentification Method (0012,0063)."""
        if self.version == "2008":
            return "PS 3.15-2008 Table E.1-1"
        return f"PS 3.15-{self.version} Table E.1-1 Basic Profile"

    def action(self, tag: int) -> str:
        for code, tags in ((REMOVE, self.remove), (EMPTY, self.empty), (NEW_UID, self.new_uids)):
            if tag in tags:
                return code
        if any(tag in r for r in self.removed_ranges):
            return REMOVE
        return UNTOUCHED


def _rows() -> dict[int, tuple[str, ...]]:
    rows: dict[int, tuple[str, ...]] = {}
    for line in _TABLE.splitlines():
        fields = line.split()
        if len(fields) < 1 + len(VERSIONS) or fields[0].startswith("#"):
            continue
        tag = int(fields[0].replace(",", ""), 16)
        rows[tag] = tuple(fields[1 : 1 + len(VERSIONS)])
    return rows


@cache
def profile(version: str = DEFAULT_VERSION) -> Profile:
    """The basic profile of ``version`` (ValueError for an edition not offered)."""
    if version not in VERSIONS:
        raise ValueError(f"Unknown specific version of the DICOM standard: {version}")
    column = VERSIONS.index(version)
    by_action: dict[str, set[int]] = {REMOVE: set(), EMPTY: set(), NEW_UID: set()}
    for tag, actions in _rows().items():
        code = actions[column]
        if code in by_action:
            by_action[code].add(tag)
    return Profile(
        version,
        frozenset(by_action[REMOVE]),
        frozenset(by_action[EMPTY]),
        frozenset(by_action[NEW_UID]),
        _RANGES_2023B if version == "2023b" else (),
    )


# ---- the options of PS3.15 E.3 that dicomhub offers beyond Orthanc ---------------------
RETAIN_LONGITUDINAL = "RetainLongitudinalTemporalInformation"
RETAIN_PATIENT_CHARACTERISTICS = "RetainPatientCharacteristics"
RETAIN_DEVICE_IDENTITY = "RetainDeviceIdentity"
RETAIN_INSTITUTION_IDENTITY = "RetainInstitutionIdentity"
RETAIN_UIDS = "RetainUIDs"
RETAIN_SAFE_PRIVATE = "RetainSafePrivate"  # see dicomhub.dicom.safe_private
CLEAN_DESCRIPTORS = "CleanDescriptors"  # see dicomhub.dicom.descriptors
#: Options of the standard that need judgement on structured content, graphics or
#: pixels: refused rather than faked.
NOT_OFFERED = (
    "CleanStructuredContent",
    "CleanGraphics",
    "CleanPixelData",
    "CleanRecognizableVisualFeatures",
    "RetainLongitudinalTemporalInformationModifiedDates",
)

#: The attributes each "retain" option keeps (its column's ``K`` entries in PS3.15
#: Table E.1-1 for the attributes the basic profile would otherwise touch).
RETAINED: dict[str, frozenset[int]] = {
    RETAIN_PATIENT_CHARACTERISTICS: frozenset(
        (
            0x00100040,  # Patient's Sex
            0x00101010,  # Patient's Age
            0x00101020,  # Patient's Size
            0x00101030,  # Patient's Weight
            0x00102160,  # Ethnic Group
            0x001021A0,  # Smoking Status
            0x001021C0,  # Pregnancy Status
            0x00102203,  # Patient's Sex Neutered
        )
    ),
    RETAIN_DEVICE_IDENTITY: frozenset(
        (
            0x00081010,  # Station Name
            0x00181000,  # Device Serial Number
            0x00181002,  # Device UID
            0x00181004,  # Plate ID
            0x00181005,  # Generator ID
            0x00181007,  # Cassette ID
            0x00181008,  # Gantry ID
            0x0018700A,  # Detector ID
        )
    ),
    RETAIN_INSTITUTION_IDENTITY: frozenset(
        (
            0x00080080,  # Institution Name
            0x00080081,  # Institution Address
            0x00080082,  # Institution Code Sequence
            0x00081040,  # Institutional Department Name
            0x00081041,  # Institutional Department Type Code Sequence
        )
    ),
}

#: The Value Representations of dates and times: what the "Retain Longitudinal
#: Temporal Information with Full Dates" option keeps.
TEMPORAL_VRS = frozenset(("DA", "DT", "TM"))
OPTIONS = (
    RETAIN_LONGITUDINAL,
    RETAIN_PATIENT_CHARACTERISTICS,
    RETAIN_DEVICE_IDENTITY,
    RETAIN_INSTITUTION_IDENTITY,
    RETAIN_UIDS,
    RETAIN_SAFE_PRIVATE,
    CLEAN_DESCRIPTORS,
)


def temporal_tags(version: str = DEFAULT_VERSION) -> frozenset[int]:
    """The dates and times the basic profile of ``version`` removes or empties."""
    from pydicom.datadict import dictionary_VR

    found = set()
    chosen = profile(version)
    for tag in chosen.remove | chosen.empty:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if vr in TEMPORAL_VRS:
            found.add(tag)
    return frozenset(found)


def descriptor_tags(version: str = DEFAULT_VERSION) -> frozenset[int]:
    """The Clean Descriptors attributes that the basic profile of ``version`` touches
    (the others it leaves alone anyway, so the option does not clean them either)."""
    from .descriptors import descriptor_tags as all_descriptors

    chosen = profile(version)
    return frozenset(t for t in all_descriptors() if chosen.action(t) != UNTOUCHED)
