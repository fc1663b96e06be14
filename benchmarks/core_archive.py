"""Core-archive benchmark: dicomhub against the reference Orthanc, side by side.

Measures, for each server on the same generated data in one run:

* ingest through ``POST /instances`` of CT (512x512, ~0.5 MB) and small (64x64,
  ~9 kB) instances, with 1 client and with N concurrent clients (instances/s);
* latency of ``GET /{level}/{id}`` for the four levels and of
  ``GET /instances/{id}/tags`` on a CT (median and p95, one keep-alive client);
* download rate of ``GET /instances/{id}/file`` with 1 and N clients (files/s);
* peak resident memory of each server's process tree over the whole run.

Both servers are started here, on their own ports, from the same throw-away
Orthanc-format configuration in a temporary folder, and stopped by PID at the end.

Why interleaved rounds: on a small VM shared with other developers, the same
server measured twice a minute apart can differ by 50 %. So the phases are not run
"all of Orthanc, then all of dicomhub": each phase runs on one server right after
the other (the order flips from phase to phase and round to round), and the whole
sequence is repeated for a few rounds with fresh data. Only one server works at a
time (the other is idle). Before each phase, dirty pages are flushed (``sync``) and
the harness waits, within a budget, for the machine to be quiet. The absolute rate
reported is the median over rounds; the ratio of a rate is the median of the
per-round ratios (each from two phases run back to back), leaving out rounds in
which other processes were busy when enough clean rounds remain. An A/A run (two
Orthancs, ``--dicomhub-cmd Orthanc``) shows the noise floor of the machine.

Results go to ``benchmarks/results/core_archive-<date>.json``; a markdown table is
printed on stdout. Run ``python benchmarks/core_archive.py --help`` for options.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import cycle, islice
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python benchmarks/core_archive.py): make `common` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402 - after the path fix above
    LOOPBACK,
    DataShape,
    InstanceSet,
    KeepAliveClient,
    RssSampler,
    ServerProcess,
    generate_instances,
    git_revision,
    latency_summary,
    machine_info,
    run_concurrent,
    system_busy_seconds,
    tree_cpu_seconds,
    wait_for_quiet,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
LEVELS = ("patients", "studies", "series", "instances")
KINDS = ("orthanc", "dicomhub")
DICOM_HEADERS = {"Content-Type": "application/dicom"}
MIB = 1024 * 1024


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the final table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def ingest_plan(args: argparse.Namespace) -> list[tuple[str, bool, int, int, int]]:
    """The ingest phases of a round: (name, is CT, count, image size, clients)."""
    plan = []
    for kind, count, size in (
        ("ct", args.ct, args.ct_size),
        ("small", args.small, args.small_size),
    ):
        for clients in (1, args.clients):
            plan.append((f"{kind}_{clients}c", kind == "ct", count, size, clients))
    return plan


def round_data(args: argparse.Namespace, round_no: int) -> dict[str, InstanceSet]:
    """Fresh instances for every ingest phase of one round.

    Each phase gets instances never sent before: uploading an instance twice takes
    the "AlreadyStored" path and would measure something else. Both servers get
    exactly these bytes.
    """
    shape = DataShape(args.patients, args.studies, args.series)
    sets = {}
    for index, (name, _, count, size, _) in enumerate(ingest_plan(args)):
        seed = args.seed + 100 * round_no + index
        sets[name] = generate_instances(f"r{round_no}{name}", count, size, size, shape, seed)
    return sets


# ---------------------------------------------------------------------------
# One server under test
# ---------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed phase on one server: a rate and/or the latencies of its requests."""

    round_no: int
    requests: int
    elapsed_s: float
    bytes_moved: int
    latencies_ns: list[int]
    errors: list[str]
    reconnects: int
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    background_cpu_s: float = 0.0

    @property
    def per_s(self) -> float:
        return (self.requests - len(self.errors)) / self.elapsed_s if self.elapsed_s else 0.0

    def as_round(self) -> dict[str, Any]:
        return {
            "round": self.round_no,
            "requests": self.requests,
            "elapsed_s": round(self.elapsed_s, 3),
            "per_s": round(self.per_s, 1),
            "mib_per_s": round(self.bytes_moved / MIB / self.elapsed_s, 1)
            if self.elapsed_s
            else None,
            "median_ms": latency_summary(self.latencies_ns).get("median_ms"),
            "server_cpu_s": round(self.server_cpu_s, 3),
            "client_cpu_s": round(self.client_cpu_s, 3),
            "background_cores": round(self.background_cpu_s / self.elapsed_s, 2)
            if self.elapsed_s
            else None,
            "errors": len(self.errors),
            "reconnects": self.reconnects,
        }


