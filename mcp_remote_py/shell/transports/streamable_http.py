"""Streamable HTTP (MCP 2025-03-26 … 2025-11-25): one POST per message, answers as JSON or SSE.

Spec clauses this module keeps (2025-11-25 basic/transports):
* §Sending messages: POST with ``Accept: application/json, text/event-stream``; a notification or
  response is answered 202; a request is answered with one JSON object or an SSE stream.
* §Session management: keep ``MCP-Session-Id`` from the InitializeResult's response and send it on
  every later request; 404 to a request carrying it means the session is gone; DELETE on exit
  (405 allowed).
* §Protocol version header: ``MCP-Protocol-Version`` (the negotiated one) on every request after
  initialize.
* §Listening: an optional GET stream for server-initiated messages; 405 means there is none.
* §Resumability: event ids are a per-stream cursor; resume with GET and ``Last-Event-ID`` after
  waiting the stream's ``retry`` (the client MUST respect it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
import trio

from ...core.backoff import Backoff, server_delay
from ...core.errors import (
    ConnectionLost,
    ProtocolViolation,
    SessionLost,
    UpstreamError,
    UpstreamHttpError,
    UpstreamUnavailable,
)
from ...core.jsonrpc import Message, RequestId, line
from ...core.sse import Event
from ..net import NetworkOptions, describe_network_error, http_error, send
from .base import (
    Authorize,
    Deliver,
    StreamCursor,
    Transport,
    check_content_type,
    deliver_payload,
    on_too_large,
    read_body,
    read_events,
)

__all__ = ["StreamableHttpTransport"]

log = logging.getLogger("mcp_remote_py")

ACCEPT_POST = "application/json, text/event-stream"
ACCEPT_STREAM = "text/event-stream"
MAX_RESUMES = 5
DELETE_TIMEOUT = 2.0
# A GET stream that stayed open this long was healthy; its end is not an error to back off from.
HEALTHY_STREAM = 1.0
STREAM_HEADERS_TIMEOUT = 10.0
# How long the requests after notifications/initialized wait for the GET stream to open.
LISTEN_HEAD_START = 1.0
# After a request's answer, how long to wait for the server to end its stream (so the
# connection can be reused) before closing it ourselves.
DRAIN_AFTER_ANSWER = 1.0


def _is_session_error(error: UpstreamHttpError) -> bool:
    # 400 "No valid session ID provided" (server-everything and other TypeScript SDK servers).
    return error.status == 400 and "session" in error.excerpt.lower()


class StreamableHttpTransport(Transport):
    name = "Streamable HTTP"
    answers_inline = True

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        deliver: Deliver,
        nursery: trio.Nursery,
        options: NetworkOptions,
        backoff: Backoff,
        on_lost: Callable[[UpstreamError], None],
        authorize: Authorize | None = None,
    ) -> None:
        super().__init__(client, url, deliver, nursery, options, on_lost, authorize)
        self._backoff = backoff
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._listener: trio.CancelScope | None = None
        self._closed = False

    def set_protocol_version(self, version: str) -> None:
        self.protocol_version = version

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    async def _send(self, request: httpx.Request) -> httpx.Response:
        request = await self._authorized(request)
        try:
            response = await send(self.client, request)
        except httpx.TransportError as exc:
            raise describe_network_error(exc, request.url, self._options) from exc
        self.url = response.url
        if response.status_code >= 400:
            error = await http_error(response)
            with_session = "mcp-session-id" in request.headers
            if with_session and (error.status == 404 or _is_session_error(error)):
                raise SessionLost(
                    f"the server no longer knows this session (HTTP {error.status})",
                    "it was probably restarted or expired the session",
                )
            raise error
        return response

    def _post_request(self, message: Message) -> httpx.Request:
        headers = self._headers(ACCEPT_POST)
        headers["Content-Type"] = "application/json"
        return self.client.build_request("POST", self.url, content=line(message), headers=headers)

    async def send_request(self, message: Message) -> None:
        request_id = message.id
        assert request_id is not None
        response = await self._send(self._post_request(message))
        cursor = StreamCursor(awaiting=request_id)
        try:
            if message.method == "initialize":
                self._learn_session(response)
            if response.status_code == 202:
                raise ProtocolViolation(
                    f"the server accepted the {message.method} request with HTTP 202 but sent no "
                    "answer",
                    "a Streamable HTTP server must answer a request with JSON or an event stream",
                )
            await self._read_answer(response, cursor)
        except ConnectionLost:
            if cursor.last_event_id is None:
                raise
        finally:
            await response.aclose()
        if not cursor.answered:
            await self._resume(cursor, request_id)

    def _learn_session(self, response: httpx.Response) -> None:
        session_id = response.headers.get("mcp-session-id")
        if session_id is None:
            return
        # §Session management: visible ASCII only (0x21-0x7E).
        if not session_id or any(not 0x21 <= ord(c) <= 0x7E for c in session_id):
            raise ProtocolViolation("the server sent an Mcp-Session-Id with invalid characters")
        self.session_id = session_id

    async def _read_answer(self, response: httpx.Response, cursor: StreamCursor) -> None:
        content_type = check_content_type(response, "application/json", ACCEPT_STREAM)
        if content_type == "application/json":
            body = await read_body(response, self._options.max_message)
            await deliver_payload(body, self._deliver, cursor, "JSON body")
            return
        await self._read_stream(response, cursor)

    async def _read_stream(self, response: httpx.Response, cursor: StreamCursor) -> None:
        events = read_events(response, self._options.max_message, cursor)
        try:
            async for event in events:
                await self._handle_event(event, cursor)
                if cursor.answered:
                    break
            else:
                return
            # Answered: give the server a moment to end the stream (§Sending messages 6 says it
            # SHOULD), so the connection goes back to the pool instead of being torn down.
            with trio.move_on_after(DRAIN_AFTER_ANSWER):
                async for event in events:
                    await self._handle_event(event, cursor)
        except ConnectionLost:
            if not cursor.answered:
                raise
        finally:
            await events.aclose()

    async def _handle_event(self, event: Event, cursor: StreamCursor) -> None:
        if event.id:
            cursor.last_event_id = event.id
        if event.retry is not None:
            cursor.retry_ms = event.retry
        if event.too_large:
            limit = self._options.max_message
            await on_too_large(event, cursor, self._deliver, limit, "event stream")
            return
        # A data-less event with an id only primes resumption (§Sending messages 6).
        if event.event in ("", "message") and event.data:
            await deliver_payload(event.data, self._deliver, cursor, "event stream")

    async def _resume(self, cursor: StreamCursor, request_id: RequestId) -> None:
        """The stream ended before the answer: poll it again with Last-Event-ID (§Resumability).

        The server took this request, so it is never sent again: if the stream cannot be resumed
        (no event id, the server forgot the session, it stays down), the answer is an error that
        says the server may or may not have carried it out.
        """
        for attempt in range(MAX_RESUMES):
            if cursor.last_event_id is None:
                break
            floor = server_delay(cursor.retry_ms / 1000 if cursor.retry_ms is not None else None)
            await trio.sleep(self._backoff.delay(attempt, floor=floor) if attempt else floor)
            headers = self._headers(ACCEPT_STREAM)
            headers["Last-Event-ID"] = cursor.last_event_id
            try:
                response = await self._send(
                    self.client.build_request("GET", self.url, headers=headers)
                )
            except UpstreamHttpError as exc:
                if exc.status == 405 or not exc.transient:
                    break  # the server cannot resume streams
                continue
            except (UpstreamUnavailable, ConnectionLost):
                continue  # the server may be restarting: try again
            except SessionLost:
                break
            try:
                check_content_type(response, ACCEPT_STREAM)
                await self._read_stream(response, cursor)
            except ConnectionLost:
                pass
            finally:
                await response.aclose()
            if cursor.answered:
                return
        if cursor.problem:
            raise ProtocolViolation(f"the server's answer could not be read: {cursor.problem}")
        raise ConnectionLost(
            "the connection to the server was lost while it was handling this request"
        )

    async def send_message(self, message: Message) -> None:
        response = await self._send(self._post_request(message))
        try:
            if response.status_code != 202 and response.headers.get("content-length") != "0":
                # Not what §Sending messages asks for a notification, but harmless: relay it.
                content_type = response.headers.get("content-type", "")
                if "json" in content_type or "event-stream" in content_type:
                    await self._read_answer(response, StreamCursor())
        finally:
            await response.aclose()
        if message.method == "notifications/initialized" and self._listener is None:
            self._listener = trio.CancelScope()
            listening = trio.Event()
            self._nursery.start_soon(self._listen, self._listener, listening)
            # TypeScript SDK servers (server-everything among them) send the requests they make
            # on their own, such as roots/list from a tool, only on the GET stream (§Listening
            # for messages from the server), and drop them while none is open. So the client's
            # next request goes out once the stream is open, as the TypeScript client's does;
            # bounded, so that a proxy holding back the stream's headers costs one second once.
            with trio.move_on_after(LISTEN_HEAD_START):
                await listening.wait()

    async def _listen(self, scope: trio.CancelScope, listening: trio.Event) -> None:
        """The GET stream for server-initiated requests and notifications, kept open.
        ``listening`` is set once the first attempt has its answer (or failed)."""
        cursor = StreamCursor()
        attempt = 0
        with scope:
            while not self._closed:
                headers = self._headers(ACCEPT_STREAM)
                if cursor.last_event_id:
                    headers["Last-Event-ID"] = cursor.last_event_id
                opened = time.monotonic()
                try:
                    try:
                        response = await self._send(
                            self.client.build_request("GET", self.url, headers=headers)
                        )
                    finally:
                        listening.set()
                except UpstreamHttpError as exc:
                    if exc.status == 405:
                        log.debug("the server offers no GET stream (HTTP 405); that is fine")
                        return
                    self._log_listen_failure(attempt, exc)
                except SessionLost as exc:
                    self._on_lost(exc)
                    return
                except UpstreamError as exc:
                    self._log_listen_failure(attempt, exc)
                except trio.TooSlowError:
                    self._log_listen_failure(attempt, ProtocolViolation("no headers came"))
                else:
                    try:
                        check_content_type(response, ACCEPT_STREAM)
                        await self._read_stream(response, cursor)
                    except UpstreamError as exc:
                        log.debug("GET stream ended: %s", exc)
                    finally:
                        await response.aclose()
                    if time.monotonic() - opened > HEALTHY_STREAM:
                        # A stream that lived and then ended (an idle cut by a proxy, a server
                        # that polls): reopen at once, after the server's retry if it gave one,
                        # so that server messages sent meanwhile are not missed.
                        attempt = -1
                floor = server_delay((cursor.retry_ms or 0) / 1000)
                delay = floor if attempt < 0 else self._backoff.delay(attempt, floor=floor)
                attempt += 1
                await trio.sleep(delay)

    async def abandon(self) -> None:
        self.session_id = None  # the server has forgotten it: no DELETE
        await self.close()

    @staticmethod
    def _log_listen_failure(attempt: int, exc: UpstreamError) -> None:
        # One line per outage on stderr, not one per retry.
        level = logging.INFO if attempt == 0 else logging.DEBUG
        log.log(level, "the server's GET stream could not be reopened (%s); retrying", exc)

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
        if self.session_id is None:
            return
        # §Session management 5: DELETE ends the session; 405 means the server keeps it.
        with trio.move_on_after(DELETE_TIMEOUT):
            request = self.client.build_request(
                "DELETE", self.url, headers=self._headers(ACCEPT_POST)
            )
            try:
                response = await send(self.client, await self._authorized(request))
                await response.aclose()
                log.debug("session ended (DELETE answered %s)", response.status_code)
            except (httpx.HTTPError, UpstreamError) as exc:
                log.debug("DELETE of the session failed: %s", exc)
