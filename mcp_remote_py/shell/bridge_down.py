"""The bridge down, carried out: a 2026-07-28 client served by a server of the handshake era.

``core.bridge_down`` says what each message becomes; this module does the waiting. The relay
hands a modern client's requests here once the server answered a modern request as a legacy
server does (or the era cache, or ``--protocol legacy``, says it will). The legacy session is
the relay's as always (``LegacySide``: opened by the bridge's ``initialize``, re-established
and replayed by the relay when lost), so the client never sees one.

A call that may be answered with ``input_required`` (``HELD_METHODS``) runs upstream in the
task of the client request that started it, and outlives that request when the server asks: the
server's requests during it are held and the client's request is answered with them (from a task
of its own, ``_carrier_round``); the client's retry (its ``requestState`` redeemed) answers them
and waits on for the same call. A call whose client does not come back within ``ROUND_TIMEOUT``
is given up: its held requests are answered with an error and the call cancelled upstream.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import trio

from ..core.bridge_down import (
    HELD_METHODS,
    HeldRequest,
    ModernFace,
    StateBook,
    StateRefused,
    acknowledgement,
    binding_of,
    honored_filter,
    input_required,
    is_change_notification,
    is_log_level,
    log_reaches,
    modern_answer,
    most_verbose,
    request_log_level,
    tagged,
    upstream_body,
    wants,
)
from ..core.errors import UpstreamError
from ..core.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    Kind,
    Message,
    RequestId,
    error_response,
    line,
)
from ..core.session import SessionState
from .relay_options import Output
from .transports.base import Deliver

__all__ = ["ROUND_TIMEOUT", "BridgeDown", "LegacySide"]

log = logging.getLogger("mcp_remote_py")

# How long the client may take to retry a call answered with input_required (an elicitation
# waits on a person), and so how long a relay-minted requestState lives.
ROUND_TIMEOUT = 600.0
# A server that asks without end: after this many rounds of one call, the call fails.
MAX_ROUNDS = 10
# How long a roots/list the server asked outside any call waits for the client's next call.
PARK_TIMEOUT = 30.0
# A server that asks and asks before the client could answer: what one call holds, and how many
# roots questions wait for a call, at most (the rest are refused at once, never kept).
MAX_HELD = 64
MAX_PARKED = 8

# The call whose upstream request the current task is carrying: a server request or log line
# that arrives on that request's response stream belongs to it (Streamable HTTP sends them
# there, 2025-11-25 transports §Sending Messages).
_CARRYING: contextvars.ContextVar[_Call | None] = contextvars.ContextVar(
    "mcp_remote_py_bridge_down_call", default=None
)


class LegacySide(Protocol):
    """What the bridge needs of the relay's legacy session."""

    async def call(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a request under a relay id (opening or re-establishing the session as needed),
        return the server's answer; raise UpstreamError when there is none."""
        ...

    async def carry(
        self, body: dict[str, Any], on_answer: Callable[[Message], Awaitable[None]]
    ) -> None:
        """As ``call``, but the answer goes to ``on_answer`` the moment it arrives, in the task
        that read it; returns when the request is over."""
        ...

    def send(self, body: dict[str, Any]) -> None:
        """Queue a notification or an answer to a server request, in order."""
        ...

    def detach(self, request_id: RequestId) -> None:
        """The client request is answered while its task carries on (a call across rounds of
        input): neither its --request-timeout nor a cancellation of its id reaches the task."""
        ...


@dataclass(eq=False, slots=True)
class _Call:
    """One client call running upstream, possibly across several client requests (rounds)."""

    key: str
    method: str
    binding: tuple[str, str | None]
    log_level: str | None
    answer: Message | None = None  # the server's, kept for a client request not waiting yet
    error: BaseException | None = None
    done: bool = False
    held: list[HeldRequest] = field(default_factory=list)  # not yet shown to the client
    asked: dict[str, HeldRequest] = field(default_factory=dict)  # shown, not yet answered
    rounds: int = 0
    waiting: RequestId | None = None  # the client request answering for it now
    committed: RequestId | None = None  # the client request being answered (exactly once)
    watched: bool = False  # _watch runs (from the first input_required round on)
    carrier: Message | None = None  # the client request whose task carries the call, waiting
    rounding: bool = False  # a _carrier_round is on its way
    changed: trio.Event | None = None  # made by the first waiter: most calls have none
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    keys: int = 0
    go: trio.Event = field(default_factory=trio.Event)  # set: send it upstream
    upstream_token: Any = None  # the progress token the server knows the call by
    client_token: Any = None  # the progress token of the client request answering for it now

    def poke(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    async def wait_changed(self) -> None:
        if self.changed is None:
            self.changed = trio.Event()
        await self.changed.wait()


@dataclass(eq=False)
class _Listen:
    honored: dict[str, Any]


class BridgeDown:
    def __init__(
        self,
        side: LegacySide,
        output: Output,
        deliver: Deliver,
        nursery: trio.Nursery,
        state: SessionState,
        one_stream: Callable[[], bool] = lambda: False,
    ) -> None:
        """``deliver`` is the relay's: it takes answers to client requests (exactly once).
        ``one_stream`` says whether the session carries everything on one stream (legacy
        HTTP+SSE), where a server request is taken to belong to the oldest running call."""
        self._one_stream = one_stream
        self._side = side
        self._output = output
        self._deliver = deliver
        self._nursery = nursery
        self._state = state
        self.face: ModernFace | None = None
        self.initialize_result: dict[str, Any] | None = None
        self._open_lock = trio.Lock()
        self._calls: dict[str, _Call] = {}
        self._call_numbers = itertools.count(1)
        self._states = StateBook(ROUND_TIMEOUT)
        self._listens: dict[RequestId, _Listen] = {}
        self._subscribed: dict[str, int] = {}  # uri → listens naming it
        self._upstream_level: str | None = None
        self._roots: Any = None  # the roots the client last supplied (a ListRootsResult)
        self._log_wanted: dict[RequestId, str] = {}  # running requests that asked for logs
        # roots/list asked outside any call, waiting (bounded) for the client's next call.
        self._parked: list[tuple[HeldRequest, trio.CancelScope]] = []
        self._parked_keys = 0

    @property
    def open(self) -> bool:
        return self.initialize_result is not None

    # -- the session ---------------------------------------------------------------------------

    async def ensure_open(self, message: Message) -> None:
        """Rule 1: open the legacy session with an ``initialize`` of the relay's own, built from
        this request's ``_meta``. Raises UpstreamError (ModernOnlyServer among them)."""
        if self.initialize_result is not None:
            return
        async with self._open_lock:
            if self.initialize_result is not None:
                return
            meta = message.params.get("_meta")
            face = ModernFace.from_meta(meta if isinstance(meta, dict) else {})
            body = face.initialize(self._state.next_relay_id())
            self._state.remember(Message(Kind.REQUEST, body, ""))  # a lost session replays it
            answer = await self._side.call(body)
            if "result" not in answer or not isinstance(answer["result"], dict):
                error = answer.get("error")
                text = error.get("message") if isinstance(error, dict) else None
                raise UpstreamError(
                    f"the server refused the relay's initialize: {text or answer}",
                    "run `mcp-remote-py doctor URL` for details",
                )
            self._side.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            self.face = face
            self.initialize_result = answer
            result = answer["result"]
            log.info(
                "the server speaks MCP %s only; bridging this 2026-07-28 client down to it",
                result.get("protocolVersion", "of the 2025 era"),
            )

    def _server_capabilities(self) -> dict[str, Any]:
        result = (self.initialize_result or {}).get("result")
        capabilities = result.get("capabilities") if isinstance(result, dict) else None
        return capabilities if isinstance(capabilities, dict) else {}

    # -- client → server -----------------------------------------------------------------------

    async def request(self, message: Message) -> None:
        """Answer one client request exactly once (through the relay's ``deliver``), or raise
        UpstreamError for the relay to answer with."""
        assert message.id is not None
        assert message.method is not None
        if message.method == "initialize":
            await self._answer_error(
                message.id,
                INVALID_REQUEST,
                "this client already speaks MCP 2026-07-28 on this connection (its requests "
                "carry _meta), which has no initialize; the relay keeps the server's session "
                "for it. Send requests with _meta, or start a new connection to speak 2025",
            )
            return
        if self.initialize_result is None:
            await self.ensure_open(message)
        if message.method == "server/discover":
            assert self.initialize_result is not None
            answer = ModernFace.discover_result(message.id, self.initialize_result)
            await self._deliver(Message(Kind.RESPONSE, answer, ""))
            return
        if message.method == "subscriptions/listen":
            await self._listen(message)
            return
        params = message.params
        level = request_log_level(params)
        if level is not None and not is_log_level(level):
            await self._answer_error(
                message.id,
                INVALID_PARAMS,
                f"io.modelcontextprotocol/logLevel {level!r} is not a log level (one of debug, "
                "info, notice, warning, error, critical, alert, emergency)",
            )
            return
        if level is not None:
            self._log_wanted[message.id] = level
        try:
            if level is not None:
                await self._set_level()
            if "requestState" in params:
                await self._resume(message)
            elif message.method in HELD_METHODS:
                await self._start(message, level)
            else:
                await self._side.carry(upstream_body(message.body), partial(self._answer, message))
        finally:
            self._log_wanted.pop(message.id, None)

    async def message(self, message: Message) -> None:
        """A client notification: a cancellation of a listen ends it (subscriptions
        §Cancellation); of a request, the relay has cancelled its task already. Nothing else a
        modern client notifies has a legacy counterpart."""
        log.debug("a 2026-07-28 client's %s is not sent to the server", message.method)

    async def _answer(self, message: Message, answer: Message) -> None:
        assert message.id is not None
        assert message.method is not None
        await self._deliver(modern_answer(message.id, answer, message.method))

    async def _answer_error(
        self, request_id: RequestId, code: int, text: str, data: Any = None
    ) -> None:
        body = error_response(request_id, code, text, data)
        await self._deliver(Message(Kind.RESPONSE, body, ""))

    async def _set_level(self) -> None:
        """Rule 5: the server logs at the most verbose level a running request asked for."""
        if "logging" not in self._server_capabilities():
            return
        level = most_verbose(list(self._log_wanted.values()))
        if level is None or level == self._upstream_level:
            return
        self._upstream_level = level
        body = {"jsonrpc": "2.0", "method": "logging/setLevel", "params": {"level": level}}
        self._state.remember(Message(Kind.REQUEST, {**body, "id": "setLevel"}, ""))
        answer = await self._side.call(body)
        if "error" in answer:
            log.debug("the server refused logging/setLevel %s: %s", level, answer["error"])

    # -- calls that may need the client's input ------------------------------------------------

    async def _start(self, message: Message, level: str | None) -> None:
        assert message.id is not None
        assert message.method is not None
        params = message.params
        token = _progress_token(params)
        call = _Call(
            key=f"call-{next(self._call_numbers)}",  # the requestState is the secret
            method=message.method,
            binding=binding_of(message.method, params),
            log_level=level,
            upstream_token=token,
            client_token=token,
        )
        self._calls[call.key] = call
        call.waiting = message.id
        call.carrier = message
        if self._parked:
            # The server asked for roots before this call: the client answers that first,
            # and the call goes upstream after it (the server reads them when it runs).
            for request, scope in self._parked:
                scope.cancel()
                call.held.append(request)
            self._parked.clear()
            self._round_soon(call)
        else:
            call.go.set()
        ran = False
        try:
            await self._run(call, upstream_body(message.body))
            ran = True
        finally:
            call.carrier = None
            if not ran and call.waiting == message.id:
                # The client withdrew this request (or it timed out) before the server asked
                # anything: the call went with it (cancelled upstream as this task was).
                call.waiting = None
                self._refuse_held(call, "the client withdrew the request")
                self._end(call, "was withdrawn with its request")
        if call.waiting == message.id:
            await self._follow(call, message)  # the call ended before it was answered

    async def _run(self, call: _Call, body: dict[str, Any]) -> None:
        """The call upstream, for as long as the client keeps coming back for it: in the task
        of the client request that started it (its answer reaches that request from the task
        that reads it, no task switch on the way), which outlives the request when the server
        asks for input (``_carrier_round``)."""
        carrying = _CARRYING.set(call)
        try:
            with call.scope:
                try:
                    if not call.go.is_set():
                        await call.go.wait()
                    await self._side.carry(body, partial(self._arrived, call))
                except Exception as exc:  # the client's request answers with it
                    call.error = exc
            if call.scope.cancelled_caught:
                call.error = UpstreamError(
                    f"the {call.method} was cancelled: the client did not come back for it",
                    "call it again",
                )
        finally:
            _CARRYING.reset(carrying)
            call.done = True
            call.poke()
            if call.waiting is None:
                self._end(call, "has ended: the call it belonged to was abandoned")

    def _round_soon(self, call: _Call) -> None:
        """The server asked while the request carrying the call waits: that request is
        answered with a round from a task of its own, once the server's burst is read."""
        if call.carrier is not None and call.waiting == call.carrier.id and not call.rounding:
            call.rounding = True
            self._nursery.start_soon(self._carrier_round, call)

    async def _carrier_round(self, call: _Call) -> None:
        call.rounding = False
        message = call.carrier
        if message is None or call.waiting != message.id or call.committed == message.id:
            return  # answered or withdrawn meanwhile
        if not call.held:
            return
        assert message.id is not None
        call.committed = message.id
        # The request is answered now, its task carries the call on: no --request-timeout
        # and no cancellation by its id reach the call any more (the retries' do).
        self._side.detach(message.id)
        call.carrier = None
        call.waiting = None
        await self._ask(call, message)
        call.poke()

    async def _arrived(self, call: _Call, answer: Message) -> None:
        """The server's answer, as it arrives: to the client request waiting for the call now,
        from this task (no task switch on the way), unless that request gets a round first."""
        request_id = call.waiting
        if request_id is None or call.held or call.committed == request_id:
            call.answer = answer  # the client's next request (or the round's retry) takes it
            return
        call.committed = request_id
        self._end(call, "was used already: its call has ended")
        await self._deliver(modern_answer(request_id, answer, call.method))
        call.poke()

    async def _watch(self, call: _Call) -> None:
        """Give up a call whose client stopped coming back (mrtr §Server Requirements 8: the
        client need not retry)."""
        while not call.done:
            if call.waiting is not None:
                await call.wait_changed()
                continue
            with trio.move_on_after(ROUND_TIMEOUT):
                while call.waiting is None and not call.done:
                    await call.wait_changed()
                continue
            log.info(
                "the client did not retry %s within %g s after the server asked for input; "
                "the call is cancelled",
                call.method,
                ROUND_TIMEOUT,
            )
            self._refuse_held(call, "the client did not answer in time; the call was given up")
            call.scope.cancel()
            return

    async def _follow(self, call: _Call, message: Message) -> None:
        """Answer ``message`` for ``call``: with the result, or with the next round of input."""
        assert message.id is not None
        finished = False
        try:
            while True:
                if call.committed == message.id:
                    finished = True  # _arrived answered it
                    return
                if call.held:
                    finished = True
                    call.committed = message.id
                    await self._ask(call, message)
                    return
                if call.done:
                    finished = True
                    call.committed = message.id
                    self._end(call, "was used already: its call has ended")
                    if call.error is not None and call.answer is None:
                        raise call.error
                    assert call.answer is not None
                    await self._answer(message, call.answer)
                    return
                await call.wait_changed()
        finally:
            if call.waiting == message.id:
                call.waiting = None
                call.poke()
            if not finished:
                # The client withdrew this request (or it timed out): the call goes with it.
                self._refuse_held(call, "the client withdrew the request")
                call.scope.cancel()
                self._end(call, "was withdrawn with its request")

    async def _ask(self, call: _Call, message: Message) -> None:
        assert message.id is not None
        call.rounds += 1
        if call.rounds > MAX_ROUNDS:
            self._refuse_held(call, "the server asked too many times")
            call.scope.cancel()
            self._end(call, "has ended: the server asked too many times")
            await self._answer_error(
                message.id,
                INTERNAL_ERROR,
                f"the server asked for input {MAX_ROUNDS} times in one {call.method} without "
                "finishing it; the call was cancelled",
            )
            return
        if not call.watched:
            call.watched = True
            self._nursery.start_soon(self._watch, call)
        for request in call.held:
            call.asked[request.key] = request
        call.held.clear()
        token = secrets.token_urlsafe(24)
        self._states.issue(token, call.key, call.binding, trio.current_time())
        asked = list(call.asked.values())
        await self._deliver(Message(Kind.RESPONSE, input_required(message.id, asked, token), ""))

    async def _resume(self, message: Message) -> None:
        """A retry: its ``inputResponses`` answer the held server requests; the call goes on."""
        assert message.id is not None
        assert message.method is not None
        binding = binding_of(message.method, message.params)
        try:
            key = self._states.redeem(
                message.params.get("requestState"), binding, trio.current_time()
            )
        except StateRefused as exc:
            await self._answer_error(message.id, INVALID_PARAMS, str(exc))
            return
        call = self._calls.get(key)
        if call is None:
            await self._answer_error(
                message.id, INVALID_PARAMS, "this requestState's call has ended; call again"
            )
            return
        responses = message.params.get("inputResponses")
        responses = responses if isinstance(responses, dict) else {}
        extra = set(responses) - set(call.asked)
        if extra:
            # mrtr §Error Handling: what the server did not ask for is ignored.
            log.debug("ignored inputResponses the relay did not ask for: %s", sorted(extra))
        for request_key, request in list(call.asked.items()):
            if request_key not in responses:
                # mrtr §Error Handling: ask again for what is missing, rather than refuse.
                call.held.append(request)
            else:
                response = responses[request_key]
                if request.method == "roots/list":
                    self._roots = response
                if isinstance(response, dict):
                    self._side.send({"jsonrpc": "2.0", "id": request.server_id, "result": response})
                else:
                    self._side.send(
                        error_response(
                            request.server_id,
                            INVALID_PARAMS,
                            "the client's answer was not an object",
                        )
                    )
            del call.asked[request_key]
        call.waiting = message.id
        call.client_token = _progress_token(message.params)
        call.go.set()
        call.poke()
        await self._follow(call, message)

    def _refuse_held(self, call: _Call, why: str) -> None:
        for request in [*call.asked.values(), *call.held]:
            self._side.send(error_response(request.server_id, INTERNAL_ERROR, why))
        call.asked.clear()
        call.held.clear()

    def _end(self, call: _Call, why: str) -> None:
        self._calls.pop(call.key, None)
        if call.rounds:  # a call that never asked has no requestState out
            self._states.withdraw(call.key, why)

    # -- subscriptions -------------------------------------------------------------------------

    async def _listen(self, message: Message) -> None:
        """Rule 6: acknowledge, subscribe upstream to the URIs named, then deliver until the
        client cancels the listen (which cancels this task)."""
        assert message.id is not None
        honored = honored_filter(message.params.get("notifications"), self._server_capabilities())
        uris = list(honored.get("resourceSubscriptions", []))
        listen = _Listen(honored)
        subscribed: list[str] = []
        try:
            for uri in uris:
                if await self._subscribe(uri):
                    subscribed.append(uri)
            if uris and not subscribed:
                honored.pop("resourceSubscriptions", None)
            elif uris:
                honored["resourceSubscriptions"] = subscribed
            await self._output.write_line(line(acknowledgement(message.id, honored)))
            self._listens[message.id] = listen
            await trio.sleep_forever()
        finally:
            self._listens.pop(message.id, None)
            for uri in subscribed:
                self._unsubscribe(uri)

    async def _subscribe(self, uri: str) -> bool:
        count = self._subscribed.get(uri, 0)
        if count == 0:
            body = {"jsonrpc": "2.0", "method": "resources/subscribe", "params": {"uri": uri}}
            answer = await self._side.call(body)
            if "result" not in answer:
                log.warning("the server refused resources/subscribe %s: %s", uri, answer)
                return False
            self._state.remember(Message(Kind.REQUEST, {**body, "id": "subscribe"}, ""))
        self._subscribed[uri] = count + 1
        return True

    def _unsubscribe(self, uri: str) -> None:
        count = self._subscribed.get(uri, 0) - 1
        if count > 0:
            self._subscribed[uri] = count
            return
        self._subscribed.pop(uri, None)
        body = {"jsonrpc": "2.0", "method": "resources/unsubscribe", "params": {"uri": uri}}
        self._state.remember(Message(Kind.REQUEST, {**body, "id": "unsubscribe"}, ""))
        self._nursery.start_soon(self._quietly, self._side.call(body))

    @staticmethod
    async def _quietly(step: Awaitable[Any]) -> None:
        try:
            await step
        except UpstreamError as exc:
            log.debug("the relay's own request failed: %s", exc)

    # -- server → client -----------------------------------------------------------------------

    async def from_server(self, message: Message) -> None:
        """A server request or notification, while the bridge carries the session."""
        if message.kind is Kind.REQUEST:
            self._server_request(message)
        else:
            await self._server_notification(message)

    def _owner(self) -> _Call | None:
        """The call a server message belongs to: the one whose stream it came on; on a legacy
        SSE session (one stream for everything) the oldest running one. On Streamable HTTP a
        message on the GET stream belongs to no call (2025-11-25 transports §Listening)."""
        carrying = _CARRYING.get()
        if carrying is not None and not carrying.done:
            return carrying
        if not self._one_stream():
            return None
        for call in self._calls.values():
            if not call.done:
                return call
        return None

    def _server_request(self, message: Message) -> None:
        assert message.id is not None
        assert message.method is not None
        face = self.face
        if message.method == "ping":
            self._side.send({"jsonrpc": "2.0", "id": message.id, "result": {}})
            return
        if face is None or not face.can_answer(message.method):
            what = (
                "the client did not declare the capability it needs"
                if message.method in ("elicitation/create", "sampling/createMessage", "roots/list")
                else "the client speaks MCP 2026-07-28, which has no such server request"
            )
            self._side.send(
                error_response(message.id, METHOD_NOT_FOUND, f"{message.method}: {what}")
            )
            return
        call = self._owner()
        if call is None and message.method == "roots/list":
            # The roots are the client's, not a call's: the ones it last gave, else asked
            # within a call of its own, the oldest running one or the next (not for ever).
            if isinstance(self._roots, dict):
                self._side.send({"jsonrpc": "2.0", "id": message.id, "result": self._roots})
                return
            call = next((c for c in self._calls.values() if not c.done), None)
        if call is None and message.method == "roots/list" and len(self._parked) < MAX_PARKED:
            self._parked_keys += 1
            key = f"roots-p{self._parked_keys}"  # apart from any call's own keys
            request = HeldRequest(key, message.id, message.method, dict(message.params))
            log.debug(
                "the server asked roots/list outside any call; the client is asked within its "
                "next call (for %g s)",
                PARK_TIMEOUT,
            )
            scope = trio.CancelScope()
            self._parked.append((request, scope))
            self._nursery.start_soon(self._park, request, scope)
            return
        if call is None:
            self._side.send(
                error_response(
                    message.id,
                    INTERNAL_ERROR,
                    f"the client speaks MCP 2026-07-28 and can be asked ({message.method}) "
                    "only while one of its tools/call, prompts/get or resources/read is running",
                )
            )
            return
        if len(call.held) + len(call.asked) >= MAX_HELD:
            self._side.send(
                error_response(
                    message.id,
                    INTERNAL_ERROR,
                    f"more than {MAX_HELD} requests for input are waiting on this "
                    f"{call.method} already; this one is refused",
                )
            )
            return
        call.keys += 1
        key = f"{message.method.split('/')[0]}-{call.keys}"
        call.held.append(HeldRequest(key, message.id, message.method, dict(message.params)))
        call.poke()
        self._round_soon(call)

    async def _park(self, request: HeldRequest, scope: trio.CancelScope) -> None:
        with scope:
            await trio.sleep(PARK_TIMEOUT)
            self._parked = [(r, s) for r, s in self._parked if s is not scope]
            self._side.send(
                error_response(
                    request.server_id,
                    INTERNAL_ERROR,
                    f"the client speaks MCP 2026-07-28 and can be asked for its roots only "
                    f"within one of its calls, and made none within {PARK_TIMEOUT:g} s",
                )
            )

    async def _server_notification(self, message: Message) -> None:
        method = message.method
        params = message.params
        if is_change_notification(method):
            for subscription_id, listen in list(self._listens.items()):
                if wants(listen.honored, method, params):
                    await self._output.write_line(line(tagged(message.body, subscription_id)))
            return
        if method == "notifications/message":
            level = params.get("level")
            owner = _CARRYING.get()
            if owner is not None and not owner.done:
                wanted = [owner.log_level] if owner.log_level is not None else []
            else:  # not on a request's stream (legacy SSE): any request that asked
                wanted = [*self._log_wanted.values()]
                wanted += [c.log_level for c in self._calls.values() if c.log_level is not None]
            if any(log_reaches(level, w) for w in wanted):
                await self._output.write_line(line(message))
            return
        if method == "notifications/progress":
            token = params.get("progressToken")
            for call in self._calls.values():
                if call.upstream_token is not None and call.upstream_token == token:
                    # Each retry is a request of its own with its own token (mrtr §Client
                    # Requirements 3): the progress goes to the one the client waits on now.
                    if call.waiting is None or call.client_token is None:
                        return
                    body = {
                        **message.body,
                        "params": {**params, "progressToken": call.client_token},
                    }
                    await self._output.write_line(line(body))
                    return
            await self._output.write_line(line(message))
            return
        if method == "notifications/cancelled":
            cancelled = params.get("requestId")
            for call in self._calls.values():
                call.held = [r for r in call.held if r.server_id != cancelled]
            return
        if method == "notifications/elicitation/complete":
            return  # changelog minor change 11: the retry tells the client the outcome
        await self._output.write_line(line(message))

    async def announce(self, kinds: list[str]) -> None:
        """A re-established session may list other things: tell the listens that asked."""
        for kind in kinds:
            body = {"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"}
            await self._server_notification(Message(Kind.NOTIFICATION, body, ""))


def _progress_token(params: dict[str, Any]) -> Any:
    meta = params.get("_meta")
    return meta.get("progressToken") if isinstance(meta, dict) else None
