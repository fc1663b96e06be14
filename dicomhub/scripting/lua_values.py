"""Moving values between Python/JSON and Lua the way Orthanc's scripts expect.

Orthanc hands JSON to Lua as nested tables (arrays 1-based, ``null`` dropped, every
number a float) and turns tables back into JSON arrays when their keys are 1..n and
into objects otherwise; an empty table becomes ``[]``. Scripts rely on these shapes
(e.g. ``#tags`` or ``DumpJson({})``), so both directions follow them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import lupa.lua53 as lupa_lua

LuaRuntime = lupa_lua.LuaRuntime


def to_text(value: Any) -> str:
    """Lua strings arrive as bytes (the runtime has no encoding): decode leniently."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def to_lua(runtime: Any, value: Any) -> Any:
    """A JSON-like Python value as a Lua value (dicts and lists become tables)."""
    if isinstance(value, dict):
        table = runtime.table()
        for key, item in value.items():
            if item is not None:
                table[str(key).encode()] = to_lua(runtime, item)
        return table
    if isinstance(value, list | tuple):
        table = runtime.table()
        for index, item in enumerate(value, start=1):
            if item is not None:
                table[index] = to_lua(runtime, item)
        return table
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def from_lua(value: Any, keep_strings: bool = False) -> Any:
    """A Lua value as JSON-ready Python; ``keep_strings`` writes numbers as strings.

    As Orthanc's ``DumpJson``: a number is a JSON integer only when it is integral and
    fits in 32 bits (anything else is a double); with ``keep_strings``, a number is the
    text Lua's ``tostring`` gives it."""
    if lupa_lua.lua_type(value) == "table":
        items = list(value.items())
        keys = [key for key, _ in items]
        if all(isinstance(k, int) and not isinstance(k, bool) for k in keys) and sorted(
            keys
        ) == list(range(1, len(keys) + 1)):
            return [from_lua(item, keep_strings) for _, item in sorted(items)]
        return {
            to_text(lua_tostring(key) if _is_number(key) else key): from_lua(item, keep_strings)
            for key, item in items
        }
    if isinstance(value, bytes):
        text = to_text(value)
        if keep_strings:
            return text
        number = lua_number(text)  # Orthanc's DumpJson: what Lua reads as a number is one
        return text if number is None else json_number(number)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return lua_tostring(value) if keep_strings else json_number(value)
    if lupa_lua.lua_type(value) is not None:
        return None  # functions, userdata: nothing JSON can hold
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_INT32 = range(-(2**31), 2**31)


def json_number(value: int | float) -> int | float:
    """A Lua number as Orthanc's writer holds it: an ``int`` when it is integral and
    fits in 32 bits, a ``float`` otherwise."""
    if isinstance(value, int):
        return value if value in _INT32 else float(value)
    if math.isfinite(value) and value.is_integer() and int(value) in _INT32:
        return int(value)
    return value


def lua_tostring(value: int | float) -> str:
    """What Lua 5.3's ``tostring`` writes for a number: integers in full, floats with
    14 significant digits and ``.0`` when that looks like an integer."""
    if isinstance(value, int):
        return str(value)
    text = f"{value:.14g}"
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEXADECIMAL = re.compile(r"[+-]?0[xX][0-9a-fA-F]+")
_HEXADECIMAL_FLOAT = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
)
_LUA_SPACES = " \t\n\v\f\r"


def lua_number(text: str) -> int | float | None:
    """The number Lua's string coercion reads in ``text`` (``None`` if none): decimal
    or hexadecimal (hexadecimal floats too), surrounding spaces allowed, no
    ``inf``/``nan``; integral values as ``int``."""
    core = text.strip(_LUA_SPACES)
    if _HEXADECIMAL.fullmatch(core):
        sign = -1 if core.startswith("-") else 1
        return sign * int(core.lstrip("+-")[2:], 16)
    if _HEXADECIMAL_FLOAT.fullmatch(core):  # "0x1p4", "0x.8": floats, as Lua reads them
        number = float.fromhex(core)
        return int(number) if math.isfinite(number) and number.is_integer() else number
    if not _DECIMAL.fullmatch(core):
        return None
    number = float(core)
    if math.isfinite(number) and number.is_integer():
        return int(number)
    return number


def dump_json(value: Any) -> str:
    """JSON as Orthanc's writer (jsoncpp) spells it: members sorted, no spaces;
    a ``float`` with 17 significant digits, and ``.0`` when that looks like an
    integer (``2147483648.0``, but ``1e+17``); infinities as ``1e+9999``."""
    if isinstance(value, dict):
        items = (json.dumps(str(k)) + ":" + dump_json(v) for k, v in sorted(value.items()))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return json.dumps(value)  # non-ASCII as \u escapes, as Orthanc's writer
    if isinstance(value, float):
        if math.isnan(value):
            return "null"
        if math.isinf(value):
            return "1e+9999" if value > 0 else "-1e+9999"
        text = f"{value:.17g}"
        if text.lstrip("-").isdigit():
            text += ".0"
        return text
    return json.dumps(value, ensure_ascii=False)
