"""Real peers for the integration tests: the SDK server as a subprocess, and the relay driven
either by the SDK's own stdio client or by raw lines.

The relay command comes from ``MCP_REMOTE_PY_BIN`` when set (a frozen binary, say), else
``python -m mcp_remote_py``, so the same tests serve the package and the executables.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0


def relay_command() -> list[str]:
    configured = os.environ.get("MCP_REMOTE_PY_BIN")
    if not configured:
        return [sys.executable, "-m", "mcp_remote_py"]
    # A path as it is (shlex would eat a Windows path's backslashes), else a command line.
    return [configured] if Path(configured).is_file() else shlex.split(configured)


@dataclass
class Server:
    """A peer server process and where it listens."""

    process: trio.Process
    base: str
    flags: tuple[str, ...]

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"

    @property
    def sse_url(self) -> str:
        return f"{self.base}/sse"

    def url(self) -> str:
        return self.sse_url if "sse" in self.flags else self.mcp_url


async def _read_ready(process: trio.Process) -> str:
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(READY_TIMEOUT):
        while b"\n" not in buffer:
            chunk = await process.stdout.receive_some(4096)
            if not chunk:
                raise RuntimeError("the peer server exited before it was ready")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    assert line.startswith("READY "), line
    return line.split()[1]


@asynccontextmanager
async def sdk_server(*flags: str, port: int = 0) -> AsyncIterator[Server]:
    """The official SDK's server over uvicorn, e.g. ``sdk_server("--transport", "sse")``."""
    command = [sys.executable, "-m", "tests.peers.sdk_server", *flags, "--port", str(port)]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, cwd=REPO)
    try:
        base = await _read_ready(process)
        yield Server(process, base, tuple(flags))
    finally:
        with trio.CancelScope(shield=True):
            await stop_process(process)


async def stop_process(process: trio.Process, timeout: float = 10.0) -> int:
    if process.returncode is None:
        process.terminate()
        with trio.move_on_after(timeout):
            return await process.wait()
        process.kill()
    return await process.wait()


SERVER_MODES = {
    "streamable-sse": ("--transport", "streamable-http"),
    "streamable-json": ("--transport", "streamable-http", "--json-response"),
    "stateless": ("--transport", "streamable-http", "--stateless"),
    "legacy-sse": ("--transport", "sse"),
}


