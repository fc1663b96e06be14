"""Python hooks: the Lua callbacks and filters, written as Python functions.

A module named in ``PythonHooks`` (a dicomhub extension: a path or a list of paths to
``.py`` files) defines any of these functions, named after Orthanc's Lua callbacks in
snake case:

- callbacks, called one at a time from the same queue as the Lua callbacks (off the
  hot path): ``initialize(api)``, ``finalize()``, ``on_stored_instance(instance_id,
  tags, metadata, origin)``, ``on_stable_patient/study/series(resource_id, tags,
  metadata)``, ``on_deleted_*`` and ``on_updated_*(resource_id)`` (patient, study,
  series, instance), ``on_job_submitted/success/failure(job_id)``, ``on_heart_beat()``;
- filters, called synchronously where Orthanc calls its Lua filters, through
  ``core.hooks``: ``received_instance_filter(tags, origin, info) -> bool``,
  ``incoming_cstore_instance_filter(tags, origin, info) -> int`` (a DIMSE status, 0
  accepts), ``incoming_http_request_filter(method, uri, ip, username, headers) ->
  bool``, ``incoming_find_request_filter(query, origin) -> dict``,
  ``incoming_worklist_request_filter(query, origin) -> dict``,
  ``outgoing_find_request_filter(query, modality_aet) -> dict``.

The arguments are those the Lua functions get, as plain Python values. ``initialize``
receives a ``HookApi`` to call the REST API in-process (what Lua's ``RestApi*`` do).
Filters run in every HTTP worker; callbacks and ``initialize`` in the primary one.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ..core import hooks as core_hooks
from ..core.hooks import Hooks
from .asgi_call import AsgiCaller

log = logging.getLogger("dicomhub.python_hooks")

CONFIG_KEY = "PythonHooks"


class HookApi:
    """What hooks use to act on the server: the REST API without a socket or access
    control (as Lua's ``RestApiGet`` and friends), and the configuration."""

    def __init__(self, caller: AsgiCaller, config: Mapping[str, Any]) -> None:
        self._caller = caller
        self.config = config

    def request(
        self,
        method: str,
        uri: str,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        raw = body.encode() if isinstance(body, str) else body
        return self._caller.request(method, uri, raw, headers)

    def _ok(self, method: str, uri: str, body: bytes | str = b"") -> bytes | None:
        status, answer = self.request(method, uri, body)
        return answer if status < 400 else None

    def get(self, uri: str) -> bytes | None:
        return self._ok("GET", uri)

    def get_json(self, uri: str) -> Any:
        answer = self.get(uri)
        return None if answer is None else json.loads(answer)

    def post(self, uri: str, body: bytes | str = b"") -> bytes | None:
        return self._ok("POST", uri, body)

    def put(self, uri: str, body: bytes | str = b"") -> bytes | None:
        return self._ok("PUT", uri, body)

    def delete(self, uri: str) -> bool:
        return self._ok("DELETE", uri) is not None


def python_name(lua_name: str) -> str:
    """``OnStoredInstance`` -> ``on_stored_instance`` (the callbacks' Python names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", lua_name).lower()


class PythonHooks:
    """The loaded modules, seen by the callback queue as one more target beside Lua."""

    def __init__(self, modules: list[ModuleType]) -> None:
        self.modules = modules

    def _functions(self, lua_name: str) -> list[Callable[..., Any]]:
        name = python_name(lua_name)
        return [f for m in self.modules if callable(f := getattr(m, name, None))]

    def has_function(self, lua_name: str) -> bool:
        return bool(self._functions(lua_name))

    def call(self, lua_name: str, *args: Any) -> None:
        """Calls every module's function; one failing does not stop the others."""
        for function in self._functions(lua_name):
            try:
                function(*args)
            except Exception:
                log.exception("Error in the Python hook %s()", python_name(lua_name))

    def initialize(self, api: HookApi) -> None:
        for module in self.modules:
            function = getattr(module, "initialize", None)
            if callable(function):
                try:
                    function(api)
                except Exception:
                    log.exception("Error in the Python hook initialize() of %s", module.__name__)

    def install_filters(self, hooks: Hooks) -> list[Callable[[], None]]:
        removers = []
        for module in self.modules:
            for kind in core_hooks.KINDS:
                function = getattr(module, f"{kind}_filter", None)
                if callable(function):
                    removers.append(hooks.register(kind, function))
                    log.info("Python filter installed: %s.%s_filter()", module.__name__, kind)
        return removers


def _paths(config: Mapping[str, Any]) -> list[str]:
    value = config.get(CONFIG_KEY) or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def load_module(path: str, index: int) -> ModuleType | None:
    """Imports one hook file under a private name; a broken file is logged, not fatal
    (as a broken Lua script is)."""
    file = Path(path)
    name = f"dicomhub_hooks_{index}_{re.sub(r'[^0-9A-Za-z_]', '_', file.stem)}"
    try:
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"not a Python file: {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        log.exception("Cannot load the Python hooks %s", path)
        return None
    log.info("Loaded the Python hooks %s", path)
    return module


def load_python_hooks(config: Mapping[str, Any]) -> PythonHooks | None:
    """The modules of ``PythonHooks`` (``None`` when the option is empty)."""
    paths = _paths(config)
    if not paths:
        return None
    modules = [m for i, p in enumerate(paths) if (m := load_module(p, i)) is not None]
    return PythonHooks(modules)


__all__ = ["CONFIG_KEY", "HookApi", "PythonHooks", "load_python_hooks", "python_name"]
