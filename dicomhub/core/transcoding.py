"""When and how dicomhub transcodes: the rules around ``dicom/transcoding.py``.

Orthanc transcodes in four places, and each reacts to a failure its own way:

- ``GET /instances/{id}/file?transcode=``: the caller asked for that syntax, so a
  failure is an error (Orthanc's "Cannot transcode to transfer syntax");
- ingest (``IngestTranscoding``): the original file is stored instead, so that an
  instance is never lost because a codec refused it;
- archives and peers (``Transcode``): the original file is sent instead.

An unknown UID is always a bad request, checked before anything is read, so a typo
changes nothing: "Unknown transfer syntax" (Parameter out of range) on the routes that
answer at once, "Unknown transfer syntax UID" (Bad file format) in a job's body.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from pydicom.uid import UID

from ..dicom import transcoding as codec
from ..dicom.parsing import InvalidDicom, MissingTag, ParsedInstance, parse_instance
from .errors import BadFileFormat, BadRequest, InternalError, ParameterOutOfRange
from .settings import Settings

log = logging.getLogger("dicomhub.transcoding")

_UID_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)*", re.ASCII)


def _known_syntax(value: Any) -> UID | None:
    """``value`` as a transfer syntax UID, read as Orthanc reads it: the exact text
    (no spaces around it), or None."""
    if not isinstance(value, str) or not _UID_TEXT.fullmatch(value):
        return None  # not even a UID (spaces too: pydicom's UID would drop them)
    uid = UID(value)
    return uid if uid.is_transfer_syntax else None


def parse_syntax(value: Any) -> UID:
    """A transfer syntax named in a request; unknown UIDs are Orthanc's 400."""
    uid = _known_syntax(value)
    if uid is None:
        raise ParameterOutOfRange(f"Unknown transfer syntax: {value}")
    return uid


def parse_job_syntax(value: Any) -> UID:
    """The ``Transcode`` field of a job's body (modify and anonymize of patients,
    studies and series, bulk, peer store): as Orthanc's jobs read it, a text that is no
    transfer syntax is a bad file format."""
    if not isinstance(value, str):
        raise BadFileFormat("String value expected in field: Transcode")
    uid = _known_syntax(value)
    if uid is None:
        raise BadFileFormat(f"Unknown transfer syntax UID: {value}")
    return uid


def parse_quality(value: Any, settings: Settings) -> int:
    """``LossyQuality`` / ``lossy-quality`` (1-100), else ``DicomLossyTranscodingQuality``."""
    if value is None or value == "":
        return settings.lossy_quality
    try:
        quality = int(value)
        if isinstance(value, bool) or (isinstance(value, float) and value != quality):
            raise ValueError(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"Bad lossy quality: {value}") from exc
    if not 1 <= quality <= 100:
        raise BadRequest(f"Bad lossy quality (must be between 1 and 100): {value}")
    return quality


def transcode_or_fail(data: bytes, syntax: UID, quality: int) -> bytes:
    """For the routes where the caller asked for ``syntax``: a failure is an error."""
    try:
        return codec.transcode(data, syntax, quality)
    except codec.TranscodingError as exc:
        raise InternalError(f"Cannot transcode to transfer syntax: {syntax} ({exc})") from exc


def transcode_or_keep(data: bytes, syntax: UID, quality: int, what: str = "") -> bytes:
    """For archives and peers: the original file when transcoding fails (Orthanc's way)."""
    try:
        return codec.transcode(data, syntax, quality)
    except codec.TranscodingError as exc:
        log.info("cannot transcode %s to %s, sending it as stored: %s", what, syntax, exc)
        return data


def sender(syntax: UID | None, quality: int) -> Callable[[bytes], bytes] | None:
    """The function archives and peers apply to each file, or ``None`` for no change."""
    if syntax is None:
        return None
    return lambda data: transcode_or_keep(data, syntax, quality)


# ---- ingest --------------------------------------------------------------------------


def ingest_wanted(settings: Settings, parsed: ParsedInstance) -> bool:
    """Orthanc's rules: not when already in the target syntax, never for videos;
    uncompressed and compressed sources each follow their switch; an uncompressed
    file without pixels (SR, PDF...) is not compressed, only re-encoded."""
    target = settings.ingest_transcoding
    source = parsed.transfer_syntax
    if not target or not source or source == target or source in codec.NOT_TRANSCODABLE:
        return False
    if source in codec.UNCOMPRESSED_SYNTAXES:
        if not settings.ingest_transcoding_of_uncompressed:
            return False
        has_pixels = "PixelData" in parsed.dataset or parsed.pixel_data_offset is not None
        return has_pixels or not codec.is_compressed(target)
    return settings.ingest_transcoding_of_compressed


def ingest_transcoding(
    settings: Settings, parsed: ParsedInstance, data: bytes
) -> tuple[ParsedInstance, bytes]:
    """The instance as it will be stored: transcoded to ``IngestTranscoding`` when the
    rules ask for it, else (or when the codec refuses) unchanged. Runs before the
    identifiers are computed from the file, as in Orthanc: a lossy target gets a new
    SOP Instance UID and so a new instance identifier."""
    if not ingest_wanted(settings, parsed):
        return parsed, data
    target = settings.ingest_transcoding
    assert target is not None
    try:
        transcoded = codec.transcode(data, target, settings.lossy_quality)
        return parse_instance(transcoded, settings.default_encoding), transcoded
    except (codec.TranscodingError, InvalidDicom, MissingTag) as exc:
        log.warning("ingest transcoding to %s failed, storing the original file: %s", target, exc)
        return parsed, data
