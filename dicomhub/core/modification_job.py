"""The ``ResourceModification`` job: modify or anonymize every instance of some
resources, store the results as new resources, then (unless ``KeepSource``) delete
the originals.

The instances to process and the seed of the new identifiers are fixed when the job
is submitted and saved with it, so a job paused, resumed, resubmitted or restarted
after a crash produces the same new resources: what it had already stored is found
again ("AlreadyStored"), never duplicated. A job that fails (or is cancelled) takes
back the resources it created, so no half-modified study stays visible.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import orjson

from ..dicom import transcoding as codec
from ..dicom.levels import Level
from ..dicom.modification import Modification, UidMapper, sop_instance_uid
from ..dicom.parsing import InvalidDicom, MissingTag, ParsedInstance, describe
from ..store.index.records import ResourceRow
from . import reading
from .archive import Archive, require_resource
from .deletion import delete_in_transaction
from .enums import MetadataType
from .errors import (
    BadFileFormat,
    BadSequenceOfCalls,
    CanceledJob,
    DicomhubError,
    InexistentTag,
    InternalError,
)
from .hooks import INCOMING_CSTORE_INSTANCE, RECEIVED_INSTANCE, hooks_of
from .ingest import STATUS_ALREADY_STORED, STATUS_SUCCESS, Origin, store, store_parsed
from .jobs import engine
from .jobs.engine import JobContext, JobKind, JobStopped
from .modification import ModifiedFile, Request, choose_patient_name, modify_file, new_seed
from .transactions import Transaction

log = logging.getLogger("dicomhub.modification")

RESOURCE_MODIFICATION = "ResourceModification"


# ---- submitting --------------------------------------------------------------------
def _instances_of(archive: Archive, resources: list[str], level: Level | None) -> list[str]:
    """The instances under the resources (404 for an unknown one, as Orthanc answers)."""
    found: list[str] = []
    with archive.read() as session:
        for public_id in resources:
            row = require_resource(session, public_id, None if level is None else int(level))
            found.extend(r.public_id for r in session.descendant_instances(row))
    return list(dict.fromkeys(found))


def submit(
    archive: Archive,
    request: Request,
    resources: list[str],
    level: Level | None,
    origin: Origin,
) -> str:
    """Queue the job; ``level`` is the level of the one resource of a
    ``/{level}/{id}/...`` call, None for the bulk routes."""
    instances = _instances_of(archive, resources, level)
    choose_patient_name(archive, request)
    parameters = {
        "Modification": request.modification.to_json(),
        "Seed": new_seed(),
        "Resources": resources,
        "Instances": instances,
        "OutputLevel": None if level is None else int(level),
        "KeepSource": request.keep_source,
        "KeepLabels": request.keep_labels,
        "Permissive": request.permissive,
        "Transcode": request.transcode,
        "LossyQuality": request.lossy_quality,
        "Origin": asdict(origin),
        "Synchronous": not request.asynchronous,
    }
    content = _content(request.modification.anonymization, len(instances), 0, level)
    return engine.submit(
        archive, RESOURCE_MODIFICATION, parameters, request.priority, request.user_data, content
    )


def _content(
    anonymization: bool, count: int, failed: int, level: Level | int | None
) -> dict[str, Any]:
    """The job's ``Content`` until it ends; a bulk job (no ``level``) lists its
    ``Resources`` from the start, empty until then, as Orthanc's."""
    content: dict[str, Any] = {
        "Description": "REST API",
        "FailedInstancesCount": failed,
        "InstancesCount": count,
        "IsAnonymization": anonymization,
    }
    if level is None:
        content["Resources"] = []
    return content


def _result_key(job_id: str) -> str:
    return f"dicomhub-modification-result/{job_id}"


def _publish(context: JobContext, result: dict[str, Any]) -> None:
    """Leave the outcome where a synchronous caller finds it even if the job row is
    gone already (``JobsHistorySize`` 0 forgets a job as soon as it ends)."""
    if context.parameters.get("Synchronous"):
        value = orjson.dumps(result).decode()
        context.archive.write(lambda tx: tx.session.set_property(_result_key(context.id), value))


