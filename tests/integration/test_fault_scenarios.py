"""The fault suite: the relay and a real server with the project's fault proxy between them.

Every scenario checks that each request is answered exactly once, within bounded time, that the
session works afterwards, and that stderr has no traceback. ``FAULT_SECONDS`` (default 3) sets
how long outages last; the closing notes quote runs with ``FAULT_SECONDS=20``.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from ..faults.proxy import FaultProxy
from .harness import RawRelay, Server, raw_relay, sdk_server

pytestmark = pytest.mark.timeout(180)

FAULT_SECONDS = float(os.environ.get("FAULT_SECONDS", "3"))
TRANSPORTS = {
    "streamable": ("--transport", "streamable-http"),
    "legacy-sse": ("--transport", "sse"),
}


@asynccontextmanager
async def behind_proxy(*flags: str) -> AsyncIterator[tuple[Server, FaultProxy, str]]:
    async with sdk_server(*flags) as server:
        port = int(server.base.rsplit(":", 1)[1])
        async with FaultProxy("127.0.0.1", port) as proxy:
            path = "/sse" if "sse" in flags else "/mcp"
            yield server, proxy, proxy.url(path)


async def call(relay: RawRelay, request_id: int, tool: str, **arguments: Any) -> dict[str, Any]:
    await relay.request(request_id, "tools/call", {"name": tool, "arguments": arguments})
    return await answer_to(relay, request_id)


async def answer_to(relay: RawRelay, request_id: int, timeout: float = 60) -> dict[str, Any]:
    """The answer to ``request_id``; fails if a second answer with that id follows it."""
    while True:
        message = await relay.read_message(timeout=timeout)
        if message.get("id") == request_id:
            return message


async def settle(relay: RawRelay, proxy: FaultProxy) -> None:
    """Initialize, make one call, and wait until the GET stream's answer has passed the proxy
    (initialize, the 202 for initialized, the GET stream and the call: four response heads),
    so that a fault armed next meets the response it is meant for."""
    await relay.initialize()
    assert echoed(await call(relay, 100, "echo", text="settle")) == "settle"
    with trio.fail_after(10):
        await proxy.wait_until(lambda: proxy.response_heads >= 4)


def echoed(answer: dict[str, Any]) -> str:
    assert "result" in answer, answer
    text: str = answer["result"]["content"][0]["text"]
    return text


def recovery_seconds(stderr: str) -> float | None:
    found = re.findall(r"re-established in ([0-9.]+) s", stderr)
    return float(found[-1]) if found else None


def clean(relay: RawRelay) -> None:
    assert "Traceback" not in relay.stderr(), relay.stderr()


@pytest.mark.parametrize("kind", list(TRANSPORTS))
async def test_refused_at_start(kind: str, tmp_path: Path) -> None:
    async with behind_proxy(*TRANSPORTS[kind]) as (_, proxy, url):
        proxy.refuse(True)
        async with raw_relay([url], tmp_path) as relay:
            started = trio.current_time()
            await relay.request(0, "initialize", INITIALIZE)
            await relay.wait_for_stderr("refused the connection")
            await trio.sleep(FAULT_SECONDS)  # the outage itself, not a synchronisation
            proxy.refuse(False)
            answer = await answer_to(relay, 0)
            assert answer["result"]["serverInfo"]["name"] == "sdk-peer"
            assert trio.current_time() - started < FAULT_SECONDS + 20
            await relay.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            assert echoed(await call(relay, 1, "echo", text="up")) == "up"
        clean(relay)


@pytest.mark.parametrize("kind", list(TRANSPORTS))
async def test_refused_mid_session(kind: str, tmp_path: Path) -> None:
    async with behind_proxy(*TRANSPORTS[kind]) as (_, proxy, url):
        async with raw_relay([url], tmp_path) as relay:
            await relay.initialize()
            assert echoed(await call(relay, 1, "echo", text="before")) == "before"
            proxy.refuse(True)
            proxy.reset_all()
            await relay.request(2, "tools/call", {"name": "echo", "arguments": {"text": "during"}})
            await relay.wait_for_stderr("refused the connection")
            await trio.sleep(FAULT_SECONDS)  # the outage itself
            proxy.refuse(False)
            assert echoed(await answer_to(relay, 2)) == "during"
            assert echoed(await call(relay, 3, "echo", text="after")) == "after"
        clean(relay)
        print(f"{kind}: recovered in {recovery_seconds(relay.stderr())} s")


async def test_a_new_cause_during_an_outage_is_told(tmp_path: Path) -> None:
    """Retries of one cause are one stderr line; a different cause is a new line, so stderr
    says what is wrong now. The race test_refused_mid_session can meet (a reset connection,
    then refused ones), made certain: refused tries, then a port that hangs up on every
    connection."""
    probe = trio.socket.socket()
    await probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on the port now: connecting is refused
    async with raw_relay(
        [f"http://127.0.0.1:{port}/mcp", "--protocol", "legacy"], tmp_path
    ) as relay:
        await relay.request(0, "initialize", INITIALIZE)
        await relay.wait_for_stderr("refused the connection")
        await trio.sleep(FAULT_SECONDS)  # the outage itself: a few refused tries

        async def hang_up(stream: trio.SocketStream) -> None:
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            await nursery.start(partial(trio.serve_tcp, hang_up, port, host="127.0.0.1"))
            await relay.wait_for_stderr("broke before the server answered")
            nursery.cancel_scope.cancel()
        said = relay.stderr()
        assert said.count("refused the connection") == 1, said  # three tries or more, one line
        assert "initialize (id 0) failed" not in said, said  # initialize is tried again
    clean(relay)


async def test_stream_reset_without_event_ids_is_an_error_not_a_resend(tmp_path: Path) -> None:
    async with behind_proxy("--transport", "streamable-http") as (_, proxy, url):
        async with raw_relay([url], tmp_path) as relay:
            await settle(relay, proxy)
            proxy.reset_after(300, head_contains=b"text/event-stream")
            await relay.start_slow_call(1, seconds=5, steps=10)
            answer = await answer_to(relay, 1)
            assert answer["error"]["code"] == -32003
            assert "may or may not have carried it out" in answer["error"]["message"]
            assert echoed(await call(relay, 2, "echo", text="after")) == "after"
        clean(relay)


async def test_stream_reset_with_event_ids_is_resumed(tmp_path: Path) -> None:
    flags = ("--transport", "streamable-http", "--event-store")
    async with behind_proxy(*flags) as (_, proxy, url):
        async with raw_relay([url], tmp_path) as relay:
            await settle(relay, proxy)
            proxy.reset_after(300, head_contains=b"text/event-stream")
            await relay.start_slow_call(1, seconds=2, steps=8)
            answer = await answer_to(relay, 1)
            assert echoed(answer) == "done"
            assert proxy.resets == 1
            assert echoed(await call(relay, 2, "echo", text="after")) == "after"
        clean(relay)


async def test_legacy_stream_reset_fails_in_flight_and_recovers(tmp_path: Path) -> None:
    async with behind_proxy("--transport", "sse") as (_, proxy, url):
        async with raw_relay([url], tmp_path) as relay:
            await relay.initialize()
            await relay.start_slow_call(1, seconds=30, steps=30)
            progress = await relay.read_message()
            assert progress["method"] == "notifications/progress"
            proxy.reset_all()
            answer = await answer_to(relay, 1)
            assert answer["error"]["code"] == -32003
            assert echoed(await call(relay, 2, "echo", text="after")) == "after"
        clean(relay)


async def test_idle_cut_get_stream_is_ridden_out(tmp_path: Path) -> None:
    """nginx's proxy_read_timeout cuts a quiet GET stream; server notifications keep coming."""
    flags = ("--transport", "streamable-http", "--event-store")
    async with behind_proxy(*flags) as (_, proxy, url):
        async with raw_relay([url, "--keepalive", "0"], tmp_path) as relay:
            await settle(relay, proxy)
            proxy.idle_timeout(1.0)
            await proxy.wait_until(lambda: proxy.idle_cuts >= 1)
            proxy.idle_timeout(None)
            with trio.fail_after(10):  # the relay reopens the GET stream: a fifth response head
                await proxy.wait_until(lambda: proxy.response_heads >= 5)
            # A server notification on the standalone stream: reopened (and resumed from its
            # last event id, so nothing sent in the gap is lost).
            await relay.request(2, "tools/call", {"name": "notify_tools_changed", "arguments": {}})
            seen = [await relay.read_message(), await relay.read_message()]
            methods = {m.get("method") for m in seen}
            assert "notifications/tools/list_changed" in methods
            assert any(m.get("id") == 2 and "result" in m for m in seen)
        clean(relay)
        assert "WARNING" not in relay.stderr().upper().replace("WARNING: --INSECURE", "")


