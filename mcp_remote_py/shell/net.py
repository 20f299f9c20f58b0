"""The one place an httpx client is built, and where network failures become advice.

Design notes:

* TLS verifies against the operating system's trust store (truststore), so a corporate CA that IT
  installed on the machine just works; ``--ca-file`` adds one more; ``--insecure`` turns checking
  off and is announced loudly by the caller.
* ``--ipv4`` installs a trio hostname resolver that asks only for A records. Forcing the family
  through httpx's ``transport=`` would have turned off the proxies from the environment
  (HTTP(S)_PROXY, NO_PROXY), which corporate users depend on.
* Redirects are followed here, not by httpx, and only within the same origin (or http → https on
  the same host): a credential given for one server must never be carried to another. A
  Location (or a legacy endpoint event) that is no URL is the server's ProtocolViolation
  (``resolve_location``), like an answer that breaks HTTP (``http1.MalformedAnswer``).
* Every request goes out with ``Accept-Encoding: identity``: a reverse proxy that gzips
  ``text/event-stream`` holds events in its compressor until the stream ends, and a POST may be
  answered with a stream.
"""

from __future__ import annotations

import errno
import functools
import html
import json
import re
import socket
import ssl
import sys
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from .._version import __version__
from ..core.backoff import parse_retry_after
from ..core.errors import ConnectionLost, ProtocolViolation, UpstreamHttpError, UpstreamUnavailable
from .http1 import Http1Transport, MalformedAnswer
from .logs import redact

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = [
    "MAX_MESSAGE",
    "NetworkOptions",
    "build_client",
    "describe_network_error",
    "display_url",
    "http_error",
    "install_ipv4_resolver",
    "is_loopback_host",
    "proxy_for",
    "redirect_allowed",
    "resolve_location",
    "same_origin",
    "send",
]

MAX_REDIRECTS = 5
ERROR_EXCERPT = 300
# The largest message the relay takes from the server (--max-message-size): room for the
# 100 MB results some tools return, not for a server that never stops sending.
MAX_MESSAGE = 256 * 1024 * 1024
DOCTOR_HINT = "Run `mcp-remote-py doctor {url}` to find out why"


@dataclass(frozen=True, slots=True)
class NetworkOptions:
    connect_timeout: float = 10.0
    ca_file: str | None = None
    insecure: bool = False
    ipv4: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    tcp_keepalive: float = 30.0  # seconds of silence before TCP probes; 0: off
    http2: bool = False  # offer HTTP/2 over TLS (ALPN); plain http stays HTTP/1.1
    httpx_transport: bool = False  # httpx's transport (httpcore, h11) instead of http1.py
    max_message: int = MAX_MESSAGE  # bytes in one server message (a JSON body, an SSE event)


def _ssl_context(options: NetworkOptions) -> ssl.SSLContext:
    if options.insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import truststore  # imported here: plain-http use never pays for it

    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if options.ca_file:
        context.load_verify_locations(cafile=options.ca_file)
    return context


def _keepalive_options(idle: float) -> list[tuple[int, int, int]]:
    """TCP keepalive: after ``idle`` seconds of silence, probe every 10 s, give up after 3.

    A NAT or proxy that silently dropped a long-lived event stream is then noticed (the read
    fails) instead of leaving the relay listening to nothing.
    """
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    seconds = max(1, int(idle))
    if hasattr(socket, "TCP_KEEPIDLE"):  # Linux, Windows 10+
        options.append((socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, seconds))
    elif hasattr(socket, "TCP_KEEPALIVE"):  # macOS
        options.append((socket.IPPROTO_TCP, socket.TCP_KEEPALIVE, seconds))
    if hasattr(socket, "TCP_KEEPINTVL"):
        options.append((socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10))
    if hasattr(socket, "TCP_KEEPCNT"):
        options.append((socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3))
    return options


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, consulted only for answers that set a cookie. httpx hands every
    response to the jar, which wraps it in two urllib objects first: about 5% of the relay's CPU
    per message, for answers that almost never carry Set-Cookie. Cookies still work (sticky
    load balancers, Cloudflare Access)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


def build_client(options: NetworkOptions) -> httpx.AsyncClient:
    """The relay's HTTP client: bounded connect and write, unbounded read (streams are long)."""
    client = _build_client(options)
    client._cookies = _Cookies()  # the setter would copy it into a plain httpx.Cookies
    return client


