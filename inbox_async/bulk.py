"""Bulk lead updates: a bounded pool of workers over a lazily pulled input, one outcome per item.

Unlike `asyncio.gather` or aiometer, a failure here never cancels the rest, the input is pulled
only as workers free up (a generator of a million updates runs in constant memory), and every
item ends in exactly one outcome: applied, or failed with its error. Successes are counted, not
kept. An optional journal (`_journal.py`) makes a job resumable after a crash or `kill -9`.

The pool sends each item through the update callable it is given (`Leads.update`, bound) and
reads the client only through public values passed in: it imports neither the resources nor
the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, NamedTuple, Protocol, TypeAlias

import msgspec

from ._config import check_max_retries, check_timeout
from ._constants import BULK_KEPT_BODY, BULK_PROGRESS_INTERVAL, BULK_RATE_HORIZON, BULK_YIELD_EVERY
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    InboxError,
    PermissionDeniedError,
)
from ._journal import Journal
from ._log import logger
from ._ratelimit import RateLimitSnapshot, WindowState, background_limit
from ._types import Priority
from ._validation import check_id, check_platform_id, check_priority
from .models.leads import Lead

__all__ = [
    "BulkFailure",
    "BulkOutcome",
    "BulkProgress",
    "BulkReport",
    "BulkUpdateStream",
    "LeadUpdate",
    "UpdateInput",
]

# The 404 code that means the list itself is gone (a lead missing from it is LEAD_NOT_FOUND).
_LIST_NOT_FOUND: Final = "LIST_NOT_FOUND"


class LeadUpdate(msgspec.Struct, frozen=True, gc=False):
    """One lead's new column values: `data` maps column ids to values (None clears)."""

    platform_id: str
    """The lead's platform (X) user id."""
    data: Mapping[str, Any]
    """Column id -> str, int, float, bool or None."""


UpdateInput: TypeAlias = "LeadUpdate | tuple[str | int, Mapping[str, Any]]"
"""An item of a bulk update: a LeadUpdate or a `(platform_id, data)` pair."""


@dataclass(frozen=True, slots=True)
class BulkFailure:
    """An update that was not applied, and why."""

    platform_id: str
    """The lead's platform id, as given."""
    data: Mapping[str, Any]
    """The values that were not applied."""
    error: Exception
    """The SDK error (an `InboxError`), or the ValueError/TypeError of an invalid item."""
    index: int
    """Position of the item in the input, from 0."""

    @property
    def status_code(self) -> int | None:
        """HTTP status of the failure, if the server answered."""
        return self.error.status_code if isinstance(self.error, APIStatusError) else None

    @property
    def code(self) -> str | None:
        """Inbox error code (e.g. "LEAD_NOT_FOUND"), if the server gave one."""
        return self.error.code if isinstance(self.error, APIStatusError) else None

    @property
    def request_id(self) -> str | None:
        """X-Request-Id of the failed response, if any."""
        return self.error.request_id if isinstance(self.error, APIStatusError) else None


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What happened to one input item, as the streaming form yields it."""

    index: int
    """Position of the item in the input, from 0."""
    platform_id: str
    """The lead's platform id, as given."""
    data: Mapping[str, Any]
    """The values of the update."""
    lead: Lead | None
    """The updated lead, when applied."""
    error: Exception | None
    """Why it failed, when it did."""

    @property
    def ok(self) -> bool:
        """Whether the update was applied."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """A progress report, passed to `on_progress` about twice a second and once at the end."""

    total: int | None
    """Items in the input, when it has a length."""
    done: int
    """Items finished (applied, failed or skipped)."""
    succeeded: int
    """Items applied."""
    failed: int
    """Items failed."""
    skipped: int
    """Items skipped because the journal shows them applied."""
    in_flight: int
    """Requests under way now."""
    rate: float
    """Items finished per second over the last few seconds."""
    eta: float | None
    """Seconds to go, counting the rate-limit budget left in every window; None if unknown."""
    elapsed: float
    """Seconds since the job started."""
    not_attempted: int = 0
    """Items never sent because the job stopped (`aborted`); a rerun with the journal sends them."""
    aborted: Exception | None = None
    """The error that stopped the job, once one has: nothing new is started after it."""
    reserve: float = 0.0
    """The limiter's reserve: the fraction of every window that background calls leave."""
    waiting_interactive: int = 0
    """Interactive callers waiting for the rate limit now (the job's or anyone's)."""
    waiting_background: int = 0
    """Background callers waiting for the rate limit now (the job's or anyone's)."""


