"""Metadata at every level: names, numbers, system items, revisions, CheckRevisions.

The expected answers were observed on the reference Orthanc (1.10.1) and read in
the Orthanc 1.12 REST documentation: a missing item is a bare 404, a write to a
system item a bare 403, an unknown name 404 "inexistent item" (7).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_uploads, replay_on_both, upload
from conftest import RunningServer
from dicom_factory import make_dicom

from rest.resource_checks import (
    LEVELS,
    PARENT,
    RESOURCE_TYPE,
    assert_bare,
    etag,
    last_change,
    md5,
    module_server,
    upload_on_both,
    url,
)

USER_METADATA = {"Sample": 1025, "Other": 2000}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from module_server(tmp_path_factory, "metadata", UserMetadata=USER_METADATA)


@pytest.fixture
def client(shared: RunningServer) -> httpx.Client:
    return shared.client


def new_instance(client: httpx.Client) -> dict[str, Any]:
    return upload(client, make_dicom(patient_id=f"MD{uuid.uuid4().hex[:10]}"))


# ---- listing -----------------------------------------------------------------


def test_list_names_in_number_order(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    names = client.get(base + "/metadata").json()
    numbers = client.get(base + "/metadata", params={"numeric": ""}).json()
    assert {"ReceptionDate", "IndexInSeries", "Origin", "TransferSyntax"} <= set(names)
    assert all(isinstance(n, int) for n in numbers)
    assert numbers == sorted(numbers)
    assert len(names) == len(numbers)
    assert names[numbers.index(2)] == "ReceptionDate"
    assert names[numbers.index(1)] == "IndexInSeries"


def test_list_expanded_by_name_or_number(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    assert client.put(base + "/metadata/Sample", content=b"hello").status_code == 200
    expanded = client.get(base + "/metadata", params={"expand": ""}).json()
    assert expanded["Sample"] == "hello"
    assert expanded["Origin"] == "RestApi"
    assert expanded["ReceptionDate"] == client.get(base + "/metadata/ReceptionDate").text
    numeric = client.get(base + "/metadata", params={"expand": "", "numeric": ""}).json()
    assert numeric["1025"] == "hello"
    assert numeric["2"] == expanded["ReceptionDate"]
    assert set(numeric.values()) == set(expanded.values())
    # "expand=false" is no expansion, as in Orthanc 1.12
    assert isinstance(client.get(base + "/metadata", params={"expand": "false"}).json(), list)


def test_parent_levels_have_last_update(client: httpx.Client) -> None:
    answer = new_instance(client)
    for level in ("patients", "studies", "series"):
        assert "LastUpdate" in client.get(url(answer, level) + "/metadata").json()
        value = client.get(url(answer, level) + "/metadata/LastUpdate")
        assert value.status_code == 200 and len(value.text) == 15


# ---- reading one item ----------------------------------------------------------


def test_get_by_name_or_number_with_etag(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    by_name = client.get(base + "/metadata/ReceptionDate")
    by_number = client.get(base + "/metadata/2")
    assert by_name.status_code == by_number.status_code == 200
    assert by_name.text == by_number.text
    assert by_name.headers["content-type"].startswith("text/plain")
    assert by_name.headers["etag"] == etag(0, by_name.text)
    assert client.get(base + "/metadata/02").text == by_name.text


def test_missing_item_is_a_bare_404(client: httpx.Client) -> None:
    answer = new_instance(client)
    assert_bare(client.get(url(answer, "instances") + "/metadata/Sample"), 404)
    assert_bare(client.get(url(answer, "instances") + "/metadata/1500"), 404)
    assert_bare(client.get(url(answer, "instances") + "/metadata/LastUpdate"), 404)
    assert_bare(client.get(url(answer, "patients") + "/metadata/ReceptionDate"), 404)


@pytest.mark.parametrize("name", ["Nope", "receptiondate", "sample"])
def test_unknown_name_is_an_inexistent_item(client: httpx.Client, name: str) -> None:
    base = url(new_instance(client), "instances")
    before = client.get(base + "/metadata", params={"expand": ""}).json()
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, f"{base}/metadata/{name}", content=b"x")
        assert_orthanc_error(response, 404, "Accessing an inexistent item", 7, method)
    assert client.get(base + "/metadata", params={"expand": ""}).json() == before


# Orthanc reads a name written as digits (an optional minus sign first) as a number:
# with spaces around it, or beyond 32 bits, it is a bad parameter; "+1025" is a name.
BADLY_WRITTEN_NUMBERS = ["%201025", "1025%20", "1025%0A", "2147483648", "-2147483649", "4294967297"]


@pytest.mark.parametrize("name", BADLY_WRITTEN_NUMBERS)
def test_badly_written_number_is_a_bad_parameter(client: httpx.Client, name: str) -> None:
    base = url(new_instance(client), "instances")
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, f"{base}/metadata/{name}", content=b"x")
        assert_orthanc_error(response, 400, "Bad type for a parameter", 5, method)
    assert_bare(client.get(base + "/metadata/1025"), 404)


def test_numbers_as_orthanc_reads_them(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    assert client.put(base + "/metadata/1025", content=b"v").status_code == 200
    assert client.get(base + "/metadata/01025").text == "v"
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, f"{base}/metadata/+1025", content=b"x")
        assert_orthanc_error(response, 404, "Accessing an inexistent item", 7, method)
    assert_orthanc_error(client.get(base + "/metadata/-"), 404, "Accessing an inexistent item", 7)
    for number in ("-1", "-0", "-2147483648", "2147483647"):  # numbers, without such an item
        assert_bare(client.get(f"{base}/metadata/{number}"), 404)
    assert client.get(base + "/metadata/1025").text == "v"


def test_unknown_resource(client: httpx.Client) -> None:
    answer = new_instance(client)
    for method, path in (
        ("GET", "/instances/nope/metadata"),
        ("GET", "/instances/nope/metadata/ReceptionDate"),
        ("PUT", "/instances/nope/metadata/Sample"),
        ("DELETE", "/instances/nope/metadata/Sample"),
        # an identifier of another level is unknown at this one
        ("GET", f"/patients/{answer['ID']}/metadata"),
        ("GET", f"/patients/{answer['ID']}/metadata/ReceptionDate"),
        ("PUT", f"/studies/{answer['ID']}/metadata/Sample"),
        ("DELETE", f"/series/{answer['ID']}/metadata/Sample"),
    ):
        response = client.request(method, path, content=b"x")
        assert_orthanc_error(response, 404, "Unknown resource", 17, method, path)
    assert "Sample" not in client.get(url(answer, "instances") + "/metadata").json()


# ---- system metadata ------------------------------------------------------------


@pytest.mark.parametrize("name", ["ReceptionDate", "2", "LastUpdate", "1023", "0", "70000", "-5"])
def test_system_metadata_cannot_be_written(client: httpx.Client, name: str) -> None:
    base = url(new_instance(client), "instances")
    before = client.get(base + "/metadata", params={"expand": "", "numeric": ""}).json()
    change = last_change(client)
    assert_bare(client.put(f"{base}/metadata/{name}", content=b"forged"), 403)
    assert_bare(client.delete(f"{base}/metadata/{name}"), 403)
    assert client.get(base + "/metadata", params={"expand": "", "numeric": ""}).json() == before
    assert last_change(client) == change


def test_system_metadata_refusal_comes_before_the_resource_lookup(client: httpx.Client) -> None:
    assert_bare(client.delete("/instances/nope/metadata/ReceptionDate"), 403)
    assert_bare(client.put("/instances/nope/metadata/ReceptionDate", content=b"x"), 403)


# ---- user metadata ------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_user_metadata_lifecycle(client: httpx.Client, level: str) -> None:
    answer = new_instance(client)
    base = url(answer, level)
    put = client.put(base + "/metadata/Sample", content=b"first")
    assert put.status_code == 200 and put.content == b""
    assert put.headers["etag"] == etag(0, "first")
    change = last_change(client)
    assert change is not None
    assert change["ChangeType"] == "UpdatedMetadata"
    assert change["ResourceType"] == RESOURCE_TYPE[level]
    assert change["ID"] == answer[PARENT[level]]

    got = client.get(base + "/metadata/Sample")
    assert got.text == "first" and got.headers["etag"] == etag(0, "first")
    assert "Sample" in client.get(base + "/metadata").json()
    assert client.get(base + "/metadata/1025").text == "first"  # same item by number

    again = client.put(base + "/metadata/1025", content="sécond".encode())
    assert again.headers["etag"] == etag(1, "sécond")
    assert client.get(base + "/metadata/Sample").text == "sécond"
    assert client.get(base + "/metadata/Sample").headers["etag"] == etag(1, "sécond")

    seq = last_change(client)["Seq"]  # type: ignore[index]
    deleted = client.delete(base + "/metadata/Sample")
    assert deleted.status_code == 200 and deleted.content == b""
    assert_bare(client.get(base + "/metadata/Sample"), 404)
    assert "Sample" not in client.get(base + "/metadata").json()
    change = last_change(client)
    assert change is not None and change["Seq"] > seq
    assert change["ChangeType"] == "UpdatedMetadata"


def test_numbered_and_named_user_metadata_in_listings(client: httpx.Client) -> None:
    base = url(new_instance(client), "series")
    client.put(base + "/metadata/1500", content=b"numbered")
    client.put(base + "/metadata/Other", content=b"named")
    client.put(base + "/metadata/65535", content=b"last")
    names = client.get(base + "/metadata").json()
    assert names[-3:] == ["1500", "Other", "65535"]
    expanded = client.get(base + "/metadata", params={"expand": ""}).json()
    assert expanded["1500"] == "numbered" and expanded["Other"] == "named"
    assert client.get(base + "/metadata/2000").text == "named"


def test_empty_value_is_kept(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    assert client.put(base + "/metadata/Sample", content=b"").status_code == 200
    got = client.get(base + "/metadata/Sample")
    assert got.status_code == 200 and got.text == ""


def test_value_that_is_not_utf8_is_refused(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    response = client.put(base + "/metadata/Sample", content=b"\xff\xfe")
    assert_orthanc_error(response, 400, "Bad request", 8, "PUT")
    assert_bare(client.get(base + "/metadata/Sample"), 404)


def test_delete_missing_item_is_unknown_resource(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    response = client.delete(base + "/metadata/Sample")
    assert_orthanc_error(response, 404, "Unknown resource", 17, "DELETE")


def test_metadata_goes_with_the_resource(client: httpx.Client) -> None:
    answer = new_instance(client)
    client.put(url(answer, "studies") + "/metadata/Sample", content=b"x")
    assert client.delete(url(answer, "patients")).status_code == 200
    response = client.get(url(answer, "studies") + "/metadata/Sample")
    assert_orthanc_error(response, 404, "Unknown resource", 17)


# ---- revisions ----------------------------------------------------------------


def test_if_match_guards_updates(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    first = client.put(base + "/metadata/Sample", content=b"one").headers["etag"]
    seq = last_change(client)["Seq"]  # type: ignore[index]

    for stale in (etag(5, "one"), etag(0, "other"), '"1-' + md5("one") + '"'):
        response = client.put(
            base + "/metadata/Sample", content=b"two", headers={"If-Match": stale}
        )
        assert_orthanc_error(
            response,
            409,
            "A bad revision number was provided, which might indicate conflict between "
            "multiple writers",
            43,
            "PUT",
        )
    assert client.get(base + "/metadata/Sample").text == "one"
    assert last_change(client)["Seq"] == seq  # type: ignore[index]

    ok = client.put(base + "/metadata/Sample", content=b"two", headers={"If-Match": first})
    assert ok.status_code == 200 and ok.headers["etag"] == etag(1, "two")
    # an unquoted ETag is accepted too
    unquoted = etag(1, "two").strip('"')
    ok = client.put(base + "/metadata/Sample", content=b"three", headers={"If-Match": unquoted})
    assert ok.headers["etag"] == etag(2, "three")


@pytest.mark.parametrize(
    "header",
    ["garbage", "x-abc", '"-abc"', "12", "-1-abc", "9223372036854775808-abc", "1" * 20 + "-abc"],
)
def test_malformed_if_match_is_refused(client: httpx.Client, header: str) -> None:
    base = url(new_instance(client), "instances")
    client.put(base + "/metadata/Sample", content=b"one")
    for method in ("PUT", "DELETE"):
        response = client.request(
            method, base + "/metadata/Sample", content=b"two", headers={"If-Match": header}
        )
        assert_orthanc_error(response, 400, "Parameter out of range", 3, method)
    assert client.get(base + "/metadata/Sample").text == "one"


def test_largest_revision_is_well_formed(client: httpx.Client) -> None:
    """A 64-bit revision is an ETag (that does not match); beyond 64 bits it is malformed."""
    base = url(new_instance(client), "instances")
    client.put(base + "/metadata/Sample", content=b"one")
    stale = {"If-Match": etag(2**63 - 1, "one")}
    response = client.put(base + "/metadata/Sample", content=b"two", headers=stale)
    assert response.status_code == 409, response.text
    assert response.json()["OrthancStatus"] == 43


def test_if_match_on_a_new_item_starts_a_new_sequence(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    response = client.put(
        base + "/metadata/Sample", content=b"new", headers={"If-Match": etag(7, "whatever")}
    )
    assert response.status_code == 200 and response.headers["etag"] == etag(0, "new")


def test_if_match_guards_deletion(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    current = client.put(base + "/metadata/Sample", content=b"one").headers["etag"]
    response = client.delete(base + "/metadata/Sample", headers={"If-Match": etag(3, "one")})
    assert_orthanc_error(response, 409, response.json()["Message"], 43, "DELETE")
    assert client.get(base + "/metadata/Sample").text == "one"
    assert (
        client.delete(base + "/metadata/Sample", headers={"If-Match": current}).status_code == 200
    )
    assert_bare(client.get(base + "/metadata/Sample"), 404)


def test_if_none_match(client: httpx.Client) -> None:
    base = url(new_instance(client), "instances")
    current = client.put(base + "/metadata/Sample", content=b"one").headers["etag"]
    cached = client.get(base + "/metadata/Sample", headers={"If-None-Match": current})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["etag"] == current
    fresh = client.get(base + "/metadata/Sample", headers={"If-None-Match": etag(9, "one")})
    assert fresh.status_code == 200 and fresh.text == "one"
    bad = client.get(base + "/metadata/Sample", headers={"If-None-Match": "garbage"})
    assert_orthanc_error(bad, 400, "Parameter out of range", 3, "GET")


def test_check_revisions(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(CheckRevisions=True, UserMetadata=USER_METADATA)
    client = server.client
    base = url(new_instance(client), "instances")
    created = client.put(base + "/metadata/Sample", content=b"one")
    assert created.status_code == 200  # creating needs no revision

    blind = client.put(base + "/metadata/Sample", content=b"two")
    assert_orthanc_error(blind, 409, blind.json()["Message"], 43, "PUT")
    assert client.get(base + "/metadata/Sample").text == "one"

    updated = client.put(
        base + "/metadata/Sample", content=b"two", headers={"If-Match": created.headers["etag"]}
    )
    assert updated.status_code == 200

    for name in ("Sample", "Other"):  # even when the item does not exist
        blind = client.delete(f"{base}/metadata/{name}")
        assert_orthanc_error(blind, 409, blind.json()["Message"], 43, "DELETE")
    assert client.get(base + "/metadata/Sample").text == "two"
    deleted = client.delete(
        base + "/metadata/Sample", headers={"If-Match": updated.headers["etag"]}
    )
    assert deleted.status_code == 200
    assert_bare(client.get(base + "/metadata/Sample"), 404)


# ---- differential check against the reference Orthanc ---------------------------


@pytest.fixture
def oracle() -> Iterator[Any]:
    yield from oracle_uploads()


def test_same_answers_as_orthanc(client: httpx.Client, oracle: Any) -> None:
    ours = upload_on_both(client, oracle, "MDDIFF")
    instance, patient = ours["ID"], ours["ParentPatient"]
    requests = [
        ("GET", f"/instances/{instance}/metadata/ReceptionDate", None),
        ("GET", f"/instances/{instance}/metadata/2", None),
        ("GET", f"/instances/{instance}/metadata/1024", None),
        ("GET", f"/instances/{instance}/metadata/Nope", None),
        ("GET", f"/instances/{instance}/metadata/+2", None),
        ("GET", f"/instances/{instance}/metadata/02", None),
        ("GET", f"/instances/{instance}/metadata/%202", None),
        ("GET", f"/instances/{instance}/metadata/2147483648", None),
        ("PUT", f"/instances/{instance}/metadata/-2147483649", b"x"),
        ("DELETE", f"/instances/{instance}/metadata/1024%20", None),
        ("GET", f"/instances/{instance}/metadata/-", None),
        ("GET", f"/instances/{instance}/metadata/-1", None),
        ("GET", "/instances/nope/metadata", None),
        ("GET", "/instances/nope/metadata/ReceptionDate", None),
        ("PUT", f"/instances/{instance}/metadata/ReceptionDate", b"x"),
        ("DELETE", f"/instances/{instance}/metadata/ReceptionDate", None),
        ("PUT", f"/instances/{instance}/metadata/70000", b"x"),
        ("DELETE", "/instances/nope/metadata/ReceptionDate", None),
        ("PUT", "/instances/nope/metadata/1024", b"x"),
        ("DELETE", f"/patients/{patient}/metadata/1024", None),
        ("PUT", f"/patients/{patient}/metadata/1024", b"value"),
        ("GET", f"/patients/{patient}/metadata/1024", None),
        ("PUT", f"/patients/{patient}/metadata/1024", b"v", {"If-Match": "garbage"}),
        ("PUT", f"/patients/{patient}/metadata/1024", b"v", {"If-Match": "1" * 20 + "-x"}),
        ("DELETE", f"/patients/{patient}/metadata/1024", None, {"If-Match": "-1-x"}),
        ("PUT", f"/patients/{patient}/metadata/1024", b"v", {"If-Match": etag(9, "value")}),
        ("DELETE", f"/patients/{patient}/metadata/1024", None, {"If-Match": etag(9, "value")}),
        ("DELETE", f"/patients/{patient}/metadata/1024", None),
        ("GET", f"/patients/{patient}/metadata/1024", None),
    ]
    for method, path, mine, reference in replay_on_both(client, oracle.client, requests):
        if "etag" in reference.headers and method == "PUT":
            assert mine.headers["etag"] == reference.headers["etag"], (method, path)
    mine = client.get(f"/instances/{instance}/metadata", params={"expand": ""}).json()
    reference = oracle.client.get(f"/instances/{instance}/metadata", params={"expand": ""}).json()
    for name in ("IndexInSeries", "Origin", "TransferSyntax", "SopClassUid", "RemoteAET"):
        assert mine[name] == reference[name], name
    # Each level's own metadata: names and the values that do not hold a date.
    for level, key in (("patients", "ParentPatient"), ("studies", "ParentStudy")):
        path = f"/{level}/{ours[key]}/metadata"
        assert client.get(path).json() == oracle.client.get(path).json(), level
    path = f"/series/{ours['ParentSeries']}/metadata"
    mine, reference = client.get(path).json(), oracle.client.get(path).json()
    assert sorted(mine) == sorted(reference)
    assert client.get(f"{path}/RemoteAET").text == oracle.client.get(f"{path}/RemoteAET").text


def test_sop_class_metadata_only_when_the_file_has_one(client: httpx.Client, oracle: Any) -> None:
    """As Orthanc, an instance without SOPClassUID has no SopClassUid metadata; an
    empty one is recorded empty."""
    from dicom_factory import make_dataset, to_bytes

    files = {}
    for name, value in (("absent", None), ("empty", ""), ("given", "1.2.840.10008.5.1.4.1.1.7")):
        ds = make_dataset(patient_id=f"MDSOP{name}{uuid.uuid4().hex[:6]}")
        if value is None:
            del ds.SOPClassUID  # (the file meta keeps its own)
        else:
            ds.SOPClassUID = value
        files[name] = to_bytes(ds)
    expected = {"absent": None, "empty": "", "given": "1.2.840.10008.5.1.4.1.1.7"}
    for name, data in files.items():
        instance = upload(client, data)["ID"]
        metadata = client.get(f"/instances/{instance}/metadata", params={"expand": ""}).json()
        assert metadata.get("SopClassUid") == expected[name], name
        if oracle is not None:
            theirs = oracle.upload(data)["ID"]
            reference = oracle.client.get(
                f"/instances/{theirs}/metadata", params={"expand": ""}
            ).json()
            assert metadata.get("SopClassUid") == reference.get("SopClassUid"), name


def _missing_metadata_requests(instance: str) -> list[tuple[str, str, bytes | None]]:
    base = f"/instances/{instance}/metadata"
    return [
        ("DELETE", f"{base}/5000", None),
        ("GET", f"{base}/Nope", None),
        ("DELETE", f"{base}/Nope", None),
        ("PUT", f"{base}/Nope", b"x"),
    ]


def test_missing_metadata_is_a_404_without_details(client: httpx.Client) -> None:
    """As Orthanc: no Details on the 404 of an absent item or an unknown name."""
    instance = upload(client, make_dicom(patient_id="META-MISSING"))["ID"]
    for method, path, body in _missing_metadata_requests(instance):
        response = client.request(method, path, content=body)
        expected = (
            ("Accessing an inexistent item", 7) if "/Nope" in path else ("Unknown resource", 17)
        )
        error = assert_orthanc_error(response, 404, *expected)
        assert "Details" not in error, (method, path)


def test_missing_metadata_like_the_oracle(client: httpx.Client, oracle) -> None:  # type: ignore[no-untyped-def]
    instance = upload_on_both(client, oracle, "HELPER-compat13-meta")["ID"]
    requests = _missing_metadata_requests(instance)
    for _method, _path, ours, theirs in replay_on_both(client, oracle.client, requests):
        assert ours.json().get("Details") == theirs.json().get("Details")
