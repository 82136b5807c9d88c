"""InboxClient, and the map of the send path: one `client.leads.update(...)` top to bottom.

    resources/leads.py   Leads.update            checks the arguments, builds the path and body
    _client.py           InboxClient.build_request   encodes the body, applies auth (_auth.py),
                                                 checks the call's options, counts the call
                         InboxClient.send        = the retry stage bound to the transport:
    _retry.py            _RetryStage.send        direct first attempt; an error status becomes
                                                 its exception (_decode.status_error); retries
                                                 with backoff only after a retryable failure
    _transport.py        Transport.send          one attempt: the client usable on this loop, a
                                                 rate-limit slot (_ratelimit/), the aiohttp I/O,
                                                 its errors mapped from one table
    _decode.py           decode                  bytes -> the model (models/), repaired if need be

`request()` is `build_request()`, `send()` and `decode()` in one call; resources call the three
themselves (a raw-response resource keeps the response instead of decoding it).

There is no general pipeline of stages (no `compose`, no `middlewares=`): auth is a header set
once per call, rate limiting has to sit in the frame that awaits the socket, and retry is the
one stage that wraps an attempt, so the client binds retry to the transport itself, once per
client. A public middleware API would be a promise to keep (its order, what a middleware may
change between attempts) for one stage; each layer would also cost a coroutine per call on the
hot path. Hooks the SDK does offer: `limiter=`, `on_throttle=`, `sleep=` and `session=`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar

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
from ._ratelimit import Limiter, RateLimiter, RateLimitSnapshot, ThrottleEvent
from ._retry import RetryPolicy
from ._transport import Transport, attempt_timeout
from ._types import JSON_CONTENT_TYPE, Handler, Params, Priority, Request
from ._validation import check_priority
from .resources.import_jobs import ImportJobs
from .resources.leads import Leads
from .resources.prospects import Prospects

__all__ = ["ClientStats", "InboxClient"]

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


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
    send: Handler
    """Send a request made by `build_request`, with retries; the `Response`, not decoded.

    Raises the call's `InboxError` (an `APIStatusError` for an error status) as `request()`
    does. Bound once per client: awaiting it adds no layer of its own to the call.
    """

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
        self.send = retry.bind(transport.send)
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
        InboxClient._assemble(derived, config, self._limiter, transport, self._retry)
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
        transport = self._transport
        return ClientStats(calls=self._calls - transport.refused, attempts=transport.attempts)

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
        """Make one API call and decode its body as `cast`: `build_request`, `send`, decode.

        `path` is below the base URL with every parameter already percent-encoded (the resource
        methods do that); `retry_safe` says whether repeating the call is harmless; `priority`
        says who waits first for the rate limit; `max_wait` is the call's
        `max_rate_limit_wait`.
        """
        request = self.build_request(
            method,
            path,
            json=json,
            params=params,
            retry_safe=retry_safe,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_wait,
            priority=priority,
        )
        return decode(await self.send(request), cast)

    def build_request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        retry_safe: bool,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        priority: Priority = "interactive",
    ) -> Request:
        """The authenticated request for one call, its options checked; `send` sends it.

        `path` starts with "/" and is below the base URL, every parameter in it already
        percent-encoded; `json` is encoded by msgspec (a Struct, a dict...); `params` are
        (name, value) pairs of str. Options left as None take the client's. Counts one call
        in `stats`. Sends nothing: `send` refuses a closed client or another event loop.

            request = client.build_request("GET", f"/prospects/{prospect_id}", retry_safe=True)
            response = await client.send(request)
        """
        if (
            type(method) is not str
            or method not in _METHODS
            or type(path) is not str
            or path[:1] != "/"
            or (retry_safe is not True and retry_safe is not False)
        ):
            _check_target(method, path, retry_safe)
        if json is None:
            body = None
            headers: dict[str, str] = {}
        else:
            try:
                body = _encoder.encode(json)
            except TypeError as exc:
                raise TypeError(f"json cannot be encoded: {exc}") from None
            except (ValueError, RecursionError, msgspec.EncodeError) as exc:
                raise ValueError(f"json cannot be encoded: {exc}") from None
            headers = {"Content-Type": JSON_CONTENT_TYPE}
        if params is not None:
            params = _check_params(params)
        config = self._config
        # Positional: the Struct builds faster than from keywords.
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
                if max_rate_limit_wait is None
                else check_timeout(max_rate_limit_wait, "max_rate_limit_wait")
            ),
            headers,
            1,
            priority if priority == "interactive" else check_priority("priority", priority),
        )
        self._auth(request)
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


def _check_target(method: object, path: object, retry_safe: object) -> None:
    """Raise the error for whichever of `build_request`'s first arguments is wrong, if one is."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, not {type(method).__name__}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {sorted(_METHODS)}, got {method[:20]!r}")
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/' (below the base URL), got {path[:40]!r}")
    if not isinstance(retry_safe, bool):
        raise TypeError(f"retry_safe must be a bool, not {type(retry_safe).__name__}")


def _check_params(params: object) -> list[tuple[str, str]]:
    """Query parameters as (name, value) pairs of str; a TypeError naming `params` otherwise."""
    if isinstance(params, (str, bytes, Mapping)):
        raise TypeError("params must be a sequence of (name, value) pairs, not a mapping or str")
    try:
        pairs = [(name, value) for name, value in params]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise TypeError("params must be a sequence of (name, value) pairs") from None
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("params: every name and value must be a str")
    return pairs
