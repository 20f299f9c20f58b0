"""Modern (2026-07-28) clients → mcp-remote-py → servers that speak only the 2025 protocol.

The bridge down (issue 14): the relay opens a legacy session of its own for a client that has
none to give, answers ``server/discover`` from it, and turns the server's requests into
``input_required`` rounds. The servers are legacy-only and nobody here wrote them:

* ``@modelcontextprotocol/server-everything`` (TypeScript SDK 1.x), Streamable HTTP and HTTP+SSE;
* the Python SDK of the 2025 era (``mcp`` 1.x, in its own venv: ``tests/peers/mcp1.py``),
  Streamable HTTP and HTTP+SSE.

The client is the Python SDK's ``Client`` over stdio (launching the relay as a desktop app
would) in ``mode="2026-07-28"`` (no probe, ``_meta`` on every request, no ``initialize`` ever)
and ``mode="auto"`` (``server/discover`` first: those tests check the client stayed modern).
Byte-level rows (the exact answers, the bad retries) use raw lines on the relay's stdin/stdout.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
import trio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged
from pydantic import FileUrl

from tests.peers.everything import EverythingServer, server_everything_bin
from tests.peers.mcp1 import Mcp1Server

from .harness import REPO, RawRelay, raw_relay, relay_command

pytestmark = pytest.mark.timeout(90)

MODERN = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SUBSCRIPTION_KEY = "io.modelcontextprotocol/subscriptionId"
READ_TIMEOUT = 20.0
ALL_CAPABILITIES = {"elicitation": {"form": {}}, "sampling": {}, "roots": {}}


# --- the servers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How one server's tools do what every row asks: (tool, arguments, what the text shows)."""

    server_name: str
    echo: tuple[str, dict[str, Any], str]
    progress: tuple[str, dict[str, Any], int]  # and how many progress notifications
    long_call: tuple[str, dict[str, Any]]
    elicit: tuple[str, dict[str, Any], str]
    sample: tuple[str, dict[str, Any], str]
    roots: tuple[str, dict[str, Any], str]
    list_change: tuple[str, dict[str, Any]] | None  # a tool that changes the tool list
    resource_update: tuple[str, dict[str, Any]]  # a tool that makes the server send updates
    resource_uri: str
    prompt: tuple[str, dict[str, str], str]
    instructions: str  # how they begin


EVERYTHING = Profile(
    server_name="mcp-servers/everything",
    echo=("echo", {"message": "héllo\nworld"}, "Echo: héllo\nworld"),
    progress=("trigger-long-running-operation", {"duration": 0.6, "steps": 3}, 3),
    long_call=("trigger-long-running-operation", {"duration": 60, "steps": 120}),
    elicit=("trigger-elicitation-request", {}, "User provided the requested information"),
    sample=("trigger-sampling-request", {"prompt": "6 x 7?", "maxTokens": 10}, '"text": "42"'),
    roots=("get-roots-list", {}, "file:///work/project"),
    list_change=None,  # it announces its conditional tools right after initialize only
    resource_update=("toggle-subscriber-updates", {}),
    resource_uri="demo://resource/static/document/architecture.md",
    prompt=("simple-prompt", {}, "This is a simple prompt without arguments."),
    instructions="# Everything Server",
)
MCP1 = Profile(
    server_name="mcp1-peer",
    echo=("echo", {"text": "héllo\nworld"}, "héllo\nworld"),
    progress=("slow", {"seconds": 0.3, "steps": 3}, 3),
    long_call=("slow", {"seconds": 60, "steps": 120}),
    elicit=("elicit", {"question": "colour?"}, "blue"),
    sample=("sample", {"prompt": "6 x 7?"}, "42"),
    roots=("roots", {}, "file:///work/project"),
    list_change=("add_tool", {}),
    resource_update=("touch", {"uri": "text://hello"}),
    resource_uri="text://hello",
    prompt=("greet", {"name": "Ada"}, "Hello, Ada!"),
    instructions="Legacy test peer.",
)


@dataclass
class Legacy:
    """A running legacy-only server and how to drive it."""

    id: str
    url: str
    profile: Profile
    restart: Callable[[], None] | None = None


def _everything(mode: str) -> Iterator[Legacy]:
    if server_everything_bin() is None:
        pytest.skip("server-everything is not installed: run `npm ci` at the repository root")
    with EverythingServer(mode) as server:
        yield Legacy(f"everything-{mode}", server.url, EVERYTHING)


