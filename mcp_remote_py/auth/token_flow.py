"""One server's tokens: read from the store, refreshed, or got by a sign-in.

``TokenFlow`` does the work ``OAuthSession`` (``oauth.py``) asks for, and decides nothing about
when: it discovers the authorization server (``discovery.py``), picks the client
(``registration.py``), signs in with the grant ``OAuthOptions.grant`` names (the authorization
code grant with PKCE S256 through a loopback callback, ``callback.py``; or, with no browser
here, the device authorization grant or client credentials, ``grants.py``), refreshes, and
keeps the tokens in the credential store. A sign-in and a refresh happen once per server across
processes (``locks.py``): a process that finds another one at it waits and takes its tokens.

Tokens got with client credentials come without a refresh token: "refreshing" them is asking
for a new one the same way, which needs no user.

A pre-registered client's secret stored with ``auth set-client-secret`` (a credential of kind
``client``) is used when the options name no secret of their own; it stays stored when a
refresh token is refused and the tokens are dropped.

The authorization code and the device code are single-use and a rotated refresh token replaces
the old one: each exchange and the saving of its result are shielded from cancellation, so
tokens the server has issued always reach the store.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import trio

# authlib's protocol pieces: token generation, the S256 challenge and the authorization request
# URI.
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

from ..core.errors import UpstreamError
from ..shell.net import NetworkOptions, describe_network_error, display_url
from .callback import CallbackListener, issuer_problem, open_callback_listener, system_browser
from .challenge import Challenge, bearer_challenge
from .credential import Credential, canonical_server_key
from .discovery import (
    AuthorizationServer,
    Discovery,
    canonical_resource,
    check_endpoint_url,
    discover,
)
from .errors import AuthorizationRequired, OAuthError
from .grants import (
    DeviceCode,
    client_credentials,
    device_endpoint,
    poll_for_tokens,
    request_device_code,
    secret_advice,
)
from .locks import (
    REFRESH_LOCK_TIMEOUT,
    SIGN_IN_LOCK_GRACE,
    default_lock_dir,
    file_lock,
    lock_path,
)
from .oauth_options import CLIENT_CREDENTIALS, DEVICE_CODE, OAuthOptions
from .registration import (
    client_for_sign_in,
    registered_port,
    registrations_by_issuer,
    remember_registration,
)
from .scope import covers, granted_scope, scope_union
from .store import CredentialStore, CredentialStoreError
from .token_endpoint import (
    TOKEN_TIMEOUT,
    TokenEndpointError,
    Tokens,
    error_text,
    refresh_due,
    token_request,
)

__all__ = ["Browser", "Notify", "SignInNeeded", "TokenFlow"]

log = logging.getLogger("mcp_remote_py")

Browser = Callable[[str], Awaitable[bool]]
Notify = Callable[[str], None]


class SignInNeeded(Exception):
    """The stored tokens cannot be used or refreshed; the message says why."""


class TokenFlow:
    """The tokens of one MCP server, and the flows that get them; see the module docstring."""

    def __init__(
        self,
        server_url: str,
        client: httpx.AsyncClient,
        options: OAuthOptions,
        *,
        store: CredentialStore | None = None,
        browser: Browser | None = None,
        notify: Notify | None = None,
        prompt: Notify | None = None,
        lock_dir: Path | None = None,
    ) -> None:
        self._key = canonical_server_key(server_url)  # ValueError for a bad URL
        self._url = server_url.strip()
        self._display = display_url(httpx.URL(self._url))
        self._client = client
        self._options = options
        self._store = store if store is not None else CredentialStore()
        self._browser: Browser = browser or system_browser
        self._notify: Notify = notify or log.warning
        # Where the device grant's code is shown (default: with the other notices).
        self._prompt: Notify = prompt or self._notify
        self._lock_dir = lock_dir if lock_dir is not None else default_lock_dir()
        self.credential: Credential | None = None
        # The last client registration seen, kept when dropped tokens take the credential.
        self._known_client: dict[str, Any] = {}
        # A pre-registered client's (id, secret) stored with `auth set-client-secret`.
        self._stored_client: tuple[str, str] | None = None
        # The device grant's code while the user is to enter it (for the answers meanwhile).
        self.device: DeviceCode | None = None
        self.bearer_stored = False
        self._loaded = False
        self.challenge: Challenge | None = None
        self._discovery: Discovery | None = None
        self._discovery_hint: str | None = None
        self._refresh_lock = trio.Lock()
        # How and when each access token of this process came to be ("refresh", "sign-in"),
        # and the ones the server refused: what breaks the loops mcp-remote's users meet.
        self.issued: dict[str, tuple[str, float]] = {}
        self.refused: set[str] = set()
        self.signed_in_at = -math.inf  # trio time of this process's last browser sign-in

    @property
    def server_url(self) -> str:
        return self._url

    @property
    def display(self) -> str:
        """The server's URL as messages show it."""
        return self._display

    @property
    def grant(self) -> str:
        return self._options.grant

    @property
    def login_command(self) -> str:
        """The command that signs in to this server ahead of time, the way this flow does."""
        device = " --device" if self._options.grant == DEVICE_CODE else ""
        return f"mcp-remote-py auth login {self._display}{device}"

    # ------------------------------------------------------------------ the store

    async def current(self, *, reload: bool = False) -> Credential | None:
        """The stored OAuth credential, read from the store once (again with ``reload``)."""
        if reload or not self._loaded:
            found = await self._store_call(self._store.get, self._url)
            self.bearer_stored = found is not None and found.kind == "bearer"
            self.credential = found if found is not None and found.kind == "oauth" else None
            self._stored_client = None
            if found is not None and found.kind == "client":
                client_id = (found.client or {}).get("client_id")
                if isinstance(client_id, str) and client_id:
                    self._stored_client = (client_id, found.access_token)
            if self.credential is not None and self.credential.client:
                self._known_client = dict(self.credential.client)
            self._loaded = True
        return self.credential

    async def _save(self, credential: Credential) -> None:
        await self._store_call(self._store.put, self._url, credential)
        self.credential = credential
        self._known_client = dict(credential.client or {})
        self.bearer_stored = False
        self._loaded = True

    async def _drop(self, *, keep_client: bool = False) -> None:
        """Remove the stored tokens; with ``keep_client``, a pre-registered client's secret
        stays stored (as a credential of kind ``client``) for the next sign-in."""
        known = self._known_client
        client_id, secret = known.get("client_id"), known.get("client_secret")
        if (
            keep_client
            and known.get("registration") == "static"
            and isinstance(client_id, str)
            and isinstance(secret, str)
            and secret
        ):
            kept = Credential(
                kind="client",
                access_token=secret,
                client={"registration": "static", "client_id": client_id},
            )
            await self._store_call(self._store.put, self._url, kept)
            self._stored_client = (client_id, secret)
        else:
            await self._store_call(self._store.delete, self._url)
        self.credential = None
        self._loaded = True

    def _client_options(self) -> OAuthOptions:
        """The options, with the client id and secret stored by `auth set-client-secret` where
        they name none of their own (or the same client without its secret)."""
        options = self._options
        stored = self._stored_client
        if stored is None or options.client_secret:
            return options
        client_id, secret = stored
        if options.client_id and options.client_id != client_id:
            return options
        return replace(options, client_id=client_id, client_secret=secret)

    @staticmethod
    async def _store_call(function: Callable[..., Any], *args: Any) -> Any:
        # A keyring may block (D-Bus, an unlock prompt): keep it off the trio thread.
        try:
            return await trio.to_thread.run_sync(function, *args)
        except CredentialStoreError as exc:
            raise OAuthError(str(exc)) from None

    # ------------------------------------------------------------------ refresh

    async def refresh(self, stale: Credential, *, how: str = "refresh") -> Credential:
        """Refresh once across tasks and processes; a newer token stored meanwhile wins.

        A token got with client credentials is replaced by a new one got the same way (no
        refresh token needed). ``how`` is what ``issued`` records for the new token."""
        async with self._refresh_lock:
            lock = file_lock(
                lock_path(self._lock_dir, self._key, "refresh"),
                REFRESH_LOCK_TIMEOUT,
                lambda: log.debug("waiting for another refresh of %s", self._display),
            )
            async with lock:
                current = await self.current(reload=True)
                if (
                    current is not None
                    and current.access_token != stale.access_token
                    and current.access_token not in self.refused
                    and not refresh_due(current)
                ):
                    return current
                base = current if current is not None and current.refresh_token else stale
                if not base.refresh_token and (base.client or {}).get("grant") == (
                    CLIENT_CREDENTIALS
                ):
                    credential = await self._renew_client_credentials(base)
                    self.issued[credential.access_token] = (how, time.monotonic())
                    log.info("got a new token for %s (client credentials)", self._display)
                    return credential
                if not base.refresh_token:
                    raise SignInNeeded("the token has expired and there is no refresh token")
                client = dict(base.client or {})
                endpoint = client.get("token_endpoint")
                if not isinstance(endpoint, str):
                    endpoint = (await self._discover()).server.token_endpoint
                check_endpoint_url(
                    endpoint, "the token endpoint", allow_http=self._options.allow_http
                )
                resource = client.get("resource")
                # Once the server has rotated the refresh token, the new one must reach the
                # store whatever happens to the caller: shielded, with its own bound.
                with trio.CancelScope(shield=True):
                    try:
                        tokens = await token_request(
                            self._client,
                            endpoint,
                            client,
                            grant_type="refresh_token",
                            refresh_token=base.refresh_token,
                            resource=resource if isinstance(resource, str) else None,
                        )
                    except TokenEndpointError as exc:
                        # invalid_grant: expired or revoked; invalid_client: the registration
                        # is gone. Either way the stored tokens are dead weight.
                        if exc.error in ("invalid_grant", "invalid_client"):
                            await self._drop(keep_client=exc.error == "invalid_grant")
                            raise SignInNeeded(
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
        self.issued[credential.access_token] = (how, time.monotonic())
        log.info("refreshed the token for %s", self._display)
        return credential

    async def _renew_client_credentials(self, base: Credential) -> Credential:
        """A new client credentials token in place of ``base``'s (under the refresh lock)."""
        client = dict(base.client or {})
        options = self._client_options()
        if options.client_secret and options.client_id == client.get("client_id"):
            client["client_secret"] = options.client_secret  # a secret rotated since
        endpoint = client.get("token_endpoint")
        if not isinstance(endpoint, str):
            endpoint = (await self._discover()).server.token_endpoint
        check_endpoint_url(endpoint, "the token endpoint", allow_http=self._options.allow_http)
        resource = client.get("resource")
        scope = client.get("scope")
        with trio.CancelScope(shield=True):
            tokens = await client_credentials(
                self._client,
                endpoint,
                client,
                scope=scope if isinstance(scope, str) else None,
                resource=resource if isinstance(resource, str) else None,
                display=self._display,
            )
            credential = Credential(
                kind="oauth",
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=tokens.expires_at,
                client={**client, "scope": tokens.scope or client.get("scope")},
            )
            await self._save(credential)
        return credential

    # ------------------------------------------------------------------ sign-in

    async def sign_in(self, scope: str | None, *, explicit: bool) -> Credential:
        """The sign-in (browser, device code or client credentials, as ``grant`` says), once per
        server across processes: a process that finds another one signing in waits for it and
        takes its tokens."""
        started = time.time()
        lock = file_lock(
            lock_path(self._lock_dir, self._key, "sign-in"),
            self._options.auth_timeout + SIGN_IN_LOCK_GRACE,
            lambda: self._notify(
                f"another mcp-remote-py is signing in to {self._display}; waiting for it"
            ),
        )
        async with lock as waited:
            found = await self.current(reload=True)
            usable = (
                found is not None
                and not found.expired()
                and covers(granted_scope(found), scope)
                and found.access_token not in self.refused
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
            if self._options.grant == DEVICE_CODE:
                return await self._device_sign_in(scope)
            if self._options.grant == CLIENT_CREDENTIALS:
                return await self._client_credentials_sign_in(scope)
            return await self._browser_sign_in(scope)

    async def _device_sign_in(self, scope: str | None) -> Credential:
        """RFC 8628: a code the user enters on another device, while this polls for tokens."""
        discovery = await self._discover()
        server = discovery.server
        endpoint = device_endpoint(server, allow_http=self._options.allow_http)
        scope = scope_union(scope) or self._initial_scope(discovery)
        known = self._known_client
        resource = self._resource(discovery)
        client = await client_for_sign_in(
            self._client,
            discovery,
            self._client_options(),
            None,
            scope,
            known,
            display=self._display,
            notify=self._notify,
            grant=DEVICE_CODE,
        )
        device = await request_device_code(
            self._client,
            endpoint,
            client,
            scope=scope,
            resource=resource,
            allow_http=self._options.allow_http,
        )

        async def keep(tokens: Tokens) -> Credential:
            credential = self._signed_in(
                tokens, client, server, resource, scope, known, grant=DEVICE_CODE
            )
            await self._save(credential)
            return credential

        self.device = device
        self._prompt(device.prompt(self._display))
        try:
            credential: Credential = await poll_for_tokens(
                self._client,
                server.token_endpoint,
                client,
                device,
                resource=resource,
                display=self._display,
                login_command=self.login_command,
                keep=keep,
            )
        finally:
            self.device = None
        return self._done(credential)

    async def _client_credentials_sign_in(self, scope: str | None) -> Credential:
        """RFC 6749 §4.4: a token for the pre-registered client itself; no user, no browser."""
        discovery = await self._discover()
        server = discovery.server
        scope = scope_union(scope) or self._initial_scope(discovery)
        known = self._known_client
        resource = self._resource(discovery)
        options = self._client_options()
        mine = registrations_by_issuer(known).get(server.issuer, {})
        if not options.client_id and mine.get("registration") != "static":
            raise OAuthError(
                f"--oauth-client-credentials needs the id of a client registered with "
                f"{server.issuer}",
                "Pass --oauth-client-id ID. " + secret_advice(self._display),
            )
        client = await client_for_sign_in(
            self._client,
            discovery,
            options,
            None,
            scope,
            known,
            display=self._display,
            notify=self._notify,
            grant=CLIENT_CREDENTIALS,
        )
        if not client.get("client_secret"):
            raise OAuthError(
                f"no secret for the client {client['client_id']}, which the client credentials "
                "grant needs",
                secret_advice(self._display),
            )
        with trio.CancelScope(shield=True):
            tokens = await client_credentials(
                self._client,
                server.token_endpoint,
                client,
                scope=scope,
                resource=resource,
                display=self._display,
            )
            credential = self._signed_in(
                tokens, client, server, resource, scope, known, grant=CLIENT_CREDENTIALS
            )
            await self._save(credential)
        return self._done(credential, f"got a token for {self._display} (client credentials)")

    def _signed_in(
        self,
        tokens: Tokens,
        client: Mapping[str, Any],
        server: AuthorizationServer,
        resource: str | None,
        scope: str | None,
        known: Mapping[str, Any],
        *,
        grant: str | None = None,
    ) -> Credential:
        """The credential a sign-in's tokens are stored as."""
        details: dict[str, Any] = {
            **client,
            "issuer": server.issuer,
            "token_endpoint": server.token_endpoint,
            "resource": resource,
            "scope": tokens.scope or scope,
            "registrations": remember_registration(known, client, server.issuer),
        }
        if grant is not None:
            details["grant"] = grant
        return Credential(
            kind="oauth",
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=tokens.expires_at,
            client=details,
        )

    def _done(self, credential: Credential, notice: str | None = None) -> Credential:
        self.issued[credential.access_token] = ("sign-in", time.monotonic())
        self.signed_in_at = trio.current_time()
        self._notify(notice or f"signed in to {self._display}")
        return credential

    async def _browser_sign_in(self, scope: str | None) -> Credential:
        discovery = await self._discover()
        server = discovery.server
        server.check_pkce()
        scope = scope_union(scope) or self._initial_scope(discovery)
        known = self._known_client
        resource = self._resource(discovery)
        state = generate_token(43)
        verifier = generate_token(64)  # RFC 7636 §4.1: 43-128 unreserved characters
        # 2026-07-28 §Authorization Response Validation: the issuer of the validated metadata is
        # recorded with this sign-in's state and PKCE verifier, before the browser opens.
        callback = await self._listen(known, state, server)
        try:
            client = await client_for_sign_in(
                self._client,
                discovery,
                self._client_options(),
                callback.redirect_uri,
                scope,
                known,
                display=self._display,
                notify=self._notify,
            )
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
            tokens = await token_request(
                self._client,
                server.token_endpoint,
                client,
                grant_type="authorization_code",
                code=code,
                redirect_uri=callback.redirect_uri,
                code_verifier=verifier,
                resource=resource,
            )
            credential = self._signed_in(tokens, client, server, resource, scope, known)
            await self._save(credential)
        return self._done(credential)

    async def _listen(
        self, known: Mapping[str, Any], state: str, server: AuthorizationServer
    ) -> CallbackListener:
        """The callback listener: on the chosen port; else on the one the stored
        registration's redirect URI names (so that registration stays valid), or on any free
        one when that is taken."""

        async def listen(port: int) -> CallbackListener:
            return await open_callback_listener(
                state,
                port,
                on_discarded=self._notify,
                issuer=server.issuer,
                issuer_required=server.iss_parameter,
            )

        if self._options.callback_port > 0:
            return await listen(self._options.callback_port)
        port = registered_port(known)
        if port:
            try:
                return await listen(port)
            except OAuthError:
                log.info("port %d is taken; the sign-in listens on another one", port)
        return await listen(0)

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
        # RFC 9207 §2.4 first, for error answers too: an answer from another authorization
        # server (a mix-up attack) is neither redeemed nor are its error fields acted on.
        problem = issuer_problem(params, server.issuer, required=server.iss_parameter)
        if problem is not None:
            raise OAuthError(
                problem,
                "Sign in again; if it happens again, tell the server's operator: its "
                "authorization server "
                + (
                    "promises an iss parameter in its sign-in answers and sends none"
                    if params.get("iss") is None
                    else "answers with an issuer other than the one its metadata names"
                ),
            )
        error = params.get("error")
        if error is not None:
            detail = error_text(params.get("error_description"))
            text = f"{error_text(error)}{': ' + detail if detail else ''}"
            if error == "access_denied":
                raise AuthorizationRequired(
                    f"the sign-in to {self._display} was declined ({text})", self._display
                )
            raise OAuthError(f"the authorization server refused the sign-in ({text})")
        code = params.get("code")
        if not code:
            raise OAuthError("the sign-in answer carried no authorization code")
        return code

    # ------------------------------------------------------------------ discovery and choices

    def learn(self, challenge: Challenge | None) -> None:
        if challenge is not None:
            self.challenge = challenge

    async def _discover(self, *, fresh: bool = False) -> Discovery:
        hint = self.challenge.resource_metadata if self.challenge is not None else None
        if fresh or self._discovery is None or hint != self._discovery_hint:
            self._discovery = await discover(
                self._client,
                self._url,
                resource_metadata_url=hint,
                allow_http=self._options.allow_http,
            )
            self._discovery_hint = hint
        return self._discovery

    async def moved_from(self, credential: Credential) -> str | None:
        """Why ``credential`` (its token just refused) is for an authorization server the MCP
        server no longer names, or None.

        2026-07-28 §Authorization Server Binding (SEP-2352): a change of authorization server
        is detected through updated protected resource metadata, and the client must then
        re-register with the new one, never reuse the old one's credentials; §Token Handling:
        tokens of another authorization server are not sent. So, after a 401, the metadata is
        read again (not the copy of this process) and its issuer compared with the one the
        tokens came from. When the look-up fails, None: the caller goes on as before.
        """
        stored = (credential.client or {}).get("issuer")
        if not isinstance(stored, str):
            return None
        try:
            discovery = await self._discover(fresh=True)
        except UpstreamError as exc:
            log.info("could not look up %s's authorization server again: %s", self._display, exc)
            return None
        issuer = discovery.server.issuer
        if issuer == stored:
            return None
        return (
            f"{self._display} now names the authorization server {issuer}, not {stored} "
            "where it was signed in to"
        )

    async def forget_tokens(self, why: str) -> None:
        """Remove the stored tokens, saying ``why`` (their registration stays known to this
        process, and is stored again with the next sign-in's)."""
        self._notify(f"{why}; its stored tokens were removed")
        await self._drop()

    async def probe(self) -> None:
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
        self.challenge = challenge

    def _initial_scope(self, discovery: Discovery) -> str | None:
        # 2025-11-25 §Scope Selection Strategy: the challenge's scope, else the protected
        # resource's scopes_supported, else none at all.
        if self._options.scope:
            return scope_union(self._options.scope)
        if self.challenge is not None and self.challenge.scope:
            return self.challenge.scope
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
