"""When Streamable HTTP is not at the URL: the legacy HTTP+SSE GET, and /mcp or /sse beside it.

The legacy transport opens with a GET whose event stream must bring an ``endpoint`` event; its
headers or that event held back is the mark of a buffering reverse proxy, so both are timed.
"""

from __future__ import annotations

import time

import httpx
import trio

from ..core.errors import ConnectionLost
from ..shell.net import display_url
from ..shell.transports.base import read_events
from .http_checks import buffering_fixes, proxy_kind
from .http_probe import Probe, elapsed_ms, post_initialize, read_initialize_answer
from .report import FAIL, INFO, PASS, Report
from .streaming import check_encoding
from .target import Target

__all__ = ["probe_alternatives", "probe_legacy"]


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
                headers_ms = elapsed_ms(started)
                status = response.status_code
                response_headers = {k.lower(): v for k, v in response.headers.items()}
                content_type = response.headers.get("content-type", "").split(";")[0].strip()
                if status == 200 and content_type == "text/event-stream":
                    async for event in read_events(response):
                        if event.event == "endpoint":
                            endpoint_ms = elapsed_ms(started)
                            break
            finally:
                await response.aclose()
    except (httpx.HTTPError, ConnectionLost) as exc:
        report.add("http.legacy", section, INFO, f"legacy SSE GET failed: {exc}")
        return
    kind = proxy_kind(response_headers)
    if endpoint_ms is not None:
        probe.legacy = True
        report.add(
            "http.legacy",
            section,
            PASS,
            f"legacy HTTP+SSE answers at {display_url(url)}: headers in {headers_ms:.0f} ms, "
            f"endpoint event after {endpoint_ms:.0f} ms",
        )
        check_encoding(report, response_headers, kind)
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
                    response = await post_initialize(client, candidate, probe)
                    if response is not None:
                        probe.content_type = (
                            response.headers.get("content-type", "").split(";")[0].strip()
                        )
                        if response.status_code < 300:
                            await read_initialize_answer(response, probe, time.monotonic())
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