def _mcp1(transport: str) -> Iterator[Legacy]:
    with Mcp1Server(transport) as server:  # type: ignore[arg-type]
        yield Legacy(f"mcp1-{transport}", server.url, MCP1, server.restart)


@pytest.fixture(
    scope="module", params=["everything-streamableHttp", "everything-sse", "mcp1-http", "mcp1-sse"]
)
def legacy(request: pytest.FixtureRequest) -> Iterator[Legacy]:
    """Each row against each legacy-only server: a modern client must see no difference."""
    kind = request.param
    if kind.startswith("everything-"):
        yield from _everything(kind.removeprefix("everything-"))
    else:
        yield from _mcp1("streamable-http" if kind == "mcp1-http" else "sse")


@pytest.fixture(scope="module", params=["mcp1-http", "mcp1-sse"])
def mcp1(request: pytest.FixtureRequest) -> Iterator[Legacy]:
    """The 2025 Python SDK's server alone: the rows that need a tool only it has."""
    yield from _mcp1("streamable-http" if request.param == "mcp1-http" else "sse")


@pytest.fixture(params=["mcp1-http", "mcp1-sse"])
def fresh_mcp1(request: pytest.FixtureRequest) -> Iterator[Legacy]:
    """A server of one's own, for the rows that restart it."""
    yield from _mcp1("streamable-http" if request.param == "mcp1-http" else "sse")


async def restart(server: Legacy) -> None:
    """Stop the server and start it again on its port: every session it had is gone."""
    assert server.restart is not None
    await trio.to_thread.run_sync(server.restart)


# --- the client --------------------------------------------------------------------------------


@dataclass
class Observed:
    stderr_path: Path
    sampled: list[Any] = field(default_factory=list)
    elicited: list[Any] = field(default_factory=list)
    roots_asked: int = 0
    logs: list[Any] = field(default_factory=list)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


MODES = [pytest.param(MODERN, id="pinned"), pytest.param("auto", id="auto")]


@asynccontextmanager
async def modern_client(
    url: str, tmp_path: Path, mode: str, *relay_args: str, **options: Any
) -> AsyncIterator[tuple[Client, Observed]]:
    """The SDK's ``Client`` (``mode``) through the relay over stdio."""
    observed = Observed(tmp_path / "relay-stderr.txt")

    async def sampling(ctx: Any, params: types.CreateMessageRequestParams) -> Any:
        observed.sampled.append(params)
        content = types.TextContent(type="text", text="42")
        return types.CreateMessageResult(role="assistant", model="test-model", content=content)

    async def elicitation(ctx: Any, params: Any) -> types.ElicitResult:
        observed.elicited.append(params)
        return types.ElicitResult(action="accept", content={"answer": "blue", "name": "blue"})

    async def roots(ctx: Any) -> types.ListRootsResult:
        observed.roots_asked += 1
        return types.ListRootsResult(roots=[types.Root(uri=FileUrl("file:///work/project"))])

    async def logging_callback(params: types.LoggingMessageNotificationParams) -> None:
        observed.logs.append(params)

    command = relay_command()
    params = StdioServerParameters(
        command=command[0],
        args=[*command[1:], url, "--log-file", str(tmp_path / "relay.log"), *relay_args],
        env={**os.environ},
        cwd=str(REPO),
    )
    with observed.stderr_path.open("w", encoding="utf-8") as errlog:
        async with Client(
            stdio_client(params, errlog=errlog),
            mode=mode,
            client_info=types.Implementation(name="bridge-down-test", version="1.0"),
            read_timeout_seconds=READ_TIMEOUT,
            sampling_callback=sampling,
            elicitation_callback=elicitation,
            list_roots_callback=roots,
            logging_callback=logging_callback,
            **options,
        ) as client:
            assert client.protocol_version == MODERN, (
                f"the {mode} client ended up at {client.protocol_version}; relay stderr:\n"
                f"{observed.stderr()}"
            )
            yield client, observed
    assert "Traceback" not in observed.stderr(), observed.stderr()


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


