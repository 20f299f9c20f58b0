"""The bridge up, carried out: a legacy client served by a server that speaks only 2026-07-28.

``core.bridge_up`` says what each message becomes; this module does the waiting. The relay hands
over once ``initialize`` met a modern-only server (``ModernOnlyServer``): from then on every
client message comes here. Requests go out through ``ModernUpstream`` (headers, retries,
re-issue after a broken stream); MRTR rounds become requests to the client under relay ids,
each with a deadline, at most ``MAX_ROUNDS`` of them; one ``subscriptions/listen`` of the
relay's own brings list and resource changes, reopened when the client's subscriptions change.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from ..core.bridge_up import (
    MRTR_METHODS,
    InputRequest,
    InputRoundError,
    LegacyFace,
    input_requests,
    legacy_notification,
    legacy_response,
    retry_body,
)
from ..core.errors import ConnectionLost, UpstreamError, UpstreamUnavailable
from ..core.jsonrpc import Kind, Message, RequestId, cancelled_notification, line
from ..core.session import SessionState
from .modern import ModernUpstream
from .relay_options import Output
from .transports.base import Deliver

__all__ = ["MAX_ROUNDS", "BridgeUp", "InputRefused"]

log = logging.getLogger("mcp_remote_py")

# mrtr §Server Requirements 8 lets a server ask again and again; a server that never stops
# asking gets an error after this many rounds.
MAX_ROUNDS = 10
# How long the client may take to answer one round (an elicitation waits on a person).
ROUND_TIMEOUT = 600.0


class InputRefused(UpstreamError):
    """A round of server→client requests could not be completed: the client declined one,
    did not declare what it needs, took too long, or the server asked too often."""


class BridgeUp:
    def __init__(
        self,
        upstream: ModernUpstream,
        output: Output,
        deliver: Deliver,
        nursery: trio.Nursery,
        state: SessionState,
    ) -> None:
        """``deliver`` is the relay's: it takes answers to client requests (exactly once)."""
        self._upstream = upstream
        self._output = output
        self._deliver = deliver
        self._nursery = nursery
        self._state = state
        self.face: LegacyFace | None = None
        self._server_capabilities: dict[str, Any] = {}
        # Requests whose input_required answer is held for the next round, by client id.
        self._rounds: dict[RequestId, Message | None] = {}
        # The client's answers to the relay's own requests (MRTR rounds), by relay id.
        self._asked: dict[str, tuple[trio.Event, list[Message]]] = {}
        self._listener: trio.CancelScope | None = None
        upstream.set_delivery(self._from_server)

    # -- client → server -----------------------------------------------------------------------

    async def request(self, message: Message, discover: dict[str, Any] | None = None) -> None:
        """Answer one client request (exactly once, through the relay's ``deliver``), or raise
        UpstreamError for the relay to answer with. ``discover``: a DiscoverResult already at
        hand for an ``initialize`` (the one that proved the server modern-only)."""
        assert message.id is not None
        if message.method == "initialize":
            await self._initialize(message, discover)
            return
        face = self._face()
        if face.answers_locally(message.method):
            answer, filter_changed = face.answer_locally(message)
            await self._deliver(Message(Kind.RESPONSE, answer, ""))
            if filter_changed:
                self._listen()
            return
        body = face.stamped(message.body)
        if message.method not in MRTR_METHODS:
            await self._upstream.send(Message(Kind.REQUEST, body, ""))
            return
        self._rounds[message.id] = None
        try:
            await self._upstream.send(Message(Kind.REQUEST, body, ""))
            for _ in range(MAX_ROUNDS):
                held = self._rounds.get(message.id)
                if held is None:
                    return  # the final answer has been delivered
                self._rounds[message.id] = None
                result = held.body["result"]
                responses = await self._ask_client(result, face)
                retry = Message(Kind.REQUEST, retry_body(body, result, responses), "")
                await self._upstream.send(retry, new_id=True)  # mrtr §Client Requirements 3
            if self._rounds.get(message.id) is None:
                return
            raise InputRefused(
                f"the server asked the client for input {MAX_ROUNDS} times for one "
                f"{message.method} without finishing it",
                "The server may be looping; try the call again, or report it to the server's "
                "maintainers",
            )
        finally:
            self._rounds.pop(message.id, None)

    async def message(self, message: Message) -> None:
        """A client notification or response: an answer to one of the relay's MRTR requests,
        or nothing the server could take (HTTP carries no client notifications this revision;
        a cancellation has closed the request's POST already)."""
        if message.kind is Kind.RESPONSE and isinstance(message.id, str):
            asked = self._asked.get(message.id)
            if asked is not None:
                asked[1].append(message)
                asked[0].set()
                return
        log.debug("not sent to the 2026-07-28 server: %s", message.method or "a response")

    def takes(self, message: Message) -> bool:
        return (
            message.kind is Kind.RESPONSE
            and isinstance(message.id, str)
            and (message.id in self._asked)
        )

    async def _initialize(self, message: Message, discover: dict[str, Any] | None) -> None:
        """Rule 1: ``initialize`` answered from ``server/discover``."""
        assert message.id is not None
        face = self.face = LegacyFace.from_initialize(message.params)
        result = discover or await self._upstream.request_result(
            {"_meta": face.meta()}, "server/discover"
        )
        if result is None:
            raise UpstreamError(
                "the server refused initialize as a 2026-07-28 server does, but did not answer "
                "server/discover either",
                "it may need a client that speaks 2026-07-28 natively; run `mcp-remote-py "
                "doctor URL` for details",
            )
        capabilities = result.get("capabilities")
        self._server_capabilities = capabilities if isinstance(capabilities, dict) else {}
        log.info(
            "the server speaks only MCP 2026-07-28; bridging this %s client to it",
            face.requested_version,
        )
        await self._deliver(Message(Kind.RESPONSE, face.initialize_result(message.id, result), ""))
        self._listen()

    def _face(self) -> LegacyFace:
        if self.face is None:
            raise UpstreamError(
                "the client sent a request before initialize",
                "a client of the 2025 protocol must open with initialize",
            )
        return self.face

    # -- MRTR ----------------------------------------------------------------------------------

    async def _ask_client(self, result: dict[str, Any], face: LegacyFace) -> dict[str, Any]:
        """Rule 5: one round, asked of the client all at once; its results by the server's
        keys. Raises InputRefused when a request cannot be asked or is declined with an error."""
        try:
            round_ = input_requests(result, face)
        except InputRoundError as exc:
            raise InputRefused(
                f"the server's request for input could not be passed on: {exc}",
                "The client needs the capability named, or the server must not ask for it",
            ) from None
        answers: dict[str, Message] = {}
        asked: list[str] = []
        try:
            with trio.move_on_after(ROUND_TIMEOUT) as waited:
                async with trio.open_nursery() as nursery:
                    for request in round_:
                        own_id = self._state.next_relay_id()
                        asked.append(own_id)
                        nursery.start_soon(self._ask_one, own_id, request, answers)
            if waited.cancelled_caught:
                raise InputRefused(
                    f"the client did not answer the server's request for input within "
                    f"{ROUND_TIMEOUT:g} s",
                    "Answer the prompt in the client, then try the call again",
                )
        finally:
            unanswered = [own_id for own_id in asked if self._asked.pop(own_id, None)]
            if unanswered:
                # The client withdrew the call, or took too long: it need not answer the rest
                # (basic/patterns/cancellation), and a late answer would find nothing.
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    for own_id in unanswered:
                        await self._output.write_line(
                            line(
                                cancelled_notification(
                                    own_id, "the request that needed it has ended"
                                )
                            )
                        )
        responses: dict[str, Any] = {}
        for request in round_:
            answer = answers[request.key].body
            if "result" not in answer:
                error = answer.get("error")
                text = error.get("message") if isinstance(error, dict) else None
                reason = text or "no reason given"
                raise InputRefused(f"the client declined the server's {request.method}: {reason}")
            responses[request.key] = answer["result"]
        return responses

    async def _ask_one(
        self, own_id: str, request: InputRequest, answers: dict[str, Message]
    ) -> None:
        arrived = trio.Event()
        received: list[Message] = []
        self._asked[own_id] = (arrived, received)
        body = {"jsonrpc": "2.0", "id": own_id, "method": request.method, "params": request.params}
        await self._output.write_line(line(body))
        await arrived.wait()
        answers[request.key] = received[0]
        del self._asked[own_id]

    # -- server → client -----------------------------------------------------------------------

    async def _from_server(self, message: Message) -> None:
        if message.kind is Kind.RESPONSE:
            # result_type reads a large answer's envelope only: a 5 MB result is not parsed
            # again, and a large input_required (an image to sample) is still a round.
            if message.id in self._rounds and message.result_type == "input_required":
                self._rounds[message.id] = message
                return
            pending = self._state.pending.get(message.id) if message.id is not None else None
            await self._deliver(legacy_response(message, pending.method if pending else None))
            return
        notification = legacy_notification(message)
        if notification is not None:
            await self._deliver(notification)

    def _listen(self) -> None:
        """Rule 6: (re)open the relay's one listen stream with the current filter."""
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None
        assert self.face is not None
        own_id = self._state.next_relay_id()
        request = self.face.listen(own_id, self._server_capabilities)
        if request is None:
            return
        scope = self._listener = trio.CancelScope()
        self._nursery.start_soon(self._keep_listening, scope, Message(Kind.REQUEST, request, ""))

    async def _keep_listening(self, scope: trio.CancelScope, request: Message) -> None:
        """The relay's listen, tried until it opens (the server down at start, say) and then
        kept open by ``ModernUpstream``; each try under a new id (changelog major change 9).
        A refusal that waiting cannot mend ends it: list changes then simply do not arrive."""
        attempt = 0
        with scope:
            while True:
                try:
                    await self._upstream.send(request)
                    return  # the server ended it gracefully, or answered it with an error
                except UpstreamError as exc:
                    if not exc.transient and not isinstance(
                        exc, (ConnectionLost, UpstreamUnavailable)
                    ):
                        log.warning(
                            "the server refused the relay's subscriptions/listen (%s); list "
                            "changes will not reach the client",
                            exc,
                        )
                        return
                    delay = self._upstream.retry_delay(exc, attempt)
                    level = logging.INFO if attempt == 0 else logging.DEBUG
                    log.log(
                        level,
                        "subscriptions/listen failed (%s); trying again in %.1f s",
                        exc,
                        delay,
                    )
                    attempt += 1
                    await trio.sleep(delay if math.isfinite(delay) else 1.0)
                except Exception:
                    # Nothing a server sends may end the relay: this task serves no request
                    # that could carry the error, so it goes to the log.
                    log.exception("the relay's subscriptions/listen stopped on an unexpected error")
                    return
                body = {**request.body, "id": self._state.next_relay_id()}
                request = Message(Kind.REQUEST, body, "")
