"""The server's rate-limit headers, read in one place: every number is bounded before use.

A server (or a proxy in front of it) can send anything: a Retry-After of 10^12 seconds, an HTTP
date in year 9999, an X-RateLimit-Reset in milliseconds. Trusted as sent, one such header would
hold every later request back for good. Here each is read, bounded and capped once, for the local
limiter, the Redis limiter and the retry stage alike. The jitter added to a wait the server asked
for (the 429 gate's, the retry stage's) is drawn here too; its tunables are in `_constants`.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Iterable, Mapping
from typing import Final

from ._constants import (
    DEFAULT_GATE_JITTER,
    GATE_JITTER_FLOOR,
    GATE_JITTER_FRACTION,
    MAX_SERVER_WAIT,
    RETRY_AFTER_HEADER,
)
from ._log import logger

__all__ = [
    "MAX_COUNT",
    "gate_jitter",
    "hold_cap",
    "parse_count",
    "parse_reset",
    "parse_retry_after",
    "read_retry_after",
]

# X-RateLimit-Limit / -Remaining above this are read as this: no window is that large, and an
# int from a header must stay an ordinary machine-sized number.
MAX_COUNT: Final = 1_000_000_000
# A Reset this far beyond a day is still tried as milliseconds: Unix milliseconds are 1000 times
# larger than Unix seconds.
_MS_PER_S: Final = 1000.0


def parse_retry_after(
    value: str | None, *, now: float | None = None, cap: float = MAX_SERVER_WAIT
) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP-date), at most `cap`."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or seconds < 0:
            return None
        return min(seconds, cap)  # "inf" or 1e308 ask for longer than any window: the cap
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    try:
        stamp = when.timestamp()
    except (OverflowError, OSError, ValueError):
        return cap
    return min(max(0.0, stamp - current), cap)


def read_retry_after(headers: Mapping[str, str], *, cap: float = MAX_SERVER_WAIT) -> float | None:
    """The response's Retry-After in seconds, at most `cap`; None without a readable one."""
    return parse_retry_after(headers.get(RETRY_AFTER_HEADER), cap=cap)


def parse_count(value: str | None) -> int | None:
    """X-RateLimit-Limit or -Remaining as an int in [0, MAX_COUNT]; None if unreadable."""
    if value is None:
        return None
    try:
        count = int(value)
    except ValueError:
        try:
            number = float(value)  # "12.0" and the like
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        count = int(number)
    else:
        if 0 <= count <= MAX_COUNT:  # what every response sends: no min/max calls
            return count
    return min(max(count, 0), MAX_COUNT)


def parse_reset(
    value: str | None, *, now: float | None = None, horizon: float = MAX_SERVER_WAIT
) -> float | None:
    """X-RateLimit-Reset as Unix seconds, or None.

    A value more than `horizon` ahead is read as Unix milliseconds when that lands within
    `horizon` of now, and is dropped otherwise. A past value is kept: the window has reset.
    """
    if value is None:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    if not math.isfinite(reset):
        return None
    current = time.time() if now is None else now
    if reset <= current + horizon:
        return reset
    reset /= _MS_PER_S
    return reset if abs(reset - current) <= horizon else None


def gate_jitter(wait: float, limit: float = DEFAULT_GATE_JITTER) -> float:
    """Random seconds to add to `wait`, so callers told the same wait do not all return at once."""
    return random.uniform(0, min(limit, GATE_JITTER_FRACTION * wait + GATE_JITTER_FLOOR))


def hold_cap(window_seconds: Iterable[float]) -> float:
    """The longest a server hint may hold requests back: a day, or the longest window if longer."""
    return max([MAX_SERVER_WAIT, *window_seconds])


class ResetReader:
    """`parse_reset` for one limiter: the first value it cannot read is logged, once."""

    __slots__ = ("_horizon", "_warned", "_who")

    def __init__(self, horizon: float, who: str) -> None:
        self._horizon = horizon
        self._who = who
        self._warned = False

    def __call__(self, text: str | None) -> float | None:
        """The reset in Unix seconds, or None (logged at WARNING the first time)."""
        reset = parse_reset(text, horizon=self._horizon)
        if reset is None and text and not self._warned:
            self._warned = True
            logger.warning(
                "%s: ignoring X-RateLimit-Reset %r: not a Unix time (in seconds or "
                "milliseconds) within %g s",
                self._who,
                text[:40],
                self._horizon,
            )
        return reset
