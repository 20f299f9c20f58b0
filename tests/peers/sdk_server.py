"""Test peer: a real MCP server on the official SDK (mcp 2.x `MCPServer`), over HTTP or stdio.

Run from the repository root:

    python -m tests.peers.sdk_server --transport streamable-http [--json-response] [--stateless]
        [--event-store] [--retry-interval MS] [--host 127.0.0.1] [--port 0]
        [--record-requests] [--header-tools] [--modern-only] [--legacy-only]
        [--request-state [STATE]] [--resource-update-tool]
    python -m tests.peers.sdk_server --transport sse [--host 127.0.0.1] [--port 0]
    python -m tests.peers.sdk_server --transport stdio    # same server over stdio, no READY line

The process binds its listening socket itself (port 0 lets the OS pick), and once uvicorn
accepts connections it prints exactly one stdout line, `READY http://127.0.0.1:PORT`.
Streamable HTTP is served at `/mcp`; legacy SSE at `/sse` with its POST endpoint at
`/messages/?session_id=...`. SIGTERM/SIGINT shut it down with exit status 0.

Server-to-client requests (`sample`, `elicit`, `roots`) work in both protocol eras:

- handshake era (<= 2025-11-25): a real JSON-RPC request to the client, on the tool call's own
  response stream when it has one, otherwise on the standalone channel (the GET stream, which is
  what makes them work in `--json-response` mode). Stateless mode has neither, so the call fails
  with JSON-RPC error -32600 ("... no back-channel for server-initiated requests"): SDK behaviour.
- 2026-07-28 era: the tool answers with an `InputRequiredResult` and reads the client's answer
  from the retried call's `inputResponses`.

The same `/mcp` endpoint serves both eras (the SDK routes a POST whose `MCP-Protocol-Version` is
not a handshake-era version to its 2026-07-28 entry). These flags help tests of that era:

- `--record-requests`: keep what every request to the server carried (headers, JSON-RPC method,
  id, params, `_meta`) and how it was answered (status, headers, the gist of the JSON-RPC answer,
  how the exchange ended), readable at `GET /_seen` (see `RequestLog`).
- `--header-tools`: add tools whose inputSchema has `x-mcp-header` annotations, valid (`route`)
  and invalid (`bad_number_header`, `bad_duplicate_header`), see `add_header_tools`.
- `--modern-only`: serve 2026-07-28 alone. Every request to `/mcp` goes to the SDK's modern entry
  whatever its headers say, so a legacy `initialize` is refused (HTTP 400, JSON-RPC -32602: no
  `_meta`) and GET/DELETE get 405, as from a server that implements only this revision.
- `--legacy-only`: serve the 2025 protocol alone: every request goes to the session transport,
  so a 2026-07-28 request (no session) gets HTTP 400 as from a 2025 server. The bench's
  bridge-down server (the tests use servers nobody here wrote: server-everything, mcp 1.x).
- `--request-state [STATE]`: the 2026-07-28 `input_required` results of `sample`, `elicit` and
  `roots` carry a `requestState` (STATE, or a default), which the SDK seals (an opaque `v1.`
  token bound to the tool's name and arguments); a retry that does not echo the token exactly is
  refused by the SDK (-32602 "Invalid or expired requestState"), one without it fails the tool.
- `--resource-update-tool`: add `update_resource(uri)`, which sends
  `notifications/resources/updated` for `uri` (to matching `subscriptions/listen` streams at
  2026-07-28; on the standalone channel in the handshake era).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import socket
import sys
import warnings
from collections import deque
from dataclasses import dataclass
from types import FrameType
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs

import anyio
import mcp.types as types
import uvicorn
from mcp.server._streamable_http_modern import handle_modern_request
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import RequestBodyLimitMiddleware
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.shared.message import ServerMessageMetadata
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field
from starlette.applications import Starlette

SERVER_NAME = "sdk-peer"
SERVER_VERSION = "1.2.3"
SERVER_INSTRUCTIONS = "Test peer for mcp-remote-py."
# `--request-state` without a value. The SDK seals whatever the tool returns (AES-GCM, bound to
# the method, the tool's name and arguments, with a TTL), so on the wire the client sees an
# unreadable `v1.` token; the tool sees this again only if the token came back unaltered.
DEFAULT_REQUEST_STATE = 'v1.eyJ0b29sIjoiZWxpY2l0In0=.\u00e9"\\/+ '

_ResultT = TypeVar("_ResultT", bound=BaseModel)


class InMemoryEventStore(EventStore):
    """Unbounded in-memory event store: enough for resumability tests (one process, short-lived)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._events: dict[EventId, tuple[StreamId, types.JSONRPCMessage | None]] = {}

    async def store_event(
        self, stream_id: StreamId, message: types.JSONRPCMessage | None
    ) -> EventId:
        event_id = str(next(self._ids))
        self._events[event_id] = (stream_id, message)
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        if last_event_id not in self._events:
            return None
        stream_id, _ = self._events[last_event_id]
        after = int(last_event_id)
        for event_id, (event_stream, message) in list(self._events.items()):
            # Priming events (message None) carry no payload and are never replayed.
            if int(event_id) > after and event_stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


