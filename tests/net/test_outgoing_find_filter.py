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
