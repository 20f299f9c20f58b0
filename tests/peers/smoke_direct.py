"""Smoke test of the SDK test peer, talking to it directly with the SDK's own HTTP clients.

Run from the repository root (exit status 0 when every mode passes):

    python -m tests.peers.smoke_direct [--backend trio|asyncio] [-v] [MODE ...]

For each mode it starts `python -m tests.peers.sdk_server` as a subprocess, waits for its
`READY <url>` line, then exercises every tool, the prompt and the resources twice:

- "legacy": `ClientSession.initialize()` over `streamable_http_client` / `sse_client`
  (the initialize handshake, protocol 2025-11-25), with sampling / elicitation / roots / logging
  callbacks and a message handler;
- "modern" (streamable HTTP only): `mcp.Client(..., mode="auto")`, which probes
  `server/discover` and speaks 2026-07-28 (server-to-client requests ride `InputRequiredResult`).

Each mode has an expectation table: JSON-response mode drops request-scoped notifications
(progress, logs) and stateless mode has no back-channel for server-to-client requests (the
tool call then fails with JSON-RPC error -32600) and no standalone stream. Those are SDK
behaviours; the smoke test asserts them so the peer's behaviour per mode is pinned down.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp.types as types
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from mcp.client import Client, ClientRequestContext, ClientSession, IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

CALL_TIMEOUT = 15.0
CUSTOM_HEADER = ("x-smoke-header", "smoke-value")
ROOTS = ["file:///tmp/root-a", "file:///tmp/root-b"]
EXPECTED_TOOLS = {
    "echo",
    "add",
    "slow",
    "big",
    "sample",
    "elicit",
    "roots",
    "headers",
    "log",
    "notify_tools_changed",
    "interrupt_stream",
}


@dataclass(frozen=True)
class Mode:
    name: str
    args: tuple[str, ...]
    back_channel: bool = True
    """Handshake era: sample/elicit/roots reach the client (else they end as isError results)."""
    request_notifications: bool = True
    """Progress and log notifications on the tool call's own response stream arrive."""
    standalone: bool = True
    """notify_tools_changed() on the standalone channel (GET / SSE stream) arrives."""
    resumable: bool = False
    """interrupt_stream() survives the server closing the call's stream (event store)."""
    modern: bool = True
    """Also run the 2026-07-28 pass via mcp.Client(mode="auto")."""


MODES: dict[str, Mode] = {
    m.name: m
    for m in (
        Mode("streamable-http", ("--transport", "streamable-http")),
        Mode(
            "json-response",
            ("--transport", "streamable-http", "--json-response"),
            request_notifications=False,
        ),
        Mode(
            "stateless",
            ("--transport", "streamable-http", "--stateless"),
            back_channel=False,
            standalone=False,
        ),
        Mode(
            "event-store",
            ("--transport", "streamable-http", "--event-store", "--retry-interval", "100"),
            resumable=True,
        ),
        Mode("sse", ("--transport", "sse"), modern=False),
    )
}


@dataclass
class Report:
    verbose: bool
    failures: list[str] = field(default_factory=list)
    passed: int = 0

    def check(self, label: str, ok: bool, detail: object = "") -> None:
        if ok:
            self.passed += 1
        else:
            self.failures.append(f"{label}: {detail}")
        if self.verbose:
            print(f"    {'ok  ' if ok else 'FAIL'} {label} {detail if not ok else ''}".rstrip())


@dataclass
class Observed:
    """What the client callbacks saw."""

    logs: list[types.LoggingMessageNotificationParams] = field(default_factory=list)
    notifications: list[IncomingMessage] = field(default_factory=list)
    tools_changed: anyio.Event = field(default_factory=anyio.Event)
    sampling_requests: int = 0

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.sampling_requests += 1
        prompt = params.messages[0].content
        text = prompt.text if isinstance(prompt, types.TextContent) else "?"
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled: {text}"),
            model="smoke-model",
            stop_reason="endTurn",
        )

    async def elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        return types.ElicitResult(
            action="accept", content={"answer": f"answer to: {params.message}"}
        )

    async def list_roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(
            roots=[types.Root(uri=uri, name=uri.rsplit("/", 1)[1]) for uri in ROOTS]  # type: ignore[arg-type]
        )

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    async def message_handler(self, message: IncomingMessage) -> None:
        self.notifications.append(message)
        if isinstance(message, types.ToolListChangedNotification):
            self.tools_changed.set()


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@asynccontextmanager
async def peer_server(mode: Mode) -> AsyncIterator[str]:
    """Run the peer for `mode`; yield its base URL once READY; SIGTERM it and check exit 0."""
    cmd = [sys.executable, "-m", "tests.peers.sdk_server", *mode.args]
    process: Process = await anyio.open_process(cmd, stdout=subprocess.PIPE, stderr=None)
    try:
        assert process.stdout is not None
        buffer = ""
        with anyio.fail_after(30):
            async for chunk in TextReceiveStream(process.stdout):
                buffer += chunk
                if "\n" in buffer:
                    break
        line = buffer.split("\n", 1)[0]
        if not line.startswith("READY "):
            raise RuntimeError(f"peer did not announce READY: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        if process.returncode is None:
            process.terminate()
        with anyio.fail_after(10):
            status = await process.wait()
        await process.aclose()
    if status != 0:
        raise RuntimeError(f"peer exited with status {status} after SIGTERM")


def http_client() -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers=dict([CUSTOM_HEADER]), timeout=httpx2.Timeout(30.0, read=300.0)
    )


