"""SyncInboxClient: the async client run on one private event-loop thread, every method blocking.

    caller thread                         the client's loop thread
    client.leads.update(...)  --coro-->   InboxClient.leads.update(...)  (pipeline, transport)
          blocks on a Future  <--result-- (or the SDK's own exception, as the async client raises)

One loop and one daemon thread per client, made in the constructor and ended by `close()`:
never a loop per call, so the connection pool and the rate limiter live as long as the client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import warnings
import weakref
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from yarl import URL

from ._client import ClientStats, InboxClient
from ._constants import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RATE_LIMIT_WAIT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RATE_LIMITS,
    DEFAULT_RESERVE,
    DEFAULT_TIMEOUT,
)
from ._exceptions import ClientClosedError
from ._ratelimit import Limiter, RateLimitSnapshot, ThrottleEvent
from ._types import Request, Response
from .bulk import BulkOutcome, BulkReport, BulkUpdateStream
from .resources._base import RawView
from .resources.import_jobs import ImportJobs, ImportJobsWithRawResponse
from .resources.leads import Leads, LeadsWithRawResponse
from .resources.prospects import Prospects, ProspectsWithRawResponse

__all__ = [
    "LoopThread",
    "SyncBulkUpdateStream",
    "SyncImportJobs",
    "SyncImportJobsWithRawResponse",
    "SyncInboxClient",
    "SyncLeads",
    "SyncLeadsWithRawResponse",
    "SyncProspects",
    "SyncProspectsWithRawResponse",
    "check_not_in_loop",
]

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
P = ParamSpec("P")

# How long a call interrupted by Ctrl-C waits for its cancelled task to end on the loop (its
# connection released, its rate-limit slot accounted for) before the KeyboardInterrupt goes on.
_CANCEL_GRACE: Final = 5.0
_END: Final = object()


_USE_ASYNC: Final = "Use InboxClient with await there"


def check_not_in_loop(what: str, instead: str = _USE_ASYNC) -> None:
    """Raise RuntimeError if this thread runs an event loop, which a blocking call would stall."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{what} was called from a thread that is running an event loop: blocking there "
        "stalls that loop, and deadlocks when the call needs it (a fake server on that loop, "
        f"or a callback on the client's own loop thread). {instead}, or run the blocking "
        "call in a worker thread (await asyncio.to_thread(...))"
    )


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The loop thread: run until stopped, then end what is left as asyncio.run() does."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


