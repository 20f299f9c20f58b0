"""What the relay needs from a transport, and the SSE reading both transports share."""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import trio

from ...core.errors import ConnectionLost, ProtocolViolation, UpstreamError
from ...core.jsonrpc import Kind, Message, MessageError, RequestId, parse_payload
from ...core.sse import Event, EventParser
from ..net import NetworkOptions, display_url

__all__ = [
    "Authorize",
    "Deliver",
    "StreamCursor",
    "Transport",
    "check_content_type",
    "deliver_payload",
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


async def deliver_payload(
    data: bytes | str, deliver: Deliver, cursor: StreamCursor, origin: str
) -> None:
    """Parse one JSON body or SSE data field and hand each message over; garbage is logged."""
    try:
        messages = parse_payload(data)
    except MessageError as exc:
        head = data[:120]
        text = head.decode("utf-8", "replace") if isinstance(head, bytes) else head
        excerpt = text + ("…" if len(data) > 120 else "")
        cursor.problem = f"{exc} ({origin}: {excerpt!r})"
        log.warning("ignored a message from the server that is not JSON-RPC: %s", cursor.problem)
        return
    for message in messages:
        if (
            message.kind is Kind.RESPONSE
            and message.id is not None
            and message.id == cursor.awaiting
        ):
            cursor.answered = True
        await deliver(message)


async def read_events(response: httpx.Response) -> AsyncGenerator[Event, None]:
    """The events of an SSE response; a broken connection becomes ConnectionLost."""
    parser = EventParser()
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
