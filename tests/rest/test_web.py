"""The explorer's static files: served under ``/app/``, self-contained, behind auth."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from archive_checks import upload
from conftest import RunningServer, start_server
from dicom_factory import make_dicom

from dicomhub.rest.web import WEB_DIR

WEB_FILES = sorted(
    path.relative_to(WEB_DIR).as_posix() for path in WEB_DIR.rglob("*") if path.is_file()
)
JS_FILES = [name for name in WEB_FILES if name.endswith(".js")]
EXPECTED_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("web"))
    yield server
    server.stop()


@pytest.fixture
def client(shared: RunningServer) -> httpx.Client:
    return shared.client


def test_the_explorer_has_its_files() -> None:
    assert {"index.html", "app.js", "api.js", "style.css"} <= set(WEB_FILES)


@pytest.mark.parametrize("name", WEB_FILES)
def test_static_files_have_their_content_type(client: httpx.Client, name: str) -> None:
    response = client.get(f"/app/{name}")
    assert response.status_code == 200
    assert response.content == (WEB_DIR / name).read_bytes()
    media_type = response.headers["content-type"].split(";")[0].strip()
    assert media_type == EXPECTED_TYPES[Path(name).suffix]
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_root_redirects_to_the_explorer(client: httpx.Client) -> None:
    for path in ("/", "/app"):
        response = client.get(path)
        assert response.status_code == 301
        target = response.url.join(response.headers["location"])
        assert target.path == "/app/"
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200
    assert page.url.path == "/app/"
    assert page.headers["content-type"].startswith("text/html")


def test_orthanc_explorer_address_is_an_alias(client: httpx.Client) -> None:
    main = client.get("/app/")
    alias = client.get("/app/explorer.html")
    assert alias.status_code == 200
    assert alias.content == main.content == (WEB_DIR / "index.html").read_bytes()
    policy = main.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy


def test_unchanged_files_are_revalidated_with_etag(client: httpx.Client) -> None:
    first = client.get("/app/app.js")
    etag = first.headers["etag"]
    again = client.get("/app/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = client.get("/app/app.js", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert client.head("/app/style.css").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/app/no-such-file.js",
        "/app/../pyproject.toml",
        "/app/%2e%2e/rest/web.py",
        "/app/..%2frest%2fweb.py",
        "/app/sub/../../config.json",
    ],
)
def test_unknown_files_are_not_found(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["HttpStatus"] == 404


def test_app_routes_do_not_shadow_the_api(client: httpx.Client) -> None:
    answer = upload(client, make_dicom(patient_id="WEBAPI1"))
    assert client.get(f"/instances/{answer['ID']}").status_code == 200
    assert client.get("/studies").status_code == 200
    assert client.get("/statistics").json()["CountInstances"] >= 1
    assert client.post("/app/app.js", content=b"x").status_code == 405


_ABSOLUTE_URL = re.compile(r"""(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""")
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\bfrom\s+["']([^"']+)["']""")


@pytest.mark.parametrize("name", WEB_FILES)
def test_files_reference_only_local_urls(name: str) -> None:
    text = (WEB_DIR / name).read_text(encoding="utf-8")
    assert not _ABSOLUTE_URL.search(text), _ABSOLUTE_URL.search(text)
    assert "@import" not in text
    for match in _REFERENCES.finditer(text):
        target = match.group(1) or match.group(2)
        if target.startswith("${") or target.startswith("#") or target == "data:,":
            continue
        assert not target.startswith("/"), target
        assert ":" not in target, target
        if name.endswith(".js") and match.group(2):
            assert (WEB_DIR / Path(name).parent / target).is_file(), target


def test_the_page_loads_only_files_that_exist() -> None:
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    for match in _REFERENCES.finditer(page):
        target = match.group(1)
        if target and not target.startswith("#") and target != "data:,":
            assert (WEB_DIR / target).is_file(), target


