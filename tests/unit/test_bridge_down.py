"""The bridge down: its rules (core/bridge_down.py) and the waits it keeps (shell/bridge_down.py).

The rules are plain functions, tested row by row. The waits (a client that never retries, a
round asked ten times, a roots question nobody calls for) last minutes by design, so the shell
is driven here with trio's autojump clock and a scripted legacy session in place of the relay:
the real servers are in tests/integration/test_bridge_down.py, which cannot wait 600 s.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from mcp_remote_py.core.bridge_down import (
    HeldRequest,
    ModernFace,
    StateBook,
    StateRefused,
    binding_of,
    honored_filter,
    input_required,
    log_reaches,
    modern_answer,
    modern_response,
    tagged,
    upstream_body,
    wants,
)
from mcp_remote_py.core.jsonrpc import KEEP_PARSED_BELOW, Kind, Message, parse_payload
from mcp_remote_py.core.session import SessionState
from mcp_remote_py.shell import bridge_down as shell_bridge
from mcp_remote_py.shell.bridge_down import BridgeDown

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {
        "elicitation": {"form": {}},
        "sampling": {"tools": {}},
        "roots": {"listChanged": True},
        "experimental": {"x": {}},
    },
    "io.modelcontextprotocol/clientInfo": {"name": "modern-app", "version": "3"},
    "io.modelcontextprotocol/logLevel": "info",
    "progressToken": "p-1",
    "traceparent": "00-abc-def-01",
}
INITIALIZE_RESULT = {
    "jsonrpc": "2.0",
    "id": "r/1",
    "result": {
        "protocolVersion": "2025-06-18",
        "capabilities": {
            "tools": {"listChanged": True},
            "resources": {"subscribe": True},
            "logging": {},
        },
        "serverInfo": {"name": "old-server", "version": "1"},
        "instructions": "Use wisely.",
    },
}


# --- rule 1: the session and server/discover ---------------------------------------------------


def test_initialize_is_built_from_the_meta_with_only_what_the_bridge_carries() -> None:
    face = ModernFace.from_meta(META)
    body = face.initialize("r/1")
    assert body == {
        "jsonrpc": "2.0",
        "id": "r/1",
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            # roots without listChanged (2026-07-28 removed the notification); no experimental
            "capabilities": {"elicitation": {"form": {}}, "sampling": {"tools": {}}, "roots": {}},
            "clientInfo": {"name": "modern-app", "version": "3"},
        },
    }


def test_a_meta_without_info_or_capabilities_still_opens() -> None:
    face = ModernFace.from_meta({})
    params = face.initialize(1)["params"]
    assert params["capabilities"] == {}
    assert params["clientInfo"] == {"name": "unknown", "version": "0"}


def test_discover_is_answered_from_the_initialize_result() -> None:
    answer = ModernFace.discover_result(7, INITIALIZE_RESULT)
    assert answer == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {
            "resultType": "complete",
            "supportedVersions": [MODERN],
            "capabilities": INITIALIZE_RESULT["result"]["capabilities"],
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "old-server", "version": "1"}},
            "instructions": "Use wisely.",
            "ttlMs": 0,
            "cacheScope": "private",
        },
    }


# --- rule 2: requests upstream -----------------------------------------------------------------


def test_requests_lose_the_spec_meta_keys_and_the_mrtr_fields_and_keep_the_rest() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {
            "name": "x",
            "arguments": {"a": 1},
            "_meta": META,
            "inputResponses": {"k": {}},
            "requestState": "s",
        },
    }
    assert upstream_body(body) == {
        "jsonrpc": "2.0",
        "method": "tools/call",
        "params": {
            "name": "x",
            "arguments": {"a": 1},
            "_meta": {"progressToken": "p-1", "traceparent": "00-abc-def-01"},
        },
    }


def test_a_request_with_only_spec_meta_goes_without_meta() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/list",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}},
    }
    assert upstream_body(body) == {"jsonrpc": "2.0", "method": "tools/list", "params": {}}


# --- rule 3: answers back ----------------------------------------------------------------------


def test_results_gain_result_type_and_the_cacheable_ones_their_cache_fields() -> None:
    called = modern_response(3, {"id": "r/2", "result": {"content": []}}, "tools/call")
    assert called == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {"content": [], "resultType": "complete"},
    }
    listed = modern_response(4, {"result": {"tools": [], "ttlMs": 5}}, "tools/list")
    assert listed["result"] == {
        "tools": [],
        "ttlMs": 5,  # the server's own wins
        "resultType": "complete",
        "cacheScope": "private",
    }


def _large(result: object, *, as_text: bool = False, spaced: bool = False) -> Message:
    """An answer over KEEP_PARSED_BELOW (a member of the server's own makes it so)."""
    body = {"jsonrpc": "2.0", "id": "mcp-remote-py/x/7", "result": result}
    body["pad"] = "p" * KEEP_PARSED_BELOW
    raw = json.dumps(body, ensure_ascii=False, separators=(", ", " : ") if spaced else (",", ":"))
    (message,) = parse_payload(raw if as_text else raw.encode())
    assert message.is_large
    return message


@pytest.mark.parametrize(
    ("result", "method"),
    [
        ({"content": [{"type": "text", "text": "é" * (KEEP_PARSED_BELOW // 2)}]}, "tools/call"),
        ({"contents": [{"uri": "a://b", "text": "x" * KEEP_PARSED_BELOW}]}, "resources/read"),
        (
            {"tools": [], "ttlMs": 5, "resultType": "complete", "n": "y" * KEEP_PARSED_BELOW},
            "tools/list",
        ),
        ({}, "tools/call"),
        ({}, "resources/read"),
    ],
)
@pytest.mark.parametrize("as_text", [False, True])
@pytest.mark.parametrize("spaced", [False, True])
def test_a_large_answer_is_spliced_to_what_modern_response_builds(
    result: dict[str, object], method: str, as_text: bool, spaced: bool
) -> None:
    """A large answer (kept as its line) becomes the client's answer without being parsed into
    objects: the same JSON as modern_response gives, the server's id and other members gone."""
    answer = _large(result, as_text=as_text, spaced=spaced)
    spliced = modern_answer(41, answer, method)
    expected = modern_response(41, answer.body, method)
    assert spliced.raw  # the line, not a fresh encoding
    assert json.loads(spliced.raw) == expected
    assert spliced.body == expected  # parsed (below the large size) or parsed when asked
    assert spliced.is_large == bool(result)  # the server's large member is not kept
    assert spliced.id == 41


@pytest.mark.parametrize("result", [["not", "an", "object"], "text", None])
def test_a_large_answer_whose_result_is_not_an_object_is_built_as_a_small_one(
    result: object,
) -> None:
    answer = _large(result)
    built = modern_answer(5, answer, "tools/call")
    assert json.loads(line_of(built)) == modern_response(5, answer.body, "tools/call")


def test_a_large_error_answer_is_renumbered_as_a_small_one() -> None:
    error = {"code": -32002, "message": "Resource not found", "data": "d" * KEEP_PARSED_BELOW}
    raw = json.dumps({"jsonrpc": "2.0", "id": "r/1", "error": error}).encode()
    (answer,) = parse_payload(raw)
    built = modern_answer(6, answer, "resources/read")
    assert json.loads(line_of(built))["error"] == {**error, "code": -32602}


def line_of(message: Message) -> str:
    raw = message.raw or json.dumps(message.body)
    return raw.decode() if isinstance(raw, bytes) else raw


def test_resource_not_found_is_renumbered_only_for_resources_read() -> None:
    error = {"code": -32002, "message": "Resource not found", "data": {"uri": "x://y"}}
    read = modern_response(5, {"error": error}, "resources/read")
    assert read["error"] == {**error, "code": -32602}
    other = modern_response(6, {"error": error}, "tools/call")
    assert other["error"] == error


# --- rule 4: input_required and the requestState ----------------------------------------------


def test_input_required_carries_the_held_requests_for_the_client() -> None:
    held = [
        HeldRequest(
            "elicitation-1",
            0,
            "elicitation/create",
            {
                "mode": "url",
                "url": "https://x",
                "message": "m",
                "elicitationId": "e1",
                "_meta": {"progressToken": 9},
            },
        ),
        HeldRequest("roots-2", 1, "roots/list", {}),
    ]
    assert input_required(11, held, "tok") == {
        "jsonrpc": "2.0",
        "id": 11,
        "result": {
            "resultType": "input_required",
            "inputRequests": {
                # changelog minor change 11: no elicitationId; the server's progress token is
                # not the client's
                "elicitation-1": {
                    "method": "elicitation/create",
                    "params": {"mode": "url", "url": "https://x", "message": "m"},
                },
                "roots-2": {"method": "roots/list", "params": {}},
            },
            "requestState": "tok",
        },
    }


def test_a_request_state_is_good_for_one_retry_of_its_own_call() -> None:
    book = StateBook(ttl=600)
    binding = binding_of("tools/call", {"name": "deploy"})
    book.issue("tok", "call-1", binding, now=0)
    with pytest.raises(StateRefused, match="belongs to another call \\(tools/call 'deploy'\\)"):
        book.redeem("tok", ("tools/call", "other"), now=1)
    assert book.redeem("tok", binding, now=2) == "call-1"  # a wrong retry did not spend it
    with pytest.raises(StateRefused, match="was used already"):
        book.redeem("tok", binding, now=3)


def test_a_forged_expired_or_withdrawn_request_state_says_which() -> None:
    book = StateBook(ttl=600)
    binding = binding_of("resources/read", {"uri": "file:///a"})
    assert binding == ("resources/read", "file:///a")
    with pytest.raises(StateRefused, match="not one the relay issued"):
        book.redeem("made-up", binding, now=0)
    with pytest.raises(StateRefused, match="must be the string"):
        book.redeem({"not": "a string"}, binding, now=0)
    book.issue("old", "call-1", binding, now=0)
    with pytest.raises(StateRefused, match="has expired"):
        book.redeem("old", binding, now=600)
    book.issue("gone", "call-2", binding, now=0)
    book.withdraw("call-2", "was withdrawn with its request")
    with pytest.raises(StateRefused, match="was withdrawn with its request"):
        book.redeem("gone", binding, now=1)


def test_the_book_forgets_old_tokens_in_bounded_memory() -> None:
    book = StateBook(ttl=600)
    for n in range(5000):
        book.issue(f"t{n}", f"c{n}", ("tools/call", "x"), now=0)
        book.withdraw(f"c{n}", "ended")
    assert len(book._gone) <= 256
    assert not book._live


# --- rules 5 and 6: logs and listens -----------------------------------------------------------


def test_log_levels_reach_requests_that_asked_at_or_below_them() -> None:
    assert log_reaches("error", "info")
    assert log_reaches("info", "info")
    assert not log_reaches("debug", "info")
    assert log_reaches("made-up", "emergency")  # an unknown level is not dropped silently


def test_the_acknowledged_filter_is_what_the_server_can_deliver() -> None:
    capabilities = INITIALIZE_RESULT["result"]["capabilities"]
    wanted = {
        "toolsListChanged": True,
        "promptsListChanged": True,  # no prompts capability
        "resourcesListChanged": True,  # resources without listChanged
        "resourceSubscriptions": ["a://1", "a://1", 5, "b://2"],
    }
    honored = honored_filter(wanted, capabilities)
    assert honored == {"toolsListChanged": True, "resourceSubscriptions": ["a://1", "b://2"]}
    assert honored_filter({"resourceSubscriptions": ["a://1"]}, {"resources": {}}) == {}
    assert honored_filter("garbage", capabilities) == {}


def test_notifications_go_to_the_listens_that_asked_tagged_with_their_ids() -> None:
    honored = {"toolsListChanged": True, "resourceSubscriptions": ["a://1"]}
    assert wants(honored, "notifications/tools/list_changed", {})
    assert not wants(honored, "notifications/prompts/list_changed", {})
    assert wants(honored, "notifications/resources/updated", {"uri": "a://1"})
    assert not wants(honored, "notifications/resources/updated", {"uri": "a://2"})
    body = {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": "a://1", "_meta": {"x": 1}},
    }
    assert tagged(body, "L") == {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {
            "uri": "a://1",
            "_meta": {"x": 1, "io.modelcontextprotocol/subscriptionId": "L"},
        },
    }


# --- the shell's waits, with a scripted legacy session -----------------------------------------


class ScriptedSession:
    """The relay's legacy session as the bridge sees it: ``call`` answers from a script."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.sent_event = trio.Event()
        self.release = trio.Event()  # the upstream tools/call answers when this is set
        self.cancelled = False
        self.ended = trio.Event()  # the upstream tools/call was cancelled
        self.on_call: Any = None
        self.linger: trio.Event | None = None
        self.detached: list[Any] = []

    async def call(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(body)
        method = body["method"]
        if method == "initialize":
            return INITIALIZE_RESULT
        if method == "tools/call":
            try:
                if self.on_call is not None:
                    await self.on_call()
                await self.release.wait()
            except trio.Cancelled:
                self.cancelled = True
                self.ended.set()
                raise
            return {"result": {"content": [{"type": "text", "text": "done"}]}}
        return {"result": {}}

    async def carry(
        self, body: dict[str, Any], on_answer: Callable[[Message], Awaitable[None]]
    ) -> None:
        answer = await self.call(body)
        await on_answer(Message(Kind.RESPONSE, {**answer, "id": "relay"}, ""))
        if self.linger is not None:
            await self.linger.wait()  # the answer's stream stays open a while

    def send(self, body: dict[str, Any]) -> None:
        self.sent.append(body)
        self.sent_event.set()
        self.sent_event = trio.Event()

    def detach(self, request_id: Any) -> None:
        self.detached.append(request_id)


class Lines:
    """What the bridge writes to the client, and what it answers."""

    def __init__(self) -> None:
        self.written: list[Any] = []
        self.answers: dict[Any, dict[str, Any]] = {}
        self.arrived = trio.Event()

    async def write_line(self, data: bytes | str) -> None:
        self.written.append(data)

    async def deliver(self, message: Message) -> None:
        self.answers[message.id] = message.body
        self.arrived.set()
        self.arrived = trio.Event()

    async def answer(self, request_id: Any) -> dict[str, Any]:
        while request_id not in self.answers:
            await self.arrived.wait()
        return self.answers.pop(request_id)


def _call(request_id: Any, name: str = "deploy", **params: Any) -> Message:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": {}, **params, "_meta": META},
    }
    return Message(Kind.REQUEST, body, "")


def _server_request(request_id: Any, method: str = "elicitation/create") -> Message:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {"message": "ok?"}}
    return Message(Kind.REQUEST, body, "")


async def _bridge(nursery: trio.Nursery) -> tuple[BridgeDown, ScriptedSession, Lines]:
    session, lines = ScriptedSession(), Lines()
    bridge = BridgeDown(
        session, lines, lines.deliver, nursery, SessionState(), one_stream=lambda: True
    )
    return bridge, session, lines


async def test_the_answer_reaches_the_client_as_it_arrives_while_its_stream_stays_open() -> None:
    async with trio.open_nursery() as nursery:
        bridge, session, lines = await _bridge(nursery)
        session.release.set()
        session.linger = trio.Event()
        answered = trio.Event()

        async def request() -> None:
            await bridge.request(_call(1))
            answered.set()

        nursery.start_soon(request)
        answer = await lines.answer(1)  # the answer is the client's, the stream is still open
        assert answer["result"] == {
            "content": [{"type": "text", "text": "done"}],
            "resultType": "complete",
        }
        await trio.testing.wait_all_tasks_blocked()
        assert not answered.is_set()  # the request's task reads its stream to the end
        session.linger.set()
        await answered.wait()
        assert lines.answers == {}  # one answer, not a second when the stream ends
        assert session.detached == []  # answered with its result, not a round
        assert bridge._calls == {}  # the call is over
        nursery.cancel_scope.cancel()


async def test_a_client_that_never_retries_gets_the_held_request_refused_and_the_call_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        bridge, session, lines = await _bridge(nursery)

        async def ask() -> None:
            await bridge.from_server(_server_request(0))

        session.on_call = ask
        nursery.start_soon(bridge.request, _call(1))
        first = await lines.answer(1)
        assert first["result"]["resultType"] == "input_required"
        started = trio.current_time()
        with trio.fail_after(shell_bridge.ROUND_TIMEOUT * 2):
            await session.ended.wait()
        waited = trio.current_time() - started
        nursery.cancel_scope.cancel()
    assert shell_bridge.ROUND_TIMEOUT <= waited < shell_bridge.ROUND_TIMEOUT + 1
    (refusal,) = [m for m in session.sent if "id" in m]
    assert refusal["id"] == 0
    assert "did not answer in time" in refusal["error"]["message"]


async def test_a_withdrawn_call_is_cancelled_upstream_and_its_state_spent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        bridge, session, lines = await _bridge(nursery)
        with trio.CancelScope() as withdrawn:
            nursery.start_soon(_cancel_after, withdrawn, 5.0)
            await bridge.request(_call(1))
        assert withdrawn.cancelled_caught
        with trio.fail_after(60):
            await session.ended.wait()
        nursery.cancel_scope.cancel()
    assert session.cancelled


async def _cancel_after(scope: trio.CancelScope, seconds: float) -> None:
    await trio.sleep(seconds)
    scope.cancel()


async def test_a_server_that_asks_without_end_fails_the_call_after_max_rounds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        bridge, session, lines = await _bridge(nursery)
        asked = 0

        async def ask_again() -> None:
            nonlocal asked
            while True:
                await bridge.from_server(_server_request(asked))
                asked += 1
                await session.sent_event.wait()  # answered: ask once more

        session.on_call = ask_again
        nursery.start_soon(bridge.request, _call(0))
        answer = await lines.answer(0)
        request_id = 0
        while "result" in answer and answer["result"]["resultType"] == "input_required":
            (key,) = answer["result"]["inputRequests"]
            request_id += 1
            retry = _call(
                request_id,
                requestState=answer["result"]["requestState"],
                inputResponses={key: {"action": "accept", "content": {}}},
            )
            nursery.start_soon(bridge.request, retry)
            answer = await lines.answer(request_id)
        nursery.cancel_scope.cancel()
    assert request_id == shell_bridge.MAX_ROUNDS
    assert "asked for input 10 times" in answer["error"]["message"]
    assert session.cancelled


async def test_roots_asked_outside_any_call_are_refused_when_no_call_comes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        session, lines = ScriptedSession(), Lines()
        bridge = BridgeDown(session, lines, lines.deliver, nursery, SessionState())
        await bridge.ensure_open(_call(0))
        started = trio.current_time()
        await bridge.from_server(_server_request(5, "roots/list"))
        while not [m for m in session.sent if m.get("id") == 5]:
            await session.sent_event.wait()
        waited = trio.current_time() - started
        nursery.cancel_scope.cancel()
    assert waited == pytest.approx(shell_bridge.PARK_TIMEOUT)
    (refusal,) = [m for m in session.sent if m.get("id") == 5]
    assert "only within one of its calls" in refusal["error"]["message"]


async def test_a_server_request_the_client_cannot_answer_is_refused_at_once() -> None:
    async with trio.open_nursery() as nursery:
        session, lines = ScriptedSession(), Lines()
        bridge = BridgeDown(session, lines, lines.deliver, nursery, SessionState())
        meta = {**META, "io.modelcontextprotocol/clientCapabilities": {}}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}
        await bridge.ensure_open(Message(Kind.REQUEST, body, ""))
        await bridge.from_server(_server_request(3, "sampling/createMessage"))
        await bridge.from_server(_server_request(4, "tasks/get"))
        await bridge.from_server(_server_request(5, "ping"))
        nursery.cancel_scope.cancel()
    by_id = {m["id"]: m for m in session.sent if "id" in m}
    assert "did not declare the capability" in by_id[3]["error"]["message"]
    assert "has no such server request" in by_id[4]["error"]["message"]
    assert by_id[5] == {"jsonrpc": "2.0", "id": 5, "result": {}}


async def test_a_server_flooding_a_call_with_requests_is_refused_past_the_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        bridge, session, lines = await _bridge(nursery)

        async def flood() -> None:
            for n in range(200):
                await bridge.from_server(_server_request(n))

        session.on_call = flood
        nursery.start_soon(bridge.request, _call(1))
        first = await lines.answer(1)
        nursery.cancel_scope.cancel()
    asked = first["result"]["inputRequests"]
    refused = [m for m in session.sent if "error" in m]
    assert 1 <= len(asked) <= shell_bridge.MAX_HELD
    assert len(asked) + len(refused) == 200
    assert len(refused) >= 200 - shell_bridge.MAX_HELD
    assert "are waiting on this tools/call already" in refused[-1]["error"]["message"]


async def test_roots_asked_outside_calls_are_bounded_and_keyed_apart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        session, lines = ScriptedSession(), Lines()
        bridge = BridgeDown(session, lines, lines.deliver, nursery, SessionState())
        await bridge.ensure_open(_call(0))
        for n in range(shell_bridge.MAX_PARKED + 3):
            await bridge.from_server(_server_request(100 + n, "roots/list"))
        refused_at_once = [m["id"] for m in session.sent if "error" in m]
        nursery.start_soon(bridge.request, _call(1))
        first = await lines.answer(1)
        nursery.cancel_scope.cancel()
    assert refused_at_once == [
        100 + n for n in range(shell_bridge.MAX_PARKED, shell_bridge.MAX_PARKED + 3)
    ]
    keys = list(first["result"]["inputRequests"])
    assert len(keys) == len(set(keys)) == shell_bridge.MAX_PARKED
