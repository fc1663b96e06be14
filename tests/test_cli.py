"""The ``dicomhub`` command line, run as users run it: ``python -m dicomhub``."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dicomhub
from dicomhub.cli import EXIT_ERROR, main, parse_arguments
from dicomhub.config import DEFAULTS, Configuration, load_configuration
from dicomhub.logs import QUIET_LOGGERS, quiet_third_parties, reset_logging, setup_logging

ROOT = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(r"^[TIWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} \S+ [\w.]+\.py:\d+\] ")


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dicomhub`` with a clean ORTHANC__ environment."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORTHANC")}
    environment.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "dicomhub", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd or ROOT,
        env=environment,
    )


@contextlib.contextmanager
def server_process(cwd: Path, *args: str, **env: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m dicomhub ARGS`` (output and errors in ``stdout``), killed if still
    running when the block ends."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORTHANC")}
    environment.update(env, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "dicomhub", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- commands that exit at once ----------------------------------------------------------


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    expected = f"dicomhub {dicomhub.__version__} (Orthanc API {dicomhub.ORTHANC_API_VERSION})"
    assert result.stdout.strip() == expected


def test_help_lists_the_options_and_exit_codes() -> None:
    result = run("--help")
    assert result.returncode == 0
    for option in ("--config=FILE", "--logfile=FILE", "--logdir=DIR", "--verbose", "--trace"):
        assert option in result.stdout
    assert "--no-jobs" in result.stdout and str(EXIT_ERROR) in result.stdout


def test_errors_lists_the_codes_with_orthancs_words() -> None:
    result = run("--errors")
    assert result.returncode == 0
    listed = dict(re.findall(r"^ +(-?\d+)   (.+)$", result.stdout, re.MULTILINE))
    assert listed["0"] == "Success" and listed["15"] == "Bad file format"
    assert listed["17"] == "Unknown resource" and listed["2031"] == "Cannot execute a Lua command"
    orthanc = "/usr/sbin/Orthanc"
    if os.path.exists(orthanc):  # every code listed is Orthanc's, in Orthanc's words
        reference = subprocess.run(
            [orthanc, "--errors"], capture_output=True, text=True, timeout=30
        )
        known = dict(re.findall(r"^ +(-?\d+)   (.+)$", reference.stdout, re.MULTILINE))
        newer = {"45", "46"}  # codes of Orthanc 1.12 (forbidden access, duplicate resource)
        assert {c: known.get(c) for c in listed if c not in newer} == {
            c: text for c, text in listed.items() if c not in newer
        }


def test_config_writes_a_loadable_default_file(tmp_path: Path) -> None:
    target = tmp_path / "Configuration.json"
    result = run(f"--config={target}")
    assert result.returncode == 0, result.stderr
    config = load_configuration(target, {})
    assert config.sources == [str(target)]
    defaults = load_configuration(None, {}).values
    for key in ("StorageDirectory", "IndexDirectory"):  # relative: beside the file
        defaults[key] = str(tmp_path / defaults[key])
    assert config.values == defaults
    assert config["HttpPort"] == DEFAULTS["HttpPort"]


def test_config_dash_writes_to_stdout(tmp_path: Path) -> None:
    result = run("--config=-")
    assert result.returncode == 0
    path = tmp_path / "out.json"
    path.write_text(result.stdout)
    assert load_configuration(path, {})["DicomAet"] == "ORTHANC"


def test_config_to_an_unwritable_place_fails(tmp_path: Path) -> None:
    result = run(f"--config={tmp_path / 'missing-folder' / 'x.json'}")
    assert result.returncode == EXIT_ERROR
    assert "cannot write" in result.stderr


def test_openapi_lists_what_the_router_serves(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    result = run(f"--openapi={target}")
    assert result.returncode == 0, result.stderr
    document = json.loads(target.read_text())
    assert document["openapi"].startswith("3.")
    assert dicomhub.ORTHANC_API_VERSION in document["info"]["description"]
    paths = document["paths"]
    assert set(paths["/instances"]) == {"get", "post"}
    # routes written once for several levels are spelt out per level
    for level in ("patients", "studies", "series", "instances"):
        assert "post" in paths[f"/{level}/{{id}}/reconstruct"]
    assert paths["/patients/{id}"]["get"]["parameters"][0]["name"] == "id"
    stdout = run("--openapi")
    assert stdout.returncode == 0 and json.loads(stdout.stdout)["paths"] == paths
    refused = run(f"--openapi={tmp_path / 'missing-folder' / 'x.json'}")
    assert refused.returncode == EXIT_ERROR and "cannot write" in refused.stderr


# --- errors ------------------------------------------------------------------------------


def test_malformed_configuration_exits_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "Name" : "x"\n  "HttpPort" : 8042\n}\n')
    result = run(str(path))
    assert result.returncode == EXIT_ERROR == 255
    assert str(path) in result.stderr
    assert "line 3" in result.stderr


def test_malformed_configuration_with_logfile_still_reaches_stderr(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{ nope }")
    logfile = tmp_path / "dicomhub.log"
    result = run(f"--logfile={logfile}", str(path))
    assert result.returncode == EXIT_ERROR
    assert str(path) in result.stderr and "line 1" in result.stderr
    logged = logfile.read_text()
    assert str(path) in logged
    assert all(LOG_LINE.match(line) for line in logged.splitlines() if line[:1] in "TIWEF")


def test_missing_configuration_path(tmp_path: Path) -> None:
    result = run(str(tmp_path / "absent.json"))
    assert result.returncode == EXIT_ERROR
    assert "absent.json" in result.stderr


def test_wrong_type_in_configuration(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{ "DicomPort" : "4242" }')
    result = run(str(path))
    assert result.returncode == EXIT_ERROR
    assert '"DicomPort" must be an integer' in result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"DicomModalities": {"x": ["ONLY"]}}, 'Bad file format in "DicomModalities", entry "x"'),
        ({"OrthancPeers": {"x": 5}}, 'Bad file format in "OrthancPeers", entry "x"'),
        ({"LuaScripts": ["absent.lua"]}, "does not point to a regular file"),
        ({"DefaultEncoding": "Klingon"}, 'Unknown encoding in "DefaultEncoding"'),
        ({"UserMetadata": {"A": 5}}, "must have index between 1024 and 65535"),
        ({"UserContentType": {"B": [70000, "text/plain"]}}, "between 1024 and 65535"),
        ({"DicomAet": "A" * 17}, "cannot be empty or be longer than 16 characters"),
        ({"SslEnabled": True}, '"SslEnabled": true is not supported'),
        ({"HttpServerEnabled": False}, '"HttpServerEnabled": false is not supported'),
    ],
)
def test_what_orthanc_refuses_to_start_with(
    tmp_path: Path, settings: dict[str, object], message: str
) -> None:
    """Orthanc stops at start-up on these: a server running without its DICOM
    listener, its script or its HTTPS would look healthy to its service manager."""
    path = tmp_path / "c.json"
    http, dicom = free_port(), free_port()
    base = {"HttpPort": http, "DicomPort": dicom, "StorageDirectory": str(tmp_path / "s")}
    path.write_text(json.dumps({**base, **settings}))
    result = run(str(path))
    assert result.returncode == EXIT_ERROR, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "s").exists()  # nothing was started


def test_a_dicom_port_in_use_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        dicom = taken.getsockname()[1]
        path.write_text(json.dumps({"HttpPort": free_port(), "DicomPort": dicom}))
        result = run(str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # as for the HTTP port
    assert "The TCP port of the DICOM server is privileged or already in use" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["--verbose=yes"],
        ["--config"],
        ["--logfile"],
        ["--verbose-nothing"],
        ["a.json", "b.json"],
    ],
)
def test_bad_command_lines(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == EXIT_ERROR
    assert result.stderr.startswith("dicomhub: ")


def test_unwritable_log_destinations(tmp_path: Path) -> None:
    result = run(f"--logfile={tmp_path / 'no' / 'such' / 'x.log'}")
    assert result.returncode == EXIT_ERROR and "cannot write the log" in result.stderr
    result = run(f"--logdir={tmp_path / 'nowhere'}")
    assert result.returncode == EXIT_ERROR and "nowhere" in result.stderr


def test_logdir_gets_a_timestamped_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("[]")
    logs = tmp_path / "logs"
    logs.mkdir()
    result = run("--logdir=" + str(logs), str(broken))
    assert result.returncode == EXIT_ERROR
    files = [p for p in logs.iterdir() if not p.is_symlink()]
    assert len(files) == 1
    assert re.fullmatch(r"dicomhub\.log\.\d{8}-\d{6}\.\d+", files[0].name)
    assert str(broken) in files[0].read_text()
    assert (logs / "dicomhub.log").resolve() == files[0].resolve()


# --- argument parsing and logging, in process --------------------------------------------


def test_arguments_are_read_left_to_right() -> None:
    options = parse_arguments(
        ["--verbose", "--logfile=a.log", "--logdir=d", "--trace-dicom", "--no-jobs", "cfg"]
    )
    assert options.verbose and not options.trace and options.no_jobs
    assert options.logdir == "d" and options.logfile is None
    assert options.categories == {"dicom": logging.DEBUG}
    assert options.config_path == "cfg"
    assert parse_arguments(["--version", "--bogus"]).action == "version"
    assert parse_arguments(["--upgrade"]).config_path is None


def test_log_line_layout_and_levels() -> None:
    stream = io.StringIO()
    try:
        setup_logging(verbose=True, trace=False, logfile=None, logdir=None, stream=stream)
        logging.getLogger("dicomhub.test").info("hello %s", "world")
        logging.getLogger("dicomhub.test").debug("hidden without --trace")
        logging.getLogger("pynetdicom").info("hidden without --verbose-dicom")
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        assert LOG_LINE.match(lines[0]) and lines[0].startswith("I")
        assert re.search(r" MainThread test_cli\.py:\d+\] hello world$", lines[0])

        stream.truncate(0)
        stream.seek(0)
        setup_logging(False, True, None, None, categories={"dicom": logging.INFO}, stream=stream)
        logging.getLogger("dicomhub.test").debug("traced")
        logging.getLogger("pynetdicom").info("dicom info")
        logging.getLogger("pynetdicom").debug("dicom debug")
        text = stream.getvalue()
        assert "traced" in text and "dicom info" in text and "dicom debug" not in text
        assert text.startswith("T")
    finally:
        reset_logging()


def test_pydicom_decoder_reports_only_at_trace_level() -> None:
    """pydicom logs a traceback per decoder tried on a frame it cannot decode: kept out
    of the log, unless tracing (from the command line or ``PUT /tools/log-level``)."""
    decoder = logging.getLogger(QUIET_LOGGERS[0])
    stream = io.StringIO()
    try:
        setup_logging(verbose=True, trace=False, logfile=None, logdir=None, stream=stream)
        decoder.error("hidden traceback")
        quiet_third_parties(False)  # PUT /tools/log-level "trace"
        decoder.error("shown when tracing")
        quiet_third_parties(True)
        decoder.error("hidden again")
        text = stream.getvalue()
        assert "shown when tracing" in text
        assert "hidden" not in text
    finally:
        reset_logging()


def test_main_hands_the_configuration_to_the_server(tmp_path: Path, monkeypatch) -> None:
    server = pytest.importorskip("dicomhub.server")
    seen: dict[str, Any] = {}

    def fake_serve(config: Configuration, no_jobs: bool = False) -> int:
        seen.update(config=config, no_jobs=no_jobs)
        return 7

    monkeypatch.setattr(server, "serve", fake_serve)
    monkeypatch.setenv("ORTHANC__DICOM_AET", "FROMENV")
    path = tmp_path / "c.json"
    path.write_text('{ "Name" : "in-process" }')
    try:
        assert main(["--no-jobs", str(path)]) == 7
    finally:
        reset_logging()
    config = seen["config"]
    assert isinstance(config, Configuration)
    assert config["Name"] == "in-process" and config["DicomAet"] == "FROMENV"
    assert seen["no_jobs"] is True


# --- a real start -------------------------------------------------------------------------


def test_sigterm_during_start_up_stops_cleanly(tmp_path: Path) -> None:
    """As Orthanc: status 0, not a death by the signal. The start is held where it
    opens the index (its lock is taken here), and stopped there."""
    storage = tmp_path / "s"
    storage.mkdir()
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {"HttpPort": free_port(), "DicomPort": free_port(), "StorageDirectory": str(storage)}
        )
    )
    with open(storage / "dicomhub-index.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        with server_process(tmp_path, str(path)) as process:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _waits_on_a_lock(process.pid):
                time.sleep(0.05)
            assert _waits_on_a_lock(process.pid)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            assert "Stopped by SIGTERM before serving" in process.stdout.read()


def _waits_on_a_lock(pid: int) -> bool:
    """Whether the main thread of ``pid`` is blocked in ``flock`` (syscall 73)."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == "73"
    except (OSError, IndexError):
        return False


