"""The remote checks: name and network, TLS, HTTP, a real MCP session, auth and streaming.

Every request goes out as the relay's would: the client from ``net.build_client`` with the
user's headers (and a stored token), the same ``--ipv4``, ``--ca-file`` and proxies. The MCP
session is opened through the project's own transports (``open_transport``), so what works here
works in the relay. Raw probes beside it look at what the transports hide: each redirect, the
status and headers of a failure, the timing of an event stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from .._version import __version__
from ..core.errors import (
    ConnectionLost,
    ProtocolViolation,
    UpstreamError,
    UpstreamHttpError,
    UpstreamUnavailable,
)
from ..core.jsonrpc import Kind, Message, line, parse_message
from ..shell.net import (
    NetworkOptions,
    build_client,
    describe_network_error,
    display_url,
    same_origin,
)
from ..shell.relay import RelayOptions
from ..shell.transports.base import read_events
from . import network
from .http_checks import (
    buffering_fixes,
    cloudflare_meaning,
    idle_cut_advice,
    parse_www_authenticate,
    proxy_kind,
)
from .report import FAIL, INFO, PASS, SKIP, WARN, Report

__all__ = ["Target", "run_remote"]

PROTOCOL_VERSION = "2025-11-25"
ACCEPT_POST = "application/json, text/event-stream"
MAX_HOPS = 10
SESSION_TIMEOUT = 30.0
FIRST_EVENT_WAIT = 3.0


@dataclass
class Target:
    """What to check and how the relay would reach it."""

    options: RelayOptions
    user_auth: bool = False  # the user gave an Authorization header
    stored: Any = None  # (Credential, where) from the credential store, or None
    store_error: str | None = None
    soak: float = 0.0
    hosts: dict[str, list[str]] = field(default_factory=dict)

    @property
    def url(self) -> httpx.URL:
        return self.options.url

    @property
    def net(self) -> NetworkOptions:
        return self.options.network

    @property
    def shown(self) -> str:
        return display_url(self.url)

    @property
    def stream_window(self) -> float:
        """How long an event stream's headers or first event may take before we call it held."""
        return min(5.0, max(1.0, self.net.connect_timeout))