async def open_transport(stack: AsyncExitStack, mode: Mode, base_url: str) -> Any:
    if mode.name == "sse":
        return await stack.enter_async_context(
            sse_client(f"{base_url}/sse", headers=dict([CUSTOM_HEADER]))
        )
    client = await stack.enter_async_context(http_client())
    return await stack.enter_async_context(
        streamable_http_client(f"{base_url}/mcp", http_client=client)
    )


CallTool = Callable[..., Awaitable[types.CallToolResult]]


async def check_tools(
    report: Report, era: str, call: CallTool, observed: Observed, back_channel: bool
) -> None:
    """Checks common to both eras; `call` is session.call_tool or Client.call_tool."""
    result = await call("echo", {"text": "hi there"})
    report.check(f"{era} echo", text_of(result) == "hi there", result)

    result = await call("add", {"a": 2, "b": 3})
    report.check(f"{era} add text", text_of(result) == "5", result)
    report.check(f"{era} add structured", result.structured_content == {"result": 5}, result)

    size = 300_000
    result = await call("big", {"size": size})
    report.check(f"{era} big({size})", len(text_of(result).encode()) == size, len(text_of(result)))

    answers = {
        "sample": ({"prompt": "ping?"}, "sampled: ping?"),
        "elicit": ({"question": "name?"}, "answer to: name?"),
        "roots": ({}, "\n".join(ROOTS)),
    }
    for tool, (arguments, want) in answers.items():
        if back_channel:
            result = await call(tool, arguments)
            report.check(f"{era} {tool}", text_of(result) == want, result)
        else:
            # NoBackChannelError is an MCPError, so it surfaces as a JSON-RPC error response.
            try:
                result = await call(tool, arguments)
            except MCPError as exc:
                report.check(f"{era} {tool} -> JSON-RPC error", exc.code == -32600, exc)
            else:
                report.check(f"{era} {tool} -> JSON-RPC error", False, result)

    result = await call("headers", {})
    seen = json.loads(text_of(result))
    report.check(f"{era} headers", seen.get(CUSTOM_HEADER[0]) == CUSTOM_HEADER[1], seen)


