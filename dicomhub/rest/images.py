"""Images over HTTP: ``/instances/{id}/preview`` and the other picture routes, raw
frames, numpy arrays and embedded PDFs.

The picture routes answer their failures the way Orthanc 1.10.1 does, with bare
statuses rather than an error body: 404 for a frame or argument they cannot parse
or find, 415 when the pixels cannot be drawn (or a 301 to the "unsupported" picture
when ``returnUnsupportedImage`` is given). Viewers rely on that redirect.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import images
from ..core.errors import BadRequest, InexistentFile, ParameterOutOfRange, UnknownResource
from ..dicom import imaging
from .common import archive_of
from .responses import json_response

FRAME_OPERATIONS = sorted([*images.IMAGE_KINDS, "matlab", "numpy", "raw", "raw.gz"])
_MIMES = (imaging.PNG, imaging.JPEG, imaging.PAM)


class _NoAnswer(Exception):
    """The route answers with a bare status (404 or 415), as Orthanc's image routes."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _accepted_mime(request: Request) -> str:
    """The best image type in ``Accept``; PNG for ``*/*`` or no header at all."""
    header = request.headers.get("accept", "").strip()
    if not header:
        return imaging.PNG
    ranges: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        quality = 1.0
        for field in fields[1:]:
            if field.lower().startswith("q="):
                try:
                    quality = float(field[2:])
                except ValueError:
                    quality = 0.0
        ranges.append((-quality, position, fields[0].lower()))
    for negative_quality, _, media in sorted(ranges):
        if negative_quality >= 0:
            continue
        if media in _MIMES:
            return media
        if media in ("*/*", "image/*"):
            return imaging.PNG
    raise _NoAnswer(404)


def _number(request: Request, name: str, kind: type[int] | type[float]) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError as exc:
        raise _NoAnswer(404) from exc
    if kind is int and value < 0:
        raise _NoAnswer(404)
    return value


def _options(request: Request, kind: str) -> images.RenderOptions:
    mime = _accepted_mime(request)
    quality = _number(request, "quality", int)
    if quality is not None and not 1 <= quality <= 100:
        raise _NoAnswer(415)
    smooth_raw = request.query_params.get("smooth", "").strip().lower()
    if smooth_raw not in ("", "0", "1", "true", "false"):
        raise _NoAnswer(415)
    if kind != "rendered":
        return images.RenderOptions(mime=mime, quality=int(quality or 90))
    width = _number(request, "width", int)
    height = _number(request, "height", int)
    return images.RenderOptions(
        mime=mime,
        quality=int(quality or 90),
        width=int(width) if width else None,
        height=int(height) if height else None,
        smooth=smooth_raw in ("1", "true"),
        window_center=_number(request, "window-center", float),
        window_width=_number(request, "window-width", float),
    )


def _frame_index(request: Request, invalid: Callable[[], Exception]) -> int | None:
    raw = request.path_params.get("frame")
    if raw is None:
        return None
    if not raw.isdigit():
        raise invalid()
    return int(raw)


def _unsupported(request: Request) -> Response:
    if "returnUnsupportedImage" in request.query_params:
        depth = request.url.path.strip("/").count("/")
        location = "../" * depth + "app/images/unsupported.png"
        return Response(status_code=301, headers={"location": location})
    return Response(status_code=415)


def _picture_route(kind: str) -> Callable[[Request], object]:
    async def handler(request: Request) -> Response:
        try:
            frame = _frame_index(request, lambda: _NoAnswer(404)) or 0
            options = _options(request, kind)
            body = await run_in_threadpool(
                images.image,
                archive_of(request),
                request.path_params["id"],
                frame,
                kind,  # type: ignore[arg-type]
                options,
            )
        except _NoAnswer as answer:
            if answer.status == 415:
                return _unsupported(request)
            return Response(status_code=answer.status)
        except (images.FrameNotFound, UnknownResource, InexistentFile):
            return Response(status_code=404)
        except images.Undecodable:
            return _unsupported(request)
        return Response(body, 200, media_type=options.mime)

    return handler


