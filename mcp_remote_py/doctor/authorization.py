"""The Auth checks: were the credentials accepted, and if not, what does the server's 401 ask for?

A refusal is explained from its ``WWW-Authenticate`` challenge and the server's RFC 9728
protected-resource metadata, and answered with the command that stores a token. Then
(``auth.setup``) the relay's own discovery is run as a sign-in would run it, and what the
authorization server asks for under 2026-07-28 (basic/authorization: ``iss`` in the
authorization response, Client ID Metadata Documents, the grants it offers) is set beside
what the relay will do: which registration, which checks. A setup the relay refuses (metadata
without ``resource``, an issuer that does not match, no PKCE S256) is a FAIL naming the
server's mistake, in the words the relay would use.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import trio

from ..auth.discovery import AuthorizationServer, discover
from ..auth.errors import OAuthError
from ..auth.oauth_options import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, DEVICE_CODE
from ..core.errors import UpstreamError, UpstreamHttpError
from ..shell.net import NetworkOptions, build_client, display_url, same_origin
from .http_checks import parse_www_authenticate
from .http_probe import Probe
from .mcp_session import Session
from .report import FAIL, PASS, WARN, Report
from .target import Target

__all__ = ["check_auth"]


async def check_auth(report: Report, target: Target, probe: Probe, session: Session | None) -> None:
    section = "Auth"
    fix_command = f"mcp-remote-py auth set {target.shown}"
    stored = target.stored
    stored_text = ""
    expired = False
    if target.store_error:
        report.add(
            "auth.store",
            section,
            WARN,
            f"the credential store could not be read: {target.store_error}",
            fix="See `mcp-remote-py auth list`",
        )
    if stored is not None:
        credential, where = stored
        expired = credential.expired()
        if credential.expires_at is None:
            stored_text = f"a stored {credential.kind} token ({where}, no expiry)"
        else:
            days = (credential.expires_at - time.time()) / 86400
            stored_text = f"a stored {credential.kind} token ({where}, " + (
                f"expired {-days:.1f} days ago)" if expired else f"expires in {days:.1f} days)"
            )
    unauthorized = probe.status == 401 or (
        session is not None
        and isinstance(session.error, UpstreamHttpError)
        and session.error.status == 401
    )
    if not unauthorized:
        if target.user_auth:
            summary = "the Authorization header you gave was accepted"
        elif stored is not None:
            summary = f"{stored_text} was sent and accepted"
        else:
            summary = "the server asked for no credentials"
        status = WARN if expired else PASS
        report.add(
            "auth.status",
            section,
            status,
            summary,
            fix=f"The stored token has expired; store a fresh one: {fix_command}",
        )
        return
    challenge = probe.headers.get("www-authenticate", "")
    details: list[str] = []
    schemes = parse_www_authenticate(challenge) if challenge else []
    metadata_url: str | None = None
    for scheme, params in schemes:
        wanted = ", ".join(
            f"{k}={v!r}" for k, v in params.items() if k in ("realm", "scope", "error")
        )
        asks = f"WWW-Authenticate asks for {scheme.capitalize()}"
        details.append(asks + (f" ({wanted})" if wanted else ""))
        if params.get("error_description"):
            details.append(f"the server says: {params['error_description']}")
        metadata_url = metadata_url or params.get("resource_metadata")
    if not schemes:
        details.append("the 401 has no WWW-Authenticate header")
    metadata = await _protected_resource_metadata(target, metadata_url)
    if metadata is not None:
        where, document = metadata
        servers = document.get("authorization_servers") or []
        scopes = document.get("scopes_supported") or []
        details.append(
            f"protected-resource metadata ({where}): authorization server "
            f"{', '.join(map(str, servers)) or 'not named'}"
            + (f"; scopes {' '.join(map(str, scopes))}" if scopes else "")
        )
    if target.user_auth:
        summary = "the server refused the Authorization header you gave (HTTP 401)"
        fix = (
            "The token is wrong or expired: get a fresh one, or store it once with "
            f"`{fix_command}` and drop the --header"
        )
    elif stored is not None:
        summary = f"the server refused {stored_text} (HTTP 401)"
        fix = f"Store a fresh token: {fix_command}"
    else:
        summary = "the server wants credentials (HTTP 401) and none is stored for it"
        fix = (
            f"Store the server's token once: {fix_command}\n"
            "(or pass --header 'Authorization: Bearer ${API_TOKEN}' with API_TOKEN in the "
            "client config's env block)"
        )
    report.add("auth.status", section, FAIL, summary, details=details, fix=fix)
    if not target.user_auth and target.options.oauth is not None:
        await _sign_in_setup(report, target, metadata_url)


# RFC 8414 §2: grant_types_supported defaults to these when the metadata omits it.
_DEFAULT_GRANTS = ("authorization_code", "implicit")


async def _sign_in_setup(report: Report, target: Target, advertised: str | None) -> None:
    """``auth.setup``: discovery as the relay's sign-in runs it, and what the relay will do."""
    section = "Auth"
    settings = target.options.oauth
    assert settings is not None
    async with build_client(_plain(target)) as client:
        try:
            with trio.fail_after(30):
                found = await discover(
                    client,
                    str(target.url),
                    resource_metadata_url=advertised,
                    allow_http=settings.allow_http,
                )
                grant = getattr(settings, "grant", AUTHORIZATION_CODE)
                if grant != CLIENT_CREDENTIALS:  # PKCE protects a code; that grant has none
                    found.server.check_pkce()
        except OAuthError as exc:
            report.add(
                "auth.setup",
                section,
                FAIL,
                f"the relay cannot sign in to this server: {exc}",
                fix=exc.hint or "Tell the server's operator",
            )
            return
        except (UpstreamError, trio.TooSlowError) as exc:
            what = exc.advice() if isinstance(exc, UpstreamError) else "no answer within 30 s"
            report.add(
                "auth.setup",
                section,
                WARN,
                f"could not read the server's authorization setup: {what}",
            )
            return
    server = found.server
    grants = server.grant_types or _DEFAULT_GRANTS
    registration, status = _registration(server, settings.client_id, settings.client_metadata_url)
    how, offered = _how(grant, server)
    if not offered:
        status = FAIL
    details = [
        f"authorization server {server.issuer}"
        + (
            f" (metadata {server.metadata_url})"
            if server.metadata_url
            else " (no metadata: the 2025-03-26 default endpoints on the server's origin)"
        ),
        f"tokens are asked for the resource {found.resource} (RFC 8707)",
        "iss in the authorization response (RFC 9207): "
        + (
            "promised, so the relay refuses a response without it and checks it against the issuer"
            if server.iss_parameter
            else "not promised; the relay checks one if it comes"
        ),
        "Client ID Metadata Documents: "
        + ("supported" if server.client_id_metadata_documents else "not supported")
        + "; Dynamic Client Registration: "
        + ("offered" if server.registration_endpoint else "not offered"),
        f"grants offered: {', '.join(grants)}"
        + ("" if server.grant_types else " (not listed: RFC 8414's default)"),
        f"the relay will {registration}",
    ]
    summary = f"sign-in at {server.issuer}: {how}"
    report.add(
        "auth.setup",
        section,
        status,
        summary,
        details=details,
        fix=(
            "Register a client with the server's operator and pass --oauth-client-id ID"
            if offered
            else "Drop --oauth-device to sign in with the browser"
        )
        if status == FAIL
        else "",
        data={
            "issuer": server.issuer,
            "iss_parameter": server.iss_parameter,
            "client_id_metadata_documents": server.client_id_metadata_documents,
            "registration_endpoint": server.registration_endpoint is not None,
            "grants": list(grants),
            "grant": grant,
        },
    )


