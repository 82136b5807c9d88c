"""What every rate limiter shares: the `Limiter` protocol, the snapshot types, the checks.

The transport takes a slot right before an attempt and gives it back with the response's
rate-limit headers (and any 429) before the retry stage sees them, so every attempt, retries
included, holds one while it is on the wire. The local `RateLimiter` (`_local.py`) and
`RedisRateLimiter` (`_redis.py`) both build on this module and import nothing of each other; it
imports neither, so either limiter loads without the other (the Redis one needs its extra).

Shared here rather than copied into each limiter: the option checks, a window's background
limit, how long a 429 closes the gate, and the "waiting would take too long" error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from .._constants import RATE_LIMIT_RECHECK
from .._exceptions import CLIENT_RATE_LIMITED, RateLimitError
from .._headers import gate_jitter, read_retry_after
from .._types import Priority

__all__ = [
    "Limiter",
    "RateLimitSnapshot",
    "ThrottleEvent",
    "ThrottleReason",
    "WindowState",
    "background_limit",
    "check_gate_jitter",
    "check_limits",
    "check_probe_interval",
    "check_reserve",
    "gate_hold",
    "nowait_limiter",
    "too_long",
]

ThrottleReason = Literal["window", "server", "gate"]


@dataclass(frozen=True, slots=True)
class WindowState:
    """One local window as the limiter sees it now."""

    limit: int
    """Requests allowed per window."""
    seconds: float
    """Length of the sliding window."""
    in_use: int
    """Slots taken: in flight, or answered less than one window ago."""

    @property
    def remaining(self) -> int:
        """Requests that could be sent right now under this window."""
        return max(0, self.limit - self.in_use)


@dataclass(frozen=True, slots=True)
class RateLimitSnapshot:
    """Rate-limit state as data: local windows, the server's last word, and the 429 gate."""

    windows: tuple[WindowState, ...]
    """The local windows (empty when `rate_limits=None`)."""
    server_limit: int | None
    """`X-RateLimit-Limit` of the last response that had it."""
    server_remaining: int | None
    """`X-RateLimit-Remaining` of the last response that had it."""
    server_reset: float | None
    """`X-RateLimit-Reset` of the last response that had it (Unix seconds)."""
    gate_closed: bool
    """Whether a 429 has closed the gate for every caller."""
    gate_reopens_in: float
    """Seconds until the gate reopens (0 when open)."""
    in_flight: int
    """Requests sent and not yet answered."""
    waiting: int
    """Callers waiting for a slot."""
    throttled_seconds: float
    """Wall-clock seconds during which at least one caller was waiting, since creation."""
    reserve: float = 0.0
    """Fraction of every window (and of the server's Remaining) that background calls leave."""
    waiting_interactive: int = 0
    """Interactive callers waiting for a slot."""
    waiting_background: int = 0
    """Background callers waiting for a slot."""


@dataclass(frozen=True, slots=True)
class ThrottleEvent:
    """Passed to `on_throttle` when callers start waiting for the rate limit."""

    reason: ThrottleReason
    """What they wait for: a local "window", the "server" budget, or the 429 "gate"."""
    wait: float | None
    """Estimated seconds until the next slot, when known."""
    waiting: int
    """Callers waiting, this one included."""


