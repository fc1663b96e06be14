"""An empty archive on a real SQLite index and storage folder, for the store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings


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
