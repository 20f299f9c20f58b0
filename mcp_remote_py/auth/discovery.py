"""Where a server's authorization server is and what it offers: MCP authorization discovery.

The look-ups, in the order the MCP authorization spec gives them:

* Protected Resource Metadata (RFC 9728). 2025-11-25 §Protected Resource Metadata Discovery
  Requirements: the ``resource_metadata`` URL from the 401's ``WWW-Authenticate`` when there is
  one; otherwise the well-known URIs, path-inserted first
  (``/.well-known/oauth-protected-resource/mcp``), then the root. (2025-06-18 §Authorization
  Server Location has only the header; trying the well-known URIs after it costs nothing.)
* Authorization Server Metadata. 2025-11-25 §Authorization Server Metadata Discovery: for an
  issuer with a path, RFC 8414 path insertion, OpenID Connect path insertion, OpenID Connect path
  appending; for an issuer without one, RFC 8414, then OpenID Connect. (2025-06-18 §Server
  Metadata Discovery knows only RFC 8414, the first of them.)
* 2025-03-26 §2.3 (a server without Protected Resource Metadata): the MCP server's origin is the
  authorization server, its RFC 8414 metadata is at the root, and without that the default
  endpoints ``/authorize``, ``/token`` and ``/register`` there (§2.3.3). That root document may
  name an issuer with a path on the same origin (``_same_origin_issuer`` says why only there).

Protected resource metadata must name its ``resource`` (RFC 9728 §2, §3.3), and it must be the
MCP endpoint or a prefix of it on its origin (§7.3). Authorization server metadata must name the
issuer it was looked up for (RFC 8414 §3.3); the issuer it states is the one recorded for the
RFC 9207 ``iss`` check (2026-07-28 §Authorization Response Validation).

Metadata requests carry no credential and none of the user's ``--header`` values (the
authorization server is usually another origin); they follow redirects, never from https to
http. A 4xx answer means "not here, try the next URI"; a 5xx or no answer is an error that
waiting may cure.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio

from ..shell.net import NetworkOptions, describe_network_error, display_url, is_loopback_host
from .errors import OAuthError

__all__ = [
    "PROTOCOL_VERSION",
    "AuthorizationServer",
    "Discovery",
    "authorization_server_metadata_urls",
    "canonical_resource",
    "check_endpoint_url",
    "discover",
    "fetch_json",
    "protected_resource_metadata_urls",
    "resource_covers",
]

log = logging.getLogger("mcp_remote_py")

# Sent on metadata requests (2025-03-26 §2.3.2 asks for the header during discovery).
PROTOCOL_VERSION = "2025-11-25"
METADATA_TIMEOUT = 15.0
MAX_REDIRECTS = 5
MAX_METADATA_BYTES = 1 << 20
_DEFAULT_PORTS = {"http": 80, "https": 443}

# --------------------------------------------------------------------------- URLs


def _split_http(url: str) -> tuple[str, str, str, str]:
    """(scheme, netloc without userinfo or default port, path, query), lower-cased scheme and
    host; ValueError for anything that is not an http(s) URL with a host."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ValueError(f"not a valid URL: {url!r}") from None
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(f"not an http:// or https:// URL with a host: {url!r}")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return scheme, netloc, parts.path, parts.query


def canonical_resource(url: str) -> str:
    """The canonical URI of an MCP server, as the RFC 8707 ``resource`` parameter.

    2025-11-25 §Canonical Server URI: lower-case scheme and host, no fragment, and no trailing
    slash; the default port is left out (``https://mcp.example.com/mcp``). The query is kept:
    RFC 8707 §2 discourages one but allows it where it identifies the resource.
    """
    scheme, netloc, path, query = _split_http(url)
    return urlunsplit((scheme, netloc, path.rstrip("/"), query, ""))


def _origin(url: str) -> str:
    scheme, netloc, _, _ = _split_http(url)
    return f"{scheme}://{netloc}"


def protected_resource_metadata_urls(server_url: str) -> list[str]:
    """RFC 9728 §3.1 well-known URIs for ``server_url``, in the order 2025-11-25 gives: the
    path-inserted one (when the endpoint has a path), then the root."""
    _, _, path, _ = _split_http(server_url)
    origin = _origin(server_url)
    path = path.rstrip("/")
    urls = [f"{origin}/.well-known/oauth-protected-resource{path}"] if path else []
    urls.append(f"{origin}/.well-known/oauth-protected-resource")
    return urls


