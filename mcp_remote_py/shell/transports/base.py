"""What the relay needs from a transport, and the reading of answers the transports share.

The server decides how much it sends, so every byte the relay gathers from it passes one of two
bounds, both ``NetworkOptions.max_message`` (``--max-message-size``): ``read_events`` gives the
event parser the limit, ``read_body`` counts a JSON body as it streams. What passes it is
dropped as it comes, never held whole; an answer that did is its request's ``MessageTooLarge``
(``on_too_large``), and anything else on a stream is dropped with a warning. A body the relay
has no use for (a 202's "Accepted") is read only as far as ``ACK_BODY_LIMIT`` and then dropped
with its connection (``discard_body``).

What the server sends that is not JSON-RPC is dropped (``deliver_payload``) with one warning per
stream; the others are counted, and the count is logged when the stream ends (``read_events``),
so a server that sends garbage events by the thousand costs a line or two, not a log flood.
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import trio

from ...core.errors import (
    ConnectionLost,
    MessageTooLarge,
    ProtocolViolation,
    UpstreamError,
    describe_size,
)
from ...core.jsonrpc import (
    UPSTREAM_ERROR,
    Kind,
    Message,
    MessageError,
    RequestId,
    error_response,
    parse_payload,
)
from ...core.sse import Event, EventParser
from ..net import MAX_MESSAGE, NetworkOptions, display_url

__all__ = [
    "ACK_BODY_LIMIT",
    "Authorize",
    "Deliver",
    "StreamCursor",
    "Transport",
    "check_content_type",
    "deliver_payload",
    "discard_body",
    "envelope_of",
    "on_too_large",
    "read_body",
    "read_events",
]

log = logging.getLogger("mcp_remote_py")

# Called with every message the server sends, in order; awaiting it is the backpressure.
Deliver = Callable[[Message], Awaitable[None]]
# The Authorization header value for the next request (OAuth keeps it fresh), or None.
Authorize = Callable[[], Awaitable[str | None]]


class Transport(abc.ABC):
    """One session with the remote server, carrying client messages there and its messages back."""

    name: str
    # True when send_request returns with the answer delivered (Streamable HTTP); False when the
    # answer comes later on a stream of its own (legacy SSE).
    answers_inline: bool

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        deliver: Deliver,
        nursery: trio.Nursery,
        options: NetworkOptions,
        on_lost: Callable[[UpstreamError], None],
        authorize: Authorize | None = None,
    ) -> None:
        """``deliver`` takes every server message; ``on_lost`` is called when the transport
        finds on its own (not in answer to a send) that the server has lost the session;
        ``authorize`` gives the Authorization header for each request (OAuth)."""
        self.client = client
        self.url = url
        self._deliver = deliver
        self._nursery = nursery
        self._options = options
        self._on_lost = on_lost
        self._authorize = authorize

    async def _authorized(self, request: httpx.Request) -> httpx.Request:
        """``request`` with the current OAuth Authorization header, if there is one."""
        if self._authorize is not None:
            value = await self._authorize()
            if value:
                request.headers["Authorization"] = value
        return request

    @abc.abstractmethod
    async def send_request(self, message: Message) -> None:
        """Send a client request. Returns once the answer has been delivered, or (legacy SSE)
        once the server took the request; raises an UpstreamError when it could not be sent or
        its answer was lost."""

    @abc.abstractmethod
    async def send_message(self, message: Message) -> None:
        """Send a notification or a response to a server request."""

    @abc.abstractmethod
    async def close(self) -> None:
        """End the session politely (bounded in time) and release connections."""

    async def abandon(self) -> None:
        """Release a transport whose session the server no longer knows (no goodbye owed)."""
        await self.close()

    def set_protocol_version(self, version: str) -> None:  # noqa: B027 - optional hook
        """The version negotiated by initialize, for transports that send it as a header."""


@dataclass(slots=True)
class StreamCursor:
    """Where an SSE stream got to: the last event id, the server's ``retry`` advice, and whether
    the answer to ``awaiting`` (the request whose POST opened it) has come. Long-lived streams
    (legacy SSE, the GET stream) await nothing and so remember nothing per message."""

    awaiting: RequestId | None = None
    answered: bool = False
    last_event_id: str | None = None
    retry_ms: int | None = None
    problem: str | None = None
    # Messages dropped as not JSON-RPC on the stream being read: the first is warned about, the
    # count is logged when the stream ends (read_events), and starts again with the next one.
    ignored: int = 0


async def deliver_payload(
    data: bytes | str, deliver: Deliver, cursor: StreamCursor, origin: str
) -> None:
    """Parse one JSON body or SSE data field and hand each message over; garbage is dropped,
    with a warning for the first on its stream (the rest are counted, see ``read_events``)."""
    try:
        messages = parse_payload(data)
    except MessageError as exc:
        head = data[:120]
        text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
        excerpt = text + ("…" if len(data) > 120 else "")
        cursor.problem = f"{exc} ({origin}: {excerpt!r})"
        cursor.ignored += 1
        if cursor.ignored == 1:
            log.warning(
                "ignored a message from the server that is not JSON-RPC: %s", cursor.problem
            )
        else:
            log.debug("ignored another message that is not JSON-RPC: %s", cursor.problem)
        return
    for message in messages:
        if (
            message.kind is Kind.RESPONSE
            and message.id is not None
            and message.id == cursor.awaiting
        ):
            cursor.answered = True
        await deliver(message)


async def read_events(
    response: httpx.Response, limit: int = MAX_MESSAGE, cursor: StreamCursor | None = None
) -> AsyncGenerator[Event, None]:
    """The events of an SSE response; a broken connection becomes ConnectionLost. An event
    over ``limit`` bytes comes as one ``too_large`` event, at once (see ``on_too_large``).
    ``cursor``: the stream's, whose count of dropped messages is logged when the stream ends."""
    parser = EventParser(limit)
    try:
        async for chunk in response.aiter_bytes():
            # Popped, not iterated: a loop variable would keep the last (maybe 50 MB) event
            # alive while this generator waits for the next chunk.
            ready = parser.feed(chunk)
            while ready:
                yield ready.pop(0)
        ready = parser.finish()
        while ready:
            yield ready.pop(0)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout) as exc:
        log.debug("event stream from %s broke: %r", response.url.host, exc)
        raise ConnectionLost("the server's event stream broke off") from exc
    finally:
        if cursor is not None:
            if cursor.ignored > 1:
                log.warning(
                    "ignored %d messages from the server that were not JSON-RPC on one event "
                    "stream (the first is shown above)",
                    cursor.ignored,
                )
            cursor.ignored = 0


