from __future__ import annotations

from mcp_remote_py.core.jsonrpc import parse_message
from mcp_remote_py.core.session import SessionState, ToolFilter, is_relay_id


def request(text: str):  # type: ignore[no-untyped-def]
    return parse_message(text.encode())


def test_every_request_is_answered_once() -> None:
    state = SessionState()
    assert state.track(request('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')) is not None
    first = state.take(1)
    assert first is not None
    assert first.method == "tools/list"
    assert state.take(1) is None


def test_a_duplicate_id_in_flight_is_refused() -> None:
    state = SessionState()
    assert state.track(request('{"jsonrpc":"2.0","id":1,"method":"ping"}')) is not None
    assert state.track(request('{"jsonrpc":"2.0","id":1,"method":"ping"}')) is None


def test_cancel_marks_the_pending_request() -> None:
    state = SessionState()
    state.track(request('{"jsonrpc":"2.0","id":"a","method":"tools/call"}'))
    state.cancel(
        request('{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a"}}')
    )
    assert state.pending["a"].cancelled


def test_replay_plan_keeps_initialize_level_and_live_subscriptions() -> None:
    state = SessionState()
    state.track(request('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"x":1}}'))
    state.track(
        request('{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}}')
    )
    state.track(
        request('{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"a://1"}}')
    )
    state.track(
        request('{"jsonrpc":"2.0","id":4,"method":"resources/subscribe","params":{"uri":"a://2"}}')
    )
    state.track(
        request(
            '{"jsonrpc":"2.0","id":5,"method":"resources/unsubscribe","params":{"uri":"a://1"}}'
        )
    )
    assert state.initialize is not None
    assert state.initialize["params"] == {"x": 1}
    assert state.log_level is not None
    assert list(state.subscriptions) == ["a://2"]


def test_relay_ids_never_look_like_client_ids() -> None:
    state = SessionState()
    ids = {state.next_relay_id() for _ in range(3)}
    assert len(ids) == 3
    assert all(is_relay_id(i) for i in ids)
    assert not is_relay_id(1)
    assert not is_relay_id("1")


def test_learns_negotiated_version_and_server_name() -> None:
    state = SessionState()
    state.learn_initialize_result(
        {"result": {"protocolVersion": "2025-06-18", "serverInfo": {"name": "db", "version": "1"}}}
    )
    assert state.protocol_version == "2025-06-18"
    assert state.server_name == "db"


def test_tool_filter_globs_case_insensitively() -> None:
    tools = ToolFilter(["delete_*", "Admin"])
    assert tools.hides("DELETE_user")
    assert tools.hides("admin")
    assert not tools.hides("list_users")
    assert not ToolFilter([])


def test_tool_filter_removes_hidden_tools_from_the_list() -> None:
    tools = ToolFilter(["delete_*"])
    body = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "delete_x"}, {"name": "get"}]}}
    filtered = tools.filter_list_result(body)
    assert filtered is not None
    assert filtered["result"]["tools"] == [{"name": "get"}]
    assert body["result"]["tools"] == [{"name": "delete_x"}, {"name": "get"}]  # not mutated
    assert tools.filter_list_result({"result": {"tools": [{"name": "get"}]}}) is None
