"""The TypeScript SDK v2's modern-only server → mcp-remote-py, for legacy and modern clients.

The server is ``tests/peers/ts_modern_server.mjs``: ``@modelcontextprotocol/server`` (pinned in
``package.json``) serving ``/mcp`` with ``createMcpHandler(factory, {legacy: 'reject'})``, so it
speaks 2026-07-28 only, as a second implementation next to the Python SDK's (``test_bridge_up``,
``test_modern_clients``). It records every request it gets (``GET /_seen``: headers, JSON-RPC
fields, the response's status and body) and tells when a ``subscriptions/listen`` stream is
subscribed to its change bus (``GET /_listeners``: a long poll, no sleeping here). Its MRTR
tools (``elicit``, ``sample``, ``roots``) seal a ``requestState`` with the SDK's HMAC codec, so a
retry that does not echo it byte for byte is refused by the SDK itself.

- Legacy clients (the SDK's ``Client(mode="legacy")`` over stdio, launching the relay as a
  desktop app would) need the relay's bridge up: ``initialize`` answered from
  ``server/discover``, ``_meta`` stamped, MRTR turned into server→client requests, logging
  levels, and a ``subscriptions/listen`` kept open for ``list_changed``. The MRTR tools are
  called through ``client.session`` (the plain ``ClientSession`` path), which cannot answer an
  ``input_required`` result itself: the callbacks run only on a real server→client request.
- Modern clients (``mode="2026-07-28"`` and ``"auto"``) are passed through, with the
  ``Mcp-Param-*`` headers the TS SDK insists on (it refuses a call without them, -32020).
- What the TS server answers a legacy client talking to it directly is recorded at the end:
  the answers the relay has to recognise as "modern only".

The relay runs with ``--log-level debug``, so a failure shows what it did. These tests skip only
when ``node`` or the npm package is missing (``npm ci`` at the repository root installs it).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
import trio
from mcp.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared.exceptions import MCPError
from pydantic import FileUrl

from ..peers.ts_modern import TsModernServer, ts_modern_available
from .harness import REPO, relay_command
from .test_modern_clients import (
    CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    MODERN,
    VERSION_KEY,
    modern_client,
    text_of,
)

pytestmark = pytest.mark.timeout(60)

LEGACY = "2025-11-25"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO = ("ts-modern-peer", "2.4.0-peer")
INSTRUCTIONS = "TypeScript SDK v2 test peer for mcp-remote-py (modern only)."
RELAY_ARGS = ("--log-level", "debug")
READ_TIMEOUT = 20.0


# --- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ts_peer() -> Iterator[TsModernServer]:
    if not ts_modern_available():
        pytest.skip("node or @modelcontextprotocol/server missing (run `npm ci`)")
    server = TsModernServer()
    server.start()  # a failure to start is an error, not a skip
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """This test's client name: the relay stamps it into ``_meta``; the request log filters
    by it."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"


