"""The raw HTTP probe: POST initialize as Streamable HTTP, following each redirect by hand.

The relay's transports hide what this probe records: every hop of a redirect chain, the status,
headers and body excerpt of a refusal, and when the answer's headers, first event and end came.
``Probe`` carries what it found to the checks after it (legacy SSE, auth, streaming), and
``end_session`` DELETEs the session it opened.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from .._version import __version__
from ..core.errors import ConnectionLost, ProtocolViolation
from ..core.jsonrpc import line
from ..shell.net import describe_network_error, display_url, redirect_allowed, resolve_location
from ..shell.transports.base import read_events
from .http_checks import cloudflare_meaning, proxy_kind
from .report import FAIL, INFO, PASS, WARN, Report
from .target import Target

__all__ = [
    "ACCEPT_POST",
    "Probe",
    "elapsed_ms",
    "end_session",
    "initialize_body",
    "post_initialize",
    "probe_http",
    "read_initialize_answer",
]

PROTOCOL_VERSION = "2025-11-25"
ACCEPT_POST = "application/json, text/event-stream"
MAX_HOPS = 10


@dataclass
class Probe:
    """What the raw initialize POST (and the legacy GET) found."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = ""
    excerpt: str = ""
    body: bytes = b""  # a refusal's body, its first 4 KiB (a modern error names versions)
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


def elapsed_ms(since: float) -> float:
    return (time.monotonic() - since) * 1000


def initialize_body(request_id: str = "doctor-1") -> dict[str, Any]:
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


async def _excerpt(response: httpx.Response, limit: int = 300) -> tuple[str, bytes]:
    """A short text of the body for people, and its first 4 KiB as they came."""
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
    return text[:limit] + ("…" if len(text) > limit else ""), bytes(body)


def _origin_changed(source: httpx.URL, target: httpx.URL) -> bool:
    return not redirect_allowed(source, target)


async def post_initialize(
    client: httpx.AsyncClient, url: httpx.URL, probe: Probe
) -> httpx.Response | None:
    """POST initialize, following redirects by hand (recording each); the open final answer."""
    body = line(initialize_body())
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
        probe.headers_ms = elapsed_ms(started)
        if not response.is_redirect:
            probe.final_url = current
            return response
        await response.aclose()
        location = resolve_location(current, response.headers.get("location", ""))
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


async def read_initialize_answer(response: httpx.Response, probe: Probe, started: float) -> None:
    """Read the initialize answer (JSON or SSE) and time it."""
    content_type = probe.content_type
    body: dict[str, Any] | None = None
    if content_type == "application/json":
        raw = await response.aread()
        probe.first_event_ms = probe.end_ms = elapsed_ms(started)
        try:
            parsed = json.loads(raw)
            body = parsed if isinstance(parsed, dict) else None
        except ValueError:
            body = None
    else:
        async for event in read_events(response):
            if probe.first_event_ms is None:
                probe.first_event_ms = elapsed_ms(started)
            if event.data:
                try:
                    parsed = json.loads(event.data)
                except ValueError:
                    continue
                if isinstance(parsed, dict) and parsed.get("id") == "doctor-1":
                    body = parsed
                    break
        probe.end_ms = elapsed_ms(started)
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
            response = await post_initialize(client, target.url, probe)
    except httpx.TransportError as exc:
        error = describe_network_error(exc, target.url, target.net)
        probe.error = str(error)
        report.add("http.reach", section, FAIL, f"no HTTP answer: {error}", fix=error.hint)
        return probe
    except ProtocolViolation as exc:  # a redirect whose Location is no URL
        probe.error = str(exc)
        report.add("http.redirects", section, FAIL, str(exc), fix=exc.hint)
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
    _report_redirects(report, probe)
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
                await read_initialize_answer(response, probe, started)
        else:
            probe.excerpt, probe.body = await _excerpt(response)
    except (httpx.HTTPError, ConnectionLost) as exc:
        probe.error = f"the answer broke off ({exc})"
    finally:
        await response.aclose()
    _report_status(report, target, probe)
    return probe


def _report_redirects(report: Report, probe: Probe) -> None:
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


async def end_session(client: httpx.AsyncClient, url: httpx.URL, probe: Probe) -> None:
    """DELETE the session the probe opened, so the server need not keep it until it expires."""
    if not probe.session_id:
        return
    with trio.move_on_after(2), trio.CancelScope(shield=True):
        try:
            response = await client.delete(url, headers={"Mcp-Session-Id": probe.session_id})
            await response.aclose()
        except httpx.HTTPError:
            pass
    probe.session_id = None
