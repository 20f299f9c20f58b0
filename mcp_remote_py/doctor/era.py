"""The Era checks: which MCP era the server speaks, and what the relay makes of it.

2026-07-28 basic/versioning §Backward Compatibility: a server is *legacy* (it takes the
``initialize`` handshake of 2025-11-25 and earlier), *modern* (every request carries its version
in ``_meta``: 2026-07-28) or both, *dual-era*. The relay finds out as the HTTP binding says, and
so does this section: what the initialize probe (``http_probe``) and the session
(``mcp_session``) learnt shows the handshake era; a ``server/discover`` POST through the relay's
own ``ModernHttpTransport`` shows the modern one. From the era follows what the relay presents:

===============  ===========================  ====================================
server           a 2025 client (Claude)       a 2026-07-28 client
===============  ===========================  ====================================
legacy only      the server's bytes, relayed  the bridge down
dual-era         the server's bytes, relayed  passed through
2026-07-28 only  the bridge up                passed through
===============  ===========================  ====================================

``--protocol`` and ``--transport sse-only`` change that, and the lines say so. When the server
speaks 2026-07-28, its tools/list (every page, bounded) is screened as the relay screens it
(server/tools §x-mcp-header). Last comes what the relay's era cache holds for the URL, and what
the relay will do when that disagrees with what was found here. Doctor only reads the cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from .._version import __version__
from ..core.eras import MODERN_VERSIONS, PROTOCOL_VERSION_KEY, jsonrpc_error_body, proves_modern
from ..core.errors import UpstreamError, UpstreamHttpError, UpstreamUnavailable
from ..core.jsonrpc import Kind, Message
from ..core.request_metadata import screen_tools
from ..shell.era_cache import LEGACY, MODERN_ONLY, EraCache
from ..shell.era_cache import LEGACY_ONLY as CACHED_LEGACY_ONLY
from ..shell.net import display_url
from ..shell.transports.modern_http import ModernHttpTransport
from ..shell.transports.negotiate import HTTP, transport_order
from .http_probe import Probe, elapsed_ms
from .mcp_session import Session
from .report import FAIL, INFO, PASS, SKIP, WARN, Report
from .target import Target

__all__ = [
    "DUAL_ERA",
    "LEGACY_ONLY",
    "MODERN_ERA_ONLY",
    "Discovery",
    "EraFound",
    "check_era",
    "legacy_client_line",
]

SECTION = "Era"
LEGACY_ONLY, DUAL_ERA, MODERN_ERA_ONLY = "legacy only", "dual-era", "2026-07-28 only"
# The tools/list pages followed (the relay's own listing stops at as many).
MAX_TOOL_PAGES = 100
# Refusals of the initialize POST after which the relay asks server/discover (negotiate.py).
_NOT_SERVED = (400, 404, 405)
_LEGACY_CLIENT = "a 2025 client (Claude Desktop)"
_MODERN_CLIENT = "a 2026-07-28 client"
_BRIDGE_DOWN = (
    "the relay opens a 2025 session of its own (initialize built from the request's _meta), "
    "answers server/discover from it, and turns the server's elicitation, sampling and roots "
    "requests into input_required rounds: the client never sees a session"
)


@dataclass
class Discovery:
    """What the doctor's ``server/discover`` brought back."""

    result: dict[str, Any] | None = None  # the DiscoverResult
    error: dict[str, Any] | None = None  # the ``error`` of a JSON-RPC error answer
    failure: UpstreamError | None = None  # no answer: an HTTP refusal, the network, a timeout
    ms: float = 0.0

    @property
    def unauthorized(self) -> bool:
        failure = self.failure
        return isinstance(failure, UpstreamHttpError) and failure.status in (401, 403)

    @property
    def supported(self) -> list[str]:
        versions = (self.result or {}).get("supportedVersions")
        return [v for v in versions if isinstance(v, str)] if isinstance(versions, list) else []

    @property
    def server(self) -> str:
        meta = (self.result or {}).get("_meta")
        info = meta.get("io.modelcontextprotocol/serverInfo") if isinstance(meta, dict) else None
        if not isinstance(info, dict):
            return ""
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()

    def why_not(self) -> tuple[str, bool]:
        """Why this is no 2026-07-28 answer, and whether that is a plain "no" (a legacy
        server's refusal) rather than something broken on the way."""
        if self.error is not None:
            text = f"error {self.error.get('code')}: {_short(self.error.get('message'))}"
            data = self.error.get("data")
            supported = data.get("supported") if isinstance(data, dict) else None
            if isinstance(supported, list):
                relay = list(MODERN_VERSIONS)
                return f"{text} (it speaks {supported}; the relay speaks {relay})", False
            return text, True
        failure = self.failure
        if not isinstance(failure, UpstreamHttpError):
            return str(failure or "no answer"), False
        excerpt = f" ({failure.excerpt})" if failure.excerpt else ""
        return f"HTTP {failure.status}{excerpt}", failure.status < 500


