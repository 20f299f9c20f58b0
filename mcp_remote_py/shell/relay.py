"""The relay: client lines in, server messages out, and exactly one answer for every request.

Data flow::

    stdin lines ─▶ on_client_line ─┬─ request ──────▶ _forward_request (one task each) ─▶ POST
                                   └─ notification ─▶ _send_in_order (one task, FIFO) ─▶ POST
    stdout ◀─ Output ◀─ _deliver ◀─ transport (POST answers, GET stream, legacy SSE stream)

Requests run concurrently, so a slow tool call never holds up a fast one; notifications and
responses to server requests keep their order, and a request waits until every notification the
client sent before it has gone out (``initialize`` → ``notifications/initialized`` → ``tools/list``
must reach the server in that order).

Staying connected (DESIGN.md invariants 2–4):

* The first message read opens the session. If the session is lost later (404, 400 "no valid
  session", a legacy stream that ends, a restarted server), the relay opens a new one by itself,
  replaying the captured ``initialize`` under a relay-owned id and what followed it
  (``SessionState.replay_plan``), swallowing the answers; then tells the client its lists may have
  changed. The request that met the loss is sent again once: the server never took it.
* While the server is unreachable, requests wait with backoff and are sent when it is back;
  ``may_resend`` decides what may be sent again. Each wait ends: ``--max-retries``,
  ``--request-timeout``, the client's ``notifications/cancelled``, or shutdown.
* An idle session is pinged every ``--keepalive`` seconds, so a session the server dropped is
  noticed (and re-established) before the client's next call.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from ..core.eras import MODERN_ERROR_CODES, is_modern_version
from ..core.errors import (
    ConnectionLost,
    ModernOnlyServer,
    ProtocolViolation,
    SessionLost,
    UpstreamError,
    UpstreamHttpError,
    UpstreamUnavailable,
)
from ..core.jsonrpc import (
    CONNECTION_LOST,
    INVALID_REQUEST,
    PARSE_ERROR,
    RELAY_FAILURE,
    REQUEST_BLOCKED,
    REQUEST_TIMEOUT,
    SHUTTING_DOWN,
    UPSTREAM_ERROR,
    Kind,
    Message,
    MessageError,
    RequestId,
    cancelled_notification,
    error_response,
    line,
    parse_message,
)
from ..core.session import (
    RELAY_ID_PREFIX,
    SessionState,
    ToolFilter,
    is_side_effect_free,
    may_resend,
)
from .bridge_down import BridgeDown
from .bridge_up import BridgeUp
from .era_cache import LEGACY, LEGACY_ONLY, MODERN_ONLY, EraCache
from .modern import ModernUpstream
from .net import DOCTOR_HINT, display_url
from .relay_options import Output, RelayOptions, SignInFactory
from .sign_in import SignInGate
from .transports.base import Transport
from .transports.negotiate import open_transport

__all__ = ["Relay"]

log = logging.getLogger("mcp_remote_py")

# After stdin closes, how long answers still in flight may take before they are given up.
EOF_GRACE = 2.0
# How long a replayed initialize may take to be answered.
REPLAY_TIMEOUT = 30.0


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


@dataclass
class _Answer:
    """Where the answer to one of the relay's own requests lands."""

    arrived: trio.Event = field(default_factory=trio.Event)
    message: Message | None = None
    method: str | None = None
    lost: bool = False  # its legacy SSE stream ended before the answer came
    failure: Exception | None = None  # sending it failed
    # Called with the answer as it arrives, in the task that read it (BridgeDown.carry).
    on_arrival: Callable[[Message], Awaitable[None]] | None = None

    @property
    def body(self) -> dict[str, Any] | None:
        return self.message.body if self.message is not None else None


def _relay_message(body: dict[str, Any]) -> Message:
    if "method" not in body:
        return Message(Kind.RESPONSE, body, "")  # an answer to a server request
    return Message(Kind.REQUEST if "id" in body else Kind.NOTIFICATION, body, "")


class _Bridged(Exception):
    """The session this message waited for turned out to be a bridge to a 2026-07-28 server."""


