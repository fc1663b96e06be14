"""Search benchmark: ``/tools/find`` and ``/tools/lookup`` on a large archive, side by side.

The search issue asks for search "that does not grow with the archive": at 100,000
instances every query below must be at least 10 times faster than Orthanc 1.10.1
in the same run, and at 1,000,000 instances the median latencies must stay under
fixed bounds. This script measures both servers on the same archive:

1. generate ``--instances`` small DICOM files (8x8 pixels: the index is what is
   measured, not the storage) with a realistic spread: thousands of patients with
   ``SURNAME^GIVEN`` names, IDs, accession numbers, study dates over 15 years,
   several modalities. They are written once to a folder (reusable with
   ``--data-dir``) so that both servers ingest exactly the same bytes;
2. ingest them into both servers through ``POST /instances`` with ``--clients``
   keep-alive clients, in ``--segments`` slices interleaved between the servers,
   so the rate at the start (empty archive) can be compared with the rate at the
   end (full archive): the issue allows a drop of at most 10 %;
3. record the size of each index on disk per instance;
4. time each query (median and p95 of ``--requests`` sequential requests on one
   keep-alive connection, after ``--warmup`` untimed ones), query by query on one
   server then the other, cycling through distinct values drawn from the data;
   the number of answers must be the same on both servers, or the row is flagged.

Results go to ``benchmarks/results/find-<date>.json``; a markdown table is printed
on stdout. ``--instances 1000000`` is the large run of the issue (well over an
hour on a 2-core machine, about 10 GB in the temporary folder); ``--data-dir``
keeps the generated files for the next run. ``python benchmarks/find.py --help``
lists the options.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
from io import BytesIO
from itertools import cycle, islice
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python benchmarks/find.py): make `common` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402 - after the path fix above
from common import (  # noqa: E402 - after the path fix above
    LOOPBACK,
    KeepAliveClient,
    RssSampler,
    ServerProcess,
    git_revision,
    latency_summary,
    machine_info,
    run_concurrent,
    system_busy_seconds,
    tree_cpu_seconds,
    wait_for_quiet,
)
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.filewriter import dcmwrite  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("orthanc", "dicomhub")
DICOM_HEADERS = {"Content-Type": "application/dicom"}
JSON_HEADERS = {"Content-Type": "application/json"}
#: Bumped whenever the generated data changes, so a reused ``--data-dir`` is redone.
DATA_VERSION = 1


def log(message: str) -> None:
    """Progress goes to stderr so that stdout carries only the final table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

