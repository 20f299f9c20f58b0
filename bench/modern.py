"""The 2026-07-28 scenarios of the benchmark: ``python -m bench.run --modern [--quick]``.

Two SDK test peers run on loopback: a dual-era server (``sdk_server --transport
streamable-http``: a POST whose ``MCP-Protocol-Version`` is 2026-07-28 goes to the SDK's modern
entry, anything else to its legacy session transport) and a modern-only one (``--modern-only``:
``initialize`` is refused). Four long-lived clients do the same work, interleaved round-robin
as in ``bench.run``:

* ``direct → dual``: the floor, a 2026-07-28 client on httpx: one POST per request with
  ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name``, ``_meta`` in every request, no
  session and no ``initialize`` (its first request is ``server/discover``);
* ``pass-through``: the relay, driven by the same client as raw lines (``_meta`` on every
  request), to the dual-era server;
* ``direct → modern-only``: the floor again, on the modern-only server;
* ``bridge up``: the relay driven by a legacy client (``initialize``, ``notifications/
  initialized``, then requests without ``_meta``), to the modern-only server;
* ``direct legacy → legacy-only``: the floor of the bridge down, a 2025 client by hand
  (``initialize``, a session) on a third server that speaks only the 2025 protocol
  (``--legacy-only``: a 2026-07-28 request is a 400, as from a 2025 server);
* ``bridge down``: the relay driven by the 2026-07-28 client, to the legacy-only server.

Start-ups are timed in the same run: the legacy client through the relay to the dual-era server
(today's start-up), the modern client through the relay, and the legacy client to the
modern-only server with an empty era cache and with a warm one (a second start, which skips the
refused ``initialize``). Every relay gets its own era cache directory
(``MCP_REMOTE_PY_STATE_DIR``). Upstream requests are counted from the peer's ``GET /_faults``
``arrivals`` (one entry per request it took up, in order), which is always on and costs the
server no more than it costs every client.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from .run import (
    CALL_TIMEOUT,
    CLIENT_INFO,
    READY_TIMEOUT,
    BenchError,
    DirectStreamableHttp,
    Endpoint,
    Figure,
    Plan,
    Server,
    StdioRelay,
    big_times,
    child_env,
    concurrent_rate,
    cpu_seconds,
    direct_client,
    dumps,
    fmt,
    memory_kib,
    percentile,
    ratio,
    render,
    result_of,
    rotated,
    start_server,
    stop_process,
)

MODERN_VERSION = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
META = {VERSION_KEY: MODERN_VERSION, CAPABILITIES_KEY: {}, CLIENT_INFO_KEY: CLIENT_INFO}
# The methods whose POST carries Mcp-Name, and the parameter it mirrors.
NAME_BEARING = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
STATE_DIR_ENV = "MCP_REMOTE_PY_STATE_DIR"

# The long-lived clients.
DIRECT_DUAL = "direct → dual"
PASS_THROUGH = "pass-through"
DIRECT_MODERN = "direct → modern-only"
BRIDGE = "bridge up"
DIRECT_LEGACY = "direct legacy → legacy-only"
BRIDGE_DOWN = "bridge down"
VARIANTS = [DIRECT_DUAL, PASS_THROUGH, DIRECT_MODERN, BRIDGE, DIRECT_LEGACY, BRIDGE_DOWN]
FLOOR_OF = {PASS_THROUGH: DIRECT_DUAL, BRIDGE: DIRECT_MODERN, BRIDGE_DOWN: DIRECT_LEGACY}
PAIRS = [(DIRECT_DUAL, PASS_THROUGH), (DIRECT_MODERN, BRIDGE), (DIRECT_LEGACY, BRIDGE_DOWN)]

# The start-ups.
START_LEGACY_DIRECT = "legacy client, direct → dual (initialize)"
START_LEGACY = "legacy client → relay → dual (initialize): today"
START_MODERN_DIRECT = "modern client, direct → modern-only (server/discover)"
START_PASS = "modern client → relay → dual (server/discover)"
START_COLD = "legacy client → relay → modern-only, empty era cache"
START_WARM = "legacy client → relay → modern-only, warm era cache"
START_DOWN_COLD = "modern client → relay → legacy-only, empty era cache"
START_DOWN_WARM = "modern client → relay → legacy-only, warm era cache"
STARTS = [
    START_LEGACY_DIRECT,
    START_LEGACY,
    START_MODERN_DIRECT,
    START_PASS,
    START_COLD,
    START_WARM,
    START_DOWN_COLD,
    START_DOWN_WARM,
]

# After a start-up's answer, how long to let what the start sends after it (a legacy session's
# notifications/initialized and GET stream, the bridge's subscriptions/listen) reach the server
# before the requests are counted. Not part of any timing.
SETTLE = 0.2

# "RSS after the run" is read this long after the last call: the relay returns glibc's free heap
# (malloc_trim) half a second after a message over 1 MiB.
RSS_AFTER = 1.5

# Issue targets.
P50_MARGIN_MS = 0.2
CALLS_RATIO = 0.95


def modern_params(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "_meta": META}


# -- the clients -----------------------------------------------------------------------------------


class DirectModern(DirectStreamableHttp):
    """2026-07-28 Streamable HTTP by hand: every request its own POST with the request metadata
    headers and ``_meta``; no ``initialize``, no session, no GET stream, no DELETE."""

    def __init__(self, url: str, label: str) -> None:
        super().__init__(url)
        self.label = label
        self.posts = 0

    async def open(self, nursery: trio.Nursery) -> float:
        started = time.perf_counter()
        self.client = direct_client(httpx.Timeout(CALL_TIMEOUT, connect=10.0), None)
        with trio.fail_after(READY_TIMEOUT):
            answer = await self.request("server/discover", {})
        elapsed = time.perf_counter() - started
        check_discover(answer, self.label)
        return elapsed

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None
        request_id = next(self._ids)
        params = modern_params(params)
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": MODERN_VERSION,
            "Mcp-Method": method,
        }
        name_key = NAME_BEARING.get(method)
        if name_key is not None:
            headers["Mcp-Name"] = params[name_key]  # the bench's names are plain ASCII
        request = self.client.build_request(
            "POST", self.url, content=dumps(message), headers=headers
        )
        self.posts += 1
        response = await self.client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                body = await response.aread()
                raise BenchError(
                    f"{self.label}: {method} answered {response.status_code}: {body[:200]!r}"
                )
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if content_type == "application/json":
                answer = json.loads(await response.aread())
                if not isinstance(answer, dict):
                    raise BenchError(f"{self.label}: unexpected JSON body {str(answer)[:200]}")
                return answer
            if content_type != "text/event-stream":
                raise BenchError(f"{self.label}: unexpected content type {content_type!r}")
            return await self._read_stream(response, request_id)
        finally:
            await response.aclose()

    async def aclose(self) -> None:  # no session to DELETE
        if self.client is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.client.aclose()


class CountingLegacy(DirectStreamableHttp):
    """A 2025 client by hand (``bench.run``'s), counting its requests."""

    requests = 0

    def __init__(self, url: str, label: str) -> None:
        super().__init__(url)
        self.label = label

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        return await super().request(method, params)


class CountingRelay(StdioRelay):
    """The relay driven by a legacy client (``initialize`` first), counting its requests."""

    requests = 0

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        return await super().request(method, params)


class ModernRelay(CountingRelay):
    """The relay driven by a 2026-07-28 client: ``_meta`` on every request, no ``initialize``
    and no notifications; its first request is ``server/discover``."""

    async def open(self, nursery: trio.Nursery) -> float:
        started = time.perf_counter()
        await self.spawn(nursery)
        with trio.fail_after(READY_TIMEOUT):
            answer = await self.request("server/discover", {})
        elapsed = time.perf_counter() - started
        check_discover(answer, self.label)
        return elapsed

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await super().request(method, modern_params(params))


def check_discover(answer: dict[str, Any], label: str) -> None:
    result = result_of(answer, f"{label} server/discover")
    if MODERN_VERSION not in result.get("supportedVersions", []):
        raise BenchError(f"{label}: server/discover does not offer {MODERN_VERSION}: {result}")


# -- the bench -------------------------------------------------------------------------------------


FIGURES = [
    Figure("echo_p50_ms", "echo latency p50", "ms", 2),
    Figure("echo_p99_ms", "echo latency p99", "ms", 2),
    Figure("callers_per_s", "16 concurrent callers", "calls/s", 0, higher_is_better=True),
    Figure("big5_ms", "5 MB result", "ms", 0),
    Figure("echo_cpu_us", "client CPU per echo call", "µs", 0),
    Figure("posts_per_request", "upstream POSTs per request after start-up", "", 3),
    Figure("rss_after_mib", "RSS after the run", "MiB", 1, relay_only=True),
]


class Arrivals:
    """What the peers took up, in order (``GET /_faults`` → ``arrivals``: "POST <method>",
    "GET", "DELETE")."""

    def __init__(self) -> None:
        self._client = httpx.AsyncClient(timeout=30, trust_env=False)

    async def get(self, server: Server) -> list[str]:
        response = await self._client.get(f"{server.base}/_faults")
        if response.status_code != 200:
            raise BenchError(f"GET {server.base}/_faults answered {response.status_code}")
        arrivals = response.json().get("arrivals")
        if not isinstance(arrivals, list):
            raise BenchError(f"GET {server.base}/_faults has no arrivals list")
        return arrivals

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self._client.aclose()


def posts_of(arrivals: Sequence[str]) -> list[str]:
    return [a.removeprefix("POST ") for a in arrivals if a.startswith("POST ")]


def summary(arrivals: Sequence[str]) -> str:
    """``["POST tools/call", "POST tools/call", "GET"]`` → ``"POST tools/call ×2, GET"``."""
    if not arrivals:
        return "none"
    counts = Counter(arrivals)
    return ", ".join(f"{what} ×{n}" if n > 1 else what for what, n in counts.items())


class ModernBench:
    """All the 2026-07-28 figures: two servers, long-lived clients, interleaved work."""

    def __init__(
        self, plan: Plan, relay_command: list[str], workdir: Path, say: Callable[[str], None]
    ) -> None:
        self.plan = plan
        self.relay_command = relay_command
        self.workdir = workdir
        self.say = say
        self.figures: dict[str, dict[str, float | None]] = {f.key: {} for f in FIGURES}
        self.startup: dict[str, float] = {}
        self.startup_all: dict[str, list[float]] = {}
        self.startup_upstream: dict[str, str] = {}
        self.counts: dict[str, Any] = {}
        self.notes: list[str] = []
        self.dual: Server | None = None
        self.modern: Server | None = None
        self.legacy: Server | None = None
        self.arrivals = Arrivals()

    # -- making clients ----------------------------------------------------------------------

    def state_env(self, name: str) -> dict[str, str]:
        directory = self.workdir / f"state-{name}"
        directory.mkdir(exist_ok=True)
        return {**child_env(), STATE_DIR_ENV: str(directory)}

    def relay_argv(self, server: Server) -> list[str]:
        return [*self.relay_command, server.base + "/mcp", "--log-level", "warning"]

    def make(self, variant: str, state: str | None = None) -> Endpoint:
        assert self.dual is not None
        assert self.modern is not None
        if variant in (DIRECT_DUAL, START_LEGACY_DIRECT):
            if variant == START_LEGACY_DIRECT:
                return DirectStreamableHttp(self.dual.base + "/mcp")
            return DirectModern(self.dual.base + "/mcp", variant)
        if variant in (DIRECT_MODERN, START_MODERN_DIRECT):
            return DirectModern(self.modern.base + "/mcp", variant)
        if variant == DIRECT_LEGACY:
            assert self.legacy is not None
            return CountingLegacy(self.legacy.base + "/mcp", variant)
        if variant in (BRIDGE_DOWN, START_DOWN_COLD, START_DOWN_WARM):
            assert self.legacy is not None
            argv = self.relay_argv(self.legacy)
            return ModernRelay(variant, argv, self.workdir, self.state_env(state or "down"))
        if variant in (PASS_THROUGH, START_PASS):
            argv = self.relay_argv(self.dual)
            return ModernRelay(variant, argv, self.workdir, self.state_env(state or "pass"))
        if variant == START_LEGACY:
            argv = self.relay_argv(self.dual)
            return CountingRelay(variant, argv, self.workdir, self.state_env("legacy"))
        assert variant in (BRIDGE, START_COLD, START_WARM)
        argv = self.relay_argv(self.modern)
        return CountingRelay(variant, argv, self.workdir, self.state_env(state or "warm"))

    def server_of(self, variant: str) -> Server:
        assert self.dual is not None
        assert self.modern is not None
        on_dual = {DIRECT_DUAL, PASS_THROUGH, START_LEGACY_DIRECT, START_LEGACY, START_PASS}
        if variant in (DIRECT_LEGACY, BRIDGE_DOWN, START_DOWN_COLD, START_DOWN_WARM):
            assert self.legacy is not None
            return self.legacy
        return self.dual if variant in on_dual else self.modern

    def record(self, key: str, variant: str, value: float | None) -> None:
        self.figures[key][variant] = value

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> None:
        self.dual = await start_server("streamable-http", False, self.workdir, name="dual")
        try:
            self.modern = await start_server(
                "streamable-http", False, self.workdir, extra_args=["--modern-only"], name="modern"
            )
            self.legacy = await start_server(
                "streamable-http", False, self.workdir, extra_args=["--legacy-only"], name="legacy"
            )
            endpoints: dict[str, Endpoint] = {}
            try:
                async with trio.open_nursery() as nursery:
                    try:
                        await self.measure_startup(nursery)
                        await self.open_all(nursery, endpoints)
                        await self.measure(endpoints)
                    finally:
                        for endpoint in endpoints.values():
                            await endpoint.aclose()
                        self.collect_stderr(endpoints)
                    nursery.cancel_scope.cancel()
            finally:
                await stop_process(self.legacy.process)
                await stop_process(self.modern.process)
        finally:
            await stop_process(self.dual.process)
            await self.arrivals.aclose()

    async def timed_start(
        self, variant: str, nursery: trio.Nursery, state: str | None, count: bool
    ) -> float:
        """One start-up: seconds from the launch to the first answer. ``count``: also note what
        the server took up for it, until SETTLE after the answer (outside the timing)."""
        server = self.server_of(variant)
        before = len(await self.arrivals.get(server)) if count else 0
        endpoint = self.make(variant, state)
        try:
            seconds = await endpoint.open(nursery)
            if count:
                await trio.sleep(SETTLE)
                self.startup_upstream[variant] = summary((await self.arrivals.get(server))[before:])
        finally:
            await endpoint.aclose()
        return seconds

    async def measure_startup(self, nursery: trio.Nursery) -> None:
        reps = self.plan.modern_startup_reps
        self.say(f"  start-up x{reps} (and one unmeasured start to warm each era cache)")
        for variant in (START_LEGACY, START_WARM, START_PASS, START_DOWN_WARM):
            endpoint = self.make(variant)
            try:
                await endpoint.open(nursery)
                await endpoint.call_tool("echo", {"text": "first start"})
            finally:
                await endpoint.aclose()
        times: dict[str, list[float]] = {v: [] for v in STARTS}
        for rep in range(reps):
            for variant in rotated(STARTS, rep):
                fresh = variant in (START_COLD, START_DOWN_COLD)
                state = f"cold-{rep}-{STARTS.index(variant)}" if fresh else None
                seconds = await self.timed_start(variant, nursery, state, count=rep == 0)
                times[variant].append(seconds)
        for variant, values in times.items():
            self.startup[variant] = statistics.median(values) * 1000
        self.startup_all = {v: [round(t * 1000, 1) for t in values] for v, values in times.items()}
        cold = self.startup_upstream.get(START_COLD, "")
        warm = self.startup_upstream.get(START_WARM, "")
        if "initialize" not in cold:
            self.notes.append(f"the start with an empty era cache sent no initialize: {cold}")
        if "initialize" in warm:
            self.notes.append(f"the era cache did not spare the refused initialize: {warm}")
        down_cold = self.startup_upstream.get(START_DOWN_COLD, "")
        down_warm = self.startup_upstream.get(START_DOWN_WARM, "")
        if down_warm.count("server/discover") >= down_cold.count("server/discover") > 0:
            self.notes.append(
                f"the era cache did not spare the refused server/discover: {down_warm}"
            )

    async def open_all(self, nursery: trio.Nursery, endpoints: dict[str, Endpoint]) -> None:
        """Open the long-lived clients, noting what each start and first call sent upstream."""
        for variant in VARIANTS:
            server = self.server_of(variant)
            endpoint = endpoints[variant] = self.make(variant)
            seen = len(await self.arrivals.get(server))
            await endpoint.open(nursery)
            await trio.sleep(SETTLE)  # what the start sends after the answer is the start's
            opened = await self.arrivals.get(server)
            await endpoint.call_tool("echo", {"text": "first call"})
            called = await self.arrivals.get(server)
            self.counts.setdefault("start", {})[variant] = {
                "open": opened[seen:],
                "first_call": called[len(opened) :],
            }

    async def measure(self, endpoints: dict[str, Endpoint]) -> None:
        plan = self.plan
        relays = {v: e for v, e in endpoints.items() if e.pid is not None}
        for variant in VARIANTS:  # warm-up: connections, caches, lazy imports
            for _ in range(plan.warmup):
                await endpoints[variant].call_tool("echo", {"text": "warm-up"})

        assert self.dual is not None
        assert self.modern is not None
        assert self.legacy is not None
        window = {
            "dual": len(await self.arrivals.get(self.dual)),
            "modern": len(await self.arrivals.get(self.modern)),
            "legacy": len(await self.arrivals.get(self.legacy)),
        }
        requests_before = {v: requests_of(e) for v, e in endpoints.items()}

        self.say(f"  echo x{plan.echo_calls} sequential")
        latencies: dict[str, list[float]] = {v: [] for v in VARIANTS}
        cpu_before = {v: cpu_seconds(e.pid) for v, e in relays.items() if e.pid}
        direct_cpu = {v: 0.0 for v in VARIANTS if v not in relays}
        blocks = -(-plan.echo_calls // plan.echo_block)
        for block in range(blocks):
            for variant in rotated(VARIANTS, block):
                endpoint = endpoints[variant]
                cpu_started = time.process_time()
                for _ in range(plan.echo_block):
                    started = time.perf_counter()
                    text = await endpoint.call_tool("echo", {"text": "hello"})
                    latencies[variant].append(time.perf_counter() - started)
                    if text != "hello":
                        raise BenchError(f"{variant}: echo answered {text[:50]!r}")
                if variant in direct_cpu:
                    direct_cpu[variant] += time.process_time() - cpu_started
        for variant, values in latencies.items():
            self.record("echo_p50_ms", variant, percentile(values, 50) * 1000)
            self.record("echo_p99_ms", variant, percentile(values, 99) * 1000)
        for variant, endpoint in relays.items():
            assert endpoint.pid is not None
            used = cpu_seconds(endpoint.pid) - cpu_before[variant]
            self.record("echo_cpu_us", variant, used / len(latencies[variant]) * 1e6)
        for variant, used in direct_cpu.items():
            self.record("echo_cpu_us", variant, used / len(latencies[variant]) * 1e6)

        self.say(f"  {plan.callers} callers x{plan.calls_per_caller} x{plan.concurrency_rounds}")
        rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for round_ in range(plan.concurrency_rounds):
            for variant in rotated(VARIANTS, round_):
                rate = await concurrent_rate(
                    endpoints[variant], plan.callers, plan.calls_per_caller
                )
                rates[variant].append(rate)
        for variant, values in rates.items():
            self.record("callers_per_s", variant, statistics.median(values))

        self.say(f"  big {plan.big_small / 1e6:g} MB x{plan.big_small_reps}")
        small = await big_times(endpoints, VARIANTS, plan.big_small, plan.big_small_reps)
        for variant, values in small.items():
            self.record("big5_ms", variant, statistics.median(values) * 1000)

        # What went upstream in the window: each direct request is one POST by construction,
        # so what is left on a server is the relay's.
        await self.count_window(endpoints, requests_before, window)
        await trio.sleep(RSS_AFTER)  # the relay gives its free heap back after large messages
        for variant, endpoint in relays.items():
            assert endpoint.pid is not None
            self.record("rss_after_mib", variant, memory_kib(endpoint.pid, "VmRSS") / 1024)

    def collect_stderr(self, endpoints: dict[str, Endpoint]) -> None:
        for endpoint in endpoints.values():
            if isinstance(endpoint, StdioRelay):
                lines = endpoint.stderr_tail(1 << 20).strip().splitlines()
                if lines:
                    self.notes.append(
                        f"{endpoint.label} wrote {len(lines)} lines to stderr, the last: "
                        f"{lines[-1][:200]}"
                    )

    async def count_window(
        self,
        endpoints: dict[str, Endpoint],
        requests_before: dict[str, int],
        window: dict[str, int],
    ) -> None:
        """Upstream requests during the measured work. A direct client's requests are one POST
        each (tools/call, all of them), so what else a server took up is the relay's."""
        assert self.dual is not None
        assert self.modern is not None
        assert self.legacy is not None
        pairs = (
            ("dual", self.dual, DIRECT_DUAL, PASS_THROUGH),
            ("modern", self.modern, DIRECT_MODERN, BRIDGE),
            ("legacy", self.legacy, DIRECT_LEGACY, BRIDGE_DOWN),
        )
        for name, server, direct, relay in pairs:
            arrived = (await self.arrivals.get(server))[window[name] :]
            direct_posts = requests_of(endpoints[direct]) - requests_before[direct]
            relay_requests = requests_of(endpoints[relay]) - requests_before[relay]
            by_method = Counter(posts_of(arrived))
            if by_method["tools/call"] < direct_posts:
                raise BenchError(f"{server.base} saw fewer tools/call POSTs than {direct} made")
            by_method["tools/call"] -= direct_posts
            relay_posts = sum(by_method.values())
            self.record("posts_per_request", direct, 1.0)
            self.record("posts_per_request", relay, relay_posts / relay_requests)
            self.counts.setdefault("window", {})[relay] = {
                "requests": relay_requests,
                "posts": relay_posts,
                "posts_by_method": {k: v for k, v in by_method.items() if v},
                "not_posts": [a for a in arrived if not a.startswith("POST ")],
            }

    # -- the report ----------------------------------------------------------------------------

    def targets(self) -> list[Target]:
        figures = self.figures
        floor_p50 = figures["echo_p50_ms"][DIRECT_DUAL]
        p50 = figures["echo_p50_ms"][PASS_THROUGH]
        floor_rate = figures["callers_per_s"][DIRECT_DUAL]
        rate = figures["callers_per_s"][PASS_THROUGH]
        assert floor_p50 is not None
        assert p50 is not None
        assert floor_rate is not None
        assert rate is not None
        window = self.counts["window"][PASS_THROUGH]
        start = self.counts["start"][PASS_THROUGH]
        extra = window["posts"] - window["requests"]
        legacy, warm = self.startup[START_LEGACY], self.startup[START_WARM]
        down_floor = figures["echo_p50_ms"][DIRECT_LEGACY]
        down = figures["echo_p50_ms"][BRIDGE_DOWN]
        assert down_floor is not None
        assert down is not None
        down_window = self.counts["window"][BRIDGE_DOWN]
        return [
            Target(
                f"pass-through p50 at most the floor + {P50_MARGIN_MS} ms",
                f"{floor_p50:.2f} → {p50:.2f} ms: {p50 - floor_p50:+.2f} ms",
                p50 - floor_p50 <= P50_MARGIN_MS,
            ),
            Target(
                f"pass-through calls/s (16 callers) at least {CALLS_RATIO}× the floor",
                f"{floor_rate:,.0f} → {rate:,.0f}: {rate / floor_rate:.2f}×",
                rate / floor_rate >= CALLS_RATIO,
            ),
            Target(
                "no extra round trip per request after start-up",
                f"{window['posts']:,} POSTs for {window['requests']:,} requests, "
                f"{len(window['not_posts'])} GET/DELETE (before: {summary(start['open'])}; "
                f"the first tools/call: {summary(start['first_call'])})",
                extra == 0 and not window["not_posts"],
            ),
            Target(
                f"bridge down p50 at most the direct legacy client's + {P50_MARGIN_MS} ms",
                f"{down_floor:.2f} → {down:.2f} ms: {down - down_floor:+.2f} ms",
                down - down_floor <= P50_MARGIN_MS,
            ),
            Target(
                "bridge down: one upstream POST per request after start-up",
                f"{down_window['posts']:,} POSTs for {down_window['requests']:,} requests",
                down_window["posts"] == down_window["requests"],
            ),
            Target(
                "cached start-up no slower than the legacy start-up",
                f"{legacy:.0f} ms (legacy) → {warm:.0f} ms (warm era cache): {warm / legacy:.2f}×",
                warm <= legacy,
            ),
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "figures": self.figures,
            "startup_ms": self.startup,
            "startup_all_ms": self.startup_all,
            "startup_upstream": self.startup_upstream,
            "upstream": self.counts,
            "targets": [
                {"target": t.what, "measured": t.measured, "met": t.met} for t in self.targets()
            ],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    met: bool


def requests_of(endpoint: Endpoint) -> int:
    """The requests a client has made so far (for a direct one, its POSTs)."""
    if isinstance(endpoint, DirectModern):
        return endpoint.posts
    if isinstance(endpoint, (CountingRelay, CountingLegacy)):
        return endpoint.requests
    raise AssertionError(endpoint)


def summary_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{method} {n:,}" for method, n in counts.items()) or "none"


def tables(bench: ModernBench) -> str:
    """The three tables and the notes, as printed."""
    header = ["figure"]
    for direct, relay in PAIRS:
        header += [direct, relay, "ratio"]
    rows = [header]
    for figure in FIGURES:
        values = bench.figures[figure.key]
        label = f"{figure.label} ({figure.unit})" if figure.unit else figure.label
        if figure.higher_is_better:
            label += " ↑"
        row = [label]
        for _, relay in PAIRS:
            floor = None if figure.relay_only else values.get(FLOOR_OF[relay])
            row += [fmt(floor, figure.digits), fmt(values.get(relay), figure.digits)]
            row.append(ratio(values.get(relay), floor))
        rows.append(row)
    out = [
        "modern (ratio = value / the direct client of the same era on the same server: the "
        "pass-through's and the bridge up's a 2026-07-28 one, the bridge down's a 2025 one)\n",
        render(rows),
    ]

    legacy = bench.startup[START_LEGACY]
    rows = [["start-up (spawn → first answer)", "ms", "q1–q3", "ratio", "upstream requests"]]
    for variant in STARTS:
        value = bench.startup[variant]
        samples = bench.startup_all[variant]
        spread = "—"
        if len(samples) >= 2:
            q1, _, q3 = statistics.quantiles(samples, n=4)
            spread = f"{q1:.0f}–{q3:.0f}"
        upstream = bench.startup_upstream.get(variant, "")
        rows.append([variant, fmt(value, 0), spread, ratio(value, legacy), upstream])
    out += [
        "\nstart-up (median; ratio = value / today's legacy start-up through the relay)\n",
        render(rows, left=(0, 4)),
    ]

    rows = [["target", "measured", "met"]]
    for target in bench.targets():
        rows.append([target.what, target.measured, "met" if target.met else "**not met**"])
    out += ["\ntargets\n", render(rows, left=(0, 1, 2))]

    for _, relay in PAIRS:
        start = bench.counts["start"][relay]
        window = bench.counts["window"][relay]
        out.append(
            f"note: {relay} upstream: the start {summary(start['open'])}; the first tools/call "
            f"{summary(start['first_call'])}; the measured work "
            f"{summary_counts(window['posts_by_method'])} for {window['requests']:,} requests"
            + (f", and {summary(window['not_posts'])}" if window["not_posts"] else "")
        )
    out += [f"note: {note}" for note in bench.notes]
    return "\n".join(out)