@dataclass
class Contender:
    """A server started for this run, with what it stored and what was measured."""

    kind: str
    server: ServerProcess
    sampler: RssSampler | None = None
    status: str = "not started"
    error: str | None = None
    error_traceback: str | None = None
    warnings: list[str] = field(default_factory=list)
    ids: dict[str, set[str]] = field(default_factory=lambda: {lv: set() for lv in LEVELS})
    ct_ids: list[str] = field(default_factory=list)
    download_pool: dict[str, bytes] = field(default_factory=dict)
    download_pool_size: int = 300
    expected_instances: int = 0
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    idle_cpu_s: float = 0.0
    idle_wall_s: float = 0.0

    @property
    def port(self) -> int:
        return self.server.http_port

    @property
    def running(self) -> bool:
        return self.status == "running"

    def fail(self, exc: BaseException) -> None:
        """Stop measuring this server but keep what it already produced."""
        self.status = "error"
        self.error = f"{type(exc).__name__}: {exc}"
        self.error_traceback = traceback.format_exc()
        log(f"{self.kind}: FAILED: {self.error}")

    def cpu_s(self) -> float:
        return tree_cpu_seconds(self.server.pid) if self.running else 0.0

    def record(self, key: str, sample: Sample) -> None:
        self.samples.setdefault(key, []).append(sample)
        if self.sampler is not None:
            self.sampler.phase(f"r{sample.round_no}/{key}")
        if self.server.process is not None and self.server.process.poll() is not None:
            raise RuntimeError(f"server exited with code {self.server.process.returncode}")


def ingest(c: Contender, data: InstanceSet, clients: int, round_no: int, is_ct: bool) -> Sample:
    """Upload every file of ``data`` once through ``clients`` keep-alive connections.

    The identifiers come from the server's answers (not computed here), so the
    read phases ask each server for what it says it stored. The first CT files
    stored go into the download pool, with their bytes, to check downloads against.
    """
    answers: list[dict[str, Any] | None] = [None] * len(data.files)

    def work(conn: KeepAliveClient, index: int) -> str | None:
        status, body = conn.request("POST", "/instances", data.files[index], DICOM_HEADERS)
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        answer = json.loads(body)
        if answer.get("Status") != "Success":
            return f"Status {answer.get('Status')!r}"
        answers[index] = answer
        return None

    outcome = run_concurrent(LOOPBACK, c.port, clients, range(len(data.files)), work)
    c.expected_instances += len(data.files)
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        c.ids["instances"].add(answer["ID"])
        c.ids["series"].add(answer["ParentSeries"])
        c.ids["studies"].add(answer["ParentStudy"])
        c.ids["patients"].add(answer["ParentPatient"])
        if is_ct:
            c.ct_ids.append(answer["ID"])
            if len(c.download_pool) < c.download_pool_size:
                c.download_pool[answer["ID"]] = data.files[index]
    return Sample(
        round_no=round_no,
        requests=len(data.files),
        elapsed_s=outcome.elapsed_s,
        bytes_moved=data.total_bytes,
        latencies_ns=outcome.latencies_ns,
        errors=outcome.errors,
        reconnects=outcome.reconnects,
    )


def sequential_gets(
    c: Contender,
    paths: list[str],
    requests: int,
    warmup: int,
    round_no: int,
    check: Callable[[str, bytes], bool],
) -> Sample:
    """Time ``requests`` sequential GETs on one keep-alive connection.

    Sequential on purpose: this is the latency a viewer or a script sees, not a
    throughput figure. ``check`` validates each answer after its timer stopped, so
    a server that answers fast but wrong does not pass unnoticed.
    """
    offset = (round_no * requests) % len(paths)
    order = paths[offset:] + paths[:offset]
    latencies: list[int] = []
    errors: list[str] = []
    moved = 0
    with KeepAliveClient(LOOPBACK, c.port) as client:
        for path in islice(cycle(order), warmup):
            client.request("GET", path)
        started = time.perf_counter()
        for path in islice(cycle(order), requests):
            start = time.perf_counter_ns()
            status, body = client.request("GET", path)
            latencies.append(time.perf_counter_ns() - start)
            moved += len(body)
            try:
                good = status == 200 and check(path, body)
            except ValueError:
                good = False
            if not good:
                errors.append(f"{path}: HTTP {status} {body[:120]!r}")
        elapsed = time.perf_counter() - started
    return Sample(round_no, requests, elapsed, moved, latencies, errors, client.reconnects)


