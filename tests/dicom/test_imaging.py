"""Decoding and rendering, checked against values computed with numpy on the source array."""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_factory import (
    JPEG2000Lossless,
    RLELossless,
    compressed,
    deflated,
    grey,
    jpeg_baseline,
    palette,
    rgb,
)
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate

from dicomhub.dicom import imaging

RNG = np.random.default_rng(4)
CT = RNG.integers(-1024, 3000, size=(2, 40, 30)).astype(np.int16)


def shipped(name: str):  # type: ignore[no-untyped-def]
    return dcmread(get_testdata_file(name, download=False))


def layout_and_frame(ds, index: int = 0):  # type: ignore[no-untyped-def]
    return imaging.pixel_layout(ds), imaging.decode_frame(ds, index)


# --- decoding, per transfer syntax family -------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32])
def test_native_little_endian_every_depth(dtype: type[np.integer]) -> None:
    info = np.iinfo(dtype)
    array = RNG.integers(info.min, info.max, size=(3, 9, 7), dtype=dtype, endpoint=True)
    ds = grey(array)
    for index in range(3):
        assert np.array_equal(imaging.decode_frame(ds, index), array[index])


def test_twelve_bits_stored_in_sixteen() -> None:
    array = RNG.integers(0, 4096, size=(8, 8)).astype(np.uint16)
    assert np.array_equal(imaging.decode_frame(grey(array, bits_stored=12), 0), array)


def test_big_endian_implicit_and_jpeg_ls_match_the_native_file() -> None:
    expected = shipped("MR_small.dcm").pixel_array
    for name in (
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
    ):
        assert np.array_equal(imaging.decode_frame(shipped(name), 0), expected), name


def test_rle_and_jpeg2000_encoded_here() -> None:
    array = CT[0].repeat(2, axis=0).repeat(2, axis=1)  # openjpeg wants a few dozen pixels
    for syntax in (RLELossless, JPEG2000Lossless):
        ds = compressed(grey(array), syntax)
        assert ds.file_meta.TransferSyntaxUID == syntax
        assert np.array_equal(imaging.decode_frame(ds, 0), array)


def test_rle_multiframe() -> None:
    ds = compressed(grey(CT), RLELossless)
    assert np.array_equal(imaging.decode_frame(ds, 1), CT[1])
    assert imaging.raw_frame(ds, 1)[:4] != b""  # the second fragment, undecoded


def test_deflated() -> None:
    ds = dcmread(io.BytesIO(deflated(grey(CT))))
    assert np.array_equal(imaging.decode_frame(ds, 1), CT[1])


def test_jpeg_baseline_matches_an_independent_decoder() -> None:
    colours = RNG.integers(0, 256, size=(16, 24, 3)).astype(np.uint8)
    ds, expected = jpeg_baseline(colours)
    decoded = imaging.decode_frame(ds, 0)
    assert decoded.shape == (16, 24, 3)
    assert np.abs(decoded.astype(int) - expected).max() <= 3


def test_jpeg_shipped_rgb() -> None:
    frame = imaging.decode_frame(shipped("SC_rgb_jpeg_dcmtk.dcm"), 0)
    assert frame.shape == (100, 100, 3)
    # the file's stripes: first row pure red, in RGB after the YBR conversion
    assert np.abs(frame[0, 0].astype(int) - [255, 0, 0]).max() <= 3


def test_planar_configuration_and_ybr() -> None:
    colours = RNG.integers(0, 256, size=(2, 5, 6, 3)).astype(np.uint8)
    assert np.array_equal(imaging.decode_frame(rgb(colours, planar=True), 1), colours[1])
    from pydicom.pixels import convert_color_space

    ybr = convert_color_space(colours[0], "RGB", "YBR_FULL")
    ds = rgb(ybr, photometric="YBR_FULL")
    assert np.abs(imaging.decode_frame(ds, 0).astype(int) - colours[0]).max() <= 2


# --- renderings ---------------------------------------------------------------------


def test_preview_stretches_stored_values() -> None:
    ds = grey(CT)
    layout, frame = layout_and_frame(ds, 1)
    low, high = CT[1].min(), CT[1].max()
    expected = np.rint((CT[1] - low) * (255.0 / (high - low)))
    assert np.abs(imaging.preview(ds, layout, frame).astype(int) - expected).max() <= 0


def test_preview_monochrome1_is_inverted() -> None:
    ds = grey(CT[0], photometric="MONOCHROME1")
    layout, frame = layout_and_frame(ds)
    low, high = CT[0].min(), CT[0].max()
    expected = 255 - np.rint((CT[0] - low) * (255.0 / (high - low)))
    assert np.array_equal(imaging.preview(ds, layout, frame), expected.astype(np.uint8))


