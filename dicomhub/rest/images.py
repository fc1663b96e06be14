"""Images over HTTP: ``/instances/{id}/preview`` and the other picture routes, raw
frames, numpy arrays and embedded PDFs.

The picture routes answer their failures the way Orthanc 1.10.1 does, with bare
statuses rather than an error body: 404 for a frame or argument they cannot parse
or find, 415 when the pixels cannot be drawn (or a 301 to the "unsupported" picture
when ``returnUnsupportedImage`` is given). Viewers rely on that redirect.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import images
from ..core.errors import InexistentFile, ParameterOutOfRange, UnknownResource
from ..dicom import imaging
from .common import archive_of
from .responses import json_response, text_response

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


# Numbers in the arguments and the path, as Orthanc 1.10.1 reads them. dicomhub
# decodes query strings as standard URLs (docs/compatibility.md), so the ``+`` of
# ``width=+5`` or ``window-center=5e+3``, which Orthanc reads as a sign, arrives as a
# space: a space in a number is read back as that ``+``.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_REAL = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.IGNORECASE,
)
_INT32_MAX = 2**31 - 1
_UINT32 = 2**32


def _integer(text: str) -> int | None:
    """A decimal integer (optional sign, ASCII digits only), or None."""
    text = text.replace(" ", "+")
    return int(text) if _INTEGER.fullmatch(text) else None


def _size(request: Request, name: str) -> int | None:
    """``width`` / ``height`` of ``/rendered``: 404 unless a non-negative 32-bit integer."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = _integer(raw)
    if value is None or not 0 <= value <= _INT32_MAX:
        raise _NoAnswer(404)
    return value


def _real(request: Request, name: str) -> float | None:
    """``window-center`` / ``window-width``: 404 unless a number a double can hold."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    text = raw.replace(" ", "+")
    if not _REAL.fullmatch(text):
        raise _NoAnswer(404)
    value = float(text)
    if math.isinf(value) and "inf" not in text.lower():  # 1e400 overflows
        raise _NoAnswer(404)
    return value


def _quality(request: Request) -> int:
    """``quality``: anything but an integer from 1 to 100 is an unsupported picture."""
    raw = request.query_params.get("quality")
    if raw is None:
        return 90
    value = _integer(raw)
    if value is None or not 1 <= value <= 100:
        raise _NoAnswer(415)
    return value


def _options(request: Request, kind: str) -> images.RenderOptions:
    """The picture's options, checked in the order Orthanc checks them: the size and
    window of ``/rendered`` (404), its ``smooth`` (415), ``quality`` (415), then the
    ``Accept`` header (404). The other kinds ignore the arguments of ``/rendered``."""
    if kind != "rendered":
        quality = _quality(request)
        return images.RenderOptions(mime=_accepted_mime(request), quality=quality)
    width, height = _size(request, "width"), _size(request, "height")
    window_center = _real(request, "window-center")
    window_width = _real(request, "window-width")
    smooth = request.query_params.get("smooth")
    if smooth not in (None, "0", "1", "true", "false"):
        raise _NoAnswer(415)
    quality = _quality(request)
    return images.RenderOptions(
        mime=_accepted_mime(request),
        quality=quality,
        width=width or None,
        height=height or None,
        smooth=smooth in ("1", "true"),
        window_center=window_center,
        window_width=window_width,
    )


def _frame_index(request: Request) -> int | None:
    """The ``{frame}`` of the picture, ``raw`` and ``matlab`` routes; bare 404 when it
    is not a number. As Orthanc reads an unsigned 32-bit integer, a negative index
    wraps around (``-1`` is frame 4294967295, which does not exist)."""
    raw = request.path_params.get("frame")
    if raw is None:
        return None
    value = int(raw) if _INTEGER.fullmatch(raw) else None
    if value is None or not -_UINT32 < value < _UINT32:
        raise _NoAnswer(404)
    return value % _UINT32


def _numpy_frame_index(request: Request) -> int | None:
    """The ``{frame}`` of ``/frames/{n}/numpy``, read as Orthanc does: blanks around
    it and a leading ``+`` are allowed, a ``-`` is not; 400 otherwise."""
    raw = request.path_params.get("frame")
    if raw is None:
        return None
    text = raw.strip()
    if not re.fullmatch(r"\+?[0-9]+", text) or int(text) >= _UINT32:
        raise ParameterOutOfRange(f"Bad frame index: {raw}")
    return int(text)


def _unsupported(request: Request) -> Response:
    if "returnUnsupportedImage" in request.query_params:
        depth = request.url.path.strip("/").count("/")
        location = "../" * depth + "app/images/unsupported.png"
        return Response(status_code=301, headers={"location": location})
    return Response(status_code=415)


def _picture_route(kind: str) -> Callable[[Request], object]:
    async def handler(request: Request) -> Response:
        archive, public_id = archive_of(request), request.path_params["id"]
        try:
            frame = _frame_index(request) or 0
            try:
                options = _options(request, kind)
            except _NoAnswer:
                # the frame's own failure (unknown, undecodable) comes first
                await run_in_threadpool(images.check_frame, archive, public_id, frame)
                raise
            body = await run_in_threadpool(
                images.image,
                archive,
                public_id,
                frame,
                kind,  # type: ignore[arg-type]
                options,
            )
        except _NoAnswer as answer:
            if answer.status == 415:
                return _unsupported(request)
            return Response(status_code=answer.status)
        except (images.FrameNotFound, images.NotAcceptable, UnknownResource, InexistentFile):
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
    return _frame_index(request) or 0


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
    """``rescale`` / ``compress``: as Orthanc, ``true``, ``1`` or nothing, ``false``
    or ``0`` (lowercase only); anything else is 400 Parameter out of range."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw in ("", "1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise ParameterOutOfRange(f'Expected a Boolean for GET argument "{name}", found: {raw}')


def get_instance_numpy(request: Request) -> Response:
    frame = _numpy_frame_index(request)
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
    try:
        frame = _frame_index(request) or 0
    except _NoAnswer as answer:  # as Orthanc: a bare 404, as the picture routes
        return Response(status_code=answer.status)
    body = images.matlab(archive_of(request), request.path_params["id"], frame)
    return text_response(body)


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
