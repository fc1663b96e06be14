"""An in-process archive on real SQLite and a real storage folder, for the tests of
``core`` that need no server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dicomhub.core.archive import Archive
from dicomhub.core.settings import Settings


@pytest.fixture
def make_archive(tmp_path: Path) -> Iterator[Callable[..., Archive]]:
    """``make_archive(**config)``: an archive in ``tmp_path`` with these settings."""
    opened: list[Archive] = []

    def factory(**config: Any) -> Archive:
        settings = {
            "StorageDirectory": str(tmp_path / "storage"),
            "IndexDirectory": str(tmp_path / "index"),
            **config,
        }
        archive = Archive(Settings.from_config(settings))
        opened.append(archive)
        return archive

    yield factory
    for archive in opened:
        archive.close()