def check_content_type(response: httpx.Response, *expected: str) -> str:
    content_type = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    if content_type not in expected:
        raise ProtocolViolation(
            f"the server answered {response.request.method} {display_url(response.url)} with "
            f"content type "
            f"{content_type or 'none'}, not {' or '.join(expected)}",
            "the URL may point at a web page rather than an MCP endpoint; check the path",
        )
    return content_type


# How much of a body the relay has no use for (the "Accepted" of a 202) it reads, so that the
# connection can be reused; past that it stops reading and the connection is closed.
ACK_BODY_LIMIT = 64 * 1024


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """A JSON answer's body, read as it streams; past ``limit`` bytes it is MessageTooLarge
    (what came is let go, and the caller's ``aclose`` drops the connection with the rest)."""
    length = response.headers.get("content-length", "")
    # ASCII digits only ("³" is a digit to str.isdigit, not to int), and no int() of thousands.
    if length.isascii() and length.isdigit() and (len(length) > 19 or int(length) > limit):
        raise MessageTooLarge(limit)
    first = b""  # most bodies come in one piece: kept as it is, no copy
    more: bytearray | None = None
    try:
        async for chunk in response.aiter_bytes():
            if more is None and not first:
                if len(chunk) > limit:
                    raise MessageTooLarge(limit)
                first = chunk
                continue
            if more is None:
                more = bytearray(first)
                first = b""
            if len(more) + len(chunk) > limit:
                more = None  # let the gathered part go before the error is handled
                raise MessageTooLarge(limit)
            more += chunk
    except httpx.HTTPError as exc:
        raise ConnectionLost(f"the server's answer broke off ({exc})") from exc
    return first if more is None else bytes(more)


