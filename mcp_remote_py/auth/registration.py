"""The client to sign in as: pre-registered, a Client ID Metadata Document, or RFC 7591 dynamic.

2025-11-25 §Client Registration Approaches, in its order: a client registered beforehand
(``--oauth-client-id``, optional secret), else a Client ID Metadata Document URL where the
authorization server supports them, else Dynamic Client Registration (RFC 7591). A registration
stored with the tokens earlier is reused while it fits: same issuer, same redirect URI, a secret
not expired, the scopes covered. Registrations are kept by the issuer identifier of the
authorization server that issued them (2026-07-28 §Authorization Server Binding, SEP-2352), so a
server that moves to another authorization server gets a new registration there, and one that
moves back finds its old one.

A registration is a dict, kept as the stored credential's ``client`` (its fields are listed in
``oauth.py``).

The grant decides what is registered: the browser sign-in registers a loopback redirect URI
and ``authorization_code``; the device grant (RFC 8628) registers no redirect URI and
``urn:ietf:params:oauth:grant-type:device_code``, both with ``refresh_token``. A dynamic
registration is reused only for a grant it was registered for (``grant_types``; one stored
before they were kept is taken to be for the browser). The client credentials grant needs a
pre-registered client (``--oauth-client-id`` and its secret).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._version import __version__
from ..shell.net import is_loopback_host
from .discovery import AuthorizationServer, Discovery
from .errors import OAuthError
from .oauth_options import AUTHORIZATION_CODE, DEVICE_CODE, OAuthOptions
from .scope import covers, scope_union
from .token_endpoint import error_text, post_without_redirects

__all__ = [
    "DEVICE_GRANT",
    "application_type",
    "client_for_sign_in",
    "registered_port",
    "registrations_by_issuer",
    "remember_registration",
    "registration_auth_method",
    "static_auth_method",
]

log = logging.getLogger("mcp_remote_py")

# RFC 8628 §3.4: the grant type of the device flow's token requests (and of its registrations).
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_REGISTERED_GRANTS = {
    AUTHORIZATION_CODE: ["authorization_code", "refresh_token"],
    DEVICE_CODE: [DEVICE_GRANT, "refresh_token"],
}


def _redirects(redirect_uri: str | None) -> list[str]:
    return [redirect_uri] if redirect_uri else []


def _registered_for(registration: Mapping[str, Any], grant: str) -> bool:
    """Whether a stored dynamic registration may be used for ``grant``."""
    grants = registration.get("grant_types")
    if not isinstance(grants, list):
        return grant == AUTHORIZATION_CODE  # stored before grant_types were kept
    return _REGISTERED_GRANTS[grant][0] in grants


def registration_auth_method(supported: tuple[str, ...]) -> str:
    """The token endpoint authentication to register with: a public client where the server
    allows one (a native app cannot keep a secret, RFC 8252 §8.5), else a secret sent as the
    server prefers."""
    for method in ("none", "client_secret_basic", "client_secret_post"):
        if method in supported:
            return method
    return "none"


def application_type(redirect_uri: str) -> str:
    """The OpenID Connect ``application_type`` to register with.

    2026-07-28 §Application Type and Redirect URI Constraints (SEP-837): clients MUST send one
    during Dynamic Client Registration, since OIDC defaults a missing one to ``web``, which
    conflicts with a loopback redirect; native applications, among them a program listening on
    ``localhost``, SHOULD use ``native`` (OpenID Connect Registration 1.0 §2). mcp-remote-py's
    redirect URI is always its loopback listener, so this is ``native``; ``web`` is for a
    redirect URI on a host that is not this computer. Servers without OIDC ignore the field.
    """
    host = urlsplit(redirect_uri).hostname or ""
    return "native" if is_loopback_host(host) else "web"


def static_auth_method(has_secret: bool, supported: tuple[str, ...]) -> str:
    """The token endpoint authentication of a pre-registered client."""
    if not has_secret:
        return "none"
    if "client_secret_basic" not in supported and "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"  # RFC 6749 §2.3.1: every server supports it


async def client_for_sign_in(
    http: httpx.AsyncClient,
    discovery: Discovery,
    options: OAuthOptions,
    redirect_uri: str | None,
    scope: str | None,
    old: Mapping[str, Any],
    *,
    display: str,
    notify: Callable[[str], None],
    grant: str = AUTHORIZATION_CODE,
) -> dict[str, Any]:
    """The client to sign in as, in the order of 2025-11-25 §Client Registration
    Approaches: pre-registered, a Client ID Metadata Document, Dynamic Client
    Registration; a registration stored earlier (``old``) is reused, but only with the
    authorization server that issued it (``registrations_by_issuer``). ``redirect_uri`` is
    None for the device grant (``grant`` ``device_code``), which has no redirect."""
    server = discovery.server
    known = registrations_by_issuer(old)
    # 2026-07-28 §Authorization Server Binding (SEP-2352): client credentials belong to the
    # authorization server that issued them, keyed by its issuer identifier; another one's are
    # never presented here (RFC 6749 §2.2: client identifiers are unique to their server).
    mine = known.get(server.issuer, {})
    kind = mine.get("registration")
    if options.client_id:
        elsewhere = [
            issuer
            for issuer, registration in known.items()
            if issuer != server.issuer
            and registration.get("registration") == "static"
            and registration.get("client_id") == options.client_id
        ]
        if elsewhere and not (kind == "static" and mine.get("client_id") == options.client_id):
            # SEP-2352: pre-registered credentials are specific to one authorization server;
            # when the server's metadata names another, say so rather than try them there.
            raise OAuthError(
                f"the pre-registered client {options.client_id} (--oauth-client-id) was used "
                f"with the authorization server {elsewhere[0]}, but {display} now names "
                f"{server.issuer}; a client registered with one authorization server is not "
                "one of another's (MCP 2026-07-28 §Authorization Server Binding)",
                f"Register a client with {server.issuer} and pass its --oauth-client-id; if "
                f"{options.client_id} is valid there too, `mcp-remote-py auth delete {display}` "
                "forgets the old sign-in",
            )
        secret = options.client_secret or None
        if secret is None and kind == "static" and mine.get("client_id") == options.client_id:
            secret = mine.get("client_secret") or None  # stored by an earlier auth login
        return {
            "registration": "static",
            "client_id": options.client_id,
            "client_secret": secret,
            "token_endpoint_auth_method": static_auth_method(
                secret is not None, server.token_endpoint_auth_methods
            ),
            "redirect_uris": _redirects(redirect_uri),
        }
    if kind == "static" and isinstance(mine.get("client_id"), str):
        return {**_registration_fields(mine), "redirect_uris": _redirects(redirect_uri)}
    # A Client ID Metadata Document URL is portable: every authorization server that supports
    # them resolves it itself, so it needs no binding (§Authorization Server Binding).
    document = next(
        (r for r in known.values() if r.get("registration") == "metadata_document"), None
    )
    if document is not None and server.client_id_metadata_documents:
        return {**_registration_fields(document), "redirect_uris": _redirects(redirect_uri)}
    if options.client_metadata_url:
        if server.client_id_metadata_documents:
            url = _client_metadata_url(options.client_metadata_url)
            return {
                "registration": "metadata_document",
                "client_id": url,
                "token_endpoint_auth_method": "none",
                "redirect_uris": _redirects(redirect_uri),
            }
        notify(
            f"the authorization server {server.issuer} does not support client ID metadata "
            "documents; registering mcp-remote-py with it instead"
        )
    if (
        kind == "dynamic"
        and _registered_for(mine, grant)
        and (redirect_uri is None or redirect_uri in (mine.get("redirect_uris") or []))
        and not _secret_expired(mine)
        and (mine.get("registered_scope") is None or covers(mine["registered_scope"], scope))
    ):
        return _registration_fields(mine)
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
    return await _register(
        http, server, redirect_uri, register_scope, discovery, options.client_name, display, grant
    )


async def _register(
    http: httpx.AsyncClient,
    server: AuthorizationServer,
    redirect_uri: str | None,
    scope: str | None,
    discovery: Discovery,
    client_name: str,
    display: str,
    grant: str,
) -> dict[str, Any]:
    """RFC 7591 Dynamic Client Registration, for the browser's redirect or for the device
    grant (RFC 8628 §3.4's grant type, no redirect URI and no response type)."""
    assert server.registration_endpoint is not None
    method = registration_auth_method(server.token_endpoint_auth_methods)
    grant_types = _REGISTERED_GRANTS[grant]
    metadata: dict[str, Any] = {
        "client_name": client_name,
        # A device-flow client is a native application too (OpenID Connect Registration §2).
        "application_type": application_type(redirect_uri) if redirect_uri else "native",
        "grant_types": grant_types,
        "response_types": ["code"] if redirect_uri else [],
        "token_endpoint_auth_method": method,
        "software_id": "mcp-remote-py",
        "software_version": __version__,
    }
    if redirect_uri:
        metadata["redirect_uris"] = [redirect_uri]
    if scope:
        metadata["scope"] = scope
    status, body = await post_without_redirects(
        http,
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
            detail = f": {error_text(data['error'])}"
            if data.get("error_description"):
                detail += f" ({error_text(data['error_description'])})"
        if discovery.resource_metadata_url is None and server.metadata_url is None:
            raise OAuthError(
                f"{display} asked for authorization but offers no OAuth: no protected "
                "resource metadata, no authorization server metadata, and its default "
                f"registration endpoint answered HTTP {status}",
                "If the server takes a fixed token, store it with `mcp-remote-py auth set "
                f"{display}`, or pass --header 'Authorization: Bearer ${{TOKEN}}'",
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
    registered_grants = data.get("grant_types")
    log.info("registered with %s as client %s", server.issuer, client_id)
    return {
        "registration": "dynamic",
        "client_id": client_id,
        "client_secret": secret,
        "client_secret_expires_at": data.get("client_secret_expires_at"),
        "token_endpoint_auth_method": granted_method,
        "redirect_uris": (
            redirect_uris if isinstance(redirect_uris, list) else _redirects(redirect_uri)
        ),
        "registered_scope": registered_scope if isinstance(registered_scope, str) else scope,
        "grant_types": (
            registered_grants
            if isinstance(registered_grants, list)
            and all(isinstance(g, str) for g in registered_grants)
            else grant_types
        ),
        "issuer": server.issuer,
    }


def registrations_by_issuer(stored: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The client registrations a stored credential's ``client`` holds, by the issuer
    identifier of the authorization server each belongs to (SEP-2352).

    ``registrations`` keeps every one this server's credential has used; the top-level fields
    are the one in use, bound to ``issuer`` (a credential stored before ``registrations``
    existed has only those). A registration without an issuer is bound to nothing and never
    reused.
    """
    found: dict[str, dict[str, Any]] = {}
    kept = stored.get("registrations")
    if isinstance(kept, Mapping):
        for issuer, registration in kept.items():
            if isinstance(issuer, str) and isinstance(registration, Mapping):
                found[issuer] = dict(registration)
    issuer = stored.get("issuer")
    if isinstance(issuer, str) and stored.get("client_id"):
        found[issuer] = _registration_fields(stored)
    return found


def remember_registration(
    stored: Mapping[str, Any], client: Mapping[str, Any], issuer: str
) -> dict[str, dict[str, Any]]:
    """``registrations`` to store after signing in at ``issuer`` as ``client``: the ones
    known before, with this one under its issuer (replacing what that issuer had)."""
    return {**registrations_by_issuer(stored), issuer: _registration_fields(client)}


def registered_port(known: Mapping[str, Any]) -> int:
    """The loopback port of the stored registration's redirect URI, or 0."""
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
        "grant_types",
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
