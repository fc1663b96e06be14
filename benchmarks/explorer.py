"""The explorer's study list on a large archive, timed in headless Chromium.

Fills a throw-away dicomhub with the search benchmark's generated archive
(``benchmarks/find.py``: 100,000 small instances in ~11,500 studies by default),
then opens ``/app/`` in Debian's Chromium driven by Playwright and measures, in
the browser's own clock:

- **cold**: navigation start -> the first row of the study list in the DOM, in a
  fresh browser context (nothing cached), the number the explorer issue targets;
- **reload**: the same after a reload of an already opened page (files revalidated
  with their ETag);
- **sort**, **next page**, **search**: a click (or Enter) -> the list's status line
  announcing the new rows;
- the durations of the two API requests behind the first page
  (``/tools/find`` and ``/tools/count-resources``) from the Resource Timing API.

Only dicomhub is measured: Orthanc's explorer is a different application (patient
list first, no study list on /tools/find), so there is no like-for-like figure.

    python benchmarks/explorer.py --instances 100000 --data-dir /tmp/find-bench-data-100000

Results: a markdown table on stdout, the JSON in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402 - after the path fix above
    LOOPBACK,
    KeepAliveClient,
    ServerProcess,
    git_revision,
    machine_info,
    port_is_free,
    run_concurrent,
)
from find import DICOM_HEADERS, load_or_generate, read_segment  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Records, in the page's clock, when the first study row appears and when the
#: list's status line last changed (with its text).
PROBE = """
(() => {
  window.__marks = { firstRow: null, status: null, statusText: '' };
  const watch = () => {
    const rows = document.getElementById('study-rows');
    const status = document.getElementById('list-status');
    if (!rows || !status) { requestAnimationFrame(watch); return; }
    new MutationObserver(() => {
      if (window.__marks.firstRow === null && rows.querySelector('tr')) {
        window.__marks.firstRow = performance.now();
      }
    }).observe(rows, { childList: true });
    new MutationObserver(() => {
      window.__marks.status = performance.now();
      window.__marks.statusText = status.textContent;
    }).observe(status, { childList: true, characterData: true, subtree: true });
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', watch);
  else watch();
})();
"""

API_TIMINGS = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/tools/'))
  .map((e) => ({ name: e.name.split('/').pop(), ms: e.duration }))"""


#: The requests behind the first page, by the last part of their path.
REQUESTS = {"find": "find_request", "count-resources": "count_request"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ingest(port: int, folder: Path, count: int, clients: int, chunk: int = 10_000) -> float:
    """POST every generated file; answers the rate in instances per second."""

    def work(conn: KeepAliveClient, data: bytes) -> str | None:
        status, body = conn.request("POST", "/instances", data, DICOM_HEADERS)
        return None if status == 200 else f"HTTP {status}: {body[:200]!r}"

    elapsed = 0.0
    for start in range(0, count, chunk):
        files = read_segment(folder, start, min(count, start + chunk))
        outcome = run_concurrent(LOOPBACK, port, clients, files, work)
        if outcome.errors:
            raise RuntimeError(f"ingest failed: {outcome.errors[:3]}")
        elapsed += outcome.elapsed_s
        log(f"ingested {start + len(files)} / {count} ({len(files) / outcome.elapsed_s:.0f}/s)")
    return count / elapsed if elapsed else 0.0


def wait_status(page: Any, since: float, pattern: str) -> float:
    """Milliseconds from ``since`` (page clock) to the status line matching ``pattern``."""
    page.wait_for_function(
        "([since, pattern]) => window.__marks.status !== null && window.__marks.status > since"
        " && new RegExp(pattern).test(window.__marks.statusText)",
        arg=[since, pattern],
        timeout=60_000,
    )
    return page.evaluate("since => window.__marks.status - since", since)


def click_and_time(page: Any, selector: str, pattern: str) -> float:
    since = page.evaluate(
        "s => { const t = performance.now(); document.querySelector(s).click(); return t; }",
        selector,
    )
    return wait_status(page, since, pattern)


def measure(url: str, rounds: int, chromium: str, name_probe: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    samples: dict[str, list[float]] = {
        "cold": [],
        "reload": [],
        "find_request": [],
        "count_request": [],
        "sort_patient": [],
        "next_page": [],
        "search_name": [],
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            for round_ in range(rounds + 1):  # the first round warms the server up
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(PROBE)
                page = context.new_page()
                page.goto(url)
                page.wait_for_function("() => window.__marks.firstRow !== null", timeout=60_000)
                cold = page.evaluate("() => window.__marks.firstRow")
                api = page.evaluate(API_TIMINGS)
                page.reload()
                page.wait_for_function("() => window.__marks.firstRow !== null", timeout=60_000)
                reload = page.evaluate("() => window.__marks.firstRow")
                wait_status(page, 0, "^Studies 1 to")
                sort = click_and_time(page, 'th[data-sort="PatientName"] button', "^Studies 1 to")
                following = click_and_time(page, "#next", "^Studies 26 to")
                page.fill("#q-name", name_probe)
                search = click_and_time(page, "#search button[type=submit]", "^(Studies|No study)")
                context.close()
                if round_ == 0:
                    continue
                samples["cold"].append(cold)
                samples["reload"].append(reload)
                for entry in api:  # the page also asks /tools/labels (not timed here)
                    key = REQUESTS.get(entry["name"])
                    if key:
                        samples[key].append(entry["ms"])
                samples["sort_patient"].append(sort)
                samples["next_page"].append(following)
                samples["search_name"].append(search)
                log(f"round {round_}: first row {cold:.0f} ms, reload {reload:.0f} ms")
        finally:
            browser.close()
    return samples


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
        "n": len(ordered),
    }


LABELS = {
    "cold": "Open `/app/` in a new context -> first study row (the target: < 1 s)",
    "reload": "Reload -> first study row",
    "find_request": "`POST /tools/find` of the first page (in the browser)",
    "count_request": "`POST /tools/count-resources` (in the browser)",
    "sort_patient": "Click 'Patient' (sort by name) -> rows shown",
    "next_page": "Click 'Next page' -> rows shown",
    "search_name": "Search by patient name -> rows shown",
}


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Archive: {results['instances']} instances, {results['statistics']['CountStudies']} studies.",
        "",
        "| Step | Median (ms) | p95 (ms) | Min | Max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, label in LABELS.items():
        row = results["timings"].get(key)
        if row:
            lines.append(
                f"| {label} | {row['median_ms']} | {row['p95_ms']} | {row['min_ms']} | {row['max_ms']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="generated files (kept and reused)"
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4, help="concurrent uploads while filling")
    parser.add_argument("--http-port", type=int, default=28063)
    parser.add_argument("--dicom-port", type=int, default=24263)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    data_dir = args.data_dir or Path(tempfile.gettempdir()) / f"find-bench-data-{args.instances}"
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_or_generate(data_dir, args.instances, args.seed)
    for port in (args.http_port, args.dicom_port):
        if not port_is_free(port):
            parser.error(f"port {port} is in use")
    with tempfile.TemporaryDirectory(prefix="explorer-bench-") as work:
        server = ServerProcess(
            kind="dicomhub",
            command=[sys.executable, "-m", "dicomhub"],
            workdir=Path(work),
            http_port=args.http_port,
            dicom_port=args.dicom_port,
            aet="BENCHHUB",
            cwd=REPO_ROOT,
        )
        server.start()
        try:
            log(f"filling dicomhub with {args.instances} instances")
            rate = ingest(args.http_port, data_dir, args.instances, args.clients)
            with KeepAliveClient(LOOPBACK, args.http_port) as client:
                status, body = client.request("GET", "/statistics")
            stats = json.loads(body)
            log(f"filled: {stats['CountStudies']} studies, {stats['CountInstances']} instances")
            surname = manifest.surnames[0]
            samples = measure(
                f"http://{LOOPBACK}:{args.http_port}/app/",
                args.rounds,
                args.chromium,
                surname[:3].lower(),
            )
        finally:
            server.stop()
    chromium_version = subprocess.run(
        [args.chromium, "--version"], capture_output=True, text=True
    ).stdout.strip()
    results = {
        "benchmark": "explorer",
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "git": git_revision(),
        "machine": machine_info(),
        "chromium": chromium_version,
        "instances": args.instances,
        "statistics": stats,
        "ingest_per_s": round(rate, 1),
        "rounds": args.rounds,
        "timings": {key: summary(values) for key, values in samples.items() if values},
        "samples_ms": {key: [round(v, 1) for v in values] for key, values in samples.items()},
    }
    output = (
        args.output or RESULTS_DIR / f"explorer-{time.strftime('%Y-%m-%d')}-{args.instances}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(markdown(results))
    log(f"results written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
