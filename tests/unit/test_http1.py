"""Http1Transport against real loopback servers that answer with scripted bytes.

Every server here is raw trio on 127.0.0.1: it reads each request off the socket and writes back
exactly the bytes the test gives it, so every corner of HTTP/1.1 framing is under the test's
control. Connections are counted on the server side, which is how reuse is checked; a server
connection's ``closed_by_client`` event is how a test sees that the transport dropped it.

The ``read_size`` fixture shrinks the transport's ``READ_SIZE`` (down to one byte), so that every
split of an answer across reads, at every position, is exercised deterministically. A few
tests look at the transport's pool (``_idle``) to wait for an event on an idle socket, or to check
what was kept.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import trio
import trustme

from mcp_remote_py.core.errors import ConnectionLost, UpstreamUnavailable
from mcp_remote_py.shell import http1
from mcp_remote_py.shell.http1 import Http1Transport
from mcp_remote_py.shell.net import (
    NetworkOptions,
    build_client,
    describe_network_error,
    http_error,
    send,
)

DEADLINE = 5.0  # for every test's server; none should come near it

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- the scripted server ---------------------------------------------------------------------


class Peer:
    """One connection the server accepted."""

    def __init__(self, server: Server, stream: trio.abc.Stream) -> None:
        self.server = server
        self.stream = stream
        self.requests: list[bytes] = []
        self.closed_by_client = trio.Event()
        self._buffer = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:  # reset: the client closed with bytes unread
            data = b""
        if not data:
            self.closed_by_client.set()
            return False
        self._buffer += data
        return True

    async def read_request(self) -> bytes | None:
        """One request (head and Content-Length body) as sent; None once the client closed."""
        while (end := self._buffer.find(b"\r\n\r\n")) == -1:
            if not await self._fill():
                assert not self._buffer, f"the client closed mid-request: {bytes(self._buffer)!r}"
                return None
        end += 4
        length = re.search(rb"(?im)^content-length: *(\d+)\r$", bytes(self._buffer[:end]))
        end += int(length.group(1)) if length else 0
        while len(self._buffer) < end:
            assert await self._fill(), "the client closed mid-body"
        request = bytes(self._buffer[:end])
        del self._buffer[:end]
        self.requests.append(request)
        self.server.requests.append(request)
        return request

    async def wait_closed(self) -> None:
        """Until the client closes this connection."""
        while await self._fill():
            pass

    async def send(self, *parts: bytes, bytewise: bool = False) -> None:
        for part in parts:
            if not bytewise:
                await self.stream.send_all(part)
                continue
            for i in range(len(part)):
                await self.stream.send_all(part[i : i + 1])


Handler = Callable[[Peer], Awaitable[None]]


class Server:
    def __init__(self, handler: Handler, scheme: str, host: str) -> None:
        self.handler = handler
        self.scheme = scheme
        self.host = host
        self.port = 0
        self.peers: list[Peer] = []
        self.requests: list[bytes] = []

    @property
    def connections(self) -> int:
        return len(self.peers)

    def url(self, path: str = "/mcp") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def _serve_one(self, stream: trio.abc.Stream) -> None:
        peer = Peer(self, stream)
        self.peers.append(peer)
        try:
            await self.handler(peer)
        except trio.BrokenResourceError:
            pass  # the client went away (or the TLS handshake failed): tests check what they need
        finally:
            await trio.aclose_forcefully(stream)


@asynccontextmanager
async def serving(
    handler: Handler,
    tls: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
    deadline: float = DEADLINE,
) -> AsyncIterator[Server]:
    server = Server(handler, "https" if tls else "http", host)
    with trio.fail_after(deadline):
        async with trio.open_nursery() as nursery:
            listeners: list[trio.abc.Listener[trio.abc.Stream]] = []
            for listener in await trio.open_tcp_listeners(0, host=host):
                server.port = listener.socket.getsockname()[1]
                listeners.append(
                    trio.SSLListener(listener, tls, https_compatible=True) if tls else listener
                )
            nursery.start_soon(trio.serve_listeners, server._serve_one, listeners)
            yield server
            nursery.cancel_scope.cancel()


def answers(*replies: bytes, bytewise: bool = False) -> Handler:
    """Answer each request, on whatever connection it comes, with the next reply; keep every
    connection open until the client closes it (so reuse is the client's decision alone)."""
    queue = list(replies)

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(queue.pop(0), bytewise=bytewise)

    return handler


def answer_then_close(*parts: bytes, wait: bool = False) -> Handler:
    """Read one request, write ``parts`` one by one, close (with ``wait``: keep the connection
    until the client closes it)."""

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        for part in parts:
            await peer.send(part)
            await trio.lowlevel.checkpoint()
        if wait:
            await peer.wait_closed()

    return handler


def answer_then_wait(*parts: bytes) -> Handler:
    return answer_then_close(*parts, wait=True)


# --- the client side -------------------------------------------------------------------------


def no_tls() -> ssl.SSLContext:
    raise AssertionError("a plain http request asked for a TLS context")


def client_for(
    ssl_context: Callable[[], ssl.SSLContext] = no_tls,
    socket_options: Iterable[tuple[int, int, int]] = (),
) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=Http1Transport(ssl_context, socket_options))


