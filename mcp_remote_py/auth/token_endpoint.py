"""Requests to the authorization server and the token endpoint's answers (RFC 6749 §4.1.3–§6).

Every request is built here, not by the relay's client: the user's ``--header`` values never
travel to the authorization server, and a request never follows a redirect (a secret never
follows one). Each is bounded (``TOKEN_TIMEOUT``). Client authentication is ``none``,
``client_secret_post`` or ``client_secret_basic``, as the client registered: on token requests
(``token_request``) and on the other form requests a client authenticates (``client_post``:
RFC 8628's device authorization request).
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import trio

# authlib's protocol pieces: the token request body and client authentication (none /
# client_secret_post).
from authlib.oauth2.auth import ClientAuth  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_token_request,
)

from ..shell.net import NetworkOptions, describe_network_error, display_url
from .credential import Credential
from .errors import OAuthError
from .scope import scope_union

__all__ = [
    "TOKEN_TIMEOUT",
    "TokenEndpointError",
    "Tokens",
    "client_post",
    "error_text",
    "parse_token_response",
    "post_without_redirects",
    "refresh_due",
    "token_request",
]

TOKEN_TIMEOUT = 30.0
# Refresh this long before expiry, or a quarter of the token's lifetime if that is shorter.
REFRESH_MARGIN = 60.0
MAX_ERROR_TEXT = 300


@dataclass
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float | None
    scope: str | None


class TokenEndpointError(Exception):
    """RFC 6749 §5.2 error answer of the token endpoint."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


def client_secret_basic(
    client: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before the Base64 (authlib's own
    # encoder skips that step, which breaks secrets containing ':' or '%').
    pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
    headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return uri, headers, body


def error_text(value: object) -> str:
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


def parse_token_response(status: int, body: bytes, now: float) -> Tokens:
    """The tokens of a token endpoint answer; ``TokenEndpointError`` for an RFC 6749 §5.2
    error, OAuthError for anything else. Messages never hold the body of a 200 (it may carry
    tokens): only the ``error`` fields of an error answer are shown."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if status != 200:
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            raise TokenEndpointError(
                error_text(data["error"]), error_text(data.get("error_description")), status
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
            f"the token endpoint issued a {error_text(token_type)!r} token, not a Bearer token, "
            "which MCP clients cannot use"
        )
    refresh = data.get("refresh_token")
    scope = data.get("scope")
    # RFC 6749 §5.1: scope is sent when it differs from the one asked for.
    granted = scope_union(scope) if isinstance(scope, str) else None
    return Tokens(
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


async def post_without_redirects(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    """POST without following redirects (a secret never follows one); (status, body)."""
    headers = {
        **headers,
        "Accept-Encoding": "identity",
        "User-Agent": http.headers.get("User-Agent", "mcp-remote-py"),
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
            response = await http.send(request, follow_redirects=False)
    except trio.TooSlowError:
        raise OAuthError(
            f"{display_url(request.url)} did not answer within {TOKEN_TIMEOUT:g} s",
            transient=True,
        ) from None
    except httpx.TransportError as exc:
        raise describe_network_error(exc, request.url, NetworkOptions()) from exc
    return response.status_code, response.content


def _client_auth(client: Mapping[str, Any], params: dict[str, Any]) -> Any:
    """authlib's ClientAuth for the registration ``client`` (``params`` gains the client_id
    that client_secret_basic leaves out of the body)."""
    client_id = str(client["client_id"])
    secret = client.get("client_secret") or None
    method = client.get("token_endpoint_auth_method") or "none"
    if method == "client_secret_basic" and secret:
        # client_id in the body too: RFC 6749 allows it, and many servers want it.
        params["client_id"] = client_id
        return ClientAuth(client_id, secret, client_secret_basic)
    if method == "client_secret_post" and secret:
        return ClientAuth(client_id, secret, "client_secret_post")
    return ClientAuth(client_id, None, "none")


def _form_headers() -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


async def client_post(
    http: httpx.AsyncClient, endpoint: str, client: Mapping[str, Any], **params: str | None
) -> tuple[int, bytes]:
    """A form POST (not a token request) authenticated as registered, e.g. RFC 8628 §3.1's
    device authorization request; parameters that are None are left out. (status, body)."""
    fields = {name: value for name, value in params.items() if value is not None}
    auth = _client_auth(client, fields)
    _, headers, body = auth.prepare("POST", endpoint, _form_headers(), urlencode(fields))
    return await post_without_redirects(http, endpoint, str(body).encode(), headers)


async def token_request(
    http: httpx.AsyncClient, endpoint: str, client: Mapping[str, Any], **params: Any
) -> Tokens:
    """A token endpoint request (RFC 6749 §4.1.3, §4.4.2, §6; RFC 8628 §3.4), authenticated as
    registered (``client`` is the registration)."""
    grant_type = params.pop("grant_type")
    auth = _client_auth(client, params)
    body = prepare_token_request(grant_type, **params)
    _, headers, body = auth.prepare("POST", endpoint, _form_headers(), body)
    status, answer = await post_without_redirects(http, endpoint, str(body).encode(), headers)
    return parse_token_response(status, answer, time.time())
