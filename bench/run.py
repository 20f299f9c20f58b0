"""Benchmark the relay against the floor: the same MCP work done directly over HTTP.

Run from the repository root (see bench/README.md for what each figure means):

    python -m bench.run [--transport streamable-http|sse|both] [--quick]
        [--peer-command 'npx mcp-remote'] [--json [FILE]]
    python -m bench.run --modern [--quick]     # the 2026-07-28 scenarios (bench/modern.py)

For each transport it starts the SDK test peer (``tests/peers/sdk_server.py``) on loopback and
drives three clients through the same work, interleaved round-robin per repetition so that the
noise of a shared machine falls on all of them alike:

* ``direct``: a raw JSON-RPC client on httpx, straight to the server (the floor);
* ``mcp-remote-py``: the relay as a subprocess, raw newline-delimited JSON-RPC on its pipes;
* ``peer`` (with ``--peer-command``): another stdio relay, driven the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

REPO = Path(__file__).resolve().parents[1]
PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "mcp-remote-py-bench", "version": "0"}
READY_TIMEOUT = 30.0
CALL_TIMEOUT = 120.0
EXIT_TIMEOUT = 5.0
# After an answer on a POST's event stream, how long to let the server end the stream so the
# connection goes back to the pool (the SDK ends it at once; the relay waits up to 1 s too).
DRAIN_AFTER_ANSWER = 1.0
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}

DIRECT, RELAY, PEER = "direct", "mcp-remote-py", "peer"


class BenchError(Exception):
    """Something went wrong that makes a figure meaningless: the run stops with this message."""


# -- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    echo_calls: int
    echo_block: int
    callers: int
    calls_per_caller: int
    concurrency_rounds: int
    big_small: int
    big_small_reps: int
    big_large: int
    big_large_reps: int
    startup_reps: int
    idle_seconds: float
    warmup: int = 20
    growth_calls: int = 0  # --growth: calls through each relay while its RSS is sampled
    # --modern: start-ups of each kind (six kinds, whose medians differ by a few ms at most)
    modern_startup_reps: int = 15


FULL = Plan(
    echo_calls=1000,
    echo_block=50,
    callers=16,
    calls_per_caller=25,
    concurrency_rounds=5,
    big_small=5 * 1000 * 1000,
    big_small_reps=5,
    big_large=50 * 1000 * 1000,
    big_large_reps=3,
    startup_reps=7,
    idle_seconds=60.0,
)
QUICK = Plan(
    echo_calls=200,
    echo_block=50,
    callers=16,
    calls_per_caller=10,
    concurrency_rounds=3,
    big_small=5 * 1000 * 1000,
    big_small_reps=3,
    big_large=50 * 1000 * 1000,
    big_large_reps=1,
    startup_reps=3,
    idle_seconds=5.0,
    modern_startup_reps=5,
)


# -- /proc: CPU and memory of a process and its descendants ---------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and its living descendants (a wrapper such as npx runs the relay as a child)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process tree, in seconds (resolution 1/CLK_TCK)."""
    ticks = 0
    for member in process_tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLK_TCK


