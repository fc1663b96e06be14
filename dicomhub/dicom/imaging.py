"""Decoding and rendering DICOM frames: pure functions over pydicom datasets and numpy.

pydicom's pixel decoders (with the pylibjpeg plugins) do all the codec work; this
module only adds what Orthanc does on top: the frame list, size checks made *before*
anything is allocated (a hostile header could otherwise ask for terabytes), and the
value mappings of each image route (preview stretch, clipping to 8/16 bits,
windowing of ``/rendered``), then encoding to PNG, JPEG or PAM with Pillow.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import apply_color_lut, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian

#: The most a single decoded frame may take: 16 times a large mammogram, yet small
#: enough that a few KB of hostile compressed data cannot make us allocate gigabytes
#: (rendering also makes a float32 copy, twice the size of 16-bit samples).
MAX_FRAME_BYTES = 256 << 20
#: The most a whole multi-frame array (``/numpy``) may take.
MAX_ARRAY_BYTES = 2 << 30

PNG = "image/png"
JPEG = "image/jpeg"
PAM = "image/x-portable-arbitrarymap"


class ImageError(ValueError):
    """The pixel data of a file cannot be turned into an image."""


class NoPixelData(ImageError):
    """The instance has no Pixel Data element."""


class UnsupportedImage(ImageError):
    """The transfer syntax or the pixel layout is not decodable here."""


class UnsupportedLayout(UnsupportedImage):
    """The header describes no pixel format that can be decoded: Rows, Columns,
    BitsAllocated or PhotometricInterpretation missing, or values not handled."""


#: The photometric interpretations the decoders turn into grey or RGB frames.
PHOTOMETRICS = frozenset(
    {
        "MONOCHROME1",
        "MONOCHROME2",
        "PALETTE COLOR",
        "RGB",
        "YBR_FULL",
        "YBR_FULL_422",
        "YBR_PARTIAL_420",
        "YBR_ICT",
        "YBR_RCT",
    }
)


class CorruptedPixelData(ImageError):
    """The pixel stream is truncated or invalid for its declared layout."""


class FrameOutOfRange(ImageError):
    """The requested frame index does not exist."""


@dataclass(frozen=True)
class PixelLayout:
    """What the header says about the pixels, checked for sanity."""

    rows: int
    columns: int
    samples: int
    frames: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    transfer_syntax: UID

    @property
    def frame_bytes(self) -> int:
        """Bytes of one native frame (YBR 4:2:2 stores two samples per pixel, not three)."""
        samples = 2 if self.photometric == "YBR_FULL_422" and self.samples == 3 else self.samples
        if self.bits_allocated == 1:
            return math.ceil(self.rows * self.columns * samples / 8)
        return self.rows * self.columns * samples * (self.bits_allocated // 8)

    @property
    def is_color(self) -> bool:
        return self.samples == 3 or self.photometric == "PALETTE COLOR"


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        if default is None:
            raise UnsupportedLayout(f"Missing {keyword}")
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise UnsupportedLayout(f"Bad {keyword}: {value!r}") from exc


def number_of_frames(ds: Dataset) -> int:
    """The frame count Orthanc lists: NumberOfFrames, or 1 when absent or invalid."""
    try:
        count = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1
    return max(count, 1)


def transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return UID(str(uid)) if uid else UID("1.2.840.10008.1.2")


def pixel_layout(ds: Dataset, check_photometric: bool = True) -> PixelLayout:
    """The header's pixel description; raises before anything is decoded or allocated.

    As Orthanc, the header is read before the pixel data is looked for: a header that
    describes no pixel format is ``UnsupportedLayout`` (an instance without any image
    attribute too), one that does but has no pixel data ``NoPixelData``. The
    photometric interpretation must be present; ``check_photometric``: and one of
    ``PHOTOMETRICS`` (raw frames are given whatever it says).
    """
    layout = PixelLayout(
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        samples=_int(ds, "SamplesPerPixel", 1),
        frames=number_of_frames(ds),
        bits_allocated=_int(ds, "BitsAllocated"),
        bits_stored=_int(ds, "BitsStored", _int(ds, "BitsAllocated")),
        signed=_int(ds, "PixelRepresentation", 0) == 1,
        photometric=str(ds.get("PhotometricInterpretation", "") or "").strip().upper(),
        transfer_syntax=transfer_syntax(ds),
    )
    if not layout.photometric or (check_photometric and layout.photometric not in PHOTOMETRICS):
        raise UnsupportedLayout(f"Unsupported photometric interpretation: {layout.photometric}")
    if layout.samples not in (1, 3):
        raise UnsupportedLayout(f"Unsupported samples per pixel: {layout.samples}")
    if layout.bits_allocated not in (1, 8, 16, 32) or not 0 < layout.bits_stored <= 32:
        raise UnsupportedLayout(f"Unsupported bit depth: {layout.bits_allocated}")
    if layout.rows <= 0 or layout.columns <= 0:
        raise UnsupportedImage("Unsupported image dimensions")
    if "PixelData" not in ds:
        raise NoPixelData("The instance has no pixel data")
    if layout.frame_bytes > MAX_FRAME_BYTES:
        raise UnsupportedImage("The frame is too large to be decoded")
    return layout


def _check_index(layout: PixelLayout, index: int) -> None:
    if not 0 <= index < layout.frames:
        raise FrameOutOfRange(f"Frame {index} does not exist ({layout.frames} frames)")


def is_native(syntax: UID) -> bool:
    """Uncompressed pixel data (deflate included); unknown syntaxes are not."""
    try:
        return not syntax.is_encapsulated
    except ValueError:  # not a transfer syntax pydicom knows
        return False


def decode_frame(ds: Dataset, index: int) -> np.ndarray:
    """One frame as stored values: (rows, columns) or (rows, columns, 3) in RGB.

    YBR frames come back as RGB, planar data as interleaved; palette indices are kept
    (``to_rgb8`` applies the palette where a picture is wanted).
    """
    layout = pixel_layout(ds)
    if not is_native(layout.transfer_syntax) and not 0 <= index < layout.frames:
        # Orthanc asks its decoder for the frame, which fails: the routes answer as
        # for an undecodable image (415, Bad file format), not as for a wrong index.
        raise UnsupportedImage(f"Frame {index} does not exist ({layout.frames} frames)")
    _check_index(layout, index)
    try:
        decoder = get_decoder(layout.transfer_syntax)
    except NotImplementedError as exc:
        raise UnsupportedImage(f"No decoder for {layout.transfer_syntax}") from exc
    if not decoder.is_available:
        raise UnsupportedImage(f"No plugin available for {layout.transfer_syntax}")
    if layout.transfer_syntax.is_encapsulated:
        _check_fragments(ds)
    elif len(ds.PixelData) < (index + 1) * layout.frame_bytes:
        raise CorruptedPixelData("The pixel data is shorter than its declared size")
    # as Orthanc, a missing BitsStored is BitsAllocated (pydicom would refuse the file)
    options = {} if "BitsStored" in ds else {"bits_stored": layout.bits_stored}
    try:
        array, _ = decoder.as_array(ds, index=index, as_rgb=True, **options)
    except MemoryError as exc:
        raise UnsupportedImage("The frame is too large to be decoded") from exc
    except Exception as exc:  # every codec reports corrupt input its own way
        raise CorruptedPixelData(f"Cannot decode the frame: {exc}") from exc
    if array.shape[:2] != (layout.rows, layout.columns):
        raise CorruptedPixelData("The decoded frame does not match the header")
    if layout.bits_allocated == 1:
        # As Orthanc: a bit set is 255 in every decoded answer (``raw`` keeps the bits)
        return array.astype(np.uint8) * np.uint8(255)
    return array


def _check_fragments(ds: Dataset) -> None:
    """Encapsulated data needs one item at least; the codec checks the rest."""
    data = ds.PixelData
    if len(data) < 16 or data[:4] != b"\xfe\xff\x00\xe0":
        raise CorruptedPixelData("The encapsulated pixel data is malformed")


def raw_frame(ds: Dataset, index: int) -> bytes:
    """The stored bytes of one frame: a slice of native data, or its compressed fragments."""
    layout = pixel_layout(ds, check_photometric=False)
    _check_index(layout, index)
    data = ds.PixelData
    if not layout.transfer_syntax.is_encapsulated:
        size = (
            layout.frame_bytes
            if layout.bits_allocated != 1
            else math.ceil(layout.rows * layout.columns * layout.samples / 8)
        )
        chunk = bytes(data[index * size : (index + 1) * size])
        if len(chunk) != size:
            raise CorruptedPixelData("The pixel data is shorter than its declared size")
        if layout.transfer_syntax == ExplicitVRBigEndian and layout.bits_allocated in (16, 32):
            # As Orthanc, whose parser holds the pixels in little endian: the samples,
            # not the file's byte order.
            width = layout.bits_allocated // 8
            chunk = np.frombuffer(chunk, dtype=f">u{width}").astype(f"<u{width}").tobytes()
        return chunk
    try:
        for position, frame in enumerate(generate_frames(data, number_of_frames=layout.frames)):
            if position == index:
                return frame
    except Exception as exc:
        raise CorruptedPixelData(f"Cannot split the encapsulated frames: {exc}") from exc
    raise CorruptedPixelData("Fewer encapsulated frames than declared")


# --- value mappings of the image routes -------------------------------------------


def _rescale(ds: Dataset) -> tuple[float, float]:
    try:
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
    except (TypeError, ValueError):
        return 1.0, 0.0
    return slope, intercept


def rescaled(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    """Modality values (e.g. Hounsfield units) as float32, as ``/numpy`` answers them."""
    slope, intercept = _rescale(ds)
    return (frame.astype(np.float64) * slope + intercept).astype(np.float32)


def _first(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = value[0] if len(value) else None  # type: ignore[arg-type,index]
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def default_window(ds: Dataset, layout: PixelLayout) -> tuple[float, float]:
    """The file's first window, else the whole range of the stored bits (as Orthanc).

    A width of zero or less is the file's too: ``render`` widens it to one value.
    """
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if center is not None and width is not None:
        return center, width
    full = float(2**layout.bits_stored)
    return full / 2, full


def _stretch(values: np.ndarray) -> np.ndarray:
    """min..max to 0..255: ``value * scale - low * scale`` rounded half up, in single
    precision, which is how Orthanc's values fall on either side of a half."""
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scale = np.float32(255.0) / np.float32(high - low)
    scaled = values.astype(np.float32) * scale - np.float32(low) * scale + np.float32(0.5)
    return np.floor(np.clip(scaled, 0, 255)).astype(np.uint8)


