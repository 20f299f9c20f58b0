"""The Streaming checks: are event streams passed on as they come, and do they stay open?

A reverse proxy that buffers or compresses ``text/event-stream`` holds progress, notifications
and server requests back; one with a short idle timeout cuts the stream. The GET stream (or the
legacy SSE stream) is timed to its first bytes, and with ``--soak`` held open that long.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import trio

from .http_checks import buffering_fixes, idle_cut_advice, proxy_kind
from .http_probe import ACCEPT_POST, Probe, elapsed_ms, end_session
from .report import FAIL, INFO, PASS, SKIP, WARN, Report
from .target import Target

__all__ = ["check_encoding", "check_streaming"]

FIRST_EVENT_WAIT = 3.0


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