@dataclass
class Probe:
    """What the raw initialize POST (and the legacy GET) found."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = ""
    excerpt: str = ""
    final_url: httpx.URL | None = None
    hops: list[tuple[int, str, str]] = field(default_factory=list)
    error: str | None = None
    session_id: str | None = None
    protocol_version: str | None = None
    streamable: bool = False
    headers_ms: float = 0.0
    first_event_ms: float | None = None
    end_ms: float | None = None
    legacy: bool = False
    legacy_note: str = ""
    proxy: str | None = None


def _ms(since: float) -> float:
    return (time.monotonic() - since) * 1000


def _initialize_body(request_id: str = "doctor-1") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-remote-py doctor", "version": __version__},
        },
    }


async def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= 4096:
                break
    except httpx.HTTPError:
        pass
    text = body.decode("utf-8", "replace")
    content_type = response.headers.get("content-type", "")
    if "html" in content_type:
        import re

        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


# ----------------------------------------------------------------------------- name and network


async def check_network(report: Report, target: Target) -> bool:
    """Resolve and connect; True when something accepts connections (or a proxy does)."""
    section = "Name and network"
    url = target.url
    port = url.port or (443 if url.scheme == "https" else 80)
    proxy_shown = _proxy(target.url)
    host = url.host
    if proxy_shown:
        proxy_url = httpx.URL(proxy_shown)
        report.add(
            "network.proxy",
            section,
            INFO,
            f"requests to {host} go through the proxy {proxy_shown} (from the environment)",
        )
        host = proxy_url.host
        port = proxy_url.port or (443 if proxy_url.scheme == "https" else 80)
    ordered, error = await network.lookup(host, port, target.hosts)
    if error is not None:
        report.add(
            "network.dns",
            section,
            FAIL,
            f"the name {host} does not resolve ({error})",
            fix="Check the spelling of the URL, and your DNS or VPN (a name that only resolves "
            "on the company network needs the VPN)",
        )
        return False
    v4 = [a for a in ordered if ":" not in a]
    v6 = [a for a in ordered if ":" in a]
    overridden = " (from " + network.HOSTS_ENV + ")" if host.lower() in target.hosts else ""
    literal = ordered == [host.strip("[]")]
    report.add(
        "network.dns",
        section,
        PASS,
        f"{host} is an address (no name to resolve)"
        if literal
        else f"{host} resolves{overridden}: A {', '.join(v4) or 'none'}; "
        f"AAAA {', '.join(v6) or 'none'}",
        details=[f"order tried: {', '.join(ordered)}"] if v4 and v6 else [],
        data={"a": v4, "aaaa": v6, "order": ordered},
    )
    timeout = min(target.net.connect_timeout, 5.0)
    attempts = await network.connect_all(ordered, port, timeout)
    verdict = network.family_verdict(host, port, ordered, attempts, ipv4=target.net.ipv4)
    report.add(
        "network.connect",
        section,
        verdict.status,
        verdict.summary,
        details=[a.describe() for a in attempts],
        fix=verdict.fix,
        data={"attempts": [a.__dict__ for a in attempts]},
    )
    return any(a.ok for a in attempts)


def _proxy(url: httpx.URL) -> str | None:
    from ..shell.net import proxy_for

    return proxy_for(url)


# ----------------------------------------------------------------------------- TLS


async def check_tls(report: Report, target: Target) -> bool:
    """True when the relay's TLS settings accept the server (or the URL is http)."""
    section = "TLS"
    url = target.url
    if url.scheme != "https":
        return True
    from .tls import Tunnel, probe_tls

    tunnel: Tunnel | None = None
    proxy_shown = _proxy(url)
    if proxy_shown:
        raw = _raw_proxy(url)
        parsed = httpx.URL(raw) if raw else httpx.URL(proxy_shown)
        if parsed.scheme != "http":
            report.add(
                "tls.handshake",
                section,
                SKIP,
                f"not checked through the {parsed.scheme} proxy (the HTTP checks below still "
                "use it)",
            )
            return True
        tunnel = Tunnel(
            parsed.host, parsed.port or 80, parsed.username or "", parsed.password or ""
        )
    port = url.port or 443
    address: str | None = None
    if tunnel is None and (target.net.ipv4 or url.host.lower() in target.hosts):
        ordered, _ = await network.lookup(url.host, port, target.hosts)
        usable = [a for a in ordered if ":" not in a] if target.net.ipv4 else ordered
        address = usable[0] if usable else None
    result = await trio.to_thread.run_sync(
        lambda: probe_tls(
            url.host,
            port,
            ca_file=target.net.ca_file,
            timeout=min(target.net.connect_timeout, 10.0),
            tunnel=tunnel,
            address=address,
        ),
        abandon_on_cancel=True,
    )
    insecure = target.net.insecure
    soft = WARN if insecure else FAIL
    off = " (--insecure hides this from the relay; fix it instead)" if insecure else ""
    if result.error is not None:
        report.add(
            "tls.handshake",
            section,
            FAIL,
            f"the TLS handshake with {url.host}:{port} failed: {result.error}",
            fix="Check that the port serves HTTPS; a proxy or firewall may intercept it",
        )
        return False
    report.add(
        "tls.handshake",
        section,
        PASS,
        f"{result.version} handshake with {url.host}:{port} in {result.handshake_ms:.0f} ms "
        f"({result.cipher})",
    )
    cert = result.certificate
    issuer = cert.issuer_text() if cert else "an unknown issuer"
    extra = " and --ca-file" if target.net.ca_file else ""
    chain_ok = result.system_error is None
    if result.system_error is None and result.certifi_error is None:
        report.add(
            "tls.chain",
            section,
            PASS,
            f"the certificate chain (issued by {issuer}) is trusted by the system store{extra} "
            "and by certifi",
        )
    elif result.system_error is None and target.net.ca_file:
        report.add(
            "tls.chain",
            section,
            PASS,
            f"trusted thanks to --ca-file (issued by {issuer}); certifi's bundle does not know it",
        )
    elif result.system_error is None:
        report.add(
            "tls.chain",
            section,
            PASS,
            f"trusted by the system store (which the relay uses), not by certifi's bundle: "
            f"issued by {issuer}",
            details=[
                "a CA installed on this machine, e.g. a corporate TLS-inspection proxy; tools "
                "with their own CA bundle (Node's mcp-remote, Python's certifi) would refuse it"
            ],
        )
    elif result.certifi_error is None:
        report.add(
            "tls.chain",
            section,
            soft,
            f"not trusted by the system store ({result.system_error}), though certifi's bundle "
            f"trusts it{off}",
            fix="The system's CA certificates may be outdated: update them (e.g. "
            "`sudo apt install --reinstall ca-certificates`, or the OS updates), or pass "
            "--ca-file with the issuing CA",
        )
    else:
        self_signed = cert is not None and cert.self_signed
        if self_signed:
            summary = (
                f"the certificate is self-signed ({cert.subject_text() if cert else ''}) and "
                f"trusted by neither the system store nor certifi{off}"
            )
            fix = (
                "Give the server's certificate (PEM) to the relay with --ca-file PATH, or "
                "install it in the system trust store"
            )
        else:
            summary = (
                f"the chain is trusted by neither the system store{extra} nor certifi: issued by "
                f"{issuer}, a CA neither knows{off}"
            )
            fix = (
                "If you are on a corporate network, a TLS-inspecting proxy probably issued it: "
                "get its CA certificate (PEM) from IT and pass --ca-file PATH (or install it in "
                "the system store). Otherwise the server's chain is incomplete or private"
            )
        report.add(
            "tls.chain",
            section,
            soft,
            summary,
            details=[f"system store: {result.system_error}", f"certifi: {result.certifi_error}"],
            fix=fix,
        )
    ok = chain_ok or insecure
    if cert is not None:
        from .tls import hostname_matches

        names = cert.dns_names + cert.ip_addresses
        if hostname_matches(cert, url.host):
            report.add("tls.hostname", section, PASS, f"the certificate is valid for {url.host}")
        else:
            report.add(
                "tls.hostname",
                section,
                soft,
                f"the certificate is not for {url.host}: it names {', '.join(names) or 'nothing'}"
                f"{off}",
                fix="Use a URL with one of the certificate's names, or fix the server's "
                "certificate (a proxy may be answering for another site)",
            )
            ok = ok and insecure
        days = cert.days_left()
        when = cert.not_after.strftime("%Y-%m-%d")
        if days < 0:
            report.add(
                "tls.expiry",
                section,
                soft,
                f"the certificate expired {-days:.0f} days ago ({when}){off}",
                fix="The server's operator must renew it",
            )
            ok = ok and insecure
        elif days < 14:
            report.add(
                "tls.expiry",
                section,
                WARN,
                f"the certificate expires in {days:.0f} days ({when})",
                fix="The server's operator should renew it soon",
            )
        else:
            report.add(
                "tls.expiry", section, PASS, f"the certificate expires in {days:.0f} days ({when})"
            )
    return ok