def authorization_server_metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the priority order of 2025-11-25 §Authorization
    Server Metadata Discovery (RFC 8414 §3.1 path insertion; RFC 8414 §5 for OpenID Connect)."""
    _, _, path, _ = _split_http(issuer)
    origin = _origin(issuer)
    path = path.rstrip("/")
    if path:
        return [
            f"{origin}/.well-known/oauth-authorization-server{path}",
            f"{origin}/.well-known/openid-configuration{path}",
            f"{origin}{path}/.well-known/openid-configuration",
        ]
    return [
        f"{origin}/.well-known/oauth-authorization-server",
        f"{origin}/.well-known/openid-configuration",
    ]


def resource_covers(resource: str, server_url: str) -> bool:
    """True when the protected resource ``resource`` (from metadata) is the MCP endpoint
    ``server_url`` or a path prefix of it on the same origin (RFC 9728 §7.3: a client must not
    take metadata for another resource; a server at ``/mcp`` may name its origin)."""
    try:
        r_scheme, r_netloc, r_path, _ = _split_http(resource)
        s_scheme, s_netloc, s_path, _ = _split_http(server_url)
    except ValueError:
        return False
    if (r_scheme, r_netloc) != (s_scheme, s_netloc):
        return False
    r_path, s_path = r_path.rstrip("/"), s_path.rstrip("/")
    return s_path == r_path or s_path.startswith(r_path + "/")


def check_endpoint_url(url: object, what: str, *, allow_http: bool) -> str:
    """``url`` if it is an absolute http(s) URL fit to send secrets to, else OAuthError.

    2025-11-25 §Communication Security: authorization server endpoints MUST be HTTPS; plain http
    is accepted for a loopback host (a local test server) or when the user allowed it.
    """
    if not isinstance(url, str) or not url:
        raise OAuthError(f"{what} is missing or not a string")
    try:
        scheme, netloc, _, _ = _split_http(url)
    except ValueError:
        raise OAuthError(f"{what} is not an http(s) URL: {url[:200]!r}") from None
    if urlsplit(url).fragment:
        raise OAuthError(f"{what} has a fragment, which OAuth forbids: {url[:200]!r}")
    if scheme == "http" and not allow_http and not is_loopback_host(urlsplit(url).hostname or ""):
        raise OAuthError(
            f"{what} is plain http ({url[:200]}): tokens and codes would cross the network "
            "unencrypted",
            "The MCP authorization spec requires HTTPS for authorization servers; pass "
            "--allow-http only if this network is trusted",
        )
    return url


# --------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class AuthorizationServer:
    """What the client needs to know of an authorization server.

    ``metadata_url`` is None for the 2025-03-26 default endpoints (no metadata found).
    ``code_challenge_methods`` is None when the metadata does not list any.
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None = None
    code_challenge_methods: tuple[str, ...] | None = None
    # RFC 8414 §2: when absent, the default is client_secret_basic.
    token_endpoint_auth_methods: tuple[str, ...] = ("client_secret_basic",)
    scopes_supported: tuple[str, ...] | None = None
    client_id_metadata_documents: bool = False
    # RFC 9207: the authorization response carries ``iss``.
    iss_parameter: bool = False
    metadata_url: str | None = None
    # RFC 8628 §4: where a device authorization request goes (not yet checked with
    # ``check_endpoint_url``); None when the server has none.
    device_authorization_endpoint: str | None = None
    # RFC 8414 §2 grant_types_supported; None when the metadata does not list them.
    grant_types: tuple[str, ...] | None = None

    @classmethod
    def from_metadata(
        cls,
        data: Mapping[str, object],
        *,
        issuer: str,
        metadata_url: str,
        allow_http: bool,
        origin_root: bool = False,
    ) -> AuthorizationServer:
        """Validate RFC 8414 / OpenID Connect Discovery metadata fetched from ``metadata_url``
        for ``issuer``; OAuthError names what is wrong.

        ``origin_root``: the document is the 2025-03-26 one, fetched from the MCP server's own
        origin with no issuer known beforehand (see ``_same_origin_issuer``).
        """
        where = f"the authorization server metadata at {metadata_url}"
        stated = data.get("issuer")
        # RFC 8414 §3.3: the issuer in the document MUST be the one the client looked up,
        # else the metadata must not be used (a mix-up defence). A trailing slash is forgiven.
        # What is kept is the document's own string: the issuer an RFC 9207 iss is compared
        # with, as 2026-07-28 §Authorization Response Validation records it.
        if not isinstance(stated, str) or not (
            stated.rstrip("/") == issuer.rstrip("/")
            or (origin_root and _same_origin_issuer(stated, issuer))
        ):
            raise OAuthError(
                f"{where} names the issuer {str(stated)[:200]!r}, not {issuer!r}; RFC 8414 §3.3 "
                "forbids using it",
                "The server's protected resource metadata and its authorization server disagree "
                "about the issuer URL: tell the server's operator",
            )
        registration = data.get("registration_endpoint")
        device = data.get("device_authorization_endpoint")
        return cls(
            issuer=stated,
            authorization_endpoint=check_endpoint_url(
                data.get("authorization_endpoint"),
                f"authorization_endpoint in {where}",
                allow_http=allow_http,
            ),
            token_endpoint=check_endpoint_url(
                data.get("token_endpoint"), f"token_endpoint in {where}", allow_http=allow_http
            ),
            registration_endpoint=(
                check_endpoint_url(
                    registration, f"registration_endpoint in {where}", allow_http=allow_http
                )
                if registration is not None
                else None
            ),
            code_challenge_methods=_strings(data.get("code_challenge_methods_supported")),
            token_endpoint_auth_methods=_strings(data.get("token_endpoint_auth_methods_supported"))
            or ("client_secret_basic",),
            scopes_supported=_strings(data.get("scopes_supported")),
            client_id_metadata_documents=data.get("client_id_metadata_document_supported") is True,
            iss_parameter=data.get("authorization_response_iss_parameter_supported") is True,
            metadata_url=metadata_url,
            # Checked when the device grant is used (``grants.py``): a bad one must not stop a
            # browser sign-in.
            device_authorization_endpoint=device if isinstance(device, str) and device else None,
            grant_types=_strings(data.get("grant_types_supported")),
        )

    @classmethod
    def default_endpoints(cls, origin: str) -> AuthorizationServer:
        """2025-03-26 §2.3.3: without metadata, the endpoints are at fixed paths of the MCP
        server's origin."""
        return cls(
            issuer=origin,
            authorization_endpoint=f"{origin}/authorize",
            token_endpoint=f"{origin}/token",
            registration_endpoint=f"{origin}/register",
            token_endpoint_auth_methods=("none", "client_secret_post", "client_secret_basic"),
        )

    def check_pkce(self) -> None:
        """Refuse an authorization server that does not offer PKCE with S256.

        2025-11-25 §Authorization Code Protection: clients MUST use S256 and MUST verify PKCE
        support from the metadata; when ``code_challenge_methods_supported`` is absent (RFC 8414
        or OpenID Connect alike) they MUST refuse to proceed. The 2025-03-26 default endpoints
        have no metadata to check; that revision makes PKCE mandatory for every server (§2.1.1),
        so S256 is used there as it requires.
        """
        if self.metadata_url is None:
            return
        methods = self.code_challenge_methods
        if methods is not None and "S256" in methods:
            return
        listed = ", ".join(methods) if methods else "nothing"
        raise OAuthError(
            f"refusing to sign in at {self.issuer}: its metadata ({self.metadata_url}) lists "
            f"{listed} in code_challenge_methods_supported, not S256. Without PKCE S256 an "
            "intercepted authorization code could be redeemed by someone else, so the MCP "
            "authorization spec (2025-11-25 §Authorization Code Protection) requires clients to "
            "stop here",
            "Ask the server's operator to enable PKCE with S256 on the authorization server "
            "and to list it in code_challenge_methods_supported",
        )