def transport_of(client: httpx.AsyncClient) -> Http1Transport:
    transport = client._transport
    assert isinstance(transport, Http1Transport)
    return transport


def idle_connections(client: httpx.AsyncClient) -> list[http1._Connection]:
    return [c for pool in transport_of(client)._idle.values() for c in pool]


async def idle_sockets_readable(client: httpx.AsyncClient) -> None:
    """Until every pooled connection's socket has something to read (say, the server's FIN):
    the event the transport's is_readable check must notice."""
    for connection in idle_connections(client):
        await trio.lowlevel.wait_readable(connection.socket)


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and its explicit causes (``raise … from``), through exception groups."""
    seen: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if current.__cause__ is not None:
            stack.append(current.__cause__)
        stack += list(getattr(current, "exceptions", ()))
    return seen


@pytest.fixture(params=[1, 2, 7, 65536], ids=lambda n: f"read{n}")
def read_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    size: int = request.param
    monkeypatch.setattr(http1, "READ_SIZE", size)
    return size


async def get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(url)


# --- Content-Length bodies ---------------------------------------------------------------------


async def test_content_length_body_in_the_same_write_as_the_head(read_size: int) -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world"
    async with serving(answers(first, OK)) as server, client_for() as client:
        response = await client.get(server.url())
        assert (response.status_code, response.content) == (200, b"hello world")
        assert response.headers["content-type"] == "text/plain"
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


@pytest.mark.parametrize("end", [b"\r\n\r\n", b"\n\n", b"\r\n\n", b"\n\r\n"])
async def test_every_way_a_head_may_end(end: bytes, read_size: int) -> None:
    first = b"HTTP/1.1 200 OK\r\nX-A: a\r\nContent-Length: 3" + end + b"\n\r\n"
    async with serving(answers(first, OK)) as server, client_for() as client:
        response = await client.get(server.url())
        assert (response.headers["x-a"], response.content) == ("a", b"\n\r\n")
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_content_length_body_split_across_many_writes() -> None:
    body = bytes(range(256)) * 4
    parts = [b"HTTP/1.1 200 OK\r\n", b"Content-Length: 1024\r\n", b"\r\n"]
    parts += [body[i : i + 100] for i in range(0, len(body), 100)]
    async with serving(answer_then_wait(*parts)) as server, client_for() as client:
        response = await client.get(server.url())
        assert response.content == body
        assert len(idle_connections(client)) == 1


async def test_head_and_body_byte_by_byte() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
    async with serving(answers(first, OK, bytewise=True)) as server, client_for() as client:
        response = await client.get(server.url())
        assert (response.content, response.headers["x-a"]) == (b"hello", "b")
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_extra_bytes_arriving_with_the_end_of_a_body() -> None:
    rest = trio.Event()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        if peer is server.peers[0]:
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
            await rest.wait()
            await peer.send(b"56789HTTP/1.1 200 OK\r\n")  # more than was asked
        else:
            await peer.send(OK)
        await peer.wait_closed()

    async with serving(handler) as server, client_for() as client:
        async with client.stream("GET", server.url()) as response:
            parts = response.aiter_raw()
            assert await parts.__anext__() == b"01234"
            rest.set()
            assert b"".join([part async for part in parts]) == b"56789"
        assert (await client.get(server.url())).content == b"ok"
        await server.peers[0].closed_by_client.wait()
    assert server.connections == 2


async def test_a_body_larger_than_a_read() -> None:
    body = bytes(range(256)) * 1000
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    async with serving(answers(head + body, OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == body
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_a_content_length_body_cut_short() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    async with serving(answer_then_close(head, b"abc")) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="received 3 bytes, expected 10"):
            await client.get(server.url())


# --- chunked bodies --------------------------------------------------------------------------

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


async def test_chunked_with_extensions_trailers_uppercase_hex_and_bare_lf(read_size: int) -> None:
    body = (
        b"5;name=value\r\nhello\r\n"  # a chunk extension
        b'B ; a=1;b="x;y"\r\n, uppercase\r\n'  # uppercase hex, whitespace, quoted extension
        b"1a\r\n" + b"z" * 26 + b"\r\n"  # lowercase hex
        b"1\n!\n"  # bare LF line ends
        b"0;last\r\nX-Trailer: t\r\nOther: o\r\n\r\n"  # trailers
    )
    async with serving(answers(CHUNKED_HEAD + body, OK)) as server, client_for() as client:
        response = await client.get(server.url())
        assert response.content == b"hello, uppercase" + b"z" * 26 + b"!"
        assert "x-trailer" not in response.headers
        # The trailers were read to the end: the next answer on the same connection is intact.
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_chunk_data_that_looks_like_framing(read_size: int) -> None:
    data = b"\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
    answer = CHUNKED_HEAD + b"%x\r\n%s\r\n1\r\n\n\r\n0\r\n\r\n" % (len(data), data)
    async with serving(answers(answer, OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == data + b"\n"
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_chunked_answer_with_bare_lf_everywhere(read_size: int) -> None:
    answer = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nhello\n0\nT: 1\n\n"
    async with serving(answers(answer, OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"hello"
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_chunk_size_line_split_across_writes(read_size: int) -> None:
    parts = [CHUNKED_HEAD + b"1", b"0\r", b"\n" + b"x" * 15, b"y\r", b"\n0\r", b"\n\r", b"\n"]
    async with serving(answer_then_wait(*parts)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"x" * 15 + b"y"
        assert len(idle_connections(client)) == 1


async def test_chunked_byte_by_byte() -> None:
    answer = CHUNKED_HEAD + b"3;x=y\r\nabc\r\n10\r\n" + b"d" * 16 + b"\r\n0\r\nT: 1\r\n\r\n"
    async with serving(answers(answer, OK, bytewise=True)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"abc" + b"d" * 16
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


@pytest.mark.parametrize(
    "body",
    [
        b"5\r\nhello0\r\n\r\n",  # no CRLF after the data, then the last chunk
        b"5\r\nhelloXY\r\n0\r\n\r\n",  # more data than the size said
        b"5\r\nhello6\r\n world\r\n0\r\n\r\n",
        b"5\r\nhello\r6\r\n world\r\n0\r\n\r\n",  # a lone CR is not a line end
    ],
)
async def test_a_chunk_without_its_crlf(body: bytes, read_size: int) -> None:
    async with serving(answer_then_wait(CHUNKED_HEAD + body)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()


@pytest.mark.parametrize(
    "size_line",
    [b"x", b"-5", b"0x5", b"", b"5 5", b"+5", b"1" * 17, b";ext", b"\xff", b"5\x00", b"tok3n"],
)
async def test_a_bad_chunk_size(size_line: bytes) -> None:
    answer = CHUNKED_HEAD + size_line + b"\r\nhello\r\n0\r\n\r\n"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="bad chunk-size line") as caught:
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()
    assert "tok3n" not in str(caught.value)  # body bytes are never quoted


async def test_a_chunk_size_line_without_end() -> None:
    answer = CHUNKED_HEAD + b"5;" + b"x" * 10000
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="8 KiB"):
            await client.get(server.url())


@pytest.mark.parametrize(
    "partial",
    [
        b"5",
        b"5\r\nhel",
        b"5\r\nhello",
        b"5\r\nhello\r",
        b"5\r\nhello\r\n",
        b"5\r\nhello\r\n0\r\n",  # no blank line after the last chunk
        b"5\r\nhello\r\n0\r\nTrailer: x\r\n",
    ],
)
async def test_closed_mid_chunked_body(partial: bytes, read_size: int) -> None:
    async with serving(answer_then_close(CHUNKED_HEAD + partial)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
            await client.get(server.url())


async def test_chunked_wins_over_content_length() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"hello"


# --- bodies until close, HTTP/1.0 --------------------------------------------------------------


async def test_body_until_close(read_size: int) -> None:
    body = b"no length, no chunks\r\n\r\n0\r\n\r\n: all of it"
    handler = answer_then_close(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", body)
    async with serving(handler) as server, client_for() as client:
        assert (await client.get(server.url())).content == body
        assert idle_connections(client) == []
        assert (await client.get(server.url())).content == body
    assert server.connections == 2


async def test_an_unknown_transfer_coding_reads_until_close() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, x-custom\r\n\r\n"
    async with serving(answer_then_close(head, b"5\r\nraw\r\n")) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"5\r\nraw\r\n"
        assert idle_connections(client) == []


async def test_http_1_0_answers_are_not_reused() -> None:
    first = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    async with serving(answers(first, OK)) as server, client_for() as client:
        response = await client.get(server.url())
        assert (response.content, response.http_version) == (b"hi", "HTTP/1.0")
        await server.peers[0].closed_by_client.wait()  # the server kept it open: the client closed
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_http_1_0_with_keep_alive_is_not_reused_either() -> None:
    # As h11: a 1.0 server's keep-alive is not trusted (issue 16, class 8).
    first = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi"
    async with serving(answers(first, OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"hi"
        await server.peers[0].closed_by_client.wait()
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_http_1_0_body_until_close() -> None:
    handler = answer_then_close(b"HTTP/1.0 200 OK\r\n\r\n", b"old ", b"school")
    async with serving(handler) as server, client_for() as client:
        response = await client.get(server.url())
        assert (response.content, response.http_version) == (b"old school", "HTTP/1.0")
        assert idle_connections(client) == []


# --- answers without a body, interim answers -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", 200), ("HEAD", 404), ("GET", 204), ("POST", 204), ("GET", 304)],
)
@pytest.mark.parametrize("framing", [b"Content-Length: 5", b"Transfer-Encoding: chunked"])
async def test_no_body_whatever_the_headers_say(method: str, status: int, framing: bytes) -> None:
    first = b"HTTP/1.1 %d Whatever\r\n%s\r\n\r\n" % (status, framing)
    async with serving(answers(first, OK)) as server, client_for() as client:
        response = await client.request(method, server.url())
        assert (response.status_code, response.content) == (status, b"")
        # Had the transport waited for 5 bytes (or a chunk), the next answer would be eaten.
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_interim_answers_are_skipped(read_size: int) -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Final: yes\r\n\r\ndone"
    )
    async with serving(answers(answer, OK)) as server, client_for() as client:
        response = await client.get(server.url())
        assert (response.status_code, response.reason_phrase, response.content) == (
            201,
            "Created",
            b"done",
        )
        assert "link" not in response.headers
        assert response.headers["x-final"] == "yes"
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


async def test_interim_answers_in_separate_writes() -> None:
    handler = answer_then_wait(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    async with serving(handler) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"ok"


async def test_switching_protocols_unasked_is_an_error() -> None:
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="101"):
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()


# --- keep-alive ------------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    async with serving(answers(OK, OK, OK)) as server, client_for() as client:
        for _ in range(3):
            assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1
    assert len(server.peers[0].requests) == 3


@pytest.mark.parametrize(
    "field",
    [b"Connection: close", b"connection: keep-alive, CLOSE", b"Connection: x\r\nConnection: close"],
)
async def test_connection_close_answer_is_not_reused(field: bytes) -> None:
    first = b"HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 2\r\n\r\nhi" % field
    async with serving(answers(first, OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"hi"
        await server.peers[0].closed_by_client.wait()
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_a_request_asking_to_close_is_not_reused() -> None:
    async with serving(answers(OK, OK)) as server, client_for() as client:
        await client.get(server.url(), headers={"Connection": "close"})
        await server.peers[0].closed_by_client.wait()
        await client.get(server.url())
    assert server.connections == 2


async def test_an_answer_closed_before_its_end_is_not_reused() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    async with serving(answers(head + b"0123456789", OK)) as server, client_for() as client:
        async with client.stream("GET", server.url()) as response:
            assert response.status_code == 200
        await server.peers[0].closed_by_client.wait()
        assert idle_connections(client) == []
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_an_answer_that_came_whole_with_its_head_frees_the_connection_at_once() -> None:
    # Its body is already in hand, so the connection goes back to the pool before the caller
    # reads it (a JSON answer to a call, usually): the next request reuses it meanwhile.
    first = b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"id": 1}\n'
    async with serving(answers(first, OK)) as server, client_for() as client:
        async with client.stream("GET", server.url()) as response:
            assert len(idle_connections(client)) == 1
            assert (await client.get(server.url())).content == b"ok"
            assert await response.aread() == b'{"id": 1}\n'
        assert len(idle_connections(client)) == 1
    assert server.connections == 1


async def test_a_reader_cancelled_mid_body_does_not_return_the_connection() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    async with serving(answers(head + b"first", OK)) as server, client_for() as client:
        parts: list[bytes] = []
        async with client.stream("GET", server.url()) as response:
            with trio.CancelScope() as scope:
                async for part in response.aiter_raw():
                    parts.append(part)
                    scope.cancel()  # the next read of the body is cancelled
            assert scope.cancelled_caught
        assert parts == [b"first"]
        await server.peers[0].closed_by_client.wait()
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_a_request_cancelled_while_waiting_for_the_answer() -> None:
    seen = trio.Event()

    async def handler(peer: Peer) -> None:
        await peer.read_request()
        if peer is server.peers[0]:
            seen.set()
            await peer.wait_closed()  # no answer: the client gives up
        else:
            await peer.send(OK)
            await peer.wait_closed()

    async with serving(handler) as server, client_for() as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(get, client, server.url())
            await seen.wait()
            nursery.cancel_scope.cancel()
        await server.peers[0].closed_by_client.wait()
        assert idle_connections(client) == []
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_a_server_closing_an_idle_connection() -> None:
    async with serving(answer_then_close(OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"ok"
        assert len(idle_connections(client)) == 1
        await idle_sockets_readable(client)  # the server's FIN has arrived
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_an_idle_connection_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1000.0
    monkeypatch.setattr(http1, "time", SimpleNamespace(monotonic=lambda: now))
    async with serving(answers(OK, OK, OK)) as server, client_for() as client:
        await client.get(server.url())
        now += http1.KEEPALIVE_EXPIRY - 0.1
        await client.get(server.url())
        assert server.connections == 1
        now += http1.KEEPALIVE_EXPIRY + 0.1
        await client.get(server.url())
        assert server.connections == 2
        await server.peers[0].closed_by_client.wait()


@pytest.mark.parametrize(
    "answer",
    [
        OK + b"HTTP/1.1 200 OK\r\n",
        CHUNKED_HEAD + b"2\r\nok\r\n0\r\n\r\nextra",
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\nextra",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\nok",  # a body it may not have
    ],
)
async def test_extra_bytes_after_an_answer_in_the_same_write(answer: bytes) -> None:
    async with serving(answers(answer, OK)) as server, client_for() as client:
        await client.get(server.url())
        await server.peers[0].closed_by_client.wait()
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_extra_bytes_after_an_answer_in_a_later_write() -> None:
    sent = trio.Event()

    async def handler(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(OK)
            if peer is server.peers[0]:
                await peer.send(b"unasked")
                sent.set()

    async with serving(handler) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"ok"
        await sent.wait()
        await idle_sockets_readable(client)
        assert (await client.get(server.url())).content == b"ok"
        await server.peers[0].closed_by_client.wait()
    assert server.connections == 2


async def test_202_with_empty_body_frees_the_connection_at_once() -> None:
    accepted = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    async with serving(answers(accepted, accepted, OK)) as server, client_for() as client:
        notification = client.build_request("POST", server.url(), content=b'{"jsonrpc":"2.0"}')
        first = await client.send(notification, stream=True)  # neither read nor closed yet
        assert len(idle_connections(client)) == 1
        second = await client.post(server.url(), content=b"{}")
        assert second.status_code == 202
        assert (await client.get(server.url())).content == b"ok"
        assert (first.status_code, await first.aread()) == (202, b"")
        await first.aclose()
    assert server.connections == 1


async def test_concurrent_requests_use_separate_connections() -> None:
    both = trio.Event()
    arrived = 0

    async def handler(peer: Peer) -> None:
        nonlocal arrived
        while await peer.read_request() is not None:
            arrived += 1
            if arrived == 2:
                both.set()
            await both.wait()  # neither is answered before the other arrived
            await peer.send(OK)

    async with serving(handler) as server, client_for() as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(get, client, server.url())
            nursery.start_soon(get, client, server.url())
        assert len(idle_connections(client)) == 2
        for _ in range(4):
            assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_at_most_max_idle_connections_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "MAX_IDLE", 1)
    both, one_closed = trio.Event(), trio.Event()
    arrived = 0

    async def handler(peer: Peer) -> None:
        nonlocal arrived
        while await peer.read_request() is not None:
            arrived += 1
            if arrived == 2:
                both.set()
            await both.wait()
            await peer.send(OK)
        one_closed.set()

    async with serving(handler) as server, client_for() as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(get, client, server.url())
            nursery.start_soon(get, client, server.url())
        assert len(idle_connections(client)) == 1
        await one_closed.wait()  # the one that did not fit in the pool
        assert (await client.get(server.url())).content == b"ok"  # the other one
    assert server.connections == 2


# --- errors ----------------------------------------------------------------------------------


async def test_a_refused_port() -> None:
    with socket.socket() as unused:  # bound, never listening: connecting is refused
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/mcp"
        async with client_for() as client:
            with pytest.raises(httpx.ConnectError) as caught:
                await client.get(url)
    assert any(isinstance(c, ConnectionRefusedError) for c in causes(caught.value))
    error = describe_network_error(caught.value, httpx.URL(url), NetworkOptions())
    assert isinstance(error, UpstreamUnavailable)
    assert error.kind == "refused"
    assert "refused" in str(error)


async def test_server_closes_without_answering() -> None:
    async with serving(answer_then_close()) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response") as caught:
            await client.get(server.url())
    error = describe_network_error(caught.value, httpx.URL(server.url()), NetworkOptions())
    assert isinstance(error, ConnectionLost)


async def test_a_post_lost_on_a_reused_connection_is_not_sent_again() -> None:
    # The server read the second POST and closed without answering: it may have run it, so the
    # transport reports the loss and never resends (RFC 9112 §9.3.1; DESIGN: nothing re-sent).
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(OK)
        await peer.read_request()

    async with serving(handler) as server, client_for() as client:
        assert (await client.post(server.url(), content=b"1")).content == b"ok"
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.post(server.url(), content=b"2")
    assert server.connections == 1
    assert [r.rpartition(b"\r\n\r\n")[2] for r in server.requests] == [b"1", b"2"]


async def test_server_closes_mid_head() -> None:
    handler = answer_then_close(b"HTTP/1.1 200 OK\r\nContent-Le")
    async with serving(handler) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="mid-answer"):
            await client.get(server.url())


@pytest.mark.parametrize(
    "status_line",
    [
        b"garbage",
        b"",
        b"HTTP/2 200 OK",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1",
        b"ICY 200 OK",
        b"SSH-2.0-OpenSSH_9.6",
        b"http/1.1 200 OK",
    ],
)
async def test_a_garbage_status_line(status_line: bytes) -> None:
    answer = status_line + b"\r\nContent-Length: 0\r\n\r\n"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="HTTP/1.x"):
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()


async def test_headers_that_never_end() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"f" * 100 + b"\r\n"
    endless = head + b"X-More: " + b"m" * 70000  # 70 KiB and still no blank line
    async with serving(answer_then_wait(endless)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="64 KiB"):
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()


async def test_headers_over_64_kib_even_when_they_end() -> None:
    fields = b"".join(b"X-Field-%d: %s\r\n" % (i, b"v" * 90) for i in range(2000))  # ~200 KiB
    answer = b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="64 KiB"):
            await client.get(server.url())


async def test_headers_under_64_kib_are_fine() -> None:
    fields = b"".join(b"X-Field-%d: %s\r\n" % (i, b"v" * 90) for i in range(600))  # ~60 KiB
    answer = b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        response = await client.get(server.url())
        assert (response.content, response.headers["x-field-599"]) == (b"ok", "v" * 90)


@pytest.mark.parametrize(
    "line",
    [b"NoColonHere", b" Leading: space", b"\tLeading: tab", b"Name : value", b"Name\t: v", b": v"],
)
async def test_a_bad_header_line(line: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="bad header line"):
            await client.get(server.url())


async def test_a_bad_header_line_is_named_without_its_value() -> None:
    answer = b"HTTP/1.1 200 OK\r\nSet-Cookie : session=s3cret\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await client.get(server.url())
    assert "Set-Cookie " in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        b"Content-Length: 2\r\nContent-Length: 3",
        b"Content-Length: 2, 3",
        b"Content-Length: -1",
        b"Content-Length: +2",
        b"Content-Length: abc",
        b"Content-Length: 0x2",
        b"Content-Length: ",
        b"Content-Length: 2 2",
    ],
)
async def test_a_bad_content_length(fields: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\nok"
    async with serving(answer_then_wait(answer)) as server, client_for() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="Content-Length"):
            await client.get(server.url())
        await server.peers[0].closed_by_client.wait()


@pytest.mark.parametrize(
    "fields",
    [b"Content-Length: 2\r\nContent-Length: 2", b"Content-Length: 2, 2", b"Content-Length:2 "],
)
async def test_repeated_equal_content_lengths_are_fine(fields: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\nok"
    async with serving(answers(answer, OK)) as server, client_for() as client:
        assert (await client.get(server.url())).content == b"ok"
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1


class SendSpy:
    """Records what each of the transport's sends raised."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.errors: list[BaseException | None] = []
        send = http1._Connection.send

        async def spy(connection: http1._Connection, data: bytes) -> None:
            try:
                await send(connection, data)
            except BaseException as exc:
                self.errors.append(exc)
                raise
            self.errors.append(None)

        monkeypatch.setattr(http1._Connection, "send", spy)


