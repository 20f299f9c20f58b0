"""``doctor --selftest``: the relay's own code, end to end, with nothing from outside.

A small MCP server (``selftest_server``) runs in this process on loopback, served by hypercorn
under trio, on both transports. For each transport a scripted client drives the REAL ``Relay``
(the same class the command runs) with in-memory stdin lines and an output that collects the
lines it writes: initialize, tools/list, a tool call, a tool that makes the server ask the client
(roots/list, answered by the script), a session the server loses (the relay must re-initialize by
itself, and the call after it must work), ping, and the end of input (the relay must shut down
and end the session). Each step is timed. It needs no network beyond 127.0.0.1 and runs the same
in a frozen build.

Then the 2026-07-28 paths: a modern client passed through to the dual-era ``/mcp`` (its
``server/discover``, a ``tools/call`` whose request headers the server checks), and a 2025
client bridged up to ``/modern``, which speaks only 2026-07-28 (``initialize`` refused with
-32022 and answered from ``server/discover``, a call, an ``input_required`` round answered by
the script), and a 2026-07-28 client bridged down to ``/sse``, which speaks only the 2025
protocol (``server/discover`` answered from an ``initialize`` of the relay's own, a call, the
server's ``roots/list`` carried as an ``input_required`` round and the retry's answer given to
it). The relay's era cache goes to a temporary directory for the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from .._version import __version__
from ..core.backoff import Backoff
from ..core.eras import PROTOCOL_VERSION_KEY
from ..shell.era_cache import STATE_DIR_ENV
from ..shell.net import NetworkOptions, build_client
from ..shell.relay import Relay
from ..shell.relay_options import RelayOptions
from .report import FAIL, PASS, SKIP, Report
from .selftest_server import (
    MODERN_VERSION,
    REQUEST_STATE,
    SERVER_NAME,
    ModernRequest,
    SelfTestServer,
)

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


Step = tuple[str, Callable[[], Awaitable[str]]]
# A 2025 client's initialize: it declares roots, so the server (or the bridge) may ask for them.
_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"roots": {"listChanged": False}},
        "clientInfo": {"name": "selftest", "version": __version__},
    },
}


class _Client:
    """The desktop client's side of one run: the lines it writes to the relay, the lines the
    relay writes back, and what the relay logged meanwhile."""

    def __init__(self) -> None:
        self.output = CollectingOutput()
        self.capture = _LogCapture()
        self.send_line, self.lines = trio.open_memory_channel[bytes](100)

    async def say(self, message: dict[str, Any]) -> None:
        await self.send_line.send(json.dumps(message).encode())

    async def answer(self, request_id: int) -> dict[str, Any]:
        return await self.output.answer(request_id)

    async def call_roots(self, request_id: int) -> None:
        """Call the roots tool, answer the roots/list that the relay writes for it (the
        server's own request, or the bridge's for an input_required round), and check that the
        result names the root."""
        params = {"name": "roots", "arguments": {}}
        await self.say(
            {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        )
        asked = await self.output.wait_for(lambda m: m.get("method") == "roots/list")
        root = {"uri": ROOT, "name": "selftest"}
        await self.say({"jsonrpc": "2.0", "id": asked["id"], "result": {"roots": [root]}})
        got = _text(await self.answer(request_id))
        if got != ROOT:
            raise _StepFailed(f"the tool answered {got!r}, not the root {ROOT}")


@dataclass(frozen=True)
class _Flow:
    """One scripted run of the relay: its check ids (``selftest.{key}.…``), the label its
    lines start with, the URL and ``--transport``, and how the run must end: ``delete`` (a
    Streamable HTTP session, DELETEd), ``stream`` (legacy SSE: the stream closes) or ``none``
    (2026-07-28: no session, so no DELETE); ``steps`` the script's steps."""

    key: str
    label: str
    url: str
    mode: str
    ending: str
    steps: Callable[[_Client, SelfTestServer], list[Step]]


def _relay_options(url: str, mode: str) -> RelayOptions:
    return RelayOptions(
        url=httpx.URL(url),
        transport=mode,
        network=NetworkOptions(connect_timeout=5.0, tcp_keepalive=0),
        request_timeout=STEP_TIMEOUT,
        initialize_deadline=STEP_TIMEOUT,
        backoff=Backoff(initial=0.05, maximum=0.5),
        max_retries=10,
        keepalive=0,
    )


