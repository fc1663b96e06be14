"""Parsing a tag named by the user: ``0010,0010``, ``00100010``, ``0010-0010`` or ``PatientName``.

Orthanc reads every tag name a user gives (``/tools/find`` keys, ``/modalities/.../query``
keys, ``/tools/create-dicom`` tags and AT values, requested tags...) the same way, and
so does ``parse_tag``, checked against Orthanc 1.10.1:

1. exactly ``gggg,eeee`` or ``gggg-eeee`` (9 characters), or ``ggggeeee`` (8), in hex;
2. else two hexadecimal numbers separated by a comma, read as C's ``scanf("%x,%x")``
   reads them (DCMTK's reading of a tag name): blanks before each number, an optional
   sign and ``0x`` prefix, any number of digits, anything after the second number
   ignored; each number keeps its low 16 bits (``10,20``, ``0x0010, 0x0020``,
   ``0010,0020X`` and ``-fff0,0020`` are all PatientID; a blank before the comma is not
   accepted);
3. else a keyword of the dictionary, as written (no blanks around it).

The empty name is unknown (pydicom's dictionary would read it as the empty keyword of
(300a,0782)).
"""

from __future__ import annotations

import re

from pydicom.datadict import tag_for_keyword

_EXACT_9 = re.compile(r"([0-9a-fA-F]{4})[,\-]([0-9a-fA-F]{4})")
_EXACT_8 = re.compile(r"([0-9a-fA-F]{4})([0-9a-fA-F]{4})")
#: One ``%x`` conversion: C's blanks, a sign, a ``0x`` prefix, hex digits.
_SCANF_HEX = r"[ \t\n\v\f\r]*([+-]?)(0[xX])?([0-9a-fA-F]*)"
_SCANF_PAIR = re.compile(_SCANF_HEX + "," + _SCANF_HEX)
_ULONG_MAX = (1 << 64) - 1


def _scanned(sign: str, prefix: str | None, digits: str) -> int | None:
    """A ``%x`` number as a 16-bit tag part: ``None`` when nothing was read, the
    largest value on overflow (as ``strtoul``), a negative one wrapped around."""
    if not digits and not prefix:
        return None
    value = int(digits or "0", 16)
    if value > _ULONG_MAX:
        value = _ULONG_MAX
    elif sign == "-":
        value = -value % (1 << 64)
    return value & 0xFFFF


def _scan_pair(text: str) -> int | None:
    text = text.split("\0", 1)[0]  # where a C string ends
    m = _SCANF_PAIR.match(text)
    if m is None:
        return None
    group = _scanned(m.group(1), m.group(2), m.group(3))
    element = _scanned(m.group(4), m.group(5), m.group(6))
    if group is None or element is None:
        return None
    return group << 16 | element


def parse_tag(text: str) -> int:
    """The tag named by ``text``; ``ValueError`` when no tag has that name."""
    m = (
        _EXACT_9.fullmatch(text)
        if len(text) == 9
        else _EXACT_8.fullmatch(text)
        if len(text) == 8
        else None
    )
    if m:
        return int(m.group(1), 16) << 16 | int(m.group(2), 16)
    scanned = _scan_pair(text)
    if scanned is not None:
        return scanned
    tag = tag_for_keyword(text) if text else None
    if tag is None:
        raise ValueError(f"unknown DICOM tag: {text}")
    return int(tag)
