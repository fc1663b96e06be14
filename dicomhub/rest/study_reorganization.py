"""``POST /studies/{id}/split`` and ``POST /studies/{id}/merge``.

Both submit a job (``SplitStudy``, ``MergeStudy``) and, like Orthanc, wait for it
unless the body asks for ``"Asynchronous": true`` or ``"Synchronous": false``: the
synchronous answer is the job's content (``TargetStudy`` and the counts), the
asynchronous one the job's ``ID`` and ``Path``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core import modification_job, study_reorganization
from ..core.archive import Archive
from ..core.ingest import Origin
from ..core.jobs import types as job_types
from .common import archive_of
from .instances import _origin
from .jobs import job_created
from .modification import _body
from .responses import json_response

for _kind in (study_reorganization.SPLIT_STUDY, study_reorganization.MERGE_STUDY):
    job_types.register_kind(_kind, study_reorganization.run_reorganization)

Submit = Callable[[Archive, str, Any, Origin], tuple[str, bool]]


def _endpoint(submit: Submit):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        archive = archive_of(request)
        body = await _body(request)
        job_id, asynchronous = await run_in_threadpool(
            submit, archive, request.path_params["id"], body, _origin(request)
        )
        if asynchronous:
            return job_created(job_id)
        content = await run_in_threadpool(modification_job.wait, archive, job_id)
        return json_response(content)

    return endpoint


def routes() -> list[Route]:
    return [
        Route(
            "/studies/{id}/split", _endpoint(study_reorganization.submit_split), methods=["POST"]
        ),
        Route(
            "/studies/{id}/merge", _endpoint(study_reorganization.submit_merge), methods=["POST"]
        ),
    ]
