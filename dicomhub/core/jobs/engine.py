"""The jobs engine: job rows in the index, and a runner that works them off.

Job state lives in the index rather than in a process, because several HTTP
workers (and, later, replicas on PostgreSQL) must all answer ``GET /jobs/{id}`` and
accept ``cancel`` or ``pause`` for a job that another process runs. Requests to a
running job are therefore written into its row and honoured by the runner between
two steps. Only the primary worker runs a ``JobRunner``; every process may submit.

Job events (submitted, success, failure) are written to the index with the job row
they are about (``job_events``), whichever process writes it, and published on this
process's event bus once committed: one process hands them from its bus to the
scripts' job callbacks; with several HTTP workers the primary follows the table
instead (``core.change_feed``), so that every worker's jobs reach them, once each.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from ..archive import Archive
from ..clock import now_iso
from ..enums import ChangeType
from ..errors import BadSequenceOfCalls, CanceledJob, DicomhubError, InexistentItem
from ..events import Change

log = logging.getLogger("dicomhub.jobs")

PENDING, RUNNING, SUCCESS, FAILURE, PAUSED, RETRY = (
    "Pending",
    "Running",
    "Success",
    "Failure",
    "Paused",
    "Retry",
)
FINISHED = (SUCCESS, FAILURE)

#: Wakes this process's runner as soon as a job is submitted here; jobs submitted
#: by other workers are found by polling, or sooner through ``remote_wakeup``.
_wakeup = threading.Event()

#: Set by the server in a worker that runs no jobs (``HttpWorkers`` > 1): nudges the
#: primary worker's runner (``core.nudges``).
remote_wakeup: Callable[[], None] | None = None


#: Called when this process or (through ``wake_runner``) another one wrote job
#: events: the primary's follower of the job events reads them at once.
event_listeners: list[Callable[[], None]] = []


def wake_runner() -> None:
    """Look for pending jobs, and new job events, now (a nudge from another worker)."""
    _wakeup.set()
    _tell_event_listeners()


def _tell_event_listeners() -> None:
    for listener in list(event_listeners):
        try:
            listener()
        except Exception:
            log.exception("A job event listener failed")


def _wake() -> None:
    _wakeup.set()
    if remote_wakeup is not None:
        remote_wakeup()


class JobStopped(Exception):
    """Raised inside a job at a checkpoint when it was asked to stop."""

    def __init__(self, request: str) -> None:
        super().__init__(request)
        self.request = request


def job_time() -> str:
    """Orthanc's job timestamps: ISO basic format with microseconds, UTC."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")


def outputs_folder(archive: Archive) -> str:
    """Where job outputs (archives) are written: beside the index, shared by workers."""
    return os.path.join(archive.settings.index_directory, "dicomhub-jobs")


