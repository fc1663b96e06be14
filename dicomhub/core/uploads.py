"""Bulk uploads: every DICOM file inside a ZIP archive, one by one.

Members are read one at a time from a file on disk, never the whole archive in
memory; members that are not DICOM (or are folders, or too big to be honest) are
skipped, as Orthanc does.
"""

from __future__ import annotations

import logging
import zipfile
from typing import IO, Any

from .archive import Archive
from .errors import BadFileFormat, DicomhubError, InexistentTag
from .ingest import Origin, store

log = logging.getLogger("dicomhub.upload")

ZIP_MAGIC = b"PK\x03\x04"
MAX_MEMBER_SIZE = 4 << 30
MAX_RATIO = 1000  # a member that inflates more than this is a zip bomb


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def store_zip(archive: Archive, stream: IO[bytes], origin: Origin) -> list[dict[str, Any]]:
    try:
        archive_file = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadFileFormat(f"Cannot read the ZIP archive: {exc}") from exc
    results: list[dict[str, Any]] = []
    with archive_file:
        for info in archive_file.infolist():
            if info.is_dir() or info.file_size == 0:
                continue
            if info.file_size > MAX_MEMBER_SIZE or (
                info.compress_size and info.file_size / max(1, info.compress_size) > MAX_RATIO
            ):
                log.warning("skipping suspicious ZIP member %s", info.filename)
                continue
            try:
                data = archive_file.read(info)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                log.warning("skipping unreadable ZIP member %s: %s", info.filename, exc)
                continue
            try:
                results.append(store(archive, data, origin).to_json())
            except (BadFileFormat, InexistentTag):
                log.info("skipping non-DICOM ZIP member %s", info.filename)
            except DicomhubError:
                raise
    return results
