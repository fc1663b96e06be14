"""Building a new DICOM instance from JSON tags and a data URI (``/tools/create-dicom``).

Pure functions over pydicom: a fresh data set with new identifiers, the tags of the
request (strings, binary data URIs, sequences, private tags under a creator), and
the content: a PNG or JPEG image (decoded by Pillow) or a PAM one (read here), stored
uncompressed as Orthanc does, a PDF document (Encapsulated PDF Storage), or bytes
stored as they are in PixelData.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, get_private_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from .data_uri import BadDataUri, parse_data_uri
from .encodable import drop_unencodable
from .tag_names import parse_tag

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
#: What DCMTK (and so Orthanc) puts in the meta header of an instance that has no
#: SOP Class UID (``/tools/create-dicom`` without content does not set one).
PLACEHOLDER_SOP_CLASS = "1.2.276.0.7230010.3.1.0.1"
SPECIFIC_CHARACTER_SET = 0x00080005
SOP_INSTANCE_UID = 0x00080018
PIXEL_DATA = 0x7FE00010
_BINARY_PREFIX = "data:application/octet-stream;base64,"
_BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_INT_VRS = {"US": (0, 0xFFFF), "SS": (-0x8000, 0x7FFF), "UL": (0, 0xFFFFFFFF)}
_INT_VRS |= {"SL": (-0x80000000, 0x7FFFFFFF), "UV": (0, 2**64 - 1), "SV": (-(2**63), 2**63 - 1)}
_FLOAT_VRS = {"FL", "FD"}
_US_OW = "US or OW"  # LUT Data
_US_SS_OW = "US or SS or OW"
#: ``Content``: Orthanc's form of a data URI (case-insensitive), with its MIME type.
_CONTENT_URI = re.compile(r"data:([^;,]+);base64,(.*)", re.IGNORECASE | re.DOTALL)
_IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
PAM = "image/x-portable-arbitrarymap"
_OCTET_STREAM = "application/octet-stream"
#: PAM (tuple type, depth, maxval) -> the samples' dtype, for the formats Orthanc reads
_PAM_FORMATS = {("GRAYSCALE", 1, 255): "u1", ("GRAYSCALE", 1, 65535): ">u2", ("RGB", 3, 255): "u1"}
#: The other MIME types Orthanc 1.10.1 knows (observed): as content they are "not
#: implemented" (500, named as given here); a type it does not know at all is out of
#: range (400).
_KNOWN_MIMES = {
    name: name
    for name in (
        "application/dicom",
        "application/dicom+json",
        "application/dicom+xml",
        "application/gzip",
        "application/javascript",
        "application/json",
        "application/wasm",
        "application/x-font-woff",
        "application/x-nacl",
        "application/x-pnacl",
        "application/xml",
        "application/zip",
        "font/woff2",
        "image/gif",
        "image/jp2",
        "image/svg+xml",
        "image/x-icon",
        "text/css",
        "text/html",
        "text/plain",
    )
} | {"text/xml": "application/xml"}
_PILLOW_FORMATS = {"PNG": ("PNG",), "JPEG": ("JPEG", "MPO")}
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
        if not name.strip():  # pydicom would read "" as the keyword of (300a,0782)
            raise CreationError("UnknownTag", f"unknown DICOM tag: {name}")
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
        if protect and tag == SOP_INSTANCE_UID and not isinstance(value, str):
            raise CreationError("BadType")  # Orthanc reads it as a string, without details
        _set(ds, tag, value, interpret_binary, private_creator, force, nested=not protect)


def _set(
    ds: Dataset,
    tag: int,
    value: Any,
    interpret_binary: bool,
    creator: str,
    force: bool,
    nested: bool = False,
) -> None:
    vr = _vr(tag, creator)
    if vr == _US_SS_OW:  # the retired Gray LUT data, which Orthanc's dictionary lacks
        raise CreationError("UnknownTag")
    if value is None:
        ds[tag] = DataElement(tag, _storable(vr), _null_value(tag, vr))
        return
    if vr == _US_OW and not isinstance(value, list):
        _set_lut_data(ds, tag, value, interpret_binary, nested)
        return
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
        ds[tag] = DataElement(tag, vr, _binary_value(vr, payload))
        return
    ds[tag] = DataElement(tag, vr, _typed(tag, vr, value))


def _storable(vr: str) -> str:
    """The VR written for an empty value of an ambiguous VR (LUT data is OW)."""
    return "OW" if vr == _US_OW else vr


def _set_lut_data(ds: Dataset, tag: int, value: Any, interpret_binary: bool, nested: bool) -> None:
    """LUT Data (US or OW), as Orthanc 1.10.1 takes it: only empty, outside a sequence
    item (then OW); any value, a binary data URI's too, is out of range."""
    if not isinstance(value, str):
        raise CreationError("BadType", f"Bad Parameter type for tag {_hex(tag)}")
    text = value
    if interpret_binary and value.startswith(_BINARY_PREFIX):
        try:
            text = parse_data_uri(value)[1].decode("latin-1").split("\0")[0]
        except BadDataUri as exc:
            raise CreationError("BadFormat", str(exc)) from exc
    if text or nested:
        raise CreationError("OutOfRange", _range_message(tag, text))
    ds[tag] = DataElement(tag, "OW", b"")


