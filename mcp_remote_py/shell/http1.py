"""HTTP/1.1 on trio streams: the httpx transport the relay sends through.

httpx's own transport goes through httpcore and h11, which on a small MCP message cost about
600 µs of CPU here (bench/README.md, "where the time goes"): more than everything else the relay
does for that message. This transport speaks the part of HTTP/1.1 (RFC 9112) a client needs,
directly on trio's socket and TLS streams, and hands httpx a normal ``httpx.Response``, so the
rest of the relay, doctor and OAuth see no difference.

What it does:

* Keep-alive: a connection goes back to the pool once its answer's body has been read to the end,
  and is reused only if the server did not close it meanwhile (the socket is not readable) and it
  has been idle less than ``KEEPALIVE_EXPIRY``. An HTTP/1.0 answer, or one with ``Connection:
  close``, ends its connection (as h11 does: a 1.0 server's keep-alive is not worth trusting).
* Framing of answers (RFC 9112 §6.3): no body for HEAD, 1xx, 204 and 304; chunked transfer coding
  (chunk extensions and trailers are read and dropped); Content-Length; otherwise until the server
  closes. Interim 1xx answers are skipped. Bare LF line ends are accepted, as h11 does.
* What the server decides is bounded, and breaking a bound is the request's ``MalformedAnswer``
  (a ``RemoteProtocolError``; ``net.describe_network_error`` makes it a ProtocolViolation, not a
  lost connection): a head of at most ``MAX_HEAD``, at most ``MAX_INTERIM`` interim answers
  before the final one, a Content-Length of at most ``MAX_LENGTH_DIGITS`` digits, trailers of
  at most ``MAX_TRAILERS`` lines and ``MAX_HEAD`` bytes. Header names must be tokens and values
  may not hold NUL or a bare CR (RFC 9110 §5.5, §5.6.2), as h11 requires.
* Timeouts from the request's ``timeout`` extension (connect, which includes the TLS handshake;
  read, per receive; write), raised as httpx's exceptions, and every failure as the httpx
  exception httpcore would raise, with the OS or TLS error as its cause, so
  ``net.describe_network_error`` reads it the same way.
* A connection whose answer was not read to the end (the caller closed it early, or was
  cancelled) is closed, never reused: what is left on it is unknown. Nothing is ever resent.
* When a write breaks, the answer the server sent before closing is read if there is one
  (nginx's 413 for a body over ``client_max_body_size``).
* Errors never quote header values or body bytes (they may be cookies or tokens).

What it leaves to httpx (``net.build_client`` mounts httpx's transport for these): proxies from
the environment, and HTTP/2.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from typing import Any, TypeVar

import httpx
import trio

from .quick import QuickCount, cancelled, read_when_ready

__all__ = ["Http1Transport", "MalformedAnswer"]

_T = TypeVar("_T")

READ_SIZE = 65536
MAX_HEAD = 65536  # status line and headers of one answer; also the trailers of a chunked body
MAX_LINE = 8192  # a chunk-size line or a trailer field
MAX_INTERIM = 10  # 1xx answers before the final one (a 100 and a 103 or two, in practice)
MAX_TRAILERS = 100  # trailer fields after a chunked body
# 10**19 bytes is more than anyone sends; a longer number is no length (and past 4300 digits
# Python's int() refuses it with a ValueError).
MAX_LENGTH_DIGITS = 19
# uvicorn and Node's http server close a connection after 5 s idle (httpx also expires its own
# at 5 s). Giving one up at 4 s means a request is never written to a connection the server is
# closing at that moment, which would lose it: RFC 9112 §9.3.1 forbids resending a POST.
KEEPALIVE_EXPIRY = 4.0
MAX_IDLE = 32

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_FORBIDDEN_IN_VALUES = re.compile(rb"[\r\n\0]")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2

SocketOption = tuple[int, int, int]


class MalformedAnswer(httpx.RemoteProtocolError):
    """The server's answer breaks HTTP/1.1 or one of this transport's bounds: it came, and it is
    not usable (unlike a connection that broke off). Never quotes header values or body bytes."""


class _Connection:
    """One keep-alive connection and the bytes read from it but not used yet.

    On a plain TCP connection, bytes the socket holds already are taken, and a message that
    fits the socket's buffer is given to it, at once: no trip through trio's scheduler for
    what need not wait (``shell.quick``: trio's socket streams pass it on every call, some 40 µs
    of the relay's CPU per request here). Waiting, and TLS, go through trio as before.
    """

    __slots__ = (
        "key",
        "stream",
        "socket",
        "raw",
        "quick",
        "buffer",
        "idle_since",
        "read_timeout",
        "write_timeout",
    )

    def __init__(
        self, key: tuple[str, str, int], stream: trio.abc.Stream, sock: trio.socket.SocketType
    ) -> None:
        self.key = key
        self.stream = stream
        self.socket = sock
        # The OS socket under trio's, when nothing (TLS) sits between it and the stream.
        raw = getattr(sock, "_sock", None) if isinstance(stream, trio.SocketStream) else None
        self.raw: socket.socket | None = raw if isinstance(raw, socket.socket) else None
        self.quick = QuickCount()
        self.buffer = bytearray()
        self.idle_since = 0.0
        # httpx's per-operation limits for the request in flight (None: no limit).
        self.read_timeout: float | None = None
        self.write_timeout: float | None = None

    def expired(self, now: float) -> bool:
        # A readable idle socket means the server closed it (or sent something unasked).
        return now - self.idle_since > KEEPALIVE_EXPIRY or self.socket.is_readable()

    async def receive(self) -> bytes:
        raw = self.raw
        if raw is None:
            return await self._receive_stream()
        try:
            return await read_when_ready(
                partial(raw.recv, READ_SIZE), partial(self._wait_readable, raw), self.quick
            )
        except (trio.ClosedResourceError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def _wait_readable(self, raw: socket.socket) -> None:
        timeout = self.read_timeout
        try:
            await _bounded(timeout, partial(trio.lowlevel.wait_readable, raw))
        except trio.TooSlowError:
            raise httpx.ReadTimeout(f"the server sent nothing for {timeout:g} s") from None

    async def _receive_stream(self) -> bytes:
        timeout = self.read_timeout
        try:
            data = await _bounded(timeout, partial(self.stream.receive_some, READ_SIZE))
        except trio.TooSlowError:
            raise httpx.ReadTimeout(f"the server sent nothing for {timeout:g} s") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        return data if isinstance(data, bytes) else bytes(data)

    async def send(self, data: bytes) -> None:
        raw = self.raw
        if raw is not None and not cancelled():
            try:
                sent = raw.send(data)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise httpx.WriteError(str(exc) or type(exc).__name__) from exc
            if sent == len(data):
                return
            data = data[sent:]  # the socket's buffer is full: wait for room, as trio does
        timeout = self.write_timeout
        try:
            await _bounded(timeout, partial(self.stream.send_all, data))
        except trio.TooSlowError:
            raise httpx.WriteTimeout(f"the server took nothing for {timeout:g} s") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.WriteError(str(exc) or type(exc).__name__) from exc

    async def read_line(self) -> bytes:
        """One line without its line end (CRLF or LF)."""
        buffer = self.buffer
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end != -1:
                line = bytes(buffer[: end - 1 if end and buffer[end - 1] == 0x0D else end])
                del buffer[: end + 1]
                return line
            if len(buffer) > MAX_LINE:
                raise MalformedAnswer("the server sent a line of over 8 KiB in a body")
            start = len(buffer)
            data = await self.receive()
            if not data:
                raise _incomplete()
            buffer += data

    async def close(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def _bounded(seconds: float | None, step: Callable[[], Awaitable[_T]]) -> _T:
    """``step()`` within ``seconds`` (None: no limit), else trio.TooSlowError: what
    ``trio.fail_after`` does, without its generator context manager (half its cost, and this
    runs for every read and write that waits)."""
    if seconds is None:
        return await step()
    with trio.CancelScope(deadline=trio.current_time() + seconds):
        return await step()
    raise trio.TooSlowError  # the deadline passed: the scope caught its cancellation


def _incomplete() -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError("peer closed connection without sending complete message body")


class _Body(httpx.AsyncByteStream):
    """An answer's body, read off its connection as the caller asks for it."""

    def __init__(
        self,
        transport: Http1Transport,
        connection: _Connection,
        length: int | None,
        chunked: bool,
        reusable: bool,
    ) -> None:
        self._transport = transport
        self._connection: _Connection | None = connection
        self._length = length  # None: until the server closes (unless chunked)
        self._chunked = chunked
        self._reusable = reusable

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            return
        if self._chunked:
            parts = self._chunks(connection)
        elif self._length is not None:
            parts = self._fixed(connection, self._length)
        else:
            parts = self._until_close(connection)
        async with contextlib.aclosing(parts):
            async for part in parts:
                yield part
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._transport._release(connection, self._reusable)

    async def _fixed(self, connection: _Connection, length: int) -> AsyncGenerator[bytes, None]:
        remaining = length
        buffer = connection.buffer
        if buffer:
            part = bytes(buffer[:remaining])
            del buffer[:remaining]
            remaining -= len(part)
            yield part
        while remaining:
            data = await connection.receive()
            if not data:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body: "
                    f"received {length - remaining} bytes, expected {length}"
                )
            if len(data) > remaining:
                buffer += data[remaining:]
                data = data[:remaining]
            remaining -= len(data)
            yield data

    async def _until_close(self, connection: _Connection) -> AsyncGenerator[bytes, None]:
        if connection.buffer:
            yield bytes(connection.buffer)
            connection.buffer.clear()
        while data := await connection.receive():
            yield data

    async def _chunks(self, connection: _Connection) -> AsyncGenerator[bytes, None]:
        """RFC 9112 §7.1: chunk-size [ext] CRLF data CRLF … 0 CRLF trailers CRLF."""
        buffer = connection.buffer
        while True:
            line = await connection.read_line()
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if not _HEX.fullmatch(size_text) or len(size_text) > 16:
                # Not quoted: a broken body's bytes may be anything, tokens included.
                raise MalformedAnswer(f"the server sent a bad chunk-size line ({len(line)} bytes)")
            remaining = int(size_text, 16)
            if remaining == 0:
                await _skip_trailers(connection)
                return
            while remaining:
                if buffer:
                    part = bytes(buffer[:remaining])
                    del buffer[:remaining]
                else:
                    data = await connection.receive()
                    if not data:
                        raise _incomplete()
                    if len(data) > remaining:
                        buffer += data[remaining:]
                        data = data[:remaining]
                    part = data
                remaining -= len(part)
                yield part
            if await connection.read_line():
                raise MalformedAnswer("the server sent a chunk longer than it said")

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:  # not read to the end: what is left on it is unknown
            await self._transport._discard(connection)


