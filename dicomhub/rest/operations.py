"""Operations endpoints: plugins, log levels, metrics, shutdown, reset, conformance.

Behaviour observed on Orthanc 1.10.1: ``/plugins`` of a server without plugins
lists only the pseudo-plugin ``explorer.js`` (the explorer's extension script, an
empty comment then); ``PUT /tools/log-level`` and ``PUT /tools/metrics`` answer an
empty text body; a verbosity other than default/verbose/trace is "Parameter out of
range" (400), a metrics flag that is not a Boolean "Bad file format" (400); with
metrics disabled the Prometheus scrape is an empty 200; shutdown and reset answer
``{}``.

Log levels and the metrics switch live in the process, as in Orthanc (forgotten at
restart): with several HTTP workers a change is applied by every worker
(``rest/workers.py``), so that any worker answers what was set; the Prometheus
scrape adds up the requests counted by every worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

from pynetdicom.sop_class import uid_to_service_class
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core import reading
from ..core.errors import BadFileFormat, ParameterOutOfRange
from ..core.metrics import HttpMetrics, prometheus_text
from ..core.metrics_merge import merge_scrapes
from ..core.settings import http_workers
from ..logs import CATEGORIES, quiet_third_parties
from .common import archive_of
from .responses import json_response, text_response
from .workers import group_of

log = logging.getLogger("dicomhub.rest.operations")

_VERBOSITIES = {"default": logging.WARNING, "verbose": logging.INFO, "trace": logging.DEBUG}


# ---- metrics middleware -------------------------------------------------------------
class MetricsMiddleware:
    """Times every HTTP request for the latency histograms and the in-flight gauge.

    Pure ASGI (no BaseHTTPMiddleware) so that streamed answers are not buffered and
    the cost stays at two clock reads and a histogram update. It also keeps the
    connection open after an error that was answered in full.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        status = 500
        answered = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body", False):
                answered = True
            await send(message)

        start = time.perf_counter()
        metrics.started()
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Starlette raises an error again after its handler has answered (and
            # logged) it; the server would then close the connection, and the
            # client's next request on it would meet a reset. Orthanc keeps the
            # connection after an error: so does a complete answer here.
            if not answered:
                raise
        finally:
            metrics.finished(scope["method"], status, time.perf_counter() - start)


def instrument(app: Any, config: Mapping[str, Any], inner: ASGIApp | None = None) -> ASGIApp:
    """Wrap the Starlette ``app`` (or ``inner``, a layer around it) with the metrics
    middleware (see ``rest/app.py``)."""
    metrics = HttpMetrics()
    metrics.enabled = bool(config.get("MetricsEnabled", True))
    app.state.metrics = metrics
    return MetricsMiddleware(inner or app, metrics)


def _metrics(request: Request) -> HttpMetrics:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:  # an app built without ``instrument``
        metrics = request.app.state.metrics = HttpMetrics()
    return metrics


# ---- plugins --------------------------------------------------------------------------
_EXPLORER_JS = "// dicomhub runs no plugin: nothing extends the explorer\n"


async def list_plugins(request: Request) -> Response:
    return json_response(["explorer.js"])


async def get_plugin(request: Request) -> Response:
    if request.path_params["name"] == "explorer.js":
        return Response(_EXPLORER_JS, media_type="application/javascript")
    return Response(status_code=404)


# ---- log levels -----------------------------------------------------------------------
def _verbosity_of(logger_name: str) -> str:
    level = logging.getLogger(logger_name).getEffectiveLevel()
    if level <= logging.DEBUG:
        return "trace"
    if level <= logging.INFO:
        return "verbose"
    return "default"


def _parse_verbosity(body: bytes) -> int:
    value = body.decode("utf-8", "replace").strip()
    if value not in _VERBOSITIES:
        raise ParameterOutOfRange(f'The log level must be "default", "verbose" or "trace": {value}')
    return _VERBOSITIES[value]


def _set_category(category: str, level: int) -> None:
    for name in CATEGORIES[category]:
        logging.getLogger(name).setLevel(level)


async def get_log_level(request: Request) -> Response:
    return text_response(_verbosity_of("dicomhub"))


async def put_log_level(request: Request) -> Response:
    body = await request.body()
    level = _parse_verbosity(body)
    if group := group_of(request):
        return await group.apply_everywhere(request, body)
    for category in CATEGORIES:
        _set_category(category, level)
    quiet_third_parties(level > logging.DEBUG)  # pydicom's decoder reports: trace only
    log.info("Log level set to %s", logging.getLevelName(level))
    return text_response("")


def _category_routes(category: str) -> list[Route]:
    first = CATEGORIES[category][0]

    async def get_level(request: Request) -> Response:
        return text_response(_verbosity_of(first))

    async def put_level(request: Request) -> Response:
        body = await request.body()
        level = _parse_verbosity(body)
        if group := group_of(request):
            return await group.apply_everywhere(request, body)
        _set_category(category, level)
        log.info("Log level of category %s set to %s", category, logging.getLevelName(level))
        return text_response("")

    path = f"/tools/log-level-{category}"
    return [
        Route(path, get_level, methods=["GET"], name=f"get-log-level-{category}"),
        Route(path, put_level, methods=["PUT"], name=f"put-log-level-{category}"),
    ]


# ---- metrics --------------------------------------------------------------------------
async def get_metrics(request: Request) -> Response:
    return text_response("1" if _metrics(request).enabled else "0")


async def put_metrics(request: Request) -> Response:
    body = await request.body()
    value = body.decode("utf-8", "replace").strip().lower()
    if value in ("1", "true", "0", "false") and (group := group_of(request)):
        return await group.apply_everywhere(request, body)
    if value in ("1", "true"):
        _metrics(request).enabled = True
    elif value in ("0", "false"):
        _metrics(request).enabled = False
    else:
        raise BadFileFormat("Boolean value expected")
    return text_response("")


async def metrics_prometheus(request: Request) -> Response:
    metrics = _metrics(request)
    media = "text/plain; version=0.0.4"
    if not metrics.enabled:
        return text_response(b"", media_type=media)
    if group := group_of(request):  # each worker counts its requests: add them up
        answers = await group.ask_everyone(request)
        scrapes = [a.body.decode() for a in answers if a.status_code == 200]
        return text_response(merge_scrapes(scrapes), media_type=media)
    statistics = await run_in_threadpool(reading.global_statistics, archive_of(request))
    return text_response(prometheus_text(statistics, metrics), media_type=media)


# ---- shutdown and reset ---------------------------------------------------------------
async def _stop_server(workers: int) -> None:
    """Stop the whole server once the answer is sent.

    With several HTTP workers the supervisor (the parent) is signalled: it stops every
    worker, which a signal to this worker alone would not (it would be restarted).
    uvicorn treats SIGTERM as a graceful shutdown: requests in flight finish.
    """
    await asyncio.sleep(0.1)
    log.warning("Shutdown request received")
    if workers > 1:
        os.kill(os.getppid(), signal.SIGTERM)
        return
    # uvicorn's SIGTERM handler is a method of its Server: asking that server to exit
    # directly stops it just as gracefully, without the signal uvicorn re-raises on the
    # way out, so the process ends with status 0 as Orthanc does (a supervisor such as
    # Docker's "on-failure" must not take a requested shutdown for a crash).
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    if server is not None and hasattr(server, "should_exit"):
        server.should_exit = True
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def _workers(config: Mapping[str, Any]) -> int:
    return http_workers(config.get("HttpWorkers"))


async def shutdown(request: Request) -> Response:
    workers = _workers(request.app.state.config)
    response = json_response({})
    response.background = BackgroundTask(_stop_server, workers)
    return response


async def _restart_server(workers: int) -> None:
    """Ask the server process (the supervisor with several workers) to restart: it
    stops as for a shutdown, then starts again and reads its configuration anew."""
    await asyncio.sleep(0.1)
    log.warning("Reset request received")
    os.kill(os.getppid() if workers > 1 else os.getpid(), signal.SIGHUP)


async def reset(request: Request) -> Response:
    response = json_response({})
    response.background = BackgroundTask(_restart_server, _workers(request.app.state.config))
    return response


# ---- conformance ----------------------------------------------------------------------
def conformance_statement(config: Mapping[str, Any]) -> str:
    """A plain-text conformance statement built from the listener's real contexts.

    The application entity is built exactly as the DICOM listener builds it (without
    opening the port), so the statement cannot drift from what is accepted.
    """
    from ..net.scp import DicomListener

    listener = DicomListener(None, config, None)  # type: ignore[arg-type]
    ae = listener._application_entity()
    by_service: dict[str, list[tuple[str, list[str]]]] = {}
    for context in ae.supported_contexts:
        uid = str(context.abstract_syntax)
        service = uid_to_service_class(uid).__name__
        by_service.setdefault(service, []).append(
            (uid, [str(ts) for ts in context.transfer_syntax])
        )
    enabled = bool(config.get("DicomServerEnabled", True))
    lines = [
        "dicomhub DICOM conformance statement",
        "====================================",
        "",
        f"Application entity title: {listener.aet}",
        f"Port: {listener.port}" + ("" if enabled else " (DICOM server disabled)"),
        f"Maximum PDU length: {ae.maximum_pdu_size}",
        f"Implementation class UID: {ae.implementation_class_uid}",
        f"Implementation version name: {ae.implementation_version_name or ''}",
        "Role: SCP for the presentation contexts below; associations are accepted "
        "as described in the REST API documentation (DicomModalities, "
        "DicomAlwaysAllow*, DicomCheckCalledAet).",
        "",
    ]
    for service, contexts in sorted(by_service.items()):
        lines.append(f"{service} (SCP)")
        lines.append("-" * (len(service) + 6))
        syntax_sets: dict[tuple[str, ...], list[str]] = {}
        for uid, syntaxes in contexts:
            syntax_sets.setdefault(tuple(syntaxes), []).append(uid)
        for syntaxes, uids in syntax_sets.items():
            lines.append("  SOP classes:")
            lines.extend(f"    {uid}  {_uid_name(uid)}".rstrip() for uid in sorted(uids))
            lines.append("  Transfer syntaxes:")
            lines.extend(f"    {ts}  {_uid_name(ts)}".rstrip() for ts in syntaxes)
        lines.append("")
    if config.get("UnknownSopClassAccepted"):
        lines.append("Storage SOP classes unknown to the dictionary are also accepted.")
    return "\n".join(lines) + "\n"


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return "" if name == uid else name


async def dicom_conformance(request: Request) -> Response:
    text = await run_in_threadpool(conformance_statement, request.app.state.config)
    return text_response(text)


def routes() -> list[Route]:
    result = [
        Route("/plugins", list_plugins, methods=["GET"]),
        Route("/plugins/{name}", get_plugin, methods=["GET"]),
        Route("/tools/log-level", get_log_level, methods=["GET"]),
        Route("/tools/log-level", put_log_level, methods=["PUT"]),
        Route("/tools/metrics", get_metrics, methods=["GET"]),
        Route("/tools/metrics", put_metrics, methods=["PUT"]),
        Route("/tools/metrics-prometheus", metrics_prometheus, methods=["GET"]),
        Route("/tools/shutdown", shutdown, methods=["POST"]),
        Route("/tools/reset", reset, methods=["POST"]),
        Route("/tools/dicom-conformance", dicom_conformance, methods=["GET"]),
    ]
    for category in CATEGORIES:
        result.extend(_category_routes(category))
    return result