def _same_origin_issuer(stated: str, origin: str) -> bool:
    """True when ``stated`` is an issuer URL on ``origin`` (any path, no query or fragment).

    Only for the 2025-03-26 era (§2.3.2 Server Metadata Discovery), and only there: a server
    without protected resource metadata, whose origin is its authorization server. That
    revision has the client discard the MCP endpoint's path and fetch
    ``/.well-known/oauth-authorization-server`` at the origin's root, so the client knows no
    issuer beforehand, and an authorization server whose issuer has a path (``/oauth``) can be
    found there and nowhere else: RFC 8414 §3.1 would put its metadata at
    ``/.well-known/oauth-authorization-server/oauth``, which no 2025-03-26 client asks for.
    RFC 8414 §3.3's rule exists against mix-up, a document served by one party naming another
    party's issuer; a document the MCP server's own origin serves about an issuer on that same
    origin is that origin speaking for itself (whoever can change one can change the other),
    so nothing is mixed up. A document naming an issuer on another origin is still refused.
    From 2025-06-18 on the issuer comes from protected resource metadata and the check is the
    plain one.
    """
    try:
        scheme, netloc, _, query = _split_http(stated)
    except ValueError:
        return False
    if query or urlsplit(stated).fragment:  # RFC 8414 §2: an issuer has neither
        return False
    return f"{scheme}://{netloc}" == _origin(origin)


