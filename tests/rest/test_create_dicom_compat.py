"""``POST /tools/create-dicom``, the details where Orthanc 1.10.1 was seen to differ:
what ``Parent`` copies, a PDF and the client's Modality, private tags under
``PrivateCreator``, ``null`` values, the deprecated form's character set, and the
content Orthanc refuses. The same requests go to the reference Orthanc when it answers.

Never send a ``null`` for an OW tag (a palette's LUT data, say) to the reference
Orthanc: 1.10.1 eats memory until it dies."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from archive_checks import assert_orthanc_error, oracle_client
from dicom_factory import make_dataset, to_bytes
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.rest.test_create_dicom import GENERATED as CREATED_BY_SERVER

#: Values made by the server (UIDs, dates), left out of the comparisons; the patient
#: ID is compared unless it is a random one (see ``_tags``).
GENERATED = CREATED_BY_SERVER - {"PatientID"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
PDF_URI = f"data:application/pdf;base64,{base64.b64encode(PDF).decode()}"


@pytest.fixture
def oracle() -> Iterator[httpx.Client | None]:
    """The reference Orthanc, or ``None``; what a test adds there is removed after."""
    client = oracle_client()
    if client is not None:
        client.added = []  # type: ignore[attr-defined]
    yield client
    if client is not None:
        for path in client.added:  # type: ignore[attr-defined]
            client.delete(path)
        client.close()


def _post(client: httpx.Client, body: Any) -> httpx.Response:
    response = client.post("/tools/create-dicom", json=body)
    if response.status_code == 200 and hasattr(client, "added"):
        client.added.append(response.json()["Path"])  # type: ignore[attr-defined]
    return response


def _upload(client: httpx.Client, data: bytes) -> dict[str, Any]:
    response = client.post("/instances", content=data)
    assert response.status_code == 200, response.text
    answer = response.json()
    if hasattr(client, "added"):
        client.added.append(f"/patients/{answer['ParentPatient']}")  # type: ignore[attr-defined]
    return answer


def _created(client: httpx.Client, body: Any) -> Dataset:
    response = _post(client, body)
    assert response.status_code == 200, response.text
    file = client.get(f"{response.json()['Path']}/file")
    assert file.status_code == 200, file.text
    ds = dcmread(io.BytesIO(file.content))
    ds.__dict__["file_bytes"] = file.content  # for _summary, whatever is read before
    return ds


def _raw(ds: Dataset, tag: int) -> tuple[str, bytes]:
    """The VR and the bytes of ``tag`` as the file holds them."""
    element = dcmread(io.BytesIO(ds.__dict__["file_bytes"])).get_item(tag)
    assert element is not None, f"{tag:08x} missing"
    value = element.value or b""  # SpecificCharacterSet comes decoded, unpadded
    return str(element.VR), value if isinstance(value, bytes) else str(value).encode()


def _summary(ds: Dataset) -> list[tuple[str, str, Any]]:
    """(tag, VR as written, bytes) of the top-level elements, generated values aside."""
    if "file_bytes" in ds.__dict__:
        ds = dcmread(io.BytesIO(ds.__dict__["file_bytes"]))
    out = []
    for element in ds.elements():  # raw: the VR as written
        tag = element.tag
        keyword = ds[tag].keyword
        if keyword in GENERATED or (keyword == "PatientID" and len(str(ds[tag].value)) == 36):
            continue
        if keyword == "PixelData":
            out.append((str(tag), str(element.VR), len(element.value or b"")))
        elif ds[tag].VR == "SQ":
            out.append((str(tag), "SQ", [_summary(item) for item in ds[tag].value]))
        else:
            value = element.value or b""  # SpecificCharacterSet comes decoded
            out.append(
                (str(tag), str(element.VR), value if isinstance(value, bytes) else str(value))
            )
    return out


def _png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def _uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


def _grey() -> np.ndarray:
    y, x = np.mgrid[0:12, 0:10]
    return ((x * 20 + y * 3) % 256).astype(np.uint8)


def _parent_files() -> list[bytes]:
    """Two instances of one series; the second (the last added) is the one copied."""
    study, series = generate_uid(), generate_uid()
    files = []
    for name in ("first", "second"):
        ds = make_dataset(
            patient_id="CRT-COMPAT-PARENT",
            patient_name="Par^Ent",
            study_uid=study,
            series_uid=series,
            charset="ISO_IR 100",
            PatientComments=name,
            StudyDescription=name,
            SeriesDescription=name,
            Laterality="",  # empty: copied too
            PatientPosition="FFS",
            BodyPartExamined="",
            ReferringPhysicianName="",
            PerformedProcedureStepID="PPS",
            Manufacturer="ACME",  # main DICOM tags outside the modules: not copied
            InstitutionName="Institution",
            StationName="Station",
            ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
            ImageComments="not copied",
        )
        reference = Dataset()
        reference.ReferencedSOPClassUID = "1.2.3"
        reference.ReferencedSOPInstanceUID = "1.2.3.4"
        ds.ReferencedStudySequence = [reference]  # a sequence: Orthanc copies none
        files.append(to_bytes(ds))
    return files


def test_parent_copies_the_modules_of_the_last_instance(
    client: httpx.Client, oracle: httpx.Client | None
) -> None:
    files = _parent_files()
    answers = [_upload(client, data) for data in files]
    theirs = [_upload(oracle, data) for data in files] if oracle is not None else []
    expected = {
        "ParentPatient": {"PatientName", "PatientID", "PatientBirthDate", "PatientSex"},
        "ParentStudy": {"AccessionNumber", "StudyDescription", "ReferringPhysicianName"},
        "ParentSeries": {"Modality", "SeriesNumber", "SeriesDescription", "Laterality"},
    }
    wanted: set[str] = {"PatientComments"}
    for key, keywords in expected.items():
        wanted |= keywords
        if key == "ParentSeries":
            wanted |= {"PatientPosition", "BodyPartExamined", "PerformedProcedureStepID"}
        body = {"Tags": {}, "Parent": answers[-1][key]}
        ds = _created(client, body)
        present = {e.keyword for e in ds}
        assert wanted <= present, wanted - present
        for absent in ("Manufacturer", "InstitutionName", "StationName", "ReferencedStudySequence"):
            assert absent not in present, absent
        assert "ImageOrientationPatient" not in present and "ImageComments" not in present
        assert ds.PatientComments == "second"  # the instance added last
        if key != "ParentPatient":
            assert ds.StudyDescription == "second"
        if key == "ParentSeries":
            assert ds.SeriesDescription == "second"
            assert ds.Laterality == "" and ds.PatientPosition == "FFS"
        if oracle is not None:
            body["Parent"] = theirs[-1][key]
            assert _summary(ds) == _summary(_created(oracle, body))


def test_pdf_keeps_the_modality_given(client: httpx.Client, oracle: httpx.Client | None) -> None:
    bodies = [
        {"Tags": {"PatientID": "CRT-COMPAT-PDF", "Modality": "DOC"}, "Content": PDF_URI},
        {
            "Tags": {"PatientID": "CRT-COMPAT-PDF", "Modality": "DOC", "ConversionType": "SI"},
            "Content": PDF_URI,
        },
        {"Tags": {"PatientID": "CRT-COMPAT-PDF"}, "Content": PDF_URI},
    ]
    expected = [("DOC", "WSD"), ("DOC", "SI"), ("OT", "WSD")]
    for body, (modality, conversion) in zip(bodies, expected, strict=True):
        ds = _created(client, body)
        assert (ds.Modality, ds.ConversionType) == (modality, conversion)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1"
        if oracle is not None:
            assert _summary(ds) == _summary(_created(oracle, body))


PRIVATE_BODIES: list[dict[str, Any]] = [
    {"PrivateCreator": "ACME", "Tags": {"0011,1001": "hello"}},
    # the creator element after the tag it owns (Orthanc reads the keys sorted)
    {"PrivateCreator": "ACME", "Tags": {"0011,1001": "hello", "0011,0010": "ACME"}},
    {"PrivateCreator": "SIEMENS CSA HEADER", "Tags": {"0029,1008": "hello"}},
    {
        "PrivateCreator": "SIEMENS CSA HEADER",
        "Tags": {"0029,1008": "hello", "0029,0010": "SIEMENS CSA HEADER"},
    },
    {"Tags": {"0029,1008": "hello", "0029,0010": "SIEMENS CSA HEADER"}},
    {"PrivateCreator": "ACME", "Tags": {"0029,1008": "hello", "0029,0010": "SIEMENS CSA HEADER"}},
]


@pytest.mark.parametrize("index", range(len(PRIVATE_BODIES)))
def test_private_creator_is_only_a_dictionary(
    client: httpx.Client, oracle: httpx.Client | None, index: int
) -> None:
    body = PRIVATE_BODIES[index]
    ds = _created(client, body)
    tags = {int(e.tag) for e in ds.elements()}
    for name in body["Tags"]:
        group, element = (int(part, 16) for part in name.split(","))
        assert (group << 16 | element) in tags
    creators = {t for t in tags if t >> 16 in (0x0011, 0x0029) and (t & 0xFFFF) < 0x0100}
    given = {int(n.replace(",", ""), 16) for n in body["Tags"] if n.split(",")[1] < "0100"}
    assert creators == given  # no creator element the request did not give
    if index == 0:
        assert _raw(ds, 0x00111001) == ("UN", b"hello\0")
    if index == 2:  # the VR from the creator's dictionary
        assert _raw(ds, 0x00291008) == ("CS", b"hello ")
    if index == 3:  # looked up by the low byte of the element, as DCMTK: (0029,xx10) is OB
        assert _raw(ds, 0x00290010)[0] == "OB"
    if index == 4:  # no PrivateCreator: UN, whatever the creator element says
        assert _raw(ds, 0x00291008)[0] == "UN" and _raw(ds, 0x00290010)[0] == "UN"
    if oracle is not None:
        assert _summary(ds) == _summary(_created(oracle, body))


NULL_BODIES: list[tuple[dict[str, Any], int, str | None, int | None]] = [
    ({"PatientName": None, "PixelSpacing": None, "ImageComments": None}, 200, None, None),
    ({"PatientID": None, "0011,1001": None, "EncapsulatedDocument": None}, 200, None, None),
    ({"ReferencedStudySequence": [{"ReferencedSOPClassUID": None}]}, 200, None, None),
    ({"FrameIncrementPointer": ""}, 200, None, None),
    ({"ReferencedStudySequence": None}, 400, "Bad file format", 15),
    ({"Rows": None}, 400, "Bad file format", 15),
    ({"DiffusionBValue": None}, 400, "Bad file format", 15),
    ({"ReferencedStudySequence": [{"Rows": None}]}, 400, "Bad file format", 15),
    ({"FrameIncrementPointer": None}, 500, "Unknown DICOM tag", 27),
]


@pytest.mark.parametrize("index", range(len(NULL_BODIES)))
def test_null_values_like_orthanc(
    client: httpx.Client, oracle: httpx.Client | None, index: int
) -> None:
    tags, status, message, code = NULL_BODIES[index]
    body = {"Tags": tags}
    if status != 200:
        response = _post(client, body)
        error = assert_orthanc_error(response, status, message or "", code)
        if code == 15:
            assert error["Details"].endswith('has out-of-range value: ""')
        if oracle is not None:
            assert_orthanc_error(_post(oracle, body), status, message or "", code)
        return
    ds = _created(client, body)
    for name in tags:
        element = ds[int(name.replace(",", ""), 16)] if "," in name else ds[name]
        if element.VR == "SQ":
            assert element.value[0].ReferencedSOPClassUID == ""
        else:
            assert element.value in ("", None, b""), name
    if oracle is not None:
        assert _summary(ds) == _summary(_created(oracle, body))


def test_null_and_empty_instance_uid(client: httpx.Client, oracle: httpx.Client | None) -> None:
    cases = [
        ({"SOPInstanceUID": None}, False, 400, "Trying to override a value inherited from a parent module", 2020),
        ({"SOPInstanceUID": None}, True, 400, "Bad type for a parameter", 5),
        ({"SOPInstanceUID": ""}, True, 400, "Bad file format", 15),
        ({"StudyInstanceUID": None}, True, 400, "Bad file format", 15),
        ({"": "x"}, False, 500, "Unknown DICOM tag", 27),
    ]  # fmt: skip
    before = client.get("/instances").json()
    for tags, force, status, message, code in cases:
        body = {"Tags": tags, "Force": force}
        assert_orthanc_error(_post(client, body), status, message, code)
        if oracle is not None:
            assert_orthanc_error(_post(oracle, body), status, message, code)
    assert client.get("/instances").json() == before


def test_deprecated_form_writes_no_character_set(
    client: httpx.Client, oracle: httpx.Client | None
) -> None:
    bodies: list[dict[str, Any]] = [
        {},
        {"PatientID": "CRT-COMPAT-V1", "PatientName": "Jérôme^Éloïse"},
        {"PatientID": "CRT-COMPAT-V1", "PatientName": "A", "SpecificCharacterSet": "FOO"},
        {"PatientID": "CRT-COMPAT-V1", "PixelData": _uri("image/png", _png(_grey()))},
    ]
    for index, body in enumerate(bodies):
        ds = _created(client, body)
        if index == 2:  # a plain tag here, written as given
            assert _raw(ds, 0x00080005) == ("CS", b"FOO")
        else:
            assert 0x00080005 not in ds
        if index == 1:  # encoded with the default encoding (Latin1)
            assert _raw(ds, 0x00100010)[1].rstrip(b" ") == "Jérôme^Éloïse".encode("latin-1")
        if oracle is not None:
            assert _summary(ds) == _summary(_created(oracle, body))


def test_greyscale_keeps_the_photometric_interpretation_given(
    client: httpx.Client, oracle: httpx.Client | None
) -> None:
    grey = _grey()
    colour = np.dstack([grey, 255 - grey, grey // 2])
    bodies = [
        {"Tags": {"PhotometricInterpretation": "MONOCHROME1"}, "Content": _uri("image/png", _png(grey))},
        {"Tags": {"PlanarConfiguration": "1"}, "Content": _uri("image/png", _png(grey))},
        {"Tags": {"PhotometricInterpretation": "MONOCHROME1"}, "Content": _uri("image/png", _png(colour))},
    ]  # fmt: skip
    expected = [("MONOCHROME1", None), ("MONOCHROME2", 1), ("RGB", 0)]
    for body, (photometric, planar) in zip(bodies, expected, strict=True):
        body["Tags"]["PatientID"] = "CRT-COMPAT-IMG"
        ds = _created(client, body)
        assert ds.PhotometricInterpretation == photometric
        assert ds.get("PlanarConfiguration") == planar
        assert _raw(ds, 0x7FE00010)[0] == "OW"  # as DCMTK, whatever the depth
        if oracle is not None:
            assert _summary(ds) == _summary(_created(oracle, body))


REFUSED: list[tuple[Any, int, str, int]] = [
    (_uri("image/png", _png(_grey(), "JPEG")), 400, "Bad file format", 15),
    (_uri("image/png", _png(_grey(), "GIF")), 400, "Bad file format", 15),
    (_uri("image/jpeg", _png(_grey())), 500, "Internal error", -1),
    ("data:application/pdf,%25PDF-1.4%0A%25%25EOF", 400, "Bad file format", 15),
    (f"data:application/pdf;charset=x;base64,{base64.b64encode(PDF).decode()}", 400, "Bad file format", 15),
    (f"data:;base64,{base64.b64encode(PDF).decode()}", 400, "Bad file format", 15),
    (None, 400, "The payload of the DICOM instance must be specified according to Data URI scheme", 2023),
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(REFUSED)))
def test_content_refused_like_orthanc(
    client: httpx.Client, oracle: httpx.Client | None, index: int
) -> None:
    content, status, message, code = REFUSED[index]
    body = {"Tags": {"PatientID": "CRT-COMPAT-REFUSED"}, "Content": content}
    before = client.get("/instances").json()
    error = assert_orthanc_error(_post(client, body), status, message, code)
    if code == -1:  # the error of Orthanc's JPEG decoder
        assert (
            error["Details"] == "Error during JPEG decoding: Not a JPEG file: starts with 0x89 0x50"
        )
    assert client.get("/instances").json() == before
    if oracle is not None:
        theirs = assert_orthanc_error(_post(oracle, body), status, message, code)
        if code == -1:
            assert theirs["Details"] == error["Details"]


def test_content_and_charsets_accepted_like_orthanc(
    client: httpx.Client, oracle: httpx.Client | None
) -> None:
    bodies: list[tuple[dict[str, Any], str | None]] = [
        ({"Content": "DATA:application/pdf;BASE64," + base64.b64encode(PDF).decode()}, None),
        ({"Content": "data:application/pdf;base64," + base64.b64encode(PDF + b"!!").decode().rstrip("=")}, None),
        ({"Content": _uri("IMAGE/PNG", _png(_grey()))}, None),
        ({"Tags": {"SpecificCharacterSet": " iso_ir 192 "}}, "ISO_IR 192"),
        ({"Tags": {"SpecificCharacterSet": "ISO 2022 IR 100"}}, "ISO_IR 100"),
        ({"Tags": {"SpecificCharacterSet": "ISO 2022 IR 87"}}, "ISO 2022 IR 87"),
    ]  # fmt: skip
    for body, charset in bodies:
        body = {"Tags": {}, **body}
        body["Tags"]["PatientID"] = "CRT-COMPAT-OK"
        ds = _created(client, body)
        if charset is not None:
            assert ds.SpecificCharacterSet == charset
        if oracle is not None:
            assert _summary(ds) == _summary(_created(oracle, body))
    # Orthanc's names of the encodings are not DICOM terms
    for name in ("Utf8", "Latin1", "ISO_IR_192", "ISO_IR 149"):
        body = {"Tags": {"SpecificCharacterSet": name}}
        assert_orthanc_error(_post(client, body), 400, "Parameter out of range", 3)
        if oracle is not None:
            assert_orthanc_error(_post(oracle, body), 400, "Parameter out of range", 3)


def test_us_or_ss_is_us(client: httpx.Client, oracle: httpx.Client | None) -> None:
    """A tag whose VR is "US or SS" (SmallestImagePixelValue) is written as US, as DCMTK."""
    body = {"Tags": {"PatientID": "CRT-COMPAT-XS", "SmallestImagePixelValue": "5"}}
    ds = _created(client, body)
    assert _raw(ds, 0x00280106) == ("US", b"\x05\x00")
    if oracle is not None:
        assert _summary(ds) == _summary(_created(oracle, body))
    for value in ("-5", "70000", None):
        body = {"Tags": {"SmallestImagePixelValue": value}}
        assert_orthanc_error(_post(client, body), 400, "Bad file format", 15)
        if oracle is not None:
            assert_orthanc_error(_post(oracle, body), 400, "Bad file format", 15)


# --- content types: bytes, PAM, MIME types Orthanc knows or not ------------------------


def test_octet_stream_content_is_the_pixel_data(
    client: httpx.Client, oracle: httpx.Client | None
) -> None:
    """``application/octet-stream`` bytes become PixelData (OW, padded), nothing else."""
    for payload in (b"abcdef", b"abcde", b""):
        body = {"Tags": {"PatientID": "CRT-COMPAT-BYTES"}, "Content": _uri(_OCTET, payload)}
        ds = _created(client, body)
        assert _raw(ds, 0x7FE00010) == ("OW", payload + b"\0" * (len(payload) % 2))
        assert "Rows" not in ds and "SOPClassUID" not in ds
        if oracle is not None:
            theirs = _created(oracle, body)
            assert _summary(ds) == _summary(theirs)
            assert _raw(ds, 0x7FE00010) == _raw(theirs, 0x7FE00010)
    series = {"Tags": {"PatientID": "CRT-COMPAT-BYTES"}, "Content": [_uri(_OCTET, b"ab")]}
    answer = _post(client, series)
    assert answer.status_code == 200 and answer.json()["Path"].startswith("/series/")
    if oracle is not None:
        assert _post(oracle, series).status_code == 200


def _pam(width: int, height: int, depth: int, maxval: int, kind: str | None, **kw: Any) -> bytes:
    size = width * height * depth * (2 if maxval > 255 else 1)
    body = kw.get("body", bytes((i * 37) % 256 for i in range(size)))
    header = f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH {depth}\nMAXVAL {maxval}\n"
    header += kw.get("extra", "") + (f"TUPLTYPE {kind}\n" if kind else "") + "ENDHDR\n"
    return header.encode() + body


_OCTET = "application/octet-stream"
_PAM = "image/x-portable-arbitrarymap"
PAM_ACCEPTED = [
    (_pam(3, 2, 1, 255, "GRAYSCALE"), (1, 8), bytes.fromhex("00254a6f94b9")),
    (_pam(3, 2, 1, 65535, "GRAYSCALE"), (1, 16), bytes.fromhex("25006f4ab99403de4d289772")),
    (_pam(3, 2, 3, 255, "RGB"), (3, 8), bytes((i * 37) % 256 for i in range(18))),
    (_pam(3, 2, 1, 255, "GRAYSCALE", extra="#x 1\nFOO bar\n"), (1, 8), None),
    (b"P7\nHEIGHT 2\nWIDTH 3\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nDEPTH 1\nENDHDR\n" + bytes(6), (1, 8), bytes(6)),
]  # fmt: skip
PAM_REFUSED = [
    (_pam(3, 2, 4, 255, "RGB_ALPHA"), 500, 2),
    (_pam(3, 2, 2, 255, "GRAYSCALE_ALPHA"), 500, 2),
    (_pam(3, 2, 3, 65535, "RGB"), 500, 2),
    (_pam(3, 2, 1, 15, "GRAYSCALE"), 500, 2),
    (_pam(3, 2, 1, 255, "grayscale"), 500, 2),
    (_pam(3, 2, 1, 255, "RGB"), 500, 2),
    (_pam(3, 2, 4, 255, "RGB_ALPHA", body=b"12"), 500, 2),  # the format first
    (_pam(3, 2, 1, 255, None), 400, 15),
    (_pam(3, 2, 1, 255, "GRAYSCALE", body=b"\x01\x02"), 400, 15),
    (_pam(3, 2, 1, 255, "GRAYSCALE", body=bytes(10)), 400, 15),
    (_pam(3, 2, 1, 255, "GRAYSCALE ", body=bytes(6)), 400, 15),
    (b"P7\nWIDTH  3\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n" + bytes(6), 400, 15),
    (b"P7\r\nWIDTH 3\r\nHEIGHT 2\r\nDEPTH 1\r\nMAXVAL 255\r\nTUPLTYPE GRAYSCALE\r\nENDHDR\r\n" + bytes(6), 400, 15),
    (b"P7\nwidth 3\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n" + bytes(6), 400, 15),
    (b"P7\nWIDTH abc\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n" + bytes(6), 400, 15),
    (_pam(3, 2, 1, 255, "GRAYSCALE", extra="# a comment\n"), 400, 15),  # not a comment
    (b"P6\n3 2\n255\n" + bytes(18), 400, 15),
    (b"", 400, 15),
]  # fmt: skip


def test_pam_content_like_orthanc(client: httpx.Client, oracle: httpx.Client | None) -> None:
    """PAM pictures: 8 and 16-bit grey and 8-bit RGB, a strict header, as Orthanc."""
    for data, (samples, bits), pixel_data in PAM_ACCEPTED:
        body = {"Tags": {"PatientID": "CRT-COMPAT-PAM"}, "Content": _uri(_PAM, data)}
        ds = _created(client, body)
        assert (ds.SamplesPerPixel, ds.BitsAllocated, ds.Rows, ds.Columns) == (samples, bits, 2, 3)
        if pixel_data is not None:
            assert _raw(ds, 0x7FE00010) == ("OW", pixel_data)
        if oracle is not None:
            theirs = _created(oracle, body)
            assert _summary(ds) == _summary(theirs)
            assert _raw(ds, 0x7FE00010) == _raw(theirs, 0x7FE00010)
    for data, status, code in PAM_REFUSED:
        body = {"Tags": {"PatientID": "CRT-COMPAT-PAM"}, "Content": _uri(_PAM, data)}
        message = "Not implemented yet" if code == 2 else "Bad file format"
        error = assert_orthanc_error(_post(client, body), status, message, code)
        if code == 2:
            assert "Details" not in error, data
        if oracle is not None:
            assert_orthanc_error(_post(oracle, body), status, message, code)


def test_mime_types_orthanc_knows_or_not(client: httpx.Client, oracle: httpx.Client | None) -> None:
    """A MIME type Orthanc knows but cannot embed is 500 Not implemented, naming it; one
    it does not know at all is 400 Parameter out of range."""
    known = {"image/gif": "image/gif", "Text/Plain": "text/plain", "text/xml": "application/xml"}
    known |= {"application/dicom": "application/dicom", "image/jp2": "image/jp2"}
    for mime, name in known.items():
        body = {"Tags": {"PatientID": "CRT-COMPAT-MIME"}, "Content": _uri(mime, b"abcd")}
        for server in (client, oracle) if oracle is not None else (client,):
            error = assert_orthanc_error(_post(server, body), 500, "Not implemented yet", 2)
            assert error["Details"] == (
                f"Unsupported MIME type for the content of a new DICOM file: {name}"
            )
    for mime in ("image/bmp", "image/tiff", "image/jpg", "image/webp", "text/plain ", "x/y"):
        body = {"Tags": {"PatientID": "CRT-COMPAT-MIME"}, "Content": _uri(mime, b"abcd")}
        for server in (client, oracle) if oracle is not None else (client,):
            error = assert_orthanc_error(_post(server, body), 400, "Parameter out of range", 3)
            assert "Details" not in error, mime


# --- ambiguous VRs: LUT data, overlay data ----------------------------------------------


def test_lut_data_like_orthanc(client: httpx.Client, oracle: httpx.Client | None) -> None:
    """LUT Data (US or OW) may only be empty, outside an item (then OW); the retired Gray
    LUT Data is an unknown tag; overlay data (OB or OW) is OW. (Never a ``null`` here:
    the oracle would die of it.)"""
    binary = _uri(_OCTET, b"AB\x00\x02")
    refused: list[tuple[dict[str, Any], int, str, int, str | None]] = [
        ({"LUTData": "1\\2\\3"}, 400, "Bad file format", 15, "1\\2\\3"),
        ({"LUTData": binary}, 400, "Bad file format", 15, None),
        ({"ModalityLUTSequence": [{"LUTDescriptor": "3\\0\\8", "LUTData": "1\\2\\3"}]}, 400, "Bad file format", 15, "1\\2\\3"),
        ({"VOILUTSequence": [{"LUTData": ""}]}, 400, "Bad file format", 15, ""),
        ({"GrayLookupTableData": ""}, 500, "Unknown DICOM tag", 27, None),
        ({"GrayLookupTableData": "1"}, 500, "Unknown DICOM tag", 27, None),
    ]  # fmt: skip
    for tags, status, message, code, value in refused:
        body = {"Tags": {"PatientID": "CRT-COMPAT-LUT", **tags}}
        error = assert_orthanc_error(_post(client, body), status, message, code)
        if value is not None:
            assert error["Details"] == (
                f'While creating a DICOM instance, tag (0028,3006) has out-of-range value: "{value}"'
            )
        if oracle is not None:
            assert_orthanc_error(_post(oracle, body), status, message, code)
    body = {
        "Tags": {"PatientID": "CRT-COMPAT-LUT", "LUTData": binary},
        "InterpretBinaryTags": False,
    }
    assert_orthanc_error(_post(client, body), 400, "Bad file format", 15)
    accepted = [
        ({"LUTDescriptor": "3\\0\\8", "LUTData": ""}, 0x00283006, ("OW", b"")),
        ({"6000,3000": _uri(_OCTET, b"\x01\x02\x03\x04")}, 0x60003000, ("OW", b"\x01\x02\x03\x04")),
        ({"6000,3000": ""}, 0x60003000, ("OW", b"")),
        ({"RedPaletteColorLookupTableData": "abcd"}, 0x00281201, ("OW", b"abcd")),
    ]  # fmt: skip
    for tags, tag, raw in accepted:
        body = {"Tags": {"PatientID": "CRT-COMPAT-LUT", **tags}}
        ds = _created(client, body)
        assert _raw(ds, tag) == raw, tags
        if oracle is not None:
            assert _summary(ds) == _summary(_created(oracle, body))
