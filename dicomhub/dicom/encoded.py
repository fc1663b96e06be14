"""A stored DICOM file seen as what the network sends: its data set, already encoded.

A C-STORE carries the data set without the file meta information, in the transfer
syntax of its presentation context. When the peer accepted the syntax the file is
stored in, the bytes after the file meta are exactly that payload, so sending needs
neither a parse nor a re-encoding of the whole data set (the costliest steps of a
C-MOVE sub-operation otherwise).
"""

from __future__ import annotations

import io

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import data_element_generator
from pydicom.tag import BaseTag


class EncodedDataset(Dataset):
    """A data set known by its identifying attributes and its encoded bytes.

    Only ``SOPClassUID``, ``SOPInstanceUID`` and ``file_meta`` are decoded; ``payload``
    is the data set in ``file_meta.TransferSyntaxUID``; ``decode()`` gives the whole
    data set when a peer needs another syntax. The plain ``str`` attributes
    ``sop_class_uid``, ``sop_instance_uid`` and ``transfer_syntax`` say the same for
    the sender, which reads them per instance, without pydicom's conversions.
    """

    payload: bytes
    source: bytes
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    _raw_meta: list[RawDataElement]

    def decode(self) -> Dataset:
        return dcmread(io.BytesIO(self.source))

    @property
    def file_meta(self) -> FileMetaDataset:  # type: ignore[override]
        """Built when first asked for: a sender that has the plain attributes never
        needs it. pydicom stores an assigned ``file_meta`` in the instance dictionary
        (``Dataset._set_file_meta``), where this looks first."""
        meta = self.__dict__.get("file_meta")
        if meta is None:
            meta = FileMetaDataset({element.tag: element for element in self._raw_meta})
            self.__dict__["file_meta"] = meta
        return meta


def _outside_file_meta(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002  # (``tag.group`` is a Python property: slower)


#: Where ``split`` puts the two UIDs of the file meta in the data set.
_SOP_CLASS = BaseTag(0x00080016)
_SOP_INSTANCE = BaseTag(0x00080018)


def split(data: bytes) -> EncodedDataset:
    """``data`` (a DICOM file with its file meta) as an ``EncodedDataset``; ValueError
    when the file meta lacks what a C-STORE needs.

    Runs once per instance a C-MOVE sends: the elements stay raw (pydicom converts
    them when read), which costs a third of reading and validating them up front.
    """
    if data[128:132] != b"DICM":
        raise InvalidDicomError("no DICOM prefix 'DICM' at offset 128: not a DICOM file")
    stream = io.BytesIO(data)
    stream.seek(132)
    elements = list(
        data_element_generator(
            stream, is_implicit_VR=False, is_little_endian=True, stop_when=_outside_file_meta
        )
    )
    # plain int keys: pydicom's BaseTag compares in Python, an int in C
    raw = {int(element.tag): element for element in elements}
    missing = [
        keyword
        for tag, keyword in (
            (0x00020002, "MediaStorageSOPClassUID"),
            (0x00020003, "MediaStorageSOPInstanceUID"),
            (0x00020010, "TransferSyntaxUID"),
        )
        if tag not in raw
    ]
    if missing:
        raise ValueError(f"file meta information without {', '.join(missing)}")
    encoded = EncodedDataset(
        {
            _SOP_CLASS: raw[0x00020002]._replace(tag=_SOP_CLASS),
            _SOP_INSTANCE: raw[0x00020003]._replace(tag=_SOP_INSTANCE),
        }
    )
    # plain attributes, set past Dataset.__setattr__ (which looks every name up in the
    # DICOM dictionary first)
    for name, value in (
        ("_raw_meta", elements),
        ("payload", data[stream.tell() :]),
        ("source", data),
        ("sop_class_uid", _uid(raw[0x00020002].value)),
        ("sop_instance_uid", _uid(raw[0x00020003].value)),
        ("transfer_syntax", _uid(raw[0x00020010].value)),
    ):
        object.__setattr__(encoded, name, value)
    return encoded


def _uid(value: bytes | None) -> str:
    """A UI value as stored (trailing NUL or space padding removed)."""
    return (value or b"").rstrip(b"\0 ").decode("ascii", "replace")
