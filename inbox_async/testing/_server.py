"""``FakeInboxServer``: an in-process aiohttp server that behaves like the Inbox API."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from aiohttp import web

from .._sync import LoopThread, check_not_in_loop
from ._api import Api, ApiError, ErrorFormat, error_body, reason
from ._faults import Fault, FaultInjector
from ._ratelimit import RateDecision, SlidingWindowLimiter
from ._state import IMPORT_JOB_STATUSES, Store

__all__ = ["FakeInboxServer", "RecordedRequest", "RetryAfterFormat"]

RetryAfterFormat = Literal["seconds", "http-date"]

_logger = logging.getLogger("inbox_async.testing")

_JSON = "application/json"
_HTML = "text/html; charset=utf-8"
_MASK64 = (1 << 64) - 1
# How long close() lets a request that is being answered finish before cancelling it;
# requests sleeping in latency or a delay fault are woken (and dropped) at once instead.
_SHUTDOWN_GRACE = 1.0
_SUNSET_AFTER = 180 * 86_400


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it, with the status it was answered with."""

    method: str
    #: The raw path as received, percent-encoding kept, without the query string.
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    #: The response status; 0 for a dropped connection, -1 while still undecided.
    status: int
    #: ``loop.time()`` when the request arrived.
    received_at: float


