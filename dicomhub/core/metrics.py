"""What ``/tools/metrics-prometheus`` publishes.

Two parts:

- Orthanc's own metric names, so that dashboards and alerts written for Orthanc
  keep working. Orthanc writes them as bare ``name value timestamp`` lines (no
  ``# TYPE``), and so do we. Only the ones this server can compute truthfully are
  published: the counts and sizes of the archive, the jobs counters (Orthanc
  publishes them at every scrape, whether or not a job ever ran; this server has no
  jobs engine yet, so they are truly 0), the REST requests in flight and the
  longest REST request of the last ten seconds. Orthanc's timings of the storage
  area and of C-STORE, and its DICOM cache metrics, are left out rather than
  invented.
- Request latency histograms that Orthanc lacks, in the standard Prometheus
  format (``dicomhub_http_request_duration_seconds``).

State is per process: with several HTTP workers, each scrape describes the worker
that answered (the archive counts are shared through the index and always global).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest

#: Orthanc's window for ``orthanc_rest_api_duration_ms`` (a maximum over 10 seconds).
_DURATION_WINDOW = 10.0

#: Latency buckets in seconds: REST calls range from sub-millisecond reads to
#: archive downloads of minutes.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class HttpMetrics:
    """Counters the HTTP middleware feeds; cheap enough to run on every request."""

    def __init__(self) -> None:
        self.enabled = True
        self.active = 0
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._window_max = 0.0
        self._previous_max = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram(
            "dicomhub_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and status class.",
            ("method", "status"),
            registry=self.registry,
            buckets=_BUCKETS,
        )
        self._children: dict[tuple[str, int], Any] = {}

    def started(self) -> None:
        with self._lock:
            self.active += 1

    def withdrawn(self) -> None:
        """A request counted by ``started`` is handed to a layer that counts it again."""
        with self._lock:
            self.active -= 1

    def finished(self, method: str, status: int, seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.active -= 1
            if now - self._window_start >= _DURATION_WINDOW:
                self._previous_max = (
                    self._window_max if now - self._window_start < 2 * _DURATION_WINDOW else 0.0
                )
                self._window_start, self._window_max = now, 0.0
            self._window_max = max(self._window_max, seconds)
        if self.enabled:
            key = (method, status // 100)
            child = self._children.get(key)
            if child is None:  # labels() takes a lock and formats: once per key
                child = self._children[key] = self.latency.labels(method, f"{status // 100}xx")
            child.observe(seconds)

    def recent_max_ms(self) -> int:
        """The longest request of the current or previous 10-second window, in ms."""
        now = time.monotonic()
        with self._lock:
            if now - self._window_start >= 2 * _DURATION_WINDOW:
                return 0
            if now - self._window_start >= _DURATION_WINDOW:
                return round(self._window_max * 1000)
            return round(max(self._window_max, self._previous_max) * 1000)


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.9g}"


def prometheus_text(statistics: dict[str, Any], http: HttpMetrics) -> str:
    """The scrape body: Orthanc's lines first, then our histograms.

    ``statistics`` is ``core.reading.global_statistics``'s answer.
    """
    stamp = int(time.time() * 1000)
    mb = 1024 * 1024
    values: dict[str, float] = {
        "orthanc_count_instances": statistics["CountInstances"],
        "orthanc_count_patients": statistics["CountPatients"],
        "orthanc_count_series": statistics["CountSeries"],
        "orthanc_count_studies": statistics["CountStudies"],
        "orthanc_disk_size_mb": int(statistics["TotalDiskSize"]) / mb,
        "orthanc_jobs_completed": 0,
        "orthanc_jobs_failed": 0,
        "orthanc_jobs_pending": 0,
        "orthanc_jobs_running": 0,
        "orthanc_jobs_success": 0,
        "orthanc_rest_api_active_requests": http.active,
        "orthanc_rest_api_duration_ms": http.recent_max_ms(),
        "orthanc_uncompressed_size_mb": int(statistics["TotalUncompressedSize"]) / mb,
    }
    lines = [f"{name} {_number(value)} {stamp}" for name, value in sorted(values.items())]
    return "\n".join(lines) + "\n" + generate_latest(http.registry).decode()
