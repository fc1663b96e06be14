"""Passing C-FIND identifiers through ``core.hooks``: an incoming one before it is
answered, an outgoing one before it is sent.

Orthanc's ``IncomingFindRequestFilter(query, origin)`` (and the worklist variant) may
rewrite the query a modality sends: the answer is built from the query the filter
returns, so a key it drops is neither matched nor returned. ``origin`` names the
peer: ``RemoteIp``, ``RemoteAet``, ``CalledAet`` and the ``Manufacturer`` of its
``DicomModalities`` entry (``Generic`` for an unknown peer).
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

from ..core.hooks import INCOMING_FIND_REQUEST, OUTGOING_FIND_REQUEST, find_origin, hooks_of
from ..core.modalities import ModalityRegistry
from ..dicom.query_json import dataset_to_query, query_to_dataset
from ..dicom.values import dataset_charsets


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


def filtered_identifier(
    archive: Any,
    modalities: ModalityRegistry,
    event: Any,
    kind: str = INCOMING_FIND_REQUEST,
    default_encoding: str = "Latin1",
) -> Dataset:
    """The identifier of ``event`` as the ``kind`` filters leave it (unchanged and
    not copied when no filter is registered). Raises ``FilterError`` on failure."""
    identifier = event.identifier
    hooks = hooks_of(archive)
    if not hooks.active(kind):
        return identifier
    requestor = event.assoc.requestor
    calling = _text(requestor.ae_title)
    remote_ip = str(requestor.address or "")
    known = list(modalities.matching(calling, remote_ip))
    origin = find_origin(
        remote_ip,
        calling,
        _text(requestor.primitive.called_ae_title),
        known[0].manufacturer if known else "Generic",
    )
    query = dataset_to_query(identifier, dataset_charsets(identifier, default_encoding))
    if kind == INCOMING_FIND_REQUEST:
        answer = hooks.incoming_find(query, origin)
    else:
        answer = hooks.incoming_worklist(query, origin)
    return query_to_dataset(answer, identifier)


def outgoing_identifier(
    archive: Any, query: Dataset, modality_aet: str, default_encoding: str = "Latin1"
) -> Dataset:
    """The identifier a C-FIND SCU sends to ``modality_aet`` once Orthanc's
    ``OutgoingFindRequestFilter(query, modality)`` (and Python's
    ``outgoing_find_request_filter``) fixed it; ``query`` itself when none is defined.
    Raises ``FilterError`` when a filter fails. For query/retrieve, ``query`` holds
    the caller's keys only, as in Orthanc: ``query_scu.find_level`` adds the level,
    the character set and the return keys to the answer afterwards."""
    hooks = hooks_of(archive)
    if not hooks.active(OUTGOING_FIND_REQUEST):
        return query
    table = dataset_to_query(query, dataset_charsets(query, default_encoding))
    return query_to_dataset(hooks.outgoing_find(table, modality_aet), query)


__all__ = ["filtered_identifier", "outgoing_identifier"]
