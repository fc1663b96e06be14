"""DICOM network benchmark: dicomhub against the reference Orthanc, side by side.

Measures, for each server on the same generated data in one run:

* C-STORE throughput with dcmtk's ``storescu`` over one association, for small
  (64x64, ~9 kB) and CT-size (512x512, ~0.5 MB) instances, and with two ``storescu``
  running at once (two parallel associations), in instances/s;
* study-level C-FIND latency on PatientID: the wall time of a whole ``findscu`` run
  (process, association, query, release), and the time of one C-FIND inside an
  open association (pynetdicom client, many queries on one association);
* C-MOVE of one study (500 small instances by default) from the server to a dcmtk
  ``storescp``, driven by ``movescu``, in instances/s.

Both servers are started here, on their own ports (never the shared oracle's), from
the same throw-away Orthanc-format configuration, and stopped by PID at the end; so
is the ``storescp`` sink. Phases are interleaved (one server, then the other, the
order flipping from round to round) and repeated for a few rounds with fresh data;
before each phase the harness waits, within a budget, for the machine to be quiet,
and records how many cores other processes used during the phase (the machine is
shared). Rates are medians over rounds; a ratio is the median of the per-round
ratios, always written so that more than 1 means dicomhub is faster (rates:
dicomhub/Orthanc; times: Orthanc/dicomhub).

Results go to ``benchmarks/results/network-<date>.json``; a markdown table is printed
on stdout. Run ``python benchmarks/network.py --help`` for options.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402 - after the path fix above
    LOOPBACK,
    DataShape,
    InstanceSet,
    ServerProcess,
    generate_instances,
    latency_summary,
    machine_info,
    port_is_free,
    system_busy_seconds,
    tree_cpu_seconds,
    wait_for_quiet,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("orthanc", "dicomhub")
CALLING_AET = "BENCHSCU"
SINK_AET = "BENCHSINK"


#: dcmtk keeps Nagle's algorithm on unless TCP_NODELAY=1 is in its environment; then a
#: small DIMSE message waits for the peer's delayed ACK (~40 ms per C-STORE). Modalities
#: tuned for throughput turn it off, and the servers get TCP_NODELAY=1 too.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def dcmtk(tool: str) -> str:
    """dcmtk's binary, not pynetdicom's same-named Python app that may come first."""
    for folder in ("/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"):
        path = os.path.join(folder, tool)
        if os.access(path, os.X_OK):
            with open(path, "rb") as handle:
                if handle.read(2) != b"#!":
                    return path
    found = shutil.which(tool)
    if found is None:
        raise SystemExit(f"dcmtk's {tool} is not installed")
    return found


@dataclass
class Sample:
    """One timed phase on one server."""

    key: str
    round_no: int
    count: int
    elapsed_s: float
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    background_cores: float = 0.0
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class Contender:
    kind: str
    server: ServerProcess
    status: str = "not started"
    error: str | None = None
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status == "running"


class Harness:
    """The two servers, the storescp sink, and the data folder of this run."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.sink_dir = workdir / "sink"
        self.sink: subprocess.Popen[bytes] | None = None
        self.waited_s = 0.0
        self.quiet_budget_s = args.quiet_budget
        modalities = {
            "bench": {"AET": CALLING_AET, "Host": LOOPBACK, "Port": args.scu_port},
            "sink": {"AET": SINK_AET, "Host": LOOPBACK, "Port": args.sink_port},
        }
        extra = {"DicomModalities": modalities}
        self.contenders = [
            Contender(
                "orthanc",
                ServerProcess(
                    "orthanc",
                    shlex.split(args.orthanc_cmd),
                    workdir / "orthanc",
                    args.orthanc_http_port,
                    args.orthanc_dicom_port,
                    "ORTHANC",
                    config_extra=dict(extra),
                ),
            ),
            Contender(
                "dicomhub",
                ServerProcess(
                    "dicomhub",
                    shlex.split(args.dicomhub_cmd),
                    workdir / "dicomhub",
                    args.dicomhub_http_port,
                    args.dicomhub_dicom_port,
                    "DICOMHUB",
                    env_extra={"PYTHONPATH": str(REPO_ROOT)},
                    config_extra={**extra, **args.dicomhub_config},
                ),
            ),
        ]
        if args.only != "both":
            self.contenders = [c for c in self.contenders if c.kind == args.only]

    # ---- processes ----------------------------------------------------------
    def start(self) -> None:
        if not port_is_free(self.args.sink_port):
            raise SystemExit(f"port {self.args.sink_port} is in use; choose --sink-port")
        self.sink_dir.mkdir(parents=True, exist_ok=True)
        self.sink = subprocess.Popen(
            [
                dcmtk("storescp"),
                "-aet",
                SINK_AET,
                "-od",
                str(self.sink_dir),
                str(self.args.sink_port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=DCMTK_ENV,
            start_new_session=True,
        )
        for c in self.contenders:
            log(f"{c.kind}: starting on HTTP {c.server.http_port}, DICOM {c.server.dicom_port}")
            try:
                c.server.start(timeout_s=self.args.startup_timeout)
            except Exception as exc:  # noqa: BLE001 - reported, the other one goes on
                c.status, c.error = "error", f"{type(exc).__name__}: {exc}"
                log(f"{c.kind}: FAILED to start: {c.error}")
                continue
            c.status = "running"
            log(f"{c.kind}: up, Version {c.server.system.get('Version')}")

    def stop(self) -> None:
        for c in self.contenders:
            code = c.server.stop()
            log(f"{c.kind}: stopped (exit code {code})")
        if self.sink is not None and self.sink.poll() is None:
            os.kill(self.sink.pid, signal.SIGTERM)
            try:
                self.sink.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.sink.pid, signal.SIGKILL)
                self.sink.wait(timeout=5)

    # ---- measuring ----------------------------------------------------------
    def settle(self) -> None:
        os.sync()
        started = time.monotonic()
        budget = max(0.0, min(self.args.quiet_wait, self.quiet_budget_s))
        wait_for_quiet(self.args.quiet_threshold, 0.25, budget)
        spent = time.monotonic() - started
        self.quiet_budget_s -= spent
        self.waited_s += spent

    def measure(self, c: Contender, key: str, action: Callable[[Contender], Sample]) -> None:
        """Run one phase and charge the CPU the machine spent to whoever used it: the
        server, the clients (child processes and this one), the sink, the idle other
        server; what is left is the background load of other processes."""
        self.settle()
        others = [o for o in self.contenders if o is not c and o.running]
        before_others = [tree_cpu_seconds(o.server.pid) for o in others]
        before_server = tree_cpu_seconds(c.server.pid)
        before_sink = tree_cpu_seconds(self.sink.pid) if self.sink else 0.0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        before_children = children.ru_utime + children.ru_stime
        before_own = time.process_time()
        before_busy = system_busy_seconds()
        wall_before = time.perf_counter()
        try:
            sample = action(c)
        except Exception as exc:  # noqa: BLE001 - keep the other server going
            log(f"  {c.kind:8} {key:18} FAILED: {exc}")
            c.samples.setdefault(key, []).append(
                Sample(key, -1, 0, 0.0, errors=[f"{type(exc).__name__}: {exc}"])
            )
            return
        wall = time.perf_counter() - wall_before
        busy = system_busy_seconds() - before_busy
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        clients = children.ru_utime + children.ru_stime - before_children
        clients += time.process_time() - before_own
        sample.server_cpu_s = tree_cpu_seconds(c.server.pid) - before_server
        sample.client_cpu_s = clients
        sink = (tree_cpu_seconds(self.sink.pid) - before_sink) if self.sink else 0.0
        idle = sum(
            tree_cpu_seconds(o.server.pid) - b for o, b in zip(others, before_others, strict=True)
        )
        background = max(0.0, busy - sample.server_cpu_s - clients - sink - idle)
        sample.background_cores = round(background / wall, 3) if wall > 0 else 0.0
        c.samples.setdefault(key, []).append(sample)
        tail = (
            f", {len(sample.errors)} errors ({sample.errors[0][-200:]!r})" if sample.errors else ""
        )
        if sample.background_cores > 0.25:
            tail += f" (other processes used {sample.background_cores:.2f} cores)"
        rate = f"{sample.per_s:9.1f}/s" if sample.count else ""
        shown = sample.extra.get("median_ms")
        if shown is not None:
            rate = f"{shown:9.2f} ms"
        log(f"  {c.kind:8} {key:18} {rate}{tail}")

    def interleaved(self, turn: int, key: str, action: Callable[[Contender], Sample]) -> None:
        running = [c for c in self.contenders if c.running]
        for c in running if turn % 2 == 0 else list(reversed(running)):
            self.measure(c, key, action)


# ---- phases -----------------------------------------------------------------------
def write_set(data: InstanceSet, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, content in enumerate(data.files):
        path = folder / f"{i:06d}.dcm"
        path.write_bytes(content)
        paths.append(path)
    return paths


def count_instances(c: Contender) -> int:
    import urllib.request

    url = f"http://{LOOPBACK}:{c.server.http_port}/statistics"
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback only
        return int(json.loads(answer.read())["CountInstances"])


def storescu_command(c: Contender, paths: list[Path]) -> list[str]:
    return [
        dcmtk("storescu"),
        "-aet",
        CALLING_AET,
        "-aec",
        c.server.aet,
        "-xs",  # propose Explicit VR Little Endian (what the files are in)
        LOOPBACK,
        str(c.server.dicom_port),
        *map(str, paths),
    ]


def store(
    paths: list[Path], associations: int, key: str, round_no: int
) -> Callable[[Contender], Sample]:
    """``associations`` storescu at once, each with its share of ``paths``."""

    def action(c: Contender) -> Sample:
        before = count_instances(c)
        shares = [paths[i::associations] for i in range(associations)]
        started = time.perf_counter()
        runs = [
            subprocess.Popen(
                storescu_command(c, share),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=DCMTK_ENV,
            )
            for share in shares
        ]
        outputs = [run.communicate(timeout=1800)[0] for run in runs]
        elapsed = time.perf_counter() - started
        errors = [
            out.decode("utf-8", "replace")[-400:]
            for run, out in zip(runs, outputs, strict=True)
            if run.returncode != 0
        ]
        stored = count_instances(c) - before
        if stored != len(paths):
            errors.append(f"stored {stored} instances, expected {len(paths)}")
        return Sample(key, round_no, len(paths), elapsed, errors=errors)

    return action


def findscu_command(server: ServerProcess, keys: list[tuple[str, str]]) -> list[str]:
    """A dcmtk ``findscu`` run (study root, verbose so that answers can be counted) with
    ``keys`` as ``-k Keyword=value`` (``-k Keyword`` for an empty return key)."""
    command = [dcmtk("findscu"), "-v", "-S", "-aet", CALLING_AET, "-aec", server.aet]
    for keyword, value in keys:
        command += ["-k", f"{keyword}={value}" if value else keyword]
    return [*command, LOOPBACK, str(server.dicom_port)]


def run_findscu(server: ServerProcess, keys: list[tuple[str, str]]) -> tuple[int, int, str | None]:
    """One whole ``findscu`` run: (wall time in ns, answers, error or None)."""
    command = findscu_command(server, keys)
    t0 = time.perf_counter_ns()
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=DCMTK_ENV
    )
    elapsed = time.perf_counter_ns() - t0
    answers = run.stdout.count("(Pending)") + run.stderr.count("(Pending)")
    error = None if run.returncode == 0 else f"rc {run.returncode}: {run.stderr[-200:]!r}"
    return elapsed, answers, error


def findscu_wall(patient_id: str, requests: int, round_no: int) -> Callable[[Contender], Sample]:
    """``requests`` runs of findscu, each a whole association with one study C-FIND."""
    keys = [
        ("QueryRetrieveLevel", "STUDY"),
        ("PatientID", patient_id),
        ("StudyInstanceUID", ""),
        ("StudyDate", ""),
    ]

    def action(c: Contender) -> Sample:
        latencies: list[int] = []
        errors: list[str] = []
        started = time.perf_counter()
        for _ in range(requests):
            elapsed, answers, error = run_findscu(c.server, keys)
            latencies.append(elapsed)
            if error or answers != 1:
                errors.append(error or f"{answers} answers")
        elapsed = time.perf_counter() - started
        return Sample(
            "find_findscu",
            round_no,
            0,
            elapsed,
            errors=errors[:5],
            extra=latency_summary(latencies),
        )

    return action


def _no_delay(event: Any) -> None:
    """Nagle off on the pynetdicom client's socket (a C-FIND-RQ is two small writes)."""
    import socket

    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


#: pynetdicom's Study Root C-FIND model UID (spelled out: no import at module load).
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def open_find_association(server: ServerProcess) -> Any:
    """A pynetdicom association for study-root C-FINDs, Nagle off as dcmtk with
    ``TCP_NODELAY=1``; the caller releases it."""
    from pynetdicom import AE, evt

    ae = AE(ae_title=CALLING_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = ae.associate(
        LOOPBACK,
        server.dicom_port,
        ae_title=server.aet,
        evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)],
    )
    if not assoc.is_established:
        raise RuntimeError("association refused")
    return assoc


