"""Images of stored instances: frame lists, rendered pictures, raw frames, numpy arrays.

Encoded answers are cached by attachment UUID and request options, like the tag
renderings: a UUID names immutable content, so a cached picture is never stale, and
a viewer scrolling back and forth through a series does not decode twice.
"""

from __future__ import annotations

import gzip
import io
import logging
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset

from ..dicom import imaging
from ..dicom.levels import Level
from ..dicom.parsing import InvalidDicom, read_dataset
from . import attachments_io
from .archive import Archive, require_resource
from .cache import ByteLRU
from .enums import ContentType
from .errors import BadFileFormat, InexistentFile, NotImplementedYet, ParameterOutOfRange

ImageKind = Literal["preview", "rendered", "image-uint8", "image-uint16", "image-int16"]
IMAGE_KINDS: tuple[str, ...] = ("preview", "rendered", "image-uint8", "image-uint16", "image-int16")

_encoded = ByteLRU(64 << 20)
_log = logging.getLogger(__name__)


class FrameNotFound(ParameterOutOfRange):
    """The frame index is beyond the instance's frames."""


class Undecodable(BadFileFormat):
    """The instance's pixels cannot be decoded (none, unsupported, corrupted)."""


class NotAcceptable(BadFileFormat):
    """The picture cannot be given in the asked format (16 bits in a JPEG)."""


#: The arrays and raw frames of an instance whose header describes no pixel format
#: (missing or unknown Rows, Columns, BitsAllocated, PhotometricInterpretation, as an
#: instance without any image): as Orthanc, 500 "Not implemented yet". A header that
#: describes one without pixel data is a bad file (400). The picture routes answer 415
#: for both, as for any undecodable image.
class UnsupportedFormat(NotImplementedYet):
    http_status = 500


@dataclass(frozen=True)
class RenderOptions:
    """The query arguments of the image routes that change the picture."""

    mime: str = imaging.PNG
    quality: int = 90
    width: int | None = None
    height: int | None = None
    smooth: bool = False
    window_center: float | None = None
    window_width: float | None = None


class _DatasetCache:
    """The last parsed files, bounded in bytes: a viewer hits the same instance with
    several image routes in a row, and parsing is a large part of a small preview."""

    def __init__(self, max_bytes: int = 128 << 20) -> None:
        self._items: OrderedDict[str, tuple[Dataset, int]] = OrderedDict()
        self._max_bytes = max_bytes
        self._size = 0
        self._lock = threading.Lock()

    def get(self, archive: Archive, public_id: str) -> tuple[str, Dataset]:
        with archive.read() as session:
            row = require_resource(session, public_id, int(Level.INSTANCE))
            att = session.attachment(row.id, ContentType.Dicom)
        if att is None:
            raise InexistentFile(public_id)
        with self._lock:
            found = self._items.get(att.uuid)
            if found is not None:
                self._items.move_to_end(att.uuid)
                return att.uuid, found[0]
        data = attachments_io.read(archive.storage, att)
        try:
            ds, _ = read_dataset(data)
        except InvalidDicom as exc:
            raise BadFileFormat(str(exc)) from exc
        if len(data) * 4 <= self._max_bytes:  # a huge multi-frame file is not kept
            with self._lock:
                if att.uuid not in self._items:
                    self._items[att.uuid] = (ds, len(data))
                    self._size += len(data)
                while self._size > self._max_bytes and self._items:
                    _, (_, size) = self._items.popitem(last=False)
                    self._size -= size
        return att.uuid, ds


_datasets = _DatasetCache()


def _translate(exc: imaging.ImageError) -> Exception:
    if isinstance(exc, imaging.FrameOutOfRange):
        return FrameNotFound(str(exc))
    return Undecodable(str(exc))


