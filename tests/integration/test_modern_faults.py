"""The fault rows for 2026-07-28 servers: the relay, the project's fault proxy, the SDK's peer.

    client ──stdio── mcp-remote-py ──HTTP── FaultProxy ──TCP── tests/peers/sdk_server.py

The peer serves both eras (``dual``) or 2026-07-28 alone (``--modern-only``), with
``--record-requests`` (what each request carried and how its exchange ended, at ``GET /_seen``)
and its ``/_faults`` control (503 with ``Retry-After``). The proxy resets connections (RST),
cuts a response after N bytes, cuts idle connections and refuses connects; restarts are the
peer's own: stopped, then started again on the same port.

The client is the SDK's ``Client`` over stdio, launching the relay as a desktop app would, in
``mode="2026-07-28"`` (pass-through) and ``mode="legacy"`` against ``--modern-only`` (the bridge
up); raw lines where the exact JSON-RPC line matters (one answer per id, the code of an error,
the subscription id of a notification, no second acknowledgement).

What is asserted, row by row (DESIGN.md invariants 2-4 and § Protocol eras): with no session,
a restarted server is invisible; a request that may have run gets one -32003 error and is not
sent again; a side-effect-free one is re-issued under a new id and answered in full; the relay
keeps ``subscriptions/listen`` open across cuts under the client's subscription id with no second
acknowledgement; a 503 storm is waited out; a server down at start gets an error within
``--startup-timeout``, not a hang. Waits are events, or the peer's log polled under a deadline.
"""

from __future__ import annotations

import json
import os
import socket
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

from ..faults.proxy import FaultProxy
from .conftest import RunningServer
from .harness import REPO, RawRelay, raw_relay, relay_command, sdk_server, stop_process
from .test_modern_clients import (
    MODERN,
    SUBSCRIPTION_KEY,
    calls_of,
    modern_request,
    read_until_answer,
    text_of,
    with_client,
)

pytestmark = pytest.mark.timeout(60)

DUAL_FLAGS = ("--transport", "streamable-http", "--record-requests", "--header-tools")
MODERN_ONLY_FLAGS = (*DUAL_FLAGS, "--modern-only")
PEERS = {"dual": DUAL_FLAGS, "modern-only": MODERN_ONLY_FLAGS}
STATE_DIR_ENV = "MCP_REMOTE_PY_STATE_DIR"  # the relay's era cache: one per test
RELAY_ARGS = ("--log-level", "debug")
READ_TIMEOUT = 20.0
CONNECTION_LOST = -32003
ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
LIST_CHANGED = "notifications/tools/list_changed"
SLOW = {"name": "slow", "arguments": {"seconds": 30, "steps": 30}}


