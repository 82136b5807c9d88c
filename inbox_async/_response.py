"""Raw responses: what `with_raw_response` methods return instead of the model."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, cast

from multidict import CIMultiDictProxy

from ._constants import REQUEST_ID_HEADER
from ._decode import decode
from ._types import Request, Response

__all__ = ["RawResponse", "to_raw"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

_UNPARSED: Any = object()


class RawResponse(Generic[T]):
    """One successful API response as received, with `parse()` for the usual model.

    As openai-python's `LegacyAPIResponse`: the status, headers (the rate-limit ones too) and
    timing of the call, and the model on demand. Errors still raise as they do without it.

        raw = await client.leads.with_raw_response.update(list_id, "44196397", {column: "Acme"})
        print(raw.request_id, raw.headers["X-RateLimit-Remaining"], raw.retries_taken)
        lead = raw.parse()
    """

    __slots__ = ("_cast", "_parsed", "_response", "method", "retries_taken", "url")

    method: str
    """The request's HTTP method."""
    url: str
    """The URL the request went to, query included."""
    retries_taken: int
    """Attempts made before the one that succeeded (0 when the first one did)."""

    def __init__(self, response: Response, request: Request, cast: type[T]) -> None:
        """Wrap the final response of `request`, to be decoded as `cast`."""
        # Only what is shown of the request is kept: its headers hold the token.
        self._response = response
        self._cast = cast
        self._parsed: T = _UNPARSED
        self.method = request.method
        url = request.url
        self.url = str(url.extend_query(request.params) if request.params else url)
        self.retries_taken = request.attempt - 1

    @property
    def status_code(self) -> int:
        """The HTTP status of the response (2xx: other statuses raise)."""
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers, looked up case-insensitively."""
        return self._response.headers

    @property
    def request_id(self) -> str | None:
        """The server's `X-Request-Id`, for support tickets."""
        return self._response.headers.get(REQUEST_ID_HEADER)

    @property
    def elapsed(self) -> datetime.timedelta:
        """How long the final attempt took, from sending it to having read the whole body.

        As httpx's `Response.elapsed` (which openai-python returns): earlier attempts, the
        waits between them and waiting for the rate limit are not in it.
        """
        return datetime.timedelta(seconds=self._response.elapsed)

    @property
    def content(self) -> bytes:
        """The response body as received."""
        return self._response.body

    def parse(self) -> T:
        """The body decoded as the method's usual return value (decoded once, then kept).

        Raises `APIResponseValidationError` for a body that is not what the API documents.
        """
        if self._parsed is _UNPARSED:
            self._parsed = decode(self._response, self._cast)
        return self._parsed

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status_code}] {self.method} {self.url}>"


def to_raw(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[RawResponse[R]]]:
    """A raw-mode resource's bound method, typed as what it returns: a `RawResponse`."""
    # No wrapper: the resource was made in raw mode and already returns one; only the type
    # needs saying.
    return cast("Callable[P, Awaitable[RawResponse[R]]]", method)
