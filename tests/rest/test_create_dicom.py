"""``POST /tools/create-dicom``: tags, content (PNG, JPEG, PDF, lists), parents, Force,
binary and private tags, errors; the same bodies sent to the reference Orthanc when it
answers, and the tags compared (UIDs, generated patient IDs and dates left aside)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from archive_checks import assert_orthanc_error, oracle_client, upload
from dicom_factory import make_dataset, to_bytes
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset

GENERATED = {
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientID",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "ContentDate",
    "ContentTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "SeriesDate",
    "SeriesTime",
    "StudyDate",
    "StudyTime",
}


def _uri(array: np.ndarray, fmt: str = "PNG", mime: str = "image/png") -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def _grey8() -> np.ndarray:
    y, x = np.mgrid[0:12, 0:10]
    return ((x * 20 + y * 3) % 256).astype(np.uint8)


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"


@pytest.fixture
def oracle() -> Iterator[httpx.Client | None]:
    client = oracle_client()
    created: list[str] = []
    if client is not None:
        client.created = created  # type: ignore[attr-defined]
    yield client
    if client is not None:
        for path in created:
            client.delete(path)
        client.close()


def _create(client: httpx.Client, body: Any) -> httpx.Response:
    response = client.post("/tools/create-dicom", json=body)
    if response.status_code == 200 and hasattr(client, "created"):
        client.created.append(response.json()["Path"])  # type: ignore[attr-defined]
    return response


def _dataset(client: httpx.Client, answer: dict[str, Any]) -> Dataset:
    response = client.get(f"{answer['Path']}/file")
    assert response.status_code == 200, response.text
    return dcmread(io.BytesIO(response.content))


def _summary(ds: Dataset) -> dict[str, Any]:
    """The tags to compare between two servers (generated values left aside)."""
    out: dict[str, Any] = {}
    for element in ds:
        name = element.keyword or str(element.tag)
        if name in GENERATED:
            continue
        if element.VR == "SQ":
            out[name] = [_summary(item) for item in element.value]
        elif name == "PixelData":
            out[name] = ds.pixel_array.shape
        else:
            out[name] = element.value
    return out


BODIES: list[dict[str, Any]] = [
    {"Tags": {"PatientName": "CREATE^Png", "PatientID": "CRT-1", "StudyDescription": "x"}},
    {"Tags": {"PatientID": "CRT-1"}, "Content": "PNG8"},
    {"Tags": {"PatientID": "CRT-1", "Modality": "OT"}, "Content": "PNG16"},
    {"Tags": {"PatientID": "CRT-1"}, "Content": "RGBA"},
    {"Tags": {"PatientID": "CRT-1"}, "Content": "JPEG"},
    {"Tags": {"PatientID": "CRT-1"}, "Content": "PDF"},
    {
        "Tags": {
            "PatientID": "CRT-1",
            "ReferencedStudySequence": [
                {"ReferencedSOPClassUID": "1.2.3", "ReferencedSOPInstanceUID": "1.2.3.4"},
                {},
            ],
            "PixelSpacing": "0.5\\0.5",
            "ImageType": "ORIGINAL\\PRIMARY",
            "RedPaletteColorLookupTableData": "data:application/octet-stream;base64,AAECAw==",
            "PatientComments": "data:application/octet-stream;base64,QUJD",
        }
    },
    {"Tags": {"PatientID": "CRT-1", "SOPInstanceUID": "1.2.3.4.5.6"}, "Force": True},
    {"Tags": {"SpecificCharacterSet": "ISO_IR 192", "PatientName": "Jérôme^Élise"}},
    {  # text Latin-1 cannot hold: Orthanc drops those characters
        "Tags": {
            "PatientName": "Ελληνικά^Éva",
            "StudyDescription": "日本",
            "ReferencedStudySequence": [{"StudyDescription": "ΑΒΓ x"}],
        }
    },
]


def _content(name: str) -> str:
    grey = _grey8()
    colour = np.dstack([grey, 255 - grey, grey // 2])
    return {
        "PNG8": _uri(grey),
        "PNG16": _uri(grey.astype(np.uint16) * 257),
        "RGBA": _uri(np.dstack([colour, grey])),
        "JPEG": _uri(colour, "JPEG", "image/jpeg"),
        "PDF": f"data:application/pdf;base64,{base64.b64encode(PDF).decode()}",
    }[name]


def _materialize(body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    if isinstance(body.get("Content"), str):
        body["Content"] = _content(body["Content"])
    return body


@pytest.mark.parametrize("index", range(len(BODIES)))
def test_same_tags_as_orthanc(
    client: httpx.Client, oracle: httpx.Client | None, index: int
) -> None:
    body = _materialize(BODIES[index])
    answer = _create(client, body)
    assert answer.status_code == 200, answer.text
    ours = answer.json()
    assert set(ours) == {"ID", "ParentPatient", "ParentSeries", "ParentStudy", "Path", "Status"}
    assert ours["Path"] == f"/instances/{ours['ID']}" and ours["Status"] == "Success"
    ds = _dataset(client, ours)
    if "PatientID" not in body["Tags"]:  # a random one, as Orthanc
        assert len(ds.PatientID) == 36
    if oracle is None:
        return
    theirs = _create(oracle, body)
    assert theirs.status_code == 200, theirs.text
    assert _summary(ds) == _summary(_dataset(oracle, theirs.json()))


def test_characters_the_charset_lacks_are_dropped(client: httpx.Client) -> None:
    answer = _create(client, BODIES[-1])
    assert answer.status_code == 200, answer.text
    ds = _dataset(client, answer.json())
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    assert ds.PatientName == "^Éva"
    assert ds.StudyDescription == ""
    assert ds.ReferencedStudySequence[0].StudyDescription == " x"


def test_pixels_are_those_of_the_image(client: httpx.Client) -> None:
    grey = _grey8()
    ds = _dataset(client, _create(client, {"Tags": {}, "Content": _uri(grey)}).json())
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.PhotometricInterpretation) == (
        12,
        10,
        8,
        "MONOCHROME2",
    )
    np.testing.assert_array_equal(ds.pixel_array, grey)
    deep = grey.astype(np.uint16) * 257
    ds = _dataset(client, _create(client, {"Tags": {}, "Content": _uri(deep)}).json())
    assert ds.BitsStored == 16
    np.testing.assert_array_equal(ds.pixel_array, deep)
    colour = np.dstack([grey, 255 - grey, grey // 2])
    ds = _dataset(
        client, _create(client, {"Tags": {}, "Content": _uri(np.dstack([colour, grey]))}).json()
    )
    assert ds.PhotometricInterpretation == "RGB" and ds.PlanarConfiguration == 0
    np.testing.assert_array_equal(ds.pixel_array, colour)  # alpha dropped
    smooth = np.dstack([np.full((16, 16), v, np.uint8) for v in (200, 100, 50)])
    ds = _dataset(
        client, _create(client, {"Tags": {}, "Content": _uri(smooth, "JPEG", "image/jpeg")}).json()
    )
    assert np.abs(ds.pixel_array.astype(int) - smooth).max() <= 3  # decoded JPEG, stored raw
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


def test_pdf_is_encapsulated(client: httpx.Client) -> None:
    answer = _create(client, {"Tags": {"PatientID": "PDF1"}, "Content": _content("PDF")}).json()
    ds = _dataset(client, answer)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1"
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert ds.EncapsulatedDocument.rstrip(b"\0") == PDF
    pdf = client.get(f"/instances/{answer['ID']}/pdf")
    assert pdf.status_code == 200 and pdf.content.rstrip(b"\0") == PDF


def test_content_list_makes_a_series(client: httpx.Client, oracle: httpx.Client | None) -> None:
    grey = _grey8()
    body = {
        "Tags": {"PatientID": "CRT-S", "SeriesDescription": "made"},
        "Content": [
            _uri(grey),
            {"Content": _uri(grey[::-1].copy()), "Tags": {"ImageComments": "second"}},
        ],
    }
    answer = _create(client, body)
    assert answer.status_code == 200, answer.text
    series = answer.json()
    assert set(series) == {"ID", "Path", "Status"}
    assert series["Path"] == f"/series/{series['ID']}"
    info = client.get(series["Path"]).json()
    assert len(info["Instances"]) == 2 and info["Status"] == "Complete"
    files = sorted(
        (_dataset(client, {"Path": f"/instances/{i}"}) for i in info["Instances"]),
        key=lambda d: int(d.InstanceNumber),
    )
    assert [int(d.InstanceNumber) for d in files] == [1, 2]
    assert [int(d.ImageIndex) for d in files] == [1, 2]
    assert files[0].ImagesInAcquisition == 2 and files[1].ImageComments == "second"
    np.testing.assert_array_equal(files[1].pixel_array, grey[::-1])
    if oracle is not None:
        theirs = _create(oracle, body)
        assert set(theirs.json()) == set(series)
        info = oracle.get(theirs.json()["Path"]).json()
        others = sorted(
            (_dataset(oracle, {"Path": f"/instances/{i}"}) for i in info["Instances"]),
            key=lambda d: int(d.InstanceNumber),
        )
        assert [_summary(d) for d in files] == [_summary(d) for d in others]
        oracle.created.append(theirs.json()["Path"])  # type: ignore[attr-defined]

    # one bad item: nothing of the series stays
    before = client.get("/series").json()
    bad = {"Tags": {"PatientID": "CRT-S2"}, "Content": [_uri(grey), {"Tags": {}}]}
    assert_orthanc_error(
        _create(client, bad), 400, "No payload is present for one instance in the series", 2022
    )
    assert client.get("/series").json() == before
    # an item neither a data URI nor an object (Orthanc 1.10.1: 404 Unknown resource)
    for item in (None, 5):
        bad = {"Tags": {"PatientID": "CRT-S2"}, "Content": [_uri(grey), item]}
        message = "The payload of the DICOM instance must be specified according to Data URI scheme"
        assert_orthanc_error(_create(client, bad), 400, message, 2023)
    assert client.get("/series").json() == before


def test_null_lut_data_is_empty(client: httpx.Client) -> None:
    """``null`` for LUT Data (US or OW) is an empty OW, as for other OW tags (Orthanc
    1.10.1 dies of it: never sent to the oracle)."""
    answer = _create(
        client, {"Tags": {"LUTData": None, "ModalityLUTSequence": [{"LUTData": None}]}}
    )
    assert answer.status_code == 200, answer.text
    ds = _dataset(client, answer.json())
    for element in (ds["LUTData"], ds.ModalityLUTSequence[0]["LUTData"]):
        assert (element.VR, element.value) in (("OW", b""), ("OW", None))


def _parent_source(patient_id: str) -> Dataset:
    return make_dataset(
        patient_id=patient_id,
        patient_name="Par^Ent",
        StudyDescription="Parent study",
        SeriesDescription="Parent series",
        charset="ISO_IR 100",
    )


def test_parent_copies_the_parent_levels(client: httpx.Client, oracle: httpx.Client | None) -> None:
    source = _parent_source("PARENT1")
    data = to_bytes(source)
    parent = upload(client, data)
    for level, key in (("Patient", "ParentPatient"), ("Study", "ParentStudy")):
        answer = _create(client, {"Tags": {"ImageComments": level}, "Parent": parent[key]})
        assert answer.status_code == 200, answer.text
        created = answer.json()
        ds = _dataset(client, created)
        assert created["ParentPatient"] == parent["ParentPatient"]
        assert ds.PatientName == "Par^Ent" and ds.PatientBirthDate == "19700101"
        if level == "Study":
            assert created["ParentStudy"] == parent["ParentStudy"]
            assert ds.StudyDescription == "Parent study" and ds.StudyDate == "20240102"
            assert created["ParentSeries"] != parent["ParentSeries"]
        else:
            assert ds.StudyInstanceUID != source.StudyInstanceUID
    answer = _create(client, {"Tags": {}, "Parent": parent["ParentSeries"]}).json()
    ds = _dataset(client, answer)
    assert answer["ParentSeries"] == parent["ParentSeries"]
    assert ds.SeriesDescription == "Parent series" and ds.Modality == "CT"
    # inherited tags cannot be overridden without Force
    conflict = {"Tags": {"PatientName": "Other"}, "Parent": parent["ParentStudy"]}
    assert_orthanc_error(
        _create(client, conflict),
        400,
        "Trying to override a value inherited from a parent module",
        2020,
    )
    forced = _create(client, {**conflict, "Force": True}).json()
    assert _dataset(client, forced).PatientName == "Other"
    assert_orthanc_error(
        _create(client, {"Tags": {}, "Parent": parent["ID"]}),
        400,
        "Trying to attach a new DICOM instance to an instance (must be a series, study or patient)",
        2025,
    )
    if oracle is not None:
        # a study of its own: the instance added last is the one copied (as Orthanc), and
        # the study above has had instances created in it since
        source = _parent_source("PARENT2")
        data = to_bytes(source)
        parent = upload(client, data)
        theirs_parent = oracle.post("/instances", content=data).json()
        oracle.created.append(f"/instances/{theirs_parent['ID']}")  # type: ignore[attr-defined]
        body = {"Tags": {"ImageComments": "x"}, "Parent": theirs_parent["ParentStudy"]}
        theirs = _dataset(oracle, _create(oracle, body).json())
        body["Parent"] = parent["ParentStudy"]
        ours = _dataset(client, _create(client, body).json())
        assert _summary(ours) == _summary(theirs)
        assert ours.StudyInstanceUID == theirs.StudyInstanceUID == source.StudyInstanceUID


def test_private_tags_under_a_creator(client: httpx.Client) -> None:
    body = {
        "Tags": {"0011,1001": "hello", "0011,1002": "data:application/octet-stream;base64,AAEC"},
        "PrivateCreator": "ACME",
    }
    ds = _dataset(client, _create(client, body).json())
    assert 0x00110010 not in ds  # the creator only names the dictionary, as Orthanc
    assert ds[0x00111001].value.rstrip(b"\0") == b"hello"
    assert ds[0x00111002].value == b"\x00\x01\x02\x00"
    # InterpretBinaryTags false: the data URI stays text
    body = {
        "Tags": {"PatientComments": "data:application/octet-stream;base64,QUJD"},
        "InterpretBinaryTags": False,
    }
    ds = _dataset(client, _create(client, body).json())
    assert ds.PatientComments == "data:application/octet-stream;base64,QUJD"


ERRORS: list[tuple[Any, int, str, int]] = [
    ({"Tags": {"StudyInstanceUID": "1.2.3"}}, 400, "Trying to override a value inherited from a parent module", 2020),
    ({"Tags": {"PixelData": "x"}}, 400, 'Use "Content" to inject an image into a new DICOM instance', 2021),
    ({"Tags": {"PatientName": 3}}, 400, "Bad type for a parameter", 5),
    ({"Tags": {"Rows": "abc"}}, 400, "Bad file format", 15),
    ({"Tags": {"NoSuchTag": "abc"}}, 500, "Unknown DICOM tag", 27),
    ({"Tags": {}, "Parent": "nope"}, 400, "Trying to attach a new DICOM instance to an inexistent resource", 2024),
    ({"Tags": {}, "Content": 3}, 400, "The payload of the DICOM instance must be specified according to Data URI scheme", 2023),
    ({"Tags": {}, "Content": "data:text/plain;base64,AAAA"}, 500, "Not implemented yet", 2),
    ({"Tags": {}, "Content": "data:image/png;base64,AAAA"}, 400, "Bad file format", 15),
    ({"Tags": {}, "Content": "not a uri"}, 400, "Bad file format", 15),
    ({"Tags": {}, "Force": "yes"}, 400, "Bad request", 8),
    ({"Tags": {"SpecificCharacterSet": "FOO"}}, 400, "Parameter out of range", 3),
    ({"Tags": "x"}, 400, "Bad request", 8),
    ({"PatientName": 3}, 400, "Only string values are supported when creating DICOM instances", 2019),
    ([1], 400, "Bad request", 8),
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(ERRORS)))
def test_errors_like_orthanc(client: httpx.Client, oracle: httpx.Client | None, index: int) -> None:
    body, status, message, code = ERRORS[index]
    before = client.get("/instances").json()
    assert_orthanc_error(_create(client, body), status, message, code)
    assert client.get("/instances").json() == before  # nothing stored
    if oracle is not None:
        assert_orthanc_error(_create(oracle, body), status, message, code)


def test_deprecated_flat_form(client: httpx.Client) -> None:
    grey = _grey8()
    answer = _create(client, {"PatientName": "Flat^Form", "PixelData": _uri(grey)})
    assert answer.status_code == 200, answer.text
    ds = _dataset(client, answer.json())
    assert ds.PatientName == "Flat^Form"
    np.testing.assert_array_equal(ds.pixel_array, grey)


def test_not_json(client: httpx.Client) -> None:
    response = client.post("/tools/create-dicom", content=b"not json")
    assert_orthanc_error(response, 400, "Bad request", 8)
