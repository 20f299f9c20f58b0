"""Tests of the fault-injecting proxy itself, with httpx as the client.

Upstreams: the SDK test server as a subprocess (real time), or small trio responders in this
process that the test drives with events (those tests may use trio's autojump clock).
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any, cast

import httpx
import pytest
import trio
import trio.testing

from tests.integration.harness import sdk_server

from .proxy import Data, End, Event, FaultProxy, HeadEnd, ResponseFramer, Start

# -- an HTTP/1.1 responder in this process ---------------------------------------------------

Handler = Callable[[trio.SocketStream, bytes], Awaitable[None]]

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


class Upstream:
    """Reads requests (keep-alive) and lets ``handler(stream, request_head)`` write each answer.

    ``disconnects`` records how each connection ended: "eof" (FIN) or "reset" (RST).
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self.requests: list[bytes] = []
        self.disconnects: list[str] = []
        self.disconnected = trio.Event()
        self._request = trio.Event()

    async def wait_for_requests(self, n: int) -> None:
        while len(self.requests) < n:
            await self._request.wait()

    async def serve(
        self, *, task_status: trio.TaskStatus[Upstream] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        buffer = b""
        how = "eof"
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        while len(buffer) < int(value):
                            data = await stream.receive_some(65536)
                            if not data:
                                return
                            buffer += data
                        buffer = buffer[int(value) :]
                self.requests.append(head)
                self._request.set()
                self._request = trio.Event()
                await self.handler(stream, head)
        except trio.BrokenResourceError:
            how = "reset"
        finally:
            self.disconnects.append(how)
            self.disconnected.set()
            await stream.aclose()


async def wait_for_eof(stream: trio.SocketStream) -> None:
    """Park a handler until the peer closes; raises BrokenResourceError on a reset."""
    while await stream.receive_some(65536):
        pass


@asynccontextmanager
async def proxied(handler: Handler) -> AsyncIterator[tuple[Upstream, FaultProxy]]:
    async with trio.open_nursery() as nursery:
        upstream = await nursery.start(Upstream(handler).serve)
        async with FaultProxy("127.0.0.1", upstream.port) as proxy:
            yield upstream, proxy
        nursery.cancel_scope.cancel()


def raw_chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    """``response.aiter_raw()``, typed as the async generator it is (for ``aclosing``)."""
    return cast("AsyncGenerator[bytes, None]", response.aiter_raw())


async def drain(response: httpx.Response, into: bytearray) -> None:
    """Append the body's bytes as they come, until it ends or the read fails."""
    async for data in response.aiter_raw():
        into += data


def path_of(head: bytes) -> bytes:
    return head.split(b" ", 2)[1]


# -- the SDK server as upstream (real time) ---------------------------------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "fault-proxy-test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def sse_messages(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


@asynccontextmanager
async def sdk_proxy(*flags: str) -> AsyncIterator[FaultProxy]:
    async with sdk_server("--transport", "streamable-http", *flags) as server:
        port = int(server.base.rsplit(":", 1)[1])
        async with FaultProxy("127.0.0.1", port) as proxy:
            yield proxy


async def initialize(client: httpx.AsyncClient, proxy: FaultProxy) -> dict[str, str]:
    response = await client.post(proxy.url("/mcp"), json=INITIALIZE, headers=MCP_HEADERS)
    assert response.status_code == 200
    (message,) = sse_messages(response.text)
    assert message["result"]["serverInfo"]["name"] == "sdk-peer"
    session = {
        **MCP_HEADERS,
        "mcp-session-id": response.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-06-18",
    }
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = await client.post(proxy.url("/mcp"), json=initialized, headers=session)
    assert response.status_code == 202
    return session


@pytest.mark.parametrize("buffering", [False, True], ids=["streaming", "buffered"])
async def test_mcp_initialize_passes_through(buffering: bool) -> None:
    async with sdk_proxy() as proxy:
        proxy.buffer_responses(buffering)
        async with httpx.AsyncClient() as client:
            session = await initialize(client, proxy)
            call = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "hi"}},
            }
            response = await client.post(proxy.url("/mcp"), json=call, headers=session)
        assert sse_messages(response.text)[-1]["result"]["content"][0]["text"] == "hi"
        # Three responses (SSE, empty 202, SSE) in sequence on one keep-alive connection.
        assert proxy.accepted == 1
        assert proxy.bytes_up > 0
        assert proxy.bytes_down > 0
        await proxy.wait_until(lambda: proxy.open_connections == 0)


