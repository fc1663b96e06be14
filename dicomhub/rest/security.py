"""HTTP access rules of Orthanc: remote access and Basic authentication.

``RemoteAccessAllowed`` false limits the server to loopback clients.
``AuthenticationEnabled`` defaults, as in Orthanc, to on when remote access is
allowed; credentials come from ``RegisteredUsers``.
"""

from __future__ import annotations

import base64
import functools
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@functools.lru_cache(maxsize=1024)
def _is_loopback(host: str) -> bool:
    """Remembered per address: parsing it costs more than the rest of a small request."""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class AccessPolicy:
    remote_access_allowed: bool = False
    authentication_enabled: bool = False
    users: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> AccessPolicy:
        remote = bool(cfg.get("RemoteAccessAllowed", False))
        auth = cfg.get("AuthenticationEnabled")
        users = {str(k): str(v) for k, v in (cfg.get("RegisteredUsers") or {}).items()}
        return cls(
            remote_access_allowed=remote,
            authentication_enabled=bool(auth) if auth is not None else remote,
            users=users,
        )

    def is_client_allowed(self, host: str | None) -> bool:
        if self.remote_access_allowed:
            return True
        if not host:
            return False
        return _is_loopback(host)

    def authenticate(self, authorization: str | None) -> str | None:
        """The user name if the credentials are valid, else ``None``."""
        if not authorization or not authorization.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8
            return None
        user, sep, password = decoded.partition(":")
        if not sep or user not in self.users:
            return None
        if hmac.compare_digest(self.users[user].encode(), password.encode()):
            return user
        return None
