"""Rate-limit stage: waits for the limiter before each attempt and reports how it went.

It sits inside the retry stage, so every attempt, retries included, takes a slot; and it hands
the limiter each response's rate-limit headers (and any 429) before the retry stage sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol, cast

from .._exceptions import APIConnectionError, APIStatusError
from .._limiter import RateLimitSnapshot
from .._types import Handler, Request, Response

__all__ = ["Limiter", "RateLimitStage"]


class Limiter(Protocol):
    """What the stage needs of a limiter (the local `RateLimiter`, or `RedisRateLimiter`)."""

    async def acquire(self, *, max_wait: float, timeout: float | None = None) -> object:
        """Wait for a slot; raise RateLimitError if that would take longer than `max_wait`.

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

    def try_acquire(self) -> bool:
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


class RateLimitStage:
    """Takes a slot from the limiter for each attempt and returns it with what was learnt."""

    __slots__ = ("_limiter", "_nowait")

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter
        # A limiter that can answer at once (the local one) is asked without a coroutine when a
        # slot is free: two coroutines fewer per attempt on the hot path. Redis always awaits.
        self._nowait: _NowaitLimiter | None = (
            cast("_NowaitLimiter", limiter)
            if callable(getattr(limiter, "try_acquire", None))
            and callable(getattr(limiter, "release_nowait", None))
            else None
        )

    async def __call__(self, request: Request, next: Handler) -> Response:
        limiter = self._limiter
        nowait = self._nowait
        if nowait is not None and nowait.try_acquire():
            ticket: object = None
        else:
            ticket = await limiter.acquire(max_wait=request.max_wait, timeout=request.timeout.total)
        try:
            response = await next(request)
        except APIStatusError as exc:
            await limiter.release(ticket, sent=True, status=exc.status_code, headers=exc.headers)
            raise
        except APIConnectionError as exc:
            await limiter.release(ticket, sent=exc.request_sent)
            raise
        except (Exception, asyncio.CancelledError):
            # Cancelled mid-request: the request may have arrived, so the slot runs its window.
            await limiter.release(ticket, sent=True)
            raise
        if nowait is not None:
            nowait.release_nowait(
                ticket, sent=True, status=response.status, headers=response.headers
            )
        else:
            await limiter.release(
                ticket, sent=True, status=response.status, headers=response.headers
            )
        return response
