"""Staying connected: server restarts, killed calls, expired sessions and resumed streams.

For every scenario: each request is answered exactly once within bounded time, the session works
afterwards, stderr carries no traceback and says in one line what happened.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
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


@pytest.mark.parametrize(
    "how",
    [
        "stdin EOF",
        pytest.param(
            "SIGTERM",
            marks=pytest.mark.skipif(sys.platform == "win32", reason="no SIGTERM on Windows"),
        ),
    ],
)
async def test_ending_during_recovery_answers_and_exits_0(how: str, tmp_path: Path) -> None:
    port = free_port()
    async with sdk_server("--transport", "streamable-http", port=port) as server:
        url = server.mcp_url
        async with raw_relay([url, "--max-retries", "0"], tmp_path) as relay:
            await relay.initialize()
            await stop_process(server.process)
            # The server is gone: this request waits for it, retrying for ever.
            await relay.request(1, "tools/call", {"name": "echo", "arguments": {"text": "x"}})
            await relay.wait_for_stderr("refused the connection")
            if how == "SIGTERM":
                relay.process.send_signal(signal.SIGTERM)
            else:
                await relay.close_stdin()
            answer = await relay.read_message(timeout=10)
            assert answer["id"] == 1
            assert answer["error"]["code"] == -32006
            assert await relay.read_until_eof(timeout=10) == b""
            with trio.fail_after(10):
                assert await relay.process.wait() == 0
    clean(relay.stderr())


async def test_a_client_that_stops_reading_loses_nothing(tmp_path: Path) -> None:
    count, size = 24, 2 * 1024 * 1024
    async with (
        sdk_server("--transport", "streamable-http") as server,
        raw_relay([server.mcp_url], tmp_path) as relay,
    ):
        await relay.initialize()
        for n in range(count):
            await relay.request(n + 1, "tools/call", {"name": "big", "arguments": {"size": size}})
        # Not reading: the relay must hold back (its stdout pipe is full) without failing.
        with trio.move_on_after(3):
            await relay.process.wait()
        assert relay.process.returncode is None
        answers = [await relay.read_message(timeout=60) for _ in range(count)]
        peak = relay.peak_memory_mb()
    assert sorted(a["id"] for a in answers) == list(range(1, count + 1))
    assert all(len(a["result"]["content"][0]["text"]) == size for a in answers)
    # Bounded: the answers in flight (48 MiB of text), not a runaway buffer.
    assert peak < 400, f"peak resident memory {peak:.0f} MiB"


@pytest.mark.parametrize("answers", ["json", "sse"])
async def test_a_100mb_result_arrives_whole(answers: str, tmp_path: Path) -> None:
    size = 100 * 1024 * 1024
    flags = ["--json-response"] if answers == "json" else []
    async with (
        sdk_server("--transport", "streamable-http", *flags) as server,
        raw_relay([server.mcp_url], tmp_path) as relay,
    ):
        await relay.initialize()
        await relay.request(1, "tools/call", {"name": "big", "arguments": {"size": size}})
        line = await relay.read_line(timeout=90)
        peak = relay.peak_memory_mb()
    assert line.startswith(b'{"')
    answer = json.loads(line)
    assert len(answer["result"]["content"][0]["text"]) == size
    print(f"100 MB result ({answers} answer): relay peak resident memory {peak:.0f} MiB")