def _answer_has_own_id(path: str, body: bytes) -> bool:
    """``GET /{level}/{id}`` must describe the resource that was asked for."""
    return json.loads(body).get("ID") == path.rsplit("/", 1)[-1]


def _answer_has_sop_uid(path: str, body: bytes) -> bool:
    """``/tags`` of an instance always holds SOPInstanceUID (0008,0018)."""
    return "0008,0018" in json.loads(body)


def download(c: Contender, count: int, clients: int, round_no: int) -> Sample:
    """Fetch ``count`` CT files, cycling over the download pool, with ``clients`` threads.

    Every body is compared with the bytes uploaded: Orthanc serves the stored file
    unchanged, and so must a drop-in replacement.
    """
    pool = c.download_pool
    ids = list(islice(cycle(sorted(pool)), count))

    def work(conn: KeepAliveClient, instance_id: str) -> str | None:
        status, body = conn.request("GET", f"/instances/{instance_id}/file")
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        if body != pool[instance_id]:
            return f"{instance_id}: body differs from the uploaded file ({len(body)} bytes)"
        return None

    outcome = run_concurrent(LOOPBACK, c.port, clients, ids, work)
    moved = sum(len(pool[i]) for i in ids)
    return Sample(
        round_no=round_no,
        requests=len(ids),
        elapsed_s=outcome.elapsed_s,
        bytes_moved=moved,
        latencies_ns=outcome.latencies_ns,
        errors=outcome.errors,
        reconnects=outcome.reconnects,
    )


def read_json(port: int, path: str) -> Any:
    with KeepAliveClient(LOOPBACK, port) as client:
        status, body = client.request("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status} {body[:200]!r}")
    return json.loads(body)


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


class QuietGate:
    """Waits for a quiet machine before each phase, within a budget for the whole run.

    A wait per phase keeps a colleague's test run from landing in one server's
    phase; the overall budget keeps the run within a few minutes on a busy machine
    (once it is spent, phases start at once and their noise is still reported).
    """

    def __init__(self, threshold_cores: float, per_phase_s: float, budget_s: float) -> None:
        self.threshold_cores = threshold_cores
        self.per_phase_s = per_phase_s
        self.remaining_s = budget_s
        self.waited_s = 0.0

    def settle(self) -> None:
        """Flush dirty pages, then wait for quiet.

        Without the flush, the 150 MB a server just wrote are written back to disk
        while the other server is measured, which penalises whoever comes second.
        """
        os.sync()
        started = time.monotonic()
        wait_for_quiet(
            self.threshold_cores, 0.25, max(0.0, min(self.per_phase_s, self.remaining_s))
        )
        spent = time.monotonic() - started
        self.remaining_s -= spent
        self.waited_s += spent


def interleaved(
    contenders: list[Contender],
    turn: int,
    key: str,
    action: Callable[[Contender], Sample],
    gate: QuietGate,
) -> None:
    """Run one phase on every running server, one after the other.

    The order flips with ``turn`` so neither server is always first.
    """
    order = contenders if turn % 2 == 0 else list(reversed(contenders))
    for c in order:
        if not c.running:
            continue
        gate.settle()
        idle = [o for o in contenders if o is not c and o.running]
        idle_before = [o.cpu_s() for o in idle]
        server_before = c.cpu_s()
        client_before = time.process_time()
        busy_before = system_busy_seconds()
        wall_before = time.perf_counter()
        try:
            sample = action(c)
            wall = time.perf_counter() - wall_before
            busy = system_busy_seconds() - busy_before
            sample.client_cpu_s = time.process_time() - client_before
            sample.server_cpu_s = c.cpu_s() - server_before
            idle_used = [o.cpu_s() - before for o, before in zip(idle, idle_before, strict=True)]
            for other, used in zip(idle, idle_used, strict=True):
                other.idle_cpu_s += used
                other.idle_wall_s += wall
            # The phase's elapsed time is shorter than `wall` (connections, checks), so
            # scale the machine's busy time to it before subtracting what we know.
            own = sample.client_cpu_s + sample.server_cpu_s + sum(idle_used)
            sample.background_cpu_s = max(0.0, busy - own) * sample.elapsed_s / wall
            c.record(key, sample)
        except Exception as exc:  # noqa: BLE001 - keep the other server going
            c.fail(exc)
            continue
        tail = f", {len(sample.errors)} errors" if sample.errors else ""
        noisy = sample.background_cpu_s / sample.elapsed_s if sample.elapsed_s else 0.0
        if noisy > 0.25:
            tail += f" (other processes used {noisy:.2f} cores)"
        log(f"  {c.kind:8} {key:16} {sample.per_s:9.1f}/s{tail}")


