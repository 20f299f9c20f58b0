"""The grants that need no browser on this computer: device authorization and client credentials.

* Device authorization (RFC 8628), for a machine without a browser: ``request_device_code``
  asks the authorization server's ``device_authorization_endpoint`` (§3.1, with the client's
  authentication, the scope and the RFC 8707 ``resource``) for a device code and a user code;
  the user opens ``verification_uri`` on any device and enters the code (``DeviceCode.prompt``
  says so); ``poll_for_tokens`` meanwhile asks the token endpoint (§3.4) every ``interval``
  seconds (default 5), 5 s slower after each ``slow_down`` (§3.5), until the tokens come, the
  user declines (``access_denied``), or the code expires (``expired_token``, or ``expires_in``
  passed here).
* Client credentials (RFC 6749 §4.4), for machine-to-machine servers: ``client_credentials``
  asks the token endpoint for a token as a pre-registered confidential client, with its
  secret, the scope and ``resource``; there is no user and (§4.4.3) no refresh token: a new
  token is asked for the same way when this one expires.

The device code is a credential (whoever holds it gets the tokens): it is never logged or put in
a message; the user code is meant to be shown. Failures are ``OAuthError`` or
``AuthorizationRequired`` with advice.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from ..core.errors import ConnectionLost, UpstreamError
from .discovery import AuthorizationServer, check_endpoint_url
from .errors import AuthorizationRequired, OAuthError
from .oauth_options import CLIENT_SECRET_ENV
from .registration import DEVICE_GRANT
from .token_endpoint import TokenEndpointError, Tokens, client_post, error_text, token_request

__all__ = [
    "DEFAULT_INTERVAL",
    "DEVICE_GRANT",
    "MIN_INTERVAL",
    "SLOW_DOWN_STEP",
    "DeviceCode",
    "client_credentials",
    "device_endpoint",
    "poll_for_tokens",
    "request_device_code",
    "secret_advice",
]

log = logging.getLogger("mcp_remote_py")

# RFC 8628 §3.2: without an interval the client waits 5 s between polls; §3.5: each slow_down
# adds 5 s to it, for this and every later poll.
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
# An interval the server gives is honoured down to this (so a zero is not a busy loop).
MIN_INTERVAL = 0.1
# §3.5: after a failed connection, polls back off exponentially, up to this.
MAX_BACKOFF_INTERVAL = 60.0


def secret_advice(display: str) -> str:
    """Where a pre-registered client's secret can come from (never the command line)."""
    return (
        "Give the client's secret in an environment variable (--oauth-client-secret-env VAR, or "
        f"{CLIENT_SECRET_ENV}), or store it once with `mcp-remote-py auth set-client-secret "
        f"{display} --oauth-client-id ID`"
    )


# --------------------------------------------------------------------------- device grant


@dataclass(frozen=True)
class DeviceCode:
    """RFC 8628 §3.2's answer. ``expires_at`` is trio time (inf when the server gave no
    ``expires_in``); ``interval`` is the current wait between polls."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float | None
    expires_at: float
    interval: float

    def prompt(self, display: str) -> str:
        """What the user is told: where to go and the code to enter (one line, for a log)."""
        text = (
            f"to sign in to {display}, open {self.verification_uri} on any device (a phone, "
            f"another computer) and enter the code {self.user_code}"
        )
        if self.verification_uri_complete:
            text += f" (or open {self.verification_uri_complete}, which fills the code in)"
        if self.expires_in is not None:
            text += f"; the code is valid for {_duration(self.expires_in)}"
        return text

    def reminder(self) -> str:
        """The same, shorter, with the time left: for an answer sent while it is pending."""
        left = self.expires_at - trio.current_time()
        text = f"open {self.verification_uri} and enter the code {self.user_code}"
        if math.isfinite(left):
            text += f" (valid {_duration(max(0.0, left))} more)"
        return text


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{math.ceil(seconds):.0f} s"


def device_endpoint(server: AuthorizationServer, *, allow_http: bool) -> str:
    """The server's device authorization endpoint, or OAuthError saying it has none."""
    endpoint = server.device_authorization_endpoint
    if endpoint is None:
        where = server.metadata_url or "it has no metadata"
        raise OAuthError(
            f"the authorization server {server.issuer} does not offer the device authorization "
            f"grant (RFC 8628): its metadata ({where}) has no device_authorization_endpoint",
            "Sign in with a browser instead: run `mcp-remote-py auth login URL` (without "
            "--device) on a computer with one and use the same credential store, or ask the "
            "server's operator to enable the device grant",
        )
    return check_endpoint_url(
        endpoint, "the device_authorization_endpoint in its metadata", allow_http=allow_http
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _shown(value: object, what: str) -> str:
    """A string of the answer the user will see: one line of printable characters."""
    if not isinstance(value, str) or not value.strip():
        raise OAuthError(f"the device authorization answer has no {what}")
    text = "".join(c for c in error_text(value) if c.isprintable())
    if not text:
        raise OAuthError(f"the device authorization answer has no usable {what}")
    return text


async def request_device_code(
    http: httpx.AsyncClient,
    endpoint: str,
    client: Mapping[str, Any],
    *,
    scope: str | None,
    resource: str | None,
    allow_http: bool,
) -> DeviceCode:
    """RFC 8628 §3.1–§3.2: a device code and the user code to show."""
    status, body = await client_post(http, endpoint, client, scope=scope, resource=resource)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict):
        detail = ""
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            detail = f": {error_text(data['error'])}"
            if data.get("error_description"):
                detail += f" ({error_text(data['error_description'])})"
        raise OAuthError(
            f"the authorization server refused the device authorization request (HTTP "
            f"{status}{detail})",
            "The authorization service failed; try again in a moment"
            if status >= 500
            else "The client may not be allowed the device grant: ask the server's operator",
            transient=status >= 500 or status == 429,
        )
    device_code = data.get("device_code")
    if not isinstance(device_code, str) or not device_code:
        raise OAuthError("the device authorization answer has no device_code")
    # "verification_url" is what some servers (Google's) call it.
    uri = data.get("verification_uri", data.get("verification_url"))
    verification_uri = check_endpoint_url(
        _shown(uri, "verification_uri"), "the verification_uri", allow_http=allow_http
    )
    complete = data.get("verification_uri_complete")
    verification_uri_complete = (
        check_endpoint_url(
            _shown(complete, "verification_uri_complete"),
            "the verification_uri_complete",
            allow_http=allow_http,
        )
        if complete is not None
        else None
    )
    expires_in = _number(data.get("expires_in"))
    interval = _number(data.get("interval"))
    return DeviceCode(
        device_code=device_code,
        user_code=_shown(data.get("user_code"), "user_code"),
        verification_uri=verification_uri,
        verification_uri_complete=verification_uri_complete,
        expires_in=expires_in,
        expires_at=trio.current_time() + expires_in if expires_in is not None else math.inf,
        interval=max(MIN_INTERVAL, interval if interval is not None else DEFAULT_INTERVAL),
    )


