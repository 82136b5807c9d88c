"""What every resource shares: the client that sends its calls, and the raw-response mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .._decode import decode
from .._response import RawResponse
from .._types import Params, Priority

if TYPE_CHECKING:
    from .._client import InboxClient

T = TypeVar("T")


class Resource:
    """A group of endpoints hanging off an InboxClient."""

    __slots__ = ("_client", "_raw", "_raw_view")

    def __init__(self, client: InboxClient, *, raw: bool = False) -> None:
        self._client = client
        # In raw mode (the resource behind `with_raw_response`) calls return RawResponse.
        self._raw = raw
        self._raw_view: Any = None

    async def _request(
        self,
        method: str,
        path: str,
        cast: type[T],
        *,
        json: Any = None,
        params: Params | None = None,
        retry_safe: bool,
        timeout: float | None,
        max_retries: int | None,
        max_rate_limit_wait: float | None,
        priority: Priority,
    ) -> T:
        """`client.request`, or its raw response in raw mode (typed by `to_raw`)."""
        client = self._client
        request = client._prepare(
            method,
            path,
            json,
            params,
            retry_safe,
            timeout,
            max_retries,
            max_rate_limit_wait,
            priority,
        )
        if self._raw:
            request.timed = True
            return RawResponse(await client._send(request), request, cast)  # type: ignore[return-value]
        return decode(await client._send(request), cast)


class RawView:
    """A resource's `with_raw_response`: the same methods, returning `RawResponse`."""

    __slots__ = ()

    # Methods that make many requests have no one raw response: say so, instead of the bare
    # AttributeError. Only at run time: a type checker is to flag them as missing.
    _many_requests: ClassVar[Mapping[str, str]] = {}

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            hint = self._many_requests.get(name)
            if hint is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            raise AttributeError(
                f"with_raw_response.{name}() is not offered: {hint}; a raw response is one "
                "HTTP response"
            )
