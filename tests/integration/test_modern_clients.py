"""Modern (2026-07-28) clients → mcp-remote-py → a dual-era server, passed through.

The server is the SDK's (``tests/peers/sdk_server.py``), which serves both eras on ``/mcp``: a
POST whose ``MCP-Protocol-Version`` is not a handshake-era version goes to its 2026-07-28 entry,
anything else to its legacy (session) transport. It runs with ``--record-requests`` (every
request's headers and JSON-RPC fields, at ``GET /_seen``) and ``--header-tools`` (tools with
``x-mcp-header`` annotations, valid and invalid).

The client is the SDK's ``Client`` over stdio, launching the relay as a desktop app would, in
``mode="2026-07-28"`` (pinned: no probe, ``_meta`` on every request) and ``mode="auto"``
(``server/discover`` first, legacy ``initialize`` if that fails: those tests first check that
the client really ended up modern). Tests with the ``direct`` ids run the same body with the same
client talking Streamable HTTP to the server itself: they prove the test and the peer right, so a
failure of the ``relay`` ids is the relay's. Byte-level expectations (the exact line on stdout,
what the relay itself filters) use raw lines, and compare with what the server answers directly.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
import trio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.subscriptions import ToolsListChanged
from pydantic import FileUrl

from .conftest import RunningServer
from .harness import REPO, RawRelay, raw_relay, relay_command, relay_session

pytestmark = pytest.mark.timeout(60)

MODERN = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
SUBSCRIPTION_KEY = "io.modelcontextprotocol/subscriptionId"
NAME_BEARING = {"tools/call", "prompts/get", "resources/read"}
FALLBACK_WORDS = ("not served", "trying legacy HTTP+SSE", "Traceback")
PEER_FLAGS = ("--transport", "streamable-http", "--record-requests", "--header-tools")
READ_TIMEOUT = 20.0


# --- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["dual-era", "modern-only"])
def peer(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """Each row against a dual-era server and one that speaks only 2026-07-28: a modern client
    must see no difference."""
    flags = PEER_FLAGS if request.param == "dual-era" else (*PEER_FLAGS, "--modern-only")
    server = RunningServer(request.param, flags)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def json_peer() -> Iterator[RunningServer]:
    server = RunningServer("dual-era-json", (*PEER_FLAGS, "--json-response"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """This test's client name: the peer's request log is filtered by it."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"


async def seen(server: RunningServer, client: str | None = None) -> list[dict[str, Any]]:
    """The requests whose ``_meta`` named ``client`` (else all), as the server recorded them."""
    query = {"client": client} if client is not None else {}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{server.base}/_seen", params=query)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


