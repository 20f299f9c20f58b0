"""``doctor --selftest``: the relay's own code, end to end, with nothing from outside.

A small MCP server (``selftest_server``) runs in this process on loopback, served by hypercorn
under trio, on both transports. For each transport a scripted client drives the REAL ``Relay``
(the same class the command runs) with in-memory stdin lines and an output that collects the
lines it writes: initialize, tools/list, a tool call, a tool that makes the server ask the client
(roots/list, answered by the script), a session the server loses (the relay must re-initialize by
itself, and the call after it must work), ping, and the end of input (the relay must shut down
and end the session). Each step is timed. It needs no network beyond 127.0.0.1 and runs the same
in a frozen build.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

from .._version import __version__
from ..core.backoff import Backoff
from ..shell.net import NetworkOptions, build_client
from ..shell.relay import Relay
from ..shell.relay_options import RelayOptions
from .report import FAIL, PASS, SKIP, Report
from .selftest_server import SERVER_NAME, SelfTestServer

__all__ = ["run_selftest"]

STEP_TIMEOUT = 15.0
SECTION = "Self-test"
ROOT = "file:///mcp-remote-py/selftest"


class _StepFailed(Exception):
    pass


class CollectingOutput:
    """The relay's stdout, in memory: every line parsed, and a way to wait for one."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._changed = trio.Event()

    async def write_line(self, data: bytes | str) -> None:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if "\n" in text:
            raise _StepFailed("the relay wrote a line break inside a message")
        self.messages.append(json.loads(text))
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        seen = 0
        while True:
            for message in self.messages[seen:]:
                if predicate(message):
                    return message
            seen = len(self.messages)
            await self._changed.wait()

    async def answer(self, request_id: int) -> dict[str, Any]:
        message = await self.wait_for(lambda m: m.get("id") == request_id and "method" not in m)
        if "error" in message:
            raise _StepFailed(f"answered with an error: {message['error'].get('message')}")
        result: dict[str, Any] = message["result"]
        return result


class _LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _text(result: dict[str, Any]) -> str:
    content = result.get("content") or []
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


