"""HTTP access: Basic authentication and path normalization."""

from __future__ import annotations

import httpx
import pytest
from archive_checks import oracle_client, upload
from conftest import RunningServer
from dicom_factory import make_dicom

USERS = {"alice": "s3cret", "bob": "pa:ss wörd"}


@pytest.fixture
def secured(make_server) -> RunningServer:
    return make_server(AuthenticationEnabled=True, RegisteredUsers=USERS)


@pytest.mark.parametrize("path", ["/system", "/patients", "/statistics", "/no-such-route"])
def test_authentication_required(secured: RunningServer, path: str) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as anonymous:
        response = anonymous.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].lower().startswith("basic")
        for user, password in (("alice", "wrong"), ("mallory", "s3cret"), ("alice", "")):
            assert anonymous.get(path, auth=(user, password)).status_code == 401
        assert anonymous.get(path, headers={"Authorization": "Basic !!!"}).status_code == 401
        assert anonymous.get(path, headers={"Authorization": "Bearer x"}).status_code == 401


def test_registered_users_are_served(secured: RunningServer) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as client:
        for user, password in USERS.items():
            response = client.get("/system", auth=(user, password))
            assert response.status_code == 200, user
        response = client.post("/instances", content=make_dicom(), auth=("alice", "s3cret"))
        assert response.status_code == 200
        assert response.json()["Status"] == "Success"


def test_rejected_request_changes_nothing(secured: RunningServer) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as anonymous:
        assert anonymous.post("/instances", content=make_dicom()).status_code == 401
    assert secured.client.get("/statistics").json()["CountInstances"] == 0


def test_doubled_slashes_are_served(server: RunningServer) -> None:
    with httpx.Client(timeout=10) as raw:
        response = raw.post(f"{server.url}//instances", content=make_dicom(patient_id="SLASH"))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert raw.get(f"{server.url}//patients").json() == [answer["ParentPatient"]]
        described = raw.get(f"{server.url}/instances//{answer['ID']}")
        assert described.status_code == 200
        assert described.json()["ID"] == answer["ID"]
        assert raw.get(f"{server.url}///instances///{answer['ID']}///file").status_code == 200


def test_a_trailing_slash_is_ignored_not_redirected(server: RunningServer) -> None:
    """Orthanc answers ``/patients/`` as ``/patients``; a redirect would leave clients
    that do not follow one (and writes) with an empty answer."""
    with httpx.Client(timeout=10, follow_redirects=False) as raw:
        response = raw.post(f"{server.url}/instances/", content=make_dicom(patient_id="TRAIL"))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert raw.get(f"{server.url}/patients/").json() == [answer["ParentPatient"]]
        tags = raw.get(f"{server.url}/instances/{answer['ID']}/tags/?simplify")
        assert tags.status_code == 200
        assert tags.json()["PatientID"] == "TRAIL"
        deleted = raw.delete(f"{server.url}/instances/{answer['ID']}//")
        assert deleted.status_code == 200
        assert raw.get(f"{server.url}/patients").json() == []
        # The explorer's page keeps its folder URL, which its relative links need.
        assert raw.get(f"{server.url}/app/").status_code == 200
        assert raw.get(f"{server.url}/app").headers["location"] == "app/"