async def test_reset_after_breaks_an_sdk_sse_stream_mid_way() -> None:
    async with sdk_proxy() as proxy, httpx.AsyncClient() as client:
        session = await initialize(client, proxy)
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "slow",
                "arguments": {"seconds": 0.1, "steps": 2},
                "_meta": {"progressToken": "p"},
            },
        }
        proxy.reset_after(40, head_contains=b"text/event-stream")
        received = bytearray()
        async with client.stream("POST", proxy.url("/mcp"), json=call, headers=session) as r:
            assert r.status_code == 200
            with pytest.raises(httpx.ReadError):
                await drain(r, received)
        assert 0 < len(received) < 40  # chunk framing counts among the 40 body bytes
        assert received.startswith(b"event: message")
        assert proxy.resets == 1
        assert not proxy.reset_pending
        # The fault is spent: the same session carries on over a new connection.
        call["id"] = 3
        response = await client.post(proxy.url("/mcp"), json=call, headers=session)
        assert sse_messages(response.text)[-1]["result"]["content"][0]["text"] == "done"
        assert proxy.accepted == 2


# -- pass-through of plain TCP ----------------------------------------------------------------


async def test_raw_bytes_and_half_close_pass_through() -> None:
    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some(65536):
                await stream.send_all(data.upper())

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, echo, 0)
        port = listeners[0].socket.getsockname()[1]
        async with FaultProxy("127.0.0.1", port) as proxy:
            stream = await trio.open_tcp_stream("127.0.0.1", proxy.port)
            async with stream:
                await stream.send_all(b"hello, ")
                await stream.send_all(b"world")
                await stream.send_eof()
                received = b""
                while data := await stream.receive_some(65536):
                    received += data
            assert received == b"HELLO, WORLD"
            await proxy.wait_until(lambda: proxy.open_connections == 0)
            assert (proxy.accepted, proxy.bytes_up, proxy.bytes_down) == (1, 12, 12)
        nursery.cancel_scope.cancel()


# -- reset ------------------------------------------------------------------------------------


async def test_reset_all_mid_stream_raises_read_error_and_resets_upstream() -> None:
    async def sse(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(SSE_HEAD + chunk(b"data: one\n\n"))
        await wait_for_eof(stream)

    async with proxied(sse) as (upstream, proxy), httpx.AsyncClient() as client:
        async with (
            client.stream("GET", proxy.url("/sse")) as response,
            aclosing(raw_chunks(response)) as events,
        ):
            assert await events.__anext__() == b"data: one\n\n"
            assert proxy.reset_all() == 1
            with pytest.raises(httpx.ReadError):
                await events.__anext__()
        await upstream.disconnected.wait()
        assert upstream.disconnects == ["reset"]
        assert proxy.resets == 1
        await proxy.wait_until(lambda: proxy.open_connections == 0)


async def test_reset_after_cuts_the_next_long_enough_response() -> None:
    async def answer(stream: trio.SocketStream, head: bytes) -> None:
        if path_of(head) == b"/empty":
            await stream.send_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            await stream.send_all(ok(b"x" * 100))

    async with proxied(answer) as (upstream, proxy), httpx.AsyncClient() as client:
        proxy.reset_after(10)
        # A response that ends before 10 body bytes passes the fault on to the next one.
        assert (await client.get(proxy.url("/empty"))).status_code == 204
        assert proxy.reset_pending
        received = bytearray()
        async with client.stream("GET", proxy.url("/big")) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadError):
                await drain(response, received)
        assert received == b"x" * 10
        assert (proxy.resets, proxy.reset_pending) == (1, False)
        # Spent: the next response is whole.
        assert (await client.get(proxy.url("/big"))).content == b"x" * 100
        await upstream.disconnected.wait()
        assert upstream.disconnects[0] == "reset"


async def test_reset_after_zero_cuts_right_after_the_head() -> None:
    async def answer(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(ok(b"body"))

    async with proxied(answer) as (_, proxy), httpx.AsyncClient() as client:
        proxy.reset_after(0)
        async with client.stream("GET", proxy.url("/")) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadError):
                await response.aread()


