"""Real DICOM peers for the network tests: dcmtk command-line tools and pynetdicom."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from conftest import free_port

LOOPBACK = "127.0.0.1"


def dcmtk(tool: str) -> str:
    """The dcmtk binary itself: pynetdicom installs same-named Python apps (``echoscu``,
    ``storescu``, ``storescp``...) that may come first on the PATH."""
    for folder in ("/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"):
        path = os.path.join(folder, tool)
        if os.access(path, os.X_OK) and not _is_script(path):
            return path
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"dcmtk's {tool} is not installed")
    return found


def _is_script(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"#!"


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def dicom_port(server: Any) -> int:
    """The server's DICOM port, once its listener accepts connections."""
    port = int(server.config["DicomPort"])
    wait_port(port)
    return port


def run(args: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A dcmtk tool, verbose, with its whole output in ``stdout``."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def echoscu(
    port: int, calling: str = "ECHOSCU", called: str = "ORTHANC"
) -> subprocess.CompletedProcess[str]:
    return run([dcmtk("echoscu"), "-v", "-aet", calling, "-aec", called, LOOPBACK, str(port)])


def storescu(
    port: int, files: list[Path], calling: str = "STORESCU", called: str = "ORTHANC"
) -> subprocess.CompletedProcess[str]:
    return run(
        [
            dcmtk("storescu"),
            "-v",
            "-aet",
            calling,
            "-aec",
            called,
            LOOPBACK,
            str(port),
            *map(str, files),
        ]
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


class StoreScp:
    """dcmtk's ``storescp`` on a free loopback port, writing into ``folder``."""

    def __init__(self, folder: Path, aet: str = "STORESCP") -> None:
        self.folder = folder
        self.aet = aet
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.log = open(folder.parent / f"storescp-{self.port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [dcmtk("storescp"), "-v", "-aet", aet, "-od", str(folder), str(self.port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port)

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())

    def wait_files(self, count: int, timeout: float = 10) -> list[Path]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = self.files()
            if len(files) >= count:
                return files
            time.sleep(0.05)
        return self.files()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.log.close()


def storescp_fixture(tmp_path: Path) -> Iterator[StoreScp]:
    """Generator body for a fixture (``yield from storescp_fixture(tmp_path)``)."""
    peer = StoreScp(tmp_path / "received")
    try:
        yield peer
    finally:
        peer.stop()


def rejected(result: subprocess.CompletedProcess[str], which: str) -> bool:
    """dcmtk reported a permanent rejection by the service user for the ``which``
    ("calling" or "called") AE title."""
    text = output(result).lower()
    return (
        result.returncode != 0
        and "rejected permanent" in text
        and f"{which} ae title not recogni" in text
    )


def aborted(result: subprocess.CompletedProcess[str]) -> bool:
    """dcmtk saw the peer abort the association."""
    return "peer aborted association" in output(result).lower()


def study_move(port: int, called: str, study: str) -> tuple[Any, Any]:
    """A pynetdicom association (calling AET ``PYMOVE``) ready to C-MOVE ``study``
    from the listener on ``port``: the association and the study-level query."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    ae = AE(ae_title="PYMOVE")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate(LOOPBACK, port, ae_title=called)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study
    return assoc, query


def query_dataset(**keys: Any) -> Any:
    """A query identifier (pydicom Dataset) holding ``keys`` (keyword: value)."""
    from pydicom.dataset import Dataset

    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def get_association(
    port: int,
    on_store: Callable[[Any], Any],
    models: Sequence[str],
    storage: Sequence[str],
    syntaxes: list[str] | None = None,
    called: str = "ORTHANC",
    timeout: float = 15,
) -> Any:
    """A pynetdicom association (calling AET ``PYGET``) ready to C-GET from the
    listener on ``port``: it proposes the query ``models``, and the ``storage`` SOP
    classes (in ``syntaxes``, or pynetdicom's default ones) in the SCP role, each
    C-STORE it is sent answered by ``on_store(event)``."""
    from pynetdicom import AE, build_role, evt

    ae = AE(ae_title="PYGET")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    for model in models:
        ae.add_requested_context(model)
    for sop_class in storage:
        if syntaxes is None:
            ae.add_requested_context(sop_class)
        else:
            ae.add_requested_context(sop_class, syntaxes)
    assoc = ae.associate(
        LOOPBACK,
        port,
        ae_title=called,
        ext_neg=[build_role(sop_class, scp_role=True) for sop_class in storage],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    return assoc


def suboperation_counts(status: Any) -> tuple[int, int, int]:
    """A C-MOVE or C-GET response's counts: completed, failed, warning (0 if absent)."""
    return (
        int(status.get("NumberOfCompletedSuboperations", 0)),
        int(status.get("NumberOfFailedSuboperations", 0)),
        int(status.get("NumberOfWarningSuboperations", 0)),
    )
