"""The Lua API's values as Orthanc 1.10.1 writes them (``print``, ``DumpJson``) and
its argument checks, on a Lua engine without a server (the expected texts are what
Orthanc 1.10.1 answered to the same ``execute-script``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dicomhub.scripting.lua import LuaEngine
from dicomhub.scripting.lua_values import dump_json, from_lua, json_number, lua_tostring


@pytest.fixture
def engine() -> Iterator[LuaEngine]:
    engine = LuaEngine(None, {"Name": "LUAFIX"}, time_limit=5)
    try:
        yield engine
    finally:
        engine.close()


def test_print_separates_only_after_some_text(engine: LuaEngine) -> None:
    code = "print('', 'x') print('a', '') print('', '') print('', nil, '') print()"
    assert engine.execute(code) == "x\na, \n\nnil, \n\n"
    assert engine.execute("print(1, 'a', nil, true, 2.5)") == "1, a, nil, true, 2.5\n"


def test_dump_json_numbers_as_orthanc(engine: LuaEngine) -> None:
    code = """
    print(DumpJson({2147483648, 2^53, 1e17, math.maxinteger, 1e300, 2147483647,
                    -2147483648, -2147483649, 2.5, 1/3}))
    print(DumpJson({100.0, 2^53, 1/3, 2^31, 5, 0.1+0.2, -0.0, 1e100}, true))
    print(DumpJson({'0x1p4', '0x10', '1e300', '  12 ', 'abc', '2147483648', '-7'}))
    print(DumpJson({[1.5]='a', b=1, [0.1+0.2]='c'}))
    print(DumpJson({x=-0.0, y=1e-7, z=123456789012}))
    """
    assert engine.execute(code).splitlines() == [
        "[2147483648.0,9007199254740992.0,1e+17,9.2233720368547758e+18,"
        "1.0000000000000001e+300,2147483647,-2147483648,-2147483649.0,2.5,"
        "0.33333333333333331]",
        '["100.0","9.007199254741e+15","0.33333333333333","2147483648.0","5","0.3",'
        '"-0.0","1e+100"]',
        '[16,16,1.0000000000000001e+300,12,"abc",2147483648.0,-7]',
        '{"0.3":"c","1.5":"a","b":1}',
        '{"x":0,"y":9.9999999999999995e-08,"z":123456789012.0}',
    ]


def test_number_helpers() -> None:
    assert json_number(7) == 7 and isinstance(json_number(7.0), int)
    assert isinstance(json_number(2**31), float) and isinstance(json_number(-(2**31)), int)
    assert lua_tostring(3) == "3" and lua_tostring(3.0) == "3.0" and lua_tostring(1e15) == "1e+15"
    assert dump_json(1e300) == "1.0000000000000001e+300" and dump_json(2.0**40) == "1099511627776.0"
    assert from_lua(b"0x.8") == 0.5 and from_lua(b"inf") == "inf"


def test_api_argument_checks(engine: LuaEngine) -> None:
    received: list[bytes] = []

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            received.append(self.rfile.read(int(self.headers["Content-Length"] or 0)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_PUT = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/x"
    try:
        code = f"""
        print(GetOrthancConfiguration('x').Name)
        print(HttpPost('{url}', {{a = 1}}), HttpPut('{url}', true))
        print(HttpPost('{url}', 'text'), HttpPut('{url}', 2.5))
        """
        # As Orthanc: a table (or Boolean) body is not sent, and the answer is nil.
        assert engine.execute(code) == "LUAFIX\nnil, nil\nok, ok\n"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert received == [b"text", b"2.5"]
