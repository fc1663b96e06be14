"""Modification and anonymization requests: Orthanc's body options, checked and
turned into a ``Modification``, and the single-instance answer.

The rules are Orthanc 1.12's: a tag that makes an identifier (PatientID and the
three UIDs of the hierarchy) may only be replaced, removed or kept with ``Force``;
without ``Force`` a patient must get a new PatientID and a study, series or instance
may not change its parents' identifiers; nobody may remove an identifier.
Anonymization starts from the confidentiality profile of ``DicomVersion`` and then
applies the user's ``Replace``, ``Remove`` and ``Keep``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from .. import __version__
from ..dicom import confidentiality, rewriting
from ..dicom.levels import Level
from ..dicom.modification import (
    PATIENT_ID,
    PATIENT_NAME,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    BadReplacement,
    ForbiddenRemoval,
    Modification,
    UidMapper,
    apply,
    write_file,
)
from ..dicom.parsing import read_dataset
from ..dicom.tag_paths import TagPath, TagPathError, UnknownTagName, parse_tag_path
from . import reading, transcoding
from .archive import Archive
from .errors import (
    BadFileFormat,
    BadParameterType,
    BadRequest,
    ParameterOutOfRange,
    UnknownDicomTag,
)
from .job_requests import boolean_field, priority, wants_job
from .settings import Settings

DEIDENTIFICATION_METHOD = 0x00120063
PATIENT_IDENTITY_REMOVED = 0x00120062
IDENTIFIERS = (PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID)
ANONYMIZATION_SEQUENCE = "AnonymizationSequence"


@dataclass
class Request:
    """A parsed ``/modify`` or ``/anonymize`` body."""

    modification: Modification
    keep_source: bool = True
    keep_labels: bool = False
    permissive: bool = False
    asynchronous: bool = False
    priority: int = 0
    user_data: Any = None
    transcode: str | None = None
    lossy_quality: int = 90
    resources: list[str] = field(default_factory=list)
    #: Anonymization only: the patient name is still to be chosen ("AnonymizedN").
    needs_patient_name: bool = False


# ---- reading body fields --------------------------------------------------------------
def _bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    if key not in body:
        return default
    value = body[key]
    if not isinstance(value, bool):
        raise BadFileFormat(f'Member "{key}" should be a Boolean value')
    return value


def _path(name: str) -> TagPath:
    try:
        return parse_tag_path(name)
    except UnknownTagName as exc:
        raise UnknownDicomTag(str(exc)) from exc
    except TagPathError as exc:
        raise ParameterOutOfRange(str(exc)) from exc


def _guard(path: TagPath, name: str, force: bool, verb: str) -> None:
    if path.is_top_level and not force and path.tag in IDENTIFIERS:
        raise BadRequest(
            f'Marking tag "{name}" as to be {verb} requires the "Force" option to be set to true'
        )


def _tag_list(body: Mapping[str, Any], key: str, force: bool, verb: str) -> list[TagPath]:
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f'"{key}" must be a list of tags')
    paths = []
    for name in value:
        path = _path(name)
        _guard(path, name, force, verb)
        paths.append(path)
    return paths


def _apply_user_fields(mod: Modification, body: Mapping[str, Any], force: bool) -> None:
    """``Remove``, then ``Replace``, then ``Keep``: Orthanc's order (last one wins)."""
    if "Remove" in body:
        for path in _tag_list(body, "Remove", force, "removed"):
            mod.remove_path(path)
    if "Replace" in body:
        replace = body["Replace"]
        if not isinstance(replace, dict):
            raise BadRequest('"Replace" must be a JSON object')
        for name, value in replace.items():
            path = _path(name)
            _guard(path, name, force, "replaced")
            mod.replace_path(path, value)
    if "Keep" in body:
        for path in _tag_list(body, "Keep", force, "kept"):
            mod.keep_path(path)


