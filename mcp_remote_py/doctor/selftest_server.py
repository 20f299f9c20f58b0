"""A minimal MCP server for ``doctor --selftest``: a bare ASGI callable (no framework), served by
hypercorn under trio on loopback, speaking both transports.

* Streamable HTTP at ``/mcp``: POST answers requests with an event stream whose events carry ids;
  notifications and responses get 202; the ``Mcp-Session-Id`` from initialize is required
  afterwards, and an unknown one is answered 404 (as the SDK does); DELETE ends a session; GET is
  405 (no standalone stream).
* Legacy HTTP+SSE at ``/sse``: the stream's first event is ``endpoint``
  (``/messages?session_id=…``); POSTs there are answered 202 and the answers arrive as
  ``message`` events.

Methods: ``initialize``, ``notifications/initialized``, ``ping``, ``tools/list`` and
``tools/call`` of ``echo`` and of ``roots``, which asks the client ``roots/list`` (a server →
client request) and answers with the root URIs it got back.

2026-07-28 (basic/versioning, basic/transports/streamable-http, basic/patterns/mrtr): ``/mcp``
is dual-era, serving a POST whose ``_meta`` (or ``MCP-Protocol-Version``) names a modern version
without a session; ``/modern`` speaks only 2026-07-28 and refuses a legacy ``initialize`` with
HTTP 400 and -32022 naming ``["2026-07-28"]`` (§Backward Compatibility: the only diagnostic a
legacy client can show). A modern request must carry the spec's ``_meta`` and the headers that
mirror it (``MCP-Protocol-Version``, ``Mcp-Method``, ``Mcp-Name``); a mismatch is HTTP 400 with
-32020, and what each request carried is kept in ``modern_requests`` for the self-test to read.
Methods: ``server/discover``, ``tools/list``, and ``tools/call`` of ``echo`` and of ``roots``,
which answers ``input_required`` (a ``roots/list`` input request and a ``requestState``) and
then, on the retry carrying ``inputResponses`` and that state, the root URIs.

``drop()`` makes the server lose its sessions once, as a restart would: Streamable HTTP sessions
are forgotten (the next request meets 404), legacy streams are closed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import trio

__all__ = ["MODERN_VERSION", "REQUEST_STATE", "SERVER_NAME", "ModernRequest", "SelfTestServer"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SERVER_NAME = "mcp-remote-py-selftest"
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
MODERN_VERSION = "2026-07-28"
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
# What the roots tool's input_required carries, and must see again on the retry (mrtr §Client
# Requirements 2: echoed exactly, so a few characters that JSON escapes).
REQUEST_STATE = 'selftest-state/"roots"\u00e9'
ANSWER_TIMEOUT = 10.0
TOOLS = [
    {
        "name": "echo",
        "description": "Return the text unchanged.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {
        "name": "roots",
        "description": "Ask the client for its roots (roots/list) and return their URIs.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]


class _ToolError(Exception):
    pass


@dataclass
class _Session:
    """What one session has asked the client and not yet heard back."""

    waiting: dict[str, tuple[trio.Event, list[dict[str, Any]]]] = field(default_factory=dict)
    # Legacy SSE only: messages for the stream.
    outbox: trio.MemorySendChannel[dict[str, Any] | None] | None = None


@dataclass(frozen=True)
class ModernRequest:
    """What one 2026-07-28 request carried, as the server checked it."""

    method: str
    request_id: Any
    headers: dict[str, str]  # MCP-Protocol-Version, Mcp-Method, Mcp-Name: as sent
    meta: dict[str, Any]
    params: dict[str, Any]
    session_id: str | None  # an Mcp-Session-Id header, which a modern client never sends


class _Refused(Exception):
    """A modern request refused before it is served: the HTTP status and the JSON-RPC error."""

    def __init__(self, status: int, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.data = status, code, data


def _decoded(value: str) -> str:
    """streamable-http §Value Encoding: a Base64 sentinel's text, else the value itself."""
    if value.startswith("=?base64?") and value.endswith("?="):
        try:
            return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _Refused(400, -32020, f"Header mismatch: malformed Base64 in {value!r}") from None
    return value


def _sse(data: dict[str, Any], *, event: str | None = None, event_id: int | None = None) -> bytes:
    head = ""
    if event_id is not None:
        head += f"id: {event_id}\n"
    if event is not None:
        head += f"event: {event}\n"
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _read_body(receive: Receive, limit: int = 1 << 20) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            raise ValueError("body too large")
        if not message.get("more_body"):
            break
    return bytes(body)