def _raw_proxy(url: httpx.URL) -> str | None:
    """The environment's proxy URL for ``url`` with its credentials (for the CONNECT tunnel)."""
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass_environment(url.host, proxies):  # type: ignore[attr-defined]
        return None
    return proxies.get(url.scheme) or proxies.get("all")


# ----------------------------------------------------------------------------- HTTP


def _origin_changed(source: httpx.URL, target: httpx.URL) -> bool:
    if same_origin(source, target):
        return False
    return not (source.scheme == "http" and target.scheme == "https" and source.host == target.host)


async def _post_initialize(
    client: httpx.AsyncClient, url: httpx.URL, probe: Probe
) -> httpx.Response | None:
    """POST initialize, following redirects by hand (recording each); the open final answer."""
    body = line(_initialize_body())
    current = url
    seen = {str(url)}
    for _ in range(MAX_HOPS):
        request = client.build_request(
            "POST",
            current,
            content=body,
            headers={"Accept": ACCEPT_POST, "Content-Type": "application/json"},
        )
        started = time.monotonic()
        response = await client.send(request, stream=True)
        probe.headers_ms = _ms(started)
        if not response.is_redirect:
            probe.final_url = current
            return response
        await response.aclose()
        location = current.join(response.headers.get("location", ""))
        probe.hops.append((response.status_code, display_url(current), display_url(location)))
        if _origin_changed(current, location):
            probe.final_url = current
            probe.status = response.status_code
            return None
        if str(location) in seen:
            probe.final_url = location
            probe.status = response.status_code
            probe.error = "loop"
            return None
        seen.add(str(location))
        current = location
    probe.final_url = current
    probe.error = "too many"
    return None


async def _read_initialize_answer(response: httpx.Response, probe: Probe, started: float) -> None:
    """Read the initialize answer (JSON or SSE) and time it."""
    content_type = probe.content_type
    body: dict[str, Any] | None = None
    if content_type == "application/json":
        raw = await response.aread()
        probe.first_event_ms = probe.end_ms = _ms(started)
        try:
            parsed = json.loads(raw)
            body = parsed if isinstance(parsed, dict) else None
        except ValueError:
            body = None
    else:
        async for event in read_events(response):
            if probe.first_event_ms is None:
                probe.first_event_ms = _ms(started)
            if event.data:
                try:
                    parsed = json.loads(event.data)
                except ValueError:
                    continue
                if isinstance(parsed, dict) and parsed.get("id") == "doctor-1":
                    body = parsed
                    break
        probe.end_ms = _ms(started)
    if body is not None and isinstance(body.get("result"), dict):
        probe.streamable = True
        probe.protocol_version = body["result"].get("protocolVersion")


