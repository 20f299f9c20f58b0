"""The Auth checks: were the credentials accepted, and if not, what does the server's 401 ask for?

A refusal is explained from its ``WWW-Authenticate`` challenge and the server's RFC 9728
protected-resource metadata, and answered with the command that stores a token.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import trio

from ..core.errors import UpstreamHttpError
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
    plain = NetworkOptions(
        connect_timeout=target.net.connect_timeout,
        ca_file=target.net.ca_file,
        insecure=target.net.insecure,
        ipv4=target.net.ipv4,
        tcp_keepalive=0,
    )
    async with build_client(plain) as client:
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
