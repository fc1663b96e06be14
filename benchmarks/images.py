"""Images benchmark: preview, rendered frame and transcoding of a 512x512 CT, dicomhub
next to the reference Orthanc, same files, same client, one run.

What is timed (sequential requests on one keep-alive connection, rounds interleaved
between the two servers so that machine noise hits both alike):

* ``GET /instances/{id}/preview`` (PNG) of an uncompressed 16-bit CT;
* ``GET /instances/{id}/rendered`` (PNG, the file's window) of the same CT;
* ``POST /tools/create-archive`` with ``Transcode`` to JPEG-LS lossless and to JPEG
  lossless (process 14 SV1), one instance: the transcoding route both servers have
  (Orthanc 1.10.1 has no ``/file?transcode``);
* ``GET /instances/{id}/preview`` of the same CT stored as JPEG 2000 lossless, and
  dicomhub's ``GET /instances/{id}/file?transcode=`` (no counterpart in 1.10.1).

Run: ``python benchmarks/images.py`` (``--help`` for options). The markdown table
goes to stdout, the full results to ``benchmarks/results/images-<date>.json``.
"""

from __future__ import annotations

import argparse
import io
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

import numpy as np  # noqa: E402
from common import (  # noqa: E402 - after the path fix above
    LOOPBACK,
    DataShape,
    KeepAliveClient,
    ServerProcess,
    generate_instances,
    latency_summary,
    machine_info,
    wait_for_quiet,
)
from pydicom import dcmread  # noqa: E402
from pydicom.filewriter import dcmwrite  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KINDS = ("orthanc", "dicomhub")
JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
JPEG_2000 = "1.2.840.10008.1.2.4.90"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
PAM = "image/x-portable-arbitrarymap"
#: The stored forms of each generated CT.
VARIANTS = ("ct", "j2k", "jls", "jpeg")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def phantom_ct(seed: int) -> bytes:
    """A 512x512 CT with body-like structures (not pure noise: codecs and windowing
    behave as on real CT), built on the shared generator's tags."""
    base = generate_instances("img", 1, 512, 512, DataShape(1, 1, 1), seed).files[0]
    ds = dcmread(io.BytesIO(base))
    y, x = np.mgrid[-256:256, -256:256]
    body = (x / 220.0) ** 2 + (y / 170.0) ** 2 < 1
    lungs = ((np.abs(x) - 90) / 60.0) ** 2 + (y / 100.0) ** 2 < 1
    spine = (x / 25.0) ** 2 + ((y - 110) / 25.0) ** 2 < 1
    hu = np.full((512, 512), -1000.0)
    hu[body] = 40
    hu[lungs & body] = -850
    hu[spine] = 700
    noise = np.random.default_rng(seed).normal(0, 12, hu.shape)
    stored = np.clip(hu + noise + 1024, 0, 4095).astype("<u2")
    ds.PixelData = stored.tobytes()
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def compressed(data: bytes, syntax: str) -> bytes:
    """The same CT compressed with pydicom's encoders (pylibjpeg-openjpeg for JPEG 2000,
    pyjpegls for JPEG-LS), or as 8-bit JPEG baseline through Pillow; new SOP UID."""
    from pydicom.uid import generate_uid

    ds = dcmread(io.BytesIO(data))
    if syntax == JPEG_BASELINE:
        from PIL import Image
        from pydicom.encaps import encapsulate

        pixels = (ds.pixel_array >> 4).astype(np.uint8)  # 12 bits -> 8
        jpeg = io.BytesIO()
        Image.fromarray(pixels, "L").save(jpeg, "JPEG", quality=90)
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelData = encapsulate([jpeg.getvalue()])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = syntax
        del ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth
    else:
        plugin = "pylibjpeg" if syntax == JPEG_2000 else ""
        ds.compress(syntax, encoding_plugin=plugin, generate_instance_uid=False)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def upload(client: KeepAliveClient, data: bytes) -> str:
    status, body = client.request("POST", "/instances", data, {"Content-Type": "application/dicom"})
    if status != 200:
        raise RuntimeError(f"upload failed: HTTP {status} {body[:200]!r}")
    return str(json.loads(body)["ID"])