def _build_client(options: NetworkOptions) -> httpx.AsyncClient:
    headers = {"User-Agent": f"mcp-remote-py/{__version__}", "Accept-Encoding": "identity"}
    headers.update(dict(options.headers))
    settings: dict[str, Any] = {
        "headers": headers,
        "timeout": httpx.Timeout(connect=options.connect_timeout, read=None, write=60.0, pool=None),
        "follow_redirects": False,
        "trust_env": True,
    }
    socket_options = _keepalive_options(options.tcp_keepalive) if options.tcp_keepalive > 0 else []

    @functools.cache
    def ssl_context() -> ssl.SSLContext:  # made once, on first use
        return _ssl_context(options)

    def httpx_transport(proxy: str | None = None) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(
            verify=ssl_context(),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
            socket_options=socket_options,
            proxy=proxy,
            http2=options.http2,
        )

    transport: httpx.AsyncBaseTransport
    if options.http2 or options.httpx_transport:
        transport = httpx_transport()
    else:
        transport = Http1Transport(ssl_context, socket_options)
    # Giving httpx a transport turns its environment proxies off: mount them back, with httpx's
    # own reading of HTTP(S)_PROXY/ALL_PROXY/NO_PROXY, on httpx's transport (it speaks to
    # proxies; Http1Transport does not).
    from httpx._utils import get_environment_proxies

    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: None if proxy is None else httpx_transport(proxy)
        for pattern, proxy in get_environment_proxies().items()
    }
    return httpx.AsyncClient(transport=transport, mounts=mounts, **settings)


