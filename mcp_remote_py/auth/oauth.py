"""OAuth 2.1 for MCP servers: sign in (browser, device code or client credentials), keep the
token fresh, share it.

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

``OAuthOptions.grant`` says how a sign-in gets its tokens: ``authorization_code`` (the
browser, below), ``device_code`` (RFC 8628: the user enters a code shown by ``prompt``, default
``notify``, on another device, while this polls; for a machine without a browser) or
``client_credentials`` (RFC 6749 §4.4: a pre-registered confidential client asks for a token
itself; no user, so "signing in" again is never interactive, and a token that expires or is
refused is replaced by a new one, once per refusal). The bounds, the sharing and the locks are
the same for all three.

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

* discovery from the 401's ``WWW-Authenticate`` (``challenge.py``, ``discovery.py``);
* the client: pre-registered (``client_id``, optional secret), else a Client ID Metadata
  Document URL when the authorization server advertises support, else Dynamic Client
  Registration (RFC 7591); the registration is kept in the stored credential and reused
  (``registration.py``);
* authorization code with PKCE S256 (refused when the server does not list S256), ``state``
  checked, RFC 8707 ``resource`` on the authorization and token requests, RFC 9207 ``iss``
  checked (``token_flow.py``); token endpoint authentication ``none``, ``client_secret_post``
  or ``client_secret_basic`` (``token_endpoint.py``);
* tokens in the credential store (kind ``oauth``); a refresh shortly before expiry and on 401, a
  rotated refresh token saved before anything else can happen (the exchange is shielded from
  cancellation), ``invalid_grant`` dropping the tokens (``token_flow.py``);
* several processes: one browser sign-in per server at a time (the others wait for its tokens)
  and one refresh at a time, through lock files under the user state directory (or
  ``$MCP_REMOTE_PY_CONFIG_DIR/locks``; ``locks.py``);
* no loops: a token the server refuses right after a sign-in is an error, not another sign-in;
  a step-up to a scope set already tried is an error, not another browser tab (here).

The HTTP client is the relay's (proxies, TLS), but every request here is built here: the user's
``--header`` values never travel to the authorization server. No token, secret, verifier or
code is ever logged or put in a message.

The stored credential's ``client`` holds the registration and where its tokens come from:
``registration`` (``static``, ``metadata_document`` or ``dynamic``), ``client_id``,
``client_secret`` (confidential clients), ``client_secret_expires_at``,
``token_endpoint_auth_method``, ``redirect_uris``, ``registered_scope``, and ``issuer``,
``token_endpoint``, ``resource`` (None when not sent) and ``scope`` (granted); and
``registrations``: every registration this server's sign-ins have used, by the issuer of the
authorization server that issued it (2026-07-28 §Authorization Server Binding, SEP-2352), so
a registration is only ever presented to its own authorization server.

When the server refuses a token, its protected resource metadata is read again: if it now
names another authorization server than the one the tokens came from, they are dropped (not
refreshed, not sent again) and the sign-in goes to the new one, registering anew there (SEP-2352);
the "refused moments after a sign-in" guard does not apply to that sign-in.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

from ..core.errors import UpstreamError
from .challenge import bearer_challenge
from .credential import Credential
from .errors import AuthorizationRequired, OAuthError
from .grants import secret_advice
from .oauth_options import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, DEVICE_CODE, OAuthOptions
from .scope import covers, granted_scope, scope_union
from .store import CredentialStore
from .token_endpoint import refresh_due
from .token_flow import Browser, Notify, SignInNeeded, TokenFlow

__all__ = ["AuthorizationRequired", "OAuthError", "OAuthOptions", "OAuthSession"]

log = logging.getLogger("mcp_remote_py")

# A token refused within this many seconds of being issued is not refreshed or re-issued again.
RECENT = 60.0


@dataclass
class _PendingSignIn:
    scope: str | None
    done: trio.Event = field(default_factory=trio.Event)
    credential: Credential | None = None
    error: UpstreamError | None = None
    ends_at: float = math.inf


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
        prompt: Notify | None = None,
        lock_dir: Path | None = None,
    ) -> None:
        self._options = options or OAuthOptions()
        self._flow = TokenFlow(  # ValueError for a bad URL
            server_url,
            client,
            self._options,
            store=store,
            browser=browser,
            notify=notify,
            prompt=prompt,
            lock_dir=lock_dir,
        )
        self._display = self._flow.display
        self._nursery = nursery
        self._pending: _PendingSignIn | None = None
        self._step_ups: set[frozenset[str]] = set()

    # ------------------------------------------------------------------ the API

    @property
    def server_url(self) -> str:
        return self._flow.server_url

    async def authorization_header(
        self, *, interactive: bool = False, wait_for_sign_in: float | None = None
    ) -> str | None:
        """``Bearer <token>`` for the next request, or None while there is no token."""
        deadline = self._deadline(wait_for_sign_in)
        credential = await self._flow.current()
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
        self._flow.learn(bearer_challenge(headers))
        token = _token_of(sent)
        if token is not None:
            self._flow.refused.add(token)
        reason = "the server requires signing in"
        moved = False
        current = await self._flow.current(reload=True)
        if current is not None:
            if current.access_token not in self._flow.refused and not refresh_due(current):
                return _header(current)  # another task or process has a newer token
            # SEP-2352: tokens (and a refresh) from an authorization server the MCP server no
            # longer names are worthless there, and must not be sent again: drop them and
            # sign in with the new one, which registers the client anew.
            why = await self._flow.moved_from(current)
            if why is not None:
                await self._flow.forget_tokens(why)
                reason, moved = why, True
            elif (current.client or {}).get("grant") == CLIENT_CREDENTIALS:
                # No user to ask: a new token, got the same way. Once per refusal: a token
                # got because the one before was refused, and refused in turn, is final.
                if self._recently_issued(token) == "renewal":
                    raise OAuthError(
                        f"{self._display} refused the token its authorization server issued "
                        "to this client moments ago, so asking for another would not help",
                        "The client may lack a scope or be for another resource: check "
                        "--resource, or ask the server's operator",
                    )
                return _header(await self._flow.refresh(current, how="renewal"))
            elif self._recently_issued(token) == "refresh":
                reason = "the server refused the token that was just refreshed"
            elif current.refresh_token:
                try:
                    return _header(await self._flow.refresh(current))
                except SignInNeeded as exc:
                    reason = str(exc)
            else:
                reason = "the server refuses the stored token, and there is no refresh token"
        elif self._flow.bearer_stored:
            raise AuthorizationRequired(
                f"{self._display} refused the token stored with `mcp-remote-py auth set`",
                self._display,
                f"Store a new one with `mcp-remote-py auth set {self._display}`, or remove it "
                f"(`mcp-remote-py auth delete {self._display}`) and sign in with "
                f"`mcp-remote-py auth login {self._display}`",
            )
        if not interactive:
            raise AuthorizationRequired(
                f"{reason} ({self._display})", self._display, self._login_hint()
            )
        if not moved and trio.current_time() - self._flow.signed_in_at < RECENT:
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
        self._flow.learn(challenge)
        current = await self._flow.current(reload=True)
        pending = self._pending
        if pending is not None and not pending.done.is_set():
            await self._wait(pending, deadline)  # another request's step-up may cover this one
            current = self._flow.credential
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
            and covers(granted if isinstance(granted, str) else None, needed)
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
        """Sign in now (``mcp-remote-py auth login``), whatever is stored: in the browser, or
        with a device code (``grant``).

        When another process is signing in to the same server, waits for it and takes its
        tokens. Asks the server first, without a token, for its 401 challenge.
        """
        limit = self._options.auth_timeout
        with trio.move_on_after(limit) as scope:
            if self._flow.challenge is None:
                await self._flow.probe()
            return await self._flow.sign_in(self._options.scope, explicit=True)
        assert scope.cancelled_caught
        where = (
            "enter the code before it expires"
            if self._flow.grant == DEVICE_CODE
            else "finish the sign-in in the browser"
        )
        raise AuthorizationRequired(
            f"the sign-in to {self._display} was not completed within {limit:g} s",
            self._display,
            f"Run the command again and {where} (--auth-timeout S gives more time)",
        )

    # ------------------------------------------------------------------ waiting

    def _recently_issued(self, token: str | None) -> str | None:
        """How this process got ``token`` ("sign-in", "refresh") if under a minute ago."""
        how, when = self._flow.issued.get(token or "", ("", -math.inf))
        return how if how and time.monotonic() - when < RECENT else None

    @staticmethod
    def _deadline(wait_for_sign_in: float | None) -> float:
        if wait_for_sign_in is None:
            return math.inf
        return trio.current_time() + wait_for_sign_in

    def _login_hint(self) -> str:
        if self._flow.grant == CLIENT_CREDENTIALS:  # no one to sign in: the client's secret
            return "Check --oauth-client-id and its secret. " + secret_advice(self._display)
        return f"Run `{self._flow.login_command}` to sign in"

    async def _wait(self, pending: _PendingSignIn, deadline: float) -> Credential:
        with trio.move_on_at(deadline):
            await pending.done.wait()
        if not pending.done.is_set():
            left = max(0.0, pending.ends_at - trio.current_time())
            device = self._flow.device
            if device is not None:
                # The user code is meant to be shown: the client's error message is where a
                # desktop user will see it.
                raise AuthorizationRequired(
                    f"waiting for the sign-in to {self._display}: {device.reminder()}",
                    self._display,
                    f"Enter the code (the sign-in waits for it about {left:.0f} s more), then "
                    f"try again; or run `{self._flow.login_command}`",
                )
            if self._flow.grant != AUTHORIZATION_CODE:
                raise AuthorizationRequired(
                    f"waiting for the sign-in to {self._display}",
                    self._display,
                    f"Try again in a moment (the sign-in goes on about {left:.0f} s more); or "
                    f"run `{self._flow.login_command}`",
                )
            raise AuthorizationRequired(
                f"waiting for the browser sign-in to {self._display}",
                self._display,
                f"Finish signing in in the browser (the sign-in stays open about {left:.0f} s "
                f"more), then try again; or run `{self._flow.login_command}`",
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
            if covers(granted_scope(credential), scope):
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
                pending.credential = await self._flow.sign_in(pending.scope, explicit=False)
        except trio.TooSlowError:
            what = "browser sign-in" if self._flow.grant == AUTHORIZATION_CODE else "sign-in"
            pending.error = AuthorizationRequired(
                f"the {what} to {self._display} was not completed within {limit:.0f} s",
                self._display,
                self._login_hint(),
            )
        except UpstreamError as exc:
            pending.error = exc
        except Exception as exc:  # a bug must not take the relay down with it
            log.debug("the sign-in failed", exc_info=True)
            pending.error = OAuthError(f"signing in failed unexpectedly ({type(exc).__name__})")
        finally:
            if pending.credential is None and pending.error is None:  # cancelled
                pending.error = AuthorizationRequired(
                    f"the sign-in to {self._display} was interrupted",
                    self._display,
                    self._login_hint(),
                )
            pending.done.set()

    # ------------------------------------------------------------------ refresh

    async def _refreshed(self, stale: Credential, interactive: bool, deadline: float) -> Credential:
        """A fresh credential in place of ``stale`` (about to expire)."""
        try:
            return await self._flow.refresh(stale)
        except SignInNeeded as exc:
            if not interactive:
                raise AuthorizationRequired(
                    f"{exc} ({self._display})", self._display, self._login_hint()
                ) from None
            return await self._sign_in_shared(granted_scope(stale), deadline, str(exc))
        except UpstreamError as exc:
            if exc.transient and not stale.expired():
                log.info("could not refresh the token yet (%s); using it while it lasts", exc)
                return stale
            raise


def _header(credential: Credential) -> str:
    return f"Bearer {credential.access_token}"


def _token_of(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
