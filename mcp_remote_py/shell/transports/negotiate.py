"""Choosing the transport: Streamable HTTP, legacy HTTP+SSE, or one falling back to the other.

2025-11-25 basic/transports §Backwards compatibility: POST the InitializeRequest; if that fails
with 400, 404 or 405, GET the URL and expect an ``endpoint`` event (the 2024-11-05 transport).

2026-07-28 basic/versioning §Backward Compatibility: a server that speaks only 2026-07-28 refuses
``initialize`` too, and SHOULD say so with a modern error naming its versions. Such an answer,
or (when the refusal says nothing recognisable) a ``server/discover`` that succeeds, raises
``ModernOnlyServer`` instead of falling back to legacy SSE: the relay then bridges.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx
import trio

from ...core.backoff import Backoff
from ...core.bridge_up import LegacyFace
from ...core.eras import jsonrpc_error_body, proves_modern
from ...core.errors import ModernOnlyServer, ProtocolViolation, UpstreamError, UpstreamHttpError
from ...core.jsonrpc import Kind, Message
from ..net import DOCTOR_HINT, NetworkOptions, display_url
from .base import Authorize, Deliver, Transport
from .legacy_sse import LegacySseTransport
from .modern_http import ModernHttpTransport
from .streamable_http import StreamableHttpTransport

__all__ = ["MODES", "open_transport", "transport_order"]

log = logging.getLogger("mcp_remote_py")

MODES = ("http-first", "sse-first", "http-only", "sse-only")
HTTP, SSE = "http", "sse"
# Answers that mean "this transport is not served here"; 401/403 mean "not without credentials",
# and falling back would only hide that.
_NOT_SERVED = {HTTP: {400, 404, 405}, SSE: {400, 404, 405, 406}}


def transport_order(mode: str, url: httpx.URL) -> list[str]:
    """Which transports to try, in order. A URL ending in ``/sse`` starts with SSE."""
    if mode == "http-only":
        return [HTTP]
    if mode == "sse-only":
        return [SSE]
    if mode == "sse-first" or url.path.rstrip("/").endswith("/sse"):
        return [SSE, HTTP]
    return [HTTP, SSE]


async def open_transport(
    mode: str,
    url: httpx.URL,
    first: Message,
    *,
    client: httpx.AsyncClient,
    deliver: Deliver,
    nursery: trio.Nursery,
    options: NetworkOptions,
    backoff: Backoff,
    on_lost: Callable[[UpstreamError], None],
    authorize: Authorize | None = None,
    probe_modern: bool = True,
) -> Transport:
    """Open a session by sending ``first`` (normally ``initialize``) over the first transport
    that the server speaks. Its answer has been delivered when this returns. ``probe_modern``:
    after a refused initialize that proves nothing, ask ``server/discover`` before falling back
    (the era cache says whether that is worth a round trip)."""
    order = transport_order(mode, url)
    first_error: UpstreamError | None = None
    for index, kind in enumerate(order):
        started = time.monotonic()
        transport: Transport
        if kind == HTTP:
            transport = StreamableHttpTransport(
                client, url, deliver, nursery, options, backoff, on_lost, authorize
            )
        else:
            transport = LegacySseTransport(
                client, url, deliver, nursery, options, on_lost, authorize
            )
        try:
            if isinstance(transport, LegacySseTransport):
                await transport.connect()
            if first.kind is Kind.REQUEST:
                await transport.send_request(first)
            else:
                await transport.send_message(first)
        except (UpstreamHttpError, ProtocolViolation) as exc:
            await transport.close()
            status = exc.status if isinstance(exc, UpstreamHttpError) else None
            not_served = status is not None and status in _NOT_SERVED[kind]
            if kind == HTTP and first.method == "initialize" and isinstance(exc, UpstreamHttpError):
                await _refuse_if_modern_only(
                    exc, client, url, nursery, options, authorize, first, probe_modern
                )
            fallback = index + 1 < len(order) and (status is None or not_served)
            if (
                kind == SSE
                and mode == "sse-only"
                and isinstance(exc, UpstreamHttpError)
                and (status in (400, 404, 405, 406))
            ):
                # The GET of a Streamable HTTP endpoint: its "Missing session ID" says nothing
                # to someone who chose the transport by hand.
                exc.hint = (
                    f"{display_url(url)} does not serve legacy HTTP+SSE (its GET answered HTTP "
                    f"{status}). If it is a Streamable HTTP endpoint, remove --transport "
                    "sse-only (the default tries Streamable HTTP first, then legacy SSE); a "
                    "legacy server's stream is usually at a path ending in /sse. "
                    + DOCTOR_HINT.format(url=display_url(url))
                )
            if not fallback:
                # When the fallback is simply not served, the first transport's error is the one
                # that explains (a buffering proxy that hid the endpoint event, say).
                if first_error is not None and not_served:
                    raise first_error from exc
                raise
            first_error = exc
            log.info(
                "%s is not served at %s (%s); trying %s",
                transport.name,
                display_url(url),
                exc,
                "legacy HTTP+SSE" if order[index + 1] == SSE else "Streamable HTTP",
            )
            continue
        except BaseException:
            await transport.close()
            raise
        log.info(
            "connected to %s over %s in %.0f ms",
            display_url(url),
            transport.name,
            (time.monotonic() - started) * 1000,
        )
        return transport
    raise AssertionError("unreachable: the last transport either returns or raises")


async def _refuse_if_modern_only(
    refusal: UpstreamHttpError,
    client: httpx.AsyncClient,
    url: httpx.URL,
    nursery: trio.Nursery,
    options: NetworkOptions,
    authorize: Authorize | None,
    initialize: Message,
    probe: bool,
) -> None:
    """Raise ModernOnlyServer when the server that refused ``initialize`` speaks 2026-07-28."""
    error = jsonrpc_error_body(refusal.body)
    if proves_modern(refusal.status, error):
        assert error is not None
        raise ModernOnlyServer(f"it answered initialize with {error['error'].get('message')!r}")
    if not probe or refusal.status not in _NOT_SERVED[HTTP]:
        return
    # The refusal proves nothing either way: ask as a modern client would. A legacy server
    # answers this with an error (or a legacy SSE server with 404/405), and the fallback goes on.
    meta = LegacyFace.from_initialize(initialize.params).meta()
    answers: list[Message] = []

    async def keep(message: Message) -> None:
        answers.append(message)

    discover = ModernHttpTransport(client, url, keep, nursery, options, lambda _: None, authorize)
    body = {"jsonrpc": "2.0", "id": "mcp-remote-py/era-probe", "method": "server/discover"}
    request = Message(Kind.REQUEST, {**body, "params": {"_meta": meta}}, "")
    try:
        await discover.send_request(request)
    except UpstreamError as exc:
        log.debug("server/discover after the refused initialize failed too: %s", exc)
        return
    results = [answer.body["result"] for answer in answers if "result" in answer.body]
    if discover.proven_modern and results and isinstance(results[0], dict):
        raise ModernOnlyServer("it refused initialize and answered server/discover", results[0])
