"""Bridge up: a legacy client → mcp-remote-py → a server that speaks only 2026-07-28.

The client speaks the handshake era, as Claude Desktop does: ``initialize``, then requests
without ``_meta``, server→client requests answered by callbacks, ``ping``, ``logging/setLevel``,
``resources/subscribe``. The server is the SDK's (``tests/peers/sdk_server.py``) run with
``--modern-only``: every request to ``/mcp`` goes to the SDK's 2026-07-28 entry, which refuses
``initialize`` (HTTP 400) and answers GET/DELETE with 405. So the relay has to bridge up
(``docs`` DESIGN § Protocol eras): answer ``initialize`` from ``server/discover``, stamp every
request's ``_meta`` and headers, turn ``input_required`` results into server→client requests
and the client's answers into the retry, keep a ``subscriptions/listen`` open for the change
notifications, and answer what the modern era dropped itself.

The peer also runs with ``--record-requests`` (what each request carried and how it was answered,
at ``GET /_seen``), ``--header-tools`` (``route``, with ``x-mcp-header`` arguments),
``--request-state`` (the MRTR tools' ``input_required`` results carry a sealed ``requestState``
that the server verifies on the retry) and ``--resource-update-tool`` (``update_resource``).

The client is the SDK's ``Client`` in ``mode="legacy"`` over stdio, launching the relay as a
desktop app would; the MRTR tests call through ``client.session`` (the plain ``ClientSession``
path), which raises on an ``input_required`` result instead of answering it itself, so the
callbacks can only run on a real server→client request. Byte-level expectations use raw lines.
"""

from __future__ import annotations

import json
import os
import time
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
from mcp.shared.exceptions import MCPError
from pydantic import FileUrl

from mcp_remote_py.shell.era_cache import MODERN_ONLY, _key

from .conftest import RunningServer
from .harness import REPO, RawRelay, raw_relay, relay_command
from .test_modern_clients import (
    CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    MODERN,
    NAME_BEARING,
    VERSION_KEY,
    calls_of,
    header,
    headers_of,
    modern_request,
    no_fallback,
    post_direct,
    read_answer,
    read_until_answer,
    seen,
    sentinel,
    text_of,
    wait_seen,
)

pytestmark = pytest.mark.timeout(60)

LEGACY = "2025-11-25"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
RESOURCE_NOT_FOUND = -32002
MODERN_ONLY_FLAGS = (
    "--transport",
    "streamable-http",
    "--modern-only",
    "--record-requests",
    "--header-tools",
    "--request-state",
    "--resource-update-tool",
)
DUAL_ERA_FLAGS = ("--transport", "streamable-http", "--record-requests", "--header-tools")
READ_TIMEOUT = 20.0


