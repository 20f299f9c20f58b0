"""The SDK's client → mcp-remote-py → the SDK's server, in every server mode.

Each test names the behaviour a desktop client relies on. Where a server mode itself cannot do
something (stateless servers have no channel for server-initiated requests; JSON-answer servers
drop progress notifications), the test says so and skips, rather than pretending.
"""

from __future__ import annotations

import json
from pathlib import Path

import mcp.types as types
import pytest
import trio
from mcp.shared.exceptions import MCPError

from .conftest import RunningServer
from .harness import relay_session

pytestmark = pytest.mark.timeout(120)


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


async def test_initialize_reports_the_servers_identity(
    server: RunningServer, tmp_path: Path
) -> None:
    async with relay_session(server.url, tmp_path, initialize=False) as (session, side):
        result = await session.initialize()
        assert result.server_info.name == "sdk-peer"
        assert result.server_info.version == "1.2.3"
        assert result.protocol_version == "2025-11-25"
        assert result.instructions == "Test peer for mcp-remote-py."
    no_traceback(side.stderr())


async def test_tools_list_and_call(server: RunningServer, tmp_path: Path) -> None:
    async with relay_session(server.url, tmp_path) as (session, side):
        tools = await session.list_tools()
        names = {tool.name for tool in tools.tools}
        assert {"echo", "add", "slow", "big", "sample", "elicit", "roots"} <= names
        assert text_of(await session.call_tool("echo", {"text": "héllo\nworld"})) == "héllo\nworld"
        added = await session.call_tool("add", {"a": 2, "b": 3})
        assert added.structured_content == {"result": 5}
    no_traceback(side.stderr())


async def test_the_httpx_transport_escape_hatch_works(
    server: RunningServer, tmp_path: Path
) -> None:
    # The hidden --httpx-transport sends through httpx's own transport (httpcore, h11) instead of
    # http1.py: the way back if the built-in HTTP/1.1 ever trips over a server. It must not rot.
    async with relay_session(server.url, tmp_path, "--httpx-transport") as (session, side):
        assert text_of(await session.call_tool("echo", {"text": "via httpcore"})) == "via httpcore"
        big = await session.call_tool("big", {"size": 200_000})
        assert len(text_of(big)) == 200_000
    no_traceback(side.stderr())


async def test_prompts_and_resources(server: RunningServer, tmp_path: Path) -> None:
    async with relay_session(server.url, tmp_path) as (session, _):
        prompts = await session.list_prompts()
        assert [p.name for p in prompts.prompts] == ["greet"]
        prompt = await session.get_prompt("greet", {"name": "Ada"})
        content = prompt.messages[0].content
        assert isinstance(content, types.TextContent)
        assert "Ada" in content.text
        resources = await session.list_resources()
        assert [str(r.uri) for r in resources.resources] == ["text://hello"]
        hello = await session.read_resource("text://hello")
        assert isinstance(hello.contents[0], types.TextResourceContents)
        assert hello.contents[0].text == "hello world"
        item = await session.read_resource("text://item/7")
        assert isinstance(item.contents[0], types.TextResourceContents)
        assert item.contents[0].text == "item 7"
        templates = await session.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == ["text://item/{id}"]


async def test_progress_and_logging_notifications_reach_the_client(
    server: RunningServer, tmp_path: Path
) -> None:
    if server.mode == "streamable-json":
        pytest.skip("a server answering with JSON bodies has no stream to send progress on")
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with relay_session(server.url, tmp_path) as (session, side):
        result = await session.call_tool(
            "slow", {"seconds": 0.3, "steps": 3}, progress_callback=on_progress
        )
        assert text_of(result) == "done"
        assert [p[0] for p in seen] == [1, 2, 3]
        assert text_of(await session.call_tool("log", {"message": "hello log"})) == "logged"
        assert any(entry.data == "hello log" for entry in side.logs)