def test_verbose_logs_each_http_request(tmp_path: Path) -> None:
    """As Orthanc's ``--verbose``: one line per request, with its method and path."""
    port = free_port()
    path = tmp_path / "c.json"
    storage = str(tmp_path / "s")
    path.write_text(
        json.dumps({"HttpPort": port, "DicomPort": free_port(), "StorageDirectory": storage})
    )
    with server_process(tmp_path, "--verbose", str(path)) as process:
        deadline = time.monotonic() + 30
        answered = False
        while time.monotonic() < deadline and process.poll() is None and not answered:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/statistics", timeout=1):
                    answered = True
            except OSError:
                time.sleep(0.1)
        assert answered
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert re.search(r"^I.*\] GET /statistics$", process.stdout.read(), re.M)


def test_server_starts_with_expanded_configuration_and_stops_cleanly(tmp_path: Path) -> None:
    pytest.importorskip("dicomhub.server")
    port = free_port()
    config = {
        "Name": "${SITE_NAME:-unnamed}",
        "HttpPort": port,
        "DicomPort": free_port(),
        "StorageDirectory": str(tmp_path / "storage"),
    }
    path = tmp_path / "c.json"
    path.write_text("// started by test_cli\n" + json.dumps(config))
    with server_process(tmp_path, str(path), SITE_NAME="cli-test") as process:
        system = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/system", timeout=1) as answer:
                    system = json.load(answer)
                    break
            except OSError:
                time.sleep(0.1)
        assert system is not None, process.stdout.read() if process.poll() is not None else ""
        assert system["Name"] == "cli-test"
        assert system["HttpPort"] == port
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        # As Orthanc, at the default level: the folders, the listeners, start and stop.
        log = process.stdout.read()
        for line in (
            f"Storage directory: {tmp_path / 'storage'}",
            f"HTTP server listening on port: {port}",
            "DICOM server listening with AET ORTHANC on port:",
            "dicomhub has started",
            "dicomhub has stopped",
        ):
            assert line in log, line
