"""I/O that need not wait, done without a pass through trio's scheduler.

trio's streams pass a checkpoint on every call, whether the call waited or not: for the relay's
small messages that is most of its per-message cost (a scheduler pass, some 10 µs each here,
several per request). The relay's pipes and plain TCP connections read what is there and write
what fits at once instead, and go through trio only to wait. Two things a checkpoint gives are
kept: a task already cancelled does not write (``cancelled``), and every ``QUICK_READS`` reads
that did not wait pass a checkpoint, so a peer that never pauses cannot keep the rest of the
relay (or a cancellation) from running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

__all__ = ["QUICK_READS", "QuickCount", "cancelled", "read_when_ready"]

QUICK_READS = 16


def cancelled() -> bool:
    """Whether the current task is cancelled, or past its deadline: its next checkpoint would
    raise, so it must not start a write that does not pass one."""
    return trio.current_effective_deadline() <= trio.current_time()


class QuickCount:
    """Reads that did not wait, since the last checkpoint."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    async def one_more(self) -> None:
        self.count += 1
        if self.count >= QUICK_READS:
            self.count = 0
            await trio.lowlevel.checkpoint()


async def read_when_ready(
    read: Callable[[], bytes], wait: Callable[[], Awaitable[None]], count: QuickCount
) -> bytes:
    """``read()`` (non-blocking: BlockingIOError when there is nothing yet) at once; when there
    is nothing, ``wait()`` (a checkpoint: trio wakes the task when there is) and read again. One
    pass through the scheduler for a read that waited, none for one that did not (trio's
    streams make two and one). What ``read`` and ``wait`` raise otherwise is the caller's."""
    waited = False
    while True:
        try:
            data = read()
        except BlockingIOError:
            await wait()
            waited = True
            continue
        if waited:
            count.count = 0
        else:
            await count.one_more()
        return data
