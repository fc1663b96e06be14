"""``/tools/bulk-content``, ``/tools/bulk-delete`` and the ``/tools`` index."""

from __future__ import annotations

from archive_checks import assert_consistent, statistics, upload
from conftest import RunningServer
from dicom_factory import make_dicom
from pydicom.uid import generate_uid


def _two_instances(server: RunningServer) -> list[dict]:
    study = generate_uid()
    return [
        upload(server.client, make_dicom(patient_id="BULK1", study_uid=study)) for _ in range(2)
    ]


def test_bulk_content_describes_resources_and_skips_unknown_ids(server: RunningServer) -> None:
    a, b = _two_instances(server)
    answer = server.client.post(
        "/tools/bulk-content", json={"Resources": [a["ID"], "unknown", b["ID"]]}
    )
    assert answer.status_code == 200
    items = answer.json()
    assert [i["ID"] for i in items] == [a["ID"], b["ID"]]
    assert items[0]["Type"] == "Instance"
    assert items[0]["Metadata"]["Origin"] == "RestApi"


def test_bulk_content_moves_to_the_requested_level(server: RunningServer) -> None:
    a, b = _two_instances(server)
    answer = server.client.post(
        "/tools/bulk-content",
        json={"Resources": [a["ID"], b["ID"]], "Level": "Study", "Metadata": False},
    )
    items = answer.json()
    assert [i["ID"] for i in items] == [a["ParentStudy"]]  # both lead to one study
    assert "Metadata" not in items[0]
    short = server.client.post(
        "/tools/bulk-content", json={"Resources": [a["ParentStudy"]], "Short": True}
    ).json()
    assert "0020,000d" in short[0]["MainDicomTags"]


def test_bulk_delete_removes_everything_listed(server: RunningServer) -> None:
    a, b = _two_instances(server)
    answer = server.client.post(
        "/tools/bulk-delete", json={"Resources": [a["ID"], a["ParentPatient"], "unknown"]}
    )
    assert (answer.status_code, answer.content) == (200, b"")  # Orthanc's empty answer
    assert server.client.get(f"/patients/{a['ParentPatient']}").status_code == 404
    assert server.client.get(f"/instances/{b['ID']}").status_code == 404
    assert statistics(server.client)["CountInstances"] == 0
    assert_consistent(server)


def test_bulk_routes_refuse_malformed_bodies(server: RunningServer) -> None:
    (a, _) = _two_instances(server)
    # As Orthanc: not a JSON object is a bad request, a bad "Resources" a bad format.
    cases = {b"{not json": 8, b"[]": 8, b'{"Resources": "x"}': 15, b'{"Resources": [1]}': 15}
    for body, code in cases.items():
        for route in ("/tools/bulk-content", "/tools/bulk-delete"):
            answer = server.client.post(route, content=body)
            assert answer.status_code == 400, (route, body)
            assert answer.json()["OrthancStatus"] == code, (route, body)
    bad_level = server.client.post(
        "/tools/bulk-content", json={"Resources": [a["ID"]], "Level": "Galaxy"}
    )
    assert bad_level.status_code == 400
    assert statistics(server.client)["CountInstances"] == 2


def test_tools_index_lists_the_served_tools(server: RunningServer) -> None:
    names = server.client.get("/tools").json()
    assert {"now", "lookup", "bulk-delete", "generate-uid"} <= set(names)
    assert names == sorted(names)
    unknown = server.client.get("/tools/no-such-tool").content
    for name in names:  # only what is served is announced
        answer = server.client.get(f"/tools/{name}").content
        assert answer != unknown.replace(b"/tools/no-such-tool", f"/tools/{name}".encode()), name


def test_invalidate_tags_keeps_answers_identical(server: RunningServer) -> None:
    (a, _) = _two_instances(server)
    before = server.client.get(f"/instances/{a['ID']}/tags").content
    answer = server.client.post("/tools/invalidate-tags")
    assert answer.status_code == 200
    assert server.client.get(f"/instances/{a['ID']}/tags").content == before
