"""Sliding-window rate limiting with several windows enforced at once."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RateDecision", "SlidingWindowLimiter", "check_limits"]


def check_limits(limits: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """Validate ``(requests, seconds)`` pairs and return them as a list."""
    checked: list[tuple[int, float]] = []
    for pair in limits:
        count, seconds = pair
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"rate limit count must be an int >= 1, got {count!r}")
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(f"rate limit window must be a positive number, got {seconds!r}")
        checked.append((count, float(seconds)))
    if not checked:
        raise ValueError("rate_limits must hold at least one (count, seconds) pair")
    return checked


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The limiter's verdict on one request and the values for its headers."""

    allowed: bool
    limit: int
    remaining: int
    # Seconds from now until the tightest window frees a slot.
    reset_after: float
    # Seconds from now until every full window has a free slot (0 when allowed).
    retry_after: float


class _Window:
    """One sliding window: the times of the accepted requests still inside it."""

    __slots__ = ("limit", "log", "seconds")

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.log: deque[float] = deque()

    def trim(self, now: float) -> None:
        """Forget the requests that have slid out of the window."""
        log = self.log
        horizon = now - self.seconds
        while log and log[0] <= horizon:
            log.popleft()


class SlidingWindowLimiter:
    """Counts accepted requests in every window; a rejected request uses no quota."""

    __slots__ = ("_windows",)

    def __init__(self, limits: Sequence[tuple[int, float]]) -> None:
        self._windows = [_Window(count, seconds) for count, seconds in check_limits(limits)]

    def acquire(self, now: float) -> RateDecision:
        """Count a request arriving at monotonic time ``now`` if every window has room."""
        windows = self._windows
        allowed = True
        retry_after = 0.0
        for window in windows:
            window.trim(now)
            if len(window.log) >= window.limit:
                allowed = False
                retry_after = max(retry_after, window.log[0] + window.seconds - now)
        if allowed:
            for window in windows:
                window.log.append(now)
        return self._decision(now, allowed, retry_after)

    def peek(self, now: float) -> RateDecision:
        """Report the current state without counting a request."""
        for window in self._windows:
            window.trim(now)
        return self._decision(now, True, 0.0)

    def _decision(self, now: float, allowed: bool, retry_after: float) -> RateDecision:
        """Build the header values from the window with the fewest requests left."""
        tightest = min(self._windows, key=lambda w: (w.limit - len(w.log), w.seconds))
        log = tightest.log
        reset_after = log[0] + tightest.seconds - now if log else 0.0
        return RateDecision(
            allowed=allowed,
            limit=tightest.limit,
            remaining=tightest.limit - len(log),
            reset_after=reset_after,
            retry_after=retry_after,
        )