# More than loopback's socket buffers hold (net.ipv4.tcp_wmem + tcp_rmem: 4 + 32 MiB here).
HUGE = 64 * 1024 * 1024


def refuse_the_body(answer: bytes) -> Handler:
    """Read the request's head only, answer, close with the body unread (so: a reset)."""

    async def handler(peer: Peer) -> None:
        while b"\r\n\r\n" not in peer._buffer:
            assert await peer._fill()
        await peer.send(answer)

    return handler


async def test_an_answer_before_the_whole_request_was_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # nginx's 413 for a body over client_max_body_size: answered, then closed mid-upload.
    spy = SendSpy(monkeypatch)
    too_large = b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 9\r\n\r\ntoo large"
    async with serving(refuse_the_body(too_large)) as server, client_for() as client:
        response = await client.post(server.url(), content=b"x" * HUGE)
        assert (response.status_code, response.content) == (413, b"too large")
        assert idle_connections(client) == []  # the request was not all sent: never reused
    assert [type(e) for e in spy.errors] == [httpx.WriteError]
    error = await http_error(response)  # what the relay makes of it
    assert (error.status, error.excerpt) == (413, "too large")
    assert "client_max_body_size" in error.hint


async def test_a_server_closing_mid_upload_without_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spy = SendSpy(monkeypatch)
    async with serving(refuse_the_body(b"")) as server, client_for() as client:
        with pytest.raises(httpx.WriteError):
            await client.post(server.url(), content=b"x" * HUGE)
    assert [type(e) for e in spy.errors] == [httpx.WriteError]