class _Failures:
    """The frames no codec could decode, by attachment UUID (immutable content) and
    frame: a viewer retrying a broken image neither decodes it again nor writes the
    warning again."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[tuple[str, int], imaging.CorruptedPixelData] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> imaging.CorruptedPixelData | None:
        with self._lock:
            return self._items.get(key)

    def add(self, key: tuple[str, int], exc: imaging.CorruptedPixelData) -> None:
        with self._lock:
            self._items[key] = exc
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_failures = _Failures()


def _decode(ds: Dataset, uuid: str, public_id: str, frame: int) -> np.ndarray:
    """``imaging.decode_frame``, with one line in the log when a codec fails (once per
    frame of a file: the failure is remembered).

    The codecs' own reports (pydicom logs one traceback per plugin tried) are kept
    out of the log by ``logs.setup_logging``; this line is what is left of them.
    """
    known = _failures.get((uuid, frame))
    if known is not None:
        raise imaging.CorruptedPixelData(str(known))
    try:
        return imaging.decode_frame(ds, frame)
    except imaging.CorruptedPixelData as exc:
        reason = " ".join(str(exc).split()).removeprefix("Cannot decode the frame: ")
        if len(reason) > 300:
            reason = reason[:297] + "..."
        _log.warning("Cannot decode frame %d of instance %s: %s", frame, public_id, reason)
        _failures.add((uuid, frame), exc)
        raise


def frames(archive: Archive, public_id: str) -> list[int]:
    """``/instances/{id}/frames``: Orthanc lists frame 0 even without pixel data."""
    _, ds = _datasets.get(archive, public_id)
    return list(range(imaging.number_of_frames(ds)))


def check_frame(archive: Archive, public_id: str, frame: int) -> None:
    """Raises what ``image`` would for the frame itself (unknown instance or frame,
    undecodable pixels): Orthanc decodes before it looks at the request's arguments,
    so those failures come before an argument's."""
    uuid, ds = _datasets.get(archive, public_id)
    try:
        _decode(ds, uuid, public_id, frame)
    except imaging.ImageError as exc:
        raise _translate(exc) from exc


def image(
    archive: Archive, public_id: str, frame: int, kind: ImageKind, options: RenderOptions
) -> bytes:
    """An encoded picture of one frame, as one of the image routes draws it."""
    uuid, ds = _datasets.get(archive, public_id)
    key = ("image", uuid, frame, kind, options)

    def draw() -> bytes:
        try:
            layout = imaging.pixel_layout(ds)
            pixels = _decode(ds, uuid, public_id, frame)
            if kind in ("image-uint16", "image-int16") and options.mime == imaging.JPEG:
                raise NotAcceptable(f"{kind} cannot be a JPEG picture")
            picture = _picture(ds, layout, pixels, kind, options)
            if kind == "rendered":
                size = imaging.fit_size(layout.rows, layout.columns, options.width, options.height)
                picture = imaging.resize(picture, size, options.smooth)
            return imaging.encode(picture, options.mime, options.quality)
        except imaging.ImageError as exc:
            raise _translate(exc) from exc

    return _encoded.get_or_compute(key, draw)


def _picture(
    ds: Dataset,
    layout: imaging.PixelLayout,
    pixels: np.ndarray,
    kind: ImageKind,
    options: RenderOptions,
) -> np.ndarray:
    if kind == "preview":
        return imaging.preview(ds, layout, pixels)
    if kind == "rendered":
        return imaging.render(ds, layout, pixels, options.window_center, options.window_width)
    if layout.is_color:  # Orthanc converts only greyscale frames to these formats
        raise imaging.UnsupportedImage(f"{kind} needs a greyscale image")
    dtype = {"image-uint8": np.uint8, "image-uint16": np.uint16, "image-int16": np.int16}[kind]
    return imaging.clipped(pixels, dtype)


def raw_frame(archive: Archive, public_id: str, frame: int) -> bytes:
    """``/frames/{n}/raw``: the stored bytes of one frame, without decoding."""
    _, ds = _datasets.get(archive, public_id)
    try:
        return imaging.raw_frame(ds, frame)
    except imaging.UnsupportedLayout as exc:
        raise UnsupportedFormat() from exc
    except imaging.FrameOutOfRange as exc:
        raise ParameterOutOfRange(str(exc)) from exc
    except imaging.ImageError as exc:
        raise BadFileFormat("Cannot access a raw frame") from exc


def raw_frame_gz(archive: Archive, public_id: str, frame: int) -> bytes:
    return gzip.compress(raw_frame(archive, public_id, frame), compresslevel=6)


#: Raw frames Orthanc labels with an image type; every other syntax is octet-stream.
_RAW_MIMES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
}


def raw_frame_mime(archive: Archive, public_id: str) -> str:
    _, ds = _datasets.get(archive, public_id)
    return _RAW_MIMES.get(str(imaging.transfer_syntax(ds)), "application/octet-stream")