def _private_creator(body: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    if "PrivateCreator" not in body:
        return str(config.get("DefaultPrivateCreator", "") or "")
    value = body["PrivateCreator"]
    if not isinstance(value, str):
        raise BadFileFormat("String value expected in field: PrivateCreator")
    return value


def _check_levels(mod: Modification, level: Level) -> None:
    """Orthanc's checks on identifiers, skipped with ``Force``."""
    patient = mod.is_replaced(PATIENT_ID) or PATIENT_ID in mod.uids
    if level == Level.PATIENT and not patient:
        raise BadRequest("When modifying a patient, her PatientID is required to be modified.")
    names = {Level.STUDY: "a study", Level.SERIES: "a series", Level.INSTANCE: "an instance"}
    if level != Level.PATIENT and patient:
        raise BadRequest(
            f"When modifying {names[level]}, the parent PatientID cannot be manually modified"
        )
    if level in (Level.SERIES, Level.INSTANCE) and mod.is_replaced(STUDY_UID):
        raise BadRequest(
            f"When modifying {names[level]}, the parent StudyInstanceUID cannot be "
            "manually modified"
        )
    if level == Level.INSTANCE and mod.is_replaced(SERIES_UID):
        raise BadRequest(
            "When modifying an instance, the parent SeriesInstanceUID cannot be manually modified"
        )


def _transcode(request: Request, body: Mapping[str, Any], settings: Settings, job: bool) -> None:
    """``Transcode`` (and ``LossyQuality``), checked before anything is done. As in
    Orthanc, a job (a patient, study or series, bulk) and a single instance word an
    unknown syntax differently."""
    if "Transcode" not in body:
        return
    value = body["Transcode"]
    if job:
        syntax = transcoding.parse_job_syntax(value)
    elif not isinstance(value, str):
        raise BadFileFormat("String value expected in field: Transcode")
    else:
        syntax = transcoding.parse_syntax(value)
    request.transcode = str(syntax)
    request.lossy_quality = transcoding.parse_quality(body.get("LossyQuality"), settings)


def _job_fields(
    request: Request, body: Mapping[str, Any], settings: Settings, job: bool = True
) -> None:
    request.keep_source = boolean_field(body, "KeepSource", True)
    request.keep_labels = boolean_field(body, "KeepLabels", False)
    request.permissive = boolean_field(body, "Permissive", False)
    request.asynchronous = wants_job(body)
    request.priority = priority(body)
    request.user_data = body.get("UserData")
    _transcode(request, body, settings, job)


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object")
    return body


def _resources(body: Mapping[str, Any]) -> list[str]:
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise BadFileFormat("List of strings expected in field: Resources")
    return list(dict.fromkeys(resources))


# ---- modify --------------------------------------------------------------------------
def detect_level(mod: Modification) -> Level:
    """The level a modification works at when no resource says it (Orthanc's rule)."""
    if mod.is_replaced(PATIENT_ID):
        return Level.PATIENT
    if mod.is_replaced(STUDY_UID):
        return Level.STUDY
    if mod.is_replaced(SERIES_UID):
        return Level.SERIES
    return Level.INSTANCE


def parse_modify(
    body: Any,
    level: Level | None,
    config: Mapping[str, Any],
    settings: Settings,
    bulk: bool = False,
    look_up: Callable[[], None] | None = None,
) -> Request:
    """``level``: the resource's level, or None for a single instance and bulk.

    ``look_up`` checks that the resource exists (UnknownResource): as in Orthanc, after
    the fields are read but before the checks on the identifiers, so that an unknown
    patient with no new PatientID is a 404.
    """
    body = _object(body)
    force = _bool(body, "Force", False)
    mod = Modification()
    mod.remove_private = _bool(body, "RemovePrivateTags", False)
    _apply_user_fields(mod, body, force)
    mod.private_creator = _private_creator(body, config)
    request = Request(mod)
    _job_fields(request, body, settings, job=bulk or level is not None)
    if look_up is not None:
        look_up()
    if not force:
        _check_levels(mod, level if level is not None else Level.INSTANCE)
    if bulk:
        request.resources = _resources(body)
        if "Level" in body:
            try:
                mod.level = Level.parse(str(body["Level"]))
            except ValueError as exc:
                raise ParameterOutOfRange(f"Unknown resource level: {body['Level']}") from exc
        else:
            mod.level = detect_level(mod)
    else:
        mod.level = level if level is not None else detect_level(mod)
    return request


# ---- the PS3.15 options (beyond Orthanc) -------------------------------------------------
OPTIONS_FIELD = "ConfidentialityOptions"


def parse_options(body: Mapping[str, Any]) -> list[str]:
    """``ConfidentialityOptions``: names of PS3.15 E.3 options to apply on top of the
    basic profile; an option dicomhub cannot apply faithfully is refused."""
    if OPTIONS_FIELD not in body:
        return []
    value = body[OPTIONS_FIELD]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadFileFormat(f"List of strings expected in field: {OPTIONS_FIELD}")
    for name in value:
        if name in confidentiality.NOT_OFFERED:
            raise ParameterOutOfRange(
                f"The confidentiality option {name} is not supported by dicomhub "
                f"(supported: {', '.join(confidentiality.OPTIONS)})"
            )
        if name not in confidentiality.OPTIONS:
            raise ParameterOutOfRange(
                f"Unknown confidentiality option: {name} "
                f"(supported: {', '.join(confidentiality.OPTIONS)})"
            )
    return list(dict.fromkeys(value))


def apply_options(mod: Modification, options: list[str], version: str) -> None:
    for name in options:
        if name == confidentiality.RETAIN_UIDS:
            mod.retain_uids = True
            mod.uids -= confidentiality.profile(version).new_uids
            mod.keep_study_uid = mod.keep_series_uid = mod.keep_sop_uid = True
            continue
        if name == confidentiality.RETAIN_SAFE_PRIVATE:
            mod.retain_safe_private = True
            continue
        if name == confidentiality.CLEAN_DESCRIPTORS:
            tags = confidentiality.descriptor_tags(version)
            mod.clean_descriptors |= tags
        elif name == confidentiality.RETAIN_LONGITUDINAL:
            tags = confidentiality.temporal_tags(version)
        else:
            tags = confidentiality.RETAINED[name]
        for tag in tags:
            mod.keep_tag(tag)


# ---- anonymize -----------------------------------------------------------------------
def method_text(version: str) -> str:
    return f"dicomhub {__version__} - {confidentiality.profile(version).method}"


def _profile_modification(version: str) -> Modification:
    profile = confidentiality.profile(version)
    mod = Modification(level=Level.PATIENT, anonymization=True, remove_private=True)
    mod.removals = set(profile.remove)
    mod.clearings = set(profile.empty)
    mod.uids = set(profile.new_uids) | {PATIENT_ID, PATIENT_NAME}
    mod.removed_ranges = list(profile.removed_ranges)
    mod.replacements[DEIDENTIFICATION_METHOD] = method_text(version)
    mod.replacements[PATIENT_IDENTITY_REMOVED] = "YES"
    return mod


def parse_anonymize(
    body: Any,
    config: Mapping[str, Any],
    settings: Settings,
    bulk: bool = False,
    instance: bool = False,
) -> Request:
    """``instance``: a single instance, answered at once (not a job)."""
    body = _object(body)
    force = _bool(body, "Force", False)
    version = body.get("DicomVersion", confidentiality.DEFAULT_VERSION)
    if not isinstance(version, str):
        raise BadFileFormat("String value expected in field: DicomVersion")
    try:
        mod = _profile_modification(version)
    except ValueError as exc:
        raise ParameterOutOfRange(str(exc)) from exc
    customized = False
    options = parse_options(body)
    if options:
        apply_options(mod, options, version)
        customized = True
    if _bool(body, "KeepPrivateTags", False):
        mod.remove_private = False
        customized = True
    _apply_user_fields(mod, body, force)
    if any(body.get(key) for key in ("Remove", "Replace", "Keep")):
        customized = True
    if customized:
        # A customized anonymization no longer follows the profile: do not claim it.
        value = mod.replacements.get(DEIDENTIFICATION_METHOD)
        if value == method_text(version):
            del mod.replacements[DEIDENTIFICATION_METHOD]
    mod.private_creator = _private_creator(body, config)
    request = Request(mod, needs_patient_name=PATIENT_NAME in mod.uids)
    _job_fields(request, body, settings, job=not instance)
    if bulk:
        request.resources = _resources(body)
    return request


def choose_patient_name(archive: Archive, request: Request) -> None:
    """Like Orthanc, an anonymized patient is named ``Anonymized`` + a counter kept in
    the index (shared by every worker), unless the body gave a name."""
    if not request.needs_patient_name:
        return
    number = archive.write(lambda tx: tx.session.next_sequence(ANONYMIZATION_SEQUENCE))
    request.modification.replace_tag(PATIENT_NAME, f"Anonymized{number}")
    request.needs_patient_name = False


def new_seed() -> str:
    """The seed of the new identifiers of one modification (saved with its job)."""
    return uuid.uuid4().hex


# ---- applying ---------------------------------------------------------------------------
#: Pixel data elements: a modification that touches one rewrites the whole file.
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)