def get_frames(request: Request) -> Response:
    return json_response(images.frames(archive_of(request), request.path_params["id"]))


def get_frame_operations(request: Request) -> Response:
    images.frames(archive_of(request), request.path_params["id"])  # 404 on unknown instance
    return json_response(FRAME_OPERATIONS)


def _raw_frame(request: Request) -> int:
    frame = _frame_index(request, lambda: _NoAnswer(404))
    return frame or 0


def get_raw(request: Request) -> Response:
    try:
        frame = _raw_frame(request)
    except _NoAnswer as answer:
        return Response(status_code=answer.status)
    archive, public_id = archive_of(request), request.path_params["id"]
    body = images.raw_frame(archive, public_id, frame)
    return Response(body, 200, media_type=images.raw_frame_mime(archive, public_id))


def get_raw_gz(request: Request) -> Response:
    try:
        frame = _raw_frame(request)
    except _NoAnswer as answer:
        return Response(status_code=answer.status)
    body = images.raw_frame_gz(archive_of(request), request.path_params["id"], frame)
    return Response(body, 200, media_type="application/gzip")


def _bool_arg(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("", "1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise BadRequest(f"Argument '{name}' must be a Boolean (true, false, 1 or 0)")


def get_instance_numpy(request: Request) -> Response:
    frame = _frame_index(request, lambda: ParameterOutOfRange("Bad frame index"))
    body = images.instance_numpy(
        archive_of(request),
        request.path_params["id"],
        frame,
        rescale=_bool_arg(request, "rescale", True),
        compress=_bool_arg(request, "compress", False),
    )
    return Response(body, 200, media_type="application/octet-stream")


def get_series_numpy(request: Request) -> Response:
    body = images.series_numpy(
        archive_of(request),
        request.path_params["id"],
        rescale=_bool_arg(request, "rescale", True),
        compress=_bool_arg(request, "compress", False),
    )
    return Response(body, 200, media_type="application/octet-stream")


def get_matlab(request: Request) -> Response:
    frame = _frame_index(request, lambda: ParameterOutOfRange("Bad frame index")) or 0
    body = images.matlab(archive_of(request), request.path_params["id"], frame)
    return Response(body, 200, media_type="text/plain")


def get_pdf(request: Request) -> Response:
    try:
        body = images.pdf(archive_of(request), request.path_params["id"])
    except images.BadFileFormat:
        return Response(status_code=404)
    return Response(body, 200, media_type="application/pdf")


def routes() -> list[Route]:
    found: list[Route] = [
        Route("/instances/{id}/frames", get_frames, methods=["GET"]),
        Route("/instances/{id}/frames/{frame}", get_frame_operations, methods=["GET"]),
        Route("/instances/{id}/frames/{frame}/raw", get_raw, methods=["GET"]),
        Route("/instances/{id}/frames/{frame}/raw.gz", get_raw_gz, methods=["GET"]),
        Route("/instances/{id}/frames/{frame}/numpy", get_instance_numpy, methods=["GET"]),
        Route("/instances/{id}/numpy", get_instance_numpy, methods=["GET"]),
        Route("/instances/{id}/matlab", get_matlab, methods=["GET"]),
        Route("/instances/{id}/frames/{frame}/matlab", get_matlab, methods=["GET"]),
        Route("/series/{id}/numpy", get_series_numpy, methods=["GET"]),
        Route("/instances/{id}/pdf", get_pdf, methods=["GET"]),
    ]
    for kind in images.IMAGE_KINDS:
        handler = _picture_route(kind)
        found.append(Route(f"/instances/{{id}}/{kind}", handler, methods=["GET"]))
        found.append(Route(f"/instances/{{id}}/frames/{{frame}}/{kind}", handler, methods=["GET"]))
    return found
