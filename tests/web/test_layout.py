"""Responsive and accessible: every page at 1280x800 and at tablet width
(768x1024) fits the window, names every control, and works from the keyboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Archive

pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed", exc_type=ImportError
)
from playwright.sync_api import Browser, Page, expect  # noqa: E402

VIEWPORTS = {"desktop": (1280, 800), "tablet": (768, 1024)}

#: Controls without an accessible name, and elements wider than the window.
AUDIT = """() => {
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const unnamed = [];
  for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
    if (el.type === 'hidden' || el.closest('[hidden], dialog:not([open])')) continue;
    const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || (el.textContent || '').trim() || el.title;
    if (!named) unnamed.push(el.outerHTML.slice(0, 120));
  }
  const images = [...document.querySelectorAll('img')].filter((img) => !img.alt).map((img) => img.src);
  const wide = document.scrollingElement.scrollWidth > window.innerWidth + 1;
  const overflowing = [...document.querySelectorAll('main *')]
    .filter((el) => visible(el) && !el.closest('.table-wrap') && el.getBoundingClientRect().right > window.innerWidth + 1)
    .map((el) => el.tagName + '.' + el.className).slice(0, 5);
  return { unnamed, images, wide, overflowing };
}"""


def pages(archive: Archive) -> dict[str, tuple[str, Callable[[Page], None]]]:
    def list_ready(page: Page) -> None:
        expect(page.locator("#list-status")).to_contain_text("Studies 1 to")

    def heading(text: str) -> Callable[[Page], None]:
        return lambda page: expect(page.get_by_role("heading", level=2)).to_contain_text(text)

    patient = archive.client.get(f"/studies/{archive.studies['alice']}").json()["ParentPatient"]
    return {
        "studies": ("", list_ready),
        "patient": (f"#/patients/{patient}", heading("Patient Smith Alice")),
        "study": (f"#/studies/{archive.studies['alice']}", heading("Brain MRI")),
        "series": (f"#/series/{archive.series['alice-1']}", heading("Series MR")),
        "instance": (f"#/instances/{archive.instances['alice-2-1']}", heading("Instance 1")),
        "jobs": ("#/jobs", lambda page: expect(page.locator("#jobs-live")).to_contain_text("job")),
        "changes": (
            "#/changes",
            lambda page: expect(page.locator("#change-rows tr")).not_to_have_count(0),
        ),
        "network": ("#/network", heading("Modalities and peers")),
        "system": ("#/system", lambda page: expect(page.locator(".panel")).to_have_count(2)),
        "query": ("#/query", heading("Query and retrieve")),
    }


PAGE_NAMES = [
    "studies",
    "patient",
    "study",
    "series",
    "instance",
    "jobs",
    "changes",
    "network",
    "system",
    "query",
]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("name", PAGE_NAMES)
def test_page_fits_and_names_its_controls(
    browser: Browser, archive: Archive, screenshots: Path, viewport: str, name: str
) -> None:
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        target, ready = pages(archive)[name]
        page.goto(archive.app + target)
        ready(page)
        page.wait_for_load_state("networkidle")
        audit = page.evaluate(AUDIT)
        assert audit["unnamed"] == [], audit["unnamed"]
        assert audit["images"] == [], audit["images"]
        assert not audit["wide"], f"the page scrolls sideways: {audit['overflowing']}"
        assert audit["overflowing"] == []
        if viewport == "tablet" and name in ("studies", "study"):
            page.screenshot(path=str(screenshots / f"explorer-{name}-tablet.png"))
        assert errors == []
    finally:
        context.close()


def test_keyboard_search_and_open(page: Page, archive: Archive) -> None:
    page.goto(archive.app)
    expect(page.locator("#list-status")).to_contain_text("Studies 1 to")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Patient name", exact=True)).to_be_focused()
    page.keyboard.type("jones")
    page.keyboard.press("Enter")
    expect(page.locator("#list-status")).to_have_text("Studies 1 to 1 of 1.")
    # the row's link is reachable with Tab and opens the study with Enter
    link = page.get_by_role("link", name="Jones Bob")
    link.focus()
    # leaving the search field may refresh the list (its change event): focus the
    # link again once the page is idle, so Enter reaches the link that stays
    page.wait_for_load_state("networkidle")
    link.focus()
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=2)).to_have_text("Jones Bob — Chest CT")
    expect(page.get_by_role("heading", level=2)).to_be_focused()
    expect(page.locator(".menu a[aria-current=page]")).to_have_text("Studies")


def test_sort_headers_are_buttons_with_state(page: Page, archive: Archive) -> None:
    page.goto(archive.app)
    expect(page.locator("#list-status")).to_contain_text("Studies 1 to")
    date = page.locator('th[data-sort="StudyDate"]')
    expect(date).to_have_attribute("aria-sort", "descending")
    date.get_by_role("button").focus()
    page.keyboard.press("Enter")
    expect(date).to_have_attribute("aria-sort", "ascending")


def test_confirmation_dialog_is_keyboard_safe(page: Page, archive: Archive) -> None:
    study = archive.studies["bob"]
    page.goto(f"{archive.app}#/studies/{study}")
    page.get_by_role("button", name="Delete study").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    # the safe choice has the focus; Escape closes without deleting
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert archive.client.get(f"/studies/{study}").status_code == 200


def test_messages_are_announced(page: Page, archive: Archive) -> None:
    page.goto(archive.app)
    expect(page.locator("#message")).to_have_attribute("role", "alert")
    expect(page.locator("#list-status")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#upload-status")).to_have_attribute("role", "status")
    expect(page.locator("#upload-progress")).to_have_attribute("aria-label", "Upload progress")