def start_contender(c: Contender, args: argparse.Namespace) -> None:
    log(f"{c.kind}: starting on HTTP {c.server.http_port}, DICOM {c.server.dicom_port}")
    try:
        c.server.start(timeout_s=args.startup_timeout)
    except Exception as exc:  # noqa: BLE001 - a server that does not start is reported
        c.fail(exc)
        return
    c.status = "running"
    c.sampler = RssSampler(c.server.pid, interval_s=args.sample_interval)
    c.sampler.start()
    c.sampler.phase("startup")
    log(f"{c.kind}: up in {c.server.startup_s:.2f} s, Version {c.server.system.get('Version')}")


def warm_up(c: Contender, args: argparse.Namespace) -> None:
    """Untimed uploads of each kind, so first-request costs (lazy imports, caches,
    the index's first pages) are not charged to the first timed phase. GET series
    have their own untimed requests (``--latency-warmup``)."""
    one = DataShape(1, 1, 1)
    for label, size in (("warmct", args.ct_size), ("warmsm", args.small_size)):
        data = generate_instances(label, args.warmup, size, size, one, args.seed)
        sample = ingest(c, data, 1, 0, False)
        if sample.errors:
            raise RuntimeError(f"warm-up ingest failed: {sample.errors[:3]}")
    if c.sampler is not None:
        c.sampler.phase("warmup")


def run(contenders: list[Contender], args: argparse.Namespace, gate: QuietGate) -> None:
    """All rounds of all phases, interleaved between the running servers."""
    for c in contenders:
        if c.running:
            try:
                warm_up(c, args)
            except Exception as exc:  # noqa: BLE001
                c.fail(exc)
    turn = 0
    for round_no in range(1, args.rounds + 1):
        if not any(c.running for c in contenders):
            return
        log(f"round {round_no}/{args.rounds}: generating data")
        sets = round_data(args, round_no)
        for name, is_ct, _, _, clients in ingest_plan(args):
            action = partial(
                ingest, data=sets[name], clients=clients, round_no=round_no, is_ct=is_ct
            )
            interleaved(contenders, turn, f"ingest/{name}", action, gate)
            turn += 1
        del sets
        for level in LEVELS:
            action = partial(get_level, level=level, args=args, round_no=round_no)
            interleaved(contenders, turn, f"get/{level}", action, gate)
            turn += 1
        interleaved(contenders, turn, "tags", partial(get_tags, args=args, round_no=round_no), gate)
        turn += 1
        for clients in (1, args.clients):
            action = partial(download, count=args.downloads, clients=clients, round_no=round_no)
            interleaved(contenders, turn, f"download/{clients}c", action, gate)
            turn += 1


def get_level(c: Contender, level: str, args: argparse.Namespace, round_no: int) -> Sample:
    """``GET /{level}/{id}`` over every resource of that level the server stored."""
    paths = [f"/{level}/{i}" for i in sorted(c.ids[level])]
    return sequential_gets(
        c, paths, args.get_requests, args.latency_warmup, round_no, _answer_has_own_id
    )


def get_tags(c: Contender, args: argparse.Namespace, round_no: int) -> Sample:
    """``GET /instances/{id}/tags`` over the CT instances (the big headers to parse)."""
    paths = [f"/instances/{i}/tags" for i in sorted(c.ct_ids)]
    return sequential_gets(
        c, paths, args.tags_requests, args.latency_warmup, round_no, _answer_has_sop_uid
    )