def test_preview_of_a_flat_image_is_black() -> None:
    ds = grey(np.full((4, 4), 77, np.uint16))
    layout, frame = layout_and_frame(ds)
    assert not imaging.preview(ds, layout, frame).any()


def windowed(values: np.ndarray, center: float, width: float) -> np.ndarray:
    return np.floor(np.clip((values - (center - width / 2)) / width * 255, 0, 255))


def test_rendered_applies_rescale_then_the_file_window() -> None:
    ds = grey(
        CT[0], RescaleSlope="2", RescaleIntercept="-1024", WindowCenter="40", WindowWidth="400"
    )
    layout, frame = layout_and_frame(ds)
    expected = windowed(CT[0] * 2.0 - 1024, 40, 400)
    assert np.array_equal(imaging.render(ds, layout, frame), expected)


def test_rendered_window_from_the_request_and_multi_valued_window() -> None:
    ds = grey(CT[0], WindowCenter=["100", "300"], WindowWidth=["50", "800"])
    layout, frame = layout_and_frame(ds)
    assert np.array_equal(imaging.render(ds, layout, frame), windowed(CT[0], 100, 50))
    got = imaging.render(ds, layout, frame, center=-500.0, width=3000.0)
    assert np.array_equal(got, windowed(CT[0], -500, 3000))


def test_rendered_default_window_covers_the_stored_bits() -> None:
    array = RNG.integers(0, 4096, size=(8, 8)).astype(np.uint16)
    ds = grey(array, bits_stored=12)
    layout, frame = layout_and_frame(ds)
    assert np.array_equal(imaging.render(ds, layout, frame), windowed(array, 2048, 4096))


def test_rendered_monochrome1() -> None:
    ds = grey(CT[0], photometric="MONOCHROME1", WindowCenter="0", WindowWidth="2000")
    layout, frame = layout_and_frame(ds)
    assert np.array_equal(imaging.render(ds, layout, frame), 255 - windowed(CT[0], 0, 2000))


def test_palette_colours() -> None:
    lut = RNG.integers(0, 65536, size=(256, 3)).astype(np.uint16)
    indices = RNG.integers(0, 256, size=(6, 5)).astype(np.uint8)
    ds = palette(indices, lut)
    layout, frame = layout_and_frame(ds)
    expected = (lut[indices] >> 8).astype(np.uint8)
    assert np.array_equal(imaging.preview(ds, layout, frame), expected)
    assert np.array_equal(imaging.render(ds, layout, frame), expected)


def test_clipped_routes() -> None:
    values = CT[0]
    assert np.array_equal(imaging.clipped(values, np.uint8), np.clip(values, 0, 255))
    assert np.array_equal(imaging.clipped(values, np.uint16), np.clip(values, 0, None))
    assert np.array_equal(imaging.clipped(values, np.int16), values)


def test_fit_size_and_nearest_resize() -> None:
    assert imaging.fit_size(16, 20, 10, None) == (10, 8)
    assert imaging.fit_size(16, 20, 10, 4) == (5, 4)
    assert imaging.fit_size(16, 20, 40, 40) == (40, 32)
    assert imaging.fit_size(16, 20, None, None) is None
    image = np.arange(16 * 20, dtype=np.uint8).reshape(16, 20)
    small = imaging.resize(image, (5, 4), smooth=False)
    rows, cols = (np.arange(4) + 0.5) * 4, (np.arange(5) + 0.5) * 4
    assert np.array_equal(small, image[rows.astype(int)][:, cols.astype(int)])
    flat = np.full((16, 20), 9, np.uint8)
    assert np.array_equal(imaging.resize(flat, (5, 4), smooth=True), np.full((4, 5), 9))


# --- encoding -----------------------------------------------------------------------


def test_png_sixteen_bits_and_two_complement() -> None:
    picture = imaging.clipped(CT[0], np.int16)
    decoded = np.array(Image.open(io.BytesIO(imaging.encode(picture, imaging.PNG))))
    assert np.array_equal(decoded.astype(np.uint16).view(np.int16), CT[0])


def test_jpeg_quality_and_pam() -> None:
    picture = np.tile(np.arange(64, dtype=np.uint8) * 4, (32, 1))
    small = imaging.encode(picture, imaging.JPEG, quality=10)
    large = imaging.encode(picture, imaging.JPEG, quality=100)
    assert small[:2] == b"\xff\xd8" and len(small) < len(large)
    pam = imaging.encode(picture, imaging.PAM)
    header = b"P7\nWIDTH 64\nHEIGHT 32\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n"
    assert pam == header + picture.tobytes()
    deep = imaging.encode(np.array([[1, 65535]], np.uint16), imaging.PAM)
    assert deep.endswith(b"\x00\x01\xff\xff") and b"MAXVAL 65535" in deep


