"""A fault-injecting TCP proxy on 127.0.0.1, for tests of an HTTP client against a real server.

The proxy listens on a port the OS picks; every client connection it accepts gets its own
upstream connection, and bytes are pumped both ways. A test switches faults on and off while
traffic flows::

    async with FaultProxy("127.0.0.1", server_port) as proxy:
        ...  # point the client at proxy.url("/mcp")
        proxy.reset_all()

or, inside a nursery it owns, ``proxy = await nursery.start(FaultProxy(host, port).serve)``;
cancelling that nursery (or ``proxy.stop()``) closes every socket.

Faults (each method takes effect at once; "current" connections are those open now, "new" the
ones accepted later):

- ``reset_all()``: abort every current connection, both sides, with a TCP RST (SO_LINGER 0).
- ``reset_after(n, head_contains=None)``: one shot. The next HTTP response to start (on a current
  or new connection) is cut after ``n`` body bytes (the bytes after the response head, chunked
  framing included): its connection is aborted with RST on both sides right after the n-th byte
  is forwarded (``n=0``: right after the head). A response that ends before that passes the
  fault on to the next one. On a connection that does not speak HTTP, ``n`` counts raw bytes.
- ``stall()`` / ``unstall()``: forward no byte in either direction on any connection, current or
  new, and read none, while every socket stays open; ``unstall()`` resumes where it stopped.
- ``buffer_responses(True)``: hold each HTTP response's bytes until the response is complete,
  then send them in one write, like nginx with ``proxy_buffering on``. Framing understood: the
  head, ``Content-Length`` bodies, ``Transfer-Encoding: chunked`` bodies (to the zero-size chunk
  and its trailers), bodiless 1xx/204/304 responses, and bodies delimited by the connection's
  close; keep-alive connections carry responses in sequence. ``buffer_responses(False)`` sends
  whatever is held at once. Applies to current and new connections.
- ``idle_timeout(seconds)``: close a connection, both sides (FIN, as nginx's
  ``proxy_read_timeout`` does), once no byte has been read or written on it for that long,
  counted from its last byte or from this call, whichever is later. ``None`` turns it off.
  Uses trio's clock, so it runs in virtual time under ``trio.testing.MockClock``.
- ``refuse(True)``: close the listening socket, so connects fail with ECONNREFUSED;
  ``refuse(False)`` binds the same port again (SO_REUSEADDR). Open connections are untouched.
- ``delay(seconds)``: sleep that long before forwarding each chunk, in both directions, on
  current and new connections (a chunk is what one read returned, or one buffered response).

Counters: ``accepted``, ``open_connections``, ``response_heads``, ``bytes_up`` (client to
upstream, forwarded),
``bytes_down`` (upstream to client, forwarded), ``resets`` (connections aborted by
``reset_all``/``reset_after``), ``idle_cuts``, ``upstream_failures``. Wait on them with
``wait_for_connections(n)`` or ``wait_until(predicate)``.
"""

from __future__ import annotations

import contextlib
import socket
import string
import struct
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

import trio

__all__ = ["FaultProxy", "ResponseFramer"]

_BUFSIZE = 65536
_MAX_HEAD = 64 * 1024
_MAX_LINE = 8 * 1024
_HEX = frozenset(string.hexdigits.encode())


# -- HTTP/1.1 response framing -------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The first byte of a response follows."""


@dataclass(frozen=True)
class HeadEnd:
    """The response head (status line and headers, with the blank line) is complete."""

    head: bytes


@dataclass(frozen=True)
class Data:
    """Bytes of the stream: part of a response head or body, or of a non-HTTP stream."""

    data: bytes
    kind: Literal["head", "body", "raw"]


@dataclass(frozen=True)
class End:
    """The response is complete (or the connection ended it)."""


Event = Start | HeadEnd | Data | End

_State = Literal[
    "head", "length", "chunk_size", "chunk_data", "chunk_crlf", "trailer", "close", "raw"
]


