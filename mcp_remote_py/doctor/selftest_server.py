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

``drop()`` makes the server lose its sessions once, as a restart would: Streamable HTTP sessions
are forgotten (the next request meets 404), legacy streams are closed.
"""

from __future__ import annotations

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

__all__ = ["SERVER_NAME", "SelfTestServer"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SERVER_NAME = "mcp-remote-py-selftest"
PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
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
        if path == "/mcp":
            if method == "POST":
                await self._streamable_post(scope, receive, send)
            elif method == "DELETE":
                await self._streamable_delete(scope, send)
            else:
                await _respond(send, 405, b"", [(b"allow", b"POST, DELETE")])
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

    async def _streamable_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            message = json.loads(await _read_body(receive))
        except ValueError:
            await _respond(send, 400, json.dumps(_error(None, -32700, "parse error")).encode())
            return
        if not isinstance(message, dict):
            await _respond(send, 400, json.dumps(_error(None, -32600, "not an object")).encode())
            return
        headers = dict(scope["headers"])
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
