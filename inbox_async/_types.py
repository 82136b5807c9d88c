"""The request and response that travel the send path, and the handler type between stages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal

import aiohttp
import msgspec
from multidict import CIMultiDictProxy
from yarl import URL

from ._constants import REQUEST_ID_HEADER

__all__ = ["Handler", "Params", "Priority", "Request", "Response"]

Params = Sequence[tuple[str, str]]

Priority = Literal["interactive", "background"]
"""Who waits first for a rate-limit slot: a person ("interactive"), then bulk work."""


class Request(msgspec.Struct, eq=False, gc=False):
    """One API call on its way to the server, built by `InboxClient.build_request`.

    The retry stage counts its attempts; the transport may add the headers of a borrowed
    session. Build one with `build_request` (which applies auth and checks the options) rather
    than by hand.
    """

    # A Struct rather than a dataclass: built in C, about twice as fast, once per call. Without
    # GC tracking: nothing it holds can refer back to it.

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
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    attempt: int = 1
    priority: Priority = "interactive"
    """Interactive callers are served first; background ones leave the limiter's reserve."""
    timed: bool = False
    """Whether the transport times each attempt into `Response.elapsed` (raw responses do)."""

    # `headers` is kept out of both reprs: it carries the Authorization header, and tracebacks
    # that show locals (error trackers, rich, pytest -l) render every frame's `request`.
    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"Request({fields})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """The fields rich shows: all but the headers."""
        return [(name, getattr(self, name)) for name in self.__struct_fields__ if name != "headers"]


class Response(msgspec.Struct, eq=False, gc=False):
    """A fully read response: the connection is already released when this exists."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    elapsed: float = 0.0
    """Seconds from sending to the whole body read; measured only for a timed request."""

    @property
    def request_id(self) -> str | None:
        """The server's `X-Request-Id`, for support tickets."""
        # Read on demand: only errors need it, and a header lookup per success adds up.
        return self.headers.get(REQUEST_ID_HEADER)


Handler = Callable[[Request], Awaitable[Response]]
"""Sends a request and returns its response: the transport, or the retry stage in front of it."""


JSON_CONTENT_TYPE: Final = "application/json"