# -- stall ------------------------------------------------------------------------------------


async def test_stall_holds_bytes_both_ways_until_unstall() -> None:
    answer_now = trio.Event()
    answered = trio.Event()

    async def answer(stream: trio.SocketStream, head: bytes) -> None:
        await answer_now.wait()
        await stream.send_all(ok(b"pong"))
        answered.set()

    async with proxied(answer) as (upstream, proxy), httpx.AsyncClient() as client:
        got: list[httpx.Response] = []
        done = trio.Event()

        async def fetch() -> None:
            got.append(await client.get(proxy.url("/ping")))
            done.set()

        proxy.stall()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch)
            await proxy.wait_for_connections(1)
            await trio.testing.wait_all_tasks_blocked()
            # Connected, but the request is held in the proxy.
            assert (proxy.open_connections, proxy.bytes_up, upstream.requests) == (1, 0, [])
            proxy.unstall()
            await upstream.wait_for_requests(1)

            proxy.stall()
            answer_now.set()
            await answered.wait()
            await trio.testing.wait_all_tasks_blocked()
            # The answer left the upstream but is held in the proxy.
            assert proxy.bytes_down == 0
            assert not done.is_set()
            proxy.unstall()
            await done.wait()
        assert got[0].content == b"pong"
        assert proxy.open_connections == 1  # stalling closed nothing


# -- buffering --------------------------------------------------------------------------------


