"""Orthanc's numbered vocabularies: change types, metadata and attachment types.

The numbers are part of the compatibility contract (they appear in the REST API
and in Lua), so they are the ones Orthanc uses.
"""

from __future__ import annotations

from enum import IntEnum


class ChangeType(IntEnum):
    CompletedSeries = 1
    Deleted = 2
    NewChildInstance = 3
    NewInstance = 4
    NewPatient = 5
    NewSeries = 6
    NewStudy = 7
    AnonymizedStudy = 8
    AnonymizedSeries = 9
    ModifiedStudy = 10
    ModifiedSeries = 11
    AnonymizedPatient = 12
    ModifiedPatient = 13
    StablePatient = 14
    StableStudy = 15
    StableSeries = 16
    UpdatedAttachment = 17
    UpdatedMetadata = 18
    UpdatedPeers = 19
    UpdatedModalities = 20
    JobSubmitted = 21
    JobSuccess = 22
    JobFailure = 23


class MetadataType(IntEnum):
    IndexInSeries = 1
    ReceptionDate = 2
    RemoteAET = 3
    ExpectedNumberOfInstances = 4
    ModifiedFrom = 5
    AnonymizedFrom = 6
    LastUpdate = 7
    Origin = 8
    TransferSyntax = 9
    SopClassUid = 10
    RemoteIP = 11
    CalledAET = 12
    HttpUsername = 13
    PixelDataOffset = 14
    MainDicomTagsSignature = 15
    MainDicomSequences = 16
    PixelDataVR = 17


#: Metadata below this number are the server's own; users may define 1024..65535.
USER_METADATA_START = 1024
USER_METADATA_END = 65535


class ContentType(IntEnum):
    Dicom = 1
    DicomAsJson = 2
    DicomUntilPixelData = 3


USER_CONTENT_START = 1024
USER_CONTENT_END = 65535

#: REST names of the built-in attachment types.
CONTENT_NAMES = {
    ContentType.Dicom: "dicom",
    ContentType.DicomAsJson: "dicom-as-json",
    ContentType.DicomUntilPixelData: "dicom-until-pixel-data",
}


class Compression(IntEnum):
    NONE = 1
    ZLIB_WITH_SIZE = 2