def finish(c: Contender) -> dict[str, Any]:
    """Check the server's own counts, stop it by PID and summarise its samples."""
    result: dict[str, Any] = {"status": c.status, "command": c.server.command}
    if c.server.system:  # it answered GET /system, so it did start
        result.update(
            pid=c.server.pid,
            startup_s=round(c.server.startup_s, 3),
            version=c.server.system.get("Version"),
            system=c.server.system,
        )
    if c.running:
        try:
            counts = read_json(c.port, "/statistics")
            result["statistics"] = counts
            expected = c.expected_instances
            if int(counts.get("CountInstances", -1)) != expected:
                c.warnings.append(
                    f"/statistics counts {counts.get('CountInstances')} instances, "
                    f"expected {expected}"
                )
        except Exception as exc:  # noqa: BLE001
            c.warnings.append(f"/statistics failed: {exc}")
        c.status = "ok"
        result["status"] = "ok"
    if c.idle_wall_s:
        # CPU this server burnt while the other one was being measured.
        idle_percent = round(100 * c.idle_cpu_s / c.idle_wall_s, 1)
        result["idle_cpu_percent"] = idle_percent
        if idle_percent > 5:
            c.warnings.append(
                f"used {idle_percent} % of a core while idle: the other server's "
                "figures may be pessimistic"
            )
    if c.sampler is not None:
        result["memory"] = c.sampler.stop()
    result["exit_code"] = c.server.stop()
    result["log_tail"] = c.server.log_tail(15)
    log(f"{c.kind}: stopped (exit code {result['exit_code']})")
    if c.error:
        result["error"] = c.error
        result["traceback"] = c.error_traceback
    result["warnings"] = c.warnings

    for key, samples in c.samples.items():
        section, _, name = key.partition("/")
        pooled = [ns for s in samples for ns in s.latencies_ns]
        summary: dict[str, Any] = {}
        if section in ("ingest", "download"):
            rate = "instances_per_s" if section == "ingest" else "files_per_s"
            summary[rate] = round(statistics.median(s.per_s for s in samples), 1)
            summary["mib_per_s"] = round(
                statistics.median(s.bytes_moved / MIB / s.elapsed_s for s in samples), 1
            )
            summary["latency"] = latency_summary(pooled)
        else:
            summary.update(latency_summary(pooled))
        summary["server_cpu_ms_per_request"] = round(
            statistics.median(1000 * s.server_cpu_s / s.requests for s in samples), 3
        )
        summary["client_cpu_ms_per_request"] = round(
            statistics.median(1000 * s.client_cpu_s / s.requests for s in samples), 3
        )
        errors = [e for s in samples for e in s.errors]
        summary.update(
            errors=len(errors),
            first_errors=errors[:5],
            reconnects=sum(s.reconnects for s in samples),
            rounds=[s.as_round() for s in samples],
        )
        if name:
            result.setdefault(section, {})[name] = summary
        else:
            result[section] = summary
    return result


def _pythonpath_with_repo() -> str:
    """Let ``python -m dicomhub`` find the work tree even if it is not installed."""
    current = os.environ.get("PYTHONPATH", "")
    return f"{REPO_ROOT}{os.pathsep}{current}" if current else str(REPO_ROOT)