async def test_read_timeout_waiting_for_the_answer() -> None:
    async with serving(answer_then_wait()) as server, client_for() as client:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await client.get(server.url(), timeout=httpx.Timeout(0.2))
        await server.peers[0].closed_by_client.wait()
    error = describe_network_error(caught.value, httpx.URL(server.url()), NetworkOptions())
    assert isinstance(error, ConnectionLost)


async def test_read_timeout_mid_body() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    async with serving(answer_then_wait(head + b"01234")) as server, client_for() as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url(), timeout=httpx.Timeout(0.2))
        await server.peers[0].closed_by_client.wait()


async def test_build_client_sets_no_read_timeout(autojump_clock: trio.abc.Clock) -> None:
    # Event streams are long: an answer an hour late is still waited for. (The clock is
    # trio's virtual one: the hour passes at once, and any read timeout would have fired.)
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await trio.sleep(3600)
        await peer.send(OK)

    async with serving(handler, deadline=7200) as server, build_client(NetworkOptions()) as c:
        assert (await c.get(server.url())).content == b"ok"


async def test_write_timeout() -> None:
    async def handler(peer: Peer) -> None:
        await trio.sleep_forever()  # never reads

    async with serving(handler) as server, client_for() as client:
        with pytest.raises(httpx.WriteTimeout):
            await client.post(server.url(), content=b"x" * HUGE, timeout=httpx.Timeout(0.3))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Test", "a\r\nX-Evil: 1"),
        ("X-Test", "a\nb"),
        ("X-Test", "a\rb"),
        ("X-Test", "a\x00b"),
        ("X-Evil\r\nX-Test", "1"),
        ("X Bad", "1"),
        ("X-Bad:Name", "1"),
        ("", "1"),
    ],
)
async def test_a_header_with_a_line_break_is_refused_and_nothing_is_sent(
    name: str, value: str
) -> None:
    async with serving(answers(OK, OK)) as server, client_for() as client:
        await client.get(server.url())  # a pooled connection the bad request could have used
        with pytest.raises(httpx.LocalProtocolError):
            await client.get(server.url(), headers={name: value})
        await client.get(server.url())
    assert server.connections == 1
    assert len(server.requests) == 2
    assert not any(b"Evil" in r or b"a\n" in r or b"a\r" in r for r in server.requests)