# ---- what every process may do ------------------------------------------------
def _row(
    session: Any,
    job_id: str,
    job_type: str,
    parameters: Mapping[str, Any],
    priority: int,
    user_data: Any,
    content: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A new job row, Pending until the caller says otherwise."""
    return {
        "id": job_id,
        "seq": session.next_job_seq(),
        "type": job_type,
        "state": PENDING,
        "priority": priority,
        "progress": 0,
        "creation_time": job_time(),
        "completion_time": None,
        "runtime": 0,
        "error_code": 0,
        "error_details": "",
        "request": None,
        "user_data": None if user_data is None else orjson.dumps(user_data).decode(),
        "parameters": orjson.dumps(dict(parameters)).decode(),
        "content": orjson.dumps(dict(content or {})).decode(),
        "outputs": "{}",
    }


def submit(
    archive: Archive,
    job_type: str,
    parameters: Mapping[str, Any],
    priority: int = 0,
    user_data: Any = None,
    content: Mapping[str, Any] | None = None,
) -> str:
    """Queue a job. ``content`` is what ``GET /jobs/{id}`` shows until the job runs
    (Orthanc fills it in at submission, so a job cancelled before it starts keeps it)."""
    job_id = str(uuid.uuid4())

    def insert(tx: Any) -> None:
        tx.session.insert_job(
            _row(tx.session, job_id, job_type, parameters, priority, user_data, content)
        )
        _announce(archive, tx, job_id, ChangeType.JobSubmitted)

    archive.write(insert)
    _wake()
    return job_id


def record_finished(
    archive: Archive,
    config: Mapping[str, Any],
    job_type: str,
    parameters: Mapping[str, Any],
    content: Mapping[str, Any],
    created: str,
    runtime_ms: int,
    error: DicomhubError | None = None,
    priority: int = 0,
    user_data: Any = None,
) -> str:
    """Record a job that ran inside its request rather than in the runner (a
    synchronous archive, streamed to the client while it is built), so that
    ``/jobs`` and the scripts' job callbacks see it as they see Orthanc's.

    ``created`` is the ``job_time()`` of its start; ``error`` its failure, if any.
    The row is pruned like any finished job (``JobsHistorySize``); its two events
    (submitted, then success or failure) are kept apart from it, so the callbacks
    hear of it even when the row is pruned at once, whichever worker recorded it."""
    job_id = str(uuid.uuid4())

    def insert(tx: Any) -> list[str]:
        row = _row(tx.session, job_id, job_type, parameters, priority, user_data, content)
        row.update(
            state=FAILURE if error else SUCCESS,
            progress=0 if error else 100,
            creation_time=created,
            completion_time=job_time(),
            runtime=runtime_ms,
            error_code=error.code if error else 0,
            error_details=(error.details or "") if error else "",
        )
        tx.session.insert_job(row)
        done = ChangeType.JobFailure if error else ChangeType.JobSuccess
        _announce(archive, tx, job_id, ChangeType.JobSubmitted, done)
        return prune(archive, tx.session, config)

    for folder in archive.write(insert):
        shutil.rmtree(folder, ignore_errors=True)
    _nudge_event_listeners()
    return job_id


def _announce(archive: Archive, tx: Any, job_id: str, *changes: ChangeType) -> None:
    """Tell the scripts' callbacks (``OnJobSubmitted``, ``OnJobSuccess``,
    ``OnJobFailure``) of ``changes``, in this order, with the transaction ``tx``: in
    the index's job events, for the primary worker to follow, and on this process's
    event bus once committed. As in Orthanc, job events are not in the changes log."""
    date = now_iso()
    tx.session.log_job_events([(int(change), job_id, date) for change in changes])
    events = [Change(int(change), -1, job_id, date) for change in changes]

    def publish() -> None:
        for event in events:
            archive.events.publish(event)

    tx.on_commit(publish)


def _nudge_event_listeners() -> None:
    """Job events were committed in a worker that runs no jobs: the primary's
    follower of the job events reads them now rather than at its next poll (in the
    primary, the event bus wakes it)."""
    if remote_wakeup is not None:
        remote_wakeup()


def get_job(archive: Archive, job_id: str) -> dict[str, Any] | None:
    with archive.read() as session:
        return session.job(job_id)


def list_jobs(archive: Archive) -> list[dict[str, Any]]:
    with archive.read() as session:
        return session.jobs()


def _change(archive: Archive, job_id: str, fn: Callable[[Any, dict[str, Any]], bool]) -> bool:
    """Run ``fn(session, job)`` in a write; False when the job does not exist."""

    def body(tx: Any) -> bool:
        job = tx.session.job(job_id)
        if job is None:
            return False
        return fn(tx.session, job)

    return archive.write(body)


def cancel(archive: Archive, job_id: str) -> bool:
    """Like Orthanc, cancelling a finished job is accepted and changes nothing."""

    def fn(session: Any, job: dict[str, Any]) -> bool:
        if job["state"] in (PENDING, PAUSED, RETRY):
            session.update_job(
                job_id,
                state=FAILURE,
                error_code=CanceledJob.code,
                completion_time=job_time(),
                request=None,
            )
        elif job["state"] == RUNNING:
            session.update_job(job_id, request="cancel")
        return True

    return _change(archive, job_id, fn)


def pause(archive: Archive, job_id: str) -> bool:
    def fn(session: Any, job: dict[str, Any]) -> bool:
        if job["state"] in (PENDING, RETRY):
            session.update_job(job_id, state=PAUSED)
        elif job["state"] == RUNNING:
            session.update_job(job_id, request="pause")
        return True

    return _change(archive, job_id, fn)


def resume(archive: Archive, job_id: str) -> bool:
    """Only a paused job resumes (Orthanc answers 400 for the others)."""

    def fn(session: Any, job: dict[str, Any]) -> bool:
        if job["state"] != PAUSED:
            raise BadSequenceOfCalls(f"Job {job_id} is not paused")
        session.update_job(job_id, state=PENDING, request=None)
        return True

    done = _change(archive, job_id, fn)
    _wake()
    return done


def resubmit(archive: Archive, job_id: str) -> bool:
    """Only a failed job is resubmitted; it starts again from the beginning."""

    def fn(session: Any, job: dict[str, Any]) -> bool:
        if job["state"] != FAILURE:
            raise BadSequenceOfCalls(f"Job {job_id} has not failed")
        session.update_job(
            job_id,
            state=PENDING,
            request=None,
            progress=0,
            error_code=0,
            error_details="",
            completion_time=None,
        )
        return True

    done = _change(archive, job_id, fn)
    _wake()
    return done


def delete(archive: Archive, job_id: str) -> bool:
    """Forget a finished job and its outputs (a live job must be cancelled first)."""

    def fn(session: Any, job: dict[str, Any]) -> bool:
        if job["state"] not in FINISHED:
            raise BadSequenceOfCalls(f"Job {job_id} has not finished; cancel it first")
        session.delete_job(job_id)
        return True

    done = _change(archive, job_id, fn)
    if done:
        shutil.rmtree(os.path.join(outputs_folder(archive), job_id), ignore_errors=True)
    return done


def output(archive: Archive, job_id: str, key: str) -> dict[str, Any]:
    """The output ``key`` of a job: ``{"path", "mime", "filename"}``."""
    job = get_job(archive, job_id)
    found = None if job is None else orjson.loads(job["outputs"]).get(key)
    if found is None or not os.path.exists(found["path"]):
        # Orthanc says the same for an unknown job
        raise InexistentItem(f"Job has no such output: {key}")
    return found


def delete_output(archive: Archive, job_id: str, key: str) -> None:
    found = output(archive, job_id, key)

    def fn(session: Any, job: dict[str, Any]) -> bool:
        outputs = orjson.loads(job["outputs"])
        outputs.pop(key, None)
        session.update_job(job_id, outputs=orjson.dumps(outputs).decode())
        return True

    _change(archive, job_id, fn)
    with _suppress_os():
        os.remove(found["path"])


class _suppress_os:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, OSError)


# ---- what a running job sees ---------------------------------------------------
class JobContext:
    """Handed to a job kind: its parameters, a folder for outputs, and checkpoints.

    ``checkpoint`` records progress and raises ``JobStopped`` when a cancel or
    pause was asked; it touches the index at most every ``interval`` seconds, so a
    job may call it for every chunk it produces.
    """

    def __init__(
        self,
        archive: Archive,
        job: dict[str, Any],
        config: Mapping[str, Any],
        interval: float,
        stopping: threading.Event | None = None,
    ) -> None:
        self.archive = archive
        self._stopping = stopping or threading.Event()
        self.config = config
        self.id: str = job["id"]
        self.parameters: dict[str, Any] = orjson.loads(job["parameters"])
        self.content: dict[str, Any] = orjson.loads(job["content"])
        self.outputs: dict[str, dict[str, str]] = {}
        self.folder = os.path.join(outputs_folder(archive), self.id)
        self._interval = interval
        self._last = 0.0

    def checkpoint(self, progress: float, force: bool = False) -> None:
        if self._stopping.is_set():
            raise JobStopped("shutdown")
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        percent = max(0, min(99, int(progress * 100)))

        def fn(tx: Any) -> str | None:
            tx.session.update_job(
                self.id, progress=percent, content=orjson.dumps(self.content).decode()
            )
            job = tx.session.job(self.id)
            return job["request"] if job else "cancel"

        request = self.archive.write(fn)
        if request:
            raise JobStopped(request)

    def add_output(self, key: str, path: str, mime: str, filename: str) -> None:
        self.outputs[key] = {"path": path, "mime": mime, "filename": filename}


#: A job kind: runs the job to completion (or raises), using the context.
JobKind = Callable[[JobContext], None]


# ---- the runner (primary worker only) ------------------------------------------
def concurrent_jobs(config: Mapping[str, Any]) -> int:
    """``ConcurrentJobs`` (default 2); 0 means one per logical core, as in Orthanc."""
    value = int(config.get("ConcurrentJobs", 2) or 0)
    return value if value > 0 else (os.cpu_count() or 1)


class JobRunner:
    def __init__(
        self,
        archive: Archive,
        config: Mapping[str, Any],
        kinds: Mapping[str, JobKind],
        no_jobs: bool = False,
        poll_interval: float = 0.5,
    ) -> None:
        self.archive = archive
        self.config = config
        self.kinds = kinds  # not copied: faces may register kinds at import
        self.no_jobs = no_jobs
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._recover()
        for number in range(concurrent_jobs(self.config)):
            thread = threading.Thread(target=self._loop, name=f"job-runner-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt running jobs at their next checkpoint; they stay Pending for later."""
        self._stop.set()
        _wakeup.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _recover(self) -> None:
        """A restart finds jobs that were running: run them again, or forget them all.

        Like Orthanc, ``--no-jobs`` or ``SaveJobs: false`` start with an empty
        registry, so the saved jobs are dropped rather than left unreachable.
        """
        forget = self.no_jobs or not bool(self.config.get("SaveJobs", True))

        def fn(tx: Any) -> list[str]:
            dropped = []
            for job in tx.session.jobs():
                if forget:
                    tx.session.delete_job(job["id"])
                    dropped.append(job["id"])
                elif job["state"] in (RUNNING, RETRY):
                    tx.session.update_job(job["id"], state=PENDING, request=None)
            return dropped

        for job_id in self.archive.write(fn):
            shutil.rmtree(os.path.join(outputs_folder(self.archive), job_id), ignore_errors=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._claim()
            except Exception:
                log.exception("cannot look for pending jobs")
                job_id = None
            if job_id is None:
                _wakeup.wait(self.poll_interval)
                _wakeup.clear()
                continue
            self._run(job_id)

    def _claim(self) -> str | None:
        # Looked for first without the write lock: the runners poll all the time,
        # and most polls find nothing, so they need not queue behind the writers.
        with self.archive.index.autocommit() as session:
            if session.next_pending_job() is None:
                return None

        def fn(tx: Any) -> str | None:
            job_id = tx.session.next_pending_job()
            if job_id is None or not tx.session.claim_job(job_id, PENDING, RUNNING):
                return None
            tx.session.update_job(job_id, request=None)
            return job_id

        return self.archive.write(fn)

    def _run(self, job_id: str) -> None:
        job = get_job(self.archive, job_id)
        if job is None:
            return
        context = JobContext(self.archive, job, self.config, 0.2, self._stop)
        started = time.monotonic()
        state, code, details = SUCCESS, 0, ""
        try:
            kind = self.kinds.get(job["type"])
            if kind is None:
                raise InexistentItem(f"Unknown job type: {job['type']}")
            if self._stop.is_set():
                raise JobStopped("shutdown")
            kind(context)
        except JobStopped as stopped:
            if stopped.request == "pause":
                state = PAUSED
            elif stopped.request == "shutdown":
                state = PENDING
            else:
                state, code = FAILURE, CanceledJob.code
        except DicomhubError as exc:
            state, code, details = FAILURE, exc.code, exc.details or ""
        except Exception as exc:  # a job's bug fails the job, never the runner
            log.exception("job %s failed", job_id)
            state, code, details = FAILURE, -1, str(exc)
        if state != SUCCESS:
            shutil.rmtree(context.folder, ignore_errors=True)
        runtime = int((time.monotonic() - started) * 1000)
        self._finish(job_id, context, state, code, details, runtime)

    def _finish(
        self, job_id: str, context: JobContext, state: str, code: int, details: str, ms: int
    ) -> None:
        def fn(tx: Any) -> list[str]:
            if state in FINISHED:
                done = ChangeType.JobSuccess if state == SUCCESS else ChangeType.JobFailure
                _announce(self.archive, tx, job_id, done)
            job = tx.session.job(job_id)
            if job is None:
                return []
            values: dict[str, Any] = {
                "state": state,
                "request": None,
                "error_code": code,
                "error_details": details,
                "runtime": job["runtime"] + ms,
                "content": orjson.dumps(context.content).decode(),
            }
            if state == SUCCESS:
                values["progress"] = 100
                values["outputs"] = orjson.dumps(context.outputs).decode()
            if state in FINISHED:
                values["completion_time"] = job_time()
            tx.session.update_job(job_id, **values)
            return prune(self.archive, tx.session, self.config)

        for folder in self.archive.write(fn):
            shutil.rmtree(folder, ignore_errors=True)


def prune(archive: Archive, session: Any, config: Mapping[str, Any]) -> list[str]:
    """Keep ``JobsHistorySize`` finished jobs and ``MediaArchiveSize`` archives; the
    output folders to remove once the transaction is committed."""
    history_size = int(config.get("JobsHistorySize", 10))
    media_archive_size = int(config.get("MediaArchiveSize", 1))
    root = outputs_folder(archive)
    finished = [j for j in session.jobs() if j["state"] in FINISHED]
    finished.sort(key=lambda j: j["completion_time"] or "")
    folders: list[str] = []
    excess = len(finished) - max(0, history_size)
    for job in finished[: max(0, excess)]:
        session.delete_job(job["id"])
        folders.append(os.path.join(root, job["id"]))
    kept = finished[max(0, excess) :]
    with_archive = [j for j in kept if "archive" in orjson.loads(j["outputs"])]
    surplus = len(with_archive) - max(0, media_archive_size)
    for job in with_archive[: max(0, surplus)]:
        outputs = orjson.loads(job["outputs"])
        outputs.pop("archive")
        session.update_job(job["id"], outputs=orjson.dumps(outputs).decode())
        folders.append(os.path.join(root, job["id"]))
    return folders
