"""InboxClient: owns or borrows the session, builds the pipeline once, hosts the resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec
from yarl import URL

from ._auth import BearerAuth
from ._config import ClientConfig, check_max_retries, check_timeout
from ._constants import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RATE_LIMIT_WAIT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMITS,
    DEFAULT_RESERVE,
    DEFAULT_TIMEOUT,
)
from ._decode import decode
from ._pipeline import compose
from ._ratelimit._base import Limiter
from ._ratelimit._local import RateLimiter, RateLimitSnapshot, ThrottleEvent
from ._retry import RetryPolicy
from ._transport import Transport, attempt_timeout
from ._types import JSON_CONTENT_TYPE, Params, Priority, Request
from ._validation import check_priority
from .resources.import_jobs import ImportJobs
from .resources.leads import Leads
from .resources.prospects import Prospects

__all__ = ["ClientStats", "InboxClient"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class InboxClient:
    """An asyncio client for the Inbox API.

    One client is meant to be shared: create it once (per event loop) and use it from as many
    tasks as you like. Close it with `async with` or `await client.aclose()`. Every resource
    method also takes `timeout`, `max_retries`, `max_rate_limit_wait` and `priority` for that
    call; `with_options` makes a client with other defaults on the same connection pool, and
    `<resource>.with_raw_response.<method>` returns the `RawResponse` (status, headers, timing).

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
        max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        default_headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        rate_limits: Sequence[tuple[int, float]] | None = DEFAULT_RATE_LIMITS,
        limiter: Limiter | None = None,
        on_throttle: Callable[[ThrottleEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        trust_env: bool = True,
        reserve: float = DEFAULT_RESERVE,
    ) -> None:
        """Check every option now, so that a mistake shows before the first request.

        `token` defaults to $INBOX_API_TOKEN and `base_url` to $INBOX_API_BASE_URL, then to
        https://inboxapp.com/api/v1. A `session` you pass is borrowed: it is used but never
        closed, and keeps its own proxy settings (aiohttp's `trust_env`). `rate_limits` are
        the team's `(requests, seconds)` windows, paced locally (None turns local pacing off;
        the server's headers and 429s are still honoured); pass one `limiter` to several
        clients instead to share a budget. `reserve` is the fraction of every window that
        background calls (bulk jobs) leave to interactive ones (0: none). `sleep` replaces
        `asyncio.sleep` between retries (for tests). With `trust_env` (the default) the
        client's own session goes through the proxy that HTTPS_PROXY / HTTP_PROXY / ALL_PROXY
        set for the base URL, unless NO_PROXY lists its host, as httpx and requests do;
        `trust_env=False` ignores them.
        """
        if not isinstance(trust_env, bool):
            raise TypeError(f"trust_env must be a bool, not {type(trust_env).__name__}")
        if session is not None and not trust_env:
            # Before the config: its error would say nothing of the session.
            raise ValueError(
                "trust_env=False applies to the client's own session only; a session you pass "
                "keeps its own setting (aiohttp's default is trust_env=False)"
            )
        try:
            config = ClientConfig.build(
                token=token,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                max_rate_limit_wait=max_rate_limit_wait,
                max_connections=max_connections,
                allow_insecure_http=allow_insecure_http,
                default_headers=default_headers,
                # A borrowed session decides about proxies itself.
                trust_env=trust_env if session is None else False,
            )
        except (TypeError, ValueError) as exc:
            # Tracebacks with locals (error trackers, rich) render this frame: the token and
            # headers leave it, and the validation's own frames, which hold them too, are cut.
            token = default_headers = None
            raise exc.with_traceback(None)  # noqa: B904 - the error is re-raised, not wrapped
        # From here on the config holds both, out of its repr.
        token = default_headers = None
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session must be an aiohttp.ClientSession, not {type(session).__name__}"
            )
        if limiter is None:
            limiter = RateLimiter(rate_limits, on_throttle=on_throttle, reserve=reserve)
        elif (
            rate_limits is not DEFAULT_RATE_LIMITS
            or on_throttle is not None
            or reserve != DEFAULT_RESERVE
        ):
            raise ValueError(
                "pass either limiter=... or rate_limits=/on_throttle=/reserve=, not both: "
                "a shared limiter carries its own windows, hook and reserve"
            )
        transport = Transport(
            session=session,
            max_connections=config.max_connections,
            default_headers=dict(config.default_headers),
            limiter=limiter,
            proxy=config.proxy,
        )
        self._assemble(config, limiter, transport, RetryPolicy(sleep=sleep))

    def _assemble(
        self, config: ClientConfig, limiter: Limiter, transport: Transport, retry: RetryPolicy
    ) -> None:
        """Everything but the checks: shared by the constructor and `with_options`."""
        self._config = config
        self._limiter = limiter
        self._transport = transport
        self._retry = retry
        self._auth = BearerAuth(config.token)
        self._send = compose([retry], transport.send)
        self._timeout = attempt_timeout(config.timeout)
        self._base_url = URL(config.base_url)
        self._base_path = self._base_url.raw_path.rstrip("/")
        self._calls = 0
        self.leads = Leads(self)
        self.import_jobs = ImportJobs(self)
        self.prospects = Prospects(self)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> InboxClient:
        """A client with other defaults on this one's connection pool and rate limiter.

        Options left out (None) keep this client's; `default_headers` are added to this
        client's (a header of the same name is replaced). The pool belongs to the client it
        was first made for: closing a derived client only stops that one, and closing the
        original closes the pool under every client derived from it. Counters (`stats`) are
        the derived client's own.

            patient = client.with_options(timeout=120, max_retries=8)
            job = await patient.import_jobs.create_csv(list_id, text, file_name="leads.csv")
        """
        try:
            config = self._config.derive(
                timeout=timeout,
                max_retries=max_retries,
                max_rate_limit_wait=max_rate_limit_wait,
                default_headers=default_headers,
            )
        except (TypeError, ValueError) as exc:
            # As in the constructor: header values may be secrets; keep them out of the frame.
            default_headers = None
            raise exc.with_traceback(None)  # noqa: B904 - the error is re-raised, not wrapped
        default_headers = None
        transport = self._transport.derive(dict(config.default_headers))
        derived = InboxClient.__new__(InboxClient)
        derived._assemble(config, self._limiter, transport, self._retry)
        return derived

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._config.base_url

    @property
    def max_connections(self) -> int | None:
        """The size of the client's own connection pool; None when it borrows a session."""
        return self._config.max_connections if self._transport.owns_session else None

    @property
    def stats(self) -> ClientStats:
        """Counters since the client was made: calls, and HTTP attempts including retries."""
        return ClientStats(calls=self._calls, attempts=self._transport.attempts)

    @property
    def limiter(self) -> Limiter:
        """The rate limiter every request of this client goes through."""
        return self._limiter

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        """The limiter's state now (windows, the server's last headers, the 429 gate)."""
        return self._limiter.snapshot()

    @property
    def closed(self) -> bool:
        """Whether the client has been closed."""
        return self._transport.closed

    def __repr__(self) -> str:
        # A constructor that raised leaves a half-built client in its frame's locals, which
        # tracebacks with locals render: this repr must work on one.
        config = getattr(self, "_config", None)
        transport = getattr(self, "_transport", None)
        if config is None or transport is None:
            return "<InboxClient (not constructed)>"
        state = "closed" if transport.closed else "open"
        return f"<InboxClient base_url={config.base_url!r} {state}>"

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
        max_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> T:
        """Send one API call through the pipeline and decode its body as `cast`.

        `path` is below the base URL with every parameter already percent-encoded (the resource
        methods do that); `retry_safe` says whether repeating the call is harmless; `priority`
        says who waits first for the rate limit.
        """
        request = self._prepare(
            method, path, json, params, retry_safe, timeout, max_retries, max_wait, priority
        )
        return decode(await self._send(request), cast)

    def _prepare(
        self,
        method: str,
        path: str,
        json: Any,
        params: Params | None,
        retry_safe: bool,
        timeout: float | None,
        max_retries: int | None,
        max_wait: float | None,
        priority: Priority = "interactive",
    ) -> Request:
        """The request for one call, authenticated; `request` sends it (and so may a resource).

        Positional, and not a coroutine: a resource method on the hot path (`leads.update`)
        builds here and awaits the pipeline itself, one coroutine fewer per call.
        """
        body = None if json is None else _encoder.encode(json)
        config = self._config
        # Positional: the slots dataclass builds ~2x faster than from keywords.
        request = Request(
            method,
            path,
            # From the parsed base URL: cheaper than parsing the whole URL string again.
            self._base_url.with_path(self._base_path + path, encoded=True),
            body,
            params,
            retry_safe,
            self._timeout if timeout is None else _timeout(timeout),
            config.max_retries if max_retries is None else check_max_retries(max_retries),
            (
                config.max_rate_limit_wait
                if max_wait is None
                else check_timeout(max_wait, "max_rate_limit_wait")
            ),
            {"Content-Type": JSON_CONTENT_TYPE} if body is not None else {},
            1,
            priority if priority == "interactive" else check_priority("priority", priority),
        )
        self._auth(request)
        self._transport.check_usable()
        self._calls += 1
        return request


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Counters of one client."""

    calls: int
    """API calls made (a call is one method call, whatever its retries)."""
    attempts: int
    """HTTP attempts sent, retries included."""

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each call."""
        return max(0, self.attempts - self.calls)


def _timeout(value: float) -> aiohttp.ClientTimeout:
    return attempt_timeout(check_timeout(value))