# Common surnames and given names of several origins: realistic prefixes and
# substrings (many names share "AR", "EN", ...), so wildcard queries match a
# plausible fraction of the archive rather than nothing or everything.
SURNAMES = [
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
    "WHITE",
    "HARRIS",
    "SANCHEZ",
    "CLARK",
    "RAMIREZ",
    "LEWIS",
    "ROBINSON",
    "WALKER",
    "YOUNG",
    "ALLEN",
    "KING",
    "WRIGHT",
    "SCOTT",
    "TORRES",
    "NGUYEN",
    "HILL",
    "FLORES",
    "GREEN",
    "ADAMS",
    "NELSON",
    "BAKER",
    "HALL",
    "RIVERA",
    "CAMPBELL",
    "MITCHELL",
    "CARTER",
    "ROBERTS",
    "MULLER",
    "SCHMIDT",
    "SCHNEIDER",
    "FISCHER",
    "WEBER",
    "MEYER",
    "WAGNER",
    "BECKER",
    "SCHULZ",
    "HOFFMANN",
    "DUBOIS",
    "DURAND",
    "LEROY",
    "MOREAU",
    "SIMON",
    "LAURENT",
    "LEFEBVRE",
    "MICHEL",
    "ROSSI",
    "RUSSO",
    "FERRARI",
    "ESPOSITO",
    "BIANCHI",
    "ROMANO",
    "COLOMBO",
    "RICCI",
    "MARINO",
    "GRECO",
    "JANSEN",
    "DEVRIES",
    "VANDENBERG",
    "BAKKER",
    "VISSER",
    "SMIT",
    "NOWAK",
    "KOWALSKI",
    "WISNIEWSKI",
    "KOWALCZYK",
    "SILVA",
    "SANTOS",
    "FERREIRA",
    "PEREIRA",
    "OLIVEIRA",
    "COSTA",
    "IVANOV",
    "PETROV",
    "SIDOROV",
    "HANSEN",
    "JOHANSEN",
    "OLSEN",
    "LARSEN",
    "ANDERSEN",
    "NIELSEN",
    "TANAKA",
    "SUZUKI",
    "WATANABE",
    "KIM",
    "PARK",
    "CHOI",
    "WANG",
    "ZHANG",
    "CHEN",
    "LIU",
    "YANG",
]
GIVEN_NAMES = [
    "JAMES",
    "MARY",
    "ROBERT",
    "PATRICIA",
    "JOHN",
    "JENNIFER",
    "MICHAEL",
    "LINDA",
    "DAVID",
    "ELIZABETH",
    "WILLIAM",
    "BARBARA",
    "RICHARD",
    "SUSAN",
    "JOSEPH",
    "JESSICA",
    "THOMAS",
    "SARAH",
    "CHARLES",
    "KAREN",
    "MARIA",
    "JOSE",
    "ANA",
    "CARLOS",
    "LUCIA",
    "PEDRO",
    "SOFIA",
    "JUAN",
    "ELENA",
    "LUIS",
    "ANNA",
    "PETER",
    "EMMA",
    "LUKAS",
    "HANNAH",
    "JAN",
    "MARIE",
    "PIERRE",
    "CAMILLE",
    "LOUIS",
    "CHLOE",
    "MARCO",
    "GIULIA",
    "LUCA",
    "CHIARA",
    "SVEN",
    "INGRID",
    "OLGA",
    "IVAN",
    "YUKI",
    "HIROSHI",
    "MIN",
    "JIN",
    "WEI",
    "LI",
]
# (modality, weight, SOP class UID): CT and MR dominate a typical hospital PACS.
MODALITIES = (
    ("CT", 30, "1.2.840.10008.5.1.4.1.1.2"),
    ("MR", 20, "1.2.840.10008.5.1.4.1.1.4"),
    ("CR", 15, "1.2.840.10008.5.1.4.1.1.1"),
    ("DX", 10, "1.2.840.10008.5.1.4.1.1.1.1"),
    ("US", 10, "1.2.840.10008.5.1.4.1.1.6.1"),
    ("MG", 5, "1.2.840.10008.5.1.4.1.1.1.2"),
    ("PT", 5, "1.2.840.10008.5.1.4.1.1.128"),
    ("NM", 5, "1.2.840.10008.5.1.4.1.1.20"),
)
DESCRIPTIONS = {
    "CT": ("CT CHEST", "CT ABDOMEN PELVIS", "CT HEAD"),
    "MR": ("MR BRAIN", "MR KNEE", "MR SPINE LUMBAR"),
    "CR": ("XR CHEST PA", "XR HAND"),
    "DX": ("DX CHEST", "DX PELVIS"),
    "US": ("US ABDOMEN", "US THYROID"),
    "MG": ("MAMMO SCREENING",),
    "PT": ("PET CT WHOLE BODY",),
    "NM": ("NM BONE SCAN",),
}
FIRST_YEAR, LAST_YEAR = 2010, 2024


@dataclass
class Manifest:
    """What was generated: the files' count and the values the queries draw from.

    Stored as ``manifest.json`` next to the files, so a reused data folder brings
    its query values along and both servers are asked the same questions.
    """

    version: int
    instances: int
    seed: int
    patients: int
    studies: int
    series: int
    patient_ids: list[str]
    accessions: list[str]
    study_uids: list[str]
    surnames: list[str]
    study_dates: list[str]


def _uid(rng: random.Random) -> str:
    """A ``2.25`` UID from the seeded generator: the data set is reproducible."""
    return f"2.25.{rng.getrandbits(127)}"


def _pick_modality(rng: random.Random) -> tuple[str, str]:
    total = sum(weight for _, weight, _ in MODALITIES)
    point = rng.uniform(0, total)
    for modality, weight, sop_class in MODALITIES:
        point -= weight
        if point <= 0:
            return modality, sop_class
    return MODALITIES[0][0], MODALITIES[0][2]


