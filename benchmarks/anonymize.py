"""Modification benchmark: anonymize and modify a whole CT study, dicomhub next to the
reference Orthanc, same files, same client, one run.

Each server gets the same study (``--instances`` CT instances of 512x512, 16-bit, in
one series). Each round times, on each server (the order alternates between rounds):

* ``POST /studies/{id}/anonymize`` with ``{}`` (synchronous: the answer comes once
  every anonymized instance is stored);
* ``POST /studies/{id}/modify`` replacing ``StudyDescription``.

The new study is deleted after each timing, so every round starts from the same
archive. Run: ``python benchmarks/anonymize.py`` (``--help`` for options); the
markdown table goes to stdout, the full results to
``benchmarks/results/anonymize-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402 - after the path fix above
    LOOPBACK,
    DataShape,
    KeepAliveClient,
    ServerProcess,
    generate_instances,
    machine_info,
    wait_for_quiet,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("orthanc", "dicomhub")
OPERATIONS = {
    "anonymize study": ("anonymize", {}),
    "modify study (StudyDescription)": ("modify", {"Replace": {"StudyDescription": "bench"}}),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def call(client: KeepAliveClient, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    status, answer = client.request(method, path, data, headers)
    if status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {status} {answer[:300]!r}")
    return json.loads(answer) if answer else None


def time_operation(client: KeepAliveClient, study: str, route: str, body: dict) -> float:
    """Seconds for one synchronous modification; the new study is deleted afterwards."""
    started = time.perf_counter()
    answer = call(client, "POST", f"/studies/{study}/{route}", body)
    elapsed = time.perf_counter() - started
    # An anonymization creates a new patient; a modification a study of the same one.
    target = f"/patients/{answer['PatientID']}" if route == "anonymize" else answer["Path"]
    call(client, "DELETE", target)
    return elapsed


ZIP = "ZIP of the study (GET /archive)"


def time_archive(client: KeepAliveClient, study: str) -> float:
    """Seconds to receive the whole ZIP of the study (streamed by both servers)."""
    started = time.perf_counter()
    status, body = client.request("GET", f"/studies/{study}/archive")
    elapsed = time.perf_counter() - started
    if status != 200 or body[:2] != b"PK":
        raise RuntimeError(f"GET /studies/{study}/archive: HTTP {status}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=500, help="instances in the study")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--orthanc-cmd", default="Orthanc")
    parser.add_argument("--dicomhub-cmd", default=f"{shlex.quote(sys.executable)} -m dicomhub")
    parser.add_argument("--orthanc-http-port", type=int, default=28181)
    parser.add_argument("--orthanc-dicom-port", type=int, default=24181)
    parser.add_argument("--dicomhub-http-port", type=int, default=28182)
    parser.add_argument("--dicomhub-dicom-port", type=int, default=24182)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    root = Path(tempfile.mkdtemp(prefix="anonymize-bench-"))
    path_env = os.environ.get("PYTHONPATH", "")
    servers = {
        kind: ServerProcess(
            kind=kind,
            command=shlex.split(getattr(args, f"{kind}_cmd")),
            workdir=root / kind,
            http_port=getattr(args, f"{kind}_http_port"),
            dicom_port=getattr(args, f"{kind}_dicom_port"),
            aet=f"ANON{kind.upper()}"[:16],
            cwd=REPO_ROOT,
            env_extra=(
                {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path_env}".rstrip(os.pathsep)}
                if kind == "dicomhub"
                else {}
            ),
        )
        for kind in KINDS
    }
    log(f"generating a study of {args.instances} CT instances")
    files = generate_instances("anon", args.instances, 512, 512, DataShape(1, 1, 1), args.seed)
    samples: dict[str, dict[str, list[float]]] = {kind: {} for kind in KINDS}
    systems: dict[str, Any] = {}
    try:
        clients: dict[str, KeepAliveClient] = {}
        studies: dict[str, str] = {}
        for kind, server in servers.items():
            log(f"{kind}: starting and uploading")
            server.start()
            systems[kind] = {"Version": server.system.get("Version"), "pid": server.pid}
            client = KeepAliveClient(LOOPBACK, server.http_port)
            clients[kind] = client
            for data in files.files:
                status, body = client.request(
                    "POST", "/instances", data, {"Content-Type": "application/dicom"}
                )
                if status != 200:
                    raise RuntimeError(f"{kind}: upload failed: HTTP {status}")
                studies[kind] = json.loads(body)["ParentStudy"]
        for round_no in range(args.rounds):
            wait_for_quiet(1.5, 0.5, 20)
            order = KINDS if round_no % 2 == 0 else tuple(reversed(KINDS))
            for kind in order:
                for name, (route, body) in OPERATIONS.items():
                    seconds = time_operation(clients[kind], studies[kind], route, body)
                    samples[kind].setdefault(name, []).append(seconds)
                samples[kind].setdefault(ZIP, []).append(time_archive(clients[kind], studies[kind]))
            log(f"round {round_no + 1}/{args.rounds} done")
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    rows = []
    print(
        f"| operation ({args.instances} instances) | Orthanc median (min) s | dicomhub median (min) s | dicomhub / Orthanc |"
    )
    print("| --- | ---: | ---: | ---: |")
    for name in [*OPERATIONS, ZIP]:
        theirs, ours = samples["orthanc"][name], samples["dicomhub"][name]
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(
            f"| {name} | {statistics.median(theirs):.2f} ({min(theirs):.2f}) "
            f"| {statistics.median(ours):.2f} ({min(ours):.2f}) | {ratio:.2f} |"
        )
        rows.append({"operation": name, "orthanc_s": theirs, "dicomhub_s": ours})
    document = {
        "benchmark": "anonymize",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine_info(),
        "servers": systems,
        "instances": args.instances,
        "rounds": args.rounds,
        "rows": rows,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    output = args.output or RESULTS_DIR / f"anonymize-{time.strftime('%Y-%m-%d')}.json"
    output.write_text(json.dumps(document, indent=2), encoding="utf-8")
    log(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