# --- 1. discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_modern_client_discovers_a_legacy_server(
    legacy: Legacy, tmp_path: Path, mode: str
) -> None:
    async with modern_client(legacy.url, tmp_path, mode) as (client, observed):
        raw = await client.session.send_discover(MODERN)
        if mode == "auto":  # the client adopted what its probe found
            assert client.server_info is not None
            assert client.server_info.name == legacy.profile.server_name
    discovered = types.DiscoverResult.model_validate(raw)
    assert discovered.supported_versions == [MODERN]
    assert discovered.capabilities.tools is not None
    assert (discovered.meta or {})["io.modelcontextprotocol/serverInfo"]["name"] == (
        legacy.profile.server_name
    )
    assert (discovered.instructions or "").startswith(legacy.profile.instructions)
    assert "bridging this 2026-07-28 client down to it" in observed.stderr()


# --- 2. the everyday requests ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_modern_client_lists_and_calls_tools(
    legacy: Legacy, tmp_path: Path, mode: str
) -> None:
    tool, arguments, expected = legacy.profile.echo
    async with modern_client(legacy.url, tmp_path, mode) as (client, _):
        names = {t.name for t in (await client.list_tools()).tools}
        assert tool in names
        assert expected in text_of(await client.call_tool(tool, arguments))
        prompts = await client.list_prompts()
        name, arguments, says = legacy.profile.prompt
        assert name in {p.name for p in prompts.prompts}
        got = await client.get_prompt(name, arguments)
        assert isinstance(got.messages[0].content, types.TextContent)
        assert says in got.messages[0].content.text
        resources = await client.list_resources()
        assert legacy.profile.resource_uri in {str(r.uri) for r in resources.resources}
        read = await client.read_resource(legacy.profile.resource_uri)
        assert read.contents


async def test_modern_client_gets_progress_during_a_call(legacy: Legacy, tmp_path: Path) -> None:
    tool, arguments, steps = legacy.profile.progress
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with modern_client(legacy.url, tmp_path, MODERN) as (client, _):
        result = await client.call_tool(tool, arguments, progress_callback=on_progress)
    assert not result.is_error, result
    assert len(seen) == steps, seen
    assert seen == sorted(seen)


# --- 3. server requests become input_required ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_modern_client_answers_the_servers_elicitation_sampling_and_roots(
    legacy: Legacy, tmp_path: Path, mode: str
) -> None:
    profile = legacy.profile
    async with modern_client(legacy.url, tmp_path, mode) as (client, observed):
        for tool, arguments, expected in (profile.elicit, profile.sample, profile.roots):
            assert expected in text_of(await client.call_tool(tool, arguments)), tool
    assert len(observed.elicited) == 1
    assert len(observed.sampled) == 1
    assert observed.roots_asked == 1


async def test_two_rounds_in_one_call(mcp1: Legacy, tmp_path: Path) -> None:
    async with modern_client(mcp1.url, tmp_path, MODERN) as (client, observed):
        assert text_of(await client.call_tool("twice", {})) == "blue+blue"
    assert len(observed.elicited) == 2


# --- 4. subscriptions/listen over a legacy session ---------------------------------------------


async def test_listen_gets_tools_list_changed(mcp1: Legacy, tmp_path: Path) -> None:
    async with (
        modern_client(mcp1.url, tmp_path, MODERN) as (client, _),
        client.listen(tools_list_changed=True) as subscription,
    ):
        assert subscription.honored.tools_list_changed
        assert not subscription.honored.prompts_list_changed  # the server has no such thing
        assert list_change_tool(mcp1) is not None
        await client.call_tool(*list_change_tool(mcp1))
        with trio.fail_after(10):
            event = await subscription.__anext__()
        assert isinstance(event, ToolsListChanged)
        names = {t.name for t in (await client.list_tools()).tools}
        assert "added" in names


def list_change_tool(server: Legacy) -> tuple[str, dict[str, Any]]:
    assert server.profile.list_change is not None
    return server.profile.list_change


async def test_listen_gets_resource_updates(legacy: Legacy, tmp_path: Path) -> None:
    uri = legacy.profile.resource_uri
    async with (
        modern_client(legacy.url, tmp_path, MODERN) as (client, _),
        client.listen(resource_subscriptions=[uri]) as subscription,
    ):
        assert subscription.honored.resource_subscriptions == [uri]
        await client.call_tool(*legacy.profile.resource_update)
        with trio.fail_after(15):  # server-everything sends its updates every 5 s
            event = await subscription.__anext__()
        assert isinstance(event, ResourceUpdated)
        assert str(event.uri) == uri