class ElicitAnswer(BaseModel):
    """The form the `elicit` tool asks the client to fill in."""

    answer: str


def _is_modern(ctx: Context) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


async def _ask(
    ctx: Context,
    key: str,
    request: types.InputRequest,
    result_type: type[_ResultT],
    request_state: str | None = None,
) -> _ResultT | types.InputRequiredResult:
    """Send one server-to-client request the way the negotiated era expects.

    Returns the client's typed answer, or (2026-07-28, first round) the `InputRequiredResult`
    the tool must return so the client answers and retries. With ``request_state`` (the peer's
    ``--request-state``), that result carries it as its opaque ``requestState``, and a retry
    whose echoed state differs from it by one character is refused (the tool call fails).
    """
    if _is_modern(ctx):
        answer = (ctx.input_responses or {}).get(key)
        if answer is None:
            return types.InputRequiredResult(
                input_requests={key: request}, request_state=request_state
            )
        if request_state is not None and ctx.request_state != request_state:
            raise ValueError(
                f"requestState came back altered: sent {request_state!r}, got {ctx.request_state!r}"
            )
        return result_type.model_validate(
            answer.model_dump(by_alias=True, mode="json", exclude_none=True)
        )
    # Handshake era: ride the tool call's own stream when it can carry a request (SSE response
    # mode); otherwise fall back to the standalone channel (GET stream / legacy SSE stream).
    session: ServerSession = ctx.session
    related = ctx.request_id if session.can_send_request else None
    metadata = ServerMessageMetadata(related_request_id=related) if related is not None else None
    return await session.send_request(request, result_type, metadata=metadata)


def add_header_tools(mcp: MCPServer) -> None:
    """Tools whose inputSchema carries `x-mcp-header` annotations (2026-07-28 `Mcp-Param-*`).

    * `route`: valid annotations on a string (`region` → `Mcp-Param-Region`), a boolean
      (`dry_run` → `Dry-Run`), an integer (`shard` → `Shard`) and a nested property
      (`target.zone` → `Zone`, reached through `properties` only). The server checks each
      `Mcp-Param-*` header against the argument (-32020 HeaderMismatch when one is missing or
      differs) and the tool returns its arguments as JSON.
    * `bad_number_header` (annotation on a `number`) and `bad_duplicate_header` (two annotations
      `Place`/`place`, case-insensitively equal): invalid, so a conforming HTTP client leaves
      them out of tools/list. The server does not check headers for them; calling one works.
    """

    @mcp.tool(structured_output=False)
    def route(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
        query: str = "",
        dry_run: Annotated[bool, Field(json_schema_extra={"x-mcp-header": "Dry-Run"})] = False,
        shard: Annotated[int, Field(json_schema_extra={"x-mcp-header": "Shard"})] = 0,
        target: Annotated[
            dict[str, str] | None,
            Field(
                json_schema_extra={
                    "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}}
                }
            ),
        ] = None,
    ) -> str:
        """Return the arguments as a JSON object (region, query, dry_run, shard, target)."""
        arguments = {
            "region": region,
            "query": query,
            "dry_run": dry_run,
            "shard": shard,
            "target": target,
        }
        return json.dumps(arguments, sort_keys=True)

    @mcp.tool(structured_output=False)
    def bad_number_header(ratio: float) -> str:
        """Invalid: `x-mcp-header` on a number parameter."""
        return f"ratio {ratio}"

    @mcp.tool(structured_output=False)
    def bad_duplicate_header(region: str, zone: str) -> str:
        """Invalid: two parameters with the same `x-mcp-header` (case-insensitively)."""
        return f"{region}/{zone}"

    # MCPServer refuses an invalid annotation when a tool is registered, so patch the schemas it
    # built (private API: a test peer may; the listing serves `parameters` as the inputSchema).
    manager = mcp._tool_manager  # pyright: ignore[reportPrivateUsage]
    number = manager.get_tool("bad_number_header")
    duplicate = manager.get_tool("bad_duplicate_header")
    assert number is not None
    assert duplicate is not None
    number.parameters["properties"]["ratio"]["x-mcp-header"] = "Ratio"
    duplicate.parameters["properties"]["region"]["x-mcp-header"] = "Place"
    duplicate.parameters["properties"]["zone"]["x-mcp-header"] = "place"


