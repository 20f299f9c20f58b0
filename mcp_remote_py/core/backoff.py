"""When to try again: exponential backoff with full jitter, bounded, honouring the server's word.

Pure functions of their arguments (the random source is passed in), so tests need no clock.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass

__all__ = ["Backoff", "parse_retry_after"]

_RANDOM = random.Random()


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
        return max(floor, jittered)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if now is None:
        return None
    return max(0.0, when.timestamp() - now)
