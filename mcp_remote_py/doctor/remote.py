"""The remote checks, in order: name and network, TLS, HTTP, a real MCP session, the protocol
era, auth, streaming.

Every request goes out as the relay's would: the client from ``net.build_client`` with the
user's headers (and a stored token), the same ``--ipv4``, ``--ca-file`` and proxies. The MCP
session is opened through the project's own transports (``open_transport``), so what works here
works in the relay. Raw probes beside it look at what the transports hide: each redirect, the
status and headers of a failure, the timing of an event stream.

The sections live in ``reach`` (name, network, TLS), ``http_probe`` (POST initialize and its
redirects), ``legacy_sse`` (the legacy GET, other paths), ``mcp_session``, ``era`` (2025,
2026-07-28 or both, and what the relay presents), ``authorization`` and ``streaming``; this
module runs them and decides which apply.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from ..shell.net import build_client
from .authorization import check_auth
from .era import check_era
from .http_probe import Probe, end_session, probe_http
from .legacy_sse import probe_alternatives, probe_legacy
from .mcp_session import Session, real_session
from .reach import check_network, check_tls
from .report import FAIL, SKIP, Report
from .streaming import check_compression, check_streaming
from .target import Target

__all__ = ["Target", "run_remote"]


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
                await end_session(client, probe.final_url or target.url, probe)


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
    await _guarded(report, "era", lambda: check_era(report, target, client, probe, session))
    await _guarded(report, "auth", lambda: check_auth(report, target, probe, session))
    await _guarded(report, "streaming", lambda: check_streaming(report, target, client, probe))
    await _guarded(report, "compression", lambda: check_compression(report, target, client, probe))
