"""Malformed events cost one warning per stream, and a count when it ends (issue 16, class 8).

A server that sends thousands of events that are not JSON-RPC once wrote a warning for each, to
stderr and to the log file. Now the first on a stream is shown, the others are counted, and the
count is logged once, when ``read_events`` ends the stream; the next stream starts afresh.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from mcp_remote_py.core.jsonrpc import Message
from mcp_remote_py.shell.transports.base import StreamCursor, deliver_payload, read_events


class Events(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk


def stream_of(*chunks: bytes) -> httpx.Response:
    request = httpx.Request("GET", "http://h.example/mcp")
    headers = {"content-type": "text/event-stream"}
    return httpx.Response(200, headers=headers, stream=Events(*chunks), request=request)


async def read_all(response: httpx.Response, cursor: StreamCursor) -> list[Message]:
    delivered: list[Message] = []

    async def deliver(message: Message) -> None:
        delivered.append(message)

    events = read_events(response, 1 << 20, cursor)
    try:
        async for event in events:
            await deliver_payload(event.data, deliver, cursor, "event stream")
    finally:
        await events.aclose()
    return delivered


GOOD = b'data: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n'


def garbage(count: int) -> bytes:
    return b"".join(b"data: not json %d\n\n" % i for i in range(count))


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_thousand_garbage_events_cost_two_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "mcp_remote_py")
    cursor = StreamCursor()
    delivered = await read_all(stream_of(garbage(500), GOOD, garbage(500)), cursor)
    assert len(delivered) == 1
    first, summary = warnings_in(caplog)
    assert first.startswith("ignored a message from the server that is not JSON-RPC")
    assert "not json 0" in first
    assert "ignored 1000 messages" in summary
    assert cursor.problem is not None  # a request still learns why its answer was unreadable


async def test_each_stream_warns_afresh(caplog: pytest.LogCaptureFixture) -> None:
    cursor = StreamCursor()  # one cursor across reconnections, as the GET stream keeps it
    await read_all(stream_of(garbage(3)), cursor)
    await read_all(stream_of(garbage(1), GOOD), cursor)
    assert [w.split(":")[0] for w in warnings_in(caplog)] == [
        "ignored a message from the server that is not JSON-RPC",
        "ignored 3 messages from the server that were not JSON-RPC on one event stream (the "
        "first is shown above)",
        "ignored a message from the server that is not JSON-RPC",
    ]


async def test_a_stream_that_breaks_still_reports_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield garbage(5)
            raise httpx.ReadError("reset")

    request = httpx.Request("GET", "http://h.example/mcp")
    response = httpx.Response(200, stream=Broken(), request=request)
    with pytest.raises(Exception, match="broke off"):
        await read_all(response, StreamCursor())
    assert "ignored 5 messages" in warnings_in(caplog)[-1]
