"""Changing the transfer syntax of a DICOM file: decompress, compress, or both.

No codec lives here. Decoding is pydicom's (with the pylibjpeg plugins and GDCM);
encoding goes to whichever installed library does it well:

- pydicom's own encoders: RLE Lossless (native), JPEG-LS lossless and near-lossless
  (pyjpegls), JPEG 2000 lossless and lossy (pylibjpeg-openjpeg);
- GDCM: JPEG Lossless (process 14, with and without selection value 1), one frame
  at a time through an in-memory ``gdcm.Image``;
- Pillow (libjpeg-turbo): JPEG baseline and 8-bit JPEG extended, lossy, with a
  quality; colour frames become YBR_FULL_422 as DICOM requires for 4:2:2 JPEG.

Between two compressed syntaxes the pixels are decoded first, then encoded. What this
module adds is the DICOM bookkeeping the codecs do not do: encapsulation, the
"lossy" attributes (Lossy Image Compression, its ratio and method, derivation and
source image) and, like Orthanc, a new SOP Instance UID when the pixels were changed
by a lossy codec, so that the lossy copy can never be mistaken for the original.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
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
    generate_uid,
)

from . import imaging

#: Orthanc's default for ``DicomLossyTranscodingQuality``.
DEFAULT_QUALITY = 90

#: Written without encapsulation; pydicom encodes the data set for each of them.
NATIVE_SYNTAXES: frozenset[str] = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    }
)
#: What Orthanc calls "uncompressed" for the ``IngestTranscodingOf...`` switches.
UNCOMPRESSED_SYNTAXES: frozenset[str] = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian}
)
_PYDICOM_TARGETS = frozenset(
    {RLELossless, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000}
)
_GDCM_TARGETS = frozenset({JPEGLossless, JPEGLosslessSV1})
#: Below this many pixels a side, pydicom's encoder for these fails: GDCM does them.
_SMALL_IMAGE_LIMITS = {JPEGLSLossless: 8, JPEG2000Lossless: 32}
_PILLOW_TARGETS = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit})
#: Every transfer syntax this module can write.
TARGET_SYNTAXES: frozenset[str] = (
    NATIVE_SYNTAXES | _PYDICOM_TARGETS | _GDCM_TARGETS | _PILLOW_TARGETS
)
LOSSY_SYNTAXES: frozenset[str] = frozenset(
    {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000}
)
#: Videos (MPEG-2, MPEG-4, HEVC), MIME and XML encapsulations: never transcoded,
#: as in Orthanc.
NOT_TRANSCODABLE: frozenset[str] = frozenset(
    {f"1.2.840.10008.1.2.4.{n}" for n in (100, 101, 102, 103, 104, 105, 106, 107, 108)}
    | {"1.2.840.10008.1.2.6.1", "1.2.840.10008.1.2.6.2"}
)

#: Lossy Image Compression Method (0028,2114) of each lossy target.
_LOSSY_METHODS = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
    JPEG2000: "ISO_15444_1",
}


class TranscodingError(ValueError):
    """The file cannot be written in the requested transfer syntax (unsupported
    target, pixel layout the encoder refuses, undecodable source...)."""


@dataclass(frozen=True)
class Transcoded:
    """The new file and what happened to it."""

    data: bytes
    transfer_syntax: str
    lossy: bool
    new_sop_instance_uid: bool


def is_compressed(syntax: str) -> bool:
    return str(syntax) not in UNCOMPRESSED_SYNTAXES


def check_target(syntax: object) -> UID:
    """A transfer syntax UID we can write, or ``TranscodingError``."""
    if not isinstance(syntax, str) or not syntax.strip():
        raise TranscodingError(f"Unknown transfer syntax: {syntax}")
    uid = UID(syntax.strip())
    if uid not in TARGET_SYNTAXES:
        raise TranscodingError(f"Cannot transcode to transfer syntax: {uid}")
    return uid


def check_quality(quality: object) -> int:
    """Orthanc accepts a lossy quality between 1 and 100."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise TranscodingError(f"Bad lossy quality (must be between 1 and 100): {quality}")
    return quality


def transcode(
    source: bytes | Dataset,
    transfer_syntax: str,
    quality: int | None = None,
    *,
    allow_new_sop_instance_uid: bool = True,
) -> bytes:
    """The DICOM file ``source`` written in ``transfer_syntax``.

    ``source`` is a whole DICOM file (bytes, with its meta header) or a pydicom
    ``Dataset`` (with ``file_meta``); a ``Dataset`` is changed in place, so pass a
    copy if you still need the original. ``quality`` (1-100, default 90, Orthanc's
    ``DicomLossyTranscodingQuality``) is used by the lossy targets only. A lossy
    target gives the instance a new SOP Instance UID unless
    ``allow_new_sop_instance_uid`` is false (Orthanc keeps the UID when it
    reconstructs or when the caller already chose UIDs, e.g. modification).

    Raises ``TranscodingError`` when the target is not supported or the pixels
    cannot be decoded or encoded; the caller decides whether that is an error or a
    reason to keep the original (Orthanc's ingest keeps it).
    """
    return transcode_ex(
        source, transfer_syntax, quality, allow_new_sop_instance_uid=allow_new_sop_instance_uid
    ).data