def _binary_value(vr: str, payload: bytes) -> Any:
    if vr in _BINARY_VRS:
        return payload + (b"\0" if len(payload) % 2 else b"")
    return payload.decode("latin-1")


def _null_value(tag: int, vr: str) -> Any:
    """The value of a JSON ``null``: empty, as Orthanc, except for the VRs whose empty
    text it cannot convert (numbers, sequences: out of range; tags: unknown tag)."""
    if vr in _BINARY_VRS or vr == _US_OW:
        return b""
    if vr == "SQ" or vr in _INT_VRS or vr in _FLOAT_VRS:
        raise CreationError("OutOfRange", _range_message(tag, ""))
    if vr == "AT":
        raise CreationError("UnknownTag")
    return ""


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
        if not text.strip():
            return None
        try:
            return [parse_tag(p) for p in text.split("\\")]
        except ValueError as exc:
            raise CreationError("OutOfRange", _range_message(tag, text)) from exc
    return text


def _range_message(tag: int, text: str) -> str:
    return (
        f'While creating a DICOM instance, tag {_hex(tag, True)} has out-of-range value: "{text}"'
    )


def _vr(tag: int, creator: str) -> str:
    """The VR of ``tag``. A private tag takes its VR from the dictionary of the request's
    private creator, looked up by the low byte of its element as DCMTK does (so with
    ``SIEMENS CSA HEADER``, (0029,0010) is OB), whatever creator element the data set
    holds; without a creator, or unknown to it, it is UN. The creator element itself
    is not written: only the tags of the request are (as Orthanc)."""
    group = tag >> 16
    if group % 2 == 0:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            return "UN"
        # DCMTK's choices for the ambiguous VRs: US, and OW for overlay data
        return {"US or SS": "US", "OB or OW": "OW"}.get(vr, vr)
    if creator:
        try:
            vr = get_private_entry(tag, creator)[0]
            return "UN" if vr in ("", "OB or OW", "US or SS") else vr
        except KeyError:
            pass
    return "UN"


def _hex(tag: int, parenthesis: bool = False) -> str:
    text = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
    return f"({text})" if parenthesis else text


# ---- content ------------------------------------------------------------------------


def content_payload(uri: str) -> tuple[str, bytes]:
    """``(MIME type, bytes)`` of a ``Content``: as Orthanc, only ``data:<mime>;base64,``
    is accepted (no other parameter, no URL-encoded payload), the scheme, the MIME type
    and ``base64`` in any case; missing ``=`` padding is tolerated, and (more lenient
    than Orthanc) so are line breaks in the base64 text."""
    match = _CONTENT_URI.match(uri)
    if match is None:
        raise CreationError("BadFormat", "The content is not a base64 data URI")
    payload = "".join(match.group(2).split())
    try:
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CreationError("BadFormat", f"Bad base64 payload: {exc}") from exc
    return match.group(1).lower(), data