def _take_result(archive: Archive, job_id: str) -> dict[str, Any] | None:
    def take(tx: Transaction) -> str | None:
        value = tx.session.get_property(_result_key(job_id))
        if value is not None:
            tx.session.delete_property(_result_key(job_id))
        return value

    value = archive.write(take)
    return None if value is None else orjson.loads(value)


def wait(archive: Archive, job_id: str) -> dict[str, Any]:
    """Block until the job ends (the synchronous flavour of the routes): its content,
    or the job's error raised again so the caller answers what Orthanc answers."""
    delay = 0.005
    while True:
        job = engine.get_job(archive, job_id)
        if job is None or job["state"] in engine.FINISHED:
            result = _take_result(archive, job_id)
            if result is None and job is None:
                raise InternalError(f"Job {job_id} disappeared")
            if result is None:  # finished before publishing (e.g. cancelled while pending)
                assert job is not None
                result = {
                    "State": job["state"],
                    "Content": orjson.loads(job["content"]),
                    "ErrorCode": job["error_code"],
                    "ErrorDetails": job["error_details"],
                }
            if result["State"] == engine.SUCCESS:
                return result["Content"]
            raise error_for(result["ErrorCode"], result["ErrorDetails"] or None)
        if job["state"] == engine.PAUSED:
            raise BadSequenceOfCalls(f"Job {job_id} was paused")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def error_for(code: int, details: str | None) -> DicomhubError:
    from . import errors

    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, DicomhubError) and value.code == code:
            return value(details)
    return InternalError(details)


# ---- running ------------------------------------------------------------------------
def ancestry(session: Any, row: ResourceRow) -> dict[Level, ResourceRow]:
    found = {Level(row.level): row}
    current = row
    while current.parent_id is not None:
        parent = session.get(current.parent_id)
        assert parent is not None
        found[Level(parent.level)] = parent
        current = parent
    return found


class InstanceRun:
    """One run of a job that turns source instances into new, stored ones (the
    modification jobs, split and merge): what it created, to take it back on failure,
    and what each source became. State kept outside the saved parameters."""

    def __init__(self, context: JobContext, sources: list[str], origin: Origin) -> None:
        self.context = context
        self.archive = context.archive
        self.sources = set(sources)
        self.origin = origin
        self.outputs: dict[str, dict[Level, str]] = {}
        self.created: list[str] = []

    def process(self, instance_id: str) -> None:
        """Turn one source instance into its new instance (called on worker threads)."""
        raise NotImplementedError

    def store_new(
        self, source_id: str, data: bytes, parsed: ParsedInstance | None = None
    ) -> dict[Level, str]:
        """Store the new file made from ``source_id``; its identifiers. ``parsed``:
        its index record when the caller has it already (else the file is read)."""
        if parsed is None:
            result = store(self.archive, data, self.origin)
        else:
            result = store_parsed(self.archive, parsed, data, self.origin)
        if result.status not in (STATUS_SUCCESS, STATUS_ALREADY_STORED):
            raise InternalError(f"Error while storing a modified instance {source_id}")
        if result.status == STATUS_SUCCESS:
            self.created.append(result.instance_id)
        self.outputs[source_id] = result.ids
        return result.ids

    def undo(self) -> None:
        """Take back what this run created (never a source instance)."""
        doomed = [i for i in self.created if i not in self.sources]

        def run(tx: Transaction) -> None:
            for public_id in doomed:
                row = tx.session.lookup(public_id)
                if row is not None:
                    delete_in_transaction(self.archive, tx, row)

        if doomed:
            self.archive.write(run)

    def delete_sources(self) -> None:
        produced = {ids[Level.INSTANCE] for ids in self.outputs.values()}

        def run(tx: Transaction) -> None:
            for public_id in self.sources - produced:
                row = tx.session.lookup(public_id)
                if row is not None:
                    delete_in_transaction(self.archive, tx, row)

        self.archive.write(run)


