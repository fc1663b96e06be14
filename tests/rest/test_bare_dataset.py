"""Uploads without the Part 10 header: a data set alone (implicit or explicit VR, as
pydicom writes it without ``enforce_file_format``) or its file meta group then the
data set, with neither preamble nor ``DICM``. The reference stores them as they are,
with the transfer syntax their encoding shows; every route that reads the stored
file works on them. Also: bodies that are no DICOM at all, and the identifying UIDs
present but empty (a bad file) or absent (an inexistent tag)."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from archive_checks import assert_orthanc_error, oracle_uploads, statistics, upload
from conftest import RunningServer, start_server
from dicom_factory import make_dataset, to_bytes
from net import LOOPBACK, StoreScp, dcmtk, dicom_port, output, run, storescp_fixture
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import generate_uid

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
CT = "1.2.840.10008.5.1.4.1.1.2"


def bare(ds: Dataset, implicit: bool, little: bool = True) -> bytes:
    """``ds`` written as a data set alone: no preamble, no ``DICM``, no file meta."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, implicit_vr=implicit, little_endian=little, enforce_file_format=False)
    data = buffer.getvalue()
    assert data[128:132] != b"DICM" and data[:2] != b"\x02\x00"
    return data


def _swapped(ds: Dataset) -> Dataset:
    """``ds`` with its pixel bytes in big endian order (pydicom writes them as given)."""
    ds.PixelData = np.frombuffer(ds.PixelData, dtype="<u2").astype(">u2").tobytes()
    return ds


def meta_then_dataset(ds: Dataset) -> bytes:
    """The Part 10 file of ``ds`` without its preamble and ``DICM``: group 0002 first."""
    data = to_bytes(ds)[132:]
    assert data[:2] == b"\x02\x00"
    return data


def _dataset(patient: str) -> Dataset:
    ds = make_dataset(patient_id=patient, rows=4, columns=6)
    del ds.file_meta
    return ds


#: name -> (the body made of a data set, its transfer syntax, whether it has a file meta)
FORMS: dict[str, tuple[Callable[[Dataset], bytes], str, bool]] = {
    "implicit": (lambda ds: bare(ds, True), IMPLICIT, False),
    "explicit": (lambda ds: bare(ds, False), EXPLICIT, False),
    "big-endian": (lambda ds: bare(_swapped(ds), False, little=False), BIG_ENDIAN, False),
    "meta-no-preamble": (lambda ds: meta_then_dataset(make_dataset_with_meta(ds)), EXPLICIT, True),
}


def make_dataset_with_meta(ds: Dataset) -> Dataset:
    full = make_dataset(
        patient_id=ds.PatientID,
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        sop_uid=ds.SOPInstanceUID,
        rows=ds.Rows,
        columns=ds.Columns,
    )
    full.InstanceNumber = ds.InstanceNumber
    return full


def body_of(form: str, patient: str) -> tuple[bytes, Dataset]:
    ds = _dataset(patient)
    make, _, _ = FORMS[form]
    return make(ds), ds


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("bare"))
    yield server
    server.stop()


@pytest.fixture
def oracle() -> Iterator:
    yield from oracle_uploads()


def _pixels(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)))


# ---- storing and reading -----------------------------------------------------------
@pytest.mark.parametrize("form", list(FORMS))
def test_bare_dataset_is_stored_as_uploaded(shared: RunningServer, oracle, form: str) -> None:
    client = shared.client
    data, ds = body_of(form, f"BARE{form[:3].upper()}{generate_uid()[-6:]}")
    _, syntax, has_meta = FORMS[form]
    answer = upload(client, data)
    assert answer["Status"] == "Success"
    instance = f"/instances/{answer['ID']}"

    assert client.get(f"{instance}/metadata/TransferSyntax").text == syntax
    assert client.get(f"{instance}/metadata/SopClassUid").text == CT
    assert client.get(f"{instance}/file").content == data
    header = client.get(f"{instance}/header").json()
    if has_meta:
        assert header["0002,0010"]["Value"] == syntax
    else:
        assert header == {}  # the file has no meta: nothing made up
    simplified = client.get(f"{instance}/simplified-tags").json()
    assert simplified["PatientID"] == ds.PatientID
    assert simplified["SOPInstanceUID"] == ds.SOPInstanceUID
    tags = client.get(f"{instance}/tags").json()
    assert tags["0010,0020"]["Value"] == ds.PatientID
    assert "0010-0020" in client.get(f"{instance}/content").json()
    assert client.get(f"{instance}/content/0010-0020").content.rstrip(b" \0") == (
        ds.PatientID.encode()
    )
    expected = np.frombuffer(ds.PixelData, dtype=raw_dtype(syntax)).reshape(ds.Rows, ds.Columns)
    assert np.array_equal(_pixels(client.get(f"{instance}/image-uint16")), expected)
    raw = client.get(f"{instance}/frames/0/raw")  # the samples in little endian
    assert raw.status_code == 200 and raw.content == expected.astype("<u2").tobytes()
    preview = _pixels(client.get(f"{instance}/preview"))
    assert preview.shape == expected.shape

    if oracle is None:
        return
    theirs = oracle.upload(data)
    assert theirs["ID"] == answer["ID"] and theirs["Status"] == "Success"
    reference = f"/instances/{theirs['ID']}"
    for route in ("metadata/TransferSyntax", "metadata/SopClassUid"):
        assert (
            client.get(f"{instance}/{route}").text == oracle.client.get(f"{reference}/{route}").text
        )
    assert oracle.client.get(f"{reference}/file").content == data
    for route in ("tags", "simplified-tags", "header", "content", "frames"):
        ours = client.get(f"{instance}/{route}").json()
        assert ours == oracle.client.get(f"{reference}/{route}").json(), route
    raw = oracle.client.get(f"{reference}/frames/0/raw").content
    assert client.get(f"{instance}/frames/0/raw").content == raw
    assert np.array_equal(preview, _pixels(oracle.client.get(f"{reference}/preview")))
    assert np.array_equal(
        _pixels(client.get(f"{instance}/image-uint16")),
        _pixels(oracle.client.get(f"{reference}/image-uint16")),
    )