def embed_content(ds: Dataset, uri: str) -> None:
    """A PNG, JPEG or PAM image (uncompressed pixels), a PDF document, or bytes
    (``application/octet-stream``) stored as they are in PixelData, as Orthanc."""
    mime, payload = content_payload(uri)
    if mime in _IMAGE_FORMATS:
        embed_image(ds, payload, _IMAGE_FORMATS[mime])
    elif mime == PAM:
        _embed_pixels(ds, read_pam(payload))
    elif mime == "application/pdf":
        embed_pdf(ds, payload)
    elif mime == _OCTET_STREAM:
        ds[PIXEL_DATA] = DataElement(PIXEL_DATA, "OW", payload + b"\0" * (len(payload) % 2))
    elif mime in _KNOWN_MIMES:
        name = _KNOWN_MIMES[mime]
        raise CreationError(
            "UnsupportedMime", f"Unsupported MIME type for the content of a new DICOM file: {name}"
        )
    else:  # a type Orthanc does not know at all
        raise CreationError("UnknownMime")


def read_pam(payload: bytes) -> np.ndarray:
    """The samples of a PAM picture (Netpbm P7) of the formats Orthanc reads: 8 or 16-bit
    greyscale (``GRAYSCALE``, depth 1, MAXVAL 255 or 65535) and 8-bit ``RGB``. The header
    is strict, as Orthanc's: every line ``KEY VALUE`` with one space (no comments),
    unknown keys ignored; the samples must fill the picture exactly (16-bit ones big endian)."""
    head, found, body = payload.partition(b"\nENDHDR\n")
    lines = head.decode("latin-1").split("\n")
    if not found or lines[0] != "P7":
        raise CreationError("BadFormat", "Not a PAM file")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        parts = line.split(" ")
        if len(parts) != 2:
            raise CreationError("BadFormat", f"Bad line in the PAM header: {line!r}")
        fields[parts[0]] = parts[1]
    numbers = [fields.get(key, "") for key in ("WIDTH", "HEIGHT", "DEPTH", "MAXVAL")]
    if not all(n.isascii() and n.isdigit() for n in numbers) or "TUPLTYPE" not in fields:
        raise CreationError("BadFormat", "Bad PAM header")
    width, height, depth, maxval = map(int, numbers)
    tuple_type = fields["TUPLTYPE"]
    dtype = _PAM_FORMATS.get((tuple_type, depth, maxval))
    if dtype is None:
        raise CreationError("NotImplemented")
    shape = (height, width, depth) if depth > 1 else (height, width)
    if len(body) != height * width * depth * np.dtype(dtype).itemsize:
        raise CreationError("BadFormat", "The PAM samples do not match its header")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.lstrip(">"))


def _open_image(payload: bytes, expected: str) -> Image.Image:
    """The picture, of the format its MIME type says (Orthanc decodes with the decoder
    of the MIME type: JPEG bytes labelled PNG are a bad file, PNG bytes labelled JPEG an
    error of its JPEG decoder, a 500)."""
    try:
        picture = Image.open(io.BytesIO(payload))
        if picture.format not in _PILLOW_FORMATS[expected]:
            raise UnidentifiedImageError(f"not a {expected} image")
        picture.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        if expected == "JPEG":
            if payload[:2] != b"\xff\xd8":
                head = " ".join(f"0x{b:02x}" for b in payload[:2].ljust(2, b"\0"))
                raise CreationError(
                    "JpegError", f"Error during JPEG decoding: Not a JPEG file: starts with {head}"
                ) from exc
            raise CreationError("JpegError", f"Error during JPEG decoding: {exc}") from exc
        raise CreationError("BadFormat", f"Cannot decode the image: {exc}") from exc
    return picture


