"""The image routes over HTTP, pixels checked against numpy on the source arrays.

Statuses and bodies follow what Orthanc 1.10.1 answers for the same files.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import RunningServer, start_server
from image_factory import (
    JPEG2000Lossless,
    RLELossless,
    compressed,
    deflated,
    grey,
    jpeg_baseline,
    palette,
    rgb,
    to_bytes,
)
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid

RNG = np.random.default_rng(7)
CT = RNG.integers(-1024, 2000, size=(16, 20)).astype(np.int16)
COLOURS = RNG.integers(0, 256, size=(2, 16, 20, 3)).astype(np.uint8)
PAM = "image/x-portable-arbitrarymap"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(Path(tmp_path_factory.mktemp("images")))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http(running: RunningServer) -> httpx.Client:
    return running.client


def upload(client: httpx.Client, data: bytes) -> str:
    answer = client.post("/instances", content=data)
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


@pytest.fixture(scope="module")
def ct(http: httpx.Client) -> str:
    ds = grey(CT, RescaleSlope="1", RescaleIntercept="-1024", WindowCenter="40", WindowWidth="400")
    return upload(http, to_bytes(ds))


@pytest.fixture(scope="module")
def colour(http: httpx.Client) -> str:
    return upload(http, to_bytes(rgb(COLOURS)))


@pytest.fixture(scope="module")
def no_pixels(http: httpx.Client) -> str:
    ds = grey(CT)
    del ds.PixelData
    return upload(http, to_bytes(ds))


def picture(answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.status_code
    return np.array(Image.open(io.BytesIO(answer.content)))


def npy(answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    return np.load(io.BytesIO(answer.content))


def test_frames_list_and_operations(
    http: httpx.Client, ct: str, colour: str, no_pixels: str
) -> None:
    assert http.get(f"/instances/{ct}/frames").json() == [0]
    assert http.get(f"/instances/{colour}/frames").json() == [0, 1]
    assert http.get(f"/instances/{no_pixels}/frames").json() == [0]
    operations = http.get(f"/instances/{ct}/frames/0").json()
    assert operations == sorted(operations) and {"preview", "raw", "numpy"} <= set(operations)
    assert http.get("/instances/nope/frames").status_code == 404
    assert http.get("/instances/nope/frames/0").status_code == 404  # Orthanc 1.10.1: 200


def test_preview_and_clipped_images_of_a_signed_ct(http: httpx.Client, ct: str) -> None:
    low, high = CT.min(), CT.max()
    stretched = np.rint((CT - low) * (255.0 / (high - low)))
    answer = http.get(f"/instances/{ct}/preview")
    assert answer.headers["content-type"] == "image/png"
    assert np.array_equal(picture(answer), stretched)
    assert np.array_equal(picture(http.get(f"/instances/{ct}/frames/0/preview")), stretched)
    assert np.array_equal(picture(http.get(f"/instances/{ct}/image-uint8")), np.clip(CT, 0, 255))
    assert np.array_equal(picture(http.get(f"/instances/{ct}/image-uint16")), np.clip(CT, 0, None))
    int16 = picture(http.get(f"/instances/{ct}/frames/0/image-int16"))
    assert np.array_equal(int16.astype(np.uint16).view(np.int16), CT)


def test_rendered_window_and_size(http: httpx.Client, ct: str) -> None:
    hounsfield = CT.astype(float) - 1024

    def windowed(center: float, width: float) -> np.ndarray:
        return np.floor(np.clip((hounsfield - center + width / 2) / width * 255, 0, 255))

    assert np.array_equal(picture(http.get(f"/instances/{ct}/rendered")), windowed(40, 400))
    custom = http.get(f"/instances/{ct}/rendered?window-center=500&window-width=1000")
    assert np.array_equal(picture(custom), windowed(500, 1000))
    small = picture(http.get(f"/instances/{ct}/frames/0/rendered?width=10&height=4"))
    rows, cols = ((np.arange(4) + 0.5) * 4).astype(int), ((np.arange(5) + 0.5) * 4).astype(int)
    assert np.array_equal(small, windowed(40, 400)[rows][:, cols])
    assert picture(http.get(f"/instances/{ct}/rendered?width=40&height=40")).shape == (32, 40)
    assert picture(http.get(f"/instances/{ct}/rendered?width=10&smooth=1")).shape == (8, 10)


def test_accept_jpeg_quality_and_pam(http: httpx.Client, ct: str) -> None:
    jpeg = http.get(f"/instances/{ct}/preview", headers={"Accept": "image/jpeg"})
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"
    worse = http.get(f"/instances/{ct}/preview?quality=5", headers={"Accept": "image/jpeg"})
    assert len(worse.content) < len(jpeg.content)
    browser = "text/html,application/xhtml+xml,*/*;q=0.8"
    assert http.get(f"/instances/{ct}/preview", headers={"Accept": browser}).content[:4] == (
        b"\x89PNG"
    )
    pam = http.get(f"/instances/{ct}/image-int16", headers={"Accept": PAM})
    assert pam.headers["content-type"] == PAM
    header = b"P7\nWIDTH 20\nHEIGHT 16\nDEPTH 1\nMAXVAL 65535\nTUPLTYPE GRAYSCALE\nENDHDR\n"
    assert pam.content == header + CT.astype(">i2").tobytes()
    assert http.get(f"/instances/{ct}/preview", headers={"Accept": "text/plain"}).status_code == 404


def test_colour_frames(http: httpx.Client, colour: str) -> None:
    for frame in (0, 1):
        base = f"/instances/{colour}/frames/{frame}"
        assert np.array_equal(picture(http.get(f"{base}/preview")), COLOURS[frame])
        assert np.array_equal(picture(http.get(f"{base}/rendered")), COLOURS[frame])
        raw = http.get(f"{base}/raw")
        assert raw.headers["content-type"] == "application/octet-stream"
        assert raw.content == COLOURS[frame].tobytes()
        gz = http.get(f"{base}/raw.gz")
        assert gz.headers["content-type"] == "application/gzip"
        assert gzip.decompress(gz.content) == COLOURS[frame].tobytes()
    # Orthanc converts only greyscale frames to these
    assert http.get(f"/instances/{colour}/image-uint8").status_code == 415
    assert np.array_equal(npy(http.get(f"/instances/{colour}/numpy")), COLOURS)


def test_bad_requests_answer_like_orthanc(
    http: httpx.Client, ct: str, colour: str, no_pixels: str
) -> None:
    assert http.get(f"/instances/{colour}/frames/2/preview").status_code == 404
    assert http.get("/instances/nope/preview").content == b""
    assert http.get(f"/instances/{colour}/frames/abc/preview").status_code == 404
    assert http.get(f"/instances/{ct}/rendered?width=abc").status_code == 404
    assert http.get(f"/instances/{ct}/rendered?window-center=x").status_code == 404
    assert http.get(f"/instances/{ct}/preview?quality=0").status_code == 415
    assert http.get(f"/instances/{ct}/rendered?smooth=maybe").status_code == 415
    for route in ("preview", "rendered", "image-uint8", "frames/0/image-int16"):
        answer = http.get(f"/instances/{no_pixels}/{route}")
        assert (answer.status_code, answer.content) == (415, b"")
    redirect = http.get(f"/instances/{no_pixels}/frames/0/preview?returnUnsupportedImage")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "../../../../app/images/unsupported.png"
    raw = http.get(f"/instances/{colour}/frames/5/raw")
    assert raw.status_code == 400 and raw.json()["OrthancStatus"] == 3
    raw = http.get(f"/instances/{no_pixels}/frames/0/raw")
    assert raw.status_code == 400 and raw.json()["OrthancStatus"] == 15
    numpy_answer = http.get(f"/instances/{no_pixels}/numpy")
    assert numpy_answer.status_code == 400 and numpy_answer.json()["OrthancStatus"] == 15
    assert http.get(f"/instances/{colour}/frames/7/numpy").json()["OrthancStatus"] == 3
    assert http.get(f"/instances/{ct}/numpy?rescale=maybe").status_code == 400
    assert http.get(f"/instances/{ct}/pdf").status_code == 404


def test_numpy_instance_frame_and_series(http: httpx.Client, ct: str) -> None:
    rescaled = npy(http.get(f"/instances/{ct}/numpy"))
    assert rescaled.dtype == np.float32 and rescaled.shape == (1, 16, 20, 1)
    assert np.array_equal(rescaled[0, :, :, 0], CT.astype(np.float32) - 1024)
    stored = npy(http.get(f"/instances/{ct}/numpy?rescale=0"))
    assert stored.dtype == np.int16 and np.array_equal(stored[0, :, :, 0], CT)
    frame = npy(http.get(f"/instances/{ct}/frames/0/numpy?rescale=false"))
    assert frame.shape == (16, 20, 1) and np.array_equal(frame[:, :, 0], CT)
    packed = http.get(f"/instances/{ct}/numpy?compress=1&rescale=0")
    with zipfile.ZipFile(io.BytesIO(packed.content)) as archive:
        assert archive.namelist() == ["arr_0"]
        assert np.array_equal(np.load(io.BytesIO(archive.read("arr_0"))), stored)
    series = http.get(f"/instances/{ct}/series").json()["ID"]
    whole = npy(http.get(f"/series/{series}/numpy?rescale=0"))
    assert whole.shape == (1, 16, 20, 1) and np.array_equal(whole, stored)


def test_series_numpy_orders_by_instance_number(http: httpx.Client) -> None:
    first, second = grey(CT, InstanceNumber="1"), grey(CT[::-1], InstanceNumber="2")
    second.StudyInstanceUID, second.SeriesInstanceUID = (
        first.StudyInstanceUID,
        first.SeriesInstanceUID,
    )
    upload(http, to_bytes(second))
    one = upload(http, to_bytes(first))
    series = http.get(f"/instances/{one}/series").json()["ID"]
    whole = npy(http.get(f"/series/{series}/numpy?rescale=0"))
    assert np.array_equal(whole[:, :, :, 0], np.stack([CT, CT[::-1]]))


def test_every_transfer_syntax_family(http: httpx.Client) -> None:
    big = np.tile(CT, (3, 3))  # openjpeg wants more than a handful of pixels
    cases = [
        (to_bytes(compressed(grey(big), RLELossless)), big),
        (to_bytes(compressed(grey(big), JPEG2000Lossless)), big),
        (deflated(grey(big)), big),
    ]
    for data, expected in cases:
        instance = upload(http, data)
        assert np.array_equal(
            npy(http.get(f"/instances/{instance}/numpy?rescale=0"))[0, :, :, 0], expected
        )
        low, high = expected.min(), expected.max()
        stretched = np.rint((expected - low) * (255.0 / (high - low)))
        assert np.array_equal(picture(http.get(f"/instances/{instance}/preview")), stretched)
    reference = None
    for name in ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm"):
        path = get_testdata_file(name, download=False)
        instance = upload(http, Path(path).read_bytes())
        array = npy(http.get(f"/instances/{instance}/numpy?rescale=0"))
        reference = array if reference is None else reference
        assert np.array_equal(array, reference), name
        if name != "MR_small_jpeg_ls_lossless.dcm":  # native: the samples, little endian
            raw = http.get(f"/instances/{instance}/frames/0/raw").content
            assert raw == reference[0].astype("<i2").tobytes(), name


def test_jpeg_baseline_and_palette(http: httpx.Client) -> None:
    ds, expected = jpeg_baseline(COLOURS[0])
    instance = upload(http, to_bytes(ds))
    assert (
        np.abs(picture(http.get(f"/instances/{instance}/preview")).astype(int) - expected).max()
        <= 3
    )
    raw = http.get(f"/instances/{instance}/frames/0/raw")
    assert raw.headers["content-type"] == "image/jpeg" and raw.content[:2] == b"\xff\xd8"
    lut = RNG.integers(0, 65536, size=(256, 3)).astype(np.uint16)
    indices = RNG.integers(0, 256, size=(6, 5)).astype(np.uint8)
    instance = upload(http, to_bytes(palette(indices, lut)))
    colours = (lut[indices] >> 8).astype(np.uint8)
    assert np.array_equal(picture(http.get(f"/instances/{instance}/preview")), colours)
    assert np.array_equal(npy(http.get(f"/instances/{instance}/numpy"))[0], colours)


def test_corrupted_stream_is_unsupported_not_a_crash(http: httpx.Client) -> None:
    ds, _ = jpeg_baseline(COLOURS[0])
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xdb" + b"\x00" * 40])
    instance = upload(http, to_bytes(ds))
    assert http.get(f"/instances/{instance}/preview").status_code == 415
    answer = http.get(f"/instances/{instance}/numpy")
    assert answer.status_code == 400 and answer.json()["OrthancStatus"] == 15
    hostile = grey(CT)
    hostile.Rows = hostile.Columns = 65535
    instance = upload(http, to_bytes(hostile))
    assert http.get(f"/instances/{instance}/preview").status_code == 415
    assert http.get(f"/instances/{instance}/numpy").status_code == 400
    assert http.get("/system").status_code == 200  # the worker is still alive


def test_encapsulated_pdf(http: httpx.Client) -> None:
    document = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"  # odd: padded in the file
    ds = grey(CT)
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelData"):
        delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = document
    instance = upload(http, to_bytes(ds))
    answer = http.get(f"/instances/{instance}/pdf")
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content == document
    assert http.get(f"/instances/{instance}/preview").status_code == 415
    # an even length is kept whole (Orthanc 1.10.1 drops the last byte: documented)
    ds.EncapsulatedDocument = document + b"x"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    instance = upload(http, to_bytes(ds))
    assert http.get(f"/instances/{instance}/pdf").content == document + b"x"


def test_matlab(http: httpx.Client, ct: str, colour: str) -> None:
    text = http.get(f"/instances/{ct}/matlab").text
    rows = text.removeprefix("double([ ").removesuffix(" ])").split(" ; ")
    assert np.array_equal(np.array([row.split() for row in rows], dtype=int), CT)
    text = http.get(f"/instances/{colour}/frames/1/matlab").text
    assert text.endswith("], [ 3 16 20 ]), [ 3 2 1 ]))")
    values = text.split("[ ", 1)[1].split(" ]", 1)[0].split()
    assert np.array_equal(np.array(values, dtype=int), COLOURS[1].ravel())
    assert http.get(f"/instances/{colour}/frames/2/matlab").json()["OrthancStatus"] == 3