@pytest.mark.parametrize("buffering", [False, True], ids=["streaming", "buffered"])
async def test_buffering_holds_an_sse_response_until_it_ends(buffering: bool) -> None:
    first_sent = trio.Event()
    finish = trio.Event()

    async def sse(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(SSE_HEAD + chunk(b"data: one\n\n"))
        first_sent.set()
        await finish.wait()
        await stream.send_all(chunk(b"data: two\n\n") + LAST_CHUNK)

    async with proxied(sse) as (_, proxy), httpx.AsyncClient() as client:
        proxy.buffer_responses(buffering)
        finished_before_first_byte: list[bool] = []
        head_arrived = trio.Event()
        body = b""
        done = trio.Event()

        async def read() -> None:
            nonlocal body
            async with client.stream("GET", proxy.url("/sse")) as response:
                finished_before_first_byte.append(finish.is_set())
                head_arrived.set()
                async for data in response.aiter_raw():
                    body += data
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await first_sent.wait()
            if buffering:
                await trio.testing.wait_all_tasks_blocked()
                assert proxy.bytes_down == 0
            else:
                await head_arrived.wait()
            finish.set()
            await done.wait()
        assert finished_before_first_byte == [buffering]
        assert body == b"data: one\n\ndata: two\n\n"


async def test_buffering_keeps_keepalive_responses_apart() -> None:
    bodies = {
        b"/length": ok(b"0123456789"),
        b"/chunked": (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
            + chunk(b"abc")
            + chunk(b"defgh")
            + b"0\r\nX-Sum: 8\r\n\r\n"
        ),
        b"/none": b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
        b"/interim": b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(b"late"),
    }
    answered = trio.Event()

    async def answer(stream: trio.SocketStream, head: bytes) -> None:
        wire = bodies[path_of(head)]
        # Dribble the answer so the proxy sees it in many small reads.
        for i in range(0, len(wire), 7):
            await stream.send_all(wire[i : i + 7])
            await trio.testing.wait_all_tasks_blocked()
        answered.set()

    async with proxied(answer) as (_, proxy), httpx.AsyncClient() as client:
        proxy.buffer_responses(True)
        for _ in range(2):
            assert (await client.get(proxy.url("/length"))).content == b"0123456789"
            assert (await client.get(proxy.url("/chunked"))).content == b"abcdefgh"
            assert (await client.get(proxy.url("/none"))).status_code == 204
            assert (await client.get(proxy.url("/interim"))).content == b"late"
        assert proxy.accepted == 1


async def test_turning_buffering_off_releases_what_is_held() -> None:
    finish = trio.Event()

    async def sse(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(SSE_HEAD + chunk(b"data: one\n\n"))
        await finish.wait()
        await stream.send_all(LAST_CHUNK)

    async with proxied(sse) as (upstream, proxy), httpx.AsyncClient() as client:
        proxy.buffer_responses(True)
        head_seen = trio.Event()

        async def unbuffer_when_sent() -> None:
            await upstream.wait_for_requests(1)
            await trio.testing.wait_all_tasks_blocked()
            assert not head_seen.is_set()
            proxy.buffer_responses(False)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(unbuffer_when_sent)
            async with client.stream("GET", proxy.url("/sse")) as response:
                head_seen.set()
                # The first event arrives while the response is still open upstream.
                async for data in response.aiter_raw():
                    assert data == b"data: one\n\n"
                    finish.set()
        assert finish.is_set()


# -- idle timeout (virtual time) --------------------------------------------------------------


async def test_idle_timeout_cuts_after_60_virtual_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def sse(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(SSE_HEAD + chunk(b": open\n\n"))
        await wait_for_eof(stream)

    async with proxied(sse) as (upstream, proxy), httpx.AsyncClient(timeout=None) as client:
        proxy.idle_timeout(60)
        async with (
            client.stream("GET", proxy.url("/sse")) as response,
            aclosing(raw_chunks(response)) as events,
        ):
            await events.__anext__()
            last_byte = trio.current_time()
            with pytest.raises(httpx.RemoteProtocolError):  # closed mid-body (FIN)
                await events.__anext__()
            assert trio.current_time() - last_byte == pytest.approx(60)
        await upstream.disconnected.wait()
        assert upstream.disconnects == ["eof"]
        assert proxy.idle_cuts == 1


async def test_idle_timeout_counts_from_the_last_byte(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def sse(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(SSE_HEAD)
        for _ in range(3):  # a server's keep-alive comments, every 30 s
            await trio.sleep(30)
            await stream.send_all(chunk(b": ping\n\n"))
        await wait_for_eof(stream)

    async with proxied(sse) as (_, proxy), httpx.AsyncClient(timeout=None) as client:
        proxy.idle_timeout(60)
        start = trio.current_time()
        async with client.stream("GET", proxy.url("/sse")) as response:
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()
        assert trio.current_time() - start == pytest.approx(90 + 60)
        assert proxy.idle_cuts == 1


# -- refuse -----------------------------------------------------------------------------------


async def test_refuse_then_listen_again_on_the_same_port() -> None:
    async def answer(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(ok(b"hi"))

    async with proxied(answer) as (_, proxy), httpx.AsyncClient() as kept:
        port = proxy.port
        assert (await kept.get(proxy.url("/"))).content == b"hi"
        proxy.refuse(True)
        assert proxy.refusing
        async with httpx.AsyncClient() as fresh:
            with pytest.raises(httpx.ConnectError):
                await fresh.get(proxy.url("/"))
        # The open keep-alive connection is untouched.
        assert (await kept.get(proxy.url("/"))).content == b"hi"
        assert proxy.accepted == 1
        proxy.refuse(False)
        assert (proxy.port, proxy.refusing) == (port, False)
        async with httpx.AsyncClient() as fresh:
            assert (await fresh.get(proxy.url("/"))).content == b"hi"
        assert proxy.accepted == 2


# -- delay (virtual time) ---------------------------------------------------------------------


async def test_delay_adds_latency_to_each_chunk(autojump_clock: trio.testing.MockClock) -> None:
    async def answer(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(ok(b"hi"))

    async with proxied(answer) as (_, proxy), httpx.AsyncClient(timeout=None) as client:
        proxy.delay(5)
        start = trio.current_time()
        assert (await client.get(proxy.url("/"))).content == b"hi"
        # One chunk each way: the request, then the response.
        assert 10 <= trio.current_time() - start < 15
        proxy.delay(0)
        start = trio.current_time()
        assert (await client.get(proxy.url("/"))).content == b"hi"
        assert trio.current_time() == start


# -- counters, failures, shutdown --------------------------------------------------------------


async def test_counters_and_waiting_for_connections() -> None:
    async def answer(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(ok(b"abc"))

    async with proxied(answer) as (_, proxy):
        async with httpx.AsyncClient() as one, httpx.AsyncClient() as two:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(one.get, proxy.url("/"))
                nursery.start_soon(two.get, proxy.url("/"))
                await proxy.wait_for_connections(2)
            assert (proxy.accepted, proxy.open_connections) == (2, 2)
            request_bytes = proxy.bytes_up
            assert request_bytes > 0
            assert proxy.bytes_down == 2 * len(ok(b"abc"))
        await proxy.wait_until(lambda: proxy.open_connections == 0)
        assert proxy.bytes_up == request_bytes


async def test_unreachable_upstream_resets_the_client() -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    async with FaultProxy("127.0.0.1", dead_port) as proxy, httpx.AsyncClient() as client:
        with pytest.raises((httpx.ReadError, httpx.WriteError)):
            await client.get(proxy.url("/"))
        await proxy.wait_until(lambda: proxy.open_connections == 0)
        assert (proxy.accepted, proxy.upstream_failures) == (1, 1)


async def test_cancelling_serve_closes_every_socket() -> None:
    async def sse(stream: trio.SocketStream, head: bytes) -> None:
        await stream.send_all(SSE_HEAD + chunk(b"data: one\n\n"))
        await wait_for_eof(stream)

    async with trio.open_nursery() as nursery:
        upstream = await nursery.start(Upstream(sse).serve)
        proxy = FaultProxy("127.0.0.1", upstream.port)
        proxy_scope = trio.CancelScope()
        stopped = trio.Event()

        async def run_proxy(
            *, task_status: trio.TaskStatus[FaultProxy] = trio.TASK_STATUS_IGNORED
        ) -> None:
            with proxy_scope:
                await proxy.serve(task_status=task_status)
            stopped.set()

        await nursery.start(run_proxy)
        url = proxy.url("/sse")
        async with httpx.AsyncClient() as client:
            async with (
                client.stream("GET", url) as response,
                aclosing(raw_chunks(response)) as events,
            ):
                await events.__anext__()
                proxy_scope.cancel()
                await stopped.wait()
                assert proxy.open_connections == 0
                with pytest.raises(httpx.RemoteProtocolError):
                    await events.__anext__()
            await upstream.disconnected.wait()
            assert upstream.disconnects == ["eof"]
            with pytest.raises(httpx.ConnectError):
                await client.get(url)
        nursery.cancel_scope.cancel()


async def test_the_body_exception_leaves_async_with_unchanged() -> None:
    with pytest.raises(KeyError):
        async with FaultProxy("127.0.0.1", 9):
            raise KeyError("from the body")


# -- response framing -------------------------------------------------------------------------


def replay(wire: bytes, step: int) -> list[Event]:
    """Feed ``wire`` in pieces of ``step`` bytes; merge adjacent Data of the same kind."""
    framer = ResponseFramer()
    events: list[Event] = []
    for i in range(0, len(wire), step):
        events += framer.feed(wire[i : i + step])
    events += framer.eof()
    merged: list[Event] = []
    for event in events:
        if (
            isinstance(event, Data)
            and merged
            and isinstance(merged[-1], Data)
            and merged[-1].kind == event.kind
        ):
            merged[-1] = Data(merged[-1].data + event.data, event.kind)
        else:
            merged.append(event)
    return merged


@pytest.mark.parametrize("step", [1, 2, 3, 5, 1000])
def test_framer_splits_responses_whatever_the_reads(step: int) -> None:
    head1 = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
    head2 = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
    body2 = b"4;ext=1\r\nabcd\r\n0\r\nX-T: 1\r\n\r\n"
    head3 = b"HTTP/1.1 100 Continue\r\n\r\n"
    head4 = b"HTTP/1.0 200 OK\r\n\r\n"
    wire = head1 + b"xyz" + head2 + body2 + head3 + head4 + b"until close"
    assert replay(wire, step) == [
        Start(),
        Data(head1, "head"),
        HeadEnd(head1),
        Data(b"xyz", "body"),
        End(),
        Start(),
        Data(head2, "head"),
        HeadEnd(head2),
        Data(body2, "body"),
        End(),
        Start(),
        Data(head3, "head"),
        HeadEnd(head3),
        End(),
        Start(),
        Data(head4, "head"),
        HeadEnd(head4),
        Data(b"until close", "body"),
        End(),
    ]


def test_framer_turns_raw_on_anything_else() -> None:
    assert replay(b"SSH-2.0-x\r\n", 4) == [Start(), End(), Data(b"SSH-2.0-x\r\n", "raw")]
    bad_size = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert replay(bad_size + b"zz\r\nmore", 1000)[-2:] == [
        End(),
        Data(b"more", "raw"),
    ]
