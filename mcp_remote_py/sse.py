"""Server-sent events from bytes, without I/O (WHATWG HTML §9.2 "event stream interpretation").

The relay's hot path reads every answer through this parser, so it works on bytes: a line is
found with one C-level search from where the last search stopped (a 100 MB ``data:`` line costs
O(n), not O(n²)), and an event's data stays bytes all the way to stdout, where the relay writes
the line it came as. Only the short fields (event, id, retry) are decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Event", "EventParser"]

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"
_RELEASE_ABOVE = 1 << 20


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
        self._buffer = bytearray()
        self._searched = 0  # bytes of the buffer known to hold no line end
        self._started = False
        self._event = ""
        self._data: list[bytes] = []
        self._has_fields = False
        self._retry: int | None = None
        self.last_event_id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        buffer = self._buffer
        buffer += chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(bytes(buffer)):
                return []
            self._started = True
            if buffer.startswith(_BOM):
                del buffer[: len(_BOM)]
        events: list[Event] = []
        start = 0
        while True:
            found = _LINE_END.search(buffer, max(start, self._searched))
            if found is None:
                break
            if found.group() == b"\r" and found.end() == len(buffer):
                break  # a CR at the end may be the first half of CRLF: wait for the next byte
            with memoryview(buffer) as view:
                line = bytes(view[start : found.start()])
            start = found.end()
            if len(line) > _RELEASE_ABOVE:
                # Let go of a large line's bytes in the buffer now, not after the whole chunk:
                # otherwise a 100 MB event is held twice while it is parsed.
                del buffer[:start]
                start = 0
            self._searched = start
            event = self._line(line)
            if event is not None:
                events.append(event)
        del buffer[:start]
        self._searched = max(0, len(buffer) - 1) if buffer.endswith(b"\r") else len(buffer)
        return events

    def finish(self) -> list[Event]:
        """At the end of the stream: a line ended by a lone CR completes. (An event without its
        blank line is dropped, as the standard says.)"""
        # Feeding LF after that CR ends the same line, as CRLF.
        return self.feed(b"\n") if self._buffer.endswith(b"\r") else []

    def _line(self, line: bytes) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None  # a comment (keepalive)
        name, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        self._has_fields = True
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
