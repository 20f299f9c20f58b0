"""A 2026-07-28 server that misbehaves: every request still gets one clear answer, nothing hangs.

The server is a scripted ASGI app on hypercorn, in the test's own trio run, speaking only
2026-07-28 (it refuses a legacy initialize with -32022, as the TypeScript SDK does). The relay
is a subprocess driven with raw lines, as a desktop client would.

Rows (issue: MCP 2026-07-28, tests / bad input): an endless MRTR loop, an oversized or
non-string requestState, malformed inputRequests, an inputRequests method the client did not
declare, a listen stream that never acknowledges, modern errors with no body.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from .harness import RawRelay, raw_relay

READ_TIMEOUT = 20.0
MODERN = "2026-07-28"
TOOLS = [
    {"name": name, "inputSchema": {"type": "object"}}
    for name in ("echo", "loop", "huge_state", "state_number", "bad_round", "sample", "no_body")
]
SHIFTY_BEFORE = {"type": "object", "properties": {"region": {"type": "string"}}}
SHIFTY_AFTER = {
    "type": "object",
    "properties": {"region": {"type": "string", "x-mcp-header": "Region"}},
}
ELICIT = {
    "method": "elicitation/create",
    "params": {
        "mode": "form",
        "message": "again?",
        "requestedSchema": {"type": "object", "properties": {}},
    },
}


class HostileServer:
    """What each tool does wrong; ``calls`` counts the tools/call POSTs per tool."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.listens = 0
        self.listening = trio.Event()
        self.headers: dict[str, str] = {}
        self.lists = 0
        self.list_fails = False
        self.stall_discover = False
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        if scope["method"] != "POST":
            await _answer(send, 405, b"")
            return
        message = json.loads(body)
        self.headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        await self._serve(message, send)

    async def _serve(self, message: dict[str, Any], send: Any) -> None:
        method, request_id = message.get("method"), message.get("id")
        params = message.get("params") or {}
        if method == "initialize":
            error = {
                "code": -32022,
                "message": "Unsupported protocol version",
                "data": {"supported": [MODERN], "requested": params.get("protocolVersion")},
            }
            await _json(send, 400, {"jsonrpc": "2.0", "id": request_id, "error": error})
        elif method == "server/discover" and self.stall_discover:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            await send({"type": "http.response.body", "body": b": thinking\n\n", "more_body": True})
            await trio.sleep_forever()
        elif method == "server/discover":
            result = {
                "resultType": "complete",
                "supportedVersions": [MODERN],
                "capabilities": {"tools": {"listChanged": True}},
                "_meta": {
                    "io.modelcontextprotocol/serverInfo": {"name": "hostile", "version": "6.6.6"}
                },
            }
            await _json(send, 200, {"jsonrpc": "2.0", "id": request_id, "result": result})
        elif method == "subscriptions/listen":
            # Never acknowledges, never ends: the stream stays open with nothing on it.
            self.listens += 1
            self.listening.set()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            await send({"type": "http.response.body", "body": b": opened\n\n", "more_body": True})
            await trio.sleep_forever()
        elif method == "tools/list" and self.list_fails:
            self.lists += 1
            await _answer(send, 500, b"Internal Server Error", b"text/plain")
        elif method == "tools/list":
            self.lists += 1
            # shifty's schema gains its x-mcp-header once it has been called (a redeploy).
            shifty = {
                "name": "shifty",
                "inputSchema": SHIFTY_AFTER if self.calls.get("shifty") else SHIFTY_BEFORE,
            }
            stubborn = {"name": "stubborn", "inputSchema": {"type": "object"}}
            # A type that is no type name at all, on an annotated parameter.
            odd = {
                "name": "odd_type",
                "inputSchema": {
                    "type": "object",
                    "properties": {"p": {"type": [{}], "x-mcp-header": "P"}},
                },
            }
            listed: dict[str, Any] = {
                "resultType": "complete",
                "tools": [*TOOLS, shifty, stubborn, odd],
            }
            await _json(send, 200, {"jsonrpc": "2.0", "id": request_id, "result": listed})
        elif method == "tools/call":
            await self._call(str(params.get("name")), request_id, params, send)
        else:
            error = {"code": -32601, "message": "Method not found"}
            await _json(send, 404, {"jsonrpc": "2.0", "id": request_id, "error": error})

    async def _call(self, tool: str, request_id: Any, params: dict[str, Any], send: Any) -> None:
        self.calls[tool] = self.calls.get(tool, 0) + 1
        if tool == "echo":
            result: dict[str, Any] = {
                "resultType": "complete",
                "content": [{"type": "text", "text": "ok"}],
            }
        elif tool == "surrogate":  # a string cut mid-emoji, as JSON.stringify writes it
            head = b'{"jsonrpc":"2.0","id":' + json.dumps(request_id).encode()
            tail = (
                b',"result":{"resultType":"complete",'
                b'"content":[{"type":"text","text":"cut \\ud83d"}]}}'
            )
            await _answer(send, 200, head + tail)
            return
        elif tool == "loop":  # asks again whatever the answer (mrtr §Server Requirements 8 abused)
            result = {
                "resultType": "input_required",
                "inputRequests": {"q": ELICIT},
                "requestState": "s",
            }
        elif tool == "huge_state":
            result = {
                "resultType": "input_required",
                "inputRequests": {"q": ELICIT},
                "requestState": "x" * (2 << 20),
            }
        elif tool == "state_number":
            result = {"resultType": "input_required", "requestState": 12}
        elif tool == "bad_round":
            result = {"resultType": "input_required", "inputRequests": {"q": "not a request"}}
        elif tool == "sample":  # the client declared no sampling (mrtr §Server Requirements 7)
            result = {
                "resultType": "input_required",
                "inputRequests": {
                    "s": {
                        "method": "sampling/createMessage",
                        "params": {"messages": [], "maxTokens": 1},
                    }
                },
            }
        elif tool in ("shifty", "stubborn"):
            # streamable-http §Server Validation: a value in the body with no Mcp-Param header.
            if tool == "stubborn" or "mcp-param-region" not in self.headers:
                error = {"code": -32020, "message": "Header mismatch: Mcp-Param-Region is missing"}
                await _json(send, 400, {"jsonrpc": "2.0", "id": request_id, "error": error})
                return
            result = {
                "resultType": "complete",
                "content": [{"type": "text", "text": self.headers["mcp-param-region"]}],
            }
        else:  # no_body: a modern error status with nothing in it
            await _answer(send, 400, b"")
            return
        await _json(send, 200, {"jsonrpc": "2.0", "id": request_id, "result": result})