def memory_kib(pid: int, key: str) -> int:
    """A /proc/PID/status figure (VmRSS, VmHWM) summed over the process tree, in KiB."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith(key + ":"):
                total += int(line.split()[1])
    return total


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/PID/clear_refs``); False if refused."""
    done = True
    for member in process_tree(pid):
        try:
            Path(f"/proc/{member}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


# -- wire helpers ----------------------------------------------------------------------------------


def dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


class LineBuffer:
    """Splits a byte stream into lines, scanning each byte once (a 50 MB line stays O(n))."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        lines: list[bytes] = []
        start = 0
        while (newline := buffer.find(b"\n", max(start, self._scanned))) >= 0:
            with memoryview(buffer) as view:
                lines.append(bytes(view[start:newline]))
            start = newline + 1
        del buffer[:start]
        self._scanned = len(buffer)
        return lines


class SseParser:
    """Incremental text/event-stream parser yielding ``(event, data)`` pairs (data as bytes)."""

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        events: list[tuple[str, bytes]] = []
        for raw in self._lines.feed(chunk):
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data:
                    events.append((self._event or "message", b"\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value.decode()
        return events


@dataclass
class _Slot:
    event: trio.Event = field(default_factory=trio.Event)
    message: dict[str, Any] | None = None
    error: str | None = None


class Waiters:
    """Requests waiting for their answers, matched by id."""

    def __init__(self) -> None:
        self._slots: dict[Any, _Slot] = {}
        self.error: str | None = None

    def expect(self, request_id: Any) -> _Slot:
        if self.error is not None:
            raise BenchError(self.error)
        slot = self._slots[request_id] = _Slot()
        return slot

    def resolve(self, message: Any) -> None:
        if isinstance(message, dict) and ("result" in message or "error" in message):
            slot = self._slots.pop(message.get("id"), None)
            if slot is not None:
                slot.message = message
                slot.event.set()

    def fail_all(self, error: str) -> None:
        self.error = error
        for slot in self._slots.values():
            slot.error = error
            slot.event.set()
        self._slots.clear()

    def forget(self, request_id: Any) -> None:
        self._slots.pop(request_id, None)


async def wait_answer(slot: _Slot, what: str) -> dict[str, Any]:
    await slot.event.wait()
    if slot.error is not None:
        raise BenchError(f"{what}: {slot.error}")
    assert slot.message is not None
    return slot.message


def result_of(message: dict[str, Any], what: str) -> dict[str, Any]:
    if "error" in message:
        raise BenchError(f"{what} failed: {message['error']}")
    result = message.get("result")
    if not isinstance(result, dict):
        raise BenchError(f"{what}: no result object in {str(message)[:200]}")
    return result


def tool_text(result: dict[str, Any], what: str) -> str:
    content = result.get("content")
    if result.get("isError") or not isinstance(content, list) or not content:
        raise BenchError(f"{what}: unexpected tool result {str(result)[:200]}")
    text = content[0].get("text")
    if not isinstance(text, str):
        raise BenchError(f"{what}: no text content in {str(result)[:200]}")
    return text


def initialize_params() -> dict[str, Any]:
    return {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}


# -- the three clients -------------------------------------------------------------------------


class Endpoint:
    """One MCP client session the bench drives; ``pid`` is the relay's process (None: direct)."""

    label: str
    pid: int | None = None

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._scope = trio.CancelScope()

    async def open(self, nursery: trio.Nursery) -> float:
        """Connect and initialize; returns seconds from the start to the initialize answer."""
        raise NotImplementedError

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        what = f"{self.label} tools/call {name}"
        with trio.fail_after(CALL_TIMEOUT):
            message = await self.request("tools/call", {"name": name, "arguments": arguments})
        return tool_text(result_of(message, what), what)


@dataclass(frozen=True)
class Tls:
    """--tls: the server's certificate files, the CA that signed them, and whether to offer h2."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    http2: bool

    @classmethod
    def create(cls, directory: Path, http2: bool) -> Tls:
        import trustme  # the test extra: only --tls needs it

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        files = cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem", http2)
        ca.cert_pem.write_to_path(str(files.ca_file))
        cert.private_key_pem.write_to_path(str(files.key_file))
        cert.cert_chain_pems[0].write_to_path(str(files.cert_file))
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(str(files.cert_file), append=True)
        return files


def direct_client(timeout: httpx.Timeout, tls: Tls | None) -> httpx.AsyncClient:
    """The floor's HTTP client: keep-alive connections, no proxies; HTTP/2 when --http2."""
    verify: Any = True
    if tls is not None:
        import ssl

        verify = ssl.create_default_context(cafile=str(tls.ca_file))
    return httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=32),
        trust_env=False,
        verify=verify,
        http2=tls is not None and tls.http2,
    )


