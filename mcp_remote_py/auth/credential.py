"""What the store keeps: one server's ``Credential``, under the server's canonical key.

A credential belongs to one server, named by its canonical key (``canonical_server_key``):
scheme, lowercase host, explicit port, path without a trailing slash, e.g.
``https://mcp.example.com:443/mcp``. A token is only ever looked up for exactly that key, so it is
only sent to the server it was stored for.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["KINDS", "Credential", "canonical_server_key", "mask_secret"]

KINDS = ("bearer", "oauth", "client")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def mask_secret(value: str) -> str:
    """``abcd…wxyz`` (first 4, last 4), or ``***`` when shorter than 12 characters."""
    if len(value) < 12:
        return "***"
    return f"{value[:4]}…{value[-4:]}"


def canonical_server_key(url: str) -> str:
    """The key a server's credential is stored under, e.g. ``https://mcp.example.com:443/mcp``.

    Scheme and host lowercased, the default port filled in, the path kept (percent-escapes
    normalised, trailing slashes dropped); userinfo, query and fragment dropped. Two URLs with the
    same key reach the same endpoint; different paths are different keys. Raises ``ValueError``
    (whose message shows the URL only masked: it might be a token pasted in the wrong place).
    """
    text = url.strip()
    example = "e.g. https://mcp.example.com/mcp"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(
            f"not a valid server URL ({mask_secret(text)}): its host or port cannot be read; "
            f"give the full URL, {example}"
        ) from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(
            f"not an http:// or https:// URL with a host ({mask_secret(text)}): "
            f"give the full URL, {example}"
        )
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(
                f"the host name of {mask_secret(text)} is not a valid internationalised name"
            ) from None
    if ":" in host:  # an IPv6 literal: keep it bracketed
        host = f"[{host}]"
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    path = quote(parts.path, safe=_PATH_SAFE)
    path = _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), path).rstrip("/")
    return f"{scheme}://{host}:{port}{path}"


@dataclass(frozen=True, kw_only=True)
class Credential:
    """One server's credential. ``repr`` never shows the secrets.

    ``kind`` is ``bearer`` (a token the user stored), ``oauth`` (tokens from an OAuth flow, with
    ``refresh_token``, ``expires_at`` and the ``client`` registration), or ``client``: no token
    yet, only a pre-registered OAuth client's secret (``auth set-client-secret``), which
    ``access_token`` holds and ``client`` names (``{"registration": "static", "client_id":
    …}``); it is never sent to the server, only to its authorization server. Times are epoch
    seconds.
    """

    kind: str = "bearer"
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    client: dict[str, Any] | None = field(default=None, repr=False)
    saved_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown credential kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not self.access_token:
            raise ValueError("the access token is empty")

    def expired(self, now: float | None = None) -> bool:
        """True when ``expires_at`` has passed."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "client": self.client,
            "saved_at": self.saved_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: object) -> Credential:
        """Read what ``to_dict`` wrote; unknown fields are ignored. ``ValueError`` names the field
        that is wrong, never its value."""
        if not isinstance(data, dict):
            raise ValueError("a credential must be a JSON object")
        kind = data.get("kind", "bearer")
        if not isinstance(kind, str):
            raise ValueError("'kind' must be a string")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ValueError("'access_token' must be a non-empty string")
        refresh = data.get("refresh_token")
        if refresh is not None and not isinstance(refresh, str):
            raise ValueError("'refresh_token' must be a string or null")
        client = data.get("client")
        if client is not None and not isinstance(client, dict):
            raise ValueError("'client' must be an object or null")
        saved_at = _number(data, "saved_at", default=0.0)
        assert saved_at is not None
        return cls(
            kind=kind,
            access_token=token,
            refresh_token=refresh,
            expires_at=_number(data, "expires_at", default=None),
            client=client,
            saved_at=saved_at,
        )

    @classmethod
    def from_json(cls, text: str) -> Credential:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data)


def _number(data: Mapping[str, object], name: str, default: float | None) -> float | None:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name!r} must be a number of epoch seconds or null")
    return float(value)