async def test_several_listens_each_get_their_own_tagged_notifications(
    mcp1: Legacy, tmp_path: Path
) -> None:
    tools = modern_request(1, "subscriptions/listen", {"notifications": {"toolsListChanged": True}})
    both = modern_request(
        2,
        "subscriptions/listen",
        {"notifications": {"toolsListChanged": True, "resourceSubscriptions": ["text://hello"]}},
    )
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(tools)
        assert (await relay.read_message())["params"]["_meta"][SUBSCRIPTION_KEY] == 1
        await relay.send(both)
        ack = await relay.read_message()
        assert ack["params"] == {
            "_meta": {SUBSCRIPTION_KEY: 2},
            "notifications": {"toolsListChanged": True, "resourceSubscriptions": ["text://hello"]},
        }
        await relay.send(modern_request(3, "tools/call", {"name": "add_tool", "arguments": {}}))
        await read_until(relay, lambda seen: answered(seen, 3) and _tagged(seen, "tools") == [1, 2])
        # Closing the first leaves the second listening, and its resource subscription too.
        await relay.send(cancelled(1))
        touch = {"name": "touch", "arguments": {"uri": "text://hello"}}
        await relay.send(modern_request(4, "tools/call", touch))
        await read_until(
            relay, lambda seen: answered(seen, 4) and _tagged(seen, "resources") == [2]
        )
        await relay.send(modern_request(5, "tools/call", {"name": "add_tool", "arguments": {}}))
        lines = await read_until(
            relay, lambda seen: answered(seen, 5) and _tagged(seen, "tools") == [2]
        )
    assert [m for m in lines if m.get("id") in (1, 2)] == []  # listens are never answered


def answered(lines: list[dict[str, Any]], request_id: int) -> bool:
    return any(m.get("id") == request_id and "method" not in m for m in lines)


def _tagged(lines: list[dict[str, Any]], kind: str) -> list[Any]:
    method = (
        "notifications/tools/list_changed" if kind == "tools" else "notifications/resources/updated"
    )
    return [m["params"]["_meta"][SUBSCRIPTION_KEY] for m in lines if m.get("method") == method]


# --- 5. logging --------------------------------------------------------------------------------


async def test_log_notifications_only_for_requests_that_ask(mcp1: Legacy, tmp_path: Path) -> None:
    quiet = modern_request(1, "tools/call", {"name": "log", "arguments": {}})
    loud = modern_request(2, "tools/call", {"name": "log", "arguments": {}})
    loud["params"]["_meta"][LOG_LEVEL_KEY] = "info"
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(quiet)
        quiet_lines = await read_until(relay, lambda seen: any(m.get("id") == 1 for m in seen))
        await relay.send(loud)
        loud_lines = await read_until(relay, lambda seen: any(m.get("id") == 2 for m in seen))
    assert [m for m in quiet_lines if m.get("method") == "notifications/message"] == []
    levels = [
        m["params"]["level"] for m in loud_lines if m.get("method") == "notifications/message"
    ]
    assert levels == ["info", "error"]  # debug is below what the request asked for


# --- 6. cancellation ---------------------------------------------------------------------------


async def test_cancelling_a_call_gets_no_answer_and_the_next_call_works(
    legacy: Legacy, tmp_path: Path
) -> None:
    tool, arguments = legacy.profile.long_call
    call = modern_request(5, "tools/call", {"name": tool, "arguments": arguments})
    call["params"]["_meta"]["progressToken"] = "long-5"
    echo_tool, echo_arguments, expected = legacy.profile.echo
    async with raw_relay([legacy.url], tmp_path) as relay:
        await relay.send(call)
        progress = await read_until(
            relay, lambda seen: any(m.get("method") == "notifications/progress" for m in seen)
        )
        assert progress[-1]["params"]["progressToken"] == "long-5"
        await relay.send(cancelled(5, "user pressed stop"))
        echo = modern_request(6, "tools/call", {"name": echo_tool, "arguments": echo_arguments})
        await relay.send(echo)
        lines = await read_until(relay, lambda seen: any(m.get("id") == 6 for m in seen))
    assert expected in lines[-1]["result"]["content"][0]["text"]
    assert [m for m in lines if m.get("id") == 5] == []  # a cancelled request gets no answer


# --- 7. the exact answers ----------------------------------------------------------------------


