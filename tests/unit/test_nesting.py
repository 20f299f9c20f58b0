"""Nesting is bounded at the parse (issue 16, class 1): a message nested deeper than
``MAX_DEPTH`` is a -32700 answered under its id, for the client's lines and the server's
payloads alike, so that nothing after the parser recurses past Python's limit.

A message 600 deep used to parse and then kill the relay in ``copy.deepcopy`` (the captured
initialize); one 10,000 deep was already refused, by the parser's own RecursionError.
"""

from __future__ import annotations

import copy
import json
import random
import sys
from typing import Any

import pytest

from mcp_remote_py.core.jsonrpc import (
    KEEP_PARSED_BELOW,
    MAX_DEPTH,
    PARSE_ERROR,
    MessageError,
    encode,
    nesting_exceeds,
    parse_message,
    parse_payload,
)


def nested(depth: int, method: str = "initialize", request_id: int = 1, pad: int = 0) -> bytes:
    """A request whose whole nesting (the message itself, then params) is ``depth`` levels."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    padding = f',"pad":"{"x" * pad}"' if pad else ""
    text = (
        f'{{"jsonrpc":"2.0","id":{request_id},"method":"{method}",'
        f'"params":{{"a":{inner}{padding}}}}}'
    )
    return text.encode()


def depth_of(value: Any) -> int:
    """The reference: the nesting of a parsed value, counted the slow and obvious way."""
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


def test_the_deepest_message_allowed_parses_and_survives_deepcopy_and_encoding() -> None:
    line = nested(MAX_DEPTH)
    message = parse_message(line)
    assert depth_of(message.body) == MAX_DEPTH

    # What the relay does with a captured initialize, from well inside a call stack.
    def deep_inside(frames: int) -> None:
        if frames:
            deep_inside(frames - 1)
            return
        copied = copy.deepcopy(message.body)
        assert encode(copied).rstrip(b"\n") == line

    deep_inside(150)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 900, 10_000, 100_000])
@pytest.mark.parametrize("method", ["initialize", "logging/setLevel", "resources/subscribe"])
def test_a_line_nested_too_deep_is_a_parse_error_under_its_id(depth: int, method: str) -> None:
    with pytest.raises(MessageError) as caught:
        parse_message(nested(depth, method, request_id=7))
    assert caught.value.code == PARSE_ERROR
    assert "nesting too deep" in str(caught.value)
    if depth < 1000:  # deeper, the parser gives up before the id is known
        assert caught.value.request_id == 7


def test_a_large_line_nested_too_deep_is_refused_from_its_envelope() -> None:
    line = nested(MAX_DEPTH + 1, pad=KEEP_PARSED_BELOW)
    assert len(line) > KEEP_PARSED_BELOW
    with pytest.raises(MessageError, match="nesting too deep") as caught:
        parse_message(line)
    assert caught.value.request_id == 1
    assert parse_message(nested(MAX_DEPTH, pad=KEEP_PARSED_BELOW)).is_large


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 700])
def test_a_server_payload_nested_too_deep_is_a_parse_error(depth: int) -> None:
    result = "[" * (depth - 2) + "]" * (depth - 2)
    body = f'{{"jsonrpc":"2.0","id":1,"result":{{"a":{result}}}}}'
    for data in (body.encode(), body, f"[{body}]".encode()):
        with pytest.raises(MessageError, match="nesting too deep") as caught:
            parse_payload(data)
        assert caught.value.code == PARSE_ERROR
    big = f'{{"jsonrpc":"2.0","id":1,"result":{{"a":{result},"pad":"{"x" * (2 << 20)}"}}}}'
    with pytest.raises(MessageError, match="nesting too deep"):
        parse_payload(big.encode())


def test_strings_cannot_hide_depth_or_fake_it() -> None:
    # Closing brackets in strings, between the opening ones, must not make a deep message
    # look shallow; brackets in strings must not make a shallow one look deep.
    hiding: Any = ["]"]
    for _ in range(MAX_DEPTH):
        hiding = ["]}", hiding, '"\\"[{']
    assert depth_of(hiding) == MAX_DEPTH + 1
    assert nesting_exceeds(json.dumps(hiding))
    faking = {"text": "[" * 5000 + "{" * 5000, "more": ["]]]]" * 300, '\\"[[' * 300]}
    assert not nesting_exceeds(json.dumps(faking))
    parse_payload(json.dumps({"jsonrpc": "2.0", "id": 1, "result": faking}).encode())


def test_nesting_exceeds_agrees_with_the_reference_on_random_json() -> None:
    rng = random.Random(16)
    alphabet = '[]{}"\\ab\n\u00e9\U0001f600'

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    def value(depth: int) -> Any:
        if depth == 0 or rng.random() < 0.15:
            return rng.choice([1, None, True, 2.5, text()])
        if rng.random() < 0.5:
            return [value(depth - 1) for _ in range(rng.randint(0, 3))]
        return {text(): value(depth - 1) for _ in range(rng.randint(0, 3))}

    for _ in range(1500):
        data = value(rng.randint(1, 24))
        dumped = json.dumps(data, ensure_ascii=rng.random() < 0.5)
        expected = depth_of(data)
        for limit in (1, 2, 3, 5, 9, 16, 17):
            for form in (dumped, dumped.encode("utf-8", "surrogatepass")):
                assert nesting_exceeds(form, limit) is (expected > limit), (limit, dumped)


def test_structured_results_deeper_than_eight_but_within_the_limit_pass() -> None:
    # The few cheap passes take out eight levels at most; the rest are summed.
    value: Any = [{"k": [1, {"v": "x"}]} for _ in range(400)]
    for _ in range(30):
        value = {"level": value, "s": "[{"}
    assert depth_of(value) == 34
    assert not nesting_exceeds(json.dumps(value))
    assert nesting_exceeds(json.dumps(value), 33)


def test_the_bound_leaves_room_for_the_relay_below_the_recursion_limit() -> None:
    # deepcopy takes two frames a level: MAX_DEPTH levels with room for the stack beneath.
    assert sys.getrecursionlimit() > 2 * MAX_DEPTH + 200
