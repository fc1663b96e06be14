"""Jobs: long operations users watch, pause, cancel and resubmit (``/jobs``).

``engine`` keeps the job rows in the index and runs them; ``types`` holds the job
kinds. ``start_runner`` is what the primary worker calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..archive import Archive
from .engine import JobRunner


def start_runner(archive: Archive, config: Mapping[str, Any], no_jobs: bool = False) -> JobRunner:
    """Resume saved jobs (unless ``no_jobs``) and start the ``ConcurrentJobs`` slots."""
    from .types import KINDS

    runner = JobRunner(archive, config, KINDS, no_jobs=no_jobs)
    runner.start()
    return runner
