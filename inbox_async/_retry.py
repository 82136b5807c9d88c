"""The retry stage, bound in front of the transport: what is retried, how long to wait, when to
give up (on tenacity). An error status becomes its `APIStatusError` here (`_decode.status_error`),
so that the decision sees it.

- 429 is always retried, waiting what `Retry-After` asks; a wait above the request's `max_wait`
  (the client's `max_rate_limit_wait`) is not waited out but raised at once as `RateLimitError`.
- 408, 5xx, timeouts and dropped connections are retried only for calls that are safe to repeat;
  a connection that was refused (the request provably never left) is retried for every call.
- Everything else (other 4xx, a body that does not decode, cancellation) is never retried.

The first attempt is made directly: a tenacity `AsyncRetrying` costs about half a raw request of
CPU even when nothing fails, so the policy is only built once an attempt has failed retryably.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import tenacity
from tenacity.wait import wait_base

from ._constants import RETRY_JITTER, RETRY_MAX_DELAY
from ._decode import status_error
from ._exceptions import (
    CLIENT_RATE_LIMITED,
    APIConnectionError,
    APIStatusError,
    InboxError,
    RateLimitError,
)
from ._headers import gate_jitter, read_retry_after
from ._log import logger
from ._types import Handler, Request, Response

__all__ = ["RetryPolicy", "is_retryable", "server_wait_hint"]

Sleep = Callable[[float], Awaitable[None]]

_RETRYABLE_STATUSES: Final = frozenset({408, 500, 502, 503, 504})


def server_wait_hint(exc: BaseException) -> float | None:
    """Seconds the server asked to wait before the next attempt, if it said."""
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if isinstance(exc, APIStatusError):
        return read_retry_after(exc.headers)
    return None


def is_retryable(request: Request, exc: BaseException) -> bool:
    """Whether another attempt may fix `exc` and is safe for this request."""
    if not isinstance(exc, InboxError):
        return False
    if isinstance(exc, APIStatusError):
        if exc.code == CLIENT_RATE_LIMITED:
            # The limiter already waited as long as this call allows; waiting again won't help.
            return False
        hint = server_wait_hint(exc)
        if hint is not None and hint > request.max_wait:
            return False
        if exc.status_code == 429:
            return True
        return request.retry_safe and (
            exc.status_code in _RETRYABLE_STATUSES or exc.status_code >= 500
        )
    if isinstance(exc, APIConnectionError):
        return exc.retryable and (request.retry_safe or not exc.request_sent)
    return False


class wait_server_hint(wait_base):
    """Wait what the server asked for (Retry-After), with jitter; otherwise the fallback."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        hint = server_wait_hint(exc) if exc is not None else None
        if hint is None:
            return self.fallback(retry_state)
        # Callers that were told the same Retry-After should not all come back at once.
        return hint + gate_jitter(hint)


class RetryPolicy:
    """How calls are retried; shared by a client and the clients `with_options` derives."""

    __slots__ = ("_retrying",)

    def __init__(self, *, sleep: Sleep | None = None) -> None:
        self._retrying = tenacity.AsyncRetrying(
            wait=wait_server_hint(
                tenacity.wait_exponential_jitter(max=RETRY_MAX_DELAY, jitter=RETRY_JITTER)
            ),
            before_sleep=_log_retry,
            reraise=True,
            sleep=sleep or asyncio.sleep,
        )

    def bind(self, attempt: Handler) -> Handler:
        """The retry stage in front of `attempt` (the transport's send): a client's `send`."""
        # A bound method, called directly by the client: no coroutine layer of its own.
        return _RetryStage(self._retrying, attempt).send


class _RetryStage:
    """Direct first attempt, then tenacity for the retries; error statuses raised here."""

    __slots__ = ("_attempt", "_retrying")

    def __init__(self, retrying: tenacity.AsyncRetrying, attempt: Handler) -> None:
        self._retrying = retrying
        self._attempt = attempt

    def __repr__(self) -> str:
        return "<retry stage>"

    async def send(self, request: Request) -> Response:
        """Send `request`, retrying what `is_retryable` allows; raises for an error status."""
        try:
            response = await self._attempt(request)
            if response.status >= 300:
                raise status_error(response)
            return response
        except InboxError as exc:
            if request.max_retries == 0 or not is_retryable(request, exc):
                raise
            first_failure = exc
        return await self._retry(request, first_failure)

    async def _retry(self, request: Request, failure: InboxError) -> Response:
        retrying = self._retrying.copy(
            stop=tenacity.stop_after_attempt(request.max_retries + 1),
            retry=tenacity.retry_if_exception(lambda exc: is_retryable(request, exc)),
        )
        pending: list[InboxError] = [failure]
        send_attempt = self._attempt

        async def attempt() -> Response:
            if pending:
                # Replays the direct first attempt's failure, so tenacity counts it and waits.
                raise pending.pop()
            request.attempt += 1
            response = await send_attempt(request)
            if response.status >= 300:
                raise status_error(response)
            return response

        try:
            return await retrying(attempt)
        except InboxError as exc:
            _drop_foreign_context(exc)
            raise


def _drop_foreign_context(exc: BaseException) -> None:
    """Unlink whatever the HTTP library left as `__context__` along the error's chain.

    On Python 3.10 an aiohttp error thrown into a coroutine can still count as being handled
    when tenacity raises the last attempt's error, and becomes its `__context__`, with the
    request headers it holds (Authorization included). The SDK chains only its own errors.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if link.__context__ is not None and not isinstance(link.__context__, InboxError):
            link.__context__ = None
        link = link.__cause__ or link.__context__


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    delay = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    logger.info(
        "retrying in %.2f s after attempt %d failed: %s",
        delay,
        retry_state.attempt_number,
        exc,
    )