def transcode_ex(
    source: bytes | Dataset,
    transfer_syntax: str,
    quality: int | None = None,
    *,
    allow_new_sop_instance_uid: bool = True,
) -> Transcoded:
    """``transcode`` with a report of what was done (lossy, new SOP Instance UID)."""
    try:
        return _transcode(source, transfer_syntax, quality, allow_new_sop_instance_uid)
    except imaging.ImageError as exc:
        raise TranscodingError(str(exc)) from exc


def _transcode(
    source: bytes | Dataset,
    transfer_syntax: str,
    quality: int | None,
    allow_new_sop_instance_uid: bool,
) -> Transcoded:
    target = check_target(transfer_syntax)
    quality = DEFAULT_QUALITY if quality is None else check_quality(quality)
    if isinstance(source, bytes | bytearray | memoryview):
        ds = _parse(bytes(source))
        current = imaging.transfer_syntax(ds)
        if current == target:
            return Transcoded(bytes(source), target, False, False)
    else:
        ds = source
        if getattr(ds, "file_meta", None) is None:
            ds.file_meta = FileMetaDataset()
        current = imaging.transfer_syntax(ds)
        if current == target:
            return Transcoded(_write(ds), target, False, False)
    if current in NOT_TRANSCODABLE:
        raise TranscodingError(f"Cannot transcode from transfer syntax: {current}")

    if "PixelData" not in ds:
        # Nothing to encode: only the encoding of the data set changes.
        _set_syntax(ds, target)
        return Transcoded(_write(ds), target, False, False)

    _decompress(ds)
    if target in NATIVE_SYNTAXES:
        if target == ExplicitVRBigEndian:
            _swap_words_for_big_endian(ds)
        _set_syntax(ds, target)
        return Transcoded(_write(ds), target, False, False)

    layout = imaging.pixel_layout(ds)
    native_size = layout.frame_bytes * layout.frames
    _interleave(ds, layout)
    original_sop = (str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")))
    try:
        if target in (JPEG2000, JPEG2000Lossless) and min(layout.rows, layout.columns) < 8:
            # GDCM corrupts its heap on such images, OpenJPEG refuses them.
            raise TranscodingError("JPEG 2000 needs 8 pixels a side at least")
        small = min(layout.rows, layout.columns) < _SMALL_IMAGE_LIMITS.get(target, 0)
        if small:
            # pyjpegls overflows its output buffer on tiny images, and OpenJPEG's
            # default of six resolutions needs 32 pixels a side: GDCM copes with both.
            _encapsulate(ds, target, _frames(ds, layout), _gdcm_encoder(layout, target))
        elif target in _PYDICOM_TARGETS:
            _encode_with_pydicom(ds, target, quality)
        elif target in _GDCM_TARGETS:
            _encapsulate(ds, target, _frames(ds, layout), _gdcm_encoder(layout, target))
        else:
            _encode_with_pillow(ds, layout, target, quality)
    except TranscodingError:
        raise
    except Exception as exc:  # each encoder reports refusals its own way
        raise TranscodingError(f"Cannot transcode to transfer syntax {target}: {exc}") from exc

    lossy = target in LOSSY_SYNTAXES
    renamed = False
    if lossy:
        ratio = native_size / max(len(ds.PixelData), 1)
        _mark_lossy(ds, target, quality, ratio, original_sop)
        if allow_new_sop_instance_uid:
            uid = generate_uid()
            ds.SOPInstanceUID = uid
            ds.file_meta.MediaStorageSOPInstanceUID = uid
            renamed = True
    return Transcoded(_write(ds), target, lossy, renamed)


# ---- reading and writing ---------------------------------------------------------


def _parse(data: bytes) -> Dataset:
    try:
        return dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, ValueError, EOFError, OSError) as exc:
        raise TranscodingError(f"Cannot parse the DICOM file: {exc}") from exc


def _set_syntax(ds: Dataset, target: UID) -> None:
    ds.file_meta.TransferSyntaxUID = target


