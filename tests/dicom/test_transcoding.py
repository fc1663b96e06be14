"""Transcoding between transfer syntaxes: every target the installed encoders write,
from native and compressed sources, checked against the source pixels with numpy."""

from __future__ import annotations

import io

import numpy as np
import pytest
from dicom_factory import make_dataset, to_bytes
from image_factory import grey, rgb
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from dicomhub.dicom.transcoding import (
    LOSSY_SYNTAXES,
    TARGET_SYNTAXES,
    TranscodingError,
    transcode,
    transcode_ex,
)

LOSSLESS = sorted(TARGET_SYNTAXES - LOSSY_SYNTAXES)


def _ramp(rows: int = 48, columns: int = 40) -> np.ndarray:
    """A smooth 8-bit picture (lossy codecs stay close on it)."""
    y, x = np.mgrid[0:rows, 0:columns]
    return ((x * 3 + y * 2) % 256).astype(np.uint8)


def _sources() -> dict[str, Dataset]:
    ramp = _ramp()
    colour = np.stack([ramp, 255 - ramp, np.full_like(ramp, 90)], axis=-1)
    ct = (np.arange(48 * 40, dtype=np.int32).reshape(48, 40) * 37 % 4096 - 1024).astype(np.int16)
    return {
        "grey8": grey(ramp),
        "grey12": grey((ramp.astype(np.uint16) * 16), bits_stored=12),
        "signed16": grey(ct),
        "rgb": rgb(colour),
        "rgb-planar": rgb(colour, planar=True),
        "multiframe": grey(np.stack([ramp, ramp[::-1], ramp // 2])),
    }


def _pixels(data: bytes) -> np.ndarray:
    return dcmread(io.BytesIO(data)).pixel_array


@pytest.mark.parametrize("target", LOSSLESS)
@pytest.mark.parametrize("name", list(_sources()))
def test_lossless_targets_keep_every_pixel(name: str, target: str) -> None:
    source = _sources()[name]
    expected = source.pixel_array.copy()
    sop = source.SOPInstanceUID
    result = transcode_ex(to_bytes(source), target)
    out = dcmread(io.BytesIO(result.data))
    assert out.file_meta.TransferSyntaxUID == target
    assert out.SOPInstanceUID == sop and not result.lossy and not result.new_sop_instance_uid
    assert "LossyImageCompression" not in out
    np.testing.assert_array_equal(out.pixel_array, expected)
    # and back to the uncompressed syntax from there (decode, then encode)
    back = dcmread(io.BytesIO(transcode(result.data, ExplicitVRLittleEndian)))
    np.testing.assert_array_equal(back.pixel_array, expected)
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


@pytest.mark.parametrize(
    ("target", "method"),
    [
        (JPEGBaseline8Bit, "ISO_10918_1"),
        (JPEGExtended12Bit, "ISO_10918_1"),
        (JPEGLSNearLossless, "ISO_14495_1"),
        (JPEG2000, "ISO_15444_1"),
    ],
)
@pytest.mark.parametrize("name", ["grey8", "rgb", "multiframe"])
def test_lossy_targets_are_close_and_marked(name: str, target: str, method: str) -> None:
    source = _sources()[name]
    expected = source.pixel_array.astype(np.int32)
    result = transcode_ex(to_bytes(source), target, quality=95)
    out = dcmread(io.BytesIO(result.data))
    assert out.file_meta.TransferSyntaxUID == target
    assert result.lossy and result.new_sop_instance_uid
    assert out.SOPInstanceUID != source.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.LossyImageCompression == "01"
    assert out.LossyImageCompressionMethod == method
    assert float(out.LossyImageCompressionRatio) > 1
    assert out.ImageType[0] == "DERIVED"
    reference = out.SourceImageSequence[0]
    assert reference.ReferencedSOPInstanceUID == source.SOPInstanceUID
    decoded = out.pixel_array.astype(np.int32)
    assert decoded.shape == expected.shape
    assert np.abs(decoded - expected).mean() < 3
    if name == "rgb" and target in (JPEGBaseline8Bit, JPEGExtended12Bit):
        assert out.PhotometricInterpretation == "YBR_FULL_422"


def test_lossy_can_keep_the_sop_instance_uid() -> None:
    source = _sources()["grey8"]
    out = dcmread(
        io.BytesIO(transcode(to_bytes(source), JPEGBaseline8Bit, allow_new_sop_instance_uid=False))
    )
    assert out.SOPInstanceUID == source.SOPInstanceUID
    assert out.LossyImageCompression == "01"


def test_quality_changes_the_size() -> None:
    noise = np.random.default_rng(4).integers(0, 256, (64, 64), dtype=np.uint8)
    data = to_bytes(grey(noise))
    low = transcode(data, JPEGBaseline8Bit, quality=20)
    high = transcode(data, JPEGBaseline8Bit, quality=98)
    assert len(low) < len(high)
    err_low = np.abs(_pixels(low).astype(int) - noise).mean()
    err_high = np.abs(_pixels(high).astype(int) - noise).mean()
    assert err_high < err_low


@pytest.mark.parametrize(
    "name",
    [
        "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline YBR_FULL_422
        "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS
        "MR_small_jp2klossless.dcm",  # JPEG 2000
        "MR_small_RLE.dcm",  # RLE
        "SC_rgb_small_odd_jpeg.dcm",
    ],
)
@pytest.mark.parametrize("target", [ExplicitVRLittleEndian, JPEGLSLossless, RLELossless])
def test_compressed_sources_are_decoded_then_encoded(name: str, target: str) -> None:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom's {name} is not installed")
    original = dcmread(path)
    expected = original.pixel_array.copy()
    with open(path, "rb") as handle:
        out = dcmread(io.BytesIO(transcode(handle.read(), target)))
    assert out.file_meta.TransferSyntaxUID == target
    np.testing.assert_array_equal(out.pixel_array, expected)
    if original.SamplesPerPixel == 3:  # YBR came back as RGB
        assert out.PhotometricInterpretation == "RGB"


@pytest.mark.parametrize(
    "target",
    [ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian, JPEG2000Lossless],
)
def test_big_endian_round_trip(target: str) -> None:
    source = _sources()["signed16"]
    expected = source.pixel_array.copy()
    big = transcode(to_bytes(source), ExplicitVRBigEndian)
    assert dcmread(io.BytesIO(big)).file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    np.testing.assert_array_equal(_pixels(big), expected)
    np.testing.assert_array_equal(_pixels(transcode(big, target)), expected)


def test_same_syntax_is_returned_unchanged() -> None:
    data = to_bytes(_sources()["grey8"])
    assert transcode(data, ExplicitVRLittleEndian) == data


def test_without_pixel_data_only_the_encoding_changes() -> None:
    ds = make_dataset()
    del ds.PixelData
    out = dcmread(io.BytesIO(transcode(to_bytes(ds), ImplicitVRLittleEndian)))
    assert out.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert out.PatientID == ds.PatientID and "PixelData" not in out


def test_dataset_source_is_accepted() -> None:
    source = _sources()["rgb"]
    expected = source.pixel_array.copy()
    out = dcmread(io.BytesIO(transcode(source, JPEGLosslessSV1)))
    np.testing.assert_array_equal(out.pixel_array, expected)


@pytest.mark.parametrize("target", ["1.2.3", "", "1.2.840.10008.1.2.4.100", JPEG2000 + ".9"])
def test_unknown_or_unsupported_targets_are_refused(target: str) -> None:
    with pytest.raises(TranscodingError):
        transcode(to_bytes(_sources()["grey8"]), target)


@pytest.mark.parametrize("target", [JPEGBaseline8Bit, JPEGExtended12Bit])
def test_jpeg_lossy_refuses_more_than_eight_bits(target: str) -> None:
    with pytest.raises(TranscodingError, match="8-bit"):
        transcode(to_bytes(_sources()["signed16"]), target)


def test_bad_quality_is_refused() -> None:
    with pytest.raises(TranscodingError):
        transcode(to_bytes(_sources()["grey8"]), JPEGBaseline8Bit, quality=0)


def test_corrupted_compressed_pixels_are_refused() -> None:
    ds = _sources()["grey8"]
    ds.compress(RLELossless)
    data = bytearray(to_bytes(ds))
    # keep the item structure but break the RLE header (the segment count)
    start = data.index(b"\xfe\xff\x00\xe0", data.index(b"\xe0\x7f\x10\x00") + 12) + 8
    data[start : start + 8] = b"\xff" * 8
    with pytest.raises(TranscodingError):
        transcode(bytes(data), ExplicitVRLittleEndian)


def test_truncated_native_pixels_are_refused() -> None:
    ds = _sources()["grey8"]
    ds.PixelData = ds.PixelData[:100]
    with pytest.raises(TranscodingError):
        transcode(to_bytes(ds), JPEGLSLossless)


def test_not_dicom_is_refused() -> None:
    with pytest.raises(TranscodingError):
        transcode(b"not a dicom file at all" * 10, JPEGLossless)


def test_every_target_is_a_transfer_syntax() -> None:
    assert all(UID(uid).is_transfer_syntax for uid in TARGET_SYNTAXES)


# ---- decoding of HTJ2K and 12-bit JPEG (issue 4, part 3) -------------------------------
# Two tiny codestreams made once with imagecodecs (OpenJPH, libjpeg-turbo 12-bit) from
# the array of ``_pattern16``; no package here encodes either syntax.
HTJ2K_STREAM = (
    "/0//UQApQAAAAAAQAAAAEAAAAAAAAAAAAAAAEAAAABAAAAAAAAAAAAABDwEB/1AACAACAAAACv9SAAwAAgABAAUE"
    "BEAB/1wAEyCIkJCQkJCQkJCQkJCQiIiI/2QAFwABT3BlbkpQSCBWZXIgMC4yNi4zLv+QAAoAAAAAAIMAAf+TwAAm"
    "ifcFB3QAAMAAE0AAEwBG/gMHdACi/gIHdADAABPAABOAIIP8AoJ0AFCh/gBjVADAABVQAAVQggULFvyqcgJ1AKQk"
    "EunAIQHstgDAAC0IAAWijo6Ojo6Ojo7nynp6cYJ4AEgEQRAEQf79hCB79hCB7LoA/9k="
)
JPEG12_STREAM = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJ"
    "BwYGCAsICQoKCgoKBggLDAsKDAkKCgr/wQALDAAQABABAREA/8QAFAABAAAAAAAAAAAAAAAAAAAADf/EABwQAAAG"
    "AwAAAAAAAAAAAAAAAAAKDCc4RFVhc//aAAgBAQAAPwAz1Q4RV2IDcYKpy0GQBDhFXYgNxgqnLQLn0OEVdiA3GCqc"
    "tBkAQ4RV2IDcYKpy0P/Z"
)


def _pattern16() -> np.ndarray:
    y, x = np.mgrid[0:16, 0:16]
    return ((x * 200 + y * 37) % 4096).astype(np.uint16)


def _encapsulated(stream: str, syntax: str) -> bytes:
    import base64

    from pydicom.encaps import encapsulate

    ds = grey(_pattern16(), bits_stored=12)
    ds.PixelData = encapsulate([base64.b64decode(stream)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = syntax
    return to_bytes(ds)


@pytest.mark.parametrize(
    "syntax",
    ["1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"],
)
def test_htj2k_is_decoded_and_transcoded(syntax: str) -> None:
    from dicomhub.dicom.imaging import decode_frame

    data = _encapsulated(HTJ2K_STREAM, syntax)
    np.testing.assert_array_equal(decode_frame(dcmread(io.BytesIO(data)), 0), _pattern16())
    out = dcmread(io.BytesIO(transcode(data, JPEGLSLossless)))
    np.testing.assert_array_equal(out.pixel_array, _pattern16())


def test_jpeg_12_bit_extended_is_decoded_and_transcoded() -> None:
    from dicomhub.dicom.imaging import decode_frame

    data = _encapsulated(JPEG12_STREAM, JPEGExtended12Bit)
    decoded = decode_frame(dcmread(io.BytesIO(data)), 0).astype(int)
    assert decoded.max() <= 4095
    assert np.abs(decoded - _pattern16()).mean() < 40  # lossy, quality 95
    out = dcmread(io.BytesIO(transcode(data, ExplicitVRLittleEndian)))
    np.testing.assert_array_equal(out.pixel_array, decoded)