def build_server(
    header_tools: bool = False,
    request_state: str | None = None,
    resource_update_tool: bool = False,
) -> MCPServer:
    mcp = MCPServer(
        SERVER_NAME,
        version=SERVER_VERSION,
        instructions=SERVER_INSTRUCTIONS,
        log_level="WARNING",
    )

    @mcp.tool(structured_output=False)
    def echo(text: str) -> str:
        """Return `text` unchanged."""
        return text

    @mcp.tool()
    def add(a: int | float, b: int | float) -> int | float:
        """Add two numbers (result also as structuredContent {"result": a+b})."""
        return a + b

    @mcp.tool(structured_output=False)
    async def slow(seconds: float, steps: int, ctx: Context) -> str:
        """Sleep `seconds` in total, reporting progress after each of `steps` equal slices."""
        for step in range(1, steps + 1):
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(step, steps, f"step {step}/{steps}")
        return "done"

    @mcp.tool(structured_output=False)
    def big(size: int) -> str:
        """Return a text content of exactly `size` bytes ('x' * size)."""
        return "x" * size

    @mcp.tool(structured_output=False)
    async def sample(prompt: str, ctx: Context) -> str | types.InputRequiredResult:
        """Ask the client's LLM (sampling/createMessage) and return its text answer."""
        request = types.CreateMessageRequest(
            params=types.CreateMessageRequestParams(
                messages=[
                    types.SamplingMessage(
                        role="user", content=types.TextContent(type="text", text=prompt)
                    )
                ],
                max_tokens=100,
            )
        )
        result = await _ask(ctx, "sample", request, types.CreateMessageResult, request_state)
        if isinstance(result, types.InputRequiredResult):
            return result
        if not isinstance(result.content, types.TextContent):
            raise ValueError(f"sampling answered with {result.content.type} content, expected text")
        return result.content.text

    @mcp.tool(structured_output=False)
    async def elicit(question: str, ctx: Context) -> str | types.InputRequiredResult:
        """Ask the user (form elicitation with one string field `answer`) and return the answer."""
        request = types.ElicitRequest(
            params=types.ElicitRequestFormParams(
                message=question, requested_schema=ElicitAnswer.model_json_schema(by_alias=True)
            )
        )
        result = await _ask(ctx, "elicit", request, types.ElicitResult, request_state)
        if isinstance(result, types.InputRequiredResult):
            return result
        if result.action != "accept":
            return f"elicitation {result.action}"
        return ElicitAnswer.model_validate(result.content or {}).answer

    @mcp.tool(structured_output=False)
    async def roots(ctx: Context) -> str | types.InputRequiredResult:
        """Ask the client for roots/list; return the root URIs joined by newlines."""
        result = await _ask(
            ctx, "roots", types.ListRootsRequest(), types.ListRootsResult, request_state
        )
        if isinstance(result, types.InputRequiredResult):
            return result
        return "\n".join(str(root.uri) for root in result.roots)

    @mcp.tool(structured_output=False)
    def headers(ctx: Context) -> str:
        """Return the HTTP request headers the server saw for this call, as a JSON object."""
        return json.dumps(dict(ctx.headers or {}), sort_keys=True)

    @mcp.tool(structured_output=False)
    async def log(message: str, ctx: Context) -> str:
        """Send `message` as an info-level notifications/message, then return "logged"."""
        await ctx.info(message)  # pyright: ignore[reportDeprecated]
        return "logged"

    @mcp.tool(structured_output=False)
    async def notify_tools_changed(ctx: Context, related: bool = False) -> str:
        """Send notifications/tools/list_changed.

        By default on the standalone channel (GET stream / SSE stream / stdio); with
        `related=true` on this call's own response stream instead (works in stateless mode).
        """
        notification = types.ToolListChangedNotification()
        await ctx.session.send_notification(
            notification, related_request_id=ctx.request_id if related else None
        )
        await ctx.notify_tools_changed()  # 2026-07-28 subscriptions/listen subscribers
        return "notified"

    @mcp.tool(structured_output=False)
    async def interrupt_stream(seconds: float, ctx: Context) -> str:
        """Close this call's SSE stream (no-op without --event-store), then finish after `seconds`.

        Exercises resumability: the client must reconnect with Last-Event-ID to get the result.
        """
        await ctx.report_progress(1, 2, "before disconnect")
        await ctx.close_sse_stream()
        await anyio.sleep(seconds)
        await ctx.report_progress(2, 2, "after disconnect")
        return "resumed"

    @mcp.prompt()
    def greet(name: str) -> str:
        """Greet someone by name."""
        return f"Hello, {name}!"

    @mcp.resource("text://hello", mime_type="text/plain")
    def hello() -> str:
        """A static text resource."""
        return "hello world"

    @mcp.resource("text://item/{id}", mime_type="text/plain")
    def item(id: str) -> str:
        """A templated text resource."""
        return f"item {id}"

    if resource_update_tool:

        @mcp.tool(structured_output=False)
        async def update_resource(uri: str, ctx: Context) -> str:
            """Announce that the resource `uri` changed (notifications/resources/updated).

            2026-07-28: to the `subscriptions/listen` streams whose filter names `uri`; handshake
            era: on the standalone channel (the GET stream), as `resources/subscribe` expects.
            """
            if _is_modern(ctx):
                await ctx.notify_resource_updated(uri)
            else:
                await ctx.session.send_resource_updated(uri)
            return "updated"

    if header_tools:
        add_header_tools(mcp)
    return mcp


