"""The bounds on what the relay gathers from a server (issue 16, class 2), without a network:
``read_body`` (a JSON answer), ``discard_body`` (a 202's "Accepted"), and what ``on_too_large``
does with an event the parser dropped, told apart by ``envelope_of``."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from mcp_remote_py.core.errors import MessageTooLarge
from mcp_remote_py.core.jsonrpc import UPSTREAM_ERROR, Kind, Message
from mcp_remote_py.core.sse import Event
from mcp_remote_py.shell.transports.base import (
    ACK_BODY_LIMIT,
    StreamCursor,
    discard_body,
    envelope_of,
    on_too_large,
    read_body,
)

MIB = 1 << 20
CHUNK = b"z" * 65536

# httpx iterates a body through async generators (aiter_bytes, aiter_raw) it never closes,
# so stopping early leaves them to the garbage collector, which trio reports. The relay stops
# early on purpose here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*Response.aiter_:pytest.PytestUnraisableExceptionWarning"
)


class Endless(httpx.AsyncByteStream):
    """A body that never ends (or ends after ``total`` bytes), counting what was taken."""

    def __init__(self, total: int | None = None, first: bytes = b"") -> None:
        self.total = total
        self.first = first
        self.sent = 0
        self.closed = False

    def __aiter__(self) -> Endless:
        return self

    async def __anext__(self) -> bytes:
        if self.first:
            first, self.first = self.first, b""
            self.sent += len(first)
            return first
        if self.total is not None and self.sent >= self.total:
            raise StopAsyncIteration
        self.sent += len(CHUNK)
        return CHUNK

    async def aclose(self) -> None:
        self.closed = True


def response(stream: httpx.AsyncByteStream, **headers: str) -> httpx.Response:
    request = httpx.Request("POST", "http://127.0.0.1/mcp")
    return httpx.Response(200, headers=headers, stream=stream, request=request)


async def test_a_json_body_that_never_ends_is_refused_at_the_limit() -> None:
    body = Endless()
    with pytest.raises(MessageTooLarge) as caught:
        await read_body(response(body), 8 * MIB)
    assert body.sent <= 8 * MIB + len(CHUNK)  # read as far as the limit, no further
    assert "exceeded 8 MiB" in caught.value.advice()
    assert "--max-message-size" in caught.value.advice()


async def test_a_content_length_over_the_limit_is_refused_unread() -> None:
    body = Endless(total=10 * MIB)
    with pytest.raises(MessageTooLarge):
        await read_body(response(body, **{"content-length": str(10 * MIB)}), 8 * MIB)
    assert body.sent == 0


async def test_a_body_within_the_limit_is_read_whole() -> None:
    body = Endless(total=3 * MIB, first=b'{"a":')
    data = await read_body(response(body), 8 * MIB)
    assert len(data) == body.sent
    assert data.startswith(b'{"a":zzz')
    one = httpx.Response(200, content=b'{"jsonrpc":"2.0","id":1,"result":{}}')
    assert await read_body(one, 8 * MIB) == b'{"jsonrpc":"2.0","id":1,"result":{}}'


async def test_a_202_body_that_never_ends_is_dropped_with_its_connection() -> None:
    body = Endless()
    await discard_body(response(body))
    assert body.sent <= ACK_BODY_LIMIT + len(CHUNK)
    assert body.closed


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"jsonrpc":"2.0","id":7,"result":{"content":[{"text":"xx', (Kind.RESPONSE, 7)),
        (b'{"jsonrpc": "2.0", "id": "a-1", "error": {"code"', (Kind.RESPONSE, "a-1")),
        (b'{"result":{"content":[{"type":"text","text":"xxxx', (Kind.RESPONSE, None)),
        (b'{"method":"notifications/message","params":{"data":"xx', (Kind.REQUEST, None)),
        (b'{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage"', (Kind.REQUEST, 3)),
        (b'{"jsonrpc":"2.0","id":12', (None, None)),  # the id may go on: 123
        (b'{"jsonrpc":"2.0","id":true,"result":', (Kind.RESPONSE, None)),
        (b'{"id":{"nested":1},"result":', (Kind.RESPONSE, None)),
        (b"[1,2,3", (None, None)),
        (b"", (None, None)),
        (b"xxxxxxxx", (None, None)),
    ],
)
def test_envelope_of_the_head_of_a_message(head: bytes, expected: tuple[Any, Any]) -> None:
    assert envelope_of(head) == expected


def dropped(head: bytes) -> Event:
    return Event("", b"", None, None, too_large=True, head=head)


async def test_an_answer_too_large_on_a_request_stream_fails_that_request() -> None:
    delivered: list[Message] = []

    async def deliver(message: Message) -> None:
        delivered.append(message)

    for head in (b'{"jsonrpc":"2.0","id":1,"result":{"x":"', b'{"result":', b""):
        with pytest.raises(MessageTooLarge):
            await on_too_large(dropped(head), StreamCursor(awaiting=1), deliver, MIB, "test")
    assert delivered == []


async def test_a_notification_too_large_is_dropped_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def deliver(message: Message) -> None:
        raise AssertionError("nothing is delivered")

    head = b'{"method":"notifications/message","params":{"data":"'
    with caplog.at_level(logging.WARNING, "mcp_remote_py"):
        await on_too_large(dropped(head), StreamCursor(awaiting=1), deliver, MIB, "test")
        await on_too_large(dropped(head), StreamCursor(), deliver, MIB, "test")
        # After the awaited answer, an answer-like message only costs a warning.
        answered = StreamCursor(awaiting=1, answered=True)
        await on_too_large(dropped(b'{"result":'), answered, deliver, MIB, "test")
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 3


async def test_an_answer_too_large_on_a_legacy_stream_is_answered_under_its_id() -> None:
    delivered: list[Message] = []

    async def deliver(message: Message) -> None:
        delivered.append(message)

    head = b'{"jsonrpc":"2.0","id":"r-9","result":{"content":[{"type":"text","text":"'
    await on_too_large(dropped(head), StreamCursor(), deliver, 8 * MIB, "SSE stream")
    [answer] = delivered
    assert answer.kind is Kind.RESPONSE
    assert answer.id == "r-9"
    assert answer.body["error"]["code"] == UPSTREAM_ERROR
    assert "exceeded 8 MiB" in answer.body["error"]["message"]
    assert "--max-message-size" in answer.body["error"]["message"]
    # Without an id (a TypeScript server writes it last) there is no one to answer: a warning.
    await on_too_large(dropped(b'{"result":{"x":"'), StreamCursor(), deliver, MIB, "SSE stream")
    assert len(delivered) == 1