def generate_archive(folder: Path, instances: int, seed: int) -> Manifest:
    """Write ``instances`` small DICOM files into ``folder`` and return their manifest.

    Patients get 1-3 studies, studies 1-4 series, series 1-6 instances (about 17
    instances per patient on average), so 100,000 instances give about 6,000
    patients, 11,000 studies and 29,000 series: enough distinct rows that a search
    that scans the index shows it. A series-level dataset is built once and only
    the instance UIDs and numbers change per file, which keeps generation at a few
    thousand files per second.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pixels = np.random.default_rng(seed).integers(0, 256, size=64, dtype=np.uint8).tobytes()
    patient_ids: list[str] = []
    accessions: list[str] = []
    study_uids: list[str] = []
    surnames: set[str] = set()
    study_dates: list[str] = []
    written = 0
    series_total = 0
    study_total = 0
    # Bounded: every pass of the outer loop writes at least one file.
    while written < instances:
        patient_no = len(patient_ids)
        patient_id = f"PID{seed:02d}{patient_no:08d}"
        surname = rng.choice(SURNAMES)
        name = f"{surname}^{rng.choice(GIVEN_NAMES)}"
        birth = f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        sex = rng.choice("MF")
        patient_ids.append(patient_id)
        surnames.add(surname)
        for _ in range(rng.randint(1, 3)):
            if written >= instances:
                break
            study_total += 1
            study_uid = _uid(rng)
            accession = f"A{seed:02d}{study_total:09d}"
            date = (
                f"{rng.randint(FIRST_YEAR, LAST_YEAR)}{rng.randint(1, 12):02d}"
                f"{rng.randint(1, 28):02d}"
            )
            time_of_day = f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}00"
            study_modality, _ = _pick_modality(rng)
            study_uids.append(study_uid)
            accessions.append(accession)
            study_dates.append(date)
            for series_no in range(1, rng.randint(1, 4) + 1):
                if written >= instances:
                    break
                series_total += 1
                # Most series of a study share its modality; some studies mix (PET/CT).
                modality, sop_class = (
                    _pick_modality(rng)
                    if rng.random() < 0.15
                    else next((m, s) for m, _, s in MODALITIES if m == study_modality)
                )
                ds = _series_dataset(
                    patient_id=patient_id,
                    patient_name=name,
                    birth=birth,
                    sex=sex,
                    study_uid=study_uid,
                    accession=accession,
                    date=date,
                    time_of_day=time_of_day,
                    description=rng.choice(DESCRIPTIONS[study_modality]),
                    modality=modality,
                    sop_class=sop_class,
                    series_uid=_uid(rng),
                    series_number=series_no,
                    pixels=pixels,
                )
                for instance_no in range(1, rng.randint(1, 6) + 1):
                    if written >= instances:
                        break
                    sop_uid = _uid(rng)
                    ds.SOPInstanceUID = sop_uid
                    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
                    ds.InstanceNumber = instance_no
                    buffer = BytesIO()
                    dcmwrite(buffer, ds, enforce_file_format=True)
                    (folder / f"{written:08d}.dcm").write_bytes(buffer.getvalue())
                    written += 1
    manifest = Manifest(
        version=DATA_VERSION,
        instances=instances,
        seed=seed,
        patients=len(patient_ids),
        studies=study_total,
        series=series_total,
        patient_ids=patient_ids,
        accessions=accessions,
        study_uids=study_uids,
        surnames=sorted(surnames),
        study_dates=study_dates,
    )
    (folder / "manifest.json").write_text(json.dumps(manifest.__dict__), encoding="utf-8")
    return manifest


def _series_dataset(
    *,
    patient_id: str,
    patient_name: str,
    birth: str,
    sex: str,
    study_uid: str,
    accession: str,
    date: str,
    time_of_day: str,
    description: str,
    modality: str,
    sop_class: str,
    series_uid: str,
    series_number: int,
    pixels: bytes,
) -> Dataset:
    """The tags a PACS index keeps for patient, study and series, and an 8x8 image."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = sop_class
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.StudyTime = time_of_day
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.Manufacturer = "dicomhub-bench"
    ds.InstitutionName = "Benchmark Hospital"
    ds.ReferringPhysicianName = "REF^DOCTOR"
    ds.StudyDescription = description
    ds.SeriesDescription = f"{description} {series_number}"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = birth
    ds.PatientSex = sex
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = accession[-6:]
    ds.SeriesNumber = series_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 8
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels
    return ds


def load_or_generate(folder: Path, instances: int, seed: int) -> Manifest:
    """Reuse the files in ``folder`` if they were made with the same parameters."""
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        try:
            stored = json.loads(manifest_path.read_text(encoding="utf-8"))
            if (stored.get("version"), stored.get("instances"), stored.get("seed")) == (
                DATA_VERSION,
                instances,
                seed,
            ):
                log(f"reusing {instances} generated instances in {folder}")
                return Manifest(**stored)
        except (ValueError, TypeError):
            pass
        manifest_path.unlink()
    log(f"generating {instances} instances into {folder}")
    started = time.perf_counter()
    manifest = generate_archive(folder, instances, seed)
    log(
        f"generated {manifest.patients} patients, {manifest.studies} studies, "
        f"{manifest.series} series in {time.perf_counter() - started:.0f} s"
    )
    return manifest


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuerySpec:
    """One row of the report: how to build each request and what the issue asks."""

    key: str
    label: str
    target: str  # the bound at 1,000,000 instances (median)
    target_ms: float | None
    build: Callable[[Manifest, random.Random], tuple[str, bytes]]
    orthanc: bool = True  # False: a 1.12 option that 1.10.1 does not have


