"""Ingest rate of an empty archive against a large one, side by side in one run.

The search issue asks that the ingest rate not drop by more than 10 % between an empty
archive and 1,000,000 instances. ``find.py`` records the rate of each slice while it
fills its archive, but on a shared machine the first and last slices run minutes
apart under different loads. Here two dicomhub servers ingest the same new instances
in interleaved slices: one starts empty, the other starts on a copy of the index of a
large archive (``--large-index``: the ``dicomhub-index.db`` of a ``find.py --keep``
run, or a copy taken with ``sqlite3 DB ".backup COPY"``). The storage folder of the
large one starts empty: only the index grows with the archive, the files of other
instances are never read by an ingest.

    python benchmarks/find.py --only dicomhub --instances 1000000 --keep ...
    python benchmarks/ingest_growth.py --large-index /path/to/dicomhub-index.db
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (python benchmarks/ingest_growth.py): make `common` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import find as search_bench  # noqa: E402 - after the path fix above
from common import ServerProcess, git_revision, machine_info  # noqa: E402 - after the path fix

KINDS = ("empty", "large")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--large-index", type=Path, required=True, help="SQLite index of a large archive")
    add("--instances", type=int, default=20000, help="new instances ingested by each")
    add("--segments", type=int, default=10, help="interleaved slices")
    add("--clients", type=int, default=4, help="concurrent ingest clients")
    add("--seed", type=int, default=7, help="seed of the new instances (not the archive's)")
    add("--data-dir", type=Path, default=None, help="keep/reuse the generated files here")
    add("--dicomhub-cmd", default=f"{sys.executable} -m dicomhub")
    add("--http-ports", type=int, nargs=2, default=(28061, 28062))
    add("--dicom-ports", type=int, nargs=2, default=(24261, 24262))
    add("--quiet-threshold", type=float, default=0.3, help="cores used by others")
    add("--quiet-wait", type=float, default=3.0, help="longest wait for quiet per slice, s")
    add("--startup-timeout", type=float, default=300.0, help="seconds")
    add("--workdir", type=Path, default=None, help="parent of the temporary folder")
    add("--output", type=Path, default=None, help="JSON result file")
    args = parser.parse_args(argv)
    if not args.large_index.is_file():
        parser.error(f"--large-index: no such file {args.large_index}")
    return args


def copy_index(source: Path, workdir: Path) -> int:
    """The large index (and its WAL, if the copy was taken live) into the server's
    index folder; returns the bytes copied."""
    target = workdir / "index"
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for suffix in ("", "-wal"):
        path = Path(str(source) + suffix)
        if path.is_file():
            shutil.copyfile(path, target / f"dicomhub-index.db{suffix}")
            copied += path.stat().st_size
    return copied


def summary(segments: list[dict[str, Any]]) -> dict[str, Any]:
    done = [s for s in segments if s["per_s"]]
    instances = sum(s["instances"] - s["errors"] for s in done)
    elapsed = sum(s["elapsed_s"] for s in done)
    cpu = sum(s["server_cpu_ms_per_instance"] * s["instances"] for s in done)
    return {
        "instances": instances,
        "per_s": round(instances / elapsed, 1) if elapsed else None,
        "server_cpu_ms_per_instance": round(cpu / instances, 3) if instances else None,
        "errors": sum(s["errors"] for s in segments),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, search_bench._exit_on_sigterm)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    root = Path(tempfile.mkdtemp(prefix="ingest-growth-", dir=args.workdir))
    folder = args.data_dir or root / "data"
    manifest = search_bench.load_or_generate(folder, args.instances, args.seed)
    contenders = [
        search_bench.Contender(
            kind=kind,
            server=ServerProcess(
                kind="dicomhub",
                command=shlex.split(args.dicomhub_cmd),
                workdir=root / kind,
                http_port=args.http_ports[n],
                dicom_port=args.dicom_ports[n],
                aet=f"GROWTH{n}",
                cwd=search_bench.REPO_ROOT,
                env_extra={"PYTHONPATH": search_bench._pythonpath_with_repo()},
            ),
        )
        for n, kind in enumerate(KINDS)
    ]
    large_count = None
    try:
        copied = copy_index(args.large_index, root / "large")
        search_bench.log(f"large: index copied ({copied / 2**20:.0f} MiB)")
        for c in contenders:
            search_bench.start_contender(c, args)
        large = contenders[1]
        if large.running:
            large_count = search_bench.read_json(large.port, "/statistics")["CountInstances"]
            search_bench.log(f"large: {large_count:,} instances before the run")
        bounds = [round(i * manifest.instances / args.segments) for i in range(args.segments + 1)]
        for index in range(args.segments):
            files = search_bench.read_segment(folder, bounds[index], bounds[index + 1])
            order = contenders if index % 2 == 0 else list(reversed(contenders))
            for c in order:
                if not c.running:
                    continue
                search_bench.settle(args.quiet_threshold, args.quiet_wait)
                try:
                    segment = search_bench.ingest_segment(c, files, args.clients, index)
                    c.segments.append(segment)
                    c.check_alive()
                except Exception as exc:  # noqa: BLE001 - reported, the other goes on
                    c.fail(exc)
                    continue
                search_bench.log(
                    f"{c.kind}: slice {index + 1}/{args.segments}: {segment['per_s']} inst/s, "
                    f"{segment['server_cpu_ms_per_instance']} ms CPU/inst, "
                    f"{segment['errors']} errors"
                )
    finally:
        results = {c.kind: search_bench.finish(c) for c in contenders}
        shutil.rmtree(root, ignore_errors=True)

    summaries = {kind: summary(r["ingest_segments"]) for kind, r in results.items()}
    ratios = [
        large["per_s"] / empty["per_s"]
        for empty, large in zip(
            results["empty"]["ingest_segments"], results["large"]["ingest_segments"], strict=False
        )
        if empty["per_s"] and large["per_s"]
    ]
    ratios.sort()
    median_ratio = round(ratios[len(ratios) // 2], 3) if ratios else None
    document = {
        "benchmark": "ingest_growth",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "git_revision": git_revision(),
        "machine": machine_info(),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "large_archive_instances": large_count,
        "servers": results,
        "summary": summaries,
        "slice_ratios_large_over_empty": [round(r, 3) for r in ratios],
        "median_ratio_large_over_empty": median_ratio,
    }
    output = (
        args.output or search_bench.RESULTS_DIR / f"ingest-growth-{time.strftime('%Y-%m-%d')}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    search_bench.log(f"results written to {output}")
    print(f"large archive: {large_count} instances before the run")
    for kind in KINDS:
        s = summaries[kind]
        print(f"{kind}: {s['per_s']} inst/s, {s['server_cpu_ms_per_instance']} ms CPU/inst")
    print(f"rate with the large archive / empty, median of slices: {median_ratio}")
    return 0 if all(r["status"] == "ok" for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