class Relay:
    def __init__(
        self,
        options: RelayOptions,
        client: httpx.AsyncClient,
        output: Output,
        sign_in: SignInFactory | None = None,
    ) -> None:
        self.options = options
        self.client = client
        self.output = output
        # basic/index: ids are the sender's own; a random part keeps the relay's apart from
        # anything a client can send ("mcp-remote-py/1" from a client is the client's).
        self.state = SessionState(relay_prefix=f"{RELAY_ID_PREFIX}{secrets.token_hex(6)}/")
        self.tools = ToolFilter(options.ignore_tools)
        self.transport: Transport | None = None
        self._session_lock = trio.Lock()
        self._connected_once = False
        self._client_initialized = False
        self._lost: tuple[float, str] | None = None  # when and why the last session was lost
        # The first message read opens the session; messages read after it wait for that.
        self._opener: Message | None = None
        self._opener_done = trio.Event()
        self._in_order = _InOrder()
        self._nursery: trio.Nursery | None = None
        self._idle = trio.Event()
        self._own_requests: dict[str, _Answer] = {}
        # Each running request's scope: cancelled when its client withdraws it (the id is then
        # in _withdrawn), its deadline the --request-timeout.
        self._request_scopes: dict[RequestId, trio.CancelScope] = {}
        self._withdrawn: set[RequestId] = set()
        # Requests sent on a transport that answers on a separate stream (legacy SSE).
        self._awaiting_stream: set[RequestId] = set()
        self._last_activity = 0.0
        self.sign_in = SignInGate(sign_in, options, client)
        # 2026-07-28: requests carrying a modern _meta go to the server without a session.
        self._modern: ModernUpstream | None = None
        self._modern_ids: set[RequestId] = set()
        # The client's era, from its latest request: a dual-era client that probed with
        # server/discover and fell back to initialize speaks legacy from then on.
        self._client_modern = False
        # A legacy client's session with a server that speaks only 2026-07-28 (the bridge up).
        self._bridge: BridgeUp | None = None
        # A 2026-07-28 client's legacy session with a server of the 2025 era (the bridge down).
        self._down: BridgeDown | None = None
        # The relay's own requests whose answers come on a legacy SSE stream.
        self._own_awaiting: set[str] = set()
        self._era = EraCache(options.url)

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self, client_lines: Any, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Relay until ``client_lines`` (an async iterable of lines, None for an overlong one)
        ends; then answer what is still in flight, end the session and return."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._last_activity = trio.current_time()
                self.sign_in.start(nursery)
                nursery.start_soon(self._send_in_order)
                if self.options.keepalive > 0:
                    nursery.start_soon(self._keepalive)
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
        if self._bridge is not None and self._bridge.takes(message):
            await self._bridge.message(message)  # an answer to an MRTR round: no waiting in line
            return
        if message.method == "notifications/cancelled":
            self._on_cancelled(message)
            cancelled = message.params.get("requestId")
            if isinstance(cancelled, (str, int)) and cancelled in self._modern_ids:
                return  # 2026-07-28 §Cancellation: closing the request's stream is the signal
        if self._client_modern:
            # streamable-http §Sending Messages: no client notifications over HTTP this revision.
            log.debug("a 2026-07-28 client's %s is not sent to the server", message.method)
            return
        if message.method == "notifications/initialized":
            self._client_initialized = True
        self._claim_opening(message)
        self._in_order.put(message)

    def _claim_opening(self, message: Message) -> None:
        if (
            self._bridge is None
            and self.transport is None
            and self._opener is None
            and not self._connected_once
        ):
            self._opener = message
            self._opener_done = trio.Event()

    def _on_cancelled(self, message: Message) -> None:
        """The client gave up on a request: stop waiting for it (the notification goes on to the
        server, which may still answer; that answer is relayed, no error is added)."""
        self.state.cancel(message)
        request_id = message.params.get("requestId")
        if isinstance(request_id, (str, int)) and request_id in self._request_scopes:
            self._withdrawn.add(request_id)
            self._request_scopes[request_id].cancel()

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
        assert message.id is not None
        # Read once, and from the envelope alone for a large request (no second parse).
        modern = message.method != "initialize" and is_modern_version(message.protocol_version)
        if message.method == "initialize" and not self._bridged_down():
            self._client_modern = False
        elif modern or message.method == "initialize":
            self._client_modern = True
            self._modern_ids.add(message.id)
        if message.id not in self._modern_ids:
            self._claim_opening(message)
        scope = trio.CancelScope()
        self._request_scopes[message.id] = scope
        self._nursery.start_soon(self._forward_request, message, self._in_order.enqueued, scope)

    async def _forward_request(self, message: Message, after: int, scope: trio.CancelScope) -> None:
        assert message.id is not None
        started = time.monotonic()
        # A subscription lasts until the client ends it: no --request-timeout.
        limit = self.options.request_timeout if message.method != "subscriptions/listen" else 0
        # One plain cancel scope for the client's withdrawal and the timeout (not fail_after,
        # a generator context manager: this runs for every request, and each scope costs).
        if limit:
            scope.deadline = trio.current_time() + limit
        try:
            with scope:
                await self._in_order.wait_sent(after)
                await self._send_request(message)
        except UpstreamError as exc:
            await self._answer_upstream_error(message, exc)
        except Exception as exc:
            # The last resort (DESIGN.md invariant 2): whatever a server sent or a bug did, this
            # request gets one answer and the relay goes on serving the others.
            log.error(
                "%s (id %r) failed inside the relay: %s: %s; the relay goes on",
                message.method,
                message.id,
                type(exc).__name__,
                exc,
                exc_info=True,
            )
            await self._answer_error(
                message.id,
                RELAY_FAILURE,
                f"the relay failed on this {message.method} ({type(exc).__name__}); it goes on "
                "serving. Please report it with the log file (mcp-remote-py --help names it)",
            )
        else:
            owned = self._request_scopes.get(message.id) is scope  # not detached
            if owned and scope.cancelled_caught and message.id not in self._withdrawn:
                await self._answer_error(
                    message.id,
                    REQUEST_TIMEOUT,
                    f"no answer to {message.method} within --request-timeout "
                    f"({limit:g} s); the server may still be working on it",
                )
            else:
                log.debug(
                    "%s (id %r) took %.1f ms",
                    message.method,
                    message.id,
                    (time.monotonic() - started) * 1000,
                )
        finally:
            if self._request_scopes.get(message.id) is scope:  # not detached, id not reused
                del self._request_scopes[message.id]
                self._modern_ids.discard(message.id)
                if message.id in self._withdrawn:
                    self._withdrawn.discard(message.id)
                    self.state.take(message.id)  # the client withdrew it: no answer is owed
            self._maybe_idle()

    async def _send_request(self, message: Message) -> None:
        assert message.id is not None
        if message.id in self._modern_ids:
            self._touch()
            await self._modern_request(message)
            return
        if self._bridge is None and message.method == "initialize" and self._bridge_at_once():
            # The bridge is installed only once its initialize is answered: until then the
            # initialize stays the opener, and what the client sends next waits for it.
            bridge = self._new_bridge()
            try:
                self._touch()
                await self._bounded_initialize(bridge, message, None)
            except UpstreamError as exc:
                if self.options.protocol == "modern" or exc.transient or self.sign_in.needed(exc):
                    self._release_opener()  # the client's next initialize opens afresh
                    raise
                # basic/versioning §Backward Compatibility: re-probe when the cached era fails.
                log.info("the server no longer answers as a 2026-07-28 one (%s); asking again", exc)
                self._era.learn(None)
            else:
                self._install_bridge(bridge)
                return
        if self._bridge is None:
            try:
                transport = await self._to_server(message)
            except ModernOnlyServer as exc:
                if message.method != "initialize" or self._bridge is not None:
                    raise
                if self.options.protocol == "legacy":
                    raise UpstreamError(
                        f"{exc}, and --protocol legacy keeps the relay from bridging to it",
                        "Remove --protocol legacy (the default, auto, bridges)",
                    ) from None
                log.debug("%s", exc)
                self._era.learn(MODERN_ONLY)
                bridge = self._install_bridge(self._new_bridge())
                self._touch()
                await self._bounded_initialize(bridge, message, exc.discover)
                return
            except _Bridged:
                pass
            else:
                # A server that took initialize; one known to refuse modern requests stays so.
                if (
                    message.method == "initialize"
                    and transport is None
                    and self._era.era != LEGACY_ONLY
                ):
                    self._era.learn(LEGACY)
                self._note_stream_answer(message, transport)
                return
        await self._bridge_request(message)

    # -- a 2026-07-28 client ----------------------------------------------------------------------

    def _bridged_down(self) -> bool:
        return self._down is not None and self._down.open

    async def _modern_request(self, message: Message) -> None:
        """A modern client's request: passed through to a modern server, or down the bridge
        to a legacy one (the era cache or ``--protocol legacy`` may say so before asking)."""
        down = self._down
        if down is None and (
            self.options.protocol == "legacy"
            or self.options.transport == "sse-only"  # HTTP+SSE is the 2024-11-05 transport
            or self._era.era == LEGACY_ONLY
        ):
            down = self._new_down()
        if down is not None:
            try:
                await down.request(message)
                return
            except UpstreamError as exc:
                if self.options.protocol == "legacy" and not down.open:
                    raise UpstreamError(
                        "--protocol legacy is set, so the relay does not speak MCP 2026-07-28 "
                        "to the server: it opened a 2025 session for this 2026-07-28 client "
                        f"instead, and that failed: {exc}",
                        "If the server speaks MCP 2026-07-28, remove --protocol legacy",
                    ) from None
                if not isinstance(exc, ModernOnlyServer) or down.open:
                    raise
                # basic/versioning §Backward Compatibility: the cached era failed; ask again.
                log.info("the server refuses initialize now, as a 2026-07-28 one; passing through")
                self._era.learn(MODERN_ONLY)
                self._down = None
        upstream = self._modern_upstream()
        try:
            if message.method == "server/discover" and not upstream.proven_modern:
                await self._discover(upstream, message)
            else:
                await upstream.send(message)
        except UpstreamHttpError as exc:
            if exc.status not in (400, 404, 405) or self.options.protocol == "modern":
                raise
            # streamable-http §Backward Compatibility: a 4xx without a modern error is a
            # legacy server, and it did not run the request: down the bridge with it.
            self._legacy_found(f"it answered {message.method} with HTTP {exc.status}")
            await self._new_down().request(message)

    async def _discover(self, upstream: ModernUpstream, message: Message) -> None:
        """A first ``server/discover``: a legacy server that answers it at all (a stateless
        one takes any POST) answers with an error that is not a modern one (stdio
        §Backward Compatibility: any other error means legacy)."""
        assert message.id is not None
        answer = await upstream.request_answer(dict(message.params), "server/discover")
        error = answer.get("error") if answer is not None else None
        code = error.get("code") if isinstance(error, dict) else None
        if answer is not None and (error is None or code in MODERN_ERROR_CODES):
            await self._deliver(Message(Kind.RESPONSE, {**answer, "id": message.id}, ""))
            return
        if self.options.protocol == "modern":
            await self._deliver(Message(Kind.RESPONSE, {**(answer or {}), "id": message.id}, ""))
            return
        self._legacy_found(f"it answered server/discover with error {code}")
        await self._new_down().request(message)

    def _legacy_found(self, why: str) -> None:
        log.debug("the server speaks only the 2025 protocol: %s", why)
        self._era.learn(LEGACY_ONLY)

    def _new_down(self) -> BridgeDown:
        if self._down is None:
            assert self._nursery is not None
            self._down = BridgeDown(
                self, self.output, self._deliver, self._nursery, self.state, self._one_stream
            )
        return self._down

    async def call(self, body: dict[str, Any]) -> dict[str, Any]:
        """``LegacySide`` for the bridge down: a request of the relay's own through the legacy
        session, opened, re-established and re-sent as a client's would be; its answer."""
        answer = await self._own_request(body, None)
        assert answer.message is not None
        return answer.message.body

    async def carry(
        self, body: dict[str, Any], on_answer: Callable[[Message], Awaitable[None]]
    ) -> None:
        """``LegacySide``: as ``call``, but the answer goes to ``on_answer`` the moment it
        arrives, in the task that read it (no task switch between the server's answer and the
        client's), and the request is sent from this task."""
        await self._own_request(body, on_answer)

    async def _own_request(
        self, body: dict[str, Any], on_answer: Callable[[Message], Awaitable[None]] | None
    ) -> _Answer:
        method = str(body.get("method"))
        # What the bridge queued before this (notifications/initialized, answers to the
        # server's requests) reaches the server first, as a client's own would.
        if self._in_order.sent < self._in_order.enqueued:
            await self._in_order.wait_sent(self._in_order.enqueued)
        for attempt in range(2):
            request_id = self.state.next_relay_id()
            message = _relay_message({**body, "id": request_id})
            answer = self._own_requests[request_id] = _Answer(method=method, on_arrival=on_answer)
            # Sent from this task (carry), it is cancelled with this task: no scope of its own.
            sending = trio.CancelScope() if on_answer is None else None
            assert self._nursery is not None
            try:
                if on_answer is None:
                    # The answer is the caller's the moment it arrives: the POST's stream
                    # (which the server may close a while later) is read to its end in the
                    # background, as a client request's is.
                    self._nursery.start_soon(self._send_own, message, answer, sending)
                else:
                    await self._send_own(message, answer, sending)
                if not answer.arrived.is_set():
                    await answer.arrived.wait()
            except trio.Cancelled:
                if sending is not None:
                    sending.cancel()
                if answer.message is None and self.transport is not None and method != "initialize":
                    # basic/utilities/cancellation: the server may stop working on it.
                    self.send(cancelled_notification(request_id, "the client withdrew the request"))
                raise
            finally:
                self._own_requests.pop(request_id, None)
                self._own_awaiting.discard(request_id)
            if answer.message is not None:
                return answer  # what broke after the answer does not matter to it
            if answer.failure is not None:
                raise answer.failure
            if attempt == 0 and is_side_effect_free(method):
                continue  # its stream ended before the answer: harmless to ask again
            break
        raise ConnectionLost(
            f"the connection to the server was lost while it was handling {method}"
        )

    async def _send_own(
        self, message: Message, answer: _Answer, scope: trio.CancelScope | None
    ) -> None:
        assert isinstance(message.id, str)
        try:
            transport: Transport | None = None
            if scope is None:
                transport = await self._to_server(message)
            else:
                with scope:  # cancelled: the caller gave up on it, nothing more to do
                    transport = await self._to_server(message)
            if answer.message is None and transport is not None:
                if transport.answers_inline:
                    answer.lost = True  # its stream ended without it
                    answer.arrived.set()
                else:
                    self._own_awaiting.add(message.id)  # it comes on the legacy stream
        except Exception as exc:  # the waiting request answers with it (an UpstreamError, or
            answer.failure = exc  # the last resort's -32007 for anything else)
            answer.arrived.set()

    def detach(self, request_id: RequestId) -> None:
        """``LegacySide``: the request is answered (with a round of input) while its task
        carries the bridge's call on; a new request may take its id."""
        scope = self._request_scopes.pop(request_id, None)
        if scope is not None:
            scope.deadline = math.inf
            self._modern_ids.discard(request_id)
            # Withdrawn just before: that mark must not outlive it and meet a request reusing
            # the id, whose timeout would then be taken for a withdrawal (and go unanswered).
            self._withdrawn.discard(request_id)

    def _one_stream(self) -> bool:
        """Whether the session carries everything on one stream (legacy HTTP+SSE), so a
        server message does not tell which request it belongs to."""
        return self.transport is not None and not self.transport.answers_inline

    def send(self, body: dict[str, Any]) -> None:
        """``LegacySide``: a notification or an answer to a server request, in order."""
        if body.get("method") == "notifications/initialized":
            self._client_initialized = True  # the bridge's session is kept alive like a client's
        self._in_order.put(_relay_message(body))

    async def _bridge_request(self, message: Message) -> None:
        assert self._bridge is not None
        self._touch()
        await self._bridge.request(message)

    async def _bounded_initialize(
        self, bridge: BridgeUp, message: Message, discover: dict[str, Any] | None
    ) -> None:
        """The bridge's answer to initialize, owed within the client's patience as the legacy
        initialize is (DESIGN.md invariant 2): the start-up bound covers server/discover."""
        bound = self.options.initialize_deadline
        with trio.move_on_after(bound) as waited:
            await bridge.request(message, discover)
        if waited.cancelled_caught:
            doctor = DOCTOR_HINT.format(url=display_url(self.options.url))
            raise UpstreamError(
                f"the server did not answer server/discover (for initialize) within {bound:g} s",
                "A reverse proxy may be buffering the response (nginx: proxy_buffering off), "
                f"or the server is overloaded. {doctor}",
            )

    def _bridge_at_once(self) -> bool:
        """Whether a legacy client's initialize goes straight to the bridge: the user said the
        server speaks only 2026-07-28, or it did at our last start."""
        if self.options.protocol == "legacy":
            return False
        return self.options.protocol == "modern" or self._era.era == MODERN_ONLY

    def _install_bridge(self, bridge: BridgeUp) -> BridgeUp:
        self._bridge = bridge
        self._release_opener()  # messages waiting for the session now find the bridge
        return bridge

    def _release_opener(self) -> None:
        if self._opener is not None:
            self._opener = None
            self._opener_done.set()

    def _new_bridge(self) -> BridgeUp:
        assert self._nursery is not None
        upstream = ModernUpstream(
            self.client, self.options, self._deliver, self._nursery, self.state, self.sign_in
        )
        # The server is known (or, from the cache or --protocol modern, taken) to speak
        # 2026-07-28, so any JSON-RPC error it answers with is its answer: a resources/read
        # of a missing resource is -32602, not a sign of a legacy server.
        upstream.transport.proven_modern = True
        return BridgeUp(upstream, self.output, self._deliver, self._nursery, self.state)

    def _note_stream_answer(self, message: Message, transport: Transport | None) -> None:
        # Legacy SSE answers on its stream later: remember what waits there, should it break.
        waits_on_stream = transport is not None and not transport.answers_inline
        if waits_on_stream and message.id in self.state.pending:
            self._awaiting_stream.add(message.id)

    async def _to_server(self, message: Message) -> Transport | None:
        """Send ``message`` until the server has it; re-send only as ``may_resend`` allows.

        Returns the transport that took it; None when the message opened the session (its
        answer is delivered already) or was dropped (an answer to a lost session's request).
        """
        attempt = 0
        resent_after_loss = False
        signed_in = 0
        while True:
            if self._bridge is not None:
                if message.kind is Kind.REQUEST:
                    raise _Bridged
                await self._bridge.message(message)
                return None
            try:
                transport, opened_by_this = await self._session_for(message)
            except _Bridged:
                continue
            if opened_by_this:
                return None
            try:
                self._touch()
                if message.kind is Kind.REQUEST:
                    await transport.send_request(message)
                else:
                    await transport.send_message(message)
                return transport
            except SessionLost as exc:
                self._drop_session(transport, str(exc))
                if message.kind is Kind.RESPONSE:
                    # It answers a request of the lost session; the new one never asked it.
                    log.info("dropped an answer to a server request of the lost session")
                    return None
                if resent_after_loss:
                    raise
                resent_after_loss = True  # the server refused it unseen: once more, new session
            except UpstreamError as exc:
                if self.sign_in.needed(exc) and signed_in < 2:
                    # 401/403: the server did not take it. Get a token it accepts, send again.
                    signed_in += 1
                    await self.sign_in.reauthorize(exc, self.sign_in.wait)
                    continue
                method = message.method or "a response"
                if not may_resend(exc, method) or self.options.retries_exhausted(attempt):
                    raise
                delay = self.options.retry_delay(exc, attempt)
                level = logging.INFO if attempt == 0 else logging.DEBUG
                log.log(level, "%s; sending %s again in %.1f s", exc, method, delay)
                attempt += 1
                await trio.sleep(delay)

    def _modern_upstream(self) -> ModernUpstream:
        if self._modern is None:
            assert self._nursery is not None
            self._modern = ModernUpstream(
                self.client, self.options, self._deliver, self._nursery, self.state, self.sign_in
            )
        return self._modern

    async def _send_in_order(self) -> None:
        async for message in self._in_order.receive:
            try:
                await self._to_server(message)
            except UpstreamError as exc:
                what = message.method or f"the answer to server request {message.id!r}"
                log.warning("could not deliver %s to the server: %s", what, exc.advice())
            except Exception:
                what = message.method or f"the answer to server request {message.id!r}"
                log.exception("the relay failed to deliver %s; it goes on", what)
            finally:
                self._in_order.done_one()
                self._maybe_idle()

    # -- the session ---------------------------------------------------------------------------

    async def _session_for(self, message: Message | None) -> tuple[Transport, bool]:
        """The live transport; if there is none, open one (with ``message`` the first time, then
        True) or re-establish the lost session by replaying the client's initialize."""
        if self._opener is None and self.transport is not None:
            return self.transport, False  # the common case, without a checkpoint
        if self._opener is not None and self._opener is not message:
            await self._opener_done.wait()
        async with self._session_lock:
            try:
                return await self._session_locked(message)
            finally:
                # Whichever way it went, the opener's turn is over: never leave others waiting.
                if message is not None and self._opener is message:
                    self._opener = None
                    self._opener_done.set()

    async def _session_locked(self, message: Message | None) -> tuple[Transport, bool]:
        if self._bridge is not None:
            raise _Bridged
        if self.transport is not None:
            return self.transport, False
        if self._connected_once and self.state.initialize is not None:
            self.transport = await self._reestablish()
            return self.transport, False
        assert message is not None
        transport = await self._open(message)
        # The initialize answer has been delivered by now: later requests carry its version.
        if self.state.protocol_version:
            transport.set_protocol_version(self.state.protocol_version)
        self.transport = transport
        self._connected_once = True
        return transport, True

    async def _connect(
        self, first: Message, *, at_start: bool, budget: float | None = None
    ) -> Transport:
        """Open a transport by sending ``first``, retrying while waiting may help: until the
        start-up deadline at start, within ``--max-retries`` later."""
        assert self._nursery is not None
        limit = self.options.initialize_deadline if budget is None else budget
        started = time.monotonic()
        deadline = started + limit
        attempt = 0
        signed_in = 0
        failed: UpstreamError | None = None  # the last try's error, when one failed
        said = ""  # the last cause told on stderr
        while True:
            try:
                # At start the answer is owed within the client's patience, however the server
                # (or a buffering proxy) behaves; later the replay has REPLAY_TIMEOUT.
                bound = max(0.0, deadline - time.monotonic()) if at_start else REPLAY_TIMEOUT
                with trio.fail_after(bound):
                    return await open_transport(
                        self.options.transport,
                        self.options.url,
                        first,
                        client=self.client,
                        deliver=self._deliver,
                        nursery=self._nursery,
                        options=self.options.network,
                        backoff=self.options.backoff,
                        on_lost=self._on_stream_lost,
                        authorize=self.sign_in.authorize,
                        probe_modern=not self._era.takes_initialize
                        and self.options.protocol != "legacy",
                    )
            except trio.TooSlowError:
                if failed is not None:
                    # The last try, shortened to what was left of the bound, did not finish:
                    # the reason to report is why the tries before it failed.
                    raise failed from None
                doctor = DOCTOR_HINT.format(url=display_url(self.options.url))
                raise UpstreamError(
                    f"the server did not answer {first.method or 'the first message'} within "
                    f"{bound:g} s",
                    "A reverse proxy may be buffering the response (nginx: proxy_buffering off), "
                    f"or the server is overloaded. {doctor}",
                ) from None
            except UpstreamError as exc:
                if self.sign_in.needed(exc) and signed_in < 2:
                    # The desktop client waits about 60 s for initialize: sign in within that;
                    # a sign-in still open in the browser is answered with advice, and goes on.
                    signed_in += 1
                    waited = time.monotonic() - started
                    await self.sign_in.reauthorize(exc, max(5.0, self.sign_in.wait - waited))
                    continue
                delay = self.options.retry_delay(exc, attempt)
                if at_start:
                    # --startup-timeout is the time the client gets an answer in: the last wait
                    # is cut to what is left (keeping a second for the try itself), not skipped.
                    left = deadline - time.monotonic() - 1.0
                    asked = getattr(exc, "retry_after", None) or 0.0
                    # A broken connection is tried again too when that is harmless (initialize,
                    # server/discover): a proxy resetting the first connection is not an answer.
                    again = exc.transient or may_resend(exc, first.method or "")
                    if not again or left <= 0 or asked > left:
                        raise
                    delay = min(delay, left)
                    failed = exc
                elif not may_resend(exc, "initialize") or self.options.retries_exhausted(attempt):
                    raise
                # One line per outage and cause on stderr (a broken connection that turns into
                # a refused one is news: the server went down); every retry in the debug log.
                cause = f"{exc}"
                level = logging.INFO if cause != said else logging.DEBUG
                said = cause
                log.log(level, "%s; trying again in %.1f s", cause, delay)
                attempt += 1
                await trio.sleep(delay)

    async def _open(self, first: Message) -> Transport:
        started = time.monotonic()
        try:
            return await self._connect(first, at_start=True)
        except (UpstreamHttpError, ProtocolViolation) as exc:
            if first.method != "initialize" or not self._era.takes_initialize or exc.transient:
                raise
            # The cached era skipped the server/discover probe; it may be stale: ask once more,
            # within what is left of the start-up bound.
            log.debug("opening failed with the era cached as legacy; probing again")
            self._era.learn(None)
            left = self.options.initialize_deadline - (time.monotonic() - started)
            return await self._connect(first, at_start=True, budget=max(1.0, left))

    async def _reestablish(self) -> Transport:
        """A new session that looks to the client like the old one (DESIGN.md invariant 4)."""
        started = time.monotonic()
        plan = [_relay_message(body) for body in self.state.replay_plan()]
        initialize, rest = plan[0], plan[1:]
        assert isinstance(initialize.id, str)
        answer = self._own_requests[initialize.id] = _Answer()
        try:
            transport = await self._connect(initialize, at_start=False)
            with trio.move_on_after(REPLAY_TIMEOUT):
                await answer.arrived.wait()
        finally:
            self._own_requests.pop(initialize.id, None)
        body = answer.body  # parsed again on each reading, for a large one
        if body is None or "result" not in body:
            await transport.close()
            raise ProtocolViolation(
                "the server did not accept the replayed initialize"
                + (f": {body.get('error')}" if body else " in time")
            )
        self.state.learn_initialize_result(body)
        if self.state.protocol_version:
            transport.set_protocol_version(self.state.protocol_version)
        for message in rest:
            if message.kind is Kind.REQUEST:
                await transport.send_request(message)
            else:
                await transport.send_message(message)
        lost_at, why = self._lost or (started, "the session was lost")
        log.info("%s; session re-established in %.1f s", why, time.monotonic() - lost_at)
        self._lost = None
        await self._announce_list_changes(body)
        return transport

    async def _announce_list_changes(self, initialize_result: dict[str, Any]) -> None:
        """The new session's server may offer other tools, prompts or resources than the old one:
        tell the client to list them again, for each kind the server has."""
        capabilities = initialize_result.get("result", {}).get("capabilities", {})
        if self._down is not None and self._down.open and isinstance(capabilities, dict):
            kinds = [k for k in ("tools", "prompts", "resources") if k in capabilities]
            await self._down.announce(kinds)
            return
        for kind in ("tools", "prompts", "resources"):
            if isinstance(capabilities, dict) and kind in capabilities:
                notification = {"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"}
                await self.output.write_line(line(notification))

    def _drop_session(self, transport: Transport, why: str) -> None:
        if self.transport is transport:
            self.transport = None
            self._lost = (time.monotonic(), why)
            log.info("%s; re-initializing", why)
            assert self._nursery is not None
            self._nursery.start_soon(transport.abandon)

    def _on_stream_lost(self, error: UpstreamError) -> None:
        """A legacy SSE stream ended: the requests waiting on it have lost their answers, and
        the session is gone. Re-establish it now, so server notifications flow again."""
        assert self._nursery is not None
        for request_id in list(self._awaiting_stream):
            self._nursery.start_soon(self._answer_lost, request_id)
        self._awaiting_stream.clear()
        for own_id in list(self._own_awaiting):
            own = self._own_requests.get(own_id)
            if own is not None:
                own.lost = True
                own.arrived.set()
        self._own_awaiting.clear()
        transport = self.transport
        if transport is not None:
            self._drop_session(transport, f"{error}")
            self._nursery.start_soon(self._recover_in_background)

    async def _recover_in_background(self) -> None:
        try:
            await self._session_for(None)
        except _Bridged:
            pass  # a bridge replaced the session meanwhile: nothing to recover
        except UpstreamError as exc:
            log.warning("could not re-establish the session: %s", exc.advice())

    async def _keepalive(self) -> None:
        """Ping an idle session, so a session the server or a proxy dropped is noticed early."""
        interval = self.options.keepalive
        while True:
            await trio.sleep_until(self._last_activity + interval)
            transport = self.transport
            if trio.current_time() < self._last_activity + interval:
                continue
            self._touch()
            if transport is None or not self._client_initialized:
                continue
            request_id = self.state.next_relay_id()
            ping = _relay_message({"jsonrpc": "2.0", "id": request_id, "method": "ping"})
            try:
                with trio.fail_after(interval):
                    await transport.send_request(ping)
            except SessionLost as exc:
                self._drop_session(transport, str(exc))
                await self._recover_in_background()
            except (UpstreamError, trio.TooSlowError) as exc:
                log.debug("keepalive ping failed: %s", exc)

    def _touch(self) -> None:
        self._last_activity = trio.current_time()

    async def _answer_lost(self, request_id: RequestId) -> None:
        await self._answer_error(
            request_id,
            CONNECTION_LOST,
            ConnectionLost(
                "the connection to the server was lost while it was handling this request"
            ).advice(),
        )
        self._maybe_idle()

    # -- server → client -------------------------------------------------------------------------

    async def _deliver(self, message: Message) -> None:
        self._touch()
        if message.kind is not Kind.RESPONSE:
            if self._down is not None and self._down.open:
                await self._down.from_server(message)
                return
            await self.output.write_line(line(message))
            return
        if self.state.is_relay_id(message.id):
            assert isinstance(message.id, str)
            own = self._own_requests.get(message.id)
            if own is not None:
                if own.method == "initialize":
                    self.state.learn_initialize_result(message.body)
                own.message = message
                own.arrived.set()
                if own.on_arrival is not None:
                    await own.on_arrival(message)
            return
        self._awaiting_stream.discard(message.id)
        pending = self.state.take(message.id)
        if pending is None:
            log.debug("dropped an answer for id %r: nothing is waiting for it", message.id)
            return
        if pending.method == "initialize":
            self.state.learn_initialize_result(message.body)
        elif pending.method == "tools/list" and self.tools:
            filtered = self.tools.filter_list_result(message.body)
            if filtered is not None:
                await self.output.write_line(line(filtered))
                return
        await self.output.write_line(line(message))

    # -- answers from the relay itself -----------------------------------------------------------

    async def _answer_upstream_error(self, message: Message, exc: UpstreamError) -> None:
        assert message.id is not None
        text = exc.advice()
        if (
            message.id in self._modern_ids
            and self._down is None
            and isinstance(exc, UpstreamHttpError)
            and exc.status in (400, 404, 405)
        ):
            # streamable-http §Backward Compatibility: no recognised modern error in the body,
            # so the server speaks only the older protocol. Not a modern error code either, so
            # that a dual-era client falls back to initialize, as the spec has it do.
            url = display_url(self.options.url)
            text = (
                f"the server at {url} does not speak MCP 2026-07-28: it answered "
                f"{message.method} with HTTP {exc.status}"
                + (f" ({exc.excerpt})" if exc.excerpt else "")
                + ", and --protocol modern keeps the relay from bridging this client down to "
                "it. Remove --protocol modern (the default, auto, opens a 2025 session for a "
                f"2026-07-28 client). {DOCTOR_HINT.format(url=url)}"
            )
        elif message.method == "initialize" and isinstance(exc, UpstreamUnavailable):
            url = display_url(self.options.url)
            text = f"could not reach the MCP server at {url}: {exc}. " + (
                exc.hint or DOCTOR_HINT.format(url=url)
            )
        elif (
            message.method == "initialize"
            and self.options.protocol == "legacy"
            and self.options.transport != "sse-only"  # that 400 is the SSE GET's, not initialize's
            and isinstance(exc, UpstreamHttpError)
            and exc.status == 400
        ):
            text += (
                ". If the server speaks only MCP 2026-07-28, remove --protocol legacy: the "
                "default (auto) bridges to it"
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
        self._awaiting_stream.discard(request_id)
        await self._write_error(request_id, code, text, data)

    async def _write_error(
        self, request_id: RequestId | None, code: int, text: str, data: Any = None
    ) -> None:
        await self.output.write_line(line(error_response(request_id, code, text, data)))