def _how(grant: str, server: AuthorizationServer) -> tuple[str, bool]:
    """How the relay will get a token with ``grant``, and whether this server offers it."""
    listed = server.grant_types or _DEFAULT_GRANTS
    if grant == DEVICE_CODE:
        if server.device_authorization_endpoint is None:
            return (
                "--oauth-device asks for the device authorization grant (RFC 8628), but the "
                "server has no device_authorization_endpoint",
                False,
            )
        return "the relay shows a code to enter on another device (RFC 8628)", True
    if grant == CLIENT_CREDENTIALS:
        listed_here = "client_credentials" in listed
        return (
            "the relay gets tokens with its client's own credentials (RFC 6749 §4.4), no user"
            + ("" if listed_here else ", a grant the server does not list"),
            True,
        )
    return (
        "the relay opens the browser (authorization code with PKCE S256)"
        + ("" if "authorization_code" in listed else ", a grant the server does not list")
        + (
            "; it offers the device grant too (--oauth-device, for a machine without a browser)"
            if server.device_authorization_endpoint
            else ""
        ),
        True,
    )


def _registration(
    server: AuthorizationServer, client_id: str | None, metadata_url: str | None
) -> tuple[str, str]:
    """What client the relay will sign in as (2026-07-28 client-registration: pre-registered,
    else a Client ID Metadata Document, else Dynamic Client Registration), and the status."""
    if client_id:
        return f"sign in as the pre-registered client {client_id} (--oauth-client-id)", PASS
    if metadata_url and server.client_id_metadata_documents:
        return f"use the Client ID Metadata Document {metadata_url} as its client_id", PASS
    if server.registration_endpoint is not None:
        note = (
            " (--client-metadata-url is given, but the server does not support the documents)"
            if metadata_url
            else (
                "; the server supports Client ID Metadata Documents too: --client-metadata-url "
                "URL makes the relay use one"
                if server.client_id_metadata_documents
                else ""
            )
        )
        return (
            "register by Dynamic Client Registration (application_type native, as SEP-837 "
            "asks; deprecated by 2026-07-28 but kept for servers without the documents)" + note,
            PASS,
        )
    if server.client_id_metadata_documents:
        return (
            "need a Client ID Metadata Document: the server supports only those; pass "
            "--client-metadata-url URL (or --oauth-client-id)",
            WARN,
        )
    return "find no way to register: the server offers neither registration nor documents", FAIL


