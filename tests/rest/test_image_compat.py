"""The image routes where dicomhub once answered otherwise than Orthanc 1.10.1: the size
of ``/rendered``, narrow windows, 1-bit images, the statuses of bad arguments and frame
indices, and the log of an undecodable frame.

Every answer is checked against fixed expectations; when the reference Orthanc answers
on 127.0.0.1:18042, the same request is also sent there and must answer the same.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import RunningServer, start_server
from image_factory import RLELossless, compressed, grey, jpeg_baseline, rgb, to_bytes
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.pixels import pack_bits

from tests.archive_checks import OracleUploads, oracle_uploads

RNG = np.random.default_rng(11)
JPEG = "image/jpeg"
PATIENT = "IMAGE-COMPAT"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # one process: the log test counts what one process remembers of a failed decode
    server = start_server(Path(tmp_path_factory.mktemp("image-compat")), HttpWorkers=1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


class Pair:
    """One instance stored in dicomhub and, when it answers, in the reference Orthanc."""

    def __init__(self, ours: httpx.Client, oracle: OracleUploads | None, data: bytes) -> None:
        self.ours = ours
        answer = ours.post("/instances", content=data)
        assert answer.status_code == 200, answer.text
        self.id = answer.json()["ID"]
        self.oracle = oracle.client if oracle is not None else None
        self.oracle_id = oracle.upload(data)["ID"] if oracle is not None else None

    def get(self, route: str, accept: str | None = None) -> httpx.Response:
        """``route`` of this instance on dicomhub, compared with the oracle's answer:
        same status, same Orthanc error code, same pixels or bytes."""
        headers = {"Accept": accept} if accept else {}
        ours = self.ours.get(f"/instances/{self.id}/{route}", headers=headers)
        if self.oracle is not None:
            theirs = self.oracle.get(f"/instances/{self.oracle_id}/{route}", headers=headers)
            assert (ours.status_code, _location(ours)) == (
                theirs.status_code,
                _location(theirs),
            ), route
            assert _error_code(ours) == _error_code(theirs), route
            if ours.status_code == 200:
                assert _same_content(ours, theirs), route
        return ours


def _location(answer: httpx.Response) -> str | None:
    return answer.headers.get("location")


def _error_code(answer: httpx.Response) -> int | None:
    if answer.status_code < 400 or not answer.content:
        return None
    return json.loads(answer.content)["OrthancStatus"]  # Orthanc sends no Content-Type


def _same_content(ours: httpx.Response, theirs: httpx.Response) -> bool:
    kind = ours.headers["content-type"]
    if kind.startswith(JPEG):  # two encoders: the same picture, not the same bytes
        return pixels(ours).shape == pixels(theirs).shape
    if kind.startswith("image/png"):
        return np.array_equal(pixels(ours), pixels(theirs))
    if kind.startswith("application/octet-stream") and ours.content[:6] == b"\x93NUMPY":
        return np.array_equal(npy(ours), npy(theirs))
    return ours.content == theirs.content


def pixels(answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.status_code
    return np.array(Image.open(io.BytesIO(answer.content)))


def npy(answer: httpx.Response) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    return np.load(io.BytesIO(answer.content))


def bare(answer: httpx.Response) -> tuple[int, bytes]:
    return answer.status_code, answer.content


def error_code(answer: httpx.Response) -> tuple[int, Any]:
    return answer.status_code, answer.json()["OrthancStatus"]


def stored(ds: Dataset) -> bytes:
    ds.PatientID = PATIENT
    return to_bytes(ds)


def grid(rows: int, columns: int) -> tuple[np.ndarray, bytes]:
    """An RGB image whose red is the column and green the row of each pixel."""
    picture = np.zeros((rows, columns, 3), np.uint8)
    picture[:, :, 0] = np.arange(columns)[np.newaxis, :]
    picture[:, :, 1] = np.arange(rows)[:, np.newaxis]
    return picture, stored(rgb(picture))


@pytest.fixture(scope="module")
def http(running: RunningServer) -> httpx.Client:
    return running.client


@pytest.fixture(scope="module")
def mr(http: httpx.Client, oracle: OracleUploads | None) -> Pair:
    """A 12-bit greyscale image with a window."""
    values = RNG.integers(0, 1200, size=(12, 16)).astype(np.uint16)
    values[0, :4] = (599, 600, 601, 600)
    ds = grey(values, bits_stored=12, WindowCenter="600", WindowWidth="800")
    return Pair(http, oracle, stored(ds))


@pytest.fixture(scope="module")
def rle(http: httpx.Client, oracle: OracleUploads | None) -> Pair:
    """Two compressed greyscale frames."""
    frames = RNG.integers(0, 4000, size=(2, 16, 16)).astype(np.uint16)
    return Pair(http, oracle, stored(compressed(grey(frames), RLELossless)))


@pytest.fixture(scope="module")
def colour(http: httpx.Client, oracle: OracleUploads | None) -> Pair:
    return Pair(http, oracle, grid(6, 8)[1])


@pytest.fixture(scope="module")
def no_pixels(http: httpx.Client, oracle: OracleUploads | None) -> Pair:
    ds = grey(np.zeros((4, 4), np.uint16))
    del ds.PixelData
    return Pair(http, oracle, stored(ds))


# --- /rendered: size and sampling ---------------------------------------------------


def test_rendered_size_is_rounded_half_up(http: httpx.Client, oracle: OracleUploads | None) -> None:
    picture, data = grid(13, 26)
    wide = Pair(http, oracle, data)
    # 26 * (15 / 26) is 14.999... in floating point, 13 * 15 / 26 is 7.5
    assert pixels(wide.get("rendered?width=15")).shape == (8, 15, 3)
    assert pixels(wide.get("rendered?height=3")).shape == (3, 6, 3)
    assert pixels(wide.get("rendered?width=1")).shape == (1, 1, 3)  # 0.5 rounds up
    assert pixels(wide.get("rendered?width=9&height=9")).shape == (5, 9, 3)  # 4.5 rows
    # nearest neighbour on pixel centres, as Orthanc picks them
    for query in ("width=15", "width=7", "height=5", "width=60", "height=40"):
        drawn = pixels(wide.get(f"rendered?{query}"))
        rows, columns = drawn[:, 0, 1], drawn[0, :, 0]
        step_rows = np.float32(13) / np.float32(drawn.shape[0])
        step_columns = np.float32(26) / np.float32(drawn.shape[1])
        centres_rows = (np.arange(drawn.shape[0], dtype=np.float32) + np.float32(0.5)) * step_rows
        centres_columns = (
            np.arange(drawn.shape[1], dtype=np.float32) + np.float32(0.5)
        ) * step_columns
        assert np.array_equal(rows, centres_rows.astype(int)), query
        assert np.array_equal(columns, centres_columns.astype(int)), query


def test_rendered_side_rounding_to_zero_is_unsupported(
    http: httpx.Client, oracle: OracleUploads | None
) -> None:
    strip = Pair(http, oracle, grid(4, 20)[1])
    assert pixels(strip.get("rendered?width=3")).shape == (1, 3, 3)  # 0.6 rows
    assert bare(strip.get("rendered?width=2")) == (415, b"")  # 0.4 rows
    assert bare(strip.get("rendered?width=1")) == (415, b"")
    redirect = strip.get("rendered?width=1&returnUnsupportedImage")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "../../app/images/unsupported.png"
    assert bare(strip.get("rendered?width=1", accept="text/html")) == (404, b"")  # Accept first


# --- /rendered: windows ---------------------------------------------------------------


def test_window_narrower_than_one_value_is_one_wide(mr: Pair) -> None:
    # the first stored values are 599, 600, 601, 600
    for width in ("0", "-5", "0.5", "1"):
        drawn = pixels(mr.get(f"rendered?window-center=600&window-width={width}"))
        assert drawn[0, :4].tolist() == [0, 127, 255, 127], width
    # a window of one value centred between two stored values
    drawn = pixels(mr.get("rendered?window-center=600.2&window-width=0.3"))
    assert drawn[0, :4].tolist() == [0, 76, 255, 76]


def test_file_window_of_zero_width(http: httpx.Client, oracle: OracleUploads | None) -> None:
    values = np.array([[599, 600, 601, 2000]], np.uint16)
    flat = Pair(http, oracle, stored(grey(values, WindowCenter="600", WindowWidth="0")))
    assert pixels(flat.get("rendered"))[0].tolist() == [0, 127, 255, 255]


def test_window_not_a_number_is_black(mr: Pair) -> None:
    for query in ("window-center=nan", "window-width=nan", "window-width=inf"):
        assert pixels(mr.get(f"rendered?{query}")).max() == 0, query


# --- 1-bit images ---------------------------------------------------------------------


def test_one_bit_image_is_0_or_255(http: httpx.Client, oracle: OracleUploads | None) -> None:
    bits = RNG.integers(0, 2, size=(8, 16)).astype(np.uint8)
    ds = grey(bits)
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelData = pack_bits(bits)
    mask = Pair(http, oracle, stored(ds))
    expected = bits * 255
    for route in ("preview", "rendered", "image-uint8", "image-uint16", "image-int16"):
        assert np.array_equal(pixels(mask.get(route)), expected), route
    assert pixels(mask.get("image-uint16")).dtype == np.uint16
    assert np.array_equal(
        pixels(mask.get("rendered?window-center=128&window-width=256")), bits * 254
    )
    assert np.array_equal(npy(mask.get("numpy"))[0, :, :, 0], expected.astype(np.float32))
    assert np.array_equal(npy(mask.get("numpy?rescale=0"))[0, :, :, 0], expected)
    text = mask.get("matlab").text
    assert text == "double([ " + " ; ".join(" ".join(map(str, r)) for r in expected) + " ])"
    assert mask.get("frames/0/raw").content == pack_bits(bits)  # the stored bits


# --- arguments ------------------------------------------------------------------------


def test_bad_quality_is_unsupported(mr: Pair) -> None:
    for kind in ("preview", "rendered", "image-uint8"):
        for quality in ("abc", "1.5", "-1", "", "0", "101", "50."):
            assert bare(mr.get(f"{kind}?quality={quality}")) == (415, b""), (kind, quality)
    redirect = mr.get("preview?quality=abc&returnUnsupportedImage")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "../../app/images/unsupported.png"
    assert mr.get("preview?quality=07", accept=JPEG).status_code == 200
    # quality is looked at before the Accept header
    assert bare(mr.get("preview?quality=abc", accept="text/html")) == (415, b"")


def test_smooth_matters_only_to_rendered(mr: Pair) -> None:
    for value in ("yes", "2", ""):
        assert mr.get(f"preview?smooth={value}").status_code == 200, value
        assert mr.get(f"image-uint8?smooth={value}").status_code == 200, value
        assert bare(mr.get(f"rendered?smooth={value}")) == (415, b""), value
    for value in ("TRUE", "True"):
        assert bare(mr.get(f"rendered?smooth={value}")) == (415, b""), value
    for value in ("0", "1", "true", "false"):
        assert mr.get(f"rendered?smooth={value}").status_code == 200, value
    # the size is read before smooth, smooth before quality and the Accept header
    assert bare(mr.get("rendered?smooth=yes&width=abc")) == (404, b"")
    assert bare(mr.get("rendered?smooth=yes", accept="text/html")) == (415, b"")


def test_number_arguments_of_rendered(mr: Pair) -> None:
    for query in ("width=", "height=", "window-center=", "width=5.0", "width=2147483648"):
        assert bare(mr.get(f"rendered?{query}")) == (404, b""), query
    for query in ("window-center=1e400", "window-width=0x10", "width=5_0"):
        assert bare(mr.get(f"rendered?{query}")) == (404, b""), query
    for query in ("window-center=.5", "window-center=5.", "window-center=1e39", "width=05"):
        assert mr.get(f"rendered?{query}").status_code == 200, query
    assert pixels(mr.get("rendered?width=-0")).shape == (12, 16)


def test_sixteen_bits_in_a_jpeg_is_not_found(mr: Pair, colour: Pair, no_pixels: Pair) -> None:
    for kind in ("image-uint16", "image-int16", "frames/0/image-uint16"):
        assert bare(mr.get(kind, accept=JPEG)) == (404, b""), kind
        assert bare(mr.get(f"{kind}?returnUnsupportedImage", accept=JPEG)) == (404, b"")
    assert mr.get("image-uint16", accept="image/jpeg;q=0.5, image/png").status_code == 200
    assert mr.get("image-uint8", accept=JPEG).status_code == 200
    assert bare(colour.get("image-uint16", accept=JPEG)) == (404, b"")  # not 415
    assert bare(colour.get("image-uint16")) == (415, b"")
    # the pixels are decoded first: an instance without any is unsupported
    assert bare(no_pixels.get("image-uint16", accept=JPEG)) == (415, b"")
    assert bare(mr.get("image-uint16?quality=abc", accept=JPEG)) == (415, b"")


def test_undecodable_frame_comes_before_the_arguments(no_pixels: Pair) -> None:
    assert bare(no_pixels.get("rendered?width=abc")) == (415, b"")
    assert bare(no_pixels.get("preview", accept="text/html")) == (415, b"")
    assert bare(no_pixels.get("preview?quality=abc")) == (415, b"")


def _header_variant(http: httpx.Client, oracle: OracleUploads | None, **changes: Any) -> Pair:
    """A small greyscale image whose header is changed (``None`` removes a keyword)."""
    ds = grey(np.arange(16, dtype=np.uint16).reshape(4, 4))
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return Pair(http, oracle, stored(ds))


ARRAYS = ("matlab", "numpy", "frames/0/raw", "frames/0/raw.gz", "frames/0/numpy")


def test_arrays_of_an_instance_without_pixel_data(
    http: httpx.Client, oracle: OracleUploads | None, no_pixels: Pair
) -> None:
    """As Orthanc reads the header first: no pixel format described (no image
    attributes at all, say) is 500 Not implemented yet (2) whatever the frame; a header
    that describes one without the pixel data is 400 Bad file format (15)."""
    no_image = _header_variant(http, oracle, PixelData=None, Rows=None, Columns=None)
    for route in (*ARRAYS, "frames/0/matlab", "frames/1/raw", "frames/-1/raw"):
        answer = no_image.get(route)
        assert error_code(answer) == (500, 2), route
        assert "Details" not in answer.json(), route
    for route in ("preview", "frames/0/rendered", "image-uint16"):
        assert bare(no_image.get(route)) == (415, b""), route
    for route in ARRAYS:
        assert error_code(no_pixels.get(route)) == (400, 15), route
    series = http.get(f"/instances/{no_image.id}/series").json()["ID"]
    assert error_code(http.get(f"/series/{series}/numpy")) == (500, 2)
    if oracle is not None:
        theirs = oracle.client.get(f"/instances/{no_image.oracle_id}/series").json()["ID"]
        assert error_code(oracle.client.get(f"/series/{theirs}/numpy")) == (500, 2)


def test_header_describing_no_pixel_format(
    http: httpx.Client, oracle: OracleUploads | None
) -> None:
    """With pixel data: a header Orthanc cannot read as a pixel format is 500 (2) on the
    arrays, 415 on the pictures; raw frames need a photometric interpretation, not a
    known one."""
    for changes in (
        {"Rows": None},
        {"PhotometricInterpretation": None},
        {"PhotometricInterpretation": "FOO"},
        {"BitsAllocated": 12},
    ):
        pair = _header_variant(http, oracle, **changes)
        for route in ("matlab", "numpy", "frames/0/numpy"):
            assert error_code(pair.get(route)) == (500, 2), (changes, route)
        assert bare(pair.get("preview")) == (415, b""), changes
        raw = pair.get("frames/0/raw")
        if changes.get("PhotometricInterpretation") == "FOO":
            assert raw.status_code == 200
        else:
            assert error_code(raw) == (500, 2), changes
    # without pixel data, the header is read first
    for changes in ({"PhotometricInterpretation": "FOO"}, {"BitsAllocated": 12}):
        pair = _header_variant(http, oracle, PixelData=None, **changes)
        assert error_code(pair.get("numpy")) == (500, 2), changes
    pair = _header_variant(http, oracle, PixelData=None, PhotometricInterpretation="FOO")
    assert error_code(pair.get("frames/0/raw")) == (400, 15)


def test_bits_stored_defaults_to_bits_allocated(
    http: httpx.Client, oracle: OracleUploads | None
) -> None:
    pair = _header_variant(http, oracle, BitsStored=None)
    values = npy(pair.get("numpy?rescale=0"))
    assert values[0, :, :, 0].tolist() == np.arange(16).reshape(4, 4).tolist()
    assert pair.get("preview").status_code == 200
    assert pair.get("matlab").text == "double([ 0 1 2 3 ; 4 5 6 7 ; 8 9 10 11 ; 12 13 14 15 ])"


def test_boolean_arguments_of_numpy(mr: Pair) -> None:
    for query in ("rescale=abc", "rescale=TRUE", "rescale=2", "compress=yes", "compress=True"):
        assert error_code(mr.get(f"numpy?{query}")) == (400, 3), query
    details = mr.get("numpy?rescale=abc").json()["Details"]
    assert details == 'Expected a Boolean for GET argument "rescale", found: abc'
    assert npy(mr.get("numpy?rescale=")).dtype == np.float32
    assert npy(mr.get("numpy?rescale=false")).dtype == np.uint16


# --- frame indices --------------------------------------------------------------------


def test_frame_index_of_a_native_instance(mr: Pair) -> None:
    for frame in ("abc", "1.0", "4294967296", "-4294967296", "%201"):
        for route in ("preview", "raw", "raw.gz", "matlab"):
            assert bare(mr.get(f"frames/{frame}/{route}")) == (404, b""), (frame, route)
    for frame in ("-1", "+1", "1", "4294967295"):
        assert bare(mr.get(f"frames/{frame}/preview")) == (404, b""), frame
        for route in ("raw", "raw.gz", "matlab", "numpy"):
            assert error_code(mr.get(f"frames/{frame}/{route}")) == (400, 3), (frame, route)
    for frame in ("abc", "-1", "-0", "1.0", "4294967296"):
        assert error_code(mr.get(f"frames/{frame}/numpy")) == (400, 3), frame
    assert mr.get("frames/-0/preview").status_code == 200
    assert mr.get("frames/00/matlab").status_code == 200


def test_frame_index_of_a_compressed_instance(rle: Pair) -> None:
    for frame in ("2", "-1", "4294967295"):
        for route in ("preview", "rendered", "image-uint16"):
            assert bare(rle.get(f"frames/{frame}/{route}")) == (415, b""), (frame, route)
        assert error_code(rle.get(f"frames/{frame}/raw")) == (400, 3), frame
        assert error_code(rle.get(f"frames/{frame}/matlab")) == (400, 15), frame
    assert error_code(rle.get("frames/2/numpy")) == (400, 15)
    assert error_code(rle.get("frames/-1/numpy")) == (400, 3)  # not a number here
    redirect = rle.get("frames/2/preview?returnUnsupportedImage")
    assert redirect.status_code == 301
    second = npy(rle.get("frames/1/numpy?rescale=0"))
    # a sign, a wrapped negative index, blanks around the numpy index: frame 1
    for route in ("frames/+1/numpy?rescale=0", "frames/%201%20/numpy?rescale=0"):
        assert np.array_equal(npy(rle.get(route)), second), route
    assert rle.get("frames/-4294967295/raw").content == rle.get("frames/1/raw").content
    assert np.array_equal(pixels(rle.get("frames/+1/image-uint16"))[:, :, np.newaxis], second)


# --- the log of an undecodable frame --------------------------------------------------


def test_undecodable_frame_logs_one_line(http: httpx.Client, running: RunningServer) -> None:
    ds, _ = jpeg_baseline(RNG.integers(0, 256, size=(8, 8, 3)).astype(np.uint8))
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xdb" + b"\x00" * 40])
    answer = http.post("/instances", content=stored(ds))
    instance = answer.json()["ID"]
    assert http.get(f"/instances/{instance}/preview").status_code == 415
    assert http.get(f"/instances/{instance}/numpy").status_code == 400
    # the failure is remembered: a viewer retrying neither decodes nor logs again
    assert http.get(f"/instances/{instance}/preview?quality=50").status_code == 415
    assert http.get(f"/instances/{instance}/rendered").status_code == 415
    assert error_code(http.get(f"/instances/{instance}/matlab")) == (400, 15)
    log = (running.folder / "server.log").read_text()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if instance in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("W") and "Cannot decode frame 0" in lines[0]
