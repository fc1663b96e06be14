"""Shared helpers for the side-by-side benchmarks of dicomhub and the reference Orthanc.

Every benchmark in this folder follows the same rule (DESIGN.md section 5): both
servers receive the same generated data in one run, on the same machine, through
the same client code. This module holds the pieces that make that fair:

* synthetic DICOM data (pydicom + numpy), generated once and sent to both servers;
* starting a throw-away server (Orthanc or dicomhub) from an Orthanc-format
  configuration in a temporary folder, and stopping it by its PID only;
* a cheap keep-alive HTTP client (``http.client``), so that client overhead stays
  low and identical for both servers;
* a concurrent runner that pre-opens one connection per thread;
* resident-memory sampling of the server process tree from ``/proc``;
* timing statistics (median, p95, ...).

Nothing here imports dicomhub: the harness must be able to measure any server that
speaks the Orthanc REST API, including a dicomhub that does not build yet.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

LOOPBACK = "127.0.0.1"

T = TypeVar("T")

# ---------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataShape:
    """How a generated set is spread over the DICOM hierarchy.

    Spreading the instances over several patients, studies and series matters:
    an ingest that always hits the same series measures a cache, not a server.
    """

    patients: int = 4
    studies_per_patient: int = 2
    series_per_study: int = 3

    @property
    def series_count(self) -> int:
        return self.patients * self.studies_per_patient * self.series_per_study


@dataclass
class InstanceSet:
    """A list of encoded DICOM files (Part 10 bytes) with a label for reports."""

    label: str
    files: list[bytes]
    rows: int
    columns: int

    @property
    def total_bytes(self) -> int:
        return sum(len(f) for f in self.files)

    @property
    def mean_bytes(self) -> float:
        return self.total_bytes / len(self.files) if self.files else 0.0


def generate_instances(
    label: str,
    count: int,
    rows: int,
    columns: int,
    shape: DataShape,
    seed: int,
) -> InstanceSet:
    """Generate ``count`` CT instances of ``rows`` x ``columns`` 16-bit pixels.

    Every instance has fresh UIDs (``2.25`` UUID-derived), so each run ingests new
    data and never hits the "AlreadyStored" shortcut. Pixels are random 12-bit noise:
    real CT does not compress well either, and noise defeats any accidental
    deduplication. The patient IDs carry ``label`` so that sets stay disjoint.
    """
    rng = np.random.default_rng(seed)
    # One noise buffer per series is enough: the server never compares pixels, and
    # drawing 0.5 MB of random numbers per instance would only slow generation.
    series_pixels: list[bytes] = [
        rng.integers(0, 4096, size=(rows, columns), dtype=np.uint16).tobytes()
        for _ in range(max(1, min(shape.series_count, count)))
    ]
    run_tag = generate_uid().rsplit(".", 1)[-1][-8:]
    # (patient id, patient number, study uid, accession, series uid, series number)
    hierarchy: list[tuple[str, int, str, str, str, int]] = []
    for p in range(shape.patients):
        patient_id = f"BENCH-{run_tag}-{label}-P{p}"
        for s in range(shape.studies_per_patient):
            study_uid = generate_uid()
            accession = f"{run_tag}{p:03d}{s:03d}"
            for r in range(shape.series_per_study):
                hierarchy.append((patient_id, p, study_uid, accession, generate_uid(), r + 1))

    files: list[bytes] = []
    frame_of_reference = generate_uid()
    for i in range(count):
        position = i % len(hierarchy)
        patient_id, patient_no, study_uid, accession, series_uid, series_no = hierarchy[position]
        instance_no = i // len(hierarchy) + 1
        ds = _ct_dataset(
            patient_id=patient_id,
            patient_name=f"Bench^{label}^{patient_no}",
            study_uid=study_uid,
            accession=accession,
            series_uid=series_uid,
            series_number=series_no,
            instance_number=instance_no,
            frame_of_reference=frame_of_reference,
            rows=rows,
            columns=columns,
            pixels=series_pixels[position % len(series_pixels)],
        )
        buffer = io.BytesIO()
        dcmwrite(buffer, ds, enforce_file_format=True)
        files.append(buffer.getvalue())
    return InstanceSet(label=label, files=files, rows=rows, columns=columns)


def _ct_dataset(
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    accession: str,
    series_uid: str,
    series_number: int,
    instance_number: int,
    frame_of_reference: str,
    rows: int,
    columns: int,
    pixels: bytes,
) -> Dataset:
    """Build a plausible CT image with the tags a viewer or an index would read."""
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20240115"
    ds.SeriesDate = "20240115"
    ds.StudyTime = "101500"
    ds.AccessionNumber = accession
    ds.Modality = "CT"
    ds.Manufacturer = "dicomhub-bench"
    ds.InstitutionName = "Benchmark Hospital"
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.StudyDescription = "Benchmark CT study"
    ds.SeriesDescription = f"Axial {series_number}"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = ["-250.0", "-250.0", f"{-instance_number:.1f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = frame_of_reference
    ds.SliceLocation = f"{-instance_number:.1f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = ["0.9765625", "0.9765625"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = pixels
    return ds


# ---------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------


class KeepAliveClient:
    """One persistent HTTP/1.1 connection, with TCP_NODELAY on the client side too.

    ``http.client`` is the cheapest client in the standard library; using one
    connection per thread keeps the per-request overhead small and identical for
    both servers. A dropped connection is reopened and counted, so that a server
    that closes keep-alive connections shows up in the report instead of hiding
    behind silent retries.
    """

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.reconnects = 0
        self._conn: http.client.HTTPConnection | None = None

    def connect(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request and read the whole answer; reconnect once if dropped."""
        for attempt in range(2):
            if self._conn is None:
                self.connect()
                if attempt:
                    self.reconnects += 1
            assert self._conn is not None
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def __enter__(self) -> KeepAliveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ConcurrentResult:
    """Outcome of :func:`run_concurrent`: wall time, per-item latencies, failures."""

    elapsed_s: float
    latencies_ns: list[int]
    errors: list[str]
    reconnects: int


