"""InboxClient: owns or borrows the session, builds the pipeline once, hosts the resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec
from yarl import URL

from ._config import ClientConfig, check_max_retries, check_timeout
from ._constants import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_TIMEOUT,
)
from ._decode import decode
from ._pipeline import compose
from ._pipeline.auth import BearerAuth
from ._pipeline.retry import RetryPolicy
from ._transport import Transport
from ._types import JSON_CONTENT_TYPE, Params, Request
from .resources.import_jobs import ImportJobs
from .resources.leads import Leads
from .resources.prospects import Prospects

__all__ = ["InboxClient"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_JSON_HEADERS = {"Content-Type": JSON_CONTENT_TYPE}


class InboxClient:
    """An asyncio client for the Inbox API.

    One client is meant to be shared: create it once (per event loop) and use it from as many
    tasks as you like. Close it with `async with` or `await client.aclose()`.

        async with InboxClient() as client:  # token from INBOX_API_TOKEN
            lead = await client.leads.update("l44e15irdq4db30i77cgphhx", "44196397",
                                             {"custom_q5cktl47a6pqa74eu06fz89v": "Acme"})
    """

    leads: Leads
    """Leads of a list: update custom columns, add and remove."""
    import_jobs: ImportJobs
    """Import jobs of a list: list, create from CSV, cancel."""
    prospects: Prospects
    """Prospects: look up, get, update the team's context."""

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | URL | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        default_headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """Check every option now, so that a mistake shows before the first request.

        `token` defaults to $INBOX_API_TOKEN and `base_url` to $INBOX_API_BASE_URL, then to
        https://inboxapp.com/api/v1. A `session` you pass is borrowed: it is used but never
        closed. `sleep` replaces `asyncio.sleep` between retries (for tests).
        """
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        self._config = config = ClientConfig.build(
            token=token,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
            max_connections=max_connections,
            allow_insecure_http=allow_insecure_http,
            default_headers=default_headers,
        )
        self._transport = Transport(
            session=session,
            max_connections=config.max_connections,
            default_headers=dict(config.default_headers),
        )
        self._retry = RetryPolicy(max_retry_after=config.max_retry_after, sleep=sleep)
        self._send = compose([BearerAuth(config.token), self._retry], self._transport.send)
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self.leads = Leads(self)
        self.import_jobs = ImportJobs(self)
        self.prospects = Prospects(self)

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._config.base_url

    @property
    def closed(self) -> bool:
        """Whether the client has been closed."""
        return self._transport.closed

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<InboxClient base_url={self._config.base_url!r} {state}>"

    async def __aenter__(self) -> InboxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if the client created it; safe to call more than once."""
        await self._transport.aclose()

    async def request(
        self,
        method: str,
        path: str,
        cast: type[T],
        *,
        json: Any = None,
        params: Params | None = None,
        retry_safe: bool,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> T:
        """Send one API call through the pipeline and decode its body as `cast`.

        `path` is below the base URL with every parameter already percent-encoded (the resource
        methods do that); `retry_safe` says whether repeating the call is harmless.
        """
        body = None if json is None else _encoder.encode(json)
        request = Request(
            method=method,
            path=path,
            url=URL(self._config.base_url + path, encoded=True),
            body=body,
            params=params,
            retry_safe=retry_safe,
            timeout=self._timeout if timeout is None else _timeout(timeout),
            max_retries=(
                self._config.max_retries if max_retries is None else check_max_retries(max_retries)
            ),
            headers=dict(_JSON_HEADERS) if body is not None else {},
        )
        response = await self._send(request)
        return decode(response, cast)


def _timeout(value: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=check_timeout(value))
