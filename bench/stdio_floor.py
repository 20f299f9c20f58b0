"""What any stdio relay costs before it does anything: the round trip through two pipes.

    python -m bench.stdio_floor [--calls N]

Starts a child Python process that runs trio and copies its stdin to its stdout, nothing else,
and times a one-line JSON-RPC request written to it until the same line is read back and parsed,
as ``bench.run`` drives a relay. The p50 of that is the part of a relay's added latency that
no relay code can remove: two pipe writes, two process wake-ups, two trio loops.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import trio

from .run import percentile

ECHO = """
import os, trio
async def main():
    source = trio.lowlevel.FdStream(os.dup(0))
    sink = trio.lowlevel.FdStream(os.dup(1))
    while chunk := await source.receive_some(65536):
        await sink.send_all(chunk)
trio.run(main)
"""

REQUEST = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "hello"}},
}


async def measure(calls: int, warmup: int = 200) -> list[float]:
    line = (json.dumps(REQUEST) + "\n").encode()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdin is not None
    assert process.stdout is not None
    times: list[float] = []
    try:
        for _ in range(warmup + calls):
            started = time.perf_counter()
            await process.stdin.send_all(line)
            received = b""
            while not received.endswith(b"\n"):
                chunk = await process.stdout.receive_some(65536)
                if not chunk:
                    raise SystemExit("the echo process ended early")
                received += chunk
            json.loads(received)
            times.append(time.perf_counter() - started)
    finally:
        await process.stdin.aclose()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
    return times[warmup:]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stdio_floor", description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args(argv)
    times = trio.run(measure, args.calls)
    print(
        f"stdio round trip through a trio echo process, {len(times)} calls: "
        f"p50 {statistics.median(times) * 1000:.3f} ms, "
        f"p99 {percentile(times, 99) * 1000:.3f} ms"
    )


if __name__ == "__main__":
    main()
