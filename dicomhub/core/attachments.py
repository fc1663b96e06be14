"""Attachments of patients, studies, series and instances (files kept beside the index).

An attachment is a blob in the storage area described by one index row (sizes,
MD5s, compression, revision). Numbers below 1024 are the server's own (``dicom``
is the instance's file); users attach their files at 1024..65535, named in the
``UserContentType`` configuration or by number.

Replacing an attachment never leaves a window without one: the new blob is staged
first, the rows are swapped in one transaction, and the old blob is trashed before
the commit and purged after it (restored if the transaction fails).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from typing import BinaryIO

from ..dicom.levels import Level
from ..store.index.index import IndexSession
from ..store.index.records import AttachmentRow, ResourceRow
from ..store.storage.filesystem import StorageError
from . import attachments_io
from .archive import Archive, require_resource
from .enums import (
    CONTENT_NAMES,
    USER_CONTENT_END,
    USER_CONTENT_START,
    ChangeType,
    Compression,
    ContentType,
)
from .errors import CannotWriteFile, InexistentFile, InexistentItem, Revision, UnknownResource
from .metadata import (
    Expected,
    ProtectedEntry,
    check_revision,
    expectation_for_delete,
    expectation_for_update,
    parse_number,
)
from .recycling import make_room
from .settings import Settings
from .transactions import Transaction

log = logging.getLogger("dicomhub.attachments")

_BY_NAME = {name: int(number) for number, name in CONTENT_NAMES.items()}
_MIME = {
    ContentType.Dicom: "application/dicom",
    ContentType.DicomAsJson: "application/json",
    ContentType.DicomUntilPixelData: "application/dicom",
}
_EXTENSION = {ContentType.Dicom: ".dcm", ContentType.DicomAsJson: ".json"}
DEFAULT_MIME = "application/octet-stream"


# ---- names -----------------------------------------------------------------


def is_user_content(content_type: int) -> bool:
    return USER_CONTENT_START <= content_type <= USER_CONTENT_END


def resolve(settings: Settings, name: str) -> int:
    """The attachment number for a REST name: a built-in name, a configured name, a number."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name in settings.user_content_types:
        return settings.user_content_types[name][0]
    number = parse_number(name)
    if number is not None:
        return number
    raise InexistentItem()  # as Orthanc: no Details


def name_of(settings: Settings, content_type: int) -> str:
    try:
        return CONTENT_NAMES[ContentType(content_type)]
    except ValueError:
        pass
    for name, (number, _mime) in settings.user_content_types.items():
        if number == content_type:
            return name
    return str(content_type)


def mime_of(settings: Settings, content_type: int) -> str:
    try:
        return _MIME[ContentType(content_type)]
    except ValueError:
        pass
    for number, mime in settings.user_content_types.values():
        if number == content_type and mime:
            return mime
    return DEFAULT_MIME


def default_filename(att: AttachmentRow) -> str:
    """The download name Orthanc gives an attachment: its storage UUID (+ extension)."""
    try:
        return att.uuid + _EXTENSION.get(ContentType(att.content_type), "")
    except ValueError:
        return att.uuid


def is_compressed(att: AttachmentRow) -> bool:
    return att.compression != Compression.NONE


# ---- reads -----------------------------------------------------------------


def list_attachments(archive: Archive, public_id: str, level: Level) -> list[int]:
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        return [att.content_type for att in session.attachments(row.id)]


def _lookup(session: IndexSession, public_id: str, level: Level, content_type: int):  # type: ignore[no-untyped-def]
    row = require_resource(session, public_id, int(level))
    att = session.attachment(row.id, content_type)
    if att is None:
        raise UnknownResource()  # as Orthanc: no Details
    return row, att


def get_info(archive: Archive, public_id: str, level: Level, content_type: int) -> AttachmentRow:
    """The attachment's row, or UnknownResource (as Orthanc answers) when it has none."""
    with archive.read() as session:
        return _lookup(session, public_id, level, content_type)[1]


def open_stored(
    archive: Archive, public_id: str, level: Level, content_type: int
) -> tuple[AttachmentRow, BinaryIO]:
    """The row and an open handle on the blob as stored (possibly compressed).

    The handle stays readable even if a concurrent replacement purges the file.
    """
    storage = archive.storage
    for delay in (0.0, 0.01, 0.05, 0.2):
        time.sleep(delay)
        att = get_info(archive, public_id, level, content_type)
        try:
            return att, storage.open(att.uuid)
        except (StorageError, FileNotFoundError):
            continue  # being replaced: look again once the swap has committed
    raise InexistentFile(f"The file of attachment {content_type} of {public_id} is missing")


def read_data(
    archive: Archive, public_id: str, level: Level, content_type: int
) -> tuple[AttachmentRow, bytes]:
    """The row and the uncompressed content."""
    att, handle = open_stored(archive, public_id, level, content_type)
    with handle:
        raw = handle.read()
    if is_compressed(att):
        return att, attachments_io.decompress(raw)
    return att, raw


def find_info(
    archive: Archive, public_id: str, level: Level, content_type: int
) -> AttachmentRow | None:
    """The attachment's row, None if the (existing) resource has no such attachment."""
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        return session.attachment(row.id, content_type)


