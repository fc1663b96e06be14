"""Image instances made by code: pixel arrays in every layout and transfer syntax the
imaging tests need, encoded with the encoders of the installed packages."""

from __future__ import annotations

import io

import numpy as np
from dicom_factory import make_dataset, to_bytes
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    generate_uid,
)


def grey(
    array: np.ndarray,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    **tags: object,
) -> Dataset:
    """A greyscale instance holding ``array`` (frames, rows, columns) or (rows, columns)."""
    frames = array if array.ndim == 3 else array[np.newaxis]
    bits = array.dtype.itemsize * 8
    ds = make_dataset(
        patient_id="IMAGING", rows=frames.shape[1], columns=frames.shape[2], sop_uid=generate_uid()
    )
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if array.dtype.kind == "i" else 0
    ds.PhotometricInterpretation = photometric
    if array.ndim == 3:
        ds.NumberOfFrames = frames.shape[0]
    ds.PixelData = frames.astype(array.dtype.newbyteorder("<")).tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def rgb(array: np.ndarray, planar: bool = False, photometric: str = "RGB") -> Dataset:
    """An 8-bit colour instance: ``array`` is (rows, columns, 3) or (frames, rows, columns, 3)."""
    frames = array if array.ndim == 4 else array[np.newaxis]
    ds = make_dataset(
        patient_id="IMAGING", rows=frames.shape[1], columns=frames.shape[2], sop_uid=generate_uid()
    )
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = photometric
    ds.PlanarConfiguration = 1 if planar else 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    if array.ndim == 4:
        ds.NumberOfFrames = frames.shape[0]
    data = frames.transpose(0, 3, 1, 2) if planar else frames
    ds.PixelData = np.ascontiguousarray(data, dtype=np.uint8).tobytes()
    return ds


def palette(indices: np.ndarray, lut: np.ndarray) -> Dataset:
    """An 8-bit PALETTE COLOR instance; ``lut`` is (256, 3) of 16-bit entries."""
    ds = grey(indices.astype(np.uint8), photometric="PALETTE COLOR")
    for channel, name in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{name}PaletteColorLookupTableData", lut[:, channel].astype("<u2").tobytes())
    return ds


def compressed(ds: Dataset, syntax: str) -> Dataset:
    """``ds`` re-encoded with pydicom's encoders (RLE, JPEG 2000 via pylibjpeg-openjpeg)."""
    ds.compress(syntax, encoding_plugin="pylibjpeg" if syntax == JPEG2000Lossless else "")
    return ds


def jpeg_baseline(array: np.ndarray, quality: int = 95) -> tuple[Dataset, np.ndarray]:
    """An RGB JPEG baseline instance, and the pixels Pillow decodes from the same stream."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality, subsampling=0)
    stream = buffer.getvalue()
    ds = rgb(array, photometric="YBR_FULL")
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    return ds, np.asarray(Image.open(io.BytesIO(stream)).convert("RGB"))


def deflated(ds: Dataset) -> bytes:
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    data = to_bytes(ds)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return data


__all__ = ["RLELossless", "JPEG2000Lossless", "grey", "rgb", "palette", "compressed", "to_bytes"]
