"""Modality Worklist C-FIND SCP: the face of ``core.worklists``.

Offered only when ``Worklists.Enable`` is true (Orthanc serves worklists through its
plugin, so without it the SOP class is simply not negotiated). Whether a caller may
ask is decided by the listener (``DicomAlwaysAllowFindWorklist`` or the modality's
``AllowFindWorklist``), like the other services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from ..core.worklists import WorklistQueryError, WorklistSettings, find_worklists
from .find_scp import stream_answers

log = logging.getLogger("dicomhub.worklists")

WORKLIST_FIND = str(ModalityWorklistInformationFind)
STATUS_UNABLE_TO_PROCESS = 0xC000


class WorklistService:
    """Answers worklist C-FIND requests from the configured folder."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.settings = WorklistSettings.from_config(config)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def handle(
        self,
        identifier: Dataset,
        calling_aet: str,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """pynetdicom's C-FIND handler protocol: (pending, answer)..., then final."""
        try:
            answers, complete = find_worklists(self.settings, identifier, calling_aet)
        except (WorklistQueryError, ValueError, KeyError) as exc:
            log.warning("Worklist C-FIND refused: %s", exc)
            yield STATUS_UNABLE_TO_PROCESS, None
            return
        yield from stream_answers(answers, complete, is_cancelled, "worklists")


__all__ = ["WORKLIST_FIND", "WorklistService"]