def _find(query: dict[str, str], **options: Any) -> tuple[str, bytes]:
    body = {"Level": "Study", "Query": query, **options}
    return "/tools/find", json.dumps(body).encode()


def _substring(rng: random.Random, manifest: Manifest) -> str:
    """Two letters from inside a surname in the data: ``*XY*`` then matches some rows."""
    surname = rng.choice([s for s in manifest.surnames if len(s) > 3])
    start = rng.randint(1, len(surname) - 3)
    return surname[start : start + 2]


def _date_range(rng: random.Random) -> str:
    """One month of some year: about 1/180 of the studies before the modality filter."""
    year = rng.randint(FIRST_YEAR, LAST_YEAR)
    month = rng.randint(1, 12)
    return f"{year}{month:02d}01-{year}{month:02d}28"


QUERIES: tuple[QuerySpec, ...] = (
    QuerySpec(
        "patient_id",
        "Exact PatientID",
        "< 2 ms",
        2.0,
        lambda m, r: _find({"PatientID": r.choice(m.patient_ids)}),
    ),
    QuerySpec(
        "accession",
        "Exact AccessionNumber",
        "< 2 ms",
        2.0,
        lambda m, r: _find({"AccessionNumber": r.choice(m.accessions)}),
    ),
    QuerySpec(
        "study_uid",
        "Exact StudyInstanceUID",
        "< 2 ms",
        2.0,
        lambda m, r: _find({"StudyInstanceUID": r.choice(m.study_uids)}),
    ),
    QuerySpec(
        "name_prefix",
        "PatientName prefix `ABC*`",
        "< 10 ms",
        10.0,
        lambda m, r: _find({"PatientName": r.choice(m.surnames)[:3] + "*"}),
    ),
    QuerySpec(
        "name_contains",
        "PatientName `*XY*`",
        "< 100 ms",
        100.0,
        lambda m, r: _find({"PatientName": f"*{_substring(r, m)}*"}),
    ),
    QuerySpec(
        "date_modality",
        "StudyDate range + ModalitiesInStudy",
        "< 20 ms",
        20.0,
        lambda m, r: _find(
            {"StudyDate": _date_range(r), "ModalitiesInStudy": r.choice(("CT", "MR", "CR"))}
        ),
    ),
    QuerySpec(
        "lookup",
        "`/tools/lookup` StudyInstanceUID",
        "< 2 ms",
        2.0,
        lambda m, r: ("/tools/lookup", r.choice(m.study_uids).encode()),
    ),
    QuerySpec(
        "order_by",
        "`Limit=100`, `OrderBy` StudyDate",
        "< 20 ms",
        20.0,
        lambda m, r: _find(
            {"StudyDate": r.choice(("", "20100101-", "-20201231", "20150101-20191231"))},
            Limit=100,
            OrderBy=[
                {"Type": "DicomTag", "Key": "StudyDate", "Direction": r.choice(("ASC", "DESC"))}
            ],
        ),
        orthanc=False,
    ),
    QuerySpec(
        "patient_id_expand",
        "Exact PatientID, `Expand` (no target)",
        "-",
        None,
        lambda m, r: _find({"PatientID": r.choice(m.patient_ids)}, Expand=True),
    ),
)


# ---------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------


@dataclass
class Contender:
    """A server started for this run, and what was measured on it."""

    kind: str
    server: ServerProcess
    sampler: RssSampler | None = None
    status: str = "not started"
    error: str | None = None
    error_traceback: str | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    answer_counts: dict[str, list[int]] = field(default_factory=dict)
    index: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)

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

    def check_alive(self) -> None:
        process = self.server.process
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")


def index_files(c: Contender) -> list[Path]:
    """The index's files on disk: ``dicomhub-index.db*`` or Orthanc's ``index*``."""
    folder = c.server.workdir / "index"
    pattern = "dicomhub-index.db*" if c.kind == "dicomhub" else "index*"
    return sorted(p for p in folder.glob(pattern) if p.is_file())


