"""What Orthanc refuses to start with, refused before any port opens.

Orthanc stops at start-up (exit status 255) on a configuration it cannot honour: an
unknown default encoding, a user metadata number out of range, an application entity
title too long, a modality or peer it cannot read, a Lua script that is not there.
A server that started anyway would look healthy to its service manager while part of
it is missing (no DICOM listener, no routing script), so these are checked here, once,
with the message Orthanc gives. Options whose feature dicomhub does not have (HTTPS,
DICOM TLS, a server without HTTP, read-only mode) are refused too, rather than
silently ignored: serving plain HTTP to a site that asked for HTTPS would send its
passwords in clear.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..config import ConfigurationError
from ..dicom.values import canonical_encoding
from .errors import DicomhubError
from .modalities import parse_modality
from .peers import parse_peer

#: The numbers a user metadata or a user content type may take (Orthanc's range).
USER_RANGE = range(1024, 65536)

#: Options dicomhub has no feature for, with the value that asks for that feature.
UNSUPPORTED: dict[str, tuple[Any, str]] = {
    "SslEnabled": (True, "HTTPS is not served: put a TLS proxy in front of the server"),
    "DicomTlsEnabled": (True, "DICOM TLS is not served: use a TLS tunnel or proxy"),
    "HttpServerEnabled": (False, "the HTTP server cannot be disabled"),
    "ReadOnly": (True, "the read-only mode is not available"),
}


def check_configuration(config: Mapping[str, Any]) -> None:
    """Raise ``ConfigurationError`` for the first thing Orthanc would not start with."""
    for check in _CHECKS:
        check(config)


def _encoding(config: Mapping[str, Any]) -> None:
    name = config.get("DefaultEncoding")
    if name is not None and canonical_encoding(str(name)) is None:
        raise ConfigurationError(f'Unknown encoding in "DefaultEncoding": {name}')


def _user_numbers(config: Mapping[str, Any]) -> None:
    for key, kind in (("UserMetadata", "metadata"), ("UserContentType", "content type")):
        for name, spec in (config.get(key) or {}).items():
            number = spec[0] if isinstance(spec, list) and spec else spec
            if isinstance(number, bool) or not isinstance(number, int) or number not in USER_RANGE:
                raise ConfigurationError(
                    f'A user {kind} must have index between 1024 and 65535 ("{name}" in "{key}")'
                )


def _aet(config: Mapping[str, Any]) -> None:
    aet = str(config.get("DicomAet", "ORTHANC"))
    if not aet.strip() or len(aet) > 16:
        raise ConfigurationError(
            "An application entity title (AET) cannot be empty or be longer than 16 "
            f'characters ("DicomAet": "{aet}")'
        )


def _entries(config: Mapping[str, Any], key: str, parse: Callable[[Any], Any]) -> None:
    for name, value in (config.get(key) or {}).items():
        try:
            parse(value)
        except DicomhubError as exc:
            detail = f": {exc.details}" if exc.details else ""
            raise ConfigurationError(f'Bad file format in "{key}", entry "{name}"{detail}') from exc


def _modalities(config: Mapping[str, Any]) -> None:
    _entries(config, "DicomModalities", parse_modality)


def _peers(config: Mapping[str, Any]) -> None:
    _entries(config, "OrthancPeers", parse_peer)


def _paths(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value or []]


def _scripts(config: Mapping[str, Any]) -> None:
    for key in ("LuaScripts", "PythonHooks"):
        for path in _paths(config.get(key)):
            if not os.path.isfile(path):
                raise ConfigurationError(
                    f'The specified path does not point to a regular file: {path} (in "{key}")'
                )


def _unsupported(config: Mapping[str, Any]) -> None:
    for key, (value, why) in UNSUPPORTED.items():
        if config.get(key) == value:
            raise ConfigurationError(f'"{key}": {json.dumps(value)} is not supported: {why}')


_CHECKS: tuple[Callable[[Mapping[str, Any]], None], ...] = (
    _unsupported,
    _encoding,
    _user_numbers,
    _aet,
    _modalities,
    _peers,
    _scripts,
)