def embed_image(ds: Dataset, payload: bytes, expected: str = "PNG") -> None:
    """The pixels of a PNG or JPEG picture (``expected``), stored uncompressed. A
    greyscale picture keeps the PhotometricInterpretation (MONOCHROME1, say) and the
    PlanarConfiguration the request gave, as Orthanc does; a colour one is RGB."""
    picture = _open_image(payload, expected)
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(picture)
        if pixels.dtype != np.uint16:
            if pixels.min() < 0 or pixels.max() > 0xFFFF:
                raise CreationError("BadFormat", "Unsupported pixel range in the image")
            pixels = pixels.astype(np.uint16)
    elif picture.mode in ("1", "L", "LA", "P") and not _palette_has_colour(picture):
        pixels = np.asarray(picture.convert("L"))
    else:  # RGB, RGBA (alpha dropped, as Orthanc), CMYK, YCbCr, colour palettes
        pixels = np.asarray(picture.convert("RGB"))
    _embed_pixels(ds, pixels)


def _embed_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """(rows, columns) grey or (rows, columns, 3) RGB samples of 8 or 16 bits, stored
    uncompressed with the Image Pixel attributes that describe them."""
    samples = 3 if pixels.ndim == 3 else 1
    bits = pixels.dtype.itemsize * 8
    ds.SamplesPerPixel = samples
    if samples == 3:
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    elif "PhotometricInterpretation" not in ds:
        ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    data = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    # OW whatever the depth, as DCMTK writes it (the bytes are the same in little endian)
    ds[PIXEL_DATA] = DataElement(PIXEL_DATA, "OW", data + (b"\0" if len(data) % 2 else b""))


def _palette_has_colour(picture: Image.Image) -> bool:
    if picture.mode != "P":
        return False
    rgb = picture.convert("RGB")
    array = np.asarray(rgb)
    return bool((array[..., 0] != array[..., 1]).any() or (array[..., 1] != array[..., 2]).any())


def embed_pdf(ds: Dataset, payload: bytes) -> None:
    """Encapsulated PDF Storage; the Modality and Conversion Type of the request stay
    (``OT`` and ``WSD`` otherwise), as Orthanc."""
    if not payload.startswith(b"%PDF"):
        raise CreationError("BadFormat", "Not a PDF file")
    ds.SOPClassUID = ENCAPSULATED_PDF
    if "Modality" not in ds:
        ds.Modality = "OT"
    if "ConversionType" not in ds:
        ds.ConversionType = "WSD"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = payload + (b"\0" if len(payload) % 2 else b"")


def finish(ds: Dataset) -> None:
    """The meta header that matches the data set, before it is written."""
    ds.file_meta.MediaStorageSOPClassUID = str(ds.get("SOPClassUID", "") or PLACEHOLDER_SOP_CLASS)
    ds.file_meta.MediaStorageSOPInstanceUID = str(ds.SOPInstanceUID)


#: ``to_bytes``: write the SpecificCharacterSet the text is encoded with.
KEEP_CHARSET = object()


def to_bytes(ds: Dataset, written_charset: Any = KEEP_CHARSET) -> bytes:
    """The file of ``ds``. With ``written_charset``, the text stays encoded with the
    character set of ``ds`` but the file says ``written_charset`` (no
    SpecificCharacterSet at all for ``None``): the deprecated form of
    ``/tools/create-dicom`` writes its tags so."""
    finish(ds)
    drop_unencodable(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    if written_charset is KEEP_CHARSET:
        return buffer.getvalue()
    raw = dcmread(io.BytesIO(buffer.getvalue()))  # the text elements stay encoded bytes
    if written_charset is None:
        if SPECIFIC_CHARACTER_SET in raw:
            del raw[SPECIFIC_CHARACTER_SET]
    else:
        raw[SPECIFIC_CHARACTER_SET] = DataElement(
            SPECIFIC_CHARACTER_SET, "CS", str(written_charset)
        )
    buffer = io.BytesIO()
    raw.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