@dataclass
class ModifiedFile:
    """A modified file, and the dataset it was written from."""

    data: bytes
    #: The modified dataset; without its pixel data when they were copied as bytes.
    dataset: Dataset
    #: Where Pixel Data starts in ``data`` (-1: none); None when not known.
    pixel_data_offset: int | None
    #: ``dataset`` describes ``data`` exactly, so the index record can be built from
    #: it (``parsing.describe``) instead of reading the new file again.
    faithful: bool


def _apply(ds: Dataset, mod: Modification, mapper: UidMapper) -> None:
    try:
        apply(ds, mod, mapper)
    except ForbiddenRemoval as exc:
        raise BadRequest(str(exc)) from exc
    except BadReplacement as exc:
        raise BadParameterType(str(exc)) from exc
    except UnknownTagName as exc:
        raise UnknownDicomTag(str(exc)) from exc


def modify_file(data: bytes, mod: Modification, mapper: UidMapper) -> ModifiedFile:
    """The file ``data`` once modified, in its own transfer syntax.

    When the modification leaves the pixel data alone, only the header is read,
    changed and written, and the source's pixel data are appended as they are
    (``dicom/rewriting.py``): the same bytes, without copying the largest part of
    the file several times. Otherwise the whole file is read and written."""
    if not any(mod.is_manually_modified(tag) for tag in PIXEL_TAGS):
        source = rewriting.read_source(data)
        if source is not None:
            _apply(source.dataset, mod, mapper)
            written = rewriting.write(source, source.dataset)
            if written is not None:
                return ModifiedFile(
                    written.data, source.dataset, written.pixel_data_offset, written.faithful
                )
    ds, _ = read_dataset(data)
    _apply(ds, mod, mapper)
    return ModifiedFile(write_file(ds), ds, None, False)


def modified_bytes(data: bytes, mod: Modification, mapper: UidMapper) -> bytes:
    """The file ``data`` once modified, in its own transfer syntax."""
    return modify_file(data, mod, mapper).data


def modify_instance(archive: Archive, instance_id: str, request: Request) -> bytes:
    """``/instances/{id}/modify`` and ``/anonymize``: the new file, not stored."""
    data = reading.instance_file(archive, instance_id)
    choose_patient_name(archive, request)
    modified = modified_bytes(data, request.modification, UidMapper(new_seed()))
    if request.transcode:
        modified = transcoding.transcode_or_fail(
            modified, UID(request.transcode), request.lossy_quality
        )
    return modified