# --- the peers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dual_peer() -> Iterator[RunningServer]:
    server = RunningServer("dual-era", DUAL_FLAGS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def modern_peer() -> Iterator[RunningServer]:
    server = RunningServer("modern-only", MODERN_ONLY_FLAGS)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """This test's client name: the peer's request log is filtered by it."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


@asynccontextmanager
async def proxy_to(base: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", port_of(base)) as proxy:
        yield proxy


async def seen(base: str, client: str | None = None) -> list[dict[str, Any]]:
    """What the peer at ``base`` recorded (only the requests whose ``_meta`` named ``client``)."""
    query = {"client": client} if client is not None else {}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{base}/_seen", params=query)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


async def wait_seen(
    base: str,
    client: str,
    done: Callable[[list[dict[str, Any]]], bool],
    what: str,
    stderr: Callable[[], str] = lambda: "",
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """Poll the peer's request log until ``done`` holds (a deadline, not a timer)."""
    entries: list[dict[str, Any]] = []
    with trio.move_on_after(timeout):
        while not done(entries := await seen(base, client)):  # noqa: ASYNC110
            await trio.sleep(0.05)  # the log is on the server: poll it, under a deadline
        return entries
    pytest.fail(
        f"{what} within {timeout} s; the server saw: {json.dumps(entries, indent=1)}"
        f"\nrelay stderr:\n{stderr()}"
    )


async def arm_faults(base: str, faults: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{base}/_faults", json=faults)
    response.raise_for_status()
    report: dict[str, Any] = response.json()
    return report


def listens_open(entries: list[dict[str, Any]], count: int) -> bool:
    """``count`` listen POSTs so far, the last one answered 200 and still open.

    The peer's listen handler subscribes before it sends the acknowledgement, and the response
    head goes out with that first event: status 200 means the stream now gets notifications.
    """
    listens = calls_of(entries, "subscriptions/listen")
    return len(listens) == count and listens[-1]["status"] == 200 and listens[-1]["state"] == "open"


def relay_env(tmp_path: Path) -> dict[str, str]:
    return {STATE_DIR_ENV: str(tmp_path / "state")}


def clean(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


# --- the SDK's Client through the relay ------------------------------------------------------


@dataclass
class Relayed:
    """What the client's message handler saw, and the relay's stderr."""

    stderr_path: Path
    messages: list[Any] = field(default_factory=list)
    tools_changed: trio.Event = field(default_factory=trio.Event)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def changes(self) -> int:
        return sum(isinstance(m, types.ToolListChangedNotification) for m in self.messages)


@asynccontextmanager
async def sdk_client(
    url: str, tmp_path: Path, name: str, mode: str, *relay_args: str
) -> AsyncIterator[tuple[Client, Relayed]]:
    """The SDK's ``Client`` (``mode``) launching the relay over stdio, like a desktop app."""
    relayed = Relayed(tmp_path / "relay-stderr.txt")

    async def on_message(message: Any) -> None:
        relayed.messages.append(message)
        if isinstance(message, types.ToolListChangedNotification):
            relayed.tools_changed.set()

    command = relay_command()
    params = StdioServerParameters(
        command=command[0],
        args=[
            *command[1:],
            url,
            "--log-file",
            str(tmp_path / "relay.log"),
            *RELAY_ARGS,
            *relay_args,
        ],
        env={**os.environ, **relay_env(tmp_path)},
        cwd=str(REPO),
    )
    with relayed.stderr_path.open("w", encoding="utf-8") as errlog:
        client = Client(
            stdio_client(params, errlog=errlog),
            mode=mode,
            client_info=types.Implementation(name=name, version="1.0"),
            read_timeout_seconds=READ_TIMEOUT,
            message_handler=on_message,
            cache=None,  # every request reaches the relay
        )
        async with client:
            yield client, relayed
    clean(relayed.stderr())


@asynccontextmanager
async def relay_lines(url: str, tmp_path: Path, *args: str) -> AsyncIterator[RawRelay]:
    async with raw_relay([url, *RELAY_ARGS, *args], tmp_path, env=relay_env(tmp_path)) as relay:
        yield relay


def answers_in(lines: list[dict[str, Any]], request_id: Any) -> list[dict[str, Any]]:
    return [m for m in lines if m.get("id") == request_id and "method" not in m]


# --- 1. a restart between calls --------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PEERS))
async def test_server_restarted_between_calls_is_invisible_to_a_modern_client(
    kind: str, tmp_path: Path, name: str
) -> None:
    port = free_port()
    async with (
        sdk_server(*PEERS[kind], port=port) as first,
        proxy_to(first.base) as proxy,
        sdk_client(proxy.url("/mcp"), tmp_path, name, MODERN) as (client, relayed),
    ):
        assert text_of(await client.call_tool("echo", {"text": "before"})) == "before"
        await stop_process(first.process)
        async with sdk_server(*PEERS[kind], port=port) as second:
            # No session to re-establish: the next call just works.
            assert text_of(await client.call_tool("echo", {"text": "after"})) == "after"
            after = await seen(second.base, name)
    echoes = [e for e in calls_of(after, "tools/call", "echo") if e["status"] is not None]
    assert [(e["params"]["arguments"]["text"], e["status"]) for e in echoes] == [("after", 200)]
    assert not any(isinstance(m, Exception) for m in relayed.messages), relayed.messages


# --- 2. a non-idempotent call cut mid-way ----------------------------------------------------


@pytest.mark.parametrize("fault", ["reset", "restart"])
async def test_slow_call_cut_mid_way_gets_one_may_or_may_not_error_and_is_not_rerun(
    fault: str, tmp_path: Path, name: str
) -> None:
    port = free_port()
    slow = with_client(modern_request(1, "tools/call", SLOW), name)
    slow["params"]["_meta"]["progressToken"] = "slow-1"
    echo = with_client(
        modern_request(2, "tools/call", {"name": "echo", "arguments": {"text": "after"}}), name
    )
    async with (
        sdk_server(*DUAL_FLAGS, port=port) as first,
        proxy_to(first.base) as proxy,
        relay_lines(proxy.url("/mcp"), tmp_path) as relay,
    ):
        await relay.send(slow)
        progress = await relay.read_message(timeout=READ_TIMEOUT)
        assert progress.get("method") == "notifications/progress", progress  # it is running
        ran = calls_of(await seen(first.base, name), "tools/call", "slow")
        assert len(ran) == 1, ran
        if fault == "reset":
            proxy.reset_all()
            lines = await read_until_answer(relay, 1)
            await relay.send(echo)
            lines += await read_until_answer(relay, 2)
            later = await seen(first.base, name)
        else:
            await stop_process(first.process)
            lines = await read_until_answer(relay, 1)
            async with sdk_server(*DUAL_FLAGS, port=port) as second:
                await relay.send(echo)
                lines += await read_until_answer(relay, 2)
                later = ran + await seen(second.base, name)
    (answer,) = answers_in(lines, 1)  # exactly one answer
    assert answer.get("error", {}).get("code") == CONNECTION_LOST, (answer, relay.stderr())
    assert "may or may not" in answer["error"]["message"], answer
    assert answers_in(lines, 2)[0]["result"]["content"] == [{"type": "text", "text": "after"}]
    slow_posts = calls_of(later, "tools/call", "slow")
    assert [e["rpc_id"] for e in slow_posts] == [1], slow_posts  # one POST: not run twice
    clean(relay.stderr())


# --- 3. a side-effect-free answer cut mid-way ------------------------------------------------


@pytest.mark.parametrize("method", ["tools/list", "resources/read"])
async def test_side_effect_free_answer_cut_mid_way_is_reissued_and_answered_in_full(
    method: str, dual_peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with (
        proxy_to(dual_peer.base) as proxy,
        sdk_client(proxy.url("/mcp"), tmp_path, name, MODERN) as (client, relayed),
    ):

        async def ask() -> Any:
            if method == "tools/list":
                return await client.list_tools()
            return await client.read_resource("text://hello")

        cut_after = 700 if method == "tools/list" else 40  # bytes of the answer's body
        proxy.reset_after(cut_after)
        cut = await ask()
        assert proxy.resets == 1, relayed.stderr()
        whole = await ask()  # the same request, no fault
    assert cut == whole
    if method == "tools/list":
        assert {"echo", "slow", "route"} <= {tool.name for tool in cut.tools}
    else:
        content = cut.contents[0]
        assert isinstance(content, types.TextResourceContents)
        assert content.text == "hello world"
    posts = calls_of(await seen(dual_peer.base, name), method)
    assert len(posts) == 3, posts  # the cut one, its re-issue, the one without a fault
    cut_post, reissued = posts[0], posts[1]
    assert cut_post["rpc_id"] != reissued["rpc_id"], posts
    assert (reissued["status"], reissued["state"]) == (200, "complete"), reissued
    assert cut_post["status"] == 200, cut_post  # the server had answered: the proxy cut it


# --- 4, 5, 7. the subscriptions/listen stream cut --------------------------------------------


async def listen_cut_keeps_the_subscription(
    peer: RunningServer, tmp_path: Path, name: str, cut: Callable[[FaultProxy], Any]
) -> None:
    """Rows 4 and 5: a modern client's listen, cut by ``cut``; the relay reopens it."""
    listen = with_client(
        modern_request(7, "subscriptions/listen", {"notifications": {"toolsListChanged": True}}),
        name,
    )
    notify = with_client(
        modern_request(8, "tools/call", {"name": "notify_tools_changed", "arguments": {}}), name
    )
    echo = with_client(
        modern_request(9, "tools/call", {"name": "echo", "arguments": {"text": "x"}}), name
    )
    async with proxy_to(peer.base) as proxy, relay_lines(proxy.url("/mcp"), tmp_path) as relay:
        await relay.send(listen)
        ack = await relay.read_message(timeout=READ_TIMEOUT)
        assert ack.get("method") == ACKNOWLEDGED, ack
        assert ack["params"]["_meta"][SUBSCRIPTION_KEY] == 7
        await wait_seen(peer.base, name, lambda es: listens_open(es, 1), "no listen stream")
        await cut(proxy)
        await wait_seen(
            peer.base,
            name,
            lambda es: listens_open(es, 2),
            "the relay did not reopen the listen stream",
            relay.stderr,
            timeout=15,
        )
        await relay.send(notify)
        lines = await read_until_answer(relay, 8)
        if not any(m.get("method") == LIST_CHANGED for m in lines):
            lines.append(await relay.read_message(timeout=10))  # the listen stream may trail
        await relay.send(echo)
        lines += await read_until_answer(relay, 9)
    changed = [m for m in lines if m.get("method") == LIST_CHANGED]
    assert [m["params"]["_meta"][SUBSCRIPTION_KEY] for m in changed] == [7], (
        lines,
        relay.stderr(),
    )
    assert not [m for m in lines if m.get("method") == ACKNOWLEDGED], lines  # no second ack
    assert not answers_in(lines, 7), lines  # the subscription never ended, as the client sees it
    listens = calls_of(await seen(peer.base, name), "subscriptions/listen")
    assert listens[0]["rpc_id"] == 7, listens
    assert listens[1]["rpc_id"] != 7, listens  # reopened under an id of the relay's
    clean(relay.stderr())


async def _reset(proxy: FaultProxy) -> None:
    assert proxy.reset_all() >= 1
    await trio.lowlevel.checkpoint()


async def _idle_cut(proxy: FaultProxy) -> None:
    proxy.idle_timeout(1.0)  # trio's clock: real time here, the relay is a subprocess
    with trio.fail_after(10):
        await proxy.wait_until(lambda: proxy.idle_cuts >= 1)
    proxy.idle_timeout(None)


@pytest.mark.parametrize("kind", list(PEERS))
async def test_listen_stream_reset_is_reopened_under_the_clients_subscription_id(
    kind: str,
    dual_peer: RunningServer,
    modern_peer: RunningServer,
    tmp_path: Path,
    name: str,
) -> None:
    peer = dual_peer if kind == "dual" else modern_peer
    await listen_cut_keeps_the_subscription(peer, tmp_path, name, _reset)


async def test_listen_stream_reset_still_reaches_the_sdk_clients_subscription(
    dual_peer: RunningServer, tmp_path: Path, name: str
) -> None:
    """Row 4 with the SDK's own listen, which matches events to its subscription by id."""
    async with (
        proxy_to(dual_peer.base) as proxy,
        sdk_client(proxy.url("/mcp"), tmp_path, name, MODERN) as (client, relayed),
        client.listen(tools_list_changed=True) as subscription,
    ):
        assert subscription.honored.tools_list_changed
        await wait_seen(dual_peer.base, name, lambda es: listens_open(es, 1), "no listen stream")
        await _reset(proxy)
        await wait_seen(
            dual_peer.base,
            name,
            lambda es: listens_open(es, 2),
            "the relay did not reopen the listen stream",
            relayed.stderr,
            timeout=15,
        )
        assert text_of(await client.call_tool("notify_tools_changed", {})) == "notified"
        with trio.fail_after(10):
            event = await subscription.__anext__()
        assert isinstance(event, ToolsListChanged), event


async def test_listen_stream_idle_cut_is_reopened_under_the_clients_subscription_id(
    dual_peer: RunningServer, tmp_path: Path, name: str
) -> None:
    await listen_cut_keeps_the_subscription(dual_peer, tmp_path, name, _idle_cut)


async def test_bridge_up_listen_stream_reset_still_delivers_list_changed(
    modern_peer: RunningServer, tmp_path: Path, name: str
) -> None:
    async with (
        proxy_to(modern_peer.base) as proxy,
        sdk_client(proxy.url("/mcp"), tmp_path, name, "legacy") as (client, relayed),
    ):
        assert client.protocol_version != MODERN  # the legacy handshake, answered by the bridge
        await wait_seen(
            modern_peer.base,
            name,
            lambda es: listens_open(es, 1),
            "the bridge opened no listen stream",
            relayed.stderr,
        )
        proxy.reset_all()
        await wait_seen(
            modern_peer.base,
            name,
            lambda es: listens_open(es, 2),
            "the bridge did not reopen its listen stream",
            relayed.stderr,
            timeout=15,
        )
        before = relayed.changes()
        relayed.tools_changed = trio.Event()
        assert text_of(await client.call_tool("notify_tools_changed", {})) == "notified"
        with trio.move_on_after(10):
            await relayed.tools_changed.wait()
        assert relayed.changes() == before + 1, (relayed.messages, relayed.stderr())


# --- 6. a 503 storm --------------------------------------------------------------------------


async def test_503_storm_with_retry_after_is_waited_out_and_each_request_answered_once(
    dual_peer: RunningServer, tmp_path: Path, name: str
) -> None:
    def call(request_id: int, text: str) -> dict[str, Any]:
        params = {"name": "echo", "arguments": {"text": text}}
        return with_client(modern_request(request_id, "tools/call", params), name)

    storm = {
        2: call(2, "storm"),
        3: with_client(modern_request(3, "tools/list"), name),
        4: with_client(modern_request(4, "resources/read", {"uri": "text://hello"}), name),
    }
    async with proxy_to(dual_peer.base) as proxy, relay_lines(proxy.url("/mcp"), tmp_path) as relay:
        await relay.send(with_client(modern_request(0, "server/discover"), name))
        await relay.send(call(1, "calm"))
        lines = await read_until_answer(relay, 1)
        try:
            met = await arm_faults(dual_peer.base, {"status": 503, "count": 6, "retry_after": 1})
            for message in storm.values():
                await relay.send(message)
            with trio.fail_after(30):
                while not all(answers_in(lines, i) for i in storm):
                    lines.append(await relay.read_message(timeout=30))
            report = await arm_faults(dual_peer.base, {})
        finally:
            with trio.CancelScope(shield=True):
                await arm_faults(dual_peer.base, {})
        assert report["status"] - met["status"] == 6, report  # the storm blew: six 503s
        await relay.send(call(5, "after"))
        lines += await read_until_answer(relay, 5)
    for request_id in (0, 1, 2, 3, 4, 5):
        answers = answers_in(lines, request_id)
        assert len(answers) == 1, (request_id, lines)
        assert "result" in answers[0], (answers[0], relay.stderr())
    assert answers_in(lines, 2)[0]["result"]["content"] == [{"type": "text", "text": "storm"}]
    entries = await seen(dual_peer.base, name)
    storm_calls = [
        e
        for e in calls_of(entries, "tools/call", "echo")
        if e["params"]["arguments"]["text"] == "storm"
    ]
    statuses = [e["status"] for e in storm_calls]
    assert 503 in statuses, storm_calls  # it waited
    assert statuses.count(200) == 1, storm_calls  # then ran once
    clean(relay.stderr())


# --- 8. the server down at start -------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PEERS))
async def test_server_down_at_start_discover_gets_a_relay_error_within_the_startup_bound(
    kind: str,
    dual_peer: RunningServer,
    modern_peer: RunningServer,
    tmp_path: Path,
    name: str,
) -> None:
    peer = dual_peer if kind == "dual" else modern_peer
    startup = 3.0
    async with proxy_to(peer.base) as proxy:
        proxy.refuse(True)
        args = ("--startup-timeout", str(startup))
        async with relay_lines(proxy.url("/mcp"), tmp_path, *args) as relay:
            started = trio.current_time()
            await relay.send(with_client(modern_request(1, "server/discover"), name))
            lines: list[dict[str, Any]] = []
            with trio.move_on_after(startup + 10):
                lines = await read_until_answer(relay, 1)
            if not lines:
                pytest.fail(f"server/discover hung; relay stderr:\n{relay.stderr()}")
            waited = trio.current_time() - started
            proxy.refuse(False)
            await relay.send(with_client(modern_request(2, "tools/list"), name))
            lines += await read_until_answer(relay, 2)
    (error,) = answers_in(lines, 1)
    assert "error" in error, error
    assert -32099 <= error["error"]["code"] <= -32000, error
    assert "doctor" in error["error"]["message"], error  # what to do about it
    assert waited <= startup + 5, (waited, relay.stderr())
    (listing,) = answers_in(lines, 2)
    assert "echo" in {tool["name"] for tool in listing["result"]["tools"]}, listing
    clean(relay.stderr())