def raw_dtype(syntax: str) -> str:
    return ">u2" if syntax == BIG_ENDIAN else "<u2"


@pytest.mark.parametrize("form", ["implicit", "explicit", "meta-no-preamble"])
def test_bare_dataset_is_modified_and_archived(shared: RunningServer, form: str) -> None:
    client = shared.client
    data, ds = body_of(form, f"BAREMOD{generate_uid()[-6:]}")
    _, syntax, _ = FORMS[form]
    answer = upload(client, data)
    instance = f"/instances/{answer['ID']}"

    for route, body in (
        ("modify", {"Replace": {"PatientName": "Changed^Name"}}),
        ("anonymize", {}),
    ):
        response = client.post(f"{instance}/{route}", json=body)
        assert response.status_code == 200, response.text
        written = dcmread(io.BytesIO(response.content))  # a Part 10 file, in the same syntax
        assert response.content[128:132] == b"DICM"
        assert written.file_meta.TransferSyntaxUID == syntax
        assert written.file_meta.MediaStorageSOPClassUID == CT
        assert written.PixelData == ds.PixelData
    assert written.PatientName != ds.PatientName

    series = client.post(
        f"/series/{answer['ParentSeries']}/modify", json={"Replace": {"SeriesDescription": "x"}}
    )
    assert series.status_code == 200, series.text
    new_instance = client.get(f"/series/{series.json()['ID']}/instances").json()[0]["ID"]
    new_file = client.get(f"/instances/{new_instance}/file").content
    assert dcmread(io.BytesIO(new_file)).SeriesDescription == "x"
    assert client.get(f"/instances/{new_instance}/metadata/TransferSyntax").text == syntax

    archive = client.get(f"/series/{answer['ParentSeries']}/archive")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        (member,) = zipped.namelist()
        assert zipped.read(member) == data  # the stored bytes, as the reference


