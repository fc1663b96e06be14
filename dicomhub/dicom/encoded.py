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
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_dataset, read_preamble
from pydicom.tag import BaseTag


class EncodedDataset(Dataset):
    """A data set known by its identifying attributes and its encoded bytes.

    Only ``SOPClassUID``, ``SOPInstanceUID`` and ``file_meta`` are decoded; ``payload``
    is the data set in ``file_meta.TransferSyntaxUID``; ``decode()`` gives the whole
    data set when a peer needs another syntax.
    """

    payload: bytes
    source: bytes

    def decode(self) -> Dataset:
        return dcmread(io.BytesIO(self.source))


def _outside_file_meta(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag.group != 0x0002


def split(data: bytes) -> EncodedDataset:
    """``data`` (a DICOM file with its file meta) as an ``EncodedDataset``; ValueError
    when the file meta lacks what a C-STORE needs."""
    stream = io.BytesIO(data)
    read_preamble(stream, False)
    meta = read_dataset(
        stream, is_implicit_VR=False, is_little_endian=True, stop_when=_outside_file_meta
    )
    missing = [
        keyword
        for keyword in (
            "MediaStorageSOPClassUID",
            "MediaStorageSOPInstanceUID",
            "TransferSyntaxUID",
        )
        if keyword not in meta
    ]
    if missing:
        raise ValueError(f"file meta information without {', '.join(missing)}")
    encoded = EncodedDataset()
    encoded.file_meta = FileMetaDataset(meta)
    encoded.SOPClassUID = meta.MediaStorageSOPClassUID
    encoded.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    encoded.payload = data[stream.tell() :]
    encoded.source = data
    return encoded
