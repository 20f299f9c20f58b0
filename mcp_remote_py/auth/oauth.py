"""OAuth 2.1 for MCP servers: sign in with the browser, keep the token fresh, share it.

API
---
One ``OAuthSession`` per MCP server URL in a process::

    oauth = OAuthSession(server_url, http_client, OAuthOptions(...), store=store,
                         nursery=nursery)            # nursery: where a browser sign-in runs

    header = await oauth.authorization_header(interactive=True, wait_for_sign_in=50)
    #   "Bearer <token>" to send with every request to the server, refreshed shortly before it
    #   expires; None while no token is known (send none: the server's 401 starts the sign-in).

    header = await oauth.on_unauthorized(response.headers, sent=header, interactive=True,
                                         wait_for_sign_in=50)
    #   after a 401 to a request that carried ``sent``: a header to send that request again
    #   with (another process's newer token, a refreshed one, or one from a browser sign-in).

    header = await oauth.on_forbidden(response.headers, sent=header, interactive=True,
                                      wait_for_sign_in=50)
    #   after a 403: with ``error="insufficient_scope"``, a header with the wider scopes after
    #   a step-up sign-in; None when the 403 is not about scopes (report it as it is).

    credential = await oauth.login()                 # `mcp-remote-py auth login`: sign in now

Each raises ``AuthorizationRequired`` (an ``UpstreamError`` whose hint says to run
``mcp-remote-py auth login URL``) when no usable token can be had: not ``interactive``, the
browser step not finished within ``wait_for_sign_in`` seconds, a refresh token refused
(``invalid_grant``: the stored tokens are dropped first), or a step-up that did not help. Other
failures are ``OAuthError`` (``transient`` when waiting may help) or the network errors of
``net.py``. Everything else they do is bounded on its own (metadata 15 s, token and
registration requests 30 s, lock waits), so a caller's cancel scope is only needed for its own
reasons.

With ``interactive`` the browser may open. Given a ``nursery``, the browser step runs there for up
to ``OAuthOptions.auth_timeout`` (default 5 minutes), longer than one call's
``wait_for_sign_in``: a call that must answer soon (``initialize`` within a desktop client's
~60 s) gets AuthorizationRequired saying the sign-in is still open in the browser, and the next
call waits for that same sign-in instead of opening another tab. Without a nursery the browser
step runs in the calling task and ends with the wait.

What it does (MCP authorization, 2025-06-18 and 2025-11-25, with the 2025-03-26 fallbacks):

* discovery from the 401's ``WWW-Authenticate`` (``discovery.py``);
* the client: pre-registered (``client_id``, optional secret), else a Client ID Metadata
  Document URL when the authorization server advertises support, else Dynamic Client
  Registration (RFC 7591); the registration is kept in the stored credential and reused;
* authorization code with PKCE S256 (refused when the server does not list S256), ``state``
  checked, RFC 8707 ``resource`` on the authorization and token requests, RFC 9207 ``iss``
  checked; token endpoint authentication ``none``, ``client_secret_post`` or
  ``client_secret_basic``;
* tokens in the credential store (kind ``oauth``); a refresh shortly before expiry and on 401, a
  rotated refresh token saved before anything else can happen (the exchange is shielded from
  cancellation), ``invalid_grant`` dropping the tokens;
* several processes: one browser sign-in per server at a time (the others wait for its tokens)
  and one refresh at a time, through lock files under the user state directory (or
  ``$MCP_REMOTE_PY_CONFIG_DIR/locks``);
* no loops: a token the server refuses right after a sign-in is an error, not another sign-in;
  a step-up to a scope set already tried is an error, not another browser tab.

The HTTP client is the relay's (proxies, TLS), but every request here is built here: the user's
``--header`` values never travel to the authorization server. No token, secret, verifier or
code is ever logged or put in a message.

The stored credential's ``client`` holds the registration and where its tokens come from:
``registration`` (``static``, ``metadata_document`` or ``dynamic``), ``client_id``,
``client_secret`` (confidential clients), ``client_secret_expires_at``,
``token_endpoint_auth_method``, ``redirect_uris``, ``registered_scope``, and ``issuer``,
``token_endpoint``, ``resource`` (None when not sent) and ``scope`` (granted).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import trio

# authlib's protocol pieces: token generation, the S256 challenge, the authorization request
# URI and the token request body, and client authentication (none / client_secret_post).
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

from .._version import __version__
from ..core.errors import UpstreamError
from ..shell.net import NetworkOptions, describe_network_error, display_url, is_loopback_host
from .callback import CallbackListener, open_callback_listener, system_browser
from .discovery import (
    AuthorizationServer,
    Challenge,
    Discovery,
    bearer_challenge,
    canonical_resource,
    check_endpoint_url,
    discover,
)
from .errors import AuthorizationRequired, OAuthError
from .store import (
    CONFIG_DIR_ENV,
    SERVICE,
    Credential,
    CredentialStore,
    CredentialStoreError,
    _try_lock,
    _unlock,
    canonical_server_key,
    config_dir,
)

__all__ = [
    "AuthorizationRequired",
    "OAuthError",
    "OAuthOptions",
    "OAuthSession",
    "default_lock_dir",
    "scope_union",
]

log = logging.getLogger("mcp_remote_py")

AUTH_TIMEOUT = 300.0
TOKEN_TIMEOUT = 30.0
# Refresh this long before expiry, or a quarter of the token's lifetime if that is shorter.
REFRESH_MARGIN = 60.0
REFRESH_LOCK_TIMEOUT = 60.0
# A token refused within this many seconds of being issued is not refreshed or re-issued again.
RECENT = 60.0
# Waiting for another process's sign-in: its time-out plus this much.
SIGN_IN_LOCK_GRACE = 30.0
LOCK_POLL = 0.1
MAX_ERROR_TEXT = 300

Browser = Callable[[str], Awaitable[bool]]
Notify = Callable[[str], None]


@dataclass(frozen=True)
class OAuthOptions:
    """How to sign in. Every field is optional; the defaults discover everything.

    ``client_id``/``client_secret``: a pre-registered client (the secret comes from an
    environment variable or a prompt, never the command line). ``client_metadata_url``: this
    client's Client ID Metadata Document, used where the authorization server supports them.
    ``resource``: the RFC 8707 resource to ask for, instead of the discovered one;
    ``send_resource=False`` leaves the parameter out (for servers that reject it).
    ``scope``: the scopes to ask for, instead of the 2025-11-25 §Scope Selection Strategy.
    ``callback_port``: 0 lets the system pick (or reuses the registered one).
    ``auth_timeout``: how long a browser sign-in may take. ``open_browser=False`` only shows the
    URL. ``allow_http``: plain http to an authorization server that is not on loopback.
    """

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    client_metadata_url: str | None = None
    resource: str | None = None
    send_resource: bool = True
    scope: str | None = None
    callback_port: int = 0
    auth_timeout: float = AUTH_TIMEOUT
    open_browser: bool = True
    allow_http: bool = False
    client_name: str = "mcp-remote-py"


def scope_union(*scopes: str | None) -> str | None:
    """Space-separated scopes of all arguments, each once, in first-seen order."""
    seen: dict[str, None] = {}
    for scope in scopes:
        for item in (scope or "").split():
            seen.setdefault(item, None)
    return " ".join(seen) or None


def _covers(granted: str | None, wanted: str | None) -> bool:
    return set((wanted or "").split()) <= set((granted or "").split())


def default_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$MCP_REMOTE_PY_CONFIG_DIR/locks`` when set (tests), else the user state directory's."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_DIR_ENV, "").strip():
        return config_dir(env) / "locks"
    from platformdirs import user_state_dir

    return Path(user_state_dir(SERVICE, appauthor=False)) / "locks"


@asynccontextmanager
async def _file_lock(
    path: Path, max_wait: float, on_wait: Callable[[], None]
) -> AsyncIterator[bool]:
    """Hold an exclusive lock on ``path`` across processes; yields whether it had to wait.

    ``flock``/``msvcrt.locking`` (the store's helpers): the OS releases it when a process dies,
    so a crashed relay never leaves a server locked. Polled, so trio stays responsive.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        raise OAuthError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    try:
        waited = False
        with trio.move_on_after(max_wait) as scope:
            while not _try_lock(fd):
                if not waited:
                    waited = True
                    on_wait()
                await trio.sleep(LOCK_POLL)
        if scope.cancelled_caught:
            raise OAuthError(
                f"another mcp-remote-py held {path.name} for {max_wait:g} s",
                "Try again; if it persists, look for a stuck mcp-remote-py process",
                transient=True,
            )
        try:
            yield waited
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


@dataclass
class _Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float | None
    scope: str | None


class _TokenEndpointError(Exception):
    """RFC 6749 §5.2 error answer of the token endpoint."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


class _SignInNeeded(Exception):
    """The stored tokens cannot be used or refreshed; the message says why."""


@dataclass
class _PendingSignIn:
    scope: str | None
    done: trio.Event = field(default_factory=trio.Event)
    credential: Credential | None = None
    error: UpstreamError | None = None
    ends_at: float = math.inf


def _client_secret_basic(
    client: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before the Base64 (authlib's own
    # encoder skips that step, which breaks secrets containing ':' or '%').
    pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
    headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return uri, headers, body


def _text(value: object) -> str:
    """A value from an error answer, made safe to show: a string, one line, bounded."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text[:MAX_ERROR_TEXT]


def _expires_at(value: object, now: float) -> float | None:
    # RFC 6749 §5.1 expires_in: seconds. Some servers send it as a string.
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return now + float(value)
    return None


def parse_token_response(status: int, body: bytes, now: float) -> _Tokens:
    """The tokens of a token endpoint answer; ``_TokenEndpointError`` for an RFC 6749 §5.2
    error, OAuthError for anything else. Messages never hold the body of a 200 (it may carry
    tokens): only the ``error`` fields of an error answer are shown."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status != 200:
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise _TokenEndpointError(
                _text(data["error"]), _text(data.get("error_description")), status
            )
        raise OAuthError(
            f"the token endpoint answered HTTP {status}",
            "The authorization service failed; try again in a moment" if status >= 500 else "",
            transient=status >= 500 or status == 429,
        )
    if not isinstance(data, dict):
        raise OAuthError("the token endpoint answered 200 with something that is not JSON")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthError("the token endpoint's answer has no access_token")
    token_type = data.get("token_type", "Bearer")
    # MCP sends "Authorization: Bearer" (2025-11-25 §Token Requirements); another type (DPoP,
    # MAC) would be refused by the server.
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise OAuthError(
            f"the token endpoint issued a {_text(token_type)!r} token, not a Bearer token, which "
            "MCP clients cannot use"
        )
    refresh = data.get("refresh_token")
    scope = data.get("scope")
    # RFC 6749 §5.1: scope is sent when it differs from the one asked for.
    granted = scope_union(scope) if isinstance(scope, str) else None
    return _Tokens(
        access_token=token,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=_expires_at(data.get("expires_in"), now),
        scope=granted,
    )


def refresh_due(credential: Credential, now: float | None = None) -> bool:
    """True when ``credential`` expires within the refresh margin: a minute, or a quarter of its
    lifetime for a short-lived token (so a 2-second token is not refreshed all the time)."""
    if credential.expires_at is None:
        return False
    now = time.time() if now is None else now
    lifetime = max(0.0, credential.expires_at - credential.saved_at)
    return now >= credential.expires_at - min(REFRESH_MARGIN, lifetime / 4)


def registration_auth_method(supported: tuple[str, ...]) -> str:
    """The token endpoint authentication to register with: a public client where the server
    allows one (a native app cannot keep a secret, RFC 8252 §8.5), else a secret sent as the
    server prefers."""
    for method in ("none", "client_secret_basic", "client_secret_post"):
        if method in supported:
            return method
    return "none"


def static_auth_method(has_secret: bool, supported: tuple[str, ...]) -> str:
    """The token endpoint authentication of a pre-registered client."""
    if not has_secret:
        return "none"
    if "client_secret_basic" not in supported and "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"  # RFC 6749 §2.3.1: every server supports it


class OAuthSession:
    """OAuth for one MCP server; see the module docstring for the API."""

    def __init__(
        self,
        server_url: str,
        client: httpx.AsyncClient,
        options: OAuthOptions | None = None,
        *,
        store: CredentialStore | None = None,
        nursery: trio.Nursery | None = None,
        browser: Browser | None = None,
        notify: Notify | None = None,
        lock_dir: Path | None = None,
    ) -> None:
        self._key = canonical_server_key(server_url)  # ValueError for a bad URL
        self._url = server_url.strip()
        self._display = display_url(httpx.URL(self._url))
        self._client = client
        self._options = options or OAuthOptions()
        self._store = store if store is not None else CredentialStore()
        self._nursery = nursery
        self._browser: Browser = browser or system_browser
        self._notify: Notify = notify or log.warning
        self._lock_dir = lock_dir if lock_dir is not None else default_lock_dir()
        self._credential: Credential | None = None
        # The last client registration seen, kept when dropped tokens take the credential.
        self._known_client: dict[str, Any] = {}
        self._bearer_stored = False
        self._loaded = False
        self._challenge: Challenge | None = None
        self._discovery: Discovery | None = None
        self._discovery_hint: str | None = None
        self._refresh_lock = trio.Lock()
        self._pending: _PendingSignIn | None = None
        # How and when each access token of this process came to be ("refresh", "sign-in"),
        # and the ones the server refused: what breaks the loops mcp-remote's users meet.
        self._issued: dict[str, tuple[str, float]] = {}
        self._refused: set[str] = set()
        self._step_ups: set[frozenset[str]] = set()
        self._signed_in_at = -math.inf  # trio time of this process's last browser sign-in

    # ------------------------------------------------------------------ the API

    @property
    def server_url(self) -> str:
        return self._url

    async def authorization_header(
        self, *, interactive: bool = False, wait_for_sign_in: float | None = None
    ) -> str | None:
        """``Bearer <token>`` for the next request, or None while there is no token."""
        deadline = self._deadline(wait_for_sign_in)
        credential = await self._current()
        if credential is None:
            pending = self._pending
            if not interactive or pending is None or pending.done.is_set():
                return None
            credential = await self._wait(pending, deadline)
        if refresh_due(credential):
            credential = await self._refreshed(credential, interactive, deadline)
        return _header(credential)

    async def on_unauthorized(
        self,
        headers: httpx.Headers | Mapping[str, str],
        *,
        sent: str | None,
        interactive: bool = False,
        wait_for_sign_in: float | None = None,
    ) -> str:
        """The header to send a request again with after the server answered it 401."""
        deadline = self._deadline(wait_for_sign_in)
        self._learn(bearer_challenge(headers))
        token = _token_of(sent)
        if token is not None:
            self._refused.add(token)
        reason = "the server requires signing in"
        current = await self._current(reload=True)
        if current is not None:
            if current.access_token not in self._refused and not refresh_due(current):
                return _header(current)  # another task or process has a newer token
            if self._recently_issued(token) == "refresh":
                reason = "the server refused the token that was just refreshed"
            elif current.refresh_token:
                try:
                    return _header(await self._refresh(current))
                except _SignInNeeded as exc:
                    reason = str(exc)
            else:
                reason = "the server refuses the stored token, and there is no refresh token"
        elif self._bearer_stored:
            raise AuthorizationRequired(
                f"{self._display} refused the token stored with `mcp-remote-py auth set`",
                self._display,
                f"Store a new one with `mcp-remote-py auth set {self._display}`, or remove it "
                f"(`mcp-remote-py auth delete {self._display}`) and sign in with "
                f"`mcp-remote-py auth login {self._display}`",
            )
        if not interactive:
            raise AuthorizationRequired(f"{reason} ({self._display})", self._display)
        if trio.current_time() - self._signed_in_at < RECENT:
            # Signed in less than a minute ago, and already refused (and refreshing did not
            # help): another browser tab would end the same way.
            raise OAuthError(
                f"{self._display} refused the token its authorization server issued moments "
                "ago, so signing in again would not help",
                "The token may be for another resource or lack a scope the server needs: check "
                "--resource and --scope, or ask the server's operator",
            )
        return _header(await self._sign_in_shared(None, deadline, reason))

    async def on_forbidden(
        self,
        headers: httpx.Headers | Mapping[str, str],
        *,
        sent: str | None,
        interactive: bool = False,
        wait_for_sign_in: float | None = None,
    ) -> str | None:
        """After a 403: a header with wider scopes (step-up), or None if it is not about scope.

        2025-11-25 §Step-Up Authorization Flow: sign in again with the scopes of the challenge,
        plus those already granted (a server taking the "minimum approach" names only the new
        ones, and dropping the old would make two tools take turns forever). Each scope set is
        tried once: a 403 for a set already tried is final.
        """
        challenge = bearer_challenge(headers)
        if challenge is None or challenge.error != "insufficient_scope":
            return None
        deadline = self._deadline(wait_for_sign_in)
        self._learn(challenge)
        current = await self._current(reload=True)
        pending = self._pending
        if pending is not None and not pending.done.is_set():
            await self._wait(pending, deadline)  # another request's step-up may cover this one
            current = self._credential
        # No waiting from here to the step-up's start: concurrent 403s see each other's.
        granted = (current.client or {}).get("scope") if current is not None else None
        needed = challenge.scope
        wanted = scope_union(granted if isinstance(granted, str) else None, needed)
        if needed is None:
            raise OAuthError(
                f"{self._display} answered 403 insufficient_scope without saying which scope it "
                "needs, so a step-up cannot help",
                "Sign in with the scope the server documents: `mcp-remote-py auth login "
                f"{self._display} --scope SCOPE`",
            )
        if (
            current is not None
            and current.access_token != _token_of(sent)
            and _covers(granted if isinstance(granted, str) else None, needed)
        ):
            return _header(current)  # signed in with these scopes meanwhile (another request)
        attempt = frozenset((wanted or "").split())
        if attempt in self._step_ups:
            raise OAuthError(
                f"{self._display} still refuses with insufficient_scope (it needs: {needed}) "
                f"after signing in for {wanted}; the account may not be allowed these scopes",
                "Ask the server's operator for access; `mcp-remote-py auth login "
                f"{self._display} --scope '{wanted}'` signs in again",
            )
        if not interactive:
            raise AuthorizationRequired(
                f"{self._display} needs more permissions (scope {needed})",
                self._display,
                f"Run `mcp-remote-py auth login {self._display} --scope '{wanted}'`",
            )
        self._step_ups.add(attempt)
        credential = await self._sign_in_shared(wanted, deadline, f"the server needs {needed}")
        return _header(credential)

    async def login(self) -> Credential:
        """Sign in with the browser now (``mcp-remote-py auth login``), whatever is stored.

        When another process is signing in to the same server, waits for it and takes its
        tokens. Asks the server first, without a token, for its 401 challenge.
        """
        limit = self._options.auth_timeout
        with trio.move_on_after(limit) as scope:
            if self._challenge is None:
                await self._probe()
            return await self._sign_in(self._options.scope, explicit=True)
        assert scope.cancelled_caught
        raise AuthorizationRequired(
            f"the sign-in to {self._display} was not completed within {limit:g} s",
            self._display,
            "Run the command again and finish the sign-in in the browser (--auth-timeout S "
            "gives more time)",
        )

    # ------------------------------------------------------------------ waiting

    def _recently_issued(self, token: str | None) -> str | None:
        """How this process got ``token`` ("sign-in", "refresh") if under a minute ago."""
        how, when = self._issued.get(token or "", ("", -math.inf))
        return how if how and time.monotonic() - when < RECENT else None

    @staticmethod
    def _deadline(wait_for_sign_in: float | None) -> float:
        if wait_for_sign_in is None:
            return math.inf
        return trio.current_time() + wait_for_sign_in

    async def _wait(self, pending: _PendingSignIn, deadline: float) -> Credential:
        with trio.move_on_at(deadline):
            await pending.done.wait()
        if not pending.done.is_set():
            left = max(0.0, pending.ends_at - trio.current_time())
            raise AuthorizationRequired(
                f"waiting for the browser sign-in to {self._display}",
                self._display,
                f"Finish signing in in the browser (the sign-in stays open about {left:.0f} s "
                f"more), then try again; or run `mcp-remote-py auth login {self._display}`",
            )
        if pending.error is not None:
            raise pending.error
        assert pending.credential is not None
        return pending.credential

    async def _sign_in_shared(self, scope: str | None, deadline: float, reason: str) -> Credential:
        """One browser sign-in at a time in this process; callers share its outcome."""
        pending = self._pending
        if pending is not None and not pending.done.is_set():
            credential = await self._wait(pending, deadline)
            if _covers(_scope_of(credential), scope):
                return credential
        log.info("signing in to %s: %s", self._display, reason)
        pending = _PendingSignIn(scope)
        self._pending = pending
        now = trio.current_time()
        if self._nursery is None:
            pending.ends_at = min(deadline, now + self._options.auth_timeout)
            await self._run_sign_in(pending)
        else:
            pending.ends_at = now + self._options.auth_timeout
            self._nursery.start_soon(self._run_sign_in, pending)
        return await self._wait(pending, deadline)

    async def _run_sign_in(self, pending: _PendingSignIn) -> None:
        limit = pending.ends_at - trio.current_time()
        try:
            with trio.fail_at(pending.ends_at):
                pending.credential = await self._sign_in(pending.scope, explicit=False)
        except trio.TooSlowError:
            pending.error = AuthorizationRequired(
                f"the browser sign-in to {self._display} was not completed within {limit:.0f} s",
                self._display,
            )
        except UpstreamError as exc:
            pending.error = exc
        except Exception as exc:  # a bug must not take the relay down with it
            log.debug("the sign-in failed", exc_info=True)
            pending.error = OAuthError(f"signing in failed unexpectedly ({type(exc).__name__})")
        finally:
            if pending.credential is None and pending.error is None:  # cancelled
                pending.error = AuthorizationRequired(
                    f"the sign-in to {self._display} was interrupted", self._display
                )
            pending.done.set()

    # ------------------------------------------------------------------ the store

    async def _current(self, *, reload: bool = False) -> Credential | None:
        if reload or not self._loaded:
            found = await self._store_call(self._store.get, self._url)
            self._bearer_stored = found is not None and found.kind == "bearer"
            self._credential = found if found is not None and found.kind == "oauth" else None
            if self._credential is not None and self._credential.client:
                self._known_client = dict(self._credential.client)
            self._loaded = True
        return self._credential

    async def _save(self, credential: Credential) -> None:
        await self._store_call(self._store.put, self._url, credential)
        self._credential = credential
        self._known_client = dict(credential.client or {})
        self._bearer_stored = False
        self._loaded = True

    async def _drop(self) -> None:
        await self._store_call(self._store.delete, self._url)
        self._credential = None
        self._loaded = True

    @staticmethod
    async def _store_call(function: Callable[..., Any], *args: Any) -> Any:
        # A keyring may block (D-Bus, an unlock prompt): keep it off the trio thread.
        try:
            return await trio.to_thread.run_sync(function, *args)
        except CredentialStoreError as exc:
            raise OAuthError(str(exc)) from None

    def _lock_path(self, name: str) -> Path:
        digest = hashlib.sha256(self._key.encode()).hexdigest()[:24]
        return self._lock_dir / f"oauth-{digest}.{name}.lock"

    # ------------------------------------------------------------------ refresh

    async def _refreshed(self, stale: Credential, interactive: bool, deadline: float) -> Credential:
        """A fresh credential in place of ``stale`` (about to expire)."""
        try:
            return await self._refresh(stale)
        except _SignInNeeded as exc:
            if not interactive:
                raise AuthorizationRequired(f"{exc} ({self._display})", self._display) from None
            return await self._sign_in_shared(_scope_of(stale), deadline, str(exc))
        except UpstreamError as exc:
            if exc.transient and not stale.expired():
                log.info("could not refresh the token yet (%s); using it while it lasts", exc)
                return stale
            raise

    async def _refresh(self, stale: Credential) -> Credential:
        """Refresh once across tasks and processes; a newer token stored meanwhile wins."""
        async with self._refresh_lock:
            lock = _file_lock(
                self._lock_path("refresh"),
                REFRESH_LOCK_TIMEOUT,
                lambda: log.debug("waiting for another refresh of %s", self._display),
            )
            async with lock:
                current = await self._current(reload=True)
                if (
                    current is not None
                    and current.access_token != stale.access_token
                    and current.access_token not in self._refused
                    and not refresh_due(current)
                ):
                    return current
                base = current if current is not None and current.refresh_token else stale
                if not base.refresh_token:
                    raise _SignInNeeded("the token has expired and there is no refresh token")
                client = dict(base.client or {})
                endpoint = client.get("token_endpoint")
                if not isinstance(endpoint, str):
                    endpoint = (await self._discover()).server.token_endpoint
                check_endpoint_url(endpoint, "the token endpoint", allow_http=self._allow_http)
                resource = client.get("resource")
                # Once the server has rotated the refresh token, the new one must reach the
                # store whatever happens to the caller: shielded, with its own bound.
                with trio.CancelScope(shield=True):
                    try:
                        tokens = await self._token_request(
                            endpoint,
                            client,
                            grant_type="refresh_token",
                            refresh_token=base.refresh_token,
                            resource=resource if isinstance(resource, str) else None,
                        )
                    except _TokenEndpointError as exc:
                        # invalid_grant: expired or revoked; invalid_client: the registration
                        # is gone. Either way the stored tokens are dead weight.
                        if exc.error in ("invalid_grant", "invalid_client"):
                            await self._drop()
                            raise _SignInNeeded(
                                f"the authorization server refused the stored refresh token "
                                f"({exc}); the sign-in has expired or was revoked, so the stored "
                                "tokens were removed"
                            ) from None
                        raise OAuthError(f"refreshing the token failed ({exc})") from None
                    credential = Credential(
                        kind="oauth",
                        access_token=tokens.access_token,
                        # RFC 6749 §6: no new refresh token means the old one stays valid.
                        refresh_token=tokens.refresh_token or base.refresh_token,
                        expires_at=tokens.expires_at,
                        client={**client, "scope": tokens.scope or client.get("scope")},
                    )
                    await self._save(credential)
        self._issued[credential.access_token] = ("refresh", time.monotonic())
        log.info("refreshed the token for %s", self._display)
        return credential

    # ------------------------------------------------------------------ sign-in

    async def _sign_in(self, scope: str | None, *, explicit: bool) -> Credential:
        """The browser sign-in, once per server across processes: a process that finds another
        one signing in waits for it and takes its tokens."""
        started = time.time()
        lock = _file_lock(
            self._lock_path("sign-in"),
            self._options.auth_timeout + SIGN_IN_LOCK_GRACE,
            lambda: self._notify(
                f"another mcp-remote-py is signing in to {self._display}; waiting for it"
            ),
        )
        async with lock as waited:
            found = await self._current(reload=True)
            usable = (
                found is not None
                and not found.expired()
                and _covers(_scope_of(found), scope)
                and found.access_token not in self._refused
            )
            if found is not None and usable:
                if waited and found.saved_at >= started - 1:
                    self._notify(f"signed in to {self._display} by another mcp-remote-py")
                    return found
                if not explicit:
                    return found
            if waited and not explicit:
                raise AuthorizationRequired(
                    f"another mcp-remote-py was signing in to {self._display} and did not finish",
                    self._display,
                )
            return await self._browser_sign_in(scope)

    async def _browser_sign_in(self, scope: str | None) -> Credential:
        discovery = await self._discover()
        server = discovery.server
        server.check_pkce()
        scope = scope_union(scope) or self._initial_scope(discovery)
        known = self._known_client
        resource = self._resource(discovery)
        state = generate_token(43)
        verifier = generate_token(64)  # RFC 7636 §4.1: 43-128 unreserved characters
        callback = await self._listen(known, state)
        try:
            client = await self._registration(discovery, callback.redirect_uri, scope, known)
            url = prepare_grant_uri(
                server.authorization_endpoint,
                client["client_id"],
                "code",
                redirect_uri=callback.redirect_uri,
                scope=scope,
                state=state,
                code_challenge=create_s256_code_challenge(verifier),
                code_challenge_method="S256",
                resource=resource,
            )
            # Only the listener, the browser and the wait run in here: an error of the steps
            # before must not come out wrapped in an exception group.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(callback.serve)
                nursery.start_soon(self._present, str(url))
                params = await callback.wait()
                nursery.cancel_scope.cancel()
        finally:
            await callback.aclose()
        code = self._authorization_code(params, server)
        # The code is single-use: exchange it and store the result whatever the caller does.
        with trio.CancelScope(shield=True):
            tokens = await self._token_request(
                server.token_endpoint,
                client,
                grant_type="authorization_code",
                code=code,
                redirect_uri=callback.redirect_uri,
                code_verifier=verifier,
                resource=resource,
            )
            credential = Credential(
                kind="oauth",
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=tokens.expires_at,
                client={
                    **client,
                    "issuer": server.issuer,
                    "token_endpoint": server.token_endpoint,
                    "resource": resource,
                    "scope": tokens.scope or scope,
                },
            )
            await self._save(credential)
        self._issued[credential.access_token] = ("sign-in", time.monotonic())
        self._signed_in_at = trio.current_time()
        self._notify(f"signed in to {self._display}")
        return credential

    async def _listen(self, known: Mapping[str, Any], state: str) -> CallbackListener:
        """The callback listener: on the chosen port; else on the one the stored
        registration's redirect URI names (so that registration stays valid), or on any free
        one when that is taken."""
        if self._options.callback_port > 0:
            return await open_callback_listener(
                state, self._options.callback_port, on_discarded=self._notify
            )
        port = _registered_port(known)
        if port:
            try:
                return await open_callback_listener(state, port, on_discarded=self._notify)
            except OAuthError:
                log.info("port %d is taken; the sign-in listens on another one", port)
        return await open_callback_listener(state, 0, on_discarded=self._notify)

    async def _present(self, url: str) -> None:
        self._notify(
            f"sign in to {self._display} in your browser; if it does not open, open this URL on "
            f"this computer: {url}"
        )
        if not self._options.open_browser:
            return
        try:
            opened = await self._browser(url)
        except Exception as exc:  # the URL is shown: a failed browser is no reason to stop
            log.debug("opening the browser failed: %r", exc)
            opened = False
        if not opened:
            self._notify("could not open a browser: open the URL above yourself")

    def _authorization_code(self, params: Mapping[str, str], server: AuthorizationServer) -> str:
        error = params.get("error")
        if error is not None:
            detail = _text(params.get("error_description"))
            text = f"{_text(error)}{': ' + detail if detail else ''}"
            if error == "access_denied":
                raise AuthorizationRequired(
                    f"the sign-in to {self._display} was declined ({text})", self._display
                )
            raise OAuthError(f"the authorization server refused the sign-in ({text})")
        # RFC 9207 §2.4: an iss that is not the issuer means the answer came from another
        # authorization server (a mix-up attack); a server that promises iss must send it.
        iss = params.get("iss")
        if (iss is not None or server.iss_parameter) and (
            iss is None or iss.rstrip("/") != server.issuer.rstrip("/")
        ):
            raise OAuthError(
                f"the sign-in answer names the issuer {_text(iss)!r}, not {server.issuer!r}; it "
                "was refused (RFC 9207)"
            )
        code = params.get("code")
        if not code:
            raise OAuthError("the sign-in answer carried no authorization code")
        return code

    # ------------------------------------------------------------------ discovery and choices

    @property
    def _allow_http(self) -> bool:
        return self._options.allow_http

    def _learn(self, challenge: Challenge | None) -> None:
        if challenge is not None:
            self._challenge = challenge

    async def _discover(self) -> Discovery:
        hint = self._challenge.resource_metadata if self._challenge is not None else None
        if self._discovery is None or hint != self._discovery_hint:
            self._discovery = await discover(
                self._client, self._url, resource_metadata_url=hint, allow_http=self._allow_http
            )
            self._discovery_hint = hint
        return self._discovery

    async def _probe(self) -> None:
        """Ask the server, without a token, for its 401 challenge (for ``login``)."""
        request = httpx.Request(
            "POST",
            self._url,
            headers={
                "Accept": "application/json, text/event-stream",
                "Content-Type": "application/json",
                "Accept-Encoding": "identity",
                "User-Agent": self._client.headers.get("User-Agent", "mcp-remote-py"),
            },
            content=b'{"jsonrpc":"2.0","id":"mcp-remote-py-auth-probe","method":"ping"}',
            extensions={"timeout": httpx.Timeout(TOKEN_TIMEOUT).as_dict()},
        )
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise describe_network_error(exc, request.url, NetworkOptions()) from exc
        await response.aclose()
        challenge = bearer_challenge(response.headers) if response.status_code == 401 else None
        if challenge is None:
            self._notify(
                f"{self._display} answered HTTP {response.status_code} without asking for a "
                "sign-in; looking for its authorization server anyway"
            )
            challenge = Challenge("bearer")
        self._challenge = challenge

    def _initial_scope(self, discovery: Discovery) -> str | None:
        # 2025-11-25 §Scope Selection Strategy: the challenge's scope, else the protected
        # resource's scopes_supported, else none at all.
        if self._options.scope:
            return scope_union(self._options.scope)
        if self._challenge is not None and self._challenge.scope:
            return self._challenge.scope
        if discovery.scopes_supported:
            return scope_union(*discovery.scopes_supported)
        return None

    def _resource(self, discovery: Discovery) -> str | None:
        # 2025-11-25 §Resource Parameter Implementation: MUST be sent on the authorization and
        # token requests; --disable-resource-parameter exists for servers that reject it.
        if not self._options.send_resource:
            return None
        if self._options.resource:
            try:
                return canonical_resource(self._options.resource)
            except ValueError:
                raise OAuthError(f"--resource {self._options.resource!r} is not a URL") from None
        return discovery.resource

    async def _registration(
        self,
        discovery: Discovery,
        redirect_uri: str,
        scope: str | None,
        old: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The client to sign in as, in the order of 2025-11-25 §Client Registration
        Approaches: pre-registered, a Client ID Metadata Document, Dynamic Client
        Registration; a registration stored earlier is reused."""
        server = discovery.server
        options = self._options
        same_issuer = old.get("issuer") == server.issuer
        kind = old.get("registration")
        if options.client_id:
            secret = options.client_secret or None
            if secret is None and kind == "static" and old.get("client_id") == options.client_id:
                secret = old.get("client_secret") or None  # stored by an earlier auth login
            return {
                "registration": "static",
                "client_id": options.client_id,
                "client_secret": secret,
                "token_endpoint_auth_method": static_auth_method(
                    secret is not None, server.token_endpoint_auth_methods
                ),
                "redirect_uris": [redirect_uri],
            }
        if same_issuer and kind == "static" and isinstance(old.get("client_id"), str):
            return {**_registration_fields(old), "redirect_uris": [redirect_uri]}
        if same_issuer and kind == "metadata_document" and server.client_id_metadata_documents:
            return {**_registration_fields(old), "redirect_uris": [redirect_uri]}
        if options.client_metadata_url:
            if server.client_id_metadata_documents:
                url = _client_metadata_url(options.client_metadata_url)
                return {
                    "registration": "metadata_document",
                    "client_id": url,
                    "token_endpoint_auth_method": "none",
                    "redirect_uris": [redirect_uri],
                }
            self._notify(
                f"the authorization server {server.issuer} does not support client ID metadata "
                "documents; registering mcp-remote-py with it instead"
            )
        if (
            same_issuer
            and kind == "dynamic"
            and redirect_uri in (old.get("redirect_uris") or [])
            and not _secret_expired(old)
            and (old.get("registered_scope") is None or _covers(old["registered_scope"], scope))
        ):
            return _registration_fields(old)
        if server.registration_endpoint is None:
            raise OAuthError(
                f"the authorization server {server.issuer} offers no way for mcp-remote-py to "
                "register as a client (no registration_endpoint"
                + (
                    ", no client ID metadata documents)"
                    if not server.client_id_metadata_documents
                    else ")"
                ),
                "Register a client with the server's operator and pass --oauth-client-id ID "
                "(and --oauth-client-secret-env VAR for a confidential client)",
            )
        register_scope = scope_union(scope, *(discovery.scopes_supported or ()))
        return await self._register(server, redirect_uri, register_scope, discovery)

    async def _register(
        self,
        server: AuthorizationServer,
        redirect_uri: str,
        scope: str | None,
        discovery: Discovery,
    ) -> dict[str, Any]:
        """RFC 7591 Dynamic Client Registration."""
        assert server.registration_endpoint is not None
        method = registration_auth_method(server.token_endpoint_auth_methods)
        metadata: dict[str, Any] = {
            "client_name": self._options.client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "software_id": "mcp-remote-py",
            "software_version": __version__,
        }
        if scope:
            metadata["scope"] = scope
        status, body = await self._post(
            server.registration_endpoint,
            json.dumps(metadata).encode(),
            {"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if status not in (200, 201) or not isinstance(data, dict):
            detail = ""
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                detail = f": {_text(data['error'])}"
                if data.get("error_description"):
                    detail += f" ({_text(data['error_description'])})"
            if discovery.resource_metadata_url is None and server.metadata_url is None:
                raise OAuthError(
                    f"{self._display} asked for authorization but offers no OAuth: no protected "
                    "resource metadata, no authorization server metadata, and its default "
                    f"registration endpoint answered HTTP {status}",
                    "If the server takes a fixed token, store it with `mcp-remote-py auth set "
                    f"{self._display}`, or pass --header 'Authorization: Bearer ${{TOKEN}}'",
                )
            raise OAuthError(
                f"the authorization server refused to register mcp-remote-py as a client "
                f"(HTTP {status}{detail})",
                "Register a client with the server's operator and pass --oauth-client-id ID",
                transient=status >= 500,
            )
        client_id = data.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise OAuthError("the registration answer has no client_id")
        secret = data.get("client_secret")
        secret = secret if isinstance(secret, str) and secret else None
        granted_method = data.get("token_endpoint_auth_method")
        if not isinstance(granted_method, str):
            granted_method = method if secret is None or method != "none" else "client_secret_basic"
        redirect_uris = data.get("redirect_uris")
        registered_scope = data.get("scope")
        log.info("registered with %s as client %s", server.issuer, client_id)
        return {
            "registration": "dynamic",
            "client_id": client_id,
            "client_secret": secret,
            "client_secret_expires_at": data.get("client_secret_expires_at"),
            "token_endpoint_auth_method": granted_method,
            "redirect_uris": redirect_uris if isinstance(redirect_uris, list) else [redirect_uri],
            "registered_scope": registered_scope if isinstance(registered_scope, str) else scope,
            "issuer": server.issuer,
        }

    # ------------------------------------------------------------------ HTTP

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST without following redirects (a secret never follows one); (status, body)."""
        headers = {
            **headers,
            "Accept-Encoding": "identity",
            "User-Agent": self._client.headers.get("User-Agent", "mcp-remote-py"),
        }
        request = httpx.Request(
            "POST",
            url,
            headers=headers,
            content=body,
            extensions={"timeout": httpx.Timeout(TOKEN_TIMEOUT).as_dict()},
        )
        try:
            with trio.fail_after(TOKEN_TIMEOUT):
                response = await self._client.send(request, follow_redirects=False)
        except trio.TooSlowError:
            raise OAuthError(
                f"{display_url(request.url)} did not answer within {TOKEN_TIMEOUT:g} s",
                transient=True,
            ) from None
        except httpx.TransportError as exc:
            raise describe_network_error(exc, request.url, NetworkOptions()) from exc
        return response.status_code, response.content

    async def _token_request(
        self, endpoint: str, client: Mapping[str, Any], **params: Any
    ) -> _Tokens:
        """A token endpoint request (RFC 6749 §4.1.3 / §6), authenticated as registered."""
        grant_type = params.pop("grant_type")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        client_id = str(client["client_id"])
        secret = client.get("client_secret") or None
        method = client.get("token_endpoint_auth_method") or "none"
        if method == "client_secret_basic" and secret:
            # client_id in the body too: RFC 6749 allows it, and many servers want it.
            params["client_id"] = client_id
            auth = ClientAuth(client_id, secret, _client_secret_basic)
        elif method == "client_secret_post" and secret:
            auth = ClientAuth(client_id, secret, "client_secret_post")
        else:
            auth = ClientAuth(client_id, None, "none")
        body = prepare_token_request(grant_type, **params)
        _, headers, body = auth.prepare("POST", endpoint, headers, body)
        status, answer = await self._post(endpoint, str(body).encode(), headers)
        return parse_token_response(status, answer, time.time())


# ---------------------------------------------------------------------- small helpers


def _header(credential: Credential) -> str:
    return f"Bearer {credential.access_token}"


def _token_of(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _scope_of(credential: Credential) -> str | None:
    scope = (credential.client or {}).get("scope")
    return scope if isinstance(scope, str) else None


def _registered_port(known: Mapping[str, Any]) -> int:
    for uri in known.get("redirect_uris") or []:
        if not isinstance(uri, str):
            continue
        parts = urlsplit(uri)
        try:
            port = parts.port
        except ValueError:
            continue
        if parts.hostname == "127.0.0.1" and port:
            return port
    return 0


def _registration_fields(old: Mapping[str, Any]) -> dict[str, Any]:
    keep = (
        "registration",
        "client_id",
        "client_secret",
        "client_secret_expires_at",
        "token_endpoint_auth_method",
        "redirect_uris",
        "registered_scope",
    )
    return {k: old[k] for k in keep if k in old}


def _secret_expired(old: Mapping[str, Any]) -> bool:
    # RFC 7591 §3.2.1: 0 means the secret does not expire.
    expires = old.get("client_secret_expires_at")
    return isinstance(expires, (int, float)) and 0 < expires <= time.time() + 60


def _client_metadata_url(url: str) -> str:
    """2025-11-25 §Client ID Metadata Documents: an https URL with a path (http is accepted on
    loopback, for local testing)."""
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback_host(parts.hostname or "")
    )
    if not secure or not parts.hostname or parts.path in ("", "/") or parts.fragment:
        raise OAuthError(
            f"--client-metadata-url {url!r} is not an https:// URL with a path",
            "A client ID metadata document URL looks like https://example.com/client.json",
        )
    return url