def to_rgb8(ds: Dataset, layout: PixelLayout, frame: np.ndarray) -> np.ndarray:
    """A colour frame as 8-bit RGB: palette applied, deeper samples stretched."""
    if layout.photometric == "PALETTE COLOR":
        frame = apply_color_lut(frame, ds)
        if frame.dtype != np.uint8:
            return (frame >> 8).astype(np.uint8) if frame.max() > 255 else frame.astype(np.uint8)
        return frame
    return frame if frame.dtype == np.uint8 else _stretch(frame)


def preview(ds: Dataset, layout: PixelLayout, frame: np.ndarray) -> np.ndarray:
    """``/preview``: stored values stretched from their min..max to 0..255."""
    if layout.is_color:
        return to_rgb8(ds, layout, frame)
    image = _stretch(frame)
    return 255 - image if layout.photometric == "MONOCHROME1" else image


def render(
    ds: Dataset,
    layout: PixelLayout,
    frame: np.ndarray,
    center: float | None = None,
    width: float | None = None,
) -> np.ndarray:
    """``/rendered``: modality values through a linear window, floored to 0..255."""
    if layout.is_color:
        return to_rgb8(ds, layout, frame)
    file_center, file_width = default_window(ds, layout)
    center = file_center if center is None else center
    # As Orthanc, a window narrower than one value (zero or negative too) is one wide
    width = max(file_width if width is None else width, 1.0)
    slope, intercept = _rescale(ds)
    low = center - width / 2
    # one fused affine map: stored -> modality -> window, computed in float32
    with np.errstate(invalid="ignore", over="ignore"):
        gain = np.float32(slope * 255.0 / width)
        offset = np.float32((intercept - low) * 255.0 / width)
        values = frame.astype(np.float32) * gain + offset
    # a NaN or infinite window (``window-center=nan``) gives black, as Orthanc
    values = np.nan_to_num(values, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
    image = np.floor(np.clip(values, 0, 255)).astype(np.uint8)
    return 255 - image if layout.photometric == "MONOCHROME1" else image


def clipped(frame: np.ndarray, dtype: type[np.integer]) -> np.ndarray:
    """``/image-uint8``, ``/image-uint16``, ``/image-int16``: stored values clipped."""
    info = np.iinfo(dtype)
    return np.clip(frame, info.min, info.max).astype(dtype)


def fit_size(
    rows: int, columns: int, width: int | None, height: int | None
) -> tuple[int, int] | None:
    """The (width, height) that fits the requested box keeping the aspect ratio.

    As Orthanc: the ratio is computed in single precision and each side rounded half
    up (26 columns and 13 rows at ``width=15`` are 15x8, where double precision would
    give 7.4999... rows); a side that rounds to nothing (``width=1`` for a wide
    picture) cannot be drawn.
    """
    if not width and not height:
        return None
    ratios = []
    if width:
        ratios.append(np.float32(width) / np.float32(columns))
    if height:
        ratios.append(np.float32(height) / np.float32(rows))
    ratio = min(ratios)
    size = (
        math.floor(float(np.float32(columns) * ratio) + 0.5),
        math.floor(float(np.float32(rows) * ratio) + 0.5),
    )
    if min(size) < 1:
        raise UnsupportedImage(f"The picture would be {size[0]}x{size[1]} pixels")
    return size


def resize(image: np.ndarray, size: tuple[int, int] | None, smooth: bool) -> np.ndarray:
    """8-bit image scaled to ``size`` by nearest neighbour, as Orthanc does.

    ``smooth`` blurs before shrinking so that thin structures do not alias away;
    enlarging is never smoothed (Orthanc keeps the pixels sharp there too).
    """
    if size is None or size == (image.shape[1], image.shape[0]):
        return image
    if size[0] * size[1] * 3 > MAX_FRAME_BYTES:
        raise UnsupportedImage("The requested size is too large")
    if smooth and size[0] < image.shape[1]:
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(1)))
    # nearest neighbour on pixel centres, computed as index arrays; in single
    # precision, which picks the same source pixel as Orthanc where a centre falls
    # exactly between two (double precision rounds some of those the other way)
    rows = _sources(image.shape[0], size[1])
    columns = _sources(image.shape[1], size[0])
    return image[rows[:, np.newaxis], columns]