@dataclass(slots=True)
class BulkReport:
    """The result of a bulk update: every input item is either counted or listed as failed."""

    total: int = 0
    """Items read from the input."""
    succeeded: int = 0
    """Items applied (not kept: only counted)."""
    skipped: int = 0
    """Items not sent: the journal showed them applied, or they had nothing to set."""
    failed: list[BulkFailure] = field(default_factory=list)
    """Items not applied, with their errors."""
    elapsed: float = 0.0
    """Seconds the job took."""
    attempts: int = 0
    """HTTP attempts the job made, retries included."""
    rate_limit_wait: float = 0.0
    """Wall-clock seconds during which the rate limiter held requests back."""
    not_attempted: int = 0
    """Items never sent because the job stopped (see `aborted`); never counted as failed."""
    aborted: Exception | None = None
    """The error that stopped the job (a revoked token, a deleted list, the same 4xx on every
    first item, a host that is gone), or None when every item was tried."""

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each item that was sent."""
        sent = self.succeeded + sum(1 for f in self.failed if isinstance(f.error, InboxError))
        return max(0, self.attempts - sent)

    @property
    def requests_per_second(self) -> float:
        """Attempts per second over the job."""
        return self.attempts / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Whether every item was applied (or skipped)."""
        return not self.failed and not self.not_attempted and self.aborted is None


Emit: TypeAlias = Callable[[BulkOutcome], Awaitable[None]]


class _Update(Protocol):
    """What the pool sends each item with: `Leads.update`'s signature."""

    def __call__(
        self,
        list_id: str,
        platform_id: str,
        data: Mapping[str, Any],
        /,
        *,
        timeout: float | None,
        max_retries: int | None,
        max_rate_limit_wait: float | None,
        priority: Priority,
    ) -> Awaitable[Lead]: ...


