"""Memory the server controls (issue 16, class 2): a server that never stops sending.

Every shape that once grew the relay to gigabytes, against ``--max-message-size 8``: an SSE data
line with no end, an SSE event of endless data lines, a JSON body with no end, and a legacy
POST's 202 whose body goes on. Each streams 300 MB. The request it answers gets one error that
names the limit and the option, the next request is answered as ever, and the relay's peak
resident memory (VmHWM) stays far below what it was sent. A GET stream, or the legacy stream,
that carries an event over the limit loses that event alone.

The server is a scripted ASGI app on hypercorn in the test's own trio run; the relay is a
subprocess driven with raw lines.
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from .harness import RawRelay, raw_relay

pytestmark = pytest.mark.timeout(60)

READ_TIMEOUT = 20.0
LIMIT_MIB = 8
LIMIT_ARGS = ["--max-message-size", str(LIMIT_MIB)]
TOTAL = 300 * 1000 * 1000  # what the server sends of the message that never ends
CHUNK = b"x" * (1 << 20)
# The relay's peak resident memory, in MiB: a Python process with its imports is about 45 MiB
# here, the limit adds 8 (and a copy); without the limits it held all 300 MB, and more.
PEAK_MIB = 100
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class GreedyServer:
    """Streamable HTTP at /mcp (tools: echo and the endless ones) and legacy SSE at /sse."""

    def __init__(self) -> None:
        self.port = 0
        self.get_stream = False  # whether GET /mcp opens a stream (with an event over the limit)
        self.legacy: trio.MemorySendChannel[bytes] | None = None
        # Set when the endless 202 body is over: all sent, or dropped by hypercorn as the relay
        # hung up. Until then the relay may still be reading it.
        self.ack_over = trio.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        method, path = scope["method"], scope["path"]
        if path == "/sse" and method == "GET":
            await self._legacy_stream(send)
        elif path == "/messages" and method == "POST":
            await self._legacy_post(json.loads(body), send)
        elif path == "/mcp" and method == "GET" and self.get_stream:
            await self._get_stream(send)
        elif path == "/mcp" and method == "POST":
            await self._post(json.loads(body), send)
        else:
            await _answer(send, 405, b"")

    async def _post(self, message: dict[str, Any], send: Any) -> None:
        request_id = message.get("id")
        if request_id is None:
            await _answer(send, 202, b"")
            return
        tool = (message.get("params") or {}).get("name")
        opening = _opening(request_id)
        if tool == "endless_line":  # one data line, never a line end
            await _start(send, 200, SSE)
            await _more(send, b"data: " + opening)
            await _stream(send, CHUNK)
        elif tool == "many_lines":  # one event of data lines, never the blank line that ends it
            await _start(send, 200, SSE)
            await _more(send, b"data: " + opening + b"\n")
            await _stream(send, b"data: " + b"y" * 65536 + b"\n")
        elif tool == "endless_json":  # chunked, never the last chunk
            await _start(send, 200, [(b"content-type", b"application/json")])
            await _more(send, opening)
            await _stream(send, CHUNK)
        else:
            await _answer(send, 200, json.dumps(_result(message)).encode())

    async def _get_stream(self, send: Any) -> None:
        await _start(send, 200, SSE)
        log = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info",'
        await _more(send, b"data: " + log + b'"data":"')
        await _stream(send, CHUNK, end=False)
        await _more(send, b'"}}\n\n')  # the over-limit event ends; then one within the limit
        await _more(send, b"data: " + log + b'"data":"after"}}\n\n')
        await trio.sleep_forever()

    async def _legacy_stream(self, send: Any) -> None:
        sender, receiver = trio.open_memory_channel[bytes](math.inf)
        self.legacy = sender
        await _start(send, 200, SSE)
        await _more(send, b"event: endpoint\ndata: /messages?session=1\n\n")
        async for data in receiver:
            await _more(send, data)

    def _to_stream(self, message: dict[str, Any]) -> None:
        assert self.legacy is not None
        self.legacy.send_nowait(b"event: message\ndata: " + json.dumps(message).encode() + b"\n\n")

    async def _legacy_post(self, message: dict[str, Any], send: Any) -> None:
        request_id = message.get("id")
        tool = (message.get("params") or {}).get("name")
        if request_id is None:
            await _answer(send, 202, b"Accepted", b"text/plain")
        elif tool == "endless_ack":  # the answer on the stream; the POST's 202 goes on and on
            self._to_stream(_result(message))
            try:
                await _start(send, 202, [(b"content-type", b"text/plain")])
                await _stream(send, CHUNK)
            finally:
                self.ack_over.set()
        elif tool == "huge_on_stream":  # the answer on the stream is one 300 MB event
            await _answer(send, 202, b"Accepted", b"text/plain")
            assert self.legacy is not None
            self.legacy.send_nowait(b"event: message\ndata: " + _opening(request_id))
            for _ in range(TOTAL // len(CHUNK)):
                self.legacy.send_nowait(CHUNK)
            self.legacy.send_nowait(b'"}]}}\n\n')
        else:
            self._to_stream(_result(message))
            await _answer(send, 202, b"Accepted", b"text/plain")


def _opening(request_id: Any) -> bytes:
    head = {"jsonrpc": "2.0", "id": request_id}
    return json.dumps(head).encode()[:-1] + b',"result":{"content":[{"type":"text","text":"'


def _result(message: dict[str, Any]) -> dict[str, Any]:
    if message.get("method") == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "greedy", "version": "1"},
        }
    else:
        result = {"content": [{"type": "text", "text": "ok"}]}
    return {"jsonrpc": "2.0", "id": message.get("id"), "result": result}


async def _start(send: Any, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _more(send: Any, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _stream(send: Any, piece: bytes, *, end: bool = True) -> None:
    """TOTAL bytes of ``piece`` over and over; then the response ends (with the message
    unfinished) unless ``end`` is False. Once the relay has hung up, hypercorn drops them."""
    for _ in range(TOTAL // len(piece)):
        await _more(send, piece)
    if end:
        await send({"type": "http.response.body", "body": b""})


async def _answer(send: Any, status: int, body: bytes, kind: bytes = b"application/json") -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await _start(send, status, headers)
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def greedy_server() -> AsyncIterator[GreedyServer]:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    app = GreedyServer()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    app.port = listener.getsockname()[1]
    listener.close()
    config = Config()
    config.bind = [f"127.0.0.1:{app.port}"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, app, config)
        yield app
        nursery.cancel_scope.cancel()


async def _call(relay: RawRelay, request_id: int, tool: str) -> dict[str, Any]:
    await relay.request(request_id, "tools/call", {"name": tool, "arguments": {}})
    while True:
        message = await relay.read_message(timeout=READ_TIMEOUT)
        if message.get("id") == request_id:
            return message


def _assert_limit_error(answer: dict[str, Any]) -> None:
    assert "result" not in answer
    text = answer["error"]["message"]
    assert f"exceeded {LIMIT_MIB} MiB" in text
    assert "--max-message-size" in text


def _resident_mib(relay: RawRelay) -> float:
    status = Path(f"/proc/{relay.process.pid}/status").read_text()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))
    return int(kib) / 1024


@pytest.mark.parametrize("tool", ["endless_line", "many_lines", "endless_json"])
async def test_an_answer_that_never_ends_fails_its_request_alone(tool: str, tmp_path: Path) -> None:
    async with (
        greedy_server() as server,
        raw_relay([server.url("/mcp"), *LIMIT_ARGS], tmp_path) as relay,
    ):
        assert "result" in await relay.initialize()
        answer = await _call(relay, 1, tool)
        after = await _call(relay, 2, "echo")
        peak, resident = relay.peak_memory_mb(), _resident_mib(relay)
    _assert_limit_error(answer)
    assert after["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert peak < PEAK_MIB, f"the relay grew to {peak:.0f} MiB"
    assert resident < PEAK_MIB
    assert "Traceback" not in relay.stderr()


async def test_a_202_whose_body_never_ends_is_dropped_not_held(tmp_path: Path) -> None:
    async with (
        greedy_server() as server,
        raw_relay([server.url("/sse"), "--transport", "sse-only", *LIMIT_ARGS], tmp_path) as relay,
    ):
        assert "result" in await relay.initialize()
        answer = await _call(relay, 1, "endless_ack")
        with trio.fail_after(READ_TIMEOUT):
            await server.ack_over.wait()
        after = await _call(relay, 2, "echo")
        peak = relay.peak_memory_mb()
    # The server took the message (202) and answered on the stream: nothing failed.
    assert answer["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert after["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert peak < PEAK_MIB, f"the relay grew to {peak:.0f} MiB"
    assert "did not acknowledge" not in relay.stderr()


async def test_an_answer_too_large_on_the_legacy_stream_fails_its_request_alone(
    tmp_path: Path,
) -> None:
    async with (
        greedy_server() as server,
        raw_relay([server.url("/sse"), "--transport", "sse-only", *LIMIT_ARGS], tmp_path) as relay,
    ):
        assert "result" in await relay.initialize()
        answer = await _call(relay, 1, "huge_on_stream")
        # Answered on the same stream, once the 300 MB event has gone past unheld.
        after = await _call(relay, 2, "echo")
        peak = relay.peak_memory_mb()
    _assert_limit_error(answer)
    assert after["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert peak < PEAK_MIB, f"the relay grew to {peak:.0f} MiB"
    assert "re-initializing" not in relay.stderr()  # the session lived on


async def test_an_event_too_large_on_the_get_stream_is_dropped_with_one_warning(
    tmp_path: Path,
) -> None:
    async with greedy_server() as server:
        server.get_stream = True
        async with raw_relay([server.url("/mcp"), *LIMIT_ARGS], tmp_path) as relay:
            assert "result" in await relay.initialize()
            notification = await relay.read_message(timeout=READ_TIMEOUT)
            after = await _call(relay, 1, "echo")
            peak = relay.peak_memory_mb()
    # The event over the limit never reached the client; the one after it on the stream did.
    assert notification["method"] == "notifications/message"
    assert notification["params"]["data"] == "after"
    assert after["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert peak < PEAK_MIB, f"the relay grew to {peak:.0f} MiB"
    assert relay.stderr().count(f"of over {LIMIT_MIB} MiB") == 1
