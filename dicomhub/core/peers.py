"""Orthanc peers: other Orthanc-compatible servers reached over their REST API.

Peers come from the ``OrthancPeers`` configuration (list form
``["http://host:port/", "user"?, "password"?]`` or object form with ``Url``,
``Username``, ``Password``, ``HttpHeaders``, ``Timeout``, ``CertificateFile``,
``CertificateKeyFile``, ``CertificateKeyPassword``, ``Pkcs11``) and from
``PUT /peers/{name}``, kept as ``core/registry.py`` explains so that every HTTP
worker sees them (``OrthancPeersInDatabase`` keeps them across restarts).

Sending is synchronous: each instance is one ``POST /instances`` to the peer.
Errors follow Orthanc 1.10.1 as observed: a peer that cannot be reached or refuses
an instance is "Error in the network protocol" (500); ``/system`` of a peer that
answers a client error (401, 404) is Orthanc's "This HTTP status is not allowed in
a REST API" (500).
"""

from __future__ import annotations

import gzip
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .archive import Archive
from .errors import (
    BadFileFormat,
    DicomhubError,
    InexistentFile,
    NetworkProtocol,
    UnknownResource,
)
from .registry import NamedRegistry


class BadHttpStatusInRest(DicomhubError):
    """A peer answered with a status Orthanc does not forward (e.g. 401)."""

    code = 2005
    name = "This HTTP status is not allowed in a REST API"
    http_status = 500


@dataclass(frozen=True)
class Peer:
    """One remote Orthanc-compatible server."""

    url: str
    username: str | None = None
    password: str | None = None
    http_headers: dict[str, str] = field(default_factory=dict)
    timeout: int = 0
    pkcs11: bool = False
    certificate_file: str | None = None
    certificate_key_file: str | None = None
    certificate_key_password: str | None = None
    #: Other string fields of the object form, kept and shown as Orthanc keeps them
    user_properties: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The form of ``/peers?expand`` and ``/configuration``: secrets withheld
        (the password and the key file as null, the header names without their
        values), with the user-defined properties, as Orthanc 1.10.1 shows them."""
        answer: dict[str, Any] = {
            "HttpHeaders": sorted(self.http_headers),
            "Pkcs11": self.pkcs11,
            "Timeout": self.timeout,
            "Url": self.url,
        }
        if self.username is not None:
            answer["Username"] = self.username
            answer["Password"] = None
        if self.certificate_file:
            answer["CertificateFile"] = self.certificate_file
            answer["CertificateKeyFile"] = None
            answer["CertificateKeyPassword"] = None
        for key, value in self.user_properties.items():
            answer.setdefault(key, value)
        return dict(sorted(answer.items()))

    def to_store_json(self) -> list[str] | dict[str, Any]:
        """The ``Peer`` field of a store answer, as Orthanc 1.10.1 writes it: the list
        form (password blanked) when only a URL and credentials are set, otherwise the
        object form with the header values and without the password."""
        advanced = self.http_headers or self.timeout or self.pkcs11 or self.certificate_file
        if not (advanced or self.user_properties):
            if self.username is None:
                return [self.url]
            return [self.url, self.username, ""]
        answer = self.to_json()
        answer["HttpHeaders"] = dict(self.http_headers)
        answer.pop("Password", None)
        answer.pop("CertificateKeyPassword", None)
        if self.certificate_file:
            answer["CertificateKeyFile"] = self.certificate_key_file
        return answer


_KNOWN_FIELDS = frozenset(
    (
        "Url",
        "Username",
        "Password",
        "HttpHeaders",
        "Timeout",
        "Pkcs11",
        "CertificateFile",
        "CertificateKeyFile",
        "CertificateKeyPassword",
    )
)


def _normalize_url(url: str) -> str:
    """Orthanc's checks: not empty; a scheme, when there is one, is http or https."""
    if not url:
        raise BadFileFormat("Empty URL")
    if "://" in url and not url.startswith(("http://", "https://")):
        raise BadFileFormat(f"Bad URL: {url}")
    return url if url.endswith("/") else url + "/"


def _optional_string(body: Mapping[str, Any], key: str) -> str | None:
    """A string field, or ``None`` when absent (present as ``null`` is refused)."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, str):
        raise BadFileFormat(f"String value expected in field: {key}")
    return value


def _credentials(username: str | None, password: str | None) -> dict[str, Any]:
    """An empty user name is no credentials, as in Orthanc; a password needs a user."""
    if not username:
        if password:
            raise BadFileFormat("A password is given without a user name")
        return {}
    return {"username": username, "password": password or ""}


def _user_property(key: str, value: Any) -> str:
    """The other fields of a peer must be strings; Orthanc also takes an integer
    or a Boolean, kept as its text ("1"/"0" for true/false)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise BadFileFormat(
        f"User-defined properties associated with a Web service must be strings: {key}"
    )