class _Run(InstanceRun):
    """One run of a modification job."""

    def __init__(self, context: JobContext) -> None:
        params = context.parameters
        super().__init__(context, params["Instances"], Origin(**params.get("Origin", {})))
        self.mod = Modification.from_json(params["Modification"])
        self.mapper = UidMapper(params["Seed"])
        self.transcode = params.get("Transcode")
        self.quality = int(params.get("LossyQuality") or 90)
        self.keep_labels = bool(params.get("KeepLabels"))
        self.kind = (
            MetadataType.AnonymizedFrom if self.mod.anonymization else MetadataType.ModifiedFrom
        )
        self._linked: set[tuple[int, str]] = set()  # new parents already linked
        self._parents: dict[int, dict[Level, ResourceRow]] = {}  # see _ancestry

    def process(self, instance_id: str) -> None:
        data = reading.instance_file(self.archive, instance_id)
        modified = modify_file(data, self.mod, self.mapper)
        if not sop_instance_uid(modified.dataset):
            # Orthanc checks this before storing, with its own message.
            raise BadFileFormat("File without SOP instance UID")
        output, parsed = modified.data, None
        if self.transcode:
            try:
                output = codec.transcode(
                    output, self.transcode, self.quality, allow_new_sop_instance_uid=False
                )
            except codec.TranscodingError as exc:  # Orthanc keeps the syntax it had
                log.warning(
                    "cannot transcode %s, keeping its transfer syntax: %s", instance_id, exc
                )
        else:
            parsed = self._record(modified)
        ids = self.store_new(instance_id, output, parsed)
        linked = self.archive.write(lambda tx: self._link(tx, instance_id, ids))
        self._linked.update(linked)  # once committed: a rolled back link is done again

    def _record(self, modified: ModifiedFile) -> ParsedInstance | None:
        """The index record of the new file, built from the dataset it was written
        from (no second parse), when that dataset describes it exactly and no filter
        is to see the instance (filters get the tags of the file as read)."""
        if not modified.faithful or modified.pixel_data_offset is None:
            return None
        hooks = hooks_of(self.archive)
        if hooks.active(RECEIVED_INSTANCE) or hooks.active(INCOMING_CSTORE_INSTANCE):
            return None
        try:
            return describe(
                modified.dataset,
                modified.data,
                modified.pixel_data_offset,
                self.archive.settings.default_encoding,
            )
        except InvalidDicom as exc:  # e.g. a UID emptied by the modification
            raise BadFileFormat(str(exc)) from exc
        except MissingTag as exc:
            raise InexistentTag(str(exc)) from exc

    def _link(
        self, tx: Transaction, source_id: str, ids: dict[Level, str]
    ) -> list[tuple[int, str]]:
        """ModifiedFrom / AnonymizedFrom on the new resources, labels if asked; the
        new parents it linked. A parent already linked by this run is skipped, and the
        parents of an instance are looked up once per series: 500 instances of one
        series link their study once, not 500 times."""
        session = tx.session
        source = session.lookup(source_id)
        target = session.lookup(ids[Level.INSTANCE])
        if source is None or target is None:
            return []
        sources = self._ancestry(session, source)
        targets = self._ancestry(session, target)
        linked: list[tuple[int, str]] = []
        for level in Level:
            old, new = sources.get(level), targets.get(level)
            if old is None or new is None or old.public_id == new.public_id:
                continue
            if level != Level.INSTANCE:
                if (new.id, new.public_id) in self._linked:
                    continue
                linked.append((new.id, new.public_id))
            session.set_metadata(new.id, int(self.kind), old.public_id)
            if self.keep_labels:
                for label in session.labels(old.id):
                    session.add_label(new.id, label)
        return linked

    def _ancestry(self, session: Any, row: ResourceRow) -> dict[Level, ResourceRow]:
        """``ancestry``, with the grandparents remembered by parent: one query for the
        parent instead of one per level. The parent's public ID is checked against
        the remembered one, as an internal ID may be given again after a deletion."""
        if row.parent_id is None:
            return {Level(row.level): row}
        parent = session.get(row.parent_id)
        if parent is None:
            return {Level(row.level): row}
        parents = self._parents.get(row.parent_id)
        if parents is None or parents[Level(parent.level)].public_id != parent.public_id:
            parents = ancestry(session, parent)
            self._parents[row.parent_id] = parents
        return {**parents, Level(row.level): row}


def workers(config: Any) -> int:
    """Instances modified in parallel: ``JobsEngineThreadsCount.ResourceModification``
    when it asks for more, else 4 (file I/O and commits overlap; the group committer
    turns the concurrent writes into fewer transactions)."""
    counts = config.get("JobsEngineThreadsCount") if hasattr(config, "get") else None
    configured = counts.get("ResourceModification") if isinstance(counts, dict) else None
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 4:
        return configured
    return 4