def find_dataset(keys: list[tuple[str, str]]) -> Any:
    """The C-FIND identifier holding ``keys`` (keyword, value; empty: a return key)."""
    from pydicom.dataset import Dataset

    query = Dataset()
    for keyword, value in keys:
        setattr(query, keyword, value)
    return query


def c_find_answers(assoc: Any, query: Any) -> tuple[int, int | None]:
    """Send one C-FIND on ``assoc``: (pending answers, final status; None if lost)."""
    answers, final = 0, None
    for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
        if not status:
            break  # no response within the DIMSE timeout, or the association died
        if status.Status in (0xFF00, 0xFF01):
            answers += identifier is not None
        else:
            final = int(status.Status)
    return answers, final


def find_in_association(
    patient_id: str, requests: int, round_no: int
) -> Callable[[Contender], Sample]:
    """One association, ``requests`` study-level C-FINDs, each timed alone."""
    query = find_dataset(
        [
            ("QueryRetrieveLevel", "STUDY"),
            ("PatientID", patient_id),
            ("StudyInstanceUID", ""),
            ("StudyDate", ""),
        ]
    )

    def action(c: Contender) -> Sample:
        assoc = open_find_association(c.server)
        latencies: list[int] = []
        errors: list[str] = []
        started = time.perf_counter()
        try:
            for _ in range(requests):
                t0 = time.perf_counter_ns()
                answers, final = c_find_answers(assoc, query)
                latencies.append(time.perf_counter_ns() - t0)
                if answers != 1 or final != 0:
                    errors.append(f"{answers} answers, final status {final}")
        finally:
            assoc.release()
        elapsed = time.perf_counter() - started
        return Sample(
            "find_in_assoc",
            round_no,
            0,
            elapsed,
            errors=errors[:5],
            extra=latency_summary(latencies),
        )

    return action