def run_concurrent(
    host: str,
    port: int,
    clients: int,
    items: Sequence[T],
    work: Callable[[KeepAliveClient, T], str | None],
) -> ConcurrentResult:
    """Process ``items`` with ``clients`` threads, each on its own keep-alive connection.

    Connections are opened before the clock starts and the threads are released
    together by a barrier, so the wall time covers only the requests. Items are
    pulled from a shared cursor (not pre-split) so a slow request does not leave
    one thread with a long tail. ``work`` returns an error string or ``None``.
    """
    cursor = iter(range(len(items)))
    cursor_lock = threading.Lock()
    latencies: list[list[int]] = [[] for _ in range(clients)]
    errors: list[str] = []
    errors_lock = threading.Lock()
    conns = [KeepAliveClient(host, port) for _ in range(clients)]
    for conn in conns:
        conn.connect()
    barrier = threading.Barrier(clients + 1)

    def worker(index: int) -> None:
        conn = conns[index]
        mine = latencies[index]
        barrier.wait()
        while True:
            with cursor_lock:
                position = next(cursor, None)
            if position is None:
                return
            start = time.perf_counter_ns()
            try:
                problem = work(conn, items[position])
            except Exception as exc:  # noqa: BLE001 - a benchmark records, it does not stop
                problem = f"{type(exc).__name__}: {exc}"
                conn.close()
            mine.append(time.perf_counter_ns() - start)
            if problem:
                with errors_lock:
                    errors.append(problem)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    merged = [value for per_thread in latencies for value in per_thread]
    return ConcurrentResult(
        elapsed_s=elapsed,
        latencies_ns=merged,
        errors=errors,
        reconnects=sum(c.reconnects for c in conns),
    )


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile of already sorted values (like numpy's default)."""
    if not sorted_values:
        return float("nan")
    position = fraction * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    weight = position - low
    return sorted_values[low] * (1.0 - weight) + sorted_values[high] * weight


def latency_summary(latencies_ns: Iterable[int]) -> dict[str, float]:
    """Median, p95 and friends in milliseconds; the median is the headline figure
    because it ignores the odd scheduler hiccup on a shared 2-core machine."""
    values = sorted(v / 1e6 for v in latencies_ns)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "median_ms": round(percentile(values, 0.5), 4),
        "p95_ms": round(percentile(values, 0.95), 4),
        "mean_ms": round(sum(values) / len(values), 4),
        "min_ms": round(values[0], 4),
        "max_ms": round(values[-1], 4),
    }


# ---------------------------------------------------------------------------
# Memory sampling
# ---------------------------------------------------------------------------