class Limiter(Protocol):
    """What the transport needs of a limiter (the local `RateLimiter`, or `RedisRateLimiter`)."""

    async def acquire(
        self, *, max_wait: float, timeout: float | None = None, priority: Priority = "interactive"
    ) -> object:
        """Wait for a slot; raise RateLimitError if that would take longer than `max_wait`.

        Interactive callers are served before background ones; background ones leave the
        limiter's reserve untouched.

        Returns a ticket that is handed back to `release`.
        """
        ...

    async def release(
        self,
        ticket: object,
        *,
        sent: bool,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Give the slot back; `sent` says whether the request may have reached the server."""
        ...

    def snapshot(self) -> RateLimitSnapshot:
        """The limiter's state as data."""
        ...


class _NowaitLimiter(Protocol):
    """What a limiter may add: calls that answer at once (the local `RateLimiter` has them)."""

    def try_acquire(self, priority: Priority = "interactive") -> bool:
        """Take a slot if one is free now; False when the caller has to `acquire`."""
        ...

    def release_nowait(
        self,
        ticket: object,
        *,
        sent: bool,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`release`, done at once."""
        ...


def nowait_limiter(limiter: Limiter) -> _NowaitLimiter | None:
    """The limiter itself when it can answer at once (has try_acquire/release_nowait), else None."""
    if callable(getattr(limiter, "try_acquire", None)) and callable(
        getattr(limiter, "release_nowait", None)
    ):
        return cast("_NowaitLimiter", limiter)
    return None


# -- the options both limiters take ------------------------------------------------------------


def check_limits(
    limits: Iterable[tuple[int, float]] | None, name: str = "rate_limits"
) -> tuple[tuple[int, float], ...]:
    """Validate `(requests, seconds)` windows."""
    if limits is None:
        return ()
    if isinstance(limits, (str, bytes)) or not isinstance(limits, Iterable):
        raise TypeError(f"{name} must be a list of (requests, seconds) pairs or None")
    checked: list[tuple[int, float]] = []
    for item in limits:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{name} items must be (requests, seconds) pairs, got {item!r}")
        count, seconds = item
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{name}: requests must be an int >= 1, got {count!r}")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise ValueError(f"{name}: seconds must be a positive number, got {seconds!r}")
        checked.append((count, float(seconds)))
    return tuple(checked)


def check_reserve(value: object, name: str = "reserve") -> float:
    """Validate a reserve: a number in [0, 1), the fraction background calls leave."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), not {type(value).__name__}")
    if not 0 <= value < 1:  # NaN fails this too
        raise ValueError(f"{name} must be in [0, 1) (0 turns it off), got {value!r}")
    return float(value)


def check_probe_interval(value: float) -> float:
    """Validate a probe interval: seconds, positive and finite."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"probe_interval must be a positive number of seconds, got {value!r}")
    return float(value)


def check_gate_jitter(value: object) -> float:
    """Validate `gate_jitter`: the most seconds of jitter a 429's gate gets, a number >= 0."""
    # NaN would keep the gate from ever closing (no time compares later than NaN); inf is
    # fine: the jitter is capped by the wait it is added to (see `gate_jitter`). ValueError
    # for a non-number too, as the local limiter always raised.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"gate_jitter must be a number of seconds >= 0, got {value!r}")
    return float(value)


def background_limit(limit: int, reserve: float) -> int:
    """Slots in use up to which background calls may fill a window of `limit` requests."""
    # The epsilon keeps 300 * 0.9 (269.99999999999997) at 270.
    return max(1, math.floor(limit * (1.0 - reserve) + 1e-9))


# -- what a 429 does, and what a caller is told --------------------------------------------------


def gate_hold(headers: Mapping[str, str], jitter: float, cap: float) -> tuple[float, float]:
    """A 429's effect on the gate: (the wait the server asked for, how long the gate closes).

    The wait is the response's Retry-After (RATE_LIMIT_RECHECK without a readable one); the gate
    stays closed that long plus up to `jitter` seconds, and never longer than `cap`.
    """
    wait = read_retry_after(headers, cap=cap)
    if wait is None:
        wait = RATE_LIMIT_RECHECK
    return wait, min(wait + gate_jitter(wait, jitter), cap)


_WAITING_FOR: dict[str | None, str] = {
    "window": "a local rate-limit window",
    "server": "the server's budget",
    "gate": "a 429",
    None: "the shared rate limit",
}


def too_long(
    wait: float, max_wait: float, reason: ThrottleReason | None = None, *, cap: float = math.inf
) -> RateLimitError:
    """The RateLimitError for a caller whose wait (at most `cap`) exceeds its `max_wait`.

    `reason` names what it waits for (None: the limiter cannot tell); `retry_after` is the
    wait, or None when it is not a finite number.
    """
    wait = min(max(0.0, wait), cap)
    return RateLimitError(
        f"waiting for {_WAITING_FOR[reason]} would take {wait:.1f} s, "
        f"more than max_wait={max_wait:g} s",
        status_code=429,
        code=CLIENT_RATE_LIMITED,
        retry_after=wait if math.isfinite(wait) else None,
    )
