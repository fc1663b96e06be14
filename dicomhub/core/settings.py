"""The settings ``core`` runs with, read once from the Orthanc-format configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..dicom.levels import Level
from ..dicom.main_tags import parse_extra_main_tags
from ..dicom.values import canonical_encoding


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _int(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    return int(value)


#: ``HttpWorkers`` 0 (the default) starts two workers per core, but never more than
#: this: each worker is a Python process of its own (about 90 MB).
MAX_AUTOMATIC_HTTP_WORKERS = 8


def _encoding(name: str) -> str:
    """Orthanc's spelling of ``DefaultEncoding`` (it reads the name in any case); an
    unknown name is kept, for the error it gets where it is used."""
    return canonical_encoding(name) or name


def http_workers(value: Any) -> int:
    """How many HTTP worker processes ``HttpWorkers`` asks for.

    Python runs one thread at a time per process, so one process uses one core at a
    time; Orthanc, a C++ server, uses every core by default, and so does dicomhub with
    the default 0: two workers per core this process may run on (at most
    ``MAX_AUTOMATIC_HTTP_WORKERS``). Two, because an upload waits for the disk for
    about a third of its time, and a worker serving two connections loses time
    handing its interpreter lock between them: on the project's 2-core machine, four
    workers ingested small files with four clients 16 % faster than two, with less
    CPU per instance (1.2 against 1.6 ms). A positive number is taken as it is.
    """
    count = _int(value, 0)
    if count > 0:
        return count
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_AUTOMATIC_HTTP_WORKERS, 2 * (cores or 1)))


def _extra_main_tags(value: Any) -> dict[Level, tuple[int, ...]]:
    from ..config import ConfigurationError  # a bad list stops the start-up, exit 255

    try:
        return parse_extra_main_tags(value)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


@dataclass
class Settings:
    storage_directory: str = "OrthancStorage"
    index_directory: str = "OrthancStorage"
    sync_storage_area: bool = True
    overwrite_instances: bool = False
    maximum_storage_size_mb: int = 0
    maximum_patient_count: int = 0
    maximum_storage_mode: str = "Recycle"
    stable_age: int = 60
    default_encoding: str = "Latin1"
    storage_compression: bool = False
    check_revisions: bool = False
    #: ExtraMainDicomTags: tags indexed beyond the defaults, per level.
    extra_main_tags: dict[Level, tuple[int, ...]] = field(default_factory=dict)
    user_metadata: dict[str, int] = field(default_factory=dict)
    user_content_types: dict[str, tuple[int, str]] = field(default_factory=dict)
    name: str = "dicomhub"
    dicom_aet: str = "ORTHANC"
    dicom_port: int = 4242
    http_port: int = 8042
    database_url: str | None = None
    overwrite_by_modify: bool = True
    log_exported_resources: bool = False
    #: IngestTranscoding: the syntax every incoming file is transcoded to (None: kept).
    ingest_transcoding: str | None = None
    ingest_transcoding_of_uncompressed: bool = True
    ingest_transcoding_of_compressed: bool = True
    #: DicomLossyTranscodingQuality: quality of lossy transcoding (1-100).
    lossy_quality: int = 90
    #: MaximumStorageCacheSize (MB): the newest files left in the page cache (all workers).
    storage_cache_mb: int = 128
    #: HttpWorkers: processes sharing the archive (each leaves its share of the cache).
    http_workers: int = 1

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Settings:
        def get(key: str, default: Any = None) -> Any:
            value = cfg.get(key, default)
            return default if value is None else value

        user_content: dict[str, tuple[int, str]] = {}
        for name, spec in (get("UserContentType", {}) or {}).items():
            if isinstance(spec, list):
                user_content[name] = (int(spec[0]), str(spec[1]) if len(spec) > 1 else "")
            else:
                user_content[name] = (int(spec), "")
        storage = str(get("StorageDirectory", "OrthancStorage"))
        return cls(
            storage_directory=storage,
            index_directory=str(get("IndexDirectory", storage)),
            sync_storage_area=_bool(get("SyncStorageArea"), True),
            overwrite_instances=_bool(get("OverwriteInstances"), False),
            maximum_storage_size_mb=_int(get("MaximumStorageSize"), 0),
            maximum_patient_count=_int(get("MaximumPatientCount"), 0),
            maximum_storage_mode=str(get("MaximumStorageMode", "Recycle")),
            stable_age=_int(get("StableAge"), 60),
            default_encoding=_encoding(str(get("DefaultEncoding", "Latin1"))),
            storage_compression=_bool(get("StorageCompression"), False),
            check_revisions=_bool(get("CheckRevisions"), False),
            extra_main_tags=_extra_main_tags(cfg.get("ExtraMainDicomTags")),
            user_metadata={k: int(v) for k, v in (get("UserMetadata", {}) or {}).items()},
            user_content_types=user_content,
            name=str(get("Name", "dicomhub")),
            dicom_aet=str(get("DicomAet", "ORTHANC")),
            dicom_port=_int(get("DicomPort"), 4242),
            http_port=_int(get("HttpPort"), 8042),
            database_url=get("DatabaseUrl") or None,
            log_exported_resources=_bool(get("LogExportedResources"), False),
            ingest_transcoding=str(get("IngestTranscoding", "")).strip() or None,
            ingest_transcoding_of_uncompressed=_bool(get("IngestTranscodingOfUncompressed"), True),
            ingest_transcoding_of_compressed=_bool(get("IngestTranscodingOfCompressed"), True),
            lossy_quality=_int(get("DicomLossyTranscodingQuality"), 90),
            storage_cache_mb=_int(get("MaximumStorageCacheSize"), 128),
            http_workers=http_workers(get("HttpWorkers")),
        )
