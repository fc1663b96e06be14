"""Data URIs (RFC 2397): how ``/tools/create-dicom`` receives images, PDF documents
and binary tag values inside a JSON body."""

from __future__ import annotations

import base64
import binascii
import urllib.parse


class BadDataUri(ValueError):
    """The text is not a data URI, or its payload cannot be decoded."""


def is_data_uri(text: str) -> bool:
    return text[:5].lower() == "data:" and "," in text


def parse_data_uri(text: str) -> tuple[str, bytes]:
    """``(mime type, payload)`` of ``data:[<mime>][;...][;base64],<data>``; the MIME
    type defaults to ``text/plain`` as RFC 2397 says, lower-cased."""
    if not is_data_uri(text):
        raise BadDataUri("Not a data URI")
    header, _, payload = text[5:].partition(",")
    parts = [p.strip() for p in header.split(";")]
    mime = (parts[0] or "text/plain").lower()
    if parts[-1].lower() == "base64":
        try:
            return mime, base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadDataUri(f"Bad base64 payload: {exc}") from exc
    return mime, urllib.parse.unquote_to_bytes(payload)


def make_data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