def _write(ds: Dataset) -> bytes:
    """The file in the syntax its meta header names. pydicom refuses to re-encode a
    data set read with another endianness or VR form unless told that it was
    decoded: every element is decoded first, then the encoding is declared."""
    syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    buffer = io.BytesIO()
    try:
        read_little = getattr(ds, "original_encoding", (None, None))[1]
        if read_little is not None and read_little != syntax.is_little_endian:
            for _ in ds.iterall():  # costly: only when the byte order changes
                pass
            ds.set_original_encoding(
                syntax.is_implicit_VR,
                syntax.is_little_endian,
                getattr(ds, "original_character_set", None) or ds.get("SpecificCharacterSet"),
            )
        ds.save_as(buffer, enforce_file_format=True)
    except Exception as exc:  # pydicom refuses inconsistent data sets in many ways
        raise TranscodingError(f"Cannot write the DICOM file: {exc}") from exc
    return buffer.getvalue()


def _decompress(ds: Dataset) -> None:
    """Make the pixel data native little endian (decoded if it was compressed)."""
    syntax = imaging.transfer_syntax(ds)
    if syntax in NATIVE_SYNTAXES:
        if syntax == ExplicitVRBigEndian:
            _swap_words_for_big_endian(ds)  # the same swap turns it back to little
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        return
    layout = imaging.pixel_layout(ds)  # checks the header before anything is allocated
    if layout.frame_bytes * layout.frames > imaging.MAX_ARRAY_BYTES:
        raise TranscodingError("The image is too large to be transcoded")
    try:
        ds.decompress(as_rgb=True, generate_instance_uid=False)
    except MemoryError as exc:
        raise TranscodingError("The image is too large to be transcoded") from exc
    except Exception as exc:  # every codec reports corrupt input its own way
        raise TranscodingError(f"Cannot decode the pixel data of {syntax}: {exc}") from exc


def _interleave(ds: Dataset, layout: imaging.PixelLayout) -> None:
    """Colour-by-plane native data made colour-by-pixel, which every encoder expects
    (and the only layout the compressed syntaxes allow, except RLE's own planes)."""
    if layout.samples != 3 or int(ds.get("PlanarConfiguration", 0) or 0) != 1:
        return
    if layout.bits_allocated % 8:
        raise TranscodingError("Unsupported planar colour layout")
    dtype = np.dtype(f"<u{layout.bits_allocated // 8}")
    count = layout.frames * layout.rows * layout.columns * 3
    raw = np.frombuffer(bytes(ds.PixelData), dtype=dtype)
    if raw.size < count:
        raise TranscodingError("The pixel data is shorter than its declared size")
    planes = raw[:count].reshape(layout.frames, 3, layout.rows, layout.columns)
    ds.PixelData = np.ascontiguousarray(planes.transpose(0, 2, 3, 1)).tobytes()
    ds.PlanarConfiguration = 0


def _swap_words_for_big_endian(ds: Dataset) -> None:
    """pydicom writes OW values as they are: swap 16/32-bit pixel words ourselves."""
    bits = int(ds.get("BitsAllocated", 8) or 8)
    if "PixelData" not in ds or bits not in (16, 32) or ds["PixelData"].VR == "OB":
        return
    dtype = np.dtype(f"<u{bits // 8}")
    raw = bytes(ds.PixelData)
    usable = len(raw) - len(raw) % dtype.itemsize
    swapped = np.frombuffer(raw[:usable], dtype=dtype).byteswap().tobytes() + raw[usable:]
    ds.PixelData = swapped
    ds["PixelData"].VR = "OW"


# ---- encoders ----------------------------------------------------------------------