async def probe_http(report: Report, target: Target, client: httpx.AsyncClient) -> Probe:
    """The raw probes: POST initialize (Streamable HTTP), then GET the stream (legacy SSE)."""
    section = "HTTP"
    probe = Probe()
    timeout = target.net.connect_timeout + 20
    started = time.monotonic()
    try:
        with trio.fail_after(timeout):
            response = await _post_initialize(client, target.url, probe)
    except httpx.TransportError as exc:
        error = describe_network_error(exc, target.url, target.net)
        probe.error = str(error)
        report.add("http.reach", section, FAIL, f"no HTTP answer: {error}", fix=error.hint)
        return probe
    except trio.TooSlowError:
        probe.error = "timeout"
        report.add(
            "http.reach",
            section,
            FAIL,
            f"no HTTP answer within {timeout:g} s",
            fix="A proxy may be holding the answer back, or the server hangs",
        )
        return probe
    _report_redirects(report, target, probe)
    if response is None:
        return probe
    try:
        probe.status = response.status_code
        probe.headers = {k.lower(): v for k, v in response.headers.items()}
        probe.content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if response.status_code < 300 and probe.content_type in (
            "application/json",
            "text/event-stream",
        ):
            probe.session_id = response.headers.get("mcp-session-id")
            with trio.move_on_after(timeout):
                await _read_initialize_answer(response, probe, started)
        else:
            probe.excerpt = await _excerpt(response)
    except (httpx.HTTPError, ConnectionLost) as exc:
        probe.error = f"the answer broke off ({exc})"
    finally:
        await response.aclose()
    _report_status(report, target, probe)
    return probe


def _report_redirects(report: Report, target: Target, probe: Probe) -> None:
    section = "HTTP"
    if not probe.hops:
        return
    chain = [f"{status}: {source} -> {dest}" for status, source, dest in probe.hops]
    last_status, _, last = probe.hops[-1]
    if probe.error == "loop":
        report.add(
            "http.redirects",
            section,
            FAIL,
            f"a redirect loop: {len(probe.hops)} redirects lead back to {last}",
            details=chain,
            fix="A reverse proxy and the server redirect in a circle, typically Cloudflare's "
            '"Always Use HTTPS" (or SSL mode Flexible) in front of an origin that redirects '
            "https back to http, or to another host. Fix the redirect at the origin (e.g. "
            "HTTPS_METHOD=noredirect for nginx-proxy) or set Cloudflare's SSL mode to Full",
        )
    elif probe.error == "too many":
        report.add(
            "http.redirects",
            section,
            FAIL,
            f"more than {MAX_HOPS} redirects",
            details=chain,
            fix="Use the final URL directly, and fix the redirect chain on the server",
        )
    elif probe.final_url is not None and _origin_changed(
        httpx.URL(probe.hops[-1][1]), httpx.URL(last)
    ):
        report.add(
            "http.redirects",
            section,
            FAIL,
            f"the server redirects to another origin, {last}",
            details=chain,
            fix="The relay never carries your headers and tokens to another server. If that "
            f"server is the right one, use {last} as the URL",
        )
    else:
        upgrade = any(
            httpx.URL(s).scheme == "http" and httpx.URL(d).scheme == "https"
            for _, s, d in probe.hops
        )
        moved_post = any(status in (301, 302, 303) for status, _, _ in probe.hops)
        if moved_post:
            report.add(
                "http.redirects",
                section,
                FAIL,
                f"the server answers POST with a {last_status} redirect to {last}, which turns "
                "the message into a GET",
                details=chain,
                fix=f"Use {last} as the URL",
            )
        else:
            report.add(
                "http.redirects",
                section,
                WARN,
                f"redirected to {last}" + (" (http -> https)" if upgrade else ""),
                details=chain,
                fix=f"Use {last} as the URL: every request costs an extra round trip",
            )