async def discard_body(response: httpx.Response, limit: int = ACK_BODY_LIMIT) -> None:
    """Read and drop a body the relay has no use for, so the connection can be reused; one
    longer than ``limit`` is not read further, and closing the response closes its connection."""
    seen = 0
    try:
        async for chunk in response.aiter_bytes():
            seen += len(chunk)
            if seen > limit:
                log.debug(
                    "the server's %s answer to %s went on past %s; its connection is closed",
                    response.status_code,
                    response.request.method,
                    describe_size(limit),
                )
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()


def envelope_of(head: bytes) -> tuple[Kind | None, RequestId | None]:
    """What the first bytes of a JSON-RPC message say it is, from its top-level members as
    far as they came: REQUEST (a ``method`` came; notifications too), RESPONSE (``result`` or
    ``error`` came) or None; and its ``id``, if that came whole."""
    text = head.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    kind: Kind | None = None
    request_id: RequestId | None = None
    pos = _skip_space(text, 0)
    if text[pos : pos + 1] != "{":
        return None, None
    pos += 1
    try:
        while True:
            pos = _skip_space(text, pos)
            key, pos = decoder.raw_decode(text, pos)
            pos = _skip_space(text, pos)
            if not isinstance(key, str) or text[pos : pos + 1] != ":":
                break
            pos = _skip_space(text, pos + 1)
            if key == "method":
                return Kind.REQUEST, request_id
            if key in ("result", "error"):
                kind = Kind.RESPONSE
                if request_id is not None:
                    break
            value, end = decoder.raw_decode(text, pos)
            if end >= len(text):
                break  # a number cut off by the end of the head may be longer
            if key == "id" and isinstance(value, (str, int)) and not isinstance(value, bool):
                request_id = value
            pos = _skip_space(text, end)
            if text[pos : pos + 1] != ",":
                break
            pos += 1
    except ValueError:
        pass  # the head ends inside this member
    return kind, request_id


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


async def on_too_large(
    event: Event, cursor: StreamCursor, deliver: Deliver, limit: int, origin: str
) -> None:
    """An event over the limit, dropped by the parser as it came (the rest of it is skipped).

    On a request's stream, an answer (or what cannot be told from one) is the request's
    MessageTooLarge; on a stream that awaits nothing (legacy SSE) an answer whose id came is
    answered with that error under its id. Anything else (a notification or a request from
    the server, or an answer after the awaited one) is dropped with a warning, and the stream
    goes on."""
    kind, request_id = envelope_of(event.head)
    size = describe_size(limit)
    if kind is not Kind.REQUEST:
        if cursor.awaiting is not None and not cursor.answered:
            raise MessageTooLarge(limit)
        if cursor.awaiting is None and kind is Kind.RESPONSE and request_id is not None:
            error = MessageTooLarge(limit)
            log.warning("the answer to request %r: %s", request_id, error.advice())
            body = error_response(request_id, UPSTREAM_ERROR, error.advice())
            await deliver(Message(Kind.RESPONSE, body, ""))
            return
    what = "a message"
    if kind is Kind.REQUEST:
        what = "a request or notification"
    elif kind is Kind.RESPONSE:
        what = "an answer"
    log.warning(
        "dropped %s of over %s from the server (%s): the relay's limit for one message is "
        "--max-message-size",
        what,
        size,
        origin,
    )