class ResponseFramer:
    """Splits the server-to-client bytes of one HTTP/1.1 connection into responses.

    ``feed`` returns events in stream order; every byte fed comes back in exactly one ``Data``.
    Anything that is not HTTP/1.x (or that it cannot frame) turns the rest of the stream "raw".
    It sees responses only, so it cannot know that a response answers a HEAD request (whose
    ``Content-Length`` announces a body that never comes).
    """

    def __init__(self) -> None:
        self._state: _State = "head"
        self._pending = bytearray()  # a partial head, chunk-size line or trailer line
        self._left = 0
        self._in_response = False
        self.responses = 0

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        pos = 0
        while pos < len(data):
            state = self._state
            if state == "raw" or state == "close":
                events.append(Data(data[pos:], "raw" if state == "raw" else "body"))
                break
            if state == "head":
                if not self._in_response:
                    self._in_response = True
                    events.append(Start())
                pos = self._feed_head(data, pos, events)
            elif state in ("length", "chunk_data", "chunk_crlf"):
                take = min(self._left, len(data) - pos)
                events.append(Data(data[pos : pos + take], "body"))
                pos += take
                self._left -= take
                if self._left == 0:
                    if state == "length":
                        self._finish(events)
                    elif state == "chunk_data":
                        self._state, self._left = "chunk_crlf", 2
                    else:
                        self._state = "chunk_size"
            else:
                pos = self._feed_line(data, pos, events)
        return events

    def eof(self) -> list[Event]:
        """The server closed the connection: whatever response was under way ends here."""
        events: list[Event] = []
        if self._in_response:
            self._finish(events)
        self._state = "raw"
        return events

    def _finish(self, events: list[Event]) -> None:
        events.append(End())
        self._in_response = False
        self._state = "head"
        self.responses += 1

    def _go_raw(self, events: list[Event], rest: bytes) -> None:
        if self._in_response:
            events.append(End())
            self._in_response = False
        self._state = "raw"
        self._pending.clear()
        if rest:
            events.append(Data(rest, "raw"))

    def _feed_head(self, data: bytes, pos: int, events: list[Event]) -> int:
        before = len(self._pending)
        self._pending += data[pos:]
        if self._pending[:5] != b"HTTP/"[: len(self._pending)]:
            self._go_raw(events, data[pos:])
            return len(data)
        end = self._pending.find(b"\r\n\r\n", max(0, before - 3))
        if end < 0:
            if len(self._pending) > _MAX_HEAD:
                self._go_raw(events, data[pos:])
            else:
                events.append(Data(data[pos:], "head"))
            return len(data)
        used = end + 4 - before
        head = bytes(self._pending[: end + 4])
        self._pending.clear()
        events.append(Data(data[pos : pos + used], "head"))
        events.append(HeadEnd(head))
        try:
            self._after_head(head, events)
        except ValueError:
            self._go_raw(events, b"")
        return pos + used

    def _after_head(self, head: bytes, events: list[Event]) -> None:
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3:
            raise ValueError("not an HTTP/1.x status line")
        status = int(parts[1])
        fields: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise ValueError("malformed header line")
            fields.setdefault(name.strip().lower(), []).append(value.strip())
        if status == 101:  # switching protocols: whatever follows is not HTTP/1.1
            self._finish(events)
            self._go_raw(events, b"")
        elif 100 <= status < 200 or status in (204, 304):
            self._finish(events)
        elif b"transfer-encoding" in fields:
            codings = b",".join(fields[b"transfer-encoding"]).split(b",")
            if codings[-1].strip().lower() == b"chunked":
                self._state = "chunk_size"
            else:
                self._state = "close"
        elif b"content-length" in fields:
            values = {v.strip() for v in b",".join(fields[b"content-length"]).split(b",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise ValueError("bad Content-Length")
            length = int(next(iter(values)))
            if length == 0:
                self._finish(events)
            else:
                self._state, self._left = "length", length
        else:
            self._state = "close"

    def _feed_line(self, data: bytes, pos: int, events: list[Event]) -> int:
        before = len(self._pending)
        self._pending += data[pos:]
        end = self._pending.find(b"\r\n", max(0, before - 1))
        if end < 0:
            if len(self._pending) > _MAX_LINE:
                self._go_raw(events, data[pos:])
            else:
                events.append(Data(data[pos:], "body"))
            return len(data)
        used = end + 2 - before
        line = bytes(self._pending[:end])
        self._pending.clear()
        events.append(Data(data[pos : pos + used], "body"))
        if self._state == "trailer":
            if not line:
                self._finish(events)
            return pos + used
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or not all(c in _HEX for c in size_text):
            self._go_raw(events, b"")
            return pos + used
        size = int(size_text, 16)
        if size == 0:
            self._state = "trailer"
        else:
            self._state, self._left = "chunk_data", size
        return pos + used


# -- the proxy --------------------------------------------------------------------------------


@dataclass(eq=False)
class _Connection:
    client: trio.SocketStream
    upstream: trio.SocketStream | None = None
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    last_activity: float = 0.0
    closed: bool = False
    reset: bool = False  # closed with RST: any socket closed later gets one too
    pumps_done: int = 0
    held: bytearray = field(default_factory=bytearray)
    cut_left: int | None = None  # body bytes this connection may still forward, when cut
    wake: trio.CancelScope | None = None  # the downstream pump's receive, while it waits

    def touch(self) -> None:
        self.last_activity = trio.current_time()


@dataclass(frozen=True)
class _CutPlan:
    n_bytes: int
    head_contains: bytes | None


def _set_linger_zero(sock: trio.socket.SocketType) -> None:
    # Should this fail (the socket is gone already), a plain close will do.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class FaultProxy:
    """A TCP proxy from 127.0.0.1:``port`` to ``upstream_host:upstream_port`` with faults."""

    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1") -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = host
        # counters
        self.accepted = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.resets = 0
        self.idle_cuts = 0
        self.upstream_failures = 0
        self.response_heads = 0  # HTTP response heads seen coming from upstream
        # state
        self._port: int | None = None
        self._listener: trio.socket.SocketType | None = None
        self._serve_scope: trio.CancelScope | None = None
        self._connections: set[_Connection] = set()
        self._changed = trio.Event()  # set (and replaced) whenever a counter moves
        self._settings = trio.Event()  # set (and replaced) whenever a fault setting changes
        self._stalled: trio.Event | None = None
        self._buffering = False
        self._idle_timeout: float | None = None
        self._idle_since = 0.0
        self._delay = 0.0
        self._cut: _CutPlan | None = None
        self._cut_owner: _Connection | None = None
        self._manager: AbstractAsyncContextManager[trio.Nursery] | None = None

    # -- where it listens

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the proxy is not serving yet")
        return self._port

    def url(self, path: str = "/") -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{self.host}:{self.port}{path}"

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    @property
    def refusing(self) -> bool:
        return self._serve_scope is not None and self._listener is None

    # -- running

    async def serve(
        self, *, task_status: trio.TaskStatus[FaultProxy] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and proxy until cancelled or ``stop()``; every socket is closed on the way out."""
        if self._serve_scope is not None:
            raise RuntimeError("this proxy is already serving")
        self._listener = self._listen(0)
        self._port = self._listener.getsockname()[1]
        try:
            with trio.CancelScope() as self._serve_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._accept_loop, nursery)
                    task_status.started(self)
        finally:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for connection in list(self._connections):
                self._close(connection, reset=False)
            self._serve_scope = None
            self._notify()

    def stop(self) -> None:
        """End ``serve()``: stop listening and close every connection (FIN, not RST)."""
        if self._serve_scope is not None:
            self._serve_scope.cancel()

    async def __aenter__(self) -> FaultProxy:
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        try:
            await nursery.start(self.serve)
        except BaseException as exc:
            nursery.cancel_scope.cancel()
            await manager.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._manager = manager
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager, self._manager = self._manager, None
        assert manager is not None, "__aexit__ without __aenter__"
        self.stop()
        # The body's own exception propagates unchanged: the nursery sees a clean exit.
        await manager.__aexit__(None, None, None)

    # -- faults

    def reset_all(self) -> int:
        """Abort every current connection, both sides, with RST. Returns how many."""
        victims = [c for c in self._connections if not c.closed]
        for connection in victims:
            self._close(connection, reset=True)
        self.resets += len(victims)
        self._notify()
        return len(victims)

    def reset_after(self, n_bytes: int, *, head_contains: bytes | None = None) -> None:
        """Cut the next response (whose head contains ``head_contains``, if given) after
        ``n_bytes`` body bytes: RST on both sides of its connection. One shot."""
        if n_bytes < 0:
            raise ValueError("n_bytes must be >= 0")
        self._cut = _CutPlan(n_bytes, head_contains)
        if self._cut_owner is not None:  # re-arming while a response holds the old plan
            self._cut_owner.cut_left = None
            self._cut_owner = None

    @property
    def reset_pending(self) -> bool:
        """A ``reset_after`` that has not cut anything yet."""
        return self._cut is not None

    def stall(self) -> None:
        """Stop forwarding (and reading) bytes both ways on every connection; sockets stay open."""
        if self._stalled is None:
            self._stalled = trio.Event()

    def unstall(self) -> None:
        stalled, self._stalled = self._stalled, None
        if stalled is not None:
            stalled.set()

    def buffer_responses(self, on: bool = True) -> None:
        """Hold each response until it is complete (nginx ``proxy_buffering on``)."""
        self._buffering = on
        if not on:
            for connection in self._connections:
                if connection.held and connection.wake is not None:
                    connection.wake.cancel()

    def idle_timeout(self, seconds: float | None) -> None:
        """Close (FIN, both sides) any connection on which no byte moved for ``seconds``."""
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be > 0 (or None to turn the timeout off)")
        self._idle_timeout = seconds
        self._idle_since = trio.current_time()
        self._settings_changed()

    def refuse(self, on: bool = True) -> None:
        """Close the listening socket (connects get ECONNREFUSED), or listen again on the port."""
        if self._serve_scope is None or self._port is None:
            raise RuntimeError("the proxy is not serving")
        if on and self._listener is not None:
            self._listener.close()
            self._listener = None
        elif not on and self._listener is None:
            self._listener = self._listen(self._port)
        self._settings_changed()

    def delay(self, seconds: float) -> None:
        """Sleep ``seconds`` before forwarding each chunk, both ways (0 turns it off)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._delay = seconds

    # -- waiting on counters

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true.

        It is checked again only when one of this proxy's counters or connections changes, so
        it must depend on the proxy's state alone (use a ``trio.Event`` for anything else).
        """
        if predicate():
            await trio.lowlevel.checkpoint()
            return
        while not predicate():
            await self._changed.wait()

    async def wait_for_connections(self, n: int) -> None:
        """Return once ``n`` connections in all have been accepted."""
        await self.wait_until(lambda: self.accepted >= n)

    # -- internals

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _settings_changed(self) -> None:
        self._settings.set()
        self._settings = trio.Event()

    def _listen(self, port: int) -> trio.socket.SocketType:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        return trio.socket.from_stdlib_socket(sock)

    async def _accept_loop(self, nursery: trio.Nursery) -> None:
        while True:
            settings = self._settings
            listener = self._listener
            if listener is None:  # refusing
                await settings.wait()
                continue
            try:
                sock, _ = await listener.accept()
            except (trio.ClosedResourceError, OSError):
                if listener is self._listener:
                    raise
                continue  # refuse() closed it under us
            connection = _Connection(trio.SocketStream(sock))
            connection.touch()
            self._connections.add(connection)
            self.accepted += 1
            self._notify()
            nursery.start_soon(self._handle, connection)

    def _close(self, connection: _Connection, *, reset: bool) -> None:
        """Close both sides (RST with ``reset``) and end the connection's tasks. Idempotent."""
        if not connection.closed:
            connection.closed, connection.reset = True, reset
        for stream in (connection.client, connection.upstream):
            if stream is not None and stream.socket.fileno() != -1:
                if connection.reset:
                    _set_linger_zero(stream.socket)
                stream.socket.close()
        connection.scope.cancel()

    async def _handle(self, connection: _Connection) -> None:
        try:
            with connection.scope:
                try:
                    upstream = await trio.open_tcp_stream(self.upstream_host, self.upstream_port)
                except OSError:
                    self.upstream_failures += 1
                    self._close(connection, reset=True)
                    return
                connection.upstream = upstream
                connection.touch()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._pump_up, connection, upstream)
                    nursery.start_soon(self._pump_down, connection, upstream)
                    nursery.start_soon(self._watchdog, connection)
        finally:
            self._close(connection, reset=False)
            if self._cut_owner is connection:  # it never got to cut: the next response will
                self._cut_owner = None
            self._connections.discard(connection)
            self._notify()

    async def _flowing(self) -> None:
        while self._stalled is not None:
            await self._stalled.wait()

    async def _forward(
        self, connection: _Connection, destination: trio.SocketStream, data: bytes, *, down: bool
    ) -> None:
        if self._delay:
            await trio.sleep(self._delay)
        await self._flowing()
        await destination.send_all(data)
        connection.touch()
        if down:
            self.bytes_down += len(data)
        else:
            self.bytes_up += len(data)
        self._notify()

    def _pump_finished(self, connection: _Connection) -> None:
        connection.pumps_done += 1
        if connection.pumps_done == 2:
            self._close(connection, reset=False)

    async def _pump_up(self, connection: _Connection, upstream: trio.SocketStream) -> None:
        try:
            while True:
                await self._flowing()
                data = await connection.client.receive_some(_BUFSIZE)
                connection.touch()
                if not data:
                    await upstream.send_eof()
                    break
                await self._forward(connection, upstream, data, down=False)
        except trio.BrokenResourceError:
            self._close(connection, reset=True)  # one side was reset: pass the RST on
        except trio.ClosedResourceError:
            pass  # a fault or the shutdown closed this connection
        else:
            self._pump_finished(connection)

    async def _pump_down(self, connection: _Connection, upstream: trio.SocketStream) -> None:
        framer = ResponseFramer()
        client = connection.client
        try:
            while True:
                if connection.held and not self._buffering:
                    held = bytes(connection.held)
                    connection.held.clear()
                    await self._forward(connection, client, held, down=True)
                    continue
                await self._flowing()
                with trio.CancelScope() as wake:
                    connection.wake = wake
                    data = await upstream.receive_some(_BUFSIZE)
                connection.wake = None
                if wake.cancelled_caught:  # buffer_responses(False) woke us up
                    continue
                connection.touch()
                events = framer.eof() if not data else framer.feed(data)
                out, cut = self._route(connection, events)
                if out:
                    await self._forward(connection, client, out, down=True)
                if cut:
                    self.resets += 1
                    self._close(connection, reset=True)
                    self._notify()
                    return
                if not data:
                    await client.send_eof()
                    break
        except trio.BrokenResourceError:
            self._close(connection, reset=True)
        except trio.ClosedResourceError:
            pass
        else:
            self._pump_finished(connection)

    def _claim_cut(self, connection: _Connection, head: bytes | None) -> None:
        plan = self._cut
        if plan is None or self._cut_owner is not None:
            return
        if plan.head_contains is not None and (head is None or plan.head_contains not in head):
            return
        self._cut_owner = connection
        connection.cut_left = plan.n_bytes

    def _route(self, connection: _Connection, events: list[Event]) -> tuple[bytes, bool]:
        """What to send the client now for these events, and whether to cut after it."""
        out = bytearray()
        held = connection.held
        for event in events:
            if isinstance(event, HeadEnd):
                self.response_heads += 1
                self._notify()
                self._claim_cut(connection, event.head)
                if connection.cut_left == 0:
                    return self._spend_cut(connection, out)
            elif isinstance(event, Data):
                data = event.data
                if event.kind == "raw":
                    self._claim_cut(connection, None)
                cut = False
                if connection.cut_left is not None and event.kind != "head":
                    if len(data) >= connection.cut_left:
                        data, cut = data[: connection.cut_left], True
                    else:
                        connection.cut_left -= len(data)
                if self._buffering and event.kind != "raw":
                    held += data
                else:
                    out += held
                    held.clear()
                    out += data
                if cut:
                    return self._spend_cut(connection, out)
            elif isinstance(event, End):
                out += held
                held.clear()
                if self._cut_owner is connection:  # ended before the cut: pass it on
                    self._cut_owner = None
                    connection.cut_left = None
        return bytes(out), False

    def _spend_cut(self, connection: _Connection, out: bytearray) -> tuple[bytes, bool]:
        self._cut = None
        self._cut_owner = None
        connection.cut_left = None
        connection.held.clear()  # a buffered response is lost whole
        return bytes(out), True

    async def _watchdog(self, connection: _Connection) -> None:
        while True:
            settings = self._settings
            timeout = self._idle_timeout
            if timeout is None:
                await settings.wait()
                continue
            deadline = max(connection.last_activity, self._idle_since) + timeout
            if trio.current_time() >= deadline:
                self.idle_cuts += 1
                self._close(connection, reset=False)
                self._notify()
                return
            with trio.move_on_at(deadline):
                await settings.wait()
