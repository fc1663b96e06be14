"""HTTP access: Basic authentication and path normalization."""

from __future__ import annotations

import httpx
import pytest
from archive_checks import upload
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