# ---------------------------------------------------------------------------
# Comparison and report
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One row of the report: where the figure lives and what counts as success.

    ``min_ratio``/``max_ratio`` bound dicomhub/Orthanc; ``max_value`` bounds
    dicomhub's own figure (latency targets are absolute, not relative).
    """

    label: str
    path: tuple[str, ...]
    unit: str
    higher_is_better: bool
    min_ratio: float | None = None
    max_ratio: float | None = None
    max_value: float | None = None

    @property
    def target(self) -> str:
        if self.min_ratio is not None:
            return f"ratio >= {self.min_ratio:g}"
        if self.max_ratio is not None:
            return f"ratio < {self.max_ratio:g}"
        if self.max_value is not None:
            return f"< {self.max_value:g} {self.unit}"
        return "-"


def metrics(clients: int) -> list[Metric]:
    """The rows of the report; targets come from the core-archive issue."""
    rows = [
        Metric("Ingest CT, 1 client", ("ingest", "ct_1c", "instances_per_s"), "inst/s", True, 0.7),
        Metric(
            f"Ingest CT, {clients} clients",
            ("ingest", f"ct_{clients}c", "instances_per_s"),
            "inst/s",
            True,
            1.0,
        ),
        Metric(
            "Ingest small, 1 client", ("ingest", "small_1c", "instances_per_s"), "inst/s", True, 0.7
        ),
        Metric(
            f"Ingest small, {clients} clients",
            ("ingest", f"small_{clients}c", "instances_per_s"),
            "inst/s",
            True,
            1.0,
        ),
        Metric("Download CT, 1 client", ("download", "1c", "files_per_s"), "files/s", True, 1.0),
        Metric(
            f"Download CT, {clients} clients",
            ("download", f"{clients}c", "files_per_s"),
            "files/s",
            True,
            1.0,
        ),
    ]
    for level in LEVELS:
        rows.append(
            Metric(
                f"GET /{level}/{{id}} median",
                ("get", level, "median_ms"),
                "ms",
                False,
                max_value=1.0,
            )
        )
        rows.append(Metric(f"GET /{level}/{{id}} p95", ("get", level, "p95_ms"), "ms", False))
    rows += [
        Metric(
            "GET /instances/{id}/tags median", ("tags", "median_ms"), "ms", False, max_value=1.0
        ),
        Metric("GET /instances/{id}/tags p95", ("tags", "p95_ms"), "ms", False),
        Metric("Peak memory", ("memory", "peak_mib"), "MiB", False, max_ratio=1.0),
        Metric("Peak RSS summed over processes", ("memory", "peak_rss_mib"), "MiB", False),
        # Informational: CPU the server spends per upload, whatever the client costs.
        Metric(
            "Server CPU per CT ingest",
            ("ingest", "ct_1c", "server_cpu_ms_per_request"),
            "ms",
            False,
        ),
        Metric(
            "Server CPU per small ingest",
            ("ingest", "small_1c", "server_cpu_ms_per_request"),
            "ms",
            False,
        ),
        Metric("Start-up (until GET /system answers)", ("startup_s",), "s", False),
    ]
    return rows


def _lookup(result: dict[str, Any] | None, path: tuple[str, ...]) -> float | None:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def _paired_ratios(servers: dict[str, dict[str, Any]], path: tuple[str, ...]) -> list[float]:
    """dicomhub/Orthanc per round for a rate metric (empty for other metrics).

    Rounds in which other processes used more than 0.25 cores during either side's
    phase are left out when the clean rounds are a majority; otherwise all rounds
    count (the median of all is then safer than one or two lucky rounds).
    """
    if path[-1] not in ("instances_per_s", "files_per_s"):
        return []
    rounds = []
    for kind in KINDS:
        node: Any = servers.get(kind, {})
        for key in path[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        rounds.append({r["round"]: r for r in node.get("rounds", [])})
    orthanc, dicomhub = rounds
    pairs = [(orthanc[n], dicomhub[n]) for n in sorted(orthanc) if n in dicomhub]
    pairs = [(o, d) for o, d in pairs if o["per_s"]]
    clean = [
        (o, d)
        for o, d in pairs
        if max(o.get("background_cores") or 0.0, d.get("background_cores") or 0.0) <= 0.25
    ]
    chosen = clean if clean and 2 * len(clean) > len(pairs) else pairs
    return [d["per_s"] / o["per_s"] for o, d in chosen]


def compare(servers: dict[str, dict[str, Any]], clients: int) -> list[dict[str, Any]]:
    """Pair the two servers' figures, compute dicomhub/Orthanc and check targets.

    A figure whose phase had failed requests is kept but never counts as met:
    answering 404 quickly is not a latency win.
    """
    rows = []
    for metric in metrics(clients):
        orthanc = _lookup(servers.get("orthanc"), metric.path)
        dicomhub = _lookup(servers.get("dicomhub"), metric.path)
        errors_path = (*metric.path[:-1], "errors")
        orthanc_errors = int(_lookup(servers.get("orthanc"), errors_path) or 0)
        dicomhub_errors = int(_lookup(servers.get("dicomhub"), errors_path) or 0)
        ratio = round(dicomhub / orthanc, 3) if orthanc and dicomhub is not None else None
        paired = _paired_ratios(servers, metric.path)
        if paired:
            # Rates: the median of per-round ratios, each taken from two phases run
            # back to back, cancels the drift of a shared machine between rounds.
            ratio = round(statistics.median(paired), 3)
        met: bool | None = None
        if metric.min_ratio is not None and ratio is not None:
            met = ratio >= metric.min_ratio
        elif metric.max_ratio is not None and ratio is not None:
            met = ratio < metric.max_ratio
        elif metric.max_value is not None and dicomhub is not None:
            met = dicomhub < metric.max_value
        if met is not None and (orthanc_errors or dicomhub_errors):
            met = False
        rows.append(
            {
                "metric": metric.label,
                "unit": metric.unit,
                "higher_is_better": metric.higher_is_better,
                "target": metric.target,
                "orthanc": orthanc,
                "dicomhub": dicomhub,
                "ratio": ratio,
                "round_ratios": [round(r, 3) for r in paired],
                "met": met,
                "orthanc_errors": orthanc_errors,
                "dicomhub_errors": dicomhub_errors,
            }
        )
    return rows


def _cell(value: float | None, errors: int = 0, missing: str = "pending") -> str:
    if value is None:
        return missing
    if value >= 100:
        text = f"{value:.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}" if value < 1 else f"{value:.2f}"
    return f"{text} ({errors} failed)" if errors else text


def markdown_table(rows: list[dict[str, Any]], orthanc_missing: str = "not run") -> str:
    """The table printed on stdout and pasted into docs/benchmarks.md.

    A dicomhub figure that is missing reads "pending" (the server is being
    written); a missing Orthanc figure reads ``orthanc_missing``.
    """
    lines = [
        "| Metric | Target | Orthanc | dicomhub | dicomhub/Orthanc | Met? |",
        "| --- | --- | ---: | ---: | ---: | :---: |",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-" if row["target"] == "-" else "pending"}
        unit = f" ({row['unit']}, {'higher' if row['higher_is_better'] else 'lower'} is better)"
        ratio = "pending" if row["ratio"] is None else f"{row['ratio']:.2f}"
        if row["orthanc"] is None:
            ratio = "-"
        orthanc = _cell(row["orthanc"], row["orthanc_errors"], orthanc_missing)
        dicomhub = _cell(row["dicomhub"], row["dicomhub_errors"])
        lines.append(
            f"| {row['metric']}{unit} | {row['target']} | {orthanc} | {dicomhub} | {ratio} "
            f"| {met[row['met']]} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Core-archive benchmark: dicomhub vs the reference Orthanc, side by side.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--only", choices=("orthanc", "dicomhub", "both"), default="both")
    add("--rounds", type=int, default=5, help="interleaved rounds, each with fresh data")
    add("--ct", type=int, default=300, help="CT instances per ingest phase and round")
    add("--small", type=int, default=1000, help="small instances per ingest phase and round")
    add("--ct-size", type=int, default=512, help="CT rows = columns")
    add("--small-size", type=int, default=64, help="small rows = columns")
    add("--clients", type=int, default=4, help="concurrent clients")
    add("--patients", type=int, default=4, help="patients per ingest set")
    add("--studies", type=int, default=2, help="studies per patient")
    add("--series", type=int, default=3, help="series per study")
    add("--warmup", type=int, default=10, help="untimed uploads of each kind")
    add("--get-requests", type=int, default=300, help="GETs per level and round")
    add("--tags-requests", type=int, default=300, help="GET .../tags per round")
    add("--latency-warmup", type=int, default=20, help="untimed GETs before each series")
    add("--downloads", type=int, default=2000, help="files per download phase and round")
    add("--download-pool", type=int, default=300, help="distinct CT files downloaded")
    add("--seed", type=int, default=1, help="seed of the pixel noise")
    add("--orthanc-cmd", default="Orthanc", help="command; the config path is appended")
    add(
        "--dicomhub-cmd",
        default=f"{shlex.quote(sys.executable)} -m dicomhub",
        help="command; the config path is appended",
    )
    add(
        "--orthanc-config",
        type=json.loads,
        default={},
        help="JSON object of extra configuration keys for Orthanc only",
    )
    add(
        "--dicomhub-config",
        type=json.loads,
        default={},
        help='JSON object of extra configuration keys for dicomhub only, e.g. {"HttpWorkers": 2}',
    )
    add("--orthanc-http-port", type=int, default=28042)
    add("--orthanc-dicom-port", type=int, default=24242)
    add("--dicomhub-http-port", type=int, default=28043)
    add("--dicomhub-dicom-port", type=int, default=24243)
    add(
        "--quiet-threshold",
        type=float,
        default=0.3,
        help="before each phase, wait until other processes use at most this many cores",
    )
    add("--quiet-wait", type=float, default=3.0, help="longest wait for quiet per phase, s")
    add("--quiet-budget", type=float, default=60.0, help="longest total wait for quiet, s")
    add("--startup-timeout", type=float, default=60.0, help="seconds")
    add(
        "--sample-interval",
        type=float,
        default=0.5,
        help="memory sampling period, seconds (shorter slows the servers measured)",
    )
    add("--workdir", type=Path, default=None, help="parent of the temporary folder")
    add("--keep", action="store_true", help="keep storage, configs and logs")
    add("--output", type=Path, default=None, help="JSON result file")
    args = parser.parse_args(argv)
    positive = ("rounds", "ct", "small", "clients", "get_requests", "tags_requests", "downloads")
    for name in (*positive, "download_pool", "patients", "studies", "series", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for kind in KINDS:
        if not isinstance(getattr(args, f"{kind}_config"), dict):
            parser.error(f"--{kind}-config must be a JSON object")
    if args.clients == 1:
        parser.error("--clients must be more than 1 (the 1-client phases always run)")
    return args


def noise_summary(servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How much other processes ran during the timed phases (see ``background_cores``)."""
    loads = []
    for result in servers.values():
        for section in ("ingest", "get", "download"):
            for phase in result.get(section, {}).values():
                loads += [r["background_cores"] for r in phase.get("rounds", [])]
        loads += [r["background_cores"] for r in result.get("tags", {}).get("rounds", [])]
    loads = [load for load in loads if load is not None]
    return {
        "timed_phases": len(loads),
        "noisy_phases": sum(1 for load in loads if load > 0.25),
        "max_background_cores": max(loads, default=0.0),
        "median_background_cores": statistics.median(loads) if loads else 0.0,
    }


