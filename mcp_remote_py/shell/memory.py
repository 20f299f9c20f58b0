"""Hand memory back to the OS after a large message.

glibc's malloc keeps freed heap memory for reuse, and after a 5 MB message it raises its mmap
threshold, so the next large buffers come from that heap too. A relay that passed a few large
tool results would sit at 50 MiB or more for the rest of its life. ``malloc_trim(0)`` releases
the free pages; it runs once, a moment after a large message, when the last reference to it is
gone. Elsewhere (macOS, Windows, musl) this does nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import trio

__all__ = ["release_soon"]

# A large message's buffers are released by then (it is written, its event dropped).
DELAY = 0.5

_trim: Callable[[int], int] | None | bool = None  # None: not looked up yet; False: none here
_scheduled = False


def _lookup() -> Callable[[int], int] | bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        function = ctypes.CDLL(None).malloc_trim  # glibc only: musl has no malloc_trim
    except (OSError, AttributeError):
        return False
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    trim: Callable[[int], int] = function
    return trim


async def _release() -> None:
    global _trim, _scheduled
    try:
        await trio.sleep(DELAY)
        if _trim is None:
            _trim = _lookup()
        if callable(_trim):
            _trim(0)
    finally:
        _scheduled = False


def release_soon() -> None:
    """After a large message: give the free heap back to the OS in a moment (once, however many
    large messages come in between). Call from inside trio."""
    global _scheduled
    if _scheduled or _trim is False:
        return
    _scheduled = True
    trio.lowlevel.spawn_system_task(_release)