def test_authentication_applies_to_the_explorer(make_server) -> None:
    secured = make_server(AuthenticationEnabled=True, RegisteredUsers={"alice": "s3cret"})
    with httpx.Client(base_url=secured.url, timeout=10) as anonymous:
        for path in ("/", "/app", "/app/", "/app/explorer.html", "/app/app.js", "/app/x.js"):
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].lower().startswith("basic")
            assert anonymous.get(path, auth=("alice", "wrong")).status_code == 401
        assert anonymous.get("/app/", auth=("alice", "s3cret")).status_code == 200
        assert anonymous.get("/", auth=("alice", "s3cret")).status_code == 301


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@needs_node
@pytest.mark.parametrize("name", JS_FILES)
def test_javascript_parses(name: str) -> None:
    result = subprocess.run(
        ["node", "--check", str(WEB_DIR / name)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


_FORMAT_SCRIPT = """
import * as f from %s;
const out = {
  query: f.studyQuery({name: " doe ", patientId: "P1", accession: "A*", from: "2024-01-01",
                       to: "2024-12-31", modality: "mr"}),
  empty: f.studyQuery({}),
  fromOnly: f.dateRange("2024-02-03", ""),
  toOnly: f.dateRange("", "2024-02-03"),
  sameDay: f.dateRange("2024-02-03", "2024-02-03"),
  name: f.personName("Doe^John^^^"),
  date: f.dicomDate("20240102"),
  size: f.fileSize(1536),
  plural: [f.plural(1, "study", "studies"), f.plural(2, "study", "studies")],
  labels: [f.isValidLabel("ok_label-1"), f.isValidLabel("no space"), f.isValidLabel("")],
};
console.log(JSON.stringify(out));
"""


@needs_node
def test_search_form_becomes_a_find_query() -> None:
    script = _FORMAT_SCRIPT % json.dumps((WEB_DIR / "format.js").as_uri())
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["query"] == {
        "PatientName": "*doe*",
        "PatientID": "P1*",
        "AccessionNumber": "A*",
        "StudyDate": "20240101-20241231",
        "ModalitiesInStudy": "MR",
    }
    assert out["empty"] == {}
    assert (out["fromOnly"], out["toOnly"], out["sameDay"]) == (
        "20240203-",
        "-20240203",
        "20240203",
    )
    assert out["name"] == "Doe John"
    assert out["date"] == "2024-01-02"
    assert out["size"] == "1.5 KB"
    assert out["plural"] == ["1 study", "2 studies"]
    assert out["labels"] == [True, False, False]


def test_the_list_query_is_accepted_by_the_server(client: httpx.Client) -> None:
    """The exact body the explorer sends for its study list, with every search field."""
    upload(client, make_dicom(patient_id="WEBQ1", patient_name="Webber^Ann", modality="MR"))
    body = {
        "Level": "Study",
        "Query": {
            "PatientName": "*webber*",
            "PatientID": "WEBQ*",
            "AccessionNumber": "ACCWEBQ*",
            "StudyDate": "20240101-20241231",
            "ModalitiesInStudy": "MR",
        },
        "Expand": True,
        "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedInstances"],
        "Limit": 25,
        "Since": 0,
        "OrderBy": [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "DESC"}],
    }
    found = client.post("/tools/find", json=body)
    assert found.status_code == 200, found.text
    [study] = found.json()
    assert study["PatientMainDicomTags"]["PatientID"] == "WEBQ1"
    assert study["RequestedTags"]["ModalitiesInStudy"] == "MR"
    count = client.post("/tools/count-resources", json={"Level": "Study", "Query": body["Query"]})
    assert count.json() == {"Count": 1}
    body["Query"]["ModalitiesInStudy"] = "CT"
    assert client.post("/tools/find", json=body).json() == []


_JOBS_SCRIPT = """
import * as f from %s;
const states = ["Pending", "Running", "Paused", "Retry", "Success", "Failure"];
console.log(JSON.stringify({
  actions: Object.fromEntries(states.map((s) => [s, f.jobActions(s)])),
  time: [f.timestamp("20240102T101112"), f.timestamp(""), f.timestamp("odd")],
  labels: [f.studyLabels({label: " followup "}), f.studyLabels({label: ""}), f.studyLabels({})],
  description: f.studyQuery({description: "chest"}),
}));
"""


@needs_node
def test_job_actions_timestamps_and_labels() -> None:
    script = _JOBS_SCRIPT % json.dumps((WEB_DIR / "format.js").as_uri())
    result = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    # what Orthanc accepts in each state: pause/cancel while it may still run,
    # resume only when paused, resubmit only after a failure (or a cancel)
    assert out["actions"] == {
        "Pending": ["pause", "cancel"],
        "Running": ["pause", "cancel"],
        "Paused": ["resume", "cancel"],
        "Retry": ["cancel"],
        "Success": [],
        "Failure": ["resubmit"],
    }
    assert out["time"] == ["2024-01-02 10:11:12", "", "odd"]
    assert out["labels"] == [["followup"], [], []]
    assert out["description"] == {"StudyDescription": "*chest*"}