# --- bad input ----------------------------------------------------------------------


def test_no_pixel_data() -> None:
    ds = grey(CT[0])
    del ds.PixelData
    with pytest.raises(imaging.NoPixelData):
        imaging.decode_frame(ds, 0)
    assert imaging.number_of_frames(ds) == 1


def test_header_is_read_before_the_pixel_data() -> None:
    """A header that describes no pixel format fails as such, pixel data or not."""
    for keyword, value in (("Rows", None), ("PhotometricInterpretation", None),
                           ("PhotometricInterpretation", "FOO"), ("BitsAllocated", 12),
                           ("SamplesPerPixel", 2)):  # fmt: skip
        for with_pixels in (True, False):
            ds = grey(CT[0])
            if not with_pixels:
                del ds.PixelData
            if value is None:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
            with pytest.raises(imaging.UnsupportedLayout):
                imaging.pixel_layout(ds)
    ds = grey(CT[0])
    ds.PhotometricInterpretation = "FOO"
    assert imaging.raw_frame(ds, 0) == CT[0].tobytes()  # raw frames need no known one
    del ds.PixelData
    with pytest.raises(imaging.NoPixelData):
        imaging.raw_frame(ds, 0)


def test_missing_bits_stored_is_bits_allocated() -> None:
    ds = grey(CT[0])
    del ds.BitsStored
    assert imaging.pixel_layout(ds).bits_stored == 16
    np.testing.assert_array_equal(imaging.decode_frame(ds, 0), CT[0])


def test_frame_out_of_range() -> None:
    with pytest.raises(imaging.FrameOutOfRange):
        imaging.decode_frame(grey(CT), 2)
    with pytest.raises(imaging.FrameOutOfRange):
        imaging.raw_frame(grey(CT), -1)


def test_hostile_dimensions_are_refused_before_allocating() -> None:
    ds = grey(CT[0])
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 100000
    with pytest.raises(imaging.UnsupportedImage):
        imaging.decode_frame(ds, 0)
    ds = grey(CT[0])
    ds.BitsAllocated = 12
    with pytest.raises(imaging.UnsupportedImage):
        imaging.decode_frame(ds, 0)


def test_truncated_native_data() -> None:
    ds = grey(CT)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) - 10]
    for index in (0, 1):  # pydicom checks the whole element's length
        with pytest.raises(imaging.CorruptedPixelData):
            imaging.decode_frame(ds, index)
    assert imaging.raw_frame(ds, 0) == CT[0].tobytes()
    with pytest.raises(imaging.CorruptedPixelData):
        imaging.raw_frame(ds, 1)


def test_corrupted_jpeg_stream() -> None:
    colours = RNG.integers(0, 256, size=(16, 24, 3)).astype(np.uint8)
    ds, _ = jpeg_baseline(colours)
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xdb" + b"\x00" * 40])
    with pytest.raises(imaging.CorruptedPixelData):
        imaging.decode_frame(ds, 0)
    ds.PixelData = b"\x00" * 8
    with pytest.raises(imaging.CorruptedPixelData):
        imaging.decode_frame(ds, 0)


def test_unsupported_transfer_syntax() -> None:
    ds = grey(CT[0])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2
    with pytest.raises(imaging.UnsupportedImage):
        imaging.decode_frame(ds, 0)


def test_voi_lut_sequence_is_ignored_like_orthanc_1_10() -> None:
    """Orthanc 1.10.1 renders with the default window even when a VOI LUT is present."""
    from pydicom.dataset import Dataset

    array = RNG.integers(0, 4096, size=(8, 8)).astype(np.uint16)
    ds = grey(array, bits_stored=12)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 8]
    item.add_new(0x00283006, "US", (255 - np.arange(4096) // 16).tolist())
    ds.VOILUTSequence = [item]
    layout, frame = layout_and_frame(ds)
    assert np.array_equal(imaging.render(ds, layout, frame), windowed(array, 2048, 4096))


def test_hostile_compressed_header_is_refused_before_decoding() -> None:
    ds = compressed(grey(CT[0].repeat(2, axis=0)), RLELossless)
    ds.Rows = ds.Columns = 12000  # 288 MB of 16-bit samples from a few KB
    with pytest.raises(imaging.UnsupportedImage):
        imaging.decode_frame(ds, 0)