async def poll_for_tokens(
    http: httpx.AsyncClient,
    token_endpoint: str,
    client: Mapping[str, Any],
    device: DeviceCode,
    *,
    resource: str | None,
    display: str,
    login_command: str,
    keep: Callable[[Tokens], Awaitable[Any]],
) -> Any:
    """RFC 8628 §3.4–§3.5: poll the token endpoint until the user has entered the code; then
    ``keep(tokens)`` (stores them), shielded with the request that got them, and its result.

    ``slow_down`` adds 5 s to the interval; ``authorization_pending`` goes on polling; a
    connection that fails doubles it (up to a minute). ``access_denied``, ``expired_token`` and
    ``expires_in`` passing are AuthorizationRequired; other errors OAuthError.
    """
    interval = device.interval
    while True:
        wait = min(interval, device.expires_at - trio.current_time())
        if wait > 0:
            await trio.sleep(wait)
        if trio.current_time() >= device.expires_at:
            raise _expired(device, display, login_command)
        # Once the server has issued the tokens, they must reach the store whatever happens to
        # the caller: the request and the saving are shielded (each bounded on its own).
        with trio.CancelScope(shield=True):
            try:
                tokens = await token_request(
                    http,
                    token_endpoint,
                    client,
                    grant_type=DEVICE_GRANT,
                    device_code=device.device_code,
                    resource=resource,
                )
            except TokenEndpointError as exc:
                error, problem = exc.error, str(exc)
            except UpstreamError as exc:
                if not (exc.transient or isinstance(exc, ConnectionLost)):
                    raise
                interval = min(MAX_BACKOFF_INTERVAL, interval * 2)
                log.info("polling for the sign-in failed (%s); again in %.0f s", exc, interval)
                continue
            else:
                return await keep(tokens)
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
            log.debug("the authorization server asks to poll every %.1f s", interval)
            continue
        if error == "access_denied":
            raise AuthorizationRequired(
                f"the sign-in to {display} with the code {device.user_code} was declined "
                "(access_denied)",
                display,
                f"Run `{login_command}` to try again",
            )
        if error == "expired_token":
            raise _expired(device, display, login_command)
        raise OAuthError(f"the authorization server refused the device sign-in ({problem})")


def _expired(device: DeviceCode, display: str, login_command: str) -> AuthorizationRequired:
    return AuthorizationRequired(
        f"the code {device.user_code} for signing in to {display} expired before the sign-in "
        "was finished",
        display,
        f"Run `{login_command}` for a new code, and enter it at {device.verification_uri} "
        "before it expires",
    )


# --------------------------------------------------------------------------- client credentials


async def client_credentials(
    http: httpx.AsyncClient,
    token_endpoint: str,
    client: Mapping[str, Any],
    *,
    scope: str | None,
    resource: str | None,
    display: str,
) -> Tokens:
    """RFC 6749 §4.4.2: a token for the client itself, authenticated with its secret."""
    client_id = client.get("client_id")
    try:
        return await token_request(
            http,
            token_endpoint,
            client,
            grant_type="client_credentials",
            scope=scope,
            resource=resource,
        )
    except TokenEndpointError as exc:
        if exc.error == "invalid_client":
            raise OAuthError(
                f"the authorization server refused the credentials of the client {client_id} "
                f"({exc})",
                "Check the client id and its secret. " + secret_advice(display),
            ) from None
        if exc.error in ("unauthorized_client", "unsupported_grant_type"):
            raise OAuthError(
                f"the client {client_id} may not use the client credentials grant at "
                f"{display}'s authorization server ({exc})",
                "Ask the server's operator to allow it for this client, or sign in as a user "
                "(without --oauth-client-credentials)",
            ) from None
        if exc.error == "invalid_scope":
            raise OAuthError(
                f"the authorization server would not grant the client {client_id} the scope "
                f"{scope or '(none asked for)'} ({exc})",
                "Ask the server's operator which scopes this client may have",
            ) from None
        raise OAuthError(f"the client credentials token request failed ({exc})") from None
