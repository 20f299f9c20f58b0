"""StdoutWriter: whole lines on stdout, whatever happens to the task writing one."""

from __future__ import annotations

import logging
import os

import pytest
import trio
import trio.testing

from mcp_remote_py.shell import stdio
from mcp_remote_py.shell.stdio import StdoutWriter

LINE = b'{"jsonrpc":"2.0","id":1,"result":{"text":"' + b"x" * (3 << 20) + b'"}}'


def _read(fd: int, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def test_a_writer_cancelled_mid_line_finishes_the_line() -> None:
    """The client withdrew the request a large answer is for while the answer was half
    written: the line is finished, so the messages after it are not garbled."""
    read_fd, write_fd = os.pipe()
    writer = StdoutWriter(write_fd)
    finished = trio.Event()
    scope = trio.CancelScope()

    async def write() -> None:
        with scope:
            await writer.write_line(LINE)
            await writer.write_line(b'{"jsonrpc":"2.0","id":2,"result":{}}')  # not reached
        finished.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            await trio.testing.wait_all_tasks_blocked()  # the pipe is full: half written
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert not finished.is_set()  # still finishing its line
            data = await trio.to_thread.run_sync(_read, read_fd, len(LINE) + 1)
            await finished.wait()
        assert data == LINE + b"\n"
        assert not writer.closed
    finally:
        await writer.aclose()
        os.close(read_fd)
        os.close(write_fd)


async def test_a_client_that_stops_reading_mid_line_is_given_up(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    read_fd, write_fd = os.pipe()
    writer = StdoutWriter(write_fd)
    try:
        with caplog.at_level(logging.ERROR, logger="mcp_remote_py"):
            started = trio.current_time()
            await writer.write_line(LINE)  # nobody reads the pipe
        waited = trio.current_time() - started
        assert waited == pytest.approx(stdio.FINISH_LINE_WITHIN)
        assert writer.closed
        assert "read nothing" in caplog.text
        await writer.write_line(b"{}")  # dropped, not blocking
    finally:
        await writer.aclose()
        os.close(read_fd)
        os.close(write_fd)
