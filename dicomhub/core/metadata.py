"""Metadata of patients, studies, series and instances, with Orthanc's revisions.

A metadata item is a string keyed by a number: below 1024 the server's own
(``ReceptionDate``, ``LastUpdate``...), which users may read but not change;
1024..65535 the users', named in the ``UserMetadata`` configuration or by number.

Every write carries an optional expected revision (the ``ETag`` a client read):
a write against an item that changed meanwhile is refused, so two writers cannot
silently overwrite each other. With ``CheckRevisions`` the expectation becomes
mandatory for updates and deletions. Attachments share these rules, so the
revision helpers live here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..dicom.levels import Level
from ..store.index.records import ResourceRow
from .archive import Archive, require_resource
from .enums import USER_METADATA_END, USER_METADATA_START, ChangeType, MetadataType
from .errors import BadParameterType, ForbiddenAccess, InexistentItem, Revision
from .settings import Settings
from .transactions import Transaction

#: What Orthanc takes for a number in a metadata or attachment name: digits with an
#: optional minus sign, spaces around allowed (but then refused as a bad number).
_LOOKS_NUMERIC = re.compile(r"[ \t\n\v\f\r]*-?[0-9]+[ \t\n\v\f\r]*", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
_INT32 = 1 << 31


class ProtectedEntry(ForbiddenAccess):
    """A write to a system metadata item or attachment (Orthanc answers a bare 403)."""


@dataclass(frozen=True)
class Expected:
    """The revision a writer believes current: ``revision`` and the MD5 of the content."""

    revision: int
    md5: str


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def etag(revision: int, md5: str) -> str:
    return f'"{revision}-{md5}"'


def check_revision(current_revision: int, current_md5: str, expected: Expected | None) -> None:
    """Refuse the write when the item is not the one the writer read."""
    if expected is not None and (
        expected.revision != current_revision or expected.md5 != current_md5
    ):
        raise Revision()


def expectation_for_update(settings: Settings, expected: Expected | None) -> Expected | None:
    """With ``CheckRevisions``, an update without a revision may only create the item."""
    if expected is None and settings.check_revisions:
        return Expected(-1, "")  # matches no existing item
    return expected


def expectation_for_delete(settings: Settings, expected: Expected | None) -> Expected | None:
    if expected is None and settings.check_revisions:
        raise Revision("No revision (If-Match) was given, and CheckRevisions is enabled")
    return expected


def parse_number(name: str) -> int | None:
    """The number written in ``name``, None if ``name`` is not written as a number.

    As Orthanc reads these names: ``-?[0-9]+`` is a number (``+1`` is a name); a
    number with spaces around it, or beyond 32 bits, is a bad parameter (400).
    """
    if not _LOOKS_NUMERIC.fullmatch(name):
        return None
    if not _INTEGER.fullmatch(name) or not -_INT32 <= int(name) < _INT32:
        raise BadParameterType("Syntax error in some user-supplied data")
    return int(name)


# ---- names -----------------------------------------------------------------


def is_user_metadata(kind: int) -> bool:
    return USER_METADATA_START <= kind <= USER_METADATA_END


def resolve(settings: Settings, name: str) -> int:
    """The metadata number for a REST name: a number, a built-in or a configured name."""
    number = parse_number(name)
    if number is not None:
        return number
    if name in MetadataType.__members__:
        return int(MetadataType[name])
    if name in settings.user_metadata:
        return settings.user_metadata[name]
    raise InexistentItem()  # as Orthanc: no Details


def name_of(settings: Settings, kind: int) -> str:
    try:
        return MetadataType(kind).name
    except ValueError:
        pass
    for name, number in settings.user_metadata.items():
        if number == kind:
            return name
    return str(kind)


# ---- reads -----------------------------------------------------------------


def list_metadata(archive: Archive, public_id: str, level: Level) -> list[tuple[int, str]]:
    """(number, value) of every metadata item of the resource, by number."""
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        items = session.metadata(row.id)
    return [(kind, items[kind][0]) for kind in sorted(items)]


def get_metadata(
    archive: Archive, public_id: str, level: Level, kind: int
) -> tuple[str, int] | None:
    """(value, revision), or None when the resource has no such item."""
    with archive.read() as session:
        row = require_resource(session, public_id, int(level))
        return session.get_metadata(row.id, kind)


# ---- writes ----------------------------------------------------------------


def _require_user(kind: int) -> None:
    if not is_user_metadata(kind):
        raise ProtectedEntry(f"Metadata {kind} is reserved to the server")


def set_metadata(
    archive: Archive,
    public_id: str,
    level: Level,
    kind: int,
    value: str,
    expected: Expected | None = None,
) -> int:
    """Create or replace a user metadata item; answers its new revision."""
    _require_user(kind)
    expected = expectation_for_update(archive.settings, expected)

    def run(tx: Transaction) -> int:
        row = require_resource(tx.session, public_id, int(level))
        return write_in_transaction(archive, tx, row, kind, value, expected)

    return archive.write(run)


def write_in_transaction(
    archive: Archive,
    tx: Transaction,
    row: ResourceRow,
    kind: int,
    value: str,
    expected: Expected | None = None,
) -> int:
    """Set ``kind`` on ``row`` inside ``tx``, bumping its revision; answers the new one."""
    current = tx.session.get_metadata(row.id, kind)
    if current is None:
        revision = 0  # a new item starts a new sequence, whatever was expected
    else:
        check_revision(current[1], md5_hex(current[0].encode("utf-8")), expected)
        revision = current[1] + 1
    tx.session.set_metadata(row.id, kind, value, revision)
    if is_user_metadata(kind):
        archive.log_change(tx, ChangeType.UpdatedMetadata, row.level, row.public_id)
    return revision


def delete_metadata(
    archive: Archive,
    public_id: str,
    level: Level,
    kind: int,
    expected: Expected | None = None,
) -> bool:
    """Delete a user metadata item; False when the resource had no such item."""
    _require_user(kind)
    expected = expectation_for_delete(archive.settings, expected)

    def run(tx: Transaction) -> bool:
        row = require_resource(tx.session, public_id, int(level))
        current = tx.session.get_metadata(row.id, kind)
        if current is None:
            return False
        check_revision(current[1], md5_hex(current[0].encode("utf-8")), expected)
        tx.session.delete_metadata(row.id, kind)
        archive.log_change(tx, ChangeType.UpdatedMetadata, row.level, row.public_id)
        return True

    return archive.write(run)