@pytest.mark.parametrize("method", ["GET /x HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET", "PO ST", ""])
async def test_a_method_that_is_not_a_token_is_refused_and_nothing_is_sent(method: str) -> None:
    async with serving(answers(OK)) as server, client_for() as client:
        with pytest.raises(httpx.LocalProtocolError):
            await client.request(method, server.url())
        await client.get(server.url())
    assert len(server.requests) == 1
    assert server.requests[0].startswith(b"GET /mcp HTTP/1.1\r\n")


async def test_unsupported_scheme() -> None:
    transport = Http1Transport(no_tls)
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/x"))


# --- the request on the wire -----------------------------------------------------------------


async def test_request_bytes_on_the_wire() -> None:
    async with serving(answers(OK, OK)) as server, client_for() as client:
        url = server.url("/a%20path/x") + "?q=1&r=%2F&s"
        await client.post(url, content=b'{"a": 1}', headers={"X-Custom": "v"})
        await client.get(server.url(""))
    post, get_root = server.requests
    head, _, body = post.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /a%20path/x?q=1&r=%2F&s HTTP/1.1"
    fields = [line.split(b": ", 1) for line in lines[1:]]
    assert [b"Host", b"127.0.0.1:%d" % server.port] in fields
    assert [b"Content-Length", b"8"] in fields
    assert [b"X-Custom", b"v"] in fields
    assert body == b'{"a": 1}'
    assert get_root.startswith(b"GET / HTTP/1.1\r\n")
    assert b"content-length" not in get_root.lower()
    assert get_root.endswith(b"\r\n\r\n")


