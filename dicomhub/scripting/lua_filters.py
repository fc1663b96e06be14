"""Orthanc's synchronous Lua filters, registered into ``core.hooks``.

Orthanc runs its filters in a Lua state of their own, loaded with the same
``LuaScripts`` (checked on Orthanc 1.10.1: redefining ``ReceivedInstanceFilter``
through ``/tools/execute-script`` does not change what uploads go through). That
keeps ingest, HTTP and C-FIND from waiting while a slow ``OnStoredInstance`` holds
the callbacks' state; dicomhub runs all its synchronous filters in that second state.

Answers are checked as Orthanc checks them: a predicate filter must answer a
boolean (otherwise error 2034, as Orthanc), a query filter a table (otherwise error
2033), and a Lua error is error 2031.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..core import hooks as core_hooks
from ..core.hooks import FilterError, Hooks
from .lua import LuaEngine, LuaScriptError

log = logging.getLogger("dicomhub.lua")

#: Lua's names for the filters of ``core.hooks``.
LUA_NAMES: dict[str, str] = {
    core_hooks.RECEIVED_INSTANCE: "ReceivedInstanceFilter",
    core_hooks.INCOMING_CSTORE_INSTANCE: "ReceivedCStoreInstanceFilter",
    core_hooks.INCOMING_HTTP_REQUEST: "IncomingHttpRequestFilter",
    core_hooks.INCOMING_FIND_REQUEST: "IncomingFindRequestFilter",
    core_hooks.INCOMING_WORKLIST_REQUEST: "IncomingWorklistRequestFilter",
    core_hooks.OUTGOING_FIND_REQUEST: "OutgoingFindRequestFilter",
}

#: Callbacks that Orthanc 1.9.0 removed in favour of the ``AcceptedTransferSyntaxes``
#: and ``UnknownSopClassAccepted`` options; a script defining one gets a warning.
REMOVED_CALLBACKS = (
    "IsUnknownSopClassAccepted",
    "IsDeflatedTransferSyntaxAccepted",
    "IsJpegTransferSyntaxAccepted",
    "IsJpeg2000TransferSyntaxAccepted",
    "IsJpegLosslessTransferSyntaxAccepted",
    "IsJpipTransferSyntaxAccepted",
    "IsMpeg2TransferSyntaxAccepted",
    "IsMpeg4TransferSyntaxAccepted",
    "IsRleTransferSyntaxAccepted",
)

#: The C-STORE status when ``ReceivedCStoreInstanceFilter`` answers ``false``.
STATUS_REFUSED_OUT_OF_RESOURCES = 0xA700


class LuaFilterError(FilterError):
    """Orthanc's ``CannotExecuteLua``: the filter raised an error or ran too long."""

    code = 2031
    name = "Cannot execute a Lua command"


class LuaBadOutput(FilterError):
    """Orthanc's ``LuaBadOutput``: a query filter answered something else than a table."""

    code = 2033
    name = "The Lua function does not give the expected number of outputs"


class LuaNotPredicate(FilterError):
    """Orthanc's ``LuaReturnsNoPredicate``: a filter answered something else than a Boolean."""

    code = 2034
    name = "The Lua function is not a predicate (only true/false outputs allowed)"


def _call(engine: LuaEngine, name: str, *args: Any, keep_strings: bool = False) -> Any:
    try:
        return engine.call_json(name, *args, keep_strings=keep_strings)
    except LuaScriptError as exc:
        log.error("Error in the Lua filter %s(): %s", name, exc.message)
        raise LuaFilterError(exc.message) from None


def _predicate(engine: LuaEngine, name: str) -> Callable[..., bool]:
    def run(*args: Any) -> bool:
        answer = _call(engine, name, *args)
        if not isinstance(answer, bool):
            log.error("Error in the Lua filter %s(): %s", name, LuaNotPredicate.name)
            raise LuaNotPredicate()
        return answer

    return run


def _cstore(engine: LuaEngine, name: str) -> Callable[..., int]:
    """Answers the DIMSE status: 0 (or ``true``) accepts, any other number refuses the
    instance with that status (as the Orthanc Book documents it), ``false`` refuses
    with 0xA700."""

    def run(*args: Any) -> int:
        answer = _call(engine, name, *args)
        if isinstance(answer, bool):
            return 0 if answer else STATUS_REFUSED_OUT_OF_RESOURCES
        if isinstance(answer, int | float) and float(answer).is_integer():
            return int(answer) & 0xFFFF
        raise LuaFilterError(f"{name}() must answer a DIMSE status (a number) or a Boolean")

    return run


def _query(engine: LuaEngine, name: str) -> Callable[..., dict[str, Any]]:
    def run(query: dict[str, Any], extra: Any) -> dict[str, Any]:
        answer = _call(engine, name, query, extra, keep_strings=True)  # values stay text
        if answer == []:  # an empty Lua table: every key removed
            return {}
        if not isinstance(answer, Mapping):
            # Orthanc's error and Details (1.10.1, for a filter answering nil).
            log.error("Error in the Lua filter %s(): it must answer a table", name)
            raise LuaBadOutput("Lua: The script must return a table")
        return dict(answer)

    return run


_WRAPPERS: dict[str, Callable[[LuaEngine, str], Callable[..., Any]]] = {
    core_hooks.RECEIVED_INSTANCE: _predicate,
    core_hooks.INCOMING_CSTORE_INSTANCE: _cstore,
    core_hooks.INCOMING_HTTP_REQUEST: _predicate,
    core_hooks.INCOMING_FIND_REQUEST: _query,
    core_hooks.INCOMING_WORKLIST_REQUEST: _query,
    core_hooks.OUTGOING_FIND_REQUEST: _query,
}


def install_lua_filters(engine: LuaEngine, hooks: Hooks) -> list[Callable[[], None]]:
    """Registers the filters the loaded scripts define; answers their removers.

    The set is fixed once the configured scripts are loaded (``execute-script`` runs in
    the callbacks' state, not here), so a request never pays a Lua call for a filter
    that no script defines.
    """
    removers = []
    for kind, lua_name in LUA_NAMES.items():
        if engine.has_function(lua_name):
            removers.append(hooks.register(kind, _WRAPPERS[kind](engine, lua_name)))
            log.info("Lua filter installed: %s()", lua_name)
    for name in REMOVED_CALLBACKS:
        if engine.has_function(name):
            log.warning(
                "The Lua callback %s() is ignored: Orthanc 1.9.0 replaced it by the "
                '"AcceptedTransferSyntaxes" and "UnknownSopClassAccepted" options',
                name,
            )
    return removers


__all__ = ["LUA_NAMES", "LuaBadOutput", "LuaFilterError", "LuaNotPredicate", "install_lua_filters"]
