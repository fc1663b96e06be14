"""Feeding archive events to the Lua callbacks and Python hooks, off the hot path;
and starting scripting (callbacks, and the synchronous filters of ``lua_filters``).

Orthanc runs ``OnStoredInstance``, ``OnStable*`` and friends asynchronously, from a
queue, so a slow script never slows ingest. The event bus calls ``enqueue`` in the
committing thread; one worker thread drains the queue, looks up what the callback
receives (tags, metadata, origin) through the REST face, and calls Lua, then the
Python hooks. A failing callback is logged and the next one still runs.

The bus only carries changes made in this process. With ``HttpWorkers`` > 1 the
primary worker, which runs the callbacks, follows the changes log of the index
instead (``core.change_feed``): every worker's changes reach the scripts, once each,
in the order of the log, as they would in a single process. Job events are not in
that log: the same follower reads them from the index's job events, which every
worker writes with its jobs (``core.jobs.engine``), so ``OnJobSubmitted``,
``OnJobSuccess`` and ``OnJobFailure`` hear of every job, whichever worker took it.

Two events reach the callbacks without being changes (``core.events.SCRIPT_EVENTS``):
the resources a deletion removed (Orthanc calls ``OnDeleted*`` for each of them, and
``/changes`` holds at most the topmost) and an instance stored again (Orthanc calls
``OnStoredInstance`` again, with the new request's origin). The changes log cannot
carry them, so with several workers the others relay theirs to the primary
(``ScriptEventRelay``), over the primary's private socket (``rest/workers.py``), while
the primary's callbacks want changes at all. The primary holds each of them until its
follower has handed over the changes committed before (``follow_log``), so that the
callbacks get them in the order of one process.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..core.change_feed import JOB_CHANGES, ChangeFollower, last_seq
from ..core.enums import ChangeType
from ..core.events import DELETED_RESOURCES, SCRIPT_EVENTS, STORED_AGAIN, Change
from ..core.hooks import hooks_of, origin_json
from ..core.ingest import Origin
from ..core.jobs import engine as jobs_engine
from ..dicom.levels import Level
from .lua import LuaEngine, LuaScriptError
from .lua_filters import install_lua_filters
from .python_hooks import HookApi, PythonHooks, load_python_hooks

log = logging.getLogger("dicomhub.lua")

_TITLES = {
    Level.PATIENT: "Patient",
    Level.STUDY: "Study",
    Level.SERIES: "Series",
    Level.INSTANCE: "Instance",
}
_PLURALS = {
    Level.PATIENT: "patients",
    Level.STUDY: "studies",
    Level.SERIES: "series",
    Level.INSTANCE: "instances",
}
_STABLE = {
    ChangeType.StablePatient: Level.PATIENT,
    ChangeType.StableStudy: Level.STUDY,
    ChangeType.StableSeries: Level.SERIES,
}
_JOBS = {
    ChangeType.JobSubmitted: "OnJobSubmitted",
    ChangeType.JobSuccess: "OnJobSuccess",
    ChangeType.JobFailure: "OnJobFailure",
}
#: Every callback a change of the changes log may call (``_dispatch``).
CHANGE_CALLBACKS: tuple[str, ...] = (
    "OnStoredInstance",
    *("OnStable" + _TITLES[level] for level in _STABLE.values()),
    *("OnDeleted" + title for title in _TITLES.values()),
    *("OnUpdated" + title for title in _TITLES.values()),
)
#: Every callback a job event may call.
JOB_CALLBACKS: tuple[str, ...] = tuple(_JOBS.values())
_STOP = object()
#: Script events held for the changes log (``CallbackDispatcher.follow_log``): how
#: often they are looked at, and how long at most they wait.
HOLD_POLL = 0.2
HOLD_LIMIT = 5.0


@dataclass(frozen=True, slots=True)
class _Released:
    """A held script event, queued again behind the changes committed before it."""

    event: Change


class CallbackDispatcher:
    """Owns the queue thread (and the heartbeat) that call into Lua."""

    def __init__(
        self, engine: LuaEngine, heartbeat_period: float = 0, python: PythonHooks | None = None
    ) -> None:
        self.engine = engine
        self.python = python
        self.heartbeat_period = heartbeat_period
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dicomhub-lua", daemon=True)
        self._heartbeat: threading.Thread | None = None
        #: (Lua generation, whether a change callback was defined then, whether a job
        #: callback was); None: unknown.
        self._interest: tuple[int, bool, bool] | None = None
        # Several workers (``follow_log``): where the changes log ends now, where the
        # follower is in it, the last change it handed over, and the script events
        # waiting for it as ``(log end when taken, when taken, event)``.
        self._log_end: Callable[[], int] | None = None
        self._log_cursor: Callable[[], int] = lambda: 0
        self._delivered = 0
        self._held: collections.deque[tuple[int, float, Change]] = collections.deque()

    def follow_log(self, log_end: Callable[[], int], cursor: Callable[[], int]) -> None:
        """Several workers: the changes reach ``enqueue_logged`` from the changes log,
        the script events ``enqueue`` straight from a bus. A script event is held
        until the follower has handed over every change committed before it reached
        this dispatcher, so that the callbacks see them in the order they happened
        (an instance stored, then deleted or stored again; ``OverwriteInstances``: the
        new copy stored, then the replaced one deleted), as with one process."""
        self._log_end, self._log_cursor = log_end, cursor
        self._delivered = cursor()  # the follower's start: nothing older comes

    def enqueue_logged(self, change: Change) -> None:
        """``enqueue`` for the change follower (``follow_log``): also notes how far
        in the log it has handed changes over."""
        self.enqueue(change)
        self._delivered = self._log_cursor()  # the cursor is this change's by now

    def start(self) -> None:
        self._check_interest()
        self._thread.start()
        if self.heartbeat_period > 0:
            self._heartbeat = threading.Thread(
                target=self._beat, name="dicomhub-lua-heartbeat", daemon=True
            )
            self._heartbeat.start()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._heartbeat:
            self._heartbeat.join(timeout)

    def enqueue(self, change: Change) -> None:
        """The event bus listener: must stay cheap, it runs in the committing thread."""
        if self._stopping.is_set():
            return
        if change.change_type in JOB_CHANGES:
            wanted = self.may_want_jobs()
        else:
            wanted = self.may_want_changes()
        if wanted:
            self._queue.put(change)

    def may_want_changes(self) -> bool:
        """False only when neither Lua nor a Python hook defines any callback of a
        change, as last checked, and no Lua code ran since: the changes are then not
        even queued (most servers have no such script). Lock-free, for the committing
        thread: a run of Lua code makes it True until the dispatcher checks again."""
        known = self._interest
        return known is None or known[0] != self.engine.generation or known[1]

    def may_want_jobs(self) -> bool:
        """As ``may_want_changes``, for the job callbacks and the job events."""
        known = self._interest
        return known is None or known[0] != self.engine.generation or known[2]

    def _check_interest(self) -> None:
        """In the dispatcher thread: whether any change or job callback is defined now."""
        generation = self.engine.generation
        changes = any(self._wanted(name) for name in CHANGE_CALLBACKS)
        jobs = any(self._wanted(name) for name in JOB_CALLBACKS)
        self._interest = (generation, changes, jobs)

    def _beat(self) -> None:
        while not self._stopping.wait(self.heartbeat_period):
            self._queue.put("OnHeartBeat")

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=HOLD_POLL if self._held else None)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                if isinstance(item, _Released):
                    self._dispatch(item.event)
                elif isinstance(item, str):
                    self._safe_call(item)
                elif item is not None and not self._hold(item):
                    self._dispatch(item)
            except Exception:
                log.exception("Lua callback failed for %s", item)
            self._release()
            if self._queue.empty() and not self._held:
                self._check_interest()

    def _hold(self, change: Change) -> bool:
        """A script event, with several workers: held (``follow_log``)."""
        if self._log_end is None or change.change_type not in SCRIPT_EVENTS:
            return False
        try:
            target = self._log_end()
        except Exception:
            log.exception("Cannot read the end of the changes log")
            target = 0  # not held: better early than never
        self._held.append((target, time.monotonic(), change))
        return True

    def _release(self) -> None:
        """Queues again, in order, the held script events whose earlier changes the
        follower has handed over by now: those are in the queue ahead of them. The
        follower's cursor alone may run a moment ahead of its hand-over, so it is
        trusted only after ``HOLD_POLL``; after ``HOLD_LIMIT`` (a follower that
        waits on a hole of the log) an event goes anyway."""
        while self._held:
            target, since, change = self._held[0]
            waited = time.monotonic() - since
            if not (
                self._delivered >= target
                or (waited >= HOLD_POLL and self._log_cursor() >= target)
                or waited >= HOLD_LIMIT
            ):
                return
            self._held.popleft()
            self._queue.put(_Released(change))

    def _wanted(self, name: str) -> bool:
        """Whether Lua or a Python hook defines the callback (before paying for its
        arguments)."""
        return self.engine.has_function(name) or (
            self.python is not None and self.python.has_function(name)
        )

    def _safe_call(self, name: str, *args: Any) -> None:
        try:
            self.engine.call(name, *args)
        except LuaScriptError as exc:
            log.error("Error in the Lua callback %s(): %s", name, exc.message)
        if self.python is not None:
            self.python.call(name, *args)

    def _dispatch(self, change: Change) -> None:
        if change.change_type == DELETED_RESOURCES:
            for level, public_id in change.details or ():
                name = "OnDeleted" + _TITLES[Level(level)]
                if self._wanted(name):
                    self._safe_call(name, public_id)
            return
        if change.change_type == STORED_AGAIN:
            if self._wanted("OnStoredInstance"):
                self._stored(change.public_id, change.details)
            return
        kind = ChangeType(change.change_type)
        level = Level(change.level) if change.level in iter(Level) else None
        if kind == ChangeType.NewInstance:
            if self._wanted("OnStoredInstance"):
                self._stored(change.public_id)
        elif kind in _STABLE:
            name = "OnStable" + _TITLES[_STABLE[kind]]
            if self._wanted(name):
                tags, metadata = self._resource(_STABLE[kind], change.public_id)
                if tags is not None:
                    self._safe_call(name, change.public_id, tags, metadata)
        # ``Deleted``: the deletion's ``DELETED_RESOURCES`` event calls back, for
        # every resource it removed (the change names the topmost one only).
        elif (
            kind in (ChangeType.UpdatedAttachment, ChangeType.UpdatedMetadata) and level is not None
        ):
            self._safe_call("OnUpdated" + _TITLES[level], change.public_id)
        elif kind in _JOBS:
            self._safe_call(_JOBS[kind], change.public_id)

    def _get_json(self, uri: str) -> Any:
        status, body = self.engine.rest.request("GET", uri)
        return json.loads(body) if status == 200 else None

    def _stored(self, instance_id: str, origin: dict[str, str] | None = None) -> None:
        """``OnStoredInstance`` for ``instance_id``: its stored tags and metadata, and
        ``origin`` (an instance stored again: the new request's), else the one of its
        metadata."""
        tags = None
        for attempt in range(5):
            # The event fires on commit; the file may be moving from staging just then.
            tags = self._get_json(f"/instances/{instance_id}/simplified-tags")
            if tags is not None or self._get_json(f"/instances/{instance_id}") is None:
                break
            time.sleep(0.05 * (attempt + 1))
        if tags is None:
            return  # deleted meanwhile: Orthanc would not call back either
        metadata = self._get_json(f"/instances/{instance_id}/metadata?expand") or {}
        if origin is None:
            origin = _origin(metadata)
        self._safe_call("OnStoredInstance", instance_id, tags, metadata, origin)

    def _resource(self, level: Level, public_id: str) -> tuple[Any, Any]:
        plural = _PLURALS[level]
        resource = self._get_json(f"/{plural}/{public_id}")
        if resource is None:
            return None, None
        tags = dict(resource.get("MainDicomTags") or {})  # the level's own, as Orthanc
        metadata = self._get_json(f"/{plural}/{public_id}/metadata?expand") or {}
        return tags, metadata


def _origin(metadata: dict[str, Any]) -> dict[str, str]:
    """The ``origin`` argument of OnStoredInstance, rebuilt from the stored metadata
    in the shape Orthanc gives it (and the instance filters get)."""
    return origin_json(
        Origin(
            origin=metadata.get("Origin", "Unknown"),
            remote_ip=metadata.get("RemoteIP", ""),
            remote_aet=metadata.get("RemoteAET", ""),
            called_aet=metadata.get("CalledAET", ""),
            http_username=metadata.get("HttpUsername", ""),
        )
    )


class Scripting:
    """What ``server.py`` starts in each worker and stops at shut-down: the filters
    everywhere, the callbacks (``engine``, ``dispatcher``) in the primary worker."""

    def __init__(
        self,
        archive: Any,
        engine: LuaEngine | None,
        dispatcher: CallbackDispatcher | None,
        filter_engine: LuaEngine | None = None,
        removers: list[Callable[[], None]] | None = None,
        python: PythonHooks | None = None,
        follower: ChangeFollower | None = None,
    ) -> None:
        self.archive = archive
        self.engine = engine
        self.dispatcher = dispatcher
        self.filter_engine = filter_engine
        self.removers = removers or []
        self.python = python
        self.follower = follower

    def stop(self) -> None:
        for remove in self.removers:
            remove()
        if self.follower is not None:
            self.archive.events.unsubscribe(self.follower.wake)
            if self.follower.wake_jobs in jobs_engine.event_listeners:
                jobs_engine.event_listeners.remove(self.follower.wake_jobs)
            self.follower.stop()
        if self.dispatcher is not None:
            self.archive.events.unsubscribe(self.dispatcher.enqueue)
            self.dispatcher.stop()
        if self.engine is not None:
            try:
                self.engine.call("Finalize")
            except LuaScriptError as exc:
                log.error("Error in the Lua callback Finalize(): %s", exc.message)
            if self.python is not None:
                self.python.call("Finalize")
            self.engine.close()
        if self.filter_engine is not None:
            self.filter_engine.close()


def _script_paths(config: Any) -> list[str]:
    scripts = config.get("LuaScripts") or []
    return [scripts] if isinstance(scripts, str) else [str(s) for s in scripts]


def start_filters(archive: Any, app: Any, config: Any) -> tuple[LuaEngine | None, list[Any]]:
    """The filters' Lua state (Orthanc keeps one apart from the callbacks'), loaded
    with the configured scripts, and its filters registered into ``core.hooks``."""
    scripts = _script_paths(config)
    if not scripts:
        return None, []
    engine = LuaEngine(without_access_control(app), config)
    for path in scripts:
        engine.load_file(path)
    removers = install_lua_filters(engine, hooks_of(archive))
    if not removers:
        engine.close()
        return None, []
    return engine, removers


def start_scripting(
    archive: Any,
    app: Any,
    config: Any,
    primary: bool = True,
    follow_changes_from: int | None = None,
    follow_changes: bool = False,
) -> Scripting:
    """Installs the filters (Lua and Python hooks); in the primary worker also loads
    ``LuaScripts`` for the callbacks, calls ``Initialize`` and subscribes the callbacks
    of both to the events, through one queue.

    ``follow_changes`` (several HTTP workers): the callbacks are fed from the changes
    log, after ``follow_changes_from`` (default: the newest change now), and from the
    job events, after the newest now, rather than from this process's bus, so that
    the other workers' changes and jobs reach them too.
    """
    filter_engine, removers = start_filters(archive, app, config)
    python = load_python_hooks(config)
    if python is not None:
        removers += python.install_filters(hooks_of(archive))
    group = getattr(starlette_app(app).state, "workers", None)
    if not primary:
        if group is not None and (_script_paths(config) or python is not None):
            relay = ScriptEventRelay(group.socket_path(0), _nudge_flag(group.folder))
            archive.events.subscribe(relay.publish)
            removers.append(lambda: (archive.events.unsubscribe(relay.publish), relay.stop()))
        return Scripting(archive, None, None, filter_engine, removers, python)
    engine = LuaEngine(without_access_control(app), config)
    for path in _script_paths(config):
        engine.load_file(path)
    dispatcher = CallbackDispatcher(engine, float(config.get("LuaHeartBeatPeriod", 0) or 0), python)
    dispatcher.start()
    try:
        engine.call("Initialize")
    except LuaScriptError as exc:
        log.error("Error in the Lua callback Initialize(): %s", exc.message)
    if python is not None:
        python.initialize(HookApi(engine.rest, config))
    follower = None
    if follow_changes:
        follower = ChangeFollower(
            archive,
            dispatcher.enqueue_logged,
            follow_changes_from,
            wanted=dispatcher.may_want_changes,
        )
        dispatcher.follow_log(partial(last_seq, archive), lambda: follower.cursor)
        # Job events are not in the changes log: they have their own (``core.jobs``).
        follower.follow_jobs(dispatcher.enqueue, wanted=dispatcher.may_want_jobs)
        # This worker's changes and job events: read at once; the other workers'
        # jobs: at their nudge (``wake_runner``).
        archive.events.subscribe(follower.wake)
        jobs_engine.event_listeners.append(follower.wake_jobs)
        follower.start()

        # This worker's script events are not in the changes log: from its bus.
        def script_events(change: Change) -> None:
            if change.change_type in SCRIPT_EVENTS:
                dispatcher.enqueue(change)

        archive.events.subscribe(script_events)
        removers.append(lambda: archive.events.unsubscribe(script_events))
    else:
        archive.events.subscribe(dispatcher.enqueue)
    starlette_app(app).state.lua = engine
    starlette_app(app).state.lua_dispatcher = dispatcher
    return Scripting(archive, engine, dispatcher, filter_engine, removers, python, follower)


#: Header of a request that carries another worker's script events to the primary
#: (``ScriptEventRelay``; honoured only on the primary's private socket).
SCRIPT_EVENTS_HEADER = "x-dicomhub-script-events"
#: Where the relay posts them (``rest/scripting.py``): a route the primary serves.
SCRIPT_EVENTS_URI = "/tools/execute-script"


def _nudge_flag(folder: str) -> str:
    """The file whose presence says that the primary's callbacks want changes now
    (``core.nudges``, ``server._start_nudges``)."""
    from ..core.nudges import CHANGES, flag_path

    return flag_path(os.path.join(folder, "nudges.sock"), CHANGES)


def events_to_json(events: list[Change]) -> bytes:
    return json.dumps(
        [[c.change_type, c.level, c.public_id, c.date, c.details] for c in events]
    ).encode()


def events_from_json(body: bytes) -> list[Change]:
    """What ``events_to_json`` wrote: script events only (anything else is ignored)."""
    events = []
    for item in json.loads(body):
        kind, level, public_id, date, details = item
        if kind == DELETED_RESOURCES:
            details = tuple((int(lv), str(i)) for lv, i in details)
        elif kind != STORED_AGAIN:
            continue
        events.append(Change(int(kind), int(level), str(public_id), str(date), details))
    return events


class ScriptEventRelay:
    """In a worker other than the primary: hands the script events of this worker's
    bus (``core.events.SCRIPT_EVENTS``) to the primary, whose callbacks the changes
    log cannot tell of them. A thread posts them in batches, in order, to the
    primary's private socket, while the primary's callbacks want changes (its nudge
    flag); a primary that cannot be reached for ``TIMEOUT`` seconds loses them (logged).
    """

    TIMEOUT = 10.0
    BATCH = 500

    def __init__(self, socket_path: str, flag: str) -> None:
        self.socket_path = socket_path
        self.flag = flag
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="dicomhub-relay", daemon=True)
        self._thread.start()

    def publish(self, change: Change) -> None:
        """The event bus listener (cheap: it runs in the committing thread)."""
        if change.change_type in SCRIPT_EVENTS and os.path.exists(self.flag):
            self._queue.put(change)

    def stop(self, timeout: float = 5) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.BATCH and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is _STOP
            events = [c for c in batch if c is not _STOP]
            if events:
                self._send(events)
            if stop:
                return

    def _send(self, events: list[Change]) -> None:
        import httpx

        body = events_to_json(events)
        headers = {SCRIPT_EVENTS_HEADER: "1", "content-type": "application/json"}
        deadline = time.monotonic() + self.TIMEOUT
        while True:
            try:
                transport = httpx.HTTPTransport(uds=self.socket_path)
                with httpx.Client(transport=transport, timeout=self.TIMEOUT) as client:
                    answer = client.post(
                        "http://worker" + SCRIPT_EVENTS_URI, content=body, headers=headers
                    )
                if answer.status_code != 200:
                    log.warning("The primary worker refused %d script events", len(events))
                return
            except (httpx.TransportError, OSError) as exc:
                if time.monotonic() > deadline:
                    log.warning("Cannot hand %d script events to the primary: %s", len(events), exc)
                    return
                time.sleep(0.1)


def without_access_control(app: Any) -> Any:
    """Scripts are trusted as Orthanc's are: skip remote-access and password checks."""
    return app.app if hasattr(app, "policy") else app


def starlette_app(app: Any) -> Any:
    while not hasattr(app, "state") and hasattr(app, "app"):
        app = app.app
    return app