def _proc_status_kib(pid: int, key: str) -> int | None:
    """Read one ``kB`` field of /proc/PID/status, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        return None
    return None


def _descendants(root: int) -> set[int]:
    """PIDs of ``root`` and all its descendants, found by scanning /proc/*/stat.

    The kernel here has no /proc/PID/task/TID/children, and a server may fork
    workers (uvicorn can), so memory must be summed over the whole tree.
    """
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name (field 2) may contain spaces and parentheses: split after it.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found = {root}
    stack = [root]
    while stack:
        for child in parents.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time consumed so far by ``root`` and its descendants.

    Read around each phase: the active server's CPU per request is a figure that
    does not depend on how fast the client is, and the idle server's CPU shows
    whether it disturbed the other one's measurement.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # After the command name: state is field 0, utime field 11, stime field 12.
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def system_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores, all processes, kernel).

    Subtracting what the servers and the harness used leaves the load of other
    processes during a phase: on a shared machine that is what explains an outlier.
    """
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait.
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(threshold_cores: float, window_s: float, max_wait_s: float) -> float:
    """Wait (at most ``max_wait_s``) for a window in which the machine is nearly idle.

    Called between phases, when the servers under test and the harness are idle, so
    whatever CPU is busy belongs to other processes. On a machine shared with other
    developers this keeps a colleague's test run from landing in the middle of one
    server's phase. Returns the background load (in cores) of the last window.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        busy_before = system_busy_seconds()
        time.sleep(window_s)
        load = (system_busy_seconds() - busy_before) / window_s
        if load <= threshold_cores or time.monotonic() >= deadline:
            return load


def _tree_pss_kib(pids: Iterable[int]) -> int:
    """Summed proportional set size (shared pages split between their users)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total


class RssSampler:
    """Samples the resident memory (VmRSS) of a process tree every ``interval_s``.

    A background thread keeps the peak for the whole run and for the current phase
    (see :meth:`phase`); the kernel's own high-water mark (VmHWM) of the main
    process is read too, as a cross-check that catches peaks shorter than the
    sampling interval. The headline ``peak_mib`` is the larger of the two for a
    single process; for a tree of several processes (HTTP workers) it is the summed
    PSS, because summed RSS would count every shared page once per process
    (``peak_rss_mib`` keeps that sum for reference).

    Why every half second: the kernel computes PSS by walking the page tables of
    each process, and doing that every 50 ms slowed the server it measured, more so
    a tree of five processes than Orthanc's one (small-file ingest with four clients,
    same code: 0.63-0.84 of Orthanc's rate with 50 ms sampling, 0.87-1.17 with 0.5 s,
    the server's CPU per upload up by half). A phase lasts seconds, and the peaks
    found were the same.
    """

    def __init__(self, pid: int, interval_s: float = 0.5, rescan_s: float = 1.0) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.rescan_s = rescan_s
        self.peak_kib = 0
        self.peak_pss_kib = 0
        self.max_processes = 0
        self.samples = 0
        self.phases: dict[str, dict[str, float]] = {}
        self._phase_peak_kib = 0
        self._last_kib = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _sample_once(self, pids: set[int]) -> None:
        total = 0
        alive = 0
        for pid in pids:
            value = _proc_status_kib(pid, "VmRSS")
            if value is not None:
                total += value
                alive += 1
        # With several processes (HTTP workers), summed RSS counts shared pages once
        # per process; PSS splits them, so it is sampled too (it costs more to read).
        pss = _tree_pss_kib(pids) if alive > 1 else total
        with self._lock:
            self._last_kib = total
            self.samples += 1
            self.peak_kib = max(self.peak_kib, total)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.max_processes = max(self.max_processes, alive)
            self._phase_peak_kib = max(self._phase_peak_kib, total)

    def _run(self) -> None:
        pids = _descendants(self.pid)
        last_scan = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - last_scan >= self.rescan_s:
                pids = _descendants(self.pid)
                last_scan = time.monotonic()
            self._sample_once(pids)
            self._stop.wait(self.interval_s)

    def phase(self, name: str) -> None:
        """Close the current phase under ``name``: record its peak and end RSS."""
        self._sample_once(_descendants(self.pid))
        with self._lock:
            self.phases[name] = {
                "peak_rss_mib": round(self._phase_peak_kib / 1024, 1),
                "end_rss_mib": round(self._last_kib / 1024, 1),
            }
            self._phase_peak_kib = self._last_kib

    def stop(self) -> dict[str, Any]:
        """Stop sampling (before the server is stopped) and return the summary."""
        hwm = _proc_status_kib(self.pid, "VmHWM") or 0
        self._sample_once(_descendants(self.pid))
        self._stop.set()
        self._thread.join(timeout=5)
        single = self.max_processes <= 1
        peak_pss_kib = max(self.peak_pss_kib, hwm) if single else self.peak_pss_kib
        return {
            # The headline: RSS for one process, PSS summed over a tree of several.
            "peak_mib": round(peak_pss_kib / 1024, 1),
            "peak_rss_mib": round(max(self.peak_kib, hwm) / 1024, 1),
            "peak_sampled_rss_mib": round(self.peak_kib / 1024, 1),
            "main_process_vmhwm_mib": round(hwm / 1024, 1),
            "peak_pss_mib": round(peak_pss_kib / 1024, 1),
            "max_processes": self.max_processes,
            "end_rss_mib": round(self._last_kib / 1024, 1),
            "samples": self.samples,
            "interval_ms": round(self.interval_s * 1000),
            "phases": self.phases,
        }


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    """True if nothing accepts connections on loopback ``port``.

    Checked before start-up so that a benchmark never talks to (or disturbs)
    another server that happens to listen there, e.g. a colleague's Orthanc.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) != 0


def orthanc_config(
    name: str, workdir: Path, http_port: int, dicom_port: int, aet: str
) -> dict[str, Any]:
    """The throw-away Orthanc-format configuration given to both servers.

    Same keys for both, so neither gets an advantage from a tuned setting. Values
    left out keep Orthanc's defaults (KeepAlive and TcpNoDelay are on by default in
    1.10.1; they are written out so the comparison does not depend on it).
    """
    return {
        "Name": name,
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "StorageCompression": False,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "KeepAlive": True,
        "TcpNoDelay": True,
        "Plugins": [],
    }


@dataclass
class ServerProcess:
    """A server started by the benchmark, known only by the PID it got at start.

    It runs in its own session so that Ctrl+C on the harness does not reach it
    half-way; :meth:`stop` then ends it by PID (SIGTERM, then SIGKILL after a
    grace period), never by name.
    """

    kind: str
    command: list[str]
    workdir: Path
    http_port: int
    dicom_port: int
    aet: str
    env_extra: dict[str, str] = field(default_factory=dict)
    config_extra: dict[str, Any] = field(default_factory=dict)
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    system: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def start(self, timeout_s: float = 60.0) -> None:
        """Write the configuration, launch, and poll ``GET /system`` until it answers."""
        for port in (self.http_port, self.dicom_port):
            if not port_is_free(port):
                raise RuntimeError(f"port {port} is already in use; choose other ports")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.json"
        config = orthanc_config(
            f"bench-{self.kind}", self.workdir, self.http_port, self.dicom_port, self.aet
        )
        config.update(self.config_extra)
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        env = dict(os.environ)
        env["TCP_NODELAY"] = "1"
        env.update(self.env_extra)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps it open
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [*self.command, str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with code {self.process.returncode} during start-up; "
                    f"log tail:\n{self.log_tail()}"
                )
            try:
                with KeepAliveClient(LOOPBACK, self.http_port, timeout=2.0) as client:
                    status, body = client.request("GET", "/system")
                if status == 200:
                    self.startup_s = time.perf_counter() - started
                    self.system = json.loads(body)
                    return
            except (OSError, http.client.HTTPException, ValueError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.kind} did not answer GET /system within {timeout_s:.0f} s; "
            f"log tail:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 30.0) -> int | None:
        """End the server by its PID; return its exit code (None if never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------
# Environment description
# ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What the figures were measured on; ratios travel, absolute numbers do not."""
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = _meminfo_kib("MemTotal")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
    }


def _meminfo_kib(key: str) -> int | None:
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent


def git_revision() -> str | None:
    """The commit measured, so a figure can be traced back to the code that made it.

    ``+dirty`` marks uncommitted changes in the work tree: the figures then belong
    to that commit plus whatever was being edited.
    """
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not head:
        return None
    return f"{head}+dirty" if changes else head
