from __future__ import annotations

import random

from mcp_remote_py.core.backoff import Backoff, parse_retry_after


def test_delays_grow_and_are_capped() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    rng = random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(10)]
    for attempt, delay in enumerate(delays):
        ceiling = min(8.0, 2.0**attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_the_servers_word_is_a_floor() -> None:
    assert Backoff(initial=0.1, maximum=1.0).delay(0, random.Random(1), floor=5.0) == 5.0


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:40 GMT", now=now) == 20.0