def _strings(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(v for v in value if isinstance(v, str))


@dataclass(frozen=True)
class Discovery:
    """The outcome of discovery for one MCP server.

    ``resource`` is the RFC 8707 resource to ask tokens for: the ``resource`` of the protected
    resource metadata, else the server's canonical URI. ``resource_metadata_url`` is None when
    the server has no protected resource metadata (the 2025-03-26 fallback).
    ``scopes_supported`` is the protected resource's, for 2025-11-25 §Scope Selection Strategy.
    """

    server: AuthorizationServer
    resource: str
    resource_metadata_url: str | None
    scopes_supported: tuple[str, ...] | None = None


async def fetch_json(client: httpx.AsyncClient, url: str) -> dict[str, object] | None:
    """GET a public JSON document; None when it is not there (4xx, not a JSON object).

    Sent with ``client.send`` on a request built here, so the client's default headers (the
    user's ``--header`` values) stay off it. Each request is bounded (``METADATA_TIMEOUT``).
    Raises OAuthError (transient) for 5xx and time-outs, and network errors as
    ``describe_network_error`` describes them.
    """
    timeout = METADATA_TIMEOUT
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "identity",
        "MCP-Protocol-Version": PROTOCOL_VERSION,
        "User-Agent": client.headers.get("User-Agent", "mcp-remote-py"),
    }
    target = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        request = httpx.Request(
            "GET", target, headers=headers, extensions={"timeout": _timeouts(timeout)}
        )
        try:
            with trio.fail_after(timeout):
                response = await client.send(request, stream=True)
                try:
                    body = await _read_capped(response) if response.status_code == 200 else b""
                finally:
                    await response.aclose()
        except trio.TooSlowError:
            raise OAuthError(
                f"{display_url(target)} did not answer within {timeout:g} s", transient=True
            ) from None
        except httpx.TransportError as exc:
            raise describe_network_error(exc, target, NetworkOptions()) from exc
        if response.is_redirect and "location" in response.headers:
            nxt = target.join(response.headers["location"])
            if nxt.scheme not in ("http", "https") or (
                target.scheme == "https" and nxt.scheme == "http"
            ):
                raise OAuthError(
                    f"{display_url(target)} redirects to {display_url(nxt)}, a downgrade from "
                    "https that is refused"
                )
            target = nxt
            continue
        status = response.status_code
        if status >= 500:
            raise OAuthError(
                f"{display_url(target)} answered HTTP {status} {response.reason_phrase}".rstrip(),
                "The authorization service failed; try again in a moment",
                transient=True,
            )
        if status != 200:
            log.debug("no metadata at %s (HTTP %d)", display_url(target), status)
            return None
        try:
            data = json.loads(body)
        except ValueError:
            log.debug("the document at %s is not JSON", display_url(target))
            return None
        if not isinstance(data, dict):
            return None
        return data
    raise OAuthError(f"{url} redirects more than {MAX_REDIRECTS} times")


def _timeouts(total: float) -> dict[str, float | None]:
    timeouts: dict[str, float | None] = httpx.Timeout(total).as_dict()
    return timeouts


