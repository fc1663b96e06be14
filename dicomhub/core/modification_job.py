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
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import asdict
from typing import Any

import orjson

from ..dicom import transcoding as codec
from ..dicom.levels import Level
from ..dicom.modification import Modification, UidMapper
from ..store.index.records import ResourceRow
from . import reading
from .archive import Archive, require_resource
from .deletion import delete_in_transaction
from .enums import MetadataType
from .errors import BadSequenceOfCalls, CanceledJob, DicomhubError, InternalError
from .ingest import STATUS_ALREADY_STORED, STATUS_SUCCESS, Origin, store
from .jobs import engine
from .jobs.engine import JobContext, JobKind, JobStopped
from .modification import Request, choose_patient_name, modified_bytes, new_seed
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
    content = _content(request.modification.anonymization, len(instances), 0)
    return engine.submit(
        archive, RESOURCE_MODIFICATION, parameters, request.priority, request.user_data, content
    )


def _content(anonymization: bool, count: int, failed: int) -> dict[str, Any]:
    return {
        "Description": "REST API",
        "FailedInstancesCount": failed,
        "InstancesCount": count,
        "IsAnonymization": anonymization,
    }


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

    def store_new(self, source_id: str, data: bytes) -> dict[Level, str]:
        """Store the new file made from ``source_id``; its identifiers."""
        result = store(self.archive, data, self.origin)
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

    def process(self, instance_id: str) -> None:
        data = reading.instance_file(self.archive, instance_id)
        modified = modified_bytes(data, self.mod, self.mapper)
        if self.transcode:
            try:
                modified = codec.transcode(
                    modified, self.transcode, self.quality, allow_new_sop_instance_uid=False
                )
            except codec.TranscodingError as exc:  # Orthanc keeps the syntax it had
                log.warning(
                    "cannot transcode %s, keeping its transfer syntax: %s", instance_id, exc
                )
        ids = self.store_new(instance_id, modified)
        self.archive.write(lambda tx: self._link(tx, instance_id, ids))

    def _link(self, tx: Transaction, source_id: str, ids: dict[Level, str]) -> None:
        """ModifiedFrom / AnonymizedFrom on the new resources, labels if asked."""
        session = tx.session
        source = session.lookup(source_id)
        target = session.lookup(ids[Level.INSTANCE])
        if source is None or target is None:
            return
        sources = ancestry(session, source)
        targets = ancestry(session, target)
        for level in Level:
            old, new = sources.get(level), targets.get(level)
            if old is None or new is None or old.public_id == new.public_id:
                continue
            session.set_metadata(new.id, int(self.kind), old.public_id)
            if self.keep_labels:
                for label in session.labels(old.id):
                    session.add_label(new.id, label)


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
    context.content = _content(run.mod.anonymization, len(instances), 0)
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
    """Process the instances on ``count`` threads, a bounded window at a time, with a
    checkpoint (pause, cancel) as each one ends; on any error the instances still
    running are let finish, so that ``undo`` sees everything they stored."""
    context = run.context
    failed = finished = 0
    queue = iter(instances)
    pending: dict[Future[None], str] = {}
    with ThreadPoolExecutor(count, thread_name_prefix="modification") as pool:

        def fill() -> None:
            for instance_id in queue:
                pending[pool.submit(run.process, instance_id)] = instance_id
                if len(pending) >= 2 * count:
                    return

        try:
            context.checkpoint(0)
            fill()
            while pending:
                done, _ = wait_futures(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    instance_id = pending.pop(future)
                    finished += 1
                    error = future.exception()
                    if error is None:
                        continue
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
                fill()
        except BaseException:
            for future in pending:
                future.cancel()
            wait_futures(pending)
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
