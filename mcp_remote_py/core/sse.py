"""Server-sent events from bytes, without I/O (WHATWG HTML §9.2 "event stream interpretation").

The relay's hot path reads every answer through this parser, so it works on bytes and copies
little: line ends are found with memchr searches (``bytes.find``) that never look at a byte twice,
a line that spans chunks grows in one buffer and its value is copied out once, so a 50 MB
``data:`` line costs O(n). An event's data stays bytes all the way to stdout, where the relay
writes the line it came as. Only the short fields (event, id, retry) are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from .backoff import MAX_SERVER_DELAY

__all__ = ["Event", "EventParser"]

_BOM = b"\xef\xbb\xbf"
_LF, _COLON, _SPACE = 0x0A, 0x3A, 0x20


# The longest SSE retry the relay honours, in the field's unit (milliseconds).
MAX_RETRY_MS = int(MAX_SERVER_DELAY * 1000)


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event. ``id`` is the stream's last event id as of this event (it carries
    over from earlier events, as the standard says); ``retry`` is set when this event had one."""

    event: str
    data: bytes
    id: str | None
    retry: int | None


class EventParser:
    """Feed bytes as they arrive; get the events that are complete."""

    def __init__(self) -> None:
        self._head = b""  # the first bytes, until we know whether they start with a BOM
        self._started = False
        self._pending = bytearray()  # the unfinished line
        self._skip_lf = False  # the last chunk ended with CR: an LF first in the next is its pair
        self._event = ""
        self._data: list[bytes] = []
        self._has_fields = False
        self._retry: int | None = None
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        if not self._started:
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk
                return []
            self._started, self._head = True, b""
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        events: list[Event] = []
        pos = 0
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == _LF:
                pos = 1
        size = len(chunk)
        # The next LF and CR at or after pos, each searched for again only once passed (-1: none
        # left): two memchr scans cost O(n) per chunk whatever the line ending.
        next_lf = chunk.find(b"\n", pos)
        next_cr = chunk.find(b"\r", pos)
        while next_lf >= 0 or next_cr >= 0:
            if next_cr < 0 or 0 <= next_lf < next_cr:
                end, after = next_lf, next_lf + 1
            else:
                end = next_cr
                after = end + 1
                if after == size:
                    self._skip_lf = True  # the LF of a CRLF may come first in the next chunk
                elif chunk[after] == _LF:
                    after += 1
            event = self._line(chunk, pos, end)
            pos = after
            if event is not None:
                events.append(event)
            if 0 <= next_lf < pos:
                next_lf = chunk.find(b"\n", pos)
            if 0 <= next_cr < pos:
                next_cr = chunk.find(b"\r", pos)
        if pos < size:  # the start of a line that ends in a later chunk
            with memoryview(chunk) as view:
                self._pending += view[pos:]
        return events

    def finish(self) -> list[Event]:
        """At the end of the stream. An unfinished line or event is dropped, as the standard
        says; a line ended by a lone CR was already complete when the CR came."""
        self._pending = bytearray()
        return []

    def _line(self, chunk: bytes, start: int, end: int) -> Event | None:
        if not self._pending:
            return self._field(chunk, start, end)
        # The line began in earlier chunks. They were gathered in one growing buffer rather
        # than kept as a list: a list of 800 chunks of 64 KiB (a 50 MB line) would leave the
        # C heap fragmented and 40 MiB of it resident after the line is gone.
        with memoryview(chunk) as view:
            self._pending += view[start:end]
        line, self._pending = self._pending, bytearray()
        return self._field(line, 0, len(line))

    def _field(self, line: bytes | bytearray, start: int, end: int) -> Event | None:
        """One line, line[start:end]."""
        if start == end:
            return self._dispatch()
        if line[start] == _COLON:
            return None  # a comment (keepalive)
        self._has_fields = True
        colon = line.find(b":", start, end)
        if colon < 0:
            name, value_start = line[start:end], end
        else:
            name, value_start = line[start:colon], colon + 1
            if value_start < end and line[value_start] == _SPACE:
                value_start += 1
        with memoryview(line) as view:
            value = bytes(view[value_start:end])  # the one copy of a data line
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            # Milliseconds; a value of thousands of digits is no number int() takes (and no
            # wait anyone means): it counts as the longest the relay honours.
            self._retry = min(int(value), MAX_RETRY_MS) if len(value) <= 9 else MAX_RETRY_MS
        return None

    def _dispatch(self) -> Event | None:
        if not self._has_fields:
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = Event(self._event, data, self.last_event_id, self._retry)
        self._event, self._data, self._retry, self._has_fields = "", [], None, False
        return event
