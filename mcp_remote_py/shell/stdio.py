"""The desktop client's side: lines from stdin, JSON lines to stdout, with backpressure.

On POSIX, when stdin/stdout are pipes (as a desktop client sets them up), trio waits on the file
descriptors directly. On Windows, where trio has no async pipes for stdio, and on a terminal
(where making the shared descriptor non-blocking would disturb the shell), a worker thread does
the blocking reads and writes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from functools import partial

import trio

from ..core.jsonrpc import LineSplitter
from . import memory
from .quick import QuickCount, cancelled, read_when_ready

__all__ = ["StdoutWriter", "client_lines"]

CHUNK = 1 << 16
# Below this size one write of message + newline is cheaper than two; above, the copy costs more.
JOIN_BELOW = 1 << 16
ENCODE_SLICE = 1 << 20
PIPE_SIZE = 1 << 20
# After writing a message this large, the C heap is trimmed (memory.release_soon).
RELEASE_AFTER = 1 << 20
# A line begun is finished even if its writer is cancelled, within this long: a client that
# stops reading for so long in the middle of a message is not coming back.
FINISH_LINE_WITHIN = 60.0

log = logging.getLogger("mcp_remote_py")


def _use_fd_stream(fd: int) -> bool:
    return sys.platform != "win32" and not os.isatty(fd)


def _binary_mode(fd: int) -> None:
    """On Windows, keep the C runtime from turning "\n" into "\r\n" (stdout is sacred)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows builds
        import msvcrt

        msvcrt.setmode(fd, os.O_BINARY)


async def client_lines(max_line: int, fd: int = 0) -> AsyncIterator[bytes | None]:
    """Lines from stdin until EOF; ``None`` stands for a line over ``max_line`` that was dropped."""
    splitter = LineSplitter(max_line)
    _binary_mode(fd)
    if _use_fd_stream(fd):
        was_blocking = os.get_blocking(fd)
        _widen_pipe(fd)
        stream = trio.lowlevel.FdStream(os.dup(fd))
        reads = _QuickReads(stream)
        try:
            while chunk := await reads.read():
                for line in splitter.feed(chunk):
                    yield line
        finally:
            await stream.aclose()
            os.set_blocking(fd, was_blocking)
    else:
        while chunk := await trio.to_thread.run_sync(os.read, fd, CHUNK, abandon_on_cancel=True):
            for line in splitter.feed(chunk):
                yield line
    for line in splitter.finish():
        yield line


class _QuickReads:
    """What the pipe holds (up to ``CHUNK``), waited for only when it holds nothing
    (``shell.quick``): a request is read the moment the relay gets to it, with no pass through
    trio's scheduler after it (``FdStream.receive_some`` makes one whether it waited or not)."""

    def __init__(self, stream: trio.lowlevel.FdStream) -> None:
        self._stream = stream
        self._quick = QuickCount()

    async def read(self) -> bytes:
        fd = self._stream.fileno()
        try:
            return await read_when_ready(
                partial(os.read, fd, CHUNK), partial(trio.lowlevel.wait_readable, fd), self._quick
            )
        except OSError:  # trio's stream reports it as it always did
            return await self._stream.receive_some(CHUNK)


def _widen_pipe(fd: int) -> None:
    """Linux: a 1 MiB pipe instead of 64 KiB, so a large message needs 16 times fewer wake-ups
    of the relay and the client (F_SETPIPE_SZ; silently left as it is where not allowed)."""
    if sys.platform == "linux":
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _parts(data: bytes | str) -> Iterator[bytes]:
    """The writes for one line: small ones joined with the newline, large text encoded a slice at
    a time (slicing text never splits a character, so each slice is valid UTF-8 on its own)."""
    if len(data) < JOIN_BELOW:
        yield (data if isinstance(data, bytes) else data.encode("utf-8")) + b"\n"
        return
    if isinstance(data, bytes):
        yield data
    else:
        for start in range(0, len(data), ENCODE_SLICE):
            yield data[start : start + ENCODE_SLICE].encode("utf-8")
    yield b"\n"


class StdoutWriter:
    """Writes whole messages to stdout, one writer at a time; waiting here is the backpressure.

    When the client has closed its end, ``on_closed`` is called once (the relay then exits) and
    later writes are dropped.
    """

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        _binary_mode(fd)
        self._lock = trio.StrictFIFOLock()
        self._stream: trio.lowlevel.FdStream | None = None
        self._was_blocking = os.get_blocking(fd)
        if _use_fd_stream(fd):
            _widen_pipe(fd)
            self._stream = trio.lowlevel.FdStream(os.dup(fd))
        self.closed = False
        self.on_closed: trio.CancelScope | None = None

    async def write_line(self, data: bytes | str) -> None:
        """``data`` (text is written as UTF-8) and a newline. A large message is neither copied
        to append the newline nor encoded whole: text goes out a slice at a time."""
        if self.closed:
            return
        if (
            self._stream is not None
            and not self._lock.locked()
            and len(data) < JOIN_BELOW
            and not cancelled()
        ):
            # The common case: no writer ahead, and the pipe takes the line whole at once. No
            # await, so no other writer can come between; a line the pipe takes only in part
            # is finished below, the lock taken before anything else can run.
            part = (data if isinstance(data, bytes) else data.encode("utf-8")) + b"\n"
            try:
                written = os.write(self._stream.fileno(), part)
            except BlockingIOError:
                written = 0
            except OSError:
                self._gone()
                return
            if written == len(part):
                return
            self._lock.acquire_nowait()
            try:
                await self._finish([part[written:]], len(data))
            finally:
                self._lock.release()
            return
        async with self._lock:
            await self._finish(_parts(data), len(data))
        if len(data) >= RELEASE_AFTER:
            memory.release_soon()

    async def _finish(self, parts: Iterable[bytes], size: int) -> None:
        """Write ``parts`` under the lock (held by the caller)."""
        # Half a message on stdout would garble every one after it: a writer cancelled
        # mid-line (the client withdrew the request this answers, the relay is stopping)
        # finishes the line first, unless the client stops reading altogether.
        deadline = trio.current_time() + FINISH_LINE_WITHIN
        with trio.CancelScope(shield=True, deadline=deadline) as finishing:
            for part in parts:
                if not await self._write(part):
                    return
        if finishing.cancelled_caught:
            log.error(
                "the client read nothing of a %d-byte message for %g s; its stdout is "
                "given up (the relay exits)",
                size,
                FINISH_LINE_WITHIN,
            )
            self._gone()

    async def _write(self, part: bytes) -> bool:
        try:
            if self._stream is not None:
                await self._stream.send_all(part)
            else:
                await trio.to_thread.run_sync(self._write_blocking, part)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self._gone()
            return False
        return True

    def _gone(self) -> None:
        self.closed = True
        if self.on_closed is not None:
            self.on_closed.cancel()

    def _write_blocking(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            os.set_blocking(self._fd, self._was_blocking)