def verify_md5(archive: Archive, public_id: str, level: Level, content_type: int) -> bool | None:
    """Whether the stored blob still matches both MD5s recorded at write time.

    None when the resource has no such attachment.
    """
    if find_info(archive, public_id, level, content_type) is None:
        return None
    # The disk is what is verified: the storage cache would hide its corruption.
    att, handle = open_stored(archive, public_id, level, content_type)
    with handle:
        raw = handle.read()
    if hashlib.md5(raw).hexdigest() != att.compressed_md5:
        ok = False
    elif not is_compressed(att):
        ok = True
    else:
        try:
            ok = hashlib.md5(attachments_io.decompress(raw)).hexdigest() == att.uncompressed_md5
        except Exception:  # a corrupted stream is a failed verification
            ok = False
    if not ok:
        log.warning("attachment %s of %s has a bad MD5", content_type, public_id)
    return ok


# ---- writes ----------------------------------------------------------------


def _stage(archive: Archive, content_type: int, data: bytes, compressed: bool) -> AttachmentRow:
    try:
        return attachments_io.prepare(archive.storage, content_type, data, compressed)
    except StorageError as exc:
        raise CannotWriteFile(str(exc)) from exc


def _patient_public_id(session: IndexSession, row: ResourceRow) -> str:
    current = row
    while current.parent_id is not None:
        parent = session.get(current.parent_id)
        assert parent is not None
        current = parent
    return current.public_id


def _swap(
    archive: Archive,
    tx: Transaction,
    row: ResourceRow,
    new: AttachmentRow,
    old: AttachmentRow | None,
) -> AttachmentRow:
    """Replace ``old`` (if any) by the staged ``new`` on ``row``; answers the stored row."""
    session, storage = tx.session, archive.storage
    tx.on_commit(lambda: storage.publish(new.uuid))
    tx.on_rollback(lambda: storage.discard(new.uuid))
    revision = 0
    if old is not None:
        revision = old.revision + 1
        session.delete_attachment(row.id, old.content_type)
        tx.delete_file_on_commit(storage, old.uuid)
    make_room(archive, tx, new.compressed_size, _patient_public_id(session, row))
    stored = dataclasses.replace(new, revision=revision)
    session.add_attachment(row.id, stored)
    if is_user_content(new.content_type):
        archive.log_change(tx, ChangeType.UpdatedAttachment, row.level, row.public_id)
    return stored


def put_attachment(
    archive: Archive,
    public_id: str,
    level: Level,
    content_type: int,
    data: bytes,
    expected: Expected | None = None,
) -> AttachmentRow:
    """Create or replace a user attachment; answers its new row (with its revision)."""
    if not is_user_content(content_type):
        raise ProtectedEntry(f"Attachment {content_type} is reserved to the server")
    expected = expectation_for_update(archive.settings, expected)
    with archive.read() as session:  # fail early, before writing a blob
        require_resource(session, public_id, int(level))
    new = _stage(archive, content_type, data, archive.settings.storage_compression)

    def run(tx: Transaction) -> AttachmentRow:
        row = require_resource(tx.session, public_id, int(level))
        old = tx.session.attachment(row.id, content_type)
        if old is not None:
            check_revision(old.revision, old.uncompressed_md5, expected)
        return _swap(archive, tx, row, new, old)

    try:
        return archive.write(run)
    except BaseException:
        archive.storage.discard(new.uuid)  # harmless if the rollback hook already did
        raise


def may_delete(content_type: int) -> bool:
    """Users may delete their attachments, and the rebuildable DICOM-as-JSON cache."""
    return is_user_content(content_type) or content_type == ContentType.DicomAsJson


def delete_attachment(
    archive: Archive,
    public_id: str,
    level: Level,
    content_type: int,
    expected: Expected | None = None,
) -> bool:
    """Delete an attachment; False when the resource had no such attachment."""
    if not may_delete(content_type):
        raise ProtectedEntry(f"Attachment {content_type} is reserved to the server")
    expected = expectation_for_delete(archive.settings, expected)
    storage = archive.storage

    def run(tx: Transaction) -> bool:
        row = require_resource(tx.session, public_id, int(level))
        old = tx.session.attachment(row.id, content_type)
        if old is None:
            return False
        check_revision(old.revision, old.uncompressed_md5, expected)
        tx.session.delete_attachment(row.id, content_type)
        tx.delete_file_on_commit(storage, old.uuid)
        if is_user_content(content_type):
            archive.log_change(tx, ChangeType.UpdatedAttachment, row.level, row.public_id)
        return True

    return archive.write(run)


def set_compression(
    archive: Archive, public_id: str, level: Level, content_type: int, compressed: bool
) -> None:
    """Store an attachment again, zlib-compressed or not (any attachment, as Orthanc allows)."""
    old, data = read_data(archive, public_id, level, content_type)
    if is_compressed(old) == compressed:
        return
    new = _stage(archive, content_type, data, compressed)

    def run(tx: Transaction) -> AttachmentRow:
        row = require_resource(tx.session, public_id, int(level))
        current = tx.session.attachment(row.id, content_type)
        if current is None:
            raise UnknownResource()
        if current.uuid != old.uuid:  # replaced while we were recompressing it
            raise Revision()
        return _swap(archive, tx, row, new, current)

    try:
        archive.write(run)
    except BaseException:
        archive.storage.discard(new.uuid)
        raise
