"""``/series/{id}/ordered-slices``: volumes sorted along the normal, sequences by index.

The same series is uploaded to dicomhub and, when it answers, to the reference
Orthanc: instance identifiers are derived from the UIDs, so both answers must be
equal, including the failure when a series can be ordered neither way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from archive_checks import OracleUploads, assert_orthanc_error, oracle_uploads, upload
from dicom_factory import make_dataset, to_bytes
from pydicom.uid import generate_uid

from dicomhub.core.slices import Slice, order_slices


@pytest.fixture
def oracle() -> Iterator[OracleUploads | None]:
    yield from oracle_uploads()


def _series(
    positions: list[list[float] | None],
    numbers: list[int | None],
    frames: list[int] | None = None,
    orientation: list[float] | None = None,
) -> list[bytes]:
    study, series = generate_uid(), generate_uid()
    files = []
    for i, (position, number) in enumerate(zip(positions, numbers, strict=True)):
        ds = make_dataset(patient_id="SLICES", study_uid=study, series_uid=series)
        for keyword in ("InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient"):
            if keyword in ds:
                delattr(ds, keyword)
        if position is not None:
            ds.ImagePositionPatient = position
            ds.ImageOrientationPatient = orientation or [1, 0, 0, 0, 1, 0]
        if number is not None:
            ds.InstanceNumber = number
        count = (frames or [1] * len(positions))[i]
        if count > 1:
            ds.NumberOfFrames = count
            ds.PixelData = ds.PixelData * count
        files.append(to_bytes(ds))
    return files


def _ordered(client: httpx.Client, files: list[bytes], store: Any = None) -> httpx.Response:
    series = None
    for data in files:
        answer = store(data) if store else upload(client, data)
        series = answer["ParentSeries"]
    return client.get(f"/series/{series}/ordered-slices")


CASES = {
    "volume": (_series([[0, 0, 5.0], [0, 0, 0.0], [0, 0, 2.5]], [1, 2, 3], [2, 1, 1]),),
    "oblique volume": (
        _series(
            [[1.0, 2.0, 3.0], [1.0, 2.0, -3.0], [1.0, 2.0, 0.0]],
            [3, 1, 2],
            orientation=[1, 0, 0, 0, 0.8, 0.6],
        ),
    ),
    "same depth is a sequence": (_series([[0, 0, 1.0], [0, 0, 1.0]], [2, 1]),),
    "no position is a sequence": (_series([None, None, None], [3, 1, 2]),),
    "unorderable": (_series([None, None], [None, None]),),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_answer_as_orthanc(
    client: httpx.Client, oracle: OracleUploads | None, case: str
) -> None:
    (files,) = CASES[case]
    ours = _ordered(client, files)
    if case == "unorderable":
        body = assert_orthanc_error(ours, 500, "Unable to order the slices of the series", 2040)
        assert body["Details"].startswith("Unable to order the slices of series ")
    else:
        assert ours.status_code == 200, ours.text
        answer = ours.json()
        assert answer["Type"] == ("Volume" if "volume" in case else "Sequence")
        assert len(answer["Dicom"]) == len(files)
        assert sum(count for _, _, count in answer["SlicesShort"]) == len(answer["Slices"])
    if oracle is None:
        pytest.skip("no reference Orthanc on " + str(oracle))
    theirs = _ordered(oracle.client, files, oracle.upload)
    assert theirs.status_code == ours.status_code
    if ours.status_code == 200:
        assert theirs.json() == ours.json()


def test_volume_order_follows_the_normal(client: httpx.Client) -> None:
    files = _series([[0, 0, 5.0], [0, 0, 0.0], [0, 0, 2.5]], [1, 2, 3], [2, 1, 1])
    answer = _ordered(client, files).json()
    ids = [instance for instance, _, _ in answer["SlicesShort"]]
    depths = [
        client.get(f"/instances/{i}/tags?simplify").json()["ImagePositionPatient"] for i in ids
    ]
    assert [float(d.split("\\")[2]) for d in depths] == [0.0, 2.5, 5.0]
    assert answer["Slices"][-2:] == [
        f"/instances/{ids[2]}/frames/0",
        f"/instances/{ids[2]}/frames/1",
    ]


def test_single_instance_and_unknown_series(client: httpx.Client) -> None:
    answer = _ordered(client, _series([None], [None])).json()
    assert answer["Type"] == "Sequence" and len(answer["Dicom"]) == 1
    missing = client.get("/series/00000000-00000000-00000000-00000000-00000000/ordered-slices")
    assert_orthanc_error(missing, 404, "Unknown resource", 17)
    assert client.get(f"/instances/{answer['SlicesShort'][0][0]}/ordered-slices").status_code == 404


def test_a_slice_with_another_orientation_breaks_the_volume() -> None:
    def item(name: str, z: float, normal: tuple[float, float, float], index: int) -> Slice:
        return Slice(name, 1, (0.0, 0.0, z), normal, index)

    slices = [item("a", 2, (0, 0, 1), 2), item("b", 1, (0, 1, 0), 1)]
    ordered, volume = order_slices(slices, (0.0, 0.0, 1.0))
    assert not volume and [s.instance_id for s in ordered] == ["b", "a"]
    ordered, volume = order_slices(slices[:1] + [item("b", 1, (0, 0, -1), 1)], (0, 0, 1))
    assert volume and [s.instance_id for s in ordered] == ["b", "a"]
