"""C-STORE to a peer that accepts only uncompressed syntaxes (dcmtk's ``storescp``
by default): the stored JPEG-LS file is decompressed for it, as Orthanc does with
``TranscodeDicomProtocol``, unless that or the modality's ``AllowTranscoding`` is off.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from archive_checks import upload
from conftest import unused_port
from dicom_factory import make_dataset, to_bytes
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless

from dicomhub.dicom.transcoding import transcode
from net import LOOPBACK, StoreScp, storescp_fixture

LOCAL = {"DicomBindAddress": LOOPBACK}


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[StoreScp]:
    yield from storescp_fixture(tmp_path)


def _compressed() -> tuple[bytes, np.ndarray]:
    ds = make_dataset(patient_id="SCUTX", rows=16, columns=16)
    ds.PixelData = np.arange(256, dtype=np.uint16).reshape(16, 16).tobytes()
    original = ds.pixel_array.copy()
    return transcode(to_bytes(ds), JPEGLSLossless), original


def _modalities(storescp: StoreScp, allow: bool = True) -> dict:
    return {
        "scp": {
            "AET": storescp.aet,
            "Host": LOOPBACK,
            "Port": storescp.port,
            "AllowTranscoding": allow,
        },
        "closed": ["CLOSED", LOOPBACK, unused_port()],
    }


def test_compressed_file_is_decompressed_for_the_peer(make_server, storescp: StoreScp) -> None:  # type: ignore[no-untyped-def]
    server = make_server(DicomModalities=_modalities(storescp), **LOCAL)
    data, pixels = _compressed()
    instance = upload(server.client, data)["ID"]
    answer = server.client.post("/modalities/scp/store", json=[instance])
    assert answer.status_code == 200, answer.text
    (received,) = storescp.wait_files(1)
    ds = dcmread(received)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPInstanceUID == dcmread(io.BytesIO(data)).SOPInstanceUID
    assert np.array_equal(ds.pixel_array, pixels)


@pytest.mark.parametrize("switch", ["TranscodeDicomProtocol", "AllowTranscoding"])
def test_without_transcoding_the_store_fails(make_server, storescp: StoreScp, switch: str) -> None:  # type: ignore[no-untyped-def]
    config = {"DicomModalities": _modalities(storescp, allow=switch != "AllowTranscoding")}
    if switch == "TranscodeDicomProtocol":
        config["TranscodeDicomProtocol"] = False
    server = make_server(**config, **LOCAL)
    data, _ = _compressed()
    instance = upload(server.client, data)["ID"]
    answer = server.client.post("/modalities/scp/store", json=[instance])
    assert answer.status_code == 500
    assert answer.json()["OrthancStatus"] == 9  # Error in the network protocol
    assert storescp.files() == []
