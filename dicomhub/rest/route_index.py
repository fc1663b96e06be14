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
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Router, get_route_path
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


class RouteIndex:
    """The ASGI entry of ``router``: picks the sub-router of the request's first segment.

    Install with ``router.middleware_stack = RouteIndex(router)``. Routes must not
    be added to ``router`` afterwards (the index is built once).
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        routes = list(router.routes)
        segments = [_route_segment(route) for route in routes]
        anywhere = [r for r, s in zip(routes, segments, strict=True) if s is None]

        def sub_router(candidates: list[BaseRoute]) -> Router:
            return Router(
                candidates, redirect_slashes=router.redirect_slashes, default=router.default
            )

        self._by_segment: dict[str, Router] = {
            segment: sub_router(
                [r for r, s in zip(routes, segments, strict=True) if s is None or s == segment]
            )
            for segment in {s for s in segments if s is not None}
        }
        self._other = sub_router(anywhere)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.router.app(scope, receive, send)
            return
        # url_path_for and friends must see every route, not the sub-router's.
        scope.setdefault("router", self.router)
        path = get_route_path(scope)
        segment = path[1:].split("/", 1)[0] if path.startswith("/") else ""
        await self._by_segment.get(segment, self._other).app(scope, receive, send)
