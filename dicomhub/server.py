"""Building and running the server from a configuration.

The HTTP listener runs on uvicorn (uvloop + httptools); ``core`` is synchronous and
is reached from handlers through Starlette's thread pool.

Python runs one thread at a time per process, so to use several cores dicomhub can
run ``HttpWorkers`` processes, to which a supervisor hands the connections it accepts
(``rest/dispatch.py``). They share everything
through the index and the storage area (as replicas would): the parent prepares the
index and finishes interrupted writes before any worker starts, and the first worker
also runs the background duties (stability, the DICOM listener, jobs, the scripts'
callbacks, which follow the changes log of the index so that they see every worker's
changes). The few routes whose effect lives in a process reach the right one(s) over
private sockets (``rest/workers.py``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from .config import ConfigurationError
from .core.archive import Archive
from .core.settings import Settings
from .core.stability import StabilityMonitor
from .core.startup_checks import check_configuration
from .net.scp import dicom_port_problem

log = logging.getLogger("dicomhub.server")

EXIT_PORT_IN_USE = 2
EXIT_STARTUP_FAILURE = 1
#: A configured Lua script failed to load: Orthanc stops with an uncaught exception
#: then (exit status 255, as the command line's own errors).
EXIT_SCRIPT_FAILURE = 255


def build(config: Mapping[str, Any], recover: bool = True) -> tuple[Archive, Any]:
    from .rest.app import create_app

    archive = Archive(Settings.from_config(config), recover=recover)
    return archive, create_app(archive, config)


def _bind(host: str, port: int) -> socket.socket:
    """The HTTP socket: the one process's, or the supervisor's, which accepts the
    connections and hands them to the workers (``rest/dispatch.py``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def http_workers(config: Mapping[str, Any]) -> int:
    return Settings.from_config(config).http_workers


def serve(config: Mapping[str, Any], no_jobs: bool = False) -> int:
    port = int(config.get("HttpPort", 8042) or 8042)
    remote = bool(config.get("RemoteAccessAllowed", False))
    host = str(config.get("HttpBindAddress") or ("0.0.0.0" if remote else "127.0.0.1"))
    workers = http_workers(config)
    check_configuration(config)  # what Orthanc refuses to start with (exit 255)
    try:
        sock = _bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.error("The TCP port of the HTTP server is already in use: %s:%d", host, port)
            return EXIT_PORT_IN_USE
        log.error("Cannot open the HTTP port %s:%d: %s", host, port, exc)
        return EXIT_STARTUP_FAILURE
    problem = dicom_port_problem(config)
    if problem is not None:
        log.error("%s", problem)
        sock.close()
        return EXIT_PORT_IN_USE

    changes_from: int | None = None
    try:
        if workers == 1:
            archive, app = build(config)
        else:
            # Schema and crash recovery once, before any worker may write; and where the
            # primary's callbacks start following the changes log (nothing older).
            from .core.change_feed import last_seq

            archive = Archive(Settings.from_config(config))
            changes_from = last_seq(archive)
            archive.close()
    except ConfigurationError:
        sock.close()
        raise  # the command line reports it and exits 255, as for any bad option
    except Exception as exc:
        log.error("Cannot start the server: %s", exc)
        sock.close()
        return EXIT_STARTUP_FAILURE

    # As Orthanc, at the default level: where the data is, what listens, start and stop.
    log.warning("Storage directory: %s", os.path.abspath(str(config.get("StorageDirectory"))))
    log.warning("Index directory: %s", os.path.abspath(str(config.get("IndexDirectory"))))
    log.warning(
        "HTTP server listening on port: %d (HTTPS encryption is disabled, remote access is "
        "%s, %d worker(s))",
        port,
        "allowed" if remote else "not allowed",
        workers,
    )
    try:
        if workers == 1:
            return _run_worker(sock, config, archive, app, primary=True, no_jobs=no_jobs)
        return _supervise(sock, config, workers, no_jobs, changes_from)
    finally:
        sock.close()
        log.warning("dicomhub has stopped")


def _run_worker(
    sock: socket.socket | None,
    config: Mapping[str, Any],
    archive: Archive,
    app: Any,
    primary: bool,
    no_jobs: bool = False,
    group: Any = None,
    changes_from: int | None = None,
) -> int:
    import uvicorn

    from .scripting.callbacks import starlette_app, start_scripting
    from .scripting.lua import LuaLoadError

    sockets, served = [] if sock is None else [sock], app
    if group is not None:  # one of several workers: ``rest/workers.py``
        from .rest.workers import PrivateChannel

        routes_app = starlette_app(app)
        routes_app.state.workers = group
        group.routes_app = routes_app
        served = PrivateChannel(app, routes_app, group.socket_path(group.index))
        if primary:
            sockets.append(group.join())
    monitor = StabilityMonitor(archive) if primary else None
    if monitor:
        monitor.start()
    if primary:  # the index's log, copied back beside the writers of every worker
        archive.index.checkpoint_in_background()

    # Filters in every worker (they guard HTTP and ingest), before any listener opens.
    try:
        scripting = start_scripting(
            archive,
            app,
            config,
            primary=primary,
            follow_changes_from=changes_from,
            follow_changes=group is not None,
        )
    except LuaLoadError as exc:
        # As Orthanc: no server without its scripts (it would run without the filters
        # they define, open where the administrator expected it locked).
        # (``load_file`` logged the script and Lua's message.)
        log.error("Stopping at start-up: [%s] (code %d)", exc.name, exc.code)
        if monitor:
            monitor.stop()
        archive.close()
        return EXIT_SCRIPT_FAILURE
    from .net.scp import start_listener

    listener = start_listener(archive, config) if primary else None
    from .core.jobs import start_runner

    jobs = start_runner(archive, config, no_jobs) if primary else None
    stop_nudges = None
    if primary:
        log.warning("dicomhub has started")
    if group is not None:
        stop_nudges = _start_nudges(archive, group, scripting)
        if primary:
            group.mark_ready()
        else:
            # As a single process serves nothing before ``Initialize`` has run, the
            # other workers wait for the primary (whose start-up may send them
            # settings: they join the group only now, and read those from the record).
            group.wait_ready()
            sockets.append(group.join())
    from .rest.dispatch import uvicorn_server
    from .rest.http_protocol import HttpProtocol

    server = uvicorn_server(
        uvicorn.Config(
            served,
            loop="uvloop",
            http=HttpProtocol,
            access_log=False,
            log_config=None,
            # Orthanc trusts no X-Forwarded-For: the remote-access rule sees the peer.
            proxy_headers=False,
            # Orthanc names no server in its answers; "uvicorn" told clients nothing useful.
            server_header=False,
            timeout_keep_alive=int(config.get("KeepAliveTimeout", 5) or 5),
        ),
        None if group is None else group.dispatch_path,
    )
    # uvicorn re-raises the SIGTERM it handled once it has drained the requests; with
    # the default handler that killed the process before the clean-up below (so Lua's
    # Finalize never ran). This handler only asks the server to stop: raising from it
    # could land inside the event loop's own start-up, failing the worker.
    signal.signal(signal.SIGTERM, partial(_terminated, server))
    if primary and not _supervised:
        # POST /tools/reset: stop like a shutdown, then ``cli`` starts dicomhub again.
        def restart(_signum: int, _frame: object) -> None:
            _request_restart()
            server.should_exit = True

        signal.signal(signal.SIGHUP, restart)
    try:
        server.run(sockets=sockets)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
        if monitor:
            monitor.stop()
        if listener:
            listener.stop()
        if jobs:
            jobs.stop()
        if stop_nudges:
            stop_nudges()
        if scripting:
            scripting.stop()
        archive.close()
    return 0


def _start_nudges(archive: Archive, group: Any, scripting: Any) -> Callable[[], None]:
    """Several workers: the others wake the primary's callbacks and job runner as soon
    as they commit a change or submit a job (``core.nudges``); answers the stop."""
    from .core import nudges
    from .core.jobs import engine as jobs_engine

    path = os.path.join(group.folder, "nudges.sock")
    if group.primary:
        targets = {nudges.JOBS: jobs_engine.wake_runner}
        follower = scripting.follower
        if follower is not None:
            targets[nudges.CHANGES] = follower.wake
        receiver = nudges.NudgeListener(path, targets)
        receiver.start()
        if follower is None:
            return receiver.stop
        # Changes are nudged only while a callback follows them.
        follower.on_interest = lambda wanted: receiver.want(nudges.CHANGES, wanted)

        def stop_listening() -> None:
            follower.on_interest = None
            receiver.stop()

        return stop_listening
    sender = nudges.NudgeSender(path)

    def changed(_change: object) -> None:
        sender.send(nudges.CHANGES)

    archive.events.subscribe(changed)
    jobs_engine.remote_wakeup = lambda: sender.send(nudges.JOBS)

    def stop() -> None:
        archive.events.unsubscribe(changed)
        jobs_engine.remote_wakeup = None
        sender.close()

    return stop


def _end_with_parent(supervisor: int) -> None:
    """A worker stops when its supervisor dies, even of SIGKILL (which it cannot pass
    on): a single process killed that way leaves nothing behind, neither should
    several. Linux only (prctl PR_SET_PDEATHSIG); elsewhere, nothing is set up."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


PR_SET_PDEATHSIG = 1


_restart = False
_supervised = False  # this process is a worker forked by ``_supervise``


def _request_restart() -> None:
    global _restart
    log.warning("Restart requested: stopping, then starting again with the configuration")
    _restart = True


def restart_requested() -> bool:
    """Whether the server stopped to start again (``POST /tools/reset``, SIGHUP)."""
    return _restart


def _terminated(server: Any, _signum: int, _frame: object) -> None:
    """SIGTERM: stop serving (uvicorn drains the requests), then clean up."""
    server.should_exit = True


def _supervise(
    sock: socket.socket,
    config: Mapping[str, Any],
    workers: int,
    no_jobs: bool = False,
    changes_from: int | None = None,
) -> int:
    # The workers' private sockets and the run's settings (mode 0700; short path, as
    # Unix socket paths are limited to about 100 bytes).
    folder = tempfile.mkdtemp(prefix="dicomhub-")
    try:
        return _supervise_in(sock, config, workers, no_jobs, changes_from, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _share_with_workers() -> None:
    """Before the workers are forked: import what every worker imports, and exempt
    what exists by then from the garbage collector.

    A forked worker shares its parent's memory until it writes to it, and CPython
    writes to every object the collector examines. Frozen, the modules' objects stay
    shared among the workers, instead of being copied into each one (measured: each
    worker held about 48 MiB of its own right after start-up).
    """
    import gc

    import uvicorn.protocols.http.httptools_impl  # noqa: F401
    import uvloop  # noqa: F401

    from .net import scp  # noqa: F401
    from .rest import app, http_protocol  # noqa: F401
    from .scripting import callbacks  # noqa: F401

    gc.collect()
    gc.freeze()


def _supervise_in(
    sock: socket.socket,
    config: Mapping[str, Any],
    workers: int,
    no_jobs: bool,
    changes_from: int | None,
    folder: str,
) -> int:
    from .rest.dispatch import ConnectionDispatcher
    from .rest.workers import WorkerGroup

    children: dict[int, int] = {}
    started: set[int] = set()

    def spawn(index: int) -> None:
        # A primary started again follows the log from its newest change (as a
        # restarted server would) rather than replaying what its predecessor did.
        follow_from = None if index in started else changes_from
        started.add(index)
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            global _supervised
            _supervised = True
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _end_with_parent(supervisor)
                dispatcher.forget()  # the supervisor's: it accepts, workers are handed
                sock.close()
                archive, app = build(config, recover=False)
                code = _run_worker(
                    None,
                    config,
                    archive,
                    app,
                    primary=index == 0,
                    no_jobs=no_jobs,
                    group=WorkerGroup(folder, index, workers),
                    changes_from=follow_from,
                )
            except BaseException:
                log.exception("HTTP worker %d failed", index)
            finally:
                os._exit(code)
        children[pid] = index

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def restart(signum: int, frame: object) -> None:
        _request_restart()
        stop(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, restart)
    dispatcher = ConnectionDispatcher(sock, WorkerGroup.dispatch_path_in(folder))
    dispatcher.start()
    _share_with_workers()
    for index in range(workers):
        spawn(index)
    exit_code = 0
    try:
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            index = children.pop(pid, None)
            if index is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == EXIT_SCRIPT_FAILURE:
                # A script that fails to load fails again: stop, as a single process does.
                if not stopping:
                    log.error("HTTP worker %d could not load the Lua scripts; stopping", index)
                    stop(signal.SIGTERM, None)
                exit_code = EXIT_SCRIPT_FAILURE
            elif not stopping:
                log.error("HTTP worker %d exited unexpectedly (%s); restarting it", index, status)
                spawn(index)
            elif code not in (0, -signal.SIGTERM) and exit_code == 0:
                exit_code = 1
    finally:
        dispatcher.stop()
    return exit_code
