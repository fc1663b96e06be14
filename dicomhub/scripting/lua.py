"""One Lua state running Orthanc-compatible scripts.

Orthanc has a single Lua context shared by the configured scripts, the callbacks and
``/tools/execute-script``; globals set by one are seen by the others. dicomhub keeps
that model: one lupa runtime (Lua 5.3, the version Orthanc's Debian build embeds)
guarded by a lock, since Lua states are not thread-safe.

A script must not hang the server: every entry into Lua gets a wall-clock budget,
checked by a count hook (``LuaTimeLimit`` seconds, a dicomhub extension).
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from pydicom.uid import generate_uid

from .asgi_call import AsgiCaller
from .lua_values import LuaRuntime, dump_json, from_lua, lua_tostring, to_lua, to_text

log = logging.getLogger("dicomhub.lua")

DEFAULT_TIME_LIMIT = 60.0
_HOOK_INSTRUCTIONS = 10_000


class LuaScriptError(Exception):
    """A Lua syntax or runtime error; ``message`` is what Lua said, without traceback."""

    def __init__(self, message: str, not_text: bool = False) -> None:
        super().__init__(message)
        self.message = message
        #: The script raised a value that is not text (``error({code=1})``): Orthanc
        #: has no message then, and answers an internal error.
        self.not_text = not_text


class LuaLoadError(LuaScriptError):
    """A configured script could not be read, or failed while it was loading (a syntax
    error, an ``error()`` at its top level). Orthanc does not start then; neither does
    dicomhub (``server.py``), rather than serve without the filters the script defines.
    """

    #: Orthanc's error for it (``CannotExecuteLua``).
    code = 2031
    name = "Cannot execute a Lua command"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return f"Error in the Lua script {self.path}: {self.message}"


#: The message standing for an error value that is not text (``rethrow``).
_NOT_TEXT = "dicomhub: the Lua error value is not text"


class LuaTimeout(Exception):
    """Raised from the count hook to stop a script that overran its budget."""


_BOOTSTRAP = b"""
local sink, check, sethook = ...
print = function(...)
  -- As Orthanc: ", " before a value only when the text so far is not empty.
  local parts, empty = {}, true
  for i = 1, select('#', ...) do
    local text = tostring((select(i, ...)))
    if not empty then parts[#parts + 1] = ', ' end
    parts[#parts + 1] = text
    empty = empty and text == ''
  end
  sink(table.concat(parts))
end
local hook = function() check() end
local load, pcall, error, type = load, pcall, error, type
-- An error value that is not text (``error({code=1})``, ``error(nil)``): Orthanc
-- cannot read it as a message and fails with an internal error (``NOT_TEXT``).
local function rethrow(ok, ...)
  if ok then return ... end
  local err = ...
  local kind = type(err)
  if kind ~= 'string' and kind ~= 'number' and kind ~= 'userdata' then
    error(%r, 0)
  end
  error(err, 0)
end
return function(code, name)
  local chunk, err = load(code, name, 't')
  if not chunk then error(err, 0) end
  sethook(hook, '', %d)
  return rethrow(pcall(chunk))
end, function(fn, ...)
  sethook(hook, '', %d)
  return rethrow(pcall(fn, ...))
end
""" % (_NOT_TEXT, _HOOK_INSTRUCTIONS, _HOOK_INSTRUCTIONS)


def _deny_attributes(obj: Any, name: Any, setting: bool) -> Any:
    """Lua must not reach Python internals through the functions we hand it."""
    raise AttributeError("access to Python attributes is not allowed from Lua")


class LuaEngine:
    """The Lua state, its Orthanc API, and the lock around it."""

    def __init__(
        self,
        app: Any,
        config: Mapping[str, Any],
        time_limit: float | None = None,
    ) -> None:
        self.config = config
        self.time_limit = float(
            time_limit if time_limit is not None else config.get("LuaTimeLimit", DEFAULT_TIME_LIMIT)
        )
        self.rest = AsgiCaller(app)
        self._lock = threading.RLock()
        #: Counts the runs of Lua code: while it stays the same, the set of global
        #: functions (the callbacks a script defines) cannot have changed.
        self.generation = 0
        self._deadline = float("inf")
        self._output: list[str] | None = None
        self._http_auth: tuple[str, str] | None = None
        self._http_timeout: float = 10.0
        self.runtime = LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attributes,
            unpack_returned_tuples=True,
        )
        g = self.runtime.globals()
        g[b"python"] = None
        self._run_chunk, self._call = self.runtime.execute(
            _BOOTSTRAP, self._print, self._check, g[b"debug"][b"sethook"]
        )
        self._install_api()
        # Lua's own helpers: written here from the Orthanc Book, not copied.
        self._execute_locked(_HELPERS, "=dicomhub-helpers")
        self._execute_locked(_LUA52_COMPATIBILITY, "=dicomhub-lua52")

    # ---- running code --------------------------------------------------------------
    def close(self) -> None:
        self.rest.close()

    def execute(self, code: str | bytes, name: str = "line") -> str:
        """Runs a chunk; answers what it printed (the ``execute-script`` answer)."""
        with self._lock:
            self._output = []
            try:
                self._execute_locked(code, name)
                return "".join(line + "\n" for line in self._output)
            finally:
                self._output = None

    def load_file(self, path: str | Path) -> bool:
        """Loads one configured script. Raises ``LuaLoadError`` (logged here) when it
        cannot be read or fails: as Orthanc, the server must then not start."""
        try:
            code = Path(path).read_bytes()
        except OSError as exc:
            error = LuaLoadError(str(path), f"cannot read it: {exc.strerror or exc}")
            log.error("%s", error)
            raise error from None
        try:
            with self._lock:
                self._execute_locked(code, "@" + str(path))
        except LuaScriptError as exc:
            error = LuaLoadError(str(path), exc.message)
            log.error("%s", error)
            raise error from None
        log.info("Loaded the Lua script %s", path)
        return True

    def has_function(self, name: str) -> bool:
        with self._lock:
            value = self.runtime.globals()[name.encode()]
            return value is not None and _lua_type(value) == "function"

    def call(self, name: str, *args: Any) -> Any:
        """Calls a global Lua function with JSON-like Python arguments."""
        with self._lock:
            function = self.runtime.globals()[name.encode()]
            if function is None or _lua_type(function) != "function":
                return None
            lua_args = [to_lua(self.runtime, a) for a in args]
            return self._guarded(lambda: self._call(function, *lua_args))

    def call_json(self, name: str, *args: Any, keep_strings: bool = False) -> Any:
        """Like ``call``, but answers the first result as plain Python (converted while
        the lock is held: Lua tables must not be read from another thread)."""
        with self._lock:
            function = self.runtime.globals()[name.encode()]
            if function is None or _lua_type(function) != "function":
                return None
            lua_args = [to_lua(self.runtime, a) for a in args]
            result = self._guarded(lambda: self._call(function, *lua_args))
            if isinstance(result, tuple):
                result = result[0] if result else None
            return from_lua(result, keep_strings)

    def _execute_locked(self, code: str | bytes, name: str) -> Any:
        raw = code.encode() if isinstance(code, str) else code
        return self._guarded(lambda: self._run_chunk(raw, name.encode()))

    def _guarded(self, thunk: Any) -> Any:
        self._deadline = time.monotonic() + self.time_limit
        try:
            return thunk()
        except LuaTimeout:
            raise LuaScriptError(
                f"the Lua script ran longer than {self.time_limit:g} seconds and was stopped"
            ) from None
        except Exception as exc:  # lupa.LuaError, LuaSyntaxError, or a Python error
            message = _clean_message(exc)
            if message == _NOT_TEXT:
                raise LuaScriptError("the Lua error value is not text", not_text=True) from exc
            raise LuaScriptError(message) from exc
        finally:
            self._deadline = float("inf")
            # Any run may (re)define globals, callbacks included: see ``generation``.
            self.generation += 1

    def _check(self) -> None:
        if time.monotonic() > self._deadline:
            raise LuaTimeout()

    def _print(self, text: bytes) -> None:
        line = to_text(text)
        log.warning("Lua says: %s", line)
        if self._output is not None:
            self._output.append(line)

    # ---- the Orthanc API -----------------------------------------------------------
    def _install_api(self) -> None:
        g = self.runtime.globals()
        api = {
            "RestApiGet": lambda uri, builtin=None, headers=None: self._rest(
                "GET", uri, b"", headers
            ),
            "RestApiPost": lambda uri, body=b"", builtin=None, headers=None: self._rest(
                "POST", uri, body, headers
            ),
            "RestApiPut": lambda uri, body=b"", builtin=None, headers=None: self._rest(
                "PUT", uri, body, headers
            ),
            "RestApiDelete": lambda uri, builtin=None, headers=None: self._rest_delete(
                uri, headers
            ),
            "HttpGet": lambda url, headers=None: self._http("GET", url, None, headers),
            "HttpPost": lambda url, body=b"", headers=None: self._http("POST", url, body, headers),
            "HttpPut": lambda url, body=b"", headers=None: self._http("PUT", url, body, headers),
            "HttpDelete": lambda url, headers=None: self._http("DELETE", url, None, headers),
            "SetHttpCredentials": self._set_credentials,
            "SetHttpTimeout": self._set_timeout,
            "ParseJson": self._parse_json,
            "DumpJson": lambda value, keep_strings=False: dump_json(
                from_lua(value, bool(keep_strings))
            ).encode(),
            # As Orthanc, extra arguments are ignored.
            "GetOrthancConfiguration": lambda *_: to_lua(self.runtime, _plain(_given(self.config))),
            "GenerateDicomUid": lambda level=None: generate_uid().encode(),
            "SetStableStatus": self._set_stable_status,
            "CallSystem": self._call_system,
            # Taken by ``_HELPERS`` (``ModifyInstance``), then removed from the globals.
            STORE_MODIFIED: self._store_modified,
        }
        for name, function in api.items():
            g[name.encode()] = _nil_on_bad_arguments(function)
        # As Lua functions (``type(HttpGet) == "function"``, as in Orthanc), not the
        # Python objects themselves.
        self.runtime.execute(
            b"for _, name in ipairs({...}) do local f = _G[name]; "
            b"_G[name] = function(...) return f(...) end end",
            *[name.encode() for name in api],
        )

    def _headers(self, headers: Any) -> dict[str, str]:
        if headers is None:
            return {}
        return {to_text(k): to_text(v) for k, v in headers.items()}

    def _rest(self, method: str, uri: Any, body: Any, headers: Any) -> bytes | None:
        raw = body if isinstance(body, bytes) else (to_text(body) if body else "").encode()
        status, answer = self.rest.request(method, to_text(uri), raw, self._headers(headers))
        if status >= 400:
            log.error("Lua: Error in RestApi%s() for URI: %s", method.title(), to_text(uri))
            return None
        return answer

    def _rest_delete(self, uri: Any, headers: Any) -> bool | None:
        return True if self._rest("DELETE", uri, b"", headers) is not None else None

    def _http(self, method: str, url: Any, body: Any, headers: Any) -> Any:
        if isinstance(body, bytes):
            content: bytes | None = body
        elif isinstance(body, int | float) and not isinstance(body, bool):
            content = lua_tostring(body).encode()  # Lua turns a number into its text
        elif body is None:
            content = None
        else:  # a table, a Boolean, a function: Orthanc sends nothing and answers nil
            log.error("Lua: Bad parameters to Http%s(): the body must be a string", method.title())
            return None
        try:
            answer = httpx.request(
                method,
                to_text(url),
                content=content,
                headers=self._headers(headers),
                auth=self._http_auth,
                timeout=self._http_timeout,
            )
        except httpx.HTTPError as exc:
            log.error("Lua: Error in Http%s() for URL %s: %s", method.title(), to_text(url), exc)
            return None
        if answer.status_code >= 400:
            log.error("Lua: Http%s() on %s answered %d", method.title(), url, answer.status_code)
            # As Orthanc: the (empty) answer, not nil, which only a failed connection gives.
            return None if method == "DELETE" else b""
        return b"SUCCESS" if method == "DELETE" else answer.content

    def _store_modified(self, source_id: Any, data: Any) -> bytes | None:
        """Stores the file ``ModifyInstance`` made from ``source_id`` (origin Lua), with
        its ``ModifiedFrom`` metadata written in the same transaction, so that the
        copy's ``OnStoredInstance`` already sees it (the Orthanc Book's guard against
        auto-routing loops). Answers the new instance's ID; nil (logged) on failure."""
        from ..core import ingest
        from ..core.errors import DicomhubError

        if not isinstance(data, bytes) or source_id is None:
            return None
        archive = self._archive()
        source = to_text(source_id)
        try:
            result = ingest.store(archive, data, ingest.Origin(origin="Lua", modified_from=source))
        except DicomhubError as exc:
            log.error("Lua: Cannot store the modified instance of %s: %s", source, exc)
            return None
        return result.instance_id.encode()

    def _set_credentials(self, username: Any, password: Any) -> None:
        self._http_auth = (to_text(username), to_text(password))

    def _set_timeout(self, seconds: Any) -> None:
        self._http_timeout = float(seconds) if seconds and float(seconds) > 0 else 10.0

    def _archive(self) -> Any:
        app = self.rest.app
        while not hasattr(app, "state") and hasattr(app, "app"):
            app = app.app
        return app.state.archive

    def _set_stable_status(self, resource_id: Any, stable: Any) -> bool | None:
        """``SetStableStatus(id, stable)``: true if the status changed, nil on error."""
        from ..core.errors import DicomhubError
        from ..core.stable_status import set_stable_status

        try:
            return set_stable_status(self._archive(), to_text(resource_id), bool(stable))
        except DicomhubError as exc:
            log.error("Lua: Error in SetStableStatus(): %s", exc)
            return None

    def _call_system(self, resource_id: Any, command: Any, args: Any = None) -> Any:
        """``CallSystem(id, command, args)``: runs ``command args... FILE`` where FILE is
        a temporary copy of the instance, as Orthanc's toolbox does; answers the id (to
        chain) on success, nil after a failure (logged, as Orthanc logs it)."""
        if resource_id is None:
            raise ValueError("Cannot execute a system call on a nonexistent resource")
        if command is None:
            raise ValueError("No command was specified for system call")
        values = from_lua(args, True) if args is not None else []
        if not isinstance(values, list):
            raise ValueError("The arguments of CallSystem() must be an array")
        arguments = [str(v) for v in values]  # keep_strings: numbers are text already
        status, data = self.rest.request("GET", f"/instances/{to_text(resource_id)}/file")
        if status != 200:
            log.error("Lua: CallSystem() on an unknown instance: %s", to_text(resource_id))
            return None
        folder = self.config.get("TemporaryDirectory") or None
        with tempfile.NamedTemporaryFile(suffix=".dcm", dir=folder) as handle:
            handle.write(data)
            handle.flush()
            line = [to_text(command), *arguments, handle.name]
            try:
                done = subprocess.run(
                    line, capture_output=True, timeout=self.time_limit, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.error("Lua: Failed system call - %s: %s", " ".join(line), exc)
                return None
        if done.returncode != 0:
            log.error("Lua: Failed system call - %s: exit code %d", " ".join(line), done.returncode)
            return None
        return resource_id

    def _parse_json(self, text: Any) -> Any:
        """The value of a JSON text; nil for what is not JSON (as Orthanc answers), and
        text after the value is ignored, as Orthanc's reader ignores it."""
        if text is None:
            return None
        try:
            value, _ = json.JSONDecoder().raw_decode(to_text(text).strip())
        except (ValueError, TypeError):
            return None
        return to_lua(self.runtime, value)


#: The global through which ``_HELPERS`` reaches ``LuaEngine._store_modified``.
STORE_MODIFIED = "_DicomhubStoreModified"


def _lua_type(value: Any) -> str | None:
    from lupa.lua53 import lua_type

    return lua_type(value)


def _nil_on_bad_arguments(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` answering nil when called with arguments it does not take (none,
    too many), as Orthanc's API functions answer, rather than a Python error."""

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except TypeError as exc:
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                return None  # raised by the call itself: the arguments did not fit
            raise

    return call


def _given(config: Any) -> Any:
    """The options the configuration gives (its files, the environment), without the
    defaults: what Orthanc's ``GetOrthancConfiguration()`` answers."""
    is_set = getattr(config, "is_set", None)
    if is_set is None:  # a plain mapping (tests, embedding): all of it is given
        return config
    return {key: value for key, value in config.items() if is_set(key)}


def _plain(value: Any) -> Any:
    """The configuration as plain JSON (it may be a read-only mapping)."""
    return json.loads(
        json.dumps(value, default=lambda o: dict(o) if isinstance(o, Mapping) else str(o))
    )


def _clean_message(exc: BaseException) -> str:
    text = str(exc.args[0] if exc.args else exc)
    if isinstance(exc.args[0] if exc.args else None, bytes):
        text = to_text(exc.args[0])
    text = text.split("\nstack traceback:", 1)[0]
    return text.removeprefix("error loading code: ")


#: Helpers that Orthanc's Lua toolbox offers scripts, written from the Book's
#: descriptions of what they do (each is one call of the REST API).
#: Lua 5.2's functions that Orthanc's Lua 5.3 (Debian's, built with its compatibility
#: option) still offers and older scripts use: ``bit32``, ``math.pow``, ``math.atan2``,
#: ``math.cosh``... This Lua 5.3 lacks them; they are written here with 5.3's own
#: operators, on 32-bit unsigned values as ``bit32`` defines them.
_LUA52_COMPATIBILITY = b"""
local M = 0xFFFFFFFF
local function n(x) return math.floor(x) % 4294967296 end
local function fold(op, init)
  return function(...)
    local r = init
    for i = 1, select('#', ...) do r = op(r, n((select(i, ...)))) end
    return r
  end
end
local b = {}
b.band = fold(function(x, y) return x & y end, M)
b.bor = fold(function(x, y) return x | y end, 0)
b.bxor = fold(function(x, y) return x ~ y end, 0)
b.bnot = function(x) return (~n(x)) & M end
b.btest = function(...) return b.band(...) ~= 0 end
b.lshift = function(x, d)
  if d < 0 then return b.rshift(x, -d) end
  if d >= 32 then return 0 end
  return (n(x) << d) & M
end
b.rshift = function(x, d)
  if d < 0 then return b.lshift(x, -d) end
  if d >= 32 then return 0 end
  return n(x) >> d
end
b.arshift = function(x, d)
  x = n(x)
  if d <= 0 then return b.lshift(x, -d) end
  local negative = x >= 0x80000000
  if d >= 32 then return negative and M or 0 end
  local r = x >> d
  if negative then r = r | ((M << (32 - d)) & M) end
  return r
end
b.lrotate = function(x, d)
  x, d = n(x), math.floor(d) % 32
  return ((x << d) | (x >> (32 - d))) & M
end
b.rrotate = function(x, d)
  x, d = n(x), math.floor(d) % 32
  return ((x >> d) | (x << (32 - d))) & M
end
b.extract = function(x, field, width)
  width = width or 1
  return (n(x) >> field) & ((1 << width) - 1)
end
b.replace = function(x, v, field, width)
  width = width or 1
  local mask = ((1 << width) - 1) << field
  return (n(x) & (~mask & M)) | ((n(v) << field) & mask)
end
bit32 = bit32 or b
math.pow = math.pow or function(x, y) return x ^ y end
math.atan2 = math.atan2 or function(y, x) return math.atan(y, x) end
math.cosh = math.cosh or function(x) return (math.exp(x) + math.exp(-x)) / 2 end
math.sinh = math.sinh or function(x) return (math.exp(x) - math.exp(-x)) / 2 end
math.tanh = math.tanh or function(x)
  local p, q = math.exp(x), math.exp(-x)
  return (p - q) / (p + q)
end
math.log10 = math.log10 or function(x) return math.log(x, 10) end
math.ldexp = math.ldexp or function(m, e) return m * 2.0 ^ e end
math.frexp = math.frexp or function(x)
  if x == 0 or x ~= x or x == math.huge or x == -math.huge then return x, 0 end
  local e = math.floor(math.log(math.abs(x), 2)) + 1
  local m = x / 2.0 ^ e
  if math.abs(m) >= 1 then m, e = m / 2, e + 1 elseif math.abs(m) < 0.5 then m, e = m * 2, e - 1 end
  return m, e
end
"""

_HELPERS = b"""
function Delete(resourceId)
  if resourceId == nil then error('Cannot delete a nonexistent resource') end
  for _, level in ipairs({'instances', 'series', 'studies', 'patients'}) do
    if RestApiDelete('/' .. level .. '/' .. resourceId) then return true end
  end
  return nil
end

local function send(route, target, ids, extra)
  local body = { Resources = ids, Synchronous = true }
  for k, v in pairs(extra or {}) do body[k] = v end
  local answer = RestApiPost(route .. target .. '/store', DumpJson(body))
  if answer == nil then
    error('Cannot send ' .. tostring(ids[1]) .. ' to ' .. target)
  end
  return ids[1]
end

function SendToModality(resourceId, modality, localAet)
  local extra = {}
  if localAet ~= nil then extra.LocalAet = localAet end
  return send('/modalities/', modality, { resourceId }, extra)
end

local store_modified = _DicomhubStoreModified
_DicomhubStoreModified = nil

-- Stores the modified copy here (origin "Lua", metadata "ModifiedFrom" = the source,
-- as Orthanc) and answers its ID, so that it can be sent and deleted as the Book's
-- auto-routing example does.
function ModifyInstance(resourceId, replacements, removals, removePrivateTags)
  if resourceId == nil then error('Cannot modify a nonexistent resource') end
  local body = {}
  if replacements ~= nil and next(replacements) ~= nil then body.Replace = replacements end
  if removals ~= nil and next(removals) ~= nil then body.Remove = removals end
  if removePrivateTags then body.RemovePrivateTags = true end
  local file = RestApiPost('/instances/' .. resourceId .. '/modify', DumpJson(body, true))
  if file == nil then error('Cannot modify the instance ' .. resourceId) end
  local stored = store_modified(resourceId, file)
  if stored == nil then error('Cannot store the modified instance of ' .. resourceId) end
  return stored
end

ModifyResource = ModifyInstance

function SendToPeer(resourceId, peer)
  return send('/peers/', peer, { resourceId })
end

-- As Orthanc's (seen on 1.10.1): one line per value, in ``pairs`` order, each table's
-- items after its own line; ``limit`` (100) values at most, then an error line;
-- ``indent`` starts every line; answers what is left of the limit (-1 once reached).
function PrintRecursive(value, limit, indent)
  limit = limit or 100
  indent = indent or ''
  if limit < 1 then
    print('ERROR: Item limit reached.')
    return limit - 1
  end
  if type(value) ~= 'table' then
    print(indent, type(value), value)
    return limit - 1
  end
  print(indent, 'table')
  for k, v in pairs(value) do
    limit = PrintRecursive(v, limit, indent .. '\t[' .. tostring(k) .. ']')
    if limit < 0 then break end
  end
  return limit
end
"""
