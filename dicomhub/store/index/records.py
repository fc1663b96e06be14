"""Plain records the index hands to ``core``: no SQL types leak out of ``store``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResourceRow:
    id: int
    public_id: str
    level: int
    parent_id: int | None
    protected: bool = False
    stable: bool = True


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    content_type: int
    uuid: str
    compressed_size: int
    uncompressed_size: int
    compression: int
    uncompressed_md5: str
    compressed_md5: str
    revision: int = 0


@dataclass(frozen=True, slots=True)
class ChangeRow:
    seq: int
    change_type: int
    level: int
    public_id: str
    date: str


@dataclass(frozen=True, slots=True)
class ExportRow:
    seq: int
    level: int
    public_id: str
    remote_modality: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    date: str
