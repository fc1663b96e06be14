"""A real dicomhub server on a loopback port, started the way users start it."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def unused_port() -> int:
    """A loopback port where nothing listens, for a peer that refuses connections.

    Taken below the kernel's ephemeral range: every port ``free_port`` hands to a test
    server, and the source port of every outgoing connection, comes from that range,
    so nothing starts listening on this one during a test and a connection to it
    cannot meet itself. (A port from ``free_port`` once answered a connection in the
    middle of a test, and an "unreachable" peer looked like one that aborts.)"""
    floor = _ephemeral_floor()
    for port in random.sample(range(max(1024, floor - 12000), floor), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no unused port below the ephemeral range")


class RunningServer:
    def __init__(
        self, process: subprocess.Popen[bytes], port: int, folder: Path, config: dict[str, Any]
    ):
        self.process = process
        self.port = port
        self.folder = folder
        self.config = config
        self.url = f"http://127.0.0.1:{port}"
        auth = None
        users = config.get("RegisteredUsers") or {}
        if config.get("AuthenticationEnabled") and users:
            user, password = next(iter(users.items()))
            auth = (user, password)
        # Drop idle connections before the server does (KeepAliveTimeout, 1 s by
        # default): a request sent on a connection the server is closing at that very
        # moment gets "Server disconnected without sending a response".
        server_idle = float(config.get("KeepAliveTimeout") or 1)
        limits = httpx.Limits(keepalive_expiry=max(0.1, server_idle / 2))
        self.client = httpx.Client(base_url=self.url, timeout=30, auth=auth, limits=limits)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def kill(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def start_server(folder: Path, **config: Any) -> RunningServer:
    port = config.pop("HttpPort", None) or free_port()
    settings: dict[str, Any] = {
        "Name": "dicomhub-test",
        "HttpPort": port,
        "DicomPort": free_port(),
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "RemoteAccessAllowed": False,
        "DicomBindAddress": "127.0.0.1",
        "AuthenticationEnabled": False,
        "StableAge": 60,
    }
    settings.update(config)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(settings))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = open(folder / "server.log", "ab")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [sys.executable, "-m", "dicomhub", str(config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env=env,
    )
    server = RunningServer(process, port, folder, settings)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}:\n{(folder / 'server.log').read_text()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("server did not start in time")


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []
    counter = iter(range(1000))

    def factory(**config: Any) -> RunningServer:
        server = start_server(tmp_path / f"server{next(counter)}", **config)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., RunningServer]) -> RunningServer:
    return make_server()


@pytest.fixture
def client(server: RunningServer) -> httpx.Client:
    return server.client
