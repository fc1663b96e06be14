"""Parsing a tag named by the user: ``0010,0010``, ``00100010``, ``0010-0010`` or ``PatientName``."""

from __future__ import annotations

import re

from pydicom.datadict import tag_for_keyword

_HEX = re.compile(r"^([0-9a-fA-F]{4})[,\-]?([0-9a-fA-F]{4})$")


def parse_tag(text: str) -> int:
    text = text.strip()
    m = _HEX.match(text)
    if m:
        return int(m.group(1), 16) << 16 | int(m.group(2), 16)
    tag = tag_for_keyword(text)
    if tag is None:
        raise ValueError(f"unknown DICOM tag: {text}")
    return int(tag)
