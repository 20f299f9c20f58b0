"""The errors a user can meet, each written as advice: what failed, why, and what to run.

RelayError
├── UsageError               a flag, URL or header the user gave is wrong (exit status 2)
└── UpstreamError            the remote server could not be used
    ├── UpstreamUnavailable  nothing answered: refused, DNS, timeout, TLS (``transient`` says
    │                        whether waiting may help)
    ├── UpstreamHttpError    the server answered with an HTTP error status
    ├── SessionLost          the server no longer knows the session (404, 400 "no session")
    ├── ConnectionLost       a stream broke while the server was handling a request
    ├── ModernOnlyServer     initialize met a server that speaks only 2026-07-28 (the relay
    │                        bridges: core/bridge_up)
    ├── MessageTooLarge      the server's answer was over --max-message-size (dropped unread)
    └── ProtocolViolation    the server sent something that is not MCP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAYBE_CARRIED_OUT",
    "ConnectionLost",
    "MessageTooLarge",
    "ModernOnlyServer",
    "ProtocolViolation",
    "RelayError",
    "SessionLost",
    "UpstreamError",
    "UpstreamHttpError",
    "UpstreamUnavailable",
    "UsageError",
    "describe_size",
]


class RelayError(Exception):
    """Base of every error the relay reports to a user."""


class UsageError(RelayError):
    """The command line, a header or the URL is wrong."""


class UpstreamError(RelayError):
    """The remote server could not be used; ``hint`` says what the user can do."""

    transient = False

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def advice(self) -> str:
        return f"{self}. {self.hint}" if self.hint else str(self)


class UpstreamUnavailable(UpstreamError):
    """No connection, so nothing was sent: refused, name not found, connect timeout, TLS failure.

    ``kind`` is one of ``refused``, ``timeout``, ``unreachable``, ``proxy``, ``dns``, ``tls``,
    ``other``. Waiting may help all but a bad certificate; at start-up a name that does not
    resolve is reported at once (it is usually a typo), later it is waited out like the rest.
    """

    def __init__(self, message: str, hint: str = "", *, kind: str) -> None:
        super().__init__(message, hint)
        self.kind = kind
        self.transient = kind not in ("dns", "tls")


class UpstreamHttpError(UpstreamError):
    """The server answered with an HTTP error status."""

    def __init__(
        self,
        status: int,
        reason: str,
        excerpt: str,
        hint: str = "",
        retry_after: float | None = None,
        challenge: Mapping[str, str] | None = None,
        sent_authorization: str | None = None,
        body: bytes = b"",
    ) -> None:
        text = f"the server answered HTTP {status} {reason}".rstrip()
        if excerpt:
            text += f": {excerpt}"
        super().__init__(text, hint)
        self.status = status
        self.excerpt = excerpt
        self.retry_after = retry_after
        # 2025-11-25 §Transports leaves 429 and 5xx gateway errors to the client's retry policy.
        self.transient = status in (429, 502, 503, 504)
        # For 401/403: the response's headers (WWW-Authenticate) and the Authorization the
        # request carried, so OAuth can tell a stale token from a fresh one. Kept out of str().
        self.challenge = challenge
        self.sent_authorization = sent_authorization
        # The start of the body (at most 8 KiB), for a JSON-RPC error inside it: a 2026-07-28
        # server answers -32020/-32022 with HTTP 400, and that is its answer, not a failure.
        self.body = body


class ModernOnlyServer(UpstreamError):
    """The server answered ``initialize`` as one that speaks only 2026-07-28 does: with a
    recognised modern error, or by answering ``server/discover`` after refusing it. Not a
    failure to report: the relay answers the client's initialize from ``server/discover``."""

    def __init__(self, evidence: str, discover: dict[str, Any] | None = None) -> None:
        super().__init__(f"the server speaks only MCP 2026-07-28 ({evidence})")
        # The DiscoverResult that proved it, if one did: the bridge answers initialize with it.
        self.discover = discover


class SessionLost(UpstreamError):
    """The server answered 404 (or 400 "no valid session") to a request carrying our session."""


MAYBE_CARRIED_OUT = "The server may or may not have carried it out; check before trying it again"


class ConnectionLost(UpstreamError):
    """A response stream ended before its answer; the server may or may not have acted."""

    def __init__(self, message: str, hint: str = MAYBE_CARRIED_OUT) -> None:
        super().__init__(message, hint)


class ProtocolViolation(UpstreamError):
    """The server's answer is not MCP (wrong content type, not JSON, no endpoint event)."""


def describe_size(size: int) -> str:
    """A byte count for a message: ``8 MiB``, ``1.5 MiB``, ``512 KiB``."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):g} MiB"
    return f"{size / 1024:g} KiB"


class MessageTooLarge(UpstreamError):
    """The server's answer was larger than the relay takes for one message
    (``--max-message-size``). It was dropped as it streamed in, never held whole; the request
    gets this error, and nothing else is affected. Not transient: the same request would bring
    the same answer, so it is not sent again."""

    def __init__(self, limit: int) -> None:
        size = describe_size(limit)
        super().__init__(
            f"the server's answer exceeded {size}, the relay's limit for one message; it was "
            "dropped and the relay goes on",
            "If answers this large are expected, raise the limit with --max-message-size MIB "
            "(the default is 256)",
        )
        self.limit = limit
