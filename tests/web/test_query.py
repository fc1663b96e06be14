"""Query / retrieve in a real browser: C-FIND on a second dicomhub acting as the
remote modality, then C-MOVE of the answers back to the server behind the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer, free_port, start_server, unused_port
from dicom_factory import make_dicom

pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed", exc_type=ImportError
)
from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    folder = tmp_path_factory.mktemp("query")
    main_port, remote_port = free_port(), free_port()
    remote = start_server(
        folder / "remote",
        DicomAet="REMOTEHUB",
        DicomPort=remote_port,
        DicomModalities={"main": ["MAINHUB", "127.0.0.1", main_port]},
    )
    main = start_server(
        folder / "main",
        DicomAet="MAINHUB",
        DicomPort=main_port,
        DicomModalities={"remote": ["REMOTEHUB", "127.0.0.1", remote_port]},
    )
    try:
        for n, (name, date) in enumerate((("Far^Fred", "20240105"), ("Far^Fiona", "20230710"))):
            answer = remote.client.post(
                "/instances",
                content=make_dicom(
                    patient_id=f"QR-{n}", patient_name=name, StudyDate=date, modality="MR"
                ),
            )
            assert answer.status_code == 200
        yield main, remote
    finally:
        main.stop()
        remote.stop()


def test_query_and_retrieve(
    page: Page, pair: tuple[RunningServer, RunningServer], screenshots: Path
) -> None:
    main, remote = pair
    page.goto(f"{main.url}/app/#/query")
    form = page.get_by_role("search", name="Query a modality")
    form.get_by_label("Remote modality", exact=True).select_option("remote")
    form.get_by_label("Patient name", exact=True).fill("far")
    page.get_by_role("button", name="Query", exact=True).click()
    expect(page.get_by_text("remote found 2 studies.")).to_be_visible()
    rows = page.locator("#answer-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#answer-table")).to_contain_text("Far Fred")
    expect(page.locator("#answer-table")).to_contain_text("2023-07-10")

    form.get_by_label("Study date from", exact=True).fill("2024-01-01")
    page.get_by_role("button", name="Query", exact=True).click()
    expect(page.get_by_text("remote found 1 study.")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("QR-0")
    page.screenshot(path=str(screenshots / "explorer-query.png"))

    assert main.client.get("/studies").json() == []
    rows.first.get_by_role("button", name="Retrieve study 1").click()
    expect(rows.first.get_by_role("status")).to_contain_text("Retrieved", timeout=30_000)
    [study] = main.client.get("/studies").json()
    assert (
        main.client.get(f"/studies/{study}").json()["PatientMainDicomTags"]["PatientID"] == "QR-0"
    )
    rows.first.get_by_role("link", name="open the study").click()
    expect(page).to_have_url(re.compile(f"#/studies/{study}$"))
    expect(page.get_by_role("heading", level=2)).to_have_text("Far Fred — Test study")


def test_query_errors_are_explained(page: Page, tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "alone", DicomModalities={"ghost": ["GHOST", "127.0.0.1", unused_port()]}
    )
    try:
        page.goto(f"{server.url}/app/#/query")
        page.get_by_role("button", name="Query", exact=True).click()
        status = page.locator(".panel").get_by_role("status")
        expect(status).to_have_attribute("data-kind", "error", timeout=30_000)
        expect(status).not_to_have_text("Querying ghost…")
    finally:
        server.stop()
