"""What every resource shares: the client that sends its calls, and the raw-response mode.

A resource method checks its arguments, then calls the client's public `build_request` and
`send`, and decodes (or, in raw mode, wraps the response in a `RawResponse`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .._decode import decode
from .._response import RawResponse
from .._types import Params, Priority

if TYPE_CHECKING:
    from .._client import InboxClient

T = TypeVar("T")
R = TypeVar("R", bound="Resource")


class Resource:
    """A group of endpoints hanging off an InboxClient."""

    __slots__ = ("_client", "_raw", "_raw_view")

    def __init__(self, client: InboxClient, *, raw: bool = False) -> None:
        self._client = client
        # In raw mode (the resource behind `with_raw_response`) calls return RawResponse.
        self._raw = raw
        self._raw_view: Any = None

    def _raw_twin(self: R) -> R:
        """This resource in raw mode, on the same client: what `with_raw_response` wraps."""
        return type(self)(self._client, raw=True)

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
        request = client.build_request(
            method,
            path,
            json=json,
            params=params,
            retry_safe=retry_safe,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            priority=priority,
        )
        if self._raw:
            request.timed = True
            return RawResponse(await client.send(request), request, cast)  # type: ignore[return-value]
        return decode(await client.send(request), cast)


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