class DirectStreamableHttp(Endpoint):
    """Streamable HTTP by hand: one POST per message, answers as JSON or an event stream."""

    label = DIRECT

    def __init__(self, url: str, tls: Tls | None = None) -> None:
        super().__init__()
        self.url = url
        self.tls = tls
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.client: httpx.AsyncClient | None = None

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    async def open(self, nursery: trio.Nursery) -> float:
        started = time.perf_counter()
        self.client = direct_client(httpx.Timeout(CALL_TIMEOUT, connect=10.0), self.tls)
        with trio.fail_after(READY_TIMEOUT):
            answer = await self._post(
                {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": initialize_params()}
            )
        elapsed = time.perf_counter() - started
        assert answer is not None
        self.protocol_version = result_of(answer, "initialize")["protocolVersion"]
        with trio.fail_after(READY_TIMEOUT):
            await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return elapsed

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        answer = await self._post(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        )
        assert answer is not None
        return answer

    async def _post(self, message: dict[str, Any]) -> dict[str, Any] | None:
        assert self.client is not None
        request = self.client.build_request(
            "POST", self.url, content=dumps(message), headers=self._headers()
        )
        response = await self.client.send(request, stream=True)
        try:
            if response.status_code >= 400:
                body = await response.aread()
                raise BenchError(f"direct POST answered {response.status_code}: {body[:200]!r}")
            if message.get("method") == "initialize":
                self.session_id = response.headers.get("mcp-session-id")
            want = message.get("id")
            if want is None:
                await response.aread()
                return None
            content_type = response.headers.get("content-type", "").split(";")[0].strip()
            if content_type == "application/json":
                answer = json.loads(await response.aread())
                if not isinstance(answer, dict):
                    raise BenchError(f"direct: unexpected JSON body {str(answer)[:200]}")
                return answer
            if content_type != "text/event-stream":
                raise BenchError(f"direct: unexpected content type {content_type!r}")
            return await self._read_stream(response, want)
        finally:
            await response.aclose()

    async def _read_stream(self, response: httpx.Response, want: Any) -> dict[str, Any]:
        parser = SseParser()
        answer: dict[str, Any] | None = None
        with trio.CancelScope() as drain:
            async for chunk in response.aiter_raw():
                for event, data in parser.feed(chunk):
                    if event != "message":
                        continue
                    message = json.loads(data)
                    if (
                        isinstance(message, dict)
                        and message.get("id") == want
                        and ("result" in message or "error" in message)
                    ):
                        answer = message
                        drain.deadline = trio.current_time() + DRAIN_AFTER_ANSWER
        if answer is None:
            raise BenchError(f"direct: the event stream ended without the answer to {want!r}")
        return answer

    async def aclose(self) -> None:
        if self.client is None:
            return
        with trio.move_on_after(EXIT_TIMEOUT):
            if self.session_id:
                with contextlib.suppress(httpx.HTTPError):
                    await self.client.delete(self.url, headers=self._headers())
        with trio.CancelScope(shield=True), trio.move_on_after(EXIT_TIMEOUT):
            await self.client.aclose()


class DirectLegacySse(Endpoint):
    """Legacy HTTP+SSE by hand: GET the stream, wait for ``endpoint``, POST there, read answers
    off the stream."""

    label = DIRECT

    def __init__(self, url: str, tls: Tls | None = None) -> None:
        super().__init__()
        self.url = url
        self.tls = tls
        self.endpoint: httpx.URL | None = None
        self.client: httpx.AsyncClient | None = None
        self._waiters = Waiters()
        self._ready = trio.Event()

    async def open(self, nursery: trio.Nursery) -> float:
        started = time.perf_counter()
        self.client = direct_client(httpx.Timeout(CALL_TIMEOUT, connect=10.0, read=None), self.tls)
        nursery.start_soon(self._read)
        with trio.fail_after(READY_TIMEOUT):
            await self._ready.wait()
            if self.endpoint is None:
                raise BenchError(f"direct: no SSE endpoint event ({self._waiters.error})")
            answer = await self.request("initialize", initialize_params())
        elapsed = time.perf_counter() - started
        result_of(answer, "initialize")
        with trio.fail_after(READY_TIMEOUT):
            await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return elapsed

    async def _read(self) -> None:
        assert self.client is not None
        error = "the SSE stream ended"
        with self._scope:
            try:
                headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
                async with self.client.stream("GET", self.url, headers=headers) as response:
                    if response.status_code != 200:
                        raise BenchError(f"GET {self.url} answered {response.status_code}")
                    parser = SseParser()
                    async for chunk in response.aiter_raw():
                        for event, data in parser.feed(chunk):
                            if event == "endpoint":
                                self.endpoint = response.url.join(data.decode().strip())
                                self._ready.set()
                            elif event == "message":
                                self._waiters.resolve(json.loads(data))
            except (httpx.HTTPError, BenchError, ValueError) as exc:
                error = f"the SSE stream failed: {exc!r}"
        self._waiters.fail_all(error)
        self._ready.set()

    async def _post(self, message: dict[str, Any]) -> None:
        assert self.client is not None
        assert self.endpoint is not None
        response = await self.client.post(
            self.endpoint, content=dumps(message), headers={"Content-Type": "application/json"}
        )
        if response.status_code >= 400:
            raise BenchError(f"direct POST answered {response.status_code}: {response.text[:200]}")

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        slot = self._waiters.expect(request_id)
        try:
            await self._post(
                {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            )
            return await wait_answer(slot, f"direct {method}")
        finally:
            self._waiters.forget(request_id)

    async def aclose(self) -> None:
        self._scope.cancel()
        if self.client is not None:
            with trio.CancelScope(shield=True), trio.move_on_after(EXIT_TIMEOUT):
                await self.client.aclose()


def child_env() -> dict[str, str]:
    """The environment for relays: no proxies, so every byte stays on loopback."""
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}


class StdioRelay(Endpoint):
    """A stdio relay as a subprocess, driven with raw newline-delimited JSON-RPC."""

    def __init__(
        self,
        label: str,
        command: list[str],
        stderr_dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.label = label
        self.command = command
        self.env = env  # None: child_env()
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)
        self.stderr_path = stderr_dir / f"{safe}-{time.monotonic_ns()}.stderr"
        self.process: trio.Process | None = None
        self._waiters = Waiters()
        self._write_lock = trio.StrictFIFOLock()

    async def open(self, nursery: trio.Nursery) -> float:
        started = time.perf_counter()
        await self.spawn(nursery)
        with trio.fail_after(READY_TIMEOUT):
            answer = await self.request("initialize", initialize_params())
        elapsed = time.perf_counter() - started
        result_of(answer, f"{self.label} initialize")
        await self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return elapsed

    async def spawn(self, nursery: trio.Nursery) -> None:
        """Start the process and the task reading its stdout."""
        with self.stderr_path.open("wb") as stderr:
            try:
                self.process = await trio.lowlevel.open_process(
                    self.command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=child_env() if self.env is None else self.env,
                    cwd=tempfile.gettempdir(),  # so a relative command path will not do
                )
            except OSError as exc:
                raise BenchError(
                    f"could not start {self.label} ({shlex.join(self.command)}): {exc}; "
                    "give the command as an absolute path or a name on PATH"
                ) from exc
        self.pid = self.process.pid
        nursery.start_soon(self._read)

    def stderr_tail(self, limit: int = 2000) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        lines = LineBuffer()
        with self._scope:
            try:
                while chunk := await self.process.stdout.receive_some(1 << 20):
                    for line in lines.feed(chunk):
                        if line.strip():
                            self._waiters.resolve(json.loads(line))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            except ValueError as exc:
                self._waiters.fail_all(f"{self.label} wrote a line that is not JSON: {exc}")
                return
        self._waiters.fail_all(
            f"{self.label} closed its stdout; its stderr ends with:\n{self.stderr_tail()}"
        )

    async def _write(self, message: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        async with self._write_lock:
            await self.process.stdin.send_all(dumps(message) + b"\n")

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = next(self._ids)
        slot = self._waiters.expect(request_id)
        try:
            await self._write(
                {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            )
            return await wait_answer(slot, f"{self.label} {method}")
        finally:
            self._waiters.forget(request_id)

    async def aclose(self) -> None:
        process = self.process
        if process is None:
            return
        with trio.CancelScope(shield=True):
            if process.stdin is not None:
                with trio.move_on_after(1):
                    await process.stdin.aclose()
            with trio.move_on_after(EXIT_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                process.terminate()
                with trio.move_on_after(2):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        self._scope.cancel()


# -- the server ------------------------------------------------------------------------------------


@dataclass
class Server:
    process: trio.Process
    base: str


async def start_server(
    transport: str,
    json_response: bool,
    stderr_dir: Path,
    tls: Tls | None = None,
    extra_args: Sequence[str] = (),
    name: str | None = None,
) -> Server:
    command = [sys.executable, "-m", "tests.peers.sdk_server", "--transport", transport]
    if json_response and transport == "streamable-http":
        command.append("--json-response")
    if tls is not None:  # hypercorn: TLS with ALPN h2 and http/1.1
        command += ["--hypercorn", "--ssl-certfile", str(tls.cert_file)]
        command += ["--ssl-keyfile", str(tls.key_file)]
    command += extra_args
    with (stderr_dir / f"server-{name or transport}.stderr").open("wb") as stderr:
        process = await trio.lowlevel.open_process(
            command, stdout=subprocess.PIPE, stderr=stderr, cwd=REPO, env=child_env()
        )
    try:
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(READY_TIMEOUT):
            while b"\n" not in buffer:
                chunk = await process.stdout.receive_some(4096)
                if not chunk:
                    raise BenchError("the SDK server exited before it was ready")
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode()
        if not line.startswith("READY "):
            raise BenchError(f"the SDK server said {line!r} instead of READY")
        return Server(process, line.split()[1])
    except BaseException:
        await stop_process(process)
        raise


async def stop_process(process: trio.Process) -> None:
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.terminate()
            with trio.move_on_after(EXIT_TIMEOUT):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


# -- measurements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    digits: int = 1
    higher_is_better: bool = False
    relay_only: bool = False  # a figure about the relay process: no direct value


FIGURES = [
    Figure("echo_p50_ms", "echo latency p50", "ms", 2),
    Figure("echo_p99_ms", "echo latency p99", "ms", 2),
    Figure("callers_per_s", "16 concurrent callers", "calls/s", 0, higher_is_better=True),
    Figure("big5_ms", "5 MB result", "ms", 0),
    Figure("big50_ms", "50 MB result", "ms", 0),
    Figure("big50_peak_mib", "peak RSS during 50 MB", "MiB", 1, relay_only=True),
    Figure("rss_after_mib", "RSS after the run", "MiB", 1, relay_only=True),
    Figure("echo_cpu_us", "client CPU per echo call", "µs", 0),
    Figure("startup_ms", "start-up (spawn → initialize answer)", "ms", 0),
    Figure("idle_cpu_ms", "CPU while idle", "ms", 0, relay_only=True),
    Figure("growth_first_mib", "RSS after the first tenth of --growth", "MiB", 1, relay_only=True),
    Figure("growth_last_mib", "RSS after all of --growth", "MiB", 1, relay_only=True),
    Figure("growth_max_mib", "largest RSS sampled during --growth", "MiB", 1, relay_only=True),
]
GROWTH_SAMPLES = 10


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rotated(items: Sequence[str], turn: int) -> list[str]:
    turn %= len(items)
    return [*items[turn:], *items[:turn]]


class TransportBench:
    """All figures for one transport: one server, long-lived clients, interleaved work."""

    def __init__(
        self,
        transport: str,
        plan: Plan,
        relay_command: list[str],
        peer_command: list[str] | None,
        json_response: bool,
        workdir: Path,
        say: Callable[[str], None],
        tls: Tls | None = None,
    ) -> None:
        self.transport = transport
        self.tls = tls
        self.plan = plan
        self.relay_command = relay_command
        self.peer_command = peer_command
        self.json_response = json_response
        self.workdir = workdir
        self.say = say
        self.variants = [DIRECT, RELAY] + ([PEER] if peer_command else [])
        self.figures: dict[str, dict[str, float | None]] = {f.key: {} for f in FIGURES}
        self.notes: list[str] = []
        self.url = ""

    def make(self, variant: str) -> Endpoint:
        if variant == DIRECT:
            if self.transport == "sse":
                return DirectLegacySse(self.url, self.tls)
            return DirectStreamableHttp(self.url, self.tls)
        if variant == RELAY:
            command = [*self.relay_command, self.url, "--log-level", "warning"]
            if self.tls is not None:
                command += ["--ca-file", str(self.tls.ca_file)]
                command += ["--http2"] if self.tls.http2 else []
            return StdioRelay(RELAY, command, self.workdir)
        assert self.peer_command is not None
        command = [part.replace("{url}", self.url) for part in self.peer_command]
        if not any("{url}" in part for part in self.peer_command):
            command.append(self.url)
        return StdioRelay(PEER, command, self.workdir)

    def record(self, key: str, variant: str, value: float | None) -> None:
        self.figures[key][variant] = value

    async def run(self) -> None:
        server = await start_server(self.transport, self.json_response, self.workdir, self.tls)
        path = "/sse" if self.transport == "sse" else "/mcp"
        self.url = server.base + path
        endpoints: dict[str, Endpoint] = {}
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await self.measure_startup(nursery)
                    for variant in self.variants:
                        endpoints[variant] = self.make(variant)
                        await endpoints[variant].open(nursery)
                    await self.measure(endpoints)
                finally:
                    for endpoint in endpoints.values():
                        await endpoint.aclose()
                    self.collect_stderr(endpoints)
                nursery.cancel_scope.cancel()
        finally:
            await stop_process(server.process)

    def collect_stderr(self, endpoints: dict[str, Endpoint]) -> None:
        for endpoint in endpoints.values():
            if isinstance(endpoint, StdioRelay):
                lines = endpoint.stderr_tail(1 << 20).strip().splitlines()
                if lines:
                    self.notes.append(
                        f"{endpoint.label} wrote {len(lines)} lines to stderr, the last: "
                        f"{lines[-1][:200]}"
                    )

    async def measure_startup(self, nursery: trio.Nursery) -> None:
        self.say(f"  start-up x{self.plan.startup_reps}")
        times: dict[str, list[float]] = {v: [] for v in self.variants}
        for rep in range(self.plan.startup_reps):
            for variant in rotated(self.variants, rep):
                endpoint = self.make(variant)
                try:
                    times[variant].append(await endpoint.open(nursery))
                finally:
                    await endpoint.aclose()
        for variant, values in times.items():
            self.record("startup_ms", variant, statistics.median(values) * 1000)

    async def measure(self, endpoints: dict[str, Endpoint]) -> None:
        plan = self.plan
        relays = {v: e for v, e in endpoints.items() if e.pid is not None}

        for variant in self.variants:  # warm-up: connections, caches, lazy imports
            for _ in range(plan.warmup):
                await endpoints[variant].call_tool("echo", {"text": "warm-up"})

        self.say(f"  echo x{plan.echo_calls} sequential")
        latencies: dict[str, list[float]] = {v: [] for v in self.variants}
        cpu_before = {v: cpu_seconds(e.pid) for v, e in relays.items() if e.pid}
        direct_cpu = 0.0  # this process's CPU during the direct blocks: the direct client's
        blocks = math.ceil(plan.echo_calls / plan.echo_block)
        for block in range(blocks):
            for variant in rotated(self.variants, block):
                endpoint = endpoints[variant]
                cpu_started = time.process_time()
                for _ in range(plan.echo_block):
                    started = time.perf_counter()
                    text = await endpoint.call_tool("echo", {"text": "hello"})
                    latencies[variant].append(time.perf_counter() - started)
                    if text != "hello":
                        raise BenchError(f"{variant}: echo answered {text[:50]!r}")
                if variant == DIRECT:
                    direct_cpu += time.process_time() - cpu_started
        for variant, values in latencies.items():
            self.record("echo_p50_ms", variant, percentile(values, 50) * 1000)
            self.record("echo_p99_ms", variant, percentile(values, 99) * 1000)
        for variant, endpoint in relays.items():
            assert endpoint.pid is not None
            used = cpu_seconds(endpoint.pid) - cpu_before[variant]
            self.record("echo_cpu_us", variant, used / len(latencies[variant]) * 1e6)
        self.record("echo_cpu_us", DIRECT, direct_cpu / len(latencies[DIRECT]) * 1e6)

        self.say(f"  {plan.callers} callers x{plan.calls_per_caller} x{plan.concurrency_rounds}")
        rates: dict[str, list[float]] = {v: [] for v in self.variants}
        for round_ in range(plan.concurrency_rounds):
            for variant in rotated(self.variants, round_):
                rates[variant].append(await self.concurrent(endpoints[variant]))
        for variant, values in rates.items():
            self.record("callers_per_s", variant, statistics.median(values))

        self.say(f"  big {plan.big_small / 1e6:g} MB x{plan.big_small_reps}")
        small = await self.big_times(endpoints, plan.big_small, plan.big_small_reps)
        for variant, values in small.items():
            self.record("big5_ms", variant, statistics.median(values) * 1000)

        self.say(f"  big {plan.big_large / 1e6:g} MB x{plan.big_large_reps}")
        reset = all(reset_peak_rss(e.pid) for e in relays.values() if e.pid)
        if not reset:
            self.notes.append("could not reset VmHWM: peak RSS is over the relay's whole life")
        large = await self.big_times(endpoints, plan.big_large, plan.big_large_reps)
        for variant, values in large.items():
            self.record("big50_ms", variant, statistics.median(values) * 1000)
        for variant, endpoint in relays.items():
            assert endpoint.pid is not None
            self.record("big50_peak_mib", variant, memory_kib(endpoint.pid, "VmHWM") / 1024)

        self.say(f"  idle {plan.idle_seconds:g} s")
        idle_before = {v: cpu_seconds(e.pid) for v, e in relays.items() if e.pid}
        await trio.sleep(plan.idle_seconds)
        for variant, endpoint in relays.items():
            assert endpoint.pid is not None
            self.record(
                "idle_cpu_ms", variant, (cpu_seconds(endpoint.pid) - idle_before[variant]) * 1000
            )
            self.record("rss_after_mib", variant, memory_kib(endpoint.pid, "VmRSS") / 1024)
        for variant in relays:  # still answering after all that
            await endpoints[variant].call_tool("echo", {"text": "still there"})

        if plan.growth_calls:
            for variant, endpoint in relays.items():
                self.say(f"  growth: {plan.growth_calls} calls through {variant}")
                await self.growth(variant, endpoint)

    async def growth(self, variant: str, endpoint: Endpoint) -> None:
        """``growth_calls`` echo calls by 16 callers, each with its own text; the relay's RSS is
        sampled after every tenth of them. Growth shows as last minus first."""
        assert endpoint.pid is not None
        total = self.plan.growth_calls
        step = max(1, total // GROWTH_SAMPLES)
        issued = 0
        samples: list[float] = []
        failures: list[str] = []

        async def caller(index: int) -> None:
            nonlocal issued
            while issued < total and not failures:
                issued += 1
                number = issued
                text = f"growth {index} {number}"
                answer = await endpoint.call_tool("echo", {"text": text})
                if answer != text:
                    failures.append(f"{variant}: {text!r} came back as {answer[:50]!r}")
                if number % step == 0:
                    assert endpoint.pid is not None
                    samples.append(memory_kib(endpoint.pid, "VmRSS") / 1024)

        async with trio.open_nursery() as nursery:
            for index in range(self.plan.callers):
                nursery.start_soon(caller, index)
        if failures:
            raise BenchError(failures[0])
        self.record("growth_first_mib", variant, samples[0] if samples else None)
        self.record("growth_last_mib", variant, samples[-1] if samples else None)
        self.record("growth_max_mib", variant, max(samples) if samples else None)
        self.notes.append(
            f"{variant} RSS (MiB) every {step} calls of --growth: "
            + ", ".join(f"{value:.1f}" for value in samples)
        )

    async def concurrent(self, endpoint: Endpoint) -> float:
        return await concurrent_rate(endpoint, self.plan.callers, self.plan.calls_per_caller)

    async def big_times(
        self, endpoints: dict[str, Endpoint], size: int, reps: int
    ) -> dict[str, list[float]]:
        return await big_times(endpoints, self.variants, size, reps)


async def concurrent_rate(endpoint: Endpoint, callers: int, calls_per_caller: int) -> float:
    """Calls per second of ``callers`` tasks, each making sequential echo calls with its own
    text (checked), over the whole round."""
    failures: list[str] = []

    async def caller(index: int) -> None:
        for call in range(calls_per_caller):
            text = f"caller {index} call {call}"
            try:
                answer = await endpoint.call_tool("echo", {"text": text})
            except BenchError as exc:
                failures.append(str(exc))
                return
            if answer != text:
                failures.append(f"{endpoint.label}: {text!r} came back as {answer[:50]!r}")

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in range(callers):
            nursery.start_soon(caller, index)
    elapsed = time.perf_counter() - started
    if failures:
        raise BenchError(failures[0])
    return callers * calls_per_caller / elapsed


async def big_times(
    endpoints: dict[str, Endpoint], variants: Sequence[str], size: int, reps: int
) -> dict[str, list[float]]:
    """Seconds for ``big(size)`` per variant, ``reps`` times, rotating which goes first."""
    times: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(reps):
        for variant in rotated(variants, rep):
            started = time.perf_counter()
            text = await endpoints[variant].call_tool("big", {"size": size})
            times[variant].append(time.perf_counter() - started)
            if len(text) != size or text[:1] != "x":
                raise BenchError(f"{variant}: big({size}) answered {len(text)} characters")
            del text
    return times


# -- report ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg": list(os.getloadavg()),
    }


def fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, floor: float | None) -> str:
    if value is None or floor is None or floor == 0:
        return "—"
    return f"{value / floor:.2f}×"


def table(bench: TransportBench) -> str:
    peer = PEER in bench.variants
    header = ["figure", DIRECT, RELAY, "ratio"] + ([PEER, "ratio"] if peer else [])
    rows = [header]
    for figure in FIGURES:
        values = bench.figures[figure.key]
        if not any(value is not None for value in values.values()):
            continue  # not measured in this run (--growth)
        floor = None if figure.relay_only else values.get(DIRECT)
        label = f"{figure.label} ({figure.unit})"
        if figure.key == "idle_cpu_ms":
            label = f"{figure.label} {bench.plan.idle_seconds:g} s ({figure.unit})"
        if figure.higher_is_better:
            label += " ↑"
        row = [label, fmt(floor, figure.digits)]
        row += [fmt(values.get(RELAY), figure.digits), ratio(values.get(RELAY), floor)]
        if peer:
            row += [fmt(values.get(PEER), figure.digits), ratio(values.get(PEER), floor)]
        rows.append(row)
    return render(rows)


def render(rows: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> str:
    """A Markdown table: the first row is the header; the columns in ``left`` left-aligned, the
    rest right-aligned."""
    header = rows[0]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append(
                "|"
                + "|".join(
                    "-" * (w + 1) + ("-" if i in left else ":") for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(lines)


def checkout() -> str:
    """The repository's HEAD, and whether the relay's sources differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "mcp_remote_py"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}{' + local changes' if dirty else ''}"


def relay_command() -> list[str]:
    configured = os.environ.get("MCP_REMOTE_PY_BIN")
    return shlex.split(configured) if configured else [sys.executable, "-m", "mcp_remote_py"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark mcp-remote-py against a direct HTTP client (the floor).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--transport",
        choices=["streamable-http", "sse", "both"],
        help="the legacy-era scenarios to run (default: both, or none with --modern)",
    )
    parser.add_argument(
        "--modern",
        action="store_true",
        help="run the 2026-07-28 scenarios (modern pass-through, bridge up, era-cache start-up; "
        "bench/modern.py); with --transport, those transports as well",
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls, 5 s idle")
    parser.add_argument(
        "--peer-command",
        help="another stdio relay to compare, e.g. 'npx mcp-remote' (the URL is appended, "
        "or replaces {url})",
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="also write the numbers as JSON, to FILE or (without FILE) to stdout",
    )
    parser.add_argument(
        "--json-response",
        action="store_true",
        help="run the streamable-http server with --json-response (JSON answers, not SSE)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve over HTTPS (hypercorn, a throwaway CA) instead of plain HTTP (uvicorn)",
    )
    parser.add_argument(
        "--http2",
        action="store_true",
        help="with --tls: the direct client and the relay (--http2) offer HTTP/2",
    )
    parser.add_argument("--idle", type=float, help="seconds of idle CPU measurement")
    parser.add_argument(
        "--growth",
        type=int,
        metavar="CALLS",
        help="at the end, make CALLS echo calls (16 callers) through each relay and sample its "
        "RSS every tenth of them, e.g. --growth 100000",
    )
    parser.add_argument("--echo-calls", type=int, help="sequential echo calls per client")
    args = parser.parse_args(argv)
    if args.transport is None:
        args.transport = "none" if args.modern else "both"
    if args.transport == "none":  # --modern alone: plain HTTP on uvicorn, no peer, no idle
        legacy_only = {
            "--peer-command": args.peer_command,
            "--json-response": args.json_response,
            "--tls": args.tls,
            "--idle": args.idle is not None,
            "--growth": args.growth,
        }
        for option, given in legacy_only.items():
            if given:
                parser.error(f"{option} applies to the legacy scenarios: add --transport")
    if args.http2 and not args.tls:
        parser.error("--http2 needs --tls (HTTP/2 is negotiated with TLS ALPN)")
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    if args.idle is not None:
        plan = dataclasses.replace(plan, idle_seconds=args.idle)
    if args.echo_calls is not None:
        plan = dataclasses.replace(plan, echo_calls=args.echo_calls)
    if args.growth:
        plan = dataclasses.replace(plan, growth_calls=args.growth)
    transports = {"both": ["streamable-http", "sse"], "none": []}.get(
        args.transport, [args.transport]
    )
    peer = shlex.split(args.peer_command) if args.peer_command else None
    command = relay_command()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *map(shlex.quote, sys.argv[1:])]),
        "relay_command": command,
        "checkout": checkout()
        + (" (the relay from MCP_REMOTE_PY_BIN)" if os.environ.get("MCP_REMOTE_PY_BIN") else ""),
        "peer_command": peer,
        "machine": machine(),
        "plan": dataclasses.asdict(plan),
        "transports": {},
    }
    if args.modern:
        from .modern import ModernBench, tables  # imports bench.run: see the end of this file

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    benches = []
    with tempfile.TemporaryDirectory(prefix="mcp-remote-py-bench-") as tmp:
        tls = Tls.create(Path(tmp), args.http2) if args.tls else None
        if tls is not None:  # a Node peer trusts the throwaway CA this way
            os.environ["NODE_EXTRA_CA_CERTS"] = str(tls.ca_file)
        # The relays' era cache: the run's own, not the user's (loopback ports change each run).
        os.environ["MCP_REMOTE_PY_STATE_DIR"] = str(Path(tmp) / "state")
        for transport in transports:
            say(f"{transport}:")
            bench = TransportBench(
                transport,
                plan,
                command,
                peer,
                args.json_response,
                Path(tmp),
                say,
                tls,
            )
            started = time.monotonic()
            with trio.fail_after(1800):
                await bench.run()
            benches.append(bench)
            report["transports"][transport] = {
                "figures": bench.figures,
                "notes": bench.notes,
                "seconds": round(time.monotonic() - started, 1),
            }
        modern = None
        if args.modern:
            say("modern (2026-07-28):")
            modern = ModernBench(plan, command, Path(tmp), say)
            started = time.monotonic()
            with trio.fail_after(1800):
                await modern.run()
            report["modern"] = {
                **modern.as_json(),
                "seconds": round(time.monotonic() - started, 1),
            }
    report["machine"]["loadavg_after"] = list(os.getloadavg())

    m = report["machine"]
    print(f"command: {report['command']}")
    print(f"date:    {report['date']}")
    print(
        f"machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, Linux {m['kernel']}, "
        f"load {m['loadavg'][0]:.2f} → {m['loadavg_after'][0]:.2f}"
    )
    print(f"relay:   {' '.join(command)} URL --log-level warning  (checkout {report['checkout']})")
    if peer:
        print(f"peer:    {' '.join(peer)}")
    for bench in benches:
        mode = "SSE answers"
        if bench.transport == "sse":
            mode = "legacy HTTP+SSE"
        elif bench.json_response:
            mode = "JSON answers"
        if bench.tls is not None:
            mode += ", HTTPS on hypercorn, " + ("HTTP/2" if bench.tls.http2 else "HTTP/1.1")
        print(f"\n{bench.transport} ({mode}; ratio = value / direct)\n")
        print(table(bench))
        for note in bench.notes:
            print(f"note: {note}")
    if modern is not None:
        print()
        print(tables(modern))
    return report


def _failure(exc: BaseException) -> BaseException | None:
    """The BenchError, timeout or ^C inside ``exc`` (nurseries wrap them in exception groups)."""
    if isinstance(exc, (BenchError, trio.TooSlowError, KeyboardInterrupt)):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _failure(inner)
        if found is not None:
            return found
    return None


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        report = trio.run(main_async, args)
    except BaseException as exc:  # child processes are gone by now: each close is shielded
        failure = _failure(exc)
        if failure is None:
            raise
        if isinstance(failure, KeyboardInterrupt):
            print("bench interrupted", file=sys.stderr)
            sys.exit(130)
        if isinstance(failure, trio.TooSlowError):
            failure = BenchError("a step ran past its time limit (a client or server hung?)")
        print(f"bench failed: {failure}", file=sys.stderr)
        sys.exit(1)
    if args.json:
        text = json.dumps(report, indent=2, ensure_ascii=False)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    # Run the module as ``bench.run``, not ``__main__``: bench.modern imports it, and its
    # BenchError must be the one main() catches.
    from bench.run import main as _main

    _main()
