"""shell.quick: reads and writes that need not wait skip trio's scheduler, and lose nothing a
checkpoint gave: a peer that never pauses cannot starve the relay, a cancelled task writes
nothing, a line the pipe takes only in part is finished whole."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from mcp_remote_py.shell import stdio
from mcp_remote_py.shell.http1 import _Connection
from mcp_remote_py.shell.quick import QUICK_READS
from mcp_remote_py.shell.stdio import StdoutWriter, client_lines


@asynccontextmanager
async def _connection() -> AsyncIterator[tuple[_Connection, socket.socket]]:
    """A plain TCP-like connection of the transport's, and the server's end as an OS socket."""
    ours, theirs = trio.socket.socketpair()
    peer = socket.socket(fileno=theirs.detach())
    peer.setblocking(False)
    connection = _Connection(("http", "127.0.0.1", 80), trio.SocketStream(ours), ours)
    try:
        yield connection, peer
    finally:
        peer.close()
        await connection.close()


async def _others_run(count: list[int]) -> None:
    while True:
        count[0] += 1
        await trio.lowlevel.checkpoint()


async def test_a_server_that_never_pauses_does_not_starve_the_relay() -> None:
    count = [0]
    async with _connection() as (connection, peer), trio.open_nursery() as nursery:
        assert connection.raw is not None  # plain TCP: the quick path is taken
        nursery.start_soon(_others_run, count)
        await trio.lowlevel.checkpoint()  # it runs (and never blocks)
        before = count[0]
        for _ in range(2 * QUICK_READS):
            peer.send(b"x")  # always there before the read
            assert await connection.receive() == b"x"
        assert count[0] > before  # a checkpoint every QUICK_READS reads let it run
        nursery.cancel_scope.cancel()


async def test_a_read_with_nothing_there_waits_for_the_server() -> None:
    async with _connection() as (connection, peer), trio.open_nursery() as nursery:
        got: list[bytes] = []

        async def read() -> None:
            got.append(await connection.receive())

        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        peer.send(b"late")
    assert got == [b"late"]


async def test_a_cancelled_task_sends_nothing_upstream() -> None:
    async with _connection() as (connection, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await connection.send(b"POST / HTTP/1.1\r\n\r\n")
        assert scope.cancelled_caught
        with pytest.raises(BlockingIOError):
            peer.recv(100)  # the request never left
        await connection.send(b"sent")
        assert peer.recv(100) == b"sent"


async def test_a_client_that_writes_without_pause_does_not_starve_the_relay() -> None:
    read_fd, write_fd = os.pipe()
    count = [0]
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_others_run, count)
            await trio.lowlevel.checkpoint()  # it runs (and never blocks)
            before = count[0]
            lines = client_lines(1 << 20, read_fd)
            for _ in range(2 * QUICK_READS):
                os.write(write_fd, b"{}\n")
                assert await lines.__anext__() == b"{}"
            assert count[0] > before  # a checkpoint every QUICK_READS reads let it run
            await lines.aclose()
            nursery.cancel_scope.cancel()
    finally:
        os.close(read_fd)
        os.close(write_fd)


async def test_a_small_line_the_pipe_takes_in_part_is_finished_before_the_next() -> None:
    read_fd, write_fd = os.pipe()
    writer = StdoutWriter(write_fd)
    first = b'{"id":1,"result":"' + b"a" * (stdio.JOIN_BELOW - 100) + b'"}'
    second = b'{"id":2,"result":{}}'
    try:
        # Fill the pipe to a few bytes short, so the first line goes in part.
        filler = 0
        while True:
            try:
                filler += os.write(write_fd, b" " * 4096)
            except BlockingIOError:
                break
        drained = os.read(read_fd, 3 * 4096)  # room for part of the line only
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.write_line, first)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(writer.write_line, second)  # waits behind the first
            await trio.testing.wait_all_tasks_blocked()
            data = await trio.to_thread.run_sync(
                _read_exactly, read_fd, filler - len(drained) + len(first) + len(second) + 2
            )
        lines = data.lstrip(b" ").split(b"\n")
        assert lines == [first, second, b""]
    finally:
        await writer.aclose()
        os.close(read_fd)
        os.close(write_fd)


def _read_exactly(fd: int, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    return bytes(data)
