"""Shared by the Lua callback tests: a script recording the ``OnDeleted*`` callbacks,
a server running a script, and the events a script recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from archive_checks import fresh_client, wait_until
from conftest import RunningServer

# Records every ``OnDeleted*`` callback in the global ``events`` (read by
# ``script_events``); a test appends the other callbacks it needs, which may use ``add``.
DELETED_EVENTS_LUA = """
events = {}
local function add(s) events[#events + 1] = s end
function OnDeletedPatient(id) add('patient ' .. id) end
function OnDeletedStudy(id) add('study ' .. id) end
function OnDeletedSeries(id) add('series ' .. id) end
function OnDeletedInstance(id) add('instance ' .. id) end
"""


def lua_server(
    make_server: Callable[..., RunningServer], tmp_path: Path, script: str, **config: Any
) -> RunningServer:
    """A server running the Lua ``script`` (and ``execute-script``), with ``config``."""
    path = tmp_path / "events.lua"
    path.write_text(script)
    return make_server(LuaScripts=[str(path)], ExecuteLuaEnabled=True, **config)


def script_events(
    server: RunningServer, count: int, auth: tuple[str, str] | None = None
) -> list[str]:
    """The events the script recorded, once there are ``count`` (then forgotten); each
    request over a new connection."""

    def run(code: str) -> str:
        with fresh_client(server.url, auth=auth) as client:
            answer = client.post("/tools/execute-script", content=code)
            assert answer.status_code == 200, answer.text
            return answer.text

    wait_until(lambda: int(run("print(#events)")) >= count, 30)
    return run("for _, e in ipairs(events) do print(e) end events = {}").splitlines()