def _report_status(report: Report, target: Target, probe: Probe) -> None:
    section = "HTTP"
    status = probe.status
    if status is None:
        return
    kind = proxy_kind(probe.headers)
    via = f" (answered by {kind})" if kind else ""
    where = display_url(probe.final_url or target.url)
    if 200 <= status < 300:
        if probe.streamable:
            report.add(
                "http.status",
                section,
                PASS,
                f"POST initialize answered {status} {probe.content_type} in "
                f"{probe.headers_ms:.0f} ms{via}",
            )
        else:
            report.add(
                "http.status",
                section,
                FAIL,
                f"POST initialize answered {status} {probe.content_type or 'without a type'}, "
                f"not an MCP answer{via}: {probe.excerpt or '(empty)'}",
                fix="The URL looks like a web page or another API, not an MCP endpoint: check "
                "the path (often /mcp, or /sse for older servers)",
            )
        return
    meaning = cloudflare_meaning(status)
    if meaning is not None:
        report.add(
            "http.status",
            section,
            FAIL,
            f"HTTP {status} from Cloudflare: {meaning}",
            fix="The problem is between Cloudflare and the origin server, not on this machine: "
            "check that the origin (or its Cloudflare Tunnel) is up and its SSL/TLS mode",
        )
    elif status in (401, 403):
        report.add(
            "http.status",
            section,
            FAIL if status == 403 else INFO,
            f"POST initialize answered {status}{via}"
            + (": see Auth below" if status == 401 else f": {probe.excerpt}"),
            fix="The server refused access: check the token's permissions, or an IP / Origin "
            "allow-list on the server or its proxy",
        )
    elif status in (400, 404, 405, 406):
        report.add(
            "http.status",
            section,
            INFO,
            f"POST initialize answered {status}{via}: Streamable HTTP is not served at {where}"
            + (f" ({probe.excerpt})" if probe.excerpt else ""),
        )
    elif status >= 500:
        report.add(
            "http.status",
            section,
            FAIL,
            f"the server answered HTTP {status}{via}: {probe.excerpt or '(no body)'}",
            fix="The server or a proxy in front of it failed; see the server's logs",
        )
    else:
        report.add(
            "http.status",
            section,
            WARN,
            f"POST initialize answered HTTP {status}{via}: {probe.excerpt or '(no body)'}",
        )


async def probe_legacy(
    report: Report, target: Target, client: httpx.AsyncClient, url: httpx.URL, probe: Probe
) -> None:
    """GET the URL as a legacy SSE stream: headers and the endpoint event, timed."""
    section = "HTTP"
    window = target.stream_window
    started = time.monotonic()
    headers_ms: float | None = None
    endpoint_ms: float | None = None
    status: int | None = None
    content_type = ""
    response_headers: dict[str, str] = {}
    try:
        with trio.move_on_after(window):
            request = client.build_request(
                "GET", url, headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            )
            response = await client.send(request, stream=True)
            try:
                headers_ms = _ms(started)
                status = response.status_code
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
                if status == 200 and content_type == "text/event-stream":
                    async for event in read_events(response):
                        if event.event == "endpoint":
                            endpoint_ms = _ms(started)
                            break
            finally:
                await response.aclose()
    except (httpx.HTTPError, ConnectionLost) as exc:
        report.add("http.legacy", section, INFO, f"legacy SSE GET failed: {exc}")
        return
    kind = proxy_kind(response_headers)
    if endpoint_ms is not None:
        probe.legacy = True
        probe.legacy_note = f"endpoint event after {endpoint_ms:.0f} ms"
        report.add(
            "http.legacy",
            section,
            PASS,
            f"legacy HTTP+SSE answers at {display_url(url)}: headers in {headers_ms:.0f} ms, "
            f"endpoint event after {endpoint_ms:.0f} ms",
        )
        _check_encoding(report, response_headers, kind)
        return
    if headers_ms is None:
        report.add(
            "http.legacy",
            section,
            FAIL if target.options.transport.startswith("sse") or not probe.streamable else INFO,
            f"the SSE GET at {display_url(url)} sent no headers within {window:g} s",
            fix="A reverse proxy is holding the event stream back until it ends, which it never "
            "does:\n" + buffering_fixes(kind),
        )
        return
    if status == 200 and content_type == "text/event-stream":
        report.add(
            "http.legacy",
            section,
            FAIL,
            f"the SSE stream at {display_url(url)} opened in {headers_ms:.0f} ms but sent no "
            f"endpoint event within {window:g} s",
            fix="A reverse proxy buffers or compresses the event stream:\n" + buffering_fixes(kind),
        )
        return
    report.add(
        "http.legacy",
        section,
        INFO,
        f"no legacy SSE stream at {display_url(url)} (HTTP {status} {content_type})",
    )


def _check_encoding(report: Report, headers: dict[str, str], kind: str | None) -> None:
    encoding = headers.get("content-encoding", "identity").lower()
    if encoding not in ("", "identity"):
        report.add(
            "streaming.encoding",
            "Streaming",
            FAIL,
            f"the event stream comes {encoding}-compressed although the relay asked for none",
            fix="A proxy compresses text/event-stream, which holds events in its compressor:\n"
            + buffering_fixes(kind),
        )


