"""Modification benchmark: anonymize and modify a whole CT study, dicomhub next to the
reference Orthanc, same files, same client, one run.

Each server gets the same study (``--instances`` CT instances of 512x512, 16-bit, in
one series). Each round times, on each server (the order alternates between rounds):

* ``POST /studies/{id}/anonymize`` with ``{}`` (synchronous: the answer comes once
  every anonymized instance is stored);
* ``POST /studies/{id}/modify`` replacing ``StudyDescription``.

The new study is deleted after each timing, so every round starts from the same
archive. Next to each time the script records the CPU time the server used for the
operation (its process tree, from /proc) and how many cores the other processes of
the machine kept busy meanwhile: on a shared machine the CPU time per instance is
the figure that does not depend on the neighbours, the ratio of times the one that
the issue asks about. Run: ``python benchmarks/anonymize.py`` (``--help`` for options); the
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
from dataclasses import asdict, dataclass
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
    git_revision,
    machine_info,
    system_busy_seconds,
    tree_cpu_seconds,
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


@dataclass
class Sample:
    """One timed operation on one server."""

    seconds: float
    server_cpu_s: float  # CPU time of the server's process tree during the operation
    others_cores: float  # cores kept busy by every other process meanwhile


class Meter:
    """Measures one operation: wall time, the server's CPU, the rest of the machine's."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids
        self.harness = os.getpid()

    def _cpu(self) -> tuple[float, list[float], float]:
        servers = [tree_cpu_seconds(pid) for pid in self.server_pids]
        return system_busy_seconds(), servers, tree_cpu_seconds(self.harness)

    def start(self) -> None:
        self._started = time.perf_counter()
        self._before = self._cpu()

    def stop(self, measured: int) -> Sample:
        """``measured``: the PID of the server the operation ran on."""
        elapsed = time.perf_counter() - self._started
        busy0, servers0, harness0 = self._before
        busy1, servers1, harness1 = self._cpu()
        used = [after - before for before, after in zip(servers0, servers1, strict=True)]
        ours = busy1 - busy0 - sum(used) - (harness1 - harness0)
        cpu = used[self.server_pids.index(measured)]
        return Sample(elapsed, cpu, max(0.0, ours) / elapsed if elapsed > 0 else 0.0)


def time_operation(
    client: KeepAliveClient, meter: Meter, pid: int, study: str, route: str, body: dict
) -> Sample:
    """One synchronous modification; the new study is deleted afterwards."""
    meter.start()
    answer = call(client, "POST", f"/studies/{study}/{route}", body)
    sample = meter.stop(pid)
    # An anonymization creates a new patient; a modification a study of the same one.
    target = f"/patients/{answer['PatientID']}" if route == "anonymize" else answer["Path"]
    call(client, "DELETE", target)
    return sample


ZIP = "ZIP of the study (GET /archive)"


def time_archive(client: KeepAliveClient, meter: Meter, pid: int, study: str) -> Sample:
    """Receiving the whole ZIP of the study (streamed by both servers)."""
    meter.start()
    status, body = client.request("GET", f"/studies/{study}/archive")
    sample = meter.stop(pid)
    if status != 200 or body[:2] != b"PK":
        raise RuntimeError(f"GET /studies/{study}/archive: HTTP {status}")
    return sample


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
    samples: dict[str, dict[str, list[Sample]]] = {kind: {} for kind in KINDS}
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
        meter = Meter([servers[kind].pid for kind in KINDS])
        load_before = os.getloadavg()
        for round_no in range(args.rounds):
            wait_for_quiet(1.5, 0.5, 20)
            order = KINDS if round_no % 2 == 0 else tuple(reversed(KINDS))
            for kind in order:
                pid = servers[kind].pid
                for name, (route, body) in OPERATIONS.items():
                    sample = time_operation(clients[kind], meter, pid, studies[kind], route, body)
                    samples[kind].setdefault(name, []).append(sample)
                sample = time_archive(clients[kind], meter, pid, studies[kind])
                samples[kind].setdefault(ZIP, []).append(sample)
            log(f"round {round_no + 1}/{args.rounds} done")
        load_after = os.getloadavg()
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    rows = []
    print(
        f"| operation ({args.instances} instances) | Orthanc median (min) s "
        "| dicomhub median (min) s | dicomhub / Orthanc "
        "| CPU ms per instance, Orthanc / dicomhub | other processes (cores) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in [*OPERATIONS, ZIP]:
        theirs, ours = samples["orthanc"][name], samples["dicomhub"][name]
        their_s, our_s = [s.seconds for s in theirs], [s.seconds for s in ours]
        ratio = statistics.median(our_s) / statistics.median(their_s)
        their_cpu = statistics.median(s.server_cpu_s for s in theirs) / args.instances * 1000
        our_cpu = statistics.median(s.server_cpu_s for s in ours) / args.instances * 1000
        others = [s.others_cores for s in theirs + ours]
        print(
            f"| {name} | {statistics.median(their_s):.2f} ({min(their_s):.2f}) "
            f"| {statistics.median(our_s):.2f} ({min(our_s):.2f}) | {ratio:.2f} "
            f"| {their_cpu:.2f} / {our_cpu:.2f} | {min(others):.2f}-{max(others):.2f} |"
        )
        rows.append(
            {
                "operation": name,
                "orthanc_s": their_s,
                "dicomhub_s": our_s,
                "orthanc_samples": [asdict(s) for s in theirs],
                "dicomhub_samples": [asdict(s) for s in ours],
            }
        )
    document = {
        "benchmark": "anonymize",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine_info(),
        "revision": git_revision(),
        "load_average_before": load_before,
        "load_average_after": load_after,
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
