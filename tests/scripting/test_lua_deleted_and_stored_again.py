"""Callbacks Orthanc calls without a change in ``/changes`` (seen on Orthanc 1.10.1):

- ``OnDeleted*`` for every resource a deletion removes, in Orthanc's order (a
  resource's children before it; the emptied ancestors from the top down before the
  resource deleted), while ``/changes`` keeps its single ``Deleted`` row;
- ``ReceivedInstanceFilter`` and ``OnStoredInstance`` again for an instance already
  stored (REST ``AlreadyStored``, a repeated C-STORE), with the new request's origin,
  and nothing added to ``/changes``.

With one process and with several HTTP workers (the others relay these events to the
primary's callbacks): every request goes over a new connection, which the supervisor
may give to any worker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from archive_checks import fresh_client
from conftest import RunningServer
from dicom_factory import make_dicom
from pydicom import dcmread
from pynetdicom import AE

from scripting.lua_checks import DELETED_EVENTS_LUA, lua_server, script_events

SCRIPT = (
    DELETED_EVENTS_LUA
    + """
function ReceivedInstanceFilter(dicom, origin, info)
  return true
end
function OnStoredInstance(id, tags, metadata, origin)
  add('stored ' .. id .. ' ' .. origin.RequestOrigin .. ' ' .. tostring(origin.RemoteAet)
      .. ' ' .. metadata.Origin)