def measure_index(c: Contender, instances: int) -> dict[str, Any]:
    """Bytes of the index per stored instance, with the per-file breakdown.

    The WAL of a busy SQLite can hold a large share right after ingest; it is
    listed separately so a later checkpoint does not look like a regression.
    """
    files = {p.name: p.stat().st_size for p in index_files(c)}
    total = sum(files.values())
    main = sum(size for name, size in files.items() if not name.endswith(("-wal", "-shm")))
    return {
        "files": files,
        "total_bytes": total,
        "bytes_per_instance": round(total / instances, 1) if instances else None,
        "main_file_bytes_per_instance": round(main / instances, 1) if instances else None,
    }


def settle(threshold: float, wait_s: float) -> float:
    """Flush dirty pages and wait briefly for quiet: the other server's write-back
    and a colleague's test run should not land in this server's timed phase."""
    os.sync()
    return wait_for_quiet(threshold, 0.25, wait_s)


def ingest_segment(c: Contender, files: list[bytes], clients: int, index: int) -> dict[str, Any]:
    """Upload one slice of the archive; rate, server CPU and background load."""

    def work(conn: KeepAliveClient, position: int) -> str | None:
        status, body = conn.request("POST", "/instances", files[position], DICOM_HEADERS)
        if status != 200:
            return f"HTTP {status}: {body[:200]!r}"
        if json.loads(body).get("Status") != "Success":
            return f"answer {body[:200]!r}"
        return None

    cpu_before = tree_cpu_seconds(c.server.pid)
    busy_before = system_busy_seconds()
    client_before = time.process_time()
    outcome = run_concurrent(LOOPBACK, c.port, clients, range(len(files)), work)
    busy = system_busy_seconds() - busy_before
    server_cpu = tree_cpu_seconds(c.server.pid) - cpu_before
    client_cpu = time.process_time() - client_before
    elapsed = outcome.elapsed_s
    done = len(files) - len(outcome.errors)
    return {
        "segment": index,
        "instances": len(files),
        "elapsed_s": round(elapsed, 3),
        "per_s": round(done / elapsed, 1) if elapsed else None,
        "server_cpu_ms_per_instance": round(server_cpu * 1000 / len(files), 3),
        "background_cores": round(max(0.0, busy - server_cpu - client_cpu) / elapsed, 2)
        if elapsed
        else None,
        "errors": len(outcome.errors),
        "first_errors": outcome.errors[:3],
        "reconnects": outcome.reconnects,
    }


def time_query(
    c: Contender, spec: QuerySpec, requests: list[tuple[str, bytes]], warmup: int
) -> dict[str, Any]:
    """Sequential requests on one keep-alive connection: the latency a user sees.

    The answers are checked (HTTP 200, a JSON list) after the timer stopped, and
    their lengths are kept to compare the two servers request by request.
    """
    latencies: list[int] = []
    counts: list[int] = []
    errors: list[str] = []
    busy_before = system_busy_seconds()
    cpu_before = tree_cpu_seconds(c.server.pid)
    client_before = time.process_time()
    with KeepAliveClient(LOOPBACK, c.port) as client:
        for path, body in islice(cycle(requests), warmup):
            client.request("POST", path, body, JSON_HEADERS)
        started = time.perf_counter()
        for path, body in requests:
            start = time.perf_counter_ns()
            status, answer = client.request("POST", path, body, JSON_HEADERS)
            latencies.append(time.perf_counter_ns() - start)
            try:
                parsed = json.loads(answer) if status == 200 else None
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                errors.append(f"{body[:120]!r}: HTTP {status} {answer[:160]!r}")
                counts.append(-1)
            else:
                counts.append(len(parsed))
        elapsed = time.perf_counter() - started
    server_cpu = tree_cpu_seconds(c.server.pid) - cpu_before
    client_cpu = time.process_time() - client_before
    busy = system_busy_seconds() - busy_before
    c.answer_counts[spec.key] = counts
    return {
        **latency_summary(latencies),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(requests), 3),
        "background_cores": round(max(0.0, busy - server_cpu - client_cpu) / elapsed, 2)
        if elapsed
        else None,
        "answers_median": statistics.median(counts) if counts else None,
        "answers_total": sum(n for n in counts if n > 0),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def start_contender(c: Contender, args: argparse.Namespace) -> None:
    log(f"{c.kind}: starting on HTTP {c.server.http_port}, DICOM {c.server.dicom_port}")
    try:
        c.server.start(timeout_s=args.startup_timeout)
    except Exception as exc:  # noqa: BLE001 - a server that does not start is reported
        c.fail(exc)
        return
    c.status = "running"
    c.sampler = RssSampler(c.server.pid, interval_s=0.2)
    c.sampler.start()
    log(f"{c.kind}: up in {c.server.startup_s:.2f} s, Version {c.server.system.get('Version')}")


