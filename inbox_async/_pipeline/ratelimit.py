"""Rate-limit stage: waits for the limiter before each attempt and reports how it went.

It sits inside the retry stage, so every attempt, retries included, takes a slot; and it hands
the limiter each response's rate-limit headers (and any 429) before the retry stage sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

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


class RateLimitStage:
    """Takes a slot from the limiter for each attempt and returns it with what was learnt."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter

    async def __call__(self, request: Request, next: Handler) -> Response:
        limiter = self._limiter
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
        await limiter.release(ticket, sent=True, status=response.status, headers=response.headers)
        return response
