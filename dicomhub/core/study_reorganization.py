"""Splitting and merging studies: the ``SplitStudy`` and ``MergeStudy`` jobs.

A split moves some series (or single instances) of a study into a new study: the
moved instances get the new study's UID, a new SeriesInstanceUID per source series
and a new SOPInstanceUID, and the caller may replace or remove tags of the patient
and study modules (nothing else). A merge moves studies, series or instances into an
existing study: they get its patient and study tags (copied from one of its
instances, and those of these modules it lacks are removed), a new SeriesInstanceUID
per source series and a new SOPInstanceUID. Unlike ``/modify``, the sources are
deleted unless ``KeepSource`` is true, and (as in Orthanc) no ``ModifiedFrom``
metadata links the new instances to the old ones.

Everything is checked when the job is submitted, in Orthanc's order, so that a bad
body changes nothing. The new identifiers derive from a seed saved with the job (as
for modifications), so a job resumed after a pause or a restart finds what it had
stored already; a failed or cancelled job takes back what it created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydicom.datadict import dictionary_VR

from ..dicom.levels import Level
from ..dicom.modification import SERIES_UID, SOP_UID, STUDY_UID, BadReplacement, UidMapper
from ..dicom.parsing import read_dataset
from ..dicom.study_modules import SPLIT_TAGS, move_instance, study_level_values, tag_label
from ..dicom.tag_paths import UnknownTagName, format_tag, parse_tag_token
from . import modification_job, reading
from .archive import Archive
from .errors import (
    BadFileFormat,
    BadParameterType,
    BadRequest,
    ParameterOutOfRange,
    UnknownDicomTag,
    UnknownResource,
)
from .ingest import Origin
from .job_requests import boolean_field, priority, wants_job
from .jobs import engine
from .jobs.engine import JobContext, JobStopped
from .modification import new_seed
from .modification_job import InstanceRun, process_all, run_and_publish
from .transactions import Transaction

SPLIT_STUDY = "SplitStudy"
MERGE_STUDY = "MergeStudy"


@dataclass
class JobOptions:
    """The body fields every split or merge shares (Orthanc's job fields)."""

    keep_source: bool = False
    keep_labels: bool = False
    permissive: bool = False
    asynchronous: bool = False
    priority: int = 0
    user_data: Any = None


# ---- reading bodies -----------------------------------------------------------------
def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise BadFileFormat("The body must be a JSON object")
    return body


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadFileFormat(f"List of strings expected in field: {key}")
    return list(dict.fromkeys(value))


def _options(body: Mapping[str, Any], labels: bool) -> JobOptions:
    options = JobOptions(keep_source=boolean_field(body, "KeepSource", False))
    if labels:
        options.keep_labels = boolean_field(body, "KeepLabels", False)
    options.permissive = boolean_field(body, "Permissive", False)
    options.asynchronous = wants_job(body)
    options.priority = priority(body)
    options.user_data = body.get("UserData")
    return options


def _split_tag(name: str) -> int:
    try:
        tag = parse_tag_token(name)
    except UnknownTagName as exc:
        raise UnknownDicomTag(str(exc)) from exc
    if tag not in SPLIT_TAGS:
        raise ParameterOutOfRange(
            "Cannot modify the following tag while splitting a study "
            f"(not in the patient/study modules): {tag_label(tag)}"
        )
    return tag


def _out_of_range(tag: int, value: str) -> str:
    return f'While creating a DICOM instance, tag ({format_tag(tag)}) has out-of-range value: "{value}"'


def _dictionary_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def _split_edits(body: Mapping[str, Any]) -> tuple[list[int], dict[int, str]]:
    """``Remove`` (a list of tags) and ``Replace`` (tag -> string) of a split."""
    removals: list[int] = []
    replacements: dict[int, str] = {}
    if "Remove" in body:
        remove = body["Remove"]
        if not isinstance(remove, list) or not all(isinstance(v, str) for v in remove):
            raise BadFileFormat()
        removals = [_split_tag(name) for name in remove]
    if "Replace" in body:
        replace = body["Replace"]
        if not isinstance(replace, dict):
            raise BadFileFormat()
        for name, value in replace.items():
            if not isinstance(value, str):
                raise BadFileFormat()
            tag = _split_tag(name)
            if _dictionary_vr(tag) == "SQ":  # no plain string fits a sequence
                raise BadFileFormat(_out_of_range(tag, value))
            replacements[tag] = value
    return removals, replacements


# ---- submitting ---------------------------------------------------------------------
def _submit(
    archive: Archive,
    kind: str,
    options: JobOptions,
    sources: list[tuple[str, str]],
    origin: Origin,
    parameters: dict[str, Any],
    content: dict[str, Any],
) -> str:
    parameters.update(
        {
            "Sources": [list(pair) for pair in sources],
            "KeepSource": options.keep_source,
            "KeepLabels": options.keep_labels,
            "Permissive": options.permissive,
            "Origin": asdict(origin),
            "Synchronous": not options.asynchronous,
        }
    )
    content = {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": len(sources),
        **content,
    }
    return engine.submit(archive, kind, parameters, options.priority, options.user_data, content)


def _instances_of(session: Any, series_row: Any) -> list[tuple[str, str]]:
    return [(row.public_id, series_row.public_id) for row in session.children(series_row.id)]


def submit_split(archive: Archive, study_id: str, body: Any, origin: Origin) -> tuple[str, bool]:
    """Check a ``/studies/{id}/split`` body and queue its job: (job ID, asynchronous)."""
    body = _object(body)
    sources: list[tuple[str, str]] = []
    with archive.read() as session:
        study = session.lookup(study_id)
        if study is None or study.level != Level.STUDY:
            raise UnknownResource(f"Cannot split unknown study {study_id}")
        asked = False
        if "Series" in body:
            for series_id in _strings(body, "Series"):
                row = session.lookup(series_id)
                if row is None:
                    raise UnknownResource()
                if row.level != Level.SERIES:
                    raise BadParameterType()
                if row.parent_id != study.id:
                    raise UnknownResource(
                        f"This series does not belong to the study to be split: {series_id}"
                    )
                sources.extend(_instances_of(session, row))
                asked = True
        if "Instances" in body:
            for instance_id in _strings(body, "Instances"):
                row = session.lookup(instance_id)
                if row is None:
                    raise UnknownResource()
                if row.level != Level.INSTANCE:
                    raise BadParameterType()
                series = session.get(row.parent_id)
                if series is None or series.parent_id != study.id:
                    raise UnknownResource(
                        f"This instance does not belong to the study to be split: {instance_id}"
                    )
                sources.append((instance_id, series.public_id))
                asked = True
    if not asked:
        raise BadRequest('Both the "Series" and the "Instances" fields are missing')
    options = _options(body, labels=True)
    removals, replacements = _split_edits(body)
    seed = new_seed()
    target_uid = UidMapper(seed).map(study_id, Level.STUDY)
    parameters = {
        "SourceStudy": study_id,
        "Seed": seed,
        "TargetStudyUID": target_uid,
        "Removals": [format_tag(t) for t in removals],
        "Replacements": {format_tag(t): v for t, v in replacements.items()},
    }
    content = {"TargetStudyUID": target_uid}
    sources = list(dict.fromkeys(sources))
    job_id = _submit(archive, SPLIT_STUDY, options, sources, origin, parameters, content)
    return job_id, options.asynchronous


def _merge_source(
    session: Any, target: Any, public_id: str, sources: list[tuple[str, str]]
) -> None:
    row = session.lookup(public_id)
    if row is None:
        raise UnknownResource(f"Cannot find this resource: {public_id}")
    if row.level == Level.STUDY:
        if row.id == target.id:
            raise UnknownResource(f"Cannot merge a study into the same study: {public_id}")
        for series in session.children(row.id):
            sources.extend(_instances_of(session, series))
    elif row.level == Level.SERIES:
        if row.parent_id == target.id:
            raise UnknownResource(
                f"Cannot merge series {public_id} into its parent study {target.public_id}"
            )
        sources.extend(_instances_of(session, row))
    elif row.level == Level.INSTANCE:
        series = session.get(row.parent_id)
        if series.parent_id == target.id:
            raise UnknownResource(
                f"Cannot merge instance {public_id} into its parent study {target.public_id}"
            )
        sources.append((public_id, series.public_id))
    else:
        raise UnknownResource(
            "This resource is neither a study, nor a series, nor an instance: "
            f"{public_id} is a {Level(row.level).title}"
        )


def submit_merge(archive: Archive, study_id: str, body: Any, origin: Origin) -> tuple[str, bool]:
    """Check a ``/studies/{id}/merge`` body and queue its job: (job ID, asynchronous)."""
    body = _object(body)
    with archive.read() as session:
        target = session.lookup(study_id)
        if target is None or target.level != Level.STUDY:
            raise UnknownResource(f"Cannot merge into an unknown study: {study_id}")
        instances = session.descendant_instances(target)
    if not instances:
        raise UnknownResource()
    reference, _ = read_dataset(reading.instance_file(archive, instances[0].public_id))
    replacements, removals = study_level_values(reference)
    if "Resources" not in body:
        raise BadFileFormat("List of strings expected in field: Resources")
    sources: list[tuple[str, str]] = []
    with archive.read() as session:
        target = session.lookup(study_id)
        if target is None:
            raise UnknownResource(f"Cannot merge into an unknown study: {study_id}")
        for public_id in _strings(body, "Resources"):
            _merge_source(session, target, public_id, sources)
    options = _options(body, labels=False)
    parameters = {
        "TargetStudy": study_id,
        "Seed": new_seed(),
        "Removals": sorted(format_tag(t) for t in removals),
        "Replacements": {format_tag(t): v for t, v in replacements.items()},
    }
    sources = list(dict.fromkeys(sources))
    content = {"TargetStudy": study_id}
    job_id = _submit(archive, MERGE_STUDY, options, sources, origin, parameters, content)
    return job_id, options.asynchronous


# ---- running ------------------------------------------------------------------------
class _Move(InstanceRun):
    """One run of a split or merge: each source instance moved into the target study."""

    def __init__(self, context: JobContext) -> None:
        params = context.parameters
        sources = [(pair[0], pair[1]) for pair in params["Sources"]]
        super().__init__(context, [i for i, _ in sources], Origin(**params["Origin"]))
        self.series_of = dict(sources)
        self.mapper = UidMapper(params["Seed"])
        self.study_uid: str | None = params.get("TargetStudyUID")
        self.removals = {parse_tag_token(t) for t in params["Removals"]}
        self.replacements = {parse_tag_token(t): v for t, v in params["Replacements"].items()}
        self.keep_labels = bool(params.get("KeepLabels"))

    def process(self, instance_id: str) -> None:
        data = reading.instance_file(self.archive, instance_id)
        uids = {
            SERIES_UID: self.mapper.map(self.series_of[instance_id], Level.SERIES),
            SOP_UID: self.mapper.map(instance_id, Level.INSTANCE),
        }
        if self.study_uid is not None:
            uids[STUDY_UID] = self.study_uid
        try:
            moved = move_instance(data, self.removals, self.replacements, uids)
        except BadReplacement as exc:
            raise BadFileFormat(f"While creating a DICOM instance: {exc}") from exc
        ids = self.store_new(instance_id, moved)
        if self.study_uid is not None:  # a split names its new study once it exists
            self.context.content.setdefault("TargetStudy", ids[Level.STUDY])
        if self.keep_labels:
            self.archive.write(lambda tx: self._copy_labels(tx, instance_id, ids))

    def _copy_labels(self, tx: Transaction, source_id: str, ids: dict[Level, str]) -> None:
        """``KeepLabels``: each new resource gets the labels of its source."""
        session = tx.session
        source = session.lookup(source_id)
        target = session.lookup(ids[Level.INSTANCE])
        if source is None or target is None:
            return
        sources = modification_job.ancestry(session, source)
        targets = modification_job.ancestry(session, target)
        for level in (Level.STUDY, Level.SERIES, Level.INSTANCE):
            old, new = sources.get(level), targets.get(level)
            if old is not None and new is not None and old.id != new.id:
                for label in session.labels(old.id):
                    session.add_label(new.id, label)


def _run(context: JobContext) -> None:
    params = context.parameters
    run = _Move(context)
    instances = [pair[0] for pair in params["Sources"]]
    try:
        count = modification_job.workers(context.config)
        process_all(run, instances, bool(params.get("Permissive")), count)
    except JobStopped as stopped:
        if stopped.request == "cancel":  # a paused job keeps what it stored, to go on
            run.undo()
        raise
    except BaseException:
        run.undo()
        raise
    if not params.get("KeepSource"):
        run.delete_sources()


def run_reorganization(context: JobContext) -> None:
    """The ``SplitStudy`` and ``MergeStudy`` kinds (their parameters say the rest)."""
    run_and_publish(context, _run)
