"""Routing by first path segment picks exactly the route Starlette's full scan picks."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from starlette.routing import Route, Router

from dicomhub.rest.app import create_app_routes
from dicomhub.rest.route_index import RouteIndex, first_segment

METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")


def _sample_paths(routes: list[Route]) -> list[str]:
    """For each route, its path with every parameter filled, plus variants that
    reach partial matches, trailing-slash redirects and misses."""
    values = {"level": "studies", "id": "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd"}
    paths: set[str] = {"/", "/nothing-here", "/nothing/here/", "/instances", "/instances/"}
    for route in routes:
        filled = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x1"), route.path)
        paths.update({filled, filled + "/", filled.rstrip("/") or "/", filled + "/extra"})
    return sorted(paths)


async def _answer(app: Any, method: str, path: str) -> tuple[int, str, str]:
    """Status, Location and the name of the endpoint that answered, through ``app``."""
    answered: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answered["status"] = message["status"]
            answered["location"] = dict(message["headers"]).get(b"location", b"").decode()

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 8042),
    }
    try:
        await app(scope, receive, send)
    except Exception as exc:  # the router's 404 is an HTTPException outside a Starlette app
        return getattr(exc, "status_code", -1), "", type(exc).__name__
    route = scope.get("route")
    return answered.get("status", -1), answered.get("location", ""), getattr(route, "name", "")


def _echo_routes() -> list[Route]:
    """The server's routes with endpoints that only say which route answered."""

    async def endpoint(request: Any) -> Any:
        from starlette.responses import Response

        return Response(b"", 200)

    return [
        Route(r.path, endpoint, methods=sorted(r.methods or ()), name=f"{i}:{r.path}")
        for i, r in enumerate(create_app_routes())
    ]


def test_every_request_reaches_the_route_the_full_scan_reaches() -> None:
    routes = _echo_routes()
    scanning = Router(routes)
    indexed = Router(routes)
    indexed.middleware_stack = RouteIndex(indexed)
    paths = _sample_paths(routes)
    assert len(paths) > 500

    async def compare() -> list[tuple[str, str, Any, Any]]:
        differences = []
        for path in paths:
            for method in METHODS:
                expected = await _answer(scanning, method, path)
                got = await _answer(indexed, method, path)
                if got != expected:
                    differences.append((method, path, expected, got))
        return differences

    assert asyncio.run(compare()) == []


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("/instances/{id}/file", "instances"),
        ("/tools/find", "tools"),
        ("/system", "system"),
        ("/", ""),
        ("/{level:levels}/{id}", None),
        ("relative", None),
    ],
)
def test_first_segment(path: str, segment: str | None) -> None:
    assert first_segment(path) == segment