class _Entry:
    """The mutable log entry behind a ``RecordedRequest`` (its status comes later)."""

    __slots__ = (
        "body",
        "frozen",
        "headers",
        "method",
        "path",
        "query",
        "received_at",
        "status",
    )

    def __init__(
        self, method: str, path: str, query: str, headers: dict[str, str], received_at: float
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = b""  # filled in once read: the entry is logged at arrival
        self.received_at = received_at
        self.status = -1
        self.frozen: RecordedRequest | None = None

    def freeze(self) -> RecordedRequest:
        """Return the public, immutable view of this entry."""
        if self.frozen is not None:
            return self.frozen
        record = RecordedRequest(
            method=self.method,
            path=self.path,
            query=self.query,
            headers=self.headers,
            body=self.body,
            status=self.status,
            received_at=self.received_at,
        )
        # Once the status is known nothing changes any more, so repeated reads of
        # server.requests in a loop need not rebuild every record.
        if self.status != -1:
            self.frozen = record
        return record


def _wake(waiter: asyncio.Future[None]) -> None:
    """Resolve a sleeper's future unless close() already did."""
    if not waiter.done():
        waiter.set_result(None)


def _html_page(status: int) -> bytes:
    """Render the kind of error page a reverse proxy sends instead of JSON."""
    title = f"{status} {reason(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _format_retry_after(value: float | str) -> str:
    """Render a scripted Retry-After value: strings verbatim, whole numbers without ".0"."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _merge_headers(headers: dict[str, str], extra: Mapping[str, str]) -> None:
    """Add ``extra`` to ``headers``, replacing names that differ only in case."""
    for name, value in extra.items():
        lowered = name.lower()
        for existing in [key for key in headers if key.lower() == lowered]:
            del headers[existing]
        headers[name] = value


class FakeInboxServer:
    """A fake Inbox API served by aiohttp on a real socket, for tests and benchmarks.

    Use it as ``async with FakeInboxServer() as server:`` and point a client at
    ``server.url``. State is seeded with ``create_list``/``add_leads``/``add_prospect``
    and inspected with ``lead_data``/``requests``; faults, rate limits and latency can
    be changed while it runs.

    For blocking code (``SyncInboxClient``, plain test functions) use it as
    ``with FakeInboxServer() as server:`` instead: it then runs on an event loop of its own
    on a daemon thread (``start_in_thread()`` / ``close_in_thread()``), and the seeding and
    inspecting methods can be called from the test's thread.
    """

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: Sequence[tuple[int, float]] | None = None,
        latency: float = 0.0,
        seed: int | None = None,
        retry_after_format: RetryAfterFormat = "seconds",
        error_format: ErrorFormat = "envelope",
        deprecation: bool = False,
        record_requests: bool = True,
    ) -> None:
        """Configure the server; nothing listens until ``start()`` or ``async with``."""
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string, or None to accept any token")
        if retry_after_format not in ("seconds", "http-date"):
            raise ValueError(f"unknown retry_after_format {retry_after_format!r}")
        if error_format not in ("envelope", "flat"):
            raise ValueError(f"unknown error_format {error_format!r}")
        self._token = token
        self._host = host
        self._port = port
        self._retry_after_format = retry_after_format
        self._error_format: ErrorFormat = error_format
        self._deprecation = deprecation
        self._record = record_requests
        self._store = Store(seed)
        self._api = Api(self._store)
        self._faults = FaultInjector(seed)
        self._limiter: SlidingWindowLimiter | None = None
        self.set_rate_limits(rate_limits)
        self._latency = 0.0
        self.set_latency(latency)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: LoopThread | None = None
        self._runner: web.ServerRunner | None = None
        self._bound_port = 0
        self._closed = False
        self._sleepers: set[asyncio.Future[None]] = set()
        self._extra_headers: dict[str, str] = {}
        self._log: list[_Entry] = []
        self._status_counts: Counter[int] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        # A random start makes ids unique across servers; counting up keeps them cheap.
        self._request_seq = random.getrandbits(64)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; calling it again on a running server does nothing."""
        if self._runner is not None:
            return
        if self._closed:
            raise RuntimeError("a closed FakeInboxServer cannot be started again")
        self._loop = asyncio.get_running_loop()
        # The low-level server skips the router and middlewares: we route the raw path
        # ourselves, and every request stays cheap.
        runner = web.ServerRunner(
            web.Server(self._handle, access_log=None), shutdown_timeout=_SHUTDOWN_GRACE
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])
        if self._deprecation:
            sunset = math.ceil(time.time() / 86_400) * 86_400 + _SUNSET_AFTER
            self._extra_headers = {
                "Deprecation": "true",
                "Sunset": email.utils.formatdate(sunset, usegmt=True),
            }

    async def close(self) -> None:
        """Stop the server and drop pending requests; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        # Wake requests sleeping in latency or a delay fault so they end (dropped) now.
        for waiter in list(self._sleepers):
            _wake(waiter)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeInboxServer:
        """Start the server and return it."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the server."""
        await self.close()

    def start_in_thread(self) -> FakeInboxServer:
        """Start listening on an event loop of its own, on a daemon thread; return the server.

        For tests of blocking code. ``close_in_thread()`` (or leaving ``with``) stops it.
        Calling it from a thread that runs an event loop raises RuntimeError: there, use
        ``async with``.
        """
        if self._thread is not None:
            return self
        check_not_in_loop("FakeInboxServer.start_in_thread()", "Use `async with` there")
        thread = LoopThread("inbox-async-fake-server", owner="FakeInboxServer")
        try:
            thread.run(self.start())
        except BaseException:
            thread.stop()
            raise
        self._thread = thread
        return self

    def close_in_thread(self) -> None:
        """Stop a server started by ``start_in_thread()`` and its thread; safe to repeat."""
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop(self.close())

    def __enter__(self) -> FakeInboxServer:
        """Start the server on a thread of its own (``start_in_thread``) and return it."""
        return self.start_in_thread()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server and its thread."""
        self.close_in_thread()

    @property
    def origin(self) -> str:
        """Scheme, host and port, e.g. ``http://127.0.0.1:41234``."""
        # Still answered after close(), so tests can aim a client at a dead port.
        if not self._bound_port:
            raise RuntimeError("the server has not been started; start() it first")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._bound_port}"

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:41234/api/v1``."""
        return self.origin + "/api/v1"

    @property
    def token(self) -> str | None:
        """The accepted bearer token (None: any non-empty token is accepted)."""
        return self._token

    # -- seeding and inspecting state -------------------------------------------------------

    def create_list(self, columns: Iterable[str] = (), list_id: str | None = None) -> str:
        """Create a list with these column ids and return its id (generated when None)."""
        if isinstance(columns, str):
            raise TypeError("columns must be an iterable of column ids, not one string")
        return self._store.create_list(columns, list_id)

    def delete_list(self, list_id: str) -> None:
        """Delete a list and its leads: later calls on it get 404 LIST_NOT_FOUND."""
        self._store.get_list(list_id)  # KeyError for an unknown list, as the other seeders
        del self._store.lists[list_id]

    def set_token(self, token: str | None) -> None:
        """Accept only `token` from now on (None: any); the old one gets 401, as if revoked."""
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty str or None")
        self._token = token

    def add_column(self, list_id: str, column_id: str) -> None:
        """Add a column to a list (``KeyError`` if the list does not exist)."""
        if not isinstance(column_id, str) or not column_id:
            raise ValueError(f"column id must be a non-empty string, got {column_id!r}")
        self._store.get_list(list_id).columns[column_id] = None

    def add_leads(self, list_id: str, platform_ids: Iterable[str]) -> None:
        """Put leads in a list (with generated prospects); leads already there are kept."""
        if isinstance(platform_ids, str):
            raise TypeError("platform_ids must be an iterable of ids, not one string")
        lead_list = self._store.get_list(list_id)
        for platform_id in platform_ids:
            if not isinstance(platform_id, str) or not platform_id:
                raise ValueError(f"platform id must be a non-empty string, got {platform_id!r}")
            if platform_id not in lead_list.leads:
                lead_list.leads[platform_id] = {}
            self._store.prospect_for(platform_id)

    def lead_data(self, list_id: str, platform_id: str) -> dict[str, object]:
        """Return a copy of a lead's stored column values (``KeyError`` if absent)."""
        leads = self._store.get_list(list_id).leads
        if platform_id not in leads:
            raise KeyError(f"no lead {platform_id!r} in list {list_id!r}")
        return dict(leads[platform_id])

    def has_lead(self, list_id: str, platform_id: str) -> bool:
        """Tell whether a list holds a lead (``KeyError`` if the list does not exist)."""
        return platform_id in self._store.get_list(list_id).leads

    def add_prospect(
        self, platform_id: str, *, prospect_id: str | None = None, **fields: object
    ) -> str:
        """Create or replace the prospect of a platform id and return the prospect's id.

        ``fields`` override generated profile fields by their JSON names (``displayName``,
        ``followerCount``...); a ``context`` mapping seeds the CRM context instead.
        """
        if not isinstance(platform_id, str) or not platform_id:
            raise ValueError(f"platform id must be a non-empty string, got {platform_id!r}")
        context = fields.pop("context", None)
        if context is not None and not isinstance(context, Mapping):
            raise TypeError("context must be a mapping")
        if "id" in fields:
            raise ValueError("pass the prospect id as prospect_id=, not id=")
        prospect = self._store.put_prospect(platform_id, prospect_id, fields)
        if context is not None:
            prospect.context.update(context)
        return prospect.id

    def import_job(self, list_id: str, job_id: str) -> dict[str, object]:
        """Return a copy of an import job's JSON object (``KeyError`` if absent)."""
        jobs = self._store.get_list(list_id).jobs
        if job_id not in jobs:
            raise KeyError(f"no import job {job_id!r} in list {list_id!r}")
        return dict(jobs[job_id].fields)

    def set_import_job_status(self, list_id: str, job_id: str, status: str) -> None:
        """Force an import job into ``status`` without importing anything."""
        if status not in IMPORT_JOB_STATUSES:
            raise ValueError(f"unknown import job status {status!r}")
        jobs = self._store.get_list(list_id).jobs
        if job_id not in jobs:
            raise KeyError(f"no import job {job_id!r} in list {list_id!r}")
        job = jobs[job_id]
        if status != "queued":
            # Only queued jobs run their import, so a forced state never imports later.
            job.pending = None
        job.set_status(status, time.time())

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (since the last ``clear_requests``), in arrival order."""
        return [entry.freeze() for entry in self._log]

    def clear_requests(self) -> None:
        """Forget the request log and reset ``status_counts`` and ``max_in_flight``."""
        self._log.clear()
        self._status_counts.clear()
        self._max_in_flight = self._in_flight

    @property
    def in_flight(self) -> int:
        """Requests currently being handled, from arrival until the response is sent."""
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The highest ``in_flight`` seen (since the last ``clear_requests``)."""
        return self._max_in_flight

    @property
    def status_counts(self) -> Counter[int]:
        """A copy of the count of responses by status; dropped connections count as 0."""
        return Counter(self._status_counts)

    # -- behaviour knobs --------------------------------------------------------------------

    def add_fault(
        self,
        fault: Fault,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> None:
        """Give ``fault`` to the next ``times`` requests matching ``method`` and ``path``.

        ``path`` is a regex searched in the raw request path; scripted faults are used in
        the order they were added and take precedence over random ones.
        """
        self._faults.add(fault, times, method, path)

    def set_random_faults(
        self,
        faults: Mapping[Fault, float],
        *,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> None:
        """Give each matching request ``fault`` with the given probability; ``{}`` stops."""
        self._faults.set_random(faults, method, path)

    def clear_faults(self) -> None:
        """Forget every scripted and random fault."""
        self._faults.clear()

    def set_rate_limits(self, limits: Sequence[tuple[int, float]] | None) -> None:
        """Replace the rate limits (``(requests, seconds)`` windows); None means unlimited.

        The new windows start empty.
        """
        self._limiter = SlidingWindowLimiter(limits) if limits else None

    def set_latency(self, seconds: float) -> None:
        """Set the delay added to every request before it is handled."""
        if isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"latency must be a finite number of seconds >= 0, got {seconds!r}")
        self._latency = float(seconds)

    # -- request handling -------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Count the request as in flight until its response has been written."""
        loop = self._loop
        assert loop is not None  # set by start() before anything can connect
        now = loop.time()
        self._in_flight += 1
        if self._in_flight > self._max_in_flight:
            self._max_in_flight = self._in_flight
        try:
            return await self._respond(request, now)
        finally:
            self._in_flight -= 1

    async def _respond(self, request: web.BaseRequest, now: float) -> web.StreamResponse:
        """Decide and send the response: fault, 401, 429 or the endpoint's answer."""
        path, _, query = request.raw_path.partition("?")
        method = request.method
        headers = request.headers
        # Authentication and the rate limiter judge the request at arrival, before latency
        # and faults, so quota is counted when a request arrives, not when it is answered.
        authorized = self._authorized(headers.get("Authorization"))
        limiter = self._limiter
        decision: RateDecision | None = None
        if limiter is not None:
            decision = limiter.acquire(now) if authorized else limiter.peek(now)
        entry: _Entry | None = None
        if self._record:
            entry = _Entry(method, path, query, dict(headers), now)
            self._log.append(entry)
        if request.version >= (1, 1) and headers.get("Expect", "").lower() == "100-continue":
            # The low-level server has no router to answer this (curl asks for it before
            # sending a body over 1 KiB and would otherwise stall for a second).
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        body_error = 0
        try:
            body = await request.read()
        except ConnectionError:
            # The client hung up before sending its whole body: nobody is left to answer.
            return self._drop(request, entry)
        except web.HTTPRequestEntityTooLarge:
            body_error = 413
        except Exception:
            body_error = 400  # e.g. a Content-Encoding that does not decode
        if entry is not None:
            entry.body = body
        response = await self._reply(
            request, entry, path, query, body, body_error, authorized, decision
        )
        if body_error == 400:
            # aiohttp would try to drain the undecodable rest of the body and log the
            # failure; the connection cannot be reused anyway.
            request.protocol.force_close()
        return response

    async def _reply(
        self,
        request: web.BaseRequest,
        entry: _Entry | None,
        path: str,
        query: str,
        body: bytes,
        body_error: int,
        authorized: bool,
        decision: RateDecision | None,
    ) -> web.StreamResponse:
        """Apply latency and any fault, then send the response."""
        method = request.method
        headers = request.headers
        fault = self._faults.pick(method, path) if self._faults.active else None

        if self._latency and not await self._sleep(self._latency):
            return self._drop(request, entry)
        if fault is not None:
            if fault.kind == "delay":
                if not await self._sleep(fault.seconds):
                    return self._drop(request, entry)
            elif fault.kind == "drop":
                return self._drop(request, entry)
            elif fault.kind == "truncated":
                _, payload, _ = self._answer(
                    method, path, query, headers, body, authorized, decision, body_error, False
                )
                return await self._send(
                    request, entry, 200, payload[: len(payload) // 2], _JSON, None, decision
                )
            else:
                return await self._send_fault(request, entry, fault, decision)
        status, payload, extra = self._answer(
            method, path, query, headers, body, authorized, decision, body_error, True
        )
        return await self._send(request, entry, status, payload, _JSON, extra, decision)

    def _authorized(self, header: str | None) -> bool:
        """Check an ``Authorization`` header against the configured token."""
        if not header:
            return False
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            return False
        return self._token is None or credentials == self._token

    def _answer(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        authorized: bool,
        decision: RateDecision | None,
        body_error: int,
        commit: bool,
    ) -> tuple[int, bytes, Mapping[str, str] | None]:
        """Compute the response the API gives when no fault interferes."""
        if not authorized:
            return (
                401,
                self._error(401, "UNAUTHORIZED", "Missing or invalid bearer token"),
                {"WWW-Authenticate": "Bearer"},
            )
        if decision is not None and not decision.allowed:
            return (
                429,
                self._error(429, "RATE_LIMITED", "Rate limit exceeded, retry later"),
                {"Retry-After": self._retry_after(decision.retry_after)},
            )
        if body_error == 413:
            return 413, self._error(413, "PAYLOAD_TOO_LARGE", "Request body too large"), None
        if body_error:
            # The connection is closed after this response (see _respond): say so.
            payload = self._error(400, "BAD_REQUEST", "The request body could not be read")
            return 400, payload, {"Connection": "close"}
        try:
            status, payload = self._api.dispatch(
                method, path, query, headers.get("Content-Type", ""), body, commit
            )
        except ApiError as exc:
            return exc.status, self._error(exc.status, exc.code, exc.message), exc.headers
        except Exception:
            # A bug in the fake itself: answer like a server would, but leave a trace.
            _logger.exception("FakeInboxServer failed on %s %s", method, path)
            return 500, self._error(500, "INTERNAL_SERVER_ERROR", "Internal error"), None
        return status, payload, None

    def _error(self, status: int, code: str | None, message: str) -> bytes:
        """Encode an error body in the configured format."""
        return error_body(status, code, message, self._error_format)

    def _retry_after(self, seconds: float) -> str:
        """Render Retry-After for a rate-limited request: whole seconds or an HTTP-date."""
        # HTTP allows only whole seconds; rounding up never invites a too-early retry.
        wait = max(1, math.ceil(seconds))
        if self._retry_after_format == "http-date":
            return email.utils.formatdate(math.ceil(time.time()) + wait, usegmt=True)
        return str(wait)

    async def _send_fault(
        self,
        request: web.BaseRequest,
        entry: _Entry | None,
        fault: Fault,
        decision: RateDecision | None,
    ) -> web.StreamResponse:
        """Send a status, html or empty fault response."""
        status = fault.http_status
        if fault.kind == "html":
            return await self._send(
                request, entry, status, _html_page(status), _HTML, None, decision
            )
        if fault.kind == "empty":
            return await self._send(request, entry, status, b"", _JSON, None, decision)
        payload = fault.body
        if payload is None:
            message = "Rate limit exceeded, retry later" if status == 429 else reason(status)
            payload = self._error(status, fault.code_name, message) if status >= 400 else b"{}"
        extra = dict(fault.headers)
        retry_after = fault.retry_after
        # Headers given explicitly win, so Fault.status(429, headers={"Retry-After": "soon"})
        # sends exactly that instead of the default "1".
        if (
            retry_after is not None
            and retry_after != ""
            and not any(name.lower() == "retry-after" for name in extra)
        ):
            extra["Retry-After"] = _format_retry_after(retry_after)
        return await self._send(request, entry, status, payload, _JSON, extra, decision)

    async def _send(
        self,
        request: web.BaseRequest,
        entry: _Entry | None,
        status: int,
        payload: bytes,
        content_type: str,
        extra: Mapping[str, str] | None,
        decision: RateDecision | None,
    ) -> web.StreamResponse:
        """Write a response with the headers every response carries."""
        self._request_seq = (self._request_seq + 1) & _MASK64
        headers = {"Content-Type": content_type, "X-Request-Id": f"req_{self._request_seq:016x}"}
        if decision is not None:
            headers["X-RateLimit-Limit"] = str(decision.limit)
            headers["X-RateLimit-Remaining"] = str(decision.remaining)
            headers["X-RateLimit-Reset"] = str(math.ceil(time.time() + decision.reset_after))
        if self._extra_headers:
            headers.update(self._extra_headers)
        if extra:
            _merge_headers(headers, extra)
        if status in (204, 304):
            payload = b""  # these statuses cannot carry a body
        response = web.Response(status=status, body=payload, headers=headers)
        self._settle(entry, status)
        try:
            # Writing here rather than returning the response lets in_flight cover the
            # time until the bytes are on the wire.
            await response.prepare(request)
            await response.write_eof()
        except ConnectionError:
            pass  # the client left first (e.g. it timed out during a delay fault)
        return response

    def _drop(self, request: web.BaseRequest, entry: _Entry | None) -> web.StreamResponse:
        """Close the connection without a response."""
        self._settle(entry, 0)
        # Closing through the protocol also tells aiohttp not to read on or reuse the
        # connection; its attempt to send the returned response then fails quietly.
        request.protocol.force_close()
        return web.Response(status=500)

    def _settle(self, entry: _Entry | None, status: int) -> None:
        """Record the status a request was answered with."""
        if entry is not None:
            entry.status = status
        self._status_counts[status] += 1

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; return False if the server began closing meanwhile."""
        if self._closed:
            return False
        loop = self._loop
        assert loop is not None
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, waiter)
        self._sleepers.add(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._sleepers.discard(waiter)
        return not self._closed