def test_without_authentication_no_credentials_are_needed(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        assert anonymous.get("/system").status_code == 200
        upload(anonymous, make_dicom())


def test_forwarded_headers_do_not_change_the_client(server: RunningServer) -> None:
    """Like Orthanc, the remote-access rule looks at the peer, not at X-Forwarded-For."""
    assert server.config["RemoteAccessAllowed"] is False
    for header in ("X-Forwarded-For", "Forwarded"):
        value = "10.0.0.1" if header == "X-Forwarded-For" else "for=10.0.0.1"
        answer = server.client.get("/system", headers={header: value})
        assert answer.status_code == 200, header


#: The WebDAV methods Orthanc reads before its routes, with the method its HTTP filter
#: is told; dicomhub has no WebDAV share, so each is a bare 404 (as on Orthanc's REST
#: API, whatever the path).
WEBDAV_METHODS = {
    "HEAD": "GET",
    "OPTIONS": "GET",
    "PROPFIND": "GET",
    "PROPPATCH": "PUT",
    "LOCK": "PUT",
    "UNLOCK": "PUT",
    "MKCOL": "PUT",
}


def _bare(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.content == b"" and response.headers["content-length"] == "0"
    assert "content-type" not in response.headers


def test_head_and_webdav_methods_answer_as_orthanc(server: RunningServer) -> None:
    """HEAD is no GET without a body on the REST API: Orthanc reads it as a WebDAV
    method and answers a bare 404 on every route; other methods are a bare 400."""
    client = server.client
    answer = upload(client, make_dicom(patient_id="HEAD1"))
    instance, patient = answer["ID"], answer["ParentPatient"]
    client.put(f"/instances/{instance}/metadata/1030", content=b"hello")
    client.put(f"/instances/{instance}/attachments/1031", content=b"abc")
    paths = [
        "/system",
        "/patients",
        f"/patients/{patient}",
        f"/patients/{patient}/archive",
        f"/instances/{instance}",
        f"/instances/{instance}/file",
        f"/instances/{instance}/tags",
        f"/instances/{instance}/metadata/1030",
        f"/instances/{instance}/attachments/1031/data",
        f"/instances/{instance}/attachments/dicom/size",
        "/tools/now",
        "/no-such-route",
        "/app",
    ]
    for path in paths:
        for method in WEBDAV_METHODS:
            _bare(client.request(method, path), 404)
        for method in ("PATCH", "CONNECT"):
            _bare(client.request(method, path), 400)
    # The explorer's own files (dicomhub's, documented) answer HEAD as GET, bodiless.
    head = client.head("/app/explorer.html")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(client.get("/app/explorer.html").content))
    _bare(client.options("/app/explorer.html"), 404)


def test_head_passes_authentication_and_the_filter_first(tmp_path, make_server) -> None:  # type: ignore[no-untyped-def]
    """As in Orthanc: 401 first, then the HTTP filter, told GET for HEAD (PUT for a
    writing WebDAV method), then the 404."""
    seen = tmp_path / "seen.txt"
    script = tmp_path / "filter.lua"
    script.write_text(
        "function IncomingHttpRequestFilter(method, uri, ip, username, headers)\n"
        f"  local f = io.open('{seen}', 'a'); f:write(method .. ' ' .. uri .. '\\n'); f:close()\n"
        "  return uri ~= '/refused'\n"
        "end\n"
    )
    server = make_server(
        LuaScripts=[str(script)], AuthenticationEnabled=True, RegisteredUsers=USERS
    )
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        assert anonymous.head("/system").status_code == 401
        assert anonymous.request("PATCH", "/system").status_code == 401
    with httpx.Client(base_url=server.url, auth=("alice", "s3cret"), timeout=10) as alice:
        _bare(alice.head("/refused"), 403)
        _bare(alice.request("LOCK", "/refused"), 403)
        _bare(alice.head("/system"), 404)
        _bare(alice.request("PATCH", "/refused"), 400)  # before the filter
    lines = seen.read_text().splitlines()
    assert lines == ["GET /refused", "PUT /refused", "GET /system"]


def test_head_and_methods_like_the_oracle(server: RunningServer) -> None:
    reference = oracle_client()
    if reference is None:
        pytest.skip("the reference Orthanc does not answer")
    try:
        for method in [*WEBDAV_METHODS, "PATCH"]:
            for path in ("/system", "/patients", "/instances/unknown/file", "/app/explorer.html"):
                if path.startswith("/app/") and method == "HEAD":
                    continue  # dicomhub's explorer answers HEAD (documented)
                ours = server.client.request(method, path)
                theirs = reference.request(method, path)
                assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content)
                assert "content-type" not in ours.headers
    finally:
        reference.close()
