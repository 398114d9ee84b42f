"""When to ask again: exponential backoff with jitter, the server's ``Retry-After`` (RFC 9110
§10.2.3, both delta-seconds and HTTP-date), a ceiling on any single wait, and an overall deadline."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when absent or unreadable.

    ``"3"`` is three seconds; ``"Wed, 21 Oct 2026 07:28:00 GMT"`` is the time until then (zero if
    it has passed). Anything else (negative, fractional, garbage) is ignored, as RFC 9110 asks."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Backoff:
    """Delays of ``initial * multiplier**attempt``, never above ``max_interval``, with jitter.

    Without a hint the delay is drawn from ``[delay * (1 - jitter), delay]`` ("equal jitter"), so
    many clients started together spread out. With a server hint the hint wins (it knows how long
    the work takes), capped at ``max_interval`` and spread by up to ``hint_jitter`` on the late side.
    """

    initial: float = 0.5
    multiplier: float = 2.0
    max_interval: float = 30.0  # the API's longest Retry-After; a ceiling only against nonsense hints
    jitter: float = 0.5
    hint_jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.max_interval <= 0:
            raise ValueError("initial and max_interval must be positive")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter <= 1 or self.hint_jitter < 0:
            raise ValueError("jitter must be within [0, 1] and hint_jitter not negative")

    def delay(self, attempt: int, hint: float | None = None, *, rand: Callable[[], float] = random.random) -> float:
        if hint is not None:
            return min(self.max_interval, hint * (1 + self.hint_jitter * rand()))
        base = min(self.max_interval, self.initial * self.multiplier ** max(0, attempt))
        return base * (1 - self.jitter * rand())


class Deadline:
    """An overall timeout on the monotonic clock (None: wait for ever)."""

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self._end is not None and self._clock() >= self._end

    def clamp(self, delay: float) -> float:
        """``delay``, but never past the deadline (so the last look happens at the deadline)."""
        remaining = self.remaining()
        return delay if remaining is None else min(delay, remaining)
