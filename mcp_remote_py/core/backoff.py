"""When to try again: exponential backoff with full jitter, bounded, honouring the server's word.

Pure functions of their arguments (the random source is passed in), so tests need no clock.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass

__all__ = ["MAX_SERVER_DELAY", "Backoff", "parse_retry_after", "server_delay"]

_RANDOM = random.Random()
# The longest a server may make the relay wait (Retry-After, SSE retry): five minutes. A server
# asking for years (or infinity) would otherwise stop reconnection for good (DESIGN.md
# invariant 2: no wait is unbounded).
MAX_SERVER_DELAY = 300.0


def server_delay(seconds: float | None) -> float:
    """A server-supplied delay as the relay honours it: not negative, not NaN, at most
    MAX_SERVER_DELAY."""
    if seconds is None or not seconds > 0:
        return 0.0
    return min(seconds, MAX_SERVER_DELAY)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays ``initial * 2**attempt`` capped at ``maximum``, each drawn from [delay/2, delay]."""

    initial: float = 0.5
    maximum: float = 10.0

    def delay(self, attempt: int, rng: random.Random | None = None, floor: float = 0.0) -> float:
        """Seconds to wait before try number ``attempt + 1``; never below ``floor``.

        ``floor`` is what the server asked for (SSE ``retry:``, ``Retry-After``), which wins over
        our own schedule: 2025-11-25 §Transports says the client MUST respect ``retry``.
        """
        ceiling = min(self.maximum, self.initial * 2.0 ** min(attempt, 30))
        source = rng or _RANDOM
        jittered = ceiling / 2 + source.random() * ceiling / 2
        return max(server_delay(floor), jittered)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "³" is a digit to str.isdigit, not to float
        return server_delay(float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if now is None:
        return None
    try:
        return server_delay(when.timestamp() - now)
    except (OverflowError, ValueError, OSError):
        return None