async def probe_alternatives(report: Report, target: Target, client: httpx.AsyncClient) -> None:
    """After a 404: does /mcp or /sse on the same origin answer?"""
    section = "HTTP"
    base = target.url.copy_with(query=None, fragment=None)
    found: list[str] = []
    for path in ("/mcp", "/sse"):
        candidate = base.copy_with(path=path)
        if candidate.path == target.url.path:
            continue
        probe = Probe()
        with trio.move_on_after(target.stream_window + 5):
            try:
                if path == "/mcp":
                    response = await _post_initialize(client, candidate, probe)
                    if response is not None:
                        probe.content_type = (
                            response.headers.get("content-type", "").split(";")[0].strip()
                        )
                        if response.status_code < 300:
                            await _read_initialize_answer(response, probe, time.monotonic())
                        await response.aclose()
                    if probe.streamable:
                        found.append(display_url(candidate))
                else:
                    silent = Report()
                    await probe_legacy(silent, target, client, candidate, probe)
                    if probe.legacy:
                        found.append(display_url(candidate))
            except httpx.HTTPError:
                continue
    if found:
        report.add(
            "http.path",
            section,
            FAIL,
            f"there is no MCP endpoint at {target.shown}, but there is at {found[0]}",
            fix=f"Use {found[0]} as the URL",
        )
    else:
        report.add(
            "http.path",
            section,
            FAIL,
            f"there is no MCP endpoint at {target.shown} (HTTP 404), nor at /mcp or /sse",
            fix="Check the path in the server's documentation (often /mcp, or /sse for older "
            "servers)",
        )


# ----------------------------------------------------------------------------- the real session


@dataclass
class Session:
    transport_name: str = ""
    server: str = ""
    protocol_version: str = ""
    tools: int | None = None
    initialize_ms: float = 0.0
    error: UpstreamError | None = None


async def real_session(report: Report, target: Target, client: httpx.AsyncClient) -> Session:
    """initialize, notifications/initialized and tools/list through the relay's transports."""
    from ..shell.transports.negotiate import open_transport

    section = "MCP"
    result = Session()
    answers: dict[str, dict[str, Any]] = {}
    arrived = trio.Event()

    async def deliver(message: Message) -> None:
        if message.kind is Kind.RESPONSE and isinstance(message.id, str):
            answers[message.id] = message.body
            arrived.set()

    lost: list[UpstreamError] = []

    def on_lost(error: UpstreamError) -> None:
        lost.append(error)

    async def wait_for(request_id: str) -> dict[str, Any]:
        nonlocal arrived
        while request_id not in answers:
            arrived = trio.Event()
            await arrived.wait()
        return answers[request_id]

    started = time.monotonic()
    bound = SESSION_TIMEOUT + target.net.connect_timeout

    async def converse(nursery: trio.Nursery) -> None:
        first = parse_message(json.dumps(_initialize_body("doctor-init")).encode())
        transport = await open_transport(
            target.options.transport,
            target.url,
            first,
            client=client,
            deliver=deliver,
            nursery=nursery,
            options=target.net,
            backoff=target.options.backoff,
            on_lost=on_lost,
        )
        try:
            answer = await wait_for("doctor-init")
            result.initialize_ms = _ms(started)
            result.transport_name = transport.name
            if "error" in answer:
                raise ProtocolViolation(f"the server refused initialize: {answer['error']}")
            info = answer.get("result", {})
            server_info = info.get("serverInfo", {})
            result.server = f"{server_info.get('name', '?')} {server_info.get('version', '')}"
            result.protocol_version = str(info.get("protocolVersion", "?"))
            transport.set_protocol_version(result.protocol_version)
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await transport.send_message(parse_message(json.dumps(initialized).encode()))
            tools_list = {"jsonrpc": "2.0", "id": "doctor-tools", "method": "tools/list"}
            await transport.send_request(parse_message(json.dumps(tools_list).encode()))
            tools_answer = await wait_for("doctor-tools")
            tools = tools_answer.get("result", {}).get("tools")
            result.tools = len(tools) if isinstance(tools, list) else None
        finally:
            with trio.CancelScope(shield=True):
                await transport.close()

    async with trio.open_nursery() as nursery:
        try:
            with trio.fail_after(bound):
                await converse(nursery)
        except UpstreamError as exc:
            result.error = exc
        except trio.TooSlowError:
            result.error = UpstreamUnavailable(
                f"no answer within {bound:g} s",
                "A proxy may be holding answers back, or the server hangs",
                kind="timeout",
            )
        nursery.cancel_scope.cancel()
    if result.error is not None:
        if not (isinstance(result.error, UpstreamHttpError) and result.error.status == 401):
            report.add(
                "mcp.session",
                section,
                FAIL,
                f"the relay's transports could not open a session: {result.error}",
                fix=result.error.hint
                or f"See the checks above (--transport {target.options.transport})",
            )
        return result
    tools = "an unreadable tool list" if result.tools is None else f"{result.tools} tools"
    report.add(
        "mcp.session",
        section,
        PASS,
        f"initialize over {result.transport_name} in {result.initialize_ms:.0f} ms: server "
        f"{result.server.strip()}, protocol {result.protocol_version}; tools/list: {tools}",
        data={
            "transport": result.transport_name,
            "server": result.server.strip(),
            "protocolVersion": result.protocol_version,
            "tools": result.tools,
        },
    )
    return result