# --- the servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer() -> Iterator[RunningServer]:
    """The modern-only server."""
    server = RunningServer("modern-only", MODERN_ONLY_FLAGS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dual_peer() -> Iterator[RunningServer]:
    server = RunningServer("dual-era", DUAL_ERA_FLAGS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """This test's client name: the relay stamps it into ``_meta``, and the request log filters
    by it."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"


async def log_mark(server: RunningServer) -> int:
    """Where the server's request log stands now: ``since`` reads what came after."""
    return len(await seen(server))


async def since(server: RunningServer, mark: int) -> list[dict[str, Any]]:
    """Every request the server saw after ``mark`` (GETs and DELETEs too, which name no client).

    The module's servers serve one test at a time, so that is this test's relay's traffic.
    """
    return (await seen(server))[mark:]


def answer_of(entry: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] | None = entry["answer"]
    assert answer is not None, f"the server's answer was not recorded: {entry}"
    return answer


def listens(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return calls_of(entries, "subscriptions/listen")


def listen_filter(entry: dict[str, Any]) -> dict[str, Any]:
    notifications: dict[str, Any] = (entry["params"] or {}).get("notifications") or {}
    return notifications


# --- the legacy client -----------------------------------------------------------------------


@dataclass
class Desktop:
    """What the legacy client's callbacks and handlers saw, and the relay's stderr."""

    stderr_path: Path
    elicited: list[Any] = field(default_factory=list)
    sampled: list[Any] = field(default_factory=list)
    roots_asked: int = 0
    request_ids: list[Any] = field(default_factory=list)
    logs: list[types.LoggingMessageNotificationParams] = field(default_factory=list)
    notifications: list[Any] = field(default_factory=list)
    updated_uris: list[str] = field(default_factory=list)
    tools_changed: trio.Event = field(default_factory=trio.Event)
    logged: trio.Event = field(default_factory=trio.Event)
    resource_updated: trio.Event = field(default_factory=trio.Event)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    async def wait_for_log(self, data: str, timeout: float = 10.0) -> None:
        """Wait until the log message ``data`` has reached the client's logging callback.

        The client runs notification callbacks in tasks of their own, so a message sent ahead
        of a result may still be on its way when the call returns.
        """
        with trio.move_on_after(timeout):
            while not any(m.data == data for m in self.logs):
                self.logged = trio.Event()
                await self.logged.wait()
            return
        pytest.fail(f"the log message {data!r} did not reach the client; it got {self.logs}")


async def wait_for(event: trio.Event, what: str, desktop: Desktop, timeout: float = 10.0) -> None:
    with trio.move_on_after(timeout):
        await event.wait()
        return
    pytest.fail(f"{what} did not reach the client; it got {desktop.notifications}")


@asynccontextmanager
async def legacy_client(
    url: str, tmp_path: Path, name: str, *relay_args: str, sampling: bool = True
) -> AsyncIterator[tuple[Client, Desktop]]:
    """The SDK's ``Client(mode="legacy")`` launching the relay over stdio, like a desktop app.

    Declares elicitation (form and URL), roots and (unless ``sampling=False``) sampling, with
    callbacks that record what they were asked. A refused ``initialize`` fails the test with
    the relay's answer: today's relay gives up on a modern-only server there.
    """
    desktop = Desktop(tmp_path / "relay-stderr.txt")

    async def on_sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        desktop.sampled.append(params)
        desktop.request_ids.append(context.request_id)
        content = types.TextContent(type="text", text="42")
        return types.CreateMessageResult(role="assistant", model="test-model", content=content)

    async def on_elicitation(
        context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult:
        desktop.elicited.append(params)
        desktop.request_ids.append(context.request_id)
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    async def on_roots(context: ClientRequestContext) -> types.ListRootsResult:
        desktop.roots_asked += 1
        desktop.request_ids.append(context.request_id)
        return types.ListRootsResult(roots=[types.Root(uri=FileUrl("file:///work/project"))])

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        desktop.logs.append(params)
        desktop.logged.set()

    async def on_message(message: Any) -> None:
        desktop.notifications.append(message)
        if isinstance(message, types.ToolListChangedNotification):
            desktop.tools_changed.set()
        if isinstance(message, types.ResourceUpdatedNotification):
            desktop.updated_uris.append(str(message.params.uri))
            desktop.resource_updated.set()

    command = relay_command()
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], url, "--log-file", str(tmp_path / "relay.log"), *relay_args],
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
                sampling_callback=on_sampling if sampling else None,
                elicitation_callback=on_elicitation,
                list_roots_callback=on_roots,
                logging_callback=on_log,
                message_handler=on_message,
                cache=None,
            )
            refused: MCPError | None = None
            try:
                await stack.enter_async_context(client)
            except Exception as error:  # the MCPError arrives inside the transport's groups
                refused = find_mcp_error(error)
                if refused is None:
                    raise
            if refused is not None:
                pytest.fail(
                    f"initialize was not answered (the relay should answer it from the "
                    f"server's server/discover): {refused.error.code} {refused.error.message}"
                    f"\nrelay stderr:\n{desktop.stderr()}"
                )
            yield client, desktop
    assert "Traceback" not in desktop.stderr(), desktop.stderr()


def find_mcp_error(error: BaseException) -> MCPError | None:
    """``error`` if it is an MCPError, else the first one inside its exception groups."""
    if isinstance(error, MCPError):
        return error
    for inner in getattr(error, "exceptions", ()):
        if (found := find_mcp_error(inner)) is not None:
            return found
    return None


async def raw_initialize(
    relay: RawRelay,
    name: str,
    *,
    version: str = LEGACY,
    capabilities: dict[str, Any] | None = None,
    client_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The handshake as raw lines; returns the initialize result (fails the test on an error)."""
    await relay.request(
        0,
        "initialize",
        {
            "protocolVersion": version,
            "capabilities": capabilities if capabilities is not None else {},
            "clientInfo": client_info or {"name": name, "version": "1"},
        },
    )
    answer = await relay.read_message(timeout=READ_TIMEOUT)
    if "result" not in answer:
        pytest.fail(
            f"initialize was not answered (the relay should answer it from the server's "
            f"server/discover): {answer}\nrelay stderr:\n{relay.stderr()}"
        )
    await relay.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    result: dict[str, Any] = answer["result"]
    return result


async def raw_call(relay: RawRelay, request_id: int, tool: str, **arguments: Any) -> None:
    await relay.request(request_id, "tools/call", {"name": tool, "arguments": arguments})


async def discover_directly(server: RunningServer, name: str) -> dict[str, Any]:
    """What the server itself answers to ``server/discover``."""
    status, answer = await post_direct(
        server, with_name(modern_request("discover", "server/discover"), name)
    )
    assert status == 200, answer
    result: dict[str, Any] = answer["result"]
    return result


def with_name(message: dict[str, Any], name: str) -> dict[str, Any]:
    meta = {
        **message["params"]["_meta"],
        CLIENT_INFO_KEY: {"name": f"{name}-direct", "version": "1"},
    }
    return {**message, "params": {**message["params"], "_meta": meta}}


# --- 1. the handshake ------------------------------------------------------------------------


async def test_bridge_up_initialize_is_answered_from_server_discover(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    discovered = await discover_directly(peer, name)
    mark = await log_mark(peer)
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        assert client.protocol_version == LEGACY  # the version the client asked for
        assert client.server_info is not None
        assert (client.server_info.name, client.server_info.version) == ("sdk-peer", "1.2.3")
        assert client.instructions == discovered["instructions"] == "Test peer for mcp-remote-py."
        capabilities = client.server_capabilities.model_dump(
            by_alias=True, mode="json", exclude_none=True
        )
        for key, value in discovered["capabilities"].items():
            assert capabilities.get(key) == value, (key, capabilities)
        assert text_of(await client.call_tool("echo", {"text": "after initialize"}))
    methods = [e["rpc_method"] for e in await since(peer, mark)]
    # (An initialize the relay tries first, to learn the server's era, the server refuses.)
    assert "notifications/initialized" not in methods, methods


@pytest.mark.parametrize("version", ["2025-06-18", "2024-11-05"])
async def test_bridge_up_initialize_answers_the_protocol_version_the_client_asked_for(
    peer: RunningServer, tmp_path: Path, name: str, version: str
) -> None:
    async with raw_relay([peer.url], tmp_path) as relay:
        result = await raw_initialize(relay, name, version=version)
        await raw_call(relay, 1, "echo", text="x")
        echoed = await read_answer(relay, 1)
    assert result["protocolVersion"] == version
    assert result["serverInfo"] == {"name": "sdk-peer", "version": "1.2.3"}
    assert "resultType" not in result
    assert "supportedVersions" not in result  # a discover result is not an initialize result
    assert echoed["result"]["content"] == [{"type": "text", "text": "x"}]
    no_fallback(relay.stderr())


# --- 2. the everyday requests ----------------------------------------------------------------


async def test_bridge_up_lists_and_calls_tools(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "add", "slow", "elicit", "sample", "roots", "route"} <= names
        assert text_of(await client.call_tool("echo", {"text": "héllo\nworld"})) == "héllo\nworld"
        added = await client.call_tool("add", {"a": 2, "b": 3})
        assert added.structured_content == {"result": 5}


async def test_bridge_up_leaves_tools_with_invalid_x_mcp_header_out_of_tools_list(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    # server/tools §x-mcp-header: the relay is the Streamable HTTP client here, so it MUST
    # exclude invalid tools, and SHOULD warn naming each.
    async with raw_relay([peer.url], tmp_path) as relay:
        await raw_initialize(relay, name)
        await relay.request(1, "tools/list", {})
        listed = await read_answer(relay, 1)
    names = {tool["name"] for tool in listed["result"]["tools"]}
    assert "route" in names
    assert not names & {"bad_number_header", "bad_duplicate_header"}
    for tool in ("bad_number_header", "bad_duplicate_header"):
        assert f"left the tool {tool!r} out of tools/list" in relay.stderr()


async def test_bridge_up_forwards_progress_during_a_slow_call(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    seen_progress: list[tuple[float, float | None, str | None]] = []
    last = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen_progress.append((progress, total, message))
        if progress == total:
            last.set()

    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        result = await client.call_tool(
            "slow", {"seconds": 0.3, "steps": 3}, progress_callback=on_progress
        )
        # The client runs progress callbacks in tasks of their own: the last may trail the result.
        with trio.move_on_after(10):
            await last.wait()
    assert last.is_set(), seen_progress
    assert text_of(result) == "done"
    assert seen_progress == [(n, 3, f"step {n}/3") for n in (1, 2, 3)]


async def test_bridge_up_gets_prompts_and_reads_resources(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        assert [p.name for p in (await client.list_prompts()).prompts] == ["greet"]
        prompt = await client.get_prompt("greet", {"name": "Ada"})
        content = prompt.messages[0].content
        assert isinstance(content, types.TextContent)
        assert content.text == "Hello, Ada!"
        resources = await client.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["text://hello"]
        hello = await client.read_resource("text://hello")
        assert isinstance(hello.contents[0], types.TextResourceContents)
        assert hello.contents[0].text == "hello world"
        item = await client.read_resource("text://item/café")
        assert isinstance(item.contents[0], types.TextResourceContents)
        assert item.contents[0].text == "item café"


async def test_bridge_up_results_carry_no_result_type(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    requests: list[tuple[str, dict[str, Any] | None]] = [
        ("tools/list", None),
        ("tools/call", {"name": "echo", "arguments": {"text": "x"}}),
        ("prompts/list", None),
        ("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}}),
        ("resources/list", None),
        ("resources/templates/list", None),
        ("resources/read", {"uri": "text://hello"}),
    ]
    results: dict[str, dict[str, Any]] = {}
    async with raw_relay([peer.url], tmp_path) as relay:
        results["initialize"] = await raw_initialize(relay, name)
        for request_id, (method, params) in enumerate(requests, start=1):
            await relay.request(request_id, method, params)
            answer = await read_answer(relay, request_id)
            assert "result" in answer, answer
            results[method] = answer["result"]
    # The server's own answers do carry it (resultType "complete"): the relay takes it off.
    _, direct = await post_direct(
        peer, with_name(modern_request(1, "tools/call", requests[1][1]), name)
    )
    assert direct["result"]["resultType"] == "complete"
    for method, result in results.items():
        assert "resultType" not in result, (method, result)
    assert results["tools/call"]["content"] == [{"type": "text", "text": "x"}]
    no_fallback(relay.stderr())


# --- 3. what every upstream request carries --------------------------------------------------


async def test_bridge_up_posts_carry_modern_headers_and_the_clients_meta(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        await client.list_tools()
        await client.call_tool("echo", {"text": "x"})
        await client.list_prompts()
        await client.get_prompt("greet", {"name": "Ada"})
        await client.list_resources()
        await client.read_resource("text://hello")
        await client.read_resource("text://item/café")
    entries = await seen(peer, name)
    requests = [e for e in entries if e["http"] == "POST" and e["rpc_id"] is not None]
    methods = {e["rpc_method"] for e in requests}
    assert {"tools/list", "tools/call", "prompts/get", "resources/read"} <= methods, methods
    for entry in requests:
        meta = entry["meta"]
        assert meta[VERSION_KEY] == MODERN, entry
        assert meta[CLIENT_INFO_KEY] == {"name": name, "version": "1.0"}, entry
        # The legacy client's own capabilities (it declared elicitation, roots and sampling).
        assert {"elicitation", "roots", "sampling"} <= set(meta[CAPABILITIES_KEY]), entry
        assert header(entry, "MCP-Protocol-Version") == MODERN, entry
        assert header(entry, "Mcp-Method") == entry["rpc_method"], entry
        if entry["rpc_method"] in NAME_BEARING:
            value = entry["params_name"]
            assert header(entry, "Mcp-Name") == (value if value.isascii() else sentinel(value))
        assert entry["status"] == 200, entry  # nothing for the server to reject
    (cafe,) = calls_of(requests, "resources/read", "text://item/café")
    assert header(cafe, "Mcp-Name") == sentinel("text://item/café")


async def test_bridge_up_meta_carries_the_legacy_clients_capabilities_and_info(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    capabilities: dict[str, Any] = {"elicitation": {"form": {}}, "roots": {}, "sampling": {}}
    client_info = {"name": name, "version": "7.7", "title": "Raw Desktop"}
    async with raw_relay([peer.url], tmp_path) as relay:
        await raw_initialize(relay, name, capabilities=capabilities, client_info=client_info)
        await raw_call(relay, 1, "echo", text="x")
        await read_answer(relay, 1)
    (call,) = calls_of(await seen(peer, name), "tools/call", "echo")
    assert call["meta"][CAPABILITIES_KEY] == capabilities
    assert call["meta"][CLIENT_INFO_KEY] == client_info
    assert call["meta"][VERSION_KEY] == MODERN


async def test_bridge_up_route_call_carries_mcp_param_headers(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    full = {
        "region": "us-west1",
        "query": "SELECT 1",
        "dry_run": True,
        "shard": 7,
        "target": {"zone": "b"},
    }
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        await client.list_tools()  # as a desktop app does first
        assert json.loads(text_of(await client.call_tool("route", full))) == full
        await client.call_tool("route", {"region": "Zürich "})
    first, second = calls_of(await seen(peer, name), "tools/call", "route")
    assert (first["status"], second["status"]) == (200, 200)  # no -32020 HeaderMismatch
    assert header(first, "Mcp-Name") == "route"
    params = {k: v[0] for k, v in headers_of(first).items() if k.startswith("mcp-param-")}
    assert params == {
        "mcp-param-region": "us-west1",
        "mcp-param-dry-run": "true",
        "mcp-param-shard": "7",
        "mcp-param-zone": "b",
    }
    params = {k: v[0] for k, v in headers_of(second).items() if k.startswith("mcp-param-")}
    assert params == {"mcp-param-region": sentinel("Zürich ")}


async def test_bridge_up_uses_no_session_no_get_and_no_delete(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    mark = await log_mark(peer)
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        await client.list_tools()
        await client.call_tool("echo", {"text": "x"})
    entries = await since(peer, mark)  # the relay has exited: a closing DELETE would be here
    assert entries, "the relay sent the server nothing"
    assert [e["http"] for e in entries if e["http"] != "POST"] == [], entries
    for entry in entries:
        assert header(entry, "Mcp-Session-Id") is None, entry


# --- 4. what the modern era dropped, answered by the relay -----------------------------------


async def test_bridge_up_ping_is_answered_by_the_relay(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        mark = await log_mark(peer)
        with trio.fail_after(READ_TIMEOUT):
            assert isinstance(await client.send_ping(), types.EmptyResult)
        assert text_of(await client.call_tool("echo", {"text": "after ping"})) == "after ping"
        entries = await since(peer, mark)
    assert "ping" not in [e["rpc_method"] for e in entries], entries


async def test_bridge_up_sends_no_log_messages_before_set_logging_level(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, desktop):
        assert text_of(await client.call_tool("log", {"message": "unasked"})) == "logged"
        # Then a message the client does ask for: once it is in, an earlier one would be too.
        with trio.fail_after(READ_TIMEOUT):
            await client.set_logging_level("info")
        assert text_of(await client.call_tool("log", {"message": "asked"})) == "logged"
        await desktop.wait_for_log("asked")
    assert [m.data for m in desktop.logs] == ["asked"]
    unasked, _ = calls_of(await seen(peer, name), "tools/call", "log")
    assert LOG_LEVEL_KEY not in unasked["meta"], unasked  # the server was not asked for logs


async def test_bridge_up_set_logging_level_is_answered_and_logs_then_reach_the_client(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, desktop):
        with trio.fail_after(READ_TIMEOUT):
            assert isinstance(await client.set_logging_level("info"), types.EmptyResult)
        assert text_of(await client.call_tool("log", {"message": "hello log"})) == "logged"
        await desktop.wait_for_log("hello log")
        with trio.fail_after(READ_TIMEOUT):
            await client.set_logging_level("warning")
        assert text_of(await client.call_tool("log", {"message": "too quiet"})) == "logged"
        with trio.fail_after(READ_TIMEOUT):
            await client.set_logging_level("info")
        assert text_of(await client.call_tool("log", {"message": "loud again"})) == "logged"
        await desktop.wait_for_log("loud again")
    # Info is below warning: the server sent nothing for the second call.
    assert [(m.level, m.data) for m in desktop.logs] == [
        ("info", "hello log"),
        ("info", "loud again"),
    ]
    entries = await seen(peer, name)
    assert "logging/setLevel" not in [e["rpc_method"] for e in entries]
    levels = [c["meta"].get(LOG_LEVEL_KEY) for c in calls_of(entries, "tools/call", "log")]
    assert levels == ["info", "warning", "info"]


# --- 5. MRTR: input_required becomes server→client requests ----------------------------------


def assert_two_rounds(entries: list[dict[str, Any]], tool: str) -> list[dict[str, Any]]:
    """The server saw a first call answered ``input_required``, then the retry carrying the
    client's answer and the server's ``requestState`` unchanged, answered ``complete``."""
    calls = calls_of(entries, "tools/call", tool)
    assert len(calls) == 2, calls
    first, retry = calls
    assert answer_of(first)["resultType"] == "input_required", first
    assert answer_of(first)["inputRequests"] == [tool], first
    state = answer_of(first)["requestState"]
    assert isinstance(state, str), first  # the peer's --request-state, sealed
    assert state, first
    assert "inputResponses" not in first["params_keys"], first
    assert sorted(retry["params"]["inputResponses"]) == [tool], retry
    assert retry["params"]["requestState"] == state, retry  # byte for byte
    assert retry["params"]["arguments"] == first["params"]["arguments"], retry
    assert retry["rpc_id"] != first["rpc_id"], retry
    assert answer_of(retry)["resultType"] == "complete", retry
    return calls


async def test_bridge_up_elicit_runs_the_clients_elicitation_callback(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, desktop):
        result = await client.session.call_tool("elicit", {"question": "colour?"})
    assert isinstance(result, types.CallToolResult)
    assert text_of(result) == "blue"
    (asked,) = desktop.elicited
    assert isinstance(asked, types.ElicitRequestFormParams)
    assert asked.message == "colour?"
    assert asked.requested_schema["properties"]["answer"]["type"] == "string"
    _, retry = assert_two_rounds(await seen(peer, name), "elicit")
    assert retry["params"]["inputResponses"]["elicit"] == {
        "action": "accept",
        "content": {"answer": "blue"},
    }


async def test_bridge_up_sample_runs_the_clients_sampling_callback(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, desktop):
        result = await client.session.call_tool("sample", {"prompt": "6 x 7?"})
    assert isinstance(result, types.CallToolResult)
    assert text_of(result) == "42"
    (asked,) = desktop.sampled
    assert isinstance(asked.messages[0].content, types.TextContent)
    assert asked.messages[0].content.text == "6 x 7?"
    assert asked.max_tokens == 100
    _, retry = assert_two_rounds(await seen(peer, name), "sample")
    assert retry["params"]["inputResponses"]["sample"]["model"] == "test-model"


async def test_bridge_up_roots_runs_the_clients_list_roots_callback(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, desktop):
        result = await client.session.call_tool("roots", {})
    assert isinstance(result, types.CallToolResult)
    assert text_of(result) == "file:///work/project"
    assert desktop.roots_asked == 1
    _, retry = assert_two_rounds(await seen(peer, name), "roots")
    assert retry["params"]["inputResponses"]["roots"]["roots"][0]["uri"] == "file:///work/project"


async def test_bridge_up_elicitation_reaches_the_client_as_a_request_line(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    capabilities: dict[str, Any] = {"elicitation": {"form": {}}}
    async with raw_relay([peer.url], tmp_path) as relay:
        await raw_initialize(relay, name, capabilities=capabilities)
        await raw_call(relay, 5, "elicit", question="colour?")
        lines: list[dict[str, Any]] = []
        while not lines or "method" not in lines[-1] or "id" not in lines[-1]:
            lines.append(await relay.read_message(timeout=READ_TIMEOUT))
            assert lines[-1].get("id") != 5, f"answered without asking the client: {lines[-1]}"
        question = lines[-1]
        assert question["method"] == "elicitation/create", question
        assert question["params"]["message"] == "colour?"
        assert question["params"].get("mode", "form") == "form"
        assert question["params"]["requestedSchema"]["required"] == ["answer"]
        answer = {"action": "accept", "content": {"answer": "green"}}
        await relay.send({"jsonrpc": "2.0", "id": question["id"], "result": answer})
        final = await read_answer(relay, 5)
    assert final["result"]["content"] == [{"type": "text", "text": "green"}]
    assert "resultType" not in final["result"]
    assert "inputRequests" not in final["result"]
    no_fallback(relay.stderr())


async def test_bridge_up_a_call_withdrawn_mid_round_withdraws_the_relays_question(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    # basic/patterns/cancellation: the client cancels the call while the relay waits for its
    # answer to the server's elicitation; the relay tells it the question is withdrawn, and
    # the call gets no answer (the client asked for none).
    async with raw_relay([peer.url], tmp_path) as relay:
        await raw_initialize(relay, name, capabilities={"elicitation": {"form": {}}})
        await raw_call(relay, 6, "elicit", question="colour?")
        question = await relay.read_message(timeout=READ_TIMEOUT)
        assert question.get("method") == "elicitation/create", question
        await relay.send(
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 6}}
        )
        withdrawn = await relay.read_message(timeout=READ_TIMEOUT)
        assert withdrawn["method"] == "notifications/cancelled", withdrawn
        assert withdrawn["params"]["requestId"] == question["id"]
        await raw_call(relay, 7, "echo", text="after")
        lines = await read_until_answer(relay, 7)
    assert [line for line in lines if line.get("id") == 6] == []
    assert lines[-1]["result"]["content"] == [{"type": "text", "text": "after"}]


async def test_bridge_up_sample_without_sampling_capability_is_a_clear_error(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name, sampling=False) as (client, desktop):
        with trio.fail_after(READ_TIMEOUT + 5), pytest.raises(MCPError) as refused:
            await client.session.call_tool("sample", {"prompt": "6 x 7?"})
        # The session is still good.
        assert text_of(await client.call_tool("echo", {"text": "still here"})) == "still here"
    error = refused.value.error
    assert "timed out" not in error.message, error  # an answer, not the client giving up
    assert "sampling" in error.message.lower(), error
    assert desktop.sampled == []


# --- 6. change notifications -----------------------------------------------------------------


async def test_bridge_up_tools_list_changed_reaches_the_client(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, desktop):
        # Wait until the relay's subscriptions/listen is acknowledged (streaming, 200).
        entries = await wait_seen(
            peer,
            name,
            lambda es: any(
                e["status"] == 200 and listen_filter(e).get("toolsListChanged") is True
                for e in listens(es)
            ),
            "the relay opened no subscriptions/listen for toolsListChanged",
        )
        assert text_of(await client.call_tool("notify_tools_changed", {})) == "notified"
        await wait_for(desktop.tools_changed, "notifications/tools/list_changed", desktop)
    listen = next(e for e in listens(entries) if e["status"] == 200)
    assert header(listen, "Mcp-Method") == "subscriptions/listen"
    assert header(listen, "MCP-Protocol-Version") == MODERN
    assert listen["meta"][VERSION_KEY] == MODERN


async def test_bridge_up_resource_subscribe_is_answered_and_updates_reach_the_client(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, desktop):
        with trio.fail_after(READ_TIMEOUT):
            assert isinstance(await client.subscribe_resource("text://hello"), types.EmptyResult)
        await wait_seen(
            peer,
            name,
            lambda es: any(
                e["status"] == 200
                and e["state"] == "open"
                and "text://hello" in (listen_filter(e).get("resourceSubscriptions") or [])
                for e in listens(es)
            ),
            "no open subscriptions/listen names text://hello in resourceSubscriptions",
        )
        assert text_of(await client.call_tool("update_resource", {"uri": "text://other"}))
        assert text_of(await client.call_tool("update_resource", {"uri": "text://hello"}))
        await wait_for(desktop.resource_updated, "notifications/resources/updated", desktop)
    assert desktop.updated_uris == ["text://hello"]  # not the one the client did not subscribe
    assert "resources/subscribe" not in [e["rpc_method"] for e in await seen(peer, name)]


# --- 7. errors -------------------------------------------------------------------------------


async def test_bridge_up_unknown_tool_gives_the_servers_error_result(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with legacy_client(peer.url, tmp_path, name) as (client, _):
        result = await client.call_tool("no_such_tool", {})
    # What the modern server answers: a tool result flagged isError, not a JSON-RPC error.
    assert result.is_error
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    assert block.text == "Unknown tool: no_such_tool"


async def test_bridge_up_missing_resource_is_resource_not_found(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    read = {"uri": "text://missing"}
    status, direct = await post_direct(
        peer, with_name(modern_request(1, "resources/read", read), name)
    )
    assert status == 400
    assert direct["error"]["code"] == -32602  # the modern server's resource-not-found
    assert direct["error"]["data"] == {"uri": "text://missing"}
    async with raw_relay([peer.url], tmp_path) as relay:
        await raw_initialize(relay, name)
        await relay.request(1, "resources/read", read)
        answer = await read_answer(relay, 1)
    assert answer["error"]["code"] == RESOURCE_NOT_FOUND, answer  # the legacy code
    assert answer["error"]["data"]["uri"] == "text://missing"
    assert "text://missing" in answer["error"]["message"]
    no_fallback(relay.stderr())


# --- 8. a dual-era server is not bridged -----------------------------------------------------


async def test_bridge_up_leaves_a_legacy_client_to_a_dual_era_server_on_a_legacy_session(
    dual_peer: RunningServer, tmp_path: Path, name: str
) -> None:
    mark = await log_mark(dual_peer)
    async with legacy_client(dual_peer.url, tmp_path, name) as (client, desktop):
        assert client.protocol_version == LEGACY
        assert text_of(await client.call_tool("echo", {"text": "old"})) == "old"
        assert text_of(await client.session.call_tool("elicit", {"question": "?"})) == "blue"
    assert len(desktop.elicited) == 1
    entries = await since(dual_peer, mark)
    (initialize,) = [
        e
        for e in calls_of(entries, "initialize")
        if (e["params"] or {}).get("clientInfo", {}).get("name") == name
    ]
    assert initialize["status"] == 200
    session_ids = dict(initialize["response_headers"]).get("mcp-session-id")
    assert session_ids, initialize  # a real legacy session
    calls = calls_of(entries, "tools/call")
    assert [c["params_name"] for c in calls] == ["echo", "elicit"], calls
    for call in calls:
        assert header(call, "Mcp-Session-Id") == session_ids, call
        assert header(call, "MCP-Protocol-Version") == LEGACY, call
        assert VERSION_KEY not in (call["meta"] or {}), call  # no bridging: no _meta stamp
    assert "subscriptions/listen" not in [e["rpc_method"] for e in entries]


# --- the era cache (basic/versioning §Backward Compatibility: persist, re-probe on failure) ----


async def test_bridge_up_a_second_start_goes_straight_to_the_bridge(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = await log_mark(peer)
    async with raw_relay([peer.url], tmp_path / "one") as relay:
        await raw_initialize(relay, name)
    refused = [e for e in await since(peer, first) if e.get("rpc_method") == "initialize"]
    assert len(refused) == 1, "the first start learns the era from a refused initialize"
    second = await log_mark(peer)
    async with raw_relay([peer.url], tmp_path / "two") as relay:
        result = await raw_initialize(relay, name)
        await raw_call(relay, 1, "echo", text="cached")
        echoed = await read_answer(relay, 1)
    methods = [e.get("rpc_method") for e in await since(peer, second)]
    assert "initialize" not in methods, methods
    assert methods.count("server/discover") == 1, methods
    assert result["serverInfo"] == {"name": "sdk-peer", "version": "1.2.3"}
    assert echoed["result"]["content"] == [{"type": "text", "text": "cached"}]


async def test_bridge_up_a_stale_cached_era_is_forgotten_and_the_server_asked_again(
    sdk_servers: dict[str, RunningServer], tmp_path: Path, name: str
) -> None:
    # The cache says the server speaks only 2026-07-28, but the one at that URL now speaks
    # only legacy HTTP+SSE: its server/discover fails, and the relay must fall back to the
    # legacy session (and forget the stale entry) rather than answer initialize with an error.
    legacy = sdk_servers["legacy-sse"]
    cache = Path(os.environ["MCP_REMOTE_PY_STATE_DIR"]) / "eras.json"
    cache.write_text(
        json.dumps({_key(httpx.URL(legacy.url)): {"era": MODERN_ONLY, "seen": time.time()}})
    )
    async with raw_relay([legacy.url], tmp_path) as relay:
        result = await raw_initialize(relay, name)
        await raw_call(relay, 1, "echo", text="legacy again")
        echoed = await read_answer(relay, 1)
    assert result["serverInfo"]["name"] == "sdk-peer"
    assert echoed["result"]["content"] == [{"type": "text", "text": "legacy again"}]
    assert (
        json.loads(cache.read_text()).get(_key(httpx.URL(legacy.url)), {}).get("era") != MODERN_ONLY
    )


# --- --protocol -------------------------------------------------------------------------------


async def test_protocol_legacy_refuses_to_bridge_and_says_how_to_allow_it(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with raw_relay([peer.url, "--protocol", "legacy"], tmp_path) as relay:
        await relay.request(
            0,
            "initialize",
            {
                "protocolVersion": LEGACY,
                "capabilities": {},
                "clientInfo": {"name": name, "version": "1"},
            },
        )
        refused = await relay.read_message(timeout=READ_TIMEOUT)
        await relay.send(with_name(modern_request(1, "tools/list"), name))
        declined = await relay.read_message(timeout=READ_TIMEOUT)
        await relay.close_stdin()
        rest = [json.loads(line) for line in (await relay.read_until_eof()).splitlines() if line]
    assert refused["id"] == 0
    assert "--protocol legacy" in refused["error"]["message"]
    assert declined["id"] == 1
    # The modern request went down the bridge (a 2025 session), which this server refuses.
    assert "--protocol legacy is set" in declined["error"]["message"]
    assert "opened a 2025 session for this 2026-07-28 client" in declined["error"]["message"]
    assert [m for m in rest if m.get("id") in (0, 1)] == []  # one answer each, not two


async def test_protocol_modern_bridges_without_trying_initialize(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    mark = await log_mark(peer)
    async with raw_relay([peer.url, "--protocol", "modern"], tmp_path) as relay:
        result = await raw_initialize(relay, name)
    methods = [e.get("rpc_method") for e in await since(peer, mark)]
    assert result["serverInfo"] == {"name": "sdk-peer", "version": "1.2.3"}
    assert "initialize" not in methods, methods