#: method, path, JSON body, Accept header
Request = tuple[str, str, bytes | None, str | None]


def time_requests(client: KeepAliveClient, requests: list[Request]) -> tuple[list[int], int, int]:
    """One timed request each; latencies (ns), last status, last answer size."""
    latencies: list[int] = []
    status, size = 0, 0
    for method, path, body, accept in requests:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if accept:
            headers["Accept"] = accept
        started = time.perf_counter_ns()
        status, answer = client.request(method, path, body, headers)
        latencies.append(time.perf_counter_ns() - started)
        size = len(answer)
    return latencies, status, size


def operations(
    ids: dict[str, list[str]], kind: str, first: int, count: int
) -> dict[str, list[Request]]:
    """``count`` requests of each operation, each on another instance (from ``first``
    on), so that no answer cache (dicomhub caches rendered pictures) is ever hit."""
    return {
        name: [
            _table({k: v[i % len(v)] for k, v in ids.items()}, "dicomhub")[name]
            for i in range(first, first + count)
        ]
        for name in _names(kind)
    }


def _names(kind: str) -> list[str]:
    return list(_table(dict.fromkeys(VARIANTS, ""), kind))


def _table(one: dict[str, str], kind: str) -> dict[str, Request]:
    """Every operation on one instance of each variant (``VARIANTS``)."""
    ct = one["ct"]

    def archive(syntax: str) -> bytes:
        return json.dumps({"Resources": [ct], "Transcode": syntax}).encode()

    def decode(variant: str) -> Request:
        # image-uint16 as PAM: decoding plus a copy, no PNG/zlib cost in the figure
        return ("GET", f"/instances/{one[variant]}/image-uint16", None, PAM)

    ops: dict[str, Request] = {
        "preview 512x512 CT (PNG)": ("GET", f"/instances/{ct}/preview", None, None),
        "rendered 512x512 CT (PNG)": ("GET", f"/instances/{ct}/rendered", None, None),
        "archive + transcode to JPEG-LS": (
            "POST",
            "/tools/create-archive",
            archive(JPEG_LS),
            None,
        ),
        "archive + transcode to JPEG lossless": (
            "POST",
            "/tools/create-archive",
            archive(JPEG_LOSSLESS),
            None,
        ),
        "preview of the JPEG 2000 CT": ("GET", f"/instances/{one['j2k']}/preview", None, None),
        "decode JPEG baseline frame (image-uint16, PAM)": decode("jpeg"),
        "decode JPEG-LS frame (image-uint16, PAM)": decode("jls"),
        "decode JPEG 2000 frame (image-uint16, PAM)": decode("j2k"),
    }
    if kind == "dicomhub":
        ops["file?transcode=JPEG-LS"] = (
            "GET",
            f"/instances/{ct}/file?transcode={JPEG_LS}",
            None,
            None,
        )
        ops["file?transcode=JPEG 2000"] = (
            "GET",
            f"/instances/{ct}/file?transcode={JPEG_2000}",
            None,
            None,
        )
    return ops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--orthanc-cmd", default="Orthanc")
    parser.add_argument("--dicomhub-cmd", default=f"{shlex.quote(sys.executable)} -m dicomhub")
    parser.add_argument("--orthanc-http-port", type=int, default=28171)
    parser.add_argument("--orthanc-dicom-port", type=int, default=24171)
    parser.add_argument("--dicomhub-http-port", type=int, default=28172)
    parser.add_argument("--dicomhub-dicom-port", type=int, default=24172)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    root = Path(tempfile.mkdtemp(prefix="images-bench-"))
    path_env = os.environ.get("PYTHONPATH", "")
    servers = {
        kind: ServerProcess(
            kind=kind,
            command=shlex.split(getattr(args, f"{kind}_cmd")),
            workdir=root / kind,
            http_port=getattr(args, f"{kind}_http_port"),
            dicom_port=getattr(args, f"{kind}_dicom_port"),
            aet=f"IMG{kind.upper()}"[:16],
            cwd=REPO_ROOT,
            env_extra=(
                {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path_env}".rstrip(os.pathsep)}
                if kind == "dicomhub"
                else {}
            ),
        )
        for kind in KINDS
    }
    distinct = args.warmup + args.rounds * args.requests
    log(f"generating {distinct} CTs and their JPEG 2000 copies")
    cts = [phantom_ct(args.seed + i) for i in range(distinct)]
    files = {
        "ct": cts,
        "j2k": [compressed(data, JPEG_2000) for data in cts],
        "jls": [compressed(data, JPEG_LS) for data in cts],
        "jpeg": [compressed(data, JPEG_BASELINE) for data in cts],
    }
    samples: dict[str, dict[str, list[int]]] = {kind: {} for kind in KINDS}
    answers: dict[str, dict[str, list[int]]] = {kind: {} for kind in KINDS}
    systems: dict[str, Any] = {}
    try:
        clients: dict[str, KeepAliveClient] = {}
        ids: dict[str, dict[str, list[str]]] = {}
        distinct = args.warmup + args.rounds * args.requests
        for kind, server in servers.items():
            log(f"{kind}: starting")
            server.start()
            systems[kind] = {"Version": server.system.get("Version"), "pid": server.pid}
            client = KeepAliveClient(LOOPBACK, server.http_port)
            clients[kind] = client
            ids[kind] = {
                variant: [upload(client, data) for data in files[variant]] for variant in VARIANTS
            }
            for requests in operations(ids[kind], kind, 0, args.warmup).values():
                time_requests(client, requests)
        for round_no in range(args.rounds):
            wait_for_quiet(1.5, 0.5, 20)
            order = KINDS if round_no % 2 == 0 else tuple(reversed(KINDS))
            for kind in order:
                first = args.warmup + round_no * args.requests
                for name, requests in operations(ids[kind], kind, first, args.requests).items():
                    lat, status, size = time_requests(clients[kind], requests)
                    samples[kind].setdefault(name, []).extend(lat)
                    answers[kind][name] = [status, size]
            log(f"round {round_no + 1}/{args.rounds} done")
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    names = _names("dicomhub")
    rows = []
    print("| operation | Orthanc median (min) ms | dicomhub median (min) ms | dicomhub / Orthanc |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        ours = samples["dicomhub"].get(name)
        theirs = samples["orthanc"].get(name)
        ours_ms = statistics.median(ours) / 1e6 if ours else None
        ok_theirs = theirs and answers["orthanc"][name][0] == 200
        theirs_ms = statistics.median(theirs) / 1e6 if ok_theirs else None
        ratio = f"{ours_ms / theirs_ms:.2f}" if ours_ms and theirs_ms else "-"
        theirs_text = (
            f"{theirs_ms:.1f} ({min(theirs) / 1e6:.1f})"
            if theirs_ms and theirs
            else (f"HTTP {answers['orthanc'][name][0]}" if theirs else "n/a")
        )
        ours_text = f"{ours_ms:.1f} ({min(ours) / 1e6:.1f})" if ours_ms and ours else "-"
        print(f"| {name} | {theirs_text} | {ours_text} | {ratio} |")
        rows.append(
            {
                "operation": name,
                "orthanc": latency_summary(theirs) if theirs else None,
                "orthanc_answer": answers["orthanc"].get(name),
                "dicomhub": latency_summary(ours) if ours else None,
                "dicomhub_answer": answers["dicomhub"].get(name),
            }
        )
    print()
    print("| decoding throughput (one client) | Orthanc frames/s | dicomhub frames/s |")
    print("| --- | ---: | ---: |")
    for row in rows:
        if row["operation"].startswith("decode"):
            rates = []
            for kind in KINDS:
                summary = row[kind]
                ok = summary and row[f"{kind}_answer"][0] == 200
                rates.append(f"{1000 / summary['median_ms']:.0f}" if ok else "-")
            print(f"| {row['operation']} | {rates[0]} | {rates[1]} |")
    document = {
        "benchmark": "images",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "machine": machine_info(),
        "servers": systems,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "rows": rows,
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    output = args.output or RESULTS_DIR / f"images-{time.strftime('%Y-%m-%d')}.json"
    output.write_text(json.dumps(document, indent=2), encoding="utf-8")
    log(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
