"""What a relay run is given: its options, where its output goes, and how it signs in.

``options.py`` (below the command line) builds ``RelayOptions`` from the arguments; ``app.py``
hands the relay an ``Output`` (stdout) and a ``SignInFactory`` (OAuth, a feature the shell may
not import).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx
import trio

from ..core.backoff import MAX_SERVER_DELAY, Backoff
from ..core.errors import UpstreamError
from .net import NetworkOptions

log = logging.getLogger("mcp_remote_py")

__all__ = [
    "INITIALIZE_DEADLINE",
    "OAuthSettings",
    "Output",
    "RelayOptions",
    "SignIn",
    "SignInFactory",
]

# Claude Desktop gives up on initialize after about 60 s; answer well before that.
INITIALIZE_DEADLINE = 30.0


class Output(Protocol):
    async def write_line(self, data: bytes | str) -> None:
        """Write ``data`` (one JSON value, no newline; text as UTF-8) and the newline."""


class SignIn(Protocol):
    """What the relay needs of OAuth (``auth.oauth.OAuthSession`` is one): the header for the
    next request, and a way past a 401 or a 403 ``insufficient_scope``.

    The relay is the shell and OAuth a feature above it, so the relay does not import it: the
    command line's wiring (``app.py``) hands in a ``SignInFactory`` that does, on first use."""

    async def authorization_header(self, *, interactive: bool = False) -> str | None: ...

    async def on_unauthorized(
        self,
        headers: Mapping[str, str],
        *,
        sent: str | None,
        interactive: bool = False,
        wait_for_sign_in: float | None = None,
    ) -> str: ...

    async def on_forbidden(
        self,
        headers: Mapping[str, str],
        *,
        sent: str | None,
        interactive: bool = False,
        wait_for_sign_in: float | None = None,
    ) -> str | None: ...


# Makes the SignIn for a relay's server, given its HTTP client and the relay's nursery (where
# a sign-in finishing in the browser lives on after the request that started it was answered).
SignInFactory = Callable[["RelayOptions", httpx.AsyncClient, "trio.Nursery | None"], SignIn]


@dataclass(frozen=True)
class OAuthSettings:
    """How to sign in when the server asks (OAuth 2.1), kept free of the OAuth code itself so
    that a relay that never meets a 401 never imports it. See ``auth.oauth.OAuthOptions``."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_metadata_url: str | None = None
    resource: str | None = None
    callback_port: int = 0
    auth_timeout: float = 300.0
    allow_http: bool = False


@dataclass
class RelayOptions:
    url: httpx.URL
    transport: str = "http-first"
    # auto | legacy (never 2026-07-28 upstream) | modern (the server speaks only 2026-07-28)
    protocol: str = "auto"
    network: NetworkOptions = field(default_factory=NetworkOptions)
    ignore_tools: list[str] = field(default_factory=list)
    request_timeout: float | None = None
    initialize_deadline: float = INITIALIZE_DEADLINE
    # Defaults ride out a two-minute redeploy: 0.5, 1, 2, 4, 8, then 15 s apart, 20 tries.
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, maximum=15.0))
    max_retries: int = 20  # 0: for ever
    keepalive: float = 30.0  # 0: off
    max_line: int = 256 * 1024 * 1024
    # OAuth when the server answers 401 (None: the user gave the Authorization header, or a
    # stored bearer token is sent); oauth_at_start: an OAuth token is stored, send it at once.
    oauth: OAuthSettings | None = None
    oauth_at_start: bool = False
    credential_store: str | None = None

    def retries_exhausted(self, attempt: int) -> bool:
        return self.max_retries > 0 and attempt >= self.max_retries

    def retry_delay(self, error: UpstreamError, attempt: int) -> float:
        """The wait before try ``attempt + 1``: our backoff, never under the server's word."""
        asked = getattr(error, "retry_after", None) or 0.0
        if asked > MAX_SERVER_DELAY:
            log.info(
                "the server asked to wait %.0f s before trying again; the relay waits %.0f s "
                "at most",
                asked,
                MAX_SERVER_DELAY,
            )
        return self.backoff.delay(attempt, floor=asked)
