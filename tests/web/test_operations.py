"""The operations pages in a real browser: jobs (live, pause/resume/cancel/
resubmit), changes, system, modalities and peers (echo), protect, send."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import RunningServer, free_port, start_server, unused_port
from dicom_factory import make_dicom
from pydicom.uid import generate_uid
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed", exc_type=ImportError
)
from playwright.sync_api import Page, expect  # noqa: E402


@dataclass
class SlowScp:
    """A pynetdicom C-STORE SCP whose answers take ``delay`` seconds each."""

    port: int
    aet: str = "WEBSCP"
    delay: float = 0.0
    received: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_store(self, event: evt.Event) -> int:
        time.sleep(self.delay)
        with self.lock:
            self.received.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000


@dataclass
class Site:
    server: RunningServer
    second: RunningServer
    scp: SlowScp
    study: str
    patient: str
    sops: list[str]

    @property
    def client(self) -> httpx.Client:
        return self.server.client

    @property
    def app(self) -> str:
        return f"{self.server.url}/app/"


INSTANCES = 34  # more than one batch of 16 per association: a job pauses between batches


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("operations")
    scp = SlowScp(free_port())
    ae = AE(ae_title=scp.aet)
    ae.supported_contexts = AllStoragePresentationContexts
    ae.add_supported_context(Verification)
    listener = ae.start_server(
        ("127.0.0.1", scp.port), block=False, evt_handlers=[(evt.EVT_C_STORE, scp.on_store)]
    )
    second = start_server(folder / "second")
    server = start_server(
        folder / "main",
        DicomModalities={"webscp": [scp.aet, "127.0.0.1", scp.port]},
        OrthancPeers={"second": {"Url": second.url}},
    )
    try:
        study_uid, series_uid = generate_uid(), generate_uid()
        sops = []
        for _ in range(INSTANCES):
            sop = generate_uid()
            answer = server.client.post(
                "/instances",
                content=make_dicom(
                    patient_id="OPS-1",
                    patient_name="Ops^Olga",
                    study_uid=study_uid,
                    series_uid=series_uid,
                    sop_uid=sop,
                ),
            ).json()
            sops.append(sop)
        yield Site(server, second, scp, answer["ParentStudy"], answer["ParentPatient"], sops)
    finally:
        server.stop()
        second.stop()
        listener.shutdown()


def submit_store(site: Site) -> str:
    answer = site.client.post(
        "/modalities/webscp/store", json={"Resources": [site.study], "Asynchronous": True}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


def job_state(site: Site, job_id: str) -> str:
    return site.client.get(f"/jobs/{job_id}").json()["State"]


def wait_state(site: Site, job_id: str, states: set[str], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = job_state(site, job_id)
        if state in states:
            return state
        time.sleep(0.1)
    return job_state(site, job_id)


def test_jobs_live_pause_resume(page: Page, site: Site, screenshots: Path) -> None:
    site.scp.delay = 0.15
    try:
        page.goto(f"{site.app}#/jobs")
        expect(page.locator("#jobs-live")).to_contain_text("updated")
        job_id = submit_store(site)
        row = page.locator(f'tr[data-job="{job_id}"]')
        # the page updates by itself: the new job appears and starts running
        expect(row.locator(".job-state")).to_have_text(re.compile("Pending|Running"))
        expect(row).to_contain_text("DicomModalityStore")
        page.screenshot(path=str(screenshots / "explorer-jobs.png"))
        row.get_by_role("button", name=f"Pause job {job_id}").click()
        expect(row.locator(".job-state")).to_have_text("Paused")
        assert job_state(site, job_id) == "Paused"
        row.get_by_role("button", name=f"Resume job {job_id}").click()
        expect(row.locator(".job-state")).to_have_text(re.compile("Pending|Running|Success"))
        site.scp.delay = 0.0
        expect(row.locator(".job-state")).to_have_text("Success", timeout=30_000)
        expect(row.locator("progress")).to_have_attribute("value", "100")
        assert job_state(site, job_id) == "Success"
        expect(row.get_by_role("button")).to_have_count(0)
    finally:
        site.scp.delay = 0.0


def test_jobs_cancel_and_resubmit(page: Page, site: Site) -> None:
    site.scp.delay = 0.15
    try:
        page.goto(f"{site.app}#/jobs")
        job_id = submit_store(site)
        row = page.locator(f'tr[data-job="{job_id}"]')
        expect(row.get_by_role("button", name=f"Cancel job {job_id}")).to_be_visible()
        row.get_by_role("button", name=f"Cancel job {job_id}").click()
        expect(row.locator(".job-state")).to_have_text("Failure")
        assert wait_state(site, job_id, {"Failure"}) == "Failure"
        expect(row).to_contain_text(re.compile("cancel", re.IGNORECASE))
        site.scp.delay = 0.0
        row.get_by_role("button", name=f"Resubmit job {job_id}").click()
        expect(row.locator(".job-state")).to_have_text("Success", timeout=30_000)
        assert job_state(site, job_id) == "Success"
    finally:
        site.scp.delay = 0.0


def test_send_a_study_to_a_modality_and_to_a_peer(page: Page, site: Site) -> None:
    site.scp.received.clear()
    page.goto(f"{site.app}#/studies/{site.study}")
    page.get_by_label("Send this study to").select_option(label="webscp")
    page.get_by_role("button", name="Send", exact=True).click()
    send_panel = page.locator(".panel").filter(has_text="Send this study to")
    expect(send_panel.get_by_role("status")).to_have_text(
        "Sending to webscp: done.", timeout=30_000
    )
    assert sorted(site.scp.received) == sorted(site.sops)

    assert site.second.client.get("/studies").json() == []
    page.get_by_label("Send this study to").select_option(label="second")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(send_panel.get_by_role("status")).to_have_text(
        "Sending to second: done.", timeout=30_000
    )
    assert site.second.client.get("/studies").json() == [site.study]
    assert len(site.second.client.get("/instances").json()) == INSTANCES


def test_send_failure_is_explained(page: Page, tmp_path: Path) -> None:
    closed = unused_port()  # nothing listens there
    server = start_server(
        tmp_path / "lonely", DicomModalities={"nobody": ["NOBODY", "127.0.0.1", closed]}
    )
    try:
        answer = server.client.post("/instances", content=make_dicom(patient_id="OPS-2")).json()
        page.goto(f"{server.url}/app/#/studies/{answer['ParentStudy']}")
        page.get_by_role("button", name="Send", exact=True).click()
        status = page.locator(".panel").filter(has_text="Send this study to").get_by_role("status")
        expect(status).to_have_text(re.compile(r"^Sending to nobody failed: .+\.$"), timeout=30_000)
        expect(status).to_have_attribute("data-kind", "error")
    finally:
        server.stop()


def test_protect_and_unprotect_a_patient(page: Page, site: Site) -> None:
    page.goto(f"{site.app}#/patients/{site.patient}")
    expect(page.get_by_role("heading", level=2)).to_have_text("Patient Ops Olga")
    protection = page.locator(".panel").filter(has_text="Protection")
    expect(protection.get_by_role("status")).to_contain_text("is not protected")
    protection.get_by_role("button", name="Protect").click()
    expect(protection.get_by_role("status")).to_contain_text("This patient is protected")
    assert site.client.get(f"/patients/{site.patient}/protected").text.strip() == "1"
    protection.get_by_role("button", name="Unprotect").click()
    expect(protection.get_by_role("status")).to_contain_text("is not protected")
    assert site.client.get(f"/patients/{site.patient}/protected").text.strip() == "0"
    expect(page.get_by_role("link", name="Test study")).to_be_visible()


def test_changes_feed(page: Page, site: Site, screenshots: Path) -> None:
    last = site.client.get("/changes", params={"last": ""}).json()
    page.goto(f"{site.app}#/changes")
    rows = page.locator("#change-rows tr")
    expect(rows.first.locator("td").first).to_have_text(str(last["Last"]))
    expect(rows.first).to_contain_text(last["Changes"][0]["ChangeType"])
    shown = rows.count()
    assert shown == min(50, last["Last"])
    seqs = [int(text) for text in page.locator("#change-rows tr td:first-child").all_inner_texts()]
    assert seqs == sorted(seqs, reverse=True)
    page.screenshot(path=str(screenshots / "explorer-changes.png"))
    older = page.get_by_role("button", name="Older changes")
    if last["Last"] > 50:
        older.click()
        expect(rows).to_have_count(min(100, last["Last"]))
        seqs = [
            int(text) for text in page.locator("#change-rows tr td:first-child").all_inner_texts()
        ]
        assert seqs == list(range(last["Last"], last["Last"] - len(seqs), -1))
    else:
        expect(older).to_be_hidden()
    # a resource change links to the resource page
    link = rows.locator("a").first
    target = link.get_attribute("href")
    assert target and re.match(r"#/(patients|studies|series|instances)/", target)


def test_system_and_statistics(page: Page, site: Site, screenshots: Path) -> None:
    stats = site.client.get("/statistics").json()
    system = site.client.get("/system").json()
    page.goto(f"{site.app}#/system")
    panel = page.locator(".panel").filter(has_text="Statistics")
    expect(panel).to_contain_text(f"Instances{stats['CountInstances']}")
    expect(panel).to_contain_text(f"Studies{stats['CountStudies']}")
    expect(page.locator(".panel").filter(has_text="Server")).to_contain_text(system["Version"])
    expect(page.locator(".panel").filter(has_text="Server")).to_contain_text(system["DicomAet"])
    page.screenshot(path=str(screenshots / "explorer-system.png"))


def test_modalities_and_peers_with_echo(page: Page, site: Site, screenshots: Path) -> None:
    page.goto(f"{site.app}#/network")
    modality = page.locator('tr[data-modality="webscp"]')
    expect(modality).to_contain_text(site.scp.aet)
    expect(modality).to_contain_text(f"127.0.0.1:{site.scp.port}")
    modality.get_by_role("button", name="Echo webscp").click()
    expect(modality.get_by_role("status")).to_have_text("webscp answered the DICOM echo.")
    peer = page.locator('tr[data-peer="second"]')
    expect(peer).to_contain_text(site.second.url)
    peer.get_by_role("button", name="Test second").click()
    version = site.second.client.get("/system").json()["Version"]
    expect(peer.get_by_role("status")).to_contain_text("second answered: ")
    expect(peer.get_by_role("status")).to_contain_text(version)
    page.screenshot(path=str(screenshots / "explorer-network.png"))


def test_echo_failure_is_explained(page: Page, site: Site) -> None:
    closed = unused_port()
    added = site.client.put(
        "/modalities/ghost", json={"AET": "GHOST", "Host": "127.0.0.1", "Port": closed}
    )
    assert added.status_code == 200
    try:
        page.goto(f"{site.app}#/network")
        row = page.locator('tr[data-modality="ghost"]')
        row.get_by_role("button", name="Echo ghost").click()
        expect(row.get_by_role("status")).to_have_attribute("data-kind", "error", timeout=30_000)
        expect(row.get_by_role("status")).not_to_have_text("Testing…")
    finally:
        site.client.delete("/modalities/ghost")