def print_report(rows: list[dict[str, Any]], servers: dict[str, dict[str, Any]]) -> None:
    """The markdown table, then anything that makes a figure untrustworthy."""
    print(markdown_table(rows, "not run" if "orthanc" not in servers else "failed"))
    noise = noise_summary(servers)
    if noise["noisy_phases"]:
        print(
            f"\nOther processes used more than 0.25 cores during {noise['noisy_phases']} of "
            f"{noise['timed_phases']} timed phases (at most {noise['max_background_cores']} "
            "cores): see background_cores in the JSON rounds."
        )
    for kind, result in servers.items():
        if result.get("status") != "ok":
            print(f"\n{kind}: {result.get('status')}: {result.get('error')}")
        for warning in result.get("warnings", []):
            print(f"\n{kind}: warning: {warning}")
        failures = []
        for section in ("ingest", "download", "get"):
            for name, phase in result.get(section, {}).items():
                if phase.get("errors"):
                    failures.append(f"{section}/{name}: {phase['errors']} errors")
        if result.get("tags", {}).get("errors"):
            failures.append(f"tags: {result['tags']['errors']} errors")
        if failures:
            print(f"\n{kind}: request failures: " + "; ".join(failures))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so the ``finally`` that stops the servers runs."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    kinds = KINDS if args.only == "both" else (args.only,)
    root = Path(tempfile.mkdtemp(prefix="core-archive-bench-", dir=args.workdir))
    contenders = [
        Contender(
            kind=kind,
            server=ServerProcess(
                kind=kind,
                command=shlex.split(getattr(args, f"{kind}_cmd")),
                workdir=root / kind,
                http_port=getattr(args, f"{kind}_http_port"),
                dicom_port=getattr(args, f"{kind}_dicom_port"),
                aet=f"BENCH{kind.upper()}"[:16],
                cwd=REPO_ROOT,
                env_extra={"PYTHONPATH": _pythonpath_with_repo()} if kind == "dicomhub" else {},
                config_extra=getattr(args, f"{kind}_config"),
            ),
            download_pool_size=args.download_pool,
        )
        for kind in kinds
    ]
    servers: dict[str, dict[str, Any]] = {}
    gate = QuietGate(args.quiet_threshold, args.quiet_wait, args.quiet_budget)
    try:
        for c in contenders:
            start_contender(c, args)
        run(contenders, args, gate)
    finally:
        # Stop every server we started, by PID, whatever happened above.
        for c in contenders:
            servers[c.kind] = finish(c)
        if args.keep:
            log(f"kept work folder {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    rows = compare(servers, args.clients)
    document = {
        "benchmark": "core_archive",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "git_revision": git_revision(),
        "machine": machine_info(),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "servers": servers,
        "noise": {**noise_summary(servers), "quiet_wait_s": round(gate.waited_s, 1)},
        "comparison": rows,
    }
    output = args.output or RESULTS_DIR / f"core_archive-{time.strftime('%Y-%m-%d')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log(f"results written to {output}")
    print_report(rows, servers)
    return 0 if all(r.get("status") == "ok" for r in servers.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