def move_study(
    h: Harness, study_uid: str, expected: int, round_no: int
) -> Callable[[Contender], Sample]:
    """movescu asks the server to send the study to the storescp sink."""

    def action(c: Contender) -> Sample:
        for old in h.sink_dir.iterdir():
            old.unlink()
        command = [
            dcmtk("movescu"),
            "-S",
            "-aet",
            CALLING_AET,
            "-aec",
            c.server.aet,
            "-aem",
            SINK_AET,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study_uid}",
            LOOPBACK,
            str(c.server.dicom_port),
        ]
        started = time.perf_counter()
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=1800, check=False, env=DCMTK_ENV
        )
        elapsed = time.perf_counter() - started
        errors = [] if run.returncode == 0 else [(run.stdout + run.stderr)[-400:]]
        # storescp writes each file when it has it all; the last one may land just after
        # the final C-MOVE response: wait (bounded) for it, outside the timing
        deadline = time.monotonic() + 30
        while len(list(h.sink_dir.iterdir())) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        received = len(list(h.sink_dir.iterdir()))
        if received != expected:
            errors.append(f"sink received {received} instances, expected {expected}")
        return Sample("move_study", round_no, expected, elapsed, errors=errors)

    return action


# ---- the run ----------------------------------------------------------------------
def run(h: Harness) -> dict[str, Any]:
    args = h.args
    data = h.workdir / "data"
    shape = DataShape(args.patients, args.studies, args.series)
    one_study = DataShape(1, 1, 4)
    # the C-MOVE study, loaded once into both servers (untimed), also the C-FIND target
    move_set = generate_instances(
        "move", args.move_instances, args.move_size, args.move_size, one_study, args.seed
    )
    move_paths = write_set(move_set, data / "move")
    from pydicom import dcmread

    first = dcmread(move_paths[0], stop_before_pixels=True)
    study_uid, patient_id = str(first.StudyInstanceUID), str(first.PatientID)
    for c in h.contenders:
        if c.running:
            sample = store(move_paths, 1, "load", 0)(c)
            if sample.errors:
                c.status, c.error = "error", f"loading the C-MOVE study failed: {sample.errors[:2]}"
                log(f"{c.kind}: {c.error}")
            else:
                log(
                    f"{c.kind}: C-MOVE study loaded ({len(move_paths)} instances, {sample.per_s:.0f}/s)"
                )

    for r in range(1, args.rounds + 1):
        log(f"round {r}/{args.rounds}")
        seed = args.seed + r
        small = write_set(
            generate_instances(f"s{r}", args.small, args.small_size, args.small_size, shape, seed),
            data / f"s{r}",
        )
        ct = write_set(
            generate_instances(f"c{r}", args.ct, args.ct_size, args.ct_size, shape, seed),
            data / f"c{r}",
        )
        small2 = write_set(
            generate_instances(f"p{r}", args.small, args.small_size, args.small_size, shape, seed),
            data / f"p{r}",
        )
        ct2 = write_set(
            generate_instances(f"q{r}", args.ct, args.ct_size, args.ct_size, shape, seed),
            data / f"q{r}",
        )
        h.interleaved(r, "store_small_1", store(small, 1, "store_small_1", r))
        h.interleaved(r + 1, "store_ct_1", store(ct, 1, "store_ct_1", r))
        h.interleaved(r, "store_small_2", store(small2, 2, "store_small_2", r))
        h.interleaved(r + 1, "store_ct_2", store(ct2, 2, "store_ct_2", r))
        h.interleaved(r, "find_findscu", findscu_wall(patient_id, args.find_runs, r))
        h.interleaved(
            r + 1, "find_in_assoc", find_in_association(patient_id, args.find_requests, r)
        )
        h.interleaved(r, "move_study", move_study(h, study_uid, len(move_paths), r))
        for folder in (small, ct, small2, ct2):
            shutil.rmtree(folder[0].parent, ignore_errors=True)
    return {c.kind: summarize(c) for c in h.contenders}


