"""``/tools/create-dicom``: the rules of Orthanc's instance creation.

- ``Tags`` (or, in the deprecated form, the whole body) name the tags; new study,
  series and SOP instance UIDs and a random patient ID are made unless given, and
  overriding one of them (or a tag inherited from the parent) needs ``Force``;
- ``Parent`` (a patient, study or series) attaches the instance to it: the
  attributes of the Patient, General Study and General Series modules (down to the
  parent's level, sequences excepted) are copied from its last instance, with its
  character set;
- ``Content``: one data URI (PNG, JPEG, PAM, PDF, octet-stream) makes one instance; a list makes a new
  series of one instance per item (each item a data URI, or ``{"Content", "Tags"}``),
  numbered 1, 2, ... as Orthanc does; if one fails, the series is removed.

The instance is stored like any upload (origin ``RestApi``), so filters, ingest
transcoding and the change log apply to it.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from ..dicom import creation as build
from ..dicom.levels import Level
from ..dicom.modules import LEVEL_MODULES
from ..dicom.tag_names import parse_tag
from ..dicom.values import ENCODING_TERMS
from .archive import Archive
from .clock import now_iso
from .deletion import delete_resource
from .errors import (
    BadFileFormat,
    BadParameterType,
    BadRequest,
    DicomhubError,
    InternalError,
    NotImplementedYet,
    ParameterOutOfRange,
    UnknownDicomTag,
)
from .ingest import Origin, StoreResult, store
from .reading import instance_file


def _creation_error(name: str, code: int, message: str) -> type[DicomhubError]:
    return type(name, (DicomhubError,), {"code": code, "name": message, "http_status": 400})


CreateDicomNotString = _creation_error(
    "CreateDicomNotString", 2019, "Only string values are supported when creating DICOM instances"
)
CreateDicomOverrideTag = _creation_error(
    "CreateDicomOverrideTag", 2020, "Trying to override a value inherited from a parent module"
)
CreateDicomUseContent = _creation_error(
    "CreateDicomUseContent", 2021, 'Use "Content" to inject an image into a new DICOM instance'
)
CreateDicomNoPayload = _creation_error(
    "CreateDicomNoPayload", 2022, "No payload is present for one instance in the series"
)
CreateDicomUseDataUriScheme = _creation_error(
    "CreateDicomUseDataUriScheme",
    2023,
    "The payload of the DICOM instance must be specified according to Data URI scheme",
)
CreateDicomBadParent = _creation_error(
    "CreateDicomBadParent", 2024, "Trying to attach a new DICOM instance to an inexistent resource"
)
CreateDicomParentIsInstance = _creation_error(
    "CreateDicomParentIsInstance",
    2025,
    "Trying to attach a new DICOM instance to an instance (must be a series, study or patient)",
)
#: Orthanc answers an unknown tag name or content type here with a 500.
UnknownTagInCreation = type("UnknownTagInCreation", (UnknownDicomTag,), {"http_status": 500})
UnsupportedContent = type("UnsupportedContent", (NotImplementedYet,), {"http_status": 500})

_ERRORS: dict[str, type[DicomhubError]] = {
    "OverrideTag": CreateDicomOverrideTag,
    "UseContent": CreateDicomUseContent,
    "UnknownTag": UnknownTagInCreation,
    "BadType": BadParameterType,
    "OutOfRange": BadFileFormat,
    "BadFormat": BadFileFormat,
    "UnsupportedMime": UnsupportedContent,
    "NotImplemented": UnsupportedContent,  # a PAM format Orthanc does not read
    "UnknownMime": ParameterOutOfRange,
    "JpegError": InternalError,  # Orthanc's JPEG decoder fails with an internal error
}
_DATES = ("AcquisitionDate", "ContentDate", "InstanceCreationDate")
_TIMES = ("AcquisitionTime", "ContentTime", "InstanceCreationTime")


def _bool_field(body: Mapping[str, Any], name: str, default: bool) -> bool:
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise BadRequest(f'The field "{name}" must be a Boolean')
    return value


#: The DICOM terms of the character sets dicomhub knows; the single-byte ones may be
#: given as their ISO 2022 term too (``ISO 2022 IR 100`` is ``ISO_IR 100``).
_CHARSET_TERMS = frozenset(ENCODING_TERMS.values())


def _charset(value: Any) -> str:
    """The SpecificCharacterSet term of a request, as Orthanc reads it: one DICOM term
    (not Orthanc's name of an encoding such as ``Utf8``), in any case, spaces around."""
    if isinstance(value, str):
        text = value.strip().upper()
        if text in _CHARSET_TERMS:
            return text
        if text.startswith("ISO 2022 IR "):
            single_byte = "ISO_IR " + text[len("ISO 2022 IR ") :]
            if single_byte in _CHARSET_TERMS:
                return single_byte
    raise ParameterOutOfRange(f"Unknown specific character set: {value}")


def _translate(exc: build.CreationError) -> DicomhubError:
    return _ERRORS.get(exc.kind, BadRequest)(exc.details)


def _now() -> tuple[str, str]:
    stamp = now_iso()  # 20240102T101010, UTC as Orthanc
    return stamp[:8], stamp[9:15] + ".000000"


def _parent_tags(archive: Archive, parent: Any) -> tuple[Level, Dataset]:
    """The level of ``parent`` and, from one of its instances, the tags of its levels."""
    if not isinstance(parent, str):
        raise CreateDicomBadParent()
    with archive.read() as session:
        row = session.lookup(parent)
        if row is None:
            raise CreateDicomBadParent()
        if row.level == Level.INSTANCE:
            raise CreateDicomParentIsInstance()
        instances = session.descendant_instances(row)
        if not instances:
            raise InternalError("The parent resource has no instance")
        # the instance added last, as Orthanc
        sibling_id = max(instances, key=lambda r: r.id).public_id
        level = Level(row.level)
    sibling = dcmread(  # force: the sibling may be a data set stored without its file meta
        io.BytesIO(instance_file(archive, sibling_id)), stop_before_pixels=True, force=True
    )
    inherited = Dataset()
    for each in (Level.PATIENT, Level.STUDY, Level.SERIES):
        if each > level:
            break
        # the module's attributes, empty ones too; Orthanc copies no sequence
        for tag in LEVEL_MODULES[each]:
            if tag in sibling and sibling[tag].VR != "SQ":
                inherited[tag] = sibling[tag]
    if "SpecificCharacterSet" in sibling:
        inherited.SpecificCharacterSet = sibling.SpecificCharacterSet
    return level, inherited


def create(
    archive: Archive, body: Any, origin: Origin, default_private_creator: str = ""
) -> dict[str, Any]:
    """Create and store the instance (or series) of a request; Orthanc's answer."""
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    if "Tags" not in body:
        return _create_v1(archive, body, origin)
    tags = body["Tags"]
    if not isinstance(tags, dict):
        raise BadRequest("Tags field is not an object")
    interpret = _bool_field(body, "InterpretBinaryTags", True)
    force = _bool_field(body, "Force", False)
    creator = body.get("PrivateCreator", default_private_creator)
    if not isinstance(creator, str):
        raise BadRequest('The field "PrivateCreator" must be a string')

    default_term = ENCODING_TERMS.get(archive.settings.default_encoding, "ISO_IR 100")
    charset = _charset(tags["SpecificCharacterSet"]) if "SpecificCharacterSet" in tags else None
    parent_level: Level | None = None
    inherited: Dataset | None = None
    if "Parent" in body:
        parent_level, inherited = _parent_tags(archive, body["Parent"])
        if "SpecificCharacterSet" in inherited:
            charset = str(inherited.SpecificCharacterSet)
    ds = build.new_dataset(charset or default_term)
    if inherited is not None:
        for element in inherited:
            ds[element.tag] = element

    date, time = _now()
    for name in _DATES:
        setattr(ds, name, date)
    for name in _TIMES:
        setattr(ds, name, time)
    if parent_level in (None, Level.PATIENT, Level.STUDY):
        ds.SeriesDate, ds.SeriesTime = date, time
    if parent_level in (None, Level.PATIENT):
        ds.StudyDate, ds.StudyTime = date, time

    try:
        build.inject_tags(ds, tags, interpret, creator, force)
    except build.CreationError as exc:
        raise _translate(exc) from exc

    if "Content" not in body:
        return _store(archive, ds, origin).to_json()
    content = body["Content"]
    if isinstance(content, str):
        _embed(ds, content)
        return _store(archive, ds, origin).to_json()
    if isinstance(content, list):
        if not content:
            return _store(archive, ds, origin).to_json()
        return _create_series(archive, ds, content, origin, interpret, creator, force)
    raise CreateDicomUseDataUriScheme()


def _embed(ds: Dataset, uri: str) -> None:
    try:
        build.embed_content(ds, uri)
    except build.CreationError as exc:
        raise _translate(exc) from exc


def _store(
    archive: Archive, ds: Dataset, origin: Origin, written_charset: Any = build.KEEP_CHARSET
) -> StoreResult:
    """Store ``ds``; ``written_charset``: the SpecificCharacterSet to write instead of
    the one its text is encoded with (``None``: none)."""
    if not str(ds.get("SOPInstanceUID", "") or "").strip():  # given empty, with Force
        raise BadFileFormat("missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")
    return store(archive, build.to_bytes(ds, written_charset), origin)


def _create_series(
    archive: Archive,
    base: Dataset,
    content: list[Any],
    origin: Origin,
    interpret: bool,
    creator: str,
    force: bool,
) -> dict[str, Any]:
    base.ImagesInAcquisition = str(len(content))
    base.NumberOfTemporalPositions = "1"
    stored: StoreResult | None = None
    try:
        for number, item in enumerate(content, start=1):
            ds = _copy(base)
            ds.SOPInstanceUID = generate_uid()
            if isinstance(item, dict):
                if "Content" not in item:
                    raise CreateDicomNoPayload()
                if "Tags" in item:
                    try:
                        build.inject_tags(ds, item["Tags"], interpret, creator, force)
                    except build.CreationError as exc:
                        raise _translate(exc) from exc
                    except AttributeError as exc:  # Tags that is not an object
                        raise BadRequest("Tags field is not an object") from exc
                item = item["Content"]
            if not isinstance(item, str):
                raise CreateDicomUseDataUriScheme()
            _embed(ds, item)
            ds.InstanceNumber = str(number)
            ds.ImageIndex = number
            stored = _store(archive, ds, origin)
    except DicomhubError:
        if stored is not None:  # Orthanc removes the half-made series
            delete_resource(archive, stored.ids[Level.SERIES], Level.SERIES)
        raise
    assert stored is not None
    series = stored.ids[Level.SERIES]
    return {"ID": series, "Path": f"/series/{series}", "Status": "Success"}


def _copy(ds: Dataset) -> Dataset:
    return copy.deepcopy(ds)


def _create_v1(archive: Archive, body: dict[str, Any], origin: Origin) -> dict[str, Any]:
    """The deprecated form: the body is the tags, ``PixelData`` a data URI. As Orthanc,
    the text is encoded with the default encoding but no SpecificCharacterSet is
    written, unless the body has one: then it is written as given, a plain tag."""
    default_term = ENCODING_TERMS.get(archive.settings.default_encoding, "ISO_IR 100")
    ds = build.new_dataset(default_term)
    charset: str | None = None
    pixels: str | None = None
    for name, value in body.items():
        if not isinstance(value, str):
            raise CreateDicomNotString()
        try:
            tag = parse_tag(name) if name.strip() else None
        except ValueError:
            tag = None
        if tag is None:
            raise UnknownTagInCreation(f"unknown DICOM tag: {name}")
        if tag == build.PIXEL_DATA:
            pixels = value
        elif tag == build.SPECIFIC_CHARACTER_SET:
            charset = value
            # a term dicomhub knows encodes the text (Orthanc keeps the default)
            with contextlib.suppress(ParameterOutOfRange):
                ds.SpecificCharacterSet = _charset(value)
        else:
            try:
                build.inject_tags(ds, {name: value}, False, "", True)
            except build.CreationError as exc:
                raise _translate(exc) from exc
    if pixels is not None:
        _embed(ds, pixels)
    return _store(archive, ds, origin, charset).to_json()


__all__ = ["create"]
