"""``POST /tools/execute-script``: run Lua in the server's state, answer what it printed.

Like Orthanc, the route is refused (403, empty body) unless ``ExecuteLuaEnabled`` is
set, since it runs arbitrary code. The script runs in the Lua state of the configured
scripts' callbacks, as in Orthanc: with ``HttpWorkers`` > 1 that state lives in the
primary worker, so the other workers forward the request to it (``rest/workers.py``).

The same route, on the primary's private socket only, takes the script events that
the other workers relay to the primary's callbacks (``scripting/callbacks.py``,
``ScriptEventRelay``): they are not changes, so the changes log cannot carry them.
"""

from __future__ import annotations

import threading

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import DicomhubError, InternalError
from ..scripting.asgi_call import LUA_SCOPE_KEY
from ..scripting.callbacks import SCRIPT_EVENTS_HEADER, events_from_json
from ..scripting.lua import LuaEngine, LuaScriptError
from .responses import text_response
from .workers import FORWARDED_KEY, group_of

_create_lock = threading.Lock()

#: Orthanc's ``Details`` when a script raises a value that is not text.
UNHANDLED = "An unhandled exception was generated inside the HTTP server"


class LuaCommandError(DicomhubError):
    """Orthanc's ``CannotExecuteLua`` (2031), answered as 500 with Lua's message."""

    code = 2031
    name = "Cannot execute a Lua command"
    http_status = 500


def _engine(request: Request) -> LuaEngine:
    state = request.app.state
    engine = getattr(state, "lua", None)
    if engine is None:
        with _create_lock:
            engine = getattr(state, "lua", None)
            if engine is None:
                from ..scripting.callbacks import without_access_control

                # The Starlette app sits under the middlewares; call it directly.
                engine = state.lua = LuaEngine(without_access_control(request.app), state.config)
    return engine


async def execute_script(request: Request) -> Response:
    if SCRIPT_EVENTS_HEADER in request.headers and request.scope.get(FORWARDED_KEY):
        return await _relayed_events(request)
    if not request.app.state.config.get("ExecuteLuaEnabled", False):
        return Response(status_code=403)
    if request.scope.get(LUA_SCOPE_KEY):
        raise LuaCommandError("a Lua script cannot run another script")
    code = await request.body()
    group = group_of(request)
    if group is not None and not group.primary:
        return await group.forward_to_primary(request, code)
    engine = _engine(request)
    try:
        output = await run_in_threadpool(engine.execute, code)
    except LuaScriptError as exc:
        if exc.not_text:  # ``error({code=1})``: as Orthanc (seen on 1.10.1)
            raise InternalError(UNHANDLED) from None
        raise LuaCommandError(exc.message) from None
    return text_response(output.encode())


async def _relayed_events(request: Request) -> Response:
    """Another worker's script events, for this (primary) worker's callbacks."""
    dispatcher = getattr(request.app.state, "lua_dispatcher", None)
    events = events_from_json(await request.body())
    if dispatcher is not None:
        for event in events:
            dispatcher.enqueue(event)
    return Response(status_code=200)


def routes() -> list[Route]:
    return [Route("/tools/execute-script", execute_script, methods=["POST"])]
