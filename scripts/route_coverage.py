"""Which routes of the Orthanc REST API dicomhub serves, as a Markdown table.

Reads the route list of the reference (a TSV with ``path``, ``method`` and the
Orthanc versions that have each route) and asks dicomhub's own router whether a
request on each route would reach a handler. The compatibility page is generated
from this, so it cannot claim a route that does not exist.

    python scripts/route_coverage.py ../shared/reference/orthanc-rest-routes.tsv
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict

from starlette.routing import Match

from dicomhub.rest.app import create_app_routes

SAMPLE_ID = "0a1b2c3d-00000000-00000000-00000000-00000000"


def concrete(path: str) -> str:
    parts = []
    after = ""
    for segment in path.strip("/").split("/"):
        if segment == "{id}":
            if after == "metadata":
                segment = "ReceptionDate"
            elif after == "attachments":
                segment = "dicom"
            elif after == "labels":
                segment = "label"
            elif after == "content":
                segment = "0010-0010"
            elif after == "frames":
                segment = "0"
            else:
                segment = SAMPLE_ID
        parts.append(segment)
        after = segment
    return "/" + "/".join(parts)


def served(routes: list, path: str, method: str) -> bool:  # type: ignore[type-arg]
    scope = {"type": "http", "path": concrete(path), "method": method}
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return True
    return False


def family(path: str) -> str:
    segments = path.strip("/").split("/")
    if segments[0] in ("patients", "studies", "series", "instances") and len(segments) > 2:
        return "/{level}/{id}/" + segments[2]
    return "/" + "/".join(segments[:2])


def main(tsv_path: str) -> int:
    routes = create_app_routes()
    with open(tsv_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by_family: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    total = done = 0
    for row in rows:
        if row["in_1.12.11_openapi"] != "yes":
            continue
        ok = served(routes, row["path"], row["method"])
        by_family[family(row["path"])].append((row["method"], row["path"], ok))
        total += 1
        done += ok
    print(f"dicomhub serves {done} of the {total} routes of the Orthanc 1.12.11 REST API.\n")
    print("| route family | served | missing |")
    print("| --- | --- | --- |")
    for name in sorted(by_family):
        entries = by_family[name]
        missing = [f"{m} {p}" for m, p, ok in entries if not ok]
        count = sum(ok for _, _, ok in entries)
        shown = "; ".join(missing[:4]) + (" ..." if len(missing) > 4 else "")
        print(f"| `{name}` | {count}/{len(entries)} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(
        main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/orthanc-rest-routes.tsv")
    )