METRICS: tuple[tuple[str, str, str], ...] = (
    # (key, what, kind): kind "rate" (instances/s, higher is better) or "ms" (lower)
    ("store_small_1", "C-STORE small, 1 association (instances/s)", "rate"),
    ("store_ct_1", "C-STORE CT, 1 association (instances/s)", "rate"),
    ("store_small_2", "C-STORE small, 2 associations (instances/s)", "rate"),
    ("store_ct_2", "C-STORE CT, 2 associations (instances/s)", "rate"),
    ("find_findscu", "C-FIND study, whole findscu run (median ms)", "ms"),
    ("find_in_assoc", "C-FIND study, in an open association (median ms)", "ms"),
    ("move_study", "C-MOVE study to storescp (instances/s)", "rate"),
)


def value_of(sample: Sample, kind: str) -> float | None:
    if sample.errors or sample.round_no < 0:
        return None
    return sample.extra.get("median_ms") if kind == "ms" else sample.per_s


def summarize(c: Contender) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": c.status,
        "error": c.error,
        "version": c.server.system.get("Version"),
    }
    phases = {}
    for key, _, kind in METRICS:
        samples = c.samples.get(key, [])
        values = [v for s in samples if (v := value_of(s, kind)) is not None]
        phases[key] = {
            "median": round(statistics.median(values), 3) if values else None,
            "samples": [asdict(s) | {"per_s": round(s.per_s, 2)} for s in samples],
        }
    result["phases"] = phases
    return result