async def _skip_trailers(connection: _Connection) -> None:
    """The trailer section after the last chunk (RFC 9112 §7.1.2), read and dropped: nothing
    here uses trailers. Bounded like a head, so a server cannot hold the body open with them."""
    lines = size = 0
    while line := await connection.read_line():
        lines += 1
        size += len(line) + 2
        if lines > MAX_TRAILERS or size > MAX_HEAD:
            raise MalformedAnswer(
                f"the server sent over {MAX_TRAILERS} trailer fields or 64 KiB of them after a "
                "chunked body"
            )


class Http1Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive, over TCP or TLS, for ``http`` and ``https`` URLs."""

    def __init__(
        self,
        ssl_context: Callable[[], ssl.SSLContext],
        socket_options: Iterable[SocketOption] = (),
    ) -> None:
        """``ssl_context`` is called on the first https connection (so plain http never loads
        the trust store); ``socket_options`` are set on every new socket."""
        self._make_ssl_context = ssl_context
        self._ssl_context: ssl.SSLContext | None = None
        self._socket_options = list(socket_options)
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"the URL scheme {scheme!r} is not http or https")
        if self._closed:
            raise RuntimeError("the HTTP transport is closed")
        host = url.raw_host.decode("ascii")
        key = (scheme, host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        head = _request_head(request, await request.aread())
        connection = await self._checkout(key)
        if connection is None:
            connection = await self._connect(key, timeouts)
        try:
            connection.read_timeout = timeouts.get("read")
            connection.write_timeout = timeouts.get("write")
            try:
                await connection.send(head)
            except httpx.WriteError as exc:
                # A server (or a proxy: nginx's 413 for a body over client_max_body_size) may
                # answer and close before taking the whole request; its answer says more than a
                # broken write. The request was not all sent, so the connection is done.
                try:
                    version, status, reason, headers = await _read_final_head(connection)
                except httpx.TransportError:
                    raise exc from None
                length, chunked, _ = _framing(request, version, status, headers)
                reusable = False
            else:
                version, status, reason, headers = await _read_final_head(connection)
                length, chunked, reusable = _framing(request, version, status, headers)
        except BaseException:
            await self._discard(connection)
            raise
        body: httpx.AsyncByteStream
        if length is not None and len(connection.buffer) >= length:
            # The whole body came with the head (a 202 to a notification, a JSON answer, HEAD,
            # 204): the connection is free again before the caller reads it.
            content = bytes(connection.buffer[:length])
            del connection.buffer[:length]
            await self._release(connection, reusable)
            body = httpx.ByteStream(content)
        else:
            body = _Body(self, connection, length, chunked, reusable)
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            request=request,
            extensions={"http_version": version, "reason_phrase": reason},
        )

    async def _checkout(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.expired(now):
                return connection
            await self._discard(connection)
        return None

    async def _connect(self, key: tuple[str, str, int], timeouts: dict[str, Any]) -> _Connection:
        scheme, host, port = key
        timeout: float | None = timeouts.get("connect")
        stream: trio.abc.Stream | None = None
        try:
            with trio.fail_after(timeout if timeout is not None else float("inf")):
                tcp = await trio.open_tcp_stream(host, port)
                stream = tcp
                for option in self._socket_options:
                    tcp.setsockopt(*option)
                if scheme == "https":
                    if self._ssl_context is None:
                        self._ssl_context = self._make_ssl_context()
                    tls = trio.SSLStream(
                        tcp, self._ssl_context, server_hostname=host, https_compatible=True
                    )
                    stream = tls
                    await tls.do_handshake()
        except BaseException as exc:
            if stream is not None:
                await trio.aclose_forcefully(stream)
            if isinstance(exc, trio.TooSlowError):
                raise httpx.ConnectTimeout(f"connecting took longer than {timeout:g} s") from None
            if isinstance(exc, (OSError, trio.BrokenResourceError)):
                raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
            raise
        connection = _Connection(key, stream, tcp.socket)
        self._open.add(connection)
        return connection

    async def _release(self, connection: _Connection, reusable: bool) -> None:
        """Pool a connection whose answer was read to the end, or close it: also when bytes came
        after that answer (what they are is unknown)."""
        if (
            reusable
            and not connection.buffer
            and not self._closed
            and sum(map(len, self._idle.values())) < MAX_IDLE
        ):
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.key, []).append(connection)
        else:
            await self._discard(connection)

    async def _discard(self, connection: _Connection) -> None:
        self._open.discard(connection)
        await connection.close()

    async def aclose(self) -> None:
        self._closed = True
        self._idle.clear()
        connections, self._open = self._open, set()
        for connection in connections:
            await connection.close()


def _request_head(request: httpx.Request, body: bytes) -> bytes:
    """The request line and fields, with the body appended when it is small."""
    fields = request.headers.raw
    if any(name.lower() == b"transfer-encoding" for name, _ in fields):
        # A streamed body was read whole above: send it with its length instead.
        fields = [
            (name, value)
            for name, value in fields
            if name.lower() not in (b"transfer-encoding", b"content-length")
        ] + [(b"Content-Length", str(len(body)).encode())]
    method = request.method.encode("ascii", "replace")
    if not _TOKEN.fullmatch(method):
        raise httpx.LocalProtocolError(f"the request method {request.method!r} is not a token")
    lines = [b"%s %s HTTP/1.1\r\n" % (method, request.url.raw_path)]
    for name, value in fields:
        if _FORBIDDEN_IN_VALUES.search(value) or not _TOKEN.fullmatch(name):
            raise httpx.LocalProtocolError(
                f"the request header {name.decode('latin-1')!r} is not a valid name, or its "
                "value contains a line break or NUL"
            )
        lines.append(name + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)


Head = tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]


async def _read_head(connection: _Connection) -> Head:
    """An answer's status line and header fields."""
    buffer = connection.buffer
    scanned = 0
    while True:
        match = _HEAD_END.search(buffer, max(0, scanned - 3))
        if match:
            break
        if len(buffer) > MAX_HEAD:
            raise MalformedAnswer("the server's answer has over 64 KiB of headers")
        scanned = len(buffer)
        data = await connection.receive()
        if not data:
            if buffer:
                raise httpx.RemoteProtocolError("the server closed the connection mid-answer")
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        buffer += data
    text = bytes(buffer[: match.start()])
    del buffer[: match.end()]
    if b"\0" in text or text.count(b"\r") != text.count(b"\r\n"):
        raise MalformedAnswer(_forbidden_in(text))
    lines = text.split(b"\n")
    status_line = lines[0].rstrip(b"\r")
    parts = status_line.split(b" ", 2)
    if (
        len(parts) < 2
        or not parts[0].startswith(b"HTTP/1.")
        or len(parts[1]) != 3
        or not parts[1].isdigit()
    ):
        raise MalformedAnswer(f"the server did not answer with HTTP/1.x: {status_line[:60]!r}")
    headers: list[tuple[bytes, bytes]] = []
    for raw in lines[1:]:
        field = raw.rstrip(b"\r")
        if field[:1] in (b" ", b"\t") and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + field.strip(b" \t"))
            continue
        name, colon, value = field.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            # Named by its field name only: the value may be a cookie or a token.
            what = f"named {name[:40]!r}" if colon else f"of {len(field)} bytes without a colon"
            raise MalformedAnswer(f"the server sent a bad header line, {what}")
        headers.append((name, value.strip(b" \t")))
    reason = parts[2] if len(parts) > 2 else b""
    return parts[0], int(parts[1]), reason, headers


