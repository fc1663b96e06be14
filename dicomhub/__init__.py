"""dicomhub: a drop-in, Orthanc-compatible DICOM server."""

__version__ = "0.1.0"

#: The Orthanc REST API level dicomhub implements (reported as ``Version`` in /system).
ORTHANC_API_VERSION = "1.12.11"