@dataclass
class EraFound:
    """What the section found: the era, and what the relay's cache holds."""

    name: str | None  # LEGACY_ONLY, DUAL_ERA, MODERN_ERA_ONLY; None when neither answered
    legacy_version: str | None
    transport: str  # the 2025 transport that answered ("" when none did)
    discovery: Discovery
    cached: str | None  # the relay's era cache for this URL


class _ModernRequests:
    """The doctor's own 2026-07-28 requests, through the relay's transport and client."""

    def __init__(self, target: Target, client: httpx.AsyncClient, nursery: trio.Nursery) -> None:
        self._answers: dict[str, dict[str, Any]] = {}
        self._bound = target.net.connect_timeout + 20
        self._count = 0

        async def keep(message: Message) -> None:
            if message.kind is Kind.RESPONSE and isinstance(message.id, str):
                self._answers[message.id] = message.body

        self._transport = ModernHttpTransport(
            client, target.url, keep, nursery, target.net, on_lost=lambda _: None
        )

    async def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The answer (result or error) to ``method``; raises UpstreamError when none came."""
        self._count += 1
        request_id = f"doctor-{self._count}"
        meta = {
            PROTOCOL_VERSION_KEY: MODERN_VERSIONS[0],
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {
                "name": "mcp-remote-py doctor",
                "version": __version__,
            },
        }
        body = {"jsonrpc": "2.0", "id": request_id, "method": method}
        request = Message(Kind.REQUEST, {**body, "params": {**params, "_meta": meta}}, "")
        try:
            with trio.fail_after(self._bound):
                await self._transport.send_request(request)
        except trio.TooSlowError:
            raise UpstreamUnavailable(
                f"no answer to {method} within {self._bound:g} s",
                "A proxy may be holding answers back, or the server hangs",
                kind="timeout",
            ) from None
        return self._answers.pop(request_id, None)

    async def discover(self) -> Discovery:
        found = Discovery()
        started = time.monotonic()
        try:
            answer = await self.answer("server/discover", {})
        except UpstreamError as exc:
            found.failure = exc
            return found
        found.ms = elapsed_ms(started)
        result = (answer or {}).get("result")
        error = (answer or {}).get("error")
        if isinstance(result, dict):
            found.result = result
        elif isinstance(error, dict):
            found.error = error
        return found


async def check_era(
    report: Report,
    target: Target,
    client: httpx.AsyncClient,
    probe: Probe,
    session: Session | None,
) -> None:
    """The era lines, from the probes above and a ``server/discover`` (and, for a server that
    speaks 2026-07-28, its tools/list) sent as the relay sends them."""
    if probe.status is None:
        report.add("era.server", SECTION, SKIP, "skipped: no HTTP answer (see above)")
        return
    async with trio.open_nursery() as nursery:
        requests = _ModernRequests(target, client, nursery)
        discovery = await requests.discover()
        if discovery.unauthorized:
            report.add(
                "era.server",
                SECTION,
                SKIP,
                "skipped: server/discover needs credentials too (see Auth below)",
            )
            return
        era = _era_of(target, probe, session, discovery)
        if era.name is None:
            _report_no_era(report, target, probe, discovery)
            return
        _report_server(report, probe, era)
        presents = _report_legacy_client(report, target, probe, era)
        _report_modern_client(report, target, era)
        if era.name != LEGACY_ONLY and target.options.protocol != "legacy":
            await _check_tools(report, requests, era)
        _report_cache(report, target, probe, era, bridges=presents == "bridge up")


def _era_of(
    target: Target, probe: Probe, session: Session | None, discovery: Discovery
) -> EraFound:
    opened = session is not None and session.error is None
    takes_initialize = probe.streamable or probe.legacy or opened
    modern = discovery.result is not None
    name = None
    if takes_initialize:
        name = DUAL_ERA if modern else LEGACY_ONLY
    elif modern:
        name = MODERN_ERA_ONLY
    version = (session.protocol_version if session is not None and opened else None) or (
        probe.protocol_version
    )
    transport = ""
    if session is not None and opened:
        transport = session.transport_name
    elif probe.streamable:
        transport = "Streamable HTTP"
    elif probe.legacy:
        transport = "legacy HTTP+SSE"
    return EraFound(name, version, transport, discovery, EraCache(target.url).era)


def _short(value: Any, limit: int = 120) -> str:
    text = " ".join(str(value).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _refusal(probe: Probe) -> tuple[str, bool, bool]:
    """How the server refused the initialize POST; whether that alone proves it modern (the
    relay then bridges without asking server/discover); whether it names protocol versions."""
    parsed = jsonrpc_error_body(probe.body)
    text = f"HTTP {probe.status}"
    names_versions = any(v.encode() in probe.body for v in MODERN_VERSIONS)
    if parsed is not None:
        error = parsed["error"]
        text += f", error {error['code']}: {_short(error.get('message'))}"
        data = error.get("data")
        supported = data.get("supported") if isinstance(data, dict) else None
        if isinstance(supported, list):
            text += f" (supported: {supported})"
            names_versions = True
    proven = probe.status is not None and proves_modern(probe.status, parsed)
    return text, proven, names_versions


def _report_no_era(report: Report, target: Target, probe: Probe, discovery: Discovery) -> None:
    why, _ = discovery.why_not()
    # A refusal that says "not served here" was only info above: unless a check has failed
    # already (a wrong path, say), nothing else tells the user that nothing works.
    if probe.status in _NOT_SERVED and not report.failed:
        report.add(
            "era.server",
            SECTION,
            FAIL,
            f"neither era answers at {target.shown}: initialize was refused "
            f"({_refusal(probe)[0]}), and server/discover too ({why})",
            fix="Check the URL: the MCP endpoint is often /mcp (or /sse for older servers)",
            data={"era": None},
        )
        return
    report.add(
        "era.server",
        SECTION,
        SKIP,
        "skipped: the server answered neither initialize nor server/discover (see above)",
        details=[f"server/discover: {why}"],
        data={"era": None},
    )


def _report_server(report: Report, probe: Probe, era: EraFound) -> None:
    discovery = era.discovery
    supported = discovery.supported
    data: dict[str, Any] = {
        "era": era.name,
        "supportedVersions": supported,
        "legacyVersion": era.legacy_version,
        "server": discovery.server or None,
    }
    takes = f"it takes initialize (protocol {era.legacy_version or '?'} over {era.transport})"
    answers = f"answers server/discover in {discovery.ms:.0f} ms: supportedVersions {supported}"
    details = [f"server {discovery.server}"] if discovery.server else []
    if era.name == DUAL_ERA:
        report.add(
            "era.server",
            SECTION,
            PASS,
            f"dual-era: {takes} and {answers}",
            details=details,
            data=data,
        )
    elif era.name == MODERN_ERA_ONLY:
        refusal, _, names_versions = _refusal(probe)
        if not names_versions:
            details.append(
                "its refusal of initialize names no protocol version (basic/versioning "
                "§Backward Compatibility says it SHOULD): a 2025 client without the relay could "
                "tell its user nothing useful"
            )
        report.add(
            "era.server",
            SECTION,
            PASS,
            f"2026-07-28 only: it refuses initialize ({refusal}) and {answers}",
            details=details,
            data=data,
        )
    else:
        why, plain = discovery.why_not()
        report.add(
            "era.server",
            SECTION,
            INFO if plain else WARN,
            f"legacy only: {takes}, but no 2026-07-28 server/discover ({why})",
            fix="server/discover failed on the way rather than being refused; a 2026-07-28 "
            "client would meet the same. See the server's (or its proxy's) logs",
            data=data,
        )


def _report_legacy_client(report: Report, target: Target, probe: Probe, era: EraFound) -> str:
    """What a 2025 client gets: "relayed", "bridge up" or "error" (also the check's data)."""
    status, summary, fix, presents = legacy_client_line(target, probe, era)
    report.add("era.legacy_client", SECTION, status, summary, fix=fix, data={"presents": presents})
    return presents


def legacy_client_line(target: Target, probe: Probe, era: EraFound) -> tuple[str, str, str, str]:
    """The legacy client's line as (status, summary, fix, presents), as the relay decides
    (``Relay._send_request``, ``negotiate.open_transport``)."""
    protocol, mode = target.options.protocol, target.options.transport
    cannot = f"{_LEGACY_CLIENT} cannot start (its initialize fails)"
    relayed = (
        f"{_LEGACY_CLIENT} gets the server's own answers, relayed as they come "
        f"({era.transport}, protocol {era.legacy_version or '?'})"
    )
    bridged = (
        f"{_LEGACY_CLIENT} gets the bridge up: the relay answers its initialize from "
        "server/discover, sends each request with the 2026-07-28 _meta and headers, and turns "
        "input_required rounds into requests to the client"
    )
    if era.name != MODERN_ERA_ONLY:
        if era.name == DUAL_ERA and protocol == "modern":
            return PASS, f"{bridged} (--protocol modern)", "", "bridge up"
        if era.name == DUAL_ERA and protocol == "auto" and era.cached == MODERN_ONLY:
            return PASS, f"{bridged} (its era cache says modern-only: see below)", "", "bridge up"
        if protocol != "modern":
            return PASS, relayed, "", "relayed"
        return (
            FAIL,
            f"--protocol modern bridges {_LEGACY_CLIENT} at once, but the server does not speak "
            f"2026-07-28: {cannot}",
            "Remove --protocol modern",
            "error",
        )
    if protocol == "legacy":
        return (
            FAIL,
            f"--protocol legacy keeps the relay from bridging: {cannot}",
            "Remove --protocol legacy (the default, auto, bridges)",
            "error",
        )
    if protocol == "modern":
        return PASS, f"{bridged} (--protocol modern)", "", "bridge up"
    if HTTP not in transport_order(mode, target.url):
        cached = era.cached == MODERN_ONLY
        return (
            WARN if cached else FAIL,
            f"--transport {mode} never POSTs initialize, so the relay cannot find that the "
            "server speaks only 2026-07-28"
            + (
                ": it bridges now only because its era cache remembers; once that expires, "
                if cached
                else "; "
            )
            + cannot,
            "Use --transport http-first (the default), or add --protocol modern",
            "bridge up" if cached else "error",
        )
    if _refusal(probe)[1] or probe.status in _NOT_SERVED or era.cached == MODERN_ONLY:
        return PASS, bridged, "", "bridge up"
    return (
        WARN,
        f"the server refuses initialize with HTTP {probe.status}, which the relay does not "
        f'take for "2026-07-28 only": {cannot}',
        "Add --protocol modern: the relay then bridges at once",
        "error",
    )


def _report_modern_client(report: Report, target: Target, era: EraFound) -> None:
    check = "era.modern_client"
    if target.options.protocol == "legacy":
        modern = era.name not in (LEGACY_ONLY, None)
        report.add(
            check,
            SECTION,
            WARN if modern else INFO,
            f"--protocol legacy: {_MODERN_CLIENT} gets the bridge down"
            + (
                ", which this server refuses: it speaks only 2026-07-28"
                if era.name == MODERN_ERA_ONLY
                else f"; {_BRIDGE_DOWN}"
            ),
            fix="Remove --protocol legacy: the server speaks 2026-07-28, so the relay would "
            "pass a 2026-07-28 client's requests through"
            if modern
            else "",
            data={"presents": "bridge down"},
        )
    elif target.options.protocol == "modern" and era.name == LEGACY_ONLY:
        report.add(
            check,
            SECTION,
            WARN,
            f"--protocol modern: {_MODERN_CLIENT}'s requests go to the server as they are, and "
            "it refuses them (it speaks only the 2025 protocol)",
            fix="Remove --protocol modern: the default (auto) bridges a 2026-07-28 client down",
            data={"presents": "error"},
        )
    elif era.name == LEGACY_ONLY:
        report.add(
            check,
            SECTION,
            PASS,
            f"{_MODERN_CLIENT} gets the bridge down (the server speaks only the 2025 protocol): "
            + _BRIDGE_DOWN,
            data={"presents": "bridge down"},
        )
    else:
        report.add(
            check,
            SECTION,
            PASS,
            f"{_MODERN_CLIENT}'s requests are passed through: one POST each, no session, with "
            "MCP-Protocol-Version, Mcp-Method and Mcp-Name (and Mcp-Param-*) headers",
            data={"presents": "pass-through"},
        )


async def _check_tools(report: Report, requests: _ModernRequests, era: EraFound) -> None:
    """The server's 2026-07-28 tools/list, every page (bounded), screened as the relay does."""
    tools: list[Any] = []
    pages = 0
    cursor: str | None = None
    try:
        while pages < MAX_TOOL_PAGES:
            pages += 1
            answer = await requests.answer("tools/list", {"cursor": cursor} if cursor else {})
            result = (answer or {}).get("result")
            page = result.get("tools") if isinstance(result, dict) else None
            if not isinstance(result, dict) or not isinstance(page, list):
                error = (answer or {}).get("error") or answer
                report.add(
                    "era.tools",
                    SECTION,
                    WARN,
                    f"the 2026-07-28 tools/list was answered without a tool list: {_short(error)}",
                    fix="The server's tools are not listed for 2026-07-28 clients; see its logs",
                )
                return
            tools += page
            next_cursor = result.get("nextCursor")
            cursor = next_cursor if isinstance(next_cursor, str) and next_cursor else None
            if cursor is None:
                break
    except UpstreamError as exc:
        report.add(
            "era.tools",
            SECTION,
            WARN,
            f"the 2026-07-28 tools/list failed: {exc}",
            fix=exc.hint or "See the server's logs",
        )
        return
    kept, headers, rejected = screen_tools(tools)
    summary = f"2026-07-28 tools/list: {len(tools)} tools in {pages} page" + (
        "" if pages == 1 else "s"
    )
    details = [
        f"{name}: mirrors {', '.join(param.header for param in params)}"
        for name, params in headers.items()
    ]
    data = {"tools": len(tools), "pages": pages, "rejected": [tool.name for tool in rejected]}
    if cursor is not None:
        report.add(
            "era.tools",
            SECTION,
            WARN,
            f"{summary}, and the server still gives a nextCursor: stopped there",
            details=details,
            fix="The server's pagination may loop; the relay stops after as many pages",
            data=data,
        )
    elif rejected:
        report.add(
            "era.tools",
            SECTION,
            INFO,
            f"{summary}; the relay leaves {len(rejected)} out (below), passes {len(kept)}",
            details=details,
            data=data,
        )
    else:
        report.add(
            "era.tools",
            SECTION,
            PASS,
            f"{summary}; every x-mcp-header is valid",
            details=details,
            data=data,
        )
    who = (
        f"neither {_MODERN_CLIENT} nor a 2025 client bridged up can"
        if era.name == MODERN_ERA_ONLY
        else f"{_MODERN_CLIENT} cannot"
    )
    for tool in rejected:
        report.add(
            f"era.tool.{tool.name}",
            SECTION,
            WARN,
            f"the relay leaves the tool {tool.name!r} out of tools/list: {tool.reason}",
            fix=f"Until the server's maintainers fix its inputSchema (2026-07-28 server/tools "
            f"§x-mcp-header), {who} see or call it",
            data={"tool": tool.name, "reason": tool.reason},
        )


def _report_cache(
    report: Report, target: Target, probe: Probe, era: EraFound, *, bridges: bool
) -> None:
    cached, protocol = era.cached, target.options.protocol
    data = {"cached": cached}
    if protocol != "auto":
        report.add(
            "era.cache",
            SECTION,
            INFO,
            f"the relay's era cache holds {cached or 'nothing'} for this URL, which --protocol "
            f"{protocol} does not use",
            data=data,
        )
        return
    if cached is None:
        report.add(
            "era.cache",
            SECTION,
            INFO,
            "the relay's era cache holds nothing for this URL: its first start finds the era "
            "as above",
            data=data,
        )
        return
    report.add(
        "era.cache",
        SECTION,
        INFO,
        f"the relay's era cache says {cached} for {display_url(target.url)} (kept a week)",
        data=data,
    )
    stale = _stale_cache(probe, era, bridges)
    if stale:
        report.add(
            "era.cache.stale", SECTION, INFO, stale, data={"cached": cached, "found": era.name}
        )


def _stale_cache(probe: Probe, era: EraFound, bridges: bool) -> str | None:
    """What the relay does when its cached era is not what was found here; None when it is.
    ``bridges``: whether a 2025 client gets the bridge up once the entry is corrected."""
    then = ", and bridges" if bridges else " (and then fails: see above)"
    if era.cached == MODERN_ONLY and era.name == LEGACY_ONLY:
        return (
            f"the cache is out of date: the server is {LEGACY_ONLY} now. The relay will try the "
            "bridge first, find no server/discover, forget the entry and re-probe with "
            "initialize"
        )
    if era.cached == MODERN_ONLY and era.name == DUAL_ERA:
        return (
            "the server takes initialize too now: the relay bridges a 2025 client (which works, "
            "the server speaks 2026-07-28) until the entry expires or the bridge fails, then "
            "re-probes and relays"
        )
    if era.cached == CACHED_LEGACY_ONLY and era.name in (DUAL_ERA, MODERN_ERA_ONLY):
        return (
            "the cache is out of date: the server speaks 2026-07-28 now. The relay bridges a "
            "2026-07-28 client down until the entry expires"
            + (
                ""
                if era.name == DUAL_ERA
                else " (or the server refuses the bridge's initialize, which makes it re-probe)"
            )
            + "; delete eras.json in the state directory to pass through at once"
        )
    if era.cached in (LEGACY, CACHED_LEGACY_ONLY) and era.name == MODERN_ERA_ONLY:
        if _refusal(probe)[1]:
            return (
                f"the cache is out of date: the server is {MODERN_ERA_ONLY} now. Its refusal of "
                f"initialize says so itself, so the relay replaces the entry at once{then}"
            )
        return (
            f"the cache is out of date: the server is {MODERN_ERA_ONLY} now. The relay's first "
            "initialize fails without the server/discover probe; it then forgets the entry "
            f"and re-probes{then}"
        )
    return None