def _legacy(client: _Client, server: SelfTestServer) -> list[Step]:
    """A 2025 client's session: the handshake, calls, a server request, a lost session."""
    say, output = client.say, client.output

    async def initialize() -> str:
        await say(_INITIALIZE)
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
        await client.call_roots(4)
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
        said = [line for line in client.capture.lines if "re-established" in line]
        return "re-initialized; the next call works" + (f" ({said[-1]})" if said else "")

    async def ping() -> str:
        await say({"jsonrpc": "2.0", "id": 6, "method": "ping"})
        await output.answer(6)
        return "answered"

    return [
        ("initialize", initialize),
        ("tools/list", tools_list),
        ("tools/call echo", lambda: echo(3, "hello")),
        ("server -> client request", server_request),
        ("session lost and recovered", dropped),
        ("ping", ping),
    ]


def _checked_headers(request: ModernRequest, name: str) -> str:
    """The request metadata headers the server checked, as text; _StepFailed when one is not
    what the relay must send (streamable-http §Request Metadata)."""
    expected = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": request.method}
    if name:
        expected["Mcp-Name"] = name
    if request.headers != expected:
        raise _StepFailed(f"the server saw the headers {request.headers}, not {expected}")
    if request.session_id is not None:
        raise _StepFailed("the relay sent an Mcp-Session-Id to a 2026-07-28 server")
    return ", ".join(f"{header}: {value}" for header, value in request.headers.items())


