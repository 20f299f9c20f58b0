"""Server-sent events from bytes, without I/O (WHATWG HTML §9.2 "event stream interpretation").

The relay's hot path reads every answer through this parser, so it works on bytes and copies
little: line ends are found with memchr searches (``bytes.find``) that never look at a byte twice,
a line that spans chunks grows in one buffer and its value is copied out once, so a 50 MB
``data:`` line costs O(n). An event's data stays bytes all the way to stdout, where the relay
writes the line it came as. Only the short fields (event, id, retry) are decoded.

The server decides how long a line or an event is, so the parser takes a limit: an event whose
data (or a line of which) grows past it is dropped as it streams in, reported at once by one
``too_large`` event carrying the first bytes of its data, and skipped to its end; the events
after it are parsed as ever. Nothing it holds grows past the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from .backoff import MAX_SERVER_DELAY

__all__ = ["Event", "EventParser"]

_BOM = b"\xef\xbb\xbf"
_LF, _COLON, _SPACE = 0x0A, 0x3A, 0x20
# How much of an event that went over the limit is kept, for the reader to tell what it was.
HEAD_KEPT = 1024
_HEAD_LINE = HEAD_KEPT + len(b"data: ")  # of a data line, to keep HEAD_KEPT of its value


# The longest SSE retry the relay honours, in the field's unit (milliseconds).
MAX_RETRY_MS = int(MAX_SERVER_DELAY * 1000)


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event. ``id`` is the stream's last event id as of this event (it carries
    over from earlier events, as the standard says); ``retry`` is set when this event had one.

    ``too_large``: the event went over the parser's limit and was dropped (``data`` is empty);
    ``head`` is the start of its data, and ``event`` its name as far as it came."""

    event: str
    data: bytes
    id: str | None
    retry: int | None
    too_large: bool = False
    head: bytes = b""


class EventParser:
    """Feed bytes as they arrive; get the events that are complete.

    ``max_event`` (bytes; None: no limit) bounds what one event may gather: its data fields
    together with the line being read. An event that passes it is dropped (see the module)."""

    def __init__(self, max_event: int | None = None) -> None:
        self._max = max_event
        self._head = b""  # the first bytes, until we know whether they start with a BOM
        self._started = False
        self._pending = bytearray()  # the unfinished line
        self._skip_lf = False  # the last chunk ended with CR: an LF first in the next is its pair
        self._event = ""
        self._data: list[bytes] = []
        self._size = 0  # the bytes of self._data, with the newlines that will join them
        self._dropping = False  # the event went over the limit: its data is dropped to its end
        self._skip_line = False  # the unfinished line went over the limit: dropped to its end
        self._has_fields = False
        self._retry: int | None = None
        self.last_event_id: str | None = None

    @property
    def buffered(self) -> int:
        """The bytes the parser holds for the event being read (never over ``max_event``)."""
        return len(self._pending) + self._size

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
        if pos < size and not self._skip_line:  # the start of a line that ends later
            if self._max is not None and len(self._pending) + self._size + size - pos > self._max:
                self._skip_line = True
                head = bytes(self._pending[:_HEAD_LINE]) + chunk[pos : pos + _HEAD_LINE]
                event = self._overflow(_data_value(head))
                if event is not None:
                    events.append(event)
            else:
                with memoryview(chunk) as view:
                    self._pending += view[pos:]
        return events

    def finish(self) -> list[Event]:
        """At the end of the stream. An unfinished line or event is dropped, as the standard
        says; a line ended by a lone CR was already complete when the CR came."""
        self._pending = bytearray()
        self._data, self._size = [], 0
        self._dropping = self._skip_line = False
        return []

    def _overflow(self, head: bytes) -> Event | None:
        """The event went over the limit: let go of what it gathered, and say so once.
        ``head``: the start of the data line that passed the limit, if it was the first."""
        if self._data:
            head = self._data[0][:HEAD_KEPT]
        self._pending = bytearray()
        self._data, self._size = [], 0
        if self._dropping:
            return None
        self._dropping = self._has_fields = True
        return Event(
            self._event, b"", self.last_event_id, self._retry, too_large=True, head=head[:HEAD_KEPT]
        )

    def _line(self, chunk: bytes, start: int, end: int) -> Event | None:
        if self._skip_line:  # the end of a line that went over the limit
            self._skip_line = False
            return None
        if self._max is not None and len(self._pending) + self._size + end - start > self._max:
            head = bytes(self._pending[:_HEAD_LINE]) + chunk[start : min(end, start + _HEAD_LINE)]
            return self._overflow(_data_value(head))
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
        if self._dropping and name == b"data":
            return None  # more of an event that went over the limit
        with memoryview(line) as view:
            value = bytes(view[value_start:end])  # the one copy of a data line
        if name == b"data":
            self._data.append(value)
            self._size += len(value) + 1
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
        if self._dropping:  # reported when it went over the limit
            event = None
            self._dropping = False
        else:
            data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
            event = Event(self._event, data, self.last_event_id, self._retry)
        self._event, self._data, self._retry, self._has_fields = "", [], None, False
        self._size = 0
        return event


def _data_value(line: bytes) -> bytes:
    """The value of a ``data`` field line (its start), or nothing for another field."""
    if not line.startswith(b"data:"):
        return b""
    return line[6:] if line[5:6] == b" " else line[5:]