async def _respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [*(headers or []), (b"content-length", str(len(body)).encode())]
    if body and not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _is_modern(message: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
    """A dual-era server serves a request in the modern era when it names a modern version:
    in its ``_meta``, or (before the body is read, as a gateway would) in its header."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(VERSION_KEY) if isinstance(meta, dict) else None
    if version is None:
        header = headers.get(b"mcp-protocol-version")
        version = header.decode("latin-1") if header else None
    return isinstance(version, str) and version not in PROTOCOL_VERSIONS


def _result(request_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class SelfTestServer:
    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.legacy: dict[str, _Session] = {}
        self.initializes = 0
        self.deletes = 0
        self.delete_requests = 0  # on any path, answered or not
        self.refused_initializes = 0
        self.modern_requests: list[ModernRequest] = []
        self._event_ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    # -- running

    async def serve(
        self,
        *,
        app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve on 127.0.0.1 (a free port) until cancelled; ``task_status`` gets the base URL.
        ``app`` (default: this server) may wrap this server's ASGI callable."""
        from hypercorn.config import Config
        from hypercorn.trio import serve

        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.errorlog = None
        config.accesslog = None
        config.graceful_timeout = 1.0
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            binds: list[str] = await nursery.start(serve, app or self, config)
            task_status.started(binds[0])

    def drop(self) -> None:
        """Lose every session once, as a restarted server would."""
        self.sessions.clear()
        for session in self.legacy.values():
            if session.outbox is not None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    session.outbox.send_nowait(None)  # ends the stream
        self.legacy.clear()

    # -- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "DELETE":
            self.delete_requests += 1
        if path == "/mcp":
            if method == "POST":
                await self._streamable_post(scope, receive, send)
            elif method == "DELETE":
                await self._streamable_delete(scope, send)
            else:
                await _respond(send, 405, b"", [(b"allow", b"POST, DELETE")])
        elif path == "/modern":
            if method == "POST":
                await self._streamable_post(scope, receive, send, modern_only=True)
            else:  # streamable-http §Earlier Streamable HTTP Revisions: no GET, no DELETE
                await _respond(send, 405, b"", [(b"allow", b"POST")])
        elif path == "/sse" and method == "GET":
            await self._legacy_stream(receive, send)
        elif path == "/messages" and method == "POST":
            await self._legacy_post(scope, receive, send)
        else:
            await _respond(send, 404, b'{"error":"not found"}')

    # -- the methods

    async def _handle(
        self,
        session: _Session,
        message: dict[str, Any],
        ask: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> dict[str, Any]:
        """The answer to one request; ``ask`` sends a server request to the client."""
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params") or {}
        if method == "initialize":
            self.initializes += 1
            wanted = params.get("protocolVersion")
            version = wanted if wanted in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
            return _result(
                request_id,
                {
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": {"name": SERVER_NAME, "version": "1"},
                },
            )
        if method == "ping":
            return _result(request_id, {})
        if method == "tools/list":
            return _result(request_id, {"tools": TOOLS})
        if method == "tools/call":
            try:
                text = await self._call(session, params, ask)
            except _ToolError as exc:
                return _result(
                    request_id, {"content": [{"type": "text", "text": str(exc)}], "isError": True}
                )
            return _result(request_id, {"content": [{"type": "text", "text": text}]})
        return _error(request_id, -32601, f"method not found: {method}")

    async def _call(
        self,
        session: _Session,
        params: dict[str, Any],
        ask: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> str:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if name == "echo":
            return str(arguments.get("text", ""))
        if name == "roots":
            request_id = f"selftest-{next(self._request_ids)}"
            arrived, answer = trio.Event(), list[dict[str, Any]]()
            session.waiting[request_id] = (arrived, answer)
            try:
                await ask({"jsonrpc": "2.0", "id": request_id, "method": "roots/list"})
                with trio.move_on_after(ANSWER_TIMEOUT):
                    await arrived.wait()
            finally:
                session.waiting.pop(request_id, None)
            if not answer:
                raise _ToolError("the client did not answer roots/list")
            roots = (answer[0].get("result") or {}).get("roots") or []
            return "\n".join(str(root.get("uri")) for root in roots if isinstance(root, dict))
        raise _ToolError(f"unknown tool {name!r}")

    @staticmethod
    def _take_answer(session: _Session, message: dict[str, Any]) -> None:
        waiting = session.waiting.get(str(message.get("id")))
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()

    # -- Streamable HTTP

    async def _streamable_post(
        self, scope: Scope, receive: Receive, send: Send, *, modern_only: bool = False
    ) -> None:
        try:
            message = json.loads(await _read_body(receive))
        except ValueError:
            await _respond(send, 400, json.dumps(_error(None, -32700, "parse error")).encode())
            return
        if not isinstance(message, dict):
            await _respond(send, 400, json.dumps(_error(None, -32600, "not an object")).encode())
            return
        headers = dict(scope["headers"])
        if modern_only or _is_modern(message, headers):
            await self._modern_post(message, headers, send)
            return
        session_id = headers.get(b"mcp-session-id", b"").decode()
        if message.get("method") == "initialize":
            session_id = secrets.token_hex(8)
            session = self.sessions[session_id] = _Session()
        elif not session_id:
            await _respond(send, 400, b'{"error":"no session id"}')
            return
        elif session_id not in self.sessions:
            await _respond(send, 404, b'{"error":"unknown session"}')
            return
        else:
            session = self.sessions[session_id]
        if "method" not in message:  # the client's answer to a server request
            self._take_answer(session, message)
            await _respond(send, 202)
            return
        if "id" not in message:  # a notification
            await _respond(send, 202)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    (b"mcp-session-id", session_id.encode()),
                ],
            }
        )

        async def ask(request: dict[str, Any]) -> None:
            body = _sse(request, event_id=next(self._event_ids))
            await send({"type": "http.response.body", "body": body, "more_body": True})

        answer = await self._handle(session, message, ask)
        body = _sse(answer, event_id=next(self._event_ids))
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _streamable_delete(self, scope: Scope, send: Send) -> None:
        session_id = dict(scope["headers"]).get(b"mcp-session-id", b"").decode()
        if self.sessions.pop(session_id, None) is None:
            await _respond(send, 404, b'{"error":"unknown session"}')
            return
        self.deletes += 1
        await _respond(send, 200)

    # -- 2026-07-28

    async def _modern_post(
        self, message: dict[str, Any], headers: dict[bytes, bytes], send: Send
    ) -> None:
        """One 2026-07-28 request, served without a session, answered with one JSON object."""
        request_id = message.get("id")
        try:
            answer = self._modern_answer(message, headers)
        except _Refused as refused:
            error: dict[str, Any] = {"code": refused.code, "message": str(refused)}
            if refused.data is not None:
                error["data"] = refused.data
            body = {"jsonrpc": "2.0", "id": request_id, "error": error}
            await _respond(send, refused.status, json.dumps(body).encode())
            return
        await _respond(send, 200, json.dumps(answer).encode())

    def _modern_answer(
        self, message: dict[str, Any], headers: dict[bytes, bytes]
    ) -> dict[str, Any]:
        method = message.get("method")
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "initialize":
            # versioning §Backward Compatibility: name the versions a legacy client could use.
            self.refused_initializes += 1
            raise _Refused(
                400,
                -32022,
                f"Unsupported protocol version: this server speaks only MCP {MODERN_VERSION}",
                {"supported": [MODERN_VERSION], "requested": params.get("protocolVersion")},
            )
        if not isinstance(method, str) or "id" not in message:
            raise _Refused(400, -32600, "MCP 2026-07-28 carries only requests over HTTP")
        meta = params.get("_meta")
        if not isinstance(meta, dict) or not isinstance(meta.get(CAPABILITIES_KEY), dict):
            raise _Refused(
                400, -32602, "params._meta must carry the protocol version and client capabilities"
            )
        version = meta.get(VERSION_KEY)
        if version != MODERN_VERSION:
            raise _Refused(
                400,
                -32022,
                f"Unsupported protocol version {version!r}",
                {"supported": [MODERN_VERSION], "requested": version},
            )
        seen = self._check_headers(method, params, headers)
        session = headers.get(b"mcp-session-id")
        self.modern_requests.append(
            ModernRequest(
                method, message["id"], seen, meta, params, session.decode() if session else None
            )
        )
        request_id = message["id"]
        if method == "server/discover":
            return _result(
                request_id,
                {
                    "resultType": "complete",
                    "supportedVersions": [MODERN_VERSION],
                    "capabilities": {"tools": {}},
                    "_meta": {
                        "io.modelcontextprotocol/serverInfo": {"name": SERVER_NAME, "version": "1"}
                    },
                },
            )
        if method == "tools/list":
            return _result(request_id, {"resultType": "complete", "tools": TOOLS})
        if method == "tools/call":
            return _result(request_id, self._modern_call(params, meta))
        # streamable-http §Protocol Version Header: an unknown method is 404 with -32601.
        raise _Refused(404, -32601, f"method not found: {method}")

    @staticmethod
    def _check_headers(
        method: str, params: dict[str, Any], headers: dict[bytes, bytes]
    ) -> dict[str, str]:
        """streamable-http §Server Validation: each mirrored header present and equal to the
        body's value; the headers as they came."""
        expected = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
        name = params.get("uri" if method == "resources/read" else "name")
        if method in ("tools/call", "prompts/get", "resources/read"):
            expected["Mcp-Name"] = name if isinstance(name, str) else ""
        seen: dict[str, str] = {}
        for header, value in expected.items():
            raw = headers.get(header.lower().encode())
            if raw is None:
                raise _Refused(400, -32020, f"Header mismatch: {header} is missing")
            sent = raw.decode("latin-1")
            if (_decoded(sent) if header == "Mcp-Name" else sent) != value:
                raise _Refused(
                    400,
                    -32020,
                    f"Header mismatch: {header} header value {sent!r} does not match body value "
                    f"{value!r}",
                )
            seen[header] = sent
        return seen

    @staticmethod
    def _modern_call(params: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        arguments = params.get("arguments") or {}
        if name == "echo":
            text = str(arguments.get("text", ""))
            return {"resultType": "complete", "content": [{"type": "text", "text": text}]}
        if name != "roots":
            return {
                "content": [{"type": "text", "text": f"unknown tool {name!r}"}],
                "isError": True,
            }
        answers = params.get("inputResponses")
        listed = answers.get("roots") if isinstance(answers, dict) else None
        if not isinstance(listed, dict):
            # mrtr §Server Requirements 7: ask only for what the client declared.
            if not isinstance(meta[CAPABILITIES_KEY].get("roots"), dict):
                return {
                    "content": [{"type": "text", "text": "the client declared no roots"}],
                    "isError": True,
                }
            return {
                "resultType": "input_required",
                "inputRequests": {"roots": {"method": "roots/list", "params": {}}},
                "requestState": REQUEST_STATE,
            }
        if params.get("requestState") != REQUEST_STATE:
            text = f"requestState came back altered: {params.get('requestState')!r}"
            return {"content": [{"type": "text", "text": text}], "isError": True}
        roots = listed.get("roots") or []
        uris = "\n".join(str(root.get("uri")) for root in roots if isinstance(root, dict))
        return {"resultType": "complete", "content": [{"type": "text", "text": uris}]}

    # -- legacy HTTP+SSE

    async def _legacy_stream(self, receive: Receive, send: Send) -> None:
        session_id = secrets.token_hex(8)
        outbox, inbox = trio.open_memory_channel[dict[str, Any] | None](math.inf)
        session = self.legacy[session_id] = _Session(outbox=outbox)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        endpoint = f"event: endpoint\ndata: /messages?session_id={session_id}\n\n".encode()
        await send({"type": "http.response.body", "body": endpoint, "more_body": True})
        async with trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_disconnect)
            try:
                async for message in inbox:
                    if message is None:
                        break
                    body = _sse(message, event="message")
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                if self.legacy.get(session_id) is session:
                    del self.legacy[session_id]
                nursery.cancel_scope.cancel()

    async def _legacy_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        session_id = (query.get("session_id") or [""])[0]
        session = self.legacy.get(session_id)
        if session is None or session.outbox is None:
            await _respond(send, 404, b'{"error":"unknown session"}')
            return
        try:
            message = json.loads(await _read_body(receive))
        except ValueError:
            await _respond(send, 400, b'{"error":"parse error"}')
            return
        await _respond(send, 202, b"Accepted", [(b"content-type", b"text/plain")])
        if not isinstance(message, dict):
            return
        if "method" not in message:
            self._take_answer(session, message)
            return
        if "id" not in message:
            return
        assert self._nursery is not None
        self._nursery.start_soon(self._legacy_answer, session, message)

    async def _legacy_answer(self, session: _Session, message: dict[str, Any]) -> None:
        outbox = session.outbox
        assert outbox is not None

        async def ask(request: dict[str, Any]) -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                outbox.send_nowait(request)

        answer = await self._handle(session, message, ask)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            outbox.send_nowait(answer)
