"""Metadata and main tags written many rows at a time (one multi-row INSERT per up to
``_ROWS_PER_INSERT`` rows) read back as written one by one would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings
from dicomhub.core.transactions import Transaction
from dicomhub.store.index import index as index_module
from dicomhub.store.index.records import AttachmentRow


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    opened = Archive(
        Settings(
            storage_directory=str(tmp_path / "s"),
            index_directory=str(tmp_path / "i"),
            sync_storage_area=False,
        )
    )
    yield opened
    opened.close()


def _resources(archive: Archive, count: int) -> list[int]:
    def create(tx: Transaction) -> list[int]:
        return [
            tx.session.create_resource(f"res-{i}", 0, None, 0, stable=True) for i in range(count)
        ]

    return archive.write(create)


def test_metadata_rows_over_several_statements(archive: Archive) -> None:
    count = 2 * index_module._ROWS_PER_INSERT + 7  # noqa: SLF001 - three chunks, one short
    ids = _resources(archive, count)
    archive.write(lambda tx: tx.session.set_metadata(ids[0], 1, "old", revision=4))
    rows = [(rid, 1, f"one-{rid}") for rid in ids] + [(rid, 2, f"two-{rid}") for rid in ids]
    archive.write(lambda tx: tx.session.set_metadata_rows(rows))
    with archive.read() as session:
        for rid in ids:
            assert session.metadata(rid) == {
                1: (f"one-{rid}", 4 if rid == ids[0] else 0),  # a revision is kept
                2: (f"two-{rid}", 0),
            }


def test_a_repeated_metadata_row_keeps_the_last_value(archive: Archive) -> None:
    (rid,) = _resources(archive, 1)
    rows = [(rid, 7, "first"), (rid, 8, "other"), (rid, 7, "last")]
    archive.write(lambda tx: tx.session.set_metadata_rows(rows))
    with archive.read() as session:
        assert session.metadata(rid) == {7: ("last", 0), 8: ("other", 0)}


def test_main_tags_written_at_once_replace_older_values(archive: Archive) -> None:
    (rid,) = _resources(archive, 1)
    first = {0x00100010 + i: f"Value^{i}" for i in range(300)}
    archive.write(lambda tx: tx.session.set_main_tags(rid, first))
    second = {0x00100010: "Changed", 0x00081030: "New"}
    archive.write(lambda tx: tx.session.set_main_tags(rid, second))
    with archive.read() as session:
        assert session.main_tags(rid) == {**first, **second}
        # The normalized column follows the value (lookups go through it).
        assert [r.id for r in session.lookup_identifier(0x00100010, "Changed")] == [rid]
        assert session.lookup_identifier(0x00100010, "Value^0") == []


def test_a_resource_and_its_attachment_in_one_statement(archive: Archive) -> None:
    """``Index.resource_attachment`` (downloads, ``/tags``) answers as the session's."""
    _, instance = _resources(archive, 2)  # "res-0", "res-1"
    row = AttachmentRow(1, "0b5e4f4e-6d1a-4f07-9d55-3c1bd2f6c0aa", 10, 12, 1, "a" * 32, "b" * 32, 3)
    archive.write(lambda tx: tx.session.add_attachment(instance, row))
    index = archive.index
    assert index.resource_attachment("res-1", 1) == (0, row)
    assert index.resource_attachment("res-1", 2) == (0, None)  # no such attachment
    assert index.resource_attachment("res-0", 1) == (0, None)
    assert index.resource_attachment("unknown", 1) is None
    with archive.read() as session:
        for public_id, content_type in (("res-1", 1), ("res-1", 2), ("unknown", 1)):
            expected = session.resource_attachment(public_id, content_type)
            assert index.resource_attachment(public_id, content_type) == expected
