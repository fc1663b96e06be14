"""Memory while streaming a large ZIP: the resident memory of each server while one
client downloads ``GET /studies/{id}/archive`` of a study of about 2 GB.

Each server (dicomhub and the reference Orthanc, one after the other) gets the same
study of ``--instances`` CT instances of 512x512 (about 0.5 MiB each), then its
resident memory is sampled while idle and during the download, which the client
reads in chunks and discards. The figure is the peak above idle (the issue's bound:
200 MB). Run: ``python benchmarks/archive_memory.py`` (``--help`` for options); the
table goes to stdout, the full results to ``benchmarks/results/archive-memory-<date>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402 - after the path fix above
    LOOPBACK,
    REPO_ROOT,
    DataShape,
    KeepAliveClient,
    RssSampler,
    ServerProcess,
    generate_instances,
    git_revision,
    machine_info,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("orthanc", "dicomhub")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def download(port: int, study: str) -> tuple[int, float]:
    """Bytes received and seconds taken, reading 1 MiB at a time."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=600)
    started = time.perf_counter()
    conn.request("GET", f"/studies/{study}/archive")
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"GET /studies/{study}/archive: HTTP {response.status}")
    size = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
    conn.close()
    return size, time.perf_counter() - started


def measure(server: ServerProcess, files: list[bytes]) -> dict[str, Any]:
    server.start()
    client = KeepAliveClient(LOOPBACK, server.http_port)
    study = ""
    for data in files:
        status, body = client.request(
            "POST", "/instances", data, {"Content-Type": "application/dicom"}
        )
        if status != 200:
            raise RuntimeError(f"{server.kind}: upload failed: HTTP {status}")
        study = json.loads(body)["ParentStudy"]
    client.close()
    time.sleep(2)  # let the stores settle before sampling the idle memory
    sampler = RssSampler(server.pid, interval_s=0.02)
    sampler.start()
    time.sleep(1)
    sampler.phase("idle")
    size, seconds = download(server.http_port, study)
    sampler.phase("download")
    sampler.stop()
    peak = sampler.phases["download"]["peak_rss_mib"]
    idle = sampler.phases["idle"]["end_rss_mib"]
    return {
        "version": server.system.get("Version"),
        "zip_bytes": size,
        "seconds": round(seconds, 2),
        "idle_rss_mib": idle,
        "peak_rss_mib": peak,
        "above_idle_mib": round(peak - idle, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=4000, help="~0.5 MiB each")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--orthanc-cmd", default="Orthanc")
    parser.add_argument("--dicomhub-cmd", default=f"{shlex.quote(sys.executable)} -m dicomhub")
    parser.add_argument("--orthanc-http-port", type=int, default=28191)
    parser.add_argument("--orthanc-dicom-port", type=int, default=24191)
    parser.add_argument("--dicomhub-http-port", type=int, default=28192)
    parser.add_argument("--dicomhub-dicom-port", type=int, default=24192)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    root = Path(tempfile.mkdtemp(prefix="archive-memory-"))
    path_env = os.environ.get("PYTHONPATH", "")
    log(f"generating {args.instances} CT instances")
    files = generate_instances("zip", args.instances, 512, 512, DataShape(1, 1, 1), args.seed)
    results: dict[str, Any] = {}
    try:
        for kind in KINDS:
            server = ServerProcess(
                kind=kind,
                command=shlex.split(getattr(args, f"{kind}_cmd")),
                workdir=root / kind,
                http_port=getattr(args, f"{kind}_http_port"),
                dicom_port=getattr(args, f"{kind}_dicom_port"),
                aet=f"ZIP{kind.upper()}"[:16],
                cwd=REPO_ROOT,
                env_extra=(
                    {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path_env}".rstrip(os.pathsep)}
                    if kind == "dicomhub"
                    else {}
                ),
            )
            log(f"{kind}: starting, uploading, downloading")
            try:
                results[kind] = measure(server, files.files)
            finally:
                server.stop()
                shutil.rmtree(root / kind, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print("| server | ZIP (MiB) | seconds | idle RSS (MiB) | peak RSS (MiB) | above idle (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, row in results.items():
        print(
            f"| {kind} {row['version']} | {row['zip_bytes'] / 2**20:.0f} | {row['seconds']} "
            f"| {row['idle_rss_mib']} | {row['peak_rss_mib']} | {row['above_idle_mib']} |"
        )
    document = {
        "benchmark": "archive-memory",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "git_revision": git_revision(),
        "machine": machine_info(),
        "instances": args.instances,
        "results": results,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    output = args.output or RESULTS_DIR / f"archive-memory-{time.strftime('%Y-%m-%d')}.json"
    output.write_text(json.dumps(document, indent=2), encoding="utf-8")
    log(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