def _plain(target: Target) -> NetworkOptions:
    """The network options without the user's headers: the metadata may be on another origin."""
    return NetworkOptions(
        connect_timeout=target.net.connect_timeout,
        ca_file=target.net.ca_file,
        insecure=target.net.insecure,
        ipv4=target.net.ipv4,
        tcp_keepalive=0,
    )


async def _protected_resource_metadata(
    target: Target, advertised: str | None
) -> tuple[str, dict[str, Any]] | None:
    """RFC 9728 metadata: the advertised URL, else the well-known URIs (path-inserted, root).
    Fetched without the user's headers: it may live on another origin."""
    url = target.url
    candidates: list[httpx.URL] = []
    if advertised:
        try:
            candidate = url.join(advertised)
        except httpx.InvalidURL:
            candidate = None
        if candidate is not None and (candidate.scheme == "https" or same_origin(candidate, url)):
            candidates.append(candidate)
    path = url.path.rstrip("/")
    well_known = "/.well-known/oauth-protected-resource"
    if path and path != "/":
        candidates.append(url.copy_with(path=well_known + path, query=None))
    candidates.append(url.copy_with(path=well_known, query=None))
    async with build_client(_plain(target)) as client:
        for candidate in candidates:
            try:
                with trio.fail_after(10):
                    response = await client.get(candidate)
            except (httpx.HTTPError, trio.TooSlowError):
                continue
            if response.status_code != 200:
                continue
            try:
                document = response.json()
            except ValueError:
                continue
            if isinstance(document, dict):
                return display_url(candidate), document
    return None