async def wait_seen(
    server: RunningServer,
    client: str,
    done: Callable[[list[dict[str, Any]]], bool],
    what: str,
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """Poll the server's request log until ``done`` holds (a deadline, not a timer)."""
    entries: list[dict[str, Any]] = []
    with trio.move_on_after(timeout):
        while not done(entries := await seen(server, client)):  # noqa: ASYNC110
            await trio.sleep(0.05)  # the log is on the server: poll it, under a deadline
        return entries
    pytest.fail(f"{what} within {timeout} s; the server saw: {json.dumps(entries, indent=1)}")


def headers_of(entry: dict[str, Any]) -> dict[str, list[str]]:
    folded: dict[str, list[str]] = {}
    for key, value in entry["headers"]:
        folded.setdefault(key.lower(), []).append(value)
    return folded


def header(entry: dict[str, Any], key: str) -> str | None:
    values = headers_of(entry).get(key.lower())
    assert values is None or len(values) == 1, f"{key} sent {len(values)} times: {entry}"
    return values[0] if values else None


def sentinel(value: str) -> str:
    return f"=?base64?{base64.b64encode(value.encode()).decode()}?="


def assert_metadata_headers(entry: dict[str, Any]) -> None:
    """A modern request's POST mirrors its body into the request metadata headers."""
    assert header(entry, "MCP-Protocol-Version") == entry["meta"][VERSION_KEY], entry
    assert header(entry, "Mcp-Method") == entry["rpc_method"], entry
    assert header(entry, "Mcp-Session-Id") is None, entry
    if entry["rpc_method"] in NAME_BEARING and entry["params_name"] is not None:
        name = entry["params_name"]
        assert header(entry, "Mcp-Name") == (name if name.isascii() else sentinel(name)), entry


def modern_posts(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The POSTs that carried a modern request (a ``_meta`` at 2026-07-28)."""
    return [
        e
        for e in entries
        if e["http"] == "POST" and e["rpc_id"] is not None and (e["meta"] or {}).get(VERSION_KEY)
    ]


def calls_of(entries: list[dict[str, Any]], method: str, name: str | None = None) -> list[Any]:
    return [
        e
        for e in entries
        if e["rpc_method"] == method and (name is None or e["params_name"] == name)
    ]


# --- the client ------------------------------------------------------------------------------


@dataclass
class Observed:
    """What the modern client's callbacks saw, and (through the relay) the relay's stderr."""

    stderr_path: Path | None
    sampled: list[Any] = field(default_factory=list)
    elicited: list[Any] = field(default_factory=list)
    roots_asked: int = 0
    messages: list[Any] = field(default_factory=list)

    def stderr(self) -> str:
        if self.stderr_path is None:
            return ""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


# The SDK's own HTTP client (the direct route only) leaves its SSE readers' async generators to
# the garbage collector, which trio reports: an SDK wart, not what these tests look at.
_SDK_HTTP_LEAKS = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object:pytest.PytestUnraisableExceptionWarning"
)
ROUTES = [
    pytest.param(("relay", MODERN), id="relay-pinned"),
    pytest.param(("relay", "auto"), id="relay-auto"),
    pytest.param(("direct", MODERN), id="direct-pinned", marks=_SDK_HTTP_LEAKS),
    pytest.param(("direct", "auto"), id="direct-auto", marks=_SDK_HTTP_LEAKS),
]


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(via, mode): through the relay or straight to the server; pinned modern or auto."""
    via, mode = request.param
    return via, mode


@asynccontextmanager
async def modern_client(
    url: str, tmp_path: Path, name: str, via: str, mode: str, *relay_args: str
) -> AsyncIterator[tuple[Client, Observed]]:
    """The SDK's ``Client`` (``mode``), through the relay over stdio or straight to ``url``."""
    observed = Observed(tmp_path / "relay-stderr.txt" if via == "relay" else None)

    async def sampling(ctx: Any, params: types.CreateMessageRequestParams) -> Any:
        observed.sampled.append(params)
        content = types.TextContent(type="text", text="42")
        return types.CreateMessageResult(role="assistant", model="test-model", content=content)

    async def elicitation(ctx: Any, params: Any) -> types.ElicitResult:
        observed.elicited.append(params)
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    async def roots(ctx: Any) -> types.ListRootsResult:
        observed.roots_asked += 1
        return types.ListRootsResult(roots=[types.Root(uri=FileUrl("file:///work/project"))])

    async def on_message(message: Any) -> None:
        observed.messages.append(message)

    options: dict[str, Any] = {
        "mode": mode,
        "client_info": types.Implementation(name=name, version="1.0"),
        "read_timeout_seconds": READ_TIMEOUT,
        "sampling_callback": sampling,
        "elicitation_callback": elicitation,
        "list_roots_callback": roots,
        "message_handler": on_message,
    }
    if via == "direct":
        async with Client(url, **options) as client:
            check_modern(client, mode, observed)
            yield client, observed
        return
    command = relay_command()
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], url, "--log-file", str(tmp_path / "relay.log"), *relay_args],
        env={**os.environ},
        cwd=str(REPO),
    )
    assert observed.stderr_path is not None
    with observed.stderr_path.open("w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), **options) as client:
            check_modern(client, mode, observed)
            yield client, observed
    no_fallback(observed.stderr())


def check_modern(client: Client, mode: str, observed: Observed) -> None:
    if mode == "auto":
        assert client.protocol_version == MODERN, (
            f"the auto client fell back to {client.protocol_version}: its server/discover probe "
            f"did not get through. Relay stderr:\n{observed.stderr()}"
        )


def no_fallback(stderr: str) -> None:
    for words in FALLBACK_WORDS:
        assert words not in stderr, stderr


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


# --- 1. discovery ----------------------------------------------------------------------------


async def test_modern_client_discovers_the_server(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    via, mode = route
    async with modern_client(peer.url, tmp_path, name, via, mode) as (client, _):
        if mode == "auto":  # the client adopted the discover result it probed for
            assert client.server_info is not None
            assert (client.server_info.name, client.server_info.version) == ("sdk-peer", "1.2.3")
            assert client.instructions == "Test peer for mcp-remote-py."
        raw = await client.session.send_discover(MODERN)
    discovered = types.DiscoverResult.model_validate(raw)
    assert MODERN in discovered.supported_versions
    assert discovered.instructions == "Test peer for mcp-remote-py."
    assert (discovered.meta or {})["io.modelcontextprotocol/serverInfo"] == {
        "name": "sdk-peer",
        "version": "1.2.3",
    }
    assert discovered.capabilities.tools is not None


# --- 2. the everyday requests ----------------------------------------------------------------


async def test_modern_client_lists_and_calls_tools(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    async with modern_client(peer.url, tmp_path, name, *route) as (client, _):
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "add", "slow", "elicit", "route"} <= names
        assert text_of(await client.call_tool("echo", {"text": "héllo\nworld"})) == "héllo\nworld"
        added = await client.call_tool("add", {"a": 2, "b": 3})
        assert added.structured_content == {"result": 5}


async def test_modern_client_gets_progress_during_a_call(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    seen_progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen_progress.append((progress, total, message))

    async with modern_client(peer.url, tmp_path, name, *route) as (client, _):
        result = await client.call_tool(
            "slow", {"seconds": 0.3, "steps": 3}, progress_callback=on_progress
        )
    assert text_of(result) == "done"
    assert seen_progress == [(n, 3, f"step {n}/3") for n in (1, 2, 3)]


async def test_modern_client_gets_prompts_and_reads_resources(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    async with modern_client(peer.url, tmp_path, name, *route) as (client, _):
        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["greet"]
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


async def test_modern_client_works_with_a_server_answering_json(
    json_peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with modern_client(json_peer.url, tmp_path, name, "relay", MODERN) as (client, seen_by):
        assert text_of(await client.call_tool("echo", {"text": "json"})) == "json"
        assert text_of(await client.call_tool("elicit", {"question": "colour?"})) == "blue"
    assert len(seen_by.elicited) == 1


# --- 3. MRTR ---------------------------------------------------------------------------------


async def test_modern_client_answers_input_required_and_gets_the_final_result(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    async with modern_client(peer.url, tmp_path, name, *route) as (client, observed):
        assert text_of(await client.call_tool("elicit", {"question": "colour?"})) == "blue"
        assert text_of(await client.call_tool("sample", {"prompt": "6 x 7?"})) == "42"
        assert text_of(await client.call_tool("roots", {})) == "file:///work/project"
    assert [p.message for p in observed.elicited] == ["colour?"]
    assert len(observed.sampled) == 1
    assert observed.roots_asked == 1
    # The client answered each question itself: per tool, a first POST without inputResponses
    # (answered input_required), then the retry carrying them.
    entries = await seen(peer, name)
    for tool in ("elicit", "sample", "roots"):
        calls = calls_of(entries, "tools/call", tool)
        assert ["inputResponses" in c["params_keys"] for c in calls] == [False, True], calls
        assert {c["status"] for c in calls} == {200}


async def test_relay_passes_an_input_required_result_through_unchanged(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    question = modern_request(11, "tools/call", {"name": "elicit", "arguments": {"question": "?"}})
    answer = {"elicit": {"action": "accept", "content": {"answer": "green"}}}
    retry = modern_request(12, "tools/call", {**question["params"], "inputResponses": answer})
    async with raw_relay([peer.url], tmp_path) as relay:
        await relay.send(with_client(question, name))
        first = await read_answer(relay, 11)
        await relay.send(with_client(retry, name))
        final = await read_answer(relay, 12)
    _, direct = await post_direct(peer, with_client(question, name))
    assert first == direct, first  # input_required, exactly what the server says
    assert first["result"]["resultType"] == "input_required"
    assert final["result"]["content"] == [{"type": "text", "text": "green"}]
    no_fallback(relay.stderr())


# --- 4. request metadata headers -------------------------------------------------------------


async def test_modern_client_requests_carry_metadata_headers_and_no_session(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    already = len(await seen(peer))
    async with modern_client(peer.url, tmp_path, name, *route) as (client, _):
        await client.list_tools()
        await client.call_tool("echo", {"text": "x"})
        await client.list_prompts()
        await client.get_prompt("greet", {"name": "Ada"})
        await client.read_resource("text://hello")
        await client.read_resource("text://item/café")
        await client.session.send_discover(MODERN)
    posts = modern_posts(await seen(peer, name))
    methods = {e["rpc_method"] for e in posts}
    assert {"server/discover", "tools/list", "tools/call", "prompts/get", "resources/read"} <= (
        methods
    )
    for entry in posts:
        assert entry["meta"][VERSION_KEY] == MODERN, entry
        assert_metadata_headers(entry)
        assert entry["status"] == 200, entry  # the server found nothing to reject
    cafe = calls_of(posts, "resources/read", "text://item/café")
    assert [header(e, "Mcp-Name") for e in cafe] == [sentinel("text://item/café")]
    # Also any modern request the relay made on its own account (a probe, a listing) meanwhile.
    for entry in modern_posts((await seen(peer))[already:]):
        assert_metadata_headers(entry)


async def test_modern_client_tools_call_carries_mcp_name_and_param_headers(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    full = {
        "region": "us-west1",
        "query": "SELECT 1",
        "dry_run": True,
        "shard": 7,
        "target": {"zone": "b"},
    }
    async with modern_client(peer.url, tmp_path, name, *route) as (client, _):
        await client.list_tools()  # the schemas the headers come from
        assert json.loads(text_of(await client.call_tool("route", full))) == full
        await client.call_tool("route", {"region": "Zürich "})
        await client.call_tool("echo", {"text": "no params"})
    calls = calls_of(await seen(peer, name), "tools/call")
    assert {c["status"] for c in calls} == {200}, calls  # no HeaderMismatch, no retry
    first, second = calls_of(calls, "tools/call", "route")
    assert header(first, "Mcp-Name") == "route"
    params = {k: v[0] for k, v in headers_of(first).items() if k.startswith("mcp-param-")}
    assert params == {
        "mcp-param-region": "us-west1",
        "mcp-param-dry-run": "true",
        "mcp-param-shard": "7",
        "mcp-param-zone": "b",
    }
    # Not plain ASCII (and a trailing space): the Base64 sentinel; absent arguments, no header.
    params = {k: v[0] for k, v in headers_of(second).items() if k.startswith("mcp-param-")}
    assert params == {"mcp-param-region": sentinel("Zürich ")}
    (echo,) = calls_of(calls, "tools/call", "echo")
    assert not [k for k in headers_of(echo) if k.startswith("mcp-param-")]


async def test_relay_leaves_tools_with_invalid_x_mcp_header_out_of_tools_list(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    listing = with_client(modern_request(21, "tools/list"), name)
    _, direct = await post_direct(peer, listing)
    advertised = {tool["name"]: tool for tool in direct["result"]["tools"]}
    assert {"bad_number_header", "bad_duplicate_header", "route"} <= set(advertised)
    async with raw_relay([peer.url], tmp_path) as relay:
        await relay.send(with_client(modern_request(20, "server/discover"), name))
        await read_answer(relay, 20)
        await relay.send(listing)
        answer = await read_answer(relay, 21)
        assert "result" in answer, answer
        for tool in ("bad_number_header", "bad_duplicate_header"):
            await relay.wait_for_stderr(tool, timeout=5)  # a warning naming the tool
    tools = {tool["name"]: tool for tool in answer["result"]["tools"]}
    assert "bad_number_header" not in tools
    assert "bad_duplicate_header" not in tools
    assert tools["route"] == advertised["route"]  # a valid tool is left as the server sent it
    assert set(tools) == set(advertised) - {"bad_number_header", "bad_duplicate_header"}
    no_fallback(relay.stderr())


# --- 5. modern errors are the server's answer ------------------------------------------------


async def test_relay_delivers_unsupported_protocol_version_error_unchanged(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    probe = with_client(modern_request("probe-1", "server/discover", version="1900-01-01"), name)
    status, direct = await post_direct(peer, probe)
    assert status == 400
    async with raw_relay([peer.url], tmp_path) as relay:
        await relay.send(probe)
        line = await relay.read_line()
    answer = json.loads(line)
    assert answer == direct, answer
    assert answer["id"] == "probe-1"
    assert answer["error"]["code"] == -32022
    assert answer["error"]["data"]["supported"] == [MODERN]
    assert answer["error"]["data"]["requested"] == "1900-01-01"
    no_fallback(relay.stderr())


async def test_relay_delivers_method_not_found_from_a_modern_server_unchanged(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    unknown = with_client(modern_request(31, "no/such/method"), name)
    status, direct = await post_direct(peer, unknown)
    assert status == 404
    async with raw_relay([peer.url], tmp_path) as relay:
        await relay.send(with_client(modern_request(30, "server/discover"), name))
        await read_answer(relay, 30)
        await relay.send(unknown)
        answer = await read_answer(relay, 31)
    assert answer == direct, answer
    assert answer["error"]["code"] == -32601
    no_fallback(relay.stderr())


# --- 6. cancellation -------------------------------------------------------------------------


async def test_modern_client_cancelling_a_call_closes_its_post_and_the_next_call_works(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    running = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        running.set()

    async with modern_client(peer.url, tmp_path, name, *route) as (client, _):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_once_running() -> None:
                    with trio.fail_after(READ_TIMEOUT):
                        await running.wait()
                    scope.cancel()

                nursery.start_soon(cancel_once_running)
                await client.call_tool(
                    "slow", {"seconds": 30, "steps": 60}, progress_callback=on_progress
                )
                pytest.fail("the slow call finished although it was cancelled")
        assert scope.cancelled_caught
        await wait_seen(
            peer,
            name,
            lambda es: [e["state"] for e in calls_of(es, "tools/call", "slow")] == ["disconnected"],
            "the cancelled call's POST was not closed",
        )
        assert text_of(await client.call_tool("echo", {"text": "after"})) == "after"


async def test_relay_sends_no_answer_for_a_cancelled_modern_request(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    slow = modern_request(
        5, "tools/call", {"name": "slow", "arguments": {"seconds": 30, "steps": 60}}
    )
    slow["params"]["_meta"]["progressToken"] = "slow-5"
    async with raw_relay([peer.url], tmp_path) as relay:
        await relay.send(with_client(slow, name))
        progress = await relay.read_message()
        assert progress.get("method") == "notifications/progress", progress
        assert progress["params"]["progressToken"] == "slow-5"
        cancel = {"requestId": 5, "reason": "user pressed stop"}
        await relay.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel})
        await wait_seen(
            peer,
            name,
            lambda es: [e["state"] for e in calls_of(es, "tools/call", "slow")] == ["disconnected"],
            "the cancelled request's POST was not closed",
        )
        echo = modern_request(6, "tools/call", {"name": "echo", "arguments": {"text": "next"}})
        await relay.send(with_client(echo, name))
        lines = await read_until_answer(relay, 6)
    assert lines[-1]["result"]["content"] == [{"type": "text", "text": "next"}]
    answers_to_5 = [m for m in lines if m.get("id") == 5]
    assert not answers_to_5  # no answer for a cancelled request, not even an error
    no_fallback(relay.stderr())


# --- 7. subscriptions/listen -----------------------------------------------------------------


async def test_modern_client_listening_gets_tools_list_changed(
    peer: RunningServer, tmp_path: Path, name: str, route: tuple[str, str]
) -> None:
    async with (
        modern_client(peer.url, tmp_path, name, *route) as (client, _),
        client.listen(tools_list_changed=True) as subscription,
    ):
        assert subscription.honored.tools_list_changed
        assert text_of(await client.call_tool("notify_tools_changed", {})) == "notified"
        with trio.fail_after(10):
            event = await subscription.__anext__()
        assert isinstance(event, ToolsListChanged)
    (listen,) = calls_of(await seen(peer, name), "subscriptions/listen")
    assert header(listen, "Mcp-Method") == "subscriptions/listen"
    assert header(listen, "MCP-Protocol-Version") == MODERN


async def test_relay_listen_notifications_carry_the_clients_listen_id(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    listen = modern_request(
        7, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}
    )
    notify = modern_request(8, "tools/call", {"name": "notify_tools_changed", "arguments": {}})
    async with raw_relay([peer.url], tmp_path) as relay:
        await relay.send(with_client(listen, name))
        ack = await relay.read_message()
        assert ack.get("method") == "notifications/subscriptions/acknowledged", ack
        assert ack["params"]["_meta"][SUBSCRIPTION_KEY] == 7
        assert ack["params"]["notifications"] == {"toolsListChanged": True}
        await relay.send(with_client(notify, name))
        lines = await read_until_answer(relay, 8)
        if not any(m.get("method") == "notifications/tools/list_changed" for m in lines):
            lines.append(await relay.read_message())  # the listen stream may trail the call
        changed = [m for m in lines if m.get("method") == "notifications/tools/list_changed"]
        assert [m["params"]["_meta"][SUBSCRIPTION_KEY] for m in changed] == [7]
        # Cancelling the subscription (stdio's way) closes the listen stream upstream.
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
        await relay.send(cancel)
        await wait_seen(
            peer,
            name,
            lambda es: (
                [e["state"] for e in calls_of(es, "subscriptions/listen")] == ["disconnected"]
            ),
            "the cancelled subscription's listen POST was not closed",
        )
    no_fallback(relay.stderr())


# --- 8. legacy clients still relay as before -------------------------------------------------


async def test_legacy_client_works_with_the_same_server_too(
    peer: RunningServer, tmp_path: Path, name: str
) -> None:
    (tmp_path / "legacy").mkdir()
    async with modern_client(peer.url, tmp_path / "legacy", name, "relay", "legacy") as (
        client,
        observed,
    ):
        assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None
        assert client.server_info.name == "sdk-peer"
        assert text_of(await client.call_tool("echo", {"text": "old"})) == "old"
        assert text_of(await client.call_tool("elicit", {"question": "colour?"})) == "blue"
    # a server→client request, the legacy way (from the dual server, or the bridge up)
    assert len(observed.elicited) == 1
    async with relay_session(peer.url, tmp_path) as (session, side):
        assert text_of(await session.call_tool("echo", {"text": "desktop"})) == "desktop"
    assert "Traceback" not in side.stderr()


# --- raw-line helpers ------------------------------------------------------------------------


def modern_request(
    request_id: int | str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    version: str = MODERN,
) -> dict[str, Any]:
    meta = {VERSION_KEY: version, CAPABILITIES_KEY: {}}
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**(params or {}), "_meta": meta},
    }


def with_client(message: dict[str, Any], name: str) -> dict[str, Any]:
    """``message`` with ``name`` as its ``_meta`` clientInfo (so the request log can find it)."""
    params = message["params"]
    meta = {**params["_meta"], CLIENT_INFO_KEY: {"name": name, "version": "1"}}
    return {**message, "params": {**params, "_meta": meta}}


async def read_until_answer(relay: RawRelay, request_id: int | str) -> list[dict[str, Any]]:
    """Every line up to and including the answer to ``request_id``."""
    lines: list[dict[str, Any]] = []
    while not lines or lines[-1].get("id") != request_id or "method" in lines[-1]:
        lines.append(await relay.read_message(timeout=READ_TIMEOUT))
    return lines


async def read_answer(relay: RawRelay, request_id: int | str) -> dict[str, Any]:
    return (await read_until_answer(relay, request_id))[-1]


async def post_direct(server: RunningServer, message: dict[str, Any]) -> tuple[int, Any]:
    """POST ``message`` to the server ourselves, with the headers a modern client derives."""
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": message["params"]["_meta"][VERSION_KEY],
        "Mcp-Method": message["method"],
    }
    if message["method"] in NAME_BEARING:
        value = message["params"].get("name", message["params"].get("uri"))
        headers["Mcp-Name"] = value if value.isascii() else sentinel(value)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(server.url, json=message, headers=headers)
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.status_code, response.json()
