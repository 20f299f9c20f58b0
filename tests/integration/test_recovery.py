"""Staying connected: server restarts, killed calls, expired sessions and resumed streams.

For every scenario: each request is answered exactly once within bounded time, the session works
afterwards, stderr carries no traceback and says in one line what happened.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import mcp.types as types
import pytest
import trio
from mcp.shared.exceptions import MCPError

from .harness import raw_relay, relay_session, sdk_server, stop_process

pytestmark = pytest.mark.timeout(120)

TRANSPORTS = {
    "streamable": ("--transport", "streamable-http"),
    "legacy-sse": ("--transport", "sse"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def clean(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


async def session_id_of(session) -> str:  # type: ignore[no-untyped-def]
    seen = json.loads(text_of(await session.call_tool("headers", {})))
    return str({k.lower(): v for k, v in seen.items()}["mcp-session-id"])


@pytest.mark.parametrize("kind", list(TRANSPORTS))
async def test_server_restart_between_calls_is_invisible(kind: str, tmp_path: Path) -> None:
    port = free_port()
    flags = TRANSPORTS[kind]
    async with sdk_server(*flags, port=port) as first:
        url = first.url()
        async with relay_session(url, tmp_path) as (session, side):
            assert text_of(await session.call_tool("echo", {"text": "before"})) == "before"
            await stop_process(first.process)
            side.tools_changed = trio.Event()
            async with sdk_server(*flags, port=port):
                # The client just calls again: the relay re-initializes on its own.
                assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"
                with trio.fail_after(10):
                    await side.tools_changed.wait()  # told to list tools again
                tools = await session.list_tools()
                assert "echo" in {tool.name for tool in tools.tools}
    stderr = side.stderr()
    clean(stderr)
    assert "session re-established in" in stderr


@pytest.mark.parametrize("kind", list(TRANSPORTS))
async def test_a_call_in_flight_when_the_server_dies_gets_one_error(
    kind: str, tmp_path: Path
) -> None:
    port = free_port()
    flags = TRANSPORTS[kind]
    started = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with (
        sdk_server(*flags, port=port) as first,
        relay_session(first.url(), tmp_path) as (session, side),
    ):
        outcome: list[BaseException | types.CallToolResult] = []

        async def long_call() -> None:
            try:
                outcome.append(
                    await session.call_tool(
                        "slow", {"seconds": 60, "steps": 60}, progress_callback=on_progress
                    )
                )
            except MCPError as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_call)
            with trio.fail_after(20):
                await started.wait()  # the call is running on the server
            await stop_process(first.process)
        assert len(outcome) == 1
        error = outcome[0]
        assert isinstance(error, MCPError)
        assert error.error.code == -32003
        assert "may or may not have carried it out" in error.error.message
        async with sdk_server(*flags, port=port):
            assert text_of(await session.call_tool("echo", {"text": "again"})) == "again"
    clean(side.stderr())


async def test_expired_session_is_reinitialized_and_the_call_retried(tmp_path: Path) -> None:
    async with (
        sdk_server("--transport", "streamable-http") as server,
        relay_session(server.mcp_url, tmp_path) as (session, side),
    ):
        old = await session_id_of(session)
        # The server ends the session behind the relay's back (as an expiry would).
        async with httpx.AsyncClient() as client:
            response = await client.delete(
                server.mcp_url,
                headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": "2025-11-25"},
            )
            assert response.status_code == 200
        assert text_of(await session.call_tool("echo", {"text": "still here"})) == "still here"
        assert await session_id_of(session) != old
    stderr = side.stderr()
    clean(stderr)
    assert "session re-established" in stderr


async def test_log_level_and_subscriptions_are_replayed(tmp_path: Path) -> None:
    port = free_port()
    async with (
        sdk_server("--transport", "streamable-http", port=port) as first,
        raw_relay([first.mcp_url], tmp_path) as relay,
    ):
        await relay.initialize()
        await relay.request(1, "logging/setLevel", {"level": "debug"})
        assert (await relay.read_message())["id"] == 1
        await stop_process(first.process)
        async with sdk_server("--transport", "streamable-http", port=port):
            await relay.request(2, "tools/call", {"name": "log", "arguments": {"message": "m"}})
            seen: list[dict[str, object]] = []
            while not any(m.get("id") == 2 for m in seen):
                seen.append(await relay.read_message())
    methods = [m.get("method") for m in seen]
    assert "notifications/tools/list_changed" in methods
    answers = [m for m in seen if "id" in m]
    assert [m["id"] for m in answers] == [2]  # the replayed requests' answers were swallowed
    log_text = (tmp_path / "raw-relay.log").read_text()
    assert "session re-established" in log_text


async def test_resumes_a_stream_the_server_closed_with_retry(tmp_path: Path) -> None:
    flags = ("--transport", "streamable-http", "--event-store", "--retry-interval", "200")
    async with (
        sdk_server(*flags) as server,
        relay_session(server.mcp_url, tmp_path) as (session, side),
    ):
        result = await session.call_tool("interrupt_stream", {"seconds": 0.5})
        assert text_of(result) == "resumed"
        assert text_of(await session.call_tool("echo", {"text": "after"})) == "after"
    clean(side.stderr())


async def test_keepalive_notices_a_dropped_session_before_the_next_call(tmp_path: Path) -> None:
    async with (
        sdk_server("--transport", "streamable-http") as server,
        relay_session(server.mcp_url, tmp_path, "--keepalive", "1") as (session, side),
    ):
        old = await session_id_of(session)
        side.tools_changed = trio.Event()
        async with httpx.AsyncClient() as client:
            await client.delete(
                server.mcp_url,
                headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": "2025-11-25"},
            )
        # No call from the client: the idle ping meets the 404 and the relay re-establishes
        # the session, then tells the client to list its tools again.
        with trio.fail_after(15):
            await side.tools_changed.wait()
        assert await session_id_of(session) != old
    clean(side.stderr())
