"""The relay's 2026-07-28 side: a modern client's requests to a modern (or dual-era) server.

Pass-through with what the HTTP binding asks of a client that the stdio client cannot know
(2026-07-28 basic/transports/streamable-http):

* §Custom Headers from Tool Parameters: ``Mcp-Param-*`` come from the ``x-mcp-header``
  annotations of the last ``tools/list``; before the first ``tools/call`` with none seen, the
  relay lists the tools itself. Tools whose annotations break the constraints are left out of
  the client's ``tools/list`` with a warning naming the tool and why (server/tools
  §x-mcp-header). A ``HeaderMismatch`` (-32020) answer to a call makes the relay list again and
  retry once (§Client Behavior); a second one reaches the client.
* Changelog major change 9: a response stream that breaks has lost its request. A
  side-effect-free one is issued again under a new id, its answer delivered under the client's;
  anything else is the relay's "may or may not have run" error (DESIGN.md invariant 3).
* basic/patterns/subscriptions: ``subscriptions/listen`` is kept open. When its stream drops
  without the server's closing response, it is opened again with backoff under a new id; the
  notifications of the new stream are re-tagged with the client's subscription id, and the new
  acknowledgement is swallowed, so the client sees one subscription that never broke.

Relay-owned requests use ids in the relay's own namespace and carry only the
``io.modelcontextprotocol/*`` keys of the client's ``_meta`` (no progress token).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import trio

from ..core.eras import HEADER_MISMATCH, SPEC_META_PREFIX, SUBSCRIPTION_ID_KEY
from ..core.errors import ConnectionLost, UpstreamError, UpstreamHttpError, UpstreamUnavailable
from ..core.jsonrpc import Kind, Message, RequestId
from ..core.request_metadata import ParamHeader, screen_tools
from ..core.session import SessionState, may_resend
from .relay_options import RelayOptions
from .sign_in import SignInGate
from .transports.base import Deliver
from .transports.modern_http import ModernHttpTransport

__all__ = ["ModernUpstream"]

log = logging.getLogger("mcp_remote_py")

# tools/list pages the relay follows when it lists on its own (a server paging one tool at a
# time through a thousand tools is still served; an endless cursor is not).
MAX_LIST_PAGES = 100
# A listen stream that stayed open this long was healthy: reopen it without backing off.
HEALTHY_STREAM = 5.0


class ModernUpstream:
    """Carries modern requests; what they bring back goes to ``deliver`` (the relay's)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        options: RelayOptions,
        deliver: Deliver,
        nursery: trio.Nursery,
        state: SessionState,
        sign_in: SignInGate,
    ) -> None:
        self.state = state
        self._options = options
        self._deliver = deliver
        self._backoff = options.backoff
        self._sign_in = sign_in
        self.transport = ModernHttpTransport(
            client,
            options.url,
            self._from_server,
            nursery,
            options.network,
            on_lost=lambda _: None,  # no session, nothing is lost on its own
            authorize=sign_in.authorize,
            tool_headers=self._params_of,
        )
        self._tool_params: dict[str, tuple[ParamHeader, ...]] = {}
        self._tools_listed = False
        self._listing = trio.Lock()
        # tools/call requests whose HeaderMismatch answer is held back for one retry.
        self._mismatch_watch: set[RequestId] = set()
        self._held: dict[RequestId, Message] = {}
        # The client's tools/list requests in flight: True for a first page (no cursor).
        self._tool_lists: dict[RequestId, bool] = {}

    @property
    def proven_modern(self) -> bool:
        return self.transport.proven_modern

    def set_delivery(self, deliver: Deliver) -> None:
        """Where what the server sends goes from now on (the bridge up puts itself between)."""
        self._deliver = deliver

    def retry_delay(self, error: UpstreamError, attempt: int) -> float:
        return self._options.retry_delay(error, attempt)

    async def send(self, message: Message, *, new_id: bool = False) -> None:
        """Send a 2026-07-28 request, re-sending only as ``may_resend`` allows; a request whose
        response stream broke is issued again under a new id (changelog major change 9).
        ``new_id``: under a relay id from the first try (an MRTR retry, mrtr §Client
        Requirements 3), its answer delivered under the request's own."""

        async def once(broke: bool) -> None:
            await self.forward(message, new_id=new_id or broke)

        await self._retrying(message.method or "", once)

    async def request_result(self, params: dict[str, Any], method: str) -> dict[str, Any] | None:
        """The result of a request of the relay's own (under a fresh id each try), with the
        same retries and sign-in as a client's; None when it was answered with an error."""
        answer = await self.request_answer(params, method)
        result = answer.get("result") if answer is not None else None
        if not isinstance(result, dict):
            log.debug("the relay's own %s was answered with %r", method, answer)
            return None
        return result

    async def request_answer(self, params: dict[str, Any], method: str) -> dict[str, Any] | None:
        """The whole answer to a request of the relay's own, as ``request_result`` sends it;
        None when the server sent none."""
        answers: list[dict[str, Any] | None] = []

        async def once(_: bool) -> None:
            answers[:] = [await self._own_answer(method, params)]

        await self._retrying(method, once)
        return answers[0]

    async def _retrying(self, method: str, once: Callable[[bool], Awaitable[None]]) -> None:
        """``once(broke)`` until it succeeds, signing in after a 401 and waiting out what
        ``may_resend`` allows; ``broke`` says the last try's stream broke (so a new id)."""
        started = time.monotonic()
        attempt = 0
        signed_in = 0
        broke = False
        while True:
            try:
                await once(broke)
                return
            except UpstreamError as exc:
                if self._sign_in.needed(exc) and signed_in < 2:
                    signed_in += 1
                    await self._sign_in.reauthorize(exc, self._sign_in.wait)
                    continue
                if not may_resend(exc, method) or self._options.retries_exhausted(attempt):
                    raise
                delay = self._options.retry_delay(exc, attempt)
                # Until the server has answered once, a client's first request (its discover,
                # most likely) is owed an answer within the start-up bound, as initialize is.
                first_contact = not self.proven_modern
                if first_contact and time.monotonic() + delay - started > (
                    self._options.initialize_deadline
                ):
                    raise
                broke = broke or isinstance(exc, ConnectionLost)
                level = logging.INFO if attempt == 0 else logging.DEBUG
                log.log(level, "%s; sending %s again in %.1f s", exc, method, delay)
                attempt += 1
                await trio.sleep(delay)

    async def forward(self, message: Message, *, new_id: bool = False) -> None:
        """Send one client request; its answer reaches the client, under the client's id.
        ``new_id``: issue it under a relay id (a re-issue after a broken stream)."""
        assert message.id is not None
        if message.method == "subscriptions/listen":
            await self._listen(message)
            return
        if message.method == "tools/list":
            self._tool_lists[message.id] = "cursor" not in message.params
            try:
                await self._send(message, new_id)
            finally:
                self._tool_lists.pop(message.id, None)
            return
        if message.method != "tools/call":
            await self._send(message, new_id)
            return
        if not self._tools_listed:
            try:
                await self._list_tools(message)
            except UpstreamError as exc:
                # The call itself was not sent: go on without Mcp-Param-*; a HeaderMismatch
                # answer makes the relay list again (below).
                log.debug("could not list the tools before %r: %s", message.params.get("name"), exc)
        self._mismatch_watch.add(message.id)
        try:
            await self._send(message, new_id)
            held = self._held.pop(message.id, None)
        finally:
            self._mismatch_watch.discard(message.id)
            self._held.pop(message.id, None)
        if held is None:
            return
        # §Client Behavior: the tool's inputSchema may have changed; list, then retry once.
        # The server's message may quote header and argument values: only at debug level.
        log.info(
            "the server found the headers of tools/call %r wrong (-32020); listing tools again "
            "and retrying once",
            message.params.get("name"),
        )
        log.debug("its HeaderMismatch said: %s", _error_text(held))
        try:
            await self._list_tools(message)
        except UpstreamError as exc:
            # The call was refused unrun; without a fresh list there is nothing better to send,
            # so the server's own answer is the client's (not "it may have run").
            log.debug("could not list the tools again: %s", exc)
            await self._deliver(held)
            return
        await self._send(message, new_id=True)

    # -- server → client -----------------------------------------------------------------------

    async def _from_server(self, message: Message) -> None:
        if (
            message.kind is Kind.RESPONSE
            and message.id in self._mismatch_watch
            and message.is_error
            and _error_code(message) == HEADER_MISMATCH
        ):
            assert message.id is not None
            self._held[message.id] = message
            return
        if message.kind is Kind.RESPONSE and message.id in self._tool_lists:
            assert message.id is not None
            message = self._screened(message, first_page=self._tool_lists[message.id])
        await self._deliver(message)

    def _screened(self, message: Message, *, first_page: bool) -> Message:
        """The client's tools/list answer without the tools whose x-mcp-header is invalid;
        their headers learnt for the calls that follow."""
        result = message.body.get("result")
        tools = result.get("tools") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(tools, list):
            return message
        kept, headers, rejected = screen_tools(tools)
        self._learn(headers, first_page=first_page)
        for tool in rejected:
            log.warning(
                "left the tool %r out of tools/list: %s (2026-07-28 server/tools §x-mcp-header)",
                tool.name,
                tool.reason,
            )
        if not rejected:
            return message
        return Message(Kind.RESPONSE, {**message.body, "result": {**result, "tools": kept}}, "")

    def _learn(self, headers: dict[str, tuple[ParamHeader, ...]], *, first_page: bool) -> None:
        if first_page:
            self._tool_params = {}
        self._tool_params.update(headers)
        self._tools_listed = True

    def _params_of(self, tool: str) -> tuple[ParamHeader, ...]:
        return self._tool_params.get(tool, ())

    # -- requests of the relay's own -------------------------------------------------------------

    async def _send(self, message: Message, new_id: bool) -> None:
        if not new_id:
            await self.transport.send(message, self._from_server)
            return
        assert message.id is not None
        client_id = message.id
        own_id = self.state.next_relay_id()

        async def under_client_id(answer: Message) -> None:
            if answer.kind is Kind.RESPONSE and answer.id == own_id:
                answer = Message(Kind.RESPONSE, {**answer.body, "id": client_id}, "")
            await self._from_server(answer)

        body = {**message.body, "id": own_id}
        await self.transport.send(Message(Kind.REQUEST, body, ""), under_client_id)

    async def _list_tools(self, cause: Message) -> None:
        """List every page of tools with the client's spec ``_meta``, to learn the headers."""
        async with self._listing:
            meta = _spec_meta(cause.params)
            headers: dict[str, tuple[ParamHeader, ...]] = {}
            cursor: str | None = None
            for _ in range(MAX_LIST_PAGES):
                params: dict[str, Any] = {"_meta": meta}
                if cursor is not None:
                    params["cursor"] = cursor
                result = await self._own_request("tools/list", params)
                tools = result.get("tools") if result is not None else None
                if not isinstance(tools, list):
                    break
                headers.update(screen_tools(tools)[1])
                next_cursor = result.get("nextCursor") if result is not None else None
                if not isinstance(next_cursor, str) or not next_cursor:
                    break
                cursor = next_cursor
            self._learn(headers, first_page=True)

    async def _own_request(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The result of a request the relay makes for itself; None for an error answer."""
        answer = await self._own_answer(method, params)
        result = answer.get("result") if answer is not None else None
        if not isinstance(result, dict):
            log.debug("the relay's own %s was answered with %r", method, answer)
            return None
        return result

    async def _own_answer(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to a request the relay makes for itself. What else its stream carries
        (progress, logs) is not the client's business."""
        own_id = self.state.next_relay_id()
        answers: list[dict[str, Any]] = []

        async def keep(answer: Message) -> None:
            if answer.kind is Kind.RESPONSE and answer.id == own_id:
                answers.append(answer.body)

        request = {"jsonrpc": "2.0", "id": own_id, "method": method, "params": params}
        await self.transport.send(Message(Kind.REQUEST, request, ""), keep)
        return answers[0] if answers else None

    # -- subscriptions/listen ------------------------------------------------------------------

    async def _listen(self, message: Message) -> None:
        """The client's listen, kept open until the server closes it with its response or the
        client cancels it. Failures before the first stream opened are the caller's to handle;
        once one did, drops are the relay's business and reopened for as long as it takes."""
        assert message.id is not None
        client_id = message.id
        upstream = message
        established = False
        attempt = 0
        while True:
            opened = trio.current_time()
            seen: list[bool] = []
            try:
                await self.transport.send(
                    upstream, self._listen_delivery(client_id, upstream, seen)
                )
                return  # the server ended the subscription; its response reached the client
            except (ConnectionLost, UpstreamUnavailable, UpstreamHttpError) as exc:
                established = established or bool(seen)
                if not established:
                    raise
                if isinstance(exc, UpstreamHttpError) and not exc.transient:
                    raise
                error: UpstreamError = exc
            if trio.current_time() - opened > HEALTHY_STREAM:
                attempt = 0
            delay = self._options.retry_delay(error, attempt)
            level = logging.INFO if attempt == 0 else logging.DEBUG
            log.log(
                level,
                "the subscriptions/listen stream ended (%s); reopening in %.1f s",
                error,
                delay,
            )
            attempt += 1
            await trio.sleep(delay)
            upstream = Message(Kind.REQUEST, {**message.body, "id": self.state.next_relay_id()}, "")

    def _listen_delivery(
        self, client_id: RequestId, upstream: Message, seen: list[bool]
    ) -> Deliver:
        """What a listen stream carries, as the client must see it: on a reopened stream, the
        subscription id is the client's request id and the acknowledgement is not repeated."""
        reopened = upstream.id != client_id

        async def deliver(message: Message) -> None:
            seen.append(True)
            if not reopened:
                await self._from_server(message)
                return
            if message.method == "notifications/subscriptions/acknowledged":
                log.debug("the reopened subscriptions/listen stream was acknowledged")
                return
            body = _retagged(message.body, upstream.id, client_id)
            if message.kind is Kind.RESPONSE and message.id == upstream.id:
                body["id"] = client_id
            await self._from_server(Message(message.kind, body, ""))

        return deliver


def _retagged(
    body: dict[str, Any], upstream_id: RequestId | None, client_id: RequestId
) -> dict[str, Any]:
    """``body`` with ``_meta`` subscriptionId ``upstream_id`` (in params or result) made
    ``client_id``; a copy, the original untouched."""
    body = dict(body)
    for part in ("params", "result"):
        section = body.get(part)
        meta = section.get("_meta") if isinstance(section, dict) else None
        if isinstance(meta, dict) and meta.get(SUBSCRIPTION_ID_KEY) == upstream_id:
            assert isinstance(section, dict)
            body[part] = {**section, "_meta": {**meta, SUBSCRIPTION_ID_KEY: client_id}}
    return body


def _spec_meta(params: Mapping[str, Any]) -> dict[str, Any]:
    meta = params.get("_meta")
    if not isinstance(meta, Mapping):
        return {}
    return {k: v for k, v in meta.items() if isinstance(k, str) and k.startswith(SPEC_META_PREFIX)}


def _error_code(message: Message) -> int | None:
    error = message.body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) else None


def _error_text(message: Message) -> str:
    error = message.body.get("error")
    text = error.get("message") if isinstance(error, dict) else None
    return text if isinstance(text, str) else "no message"
