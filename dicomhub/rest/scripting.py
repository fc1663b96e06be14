"""``POST /tools/execute-script``: run Lua in the server's state, answer what it printed.

Like Orthanc, the route is refused (403, empty body) unless ``ExecuteLuaEnabled`` is
set, since it runs arbitrary code. The script runs in the Lua state of the configured
scripts' callbacks, as in Orthanc: with ``HttpWorkers`` > 1 that state lives in the
primary worker, so the other workers forward the request to it (``rest/workers.py``).
"""

from __future__ import annotations

import threading

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import DicomhubError
from ..scripting.asgi_call import LUA_SCOPE_KEY
from ..scripting.lua import LuaEngine, LuaScriptError
from .workers import group_of

_create_lock = threading.Lock()


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
        raise LuaCommandError(exc.message) from None
    return Response(output.encode(), media_type="text/plain")


def routes() -> list[Route]:
    return [Route("/tools/execute-script", execute_script, methods=["POST"])]
