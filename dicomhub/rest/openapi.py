"""The OpenAPI description of dicomhub's REST API (``dicomhub --openapi=FILE``).

Built from the router itself, so it lists exactly the routes a running server
answers: the routes written once for several levels (``{level:levels}``) are
spelt out per level, as Orthanc's own document does, and each operation is
summarized by the first line of its handler's docstring when it has one.
"""

from __future__ import annotations

import inspect
import itertools
import re
from typing import Any

from starlette.convertors import CONVERTOR_TYPES
from starlette.routing import Route

from .. import ORTHANC_API_VERSION, __version__
from . import convertors  # noqa: F401 - registers {level:...}

_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


def _choices(convertor: str | None) -> list[str] | None:
    """The literal values of a choice convertor (levels), None for a free parameter."""
    if convertor is None or convertor not in CONVERTOR_TYPES:
        return None
    regex = getattr(CONVERTOR_TYPES[convertor], "regex", "")
    return regex.split("|") if re.fullmatch(r"[\w|]+", regex) else None


def concrete_paths(path: str) -> list[tuple[str, list[str]]]:
    """Each spelling of ``path`` with choice parameters replaced, and its free parameters."""
    pieces: list[list[str]] = []
    free: list[str] = []
    position = 0
    for match in _PARAM.finditer(path):
        pieces.append([path[position : match.start()]])
        name, convertor = match.group(1), match.group(2)
        values = _choices(convertor)
        if values is None:
            pieces.append([f"{{{name}}}"])
            free.append(name)
        else:
            pieces.append(values)
        position = match.end()
    pieces.append([path[position:]])
    return [("".join(parts), free) for parts in itertools.product(*pieces)]


def _summary(route: Route, method: str, path: str) -> str:
    doc = inspect.getdoc(route.endpoint) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return first or f"{method} {path}"


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        for path, free in concrete_paths(route.path):
            operations = paths.setdefault(path, {})
            for method in sorted(route.methods or ()):
                if method == "HEAD" or method.lower() in operations:
                    continue  # the first route wins, as in the router
                operations[method.lower()] = {
                    "summary": _summary(route, method, path),
                    "parameters": [
                        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                        for name in free
                    ],
                    "responses": {"200": {"description": "Success"}},
                }
    return {
        "openapi": "3.0.0",
        "info": {
            "title": "dicomhub REST API",
            "version": __version__,
            "description": (
                f"dicomhub {__version__}, compatible with the REST API of Orthanc "
                f"{ORTHANC_API_VERSION}. Generated from the router of the server."
            ),
        },
        "paths": dict(sorted(paths.items())),
    }
