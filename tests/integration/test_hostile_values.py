"""One hostile value cannot kill the relay or hang a request (issue 16, classes 1 and 8).

The server is raw trio on loopback, in the test's own run, writing exactly the bytes each case
needs (hypercorn and h11 would refuse to send most of them): a redirect Location that is no URL,
a Content-Length of 5000 digits, NUL in a header, endless 1xx answers, endless trailers, a
legacy endpoint event that is no URL, a flood of events that are not JSON-RPC, HTTP/1.0
keep-alive. The client's side is the real relay as a subprocess, driven with raw lines, sending
messages nested hundreds or thousands deep. In every case the request gets one clear answer and
the relay goes on; before, some killed it (the GET stream's redirect, a deep initialize), some
hung their request, and the rest were answered as the relay's own failure (-32007).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from mcp_remote_py.core.jsonrpc import MAX_DEPTH

from .harness import RawRelay, raw_relay

pytestmark = pytest.mark.timeout(90)

READ_TIMEOUT = 20.0
# Without the bounds these never answered: well under READ_TIMEOUT is the proof.
PROMPT = 10.0
ARGS = ["--protocol", "legacy", "--reconnect-delay", "0.05", "--max-reconnect-delay", "0.2"]
SSE = b"Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
BAD_LOCATION = b"http://[::1"
HUGE_LENGTH = b"9" * 5000


class Request:
    def __init__(self, method: str, path: str, body: bytes) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.message: dict[str, Any] = json.loads(body) if body else {}

    @property
    def tool(self) -> str | None:
        params = self.message.get("params") or {}
        name = params.get("name")
        return name if isinstance(name, str) else None


class Connection:
    """One connection the server accepted: what it read, how to answer."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.requests = 0

    async def read_request(self) -> Request | None:
        while (end := self.buffer.find(b"\r\n\r\n")) == -1:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.buffer += data
        head = bytes(self.buffer[:end]).decode("latin-1")
        del self.buffer[: end + 4]
        found = re.search(r"(?im)^content-length: *(\d+)$", head)
        length = int(found.group(1)) if found else 0
        while len(self.buffer) < length:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.buffer += data
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
        self.requests += 1
        return Request(method, path, body)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def flood(self, opening: bytes, each: bytes) -> None:
        """``opening``, then ``each`` until the relay hangs up."""
        await self.send(opening)
        try:
            while True:
                await self.send(each * 256)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def answer(status: bytes, body: bytes, fields: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    head = version + b" " + status + b"\r\n" + fields
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def json_answer(
    message: dict[str, Any], fields: bytes = b"", version: bytes = b"HTTP/1.1"
) -> bytes:
    body = json.dumps(message).encode()
    return answer(b"200 OK", body, b"Content-Type: application/json\r\n" + fields, version)


def result_for(request: Request, text: str = "ok") -> dict[str, Any]:
    content = [{"type": "text", "text": text}]
    return {"jsonrpc": "2.0", "id": request.message["id"], "result": {"content": content}}


INITIALIZE_RESULT = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {}, "logging": {}, "resources": {"subscribe": True}},
    "serverInfo": {"name": "hostile-bytes", "version": "1"},
}


