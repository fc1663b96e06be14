"""Writing and reading attachment bytes, with Orthanc's optional zlib compression.

Orthanc's compressed format ("zlib with size") is the uncompressed size as a
little-endian 64-bit integer followed by a zlib stream; we keep the same layout so
a storage folder means the same thing to both servers.
"""

from __future__ import annotations

import hashlib
import struct
import uuid as uuidlib
import zlib
from typing import BinaryIO

from ..store.index.records import AttachmentRow
from ..store.storage.base import StorageArea
from .enums import Compression
from .errors import CorruptedFile


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def compress(data: bytes) -> bytes:
    return struct.pack("<Q", len(data)) + zlib.compress(data)


def decompress(data: bytes) -> bytes:
    if len(data) < 8:
        raise CorruptedFile("compressed attachment is too short")
    size = struct.unpack("<Q", data[:8])[0]
    try:
        out = zlib.decompress(data[8:])
    except zlib.error as exc:
        raise CorruptedFile(f"cannot decompress attachment: {exc}") from exc
    if len(out) != size:
        raise CorruptedFile("decompressed attachment has the wrong size")
    return out


def prepare(
    storage: StorageArea, content_type: int, data: bytes, compressed: bool, revision: int = 0
) -> AttachmentRow:
    """Stage ``data`` in storage and describe it (the caller publishes or discards it)."""
    md5 = hashlib.md5(data).hexdigest()
    if compressed:
        stored = compress(data)
        stored_md5 = hashlib.md5(stored).hexdigest()
        compression = Compression.ZLIB_WITH_SIZE
    else:
        stored, stored_md5, compression = data, md5, Compression.NONE
    uuid = new_uuid()
    storage.stage(uuid, stored)
    return AttachmentRow(
        content_type=content_type,
        uuid=uuid,
        compressed_size=len(stored),
        uncompressed_size=len(data),
        compression=int(compression),
        uncompressed_md5=md5,
        compressed_md5=stored_md5,
        revision=revision,
    )


def open_as_is(storage: StorageArea, att: AttachmentRow) -> BinaryIO | None:
    """The stored file open for reading, when its bytes are the attachment's (not
    compressed), so that it can be sent without being read here; else None."""
    if att.compression != Compression.NONE:
        return None
    return storage.open(att.uuid)


def descriptor_as_is(storage: StorageArea, att: AttachmentRow) -> int | None:
    """``open_as_is`` as a bare file descriptor (the caller closes it), where the
    storage area has one: no file object for a file only handed to the kernel."""
    if att.compression != Compression.NONE:
        return None
    return storage.open_descriptor(att.uuid)


def read(storage: StorageArea, att: AttachmentRow) -> bytes:
    raw = storage.read(att.uuid)
    if att.compression == Compression.ZLIB_WITH_SIZE:
        return decompress(raw)
    return raw
