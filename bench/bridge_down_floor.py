"""Where the bridge down's latency goes: the relay alone against the bridge, call by call.

    python -m bench.bridge_down_floor [--calls N] [--block B]

One legacy-only server (``sdk_server --legacy-only``, as ``bench.run --modern`` uses) and three
clients of it: a direct 2025 client, a 2025 client through the relay (the relay's own cost on a
legacy session) and a 2026-07-28 client through the relay (the bridge down). Their echo calls
are interleaved — one call each in turn, or ``--block`` calls each — so the machine's drift hits
all three alike, and the p50 of each and the relays' CPU per call (``/proc`` utime + stime) are
printed. ``bench.run --modern`` gives the figure the issue's target is about; this one splits it
into "the relay" and "the bridge".
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import trio

from .modern import STATE_DIR_ENV, CountingLegacy, CountingRelay, ModernRelay
from .run import Endpoint, child_env, cpu_seconds, relay_command, start_server, stop_process


async def measure(calls: int, block: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-bridge-down-"))
    server = await start_server(
        "streamable-http", False, workdir, extra_args=["--legacy-only"], name="legacy"
    )
    try:
        url = server.base + "/mcp"
        env = {**child_env(), STATE_DIR_ENV: str(workdir / "state")}
        argv = [*relay_command(), url, "--log-level", "warning"]
        endpoints: dict[str, Endpoint] = {
            "direct 2025 client": CountingLegacy(url, "direct"),
            "2025 client → relay": CountingRelay("relay", argv, workdir, env),
            "2026 client → bridge down": ModernRelay("bridge down", argv, workdir, env),
        }
        async with trio.open_nursery() as nursery:
            for endpoint in endpoints.values():
                await endpoint.open(nursery)
                for _ in range(30):  # warm-up: connections, caches, lazy imports
                    await endpoint.call_tool("echo", {"text": "warm-up"})
            cpu_before = {k: cpu_seconds(e.pid) for k, e in endpoints.items() if e.pid}
            times: dict[str, list[float]] = {k: [] for k in endpoints}
            for _ in range(max(1, calls // block)):
                for label, endpoint in endpoints.items():
                    for _ in range(block):
                        started = time.perf_counter()
                        await endpoint.call_tool("echo", {"text": "hello"})
                        times[label].append((time.perf_counter() - started) * 1000)
            floor = statistics.median(times["direct 2025 client"])
            for label, values in times.items():
                p50 = statistics.median(values)
                line = f"{label:28} p50 {p50:6.3f} ms ({p50 - floor:+.3f})"
                endpoint = endpoints[label]
                if endpoint.pid:
                    used = cpu_seconds(endpoint.pid) - cpu_before[label]
                    line += f"   CPU {used / len(values) * 1e6:6.0f} µs/call"
                print(line)
            for endpoint in endpoints.values():
                await endpoint.aclose()
            nursery.cancel_scope.cancel()
    finally:
        await stop_process(server.process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="echo calls per client")
    parser.add_argument("--block", type=int, default=1, help="calls per client in a row")
    args = parser.parse_args()
    trio.run(measure, args.calls, args.block)


if __name__ == "__main__":
    main()