class HostileServer:
    """Streamable HTTP at /mcp, legacy SSE at /sse; ``get`` says what a GET of /mcp meets,
    ``version`` which HTTP version every answer claims."""

    def __init__(self) -> None:
        self.port = 0
        self.get = "405"
        self.version = b"HTTP/1.1"
        self.keep_alive = b""
        self.connections: list[Connection] = []
        self.methods: list[str] = []
        self.gets = 0
        self.got = trio.Event()

    def url(self, path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def serve(self, stream: trio.SocketStream) -> None:
        connection = Connection(stream)
        self.connections.append(connection)
        try:
            while (request := await connection.read_request()) is not None:
                if not await self.answer(connection, request):
                    break
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def answer(self, connection: Connection, request: Request) -> bool:
        """Answer one request; False to end the connection."""
        if request.method == "GET" and request.path == "/sse":
            await connection.send(
                b"HTTP/1.1 200 OK\r\n"
                + SSE
                + b"\r\nevent: endpoint\ndata: "
                + BAD_LOCATION
                + b"\n\n"
            )
            await trio.sleep_forever()
        if request.method == "GET":
            self.gets += 1
            self.got.set()
            if self.get == "bad_location":
                await connection.send(_redirect(BAD_LOCATION))
            elif self.get == "huge_length":
                await connection.send(
                    b"HTTP/1.1 200 OK\r\n" + SSE + b"Content-Length: " + HUGE_LENGTH + b"\r\n\r\n"
                )
            else:
                await connection.send(answer(b"405 Method Not Allowed", b"", version=self.version))
            return True
        if request.method == "DELETE":
            await connection.send(answer(b"405 Method Not Allowed", b"", version=self.version))
            return True
        method = request.message.get("method")
        self.methods.append(str(method))
        if "id" not in request.message:
            await connection.send(answer(b"202 Accepted", b"", version=self.version))
            return True
        if method == "initialize":
            message = {"jsonrpc": "2.0", "id": request.message["id"], "result": INITIALIZE_RESULT}
            await connection.send(json_answer(message, self.keep_alive, self.version))
            return True
        if method != "tools/call":
            message = {"jsonrpc": "2.0", "id": request.message["id"], "result": {}}
            await connection.send(json_answer(message, self.keep_alive, self.version))
            return True
        return await self.call(connection, request)

    async def call(self, connection: Connection, request: Request) -> bool:
        tool = request.tool
        if tool == "bad_location":
            await connection.send(_redirect(BAD_LOCATION))
        elif tool == "huge_length":
            fields = b"Content-Type: application/json\r\nContent-Length: " + HUGE_LENGTH
            await connection.send(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n\r\n{")
            return False
        elif tool == "nul_header":
            await connection.send(json_answer(result_for(request), b"X-Trace: a\x00b\r\n"))
        elif tool == "interim_flood":
            await connection.flood(b"", b"HTTP/1.1 100 Continue\r\n\r\n")
            return False
        elif tool == "trailer_flood":
            body = json.dumps(result_for(request)).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += b"Transfer-Encoding: chunked\r\n\r\n"
            await connection.flood(head + b"%x\r\n%s\r\n0\r\n" % (len(body), body), b"X-T: v\r\n")
            return False
        elif tool == "garbage_events":
            events = b"".join(b"data: not json %d\n\n" % i for i in range(200))
            events += b"data: " + json.dumps(result_for(request, "after")).encode() + b"\n\n"
            await connection.send(answer(b"200 OK", events, SSE))
        else:
            await connection.send(json_answer(result_for(request), self.keep_alive, self.version))
        return True


def _redirect(location: bytes) -> bytes:
    return (
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: "
        + location
        + b"\r\nContent-Length: 0\r\n\r\n"
    )


@asynccontextmanager
async def hostile_server() -> AsyncIterator[HostileServer]:
    server = HostileServer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server.serve, 0, host="127.0.0.1")
        )
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def relay_to(
    server: HostileServer, tmp_path: Path, *extra: str, path: str = "/mcp"
) -> AsyncIterator[RawRelay]:
    async with raw_relay([server.url(path), *ARGS, *extra], tmp_path) as relay:
        yield relay


async def call(relay: RawRelay, request_id: int, tool: str) -> dict[str, Any]:
    await relay.request(request_id, "tools/call", {"name": tool, "arguments": {}})
    return await relay.read_message(READ_TIMEOUT)


async def echo_still_works(relay: RawRelay, request_id: int) -> None:
    answer = await call(relay, request_id, "echo")
    assert answer["result"]["content"][0]["text"] == "ok", answer


# --- class 1: one server value kills the process --------------------------------------------


async def test_a_redirect_location_that_is_no_url_fails_its_request_alone(tmp_path: Path) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        await relay.initialize()
        answer = await call(relay, 1, "bad_location")
        assert answer["error"]["code"] == -32001, answer
        assert "redirect Location that is not a URL" in answer["error"]["message"]
        await echo_still_works(relay, 2)


@pytest.mark.parametrize("get", ["bad_location", "huge_length"])
async def test_a_get_stream_meeting_a_hostile_value_does_not_kill_the_relay(
    get: str, tmp_path: Path
) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        server.get = get
        await relay.initialize()
        await echo_still_works(relay, 1)
        with trio.fail_after(READ_TIMEOUT):
            while server.gets < 3:  # the listener tries again, with backoff: it is alive
                await server.got.wait()
                server.got = trio.Event()
        await echo_still_works(relay, 2)


async def test_a_content_length_of_5000_digits_fails_its_request_alone(tmp_path: Path) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        await relay.initialize()
        answer = await call(relay, 1, "huge_length")
        assert answer["error"]["code"] == -32001, answer
        assert "bad Content-Length" in answer["error"]["message"]
        await echo_still_works(relay, 2)


async def test_a_legacy_endpoint_event_that_is_no_url_is_a_clear_error(tmp_path: Path) -> None:
    async with (
        hostile_server() as server,
        relay_to(server, tmp_path, "--transport", "sse-only", path="/sse") as relay,
    ):
        answer = await relay.initialize()
        assert answer["error"]["code"] == -32001, answer
        assert "legacy SSE endpoint event that is not a URL" in answer["error"]["message"]
        await relay.request(2, "ping")
        again = await relay.read_message(READ_TIMEOUT)
        assert again["id"] == 2
        assert "not a URL" in again["error"]["message"]


def deep_line(request_id: int, method: str, depth: int) -> bytes:
    """A request nested ``depth`` levels in all, the message itself counted."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    params = f'{{"level":"info","uri":"file:///x","protocolVersion":"2025-11-25","a":{inner}}}'
    text = f'{{"jsonrpc":"2.0","id":{request_id},"method":"{method}","params":{params}}}\n'
    return text.encode()


async def test_messages_nested_too_deep_are_refused_and_the_relay_goes_on(tmp_path: Path) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        # As deep as the relay takes: relayed, captured (copied) and answered.
        await relay.send(deep_line(1, "initialize", MAX_DEPTH))
        assert (await relay.read_message(READ_TIMEOUT))["result"] == INITIALIZE_RESULT
        await relay.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        cases = [
            (2, "initialize", MAX_DEPTH + 1),
            (3, "logging/setLevel", 600),
            (4, "resources/subscribe", 900),
            (5, "initialize", 10_000),
            (6, "logging/setLevel", 10_000),
        ]
        for request_id, method, depth in cases:
            await relay.send(deep_line(request_id, method, depth))
            answer = await relay.read_message(READ_TIMEOUT)
            assert answer["error"]["code"] == -32700, answer
            assert "nesting too deep" in answer["error"]["message"]
            if depth < 1000:
                assert answer["id"] == request_id
        await echo_still_works(relay, 7)
    assert server.methods.count("initialize") == 1  # the deep ones never left the relay
    assert "logging/setLevel" not in server.methods


# --- class 8: smaller hardening -----------------------------------------------------------------


async def test_nul_in_a_response_header_is_a_protocol_error_for_that_request(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        await relay.initialize()
        answer = await call(relay, 1, "nul_header")
        assert answer["error"]["code"] == -32001, answer
        assert "NUL or a bare CR" in answer["error"]["message"]
        await echo_still_works(relay, 2)


@pytest.mark.parametrize("tool", ["interim_flood", "trailer_flood"])
async def test_endless_interim_answers_or_trailers_do_not_hang_the_request(
    tool: str, tmp_path: Path
) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        await relay.initialize()
        await relay.request(1, "tools/call", {"name": tool, "arguments": {}})
        answer = await relay.read_message(PROMPT)
        assert answer["error"]["code"] in (-32001, -32003), answer
        await echo_still_works(relay, 2)


async def test_an_http_1_0_server_gets_a_connection_per_request(tmp_path: Path) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        server.version = b"HTTP/1.0"
        server.keep_alive = b"Connection: keep-alive\r\n"
        await relay.initialize()
        for request_id in range(1, 4):
            await echo_still_works(relay, request_id)
    served = [c.requests for c in server.connections if c.requests]
    assert served
    assert max(served) == 1, served


async def test_a_flood_of_malformed_events_costs_one_warning_and_a_count(tmp_path: Path) -> None:
    async with hostile_server() as server, relay_to(server, tmp_path) as relay:
        await relay.initialize()
        answer = await call(relay, 1, "garbage_events")
        assert answer["result"]["content"][0]["text"] == "after"
        await relay.wait_for_stderr("ignored 200 messages", READ_TIMEOUT)
        await echo_still_works(relay, 2)
    stderr = relay.stderr()
    assert stderr.count("not JSON-RPC") == 2, stderr  # the first one, and the count