def _encode_with_pydicom(ds: Dataset, target: UID, quality: int) -> None:
    options: dict[str, object] = {}
    if target == JPEGLSNearLossless:
        # NEAR = 2 at the default quality, as DCMTK's near-lossless default.
        options["jls_error"] = max(1, (100 - quality) // 5)
    elif target == JPEG2000:
        options["j2k_cr"] = [1.0 + (100 - quality) / 2.0]
    if target in (JPEG2000, JPEG2000Lossless, RLELossless):
        # Never pydicom's GDCM plugin: it frees a GDCM image Python still references,
        # which aborts the process (seen with python-gdcm 3.2 on multi-frame RLE).
        options["encoding_plugin"] = "pylibjpeg"
    ds.compress(target, generate_instance_uid=False, **options)  # type: ignore[arg-type]


def _frames(ds: Dataset, layout: imaging.PixelLayout) -> list[bytes]:
    return [imaging.raw_frame(ds, index) for index in range(layout.frames)]


def _encapsulate(
    ds: Dataset, target: UID, frames: list[bytes], encode: Callable[[bytes], bytes]
) -> None:
    encoded = [encode(frame) for frame in frames]
    ds.PixelData = encapsulate(encoded, has_bot=len(encoded) > 1)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = target


def _gdcm_encoder(layout: imaging.PixelLayout, target: UID) -> Callable[[bytes], bytes]:
    """A frame encoder through GDCM's ``ImageChangeTransferSyntax`` (its JPEG
    lossless codec), in memory."""
    import gdcm

    if layout.bits_allocated not in (8, 16) or layout.bits_stored > 16:
        raise TranscodingError("JPEG Lossless needs 8 or 16 bits allocated")
    photometric = gdcm.PhotometricInterpretation.GetPIType(layout.photometric)
    if photometric == gdcm.PhotometricInterpretation.PI_END:
        raise TranscodingError(f"Unsupported photometric interpretation {layout.photometric}")

    def encode(frame: bytes) -> bytes:
        # The image must belong to a writer: GDCM reference-counts its objects and a
        # free-standing ``gdcm.Image`` freed by Python while referenced aborts.
        writer = gdcm.ImageWriter()
        image = writer.GetImage()
        image.SetNumberOfDimensions(2)
        image.SetDimensions((layout.columns, layout.rows, 1))
        image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(photometric))
        image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.ExplicitVRLittleEndian))
        image.SetPixelFormat(
            gdcm.PixelFormat(
                layout.samples,
                layout.bits_allocated,
                layout.bits_stored,
                layout.bits_stored - 1,
                1 if layout.signed else 0,
            )
        )
        if layout.samples > 1:
            image.SetPlanarConfiguration(0)
        element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
        element.SetByteStringValue(frame)
        image.SetDataElement(element)
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(str(target))))
        change.SetInput(image)
        if not change.Change():
            raise TranscodingError(f"GDCM cannot encode this image as {target}")
        fragments = change.GetOutput().GetDataElement().GetSequenceOfFragments()
        if fragments is None or fragments.GetNumberOfFragments() < 1:
            raise TranscodingError("GDCM produced no compressed fragment")
        parts = [
            fragments.GetFragment(i).GetByteValue().GetBuffer()
            for i in range(fragments.GetNumberOfFragments())
        ]
        encoded = b"".join(p.encode("utf-8", "surrogateescape") for p in parts)
        del change, writer
        return encoded

    return encode


def _encode_with_pillow(
    ds: Dataset, layout: imaging.PixelLayout, target: UID, quality: int
) -> None:
    """JPEG lossy through Pillow: 8-bit greyscale or colour only (Pillow's libjpeg
    has no 12-bit mode), as DCMTK's baseline codec."""
    if layout.bits_allocated != 8 or layout.bits_stored > 8 or layout.signed:
        raise TranscodingError(f"{target.name} needs 8-bit unsigned samples")
    if layout.photometric == "PALETTE COLOR":
        raise TranscodingError("Palette colour images cannot be compressed lossily")
    colour = layout.samples == 3

    def encode(index: int) -> bytes:
        frame = imaging.decode_frame(ds, index)
        if colour:
            picture = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB")
            options = {"subsampling": 1}  # 4:2:2, the YBR_FULL_422 of DICOM
        else:
            picture = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "L")
            options = {}
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality, **options)
        return buffer.getvalue()

    encoded = [encode(index) for index in range(layout.frames)]
    _encapsulate(ds, target, encoded, lambda frame: frame)
    if colour:
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PlanarConfiguration = 0
    if layout.photometric == "MONOCHROME1":
        ds.PhotometricInterpretation = "MONOCHROME1"


def _mark_lossy(
    ds: Dataset, target: UID, quality: int, ratio: float, original: tuple[str, str]
) -> None:
    """The attributes PS3.3 C.7.6.1.1.5 asks for once pixels went through a lossy codec."""
    ds.LossyImageCompression = "01"
    ratios = [str(v) for v in _as_list(ds.get("LossyImageCompressionRatio"))]
    methods = [str(v) for v in _as_list(ds.get("LossyImageCompressionMethod"))]
    ds.LossyImageCompressionRatio = [*ratios, f"{ratio:.4g}"]
    ds.LossyImageCompressionMethod = [*methods, _LOSSY_METHODS[target]]
    description = f"{target.name}, quality {quality}, compression ratio {ratio:.4g}"
    previous = str(ds.get("DerivationDescription", "") or "")
    ds.DerivationDescription = (f"{previous}; {description}" if previous else description)[:1024]
    image_type = [str(v) for v in _as_list(ds.get("ImageType"))]
    ds.ImageType = ["DERIVED", *image_type[1:]] if image_type else ["DERIVED", "SECONDARY"]
    code = Dataset()
    code.CodeValue = "113040"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Lossy Compression"
    ds.DerivationCodeSequence = Sequence([code])
    sop_class, sop_instance = original
    if sop_class and sop_instance:
        source = Dataset()
        source.ReferencedSOPClassUID = sop_class
        source.ReferencedSOPInstanceUID = sop_instance
        ds.SourceImageSequence = Sequence([source])


def _as_list(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [value]
    return list(value)  # type: ignore[call-overload]