def parse_peer(value: Any) -> Peer:
    """A peer from its configuration form (list or object), checked like Orthanc."""
    if isinstance(value, list):
        if len(value) not in (1, 3) or not all(isinstance(v, str) for v in value):
            raise BadFileFormat("A peer is given as [Url] or [Url, Username, Password]")
        url = _normalize_url(value[0])
        if len(value) == 3:
            return Peer(url, **_credentials(value[1], value[2]))
        return Peer(url)
    if not isinstance(value, dict):
        raise BadFileFormat("A peer is given as a JSON array or object")
    url = value.get("Url")
    if url is None:
        raise BadFileFormat("Empty URL")
    if not isinstance(url, str):
        raise BadFileFormat("String value expected in field: Url")
    kwargs: dict[str, Any] = {"url": _normalize_url(url)}
    kwargs.update(
        _credentials(_optional_string(value, "Username"), _optional_string(value, "Password"))
    )
    headers = value.get("HttpHeaders", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise BadFileFormat("HttpHeaders must be an object of strings")
    kwargs["http_headers"] = dict(headers)
    timeout = value.get("Timeout", 0)
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise BadFileFormat("Integer value expected in field: Timeout")
    if timeout < 0:
        raise BadFileFormat("Unsigned integer value expected in field: Timeout")
    kwargs["timeout"] = timeout
    pkcs11 = value.get("Pkcs11", False)
    if not isinstance(pkcs11, bool):
        raise BadFileFormat("Boolean value expected in field: Pkcs11")
    kwargs["pkcs11"] = pkcs11
    certificate = _optional_string(value, "CertificateFile")
    if certificate is not None:
        if not os.path.isfile(certificate):
            raise InexistentFile(f"Cannot open certificate file: {certificate}")
        key = _optional_string(value, "CertificateKeyFile")
        if key is not None and not os.path.isfile(key):
            raise InexistentFile(f"Cannot open key file: {key}")
        kwargs["certificate_file"] = certificate
        kwargs["certificate_key_file"] = key
        kwargs["certificate_key_password"] = _optional_string(value, "CertificateKeyPassword")
    kwargs["user_properties"] = {
        key: _user_property(key, item)
        for key, item in sorted(value.items())
        if key not in _KNOWN_FIELDS
    }
    return Peer(**kwargs)


class PeerRegistry(NamedRegistry[Peer]):
    """The known peers, shared through the index by every process of the server."""

    def __init__(self, archive: Archive, config: Mapping[str, Any]) -> None:
        super().__init__(archive, config, "OrthancPeers", Peer, parse_peer, "Unknown Orthanc peer")
        self.default_timeout = int(config.get("HttpTimeout", 60) or 60)
        verify: bool | str = bool(config.get("HttpsVerifyPeers", True))
        if verify and config.get("HttpsCACertificates"):
            verify = str(config["HttpsCACertificates"])
        self.verify = verify

    def get(self, name: str) -> Peer:
        peer = self.find(name)
        if peer is None:
            raise UnknownResource(f"No peer with symbolic name: {name}")
        return peer

    # ---- talking to a peer --------------------------------------------------
    def client(self, peer: Peer) -> httpx.Client:
        """An HTTP client configured for ``peer`` (credentials, headers, TLS, timeout)."""
        auth = (peer.username, peer.password or "") if peer.username is not None else None
        cert: Any = None
        if peer.certificate_file:
            cert = (peer.certificate_file, peer.certificate_key_file, peer.certificate_key_password)
        return httpx.Client(
            base_url=peer.url,
            auth=auth,
            headers=peer.http_headers,
            timeout=float(peer.timeout or self.default_timeout),
            verify=self.verify,
            cert=cert,
        )


def _failure_words(exc: httpx.HTTPError) -> str:
    """What Orthanc says of a failed HTTP call to a peer: its HTTP client's (libcurl's)
    description of the failure, which 1.10.1 shows as ``libCURL error: ...``."""
    if isinstance(exc, httpx.TimeoutException):
        words = "Timeout was reached"
    elif isinstance(exc, httpx.ConnectError):
        cause = exc.__cause__ or exc.__context__
        text = str(exc).lower()
        if isinstance(cause, socket.gaierror) or "name or service" in text:
            words = "Couldn't resolve host name"
        elif isinstance(cause, ssl.SSLError) or "ssl" in text:
            words = "SSL connect error"
        else:
            words = "Couldn't connect to server"
    elif isinstance(exc, httpx.RemoteProtocolError):
        words = "Server returned nothing (no headers, no data)"
    elif isinstance(exc, httpx.ReadError):
        words = "Failure when receiving data from the peer"
    elif isinstance(exc, httpx.WriteError):
        words = "Failure when sending data to the peer"
    else:
        return f"Cannot reach the peer: {exc}"
    return f"libCURL error: {words}"


def peer_system(registry: PeerRegistry, name: str) -> Any:
    """``GET /system`` of the peer, as JSON."""
    peer = registry.get(name)
    try:
        with registry.client(peer) as client:
            response = client.get("system")
    except httpx.HTTPError as exc:
        raise NetworkProtocol(_failure_words(exc)) from exc
    if 400 <= response.status_code < 500:  # 401 and 404 seen from Orthanc 1.10.1
        raise BadHttpStatusInRest()
    if response.status_code != 200:
        raise NetworkProtocol(f"The peer {name} answered HTTP status {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise NetworkProtocol(f"The peer {name} did not answer JSON") from exc


def post_instance(client: httpx.Client, data: bytes, compress: bool) -> httpx.Response:
    headers = {"Content-Type": "application/dicom"}
    body = data
    if compress:
        body = gzip.compress(data, compresslevel=6)
        headers["Content-Encoding"] = "gzip"
    try:
        response = client.post("instances", content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise NetworkProtocol(f"Cannot reach the peer: {exc}") from exc
    if response.status_code != 200:
        raise NetworkProtocol(f"The peer answered HTTP status {response.status_code}")
    return response


def store_straight(registry: PeerRegistry, name: str, data: bytes) -> Any:
    """Forward a DICOM file as is; the answer is the peer's answer to its upload."""
    peer = registry.get(name)
    try:
        with registry.client(peer) as client:
            response = post_instance(client, data, compress=False)
            return response.json()
    except (NetworkProtocol, ValueError) as exc:
        raise NetworkProtocol(f"Cannot send DICOM to remote peer: {name}") from exc