# ----------------------------------------------------------------------------- auth


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


# ----------------------------------------------------------------------------- streaming


@asynccontextmanager
async def _open_stream(
    client: httpx.AsyncClient, request: httpx.Request, window: float
) -> AsyncIterator[tuple[httpx.Response | None, float]]:
    started = time.monotonic()
    response: httpx.Response | None = None
    with trio.move_on_after(window):
        response = await client.send(request, stream=True)
    try:
        yield response, _ms(started)
    finally:
        if response is not None:
            await response.aclose()


async def _watch(
    response: httpx.Response, first_wait: float, soak: float
) -> tuple[float | None, float | None, int]:
    """(first event ms or None, ms when the stream ended or None if it lived, events seen)."""
    started = time.monotonic()
    first: float | None = None
    ended: float | None = None
    count = 0
    limit = max(first_wait, soak)
    with trio.move_on_after(limit):
        try:
            async for _ in response.aiter_raw():
                count += 1
                if first is None:
                    first = _ms(started)
                    if soak <= 0:
                        return first, None, count
            ended = _ms(started)
        except httpx.HTTPError:
            ended = _ms(started)
    return first, ended, count


async def check_streaming(
    report: Report, target: Target, client: httpx.AsyncClient, probe: Probe
) -> None:
    section = "Streaming"
    window = target.stream_window
    kind = proxy_kind(probe.headers)
    if probe.streamable and probe.content_type == "text/event-stream":
        report.add(
            "streaming.post",
            section,
            INFO,
            f"the initialize answer came as an event stream: headers {probe.headers_ms:.0f} ms, "
            f"first event {probe.first_event_ms or 0:.0f} ms, end {probe.end_ms or 0:.0f} ms",
        )
    url = probe.final_url or target.url
    if probe.streamable and probe.session_id is None:
        report.add(
            "streaming.get",
            section,
            INFO,
            "the server keeps no session (stateless): there is no GET stream to watch",
        )
        return
    if probe.streamable:
        headers = {"Accept": "text/event-stream"}
        if probe.session_id:
            headers["Mcp-Session-Id"] = probe.session_id
        if probe.protocol_version:
            headers["MCP-Protocol-Version"] = probe.protocol_version
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        try:
            sent = await client.post(
                url,
                content=json.dumps(initialized),
                headers={**headers, "Accept": ACCEPT_POST, "Content-Type": "application/json"},
            )
            await sent.aclose()
        except httpx.HTTPError:
            pass
        request = client.build_request("GET", url, headers=headers)
        what = "the GET stream"
    elif probe.legacy:
        request = client.build_request(
            "GET", url, headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        )
        what = "the legacy SSE stream"
    else:
        return
    try:
        async with _open_stream(client, request, window) as (response, headers_ms):
            if response is None:
                report.add(
                    "streaming.get",
                    section,
                    WARN,
                    f"{what}'s headers did not arrive within {window:g} s, while POST answers "
                    f"came in {probe.headers_ms:.0f} ms: a reverse proxy is buffering event "
                    "streams (progress, notifications and server requests are held back)",
                    fix=buffering_fixes(kind),
                )
                return
            if response.status_code == 405:
                report.add(
                    "streaming.get",
                    section,
                    PASS,
                    "the server offers no GET stream (405): its messages come on POST answers only",
                )
                if target.soak:
                    report.add("streaming.soak", section, SKIP, "no long-lived stream to hold open")
                return
            if response.status_code >= 400:
                report.add(
                    "streaming.get",
                    section,
                    WARN,
                    f"{what} was answered HTTP {response.status_code}",
                )
                return
            stream_headers = {k.lower(): v for k, v in response.headers.items()}
            kind = proxy_kind(stream_headers) or kind
            _check_encoding(report, stream_headers, kind)
            first, ended, count = await _watch(response, FIRST_EVENT_WAIT, target.soak)
    except httpx.HTTPError as exc:
        report.add("streaming.get", section, WARN, f"{what} could not be opened: {exc}")
        return
    finally:
        await _end_session(client, url, probe)
    if first is not None:
        report.add(
            "streaming.get",
            section,
            PASS,
            f"{what} opened in {headers_ms:.0f} ms; first bytes after {first:.0f} ms: events are "
            "not held back",
        )
    elif ended is not None and target.soak <= 0:
        report.add(
            "streaming.get",
            section,
            WARN,
            f"{what} opened in {headers_ms:.0f} ms and ended after {ended:.0f} ms without an event",
        )
    else:
        report.add(
            "streaming.get",
            section,
            INFO,
            f"{what} opened in {headers_ms:.0f} ms; the server sent nothing within "
            f"{max(FIRST_EVENT_WAIT, target.soak):g} s, so buffering cannot be measured here"
            + ("" if target.soak else " (try --soak 120 to watch it longer)"),
        )
    if target.soak > 0:
        _report_soak(report, target, what, ended, count, kind)


