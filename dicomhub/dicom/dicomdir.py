"""DICOMDIR (PS3.10 media directory) built with pydicom's FileSet machinery.

The instance files are streamed into the ZIP long before the DICOMDIR is written
(it comes last, as in Orthanc's media archives), so only the directory records are
kept here, never the files: each instance is described by its header alone. We use
``FileSet``'s record tree and encoder (offsets, record linking) but choose the file
IDs ourselves (``IMAGES/IM0`` ...) because Orthanc's flat layout differs from the
``PT000000/ST000000/...`` layout that ``FileSet.write`` would impose, and because
``FileSet.write`` wants every file on disk.
"""

from __future__ import annotations

import datetime
import io

from pydicom import fileset
from pydicom.dataset import Dataset
from pydicom.filebase import DicomFileLike
from pydicom.fileset import FileInstance, FileSet, RecordNode
from pydicom.uid import ExplicitVRLittleEndian

#: Orthanc's File-set ID for the media it writes.
FILE_SET_ID = "ORTHANC_MEDIA"

#: What each record holds, as Orthanc 1.10.1 writes it: ``ALWAYS`` (empty when the
#: file lacks it), ``PRESENT`` (only when the file has it), ``NOW`` (the current
#: date or time when the file lacks it: StudyDate and StudyTime are type 1).
ALWAYS, PRESENT, NOW = "always", "present", "now"
_RECORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "PATIENT": (("PatientName", ALWAYS), ("PatientID", ALWAYS)),
    "STUDY": (
        ("StudyDate", NOW),
        ("StudyTime", NOW),
        ("AccessionNumber", ALWAYS),
        ("StudyDescription", ALWAYS),
        ("StudyInstanceUID", ALWAYS),
        ("StudyID", PRESENT),
    ),
    "SERIES": (("Modality", ALWAYS), ("SeriesInstanceUID", ALWAYS), ("SeriesNumber", PRESENT)),
    "LEAF": (("InstanceNumber", ALWAYS),),
}
#: What the "extended" media add.
_EXTENDED: dict[str, tuple[tuple[str, str], ...]] = {"SERIES": (("SeriesDescription", PRESENT),)}


def _now_value(keyword: str) -> str:
    now = datetime.datetime.now()
    return now.strftime("%Y%m%d") if keyword == "StudyDate" else now.strftime("%H%M%S.%f")


def _record(header: Dataset, record_type: str, spec: tuple[tuple[str, str], ...]) -> Dataset:
    record = Dataset()
    record.DirectoryRecordType = record_type
    non_ascii = False
    for keyword, mode in spec:
        if keyword not in header:
            if mode == ALWAYS:
                setattr(record, keyword, None)
            elif mode == NOW:
                setattr(record, keyword, _now_value(keyword))
            continue
        elem = header.data_element(keyword)
        assert elem is not None
        record.add(elem)
        non_ascii |= not str(elem.value).isascii()
    charset = header.get("SpecificCharacterSet")
    if charset:
        # As Orthanc does: each record declares the character set of its file.
        record.SpecificCharacterSet = charset
    elif non_ascii:
        # Decoded with the default character set; UTF-8 holds it without loss.
        record.SpecificCharacterSet = "ISO_IR 192"
    return record


class DicomDirBuilder:
    """Collects one record chain per instance, then encodes the DICOMDIR once."""

    def __init__(self, extended: bool = False) -> None:
        self.extended = extended
        self._fs = FileSet()
        self._fs.ID = FILE_SET_ID
        self._seen: set[str] = set()

    def add(self, header: Dataset, file_id: list[str]) -> None:
        """Describe the instance whose header is ``header``, stored at ``file_id``."""
        sop_uid = str(header.get("SOPInstanceUID", ""))
        if not sop_uid or sop_uid in self._seen:
            return
        self._seen.add(sop_uid)
        header = _with_defaults(header)
        patient = RecordNode(_record(header, "PATIENT", self._spec("PATIENT")))
        study = RecordNode(_record(header, "STUDY", self._spec("STUDY")))
        series = RecordNode(_record(header, "SERIES", self._spec("SERIES")))
        leaf_type = fileset._four_level_record_type(header)  # pydicom's SOP class table
        leaf_record = _record(header, leaf_type, self._spec("LEAF"))
        if leaf_type != "IMAGE":
            _add_required_keys(leaf_record, header, leaf_type)
        leaf_record.ReferencedFileID = file_id
        leaf_record.ReferencedSOPClassUIDInFile = header.get("SOPClassUID", "")
        leaf_record.ReferencedSOPInstanceUIDInFile = sop_uid
        meta = getattr(header, "file_meta", None)
        syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        leaf_record.ReferencedTransferSyntaxUIDInFile = syntax or ExplicitVRLittleEndian
        leaf = RecordNode(leaf_record)
        leaf.parent = series
        series.parent = study
        study.parent = patient
        # ``FileSet.add_custom`` would also save the dataset to a staging folder; the
        # file is already on its way into the ZIP, so only the record tree is filled.
        instance = FileInstance(leaf)
        leaf.instance = instance
        self._fs._tree.add(leaf)
        self._fs._instances.append(instance)

    def _spec(self, level: str) -> tuple[tuple[str, str], ...]:
        return _RECORDS[level] + (_EXTENDED.get(level, ()) if self.extended else ())

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self._fs._write_dicomdir(DicomFileLike(buffer))
        return buffer.getvalue()


#: Keys a record may hold that would copy a large part of the file (an SR's tree).
_LEFT_OUT_OF_RECORDS = frozenset({"ContentSequence"})


def _add_required_keys(record: Dataset, header: Dataset, record_type: str) -> None:
    """The keys PS3.3 requires in a record of ``record_type`` (an SR DOCUMENT needs its
    completion and verification flags, content date and concept name...), taken from
    the file with pydicom's table of record types. A file lacking them gets an IMAGE
    record, as Orthanc writes for every instance, rather than an incomplete one."""
    recorder = fileset.DIRECTORY_RECORDERS.get(record_type)
    try:
        required = recorder(header) if recorder is not None else None
    except (ValueError, AttributeError, KeyError, TypeError):
        required = None
    if required is None:
        record.DirectoryRecordType = "IMAGE"
        return
    for elem in required:
        if elem.keyword not in _LEFT_OUT_OF_RECORDS and elem.tag not in record:
            record.add(elem)


def _with_defaults(header: Dataset) -> Dataset:
    """The keys pydicom's record tree needs (PatientID, UIDs) even when absent."""
    if "PatientID" in header and "StudyInstanceUID" in header and "SeriesInstanceUID" in header:
        return header
    copy = Dataset(header)
    copy.file_meta = getattr(header, "file_meta", Dataset())
    for keyword in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
        if keyword not in copy:
            setattr(copy, keyword, "")
    return copy