async def test_a_streamed_request_body_is_sent_with_its_length() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"", b"three"):
            await trio.lowlevel.checkpoint()
            yield part

    async with serving(answers(OK)) as server, client_for() as client:
        await client.post(server.url(), content=parts())
    [request] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"\r\nContent-Length: 13" in head
    assert body == b"one two three"


async def test_build_client_uses_it_with_its_headers_and_socket_options() -> None:
    async with serving(answers(OK, OK)) as server, build_client(NetworkOptions()) as client:
        assert (await client.get(server.url())).content == b"ok"
        assert isinstance(client._transport, Http1Transport)
        [connection] = idle_connections(client)
        sock = connection.socket
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert (await client.get(server.url())).content == b"ok"
    [request, _] = server.requests
    assert b"\r\nAccept-Encoding: identity\r\n" in request
    assert re.search(rb"\r\nUser-Agent: mcp-remote-py/", request)
    assert server.connections == 1


async def test_through_the_relays_send_with_a_redirect_and_a_cookie() -> None:
    moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2\r\nContent-Length: 5\r\n\r\nmoved"
    sticky = b"HTTP/1.1 200 OK\r\nSet-Cookie: sticky=a1; Path=/\r\nContent-Length: 2\r\n\r\nhi"
    async with serving(answers(moved, sticky, OK)) as server, build_client(NetworkOptions()) as c:
        response = await send(c, c.build_request("POST", server.url(), content=b"{}"))
        assert (response.status_code, await response.aread()) == (200, b"hi")
        assert response.url == server.url("/v2")
        await response.aclose()
        response = await send(c, c.build_request("POST", server.url("/v2"), content=b"{}"))
        assert await response.aread() == b"ok"
        await response.aclose()
    first, again, cookie = server.requests
    assert (first[:10], first[-6:]) == (b"POST /mcp ", b"\r\n\r\n{}")
    assert (again[:9], again[-6:]) == (b"POST /v2 ", b"\r\n\r\n{}")
    assert b"\r\nCookie: sticky=a1\r\n" in cookie
    assert server.connections == 1


