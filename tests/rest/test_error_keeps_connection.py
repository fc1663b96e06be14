"""An unexpected error answered with Orthanc's 500 body leaves the connection usable.

Starlette raises such an error again once its handler has answered it, and uvicorn
then closes the connection: a client's next request on it met a reset, where Orthanc
keeps the connection. No route of the API fails on purpose, so a small application
with one failing route runs behind the same layers (the error handler, the metrics
middleware, the server's HTTP protocol) on a real uvicorn server on loopback.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dicomhub.rest.app import error_response
from dicomhub.rest.http_protocol import HttpProtocol
from dicomhub.rest.operations import instrument


def _fails(request: Request) -> Response:
    raise RuntimeError("a defect")


def _answers(request: Request) -> Response:
    return PlainTextResponse("fine")


@pytest.fixture
def url() -> Iterator[str]:
    app = Starlette(
        routes=[Route("/fails", _fails), Route("/answers", _answers)],
        exception_handlers={Exception: error_response},
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(instrument(app, {}), http=HttpProtocol, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_the_connection_survives_an_answered_internal_error(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        failed = client.get("/fails")
        assert failed.status_code == 500
        body = failed.json()
        assert (body["Message"], body["OrthancStatus"]) == ("Internal error", -1)
        assert failed.headers.get("connection", "").lower() != "close"
        # The same keep-alive connection answers the next request.
        assert client.get("/answers").text == "fine"
        assert client.get("/fails").status_code == 500
        assert client.get("/answers").text == "fine"