def run_modification(context: JobContext) -> None:
    run_and_publish(context, _run_modification)


def run_and_publish(context: JobContext, body: JobKind) -> None:
    """Run ``body`` and leave its outcome for a synchronous caller (see ``wait``)."""
    try:
        body(context)
    except JobStopped as stopped:
        if stopped.request == "cancel":
            _publish(context, _failure(CanceledJob.code, ""))
        raise
    except DicomhubError as exc:
        _publish(context, _failure(exc.code, exc.details or ""))
        raise
    except Exception as exc:
        _publish(context, _failure(InternalError.code, str(exc)))
        raise
    _publish(context, {"State": engine.SUCCESS, "Content": context.content})


def _failure(code: int, details: str) -> dict[str, Any]:
    return {"State": engine.FAILURE, "ErrorCode": code, "ErrorDetails": details}


def _run_modification(context: JobContext) -> None:
    params = context.parameters
    instances: list[str] = params["Instances"]
    run = _Run(context)
    context.content = _content(run.mod.anonymization, len(instances), 0, params.get("OutputLevel"))
    try:
        process_all(run, instances, bool(params.get("Permissive")), workers(context.config))
    except JobStopped as stopped:
        if stopped.request == "cancel":
            run.undo()
        raise
    except BaseException:
        run.undo()
        raise
    if not params.get("KeepSource", True):
        run.delete_sources()
    context.content.update(_output(run, params.get("OutputLevel")))


def process_all(run: InstanceRun, instances: list[str], permissive: bool, count: int) -> None:
    """Process the instances on ``count`` threads, with a checkpoint (pause, cancel)
    as each one ends; on any error the instances still running are let finish, so
    that ``undo`` sees everything they stored.

    Each thread takes the next instance itself and reports to one queue: waiting on
    a window of futures instead made the coordinating thread take the interpreter
    lock a dozen times per instance, which the workers then waited for."""
    context = run.context
    failed = finished = 0
    todo = iter(instances)
    taking = threading.Lock()
    stop = threading.Event()
    reports: queue.SimpleQueue[tuple[str, BaseException | None] | None] = queue.SimpleQueue()

    def take() -> str | None:
        with taking:
            return None if stop.is_set() else next(todo, None)

    def work() -> None:
        try:
            while (instance_id := take()) is not None:
                try:
                    run.process(instance_id)
                except BaseException as exc:  # noqa: BLE001 - reported to the coordinator
                    reports.put((instance_id, exc))
                else:
                    reports.put((instance_id, None))
        finally:
            reports.put(None)  # this thread is done

    context.checkpoint(0)
    with ThreadPoolExecutor(count, thread_name_prefix="modification") as pool:
        running = count
        for _ in range(count):
            pool.submit(work)
        try:
            while running:
                report = reports.get()
                if report is None:
                    running -= 1
                    continue
                instance_id, error = report
                finished += 1
                if error is not None:
                    if not permissive or not isinstance(
                        error, DicomhubError | OSError | ValueError
                    ):
                        raise error
                    failed += 1
                    context.content["FailedInstancesCount"] = failed
                    log.warning(
                        "modification of %s failed (permissive job): %s", instance_id, error
                    )
                context.checkpoint(finished / max(1, len(instances)))
        except BaseException:
            stop.set()
            while running:  # let the instances in progress end (undo must see them)
                if reports.get() is None:
                    running -= 1
            raise


def _output(run: _Run, output_level: int | None) -> dict[str, Any]:
    ids = list(run.outputs.values())
    if output_level is not None:
        if not ids:
            return {}
        level = Level(output_level)
        first = ids[0]
        return {
            "ID": first[level],
            "Path": f"/{level.plural}/{first[level]}",
            "PatientID": first[Level.PATIENT],
            "Type": level.title,
        }
    resources = []
    for level in (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT):
        for public_id in sorted({i[level] for i in ids}):
            resources.append(
                {"ID": public_id, "Path": f"/{level.plural}/{public_id}", "Type": level.title}
            )
    return {"Resources": resources}
