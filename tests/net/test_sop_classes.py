"""``/tools/accepted-sop-classes`` and ``/tools/unknown-sop-class-accepted`` against the
listener: a pynetdicom peer proposes a private SOP class, with several HTTP workers."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator

import httpx
import pytest
from archive_checks import assert_orthanc_error, oracle_client
from conftest import RunningServer
from dicom_factory import make_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context

from dicomhub.core.accepted_sop_classes import known_storage_classes
from net import LOOPBACK, dicom_port

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
#: A SOP class no dictionary knows (a private root).
PRIVATE = "1.3.6.1.4.1.999999.7.1"


@pytest.fixture
def oracle() -> Iterator[httpx.Client | None]:
    client = oracle_client()
    yield client
    if client is not None:
        client.close()


def _store_private(port: int) -> tuple[bool, int | None]:
    """Propose the private class (and CT) and store one instance of it when accepted:
    (context accepted, C-STORE status)."""
    ae = AE(ae_title="PYSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    contexts = [
        build_context(PRIVATE, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]),
        build_context(CT, [ExplicitVRLittleEndian]),
    ]
    assoc = ae.associate(LOOPBACK, port, contexts, ae_title="ORTHANC")
    assert assoc.is_established
    try:
        accepted = any(cx.abstract_syntax == PRIVATE for cx in assoc.accepted_contexts)
        if not accepted:
            return False, None
        ds = make_dataset(patient_id="PRIVATE1")
        ds.SOPClassUID = PRIVATE
        ds.file_meta.MediaStorageSOPClassUID = PRIVATE
        status = assoc.send_c_store(ds)
        return True, int(status.Status)
    finally:
        assoc.release()


def test_accepted_sop_classes_follow_configuration(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(
        AcceptedSopClasses=["1.2.840.10008.5.1.4.1.1.*"],
        RejectedSopClasses=["1.2.840.10008.5.1.4.1.1.4*"],
    )
    answer = server.client.get("/tools/accepted-sop-classes")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    classes = answer.json()
    assert CT in classes and MR not in classes
    assert classes == sorted(classes)
    assert all(fnmatch.fnmatchcase(uid, "1.2.840.10008.5.1.4.1.1.*") for uid in classes)
    assert not any(fnmatch.fnmatchcase(uid, "1.2.840.10008.5.1.4.1.1.4*") for uid in classes)
    # the listener agrees: an MR context is refused, CT is taken
    ae = AE(ae_title="PYSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(
        LOOPBACK, dicom_port(server), [build_context(CT), build_context(MR)], ae_title="ORTHANC"
    )
    assert assoc.is_established
    assert {str(cx.abstract_syntax) for cx in assoc.accepted_contexts} == {CT}
    assoc.release()


def test_all_known_storage_classes_by_default(make_server: Callable[..., RunningServer]) -> None:
    server = make_server()
    assert server.client.get("/tools/accepted-sop-classes").json() == known_storage_classes()


def test_unknown_sop_class_switch_reaches_the_listener(
    make_server: Callable[..., RunningServer], oracle: httpx.Client | None
) -> None:
    server = make_server(HttpWorkers=2)
    port = dicom_port(server)
    answer = server.client.get("/tools/unknown-sop-class-accepted")
    assert (answer.status_code, answer.text) == (200, "0")
    assert answer.headers["content-type"].startswith("text/plain")
    if oracle is not None:  # same shape as the reference (which also defaults to off)
        theirs = oracle.get("/tools/unknown-sop-class-accepted")
        assert theirs.text in ("0", "1")
        assert theirs.headers["content-type"].startswith("text/plain")
    assert _store_private(port) == (False, None)

    put = server.client.put("/tools/unknown-sop-class-accepted", content=b"1")
    assert (put.status_code, put.text) == (200, "")
    # whichever worker answers, the value is the same
    assert {server.client.get("/tools/unknown-sop-class-accepted").text for _ in range(6)} == {"1"}
    assert _store_private(port) == (True, 0x0000)
    [instance] = server.client.get("/instances").json()
    tags = server.client.get(f"/instances/{instance}/simplified-tags").json()
    assert tags["SOPClassUID"] == PRIVATE

    server.client.put("/tools/unknown-sop-class-accepted", content=b" false\n")
    assert server.client.get("/tools/unknown-sop-class-accepted").text == "0"
    assert _store_private(port) == (False, None)


def test_unknown_sop_class_from_configuration_and_rejected(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(UnknownSopClassAccepted=True)
    assert server.client.get("/tools/unknown-sop-class-accepted").text == "1"
    assert _store_private(dicom_port(server)) == (True, 0x0000)
    # RejectedSopClasses wins over UnknownSopClassAccepted
    refusing = make_server(UnknownSopClassAccepted=True, RejectedSopClasses=["1.3.6.1.4.1.*"])
    assert _store_private(dicom_port(refusing)) == (False, None)
    assert refusing.client.get("/instances").json() == []


@pytest.mark.parametrize("body", [b"", b"abc", b"2", b"FALSE"])
def test_bad_boolean_changes_nothing(
    make_server: Callable[..., RunningServer], oracle: httpx.Client | None, body: bytes
) -> None:
    server = make_server(UnknownSopClassAccepted=True)
    response = server.client.put("/tools/unknown-sop-class-accepted", content=body)
    error = assert_orthanc_error(response, 400, "Bad file format", 15, "PUT")
    assert error["Details"] == "Boolean value expected"
    assert server.client.get("/tools/unknown-sop-class-accepted").text == "1"
    if oracle is not None:  # a refused body changes nothing at the reference either
        theirs = oracle.put("/tools/unknown-sop-class-accepted", content=body)
        assert theirs.status_code == 400
        assert theirs.json()["Message"] == "Bad file format"