def _forbidden_in(head: bytes) -> str:
    """What the error says of a head with a NUL or a bare CR: the field's name, not its value."""
    for number, raw in enumerate(head.split(b"\n")):
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if b"\0" in line or b"\r" in line:
            if number == 0:
                return "the server's status line holds a NUL or a bare CR"
            name = line.partition(b":")[0][:40]
            return f"the server's header {name!r} holds a NUL or a bare CR (RFC 9110 §5.5)"
    return "the server's answer head holds a NUL or a bare CR"  # pragma: no cover


async def _read_final_head(connection: _Connection) -> Head:
    """The head of the final answer, after at most MAX_INTERIM interim 1xx answers."""
    for _ in range(MAX_INTERIM + 1):
        head = await _read_head(connection)
        status = head[1]
        if status == 101:
            raise MalformedAnswer("the server switched protocols unasked (101)")
        if not 100 <= status < 200:
            return head
    raise MalformedAnswer(f"the server sent over {MAX_INTERIM} interim (1xx) answers")


def _framing(
    request: httpx.Request, version: bytes, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[int | None, bool, bool]:
    """(length, chunked, reusable) of an answer's body (RFC 9112 §6.3, §9.3)."""
    lengths: set[bytes] = set()
    codings = b""
    connection = b""
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.update(v.strip() for v in value.split(b","))
        elif lowered == b"transfer-encoding":
            codings += b"," + value.lower()
        elif lowered == b"connection":
            connection += b"," + value.lower()
    tokens = {token.strip() for token in connection.split(b",")}
    # HTTP/1.0 keep-alive is not honoured (as h11 does not): a 1.0 server or proxy that says it
    # may still close, and a request written to it then would be lost.
    reusable = version == b"HTTP/1.1" and b"close" not in tokens
    if "close" in {t.strip().lower() for t in request.headers.get_list("connection", True)}:
        reusable = False
    if request.method == "HEAD" or status in (204, 304):
        return 0, False, reusable
    if codings:
        if codings.rsplit(b",", 1)[-1].strip() == b"chunked":
            return None, True, reusable
        return None, False, False  # another coding last: the body ends when the server closes
    if lengths:
        length = next(iter(lengths))
        if len(lengths) > 1 or not length.isdigit() or len(length) > MAX_LENGTH_DIGITS:
            raise MalformedAnswer(f"the server sent a bad Content-Length: {length[:40]!r}")
        return int(length), False, reusable
    return None, False, False