end
"""
)

P = "LUA-DEL"
STUDY = "1.2.826.0.1.3680043.99.71"


def _file(study: int, series: int, number: int) -> bytes:
    return make_dicom(
        patient_id=P,
        study_uid=f"{STUDY}.{study}",
        series_uid=f"{STUDY}.{study}.{series}",
        sop_uid=f"{STUDY}.{study}.{series}.{number}",
        InstanceNumber=str(number),
    )


def _call(server: RunningServer, method: str, uri: str, **kwargs: Any) -> Any:
    with fresh_client(server.url) as client:
        answer = client.request(method, uri, **kwargs)
        assert answer.status_code == 200, answer.text
        return answer.json() if answer.content else None


def _last_change(server: RunningServer) -> int:
    return _call(server, "GET", "/changes?limit=0")["Last"]


def _changes_since(server: RunningServer, last: int) -> list[tuple[str, str]]:
    changes = _call(server, "GET", f"/changes?since={last}")["Changes"]
    return [(c["ChangeType"], c["ID"]) for c in changes]


def _every_level(stored: dict[str, str]) -> list[str]:
    """The ``OnDeleted*`` events for the only instance of its patient (the upload's
    answer ``stored``): the patient, the study, the series, then the instance."""
    return [
        f"patient {stored['ParentPatient']}",
        f"study {stored['ParentStudy']}",
        f"series {stored['ParentSeries']}",
        f"instance {stored['ID']}",
    ]


@pytest.fixture(params=[1, 4], ids=["one-worker", "four-workers"])
def scripted(
    request: Any, tmp_path: Path, make_server: Callable[..., RunningServer]
) -> RunningServer:
    return lua_server(make_server, tmp_path, SCRIPT, HttpWorkers=request.param)


def test_on_deleted_for_every_removed_resource_in_orthancs_order(scripted: RunningServer) -> None:
    ids: dict[tuple[int, ...], dict[str, str]] = {}
    for study in (1, 2):
        for series in (1, 2):
            for number in (1, 2):
                ids[study, series, number] = _call(
                    scripted, "POST", "/instances", content=_file(study, series, number)
                )
    script_events(scripted, 8)
    last = _last_change(scripted)
    inst = {key: value["ID"] for key, value in ids.items()}
    series = {key[:2]: value["ParentSeries"] for key, value in ids.items()}
    study = {key[0]: value["ParentStudy"] for key, value in ids.items()}
    patient = ids[1, 1, 1]["ParentPatient"]

    # An instance with a sibling: itself only.
    _call(scripted, "DELETE", f"/instances/{inst[1, 1, 1]}")
    assert script_events(scripted, 1) == [f"instance {inst[1, 1, 1]}"]
    # The last instance of a series: the series, then the instance.
    _call(scripted, "DELETE", f"/instances/{inst[1, 1, 2]}")
    assert script_events(scripted, 2) == [f"series {series[1, 1]}", f"instance {inst[1, 1, 2]}"]
    # The last series of a study: its instances, the study, then the series.
    _call(scripted, "DELETE", f"/series/{series[1, 2]}")
    assert script_events(scripted, 4) == [
        f"instance {inst[1, 2, 1]}",
        f"instance {inst[1, 2, 2]}",
        f"study {study[1]}",
        f"series {series[1, 2]}",
    ]
    # A patient: every resource, each after its children.
    _call(scripted, "DELETE", f"/patients/{patient}")
    assert script_events(scripted, 8) == [
        f"instance {inst[2, 1, 1]}",
        f"instance {inst[2, 1, 2]}",
        f"series {series[2, 1]}",
        f"instance {inst[2, 2, 1]}",
        f"instance {inst[2, 2, 2]}",
        f"series {series[2, 2]}",
        f"study {study[2]}",
        f"patient {patient}",
    ]
    # /changes: one Deleted row per deletion, for the topmost resource removed.
    assert _changes_since(scripted, last) == [
        ("Deleted", inst[1, 1, 1]),
        ("Deleted", series[1, 1]),
        ("Deleted", study[1]),
        ("Deleted", patient),
    ]
    # The last instance of a patient: the patient, the study, the series, the instance.
    alone = _call(scripted, "POST", "/instances", content=_file(3, 1, 1))
    script_events(scripted, 1)
    _call(scripted, "DELETE", f"/instances/{alone['ID']}")
    assert script_events(scripted, 4) == _every_level(alone)


def test_on_stored_instance_again_for_an_instance_already_stored(
    scripted: RunningServer, tmp_path: Path
) -> None:
    data = _file(4, 1, 1)
    first = _call(scripted, "POST", "/instances", content=data)
    instance = first["ID"]
    assert script_events(scripted, 1) == [f"stored {instance} RestApi nil RestApi"]
    last = _last_change(scripted)
    again = _call(scripted, "POST", "/instances", content=data)
    assert again["Status"] == "AlreadyStored"
    assert script_events(scripted, 1) == [f"stored {instance} RestApi nil RestApi"]
    # A repeated C-STORE: the new request's origin; the stored metadata stay.
    path = tmp_path / "again.dcm"
    path.write_bytes(data)
    dataset = dcmread(path)
    ae = AE(ae_title="AGAINSCU")
    ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", scripted.config["DicomPort"])
    assert assoc.is_established
    try:
        assert assoc.send_c_store(dataset).Status == 0
    finally:
        assoc.release()
    assert script_events(scripted, 1) == [f"stored {instance} DicomProtocol AGAINSCU RestApi"]
    # Nothing changed: /changes has nothing new.
    assert _last_change(scripted) == last


@pytest.mark.parametrize("workers", [1, 4], ids=["one-worker", "four-workers"])
def test_overwritten_instance_is_stored_then_its_old_copy_deleted(
    workers: int, tmp_path: Path, make_server: Callable[..., RunningServer]
) -> None:
    """OverwriteInstances, as Orthanc 1.10.1 (which does so nearly every time, its two
    queues racing): ``OnStoredInstance`` for the new copy, then ``OnDeleted*`` for the
    copy replaced and the ancestors it left empty; ``/changes`` gets the new copy's
    ``New*`` rows and no ``Deleted`` row."""
    server = lua_server(make_server, tmp_path, SCRIPT, HttpWorkers=workers, OverwriteInstances=True)
    data = _file(5, 1, 1)
    first = _call(server, "POST", "/instances", content=data)
    instance = first["ID"]
    script_events(server, 1)
    # The only instance of its patient: every level is replaced.
    last = _last_change(server)
    assert _call(server, "POST", "/instances", content=data)["Status"] == "Success"
    assert script_events(server, 5) == [
        f"stored {instance} RestApi nil RestApi",
        *_every_level(first),
    ]
    assert _changes_since(server, last) == [
        ("NewInstance", instance),
        ("NewSeries", first["ParentSeries"]),
        ("NewStudy", first["ParentStudy"]),
        ("NewPatient", first["ParentPatient"]),
    ]
    # With a sibling: the instance alone.
    _call(server, "POST", "/instances", content=_file(5, 1, 2))
    script_events(server, 1)
    last = _last_change(server)
    for _ in range(3):
        assert _call(server, "POST", "/instances", content=data)["Status"] == "Success"
        assert script_events(server, 2) == [
            f"stored {instance} RestApi nil RestApi",
            f"instance {instance}",
        ]
    assert _changes_since(server, last) == [("NewInstance", instance)] * 3
