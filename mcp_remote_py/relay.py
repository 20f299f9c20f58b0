"""The relay: client lines in, server messages out, and exactly one answer for every request.

Data flow::

    stdin lines ─▶ on_client_line ─┬─ request ──────▶ _forward_request (one task each) ─▶ POST
                                   └─ notification ─▶ _send_in_order (one task, FIFO) ─▶ POST
    stdout ◀─ Output ◀─ _deliver ◀─ transport (POST answers, GET stream, legacy SSE stream)

Requests run concurrently, so a slow tool call never holds up a fast one; notifications and
responses to server requests keep their order, and a request waits until every notification the
client sent before it has gone out (``initialize`` → ``notifications/initialized`` → ``tools/list``
must reach the server in that order).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import trio

from .backoff import Backoff
from .errors import ConnectionLost, UpstreamError, UpstreamUnavailable
from .jsonrpc import (
    CONNECTION_LOST,
    INVALID_REQUEST,
    PARSE_ERROR,
    REQUEST_BLOCKED,
    REQUEST_TIMEOUT,
    SHUTTING_DOWN,
    UPSTREAM_ERROR,
    Kind,
    Message,
    MessageError,
    RequestId,
    encode,
    error_response,
    parse_message,
)
from .net import DOCTOR_HINT, NetworkOptions, display_url
from .session import SessionState, ToolFilter, is_relay_id
from .transports.base import Transport
from .transports.negotiate import open_transport

__all__ = ["Output", "Relay", "RelayOptions"]

log = logging.getLogger("mcp_remote_py")

# Claude Desktop gives up on initialize after about 60 s; answer well before that.
INITIALIZE_DEADLINE = 30.0
# After stdin closes, how long answers still in flight may take before they are given up.
EOF_GRACE = 2.0


class Output(Protocol):
    async def write(self, data: bytes) -> None: ...


@dataclass
class RelayOptions:
    url: httpx.URL
    transport: str = "http-first"
    network: NetworkOptions = field(default_factory=NetworkOptions)
    ignore_tools: list[str] = field(default_factory=list)
    request_timeout: float | None = None
    initialize_deadline: float = INITIALIZE_DEADLINE
    backoff: Backoff = field(default_factory=Backoff)
    max_line: int = 256 * 1024 * 1024


class _InOrder:
    """A FIFO of client notifications/responses with a counter requests can wait on."""

    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[Message](math.inf)
        self.enqueued = 0
        self.sent = 0
        self._progress = trio.Event()

    def put(self, message: Message) -> None:
        self.enqueued += 1
        self.send.send_nowait(message)

    def done_one(self) -> None:
        self.sent += 1
        self._progress.set()
        self._progress = trio.Event()

    async def wait_sent(self, count: int) -> None:
        while self.sent < count:
            await self._progress.wait()


class Relay:
    def __init__(self, options: RelayOptions, client: httpx.AsyncClient, output: Output) -> None:
        self.options = options
        self.client = client
        self.output = output
        self.state = SessionState()
        self.tools = ToolFilter(options.ignore_tools)
        self.transport: Transport | None = None
        self._connect_lock = trio.Lock()
        # The first message read opens the session; messages read after it wait for that.
        self._opener: Message | None = None
        self._opener_done = trio.Event()
        self._in_order = _InOrder()
        self._nursery: trio.Nursery | None = None
        self._idle = trio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, client_lines: Any, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Relay until ``client_lines`` (an async iterable of lines, None for an overlong one)
        ends; then answer what is still in flight, end the session and return."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._send_in_order)
                task_status.started()
                async for line in client_lines:
                    await self.on_client_line(line)
                log.info("the client closed stdin; shutting down")
                with trio.move_on_after(EOF_GRACE):
                    await self._wait_idle()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self.shutdown("the relay is shutting down")

    async def shutdown(self, reason: str) -> None:
        """Answer every request still waiting, then end the server session (bounded)."""
        for request_id in list(self.state.pending):
            await self._answer_error(request_id, SHUTTING_DOWN, f"{reason}; no answer will come")
        if self.transport is not None:
            transport, self.transport = self.transport, None
            await transport.close()

    async def _wait_idle(self) -> None:
        while self.state.pending or self._in_order.sent < self._in_order.enqueued:
            self._idle = trio.Event()
            await self._idle.wait()

    def _maybe_idle(self) -> None:
        if not self.state.pending and self._in_order.sent >= self._in_order.enqueued:
            self._idle.set()

    # -- client → server -------------------------------------------------------------------------

    async def on_client_line(self, line: bytes | None) -> None:
        if line is None:
            limit = self.options.max_line // (1024 * 1024)
            await self._write_error(
                None, PARSE_ERROR, f"a line longer than {limit} MiB was dropped; the relay goes on"
            )
            return
        try:
            message = parse_message(line)
        except MessageError as exc:
            log.warning("ignored a line from the client: %s", exc)
            await self._write_error(
                exc.request_id, exc.code, f"{exc}; the line was ignored and the relay goes on"
            )
            return
        if message.kind is Kind.REQUEST:
            await self._on_request(message)
            return
        if message.method == "notifications/cancelled":
            self.state.cancel(message)
        self._claim_opening(message)
        self._in_order.put(message)

    def _claim_opening(self, message: Message) -> None:
        if self.transport is None and self._opener is None:
            self._opener = message
            self._opener_done = trio.Event()

    async def _on_request(self, message: Message) -> None:
        if message.method == "tools/call" and self.tools:
            name = message.params.get("name")
            if isinstance(name, str) and self.tools.hides(name):
                await self._write_error(
                    message.id, REQUEST_BLOCKED, f"the tool {name!r} is disabled by --ignore-tool"
                )
                return
        if self.state.track(message) is None:
            await self._write_error(
                message.id,
                INVALID_REQUEST,
                f"request id {message.id!r} is already in flight; ids must be unique",
            )
            return
        assert self._nursery is not None
        self._claim_opening(message)
        self._nursery.start_soon(self._forward_request, message, self._in_order.enqueued)

    async def _forward_request(self, message: Message, after: int) -> None:
        assert message.id is not None
        started = time.monotonic()
        try:
            with trio.fail_after(self.options.request_timeout or math.inf):
                await self._in_order.wait_sent(after)
                transport, opened_by_this = await self._transport_for(message)
                if not opened_by_this:
                    await transport.send_request(message)
        except UpstreamError as exc:
            await self._answer_upstream_error(message, exc)
        except trio.TooSlowError:
            await self._answer_error(
                message.id,
                REQUEST_TIMEOUT,
                f"the server did not answer {message.method} within --request-timeout "
                f"({self.options.request_timeout:g} s)",
            )
        else:
            log.debug(
                "%s (id %r) took %.1f ms",
                message.method,
                message.id,
                (time.monotonic() - started) * 1000,
            )
        finally:
            self._maybe_idle()

    async def _send_in_order(self) -> None:
        async for message in self._in_order.receive:
            try:
                transport, opened_by_this = await self._transport_for(message)
                if not opened_by_this:
                    await transport.send_message(message)
            except UpstreamError as exc:
                what = message.method or f"the answer to server request {message.id!r}"
                log.warning("could not deliver %s to the server: %s", what, exc.advice())
            finally:
                self._in_order.done_one()
                self._maybe_idle()

    async def _transport_for(self, message: Message) -> tuple[Transport, bool]:
        """The session's transport, opened with ``message`` if there is none yet (then True)."""
        if self._opener is not None and self._opener is not message:
            await self._opener_done.wait()
        async with self._connect_lock:
            if self.transport is not None:
                return self.transport, False
            try:
                transport = await self._open(message)
            finally:
                if self._opener is message:
                    self._opener = None
                    self._opener_done.set()
            # The initialize answer has been delivered by now: later requests carry its version.
            if self.state.protocol_version:
                transport.set_protocol_version(self.state.protocol_version)
            self.transport = transport
            return transport, True

    async def _open(self, first: Message) -> Transport:
        """Open the session, retrying while the cause may pass, within the initialize deadline."""
        assert self._nursery is not None
        url = self.options.url
        deadline = time.monotonic() + self.options.initialize_deadline
        attempt = 0
        while True:
            try:
                return await open_transport(
                    self.options.transport,
                    url,
                    first,
                    client=self.client,
                    deliver=self._deliver,
                    nursery=self._nursery,
                    options=self.options.network,
                    backoff=self.options.backoff,
                    on_lost=self._on_session_lost,
                )
            except UpstreamError as exc:
                floor = getattr(exc, "retry_after", None) or 0.0
                delay = self.options.backoff.delay(attempt, floor=floor)
                if not exc.transient or time.monotonic() + delay > deadline:
                    raise
                log.info("%s; trying again in %.1f s", exc, delay)
                attempt += 1
                await trio.sleep(delay)

    def _on_session_lost(self, error: UpstreamError) -> None:
        """A legacy SSE stream ended: every request waiting on it has lost its answer."""
        log.warning("%s", error.advice())
        self.transport = None
        assert self._nursery is not None
        for request_id in list(self.state.pending):
            self._nursery.start_soon(self._answer_lost, request_id)

    async def _answer_lost(self, request_id: RequestId) -> None:
        await self._answer_error(
            request_id,
            CONNECTION_LOST,
            "the connection to the server was lost while it was handling this request; "
            "it may or may not have been carried out",
        )
        self._maybe_idle()

    # -- server → client -------------------------------------------------------------------------

    async def _deliver(self, message: Message) -> None:
        if message.kind is not Kind.RESPONSE:
            await self.output.write(encode(message))
            return
        if is_relay_id(message.id):
            return
        pending = self.state.take(message.id)
        if pending is None:
            log.debug("dropped an answer for id %r: nothing is waiting for it", message.id)
            return
        if pending.method == "initialize":
            self.state.learn_initialize_result(message.body)
        elif pending.method == "tools/list" and self.tools:
            filtered = self.tools.filter_list_result(message.body)
            if filtered is not None:
                await self.output.write(encode(filtered))
                return
        await self.output.write(encode(message))

    # -- answers from the relay itself -----------------------------------------------------------

    async def _answer_upstream_error(self, message: Message, exc: UpstreamError) -> None:
        assert message.id is not None
        text = exc.advice()
        if message.method == "initialize" and isinstance(exc, UpstreamUnavailable):
            url = display_url(self.options.url)
            text = f"could not reach the MCP server at {url}: {exc}. " + (
                exc.hint or DOCTOR_HINT.format(url=url)
            )
        data: dict[str, Any] = {}
        status = getattr(exc, "status", None)
        if status is not None:
            data["status"] = status
            data["body"] = getattr(exc, "excerpt", "")
        code = CONNECTION_LOST if isinstance(exc, ConnectionLost) else UPSTREAM_ERROR
        log.warning("%s (id %r) failed: %s", message.method, message.id, text)
        await self._answer_error(message.id, code, text, data or None)

    async def _answer_error(
        self, request_id: RequestId, code: int, text: str, data: Any = None
    ) -> None:
        pending = self.state.take(request_id)
        if pending is None or pending.cancelled:
            return  # already answered, or the client said it no longer wants one
        await self._write_error(request_id, code, text, data)

    async def _write_error(
        self, request_id: RequestId | None, code: int, text: str, data: Any = None
    ) -> None:
        await self.output.write(encode(error_response(request_id, code, text, data)))