class _IPv4Resolver(trio.abc.HostnameResolver):
    """getaddrinfo restricted to AF_INET, explaining itself when a host has only IPv6."""

    async def getaddrinfo(
        self,
        host: bytes | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        try:
            return await trio.to_thread.run_sync(
                socket.getaddrinfo, host, port, socket.AF_INET, type, proto, flags,
                abandon_on_cancel=True,
            )  # fmt: skip
        except socket.gaierror as exc:
            try:
                await trio.to_thread.run_sync(
                    socket.getaddrinfo, host, port, socket.AF_INET6, type, proto, flags,
                    abandon_on_cancel=True,
                )  # fmt: skip
            except OSError:
                raise exc from None
            name = host.decode() if isinstance(host, bytes) else host
            raise socket.gaierror(
                exc.errno, f"{name} has only IPv6 addresses, and --ipv4 allows IPv4 only"
            ) from None

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
        result: tuple[str, str] = await trio.to_thread.run_sync(
            socket.getnameinfo, sockaddr, flags, abandon_on_cancel=True
        )
        return result


def install_ipv4_resolver() -> None:
    """Make every name lookup in this trio run IPv4-only (call inside ``trio.run``)."""
    trio.socket.set_custom_hostname_resolver(_IPv4Resolver())


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def display_url(url: httpx.URL) -> str:
    """The URL for logs and messages: no user info, query or fragment (they may hold secrets)."""
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return _origin(a) == _origin(b)


def redirect_allowed(source: httpx.URL, target: httpx.URL) -> bool:
    """Whether a redirect may carry the request (and its credentials) on: within the origin
    (scheme, host and port), or the one upgrade from http on port 80 to https on port 443 of
    the same host. Any other port is another server, whoever runs it (RFC 6454 §4)."""
    if same_origin(source, target):
        return True
    return _origin(source) == ("http", source.host, 80) and _origin(target) == (
        "https",
        source.host,
        443,
    )


def resolve_location(base: httpx.URL, location: str, what: str = "redirect Location") -> httpx.URL:
    """A URL the server sent (a redirect's Location, a legacy endpoint event) resolved against
    ``base``; one that is no URL (``http://[::1``, a control character, a bad port or host name)
    is the server's ProtocolViolation, not a crash. Only httpx's reason is quoted (a port, a
    character, a host name), never the value: its query may hold a token."""
    try:
        return base.join(location)
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        raise ProtocolViolation(
            f"the server sent a {what} that is not a URL ({str(exc)[:80]})",
            "the server, or a proxy in front of it, is misconfigured; "
            + DOCTOR_HINT.format(url=display_url(base)),
        ) from None


async def _send_once(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``client.send(request, stream=True)`` without the layers of it the relay does not use
    (auth flow, redirect loop, event hooks, logging): about 90 µs less CPU for every message,
    an eighth of what a small call costs here. The request already carries the client's
    headers, cookies and timeouts (``build_request``); cookies the answer sets are kept, and
    proxies apply, as with ``client.send``."""
    try:
        transport = client._transport_for_url(request.url)
    except AttributeError:  # pragma: no cover - another httpx: take the documented way
        return await client.send(request, stream=True)
    response = await transport.handle_async_request(request)
    response.request = request
    client.cookies.extract_cookies(response)
    return response


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send ``request`` streaming, following same-origin redirects; the caller closes the answer.

    ``response.url`` is where the answer finally came from, so callers can keep using it.
    """
    for _ in range(MAX_REDIRECTS + 1):
        response = await _send_once(client, request)
        if not response.is_redirect:
            return response
        await response.aclose()
        target = resolve_location(request.url, response.headers["location"])
        if not redirect_allowed(request.url, target):
            raise ProtocolViolation(
                f"the server redirected {display_url(request.url)} to another origin, "
                f"{display_url(target)}",
                "the relay never carries your headers or tokens to another server; "
                "if that server is the right one, use its URL directly",
            )
        if response.status_code in (301, 302, 303) and request.method not in ("GET", "HEAD"):
            raise ProtocolViolation(
                f"the server answered {request.method} {display_url(request.url)} with a "
                f"{response.status_code} redirect to {display_url(target)}, which would drop "
                "the message",
                f"use {display_url(target)} as the server URL",
            )
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
        request = client.build_request(
            request.method, target, headers=headers, content=request.content
        )
    raise ProtocolViolation(
        f"the server redirected more than {MAX_REDIRECTS} times, ending at "
        f"{display_url(request.url)}",
        "this is usually a redirect loop in a reverse proxy (for example Cloudflare's "
        '"Always Use HTTPS" in front of a server that redirects back to http)',
    )


def proxy_for(url: httpx.URL) -> str | None:
    """The environment's proxy for ``url`` (as httpx will use it), shown without credentials."""
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass_environment(url.host, proxies):  # type: ignore[attr-defined]
        return None
    proxy = proxies.get(url.scheme) or proxies.get("all")
    return display_url(httpx.URL(proxy)) if proxy else None


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                stack.append(nxt)
    return seen


def describe_network_error(
    exc: httpx.TransportError, url: httpx.URL, options: NetworkOptions
) -> UpstreamUnavailable | ConnectionLost | ProtocolViolation:
    """Turn an httpx transport failure into a user-facing error that names the cause.

    Only a failure to connect proves that nothing was sent (UpstreamUnavailable); a connection
    that broke later may have carried the request to the server (ConnectionLost). An answer that
    came but breaks HTTP (``MalformedAnswer``) is a ProtocolViolation: the same request would
    meet it again.
    """
    if isinstance(exc, MalformedAnswer):
        return ProtocolViolation(
            f"the answer from {url.host} is not valid HTTP/1.1: {exc}",
            "the server, or a proxy in front of it, sent a broken answer; "
            + DOCTOR_HINT.format(url=display_url(url)),
        )
    if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)):
        return ConnectionLost(
            f"the connection to {url.host} broke before the server answered "
            f"({exc or type(exc).__name__})"
        )
    where = f"{url.host}:{url.port or {'http': 80, 'https': 443}.get(url.scheme, '')}"
    doctor = DOCTOR_HINT.format(url=display_url(url))
    proxy = proxy_for(url)
    if proxy:
        # The connection went to the proxy, not the server: name the one that failed.
        where = f"the proxy {proxy} (from {url.scheme.upper()}_PROXY/ALL_PROXY)"
        doctor = f"Check HTTPS_PROXY, HTTP_PROXY and NO_PROXY. {doctor}"
    causes = _causes(exc)
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamUnavailable(
            f"connecting to {where} timed out after {options.connect_timeout:g} s",
            f"The server may be down, or a firewall drops the connection. {doctor}",
            kind="timeout",
        )
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return UpstreamUnavailable(
                f"the TLS certificate of {url.host} was not accepted: "
                f"{cause.verify_message or cause.reason}",
                "If a corporate proxy inspects TLS, pass its CA certificate with --ca-file PATH. "
                + doctor,
                kind="tls",
            )
        if isinstance(cause, ssl.SSLError):
            return UpstreamUnavailable(
                f"the TLS handshake with {where} failed: {cause.reason or cause}",
                f"Check that {where} serves HTTPS (http:// URLs need --allow-http). {doctor}",
                kind="tls",
            )
        if isinstance(cause, socket.gaierror):
            message = cause.strerror or str(cause)
            if "only IPv6" in message:
                return UpstreamUnavailable(
                    message, "Remove --ipv4 to connect over IPv6", kind="dns"
                )
            return UpstreamUnavailable(
                f"the name {url.host} could not be resolved ({message})",
                f"Check the spelling of the URL and your DNS or VPN. {doctor}",
                kind="dns",
            )
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return UpstreamUnavailable(
                f"{where} refused the connection",
                f"Is the server running and listening on that port? {doctor}",
                kind="refused",
            )
        if isinstance(cause, OSError) and cause.errno in (
            errno.ENETUNREACH,
            errno.EHOSTUNREACH,
            errno.EADDRNOTAVAIL,
        ):
            hint = "If the host has an IPv6 address that does not work here, try --ipv4. "
            return UpstreamUnavailable(
                f"{where} is unreachable from this machine ({cause.strerror})",
                hint + doctor,
                kind="unreachable",
            )
    if isinstance(exc, httpx.ProxyError):
        return UpstreamUnavailable(
            f"the HTTP proxy refused or failed the connection to {where}: {exc}",
            "Check HTTPS_PROXY / HTTP_PROXY / NO_PROXY in the environment",
            kind="proxy",
        )
    return UpstreamUnavailable(
        f"the connection to {where} failed: {exc or type(exc).__name__}", doctor, kind="other"
    )