class LoopThread:
    """One event loop on one daemon thread; `run` blocks its caller until a coroutine ends.

    Safe to call from any number of threads at once. `stop` ends the thread; anything still
    running on the loop then is cancelled, and its callers get `ClientClosedError`.
    """

    def __init__(self, name: str, *, owner: str = "SyncInboxClient") -> None:
        """Start the thread and its loop."""
        self._owner = owner
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopped = False
        # The target holds the loop only, not this object, so an unclosed owner can be freed.
        self._thread = threading.Thread(target=_serve, args=(self._loop,), name=name, daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the coroutines run on."""
        return self._loop

    @property
    def stopped(self) -> bool:
        """Whether `stop` has been called."""
        return self._stopped

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and return its result (or raise its exception) here."""
        try:
            check_not_in_loop(self._owner)
        except RuntimeError:
            _discard(coro)
            raise
        return self._submit(coro)

    def call(self, fn: Callable[[], T]) -> T:
        """Call `fn` on the loop thread (to read state the loop mutates) and return its result."""
        if threading.get_ident() == self._thread.ident:
            return fn()  # already there: a callback reading the client's state, say

        async def on_loop() -> T:
            return fn()

        return self.run(on_loop())

    def blocking(self, method: Callable[P, Awaitable[R]]) -> Callable[P, R]:
        """`method` made blocking: each call runs it on the loop and returns its result here.

        The signature (and the docstring) are the method's, for type checkers and IDEs.
        """
        owner = self._owner
        submit = self._submit

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            check_not_in_loop(owner)
            return submit(method(*args, **kwargs))

        return call

    def on_loop(
        self, method: Callable[P, R], convert: Callable[[LoopThread, R], S]
    ) -> Callable[P, S]:
        """`method` (a plain one) called on the loop thread, its result converted here."""

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> S:
            return convert(self, self.call(functools.partial(method, *args, **kwargs)))

        return call

    def iterating(self, method: Callable[P, AsyncIterable[T]]) -> Callable[P, Iterator[T]]:
        """`method`, which returns an async iterable, returning a plain iterator of it instead."""

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            return _SyncIterator(self, method(*args, **kwargs))

        return call

    def _submit(self, coro: Awaitable[T]) -> T:
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        task_box: list[asyncio.Future[T]] = []

        def finish(task: asyncio.Future[T]) -> None:
            if task.cancelled():
                # cancel() alone wakes result() but not concurrent.futures.wait(), which the
                # Ctrl-C path below waits with: the notify call tells both.
                done.cancel()
                done.set_running_or_notify_cancel()
            elif (exc := task.exception()) is not None:
                done.set_exception(exc)
            else:
                done.set_result(task.result())

        def start() -> None:
            task = asyncio.ensure_future(coro, loop=self._loop)
            task_box.append(task)
            task.add_done_callback(finish)

        with self._lock:
            if self._stopped:
                _discard(coro)
                raise ClientClosedError(f"the {self._owner} is closed")
            self._loop.call_soon_threadsafe(start)
        try:
            return done.result()
        except KeyboardInterrupt:
            # Ctrl-C in the caller: cancel the call on the loop and let it end, so nothing of it
            # is left running behind the interrupted program.
            self._loop.call_soon_threadsafe(_cancel, task_box)
            concurrent.futures.wait([done], timeout=_CANCEL_GRACE)
            raise
        except concurrent.futures.CancelledError:
            raise ClientClosedError(
                f"the {self._owner} was closed while the call was running"
            ) from None

    def stop(self, final: Coroutine[Any, Any, object] | None = None) -> None:
        """Run `final` (a clean-up) on the loop, then end the thread; later calls do nothing."""
        try:
            check_not_in_loop(self._owner)
        except RuntimeError:
            if final is not None:
                final.close()
            raise
        with self._lock:
            if self._stopped:
                if final is not None:
                    final.close()
                return
            self._stopped = True
        try:
            if final is not None:
                self._run_final(final)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def stop_soon(self, final: Coroutine[Any, Any, object]) -> None:
        """Like `stop`, without waiting for the end: safe from any thread (a finalizer's)."""
        with self._lock:
            if self._stopped:
                final.close()
                return
            self._stopped = True
        loop = self._loop

        async def finish() -> None:
            try:
                await final
            finally:
                loop.stop()

        loop.call_soon_threadsafe(loop.create_task, finish())

    def _run_final(self, final: Coroutine[Any, Any, object]) -> None:
        # Past the stopped flag on purpose: the clean-up is the last call the loop takes.
        future = asyncio.run_coroutine_threadsafe(final, self._loop)
        future.result()


def _discard(awaitable: Awaitable[object]) -> None:
    # Never awaited, on purpose: closed, so that no "was never awaited" warning follows.
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def _cancel(task_box: list[asyncio.Future[Any]]) -> None:
    for task in task_box:
        task.cancel()


async def _anext(iterator: AsyncIterator[T]) -> T | object:
    # A sentinel, not StopAsyncIteration: that exception is not meant to cross a Future.
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _END


class _SyncIterator(Iterator[T]):
    """A plain iterator over an async iterable that lives on a LoopThread."""

    def __init__(self, portal: LoopThread, source: AsyncIterable[T]) -> None:
        self._portal = portal
        self._source = source
        self._iterator: AsyncIterator[T] | None = None
        self._done = False

    def __iter__(self) -> _SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        if self._iterator is None:
            self._iterator = self._portal.call(self._source.__aiter__)
        item = self._portal.run(_anext(self._iterator))
        if item is _END:
            self._done = True
            raise StopIteration
        return item  # type: ignore[return-value]  # not _END, so a T

    def close(self) -> None:
        """Stop early: the async iterator is closed on its loop."""
        if self._done:
            return
        self._done = True
        iterator, self._iterator = self._iterator, None
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None and not self._portal.stopped:
            self._portal.run(aclose())


class SyncInboxClient:
    """A blocking client for the Inbox API: `InboxClient` run on a private event-loop thread.

    For scripts, notebooks, Django views and Celery tasks. Every method blocks until its call
    is done and returns what the async method returns, or raises the same `InboxError`. One
    client (and its one loop thread, connection pool and rate limiter) is meant to be shared by
    every thread of the program; close it with `with` or `close()`.

        with SyncInboxClient() as client:  # token from INBOX_API_TOKEN
            lead = client.leads.update("l44e15irdq4db30i77cgphhx", "44196397",
                                       {"custom_q5cktl47a6pqa74eu06fz89v": "Acme"})

    It works in a program that runs an event loop in another thread. Called from a thread
    that is running an event loop it raises RuntimeError instead of blocking that loop (which
    would deadlock if the call needed it): use `InboxClient` there, or `asyncio.to_thread`.
    Ctrl-C in a waiting caller cancels its call on the loop, then raises KeyboardInterrupt.
    """

    leads: SyncLeads
    """Leads of a list: update custom columns, add and remove."""
    import_jobs: SyncImportJobs
    """Import jobs of a list: list, create from CSV, cancel."""
    prospects: SyncProspects
    """Prospects: look up, get, update the team's context."""
    send: Callable[[Request], Response]
    """Send a request made by `build_request`, with retries, blocking until its `Response`.

    Raises the call's `InboxError` (an `APIStatusError` for an error status), as
    `InboxClient.send` does.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | URL | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT,
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
        """Check every option now, as `InboxClient` does, and start the loop thread.

        The options are `InboxClient`'s, less `session=`: an aiohttp session belongs to the
        loop it was made on, and this client runs its own. `on_throttle` and `sleep` run on the
        client's loop thread. A `limiter` is used from that thread: share it only with clients
        of this one (not with other SyncInboxClients, which run other loops).
        """
        try:
            client = InboxClient(
                token,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                max_rate_limit_wait=max_rate_limit_wait,
                max_connections=max_connections,
                default_headers=default_headers,
                allow_insecure_http=allow_insecure_http,
                rate_limits=rate_limits,
                limiter=limiter,
                on_throttle=on_throttle,
                sleep=sleep,
                trust_env=trust_env,
                reserve=reserve,
            )
        except (TypeError, ValueError) as exc:
            # As in InboxClient: tracebacks with locals render this frame, so the secrets go.
            token = default_headers = None
            raise exc.with_traceback(None)  # noqa: B904 - the error is re-raised, not wrapped
        token = default_headers = None
        portal = LoopThread("inbox-async-sync")
        # A client dropped unclosed must not leave its thread and session behind for good.
        # Not at exit: the daemon thread simply ends with the interpreter.
        finalizer = weakref.finalize(self, _close_unclosed, portal, client)
        finalizer.atexit = False
        self._setup(client, portal, finalizer)

    def _setup(
        self,
        client: InboxClient,
        portal: LoopThread,
        finalizer: weakref.finalize[Any, Any] | None,
    ) -> None:
        """Everything but the checks: shared by the constructor and `with_options`.

        `finalizer` is None for a derived client: the loop thread is the original's.
        """
        self._client = client
        self._portal = portal
        self._finalizer = finalizer
        self.leads = SyncLeads(portal, client.leads)
        self.import_jobs = SyncImportJobs(portal, client.import_jobs)
        self.prospects = SyncProspects(portal, client.prospects)
        # On the loop thread, as every call of the client: the call counter is the loop's.
        self.build_request = portal.on_loop(client.build_request, _as_is)
        self.send = portal.blocking(client.send)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> SyncInboxClient:
        """A client with other defaults on this one's loop thread, connection pool and limiter.

        As `InboxClient.with_options`: options left out keep this client's. Closing the derived
        client only stops that one; closing this one stops every client derived from it.

            patient = client.with_options(timeout=120, max_retries=8)
            job = patient.import_jobs.create_csv(list_id, text, file_name="leads.csv")
        """
        derive = functools.partial(
            self._client.with_options,
            timeout=timeout,
            max_retries=max_retries,
            max_rate_limit_wait=max_rate_limit_wait,
            default_headers=default_headers,
        )
        try:
            # On the loop: the derived client joins the original's pool there.
            derived = self._portal.call(derive)
        except (TypeError, ValueError) as exc:
            # Header values may be secrets: out of this frame, and the frames below are cut.
            default_headers = derive = None  # type: ignore[assignment]
            raise exc.with_traceback(None)  # noqa: B904 - the error is re-raised, not wrapped
        default_headers = derive = None  # type: ignore[assignment]
        clone = SyncInboxClient.__new__(SyncInboxClient)
        SyncInboxClient._setup(clone, derived, self._portal, None)
        return clone

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._client.base_url

    @property
    def max_connections(self) -> int | None:
        """The size of the client's connection pool (its own: a blocking client borrows none)."""
        return self._client.max_connections

    @property
    def stats(self) -> ClientStats:
        """Counters since the client was made: calls, and HTTP attempts including retries."""
        if self._portal.stopped:
            return self._client.stats
        return self._portal.call(lambda: self._client.stats)

    @property
    def limiter(self) -> Limiter:
        """The rate limiter every request of this client goes through (on its loop thread)."""
        return self._client.limiter

    @property
    def rate_limit(self) -> RateLimitSnapshot:
        """The limiter's state now (windows, the server's last headers, the 429 gate)."""
        if self._portal.stopped:
            return self._client.rate_limit
        # Read on the loop: the limiter's windows change there while calls run.
        return self._portal.call(lambda: self._client.rate_limit)

    @property
    def closed(self) -> bool:
        """Whether the client has been closed."""
        return self._portal.stopped or self._client.closed

    @property
    def async_client(self) -> InboxClient:
        """The InboxClient underneath; await it only on this client's loop (from callbacks)."""
        return self._client

    def __repr__(self) -> str:
        client = getattr(self, "_client", None)
        portal = getattr(self, "_portal", None)
        if client is None or portal is None:
            return "<SyncInboxClient (not constructed)>"
        state = "closed" if self.closed else "open"
        return f"<SyncInboxClient base_url={client.base_url!r} {state}>"

    def __enter__(self) -> SyncInboxClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the session and end the loop thread; safe to call more than once.

        Calls still running in other threads are cancelled and raise `ClientClosedError`,
        as does any call made afterwards. On a client made by `with_options`, only that
        client is closed.
        """
        if self._finalizer is None:
            # Derived by with_options: the loop thread is the original's, which goes on.
            if not self._portal.stopped:
                self._portal.run(self._client.aclose())
            return
        self._portal.stop(_close_after_calls(self._client))
        self._finalizer.detach()


def _as_is(portal: LoopThread, value: T) -> T:
    return value


def _close_unclosed(portal: LoopThread, client: InboxClient) -> None:
    if portal.stopped:
        return
    warnings.warn(
        "unclosed SyncInboxClient: close it with `with` or close(); its thread is ended now",
        ResourceWarning,
        stacklevel=2,
    )
    portal.stop_soon(_close_after_calls(client))


async def _close_after_calls(client: InboxClient) -> None:
    # Calls still running are cancelled first, so that each raises ClientClosedError rather
    # than whatever the closing session did to its request.
    current = asyncio.current_task()
    calls = [task for task in asyncio.all_tasks() if task is not current]
    for task in calls:
        task.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    await client.aclose()


class SyncLeads:
    """Blocking `client.leads`: update a lead's custom columns, add or remove leads of a list.

    Each method is the async one's, with its signature, run to the end on the client's loop.
    `bulk_update` blocks and returns the report: `updates` (a plain iterable is fine) is pulled
    and `on_progress` is called on the client's loop thread, so keep both quick, and do not
    call the client from them (that raises RuntimeError: blocking there would deadlock).
    """

    __slots__ = (
        "add",
        "bulk_update",
        "bulk_update_stream",
        "remove",
        "update",
        "with_raw_response",
    )

    def __init__(self, portal: LoopThread, leads: Leads) -> None:
        self.with_raw_response = SyncLeadsWithRawResponse(portal, leads.with_raw_response)
        self.update = portal.blocking(leads.update)
        self.add = portal.blocking(leads.add)
        self.remove = portal.blocking(leads.remove)
        self.bulk_update = portal.blocking(leads.bulk_update)
        # A stream is iterated from this thread: a `with` block and a plain iterator.
        self.bulk_update_stream = portal.on_loop(leads.bulk_update_stream, SyncBulkUpdateStream)


class SyncBulkUpdateStream:
    """Yields each update's outcome as it finishes; use it as `with ... as stream`.

        with client.leads.bulk_update_stream(list_id, updates) as stream:
            for outcome in stream:
                write_result(outcome.platform_id, outcome.ok, outcome.error)
        print(stream.report.succeeded)

    The job runs on the client's loop while you iterate, at most `concurrency` outcomes ahead
    of you; leaving the `with` block early stops it (items in flight are cancelled).
    """

    def __init__(self, portal: LoopThread, stream: BulkUpdateStream) -> None:
        self._portal = portal
        self._stream = stream
        self._outcomes = _SyncIterator(portal, stream)

    @property
    def report(self) -> BulkReport:
        """Counts so far; final once iteration has finished."""
        return self._stream.report

    def __enter__(self) -> SyncBulkUpdateStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[BulkOutcome]:
        return self._outcomes

    def close(self) -> None:
        """Stop the job if it is still running; safe to call more than once."""
        if self._portal.stopped:
            return
        self._outcomes.close()
        self._portal.run(self._stream.aclose())


class SyncImportJobs:
    """Blocking `client.import_jobs`: list, create and cancel the import jobs of a list.

    `list` returns a plain iterator that fetches a page at a time as you iterate.
    """

    __slots__ = ("cancel", "create_csv", "list", "list_page", "with_raw_response")

    def __init__(self, portal: LoopThread, jobs: ImportJobs) -> None:
        self.with_raw_response = SyncImportJobsWithRawResponse(portal, jobs.with_raw_response)
        # The arguments are checked at the call, as the async method does; pages come later.
        self.list = portal.iterating(jobs.list)
        self.list_page = portal.blocking(jobs.list_page)
        self.create_csv = portal.blocking(jobs.create_csv)
        self.cancel = portal.blocking(jobs.cancel)


class SyncProspects:
    """Blocking `client.prospects`: look up prospects and update the team's context on them."""

    __slots__ = ("get", "lookup", "update_context", "with_raw_response")

    def __init__(self, portal: LoopThread, prospects: Prospects) -> None:
        self.with_raw_response = SyncProspectsWithRawResponse(portal, prospects.with_raw_response)
        self.lookup = portal.blocking(prospects.lookup)
        self.get = portal.blocking(prospects.get)
        self.update_context = portal.blocking(prospects.update_context)


class _SyncRawView:
    """What the blocking raw views share: the async view's hint for a method it lacks."""

    __slots__ = ("_view",)

    def __init__(self, view: RawView) -> None:
        self._view = view

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # The async view's AttributeError says why bulk methods have no raw form.
            return getattr(self._view, name)


class SyncLeadsWithRawResponse(_SyncRawView):
    """Blocking `client.leads.with_raw_response`: each method returns the call's RawResponse."""

    __slots__ = ("add", "remove", "update")

    def __init__(self, portal: LoopThread, view: LeadsWithRawResponse) -> None:
        super().__init__(view)
        self.update = portal.blocking(view.update)
        self.add = portal.blocking(view.add)
        self.remove = portal.blocking(view.remove)


class SyncImportJobsWithRawResponse(_SyncRawView):
    """Blocking `client.import_jobs.with_raw_response`: each returns the call's RawResponse."""

    __slots__ = ("cancel", "create_csv", "list_page")

    def __init__(self, portal: LoopThread, view: ImportJobsWithRawResponse) -> None:
        super().__init__(view)
        self.list_page = portal.blocking(view.list_page)
        self.create_csv = portal.blocking(view.create_csv)
        self.cancel = portal.blocking(view.cancel)


class SyncProspectsWithRawResponse(_SyncRawView):
    """Blocking `client.prospects.with_raw_response`: each returns the call's RawResponse."""

    __slots__ = ("get", "lookup", "update_context")

    def __init__(self, portal: LoopThread, view: ProspectsWithRawResponse) -> None:
        super().__init__(view)
        self.lookup = portal.blocking(view.lookup)
        self.get = portal.blocking(view.get)
        self.update_context = portal.blocking(view.update_context)
