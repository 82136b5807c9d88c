"""The request and response that travel through the pipeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from ._constants import REQUEST_ID_HEADER

__all__ = ["Handler", "Request", "Response", "Stage"]

Params = Sequence[tuple[str, str]]


@dataclass(slots=True, eq=False)
class Request:
    """One API call on its way to the server; stages may add headers and count attempts."""

    method: str
    path: str
    """Path below the base URL with every parameter already percent-encoded."""
    url: URL
    body: bytes | None
    params: Params | None
    retry_safe: bool
    """Whether repeating the call after it may have reached the server is harmless."""
    timeout: aiohttp.ClientTimeout
    max_retries: int
    max_wait: float
    """Longest wait for the rate limit (Retry-After, local windows) before RateLimitError."""
    # Kept out of the repr: it carries the Authorization header, and tracebacks that show
    # locals (error trackers, rich, pytest -l) render every frame's `request` with repr().
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    attempt: int = 1


@dataclass(slots=True, eq=False)
class Response:
    """A fully read response: the connection is already released when this exists."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def request_id(self) -> str | None:
        """The server's `X-Request-Id`, for support tickets."""
        # Read on demand: only errors need it, and a header lookup per success adds up.
        return self.headers.get(REQUEST_ID_HEADER)


Handler = Callable[[Request], Awaitable[Response]]
"""Sends a request and returns its response: the transport, or the stages in front of it."""


class Stage(Protocol):
    """One step of the pipeline: gets the request and the next handler, returns the response."""

    def __call__(self, request: Request, next: Handler) -> Awaitable[Response]:
        """Handle `request`, calling `next` to pass it on."""
        ...


JSON_CONTENT_TYPE: Final = "application/json"
