"""How bodies come in and files and answers leave the server
(``rest/http_protocol.py``): request bodies kept in the pieces they came in, headers
held back to go with the body, stored files sent by the kernel with ``sendfile``.

These speak HTTP/1.1 on raw sockets, to control what a client library hides: reading
slowly, pipelining requests, leaving in the middle of a file.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable

import numpy as np
from archive_checks import upload
from conftest import RunningServer
from dicom_factory import make_dataset, make_dicom, to_bytes


def _big_dicom(rows: int, columns: int) -> bytes:
    ds = make_dataset(patient_id="SENDFILE", rows=rows, columns=columns)
    noise = np.random.default_rng(7).integers(0, 4096, rows * columns, dtype=np.uint16)
    ds.PixelData = noise.tobytes()
    return to_bytes(ds)


def _connect(server: RunningServer, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # before connecting, so that the window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    return sock


class _Reader:
    """Reads HTTP/1.1 responses one after the other from a socket."""

    def __init__(self, sock: socket.socket, chunk: int = 1 << 16, pause: float = 0.0) -> None:
        self.sock = sock
        self.chunk = chunk
        self.pause = pause
        self.buffer = b""
        self.head = b""

    def _more(self) -> None:
        if self.pause:
            time.sleep(self.pause)
        data = self.sock.recv(self.chunk)
        assert data, "the server closed the connection"
        self.buffer += data

    def response(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        self.head = head  # as received: headers repeated show here
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers["content-length"])
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body


def _get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def test_a_large_file_reaches_a_slow_reader_whole(server: RunningServer) -> None:
    # 12 MB with a small receive window: the socket fills many times over, so the
    # file goes in many sendfile calls, the server waiting for the client between.
    data = _big_dicom(2048, 3072)
    instance = upload(server.client, data)["ID"]
    with _connect(server, receive_buffer=16384) as sock:
        sock.sendall(_get(f"/instances/{instance}/file"))
        time.sleep(0.3)  # let the server find the socket full before anything is read
        reader = _Reader(sock, chunk=1 << 18)
        status, headers, body = reader.response()
        assert status == 200
        assert headers["content-type"] == "application/dicom"
        assert headers["content-length"] == str(len(data))
        assert body == data
        # The connection goes on, in step: the next answer starts where the file ended.
        sock.sendall(_get("/system"))
        status, _, body = reader.response()
        assert status == 200 and b'"ApiVersion"' in body
        assert reader.buffer == b""


def test_pipelined_requests_are_answered_in_order(server: RunningServer) -> None:
    small = make_dicom(patient_id="PIPE1", rows=16, columns=16)
    large = _big_dicom(512, 512)
    first = upload(server.client, small)["ID"]
    second = upload(server.client, large)["ID"]
    requests = [
        _get(f"/instances/{second}/file"),
        _get("/system"),
        _get(f"/instances/{first}/file", "HEAD"),
        _get(f"/instances/{first}/file"),
        _get("/instances/unknown/file"),
        _get(f"/instances/{second}/file"),
    ]
    with _connect(server) as sock:
        sock.sendall(b"".join(requests))
        reader = _Reader(sock)
        assert reader.response()[::2] == (200, large)
        status, _, body = reader.response()
        assert status == 200 and b'"ApiVersion"' in body
        # HEAD is Orthanc's bare 404 (a WebDAV method outside a share): still in step.
        status, headers, body = reader.response(head_only=True)
        assert (status, headers["content-length"], body) == (404, "0", b"")
        assert reader.response()[::2] == (200, small)
        assert reader.response()[0] == 404
        assert reader.response()[::2] == (200, large)
        assert reader.buffer == b""


def test_a_client_leaving_in_the_middle_of_a_file_disturbs_nothing(
    server: RunningServer,
) -> None:
    data = _big_dicom(2048, 3072)
    instance = upload(server.client, data)["ID"]
    for _ in range(3):
        with _connect(server, receive_buffer=16384) as sock:
            sock.sendall(_get(f"/instances/{instance}/file"))
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            # A reset rather than a clean close: the server's next send fails at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    for _ in range(4):  # every worker still serves the file whole
        assert server.client.get(f"/instances/{instance}/file").content == data
    log = (server.folder / "server.log").read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_a_file_being_sent_when_the_server_stops_is_finished_then_the_connection_closes(
    make_server: Callable[..., RunningServer],
) -> None:
    # An idle connection is kept longer than the client waits: only the stop closes it.
    server = make_server(HttpWorkers=1, KeepAliveTimeout=120)
    data = _big_dicom(2048, 3072)
    instance = upload(server.client, data)["ID"]
    with _connect(server, receive_buffer=16384) as sock:
        sock.sendall(_get(f"/instances/{instance}/file"))
        time.sleep(0.3)  # the socket is full: the rest of the file waits for the reader
        server.process.terminate()
        status, _, body = _Reader(sock, chunk=1 << 18).response()
        assert status == 200 and body == data
        assert sock.recv(1) == b""  # closed once the answer is whole
    assert server.process.wait(timeout=20) is not None


def test_compressed_files_are_sent_uncompressed(
    make_server: Callable[..., RunningServer],
) -> None:
    # Compressed in storage: the file is not the attachment, so it is not sent as is.
    server = make_server(StorageCompression=True)
    data = _big_dicom(256, 256)
    instance = upload(server.client, data)["ID"]
    assert server.client.get(f"/instances/{instance}/attachments/dicom/is-compressed").text == "1"
    got = server.client.get(f"/instances/{instance}/file")
    assert got.content == data and got.headers["content-length"] == str(len(data))


def test_an_http_1_0_client_gets_whole_answers_then_the_connection_closes(
    server: RunningServer,
) -> None:
    data = _big_dicom(512, 512)
    instance = upload(server.client, data)["ID"]
    for path, expected in ((f"/instances/{instance}/file", data), ("/system", None)):
        with _connect(server) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            received = b""
            while chunk := sock.recv(1 << 16):  # until the server closes the connection
                received += chunk
        head, body = received.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200")
        assert f"content-length: {len(body)}".encode() in head.lower()
        if expected is not None:
            assert body == expected
        else:
            assert b'"ApiVersion"' in body


def test_attachment_data_is_sent_whole_with_one_length_and_its_etag(
    server: RunningServer,
) -> None:
    data = _big_dicom(512, 512)
    instance = upload(server.client, data)["ID"]
    base = f"/instances/{instance}/attachments/dicom"
    with _connect(server) as sock:
        sock.sendall(_get(f"{base}/data") + _get(f"{base}/compressed-data"))
        reader = _Reader(sock)
        for _ in range(2):
            status, headers, body = reader.response()
            assert status == 200 and body == data
            assert reader.head.lower().count(b"content-length:") == 1
            assert headers["etag"] and headers["content-type"]


def test_a_large_body_sent_in_pieces_after_100_continue_is_stored_whole(
    server: RunningServer,
) -> None:
    # Several MiB, more than the server reads ahead before the application asks:
    # reading pauses and resumes; the body arrives in many pieces, joined once.
    data = _big_dicom(2048, 1536)
    head = (
        "POST /instances HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Length: {len(data)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with _connect(server) as sock:
        sock.sendall(head)
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        for start in range(0, len(data), 1 << 19):
            sock.sendall(data[start : start + (1 << 19)])
            time.sleep(0.01)
        reader = _Reader(sock)
        status, _, body = reader.response()
        assert status == 200
        instance = json.loads(body)["ID"]
        # The same connection goes on: a small upload, pipelined with a download.
        small = make_dicom(patient_id="PIECES2", rows=8, columns=8)
        post = f"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: {len(small)}\r\n\r\n"
        sock.sendall(post.encode() + small + _get(f"/instances/{instance}/file"))
        status, _, body = reader.response()
        assert status == 200 and json.loads(body)["Status"] == "Success"
        assert reader.response()[::2] == (200, data)