async def test_buffering_proxy_still_answers_streamable_calls(tmp_path: Path) -> None:
    async with behind_proxy("--transport", "streamable-http") as (_, proxy, url):
        proxy.buffer_responses(True)
        async with raw_relay([url], tmp_path) as relay:
            await relay.initialize()
            assert echoed(await call(relay, 1, "slow", seconds=0.5, steps=2)) == "done"
        clean(relay)


async def test_buffering_proxy_hiding_the_endpoint_is_named(tmp_path: Path) -> None:
    async with behind_proxy("--transport", "sse") as (_, proxy, url):
        proxy.buffer_responses(True)
        async with raw_relay([url, "--connect-timeout", "1"], tmp_path) as relay:
            error = (await relay.initialize())["error"]
    assert "no endpoint event" in error["message"]
    assert "proxy_buffering off" in error["message"]


async def test_stalled_path_is_bounded_by_request_timeout(tmp_path: Path) -> None:
    async with behind_proxy("--transport", "streamable-http") as (_, proxy, url):
        async with raw_relay([url, "--request-timeout", "2"], tmp_path) as relay:
            await relay.initialize()
            proxy.stall()
            answer = await call(relay, 1, "echo", text="x")
            assert answer["error"]["code"] == -32005
            proxy.unstall()
            assert echoed(await call(relay, 2, "echo", text="y")) == "y"
        clean(relay)


INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "fault-test", "version": "1"},
}


async def test_idle_cut_legacy_stream_is_ridden_out(tmp_path: Path) -> None:
    """A legacy SSE session dies with its stream; the relay builds a new one, unasked."""
    async with behind_proxy("--transport", "sse") as (_, proxy, url):
        async with raw_relay([url, "--keepalive", "0"], tmp_path) as relay:
            await relay.initialize()
            assert echoed(await call(relay, 1, "echo", text="x")) == "x"
            proxy.idle_timeout(1.0)
            await proxy.wait_until(lambda: proxy.idle_cuts >= 1)
            proxy.idle_timeout(None)
            # Told to list again once the new session stands, then calls just work.
            changed = await relay.read_message(timeout=20)
            assert changed["method"] == "notifications/tools/list_changed"
            assert echoed(await call(relay, 2, "echo", text="y")) == "y"
        clean(relay)
        assert "session re-established" in relay.stderr()
