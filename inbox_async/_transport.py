"""One attempt: a rate-limit slot, the aiohttp I/O, the library's errors turned into ours.

The only module that does aiohttp I/O: a request in, one fully read response out, whatever its
status (the retry stage turns an error status into `APIStatusError`, see `_decode`). It owns or
borrows the `aiohttp.ClientSession`; every aiohttp and asyncio failure becomes the SDK's own
`APIConnectionError` / `APITimeoutError` from one table (`_HTTP_LIBRARY_FAILURES`: timeout?
sent? retryable?), scrubbed of secrets, so that nothing of the HTTP library reaches the caller.
Each attempt holds a slot of the client's rate limiter while it is on the wire; a response's
Deprecation / Sunset header warns once per client.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import warnings
import weakref
from typing import Final, NamedTuple

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDictProxy

from ._config import proxy_secrets
from ._constants import (
    DEPRECATION_HEADER,
    MAX_RESPONSE_BYTES,
    REQUEST_ID_HEADER,
    SUNSET_HEADER,
    USER_AGENT,
)
from ._exceptions import (
    APIConnectionError,
    ApiDeprecationWarning,
    APIResponseValidationError,
    APITimeoutError,
    ClientClosedError,
    InboxError,
)
from ._log import caller_outside_package, logger
from ._ratelimit import Limiter, nowait_limiter
from ._types import Request, Response

__all__ = [
    "HTTPLibraryError",
    "HTTPLibraryOSError",
    "Transport",
    "attempt_timeout",
]

_ACCEPT_HEADERS: Final = {"Accept": "application/json", "User-Agent": USER_AGENT}
# Shorter header values are not redacted from error messages: "1" or "on" would mangle them,
# and are no secret.
_MIN_SECRET_LENGTH: Final = 4
# How much sooner than the attempt's whole timeout its connect part ends (see attempt_timeout):
# 50 ms, or a tenth of a short timeout. With 5 ms (or 1%), a loaded loop ran both deadlines in
# one iteration and the total one could win: a pool wait then looked like a request sent.
_CONNECT_MARGIN: Final = 0.05
# "scheme://user:password@" in a URL of a message (a proxy's, say).
_USERINFO_RE: Final = re.compile(r"(\w+://)[^/@\s]+@")


class _Failure(NamedTuple):
    """What one kind of HTTP library error says about the attempt it ended."""

    timeout: bool
    """An APITimeoutError rather than an APIConnectionError."""
    sent: bool
    """Whether the request may have reached the server (its slot then runs the window)."""
    retryable: bool = True
    """Whether another attempt may succeed at all."""
    counted: bool = True
    """Whether it counts in `attempts`."""


# Every aiohttp and asyncio error one attempt can raise, and what it means: the first type the
# error is an instance of wins, as with except clauses, so subclasses come before their bases.
_HTTP_LIBRARY_FAILURES: Final[tuple[tuple[type[BaseException], _Failure], ...]] = (
    # Another attempt meets the same certificate: final, whatever the operation.
    (aiohttp.ClientConnectorCertificateError, _Failure(False, sent=False, retryable=False)),
    # No connection in time (every pooled one busy, or connecting too slowly: see
    # attempt_timeout): the request never left, and this was no attempt.
    (aiohttp.ConnectionTimeoutError, _Failure(True, sent=False, counted=False)),
    (aiohttp.ServerTimeoutError, _Failure(True, sent=True)),
    (asyncio.TimeoutError, _Failure(True, sent=True)),
    # Raised while connecting (to the server, or the proxy refused the tunnel): the request
    # never left, so even a POST may be repeated.
    (aiohttp.ClientConnectorError, _Failure(False, sent=False)),
    (aiohttp.ClientHttpProxyError, _Failure(False, sent=False)),
    (aiohttp.ClientError, _Failure(False, sent=True)),
    (OSError, _Failure(False, sent=True)),
    (ValueError, _Failure(False, sent=True)),
)
_HTTP_LIBRARY_ERRORS: Final = tuple(kind for kind, _ in _HTTP_LIBRARY_FAILURES)


def _classify(exc: BaseException) -> _Failure:
    for kind, failure in _HTTP_LIBRARY_FAILURES:
        if isinstance(exc, kind):
            return failure
    raise AssertionError(f"unclassified {type(exc)!r}")  # unreachable: caught by the same types


class Transport:
    """Sends one attempt over an aiohttp session the client owns or borrows.

    The session it creates goes through the proxy the client's config read from the
    environment (if any); a borrowed one keeps its own settings. `derive` makes the transport
    of a `with_options` client: its own headers and counters on this one's session.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_created_at",
        "_default_headers",
        "_derived",
        "_limiter",
        "_loop",
        "_max_connections",
        "_nowait",
        "_owner",
        "_owns_session",
        "_per_request_headers",
        "_proxy",
        "_secret_values",
        "_session",
        "_warned_deprecation",
        "attempts",
        "refused",
    )

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None,
        max_connections: int,
        default_headers: dict[str, str],
        limiter: Limiter,
        proxy: str | None = None,
        owner: Transport | None = None,
    ) -> None:
        self._limiter = limiter
        self._nowait = nowait_limiter(limiter)
        self._session = session
        # A derived transport (InboxClient.with_options) uses its owner's pool and never
        # closes it; the owner closes it, and marks every derived one closed with it.
        self._owner = owner
        self._derived: weakref.WeakSet[Transport] = weakref.WeakSet()
        self._owns_session = session is None and owner is None
        self._max_connections = max_connections
        self._proxy = proxy
        self._default_headers = {**_ACCEPT_HEADERS, **default_headers}
        # What rides on each request rather than being the session's default: everything for
        # a session that is not ours (borrowed, or the owner's); the caller's own headers when
        # a proxy is in use, since aiohttp sends a session's defaults to the proxy in its
        # CONNECT request too, in plain text. None: the session carries them all.
        self._per_request_headers: dict[str, str] | None
        if not self._owns_session:
            self._per_request_headers = self._default_headers
        elif proxy is not None and default_headers:
            self._per_request_headers = dict(default_headers)
        else:
            self._per_request_headers = None
        self._secret_values = (*default_headers.values(), *proxy_secrets(proxy))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._warned_deprecation = False
        self.attempts = 0
        """HTTP attempts sent through this transport."""
        self.refused = 0
        """Calls refused before their first attempt (a closed client, another event loop)."""
        # Kept for the ResourceWarning of a client that is never closed: it names the creator.
        self._created_at = caller_outside_package()

    def derive(self, default_headers: dict[str, str]) -> Transport:
        """A transport with its own headers and counters on this one's pool, closed with it."""
        owner = self._owner or self
        # The session comes from the owner on first use (open_session): one pool.
        child = Transport(
            session=None,
            max_connections=self._max_connections,
            default_headers=default_headers,
            limiter=self._limiter,
            proxy=self._proxy,
            owner=owner,
        )
        owner.adopt(child)
        return child

    def adopt(self, child: Transport) -> None:
        """Take on a derived transport: it runs on this one's loop, and is closed with it."""
        # One pool, one event loop: a derived client used on another loop fails as the
        # original would.
        child.join(self._loop, closed=self._closed)
        self._derived.add(child)

    def join(self, loop: asyncio.AbstractEventLoop | None, *, closed: bool) -> None:
        """Share the owner's event loop, and its closed state (see `adopt`)."""
        self._loop = loop
        if closed:
            self.mark_closed()

    def mark_closed(self) -> None:
        """Fail every later call as closed: the owner's pool is gone (or going)."""
        self._closed = True
        self._session = None

    @property
    def closed(self) -> bool:
        """Whether aclose() has run."""
        return self._closed

    @property
    def owns_session(self) -> bool:
        """Whether the session was created here (and is closed here)."""
        return self._owns_session

    def _check_usable(self) -> None:
        """Refuse a closed client, and bind the client to the running loop on first use."""
        if self._closed:
            raise ClientClosedError("this InboxClient is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise InboxError(
                "this InboxClient is bound to another event loop; create one client per loop"
            )

    def open_session(self) -> aiohttp.ClientSession:
        """The session, created on first use (a derived transport takes its owner's)."""
        self._check_usable()
        session = self._session
        if session is None and self._owner is not None:
            session = self._session = self._owner.open_session()
        elif session is None:
            # Created here, inside the running loop, on first use: creating an aiohttp session
            # outside a loop binds it to the wrong one. aiohttp's own trust_env stays off: the
            # proxy was read from the environment once, for the one origin the client talks
            # to, where aiohttp would look it up in a thread on every request (and netrc too,
            # whose password for the API host would clash with the token).
            headers = _ACCEPT_HEADERS if self._per_request_headers else self._default_headers
            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers=headers,
                proxy=self._proxy,
            )
        return session

    async def send(self, request: Request) -> Response:
        """Make one attempt, holding a rate-limit slot while it is on the wire.

        The slot is taken right before the request goes and given back with what the response
        said (rate-limit headers, a 429), or with whether a failed request may have arrived.
        Returns the response whatever its status; raises the SDK's error for a failure.
        """
        session = self._session
        # Before the rate limiter: its waiters and timers belong to one loop, so a call from
        # another loop (or on a closed client) fails here rather than after waiting on them.
        # A borrowed session closed by its owner shows up as aiohttp's RuntimeError below,
        # rather than costing a check on every attempt.
        if session is None or self._closed or self._loop is not asyncio.get_running_loop():
            try:
                session = self.open_session()
            except InboxError:
                if request.attempt == 1:
                    # The call never started: `stats.calls` leaves it out, as it did when
                    # build_request checked (here it costs nothing on the way out).
                    self.refused += 1
                raise
        extra_headers = self._per_request_headers
        if extra_headers is not None:
            # A session that is not ours has its own defaults: ours ride on each request.
            request.headers.update(extra_headers)
        # The slot is handled here, in the frame that awaits the socket, rather than by a
        # pipeline stage of its own: a coroutine layer costs CPU on every attempt, the more so
        # the more requests are in flight. A limiter that can answer at once (the local one) is
        # asked without a coroutine when a slot is free; Redis always awaits.
        nowait = self._nowait
        priority = request.priority
        if nowait is not None and nowait.try_acquire(priority):
            ticket: object = None
        else:
            ticket = await self._limiter.acquire(
                max_wait=request.max_wait, timeout=request.timeout.total, priority=priority
            )
        # What the slot goes back with. Unless a failure says the request never left, it may
        # have arrived (a cancelled one too), so its slot runs the window.
        sent = True
        status: int | None = None
        headers: CIMultiDictProxy[str] | None = None
        try:
            self.attempts += 1
            timed = request.timed or logger.isEnabledFor(logging.DEBUG)
            started = time.perf_counter() if timed else 0.0
            # aiohttp's errors are turned into ours outside the except clauses: raised inside
            # one, ours would chain aiohttp's as __context__, whose request_info and history
            # hold the request headers (Authorization included).
            failure: InboxError | None = None
            try:
                async with session.request(
                    request.method,
                    request.url,
                    data=request.body,
                    params=request.params,
                    headers=request.headers,
                    timeout=request.timeout,
                    # A redirect is an answer, not an instruction: following it would send the
                    # body to another origin, and a 303 would turn the PATCH into a GET.
                    allow_redirects=False,
                ) as resp:
                    response_headers = resp.headers
                    # The header, not resp.content_length: a property call fewer per response.
                    length_text = response_headers.get(hdrs.CONTENT_LENGTH)
                    if length_text is not None and int(length_text) <= MAX_RESPONSE_BYTES:
                        body = await resp.read()
                    else:
                        body = await _read_capped(resp, request)
                    response_status = resp.status
            except _HTTP_LIBRARY_ERRORS as exc:
                failure = self._connection_error(request, exc)
                cause: BaseException = self._scrubbed(exc, request)
            except RuntimeError as exc:
                if not session.closed:
                    raise
                failure = ClientClosedError(
                    "the aiohttp session lent to this InboxClient is closed"
                )
                cause = self._scrubbed(exc, request)
            if failure is not None:
                try:
                    raise failure from cause
                except InboxError as raised:
                    # On Python 3.10 an error thrown into this coroutine by aiohttp can still
                    # count as being handled here and become __context__, with the request
                    # headers it holds. A bare raise below keeps it from coming back.
                    raised.__context__ = None
                    raise
            status, headers = response_status, response_headers
        except APIConnectionError as exc:
            sent = exc.request_sent
            raise
        finally:
            if nowait is not None:
                nowait.release_nowait(ticket, sent=sent, status=status, headers=headers)
            else:
                await self._limiter.release(ticket, sent=sent, status=status, headers=headers)
        response = Response(response_status, response_headers, body)
        if timed:
            _record_time(request, response, started)
        if not self._warned_deprecation and (
            DEPRECATION_HEADER in response_headers or SUNSET_HEADER in response_headers
        ):
            self._warn_deprecated(request, response)
        return response

    def _scrubbed(self, exc: BaseException, request: Request) -> HTTPLibraryError:
        """A stand-in for aiohttp's error: its type and message, without a secret in them."""
        text = self._redact(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}", request)
        if isinstance(exc, OSError) and exc.errno is not None:
            return HTTPLibraryOSError(exc.errno, text)
        return HTTPLibraryError(text)

    def _secrets(self, request: Request) -> list[str]:
        """What the caller gave: the token, every default header, the proxy's credentials."""
        values = [request.headers.get("Authorization", "")]
        values.append(values[0].partition(" ")[2])
        values += self._secret_values
        # Longest first, so that the token is replaced before the shorter "Bearer ..." part.
        return sorted((v for v in values if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)

    def _redact(self, text: str, request: Request) -> str:
        """`text` without a secret: the caller's values, and any URL's user info."""
        for secret in self._secrets(request):
            text = text.replace(secret, "<redacted>")
        # Whatever a URL in a message carries before "@" is credentials, short ones too.
        return _USERINFO_RE.sub(r"\1<redacted>@", text)

    def _connection_error(self, request: Request, exc: BaseException) -> APIConnectionError:
        """The SDK's error for what aiohttp raised, as `_HTTP_LIBRARY_FAILURES` classes it."""
        failure = _classify(exc)
        if not failure.counted:
            self.attempts -= 1
        cls = APITimeoutError if failure.timeout else APIConnectionError
        if failure.timeout and not failure.sent:
            what = (
                "timed out before it was sent: no connection in time (every pooled connection"
                f" busy, or connecting took too long; max_connections={self._max_connections})"
            )
        elif failure.timeout:
            what = "timed out"
        elif not failure.retryable:
            what = f"failed: the server's TLS certificate is not trusted ({exc})"
        else:
            what = f"failed: {type(exc).__name__}: {exc}".rstrip(": ")
        what = self._redact(what, request)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s (attempt %d)", request.method, request.path, what, request.attempt
            )
        return cls(
            f"{request.method} {request.path} {what}",
            method=request.method,
            path=request.path,
            request_sent=failure.sent,
            retryable=failure.retryable,
        )

    def _warn_deprecated(self, request: Request, response: Response) -> None:
        self._warned_deprecation = True
        deprecation = response.headers.get(DEPRECATION_HEADER)
        sunset = response.headers.get(SUNSET_HEADER)
        message = (
            f"the Inbox API marks {request.method} {request.path} as deprecated"
            f" (Deprecation: {deprecation}, Sunset: {sunset}); see the Inbox changelog"
        )
        logger.warning(message)
        warnings.warn(message, ApiDeprecationWarning, stacklevel=2)

    async def aclose(self) -> None:
        """Close the session if it is ours; a borrowed one is left to its owner."""
        self._closed = True
        for child in list(self._derived):
            # Their pool goes with this one: they fail as closed, not on a closed session.
            child.mark_closed()
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()

    def __del__(self, _warn: object = warnings.warn) -> None:
        # Only warns: scheduling the close from here would run on whatever loop is current.
        session = getattr(self, "_session", None)
        # Our own flag, not only session.closed: collected in one cycle, aiohttp's connector may
        # be finalized first (it is on Python 3.10), which marks the session closed.
        if session is not None and self._owns_session and not getattr(self, "_closed", True):
            _warn(  # type: ignore[operator]
                f"InboxClient created at {self._created_at} was never closed; use "
                "'async with InboxClient(...)' or 'await client.aclose()'",
                ResourceWarning,
                source=self,
            )


