"""``store_parsed(publish=False)``: the instance is committed and readable before its
file leaves the staging folder, so a C-STORE is answered before that move
(``ingest.finish`` makes it afterwards)."""

from __future__ import annotations

import os
from collections.abc import Callable

from dicom_factory import make_dicom

from dicomhub.core import ingest
from dicomhub.core.archive import Archive
from dicomhub.core.reading import instance_file
from dicomhub.store.storage.filesystem import FilesystemStorage


def test_a_committed_instance_is_read_from_the_staging_folder_until_finished(
    make_archive: Callable[..., Archive],
) -> None:
    archive = make_archive()
    storage = archive.storage
    assert isinstance(storage, FilesystemStorage)
    data = make_dicom(patient_id="LATER")
    origin = ingest.Origin(origin="DicomProtocol")
    result = ingest.store_parsed(archive, ingest.parse(archive, data), data, origin, False)
    assert result.status == ingest.STATUS_SUCCESS
    uuid = result.unpublished
    assert uuid is not None
    assert os.listdir(storage.incoming) == [uuid]
    assert instance_file(archive, result.instance_id) == data
    ingest.finish(archive, result)
    assert os.listdir(storage.incoming) == []
    assert os.path.exists(storage.path(uuid))
    assert instance_file(archive, result.instance_id) == data
    ingest.finish(archive, result)  # nothing left to do


def test_nothing_is_left_to_finish_for_an_instance_already_stored(
    make_archive: Callable[..., Archive],
) -> None:
    archive = make_archive()
    data = make_dicom(patient_id="TWICE")
    origin = ingest.Origin(origin="DicomProtocol")
    first = ingest.store_parsed(archive, ingest.parse(archive, data), data, origin, False)
    ingest.finish(archive, first)
    again = ingest.store_parsed(archive, ingest.parse(archive, data), data, origin, False)
    assert again.status == ingest.STATUS_ALREADY_STORED
    assert again.unpublished is None
    assert os.listdir(archive.storage.incoming) == []  # type: ignore[attr-defined]
