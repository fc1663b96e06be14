"""Routing by first path segment: the same answers as Starlette's router, sooner.

Starlette tries the routes one by one, in order, until one matches. With more than
250 routes that scan cost more than the work of most requests (a request for
``/{level}/{id}``, the last routes, tried every regular expression before them).
A route whose path starts with a fixed segment (``/instances/...``) can only match
a request whose path starts with that segment, so each first segment gets its own
router over the routes that could match it: those with that segment and those
starting with a parameter (``/{level}/...``), in their original order. The first
full match, the partial match that makes a 405, the trailing-slash redirect and
the 404 are thus exactly those of the router over all routes.

The number of segments narrows it further: a route's parameters match within one
segment (but ``{name:path}``), so ``/{level}/{id}`` can only match a path of two
segments. A trailing slash is not counted, so that the route a redirect would name
(the path with or without its slash) is among the candidates too.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Match, Route, Router, get_route_path
from starlette.types import Receive, Scope, Send


def first_segment(path: str) -> str | None:
    """The fixed first segment of a route path; ``None`` if it has a parameter."""
    if not path.startswith("/"):
        return None
    segment = path[1:].split("/", 1)[0]
    return None if "{" in segment else segment


def _route_segment(route: BaseRoute) -> str | None:
    path = getattr(route, "path", None)
    return first_segment(path) if isinstance(path, str) else None


def segment_count(path: str) -> int:
    """How many segments ``path`` has, a trailing slash not counted."""
    return path.rstrip("/").count("/")


def _route_count(route: BaseRoute) -> int | None:
    """The segment count of the paths ``route`` can match; ``None`` if any."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not isinstance(route, Route) or ":path}" in path:
        return None
    return segment_count(path)


class RouteIndex:
    """The ASGI entry of ``router``: picks the sub-router of the request's first
    segment and segment count.

    Install with ``router.middleware_stack = RouteIndex(router)``. Routes must not
    be added to ``router`` afterwards (the index is built once).
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self._routes = list(router.routes)
        self._shapes = [(_route_segment(r), _route_count(r)) for r in self._routes]
        self._segments = {segment for segment, _ in self._shapes if segment is not None}
        counts = [count for _, count in self._shapes if count is not None]
        #: Paths longer than every fixed-count route share one sub-router.
        self._longest = max(counts, default=0) + 1
        self._routers: dict[tuple[str | None, int], Router] = {}

    def _sub_router(self, segment: str | None, count: int) -> Router:
        """The routes that could match a path of ``segment`` and ``count``, in order
        (built on first use: most shapes are never asked for)."""
        candidates = [
            route
            for route, (s, c) in zip(self._routes, self._shapes, strict=True)
            if (s is None or s == segment) and (c is None or c == count)
        ]
        router = self._routers[segment, count] = Router(
            candidates, redirect_slashes=self.router.redirect_slashes, default=self.router.default
        )
        return router

    def _router_of(self, scope: Scope) -> Router:
        path = get_route_path(scope)
        segment: str | None = path[1:].split("/", 1)[0] if path.startswith("/") else ""
        if segment not in self._segments:
            segment = None
        count = min(segment_count(path), self._longest)
        return self._routers.get((segment, count)) or self._sub_router(segment, count)

    def full_match(self, scope: Scope) -> tuple[Route, Scope] | None:
        """The route the router would hand this request to, and what it would add to
        the scope; None when no route matches it fully (a 405 or a 404)."""
        for route in self._router_of(scope).routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return route, child_scope  # type: ignore[return-value]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.router.app(scope, receive, send)
            return
        # url_path_for and friends must see every route, not the sub-router's.
        scope.setdefault("router", self.router)
        await self._router_of(scope).app(scope, receive, send)