def _record_time(request: Request, response: Response, started: float) -> None:
    """Set the response's `elapsed` (raw responses show it), and log it at debug level."""
    response.elapsed = time.perf_counter() - started
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "%s %s -> %d in %.1f ms (attempt %d)",
            request.method,
            request.path,
            response.status,
            response.elapsed * 1000,
            request.attempt,
        )


def attempt_timeout(total: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeout for one attempt of `total` seconds, connecting included.

    The connect part (waiting for a pooled connection, or making one) gets up to 50 ms less
    than the whole, so that running out of time before the request leaves is aiohttp's
    ConnectionTimeoutError, told apart from a timeout on the wire: such a request was not sent,
    whatever the operation. Deadlines are exact (aiohttp would round those over 5 s up to the
    second, which could put both on the same instant). aiohttp starts this clock only when no
    idle connection is at hand: it costs nothing while the pool has one.
    """
    if total is None:
        return aiohttp.ClientTimeout(total=None)
    connect = total - min(_CONNECT_MARGIN, total / 10)
    return aiohttp.ClientTimeout(total=total, connect=connect, ceil_threshold=math.inf)


class HTTPLibraryError(Exception):
    """What the HTTP library raised, chained under the SDK's error by type and message only.

    The library's own exception is not chained: its attributes (request_info, history) and
    frames hold the request headers, Authorization included, which error trackers print.
    """


class HTTPLibraryOSError(HTTPLibraryError, OSError):
    """`HTTPLibraryError` for an operating-system error: keeps its errno."""


async def _read_capped(resp: aiohttp.ClientResponse, request: Request) -> bytes:
    """Read a body of unknown or large length, refusing one over MAX_RESPONSE_BYTES."""
    if resp.content_length is not None and resp.content_length > MAX_RESPONSE_BYTES:
        raise _too_large(resp, request)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            # Leaving the block unread closes the connection instead of reusing it.
            raise _too_large(resp, request)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(resp: aiohttp.ClientResponse, request: Request) -> APIResponseValidationError:
    return APIResponseValidationError(
        f"{request.method} {request.path}: response body is larger than "
        f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB; refused",
        status_code=resp.status,
        request_id=resp.headers.get(REQUEST_ID_HEADER),
    )