async def test_results_carry_the_2026_fields_and_errors_their_2026_codes(
    mcp1: Legacy, tmp_path: Path
) -> None:
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(modern_request(1, "server/discover"))
        discovered = await read_answer(relay, 1)
        await relay.send(modern_request(2, "tools/list"))
        listed = await read_answer(relay, 2)
        await relay.send(
            modern_request(3, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        )
        called = await read_answer(relay, 3)
        await relay.send(modern_request(4, "resources/read", {"uri": "text://nothing-here"}))
        missing = await read_answer(relay, 4)
    result = discovered["result"]
    assert result["resultType"] == "complete"
    assert result["supportedVersions"] == [MODERN]
    assert (result["ttlMs"], result["cacheScope"]) == (0, "private")
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcp1-peer"
    assert "protocolVersion" not in result
    assert "serverInfo" not in result
    assert (listed["result"]["resultType"], listed["result"]["cacheScope"]) == (
        "complete",
        "private",
    )
    assert called["result"]["resultType"] == "complete"
    assert called["result"]["content"] == [{"type": "text", "text": "x"}]
    # The 2025 SDK answers a missing resource with code 0, which is nobody's to renumber (the
    # -32002 → -32602 of resources §Error Handling is unit-tested in tests/unit).
    assert missing["error"] == {"code": 0, "message": "Unknown resource: text://nothing-here"}


async def test_a_large_result_reaches_the_modern_client_whole(mcp1: Legacy, tmp_path: Path) -> None:
    """A result above the size kept parsed (1 MiB) is spliced into the client's answer, not
    parsed and encoded again: the client's id, resultType, every byte of the text (UTF-8 too)."""
    text = "é" + "x" * (3 << 20) + "ü"
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(modern_request(1, "server/discover"))
        await read_answer(relay, 1)
        await relay.send(
            modern_request("big", "tools/call", {"name": "echo", "arguments": {"text": text}})
        )
        answer = await read_answer(relay, "big")
        await relay.send(
            modern_request(3, "tools/call", {"name": "echo", "arguments": {"text": "after"}})
        )
        after = await read_answer(relay, 3)
    assert set(answer) == {"jsonrpc", "id", "result"}
    assert answer["result"]["resultType"] == "complete"
    assert answer["result"]["content"] == [{"type": "text", "text": text}]
    assert after["result"]["content"] == [{"type": "text", "text": "after"}]


async def test_an_input_required_round_by_hand(mcp1: Legacy, tmp_path: Path) -> None:
    question = modern_request(
        11, "tools/call", {"name": "elicit", "arguments": {"question": "colour?"}}
    )
    question["params"]["_meta"][CAPABILITIES_KEY] = ALL_CAPABILITIES
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(question)
        first = await read_answer(relay, 11)
        result = first["result"]
        assert result["resultType"] == "input_required"
        ((key, asked),) = result["inputRequests"].items()
        assert asked["method"] == "elicitation/create"
        assert asked["params"]["message"] == "colour?"
        state = result["requestState"]
        assert isinstance(state, str)
        assert len(state) >= 32
        retry = retry_of(
            question, 12, state, {key: {"action": "accept", "content": {"answer": "red"}}}
        )
        await relay.send(retry)
        final = await read_answer(relay, 12)
    assert final["result"] == {
        "content": [{"type": "text", "text": "red"}],
        "isError": False,
        "resultType": "complete",
    } or final["result"]["content"] == [{"type": "text", "text": "red"}], final


async def test_a_call_outlives_its_first_requests_timeout_cancellation_and_id(
    mcp1: Legacy, tmp_path: Path
) -> None:
    """The first request's task carries the call upstream; once that request is answered with
    a round, its --request-timeout, a late cancellation of its id and a new request reusing the
    id do not touch the call, which the retry then finishes."""
    question = modern_request(1, "tools/call", {"name": "elicit", "arguments": {"question": "?"}})
    question["params"]["_meta"][CAPABILITIES_KEY] = ALL_CAPABILITIES
    async with raw_relay([mcp1.url, "--request-timeout", "1"], tmp_path) as relay:
        await relay.send(question)
        first = (await read_answer(relay, 1))["result"]
        ((key, _),) = first["inputRequests"].items()
        await relay.send(cancelled(1, "too late: it was answered"))
        reused = modern_request(1, "tools/call", {"name": "echo", "arguments": {"text": "again"}})
        await relay.send(reused)
        again = await read_answer(relay, 1)
        await trio.sleep(1.5)  # the condition under test: the first request's timeout passes
        answer = {key: {"action": "accept", "content": {"answer": "blue"}}}
        await relay.send(retry_of(question, 2, first["requestState"], answer))
        seen = await read_until(relay, lambda lines: any(m.get("id") == 2 for m in lines))
    assert again["result"]["content"] == [{"type": "text", "text": "again"}]
    assert [m for m in seen if "id" in m] == [seen[-1]]  # no late error for the first request
    assert seen[-1]["result"]["content"] == [{"type": "text", "text": "blue"}], seen[-1]


# --- 8. bad input ------------------------------------------------------------------------------


async def test_a_forged_reused_or_other_calls_request_state_is_refused_and_loses_nothing(
    mcp1: Legacy, tmp_path: Path
) -> None:
    question = modern_request(1, "tools/call", {"name": "elicit", "arguments": {"question": "?"}})
    question["params"]["_meta"][CAPABILITIES_KEY] = ALL_CAPABILITIES
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(question)
        first = (await read_answer(relay, 1))["result"]
        ((key, _),) = first["inputRequests"].items()
        state = first["requestState"]
        answer = {key: {"action": "accept", "content": {"answer": "green"}}}
        await relay.send(retry_of(question, 2, "forged-" + state, answer))
        forged = await read_answer(relay, 2)
        other = modern_request(3, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
        await relay.send(retry_of(other, 3, state, answer))
        other_call = await read_answer(relay, 3)
        await relay.send(retry_of(question, 4, state, answer))  # the real retry still works
        final = await read_answer(relay, 4)
        await relay.send(retry_of(question, 5, state, answer))
        reused = await read_answer(relay, 5)
    assert forged["error"]["code"] == -32602
    assert "not one the relay issued" in forged["error"]["message"]
    assert other_call["error"]["code"] == -32602
    assert "belongs to another call (tools/call 'elicit')" in other_call["error"]["message"]
    assert final["result"]["content"] == [{"type": "text", "text": "green"}]
    assert reused["error"]["code"] == -32602
    assert "was used already" in reused["error"]["message"]
    assert state not in relay.stderr()


async def test_a_retry_missing_an_answer_is_asked_again_and_extra_answers_are_ignored(
    mcp1: Legacy, tmp_path: Path
) -> None:
    question = modern_request(1, "tools/call", {"name": "elicit", "arguments": {"question": "?"}})
    question["params"]["_meta"][CAPABILITIES_KEY] = ALL_CAPABILITIES
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(question)
        first = (await read_answer(relay, 1))["result"]
        ((key, asked),) = first["inputRequests"].items()
        await relay.send(retry_of(question, 2, first["requestState"], {"unasked": {"x": 1}}))
        again = (await read_answer(relay, 2))["result"]
        answer = {key: {"action": "accept", "content": {"answer": "teal"}}, "unasked": {}}
        await relay.send(retry_of(question, 3, again["requestState"], answer))
        final = await read_answer(relay, 3)
    # mrtr §Error Handling: the missing input is asked for again rather than refused.
    assert again["resultType"] == "input_required"
    assert again["inputRequests"] == {key: asked}
    assert again["requestState"] != first["requestState"]
    assert final["result"]["content"] == [{"type": "text", "text": "teal"}]


async def test_a_modern_client_sending_initialize_anyway_gets_a_clear_error(
    mcp1: Legacy, tmp_path: Path
) -> None:
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(modern_request(1, "server/discover"))
        assert "result" in await read_answer(relay, 1)
        await relay.request(
            2,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x"}},
        )
        refused = await read_answer(relay, 2)
        await relay.send(
            modern_request(3, "tools/call", {"name": "echo", "arguments": {"text": "still"}})
        )
        after = await read_answer(relay, 3)
    assert refused["error"]["code"] == -32600
    assert "already speaks MCP 2026-07-28" in refused["error"]["message"]
    assert after["result"]["content"] == [{"type": "text", "text": "still"}]


async def test_roots_asked_outside_any_call_are_asked_within_the_next_one(
    tmp_path: Path,
) -> None:
    # server-everything asks roots/list on its GET stream right after initialize, outside any
    # call. A 2026-07-28 client can be asked only within one of its calls: the relay holds the
    # question (bounded) and asks it in the client's next call, then sends that call upstream,
    # and answers later ones from what the client gave.
    if server_everything_bin() is None:
        pytest.skip("server-everything is not installed: run `npm ci` at the repository root")
    with EverythingServer("streamableHttp") as server:
        discover = modern_request(1, "server/discover")
        discover["params"]["_meta"][CAPABILITIES_KEY] = ALL_CAPABILITIES
        roots = {"roots": [{"uri": "file:///work/project", "name": "project"}]}
        async with raw_relay([server.url, "--debug"], tmp_path) as relay:
            await relay.send(discover)
            await read_answer(relay, 1)
            await relay.wait_for_stderr("asked roots/list outside any call", timeout=15)
            echo = modern_request(2, "tools/call", {"name": "echo", "arguments": {"message": "y"}})
            echo["params"]["_meta"][CAPABILITIES_KEY] = ALL_CAPABILITIES
            await relay.send(echo)
            asked = (await read_answer(relay, 2))["result"]
            (key,) = asked["inputRequests"]
            await relay.send(retry_of(echo, 3, asked["requestState"], {key: roots}))
            echoed = await read_answer(relay, 3)
            listing = modern_request(4, "tools/call", {"name": "get-roots-list", "arguments": {}})
            listing["params"]["_meta"][CAPABILITIES_KEY] = ALL_CAPABILITIES
            await relay.send(listing)
            listed = await read_answer(relay, 4)
    assert asked["resultType"] == "input_required"
    assert list(asked["inputRequests"].values()) == [{"method": "roots/list", "params": {}}]
    assert echoed["result"]["content"] == [{"type": "text", "text": "Echo: y"}]
    assert "file:///work/project" in listed["result"]["content"][0]["text"]


# --- 9. faults: the modern client sees no session ----------------------------------------------


async def test_a_server_restart_between_calls_is_invisible(
    fresh_mcp1: Legacy, tmp_path: Path
) -> None:
    async with modern_client(fresh_mcp1.url, tmp_path, MODERN) as (client, observed):
        assert text_of(await client.call_tool("echo", {"text": "before"})) == "before"
        await restart(fresh_mcp1)
        assert text_of(await client.call_tool("echo", {"text": "after"})) == "after"
        assert "blue" in text_of(await client.call_tool("elicit", {"question": "again?"}))
    assert "re-established" in observed.stderr()


async def test_a_server_restart_mid_call_gets_one_clear_error_then_calls_work(
    fresh_mcp1: Legacy, tmp_path: Path
) -> None:
    call = modern_request(
        1, "tools/call", {"name": "slow", "arguments": {"seconds": 60, "steps": 60}}
    )
    call["params"]["_meta"]["progressToken"] = "p"
    async with raw_relay([fresh_mcp1.url], tmp_path) as relay:
        await relay.send(call)
        await read_until(
            relay, lambda seen: any(m.get("method") == "notifications/progress" for m in seen)
        )
        await restart(fresh_mcp1)
        lines = await read_until(relay, lambda seen: any(m.get("id") == 1 for m in seen))
        (answer,) = [m for m in lines if m.get("id") == 1]
        await relay.send(
            modern_request(2, "tools/call", {"name": "echo", "arguments": {"text": "next"}})
        )
        after = await read_answer(relay, 2)
    assert answer["error"]["code"] in (-32003, -32001), answer  # it may or may not have run
    assert after["result"]["content"] == [{"type": "text", "text": "next"}]


async def test_listens_keep_working_when_the_session_is_rebuilt_underneath(
    fresh_mcp1: Legacy, tmp_path: Path
) -> None:
    listen = modern_request(
        1,
        "subscriptions/listen",
        {"notifications": {"toolsListChanged": True, "resourceSubscriptions": ["text://hello"]}},
    )
    touch = {"name": "touch", "arguments": {"uri": "text://hello"}}
    async with raw_relay([fresh_mcp1.url], tmp_path) as relay:
        await relay.send(listen)
        ack = await relay.read_message(timeout=READ_TIMEOUT)
        assert ack["method"] == "notifications/subscriptions/acknowledged"
        await restart(fresh_mcp1)
        # The next call meets the lost session; the relay opens a new one, replays the
        # resources/subscribe, and tells the listen the tool list may have changed.
        await relay.send(modern_request(2, "tools/call", touch))
        lines = await read_until(
            relay, lambda seen: answered(seen, 2) and _tagged(seen, "resources") == [1]
        )
        assert _tagged(lines, "tools") == [1]
        await relay.send(modern_request(3, "tools/call", {"name": "add_tool", "arguments": {}}))
        lines = await read_until(
            relay, lambda seen: answered(seen, 3) and _tagged(seen, "tools") == [1]
        )
        state = modern_request(4, "tools/call", {"name": "state", "arguments": {}})
        await relay.send(state)
        seen_by_server = json.loads((await read_answer(relay, 4))["result"]["content"][0]["text"])
    assert "text://hello" in seen_by_server["subscriptions"]
    assert [m for m in lines if m.get("id") == 1] == []
    assert "re-established" in relay.stderr()


async def test_log_level_becomes_set_level_upstream(mcp1: Legacy, tmp_path: Path) -> None:
    loud = modern_request(1, "tools/call", {"name": "log", "arguments": {}})
    loud["params"]["_meta"][LOG_LEVEL_KEY] = "warning"
    bad = modern_request(2, "tools/list")
    bad["params"]["_meta"][LOG_LEVEL_KEY] = "chatty"
    async with raw_relay([mcp1.url], tmp_path) as relay:
        await relay.send(loud)
        lines = await read_until(relay, lambda seen: answered(seen, 1))
        await relay.send(modern_request(3, "tools/call", {"name": "state", "arguments": {}}))
        state = json.loads((await read_answer(relay, 3))["result"]["content"][0]["text"])
        await relay.send(bad)
        refused = await read_answer(relay, 2)
    assert state["log_level"] == "warning"
    levels = [m["params"]["level"] for m in lines if m.get("method") == "notifications/message"]
    assert levels == ["error"]
    assert refused["error"]["code"] == -32602
    assert "'chatty' is not a log level" in refused["error"]["message"]


async def test_the_next_start_goes_straight_down_the_bridge(mcp1: Legacy, tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    async with modern_client(mcp1.url, tmp_path / "first", MODERN, "--debug") as (client, first):
        assert text_of(await client.call_tool("echo", {"text": "first"})) == "first"
    async with modern_client(mcp1.url, tmp_path / "second", MODERN, "--debug") as (
        client,
        second,
    ):
        assert text_of(await client.call_tool("echo", {"text": "again"})) == "again"
    assert "the server speaks only the 2025 protocol" in first.stderr()
    # basic/versioning §Backward Compatibility: the era is cached; no refused request again.
    assert "the server speaks only the 2025 protocol" not in second.stderr()
    assert "bridging this 2026-07-28 client down to it" in second.stderr()


async def test_sse_only_goes_down_the_bridge_without_trying_2026_first(
    tmp_path: Path,
) -> None:
    with Mcp1Server("sse") as server:
        async with raw_relay([server.url, "--transport", "sse-only", "--debug"], tmp_path) as relay:
            await relay.send(
                modern_request(1, "tools/call", {"name": "echo", "arguments": {"text": "sse"}})
            )
            answer = await read_answer(relay, 1)
    assert answer["result"]["content"] == [{"type": "text", "text": "sse"}]
    assert "bridging this 2026-07-28 client down to it" in relay.stderr()
    assert "the server speaks only the 2025 protocol" not in relay.stderr()  # nothing refused


async def test_protocol_modern_refuses_to_bridge_down_and_says_how_to_allow_it(
    mcp1: Legacy, tmp_path: Path
) -> None:
    async with raw_relay([mcp1.url, "--protocol", "modern"], tmp_path) as relay:
        await relay.send(modern_request(1, "server/discover"))
        refused = await read_answer(relay, 1)
    assert refused["error"]["code"] == -32001
    assert "does not speak MCP 2026-07-28" in refused["error"]["message"]
    assert "Remove --protocol modern" in refused["error"]["message"]


# --- helpers -----------------------------------------------------------------------------------


def modern_request(
    request_id: int | str, method: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta = {
        VERSION_KEY: MODERN,
        CAPABILITIES_KEY: {},
        CLIENT_INFO_KEY: {"name": "raw-bridge-down", "version": "1"},
    }
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**(params or {}), "_meta": meta},
    }


def retry_of(
    original: dict[str, Any], request_id: int, state: str, responses: dict[str, Any]
) -> dict[str, Any]:
    params = {**original["params"], "requestState": state, "inputResponses": responses}
    return {**original, "id": request_id, "params": params}


def cancelled(request_id: int, reason: str = "done") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": request_id, "reason": reason},
    }


async def read_until(
    relay: RawRelay, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    while not done(lines):
        lines.append(await relay.read_message(timeout=READ_TIMEOUT))
    return lines


async def read_answer(relay: RawRelay, request_id: int | str) -> dict[str, Any]:
    lines = await read_until(
        relay,
        lambda seen: bool(seen) and seen[-1].get("id") == request_id and "method" not in seen[-1],
    )
    return lines[-1]
