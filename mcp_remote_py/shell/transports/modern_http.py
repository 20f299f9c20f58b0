"""Streamable HTTP as revision 2026-07-28 has it: each request its own POST, and no session.

Spec clauses this module keeps (2026-07-28 basic/transports/streamable-http):
* §Sending Messages: POST with ``Accept: application/json, text/event-stream`` and the request
  metadata headers (``core.request_metadata``); a request is answered with one JSON object or an
  SSE stream scoped to it. The revision defines no client notifications over HTTP: closing the
  response stream is the cancellation (§Cancellation), so notifications are not sent.
* §Receiving Messages: notifications on a request's stream, then its response; no
  ``Last-Event-ID``: a stream that breaks before the response has lost the request (changelog
  major change 9), which is ``ConnectionLost`` (the relay re-issues only what is harmless).
* §Backward Compatibility: a 4xx whose body is a recognised modern JSON-RPC error (-32020,
  -32021, -32022, or -32601 with 404) is the server's *answer* and proves it modern: it is
  delivered to the client under the request's id. Once the server is known modern, any JSON-RPC
  error body is its answer. Anything else stays an ``UpstreamHttpError`` (a legacy server, a
  proxy), which the relay answers with its own error so that a dual-era client falls back.
* No ``Mcp-Session-Id``, no GET stream, no DELETE (§Earlier Streamable HTTP Revisions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import httpx
import trio

from ...core.eras import jsonrpc_error_body, proves_modern
from ...core.errors import ConnectionLost, ProtocolViolation, UpstreamError, UpstreamHttpError
from ...core.jsonrpc import Kind, Message, MessageError, line, parse_payload
from ...core.request_metadata import ParamHeader, metadata_headers
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

__all__ = ["ModernHttpTransport"]

log = logging.getLogger("mcp_remote_py")

ACCEPT_POST = "application/json, text/event-stream"
# Statuses that are about getting through, not about the request: OAuth handles 401/403, the
# relay's retry policy 429 and 502-504; a JSON-RPC body on them is no answer to deliver.
_NOT_AN_ANSWER = frozenset({401, 403, 407})
# After a response, how long to let the server end its stream so the connection is reused.
DRAIN_AFTER_ANSWER = 1.0


class ModernHttpTransport(Transport):
    name = "Streamable HTTP (2026-07-28)"
    answers_inline = True

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        deliver: Deliver,
        nursery: trio.Nursery,
        options: NetworkOptions,
        on_lost: Callable[[UpstreamError], None],
        authorize: Authorize | None = None,
        tool_headers: Callable[[str], Sequence[ParamHeader]] | None = None,
    ) -> None:
        """``tool_headers(name)`` gives the ``x-mcp-header`` parameters of a tool, from the
        last ``tools/list`` the relay saw."""
        super().__init__(client, url, deliver, nursery, options, on_lost, authorize)
        self._tool_headers = tool_headers
        # Whether an answer has shown the server speaks 2026-07-28 (§Backward Compatibility).
        self.proven_modern = False

    async def send_request(self, message: Message) -> None:
        await self.send(message, self._deliver)

    async def send(self, message: Message, deliver: Deliver) -> None:
        """POST one request and hand what its stream carries to ``deliver``; returns once the
        response has been delivered. Raises UpstreamError when it could not be sent, or when
        the stream broke before the response (the server may have begun the work)."""
        assert message.id is not None
        request = self._post(message)
        response = await self._send(request, message, deliver)
        if response is None:
            return  # a JSON-RPC error answer, delivered
        cursor = StreamCursor(awaiting=message.id)
        try:
            if response.status_code == 202:
                raise ProtocolViolation(
                    f"the server accepted the {message.method} request with HTTP 202 but sent no "
                    "answer",
                    "a Streamable HTTP server must answer a request with JSON or an event stream",
                )
            content_type = check_content_type(response, "application/json", "text/event-stream")
            if content_type == "application/json":
                body = await read_body(response, self._options.max_message)
                await deliver_payload(body, deliver, cursor, "JSON body")
            else:
                await self._read_stream(response, cursor, deliver)
        finally:
            await response.aclose()
        if cursor.answered:
            self.proven_modern = True
            return
        if cursor.problem:
            raise ProtocolViolation(f"the server's answer could not be read: {cursor.problem}")
        raise ConnectionLost(
            "the connection to the server was lost while it was handling this request"
        )

    async def send_message(self, message: Message) -> None:
        # §Sending Messages, note: no client notifications over HTTP in this revision (the relay
        # turns notifications/cancelled into closing the request's stream), and a modern server
        # sends no requests, so there are no responses to carry either.
        log.debug("not sent to a 2026-07-28 server: %s", message.method or "a response")

    async def close(self) -> None:
        """Nothing to end: there is no session (the pool's connections go with the client)."""

    def _post(self, message: Message) -> httpx.Request:
        body = message.body
        params: Sequence[ParamHeader] = ()
        name = message.params.get("name")
        if message.method == "tools/call" and isinstance(name, str) and self._tool_headers:
            params = self._tool_headers(name)
        headers = [
            ("Accept", ACCEPT_POST),
            ("Content-Type", "application/json"),
            *metadata_headers(body, params),
        ]
        return self.client.build_request("POST", self.url, content=line(message), headers=headers)

    async def _send(
        self, request: httpx.Request, message: Message, deliver: Deliver
    ) -> httpx.Response | None:
        """The answer to ``request``; None when it was a JSON-RPC error, delivered already."""
        request = await self._authorized(request)
        try:
            response = await send(self.client, request)
        except httpx.TransportError as exc:
            raise describe_network_error(exc, request.url, self._options) from exc
        self.url = response.url
        if response.status_code < 400:
            return response
        error = await http_error(response)
        answer = self._error_answer(error)
        if answer is None:
            raise error
        await deliver(_under_id(answer, message))
        return None

    def _error_answer(self, error: UpstreamHttpError) -> Message | None:
        if error.status in _NOT_AN_ANSWER or error.transient:
            return None
        parsed = jsonrpc_error_body(error.body)
        if parsed is None:
            return None
        if proves_modern(error.status, parsed):
            self.proven_modern = True
        elif not self.proven_modern:
            return None  # a legacy server's refusal ("Bad Request: no session") is no answer
        try:
            (answer,) = parse_payload(error.body)
        except (MessageError, ValueError):
            return None
        return answer if answer.kind is Kind.RESPONSE else None

    async def _read_stream(
        self, response: httpx.Response, cursor: StreamCursor, deliver: Deliver
    ) -> None:
        limit = self._options.max_message
        events = read_events(response, limit, cursor)
        try:
            async for event in events:
                if event.too_large:
                    await on_too_large(event, cursor, deliver, limit, "event stream")
                elif event.event in ("", "message") and event.data:
                    await deliver_payload(event.data, deliver, cursor, "event stream")
                if cursor.answered:
                    break
            else:
                return
            # §Receiving Messages: the response SHOULD end the stream; let it, so the
            # connection goes back to the pool rather than being torn down.
            with trio.move_on_after(DRAIN_AFTER_ANSWER):
                async for _ in events:
                    pass
        except ConnectionLost:
            if not cursor.answered:
                raise
        finally:
            await events.aclose()


def _under_id(answer: Message, request: Message) -> Message:
    """The server's error answer with the request's id: servers may answer a request they
    reject before reading it with ``"id": null`` (§Security & Endpoint allows no id)."""
    if answer.id == request.id:
        return answer
    body = dict(answer.body)
    body["id"] = request.id
    return Message(Kind.RESPONSE, body, "")
