"""``/instances/{id}/tags`` reads a stored file only up to its pixel data (the
rendering stops there): for every file pydicom ships that the server stores, the
answer must be the one a reading of the whole file gives (``?whole``, cut at the
pixel data). The other forms (simplified, short) render the same data set."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from pydicom.data import get_testdata_file

PIXEL_DATA_KEY = "7fe0,0010"


def _shipped_paths() -> list[Path]:
    folder = os.path.dirname(get_testdata_file("CT_small.dcm", download=False))
    return sorted(Path(root, name) for root, _, names in os.walk(folder) for name in names)


def _until_pixel_data(tags: dict) -> dict:
    return {key: value for key, value in tags.items() if key <= PIXEL_DATA_KEY}


def test_tags_match_a_whole_reading_for_every_shipped_file(client: httpx.Client) -> None:
    stored: list[str] = []
    for path in _shipped_paths():
        response = client.post("/instances", content=path.read_bytes())
        if response.status_code == 200 and response.json().get("Status") == "Success":
            stored.append(response.json()["ID"])
    assert len(stored) > 100
    with_pixels = 0
    for instance in stored:
        whole = client.get(f"/instances/{instance}/tags", params={"whole": ""})
        tags = client.get(f"/instances/{instance}/tags")
        assert tags.status_code == whole.status_code == 200, instance
        assert tags.json() == _until_pixel_data(whole.json()), instance
        with_pixels += PIXEL_DATA_KEY in tags.json()
    assert with_pixels > 50
