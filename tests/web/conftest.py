"""Browser fixtures: Debian's Chromium driven by Playwright against a real dicomhub.

The tests skip (not fail) when Playwright or a Chromium binary is missing, so a
machine without a browser still runs the rest of the suite. Chromium is never
downloaded: ``DICOMHUB_CHROMIUM`` or ``/usr/bin/chromium`` (Debian's package).
Screenshots go to ``DICOMHUB_SCREENSHOTS`` when it is set (``docs/images`` to
refresh the documentation), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import RunningServer, start_server
from dicom_factory import make_dataset, to_bytes
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright

    # a shared 2-core machine can be slow: waiting longer costs nothing when all is well
    expect.set_options(timeout=15_000)
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]


def chromium_path() -> str | None:
    wanted = os.environ.get("DICOMHUB_CHROMIUM")
    for candidate in (wanted, "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip("playwright is not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("DICOMHUB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class PageErrors(list):
    """Uncaught script errors of a page: a test fails if the explorer throws."""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors = PageErrors()
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.errors = errors  # type: ignore[attr-defined]
    yield opened
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@dataclass
class Archive:
    """A running server and what was put in it (ids by name)."""

    server: RunningServer
    studies: dict[str, str] = field(default_factory=dict)
    series: dict[str, str] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> httpx.Client:
        return self.server.client

    @property
    def app(self) -> str:
        return f"{self.server.url}/app/"

    def upload(self, data: bytes) -> dict[str, Any]:
        response = self.client.post("/instances", content=data)
        assert response.status_code == 200, response.text
        return response.json()


FILLERS = 30


def image(rows: int, columns: int, seed: int) -> bytes:
    y, x = np.mgrid[0:rows, 0:columns]
    return ((x * 37 + y * 11 + seed * 97) % 4096).astype(np.uint16).tobytes()


def fill(archive: Archive) -> None:
    """30 one-image studies plus two patients with richer studies."""
    for n in range(FILLERS):
        archive.upload(
            to_bytes(
                make_dataset(
                    patient_id=f"FILL{n:03d}",
                    patient_name=f"Filler^Number{n:03d}",
                    StudyDate=f"2023{1 + n % 12:02d}{1 + n % 28:02d}",
                    StudyDescription=f"Filler study {n:03d}",
                    AccessionNumber=f"FACC{n:03d}",
                )
            )
        )
    study = generate_uid()
    for series_number, (modality, count) in enumerate((("MR", 3), ("MR", 1)), start=1):
        series = generate_uid()
        for index in range(count):
            ds = make_dataset(
                patient_id="WEB-ALICE",
                patient_name="Smith^Alice",
                study_uid=study,
                series_uid=series,
                modality=modality,
                rows=32,
                columns=32,
                StudyDate="20240315",
                StudyDescription="Brain MRI",
                AccessionNumber="ACC-ALICE",
                SeriesNumber=str(series_number),
                SeriesDescription=f"Sequence {series_number}",
                InstanceNumber=str(index + 1),
            )
            ds.PixelData = image(32, 32, index)
            if series_number == 1 and index == 0:
                code = Dataset()
                code.CodeValue = "BRN1"
                code.CodingSchemeDesignator = "99WEB"
                code.CodeMeaning = "Brain survey"
                ds.ProcedureCodeSequence = [code]
            if series_number == 2:
                ds.NumberOfFrames = 3
                ds.PixelData = b"".join(image(32, 32, frame) for frame in range(3))
            answer = archive.upload(to_bytes(ds))
            archive.instances[f"alice-{series_number}-{index + 1}"] = answer["ID"]
            archive.series[f"alice-{series_number}"] = answer["ParentSeries"]
            archive.studies["alice"] = answer["ParentStudy"]
    answer = archive.upload(
        to_bytes(
            make_dataset(
                patient_id="WEB-BOB",
                patient_name="Jones^Bob",
                modality="CT",
                StudyDate="20220610",
                StudyDescription="Chest CT",
                AccessionNumber="ACC-BOB",
            )
        )
    )
    archive.studies["bob"] = answer["ParentStudy"]
    labelled = archive.client.put(f"/studies/{archive.studies['bob']}/labels/followup")
    assert labelled.status_code == 200


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    server = start_server(tmp_path_factory.mktemp("explorer"))
    filled = Archive(server)
    try:
        fill(filled)
        yield filled
    finally:
        server.stop()
