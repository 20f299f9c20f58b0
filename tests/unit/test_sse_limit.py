"""The event parser's limit (issue 16, class 2: memory the server controls).

A server decides how long a line or an event is. Past the limit the parser drops what the event
gathered, says so once with a ``too_large`` event, skips the rest of it as it streams, and
parses the events after it as ever; it never holds more than the limit.
"""

from __future__ import annotations

import pytest

from mcp_remote_py.core.sse import HEAD_KEPT, Event, EventParser

MIB = 1 << 20


def parse(limit: int | None, *chunks: bytes) -> list[Event]:
    parser = EventParser(limit)
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
        if limit is not None:
            assert parser.buffered <= limit
    return events + parser.finish()


def test_a_data_line_that_never_ends_is_reported_at_once_and_never_held() -> None:
    # 300 MB of one line and no newline ever, against an 8 MiB limit.
    parser = EventParser(8 * MIB)
    opening = parser.feed(b'id: 4\ndata: {"jsonrpc":"2.0","id":7,"result":{"text":"')
    assert opening == []
    chunk = b"x" * 65536
    reported: list[Event] = []
    for _ in range(300 * 1000 * 1000 // len(chunk)):
        reported += parser.feed(chunk)
        assert parser.buffered <= 8 * MIB
    [event] = reported
    assert event.too_large
    assert event.data == b""
    assert event.id == "4"
    assert event.head.startswith(b'{"jsonrpc":"2.0","id":7,"result":{"text":"xxx')
    assert len(event.head) == HEAD_KEPT
    assert parser.buffered == 0  # the line is skipped, not gathered


def test_the_stream_goes_on_after_the_dropped_event() -> None:
    parser = EventParser(1000)
    assert parser.feed(b"data: " + b"x" * 600) == []
    [dropped] = parser.feed(b"y" * 600)
    assert dropped.too_large
    # The rest of the line, a second data line and an id: all part of the dropped event.
    assert parser.feed(b"z" * 5000 + b"\ndata: more\nid: 9\n\n") == []
    assert parser.feed(b'data: {"ok":true}\n\n') == [Event("", b'{"ok":true}', "9", None)]


def test_many_data_lines_that_together_pass_the_limit() -> None:
    line = b"data: " + b"d" * 1000 + b"\n"
    parser = EventParser(64 * 1024)
    events: list[Event] = []
    for _ in range(10_000):  # 10 MB of data lines in one event, no blank line between them
        events += parser.feed(line)
        assert parser.buffered <= 64 * 1024
    [event] = events
    assert event.too_large
    assert event.head == b"d" * 1000  # the event's first data line
    assert parser.feed(b"\ndata: next\n\n") == [Event("", b"next", None, None)]


def test_an_event_within_the_limit_is_untouched() -> None:
    payload = b"p" * 9000
    stream = b"event: message\ndata: " + payload[:4000] + b"\ndata: " + payload[4000:] + b"\n\n"
    expected = [Event("message", payload[:4000] + b"\n" + payload[4000:], None, None)]
    assert parse(10_000, stream) == expected
    assert parse(10_000, *[stream[i : i + 100] for i in range(0, len(stream), 100)]) == expected


def test_any_chunking_gives_the_same_events() -> None:
    limit = HEAD_KEPT + 1000  # room for the head: what is kept of a dropped event is the same
    stream = (
        b"retry: 100\ndata: small\n\n"
        + b"event: message\nid: a\ndata: "
        + b"L" * 3000
        + b"\n\n"
        + b"data: "
        + b"m" * 800
        + b"\ndata: "
        + b"n" * 800
        + b"\ndata: "
        + b"o" * 800
        + b"\r\n\r\n"
        + b": "
        + b"c" * 3000
        + b"\r"
        + b"\rid: b\rdata: after\r\r"
    )
    whole = parse(limit, stream)
    for size in [*range(1, 40), *range(40, len(stream) + 1, 37)]:
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert parse(limit, *chunks) == whole, size
    assert [(e.event, e.data, e.id, e.too_large) for e in whole] == [
        ("", b"small", None, False),
        ("message", b"", "a", True),
        ("", b"", "a", True),
        ("", b"", "a", True),  # the comment line that went on too long
        ("", b"after", "b", False),
    ]
    assert whole[1].head == b"L" * HEAD_KEPT
    assert whole[2].head == b"m" * 800
    assert whole[3].head == b""  # not a data line


@pytest.mark.parametrize("size", [1000, 1 << 16, 1 << 22])
def test_without_a_limit_a_long_line_is_kept(size: int) -> None:
    payload = b"q" * (3 * MIB)
    stream = b"data: " + payload + b"\n\n"
    [event] = parse(None, *[stream[i : i + size] for i in range(0, len(stream), size)])
    assert event.data == payload


def test_what_is_kept_of_a_dropped_line_stops_at_its_end() -> None:
    parser = EventParser(10)
    assert parser.feed(b"data: ab") == []
    dropped, after = parser.feed(b"cdefghijk\n\ndata: z\n\n")
    assert dropped.too_large
    assert dropped.head == b"abcdefghijk"
    assert after == Event("", b"z", None, None)
