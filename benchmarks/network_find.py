"""C-FIND on a large archive: dicomhub against the reference Orthanc, side by side.

The DICOM network issue asks for a study-level C-FIND "at 100,000 instances at least
5 times faster" than Orthanc 1.10.1. ``network.py`` measures C-FIND only on the few
thousand instances its C-STORE phases leave behind; this script loads both servers
with the same large generated archive first:

1. the archive is ``find.py``'s (thousands of patients, realistic names, accession
   numbers, 15 years of study dates, several modalities), generated once into
   ``--data-dir`` and reused by the next run of either script with the same size
   and seed;
2. both servers ingest it over REST (``POST /instances``, ``--clients`` keep-alive
   clients, slices interleaved between the servers, as ``find.py`` does);
3. each query below is asked at the study level, the same values in the same order
   to both servers: ``--requests`` C-FINDs inside one open association (pynetdicom
   client, Nagle off), then ``--findscu-runs`` whole dcmtk ``findscu`` runs
   (process, association, query, release). Servers alternate first/second from
   query to query and round to round; the number of answers must be the same on
   both servers, request by request, or the row is flagged.

Medians are over all rounds, a ratio is the median of the per-round ratios
(Orthanc's time / dicomhub's: more than 1 means dicomhub is faster), and the server
CPU per request is reported too: on a shared machine it is the figure that does not
depend on the neighbours. Results go to ``benchmarks/results/network-find-<N>-<date>.json``;
a markdown table is printed on stdout. ``python benchmarks/network_find.py --help``
lists the options.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402 - after the path fix above
from common import (  # noqa: E402
    ServerProcess,
    git_revision,
    latency_summary,
    machine_info,
    system_busy_seconds,
    tree_cpu_seconds,
    wait_for_quiet,
)
from find import (  # noqa: E402
    Contender,
    Manifest,
    _date_range,
    finish,
    ingest_segment,
    load_or_generate,
    read_json,
    read_segment,
    settle,
    start_contender,
)
from network import (  # noqa: E402
    CALLING_AET,
    c_find_answers,
    find_dataset,
    log,
    open_find_association,
    run_findscu,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("orthanc", "dicomhub")
TARGET_SPEEDUP = 5.0

Keys = list[tuple[str, str]]

#: What a viewer's study browser typically asks back (empty return keys), among
#: them two that both servers compute from the index rather than store.
STUDY_RETURN_KEYS: Keys = [
    ("PatientName", ""),
    ("PatientID", ""),
    ("PatientBirthDate", ""),
    ("PatientSex", ""),
    ("StudyInstanceUID", ""),
    ("StudyDate", ""),
    ("StudyTime", ""),
    ("AccessionNumber", ""),
    ("StudyDescription", ""),
    ("ModalitiesInStudy", ""),
    ("NumberOfStudyRelatedInstances", ""),
]


@dataclass(frozen=True)
class FindSpec:
    """One row of the report: the matching keys of each request, drawn from the data."""

    key: str
    label: str
    build: Callable[[Manifest, random.Random], Keys]
    minimal: bool = False  # return only StudyInstanceUID and StudyDate (as network.py)

    def identifier(self, manifest: Manifest, rng: random.Random) -> Keys:
        """The whole identifier: level, the matching keys, then the return keys."""
        matching = self.build(manifest, rng)
        asked = {k for k, _ in matching}
        returns = (
            [("StudyInstanceUID", ""), ("StudyDate", "")] if self.minimal else STUDY_RETURN_KEYS
        )
        return [("QueryRetrieveLevel", "STUDY"), *matching] + [
            (k, v) for k, v in returns if k not in asked
        ]


QUERIES: tuple[FindSpec, ...] = (
    FindSpec(
        "patient_id",
        "PatientID (exact), 2 return keys",
        lambda m, r: [("PatientID", r.choice(m.patient_ids))],
        minimal=True,
    ),
    FindSpec(
        "patient_id_viewer",
        "PatientID (exact), 11 return keys",
        lambda m, r: [("PatientID", r.choice(m.patient_ids))],
    ),
    FindSpec(
        "accession",
        "AccessionNumber (exact)",
        lambda m, r: [("AccessionNumber", r.choice(m.accessions))],
    ),
    FindSpec(
        "name_wildcard",
        "PatientName `ABC*`",
        lambda m, r: [("PatientName", r.choice(m.surnames)[:3] + "*")],
    ),
    FindSpec(
        "date_modality",
        "StudyDate month + ModalitiesInStudy",
        lambda m, r: [
            ("StudyDate", _date_range(r)),
            ("ModalitiesInStudy", r.choice(("CT", "MR", "CR"))),
        ],
    ),
)


# ---- measuring --------------------------------------------------------------------
def in_association(c: Contender, requests: list[Keys], warmup: int) -> dict[str, Any]:
    """All ``requests`` in one open association, each timed alone."""
    datasets = [find_dataset(keys) for keys in requests]
    latencies: list[int] = []
    counts: list[int] = []
    errors: list[str] = []
    assoc = open_find_association(c.server)
    try:
        for query in datasets[:warmup]:
            c_find_answers(assoc, query)
        busy_before = system_busy_seconds()
        cpu_before = tree_cpu_seconds(c.server.pid)
        client_before = time.process_time()
        started = time.perf_counter()
        for query in datasets:
            t0 = time.perf_counter_ns()
            answers, final = c_find_answers(assoc, query)
            latencies.append(time.perf_counter_ns() - t0)
            counts.append(answers if final == 0 else -1)
            if final != 0:
                errors.append(f"final status {final}")
            if not assoc.is_established:  # lost (timeout, abort): go on with a new one
                errors.append("association lost")
                assoc = open_find_association(c.server)
        elapsed = time.perf_counter() - started
        server_cpu = tree_cpu_seconds(c.server.pid) - cpu_before
        client_cpu = time.process_time() - client_before
        busy = system_busy_seconds() - busy_before
    finally:
        assoc.release()
    return {
        **latency_summary(latencies),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(requests), 3),
        "background_cores": round(max(0.0, busy - server_cpu - client_cpu) / elapsed, 2),
        "answers": counts,
        "errors": errors[:5],
    }


def findscu_runs(c: Contender, requests: list[Keys]) -> dict[str, Any]:
    """Each request as a whole dcmtk ``findscu`` run."""
    latencies: list[int] = []
    counts: list[int] = []
    errors: list[str] = []
    cpu_before = tree_cpu_seconds(c.server.pid)
    for keys in requests:
        elapsed, answers, error = run_findscu(c.server, keys)
        latencies.append(elapsed)
        counts.append(-1 if error else answers)
        if error:
            errors.append(error)
    server_cpu = tree_cpu_seconds(c.server.pid) - cpu_before
    return {
        **latency_summary(latencies),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(requests), 3),
        "answers": counts,
        "errors": errors[:5],
    }


MODES: tuple[tuple[str, str], ...] = (
    ("assoc", "in an open association"),
    ("findscu", "whole `findscu` run"),
)


def ingest(
    contenders: list[Contender], args: argparse.Namespace, folder: Path, m: Manifest
) -> None:
    """Both servers get the archive over REST, in slices interleaved between them."""
    bounds = np.linspace(0, m.instances, args.segments + 1).astype(int).tolist()
    for index in range(args.segments):
        files = read_segment(folder, bounds[index], bounds[index + 1])
        for c in contenders if index % 2 == 0 else list(reversed(contenders)):
            if not c.running:
                continue
            try:
                segment = ingest_segment(c, files, args.clients, index)
                c.segments.append(segment)
                c.check_alive()
            except Exception as exc:  # noqa: BLE001 - one server failing keeps the other
                c.fail(exc)
                continue
            log(
                f"{c.kind}: slice {index + 1}/{args.segments} ({bounds[index + 1]} instances): "
                f"{segment['per_s']} inst/s, {segment['errors']} errors"
            )
    for c in contenders:
        if c.running:
            c.statistics = read_json(c.port, "/statistics")
            log(f"{c.kind}: {c.statistics.get('CountInstances')} instances stored")


def measure(contenders: list[Contender], args: argparse.Namespace, m: Manifest) -> dict:
    """Every query, mode and round, servers alternating; results[kind][query][mode]."""
    results: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {
        c.kind: {} for c in contenders
    }
    rng = random.Random(args.seed + 2000)
    turn = 0
    for spec in QUERIES:
        for round_no in range(1, args.rounds + 1):
            requests = [spec.identifier(m, rng) for _ in range(args.requests)]
            for mode, _ in MODES:
                chosen = requests if mode == "assoc" else requests[: args.findscu_runs]
                turn += 1
                for c in contenders if turn % 2 else list(reversed(contenders)):
                    if not c.running:
                        continue
                    settle(args.quiet_threshold, args.quiet_wait)
                    try:
                        if mode == "assoc":
                            outcome = in_association(c, chosen, args.warmup)
                        else:
                            outcome = findscu_runs(c, chosen)
                        c.check_alive()
                    except Exception as exc:  # noqa: BLE001
                        c.fail(exc)
                        continue
                    outcome["round"] = round_no
                    outcome["matching"] = [
                        ";".join(f"{k}={v}" for k, v in keys if v) for keys in chosen
                    ]
                    results[c.kind].setdefault(spec.key, {}).setdefault(mode, []).append(outcome)
                    log(
                        f"{c.kind:8} {spec.key:18} {mode:7} r{round_no}: median "
                        f"{outcome['median_ms']:.2f} ms, server CPU "
                        f"{outcome['server_cpu_ms_per_request']:.2f} ms/request, answers "
                        f"{statistics.median(outcome['answers'])} (median)"
                        + (f", errors {outcome['errors'][:2]}" if outcome["errors"] else "")
                    )
    return results


# ---- report -----------------------------------------------------------------------
def compare(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per query and mode: medians over rounds, per-round ratios, answer check."""
    rows = []
    for spec in QUERIES:
        for mode, mode_label in MODES:
            row: dict[str, Any] = {"query": spec.key, "label": spec.label, "mode": mode}
            row["mode_label"] = mode_label
            runs = {k: results.get(k, {}).get(spec.key, {}).get(mode, []) for k in KINDS}
            for k in KINDS:
                latencies = [r["median_ms"] for r in runs[k] if r.get("count")]
                cpu = [r["server_cpu_ms_per_request"] for r in runs[k]]
                row[f"{k}_median_ms"] = (
                    round(statistics.median(latencies), 3) if latencies else None
                )
                row[f"{k}_cpu_ms"] = round(statistics.median(cpu), 3) if cpu else None
                row[f"{k}_errors"] = sum(len(r["errors"]) for r in runs[k])
            by_round = {r["round"]: r for r in runs["orthanc"]}
            ratios, cpu_ratios, mismatches, answers = [], [], 0, []
            examples: list[str] = []
            for ours in runs["dicomhub"]:
                theirs = by_round.get(ours["round"])
                answers.extend(ours["answers"])
                if theirs is None:
                    continue
                ratios.append(theirs["median_ms"] / ours["median_ms"])
                if ours["server_cpu_ms_per_request"] > 0:
                    cpu_ratios.append(
                        theirs["server_cpu_ms_per_request"] / ours["server_cpu_ms_per_request"]
                    )
                for i, (a, b) in enumerate(zip(ours["answers"], theirs["answers"], strict=True)):
                    if a != b:
                        mismatches += 1
                        examples.append(f"r{ours['round']} {ours['matching'][i]}: O {b}, d {a}")
            row["ratio"] = round(statistics.median(ratios), 2) if ratios else None
            row["round_ratios"] = [round(x, 2) for x in ratios]
            row["cpu_ratio"] = round(statistics.median(cpu_ratios), 2) if cpu_ratios else None
            row["answers_median"] = statistics.median(answers) if answers else None
            row["answer_mismatches"] = mismatches
            row["mismatch_examples"] = examples[:5]
            rows.append(row)
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| Query (study level) | Mode | Orthanc median (ms) | dicomhub median (ms) | "
        f"Ratio (>1: dicomhub faster) | {TARGET_SPEEDUP:g}x? | Server CPU ms/request (O / d) | "
        "Answers (median) |",
        "| --- | --- | ---: | ---: | ---: | :---: | ---: | ---: |",
    ]
    for r in rows:
        met = "-" if r["ratio"] is None else "yes" if r["ratio"] >= TARGET_SPEEDUP else "no"
        if r["answer_mismatches"]:
            met += f" ({r['answer_mismatches']} answer counts differ)"
        if r["orthanc_errors"] or r["dicomhub_errors"]:
            met += f" (errors O {r['orthanc_errors']} / d {r['dicomhub_errors']})"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(
            f"| {r['label']} | {r['mode_label']} | {_fmt(r['orthanc_median_ms'])} | "
            f"{_fmt(r['dicomhub_median_ms'])} | {ratio} | {met} | "
            f"{_fmt(r['orthanc_cpu_ms'])} / {_fmt(r['dicomhub_cpu_ms'])} | "
            f"{r['answers_median'] if r['answers_median'] is not None else '-'} |"
        )
    return "\n".join(lines)


