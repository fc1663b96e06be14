"""Building a new DICOM instance from JSON tags and a data URI (``/tools/create-dicom``).

Pure functions over pydicom: a fresh data set with new identifiers, the tags of the
request (strings, binary data URIs, sequences, private tags under a creator), and
the content: a PNG or JPEG image (decoded by Pillow, stored uncompressed as
Orthanc does) or a PDF document (Encapsulated PDF Storage).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydicom.datadict import dictionary_VR, get_private_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from .data_uri import BadDataUri, is_data_uri, parse_data_uri
from .tag_names import parse_tag

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
#: What DCMTK (and so Orthanc) puts in the meta header of an instance that has no
#: SOP Class UID (``/tools/create-dicom`` without content does not set one).
PLACEHOLDER_SOP_CLASS = "1.2.276.0.7230010.3.1.0.1"
SPECIFIC_CHARACTER_SET = 0x00080005
PIXEL_DATA = 0x7FE00010
_BINARY_PREFIX = "data:application/octet-stream;base64,"
_BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_INT_VRS = {"US": (0, 0xFFFF), "SS": (-0x8000, 0x7FFF), "UL": (0, 0xFFFFFFFF)}
_INT_VRS |= {"SL": (-0x80000000, 0x7FFFFFFF), "UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1)}
_FLOAT_VRS = {"FL", "FD"}
#: Tags a request may set although they already have a value (Orthanc's list: the
#: patient ID and the dates/times the server fills in).
REPLACEABLE: frozenset[int] = frozenset(
    {
        0x00100020,  # PatientID
        0x00080022,  # AcquisitionDate
        0x00080032,  # AcquisitionTime
        0x00080023,  # ContentDate
        0x00080033,  # ContentTime
        0x00080012,  # InstanceCreationDate
        0x00080013,  # InstanceCreationTime
        0x00080021,  # SeriesDate
        0x00080031,  # SeriesTime
        0x00080020,  # StudyDate
        0x00080030,  # StudyTime
    }
)


class CreationError(ValueError):
    """A request ``/tools/create-dicom`` cannot honour; ``kind`` says which rule."""

    def __init__(self, kind: str, details: str | None = None) -> None:
        super().__init__(details or kind)
        self.kind = kind
        self.details = details


def new_dataset(charset: str) -> Dataset:
    """A data set with fresh identifiers (patient ID included, as Orthanc)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = charset
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = str(uuid.uuid4())
    return ds


def set_text(ds: Dataset, tag: int, value: str) -> None:
    """A plain string value, with the dictionary's VR."""
    ds[tag] = DataElement(tag, dictionary_VR(tag), value)


def inject_tags(
    ds: Dataset,
    tags: Mapping[str, Any],
    interpret_binary: bool = True,
    private_creator: str = "",
    force: bool = False,
    protect: bool = True,
) -> None:
    """The ``Tags`` of a request. Without ``force``, a tag that already has a value
    (a new identifier, a tag inherited from the parent) is refused, except the patient
    ID and the dates/times."""
    for name, value in tags.items():
        try:
            tag = parse_tag(name)
        except ValueError as exc:
            raise CreationError("UnknownTag", str(exc)) from exc
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        if protect and not force and tag not in REPLACEABLE and tag in ds:
            raise CreationError("OverrideTag", name)
        if tag == PIXEL_DATA:
            raise CreationError("UseContent")
        _set(ds, tag, value, interpret_binary, private_creator, force)


def _set(
    ds: Dataset, tag: int, value: Any, interpret_binary: bool, creator: str, force: bool
) -> None:
    vr = _vr(ds, tag, creator)
    if isinstance(value, list):
        if vr not in ("SQ", "UN"):
            raise CreationError("BadType", f"Bad Parameter type for tag {_hex(tag)}")
        items = []
        for item in value:
            if not isinstance(item, dict):
                raise CreationError("BadType", f"Bad Parameter type for tag {_hex(tag)}")
            child = Dataset()
            inject_tags(child, item, interpret_binary, creator, force, protect=False)
            items.append(child)
        ds[tag] = DataElement(tag, "SQ", Sequence(items))
        return
    if not isinstance(value, str):
        raise CreationError("BadType", f"Bad Parameter type for tag {_hex(tag)}")
    if interpret_binary and value.startswith(_BINARY_PREFIX):
        try:
            _, payload = parse_data_uri(value)
        except BadDataUri as exc:
            raise CreationError("BadFormat", str(exc)) from exc
        ds[tag] = DataElement(tag, vr if vr in _BINARY_VRS else vr, _binary_value(vr, payload))
        return
    ds[tag] = DataElement(tag, vr, _typed(tag, vr, value))


def _binary_value(vr: str, payload: bytes) -> Any:
    if vr in _BINARY_VRS:
        return payload + (b"\0" if len(payload) % 2 else b"")
    return payload.decode("latin-1")


