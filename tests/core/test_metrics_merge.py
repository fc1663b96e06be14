"""Merging the Prometheus scrapes of several HTTP workers into the server's one."""

from __future__ import annotations

from dicomhub.core.metrics import HttpMetrics, prometheus_text
from dicomhub.core.metrics_merge import merge_scrapes

STATISTICS = {
    "CountInstances": 7,
    "CountPatients": 1,
    "CountSeries": 2,
    "CountStudies": 1,
    "TotalDiskSize": 0,
    "TotalUncompressedSize": 0,
}


def _value(scrape: str, prefix: str) -> float:
    (line,) = [line for line in scrape.splitlines() if line.startswith(prefix)]
    return float(line.split()[1])


def test_counts_add_up_and_the_archive_is_reported_once() -> None:
    first, second = HttpMetrics(), HttpMetrics()
    for seconds in (0.0005, 0.02, 0.3):
        first.started()
        first.finished("GET", 200, seconds)
    second.started()
    second.finished("GET", 200, 2.0)
    second.started()
    second.finished("POST", 404, 0.004)
    second.started()  # one request in flight
    merged = merge_scrapes(
        [prometheus_text(STATISTICS, first), prometheus_text(STATISTICS, second)]
    )
    get = 'dicomhub_http_request_duration_seconds_count{method="GET",status="2xx"}'
    post = 'dicomhub_http_request_duration_seconds_count{method="POST",status="4xx"}'
    assert _value(merged, get) == 4
    assert _value(merged, post) == 1
    bucket = 'dicomhub_http_request_duration_seconds_bucket{le="0.025",method="GET",status="2xx"}'
    assert _value(merged, bucket) == 2
    total = 'dicomhub_http_request_duration_seconds_sum{method="GET",status="2xx"}'
    assert abs(_value(merged, total) - 2.3205) < 1e-9
    assert _value(merged, "orthanc_count_instances ") == 7  # shared, not doubled
    assert _value(merged, "orthanc_rest_api_active_requests ") == 1
    assert _value(merged, "orthanc_rest_api_duration_ms ") == 2000  # the longest
    assert merged.count("# TYPE dicomhub_http_request_duration_seconds histogram") == 1
    # each family stays one group: no sample of a family after another family began
    families = [line.split()[2] for line in merged.splitlines() if line.startswith("# TYPE")]
    seen: list[str] = []
    for line in merged.splitlines():
        if line.startswith("dicomhub_"):
            family = next(f for f in reversed(families) if line.startswith(f))
            if not seen or seen[-1] != family:
                assert family not in seen
                seen.append(family)