async def _answer(send: Any, status: int, body: bytes, kind: bytes = b"application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _json(send: Any, status: int, message: dict[str, Any]) -> None:
    await _answer(send, status, json.dumps(message).encode())


@asynccontextmanager
async def hostile_server() -> AsyncIterator[HostileServer]:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    app = HostileServer()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    app.port = listener.getsockname()[1]
    listener.close()
    config = Config()
    config.bind = [f"127.0.0.1:{app.port}"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, app, config)
        yield app
        nursery.cancel_scope.cancel()


async def _initialize(relay: RawRelay, capabilities: dict[str, Any]) -> dict[str, Any]:
    await relay.request(
        0,
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": capabilities,
            "clientInfo": {"name": "hostile-test", "version": "1"},
        },
    )
    answer = await relay.read_message(timeout=READ_TIMEOUT)
    await relay.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return answer


async def _answer_for(
    relay: RawRelay, request_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The answer to ``request_id``, answering every elicitation on the way with accept; and
    the relay's requests to the client that came before it."""
    asked: list[dict[str, Any]] = []
    while True:
        message = await relay.read_message(timeout=READ_TIMEOUT)
        if message.get("id") == request_id and "method" not in message:
            return message, asked
        if message.get("method") == "elicitation/create":
            asked.append(message)
            await relay.send(
                {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "result": {"action": "accept", "content": {}},
                }
            )


async def _call(
    relay: RawRelay, request_id: int, tool: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    await relay.request(request_id, "tools/call", {"name": tool, "arguments": {}})
    return await _answer_for(relay, request_id)


async def test_hostile_an_endless_mrtr_loop_ends_in_a_clear_error_after_ten_rounds(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        assert "result" in await _initialize(relay, {"elicitation": {}})
        answer, asked = await _call(relay, 1, "loop")
        echoed, _ = await _call(relay, 2, "echo")
    assert answer["error"]["code"] in range(-32099, -31999)
    assert "asked the client for input 10 times" in answer["error"]["message"]
    assert len(asked) == 10
    assert server.calls["loop"] == 11  # the first call and ten retries, then no more
    assert echoed["result"]["content"] == [{"type": "text", "text": "ok"}]


async def test_hostile_an_oversized_request_state_is_refused_not_echoed(tmp_path: Path) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await _initialize(relay, {"elicitation": {}})
        answer, asked = await _call(relay, 1, "huge_state")
    assert "requestState is 2,097,152 characters" in answer["error"]["message"]
    assert asked == []  # the client was not troubled for a round that cannot be answered
    assert server.calls["huge_state"] == 1


async def test_hostile_a_request_state_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await _initialize(relay, {})
        answer, _ = await _call(relay, 1, "state_number")
    assert "requestState is not a string" in answer["error"]["message"]
    assert server.calls["state_number"] == 1


async def test_hostile_malformed_input_requests_are_refused(tmp_path: Path) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await _initialize(relay, {"elicitation": {}})
        answer, _ = await _call(relay, 1, "bad_round")
    assert "is not a request" in answer["error"]["message"]


async def test_hostile_an_input_request_the_client_did_not_declare_is_refused(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await _initialize(relay, {"elicitation": {}})
        answer, asked = await _call(relay, 1, "sample")
    assert "did not declare the sampling capability" in answer["error"]["message"]
    assert asked == []


async def test_hostile_a_listen_stream_that_never_acknowledges_holds_nothing_up(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        init = await _initialize(relay, {})
        assert init["result"]["serverInfo"] == {"name": "hostile", "version": "6.6.6"}
        with trio.fail_after(READ_TIMEOUT):
            await server.listening.wait()  # the relay's own listen is open (and silent)
        answers = [await _call(relay, n, "echo") for n in (1, 2, 3)]
    assert [a["result"]["content"][0]["text"] for a, _ in answers] == ["ok", "ok", "ok"]


async def test_hostile_a_modern_error_status_with_no_body_gets_a_relay_error(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await _initialize(relay, {})
        answer, _ = await _call(relay, 1, "no_body")
        echoed, _ = await _call(relay, 2, "echo")
    assert answer["error"]["code"] in range(-32099, -31999)
    assert "HTTP 400" in answer["error"]["message"]
    assert echoed["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert "Traceback" not in relay.stderr()


META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "hostile-test", "version": "1"},
}


async def test_hostile_a_header_mismatch_makes_the_relay_list_again_and_retry_once(
    tmp_path: Path,
) -> None:
    # streamable-http §Client Behavior: on HeaderMismatch, call tools/list for the tool's new
    # inputSchema, then retry with the right headers. The modern client never sees the -32020.
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await relay.request(1, "tools/list", {"_meta": META})
        listed, _ = await _answer_for(relay, 1)
        assert "x-mcp-header" not in json.dumps(listed)
        await relay.request(
            2, "tools/call", {"name": "shifty", "arguments": {"region": "eu-1"}, "_meta": META}
        )
        answer, _ = await _answer_for(relay, 2)
    assert answer["result"]["content"] == [{"type": "text", "text": "eu-1"}]
    assert server.calls["shifty"] == 2
    assert server.lists == 2


async def test_hostile_a_second_header_mismatch_reaches_the_client_as_the_server_sent_it(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await relay.request(1, "tools/call", {"name": "stubborn", "arguments": {}, "_meta": META})
        answer, _ = await _answer_for(relay, 1)
    assert answer["error"] == {
        "code": -32020,
        "message": "Header mismatch: Mcp-Param-Region is missing",
    }
    assert server.calls["stubborn"] == 2  # retried once, no more


async def test_hostile_a_type_that_is_no_type_name_leaves_the_tool_out_and_the_relay_up(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await relay.request(1, "tools/list", {"_meta": META})
        listed, _ = await _answer_for(relay, 1)
        await relay.request(2, "tools/call", {"name": "echo", "arguments": {}, "_meta": META})
        echoed, _ = await _answer_for(relay, 2)
    names = [tool["name"] for tool in listed["result"]["tools"]]
    assert "odd_type" not in names
    assert "echo" in names
    assert echoed["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert "left the tool 'odd_type' out of tools/list" in relay.stderr()


async def test_hostile_a_cancellation_naming_no_valid_id_is_ignored(tmp_path: Path) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        for odd in ([1], {"a": 1}, None, 1.5):
            await relay.send(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/cancelled",
                    "params": {"requestId": odd},
                }
            )
        await relay.request(1, "tools/call", {"name": "echo", "arguments": {}, "_meta": META})
        echoed, _ = await _answer_for(relay, 1)
    assert echoed["result"]["content"] == [{"type": "text", "text": "ok"}]
    assert "Traceback" not in relay.stderr()


async def test_hostile_a_discover_that_never_answers_still_answers_initialize_in_time(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server:
        server.stall_discover = True
        args = [server.url, "--protocol", "modern", "--startup-timeout", "2"]
        async with raw_relay(args, tmp_path) as relay:
            with trio.fail_after(10):
                answer = await _initialize(relay, {})
    assert answer["id"] == 0
    assert (
        "did not answer server/discover (for initialize) within 2 s" in answer["error"]["message"]
    )


async def test_hostile_a_lone_surrogate_in_a_result_reaches_a_legacy_client_escaped(
    tmp_path: Path,
) -> None:
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await _initialize(relay, {})
        answer, _ = await _call(relay, 1, "surrogate")
        echoed, _ = await _call(relay, 2, "echo")
    assert answer["result"]["content"] == [{"type": "text", "text": "cut \ud83d"}]
    assert echoed["result"]["content"] == [{"type": "text", "text": "ok"}]


async def test_hostile_a_header_mismatch_whose_relisting_fails_reaches_the_client_as_sent(
    tmp_path: Path,
) -> None:
    # The call was refused unrun; if the relay cannot list the tools again, the server's -32020
    # is the answer, not a relay error claiming the call may have run.
    async with hostile_server() as server, raw_relay([server.url], tmp_path) as relay:
        await relay.request(1, "tools/list", {"_meta": META})
        await _answer_for(relay, 1)
        server.list_fails = True
        await relay.request(2, "tools/call", {"name": "stubborn", "arguments": {}, "_meta": META})
        answer, _ = await _answer_for(relay, 2)
    assert answer["error"] == {
        "code": -32020,
        "message": "Header mismatch: Mcp-Param-Region is missing",
    }
    assert server.calls["stubborn"] == 1
    assert server.lists == 2