def _report_soak(
    report: Report, target: Target, what: str, ended_ms: float | None, count: int, kind: str | None
) -> None:
    section = "Streaming"
    if ended_ms is None:
        report.add(
            "streaming.soak",
            section,
            PASS,
            f"{what} stayed open for {target.soak:g} s ({count} chunks arrived)",
        )
        return
    seconds = ended_ms / 1000
    report.add(
        "streaming.soak",
        section,
        WARN,
        f"{what} was cut after {seconds:.1f} s of --soak {target.soak:g}",
        fix=idle_cut_advice(seconds, kind),
        data={"cut_after_s": round(seconds, 1)},
    )


async def _end_session(client: httpx.AsyncClient, url: httpx.URL, probe: Probe) -> None:
    if not probe.session_id:
        return
    with trio.move_on_after(2), trio.CancelScope(shield=True):
        try:
            response = await client.delete(url, headers={"Mcp-Session-Id": probe.session_id})
            await response.aclose()
        except httpx.HTTPError:
            pass
    probe.session_id = None


# ----------------------------------------------------------------------------- all of it


async def _guarded(report: Report, stage: str, work: Any) -> Any:
    """Run one stage; an unexpected exception becomes a failed check, not a crash."""
    try:
        return await work()
    except Exception as exc:  # the doctor must always report, whatever broke
        import traceback

        where = traceback.extract_tb(exc.__traceback__)[-1:]
        at = f" at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno}" if where else ""
        report.add(
            f"doctor.{stage}",
            "Doctor",
            FAIL,
            f"the {stage} checks stopped on an unexpected error: {type(exc).__name__}: {exc}{at}",
            fix="Please report this (with `mcp-remote-py doctor URL --json`)",
        )
        return None


async def run_remote(report: Report, target: Target) -> None:
    reachable = await _guarded(report, "network", lambda: check_network(report, target))
    if not reachable:
        report.add("http.reach", "HTTP", SKIP, "skipped: nothing to connect to")
        return
    if not await _guarded(report, "tls", lambda: check_tls(report, target)):
        report.add("http.reach", "HTTP", SKIP, "skipped: TLS would fail (see above)")
        return
    async with build_client(target.net) as client:
        probe = await _guarded(report, "http", lambda: probe_http(report, target, client))
        if probe is None:
            return
        try:
            await _guarded(report, "transport", lambda: _transports(report, target, client, probe))
        finally:
            with trio.CancelScope(shield=True):
                await _end_session(client, probe.final_url or target.url, probe)


async def _transports(
    report: Report, target: Target, client: httpx.AsyncClient, probe: Probe
) -> None:
    if probe.status in (400, 404, 405, 406) or (
        probe.streamable is False and target.options.transport.startswith("sse")
    ):
        await probe_legacy(report, target, client, probe.final_url or target.url, probe)
        if probe.status == 404 and not probe.legacy:
            await probe_alternatives(report, target, client)
    session: Session | None = None
    if probe.streamable or probe.legacy:
        session = await real_session(report, target, client)
    elif probe.status != 401:
        report.add("mcp.session", "MCP", SKIP, "skipped: no MCP transport answered (see above)")
    await _guarded(report, "auth", lambda: check_auth(report, target, probe, session))
    await _guarded(report, "streaming", lambda: check_streaming(report, target, client, probe))
