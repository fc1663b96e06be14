"""``OutgoingFindRequestFilter`` on the C-FIND queries dicomhub sends: the Lua script
rewrites the identifier before it leaves, for ``/modalities/{id}/query``, the older
``find-*`` routes and ``find-worklist`` alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from net.test_query_retrieve import Pair, answers, query

SCRIPT = """
function OutgoingFindRequestFilter(query, modality)
  -- narrow a wildcard on PatientID to the first patient
  if query["0010,0020"] == "QR*" then query["0010,0020"] = "QR0" end
  return query
end
"""


def test_filter_rewrites_the_outgoing_query(make_server: Any, tmp_path: Path) -> None:
    script = tmp_path / "outgoing.lua"
    script.write_text(SCRIPT)
    pair = Pair(make_server, LuaScripts=[str(script)])
    pair.load(patients=2)
    found = answers(
        pair.hub.client, query(pair.hub.client, Level="Study", Query={"PatientID": "QR*"})
    )
    assert [a["PatientID"] for a in found] == ["QR0"]
    old = pair.hub.client.post("/modalities/source/find-study", json={"PatientID": "QR*"})
    assert old.status_code == 200, old.text
    assert [a["PatientID"] for a in old.json()] == ["QR0"]
    # without the script, the same query finds both patients
    plain = Pair(make_server)
    plain.load(patients=2)
    found = answers(
        plain.hub.client, query(plain.hub.client, Level="Study", Query={"PatientID": "QR*"})
    )
    assert sorted(a["PatientID"] for a in found) == ["QR0", "QR1"]


RECORDING = """
function OutgoingFindRequestFilter(query, modality)
  print("OUT " .. DumpJson(query, true) .. " " .. modality)
  if query["0010,0020"] == "NIL" then return nil end
  if query["0010,0020"] == "NEW" then return {["0010,0020"] = "QR1"} end
  return query
end
"""


def _seen(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    return [line.split("Lua says: ", 1)[1] for line in lines if "Lua says: OUT " in line]


def test_filter_sees_the_callers_keys_and_may_answer_a_new_table(
    make_server: Any, tmp_path: Path
) -> None:
    """As Orthanc 1.10.1: the filter gets the keys of the request only; the level, the
    character set and the return keys are added to its answer, so a new table still
    makes a valid C-FIND (it failed with 0xC000, without QueryRetrieveLevel)."""
    script = tmp_path / "recording.lua"
    script.write_text(RECORDING)
    pair = Pair(make_server, LuaScripts=[str(script)])
    pair.load(patients=2)
    client = pair.hub.client
    found = answers(
        client, query(client, Level="Study", Query={"PatientID": "NEW", "ModalitiesInStudy": "CT"})
    )
    assert [(a["PatientID"], a["StudyInstanceUID"]) for a in found] == [
        ("QR1", pair.studies["QR1"])
    ]
    assert _seen(pair.hub.folder / "server.log") == [
        'OUT {"0008,0061":"CT","0010,0020":"NEW"} SOURCE'
    ]
    # Not a table: Orthanc's error 2033, with its Details.
    refused = client.post(
        "/modalities/source/query", json={"Level": "Study", "Query": {"PatientID": "NIL"}}
    )
    assert refused.status_code == 500
    body = refused.json()
    assert body["OrthancStatus"] == 2033
    assert body["Message"] == "The Lua function does not give the expected number of outputs"
    assert body["Details"] == "Lua: The script must return a table"


def test_filter_sees_keys_given_empty_and_of_other_levels(make_server: Any, tmp_path: Path) -> None:
    """As Orthanc 1.10.1: a key the caller gives empty is in the filter's query, a
    return key of the level included (``"PatientID": ""`` in a study query), and so
    is a key of another level (normalized away after the filter)."""
    script = tmp_path / "recording.lua"
    script.write_text(RECORDING)
    pair = Pair(make_server, LuaScripts=[str(script)])
    pair.load(patients=1)
    client = pair.hub.client
    keys = {"StudyInstanceUID": "", "AccessionNumber": "", "PatientID": ""}
    found = answers(client, query(client, Level="Study", Query=keys))
    assert len(found) == 1 and found[0]["StudyInstanceUID"] == pair.studies["QR0"]
    found = answers(
        client, query(client, Level="Study", Query={"SeriesDescription": "x", "PatientName": ""})
    )
    assert len(found) == 1  # SeriesDescription is no study key: not sent
    assert _seen(pair.hub.folder / "server.log") == [
        'OUT {"0008,0050":"","0010,0020":"","0020,000d":""} SOURCE',
        'OUT {"0008,103e":"x","0010,0010":""} SOURCE',
    ]