def read_json(port: int, path: str) -> Any:
    with KeepAliveClient(LOOPBACK, port) as client:
        status, body = client.request("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status} {body[:200]!r}")
    return json.loads(body)


def read_segment(folder: Path, start: int, stop: int) -> list[bytes]:
    """The files of one slice, read before the clock starts (same bytes for both)."""
    return [(folder / f"{i:08d}.dcm").read_bytes() for i in range(start, stop)]


def run(contenders: list[Contender], args: argparse.Namespace, folder: Path, m: Manifest) -> None:
    """Ingest in interleaved slices, then the queries, one server after the other."""
    bounds = np.linspace(0, m.instances, args.segments + 1).astype(int).tolist()
    for index in range(args.segments):
        files = read_segment(folder, bounds[index], bounds[index + 1])
        order = contenders if index % 2 == 0 else list(reversed(contenders))
        for c in order:
            if not c.running:
                continue
            settle(args.quiet_threshold, args.quiet_wait)
            try:
                segment = ingest_segment(c, files, args.clients, index)
                c.segments.append(segment)
                c.check_alive()
            except Exception as exc:  # noqa: BLE001 - one server failing keeps the other
                c.fail(exc)
                continue
            log(
                f"{c.kind}: slice {index + 1}/{args.segments} "
                f"({bounds[index + 1]} instances): {segment['per_s']} inst/s, "
                f"{segment['server_cpu_ms_per_instance']} ms CPU/inst, "
                f"{segment['errors']} errors"
            )
    for c in contenders:
        if not c.running:
            continue
        try:
            c.statistics = read_json(c.port, "/statistics")
            c.index = measure_index(c, m.instances)
            log(
                f"{c.kind}: {c.statistics.get('CountInstances')} instances stored, index "
                f"{c.index['total_bytes'] / 1e6:.1f} MB = {c.index['bytes_per_instance']} B/inst"
            )
        except Exception as exc:  # noqa: BLE001
            c.fail(exc)
    rng = random.Random(args.seed + 1000)
    for turn, spec in enumerate(QUERIES):
        # The same requests, in the same order, for both servers.
        requests = [spec.build(m, rng) for _ in range(args.requests)]
        order = contenders if turn % 2 == 0 else list(reversed(contenders))
        for c in order:
            if not c.running:
                continue
            if c.kind == "orthanc" and not spec.orthanc:
                c.queries[spec.key] = {"status": "n/a (Orthanc 1.12 option)"}
                continue
            settle(args.quiet_threshold, args.quiet_wait)
            try:
                c.queries[spec.key] = time_query(c, spec, requests, args.warmup)
                c.check_alive()
            except Exception as exc:  # noqa: BLE001
                c.fail(exc)
                continue
            q = c.queries[spec.key]
            log(
                f"{c.kind}: {spec.label}: median {q['median_ms']} ms, p95 {q['p95_ms']} ms, "
                f"{q['answers_median']} answers (median), {q['errors']} errors"
            )


def finish(c: Contender) -> dict[str, Any]:
    """Stop the server by PID and gather what was measured."""
    memory = c.sampler.stop() if c.sampler is not None else {}
    exit_code = c.server.stop()
    if c.status == "running":
        c.status = "ok"
    return {
        "status": c.status,
        "error": c.error,
        "traceback": c.error_traceback,
        "version": c.server.system.get("Version"),
        "exit_code": exit_code,
        "ingest_segments": c.segments,
        "ingest": ingest_summary(c.segments),
        "index": c.index,
        "statistics": c.statistics,
        "queries": c.queries,
        "memory": {k: memory.get(k) for k in ("peak_mib", "end_rss_mib")},
        "log_tail": c.server.log_tail(15) if c.status != "ok" else None,
    }


