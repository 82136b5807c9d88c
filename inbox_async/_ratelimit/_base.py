"""What the transport needs of a rate limiter: a slot for each attempt, given back after it.

The transport takes the slot right before an attempt and gives it back with the response's
rate-limit headers (and any 429) before the retry stage sees them, so every attempt, retries
included, holds one while it is on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, cast

from .._types import Priority
from ._local import RateLimitSnapshot

__all__ = ["Limiter", "nowait_limiter"]


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
