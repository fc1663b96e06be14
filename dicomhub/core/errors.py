"""The one exception hierarchy of dicomhub.

Each error carries Orthanc's error code (``OrthancStatus``), its name
(``OrthancError``) and the HTTP status Orthanc answers with, so that every face
maps it the same way: ``rest/app.py`` to an HTTP error body, ``net/`` to a DIMSE
status.
"""

from __future__ import annotations


class DicomhubError(Exception):
    code = -1
    name = "Internal error"
    http_status = 500

    def __init__(self, details: str | None = None) -> None:
        super().__init__(details or self.name)
        self.details = details


def _error(class_name: str, code: int, name: str, http_status: int) -> type[DicomhubError]:
    return type(
        class_name,
        (DicomhubError,),
        {"code": code, "name": name, "http_status": http_status, "__doc__": name},
    )


InternalError = _error("InternalError", -1, "Internal error", 500)
NotImplementedYet = _error("NotImplementedYet", 2, "Not implemented yet", 501)
ParameterOutOfRange = _error("ParameterOutOfRange", 3, "Parameter out of range", 400)
BadParameterType = _error("BadParameterType", 5, "Bad type for a parameter", 400)
BadSequenceOfCalls = _error("BadSequenceOfCalls", 6, "Bad sequence of calls", 400)
InexistentItem = _error("InexistentItem", 7, "Accessing an inexistent item", 404)
BadRequest = _error("BadRequest", 8, "Bad request", 400)
NetworkProtocol = _error("NetworkProtocol", 9, "Error in the network protocol", 500)
DatabaseError = _error("DatabaseError", 11, "Error with the database engine", 500)
UriSyntax = _error("UriSyntax", 12, "Badly formatted URI", 400)
InexistentFile = _error("InexistentFile", 13, "Inexistent file", 404)
CannotWriteFile = _error("CannotWriteFile", 14, "Cannot write to file", 500)
BadFileFormat = _error("BadFileFormat", 15, "Bad file format", 400)
Timeout = _error("Timeout", 16, "Timeout", 500)
UnknownResource = _error("UnknownResource", 17, "Unknown resource", 404)
FullStorage = _error("FullStorage", 19, "The file storage is full", 507)
CorruptedFile = _error("CorruptedFile", 20, "Corrupted file (e.g. inconsistent MD5 hash)", 500)
InexistentTag = _error("InexistentTag", 21, "Inexistent tag", 404)
ReadOnly = _error("ReadOnly", 22, "Cannot modify a read-only data structure", 403)
UnknownDicomTag = _error("UnknownDicomTag", 27, "Unknown DICOM tag", 400)
BadJson = _error("BadJson", 28, "Cannot parse a JSON document", 400)
Unauthorized = _error("Unauthorized", 29, "Bad credentials were provided to an HTTP request", 401)
NotAcceptable = _error(
    "NotAcceptable",
    34,
    "Cannot send a response which is acceptable according to the Accept HTTP header",
    406,
)
CanceledJob = _error("CanceledJob", 37, "This job was canceled", 500)
BadRange = _error("BadRange", 41, "Incorrect range request", 416)
Revision = _error(
    "Revision",
    43,
    "A bad revision number was provided, which might indicate conflict between multiple writers",
    409,
)
ForbiddenAccess = _error("ForbiddenAccess", 45, "Access to a resource is forbidden", 403)
DuplicateResource = _error("DuplicateResource", 46, "Duplicate resource", 409)
NoPresentationContext = _error(
    "NoPresentationContext",
    2015,
    "DicomUserConnection: No acceptable presentation context for modality",
    500,
)
DicomFindUnavailable = _error(
    "DicomFindUnavailable",
    2016,
    "DicomUserConnection: The C-FIND command is not supported by the remote SCP",
    500,
)
DicomMoveUnavailable = _error(
    "DicomMoveUnavailable",
    2017,
    "DicomUserConnection: The C-MOVE command is not supported by the remote SCP",
    500,
)
CannotOrderSlices = _error(
    "CannotOrderSlices", 2040, "Unable to order the slices of the series", 500
)