def ingest_summary(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall rate, and the first slice (empty archive) against the last (full)."""
    if not segments:
        return {}
    instances = sum(s["instances"] for s in segments)
    elapsed = sum(s["elapsed_s"] for s in segments)
    errors = sum(s["errors"] for s in segments)
    first, last = segments[0], segments[-1]
    return {
        "instances": instances,
        "per_s": round((instances - errors) / elapsed, 1) if elapsed else None,
        "first_per_s": first["per_s"],
        "last_per_s": last["per_s"],
        "last_over_first": round(last["per_s"] / first["per_s"], 3) if first["per_s"] else None,
        "first_cpu_ms": first["server_cpu_ms_per_instance"],
        "last_cpu_ms": last["server_cpu_ms_per_instance"],
        "errors": errors,
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def compare(
    servers: dict[str, dict[str, Any]], counts: dict[str, dict[str, list[int]]]
) -> list[dict[str, Any]]:
    """One row per query: both medians and p95s, the speed-up, the 10x target."""
    rows = []
    for spec in QUERIES:
        o = servers.get("orthanc", {}).get("queries", {}).get(spec.key, {})
        d = servers.get("dicomhub", {}).get("queries", {}).get(spec.key, {})
        o_med, d_med = o.get("median_ms"), d.get("median_ms")
        speedup = round(o_med / d_med, 1) if o_med and d_med else None
        o_counts = counts.get("orthanc", {}).get(spec.key)
        d_counts = counts.get("dicomhub", {}).get(spec.key)
        mismatches = (
            sum(1 for a, b in zip(o_counts, d_counts, strict=True) if a != b)
            if o_counts and d_counts
            else None
        )
        clean = not o.get("errors") and not d.get("errors") and not mismatches
        rows.append(
            {
                "key": spec.key,
                "label": spec.label,
                "target_1m": spec.target,
                "orthanc_median_ms": o_med,
                "orthanc_p95_ms": o.get("p95_ms"),
                "orthanc_status": o.get("status"),
                "dicomhub_median_ms": d_med,
                "dicomhub_p95_ms": d.get("p95_ms"),
                "answers_median": d.get("answers_median", o.get("answers_median")),
                "speedup": speedup,
                "answer_mismatches": mismatches,
                "errors": {"orthanc": o.get("errors"), "dicomhub": d.get("errors")},
                "ten_times": (speedup >= 10 and clean)
                if speedup is not None and spec.target_ms is not None
                else None,
                "under_1m_bound_already": (d_med < spec.target_ms and clean)
                if d_med is not None and spec.target_ms is not None
                else None,
            }
        )
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 10 else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def markdown_report(
    rows: list[dict[str, Any]], servers: dict[str, dict[str, Any]], instances: int, clients: int
) -> str:
    """The tables for docs/benchmarks.md: queries, then ingest and index size."""
    lines = [
        f"Queries at {instances:,} instances (median / p95, ms; speed-up = Orthanc / dicomhub):",
        "",
        "| Query | Target at 1M | Orthanc median | Orthanc p95 | dicomhub median | "
        "dicomhub p95 | Speed-up | 10x at this size? | Answers (median) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    for r in rows:
        orthanc_missing = r["orthanc_status"] or "-"
        met = {True: "yes", False: "**no**", None: "-"}[r["ten_times"]]
        if r["answer_mismatches"]:
            met += f" ({r['answer_mismatches']} answers differ)"
        if any(r["errors"].values()):
            met += f" (errors: {r['errors']})"
        lines.append(
            f"| {r['label']} | {r['target_1m']} | "
            f"{_fmt(r['orthanc_median_ms']) if r['orthanc_median_ms'] else orthanc_missing} | "
            f"{_fmt(r['orthanc_p95_ms'])} | {_fmt(r['dicomhub_median_ms'])} | "
            f"{_fmt(r['dicomhub_p95_ms'])} | "
            f"{r['speedup'] if r['speedup'] is not None else '-'} | {met} | "
            f"{r['answers_median'] if r['answers_median'] is not None else '-'} |"
        )
    lines += [
        "",
        f"Ingest (`POST /instances`, {clients} clients) and index size:",
        "",
        "| Server | Ingest (inst/s) | First slice | Last slice | Last / first | "
        "CPU/inst first -> last (ms) | Index on disk (B/inst) | without WAL (B/inst) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, result in servers.items():
        ing = result.get("ingest", {})
        idx = result.get("index", {})
        lines.append(
            f"| {kind} {result.get('version') or ''} | {ing.get('per_s', '-')} | "
            f"{ing.get('first_per_s', '-')} | {ing.get('last_per_s', '-')} | "
            f"{ing.get('last_over_first', '-')} | "
            f"{ing.get('first_cpu_ms', '-')} -> {ing.get('last_cpu_ms', '-')} | "
            f"{idx.get('bytes_per_instance', '-')} | "
            f"{idx.get('main_file_bytes_per_instance', '-')} |"
        )
    for kind, result in servers.items():
        if result.get("status") != "ok":
            lines.append(f"\n{kind}: {result.get('status')}: {result.get('error')}")
        if result.get("ingest", {}).get("errors"):
            lines.append(f"\n{kind}: {result['ingest']['errors']} ingest errors")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Search benchmark: dicomhub vs the reference Orthanc on a large archive.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--only", choices=("orthanc", "dicomhub", "both"), default="both")
    add("--instances", type=int, default=100_000, help="archive size (1000000: the large run)")
    add("--segments", type=int, default=10, help="ingest slices (first vs last compared)")
    add("--clients", type=int, default=4, help="concurrent ingest clients")
    add("--requests", type=int, default=100, help="timed requests per query and server")
    add("--warmup", type=int, default=10, help="untimed requests before each query series")
    add("--seed", type=int, default=1, help="seed of the generated archive and queries")
    add("--data-dir", type=Path, default=None, help="keep/reuse generated files here")
    add("--orthanc-cmd", default="Orthanc", help="command; the config path is appended")
    add(
        "--dicomhub-cmd",
        default=f"{shlex.quote(sys.executable)} -m dicomhub",
        help="command; the config path is appended",
    )
    add("--orthanc-config", type=json.loads, default={}, help="extra JSON config, Orthanc")
    add("--dicomhub-config", type=json.loads, default={}, help="extra JSON config, dicomhub")
    add("--orthanc-http-port", type=int, default=28052)
    add("--orthanc-dicom-port", type=int, default=24252)
    add("--dicomhub-http-port", type=int, default=28053)
    add("--dicomhub-dicom-port", type=int, default=24253)
    add("--quiet-threshold", type=float, default=0.3, help="cores used by others")
    add("--quiet-wait", type=float, default=3.0, help="longest wait for quiet per phase, s")
    add("--startup-timeout", type=float, default=120.0, help="seconds")
    add("--workdir", type=Path, default=None, help="parent of the temporary folder")
    add("--keep", action="store_true", help="keep storage, configs and logs")
    add("--output", type=Path, default=None, help="JSON result file")
    args = parser.parse_args(argv)
    for name in ("instances", "segments", "clients", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.segments > args.instances:
        parser.error("--segments cannot exceed --instances")
    for kind in KINDS:
        if not isinstance(getattr(args, f"{kind}_config"), dict):
            parser.error(f"--{kind}-config must be a JSON object")
    return args


def _pythonpath_with_repo() -> str:
    """Let ``python -m dicomhub`` find the work tree even if it is not installed."""
    current = os.environ.get("PYTHONPATH", "")
    return f"{REPO_ROOT}{os.pathsep}{current}" if current else str(REPO_ROOT)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into SystemExit so the ``finally`` that stops the servers runs."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    kinds = KINDS if args.only == "both" else (args.only,)
    root = Path(tempfile.mkdtemp(prefix="find-bench-", dir=args.workdir))
    folder = args.data_dir or root / "data"
    manifest = load_or_generate(folder, args.instances, args.seed)
    contenders = [
        Contender(
            kind=kind,
            server=ServerProcess(
                kind=kind,
                command=shlex.split(getattr(args, f"{kind}_cmd")),
                workdir=root / kind,
                http_port=getattr(args, f"{kind}_http_port"),
                dicom_port=getattr(args, f"{kind}_dicom_port"),
                aet=f"FIND{kind.upper()}"[:16],
                cwd=REPO_ROOT,
                env_extra={"PYTHONPATH": _pythonpath_with_repo()} if kind == "dicomhub" else {},
                config_extra=getattr(args, f"{kind}_config"),
            ),
        )
        for kind in kinds
    ]
    servers: dict[str, dict[str, Any]] = {}
    counts: dict[str, dict[str, list[int]]] = {}
    try:
        for c in contenders:
            start_contender(c, args)
        run(contenders, args, folder, manifest)
    finally:
        # Stop every server we started, by PID, whatever happened above.
        for c in contenders:
            servers[c.kind] = finish(c)
            counts[c.kind] = c.answer_counts
        if args.keep:
            log(f"kept work folder {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    rows = compare(servers, counts)
    document = {
        "benchmark": "find",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "git_revision": git_revision(),
        "machine": machine_info(),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "data": {
            k: getattr(manifest, k) for k in ("instances", "patients", "studies", "series", "seed")
        },
        "servers": servers,
        "comparison": rows,
    }
    output = args.output or RESULTS_DIR / f"find-{time.strftime('%Y-%m-%d')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log(f"results written to {output}")
    print(
        f"Archive: {manifest.instances:,} instances, {manifest.patients:,} patients, "
        f"{manifest.studies:,} studies, {manifest.series:,} series.\n"
    )
    print(markdown_report(rows, servers, manifest.instances, args.clients))
    return 0 if all(r.get("status") == "ok" for r in servers.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