async def _read_capped(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_METADATA_BYTES:
            raise OAuthError(f"{display_url(response.url)} sent more than 1 MiB of metadata")
    return bytes(body)


async def _authorization_server(
    client: httpx.AsyncClient, issuer: str, *, allow_http: bool, origin_root: bool = False
) -> AuthorizationServer | None:
    for url in authorization_server_metadata_urls(issuer):
        data = await fetch_json(client, url)
        if data is not None:
            log.debug("authorization server metadata found at %s", url)
            return AuthorizationServer.from_metadata(
                data,
                issuer=issuer,
                metadata_url=url,
                allow_http=allow_http,
                origin_root=origin_root,
            )
    return None


async def discover(
    client: httpx.AsyncClient,
    server_url: str,
    *,
    resource_metadata_url: str | None = None,
    allow_http: bool = False,
) -> Discovery:
    """Find the authorization server of the MCP server at ``server_url``.

    ``resource_metadata_url`` is the ``resource_metadata`` of the server's 401 challenge, if it
    gave one. Raises OAuthError when the metadata is unusable, and network errors as
    UpstreamUnavailable or ConnectionLost.
    """
    candidates: list[str] = []
    if resource_metadata_url:
        candidates.append(
            check_endpoint_url(
                resource_metadata_url,
                "the resource_metadata URL of the server's WWW-Authenticate header",
                allow_http=allow_http,
            )
        )
    candidates += [u for u in protected_resource_metadata_urls(server_url) if u not in candidates]
    metadata: dict[str, object] | None = None
    metadata_url = ""
    for url in candidates:
        metadata = await fetch_json(client, url)
        if metadata is not None:
            metadata_url = url
            break
    if metadata is None:
        # 2025-03-26 §2.3.2: no protected resource metadata, so the MCP server's origin is the
        # authorization server (its path discarded), with metadata or the default endpoints.
        origin = _origin(server_url)
        log.debug(
            "no protected resource metadata for %s; trying %s as the issuer", server_url, origin
        )
        server = await _authorization_server(
            client, origin, allow_http=allow_http, origin_root=True
        )
        if server is None:
            check_endpoint_url(origin, "the MCP server", allow_http=allow_http)
            server = AuthorizationServer.default_endpoints(origin)
        return Discovery(server, canonical_resource(server_url), None)

    where = f"the protected resource metadata at {metadata_url}"
    servers = metadata.get("authorization_servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], str):
        raise OAuthError(
            f"{where} names no authorization server (authorization_servers is missing or empty)",
            "The server is misconfigured for OAuth: tell its operator",
        )
    resource = metadata.get("resource")
    if resource is None:
        # RFC 9728 §2: "resource" is REQUIRED, and §3.3: a client MUST NOT use metadata whose
        # resource is not the one it asked about. A document that names none cannot be checked
        # (it may be another server's), nor can its resource be the RFC 8707 one.
        raise OAuthError(
            f'{where} does not say which resource it describes (it has no "resource" '
            "field, which RFC 9728 §2 requires), so it cannot be checked against "
            f"{canonical_resource(server_url)} and RFC 9728 §3.3 forbids using it",
            "The server's OAuth setup is incomplete: tell its operator that its protected "
            f'resource metadata must include "resource": "{canonical_resource(server_url)}"',
        )
    if not isinstance(resource, str) or not resource_covers(resource, server_url):
        raise OAuthError(
            f"{where} is for another resource ({str(resource)[:200]!r}), not "
            f"{canonical_resource(server_url)}; RFC 9728 §7.3 forbids using it",
            "Check the server URL; if it is right, tell the server's operator",
        )
    resource = canonical_resource(resource)
    # RFC 9728 §7.6 leaves the choice among several to the client: the first is the primary.
    issuer = check_endpoint_url(
        servers[0], f"the authorization server named in {where}", allow_http=allow_http
    )
    server = await _authorization_server(client, issuer, allow_http=allow_http)
    if server is None:
        raise OAuthError(
            f"the authorization server {issuer} publishes no metadata at any of "
            f"{', '.join(authorization_server_metadata_urls(issuer))}",
            "The server is misconfigured for OAuth: tell its operator",
        )
    return Discovery(
        server,
        resource,
        metadata_url,
        _strings(metadata.get("scopes_supported")),
    )