def _typed(tag: int, vr: str, text: str) -> Any:
    """The string of the request as the value pydicom wants for ``vr``."""
    if vr in _BINARY_VRS:
        data = text.encode("utf-8")
        return data + (b"\0" if len(data) % 2 else b"")
    if vr in _INT_VRS or vr in _FLOAT_VRS:
        if not text.strip():
            return None
        low, high = _INT_VRS.get(vr, (None, None))
        try:
            numbers = [int(p) if vr in _INT_VRS else float(p) for p in text.split("\\")]
        except ValueError as exc:
            raise CreationError("OutOfRange", _range_message(tag, text)) from exc
        if low is not None and any(not low <= n <= high for n in numbers):  # type: ignore[operator]
            raise CreationError("OutOfRange", _range_message(tag, text))
        return numbers[0] if len(numbers) == 1 else numbers
    if vr == "AT":
        try:
            return [parse_tag(p) for p in text.split("\\")]
        except ValueError as exc:
            raise CreationError("OutOfRange", _range_message(tag, text)) from exc
    return text


def _range_message(tag: int, text: str) -> str:
    return (
        f'While creating a DICOM instance, tag {_hex(tag, True)} has out-of-range value: "{text}"'
    )


def _vr(ds: Dataset, tag: int, creator: str) -> str:
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 0:
        try:
            return dictionary_VR(tag)
        except KeyError:
            return "UN"
    if element < 0x0100:  # a private creator element
        return "LO"
    block = element >> 8
    owner_tag = (group << 16) | block
    owner = str(ds[owner_tag].value) if owner_tag in ds else ""
    if not owner and creator:
        ds[owner_tag] = DataElement(owner_tag, "LO", creator)
        owner = creator
    if owner:
        try:
            vr = get_private_entry(tag, owner)[0]
            return "UN" if vr in ("", "OB or OW", "US or SS") else vr
        except KeyError:
            pass
    return "UN"


def _hex(tag: int, parenthesis: bool = False) -> str:
    text = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
    return f"({text})" if parenthesis else text


# ---- content ------------------------------------------------------------------------


def embed_content(ds: Dataset, uri: str) -> None:
    """A PNG or JPEG image (uncompressed pixels) or a PDF document."""
    if not is_data_uri(uri):
        raise CreationError("BadFormat", "The content is not a data URI")
    try:
        mime, payload = parse_data_uri(uri)
    except BadDataUri as exc:
        raise CreationError("BadFormat", str(exc)) from exc
    if mime in ("image/png", "image/jpeg"):
        embed_image(ds, payload)
    elif mime == "application/pdf":
        embed_pdf(ds, payload)
    else:
        raise CreationError(
            "UnsupportedMime", f"Unsupported MIME type for the content of a new DICOM file: {mime}"
        )


def embed_image(ds: Dataset, payload: bytes) -> None:
    try:
        picture = Image.open(io.BytesIO(payload))
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CreationError("BadFormat", f"Cannot decode the image: {exc}") from exc
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(picture)
        if pixels.dtype != np.uint16:
            if pixels.min() < 0 or pixels.max() > 0xFFFF:
                raise CreationError("BadFormat", "Unsupported pixel range in the image")
            pixels = pixels.astype(np.uint16)
        samples, bits = 1, 16
    elif picture.mode in ("1", "L", "LA", "P") and not _palette_has_colour(picture):
        pixels = np.asarray(picture.convert("L"))
        samples, bits = 1, 8
    else:  # RGB, RGBA (alpha dropped, as Orthanc), CMYK, YCbCr, colour palettes
        pixels = np.asarray(picture.convert("RGB"))
        samples, bits = 3, 8
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    data = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds[PIXEL_DATA] = DataElement(
        PIXEL_DATA, "OW" if bits == 16 else "OB", data + (b"\0" if len(data) % 2 else b"")
    )


def _palette_has_colour(picture: Image.Image) -> bool:
    if picture.mode != "P":
        return False
    rgb = picture.convert("RGB")
    array = np.asarray(rgb)
    return bool((array[..., 0] != array[..., 1]).any() or (array[..., 1] != array[..., 2]).any())


def embed_pdf(ds: Dataset, payload: bytes) -> None:
    if not payload.startswith(b"%PDF"):
        raise CreationError("BadFormat", "Not a PDF document")
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = payload + (b"\0" if len(payload) % 2 else b"")


def finish(ds: Dataset) -> None:
    """The meta header that matches the data set, before it is written."""
    ds.file_meta.MediaStorageSOPClassUID = str(ds.get("SOPClassUID", "") or PLACEHOLDER_SOP_CLASS)
    ds.file_meta.MediaStorageSOPInstanceUID = str(ds.SOPInstanceUID)


def to_bytes(ds: Dataset) -> bytes:
    finish(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
