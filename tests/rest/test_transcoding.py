"""Transcoding over REST and at ingest: ``/file?transcode``, ``IngestTranscoding`` (REST
and C-STORE), ``Transcode`` in archives and peer stores, and
``/tools/accepted-transfer-syntaxes``; pixels checked against the uploaded arrays."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from archive_checks import OracleUploads, assert_orthanc_error, oracle_uploads, upload
from conftest import RunningServer
from dicom_factory import CT_IMAGE_STORAGE, make_dataset, to_bytes
from image_factory import grey, rgb
from pydicom import dcmread
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from dicomhub.core.accepted_syntaxes import known_syntaxes
from tests.net import dicom_port, output, storescu


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _ramp() -> np.ndarray:
    y, x = np.mgrid[0:32, 0:24]
    return ((x * 5 + y * 3) % 256).astype(np.uint8)


def _ct() -> np.ndarray:
    return (np.arange(32 * 24, dtype=np.int32).reshape(32, 24) * 29 % 3000 - 1000).astype(np.int16)


def _file(response: httpx.Response):  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom"
    return dcmread(io.BytesIO(response.content))


# ---- GET /instances/{id}/file?transcode= ----------------------------------------------


@pytest.mark.parametrize(
    "target",
    [ImplicitVRLittleEndian, JPEGLSLossless, JPEG2000Lossless, RLELossless, JPEGLosslessSV1],
)
def test_file_transcoded_losslessly(client: httpx.Client, target: str) -> None:
    ds = grey(_ct())
    answer = upload(client, to_bytes(ds))
    out = _file(client.get(f"/instances/{answer['ID']}/file", params={"transcode": target}))
    assert out.file_meta.TransferSyntaxUID == target
    assert out.SOPInstanceUID == ds.SOPInstanceUID
    np.testing.assert_array_equal(out.pixel_array, _ct())
    # the stored file is untouched
    stored = _file(client.get(f"/instances/{answer['ID']}/file"))
    assert stored.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_file_transcoded_lossy_with_quality(client: httpx.Client) -> None:
    noise = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    answer = upload(client, to_bytes(rgb(noise)))
    url = f"/instances/{answer['ID']}/file"
    low = client.get(url, params={"transcode": JPEGBaseline8Bit, "lossy-quality": "10"})
    high = client.get(url, params={"transcode": JPEGBaseline8Bit, "lossy-quality": "95"})
    default = client.get(url, params={"transcode": JPEGBaseline8Bit})
    sizes = [len(r.content) for r in (low, default, high)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[2]
    out = _file(high)
    assert out.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert out.PhotometricInterpretation == "YBR_FULL_422"
    assert out.LossyImageCompression == "01"
    error = np.abs(out.pixel_array.astype(int) - noise).mean()
    assert error < np.abs(_file(low).pixel_array.astype(int) - noise).mean()


def test_file_transcoding_errors(client: httpx.Client) -> None:
    answer = upload(client, to_bytes(grey(_ct())))
    url = f"/instances/{answer['ID']}/file"
    body = assert_orthanc_error(
        client.get(url, params={"transcode": "1.2.3"}), 400, "Parameter out of range", 3
    )
    assert body["Details"] == "Unknown transfer syntax: 1.2.3"
    # 16-bit samples cannot be JPEG baseline: Orthanc's "cannot transcode" (500)
    body = assert_orthanc_error(
        client.get(url, params={"transcode": JPEGBaseline8Bit}), 500, "Internal error", -1
    )
    assert "Cannot transcode to transfer syntax" in body["Details"]
    assert_orthanc_error(
        client.get(url, params={"transcode": JPEGBaseline8Bit, "lossy-quality": "0"}),
        400,
        "Bad request",
        8,
    )
    assert_orthanc_error(
        client.get("/instances/nope/file", params={"transcode": JPEGLSLossless}),
        404,
        "Unknown resource",
        17,
    )


# ---- IngestTranscoding ------------------------------------------------------------------


def test_ingest_transcoding_lossless_keeps_identifiers(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(IngestTranscoding=JPEGLSLossless)
    ds = grey(_ct())
    answer = upload(server.client, to_bytes(ds))
    instance = answer["ID"]
    # the identifiers are those of the file (lossless keeps the SOP Instance UID)
    plain = make_server()
    assert upload(plain.client, to_bytes(ds))["ID"] == instance
    stored = _file(server.client.get(f"/instances/{instance}/file"))
    assert stored.file_meta.TransferSyntaxUID == JPEGLSLossless
    np.testing.assert_array_equal(stored.pixel_array, _ct())
    meta = server.client.get(f"/instances/{instance}/metadata/TransferSyntax").text
    assert meta == JPEGLSLossless


def test_ingest_transcoding_lossy_gives_a_new_instance(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(IngestTranscoding=JPEGBaseline8Bit, DicomLossyTranscodingQuality=80)
    ds = grey(_ramp())
    answer = upload(server.client, to_bytes(ds))
    stored = _file(server.client.get(f"/instances/{answer['ID']}/file"))
    assert stored.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert stored.SOPInstanceUID != ds.SOPInstanceUID  # hence another Orthanc ID
    assert stored.StudyInstanceUID == ds.StudyInstanceUID
    assert answer["ParentStudy"] == upload(make_server().client, to_bytes(ds))["ParentStudy"]
    assert np.abs(stored.pixel_array.astype(int) - _ramp()).mean() < 4


def test_ingest_transcoding_switches_and_fallbacks(
    make_server: Callable[..., RunningServer],
) -> None:
    off = make_server(IngestTranscoding=RLELossless, IngestTranscodingOfUncompressed=False)
    answer = upload(off.client, to_bytes(grey(_ct())))
    assert off.client.get(f"/instances/{answer['ID']}/metadata/TransferSyntax").text == (
        ExplicitVRLittleEndian
    )
    # compressed sources still follow IngestTranscodingOfCompressed (true by default)
    ds = grey(_ct())
    ds.compress(JPEGLSLossless)
    answer = upload(off.client, to_bytes(ds))
    assert off.client.get(f"/instances/{answer['ID']}/metadata/TransferSyntax").text == (
        RLELossless
    )

    lossy = make_server(IngestTranscoding=JPEGBaseline8Bit)
    # 16-bit pixels cannot be JPEG baseline: the original is stored
    answer = upload(lossy.client, to_bytes(grey(_ct())))
    assert answer["Status"] == "Success"
    assert lossy.client.get(f"/instances/{answer['ID']}/metadata/TransferSyntax").text == (
        ExplicitVRLittleEndian
    )
    # no pixel data: not compressed
    report = make_dataset(patient_id="SR")
    del report.PixelData
    answer = upload(lossy.client, to_bytes(report))
    assert lossy.client.get(f"/instances/{answer['ID']}/metadata/TransferSyntax").text == (
        ExplicitVRLittleEndian
    )


def test_ingest_transcoding_over_c_store(
    make_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    server = make_server(IngestTranscoding=JPEG2000Lossless)
    path = tmp_path / "ct.dcm"
    path.write_bytes(to_bytes(grey(_ct())))
    result = storescu(dicom_port(server), [path])
    assert result.returncode == 0, output(result)
    [instance] = server.client.get("/instances").json()
    stored = _file(server.client.get(f"/instances/{instance}/file"))
    assert stored.file_meta.TransferSyntaxUID == JPEG2000Lossless
    np.testing.assert_array_equal(stored.pixel_array, _ct())


# ---- archives and peers --------------------------------------------------------------


def _members(response: httpx.Response) -> list:  # type: ignore[type-arg]
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    return [
        dcmread(io.BytesIO(archive.read(name))) for name in archive.namelist() if name != "DICOMDIR"
    ]


def test_archive_transcode(client: httpx.Client, oracle: OracleUploads | None) -> None:
    grey_file, colour = to_bytes(grey(_ct())), to_bytes(rgb(np.stack([_ramp()] * 3, axis=-1)))
    ids = [upload(client, grey_file)["ID"], upload(client, colour)["ID"]]
    for target in (JPEGLSLossless, JPEGLosslessSV1):
        body = {"Resources": ids, "Transcode": target}
        ours = _members(client.post("/tools/create-archive", json=body))
        assert [m.file_meta.TransferSyntaxUID for m in ours] == [target, target]
        [grey_member] = [m for m in ours if m.SamplesPerPixel == 1]
        np.testing.assert_array_equal(grey_member.pixel_array, _ct())
        if oracle is not None:  # Orthanc writes these two syntaxes too
            theirs_ids = [oracle.upload(grey_file)["ID"], oracle.upload(colour)["ID"]]
            body = {"Resources": theirs_ids, "Transcode": target}
            theirs = _members(oracle.client.post("/tools/create-archive", json=body))
            assert sorted(m.file_meta.TransferSyntaxUID for m in theirs) == [target, target]
            for mine, other in zip(
                sorted(ours, key=lambda m: m.SOPInstanceUID),
                sorted(theirs, key=lambda m: m.SOPInstanceUID),
                strict=True,
            ):
                assert mine.SOPInstanceUID == other.SOPInstanceUID  # lossless keeps it
                np.testing.assert_array_equal(mine.pixel_array, other.pixel_array)

    # GET form, media with DICOMDIR, and a file that cannot be transcoded goes as stored
    series = upload(client, grey_file)["ParentSeries"]
    media = client.get(f"/series/{series}/media", params={"transcode": JPEGBaseline8Bit})
    [member] = _members(media)
    assert member.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    media = client.get(f"/series/{series}/media", params={"transcode": RLELossless})
    assert _members(media)[0].file_meta.TransferSyntaxUID == RLELossless
    body = assert_orthanc_error(
        client.post("/tools/create-archive", json={"Resources": ids, "Transcode": "9.9"}),
        400,
        "Parameter out of range",
        3,
    )
    assert body["Details"] == "Unknown transfer syntax: 9.9"


def test_archive_transcode_asynchronous(client: httpx.Client) -> None:
    ids = [upload(client, to_bytes(grey(_ct())))["ID"]]
    job = client.post(
        "/tools/create-archive",
        json={"Resources": ids, "Transcode": RLELossless, "Asynchronous": True},
    ).json()["ID"]
    deadline = time.monotonic() + 30
    state = ""
    while time.monotonic() < deadline and state not in ("Success", "Failure"):
        state = client.get(f"/jobs/{job}").json()["State"]
        time.sleep(0.05)
    assert state == "Success"
    [member] = _members(client.get(f"/jobs/{job}/archive"))
    assert member.file_meta.TransferSyntaxUID == RLELossless
    np.testing.assert_array_equal(member.pixel_array, _ct())


def test_peer_store_transcode(make_server: Callable[..., RunningServer]) -> None:
    source, target = make_server(), make_server()
    source.client.put("/peers/target", json={"Url": target.url})
    ids = [upload(source.client, to_bytes(grey(_ct())))["ID"] for _ in range(2)]
    answer = source.client.post(
        "/peers/target/store", json={"Resources": ids[:1], "Transcode": JPEG2000Lossless}
    )
    assert answer.status_code == 200, answer.text
    received = _file(target.client.get(f"/instances/{ids[0]}/file"))
    assert received.file_meta.TransferSyntaxUID == JPEG2000Lossless
    np.testing.assert_array_equal(received.pixel_array, _ct())

    job = source.client.post(
        "/peers/target/store",
        json={"Resources": ids[1:], "Transcode": RLELossless, "Asynchronous": True},
    ).json()["ID"]
    deadline = time.monotonic() + 30
    state = ""
    while time.monotonic() < deadline and state not in ("Success", "Failure"):
        state = source.client.get(f"/jobs/{job}").json()["State"]
        time.sleep(0.05)
    assert state == "Success"
    received = _file(target.client.get(f"/instances/{ids[1]}/file"))
    assert received.file_meta.TransferSyntaxUID == RLELossless

    # As Orthanc's peer store job (seen on 1.10.1): a bad file format, before the peer
    # is looked up; an empty or null value is no "no transcoding".
    for value, details in (
        ("1.2", "Unknown transfer syntax UID: 1.2"),
        ("", "Unknown transfer syntax UID: "),
        (f"{RLELossless} ", f"Unknown transfer syntax UID: {RLELossless} "),
        (None, "String value expected in field: Transcode"),
    ):
        for peer in ("target", "unknown-peer"):
            body = {"Resources": ids, "Transcode": value}
            error = assert_orthanc_error(
                source.client.post(f"/peers/{peer}/store", json=body), 400, "Bad file format", 15
            )
            assert error["Details"] == details


#: ``Transcode`` values that are no transfer syntax (Orthanc reads the exact text).
BAD_TRANSCODES = ["nope", "", " ", "1.2.3", f"{JPEGLSLossless} ", CT_IMAGE_STORAGE]


def _transcode_requests(answer: dict[str, str]) -> list[tuple[str, str, object]]:
    """Each request with a bad ``Transcode``/``transcode``, on the resource of ``answer``."""
    requests: list[tuple[str, str, object]] = []
    levels = {"patients": "ParentPatient", "studies": "ParentStudy", "series": "ParentSeries"}
    for value in [*BAD_TRANSCODES, 12, None]:
        for level, key in levels.items():
            modify = {"Transcode": value, "Replace": {"InstitutionName": "X"}}
            requests.append(("POST", f"/{level}/{answer[key]}/modify", modify))
            requests.append(("POST", f"/{level}/{answer[key]}/anonymize", {"Transcode": value}))
        resources = [answer["ParentPatient"]]
        requests.append(
            ("POST", "/tools/bulk-anonymize", {"Resources": resources, "Transcode": value})
        )
        modify = {"Transcode": value, "Replace": {"InstitutionName": "X"}}
        requests.append(("POST", f"/instances/{answer['ID']}/modify", modify))
        requests.append(
            ("POST", "/tools/create-archive", {"Resources": resources, "Transcode": value})
        )
    for value in ["", "nope", "1.2.3"]:
        requests.append(
            ("GET", f"/patients/{answer['ParentPatient']}/archive?transcode={value}", None)
        )
    return requests


def _error(response: httpx.Response) -> tuple[int, int | None, str | None]:
    body = response.json()
    return response.status_code, body.get("OrthancStatus"), body.get("Details")


def test_bad_transcode_answers_as_orthanc(client: httpx.Client) -> None:
    """A job's body (patients, studies, series, bulk) says "Unknown transfer syntax UID"
    (Bad file format), a single instance and the archives "Unknown transfer syntax"
    (Parameter out of range), as Orthanc; nothing is trimmed, and "" is no syntax."""
    answer = upload(client, to_bytes(make_dataset(patient_id="TRANSCODE-BAD")))
    for method, path, body in _transcode_requests(answer):
        response = client.request(method, path, json=body)
        value = body.get("Transcode") if isinstance(body, dict) else path.split("=", 1)[1]
        if not isinstance(value, str):
            expected = (400, 15, "String value expected in field: Transcode")
        elif method == "POST" and path.startswith(
            ("/patients/", "/studies/", "/series/", "/tools/bulk")
        ):
            expected = (400, 15, f"Unknown transfer syntax UID: {value}")
        else:
            expected = (400, 3, f"Unknown transfer syntax: {value}")
        assert _error(response) == expected, (method, path, body)
    # The Transcode field is read before the resource is looked up.
    unknown = "00000000-00000000-00000000-00000000-00000000"
    response = client.post(f"/series/{unknown}/anonymize", json={"Transcode": "nope"})
    assert _error(response) == (400, 15, "Unknown transfer syntax UID: nope")


def test_bad_transcode_like_the_oracle(client: httpx.Client, oracle: OracleUploads | None) -> None:
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    data = to_bytes(make_dataset(patient_id="HELPER-compat13-transcode"))
    ours, theirs = upload(client, data), oracle.upload(data)
    assert ours["ID"] == theirs["ID"]
    for method, path, body in _transcode_requests(ours):
        mine = client.request(method, path, json=body)
        reference = oracle.client.request(method, path, json=body)
        assert _error(mine) == _error(reference), (method, path, body)


# ---- /tools/accepted-transfer-syntaxes ------------------------------------------------


def test_accepted_transfer_syntaxes(
    make_server: Callable[..., RunningServer], tmp_path: Path, oracle: OracleUploads | None
) -> None:
    server = make_server(RleTransferSyntaxAccepted=False)
    accepted = server.client.get("/tools/accepted-transfer-syntaxes").json()
    assert ExplicitVRLittleEndian in accepted and JPEGLSLossless in accepted
    assert RLELossless not in accepted
    if oracle is not None:  # the reference accepts its whole list by default
        theirs = oracle.client.get("/tools/accepted-transfer-syntaxes").json()
        # (retired syntaxes that pydicom does not list are not negotiated here)
        assert (set(theirs) & set(known_syntaxes())) - {RLELossless} <= set(accepted)

    # only JPEG-LS lossless and implicit from now on (wildcards allowed)
    answer = server.client.put(
        "/tools/accepted-transfer-syntaxes", json=["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.8?"]
    )
    assert answer.status_code == 200
    assert answer.json() == [
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
    ]
    assert server.client.get("/tools/accepted-transfer-syntaxes").json() == answer.json()
    # storescu proposes explicit/implicit little endian: implicit is what is left
    path = tmp_path / "ct.dcm"
    path.write_bytes(to_bytes(grey(_ct())))
    result = storescu(dicom_port(server), [path])
    assert result.returncode == 0, output(result)
    [first] = server.client.get("/instances").json()
    assert server.client.get(f"/instances/{first}/metadata/TransferSyntax").text == (
        ImplicitVRLittleEndian
    )
    # a plain-text UID works too; then explicit only: storescu must use explicit
    answer = server.client.put("/tools/accepted-transfer-syntaxes", content=b"1.2.840.10008.1.2.1")
    assert answer.json() == ["1.2.840.10008.1.2.1"]
    path.write_bytes(to_bytes(grey(_ct())))
    result = storescu(dicom_port(server), [path])
    assert result.returncode == 0, output(result)
    [second] = set(server.client.get("/instances").json()) - {first}
    assert server.client.get(f"/instances/{second}/metadata/TransferSyntax").text == (
        ExplicitVRLittleEndian
    )
    assert_orthanc_error(
        server.client.put("/tools/accepted-transfer-syntaxes", json={"a": 1}),
        400,
        "Bad file format",
        15,
    )