class _BulkRun:
    """The worker pool behind both forms of bulk update.

    It sees the client only through what it is given: `update` sends one item (the list id
    goes with each call, so a bound `Leads.update` serves as is: no wrapper, no extra coroutine
    layer per item), `rate_limit` and `attempts` read the limiter's state and the HTTP attempts
    so far, `base_url` names the job in the journal, and `max_connections` (None for a borrowed
    session) is the pool size a larger `concurrency` would only queue behind.
    """

    def __init__(
        self,
        update: _Update,
        list_id: str,
        updates: Iterable[UpdateInput] | AsyncIterable[UpdateInput],
        *,
        base_url: str,
        rate_limit: Callable[[], RateLimitSnapshot],
        attempts: Callable[[], int],
        max_connections: int | None,
        concurrency: int,
        on_progress: Callable[[BulkProgress], object] | None,
        journal: str | os.PathLike[str] | None,
        max_wait: float,
        keep_leads: bool,
        timeout: float | None = None,
        max_retries: int | None = None,
        priority: Priority = "background",
    ) -> None:
        check_id("list_id", list_id)
        self._priority = check_priority("priority", priority)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise TypeError(f"concurrency must be an int, not {type(concurrency).__name__}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if on_progress is not None and not callable(on_progress):
            raise TypeError("on_progress must be callable")
        if isinstance(updates, (str, bytes, Mapping)) or not isinstance(
            updates, (Iterable, AsyncIterable)
        ):
            raise TypeError(
                "updates must be an iterable or async iterable of (platform_id, data) pairs "
                f"or LeadUpdate objects, not {type(updates).__name__}"
            )
        if max_connections is not None and concurrency > max_connections:
            # More workers than connections only queue inside aiohttp's pool.
            logger.warning(
                "bulk update: concurrency=%d is more than the client's max_connections=%d; "
                "raise max_connections to run that many requests at once",
                concurrency,
                max_connections,
            )
        self._update = update
        self._base_url = base_url
        self._rate_limit = rate_limit
        self._attempts = attempts
        self._list_id = list_id
        self.concurrency = concurrency
        self._on_progress = on_progress
        self._journal_path = journal
        self._max_wait = check_timeout(max_wait, "max_rate_limit_wait")
        self._timeout = None if timeout is None else check_timeout(timeout)
        self._max_retries = None if max_retries is None else check_max_retries(max_retries)
        self._keep_leads = keep_leads
        self._total = _length(updates)
        self._source: AsyncIterator[UpdateInput] | None = None
        self._sync_iter: Iterator[UpdateInput] | None = None
        if isinstance(updates, AsyncIterable):
            self._source = aiter(updates)
        else:
            self._sync_iter = iter(updates)
        self._pull_lock = asyncio.Lock()
        self._index = 0
        self._exhausted = False
        self._input_error: BaseException | None = None
        self._in_flight = 0
        self._samples: deque[tuple[float, int]] = deque()
        # The last update of each lead under way: the next one of that lead waits for it.
        self._lead_tails: dict[str, asyncio.Future[None]] = {}
        # Consecutive failures of one kind that would doom the job once `concurrency` long.
        self._doomed_streak: list[str] = []
        self.report = BulkReport()

    async def run(self, emit: Emit | None) -> BulkReport:
        journal = None
        if self._journal_path is not None:
            # Raises before anything is sent when the journal belongs to another job.
            journal = await Journal.open(
                self._journal_path, base_url=self._base_url, list_id=self._list_id
            )
        started = time.monotonic()
        self._samples.append((started, 0))
        attempts_before = self._attempts()
        wait_before = self._rate_limit().throttled_seconds
        workers = [
            asyncio.ensure_future(self._worker(emit, journal)) for _ in range(self.concurrency)
        ]
        ticker = asyncio.ensure_future(self._tick(started)) if self._on_progress else None
        try:
            await asyncio.gather(*workers)
            if self.report.aborted is not None:
                await self._count_the_rest()
        finally:
            for task in workers:
                task.cancel()
            if ticker is not None:
                ticker.cancel()
            # Wait for every worker to unwind, so no task or connection outlives the call.
            await asyncio.gather(*workers, *(t for t in (ticker,) if t), return_exceptions=True)
            if journal is not None:
                journal.close()
            report = self.report
            report.elapsed = time.monotonic() - started
            report.attempts = self._attempts() - attempts_before
            report.rate_limit_wait = self._rate_limit().throttled_seconds - wait_before
        if self._on_progress is not None:
            self._on_progress(self._progress(started))
        if self._input_error is not None:
            raise self._input_error
        return report

    async def _next(self, journal: Journal | None) -> _Item | None:
        """The next item that needs a worker: sent, or failed as invalid.

        Items that need no request (the journal shows them applied, or they have nothing to set)
        are counted here, under the lock, so that one worker at a time walks through them and
        gives the loop a turn every BULK_YIELD_EVERY of them: a resume skipping 300,000 items
        neither holds the loop nor lets every worker run a batch in the same turn.
        """
        report = self.report
        async with self._pull_lock:
            skipped = 0
            while not self._exhausted and report.aborted is None:
                item = await self._pull()
                if item is _END:
                    break
                index = self._index
                self._index += 1
                report.total += 1
                raw_id, raw_data, problem = _unpack(item)
                platform_id = ""
                if problem is None:
                    try:
                        platform_id = check_platform_id("platform_id", raw_id)
                    except (ValueError, TypeError) as exc:
                        problem = exc
                if problem is not None:
                    return _Item(index, _shown_id(raw_id), raw_data, problem, None)
                if isinstance(raw_data, Mapping) and not raw_data:
                    key = None  # nothing to set: nothing is sent
                else:
                    key = Journal.key_of(platform_id, raw_data) if journal is not None else None
                    if key is None or journal is None or not journal.applied(key):
                        return _Item(index, platform_id, raw_data, None, key)
                report.skipped += 1
                skipped += 1
                if skipped % BULK_YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        return None

    async def _pull(self) -> object:
        """The next input item, or _END once the input is exhausted or has failed."""
        try:
            if self._source is not None:
                return await anext(self._source)
            assert self._sync_iter is not None
            return next(self._sync_iter)
        except (StopIteration, StopAsyncIteration):
            self._exhausted = True
        except Exception as exc:
            # The caller's input failed: stop pulling, finish what is in flight, re-raise.
            self._exhausted = True
            self._input_error = exc
        return _END

    async def _count_the_rest(self) -> None:
        """Read (never send) what is left of the input of a stopped job, to report its size."""
        report = self.report
        while not self._exhausted:
            if await self._pull() is _END:
                break
            report.total += 1
            report.not_attempted += 1
            if report.not_attempted % BULK_YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _worker(self, emit: Emit | None, journal: Journal | None) -> None:
        handled = 0
        while True:
            if handled >= BULK_YIELD_EVERY:
                # Invalid items cost no request, hence no await: give the loop a turn.
                handled = 0
                await asyncio.sleep(0)
            item = await self._next(journal)
            if item is None:
                return
            index, platform_id, raw_data, error, key = item
            lead: Lead | None = None
            if error is None:
                handled = 0
                lead, error = await self._apply_in_order(platform_id, raw_data)
                if lead is None and error is None:
                    self.report.not_attempted += 1  # the job stopped before this one's turn
                    continue
            else:
                handled += 1
            self._finish(index, platform_id, raw_data, lead, error, key, journal)
            if emit is not None:
                kept = lead if self._keep_leads else None
                await emit(BulkOutcome(index, platform_id, _mapping(raw_data), kept, error))

    async def _apply_in_order(
        self, platform_id: str, raw_data: object
    ) -> tuple[Lead | None, Exception | None]:
        """Send one update after any earlier update of the same lead has finished.

        Two rows for one lead sent at once could land in either order; one after the other,
        the last row wins. Returns (None, None) when the job stopped before this one's turn.
        """
        tails = self._lead_tails
        previous = tails.get(platform_id)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        tails[platform_id] = mine
        try:
            if previous is not None:
                await previous
                if self.report.aborted is not None:
                    return None, None
            self._in_flight += 1
            try:
                lead = await self._update(
                    self._list_id,
                    platform_id,
                    raw_data,  # type: ignore[arg-type]
                    max_rate_limit_wait=self._max_wait,
                    timeout=self._timeout,
                    max_retries=self._max_retries,
                    priority=self._priority,
                )
            except Exception as exc:  # any failure of one item is that item's, whatever it is
                return None, _slim(exc)
            finally:
                self._in_flight -= 1
            return lead, None
        finally:
            mine.set_result(None)
            if tails.get(platform_id) is mine:
                del tails[platform_id]

    def _finish(
        self,
        index: int,
        platform_id: str,
        raw_data: object,
        lead: Lead | None,
        error: Exception | None,
        key: int | None,
        journal: Journal | None,
    ) -> None:
        """Count one finished item, journal it, and judge whether the job can go on."""
        report = self.report
        if journal is not None and key is not None:
            # Written before the item counts as done: a crash after this line skips it.
            journal.record(key, error is None, platform_id)
        if error is None:
            report.succeeded += 1
            self._doomed_streak.clear()
            return
        report.failed.append(BulkFailure(platform_id, _mapping(raw_data), error, index))
        if report.aborted is None and self._dooms_job(error):
            report.aborted = error
            logger.warning(
                "bulk update stopped: %s; items not started are reported as not attempted",
                error,
            )

    def _dooms_job(self, error: Exception) -> bool:
        """Whether `error` says every other item would fail the same way."""
        if isinstance(error, (AuthenticationError, PermissionDeniedError)):
            return True
        if isinstance(error, APIStatusError) and error.status_code == 404:
            return error.code == _LIST_NOT_FOUND
        streak = self._doomed_streak
        if isinstance(error, APIConnectionError):
            # Every item in flight failed to connect, retries spent: the host is gone.
            streak.append("connection")
        elif isinstance(error, APIStatusError) and error.status_code in (400, 422):
            if self.report.succeeded:
                return False  # the job works for some items: this one is at fault
            streak.append(f"{error.status_code} {error.code}")
        else:
            streak.clear()
            return False
        if len(set(streak)) > 1:
            del streak[:-1]
        return len(streak) >= self.concurrency

    async def _tick(self, started: float) -> None:
        assert self._on_progress is not None
        while True:
            await asyncio.sleep(BULK_PROGRESS_INTERVAL)
            self._on_progress(self._progress(started))

    def _progress(self, started: float) -> BulkProgress:
        now = time.monotonic()
        report = self.report
        done = report.succeeded + len(report.failed) + report.skipped
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= BULK_RATE_HORIZON:
            samples.popleft()
        then, done_then = samples[0]
        rate = (done - done_then) / (now - then) if now > then else 0.0
        limits = self._rate_limit()
        eta = None
        if self._total is not None:
            eta = self._eta(self._total - done, rate, limits)
        return BulkProgress(
            total=self._total,
            done=done,
            succeeded=report.succeeded,
            failed=len(report.failed),
            skipped=report.skipped,
            in_flight=self._in_flight,
            rate=rate,
            eta=eta,
            elapsed=now - started,
            not_attempted=report.not_attempted,
            aborted=report.aborted,
            reserve=limits.reserve,
            waiting_interactive=limits.waiting_interactive,
            waiting_background=limits.waiting_background,
        )

    def _eta(self, remaining: int, rate: float, limits: RateLimitSnapshot) -> float | None:
        if remaining <= 0:
            return 0.0
        estimate = remaining / rate if rate > 0 else None
        # Each window can take what is left of it now, then `limit` per `seconds` after that:
        # a job larger than the hour's or the day's budget waits for those windows to slide.
        # Background work gets only the part of each window above the reserve, and is paced
        # over the shortest window (see the limiter's docstring): that pace is a floor too.
        background = self._priority == "background"
        reserve = limits.reserve if background else 0.0
        shortest: WindowState | None = None
        for window in limits.windows:
            usable = background_limit(window.limit, reserve) if background else window.limit
            beyond = remaining - max(0, usable - window.in_use)
            if beyond > 0:
                floor = math.ceil(beyond / usable) * window.seconds
                estimate = floor if estimate is None else max(estimate, floor)
            if shortest is None or window.seconds < shortest.seconds:
                shortest = window
        if background and shortest is not None:
            paced = remaining * shortest.seconds / background_limit(shortest.limit, reserve)
            estimate = paced if estimate is None else max(estimate, paced)
        return estimate


class BulkUpdateStream:
    """Yields each update's outcome as it finishes; use it as `async with ... as stream`.

    async with client.leads.bulk_update_stream(list_id, updates) as stream:
        async for outcome in stream:
            if not outcome.ok:
                print(outcome.platform_id, outcome.error)
    print(stream.report.succeeded)
    """

    def __init__(self, run: _BulkRun) -> None:
        self._run = run
        self._queue: asyncio.Queue[BulkOutcome | None] = asyncio.Queue(run.concurrency)
        self._task: asyncio.Task[BulkReport] | None = None

    @property
    def report(self) -> BulkReport:
        """Counts so far; final once iteration has finished."""
        return self._run.report

    async def __aenter__(self) -> BulkUpdateStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[BulkOutcome]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[BulkOutcome]:
        if self._task is not None:
            raise RuntimeError("a BulkUpdateStream can be iterated only once")
        self._task = task = asyncio.ensure_future(self._drive())
        try:
            while True:
                outcome = await self._queue.get()
                if outcome is None:
                    break
                yield outcome
            await task  # re-raises an input error
        finally:
            if not task.done():
                task.cancel()

    async def _drive(self) -> BulkReport:
        try:
            report = await self._run.run(self._queue.put)
        except asyncio.CancelledError:
            raise  # closed by aclose(): nobody is reading any more
        except BaseException:
            await self._queue.put(None)
            raise
        await self._queue.put(None)
        return report

    async def aclose(self) -> None:
        """Stop the workers (if still running) and wait for them to unwind."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_END: Final = object()


class _Item(NamedTuple):
    """An input item ready for a worker."""

    position: int
    """Its index in the input."""
    platform_id: str
    """Checked and canonical; for an invalid item, a short text of what was given."""
    data: object
    problem: Exception | None
    """Why the item is invalid, if it is."""
    key: int | None
    """Its journal key, when there is a journal."""


def _unpack(item: object) -> tuple[object, object, Exception | None]:
    """Split an input item; an invalid one becomes that item's failure, not the job's."""
    if isinstance(item, LeadUpdate):
        return item.platform_id, item.data, None
    if isinstance(item, tuple) and len(item) == 2:
        return item[0], item[1], None
    shown = _shown_id(item)
    problem = TypeError(
        f"each update must be a LeadUpdate or a (platform_id, data) pair, got {shown}"
    )
    return shown, {}, problem


def _mapping(data: object) -> Mapping[str, Any]:
    """The item's data as reported: the mapping given, or {} for anything else."""
    return data if isinstance(data, Mapping) else {}


def _shown_id(value: object) -> str:
    """A short text for whatever the caller gave as an id: it may not even have a str()."""
    if isinstance(value, str):
        return value
    try:
        text = str(value) if isinstance(value, int) else repr(value)
    except Exception:  # an int over the digit limit, a __repr__ that raises
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _slim(error: Exception) -> Exception:
    """The error as a report keeps it: type, status, code, message, request id; little else.

    A failure lives as long as the report. Its traceback frames hold the response, the stream
    and the request (about 8 KB an item), and the response's headers and body can be large: a
    job with 19,000 failures grew by 326 MB before.
    """
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link.__context__ = None
        link = link.__cause__
    if isinstance(error, APIStatusError):
        error.body = error.body[:BULK_KEPT_BODY]
        # A plain dict of the few headers worth keeping, instead of the whole multidict.
        error.headers = {
            name: value for name, value in error.headers.items() if name.lower() in _KEPT_HEADERS
        }
    return error


_KEPT_HEADERS: Final = frozenset(
    {"retry-after", "x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining"}
    | {"x-ratelimit-reset", "www-authenticate", "deprecation", "sunset"}
)


def _length(updates: object) -> int | None:
    try:
        return len(updates)  # type: ignore[arg-type]
    except TypeError:
        return None