def compare(h: Harness) -> list[dict[str, Any]]:
    by_kind = {c.kind: c for c in h.contenders}
    rows = []
    for key, what, kind in METRICS:
        row: dict[str, Any] = {"metric": key, "what": what}
        ratios = []
        for k in KINDS:
            c = by_kind.get(k)
            samples = c.samples.get(key, []) if c else []
            values = [v for s in samples if (v := value_of(s, kind)) is not None]
            row[k] = round(statistics.median(values), 3) if values else None
            row[f"{k}_background_cores"] = (
                round(statistics.median(s.background_cores for s in samples), 2)
                if samples
                else None
            )
        if "orthanc" in by_kind and "dicomhub" in by_kind:
            theirs = {
                s.round_no: value_of(s, kind) for s in by_kind["orthanc"].samples.get(key, [])
            }
            for s in by_kind["dicomhub"].samples.get(key, []):
                ours, other = value_of(s, kind), theirs.get(s.round_no)
                if ours and other:
                    ratios.append(ours / other if kind == "rate" else other / ours)
        row["ratio"] = round(statistics.median(ratios), 2) if ratios else None
        row["round_ratios"] = [round(x, 2) for x in ratios]
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.1f}" if value >= 10 else f"{value:.2f}"

    lines = [
        "| Metric | Orthanc 1.10.1 | dicomhub | Ratio (>1: dicomhub faster) | Background cores (O / d) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
        background = f"{row['orthanc_background_cores']} / {row['dicomhub_background_cores']}"
        lines.append(
            f"| {row['what']} | {cell(row['orthanc'])} | {cell(row['dicomhub'])} | {ratio} | {background} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="DICOM network benchmark: dicomhub vs the reference Orthanc, side by side.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--only", choices=("orthanc", "dicomhub", "both"), default="both")
    add("--rounds", type=int, default=3, help="interleaved rounds, each with fresh data")
    add("--small", type=int, default=500, help="small instances per C-STORE phase and round")
    add("--ct", type=int, default=150, help="CT instances per C-STORE phase and round")
    add("--small-size", type=int, default=64, help="small rows = columns")
    add("--ct-size", type=int, default=512, help="CT rows = columns")
    add("--patients", type=int, default=4)
    add("--studies", type=int, default=2, help="studies per patient")
    add("--series", type=int, default=3, help="series per study")
    add("--move-instances", type=int, default=500, help="instances of the C-MOVE study")
    add("--move-size", type=int, default=64, help="rows = columns of the C-MOVE study")
    add("--find-runs", type=int, default=30, help="findscu runs per round")
    add("--find-requests", type=int, default=200, help="C-FINDs in one association per round")
    add("--seed", type=int, default=1)
    add("--orthanc-cmd", default="Orthanc")
    add("--dicomhub-cmd", default=f"{shlex.quote(sys.executable)} -m dicomhub")
    add("--dicomhub-config", type=json.loads, default={}, help="extra keys for dicomhub only")
    add("--orthanc-http-port", type=int, default=28142)
    add("--orthanc-dicom-port", type=int, default=24342)
    add("--dicomhub-http-port", type=int, default=28143)
    add("--dicomhub-dicom-port", type=int, default=24343)
    add("--sink-port", type=int, default=24344, help="the storescp that receives C-MOVEs")
    add("--scu-port", type=int, default=24345, help="declared port of the SCU modality (unused)")
    add("--quiet-threshold", type=float, default=0.3)
    add("--quiet-wait", type=float, default=3.0)
    add("--quiet-budget", type=float, default=60.0)
    add("--startup-timeout", type=float, default=60.0)
    add("--workdir", type=Path, default=None)
    add("--keep", action="store_true", help="keep storage, configs and logs")
    add("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    for name in ("rounds", "small", "ct", "move_instances", "find_runs", "find_requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="dicomhub-net-bench-", dir=args.workdir))
    h = Harness(args, workdir)
    started = time.time()
    servers: dict[str, Any] = {}
    try:
        h.start()
        servers = run(h)
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        h.stop()
    rows = compare(h)
    result = {
        "benchmark": "network",
        "date": time.strftime("%Y-%m-%d", time.gmtime(started)),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine_info(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "quiet_wait_s": round(h.waited_s, 1),
        "comparison": rows,
        "servers": servers,
    }
    output = args.output or RESULTS_DIR / f"network-{result['date']}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(rows))
    log(f"results in {output}")
    if args.keep:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