async def _session(report: Report, url: str, mode: str, server: SelfTestServer) -> None:
    label = "Streamable HTTP" if mode == "http-only" else "legacy HTTP+SSE"
    options = RelayOptions(
        url=httpx.URL(url),
        transport=mode,
        network=NetworkOptions(connect_timeout=5.0, tcp_keepalive=0),
        request_timeout=STEP_TIMEOUT,
        initialize_deadline=STEP_TIMEOUT,
        backoff=Backoff(initial=0.05, maximum=0.5),
        max_retries=10,
        keepalive=0,
    )
    output = CollectingOutput()
    send_line, lines = trio.open_memory_channel[bytes](100)
    capture = _LogCapture()
    logger = logging.getLogger("mcp_remote_py")
    saved = (logger.level, logger.propagate)
    logger.addHandler(capture)
    logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    logger.propagate = False

    async def say(message: dict[str, Any]) -> None:
        await send_line.send(json.dumps(message).encode())

    async def initialize() -> str:
        await say(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"roots": {"listChanged": False}},
                    "clientInfo": {"name": "selftest", "version": __version__},
                },
            }
        )
        result = await output.answer(1)
        name = result.get("serverInfo", {}).get("name")
        if name != SERVER_NAME:
            raise _StepFailed(f"unexpected server {name!r}")
        await say({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return f"protocol {result.get('protocolVersion')}"

    async def tools_list() -> str:
        await say({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = (await output.answer(2)).get("tools") or []
        names = sorted(t.get("name") for t in tools)
        if names != ["echo", "roots"]:
            raise _StepFailed(f"unexpected tools {names}")
        return f"{len(tools)} tools"

    async def echo(request_id: int, text: str) -> str:
        params = {"name": "echo", "arguments": {"text": text}}
        await say({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})
        got = _text(await output.answer(request_id))
        if got != text:
            raise _StepFailed(f"echo answered {got!r}, not {text!r}")
        return f"echo {text!r}"

    async def server_request() -> str:
        params = {"name": "roots", "arguments": {}}
        await say({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": params})
        asked = await output.wait_for(lambda m: m.get("method") == "roots/list")
        await say(
            {
                "jsonrpc": "2.0",
                "id": asked["id"],
                "result": {"roots": [{"uri": ROOT, "name": "selftest"}]},
            }
        )
        got = _text(await output.answer(4))
        if got != ROOT:
            raise _StepFailed(f"the tool answered {got!r}, not the root {ROOT}")
        return "roots/list asked by the server, answered by the client, used in the result"

    async def dropped() -> str:
        before = server.initializes
        server.drop()
        await echo(5, "after the drop")
        if server.initializes != before + 1:
            raise _StepFailed(
                f"the server saw {server.initializes - before} new initialize requests, not 1"
            )
        await output.wait_for(lambda m: m.get("method") == "notifications/tools/list_changed")
        said = [line for line in capture.lines if "re-established" in line]
        return "re-initialized; the next call works" + (f" ({said[-1]})" if said else "")

    async def ping() -> str:
        await say({"jsonrpc": "2.0", "id": 6, "method": "ping"})
        await output.answer(6)
        return "answered"

    steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("initialize", initialize),
        ("tools/list", tools_list),
        ("tools/call echo", lambda: echo(3, "hello")),
        ("server -> client request", server_request),
        ("session lost and recovered", dropped),
        ("ping", ping),
    ]
    try:
        async with build_client(options.network) as client:
            relay = Relay(options, client, output)
            async with trio.open_nursery() as nursery:
                done = trio.Event()

                async def run_relay(task_status: trio.TaskStatus[None]) -> None:
                    try:
                        await relay.run(lines, task_status=task_status)
                    finally:
                        done.set()

                await nursery.start(run_relay)
                failed = False
                for name, step in steps:
                    if failed:
                        report.add(f"selftest.{mode}.{name}", SECTION, SKIP, f"{label}: {name}")
                        continue
                    failed = not await _timed(report, mode, label, name, step)
                deletes = server.deletes
                started = time.monotonic()
                await send_line.aclose()
                with trio.move_on_after(STEP_TIMEOUT) as waited:
                    await done.wait()
                ok = not waited.cancelled_caught
                closed = mode != "http-only" or server.deletes > deletes
                report.add(
                    f"selftest.{mode}.shutdown",
                    SECTION,
                    PASS if ok and closed else FAIL,
                    f"{label}: end of input -> the relay ended the session "
                    f"({(time.monotonic() - started) * 1000:.0f} ms"
                    + (", DELETE sent)" if mode == "http-only" and closed else ")"),
                )
                nursery.cancel_scope.cancel()
    finally:
        logger.removeHandler(capture)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


async def _timed(
    report: Report, mode: str, label: str, name: str, step: Callable[[], Awaitable[str]]
) -> bool:
    started = time.monotonic()
    try:
        with trio.fail_after(STEP_TIMEOUT):
            detail = await step()
    except _StepFailed as exc:
        report.add(f"selftest.{mode}.{name}", SECTION, FAIL, f"{label}: {name}: {exc}")
        return False
    except trio.TooSlowError:
        report.add(
            f"selftest.{mode}.{name}",
            SECTION,
            FAIL,
            f"{label}: {name}: no answer within {STEP_TIMEOUT:g} s",
        )
        return False
    ms = (time.monotonic() - started) * 1000
    report.add(f"selftest.{mode}.{name}", SECTION, PASS, f"{label}: {name} ({ms:.0f} ms): {detail}")
    return True


async def run_selftest(report: Report) -> None:
    """Start the server, run the scripted session over each transport, stop the server."""
    server = SelfTestServer()
    started = time.monotonic()
    async with trio.open_nursery() as nursery:
        try:
            base = await nursery.start(server.serve)
        except OSError as exc:
            report.add(
                "selftest.server",
                SECTION,
                FAIL,
                f"the self-test server could not listen on 127.0.0.1: {exc}",
            )
            return
        report.add(
            "selftest.server",
            SECTION,
            PASS,
            f"MCP server up at {base} (/mcp Streamable HTTP, /sse legacy SSE; hypercorn on trio) "
            f"in {(time.monotonic() - started) * 1000:.0f} ms",
        )
        for mode, path in (("http-only", "/mcp"), ("sse-only", "/sse")):
            await _session(report, f"{base}{path}", mode, server)
        nursery.cancel_scope.cancel()