# --- answer heads ----------------------------------------------------------------------------


async def test_obsolete_line_folding_is_joined(read_size: int) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nX-Folded: one\r\n  two\r\n\tthree \r\nX-Next: n\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    async with serving(answers(answer)) as server, client_for() as client:
        response = await client.get(server.url())
    assert response.headers["x-folded"] == "one two three"
    assert response.headers["x-next"] == "n"


async def test_header_names_keep_their_case_and_are_found_in_any() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nX-MiXeD-CaSe: value\r\nX-Multi: a\r\nx-multi: b\r\n"
        b"X-Empty:\r\nLocation:  http://h:1/p?x=a:b \r\ncontent-length: 2\r\n\r\nok"
    )
    async with serving(answers(answer)) as server, client_for() as client:
        response = await client.get(server.url())
    assert (b"X-MiXeD-CaSe", b"value") in response.headers.raw
    assert response.headers["x-mixed-case"] == response.headers["X-MIXED-CASE"] == "value"
    assert response.headers.get_list("X-Multi") == ["a", "b"]
    assert response.headers["x-empty"] == ""
    assert response.headers["location"] == "http://h:1/p?x=a:b"
    assert response.content == b"ok"


@pytest.mark.parametrize(
    ("status_line", "status", "reason", "version"),
    [
        (b"HTTP/1.1 418 I'm a teapot", 418, "I'm a teapot", "HTTP/1.1"),
        (b"HTTP/1.1 200 Very  Fine Indeed", 200, "Very  Fine Indeed", "HTTP/1.1"),
        (b"HTTP/1.1 200 ", 200, "", "HTTP/1.1"),
        (b"HTTP/1.1 200", 200, "", "HTTP/1.1"),
        (b"HTTP/1.0 404 Not Found", 404, "Not Found", "HTTP/1.0"),
        (b"HTTP/1.1 599 Custom", 599, "Custom", "HTTP/1.1"),
    ],
)
async def test_reason_phrase_and_http_version(
    status_line: bytes, status: int, reason: str, version: str
) -> None:
    answer = status_line + b"\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answers(answer)) as server, client_for() as client:
        response = await client.get(server.url())
    assert (response.status_code, response.reason_phrase, response.http_version) == (
        status,
        reason,
        version,
    )
    assert response.content == b"ok"


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    async with serving(answers(OK, OK), host="::1") as server, client_for() as client:
        assert (await client.get(server.url())).content == b"ok"
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 1
    assert b"\r\nHost: [::1]:%d\r\n" % server.port in server.requests[0]


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_https_with_a_ca_file_and_keep_alive(
    tls_context: ssl.SSLContext, ca_file: str
) -> None:
    body = b"x" * 100000
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    chunked = CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n\r\n"
    async with (
        serving(answers(OK, big, chunked), tls=tls_context) as server,
        build_client(NetworkOptions(ca_file=ca_file)) as client,
    ):
        assert server.url().startswith("https://127.0.0.1:")
        assert (await client.get(server.url())).content == b"ok"
        assert (await client.get(server.url())).content == body
        assert (await client.get(server.url())).content == b"hello"
    assert server.connections == 1
    assert len(server.peers[0].requests) == 3


