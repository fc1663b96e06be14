"""Operations endpoints: plugins, log levels, metrics, shutdown, reset, conformance."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from archive_checks import assert_orthanc_error, upload
from conftest import RunningServer
from dicom_factory import make_dicom
from prometheus_client.parser import text_string_to_metric_families

CATEGORIES = ("generic", "http", "dicom", "jobs", "lua", "plugins", "sqlite")


def _metrics(server: RunningServer) -> dict[str, float]:
    """Every sample of a scrape, by name, parsed by prometheus-client's own parser."""
    response = server.client.get("/tools/metrics-prometheus")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = sample.name
            if sample.labels:
                key += "{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) + "}"
            samples[key] = sample.value
    return samples


def test_plugins_as_a_server_without_plugins(server: RunningServer) -> None:
    assert server.client.get("/plugins").json() == ["explorer.js"]
    script = server.client.get("/plugins/explorer.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert script.text.startswith("//")
    assert server.client.get("/plugins/dicom-web").status_code == 404


def test_log_level_global_and_categories(server: RunningServer) -> None:
    client = server.client
    assert client.get("/tools/log-level").text == "default"
    for category in CATEGORIES:
        assert client.get(f"/tools/log-level-{category}").text == "default"

    put = client.put("/tools/log-level", content=b"verbose")
    assert put.status_code == 200 and put.text == ""
    assert client.get("/tools/log-level").text == "verbose"
    assert client.get("/tools/log-level-dicom").text == "verbose"

    assert client.put("/tools/log-level-http", content=b"trace").status_code == 200
    assert client.get("/tools/log-level-http").text == "trace"
    assert client.get("/tools/log-level-sqlite").text == "verbose"
    client.put("/tools/log-level", content=b"default")
    assert client.get("/tools/log-level-http").text == "default"

    # Trace really reaches the logs: a request is then logged by uvicorn's http category.
    client.put("/tools/log-level-jobs", content=b"trace")
    assert client.get("/tools/log-level-jobs").text == "trace"


def test_log_level_rejects_unknown_verbosity(server: RunningServer) -> None:
    for path in ("/tools/log-level", "/tools/log-level-lua"):
        response = server.client.put(path, content=b"loud")
        assert_orthanc_error(response, 400, "Parameter out of range", 3, "PUT", path)
    assert server.client.get("/tools/log-level").text == "default"


def test_verbose_log_level_lets_information_through(server: RunningServer) -> None:
    log = server.folder / "server.log"
    before = log.stat().st_size
    server.client.put("/tools/log-level", content=b"trace")
    upload(server.client, make_dicom(patient_id="LOGLEVEL"))
    server.client.put("/tools/log-level", content=b"default")
    text = log.read_bytes()[before:].decode("utf-8", "replace")
    assert any(line[:1] in ("I", "T") for line in text.splitlines()), text


def test_metrics_flag(server: RunningServer) -> None:
    client = server.client
    assert client.get("/tools/metrics").text == "1"
    assert client.put("/tools/metrics", content=b"0").status_code == 200
    assert client.get("/tools/metrics").text == "0"
    disabled = client.get("/tools/metrics-prometheus")
    assert disabled.status_code == 200 and disabled.text == ""
    assert_orthanc_error(
        client.put("/tools/metrics", content=b"maybe"), 400, "Bad file format", 15, "PUT"
    )
    client.put("/tools/metrics", content=b"true")
    assert client.get("/tools/metrics").text == "1"


def test_metrics_disabled_by_configuration(make_server: Callable[..., RunningServer]) -> None:
    server = make_server(MetricsEnabled=False)
    assert server.client.get("/tools/metrics").text == "0"
    assert server.client.get("/tools/metrics-prometheus").text == ""


def test_prometheus_orthanc_names_and_counts(server: RunningServer) -> None:
    first = _metrics(server)
    for name in (
        "orthanc_count_patients",
        "orthanc_count_studies",
        "orthanc_count_series",
        "orthanc_count_instances",
        "orthanc_disk_size_mb",
        "orthanc_uncompressed_size_mb",
        "orthanc_jobs_pending",
        "orthanc_jobs_running",
        "orthanc_jobs_success",
        "orthanc_jobs_failed",
        "orthanc_jobs_completed",
        "orthanc_rest_api_active_requests",
        "orthanc_rest_api_duration_ms",
    ):
        assert name in first, name
    assert first["orthanc_count_instances"] == 0
    # The scrape itself is in flight while it is answered.
    assert first["orthanc_rest_api_active_requests"] == 1

    data = make_dicom(patient_id="METRICS1")
    upload(server.client, data)
    upload(server.client, make_dicom(patient_id="METRICS2"))
    second = _metrics(server)
    assert second["orthanc_count_patients"] == 2
    assert second["orthanc_count_studies"] == 2
    assert second["orthanc_count_series"] == 2
    assert second["orthanc_count_instances"] == 2
    size = int(server.client.get("/statistics").json()["TotalDiskSize"])
    assert second["orthanc_disk_size_mb"] == pytest.approx(size / 1024 / 1024, rel=1e-6)


def test_prometheus_latency_histogram(server: RunningServer) -> None:
    for _ in range(3):
        server.client.get("/system")
    server.client.get("/patients/unknown")
    samples = _metrics(server)
    assert samples["dicomhub_http_request_duration_seconds_count{method=GET,status=2xx}"] >= 3
    assert samples["dicomhub_http_request_duration_seconds_count{method=GET,status=4xx}"] == 1
    inf = samples["dicomhub_http_request_duration_seconds_bucket{le=+Inf,method=GET,status=2xx}"]
    assert inf == samples["dicomhub_http_request_duration_seconds_count{method=GET,status=2xx}"]
    assert samples["dicomhub_http_request_duration_seconds_sum{method=GET,status=2xx}"] > 0


def test_prometheus_answers_on_the_oracle_have_the_same_names(server: RunningServer) -> None:
    from archive_checks import oracle_client

    oracle = oracle_client()
    if oracle is None:
        pytest.skip("the reference Orthanc does not answer")
    try:
        if oracle.get("/tools/metrics").text != "1":
            pytest.skip("metrics are disabled on the reference Orthanc")
        theirs = {
            s.name
            for f in text_string_to_metric_families(oracle.get("/tools/metrics-prometheus").text)
            for s in f.samples
        }
    finally:
        oracle.close()
    ours = set(_metrics(server))
    # Every Orthanc name we publish is one Orthanc publishes too.
    assert {name for name in ours if name.startswith("orthanc_")} <= theirs


def test_dicom_conformance_lists_what_the_listener_accepts(
    make_server: Callable[..., RunningServer],
) -> None:
    server = make_server(
        DicomAet="CONFTEST",
        AcceptedSopClasses=["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"],
        JpegTransferSyntaxAccepted=False,
    )
    response = server.client.get("/tools/dicom-conformance")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "CONFTEST" in text
    assert "1.2.840.10008.1.1  Verification SOP Class" in text
    assert "1.2.840.10008.5.1.4.1.1.2  CT Image Storage" in text
    assert "1.2.840.10008.5.1.4.1.1.4  MR Image Storage" in text
    assert "1.2.840.10008.5.1.4.1.1.7 " not in text  # secondary capture was filtered out
    assert "1.2.840.10008.1.2.1  Explicit VR Little Endian" in text
    assert "1.2.840.10008.1.2.4.50" not in text  # baseline JPEG was switched off
    assert "1.2.840.10008.1.2.4.90" in text


def _wait_system(server: RunningServer, seconds: float = 30) -> dict:
    """``/system`` once the server answers again (bounded wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = server.client.get("/system")
            if answer.status_code == 200:
                return answer.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not come back")


@pytest.mark.parametrize("workers", [1, 2])
def test_reset_restarts_with_the_configuration_read_again(
    make_server: Callable[..., RunningServer], workers: int
) -> None:
    server = make_server(Name="before", HttpWorkers=workers)
    instance = upload(server.client, make_dicom())["ID"]
    config_path = server.folder / "config.json"
    config = json.loads(config_path.read_text())
    config["Name"] = "after"
    config_path.write_text(json.dumps(config))
    pid = server.process.pid
    response = server.client.post("/tools/reset", content=b"")
    assert response.status_code == 200 and response.json() == {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _wait_system(server)["Name"] != "after":
        time.sleep(0.2)
    assert _wait_system(server)["Name"] == "after"
    assert server.process.poll() is None and server.process.pid == pid  # same process
    assert server.client.get(f"/instances/{instance}").status_code == 200


def _wait_exit(server: RunningServer, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            return code
        time.sleep(0.05)
    raise AssertionError("the server did not stop")


@pytest.mark.parametrize("workers", [1, 3])
def test_shutdown_answers_then_stops_the_whole_server(
    make_server: Callable[..., RunningServer], workers: int
) -> None:
    server = make_server(HttpWorkers=workers)
    if workers > 1:
        for _ in range(6):  # every worker is up before the shutdown
            assert server.client.get("/system").status_code == 200
    response = server.client.post("/tools/shutdown", content=b"")
    assert response.status_code == 200
    assert response.json() == {}
    assert _wait_exit(server) == 0
    assert "Shutdown request received" in (server.folder / "server.log").read_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_reset_forgets_modalities_added_over_rest(
    make_server: Callable[..., RunningServer], workers: int
) -> None:
    """As Orthanc 1.10.1 (observed): without ``DicomModalitiesInDatabase``, a modality
    added with PUT lasts until the server starts again, ``POST /tools/reset`` included;
    the configured ones come back from the configuration."""
    server = make_server(HttpWorkers=workers, DicomModalities={"conf": ["CONF", "127.0.0.1", 104]})
    added = {"AET": "ADDED", "Host": "127.0.0.1", "Port": 105}
    assert server.client.put("/modalities/added", json=added).status_code == 200
    assert sorted(server.client.get("/modalities").json()) == ["added", "conf"]
    assert server.client.post("/tools/reset", content=b"").status_code == 200
    deadline = time.monotonic() + 30
    names = None
    while time.monotonic() < deadline:
        _wait_system(server)
        try:
            names = server.client.get("/modalities").json()
        except httpx.HTTPError:
            continue
        if names == ["conf"]:
            break
        time.sleep(0.2)
    assert names == ["conf"]
