"""Which protocol era a client request or a server's error answer belongs to.

2026-07-28 basic/versioning: **legacy** revisions (2025-11-25 and earlier) open with an
``initialize`` handshake; **modern** ones (2026-07-28 on) carry the version, the client's
capabilities and its info in every request's ``_meta``. A desktop client's era shows in each
request it writes (``initialize``, or a ``_meta`` version); a server's era shows in how it
answers a modern request (§Backward Compatibility): a result, or a *recognised modern error*,
proves it modern; any other error, or an HTTP 4xx without such a body, proves it legacy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CLIENT_CAPABILITIES_KEY",
    "CLIENT_INFO_KEY",
    "HEADER_MISMATCH",
    "LOG_LEVEL_KEY",
    "SERVER_INFO_KEY",
    "SPEC_META_PREFIX",
    "SUBSCRIPTION_ID_KEY",
    "LEGACY_VERSIONS",
    "MODERN_ERROR_CODES",
    "MODERN_VERSIONS",
    "NEWEST_LEGACY",
    "PROTOCOL_VERSION_KEY",
    "is_modern_request",
    "is_modern_version",
    "jsonrpc_error_body",
    "proves_modern",
    "request_version",
]

# basic/index §_meta: the keys the specification itself defines (prefix io.modelcontextprotocol/).
SPEC_META_PREFIX = "io.modelcontextprotocol/"
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
MODERN_VERSIONS = ("2026-07-28",)
LEGACY_VERSIONS = frozenset({"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"})
# The newest handshake-era version: what the relay offers in an initialize of its own.
NEWEST_LEGACY = "2025-11-25"

# basic/index §Error Codes: -32020..-32099 belong to the specification; these three are defined.
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
MODERN_ERROR_CODES = frozenset(
    {HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION}
)
METHOD_NOT_FOUND = -32601


def request_version(params: Mapping[str, Any]) -> str | None:
    """The protocol version a request's ``_meta`` declares, if it declares one."""
    meta = params.get("_meta")
    if not isinstance(meta, Mapping):
        return None
    version = meta.get(PROTOCOL_VERSION_KEY)
    return version if isinstance(version, str) else None


def is_modern_request(params: Mapping[str, Any]) -> bool:
    return is_modern_version(request_version(params))


def is_modern_version(version: str | None) -> bool:
    """A request speaks the modern era when its ``_meta`` names a version that is not one of
    the handshake era's (a version newer than we know is modern too: the server says -32022
    if it does not serve it, and the client picks another)."""
    return version is not None and version not in LEGACY_VERSIONS


def jsonrpc_error_body(body: bytes) -> dict[str, Any] | None:
    """``body`` parsed, when it is one JSON-RPC error response (``error`` with an integer
    ``code``); None for anything else, an empty or truncated body included."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    error = parsed.get("error")
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    return parsed


def proves_modern(status: int, error: Mapping[str, Any] | None) -> bool:
    """Whether an HTTP error answer to a modern request proves the server modern
    (streamable-http §Backward Compatibility and §Protocol Version Header): one of the
    specification's own error codes, or -32601 Method not found with HTTP 404."""
    if error is None:
        return False
    code = error["error"]["code"]
    return code in MODERN_ERROR_CODES or (code == METHOD_NOT_FOUND and status == 404)