async def legacy_pass(report: Report, mode: Mode, base_url: str) -> None:
    observed = Observed()
    async with AsyncExitStack() as stack:
        read, write = await open_transport(stack, mode, base_url)
        session = await stack.enter_async_context(
            ClientSession(
                read,
                write,
                sampling_callback=observed.sampling,
                elicitation_callback=observed.elicitation,
                list_roots_callback=observed.list_roots,
                logging_callback=observed.logging,
                message_handler=observed.message_handler,
            )
        )
        with anyio.fail_after(CALL_TIMEOUT):
            init = await session.initialize()
        report.check(
            "legacy initialize",
            (init.server_info.name, init.server_info.version, init.protocol_version)
            == ("sdk-peer", "1.2.3", "2025-11-25"),
            init,
        )

        async def call(
            name: str, arguments: dict[str, Any], progress_callback: ProgressFnT | None = None
        ) -> types.CallToolResult:
            with anyio.fail_after(CALL_TIMEOUT):
                return await session.call_tool(name, arguments, progress_callback=progress_callback)

        tools = {t.name for t in (await session.list_tools()).tools}
        report.check("legacy tools/list", tools == EXPECTED_TOOLS, tools)

        await check_tools(report, "legacy", call, observed, mode.back_channel)

        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        result = await call("slow", {"seconds": 0.3, "steps": 3}, progress_callback=on_progress)
        want = [(1, 3, "step 1/3"), (2, 3, "step 2/3"), (3, 3, "step 3/3")]
        report.check(
            "legacy slow result+progress",
            text_of(result) == "done" and seen == (want if mode.request_notifications else []),
            (text_of(result), seen),
        )

        result = await call("log", {"message": "hello log"})
        got = [(p.level, p.data) for p in observed.logs]
        report.check(
            "legacy log",
            text_of(result) == "logged"
            and got == ([("info", "hello log")] if mode.request_notifications else []),
            got,
        )

        result = await call("notify_tools_changed", {})
        with anyio.move_on_after(0.5 if not mode.standalone else CALL_TIMEOUT):
            await observed.tools_changed.wait()
        report.check(
            "legacy tools/list_changed (standalone)",
            observed.tools_changed.is_set() == mode.standalone,
            observed.notifications,
        )
        if not mode.standalone:
            # The call's own stream still carries it (unless JSON-response mode drops it).
            await call("notify_tools_changed", {"related": True})
            with anyio.move_on_after(CALL_TIMEOUT):
                await observed.tools_changed.wait()
            report.check(
                "legacy tools/list_changed (related)",
                observed.tools_changed.is_set(),
                observed.notifications,
            )

        if mode.resumable:
            seen.clear()
            result = await call("interrupt_stream", {"seconds": 0.5}, progress_callback=on_progress)
            report.check(
                "legacy interrupt_stream resumed",
                text_of(result) == "resumed" and [p[0] for p in seen] == [1, 2],
                (result, seen),
            )

        prompt = await session.get_prompt("greet", {"name": "Ada"})
        msg = prompt.messages[0].content
        report.check(
            "legacy prompt greet",
            isinstance(msg, types.TextContent) and msg.text == "Hello, Ada!",
            prompt,
        )
        resources = [str(r.uri) for r in (await session.list_resources()).resources]
        report.check("legacy resources/list", resources == ["text://hello"], resources)
        templates = [
            t.uri_template for t in (await session.list_resource_templates()).resource_templates
        ]
        report.check("legacy templates/list", templates == ["text://item/{id}"], templates)
        for uri, want_text in (("text://hello", "hello world"), ("text://item/42", "item 42")):
            read_result = await session.read_resource(uri)
            contents = read_result.contents[0]
            report.check(
                f"legacy read {uri}",
                isinstance(contents, types.TextResourceContents) and contents.text == want_text,
                read_result,
            )


async def modern_pass(report: Report, mode: Mode, base_url: str) -> None:
    observed = Observed()
    async with http_client() as client_http:
        transport = streamable_http_client(f"{base_url}/mcp", http_client=client_http)
        async with Client(
            transport,
            sampling_callback=observed.sampling,
            elicitation_callback=observed.elicitation,
            list_roots_callback=observed.list_roots,
            logging_callback=observed.logging,
            message_handler=observed.message_handler,
            log_level="info",
        ) as client:
            info = client.server_info
            report.check(
                "modern discover",
                client.protocol_version == "2026-07-28"
                and info is not None
                and (info.name, info.version) == ("sdk-peer", "1.2.3"),
                (client.protocol_version, info),
            )

            async def call(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
                with anyio.fail_after(CALL_TIMEOUT):
                    return await client.call_tool(name, arguments)

            # The 2026-07-28 wire carries sample/elicit/roots inside InputRequiredResult,
            # which needs no back-channel: it works in every streamable-HTTP mode.
            await check_tools(report, "modern", call, observed, back_channel=True)
            await call("log", {"message": "modern log"})
            got = [(p.level, p.data) for p in observed.logs]
            report.check(
                "modern log",
                got == ([("info", "modern log")] if mode.request_notifications else []),
                got,
            )


async def run_mode(mode: Mode, verbose: bool) -> Report:
    report = Report(verbose)
    try:
        async with peer_server(mode) as base_url:
            if verbose:
                print(f"  {mode.name}: {base_url}")
            await legacy_pass(report, mode, base_url)
            if mode.modern:
                await modern_pass(report, mode, base_url)
    except Exception as exc:  # report and carry on with the other modes
        if verbose:
            traceback.print_exception(exc)
        report.check("run", False, f"{type(exc).__name__}: {exc!r}")
    return report


async def main_async(names: list[str], verbose: bool) -> int:
    failed = 0
    for name in names:
        report = await run_mode(MODES[name], verbose)
        if report.failures:
            failed += 1
            print(f"FAIL {name} ({report.passed} ok, {len(report.failures)} failed)")
            for failure in report.failures:
                print(f"    {failure}")
        else:
            print(f"PASS {name} ({report.passed} checks)")
        sys.stdout.flush()
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Smoke-test tests.peers.sdk_server directly.")
    parser.add_argument("modes", nargs="*", metavar="MODE", help=f"any of {', '.join(MODES)}")
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("-v", "--verbose", action="store_true")
    ns = parser.parse_args()
    names = ns.modes or list(MODES)
    if unknown := [n for n in names if n not in MODES]:
        parser.error(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    sys.exit(anyio.run(main_async, names, ns.verbose, backend=ns.backend))


if __name__ == "__main__":
    main()