# ---- command line -----------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="C-FIND on a large archive: dicomhub vs the reference Orthanc.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--only", choices=("orthanc", "dicomhub", "both"), default="both")
    add("--instances", type=int, default=100_000, help="archive size")
    add("--seed", type=int, default=1, help="seed of the archive (find.py's) and the queries")
    add("--data-dir", type=Path, default=None, help="keep/reuse generated files here")
    add("--segments", type=int, default=4, help="ingest slices, interleaved between servers")
    add("--clients", type=int, default=4, help="concurrent REST ingest clients")
    add("--rounds", type=int, default=3, help="rounds per query, fresh values each")
    add("--requests", type=int, default=60, help="C-FINDs per round in one association")
    add("--findscu-runs", type=int, default=10, help="findscu runs per round (first requests)")
    add("--warmup", type=int, default=5, help="untimed C-FINDs before each timed series")
    add("--quiet-threshold", type=float, default=0.3, help="cores used by others")
    add("--quiet-wait", type=float, default=3.0, help="longest wait for quiet per phase, s")
    add(
        "--quiet-before-queries",
        type=float,
        default=0.0,
        help="after ingest, wait up to this many seconds for the machine to be quiet",
    )
    add("--orthanc-cmd", default="Orthanc", help="command; the config path is appended")
    add("--dicomhub-cmd", default=f"{shlex.quote(sys.executable)} -m dicomhub")
    add("--dicomhub-config", type=json.loads, default={}, help="extra keys for dicomhub only")
    add("--orthanc-http-port", type=int, default=28162)
    add("--orthanc-dicom-port", type=int, default=24362)
    add("--dicomhub-http-port", type=int, default=28163)
    add("--dicomhub-dicom-port", type=int, default=24363)
    add("--scu-port", type=int, default=24365, help="declared port of the SCU modality (unused)")
    add("--startup-timeout", type=float, default=120.0)
    add("--workdir", type=Path, default=None, help="parent of the temporary folder")
    add("--keep", action="store_true", help="keep storage, configs and logs")
    add("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    for name in ("instances", "segments", "clients", "rounds", "requests", "findscu_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.findscu_runs > args.requests:
        parser.error("--findscu-runs cannot exceed --requests")
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM becomes SystemExit so that the ``finally`` stopping the servers runs."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.time()
    kinds = KINDS if args.only == "both" else (args.only,)
    root = Path(tempfile.mkdtemp(prefix="network-find-bench-", dir=args.workdir))
    folder = args.data_dir or root / "data"
    manifest = load_or_generate(folder, args.instances, args.seed)
    # the C-FIND peer must be a known modality: Orthanc refuses unknown ones by default
    known = {"bench": {"AET": CALLING_AET, "Host": "127.0.0.1", "Port": args.scu_port}}
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
                env_extra={"PYTHONPATH": str(REPO_ROOT)} if kind == "dicomhub" else {},
                config_extra={"DicomModalities": known}
                | (args.dicomhub_config if kind == "dicomhub" else {}),
            ),
        )
        for kind in kinds
    ]
    results: dict[str, Any] = {}
    servers: dict[str, Any] = {}
    quiet: dict[str, float] = {}
    try:
        for c in contenders:
            start_contender(c, args)
        ingest(contenders, args, folder, manifest)
        if args.quiet_before_queries > 0:
            log(f"waiting up to {args.quiet_before_queries:.0f} s for a quiet machine")
            t0 = time.monotonic()
            load = wait_for_quiet(args.quiet_threshold, 5.0, args.quiet_before_queries)
            quiet = {"waited_s": round(time.monotonic() - t0, 1), "load_cores": round(load, 2)}
            log(f"queries start, other processes using {load:.2f} cores")
        queries_started = time.time()
        results = measure(contenders, args, manifest)
    except KeyboardInterrupt:
        log("interrupted")
        queries_started = time.time()
    finally:
        for c in contenders:
            servers[c.kind] = finish(c)
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    rows = compare(results)
    document = {
        "benchmark": "network-find",
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "queries_started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(queries_started)),
        "duration_s": round(time.time() - started, 1),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "git_revision": git_revision(),
        "machine": machine_info(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "data": {
            k: getattr(manifest, k) for k in ("instances", "patients", "studies", "series", "seed")
        },
        "quiet_before_queries": quiet,
        "return_keys": [k for k, _ in STUDY_RETURN_KEYS],
        "comparison": rows,
        "servers": servers,
        "measurements": results,
    }
    date = time.strftime("%Y-%m-%d", time.gmtime(started))
    output = args.output or RESULTS_DIR / f"network-find-{manifest.instances}-{date}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(
        f"Archive: {manifest.instances:,} instances, {manifest.patients:,} patients, "
        f"{manifest.studies:,} studies.\n"
    )
    print(markdown_table(rows))
    log(f"results in {output}")
    return 0 if all(s.get("status") == "ok" for s in servers.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
