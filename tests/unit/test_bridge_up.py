"""The bridge up's rules (core/bridge_up.py), a row per rule and spec clause."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_remote_py.core.bridge_up import (
    InputRoundError,
    LegacyFace,
    input_requests,
    is_input_required,
    legacy_notification,
    legacy_response,
    retry_body,
)
from mcp_remote_py.core.jsonrpc import Kind, Message, parse_message

INIT = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"elicitation": {}, "roots": {"listChanged": True}},
    "clientInfo": {"name": "claude-ai", "version": "0.1"},
}
DISCOVER = {
    "resultType": "complete",
    "supportedVersions": ["2026-07-28"],
    "capabilities": {"tools": {"listChanged": True}, "resources": {"subscribe": True}},
    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "srv", "version": "9"}},
    "instructions": "Be nice.",
}


def _face() -> LegacyFace:
    return LegacyFace.from_initialize(INIT)


def _request(method: str, params: dict[str, Any] | None = None, id: Any = 1) -> Message:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    return parse_message(json.dumps(body).encode())


# Rule 1: server/discover §DiscoverResult → InitializeResult.
def test_rule1_initialize_is_answered_from_discover_with_the_clients_version() -> None:
    answer = _face().initialize_result(0, DISCOVER)
    assert answer == {
        "jsonrpc": "2.0",
        "id": 0,
        "result": {
            "protocolVersion": "2025-06-18",
            "capabilities": DISCOVER["capabilities"],
            "serverInfo": {"name": "srv", "version": "9"},
            "instructions": "Be nice.",
        },
    }


def test_rule1_a_version_we_do_not_know_is_answered_with_the_newest_legacy_one() -> None:
    face = LegacyFace.from_initialize({**INIT, "protocolVersion": "2099-01-01"})
    assert face.initialize_result(0, {})["result"]["protocolVersion"] == "2025-11-25"


def test_rule1_a_discover_without_server_info_still_gives_a_valid_result() -> None:
    result = _face().initialize_result(0, {"capabilities": "odd"})["result"]
    assert result["serverInfo"] == {"name": "unknown", "version": "0"}
    assert result["capabilities"] == {}
    assert "instructions" not in result


# Rule 2: basic/index §_meta on every request; the client's own keys kept.
def test_rule2_requests_are_stamped_with_the_spec_meta_beside_the_clients_own() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "t", "_meta": {"progressToken": 7}},
    }
    stamped = _face().stamped(body)
    assert stamped["params"]["name"] == "t"
    assert stamped["params"]["_meta"] == {
        "progressToken": 7,
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": INIT["capabilities"],
        "io.modelcontextprotocol/clientInfo": INIT["clientInfo"],
    }
    assert body["params"]["_meta"] == {"progressToken": 7}  # the original is untouched


def test_rule2_a_request_without_params_gets_them() -> None:
    stamped = _face().stamped({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert "io.modelcontextprotocol/clientInfo" in stamped["params"]["_meta"]


# Rule 3 and changelog major change 5: the level rides on later requests.
def test_rule3_set_level_is_answered_locally_and_stamped_as_log_level() -> None:
    face = _face()
    assert face.answers_locally("logging/setLevel")
    answer, changed = face.answer_locally(_request("logging/setLevel", {"level": "warning"}, 4))
    assert answer == {"jsonrpc": "2.0", "id": 4, "result": {}}
    assert not changed
    assert face.meta()["io.modelcontextprotocol/logLevel"] == "warning"


def test_rule3_no_log_level_before_the_client_sets_one() -> None:
    assert "io.modelcontextprotocol/logLevel" not in _face().meta()


@pytest.mark.parametrize("method", ["ping", "resources/subscribe", "resources/unsubscribe"])
def test_rule3_these_are_answered_by_the_bridge(method: str) -> None:
    assert _face().answers_locally(method)


@pytest.mark.parametrize("method", ["tools/call", "tools/list", "initialize", None])
def test_rule3_others_go_to_the_server(method: str | None) -> None:
    assert not _face().answers_locally(method)


def test_rule3_and_6_subscriptions_change_the_listen_filter() -> None:
    face = _face()
    _, changed = face.answer_locally(_request("resources/subscribe", {"uri": "file:///a"}))
    assert changed
    _, again = face.answer_locally(_request("resources/subscribe", {"uri": "file:///a"}))
    assert not again
    listen = face.listen(9, DISCOVER["capabilities"])
    assert listen is not None
    assert listen["method"] == "subscriptions/listen"
    assert listen["params"]["notifications"] == {
        "toolsListChanged": True,
        "resourceSubscriptions": ["file:///a"],
    }
    _, gone = face.answer_locally(_request("resources/unsubscribe", {"uri": "file:///a"}))
    assert gone
    assert face.subscriptions == []


def test_rule6_nothing_to_listen_for_opens_no_listen() -> None:
    assert _face().listen(9, {"tools": {}}) is None


# Rule 4: changelog major change 8 and resources §Error Handling.
def test_rule4_result_type_is_removed_for_a_legacy_client() -> None:
    message = parse_message(b'{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","x":1}}')
    assert legacy_response(message, "tools/call").body == {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"x": 1},
    }


def test_rule4_resource_not_found_is_renumbered_for_resources_read_only() -> None:
    raw = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"nf","data":{"uri":"a:b"}}}'
    assert legacy_response(parse_message(raw), "resources/read").body["error"]["code"] == -32002
    assert legacy_response(parse_message(raw), "tools/call").body["error"]["code"] == -32602
    plain = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad params"}}'
    assert legacy_response(parse_message(plain), "resources/read").body["error"]["code"] == -32602


def test_rule4_a_large_result_keeps_its_bytes() -> None:
    raw = (
        b'{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","t":"'
        + b"x" * (2 << 20)
        + b'"}}'
    )
    message = parse_message(raw)
    assert legacy_response(message, "tools/call") is message


# Rule 5: basic/patterns/mrtr.
ROUND = {
    "resultType": "input_required",
    "inputRequests": {
        "who": {"method": "elicitation/create", "params": {"mode": "form", "message": "?"}},
        "where": {"method": "roots/list", "params": {}},
    },
    "requestState": "opaque+/=state",
}


def test_rule5_input_required_is_recognised() -> None:
    assert is_input_required({"result": ROUND})
    assert not is_input_required({"result": {"resultType": "complete"}})
    assert not is_input_required({"error": {}})


def test_rule5_a_round_becomes_requests_for_the_client_in_order() -> None:
    requests = input_requests(ROUND, _face())
    assert [(r.key, r.method) for r in requests] == [
        ("who", "elicitation/create"),
        ("where", "roots/list"),
    ]


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (
            {"inputRequests": {"s": {"method": "sampling/createMessage", "params": {}}}},
            "did not declare the sampling capability",
        ),
        ({"inputRequests": {"x": {"method": "tools/call", "params": {}}}}, "MRTR does not allow"),
        ({"inputRequests": {"x": "nope"}}, "is not a request"),
        ({"inputRequests": []}, "not an object"),
        ({"resultType": "input_required"}, "neither inputRequests nor requestState"),
        ({"requestState": 5}, "not a string"),
        ({"requestState": "x" * (1 << 20 + 1)}, "more than the 1,048,576"),
    ],
    ids=[
        "undeclared-capability",
        "not-an-input-method",
        "not-a-request",
        "not-a-map",
        "empty",
        "state-not-a-string",
        "state-too-large",
    ],
)
def test_rule5_rounds_the_client_cannot_answer_are_refused(
    result: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InputRoundError, match=reason):
        input_requests(result, _face())


def test_rule5_a_round_with_only_request_state_is_retried_at_once() -> None:
    assert input_requests({"requestState": "s"}, _face()) == []


def test_rule5_the_retry_carries_the_answers_and_the_state_byte_exact() -> None:
    original = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {"name": "t", "inputResponses": {"old": 1}, "requestState": "old"},
    }
    retry = retry_body(original, ROUND, {"who": {"action": "accept"}})
    assert retry["params"] == {
        "name": "t",
        "inputResponses": {"who": {"action": "accept"}},
        "requestState": "opaque+/=state",
    }
    assert retry["method"] == "tools/call"


def test_rule5_no_request_state_in_the_retry_when_the_server_sent_none() -> None:
    retry = retry_body({"params": {"requestState": "stale"}}, {"inputRequests": {}}, {})
    assert "requestState" not in retry["params"]
    assert "inputResponses" not in retry["params"]


# Rule 6: basic/patterns/subscriptions.
def test_rule6_the_acknowledgement_is_not_for_the_legacy_client() -> None:
    ack = Message(
        Kind.NOTIFICATION,
        {"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged"},
        "",
    )
    assert legacy_notification(ack) is None


def test_rule6_the_subscription_id_is_dropped_from_notifications() -> None:
    body = {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": "a:b", "_meta": {"io.modelcontextprotocol/subscriptionId": 3, "k": 1}},
    }
    out = legacy_notification(Message(Kind.NOTIFICATION, body, ""))
    assert out is not None
    assert out.body["params"] == {"uri": "a:b", "_meta": {"k": 1}}
    bare = {
        "jsonrpc": "2.0",
        "method": "notifications/tools/list_changed",
        "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": 3}},
    }
    out = legacy_notification(Message(Kind.NOTIFICATION, bare, ""))
    assert out is not None
    assert out.body["params"] == {}


def test_rule6_other_notifications_pass_as_they_are() -> None:
    progress = Message(
        Kind.NOTIFICATION,
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}},
        "x",
    )
    assert legacy_notification(progress) is progress
