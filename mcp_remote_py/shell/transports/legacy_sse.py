"""Legacy HTTP+SSE (MCP 2024-11-05): one GET event stream for answers, POSTs to its ``endpoint``.

2024-11-05 basic/transports: the client opens an SSE stream; the server's first event is
``endpoint``, a URI the client must use for sending messages; server messages arrive as ``message``
events. There is no resumption: when the stream ends, the session is gone.

Refusing an ``endpoint`` on another origin keeps headers and tokens at the server they were given
for (DESIGN.md invariant 6).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable

import httpx
import trio

from ...core.errors import (
    ConnectionLost,
    ProtocolViolation,
    SessionLost,
    UpstreamError,
    UpstreamHttpError,
)
from ...core.jsonrpc import Message, line
from ...core.sse import Event
from ..net import (
    NetworkOptions,
    describe_network_error,
    display_url,
    http_error,
    resolve_location,
    same_origin,
    send,
)
from .base import (
    Authorize,
    Deliver,
    StreamCursor,
    Transport,
    check_content_type,
    deliver_payload,
    discard_body,
    on_too_large,
    read_events,
)

__all__ = ["LegacySseTransport"]

log = logging.getLogger("mcp_remote_py")

# server-everything never answers a POST for a session it does not know: bound every POST.
POST_TIMEOUT = 30.0
BUFFERING_HINT = (
    "A reverse proxy may be buffering or compressing the event stream (nginx: "
    "proxy_buffering off and gzip off for text/event-stream; Caddy: flush_interval -1)"
)


class LegacySseTransport(Transport):
    name = "legacy HTTP+SSE"
    answers_inline = False

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
        super().__init__(client, url, deliver, nursery, options, on_lost, authorize)
        self.endpoint: httpx.URL | None = None
        self._lost: UpstreamError | None = None
        self._reader = trio.CancelScope()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        request = await self._authorized(request)
        try:
            response = await send(self.client, request)
        except httpx.TransportError as exc:
            raise describe_network_error(exc, request.url, self._options) from exc
        if response.status_code >= 400:
            raise await http_error(response)
        return response

    async def connect(self) -> None:
        """Open the stream and wait for the ``endpoint`` event, both within one bound: a proxy
        that buffers the stream holds back its headers as well as its events."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        wait = max(self._options.connect_timeout, 5.0)
        response: httpx.Response | None = None
        events: AsyncGenerator[Event, None] | None = None
        cursor = StreamCursor()
        try:
            with trio.move_on_after(wait) as waited:
                request = self.client.build_request("GET", self.url, headers=headers)
                response = await self._send(request)
                check_content_type(response, "text/event-stream")
                events = read_events(response, self._options.max_message, cursor)
                self.endpoint = await self._await_endpoint(response, events)
            if waited.cancelled_caught:
                raise ProtocolViolation(
                    f"the SSE stream at {display_url(self.url)} sent no endpoint event "
                    f"within {wait:g} s",
                    BUFFERING_HINT,
                )
        except BaseException:
            if events is not None:
                await events.aclose()
            if response is not None:
                await response.aclose()
            raise
        assert response is not None
        assert events is not None
        self._nursery.start_soon(self._read, response, events, cursor)

    async def _await_endpoint(
        self, response: httpx.Response, events: AsyncGenerator[Event, None]
    ) -> httpx.URL:
        async for event in events:
            if event.event != "endpoint" or event.too_large:
                continue
            data = event.data.strip().decode("utf-8", "replace")
            target = resolve_location(response.url, data, "legacy SSE endpoint event")
            if not same_origin(response.url, target):
                raise ProtocolViolation(
                    f"the server's SSE endpoint event points to another origin ({target.host})",
                    "the relay never sends your messages, headers or tokens to another server",
                )
            return target
        raise ProtocolViolation(
            f"the SSE stream at {display_url(response.url)} ended before its endpoint event",
            "this URL does not look like a legacy MCP SSE endpoint; check the path",
        )

    async def _read(
        self,
        response: httpx.Response,
        events: AsyncGenerator[Event, None],
        cursor: StreamCursor,
    ) -> None:
        error: UpstreamError = ConnectionLost("the server closed the SSE stream")
        with self._reader:
            try:
                async for event in events:
                    if event.too_large:
                        limit = self._options.max_message
                        await on_too_large(event, cursor, self._deliver, limit, "SSE stream")
                    elif event.event in ("", "message") and event.data:
                        await deliver_payload(event.data, self._deliver, cursor, "SSE stream")
                    del event  # a 50 MB message must not stay alive until the next one
            except UpstreamError as exc:
                error = exc
            finally:
                await events.aclose()
                await response.aclose()
            self._lost = error
            self._on_lost(error)

    async def _post(self, message: Message) -> None:
        if self._lost is not None:
            raise SessionLost(f"the SSE session is gone ({self._lost})")
        assert self.endpoint is not None
        request = self.client.build_request(
            "POST",
            self.endpoint,
            content=line(message),
            headers={"Content-Type": "application/json"},
        )
        with trio.move_on_after(POST_TIMEOUT) as waited:
            try:
                response = await self._send(request)
            except UpstreamHttpError as exc:
                if exc.status == 404:
                    raise SessionLost(
                        "the server no longer knows this SSE session (HTTP 404)"
                    ) from exc
                raise
            # The short "Accepted": read, so the connection is reused; a body that goes on is
            # not held (it was once 3 GB) but dropped with its connection.
            await discard_body(response)
        if waited.cancelled_caught:
            raise ConnectionLost(
                f"the server did not acknowledge the message within {POST_TIMEOUT:g} s",
                "it may not know this SSE session any more",
            )

    async def send_request(self, message: Message) -> None:
        await self._post(message)

    async def send_message(self, message: Message) -> None:
        await self._post(message)

    async def close(self) -> None:
        self._reader.cancel()