def _modern(client: _Client, server: SelfTestServer) -> list[Step]:
    """A 2026-07-28 client, passed through to the dual-era endpoint: no session, each request
    its own POST with the request metadata headers."""
    meta = {
        PROTOCOL_VERSION_KEY: MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "selftest-modern", "version": __version__},
    }

    async def discover() -> str:
        initializes, seen = server.initializes, len(server.modern_requests)
        params = {"_meta": meta}
        await client.say({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": params})
        result = await client.answer(1)
        versions = result.get("supportedVersions")
        info = (result.get("_meta") or {}).get("io.modelcontextprotocol/serverInfo") or {}
        if versions != [MODERN_VERSION] or info.get("name") != SERVER_NAME:
            raise _StepFailed(f"unexpected DiscoverResult {result}")
        if not any(r.method == "server/discover" for r in server.modern_requests[seen:]):
            raise _StepFailed("the server saw no 2026-07-28 server/discover")
        if server.initializes != initializes:
            raise _StepFailed("the relay opened a 2025 session for a 2026-07-28 client")
        return f"passed through: supportedVersions {versions}; no initialize, no session"

    async def call() -> str:
        seen = len(server.modern_requests)
        params = {"name": "echo", "arguments": {"text": "hello"}, "_meta": meta}
        await client.say({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
        result = await client.answer(2)
        if _text(result) != "hello" or result.get("resultType") != "complete":
            raise _StepFailed(f"echo answered {result}, not 'hello' as the server sent it")
        new = server.modern_requests[seen:]
        calls = [r for r in new if r.method == "tools/call"]
        if not calls:
            raise _StepFailed("the server saw no 2026-07-28 tools/call")
        headers = _checked_headers(calls[-1], "echo")
        listed = any(r.method == "tools/list" for r in new)
        return f"echo 'hello'; the server checked {headers}" + (
            "; the relay listed the tools first (for Mcp-Param-*)" if listed else ""
        )

    return [("server/discover", discover), ("tools/call echo", call)]


def _bridge(client: _Client, server: SelfTestServer) -> list[Step]:
    """A 2025 client bridged up to the endpoint that speaks only 2026-07-28."""
    say, output = client.say, client.output

    async def initialize() -> str:
        refused, seen = server.refused_initializes, len(server.modern_requests)
        await say(_INITIALIZE)
        result = await output.answer(1)
        name = result.get("serverInfo", {}).get("name")
        if name != SERVER_NAME or result.get("protocolVersion") != "2025-11-25":
            raise _StepFailed(f"unexpected InitializeResult {result}")
        if server.refused_initializes != refused + 1:
            raise _StepFailed("the relay did not offer the server initialize first")
        if not any(r.method == "server/discover" for r in server.modern_requests[seen:]):
            raise _StepFailed("the relay did not ask the server server/discover")
        await say({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return (
            f"the server refused it with -32022 naming ['{MODERN_VERSION}']; answered from "
            f"server/discover: server {name}, protocol {result['protocolVersion']}"
        )

    async def call() -> str:
        seen = len(server.modern_requests)
        params = {"name": "echo", "arguments": {"text": "hello"}}
        await say({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
        result = await output.answer(2)
        if _text(result) != "hello" or "resultType" in result:
            raise _StepFailed(f"echo answered {result}, not 'hello' without resultType")
        calls = [r for r in server.modern_requests[seen:] if r.method == "tools/call"]
        if not calls:
            raise _StepFailed("the server saw no 2026-07-28 tools/call")
        info = calls[-1].meta.get("io.modelcontextprotocol/clientInfo") or {}
        if calls[-1].meta.get(PROTOCOL_VERSION_KEY) != MODERN_VERSION or info.get("name") != (
            "selftest"
        ):
            raise _StepFailed(f"the call went out with _meta {calls[-1].meta}")
        headers = _checked_headers(calls[-1], "echo")
        return f"echo 'hello', sent with the client's _meta; the server checked {headers}"

    async def input_round() -> str:
        seen = len(server.modern_requests)
        await client.call_roots(3)
        calls = [
            r
            for r in server.modern_requests[seen:]
            if r.method == "tools/call" and r.params.get("name") == "roots"
        ]
        if len(calls) != 2:
            raise _StepFailed(f"the server saw {len(calls)} calls of the tool, not 2")
        first, retry = calls
        if "inputResponses" in first.params or not isinstance(
            retry.params.get("inputResponses"), dict
        ):
            raise _StepFailed("inputResponses were not on the retry alone")
        if retry.params.get("requestState") != REQUEST_STATE:
            raise _StepFailed(f"requestState came back as {retry.params.get('requestState')!r}")
        if retry.request_id == first.request_id:
            raise _StepFailed("the retry went out under the first request's id")
        return (
            "input_required: roots/list asked of the client, answered; retried under a new id "
            "with inputResponses and the requestState as sent; the result used the root"
        )

    return [
        ("initialize", initialize),
        ("tools/call echo", call),
        ("input_required round", input_round),
    ]


def _bridge_down(client: _Client, server: SelfTestServer) -> list[Step]:
    """A 2026-07-28 client bridged down to the endpoint that speaks only the 2025 protocol."""
    meta = {
        PROTOCOL_VERSION_KEY: MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {"roots": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "selftest-modern", "version": __version__},
    }

    async def discover() -> str:
        initializes = server.initializes
        params = {"_meta": meta}
        await client.say({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": params})
        result = await client.answer(1)
        info = (result.get("_meta") or {}).get("io.modelcontextprotocol/serverInfo") or {}
        if result.get("supportedVersions") != [MODERN_VERSION] or info.get("name") != (SERVER_NAME):
            raise _StepFailed(f"unexpected DiscoverResult {result}")
        if server.initializes != initializes + 1:
            raise _StepFailed("the relay did not open a 2025 session for the 2026-07-28 client")
        return f"answered from the relay's own initialize: server {info['name']}"

    async def call() -> str:
        params = {"name": "echo", "arguments": {"text": "hello"}, "_meta": meta}
        await client.say({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
        result = await client.answer(2)
        if _text(result) != "hello" or result.get("resultType") != "complete":
            raise _StepFailed(f"echo answered {result}, not 'hello' with resultType complete")
        return "echo 'hello', with resultType complete"

    async def input_round() -> str:
        params = {"name": "roots", "arguments": {}, "_meta": meta}
        await client.say({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params})
        first = await client.answer(3)
        asked = first.get("inputRequests")
        if first.get("resultType") != "input_required" or not isinstance(asked, dict):
            raise _StepFailed(f"the roots call answered {first}, not input_required")
        ((key, request),) = asked.items()
        if request.get("method") != "roots/list":
            raise _StepFailed(f"the round asked {request}, not roots/list")
        root = {"uri": ROOT, "name": "selftest"}
        retry = {
            **params,
            "requestState": first.get("requestState"),
            "inputResponses": {key: {"roots": [root]}},
        }
        await client.say({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": retry})
        got = _text(await client.answer(4))
        if got != ROOT:
            raise _StepFailed(f"the tool answered {got!r}, not the root {ROOT}")
        return (
            "the server's roots/list came back as input_required with the relay's requestState; "
            "the retry's answer reached the server, and the result used the root"
        )

    return [
        ("server/discover", discover),
        ("tools/call echo", call),
        ("input_required round", input_round),
    ]


async def _drive(report: Report, flow: _Flow, server: SelfTestServer) -> None:
    """Run the REAL relay on a scripted client's lines through the flow's steps, then end its
    input."""
    client = _Client()
    steps = flow.steps(client, server)
    options = _relay_options(flow.url, flow.mode)
    capture, label = client.capture, flow.label
    logger = logging.getLogger("mcp_remote_py")
    saved = (logger.level, logger.propagate)
    logger.addHandler(capture)
    logger.setLevel(min(logger.level or logging.INFO, logging.INFO))
    logger.propagate = False
    try:
        async with build_client(options.network) as http:
            relay = Relay(options, http, client.output)
            async with trio.open_nursery() as nursery:
                done = trio.Event()

                async def run_relay(task_status: trio.TaskStatus[None]) -> None:
                    try:
                        await relay.run(client.lines, task_status=task_status)
                    finally:
                        done.set()

                await nursery.start(run_relay)
                failed = False
                for name, step in steps:
                    if failed:
                        report.add(f"selftest.{flow.key}.{name}", SECTION, SKIP, f"{label}: {name}")
                        continue
                    failed = not await _timed(report, flow.key, label, name, step)
                deletes, delete_requests = server.deletes, server.delete_requests
                started = time.monotonic()
                await client.send_line.aclose()
                with trio.move_on_after(STEP_TIMEOUT) as waited:
                    await done.wait()
                ok = not waited.cancelled_caught
                ms = (time.monotonic() - started) * 1000
                if flow.ending == "none":
                    closed = server.delete_requests == delete_requests
                    how = "no session, no DELETE" if closed else "a DELETE, with no session"
                    summary = f"{label}: end of input -> the relay stopped ({ms:.0f} ms; {how})"
                else:
                    closed = flow.ending != "delete" or server.deletes > deletes
                    summary = (
                        f"{label}: end of input -> the relay ended the session ({ms:.0f} ms"
                        + (", DELETE sent)" if flow.ending == "delete" and closed else ")")
                    )
                report.add(
                    f"selftest.{flow.key}.shutdown",
                    SECTION,
                    PASS if ok and closed else FAIL,
                    summary,
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
        flows = [
            _Flow("http-only", "Streamable HTTP", f"{base}/mcp", "http-only", "delete", _legacy),
            _Flow("sse-only", "legacy HTTP+SSE", f"{base}/sse", "sse-only", "stream", _legacy),
            _Flow("modern", "2026-07-28 client", f"{base}/mcp", "http-only", "none", _modern),
            _Flow("bridge-up", "bridge up", f"{base}/modern", "http-only", "none", _bridge),
            _Flow("bridge-down", "bridge down", f"{base}/sse", "auto", "stream", _bridge_down),
        ]
        with _own_era_cache():
            for flow in flows:
                await _drive(report, flow, server)
        nursery.cancel_scope.cancel()


@contextlib.contextmanager
def _own_era_cache() -> Iterator[None]:
    """The relay remembers each server's era in the user's state directory; the self-test's
    servers live for a moment on a random port, so their eras go to a directory of their own
    (which also keeps an old entry for a reused port from changing what the relay does)."""
    saved = os.environ.get(STATE_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="mcp-remote-py-selftest-") as directory:
        os.environ[STATE_DIR_ENV] = directory
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(STATE_DIR_ENV, None)
            else:
                os.environ[STATE_DIR_ENV] = saved
