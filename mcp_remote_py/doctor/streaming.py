"""The Streaming checks: are event streams passed on as they come, and do they stay open?

A reverse proxy that buffers or compresses ``text/event-stream`` holds progress, notifications
and server requests back; one with a short idle timeout cuts the stream. The GET stream (or the
legacy SSE stream) is timed to its first bytes, and with ``--soak`` held open that long.

The relay asks for ``Accept-Encoding: identity``, so a proxy that gzips event streams (nginx with
``gzip on`` and ``text/event-stream`` in ``gzip_types``) never shows in what it, or the checks
above, get. Other clients on the same server ask for ``gzip, deflate, br``, as most HTTP clients
do, and hang or see events late: ``check_compression`` asks once as they do.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
import trio

from ..core.jsonrpc import line
from .http_checks import buffering_fixes, idle_cut_advice, proxy_kind
from .http_probe import ACCEPT_POST, Probe, elapsed_ms, end_session, initialize_body
from .report import FAIL, INFO, PASS, SKIP, WARN, Report
from .target import Target

__all__ = ["CLIENT_ENCODINGS", "check_compression", "check_encoding", "check_streaming"]

FIRST_EVENT_WAIT = 3.0
# What other MCP clients' HTTP libraries ask for (browsers, Node's fetch, httpx with brotli).
CLIENT_ENCODINGS = "gzip, deflate, br"


def check_encoding(report: Report, headers: dict[str, str], kind: str | None) -> None:
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


@asynccontextmanager
async def _open_stream(
    client: httpx.AsyncClient, request: httpx.Request, window: float
) -> AsyncIterator[tuple[httpx.Response | None, float]]:
    started = time.monotonic()
    response: httpx.Response | None = None
    with trio.move_on_after(window):
        response = await client.send(request, stream=True)
    try:
        yield response, elapsed_ms(started)
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
                    first = elapsed_ms(started)
                    if soak <= 0:
                        return first, None, count
            ended = elapsed_ms(started)
        except httpx.HTTPError:
            ended = elapsed_ms(started)
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
            check_encoding(report, stream_headers, kind)
            first, ended, count = await _watch(response, FIRST_EVENT_WAIT, target.soak)
    except httpx.HTTPError as exc:
        report.add("streaming.get", section, WARN, f"{what} could not be opened: {exc}")
        return
    finally:
        await end_session(client, url, probe)
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


# --------------------------------------------------------------------------- other clients

_COMPRESSION_FIXES = {
    "nginx": "nginx: `gzip off;` in the location that proxies the MCP endpoint, or remove "
    "text/event-stream from `gzip_types`",
    "caddy": "Caddy: leave text/event-stream out of `encode` (match on the Content-Type)",
    "traefik": "Traefik: `excludedContentTypes: [text/event-stream]` in the compress middleware",
    "cloudflare": "Cloudflare: a Compression Rule that disables compression for "
    "text/event-stream on this path",
}


def compression_fixes(kind: str | None) -> str:
    """The settings that stop a reverse proxy compressing event streams, the detected one (else
    nginx, the usual culprit) first."""
    order = ["nginx", "caddy", "traefik", "cloudflare"]
    if kind in order:
        order.remove(kind)
        order.insert(0, kind)
    return "\n".join(_COMPRESSION_FIXES[k] for k in order)


async def _headers_of(
    client: httpx.AsyncClient, request: httpx.Request, window: float
) -> tuple[int, dict[str, str]] | None:
    """The status and headers of the answer to ``request`` (its body is left unread), or None
    when they did not come within ``window``."""
    with trio.move_on_after(window):
        response = await client.send(request, stream=True)
        try:
            return response.status_code, {k.lower(): v for k, v in response.headers.items()}
        finally:
            await response.aclose()
    return None


def _is_event_stream(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


async def check_compression(
    report: Report, target: Target, client: httpx.AsyncClient, probe: Probe
) -> None:
    """Ask as another client would (``Accept-Encoding: gzip, deflate, br``): an event stream that
    comes back compressed is held in the compressor, so those clients hang or see events late,
    though the relay (which asks for identity) is fine."""
    section = "Streaming"
    if report_has(report, "streaming.encoding"):
        return  # compressed even for the relay: said above, with the fix
    url = probe.final_url or target.url
    window = target.stream_window
    asked = {"Accept-Encoding": CLIENT_ENCODINGS}
    what = "the event stream"
    answer: tuple[int, dict[str, str]] | None = None
    session: Probe | None = None
    try:
        if probe.streamable:
            request = client.build_request(
                "POST",
                url,
                content=line(initialize_body("doctor-encoding")),
                headers={**asked, "Accept": ACCEPT_POST, "Content-Type": "application/json"},
            )
            answer = await _headers_of(client, request, window)
            what = "the event stream answering initialize"
            if answer is not None and not _is_event_stream(answer[1]):
                session = Probe(session_id=answer[1].get("mcp-session-id"))
                if not session.session_id:
                    return  # JSON answers and no session: no event stream to compress
                answer = await _get_stream(client, url, session, asked, answer[1], window)
                what = "the GET stream"
        elif probe.legacy:
            request = client.build_request(
                "GET",
                url,
                headers={**asked, "Accept": "text/event-stream", "Cache-Control": "no-cache"},
            )
            answer = await _headers_of(client, request, window)
            what = "the legacy SSE stream"
        else:
            return
    except httpx.HTTPError:
        return  # the checks above said what fails
    finally:
        if session is not None:
            await end_session(client, url, session)
        elif answer is not None and answer[1].get("mcp-session-id"):
            await end_session(client, url, Probe(session_id=answer[1]["mcp-session-id"]))
    kind = proxy_kind(probe.headers)
    asker = f"a client that asks for {CLIENT_ENCODINGS} (as most HTTP clients do)"
    consequence = "other MCP clients on this server hang or see events late"
    why = [
        "a compressor holds events until its buffer fills, so progress, notifications and "
        "server requests wait; the relay is not affected (it asks for identity)"
    ]
    if answer is None:
        report.add(
            "streaming.compression",
            section,
            WARN,
            f"{asker} gets no headers for {what} within {window:g} s, while the relay "
            f"(identity) does: a proxy compresses event streams, and {consequence}",
            details=why,
            fix=compression_fixes(kind),
        )
        return
    status, headers = answer
    kind = proxy_kind(headers) or kind
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if status >= 300 or not _is_event_stream(headers):
        return  # no event stream for such a client either (405: no GET stream)
    if encoding not in ("", "identity"):
        report.add(
            "streaming.compression",
            section,
            WARN,
            f"{asker} gets {what} {encoding}-compressed: {consequence}",
            details=why,
            fix=compression_fixes(kind),
        )
        return
    report.add(
        "streaming.compression",
        section,
        PASS,
        f"{what} comes uncompressed also to {asker}",
    )


async def _get_stream(
    client: httpx.AsyncClient,
    url: httpx.URL,
    session: Probe,
    asked: dict[str, str],
    initialized_headers: Mapping[str, str],
    window: float,
) -> tuple[int, dict[str, str]] | None:
    """The GET stream's status and headers for the session just opened (its
    ``notifications/initialized`` sent first, as a client does)."""
    headers = {"Mcp-Session-Id": session.session_id or ""}
    version = initialized_headers.get("mcp-protocol-version")
    if version:
        headers["MCP-Protocol-Version"] = version
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    sent = await client.post(
        url,
        content=json.dumps(initialized),
        headers={**headers, "Accept": ACCEPT_POST, "Content-Type": "application/json"},
    )
    await sent.aclose()
    request = client.build_request(
        "GET", url, headers={**headers, **asked, "Accept": "text/event-stream"}
    )
    return await _headers_of(client, request, window)


def report_has(report: Report, check_id: str) -> bool:
    return any(check.id == check_id for check in report.checks)