async def test_server_requests_are_answered_by_the_client(
    server: RunningServer, tmp_path: Path
) -> None:
    if server.mode == "stateless":
        pytest.skip("a stateless server has no channel for server-initiated requests")
    async with relay_session(server.url, tmp_path) as (session, side):
        assert text_of(await session.call_tool("sample", {"prompt": "6 x 7?"})) == "42"
        assert side.sampled, "the sampling request did not reach the client"
        assert text_of(await session.call_tool("elicit", {"question": "colour?"})) == "blue"
        assert text_of(await session.call_tool("roots", {})) == "file:///work/project"
    no_traceback(side.stderr())


async def test_list_changed_notification_reaches_the_client(
    server: RunningServer, tmp_path: Path
) -> None:
    related = server.mode == "stateless"  # no GET stream there: send it on the call's stream
    async with relay_session(server.url, tmp_path) as (session, side):
        await session.call_tool("notify_tools_changed", {"related": related})
        with trio.fail_after(10):
            await side.tools_changed.wait()


async def test_a_5mb_result_arrives_whole(server: RunningServer, tmp_path: Path) -> None:
    size = 5 * 1024 * 1024
    async with relay_session(server.url, tmp_path) as (session, _):
        result = await session.call_tool("big", {"size": size})
        text = text_of(result)
        assert len(text) == size
        assert set(text) == {"x"}


async def test_50_concurrent_calls_each_get_their_own_answer(
    server: RunningServer, tmp_path: Path
) -> None:
    answers: dict[int, str] = {}
    async with relay_session(server.url, tmp_path) as (session, side):

        async def call(n: int) -> None:
            answers[n] = text_of(await session.call_tool("echo", {"text": f"call {n}"}))

        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(call, n)
    assert answers == {n: f"call {n}" for n in range(50)}
    no_traceback(side.stderr())


async def test_a_slow_call_does_not_hold_up_a_fast_one(
    server: RunningServer, tmp_path: Path
) -> None:
    order: list[str] = []
    slow_running = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        slow_running.set()

    async with relay_session(server.url, tmp_path) as (session, _):

        async def slow() -> None:
            await session.call_tool(
                "slow", {"seconds": 4, "steps": 4}, progress_callback=on_progress
            )
            order.append("slow")

        async def fast() -> None:
            await session.call_tool("echo", {"text": "fast"})
            order.append("fast")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            if server.mode != "streamable-json":  # progress needs a stream to travel on
                await slow_running.wait()  # the slow call is running on the server
            nursery.start_soon(fast)
    assert order == ["fast", "slow"]


async def test_custom_headers_reach_the_server(server: RunningServer, tmp_path: Path) -> None:
    secret = "s3cret-token-value"
    header_file = tmp_path / "headers.txt"
    header_file.write_text("# from a file\nX-From-File: yes\n")
    args = [
        "--header",
        "Authorization: Bearer ${TEST_TOKEN}",
        "--header",
        "X-Tenant:acme",
        "--header-file",
        str(header_file),
        "--debug",
    ]
    async with relay_session(server.url, tmp_path, *args, env={"TEST_TOKEN": secret}) as (
        session,
        side,
    ):
        seen = json.loads(text_of(await session.call_tool("headers", {})))
    seen = {k.lower(): v for k, v in seen.items()}
    assert seen["authorization"] == f"Bearer {secret}"
    assert seen["x-tenant"] == "acme"
    assert seen["x-from-file"] == "yes"
    assert seen["accept-encoding"] == "identity"
    # The token reached the server, and nowhere else: not stderr, not the log file.
    assert secret not in side.stderr()
    assert secret not in side.log_path.read_text()


async def test_ignored_tools_are_hidden_and_refused(server: RunningServer, tmp_path: Path) -> None:
    async with relay_session(
        server.url, tmp_path, "--ignore-tool", "ECHO", "--ignore-tool", "s*"
    ) as (
        session,
        _,
    ):
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert "echo" not in names
        assert not any(name.startswith("s") for name in names)
        assert "add" in names
        with pytest.raises(MCPError, match="disabled by --ignore-tool"):
            await session.call_tool("echo", {"text": "x"})


async def test_ipv4_only_still_connects(server: RunningServer, tmp_path: Path) -> None:
    url = server.url.replace("127.0.0.1", "localhost")
    async with relay_session(url, tmp_path, "--ipv4") as (session, _):
        assert text_of(await session.call_tool("echo", {"text": "v4"})) == "v4"
