"""Parsing a tag named by the user: ``0010,0010``, ``00100010``, ``0010-0010`` or ``PatientName``."""

from __future__ import annotations

import re

from pydicom.datadict import tag_for_keyword

_HEX = re.compile(r"([0-9a-fA-F]{4})[,\-]?([0-9a-fA-F]{4})")
_HEX_COMMA = re.compile(r"\s*([0-9a-fA-F]{4}),([0-9a-fA-F]{4})\s*")


def parse_tag(text: str) -> int:
    """The tag named by ``text``; ``ValueError`` when no tag has that name.

    Names are taken as written, as Orthanc 1.10.1 takes them: spaces around a keyword,
    an 8-digit or a ``gggg-eeee`` form make it unknown, and so does an empty name
    (which pydicom's dictionary would read as the empty keyword of (300a,0782)). Only
    the ``gggg,eeee`` form may have spaces around it, which Orthanc accepts too.
    """
    m = _HEX.fullmatch(text) or _HEX_COMMA.fullmatch(text)
    if m:
        return int(m.group(1), 16) << 16 | int(m.group(2), 16)
    tag = tag_for_keyword(text) if text else None
    if tag is None:
        raise ValueError(f"unknown DICOM tag: {text}")
    return int(tag)