_HINTS = {
    401: "The server wants credentials: store a token with `mcp-remote-py auth set URL`, or "
    "pass --header 'Authorization: Bearer ${TOKEN}' with TOKEN set in the client config's env",
    403: "The server refused access: check the token's permissions, or an Origin/IP allow-list",
    404: "There is no MCP endpoint at this URL: check the path (often /mcp, or /sse for older "
    "servers)",
    405: "The URL does not accept this method: check the path (often /mcp, or /sse for older "
    "servers) and --transport",
    406: "The server refused the Accept header: it may not implement MCP's Streamable HTTP",
    413: "The message is larger than the server, or a proxy in front of it, accepts: raise the "
    "limit there (nginx: client_max_body_size, 1 MB unless set)",
    429: "The server is rate-limiting; the relay waits and tries again",
}


def _excerpt(body: bytes, content_type: str) -> str:
    text = body.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            data = json.loads(text)
        except ValueError:
            pass
        else:
            if isinstance(data, dict):
                error = data.get("error")
                if isinstance(error, dict) and isinstance(error.get("message"), str):
                    return str(error["message"])[:ERROR_EXCERPT]
                if isinstance(error, str):
                    return error[:ERROR_EXCERPT]
    if "html" in content_type:
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
        text = html.unescape(text)
    text = " ".join(text.split())
    return text[:ERROR_EXCERPT] + ("…" if len(text) > ERROR_EXCERPT else "")


async def http_error(response: httpx.Response, hint: str | None = None) -> UpstreamHttpError:
    """An error for a non-2xx answer, with a short excerpt of its body (read at most 8 KiB)."""
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= 8192:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    status = response.status_code
    if hint is None:
        hint = _HINTS.get(status, "")
        if status >= 500:
            hint = "The server, or a proxy in front of it, failed; the relay tries again later"
            if 520 <= status <= 530:
                hint = "Cloudflare could not reach the origin server behind it (52x)"
    auth_failed = status in (401, 403)
    return UpstreamHttpError(
        status,
        response.reason_phrase,
        # The excerpt reaches the client in an error's text: it is redacted as a log line is
        # (a server may echo the token it refused, or a signed URL).
        redact(_excerpt(bytes(body), response.headers.get("content-type", ""))),
        hint,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        challenge=dict(response.headers) if auth_failed else None,
        sent_authorization=response.request.headers.get("authorization") if auth_failed else None,
        body=bytes(body),
    )
