from __future__ import annotations

import math
import random

import pytest

from mcp_remote_py.core.backoff import MAX_SERVER_DELAY, Backoff, parse_retry_after


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


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("31536000", MAX_SERVER_DELAY),  # a year
        ("9" * 5000, MAX_SERVER_DELAY),  # a number float() makes infinite
        ("³", None),  # a digit to str.isdigit, not to float()
        ("٣", None),  # an Arabic-Indic digit
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_SERVER_DELAY),
        ("Mon, 99 Foo 99999999999 99:99:99 GMT", None),
        ("120", 120.0),
    ],
    ids=["year", "endless", "superscript", "arabic-indic", "far-date", "garbage-date", "plain"],
)
def test_a_server_supplied_delay_is_clamped_or_refused_never_raised(
    header: str, expected: float | None
) -> None:
    assert parse_retry_after(header, now=0.0) == expected


@pytest.mark.parametrize("floor", [1e12, math.inf, math.nan, -5.0])
def test_the_backoff_never_waits_beyond_the_servers_cap(floor: float) -> None:
    delay = Backoff(initial=0.5, maximum=15.0).delay(0, random.Random(1), floor=floor)
    assert 0.0 <= delay <= MAX_SERVER_DELAY