async def seen(server: TsModernServer, client: str) -> list[dict[str, Any]]:
    """The requests whose ``_meta`` named ``client``, as the TS server recorded them."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{server.base}/_seen", params={"client": client})
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


async def wait_for_listen(server: TsModernServer, client: str) -> None:
    """Until a ``subscriptions/listen`` stream whose ``_meta`` named ``client`` is open and
    acknowledged, so subscribed to the server's change bus (the server's long poll)."""
    query = {"client": client, "at_least": 1, "timeout_ms": 10000}
    async with httpx.AsyncClient(timeout=15) as http:
        response = await http.get(f"{server.base}/_listeners", params=query)
    if response.status_code != 200:
        pytest.fail(f"no subscriptions/listen stream reached the server: {response.text}")


def calls(entries: list[dict[str, Any]], method: str, tool: str | None = None) -> list[Any]:
    return [
        e
        for e in entries
        if e["rpc_method"] == method and (tool is None or e["params_name"] == tool)
    ]


def header(entry: dict[str, Any], key: str) -> str | None:
    values = [v for k, v in entry["headers"] if k == key.lower()]
    assert len(values) <= 1, f"{key} sent {len(values)} times: {entry}"
    return values[0] if values else None


def answer_of(entry: dict[str, Any]) -> dict[str, Any]:
    """The JSON-RPC answer in a recorded response body (JSON, or the SSE event carrying it)."""
    body: str = entry["response_body"]
    candidates = [body] if body.lstrip().startswith("{") else []
    candidates += [line[5:] for line in body.splitlines() if line.startswith("data:")]
    for text in reversed(candidates):
        message = json.loads(text)
        if "id" in message and ("result" in message or "error" in message):
            answer: dict[str, Any] = message
            return answer
    pytest.fail(f"no JSON-RPC answer in the recorded response: {entry}")


def assert_mrtr_rounds(entries: list[dict[str, Any]], tool: str) -> dict[str, Any]:
    """The server answered a first call ``input_required`` and the retry (a new id, the same
    arguments, the client's answer, the server's ``requestState`` echoed) ``complete``.
    Returns the retry."""
    rounds = calls(entries, "tools/call", tool)
    assert len(rounds) == 2, rounds
    first, retry = rounds
    asked = answer_of(first)["result"]
    assert asked["resultType"] == "input_required", first
    assert list(asked["inputRequests"]) == [tool], first
    assert "inputResponses" not in first["params_keys"], first
    assert retry["rpc_id"] != first["rpc_id"], retry
    assert retry["params"]["arguments"] == first["params"]["arguments"], retry
    assert list(retry["params"]["inputResponses"]) == [tool], retry
    assert retry["params"]["requestState"] == asked["requestState"], retry
    assert answer_of(retry)["result"]["resultType"] == "complete", retry
    return retry


# --- the legacy client -----------------------------------------------------------------------


@dataclass
class Desktop:
    """What the legacy client's callbacks and handlers saw, and the relay's stderr."""

    stderr_path: Path
    elicited: list[types.ElicitRequestParams] = field(default_factory=list)
    sampled: list[types.CreateMessageRequestParams] = field(default_factory=list)
    roots_asked: int = 0
    logs: list[types.LoggingMessageNotificationParams] = field(default_factory=list)
    logged: trio.Event = field(default_factory=trio.Event)
    tools_changed: trio.Event = field(default_factory=trio.Event)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def wait_for_log(self, data: str) -> None:
        # Notification callbacks run in tasks of their own: a log may trail the call's result.
        with trio.move_on_after(10):
            while not any(m.data == data for m in self.logs):
                self.logged = trio.Event()
                await self.logged.wait()
            return
        pytest.fail(f"the log {data!r} did not reach the client; it got {self.logs}")


@asynccontextmanager
async def legacy_client(
    url: str, tmp_path: Path, name: str
) -> AsyncIterator[tuple[Client, Desktop]]:
    """The SDK's ``Client(mode="legacy")`` launching the relay over stdio, like a desktop app,
    declaring elicitation, sampling and roots."""
    desktop = Desktop(tmp_path / "relay-stderr.txt")

    async def on_elicitation(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        desktop.elicited.append(params)
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    async def on_sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        desktop.sampled.append(params)
        content = types.TextContent(type="text", text="42")
        return types.CreateMessageResult(role="assistant", model="test-model", content=content)

    async def on_roots(context: ClientRequestContext) -> types.ListRootsResult:
        desktop.roots_asked += 1
        return types.ListRootsResult(roots=[types.Root(uri=FileUrl("file:///work/project"))])

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        desktop.logs.append(params)
        desktop.logged.set()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            desktop.tools_changed.set()

    command = relay_command()
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], url, "--log-file", str(tmp_path / "relay.log"), *RELAY_ARGS],
        env={**os.environ},
        cwd=str(REPO),
    )
    with desktop.stderr_path.open("w", encoding="utf-8") as errlog:
        async with AsyncExitStack() as stack:
            client = Client(
                stdio_client(params, errlog=errlog),
                mode="legacy",
                client_info=types.Implementation(name=name, version="1.0"),
                read_timeout_seconds=READ_TIMEOUT,
                sampling_callback=on_sampling,
                elicitation_callback=on_elicitation,
                list_roots_callback=on_roots,
                logging_callback=on_log,
                message_handler=on_message,
                cache=None,
            )
            try:
                await stack.enter_async_context(client)
            except MCPError as refused:
                pytest.fail(
                    f"initialize was refused: {refused.error.code} {refused.error.message}"
                    f"\nrelay stderr:\n{desktop.stderr()}"
                )
            yield client, desktop
    assert "Traceback" not in desktop.stderr(), desktop.stderr()


# --- a. legacy client → relay → TS modern-only server ----------------------------------------


async def test_legacy_client_initialize_gets_the_ts_servers_info(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, _):
        assert client.protocol_version == LEGACY
        assert client.server_info is not None
        assert (client.server_info.name, client.server_info.version) == SERVER_INFO
        assert client.instructions == INSTRUCTIONS
        capabilities = client.server_capabilities
        assert capabilities.tools is not None
        assert capabilities.tools.list_changed is True
        assert capabilities.logging is not None
    entries = await seen(ts_peer, name)
    (discover,) = calls(entries, "server/discover")
    assert discover["status"] == 200
    assert discover["meta"][CLIENT_INFO_KEY] == {"name": name, "version": "1.0"}
    # An initialize the relay may try first, to learn the server's era, the server refuses.
    for initialize in calls(entries, "initialize"):
        assert answer_of(initialize)["error"]["code"] == -32022, initialize
    assert "notifications/initialized" not in [e["rpc_method"] for e in entries]


async def test_legacy_client_lists_tools_and_calls_echo(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, _):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert text_of(await client.call_tool("echo", {"text": "héllo\nworld"})) == "héllo\nworld"
    assert set(tools) == {
        "echo",
        "slow",
        "elicit",
        "sample",
        "roots",
        "log",
        "notify_tools_changed",
        "route",
    }
    assert tools["route"].input_schema["properties"]["region"]["x-mcp-header"] == "Region"
    (echo,) = calls(await seen(ts_peer, name), "tools/call", "echo")
    assert echo["meta"][VERSION_KEY] == MODERN
    assert echo["meta"][CLIENT_INFO_KEY] == {"name": name, "version": "1.0"}
    assert {"elicitation", "roots", "sampling"} <= set(echo["meta"][CAPABILITIES_KEY])
    assert header(echo, "Mcp-Method") == "tools/call"
    assert header(echo, "Mcp-Name") == "echo"
    assert header(echo, "MCP-Protocol-Version") == MODERN


async def test_legacy_client_gets_progress_from_the_ts_server(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    seen_progress: list[tuple[float, float | None, str | None]] = []
    last = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen_progress.append((progress, total, message))
        if progress == total:
            last.set()

    async with legacy_client(ts_peer.url, tmp_path, name) as (client, _):
        result = await client.call_tool(
            "slow", {"seconds": 0.3, "steps": 3}, progress_callback=on_progress
        )
        with trio.move_on_after(10):  # progress callbacks run in tasks of their own
            await last.wait()
    assert text_of(result) == "done"
    assert seen_progress == [(n, 3, f"step {n}/3") for n in (1, 2, 3)]


async def test_legacy_client_elicitation_callback_answers_the_ts_servers_input_required(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, desktop):
        result = await client.session.call_tool("elicit", {"question": "colour?"})
    assert isinstance(result, types.CallToolResult)
    assert text_of(result) == "blue"
    (asked,) = desktop.elicited
    assert isinstance(asked, types.ElicitRequestFormParams)
    assert asked.message == "colour?"
    assert asked.requested_schema["required"] == ["answer"]
    retry = assert_mrtr_rounds(await seen(ts_peer, name), "elicit")
    assert retry["params"]["inputResponses"]["elicit"] == {
        "action": "accept",
        "content": {"answer": "blue"},
    }


async def test_legacy_client_sampling_and_roots_callbacks_answer_the_ts_server(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, desktop):
        sampled = await client.session.call_tool("sample", {"prompt": "6 x 7?"})
        roots = await client.session.call_tool("roots", {})
    assert isinstance(sampled, types.CallToolResult)
    assert isinstance(roots, types.CallToolResult)
    assert text_of(sampled) == "42"
    assert text_of(roots) == "file:///work/project"
    (asked,) = desktop.sampled
    assert isinstance(asked.messages[0].content, types.TextContent)
    assert asked.messages[0].content.text == "6 x 7?"
    assert asked.max_tokens == 100
    assert desktop.roots_asked == 1
    entries = await seen(ts_peer, name)
    assert assert_mrtr_rounds(entries, "sample")["params"]["inputResponses"]["sample"]["model"]
    retry = assert_mrtr_rounds(entries, "roots")
    assert retry["params"]["inputResponses"]["roots"]["roots"][0]["uri"] == "file:///work/project"


async def test_legacy_client_gets_logs_only_after_set_logging_level(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, desktop):
        assert text_of(await client.call_tool("log", {"message": "before"})) == "logged"
        with trio.fail_after(READ_TIMEOUT):
            assert isinstance(await client.set_logging_level("info"), types.EmptyResult)
        assert text_of(await client.call_tool("log", {"message": "after"})) == "logged"
        await desktop.wait_for_log("after")
    assert [(m.level, m.data, m.logger) for m in desktop.logs] == [("info", "after", "ts-peer")]
    entries = await seen(ts_peer, name)
    assert "logging/setLevel" not in [e["rpc_method"] for e in entries]  # gone in 2026-07-28
    levels = [c["meta"].get(LOG_LEVEL_KEY) for c in calls(entries, "tools/call", "log")]
    assert levels == [None, "info"]


async def test_legacy_client_gets_tools_list_changed_after_notify_tools_changed(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, desktop):
        await wait_for_listen(ts_peer, name)  # the relay's subscriptions/listen is subscribed
        assert text_of(await client.call_tool("notify_tools_changed", {})) == "notified"
        with trio.move_on_after(10):
            await desktop.tools_changed.wait()
        assert desktop.tools_changed.is_set(), "notifications/tools/list_changed did not arrive"
    listens = calls(await seen(ts_peer, name), "subscriptions/listen")
    assert listens, "the relay opened no subscriptions/listen"
    listen = listens[0]
    assert listen["params"]["notifications"].get("toolsListChanged") is True, listen
    assert header(listen, "Mcp-Method") == "subscriptions/listen"
    assert listen["status"] == 200
    assert "notifications/tools/list_changed" in listen["response_body"]


async def test_legacy_client_gets_the_ts_servers_prompt_and_resource(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, _):
        assert [p.name for p in (await client.list_prompts()).prompts] == ["greet"]
        prompt = await client.get_prompt("greet", {"name": "Ada"})
        assert [str(r.uri) for r in (await client.list_resources()).resources] == ["text://hello"]
        hello = await client.read_resource("text://hello")
    content = prompt.messages[0].content
    assert isinstance(content, types.TextContent)
    assert content.text == "Hello, Ada!"
    assert isinstance(hello.contents[0], types.TextResourceContents)
    assert hello.contents[0].text == "hello world"
    entries = await seen(ts_peer, name)
    # The TS SDK refuses these without the Mcp-Name header (-32020): they all got through.
    (get,) = calls(entries, "prompts/get", "greet")
    (read,) = calls(entries, "resources/read", "text://hello")
    assert (header(get, "Mcp-Name"), get["status"]) == ("greet", 200)
    assert (header(read, "Mcp-Name"), read["status"]) == ("text://hello", 200)


async def test_legacy_client_route_call_carries_the_region_header(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(ts_peer.url, tmp_path, name) as (client, _):
        result = await client.call_tool("route", {"region": "eu-west3", "query": "q"})
    assert result.structured_content == {"region": "eu-west3", "query": "q", "header": "eu-west3"}


# --- b. modern client → relay → TS modern-only server ----------------------------------------

MODES = [pytest.param(MODERN, id="pinned"), pytest.param("auto", id="auto")]


@pytest.mark.parametrize("mode", MODES)
async def test_modern_client_discovers_the_ts_server(
    ts_peer: TsModernServer, tmp_path: Path, name: str, mode: str
) -> None:
    async with modern_client(ts_peer.url, tmp_path, name, "relay", mode, *RELAY_ARGS) as (
        client,
        _,
    ):
        if mode == "auto":  # the client adopted the discover result it probed for
            assert client.server_info is not None
            assert (client.server_info.name, client.server_info.version) == SERVER_INFO
        raw = await client.session.send_discover(MODERN)
    discovered = types.DiscoverResult.model_validate(raw)
    assert discovered.supported_versions == [MODERN]
    assert discovered.instructions == INSTRUCTIONS
    assert (discovered.meta or {})["io.modelcontextprotocol/serverInfo"] == {
        "name": SERVER_INFO[0],
        "version": SERVER_INFO[1],
    }
    assert discovered.capabilities.tools is not None


@pytest.mark.parametrize("mode", MODES)
async def test_modern_client_calls_echo_and_route_and_the_ts_server_sees_mcp_param_region(
    ts_peer: TsModernServer, tmp_path: Path, name: str, mode: str
) -> None:
    async with modern_client(ts_peer.url, tmp_path, name, "relay", mode, *RELAY_ARGS) as (
        client,
        _,
    ):
        assert text_of(await client.call_tool("echo", {"text": "modern"})) == "modern"
        routed = await client.call_tool("route", {"region": "us-west1", "query": "SELECT 1"})
    # The tool answers with the Mcp-Param-Region header it received (the TS SDK refuses a call
    # whose header is missing or disagrees with the body: -32020).
    assert routed.structured_content == {
        "region": "us-west1",
        "query": "SELECT 1",
        "header": "us-west1",
    }
    (route,) = calls(await seen(ts_peer, name), "tools/call", "route")
    assert route["status"] == 200
    assert header(route, "Mcp-Param-Region") == "us-west1"
    assert header(route, "Mcp-Name") == "route"


@pytest.mark.parametrize("mode", MODES)
async def test_modern_client_answers_the_ts_servers_elicitation_via_mrtr(
    ts_peer: TsModernServer, tmp_path: Path, name: str, mode: str
) -> None:
    async with modern_client(ts_peer.url, tmp_path, name, "relay", mode, *RELAY_ARGS) as (
        client,
        observed,
    ):
        assert text_of(await client.call_tool("elicit", {"question": "colour?"})) == "blue"
    assert [p.message for p in observed.elicited] == ["colour?"]
    retry = assert_mrtr_rounds(await seen(ts_peer, name), "elicit")
    assert retry["params"]["inputResponses"]["elicit"]["content"] == {"answer": "blue"}


async def test_modern_client_listening_gets_tools_list_changed_from_the_ts_server(
    ts_peer: TsModernServer, tmp_path: Path, name: str
) -> None:
    async with (
        modern_client(ts_peer.url, tmp_path, name, "relay", MODERN, *RELAY_ARGS) as (client, _),
        client.listen(tools_list_changed=True) as subscription,
    ):
        assert subscription.honored.tools_list_changed
        assert text_of(await client.call_tool("notify_tools_changed", {})) == "notified"
        with trio.fail_after(10):
            event = await subscription.__anext__()
        assert isinstance(event, ToolsListChanged)


# --- c. what the TS server answers a legacy client directly ----------------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": LEGACY,
        "capabilities": {},
        "clientInfo": {"name": "direct", "version": "1"},
    },
}
ACCEPT = {"accept": "application/json, text/event-stream"}


async def test_legacy_initialize_straight_to_the_ts_server_is_unsupported_protocol_version(
    ts_peer: TsModernServer,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(ts_peer.url, json=INITIALIZE, headers=ACCEPT)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "mcp-session-id" not in response.headers
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 0,
        "error": {
            "code": -32022,
            "message": f"Unsupported protocol version: {LEGACY}",
            "data": {"supported": [MODERN], "requested": LEGACY},
        },
    }


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_straight_to_the_ts_server_are_405(
    ts_peer: TsModernServer, method: str
) -> None:
    headers = {**ACCEPT, "mcp-session-id": "no-such-session", "mcp-protocol-version": LEGACY}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.request(method, ts_peer.url, headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32000, "message": "Method not allowed."},
    }