async def test_https_with_an_untrusted_certificate(tls_context: ssl.SSLContext) -> None:
    async with (
        serving(answers(OK), tls=tls_context) as server,
        build_client(NetworkOptions()) as client,
    ):
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(server.url())
    assert any(isinstance(c, ssl.SSLCertVerificationError) for c in causes(caught.value))
    error = describe_network_error(caught.value, httpx.URL(server.url()), NetworkOptions())
    assert isinstance(error, UpstreamUnavailable)
    assert error.kind == "tls"


async def test_https_server_closing_an_idle_connection(
    tls_context: ssl.SSLContext, ca_file: str
) -> None:
    async with (
        serving(answer_then_close(OK), tls=tls_context) as server,
        build_client(NetworkOptions(ca_file=ca_file)) as client,
    ):
        assert (await client.get(server.url())).content == b"ok"
        await idle_sockets_readable(client)
        assert (await client.get(server.url())).content == b"ok"
    assert server.connections == 2


async def test_https_body_until_close_without_close_notify(
    tls_context: ssl.SSLContext, ca_file: str
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\n", b"until ", b"close")
        assert isinstance(peer.stream, trio.SSLStream)
        await peer.stream.transport_stream.aclose()  # a TCP close, no TLS close_notify

    async with (
        serving(handler, tls=tls_context) as server,
        build_client(NetworkOptions(ca_file=ca_file)) as client,
    ):
        assert (await client.get(server.url())).content == b"until close"
        assert idle_connections(client) == []


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    async def handler(peer: Peer) -> None:
        await peer.wait_closed()  # plain TCP: takes the ClientHello, never answers it

    async with serving(handler) as server, client_for(ssl.create_default_context) as client:
        url = server.url().replace("http://", "https://")
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await client.get(url, timeout=httpx.Timeout(0.2))
        await server.peers[0].closed_by_client.wait()
    error = describe_network_error(caught.value, httpx.URL(url), NetworkOptions())
    assert isinstance(error, UpstreamUnavailable)
    assert error.kind == "timeout"


async def test_the_tls_context_is_made_on_first_https_use_and_once(
    tls_context: ssl.SSLContext, ca: trustme.CA
) -> None:
    made: list[ssl.SSLContext] = []

    def make() -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        made.append(context)
        return context

    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answers(closing, closing), tls=tls_context) as server, client_for(make) as c:
        assert made == []
        await c.get(server.url())
        await c.get(server.url())
    assert len(made) == 1
    assert server.connections == 2


# --- closing the transport -------------------------------------------------------------------


async def test_aclose_closes_idle_connections_and_later_requests_raise() -> None:
    async with serving(answers(OK, OK)) as server, client_for() as client:
        await client.get(server.url())
        await client.get(server.url())
        await transport_of(client).aclose()
        await server.peers[0].closed_by_client.wait()
        with pytest.raises(RuntimeError, match="closed"):
            await client.get(server.url())
    assert server.connections == 1


async def test_aclose_closes_a_connection_in_use() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    async with serving(answers(head + b"part")) as server, client_for() as client:
        async with client.stream("GET", server.url()) as response:
            await transport_of(client).aclose()
            await server.peers[0].closed_by_client.wait()
            with pytest.raises(httpx.ReadError):
                await response.aread()
        assert idle_connections(client) == []
