"""Script events served by a worker other than the primary reach the primary's Lua.

With ``HttpWorkers`` > 1 only the primary worker runs the callbacks. A deletion or an
``AlreadyStored`` upload leaves nothing in the changes log that the primary follows
for ``OnDeleted*`` and ``OnStoredInstance``, so the worker that served the request
relays its script events to the primary (``scripting.callbacks.ScriptEventRelay``).
Here the requests go over one kept-alive connection that a worker other than the
primary holds (told apart in ``/proc``: the primary alone listens on the DICOM port),
and the primary's callbacks must still see them, with that request's origin.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
from archive_checks import fresh_client, wait_until, worker_pids
from conftest import RunningServer
from dicom_factory import make_dicom

from scripting.lua_checks import DELETED_EVENTS_LUA, lua_server, script_events

SCRIPT = (
    DELETED_EVENTS_LUA
    + """
function OnStoredInstance(id, tags, metadata, origin)
  add('stored ' .. id .. ' ' .. origin.RequestOrigin .. ' ' .. origin.Username
      .. ' ' .. metadata.HttpUsername)
end
"""
)

WORKERS = 4
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
STUDY = "1.2.826.0.1.3680043.99.72"


def _file(series: int, number: int) -> bytes:
    return make_dicom(
        patient_id="LUA-RELAY",
        study_uid=STUDY,
        series_uid=f"{STUDY}.{series}",
        sop_uid=f"{STUDY}.{series}.{number}",
        InstanceNumber=str(number),
    )


def _sockets_of(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def _tcp_inode(local_port: int, remote_port: int | None) -> str | None:
    """The inode of the loopback TCP socket bound to ``local_port``: the listening one
    (``remote_port`` None) or the one connected to ``remote_port``."""
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if local != f"0100007F:{local_port:04X}":
                continue
            if remote_port is None and state == "0A":  # LISTEN
                return inode
            if remote_port is not None and remote == f"0100007F:{remote_port:04X}":
                return inode
    return None


def _owner(workers: list[int], inode: str | None) -> int | None:
    return next((pid for pid in workers if inode and inode in _sockets_of(pid)), None)


def _primary(server: RunningServer, workers: list[int]) -> int:
    """The primary worker: the one that listens on the DICOM port."""
    port = server.config["DicomPort"]
    return wait_until(lambda: _owner(workers, _tcp_inode(port, None)), 30)


def _served_by(server: RunningServer, workers: list[int], answer: httpx.Response) -> int | None:
    """The worker that holds the server's end of the connection ``answer`` came over."""
    client_port = answer.extensions["network_stream"].get_extra_info("client_addr")[1]
    return _owner(workers, _tcp_inode(server.port, client_port))


def _events(server: RunningServer, count: int) -> list[str]:
    """The primary's callbacks' events, once there are ``count`` (then forgotten)."""
    return script_events(server, count, auth=("alice", USERS["alice"]))


def test_deletion_and_upload_served_by_another_worker_reach_the_primarys_callbacks(
    tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    server = lua_server(
        make_server,
        tmp_path,
        SCRIPT,
        HttpWorkers=WORKERS,
        AuthenticationEnabled=True,
        RegisteredUsers=USERS,
        KeepAliveTimeout=60,  # the connection held below stays with its worker
    )
    workers = worker_pids(server)
    primary = _primary(server, workers)
    ids = {}
    for key in ((1, 1), (1, 2), (2, 1)):  # as alice
        answer = server.client.post("/instances", content=_file(*key))
        assert answer.status_code == 200, answer.text
        ids[key] = answer.json()
    assert len(_events(server, 3)) == 3

    # A connection to another worker: each new one goes to a worker with the fewest
    # open, so holding those the primary got, another worker soon gets one.
    held: list[httpx.Client] = []
    other = None
    try:
        for _ in range(2 * WORKERS):
            client = fresh_client(server.url, auth=("bob", USERS["bob"]))
            held.append(client)
            answer = client.get("/system")
            assert answer.status_code == 200
            worker = _served_by(server, workers, answer)
            if worker is not None and worker != primary:
                other = client
                break
        assert other is not None, "no connection reached a worker other than the primary"

        def call(method: str, uri: str, **kwargs: object) -> httpx.Response:
            answer = other.request(method, uri, **kwargs)  # type: ignore[arg-type]
            assert answer.status_code == 200, answer.text
            assert _served_by(server, workers, answer) == worker != primary
            return answer

        # Deletions: OnDeleted* for every resource removed.
        call("DELETE", f"/instances/{ids[1, 1]['ID']}")
        assert _events(server, 1) == [f"instance {ids[1, 1]['ID']}"]
        call("DELETE", f"/instances/{ids[2, 1]['ID']}")
        assert _events(server, 2) == [
            f"series {ids[2, 1]['ParentSeries']}",
            f"instance {ids[2, 1]['ID']}",
        ]
        # An instance stored again: OnStoredInstance with this request's origin (bob),
        # the stored metadata still alice's.
        again = call("POST", "/instances", content=_file(1, 2)).json()
        assert again["Status"] == "AlreadyStored"
        assert _events(server, 1) == [f"stored {ids[1, 2]['ID']} RestApi bob alice"]
        # An instance deleted, then uploaded again: a new instance (from the changes log).
        assert call("POST", "/instances", content=_file(1, 1)).json()["Status"] == "Success"
        assert _events(server, 1) == [f"stored {ids[1, 1]['ID']} RestApi bob bob"]
    finally:
        for client in held:
            client.close()
