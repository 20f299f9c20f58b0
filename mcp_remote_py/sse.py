"""Server-sent events from bytes, without I/O (WHATWG HTML §9.2 "event stream interpretation").

The relay's hot path reads every answer through this parser, so it works on bytes and copies
little: line ends are found with memchr searches (``bytes.find``) that never look at a byte twice,
a line that spans chunks is kept as those chunks and joined once, straight into its field's value,
so a 50 MB ``data:`` line costs O(n) and one copy. An event's data stays bytes all the way to
stdout, where the relay writes the line it came as. Only the short fields (event, id, retry) are
decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Event", "EventParser"]

_BOM = b"\xef\xbb\xbf"
_LF, _COLON, _SPACE = 0x0A, 0x3A, 0x20
# An unfinished line keeps at least this much of its start in one piece (the field name).
_HEAD = 256


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
        self._pending: list[bytes] = []  # the unfinished line, in pieces as they came
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
        if pos < size:
            self._keep(chunk[pos:] if pos else chunk)
        return events

    def finish(self) -> list[Event]:
        """At the end of the stream. An unfinished line or event is dropped, as the standard
        says; a line ended by a lone CR was already complete when the CR came."""
        self._pending.clear()
        return []

    def _keep(self, piece: bytes) -> None:
        pending = self._pending
        if len(pending) == 1 and len(pending[0]) < _HEAD:
            # Keep the line's start in one piece, so that the field name is found in it.
            pending[0] += piece
        else:
            pending.append(piece)

    def _line(self, chunk: bytes, start: int, end: int) -> Event | None:
        pending = self._pending
        if pending:
            # The line began in earlier chunks: its start (at least _HEAD bytes of it, or all
            # of it) is pending[0].
            first = pending[0]
            if len(first) < _HEAD:
                first += chunk[start:end]
                pieces: list[bytes | memoryview] = []
            else:
                pieces = [*pending[1:], memoryview(chunk)[start:end]]
            pending.clear()
            return self._field(first, 0, len(first), pieces)
        return self._field(chunk, start, end, [])

    def _field(
        self, first: bytes, start: int, end: int, rest: list[bytes | memoryview]
    ) -> Event | None:
        """One line: first[start:end] followed by the pieces in ``rest``."""
        if start == end and not rest:
            return self._dispatch()
        if first[start] == _COLON:
            return None  # a comment (keepalive)
        self._has_fields = True
        colon = first.find(b":", start, end)
        if colon < 0:
            if rest:
                return None  # a field name longer than _HEAD: not one we know
            name, value_start = first[start:end], end
        else:
            name, value_start = first[start:colon], colon + 1
            if value_start < end and first[value_start] == _SPACE:
                value_start += 1
        if rest:
            value = b"".join([memoryview(first)[value_start:end], *rest])  # the one copy
        else:
            value = first[value_start:end]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> Event | None:
        if not self._has_fields:
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = Event(self._event, data, self.last_event_id, self._retry)
        self._event, self._data, self._retry, self._has_fields = "", [], None, False
        return event