@dataclass
class Options:
    transport: str
    json_response: bool
    stateless: bool
    event_store: bool
    retry_interval: int | None
    host: str
    port: int
    sse_path: str = "/sse"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    hypercorn: bool = False
    record_requests: bool = False
    header_tools: bool = False
    modern_only: bool = False
    legacy_only: bool = False
    request_state: str | None = None
    resource_update_tool: bool = False


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m tests.peers.sdk_server", description="MCP SDK test peer server"
    )
    parser.add_argument(
        "--transport", choices=["streamable-http", "sse", "stdio"], default="streamable-http"
    )
    parser.add_argument(
        "--json-response", action="store_true", help="answer POSTs with JSON instead of SSE"
    )
    parser.add_argument("--stateless", action="store_true", help="no sessions (streamable-http)")
    parser.add_argument(
        "--event-store", action="store_true", help="in-memory event store for resumability"
    )
    parser.add_argument(
        "--retry-interval", type=int, default=None, help="SSE retry hint in ms (with --event-store)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sse-path", default="/sse", help="where the legacy SSE stream is (sse)")
    parser.add_argument("--ssl-certfile", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--ssl-keyfile", help="the private key for --ssl-certfile (PEM)")
    parser.add_argument(
        "--hypercorn",
        action="store_true",
        help="serve with hypercorn instead of uvicorn: HTTP/2 as well (h2c, or ALPN with --ssl-*)",
    )
    parser.add_argument(
        "--record-requests",
        action="store_true",
        help="record every request's headers and JSON-RPC fields, readable at GET /_seen",
    )
    parser.add_argument(
        "--header-tools",
        action="store_true",
        help="add tools with x-mcp-header annotations in their inputSchema (valid and invalid)",
    )
    parser.add_argument(
        "--modern-only",
        action="store_true",
        help="serve 2026-07-28 only: every request to /mcp goes to the SDK's modern entry "
        "(a legacy initialize is rejected, GET and DELETE get 405)",
    )
    parser.add_argument(
        "--request-state",
        nargs="?",
        const=DEFAULT_REQUEST_STATE,
        default=None,
        metavar="STATE",
        help="the MRTR tools (sample, elicit, roots) send this opaque requestState with their "
        "input_required result and refuse a retry that does not echo it exactly",
    )
    parser.add_argument(
        "--legacy-only",
        action="store_true",
        help="serve the 2025 protocol alone (streamable-http): a 2026-07-28 request is refused as "
        "a 2025 server refuses it (400, no session), as the bench's bridge-down server",
    )
    parser.add_argument(
        "--resource-update-tool",
        action="store_true",
        help="add the update_resource tool (sends notifications/resources/updated for a URI)",
    )
    ns = parser.parse_args(argv)
    if ns.transport != "streamable-http" and (
        ns.json_response or ns.stateless or ns.event_store or ns.modern_only or ns.legacy_only
    ):
        parser.error(
            "--json-response/--stateless/--event-store/--modern-only/--legacy-only apply to "
            "streamable-http only"
        )
    return Options(
        transport=ns.transport,
        json_response=ns.json_response,
        stateless=ns.stateless,
        event_store=ns.event_store,
        retry_interval=ns.retry_interval,
        host=ns.host,
        port=ns.port,
        sse_path=ns.sse_path,
        ssl_certfile=ns.ssl_certfile,
        ssl_keyfile=ns.ssl_keyfile,
        hypercorn=ns.hypercorn,
        record_requests=ns.record_requests,
        header_tools=ns.header_tools,
        modern_only=ns.modern_only,
        legacy_only=ns.legacy_only,
        request_state=ns.request_state,
        resource_update_tool=ns.resource_update_tool,
    )


def _server_for(options: Options) -> MCPServer:
    return build_server(
        header_tools=options.header_tools,
        request_state=options.request_state,
        resource_update_tool=options.resource_update_tool,
    )


def build_app(options: Options) -> Starlette:
    mcp = _server_for(options)
    # `host` makes the SDK enable its DNS-rebinding protection for loopback hosts, allowing
    # Host 127.0.0.1:*/localhost:*/[::1]:* and Origin http://127.0.0.1:*/localhost:*/[::1]:*
    # (or no Origin). That never blocks loopback clients, so the protection stays on.
    if options.transport == "sse":
        return mcp.sse_app(sse_path=options.sse_path, host=options.host)
    app = mcp.streamable_http_app(
        json_response=options.json_response,
        stateless_http=options.stateless,
        event_store=InMemoryEventStore() if options.event_store else None,
        retry_interval=options.retry_interval,
        host=options.host,
    )
    if options.modern_only:
        _serve_modern_only(mcp.session_manager)
    if options.legacy_only:
        _serve_legacy_only(mcp.session_manager)
    return app


def _serve_legacy_only(manager: StreamableHTTPSessionManager) -> None:
    """Route every request to the session transport, whatever its ``MCP-Protocol-Version``
    says: the server then answers as one of the 2025 era, where a request without a session
    (a 2026-07-28 one) is a 400. Private API: a test peer may."""

    async def legacy_only(scope: Any, receive: Any, send: Any) -> None:
        await manager._handle_stateful_request(scope, receive, send)  # pyright: ignore

    manager.asgi_app = RequestBodyLimitMiddleware(legacy_only, manager.max_request_body_size)


def _serve_modern_only(manager: StreamableHTTPSessionManager) -> None:
    """Route every request to /mcp to the SDK's 2026-07-28 entry, whatever its headers say.

    The manager's own dispatch (``_handle_request``) sends a request to that entry only when its
    ``MCP-Protocol-Version`` is not a handshake-era version; everything else (no header, a
    legacy version, GET, DELETE) goes to the session transport. Here the entry serves them all,
    so the server answers as one that implements 2026-07-28 alone: an ``initialize`` (no
    ``_meta``) is refused by its validation ladder, GET and DELETE get 405. The manager still
    runs (its lifespan supplies the state the entry needs). Private API: a test peer may.
    """

    async def modern_only(scope: Any, receive: Any, send: Any) -> None:
        await handle_modern_request(
            manager.app,
            manager.security_settings,
            manager.json_response,
            manager._lifespan_state,  # pyright: ignore[reportPrivateUsage]
            scope,
            receive,
            send,
        )

    manager.asgi_app = RequestBodyLimitMiddleware(modern_only, manager.max_request_body_size)


def wrap_app(options: Options) -> Any:
    """The ASGI app as served: the MCP app behind the fault middleware (and the request log)."""
    app: Any = HttpFaults(build_app(options))
    return RequestLog(app) if options.record_requests else app


class RequestLog:
    """ASGI middleware (``--record-requests``): what each request to the server carried.

    ``GET /_seen`` answers ``{"requests": [...]}``, oldest first (the last 5000), one entry per
    HTTP request except the control endpoints (``/_seen``, ``/_faults``)::

        {"http": "POST", "path": "/mcp",
         "headers": [["mcp-method", "tools/call"], ...],  # lowercase names, as sent, repeats kept
         "rpc_method": "tools/call", "rpc_id": 3,        # null when not a JSON-RPC request
         "params_keys": ["_meta", "arguments", "name"],   # the keys of params, or null
         "params": {...},                                 # the body's params as sent, or null
         "params_name": "echo",                           # params.name, else params.uri, or null
         "meta": {...},                                   # the body's params._meta, or null
         "client": "name",                                # _meta clientInfo.name, or null
         "status": 200,                                   # response status, null before it starts
         "response_headers": [["mcp-session-id", "..."], ...],  # as sent, null before it starts
         "answer": {"resultType": "input_required",       # the JSON-RPC answer (JSON or the last
                    "requestState": "v1.…",               # SSE event with an id), once the
                    "inputRequests": ["elicit"],          # response is complete; else null
                    "error": null},
         "state": "open" | "complete" | "disconnected"}  # disconnected: the client closed it first

    ``GET /_seen?client=NAME`` keeps only the entries whose body named that client, so tests
    sharing one server each see their own requests.
    """

    ANSWER_LIMIT = 1 << 20
    """Answers longer than this (the `big` tool's) are not described."""

    def __init__(self, app: Any, limit: int = 5000) -> None:
        self.app = app
        self.entries: deque[dict[str, Any]] = deque(maxlen=limit)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_seen":
            await self._control(scope, send)
            return
        if scope["path"] == "/_faults":
            await self.app(scope, receive, send)
            return
        entry: dict[str, Any] = {
            "http": scope["method"],
            "path": scope["path"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "rpc_method": None,
            "rpc_id": None,
            "params_keys": None,
            "params": None,
            "params_name": None,
            "meta": None,
            "client": None,
            "status": None,
            "response_headers": None,
            "answer": None,
            "state": "open",
        }
        self.entries.append(entry)
        body = bytearray()
        body_done = False

        async def recording_receive() -> Any:
            nonlocal body_done
            message = await receive()
            if message["type"] == "http.request" and not body_done:
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    body_done = True
                    _describe_body(entry, bytes(body))
            elif message["type"] == "http.disconnect" and entry["state"] == "open":
                entry["state"] = "disconnected"
            return message

        answer = bytearray()

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                entry["response_headers"] = [
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                ]
            elif message["type"] == "http.response.body":
                if len(answer) < self.ANSWER_LIMIT:
                    answer.extend(message.get("body", b""))
                if not message.get("more_body"):
                    if len(answer) < self.ANSWER_LIMIT:
                        entry["answer"] = _describe_answer(bytes(answer))
                    if entry["state"] == "open":
                        entry["state"] = "complete"
            await send(message)

        await self.app(scope, recording_receive, recording_send)

    async def _control(self, scope: Any, send: Any) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        entries = list(self.entries)
        if "client" in query:
            entries = [e for e in entries if e["client"] in query["client"]]
        body = json.dumps({"requests": entries}).encode()
        await _respond(send, 200, body, [(b"content-type", b"application/json")])


def _describe_answer(body: bytes) -> dict[str, Any] | None:
    """The gist of the JSON-RPC answer in a response body (JSON, or the SSE event carrying it)."""
    candidates = [body]
    if not body.lstrip().startswith(b"{"):
        candidates = [
            line[len(b"data:") :] for line in body.splitlines() if line.startswith(b"data:")
        ]
    for candidate in reversed(candidates):
        try:
            message = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(message, dict) or "id" not in message or "method" in message:
            continue
        result = message.get("result")
        result = result if isinstance(result, dict) else {}
        requests = result.get("inputRequests")
        return {
            "resultType": result.get("resultType"),
            "requestState": result.get("requestState"),
            "inputRequests": sorted(requests) if isinstance(requests, dict) else None,
            "error": message.get("error"),
        }
    return None


def _describe_body(entry: dict[str, Any], body: bytes) -> None:
    try:
        message = json.loads(body)
    except ValueError:
        return
    if not isinstance(message, dict):
        return
    entry["rpc_method"] = message.get("method")
    entry["rpc_id"] = message.get("id")
    params = message.get("params")
    if not isinstance(params, dict):
        return
    entry["params_keys"] = sorted(params)
    entry["params"] = params
    name = params.get("name", params.get("uri"))
    entry["params_name"] = name if isinstance(name, str) else None
    meta = params.get("_meta")
    if isinstance(meta, dict):
        entry["meta"] = meta
        info = meta.get("io.modelcontextprotocol/clientInfo")
        if isinstance(info, dict):
            entry["client"] = info.get("name")


class HttpFaults:
    """ASGI middleware with a control endpoint, for faults that only an HTTP server can make.

    ``POST /_faults`` with a JSON object arms the next MCP requests (POSTs that carry a JSON-RPC
    request; notifications and GETs pass untouched):

    * ``{"status": 503, "count": 2, "retry_after": 1}``: answer them with that status and
      ``Retry-After`` without passing them to the server;
    * ``{"garbage": "event", "count": 1}``: pass them on, but put a ``data:`` event that is not
      JSON in front of the server's SSE answer;
    * ``{"garbage": "body", "count": 1}``: answer 200 ``application/json`` with a body that is
      not JSON, without passing them on.
    * ``{"redirect_to": URL, "count": 1}``: answer them 307 with ``Location: URL``.
    * ``{"set_cookie": "name=value", "count": 1}``: pass them on, adding that ``Set-Cookie`` to
      the answer (a sticky load balancer).
    * ``{"endpoint_origin": "http://host:port"}``: (legacy SSE) rewrite the ``endpoint`` event of
      every new stream so that it points to that origin.

    ``GET /_faults`` returns how many requests each fault has met so far, under
    ``"http_versions"`` how many MCP requests came over each HTTP version, and under
    ``"arrivals"`` the order requests were taken up in ("GET", "POST <method>", "DELETE").
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.armed: dict[str, Any] = {}
        self.met = {"status": 0, "garbage": 0}
        self.http_versions: dict[str, int] = {}
        self.arrivals: list[str] = []

    def _noting_arrival(self, receive: Any) -> Any:
        noted = False

        async def noting() -> Any:
            nonlocal noted
            message = await receive()
            if not noted and message["type"] == "http.request":
                noted = True
                try:
                    body = json.loads(message.get("body", b""))
                    method = body.get("method", "(answer)") if isinstance(body, dict) else "?"
                except ValueError:
                    method = "?"
                self.arrivals.append(f"POST {method}")
            return message

        return noting

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/_faults":
            await self._control(scope, receive, send)
            return
        version = str(scope.get("http_version", "?"))
        self.http_versions[version] = self.http_versions.get(version, 0) + 1
        if scope["method"] == "POST":
            receive = self._noting_arrival(receive)
        else:
            self.arrivals.append(scope["method"])
        if scope["method"] == "GET" and "endpoint_origin" in self.armed:
            await self.app(scope, receive, self._rewrite_endpoint(send))
            return
        if scope["method"] != "POST" or not self.armed.get("count"):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        try:
            is_request = "id" in json.loads(body) and "method" in json.loads(body)
        except ValueError:
            is_request = False

        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if not is_request:
            await self.app(scope, replay, send)
            return
        self.armed["count"] -= 1
        if "set_cookie" in self.armed:
            cookie = (b"set-cookie", str(self.armed["set_cookie"]).encode())

            async def send_with_cookie(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), cookie]}
                await send(message)

            await self.app(scope, replay, send_with_cookie)
            return
        if "redirect_to" in self.armed:
            location = str(self.armed["redirect_to"]).encode()
            await _respond(send, 307, b"", [(b"location", location)])
            return
        if "status" in self.armed:
            self.met["status"] += 1
            headers = [(b"content-type", b"application/json")]
            if "retry_after" in self.armed:
                headers.append((b"retry-after", str(self.armed["retry_after"]).encode()))
            await _respond(send, self.armed["status"], b'{"error":"injected fault"}', headers)
            return
        self.met["garbage"] += 1
        if self.armed.get("garbage") == "body":
            await _respond(
                send, 200, b"<html>not json</html>", [(b"content-type", b"application/json")]
            )
            return
        injected = False

        async def send_with_garbage(message: Any) -> None:
            nonlocal injected
            if message["type"] == "http.response.body" and not injected:
                injected = True
                message = {
                    **message,
                    "body": b"data: this is {not json\n\n" + message.get("body", b""),
                }
            await send(message)

        await self.app(scope, replay, send_with_garbage)

    def _rewrite_endpoint(self, send: Any) -> Any:
        origin = str(self.armed["endpoint_origin"]).encode()

        async def rewriting(message: Any) -> None:
            body = message.get("body", b"")
            if message["type"] == "http.response.body" and b"event: endpoint" in body:
                message = {**message, "body": body.replace(b"data: /", b"data: " + origin + b"/")}
            await send(message)

        return rewriting

    async def _control(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["method"] == "POST":
            body = b""
            while True:
                event = await receive()
                body += event.get("body", b"")
                if not event.get("more_body"):
                    break
            self.armed = json.loads(body)
        report = {**self.met, "http_versions": self.http_versions, "arrivals": self.arrivals}
        await _respond(
            send, 200, json.dumps(report).encode(), [(b"content-type", b"application/json")]
        )


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_SHUTDOWN_NOISE = (
    "Exception in ASGI application",
    "ASGI callable returned without completing response",
)


class _PeerServer(uvicorn.Server):
    """uvicorn server that announces readiness and exits 0 on SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self._url = url
        logging.getLogger("uvicorn.error").addFilter(self._drop_shutdown_noise)

    def _drop_shutdown_noise(self, record: logging.LogRecord) -> bool:
        # Shutting down with a client's SSE stream still open makes the SDK's SSE endpoints
        # finish their ASGI response twice (legacy SSE) or not at all (streamable HTTP GET),
        # and uvicorn logs a traceback for each. Harmless at exit; keep stderr clean.
        return not (self.should_exit and str(record.msg).startswith(_SHUTDOWN_NOISE))

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            sys.stdout.write(f"READY {self._url}\n")
            sys.stdout.flush()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Unlike the base class, record no signal: uvicorn would re-raise it after shutdown,
        # turning a graceful SIGTERM exit into death-by-signal (status -15).
        if self.should_exit:
            self.force_exit = True
        else:
            self.should_exit = True


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    warnings.simplefilter("ignore", MCPDeprecationWarning)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    if options.transport == "stdio":
        # Plain stdio server (no READY line: stdout is the protocol channel).
        anyio.run(_server_for(options).run_stdio_async)
        return

    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only then (else each answer waits ~40 ms
    # for the client's delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((options.host, options.port))
    sock.listen(128)
    sock.setblocking(False)
    port: int = sock.getsockname()[1]
    host = f"[{options.host}]" if family == socket.AF_INET6 else options.host
    scheme = "https" if options.ssl_certfile else "http"
    if options.hypercorn:
        _serve_hypercorn(options, sock, f"{scheme}://{host}:{port}")
        return

    config = uvicorn.Config(
        wrap_app(options),
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Open SSE streams would otherwise hold a graceful shutdown open indefinitely.
        timeout_graceful_shutdown=1,
        ssl_certfile=options.ssl_certfile,
        ssl_keyfile=options.ssl_keyfile,
    )
    server = _PeerServer(config, f"{scheme}://{host}:{port}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _serve_hypercorn(options: Options, sock: socket.socket, url: str) -> None:
    """The same app under hypercorn, which speaks HTTP/2 (ALPN h2 over TLS), until SIGTERM."""
    import asyncio
    import signal

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.certfile = options.ssl_certfile
    config.keyfile = options.ssl_keyfile
    config.alpn_protocols = ["h2", "http/1.1"]
    config.graceful_timeout = 1
    # hypercorn ends a connection after 1000 requests by default (GOAWAY on HTTP/2, as nginx
    # does), and httpcore fails the requests in flight on it. Benchmarks measure throughput.
    config.keep_alive_max_requests = 10_000_000
    config.loglevel = "WARNING"
    config.accesslog = None

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # The socket listens already: connections wait in its backlog until hypercorn accepts.
        sys.stdout.write(f"READY {url}\n")
        sys.stdout.flush()
        await serve(wrap_app(options), config, shutdown_trigger=stop.wait)

    asyncio.run(run())


if __name__ == "__main__":
    main()