def _instance_array(
    ds: Dataset, uuid: str, public_id: str, frame: int | None, rescale: bool
) -> np.ndarray:
    """Frames as (frames, rows, columns, channels), or one (rows, columns, channels)."""
    try:
        layout = imaging.pixel_layout(ds)
        count = 1 if frame is not None else layout.frames
        if count * layout.frame_bytes * (2 if rescale else 1) > imaging.MAX_ARRAY_BYTES:
            raise imaging.UnsupportedImage("The pixel data is too large for one array")
        indices = [frame] if frame is not None else range(layout.frames)
        decoded = []
        for index in indices:
            pixels = _decode(ds, uuid, public_id, index)
            if layout.photometric == "PALETTE COLOR":  # Orthanc answers the colours
                pixels = imaging.to_rgb8(ds, layout, pixels)
            elif rescale and not layout.is_color:
                pixels = imaging.rescaled(ds, pixels)
            if pixels.ndim == 2:
                pixels = pixels[:, :, np.newaxis]
            decoded.append(pixels)
    except imaging.UnsupportedLayout as exc:
        raise UnsupportedFormat() from exc
    except imaging.FrameOutOfRange as exc:
        raise ParameterOutOfRange(str(exc)) from exc
    except imaging.ImageError as exc:
        raise BadFileFormat(str(exc)) from exc
    return decoded[0] if frame is not None else np.stack(decoded)


def matlab(archive: Archive, public_id: str, frame: int) -> str:
    """``/matlab``: the frame's stored values as a Matlab expression."""
    uuid, ds = _datasets.get(archive, public_id)
    try:
        layout = imaging.pixel_layout(ds)
        pixels = _decode(ds, uuid, public_id, frame)
        if layout.photometric == "PALETTE COLOR":
            pixels = imaging.to_rgb8(ds, layout, pixels)
    except imaging.UnsupportedLayout as exc:
        raise UnsupportedFormat() from exc
    except imaging.FrameOutOfRange as exc:
        raise ParameterOutOfRange(str(exc)) from exc
    except imaging.ImageError as exc:
        raise BadFileFormat(str(exc)) from exc
    return imaging.matlab(pixels)


def _npy(array: np.ndarray, compress: bool) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    if not compress:
        return buffer.getvalue()
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive_file:
        archive_file.writestr("arr_0", buffer.getvalue())  # the member name Orthanc uses
    return packed.getvalue()


def instance_numpy(
    archive: Archive, public_id: str, frame: int | None, rescale: bool, compress: bool
) -> bytes:
    """``/instances/{id}/numpy`` and ``/frames/{n}/numpy``: ``.npy`` (or zipped) bytes."""
    uuid, ds = _datasets.get(archive, public_id)
    return _npy(_instance_array(ds, uuid, public_id, frame, rescale), compress)


def series_numpy(archive: Archive, public_id: str, rescale: bool, compress: bool) -> bytes:
    """``/series/{id}/numpy``: every frame of every instance, in instance-number order."""
    with archive.read() as session:
        row = require_resource(session, public_id, int(Level.SERIES))
        instances = [r.public_id for r in session.descendant_instances(row)]
    datasets = [(*_datasets.get(archive, i), i) for i in instances]
    datasets.sort(key=lambda item: _instance_number(item[1]))
    arrays = [_instance_array(ds, uuid, i, None, rescale) for uuid, ds, i in datasets]
    if not arrays:
        raise BadFileFormat("The series has no instance")
    if len({a.shape[1:] for a in arrays}) != 1 or len({a.dtype for a in arrays}) != 1:
        raise BadFileFormat("The instances of the series have different image formats")
    if sum(a.nbytes for a in arrays) > imaging.MAX_ARRAY_BYTES:
        raise BadFileFormat("The series is too large for one array")
    return _npy(np.concatenate(arrays), compress)


def _instance_number(ds: Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0


def pdf(archive: Archive, public_id: str) -> bytes:
    """``/instances/{id}/pdf``: the document of an Encapsulated PDF instance."""
    _, ds = _datasets.get(archive, public_id)
    mime = str(ds.get("MIMETypeOfEncapsulatedDocument", "") or "").strip()
    document = ds.get("EncapsulatedDocument")
    if mime != "application/pdf" or document is None:
        raise BadFileFormat("The instance does not contain a PDF document")
    data = bytes(document)
    # DICOM pads odd values to an even length with one NUL, which is not the PDF's
    return data[:-1] if data.endswith(b"\x00") else data
