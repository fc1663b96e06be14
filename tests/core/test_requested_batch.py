"""``requested_tags_many`` gives, resource by resource, what ``requested_tags`` gives.

C-FIND reads the return keys of all its answers at once; whatever the level, the
tag (a main tag of the resource or of an ancestor, a computed count or list, a tag
only the files hold, a tag nobody has), the values must be those of the one-resource
reading that ``/tools/find`` and the REST API use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_factory import make_dicom
from pydicom.uid import generate_uid

from dicomhub.core import ingest
from dicomhub.core.archive import Archive
from dicomhub.core.describe import TagStyle
from dicomhub.core.reading import requested_tags
from dicomhub.core.requested_batch import requested_tags_many
from dicomhub.core.settings import Settings
from dicomhub.dicom.levels import Level

TAGS = [
    0x00100010,  # PatientName (patient, also kept on the study)
    0x00100020,  # PatientID
    0x0020000D,  # StudyInstanceUID
    0x00080020,  # StudyDate
    0x00081030,  # StudyDescription
    0x00080060,  # Modality (series)
    0x0020000E,  # SeriesInstanceUID
    0x00080018,  # SOPInstanceUID (instance)
    0x00200013,  # InstanceNumber
    0x00080061,  # ModalitiesInStudy (computed)
    0x00080062,  # SOPClassesInStudy (computed)
    0x00201200,  # NumberOfPatientRelatedStudies
    0x00201202,  # NumberOfPatientRelatedSeries
    0x00201204,  # NumberOfPatientRelatedInstances
    0x00201206,  # NumberOfStudyRelatedSeries
    0x00201208,  # NumberOfStudyRelatedInstances
    0x00201209,  # NumberOfSeriesRelatedInstances
    0x00280010,  # Rows: only in the files
    0x00100021,  # IssuerOfPatientID: nowhere
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    folder: Path = tmp_path_factory.mktemp("requested")
    opened = Archive(
        Settings(
            storage_directory=str(folder / "s"),
            index_directory=str(folder / "i"),
            sync_storage_area=False,
        )
    )
    for p in range(2):
        for s in range(1 + p):
            study = generate_uid()
            for k, modality in enumerate(("MR", "CT", "MR")[: 1 + p + s]):
                series = generate_uid()
                for n in range(1 + k):
                    ingest.store(
                        opened,
                        make_dicom(
                            patient_id=f"REQ{p}",
                            patient_name=f"Müller^Req{p}",
                            study_uid=study,
                            series_uid=series,
                            modality=modality,
                            rows=8 + n,
                            charset="ISO_IR 100",
                        ),
                    )
    yield opened
    opened.close()


@pytest.mark.parametrize("level", list(Level))
def test_same_values_as_one_at_a_time(archive: Archive, level: Level) -> None:
    with archive.read() as session:
        rows = [
            row
            for public_id in session.list_resources(int(level))
            if (row := session.lookup(public_id)) is not None
        ]
        assert rows
        batch = requested_tags_many(archive, session, rows, TAGS)
        for row, values in zip(rows, batch, strict=True):
            one = requested_tags(archive, session, row, TAGS, TagStyle.SHORT)
            assert {f"{t >> 16:04x},{t & 0xFFFF:04x}": v for t, v in values.items()} == one
        # a subset, in another order, and the degenerate cases
        subset = [0x00201208, 0x00100010]
        assert requested_tags_many(archive, session, rows[:1], subset) == [
            {t: v for t, v in batch[0].items() if t in subset}
        ]
        assert requested_tags_many(archive, session, rows, []) == [{} for _ in rows]
    assert requested_tags_many(archive, session, [], TAGS) == []


def test_computed_values(archive: Archive) -> None:
    """The values themselves, for the study with three series (MR, CT, MR)."""
    with archive.read() as session:
        studies = [session.lookup(p) for p in session.list_resources(int(Level.STUDY))]
        rows = [r for r in studies if r is not None]
        values = requested_tags_many(archive, session, rows, TAGS)
        largest = max(values, key=lambda v: int(v[0x00201208]))
        assert largest[0x00080061] == "CT\\MR"
        assert largest[0x00201206] == "3" and largest[0x00201208] == "6"
        assert largest[0x00100010] == "Müller^Req1"
        # not in the study's index rows: read from its first instance's file
        assert largest[0x00280010] == "8" and largest[0x00080060] == "MR"
        assert 0x00100021 not in largest
