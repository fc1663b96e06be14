"""The explorer in a real browser: study list, search, sort, drill-down, labels,
upload, download, delete, and the messages a person sees when things go wrong."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import start_server
from dicom_factory import make_dicom

from .conftest import Archive

pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed", exc_type=ImportError
)
from playwright.sync_api import Page, expect  # noqa: E402

PAGE_SIZE = 25


def open_list(page: Page, archive: Archive) -> None:
    page.goto(archive.app)
    expect(page.locator("#list-status")).to_contain_text("Studies 1 to")


def find_studies(archive: Archive, query: dict[str, str], **extra: Any) -> list[dict[str, Any]]:
    body = {"Level": "Study", "Query": query, "Expand": True, **extra}
    response = archive.client.post("/tools/find", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def shown_patient_ids(page: Page) -> list[str]:
    return page.locator("#study-rows tr td:nth-child(3)").all_inner_texts()


def search(page: Page, **fields: str) -> None:
    page.get_by_role("button", name="Clear").click()
    expect(page.locator("#list-status")).to_contain_text("Studies 1 to")
    for label, value in fields.items():
        page.get_by_label(label.replace("_", " "), exact=True).fill(value)
    page.get_by_role("button", name="Search", exact=True).click()


def test_study_list_loads_and_paginates(page: Page, archive: Archive, screenshots: Path) -> None:
    total = archive.client.post("/tools/count-resources", json={"Level": "Study", "Query": {}})
    count = total.json()["Count"]
    assert count > PAGE_SIZE
    open_list(page, archive)
    rows = page.locator("#study-rows tr")
    expect(rows).to_have_count(PAGE_SIZE)
    expect(page.locator("#list-status")).to_have_text(f"Studies 1 to {PAGE_SIZE} of {count}.")
    pages = -(-count // PAGE_SIZE)
    expect(page.locator("#page-info")).to_have_text(f"Page 1 of {pages}")
    stats = archive.client.get("/statistics").json()
    expect(page.locator("#stats")).to_contain_text(f"{stats['CountStudies']} studies")
    # newest first, as the server orders them
    newest = find_studies(
        archive,
        {},
        Limit=1,
        OrderBy=[{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"}],
    )
    expect(rows.first.locator("td").nth(2)).to_have_text(
        newest[0]["PatientMainDicomTags"]["PatientID"]
    )
    page.screenshot(path=str(screenshots / "explorer-studies.png"))
    first_page = set(shown_patient_ids(page))

    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#list-status")).to_have_text(
        f"Studies {PAGE_SIZE + 1} to {min(count, 2 * PAGE_SIZE)} of {count}."
    )
    expect(rows).to_have_count(min(PAGE_SIZE, count - PAGE_SIZE))
    second_page = set(shown_patient_ids(page))
    assert not first_page & second_page
    if pages == 2:
        expect(page.get_by_role("button", name="Next page")).to_be_disabled()
        assert len(first_page | second_page) == count
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#page-info")).to_have_text(f"Page 1 of {pages}")
    expect(page.get_by_role("button", name="Previous page")).to_be_disabled()


@pytest.mark.parametrize(
    ("fields", "query", "labels"),
    [
        ({"Patient_name": "smith"}, {"PatientName": "*smith*"}, []),
        ({"Patient_ID": "WEB-B"}, {"PatientID": "WEB-B*"}, []),
        ({"Accession_number": "FACC00"}, {"AccessionNumber": "FACC00*"}, []),
        ({"Study_description": "chest"}, {"StudyDescription": "*chest*"}, []),
        (
            {"Study_date_from": "2024-03-01", "Study_date_to": "2024-03-31"},
            {"StudyDate": "20240301-20240331"},
            [],
        ),
        ({"Study_date_to": "2022-12-31"}, {"StudyDate": "-20221231"}, []),
        ({"Modality": "mr"}, {"ModalitiesInStudy": "MR"}, []),
        ({"Label": "followup"}, {}, ["followup"]),
    ],
)
def test_search_matches_what_the_server_finds(
    page: Page,
    archive: Archive,
    fields: dict[str, str],
    query: dict[str, str],
    labels: list[str],
) -> None:
    expected = find_studies(archive, query, **({"Labels": labels} if labels else {}))
    assert 0 < len(expected) <= PAGE_SIZE
    open_list(page, archive)
    search(page, **fields)
    count = len(expected)
    expect(page.locator("#list-status")).to_have_text(f"Studies 1 to {count} of {count}.")
    shown = shown_patient_ids(page)
    assert sorted(shown) == sorted(s["PatientMainDicomTags"]["PatientID"] for s in expected)


def test_a_search_without_match_says_so(page: Page, archive: Archive) -> None:
    open_list(page, archive)
    search(page, Patient_name="nobody-has-this-name")
    expect(page.locator("#list-status")).to_have_text("No study matches this search.")
    expect(page.locator("#study-rows tr")).to_have_count(0)


def test_sort_by_modality_and_sizes(page: Page, archive: Archive) -> None:
    open_list(page, archive)
    header = page.locator('th[data-sort="ModalitiesInStudy"]')
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    ordered = find_studies(
        archive,
        {},
        Limit=PAGE_SIZE,
        OrderBy=[{"Type": "DicomTag", "Key": "ModalitiesInStudy", "Direction": "ASC"}],
    )
    expected = [s["PatientMainDicomTags"]["PatientID"] for s in ordered]
    expect(page.locator("#study-rows tr td:nth-child(3)")).to_have_text(expected)
    # each row's size is the study's disk size, filled in after the rows are shown
    first = page.locator("#study-rows tr").first
    study = first.get_attribute("data-study")
    size = first.locator("td.size")
    expect(size).not_to_have_text("")
    stats = archive.client.get(f"/studies/{study}/statistics").json()
    kib = int(stats["DiskSize"]) / 1024
    assert size.inner_text().endswith(("KB", "MB", "bytes"))
    if size.inner_text().endswith("KB"):
        assert size.inner_text() == f"{kib:.1f} KB"


def test_sort_by_column(page: Page, archive: Archive) -> None:
    open_list(page, archive)
    header = page.locator('th[data-sort="PatientID"]')
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    ordered = find_studies(
        archive,
        {},
        Limit=PAGE_SIZE,
        OrderBy=[{"Type": "DicomTag", "Key": "PatientID", "Direction": "ASC"}],
    )
    expected = [s["PatientMainDicomTags"]["PatientID"] for s in ordered]
    expect(page.locator("#study-rows tr td:nth-child(3)")).to_have_text(expected)
    assert expected == sorted(expected, key=str.lower)
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(page.locator('th[data-sort="StudyDate"]')).not_to_have_attribute(
        "aria-sort", re.compile(".")
    )
    ordered = find_studies(
        archive,
        {},
        Limit=PAGE_SIZE,
        OrderBy=[{"Type": "DicomTag", "Key": "PatientID", "Direction": "DESC"}],
    )
    expect(page.locator("#study-rows tr td:nth-child(3)")).to_have_text(
        [s["PatientMainDicomTags"]["PatientID"] for s in ordered]
    )


VIEWER_LOADED = (
    "() => { const i = document.querySelector('.viewer-image');"
    " return i && i.complete && i.naturalWidth > 0; }"
)


def test_open_study_series_and_instance(page: Page, archive: Archive, screenshots: Path) -> None:
    open_list(page, archive)
    page.get_by_role("link", name="Smith Alice").click()
    study_id = archive.studies["alice"]
    expect(page).to_have_url(re.compile(f"#/studies/{study_id}$"))
    expect(page.get_by_role("heading", level=2)).to_have_text("Smith Alice — Brain MRI")
    cards = page.locator(".series")
    expect(cards).to_have_count(2)
    for index in range(2):
        page.wait_for_function(
            "i => { const img = document.querySelectorAll('.series img')[i];"
            " return img && img.complete && img.naturalWidth > 0; }",
            arg=index,
        )
    expect(page.locator(".study-info").first).to_contain_text("ACC-ALICE")
    page.screenshot(path=str(screenshots / "explorer-study.png"))

    page.get_by_role("link", name="MR · Sequence 1").click()
    expect(page).to_have_url(re.compile(f"#/series/{archive.series['alice-1']}$"))
    expect(page.get_by_role("heading", level=2)).to_have_text("Series MR · Sequence 1")
    viewer = page.locator(".viewer-image")
    expect(viewer).to_have_attribute("src", re.compile(archive.instances["alice-1-1"]))
    page.wait_for_function(VIEWER_LOADED)
    slider = page.get_by_label("Image")
    slider.fill("2")
    expect(viewer).to_have_attribute("src", re.compile(archive.instances["alice-1-3"]))
    expect(page.locator(".viewer")).to_contain_text("instance 3 of 3")
    expect(page.locator(".instances li")).to_have_count(3)

    page.get_by_role("link", name="Instance 1", exact=True).click()
    expect(page).to_have_url(re.compile(f"#/instances/{archive.instances['alice-1-1']}$"))
    tree = page.locator("#tag-tree")
    expect(tree.locator('li[data-tag="0010,0010"]')).to_contain_text("PatientName: Smith^Alice")
    expect(tree.locator('li[data-tag="0020,0013"]')).to_contain_text("InstanceNumber: 1")
    sequence = tree.locator('li[data-tag="0008,1032"]')
    expect(sequence.locator("summary")).to_have_text("0008,1032 ProcedureCodeSequence (1 item)")
    meaning = sequence.locator('li[data-tag="0008,0104"]')
    expect(meaning).to_be_hidden()
    sequence.locator("summary").click()
    expect(meaning).to_be_visible()
    expect(meaning).to_have_text("0008,0104 CodeMeaning: Brain survey")
    page.get_by_label("Filter tags").fill("accession")
    expect(tree.locator("> li:visible")).to_have_count(1)
    expect(tree.locator("> li:visible")).to_contain_text("ACC-ALICE")
    tags = archive.client.get(f"/instances/{archive.instances['alice-1-1']}/tags").json()
    page.get_by_label("Filter tags").fill("")
    expect(tree.locator("> li")).to_have_count(len(tags))

    # a multi-frame instance: the slider walks its frames
    multi = archive.instances["alice-2-1"]
    page.goto(f"{archive.app}#/instances/{multi}")
    expect(page.locator(".viewer")).to_contain_text("frame 1 of 3")
    slider = page.get_by_label("Image")
    expect(slider).to_have_attribute("max", "2")
    slider.fill("1")
    expect(page.locator(".viewer-image")).to_have_attribute(
        "src", re.compile(f"{multi}/frames/1/preview")
    )
    page.wait_for_function(VIEWER_LOADED)
    page.screenshot(path=str(screenshots / "explorer-instance.png"), full_page=True)


def test_add_and_remove_a_label(page: Page, archive: Archive) -> None:
    study_id = archive.studies["alice"]
    page.goto(f"{archive.app}#/studies/{study_id}")
    page.get_by_label("New label").fill("not valid!")
    page.get_by_role("button", name="Add label").click()
    expect(page.locator(".panel").filter(has_text="Labels").get_by_role("status")).to_contain_text(
        "only letters, digits"
    )
    assert archive.client.get(f"/studies/{study_id}/labels").json() == []
    page.get_by_label("New label").fill("web_test-1")
    page.get_by_role("button", name="Add label").click()
    expect(page.locator(".labels")).to_contain_text("web_test-1")
    expect(page.get_by_text("Label web_test-1 added.")).to_be_visible()
    assert archive.client.get(f"/studies/{study_id}/labels").json() == ["web_test-1"]

    page.get_by_role("button", name="Remove label web_test-1").click()
    expect(page.get_by_text("Label web_test-1 removed.")).to_be_visible()
    expect(page.locator(".labels")).to_have_text("No label")
    assert archive.client.get(f"/studies/{study_id}/labels").json() == []


def test_upload_with_progress_and_a_refused_file(
    page: Page, archive: Archive, tmp_path: Path
) -> None:
    good = tmp_path / "scan.dcm"
    good.write_bytes(make_dicom(patient_id="WEB-UPLOAD", patient_name="Upload^Una"))
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not DICOM")
    open_list(page, archive)
    page.locator("#files").set_input_files([str(good), str(bad)])
    expect(page.locator("#upload-status")).to_have_text(
        "Upload finished: 1 stored, 1 refused (see below)."
    )
    progress = page.locator("#upload-progress")
    expect(progress).to_be_visible()
    assert progress.evaluate("p => [p.value, p.max]") == [2, 2]
    expect(page.locator("#upload-errors li")).to_have_text(
        ["notes.txt: not a DICOM file (or a damaged one), so it was not stored."]
    )
    found = find_studies(archive, {"PatientID": "WEB-UPLOAD"})
    assert len(found) == 1
    try:
        # the list is refreshed after the upload
        search(page, Patient_ID="WEB-UPLOAD")
        expect(page.locator("#study-rows tr")).to_have_count(1)
        expect(page.locator("#study-rows")).to_contain_text("Upload Una")
    finally:
        archive.client.delete(f"/studies/{found[0]['ID']}")


def test_delete_asks_for_confirmation(page: Page, archive: Archive) -> None:
    answer = archive.upload(make_dicom(patient_id="WEB-DOOMED", patient_name="Doomed^Dan"))
    study_id = answer["ParentStudy"]
    page.goto(f"{archive.app}#/studies/{study_id}")
    page.get_by_role("button", name="Delete study").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("This cannot be undone.")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert archive.client.get(f"/studies/{study_id}").status_code == 200

    page.get_by_role("button", name="Delete study").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("#message")).to_have_text("The study was deleted.")
    expect(page.locator("#studies-view")).to_be_visible()
    assert archive.client.get(f"/studies/{study_id}").status_code == 404


def test_zip_download(page: Page, archive: Archive, tmp_path: Path) -> None:
    study_id = archive.studies["alice"]
    page.goto(f"{archive.app}#/studies/{study_id}")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download ZIP").click()
    saved = tmp_path / "study.zip"
    info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive_file:
        members = [name for name in archive_file.namelist() if not name.endswith("/")]
        first = archive_file.read(members[0])
    instances = archive.client.get(f"/studies/{study_id}/instances").json()
    assert len(members) == len(instances)
    assert first[128:132] == b"DICM"
    with page.expect_download() as single:
        page.goto(f"{archive.app}#/instances/{archive.instances['alice-1-2']}")
        page.get_by_role("link", name="Download DICOM file").click()
    data = Path(single.value.path()).read_bytes()
    assert data == archive.client.get(f"/instances/{archive.instances['alice-1-2']}/file").content
    assert io.BytesIO(data).getbuffer().nbytes > 132


def test_resource_deleted_by_someone_else(page: Page, archive: Archive) -> None:
    answer = archive.upload(make_dicom(patient_id="WEB-GONE", patient_name="Gone^Gina"))
    study_id = answer["ParentStudy"]
    page.goto(f"{archive.app}#/studies/{study_id}")
    expect(page.get_by_role("heading", level=2)).to_have_text("Gone Gina — Test study")
    assert archive.client.delete(f"/studies/{study_id}").status_code == 200
    page.get_by_label("New label").fill("late")
    page.get_by_role("button", name="Add label").click()
    expect(page.locator(".panel").filter(has_text="Labels").get_by_role("status")).to_have_text(
        "This item was not found. It may have been deleted by someone else."
    )
    page.reload()
    expect(page.get_by_role("heading", level=2)).to_have_text("Study not available")
    expect(page.locator("#page-body")).to_have_text(
        "This item was not found. It may have been deleted by someone else."
    )
    expect(page.get_by_role("status").filter(has_text="Loading")).to_have_count(0)


def test_lost_connection_gives_a_message(page: Page, tmp_path: Path) -> None:
    server = start_server(tmp_path / "lost")
    try:
        answer = server.client.post("/instances", content=make_dicom(patient_id="WEB-LOST"))
        study_id = answer.json()["ParentStudy"]
        page.goto(f"{server.url}/app/")
        expect(page.locator("#list-status")).to_have_text("Studies 1 to 1 of 1.")
    finally:
        server.stop()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#message")).to_have_text(
        "Cannot reach the server. Check the network connection and try again."
    )
    expect(page.locator("#list-status")).to_have_text("The studies could not be loaded.")
    expect(page.locator("#study-table")).not_to_have_attribute("aria-busy", "true")
    page.evaluate("id => { location.hash = '#/studies/' + id; }", study_id)
    expect(page.get_by_role("heading", level=2)).to_have_text("Study not available")
    expect(page.locator("#page-body")).to_contain_text("Cannot reach the server")
    page.evaluate("() => { location.hash = '#/jobs'; }")
    expect(page.locator("#jobs-live")).to_contain_text("Cannot reach the server")


def test_upload_a_folder_and_a_zip(page: Page, archive: Archive, tmp_path: Path) -> None:
    folder = tmp_path / "exam"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.dcm").write_bytes(make_dicom(patient_id="WEB-FOLDER", patient_name="Folder^Fay"))
    (folder / "sub" / "b.dcm").write_bytes(
        make_dicom(patient_id="WEB-FOLDER", patient_name="Folder^Fay")
    )
    (folder / "sub" / "readme.txt").write_text("not an image")
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zipped:
        for n in range(3):
            zipped.writestr(f"z{n}.dcm", make_dicom(patient_id="WEB-ZIP", patient_name="Zip^Zoe"))
    open_list(page, archive)
    try:
        page.locator("#folder").set_input_files(str(folder))
        expect(page.locator("#upload-status")).to_have_text(
            "Upload finished: 2 stored, 1 refused (see below)."
        )
        expect(page.locator("#upload-errors li")).to_have_text(
            [re.compile(r"exam/sub/readme\.txt: not a DICOM file")]
        )
        assert len(find_studies(archive, {"PatientID": "WEB-FOLDER"})) == 2
        page.locator("#files").set_input_files(str(bundle))
        expect(page.locator("#upload-status")).to_have_text("Upload finished: 1 file stored.")
        expect(page.locator("#upload-errors li")).to_have_count(0)
        zipped_studies = find_studies(archive, {"PatientID": "WEB-ZIP"})
        assert len(zipped_studies) == 3
    finally:
        for patient in ("WEB-FOLDER", "WEB-ZIP"):
            for study in find_studies(archive, {"PatientID": patient}):
                archive.client.delete(f"/studies/{study['ID']}")


def test_instance_lists_its_attachments(page: Page, archive: Archive) -> None:
    instance = archive.instances["alice-1-2"]
    names = archive.client.get(f"/instances/{instance}/attachments").json()
    assert "dicom" in names
    page.goto(f"{archive.app}#/instances/{instance}")
    block = page.locator(".panel").filter(has=page.get_by_role("heading", name="Attachments"))
    expect(block.get_by_role("link")).to_have_text(names)
    with page.expect_download() as info:
        block.get_by_role("link", name="dicom", exact=True).click()
    data = Path(info.value.path()).read_bytes()
    assert data == archive.client.get(f"/instances/{instance}/file").content


def test_anonymize_a_study(page: Page, archive: Archive) -> None:
    answer = archive.upload(
        make_dicom(patient_id="WEB-SECRET", patient_name="Secret^Sam", StudyDescription="Knee MR")
    )
    study_id = answer["ParentStudy"]
    created: list[str] = []
    try:
        page.goto(f"{archive.app}#/studies/{study_id}")
        form = page.get_by_role("form", name="Anonymize this study")
        form.get_by_label("New patient name (optional)").fill("Anon^Web")
        form.get_by_label("Keep study and series descriptions").check()
        form.get_by_role("button", name="Anonymize").click()
        status = page.locator(".panel").filter(has=form).get_by_role("status")
        expect(status).to_have_text("Anonymized: 1 instance written; open the new study.")
        new_id = status.get_by_role("link").get_attribute("href").rsplit("/", 1)[-1]
        created.append(new_id)
        new = archive.client.get(f"/studies/{new_id}").json()
        assert new["PatientMainDicomTags"]["PatientName"] == "Anon^Web"
        assert new["PatientMainDicomTags"]["PatientID"] != "WEB-SECRET"
        assert new["MainDicomTags"]["StudyDescription"] == "Knee MR"
        assert archive.client.get(f"/studies/{study_id}").status_code == 200  # kept
        status.get_by_role("link").click()
        expect(page.get_by_role("heading", level=2)).to_have_text("Anon Web — Knee MR")
    finally:
        for study in [study_id, *created]:
            archive.client.delete(f"/studies/{study}")


def test_modify_a_study_without_keeping_the_original(page: Page, archive: Archive) -> None:
    answer = archive.upload(make_dicom(patient_id="WEB-EDIT", patient_name="Edit^Ed"))
    study_id = answer["ParentStudy"]
    try:
        page.goto(f"{archive.app}#/studies/{study_id}")
        form = page.get_by_role("form", name="Modify this study")
        expect(form.get_by_label("Patient name")).to_have_value("Edit^Ed")
        form.get_by_role("button", name="Modify").click()
        status = page.locator(".panel").filter(has=form).get_by_role("status")
        expect(status).to_have_text("Nothing to change: edit a field or tick an option first.")
        form.get_by_label("Study description").fill("Edited description")
        form.get_by_label("Keep the original").uncheck()
        form.get_by_role("button", name="Modify").click()
        # without the original, the page moves to the new study
        expect(page.get_by_role("heading", level=2)).to_have_text("Edit Ed — Edited description")
        new_id = page.url.rsplit("/", 1)[-1]
        assert new_id != study_id
        assert archive.client.get(f"/studies/{study_id}").status_code == 404
        tags = archive.client.get(f"/studies/{new_id}").json()["MainDicomTags"]
        assert tags["StudyDescription"] == "Edited description"
    finally:
        for study in find_studies(archive, {"PatientID": "WEB-EDIT"}):
            archive.client.delete(f"/studies/{study['ID']}")


def test_bulk_label_zip_and_delete(page: Page, archive: Archive, tmp_path: Path) -> None:
    ids = [
        archive.upload(make_dicom(patient_id=f"WEB-BULK{n}", patient_name=f"Bulk^B{n}"))[
            "ParentStudy"
        ]
        for n in range(3)
    ]
    try:
        open_list(page, archive)
        search(page, Patient_ID="WEB-BULK")
        expect(page.locator("#list-status")).to_have_text("Studies 1 to 3 of 3.")
        bulk = page.get_by_role("region", name="Selected studies")
        expect(bulk).to_be_hidden()
        page.get_by_role("checkbox", name="Select every study on this page").check()
        expect(bulk).to_be_visible()
        expect(page.locator("#bulk-count")).to_have_text("3 studies selected")
        page.get_by_role("checkbox", name=re.compile("Select the study of Bulk B1")).uncheck()
        expect(page.locator("#bulk-count")).to_have_text("2 studies selected")
        expect(page.locator("#select-page")).not_to_be_checked()
        assert page.locator("#select-page").evaluate("box => box.indeterminate")
        chosen = [ids[0], ids[2]]

        bulk.get_by_label("Label to add").fill("bulk_done")
        bulk.get_by_role("button", name="Add to selected").click()
        expect(page.locator("#bulk-status")).to_have_text("Label bulk_done added to 2 studies.")
        for study in ids:
            labels = archive.client.get(f"/studies/{study}/labels").json()
            assert labels == (["bulk_done"] if study in chosen else [])

        with page.expect_download() as info:
            bulk.get_by_role("link", name="Download selected (ZIP)").click()
        saved = tmp_path / "selected.zip"
        info.value.save_as(saved)
        with zipfile.ZipFile(saved) as zipped:
            members = [name for name in zipped.namelist() if not name.endswith("/")]
        assert len(members) == 2

        bulk.get_by_role("button", name="Delete selected").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("Delete 2 studies from the server?")
        dialog.get_by_role("button", name="Delete").click()
        expect(page.locator("#message")).to_have_text("2 studies deleted.")
        expect(page.locator("#list-status")).to_have_text("Studies 1 to 1 of 1.")
        expect(bulk).to_be_hidden()
        assert [archive.client.get(f"/studies/{s}").status_code for s in ids] == [404, 200, 404]
    finally:
        for study in ids:
            archive.client.delete(f"/studies/{study}")