@dataclass
class ClientSide:
    """What the desktop client saw: server-initiated traffic it received, and the relay's stderr."""

    stderr_path: Path
    log_path: Path
    notifications: list[Any] = field(default_factory=list)
    progress: list[tuple[float, float | None, str | None]] = field(default_factory=list)
    logs: list[Any] = field(default_factory=list)
    sampled: list[Any] = field(default_factory=list)
    tools_changed: trio.Event = field(default_factory=trio.Event)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def relay_session(
    url: str,
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    initialize: bool = True,
) -> AsyncIterator[tuple[ClientSession, ClientSide]]:
    """The SDK's ClientSession driving the relay as a subprocess over stdio, like a desktop app."""
    import mcp.types as types

    command = relay_command()
    side = ClientSide(tmp_path / "relay-stderr.txt", tmp_path / "relay.log")
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], url, "--log-file", str(side.log_path), *args],
        env={**os.environ, **(env or {})},
        cwd=str(REPO),
    )

    async def sampling(
        ctx: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        side.sampled.append(params)
        return types.CreateMessageResult(
            role="assistant", model="test-model", content=types.TextContent(type="text", text="42")
        )

    async def elicitation(ctx: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    async def roots(ctx: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/project")])

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        side.logs.append(params)

    async def on_message(message: Any) -> None:
        side.notifications.append(message)
        if isinstance(message, types.ToolListChangedNotification):
            side.tools_changed.set()

    with side.stderr_path.open("w", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(
                read,
                write,
                sampling_callback=sampling,
                elicitation_callback=elicitation,
                list_roots_callback=roots,
                logging_callback=on_log,
                message_handler=on_message,
            ) as session,
        ):
            if initialize:
                await session.initialize()
            yield session, side


class RawRelay:
    """The relay as a subprocess with raw pipes, for byte-level tests (bad input, exit codes)."""

    def __init__(self, process: trio.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self._buffer = bytearray()
        self._stderr = bytearray()
        self._stderr_grew = trio.Event()

    async def copy_stderr(self) -> None:
        """Keep a copy of stderr in memory and in the file, waking ``wait_for_stderr``."""
        assert self.process.stderr is not None
        with self.stderr_path.open("wb") as file:
            while chunk := await self.process.stderr.receive_some(65536):
                file.write(chunk)
                file.flush()
                self._stderr += chunk
                self._stderr_grew.set()
                self._stderr_grew = trio.Event()

    async def wait_for_stderr(self, text: str, timeout: float = 30.0) -> None:
        """Wait until the relay has written ``text`` to stderr (an event, not a timer)."""
        try:
            with trio.fail_after(timeout):
                while text.encode() not in self._stderr:
                    await self._stderr_grew.wait()
        except trio.TooSlowError:
            tail = self.stderr()[-4000:]
            raise AssertionError(
                f"the relay wrote no {text!r} within {timeout:g} s; its stderr ends:\n{tail}"
            ) from None

    async def send(self, data: bytes | dict[str, Any]) -> None:
        if isinstance(data, dict):
            data = json.dumps(data).encode() + b"\n"
        assert self.process.stdin is not None
        await self.process.stdin.send_all(data)

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def read_line(self, timeout: float = 30.0) -> bytes:
        assert self.process.stdout is not None
        with trio.fail_after(timeout):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some(1 << 20)
                if not chunk:
                    raise EOFError(f"relay stdout closed; stderr:\n{self.stderr()}")
                self._buffer += chunk
        end = self._buffer.index(b"\n")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    async def read_message(self, timeout: float = 30.0) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.read_line(timeout))
        return message

    async def read_until_eof(self, timeout: float = 30.0) -> bytes:
        assert self.process.stdout is not None
        with trio.fail_after(timeout):
            while chunk := await self.process.stdout.receive_some(1 << 20):
                self._buffer += chunk
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    async def request(
        self, request_id: int, method: str, params: dict[str, Any] | None = None
    ) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)

    async def start_slow_call(self, request_id: int, seconds: float, steps: int) -> None:
        """Start the peer's ``slow`` tool with progress, so tests can see it running."""
        arguments = {"seconds": seconds, "steps": steps}
        params = {"name": "slow", "arguments": arguments, "_meta": {"progressToken": request_id}}
        await self.request(request_id, "tools/call", params)

    async def initialize(self) -> dict[str, Any]:
        await self.request(
            0,
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "1"},
            },
        )
        answer = await self.read_message()
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def peak_memory_mb(self) -> float:
        """The relay's peak resident memory (Linux /proc), in MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        return int(kib) / 1024


@asynccontextmanager
async def raw_relay(
    args: Sequence[str], tmp_path: Path, env: dict[str, str] | None = None
) -> AsyncIterator[RawRelay]:
    command = relay_command()
    process = await trio.lowlevel.open_process(
        [*command, *args, "--log-file", str(tmp_path / "raw-relay.log")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    relay = RawRelay(process, tmp_path / "raw-relay-stderr.txt")
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay.copy_stderr)
            yield relay
            with trio.CancelScope(shield=True):
                await stop_process(process)
    finally:
        with trio.CancelScope(shield=True):
            await stop_process(process)


async def run_relay_to_exit(
    args: Sequence[str], stdin: bytes = b"", env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    """Run the relay to completion with ``stdin`` as its whole input."""
    with trio.fail_after(timeout):
        return await trio.run_process(
            [*relay_command(), *args],
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, **(env or {})},
            cwd=REPO,
        )
