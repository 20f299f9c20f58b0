from __future__ import annotations

import pytest

from mcp_remote_py.core.sse import MAX_RETRY_MS, Event, EventParser


def parse(*chunks: bytes) -> list[Event]:
    parser = EventParser()
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.finish()


def test_a_simple_event() -> None:
    [event] = parse(b'event: message\nid: 7\ndata: {"a":1}\n\n')
    assert event == Event("message", b'{"a":1}', "7", None)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    stream = newline.join([b"data: one", b"data: two", b"", b"data: three", b"", b""])
    assert [e.data for e in parse(stream)] == [b"one\ntwo", b"three"]


def test_any_chunking_gives_the_same_events() -> None:
    stream = b"\xef\xbb\xbfretry: 250\r\nid: a\r\ndata: x\r\n\r\n: keepalive\r\ndata:y\r\r\n"
    whole = parse(stream)
    for size in range(1, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert parse(*chunks) == whole, size
    assert whole == [Event("", b"x", "a", 250), Event("", b"y", "a", None)]


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert parse(b": ping\n\n") == []
    assert [e.data for e in parse(b"foo: bar\ndata: d\n\n")] == [b"d"]


def test_the_priming_event_has_an_id_and_empty_data() -> None:
    [event] = parse(b"id: 1\ndata: \n\n")
    assert event.id == "1"
    assert event.data == b""


def test_id_carries_over_and_one_with_nul_is_ignored() -> None:
    events = parse(b"id: 5\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\n")
    assert [e.id for e in events] == ["5", "5", "5"]


def test_retry_must_be_digits() -> None:
    assert parse(b"retry: soon\ndata: a\n\n")[0].retry is None


def test_an_unfinished_event_at_the_end_is_not_dispatched() -> None:
    assert parse(b"data: half") == []


def test_a_large_data_line_in_small_chunks() -> None:
    payload = b"x" * 3_000_000
    stream = b"data: " + payload + b"\n\n"
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    [event] = parse(*chunks)
    assert event.data == payload


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("size", [1, 7, 255, 256, 257, 65536])
def test_lines_across_chunks_keep_every_field(newline: bytes, size: int) -> None:
    long_id = "i" * 600
    payload = b'{"text":"' + b"y" * 5000 + b'"}'
    stream = newline.join(
        [b"event: message", b"id: " + long_id.encode(), b"retry: 1500", b"data:" + payload, b""]
    )
    stream += newline + b": ping" + newline + b"x" * 700 + b": unknown" + newline + newline
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    events = parse(*chunks)
    assert events[0] == Event("message", payload, long_id, 1500)
    # A field with a name nobody knows still makes an event (with no data), as before.
    assert events[1:] == [Event("", b"", long_id, None)]


def test_a_cr_at_the_end_of_a_chunk_ends_the_line_at_once() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r\r") == [Event("", b"a", None, None)]
    # The LF that may follow belongs to that CR: no extra blank line, no second event.
    assert parser.feed(b"\ndata: b\n\n") == [Event("", b"b", None, None)]
    assert parser.finish() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"1" * 5000, MAX_RETRY_MS),
        (b"9999999999", MAX_RETRY_MS),
        (b"86400000", MAX_RETRY_MS),
        (b"2500", 2500),
    ],
    ids=["thousands-of-digits", "ten-digits", "a-day", "plain"],
)
def test_a_retry_field_of_any_size_is_parsed_and_capped(value: bytes, expected: int) -> None:
    parser = EventParser()
    (event,) = parser.feed(b"retry: " + value + b"\ndata: x\n\n")
    assert event.retry == expected