def test_create_dicom_under_a_series_of_bare_datasets(shared: RunningServer) -> None:
    data, ds = body_of("implicit", f"BARENEW{generate_uid()[-6:]}")
    answer = upload(shared.client, data)
    created = shared.client.post(
        "/tools/create-dicom",
        json={
            "Parent": answer["ParentSeries"],
            "Tags": {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"},
        },
    )
    assert created.status_code == 200, created.text
    assert created.json()["ParentSeries"] == answer["ParentSeries"]


# ---- bodies that are no DICOM --------------------------------------------------------
def _cut_preamble() -> bytes:
    """A Part 10 file whose 128-byte preamble is cut off: ``DICM`` first. Refused."""
    return to_bytes(make_dataset(patient_id="BARE_CUT"))[128:]


NOT_DICOM: dict[str, tuple[Callable[[], bytes], str]] = {
    "random": (lambda: os.urandom(2000), "Cannot parse an invalid DICOM file (size: 2000 bytes)"),
    "few-bytes": (
        lambda: b"\x08\x00\x05\x00",
        "Cannot parse an invalid DICOM file (size: 4 bytes)",
    ),
    "text": (lambda: b"hello, this is not DICOM at all\n" * 4, None),
    "empty": (lambda: b"", "Received an empty DICOM file"),
    "cut-preamble": (_cut_preamble, None),
}


@pytest.mark.parametrize("case", list(NOT_DICOM))
def test_what_is_no_dicom_is_a_bad_file(shared: RunningServer, oracle, case: str) -> None:
    make, details = NOT_DICOM[case]
    body = make()
    before = statistics(shared.client)["CountInstances"]
    response = shared.client.post("/instances", content=body)
    got = assert_orthanc_error(response, 400, "Bad file format", 15)
    expected = details or f"Cannot parse an invalid DICOM file (size: {len(body)} bytes)"
    assert got["Details"] == expected
    assert statistics(shared.client)["CountInstances"] == before
    if oracle is not None:
        theirs = oracle.client.post("/instances", content=body)
        assert theirs.status_code == 400
        assert theirs.json()["OrthancStatus"] == 15
        assert theirs.json()["Details"] == got["Details"]


# ---- empty or absent identifying UIDs -----------------------------------------------
UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _with(patient: str, empty: tuple[str, ...] = (), absent: tuple[str, ...] = ()) -> Dataset:
    ds = make_dataset(patient_id=patient)
    for keyword in empty:
        setattr(ds, keyword, "")
    for keyword in absent:
        delattr(ds, keyword)
    return ds


def _without_meta(ds: Dataset) -> Dataset:
    del ds.file_meta
    return ds


UID_CASES: dict[str, tuple[Callable[[], bytes], int]] = {
    **{f"empty-{k}": (lambda k=k: to_bytes(_with("BARE_EMPTY", empty=(k,))), 400) for k in UIDS},
    **{f"absent-{k}": (lambda k=k: to_bytes(_with("BARE_ABSENT", absent=(k,))), 404) for k in UIDS},
    "empty-in-bare-dataset": (
        lambda: bare(_without_meta(_with("BARE_EBARE", empty=("SOPInstanceUID",))), True),
        400,
    ),
    "absent-and-empty": (
        lambda: to_bytes(_with("BARE_MIXED", empty=("SeriesInstanceUID",), absent=UIDS[:1])),
        404,
    ),
}


@pytest.mark.parametrize("case", list(UID_CASES))
def test_empty_uids_are_a_bad_file_absent_ones_an_inexistent_tag(
    shared: RunningServer, oracle, case: str
) -> None:
    make, status = UID_CASES[case]
    body = make()
    before = statistics(shared.client)["CountInstances"]
    response = shared.client.post("/instances", content=body)
    if status == 400:
        got = assert_orthanc_error(response, 400, "Bad file format", 15)
        assert got["Details"] == "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID"
    else:
        assert_orthanc_error(response, 404, "Inexistent tag", 21)
    assert statistics(shared.client)["CountInstances"] == before
    if oracle is not None:
        theirs = oracle.client.post("/instances", content=body)
        assert theirs.status_code == status
        assert theirs.json()["OrthancStatus"] == response.json()["OrthancStatus"]
        if status == 400:
            assert theirs.json()["Details"] == response.json()["Details"]


def test_a_uid_of_spaces_is_empty(shared: RunningServer, oracle) -> None:
    data = to_bytes(_with("BARE_SPACES"))
    ds = dcmread(io.BytesIO(data))
    uid = ds.StudyInstanceUID
    padded = uid if len(uid) % 2 == 0 else uid + "\0"
    body = data.replace(padded.encode(), b" " * len(padded), 1)
    response = shared.client.post("/instances", content=body)
    assert_orthanc_error(response, 400, "Bad file format", 15)
    if oracle is not None:
        assert oracle.client.post("/instances", content=body).status_code == 400


# ---- the network -----------------------------------------------------------------------
@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StoreScp]:
    yield from storescp_fixture(tmp_path)


def test_bare_datasets_go_out_by_c_store_and_c_get(
    make_server, storescp: StoreScp, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server = make_server(
        DicomModalities={"scp": [storescp.aet, LOOPBACK, storescp.port]},
        DicomBindAddress=LOOPBACK,
        DicomAlwaysAllowGet=True,
    )
    sent = {}
    for form in ("implicit", "explicit", "meta-no-preamble"):
        data, ds = body_of(form, f"BARENET{form[:3].upper()}")
        answer = upload(server.client, data)
        sent[ds.SOPInstanceUID] = (answer, ds)

    ids = [answer["ID"] for answer, _ in sent.values()]
    response = server.client.post("/modalities/scp/store", json={"Resources": ids})
    assert response.status_code == 200, response.text
    assert response.json()["FailedInstancesCount"] == 0
    received = {str(r.SOPInstanceUID): r for r in map(dcmread, storescp.wait_files(3))}
    assert set(received) == set(sent)
    for uid, (_, ds) in sent.items():
        assert received[uid].PatientID == ds.PatientID
        assert received[uid].PixelData == ds.PixelData

    folder = tmp_path / "got"
    folder.mkdir()
    for uid, (_, ds) in sent.items():
        args = [dcmtk("getscu"), "-v", "-S", "-aet", "GETSCU", "-aec", "ORTHANC"]
        args += ["-od", str(folder), "-k", "QueryRetrieveLevel=IMAGE"]
        args += ["-k", f"StudyInstanceUID={ds.StudyInstanceUID}"]
        args += ["-k", f"SeriesInstanceUID={ds.SeriesInstanceUID}"]
        args += ["-k", f"SOPInstanceUID={uid}", LOOPBACK, str(dicom_port(server))]
        result = run(args)
        assert result.returncode == 0, output(result)
    got = {str(r.SOPInstanceUID): r for r in map(dcmread, folder.iterdir())}
    assert set(got) == set(sent)
    for uid, (_, ds) in sent.items():
        assert got[uid].PixelData == ds.PixelData