def _sources(source: int, target: int) -> np.ndarray:
    step = np.float32(source) / np.float32(target)
    centres = (np.arange(target, dtype=np.float32) + np.float32(0.5)) * step
    return np.minimum(centres.astype(np.intp), source - 1)


# --- encoding ---------------------------------------------------------------------


def encode(image: np.ndarray, mime: str, quality: int = 90) -> bytes:
    """PNG, JPEG or PAM bytes of an 8-bit or 16-bit grey, or 8-bit RGB image."""
    if mime == PAM:
        return _pam(image)
    buffer = io.BytesIO()
    if image.dtype in (np.uint16, np.int16):
        if mime == JPEG:
            raise UnsupportedImage("JPEG cannot hold 16-bit samples")
        pil = Image.frombytes(
            "I;16", (image.shape[1], image.shape[0]), image.astype("<u2").tobytes()
        )
    else:
        pil = Image.fromarray(image)
    if mime == JPEG:
        pil.save(buffer, "JPEG", quality=quality)
    else:
        pil.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _pam(image: np.ndarray) -> bytes:
    depth = 3 if image.ndim == 3 else 1
    big = image.dtype.itemsize == 2
    tuple_type = "RGB" if depth == 3 else "GRAYSCALE"
    header = (
        f"P7\nWIDTH {image.shape[1]}\nHEIGHT {image.shape[0]}\nDEPTH {depth}\n"
        f"MAXVAL {65535 if big else 255}\nTUPLTYPE {tuple_type}\nENDHDR\n"
    )
    body = image.astype(">u2" if big else np.uint8).tobytes()
    return header.encode("ascii") + body


def matlab(frame: np.ndarray) -> str:
    """``/matlab``: a Matlab expression rebuilding the frame's stored values.

    Colour frames are listed sample by sample in row-major order and rebuilt with
    ``reshape`` (column-major) then ``permute``, the expression Orthanc writes.
    """
    if frame.ndim == 3:
        values = " ".join(map(str, frame.ravel().tolist()))
        rows, columns, samples = frame.shape
        return f"double(permute(reshape([ {values} ], [ {samples} {rows} {columns} ]), [ 3 2 1 ]))"
    lines = " ; ".join(" ".join(map(str, row)) for row in frame.tolist())
    return f"double([ {lines} ])"
