"""Bulk lead updates: a bounded pool of workers over a lazily pulled input, one outcome per item.

Unlike `asyncio.gather` or aiometer, a failure here never cancels the rest, the input is pulled
only as workers free up (a generator of a million updates runs in constant memory), and every
item ends in exactly one outcome: applied, or failed with its error. Successes are counted, not
kept. An optional journal makes a job resumable after a crash or `kill -9`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
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
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import msgspec

from ._config import check_timeout
from ._exceptions import APIStatusError, InboxError
from ._log import logger
from ._validation import check_id
from .models.leads import Lead

if TYPE_CHECKING:
    from .resources.leads import Leads

__all__ = [
    "BulkFailure",
    "BulkOutcome",
    "BulkProgress",
    "BulkReport",
    "BulkUpdateStream",
    "LeadUpdate",
    "UpdateInput",
]

_PROGRESS_INTERVAL: Final = 0.5
_RATE_HORIZON: Final = 5.0


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


@dataclass(slots=True)
class BulkReport:
    """The result of a bulk update: every input item is either counted or listed as failed."""

    total: int = 0
    """Items read from the input."""
    succeeded: int = 0
    """Items applied (not kept: only counted)."""
    skipped: int = 0
    """Items the journal showed as applied by an earlier run."""
    failed: list[BulkFailure] = field(default_factory=list)
    """Items not applied, with their errors."""
    elapsed: float = 0.0
    """Seconds the job took."""
    attempts: int = 0
    """HTTP attempts the job made, retries included."""
    rate_limit_wait: float = 0.0
    """Wall-clock seconds during which the rate limiter held requests back."""

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
        """Whether every item was applied."""
        return not self.failed


class Journal:
    """Append-only record of finished items; a rerun skips what it shows applied.

    One line per finished item, flushed before the item counts as done, so a crash loses at most
    the items that were in flight. A torn last line (a `kill -9` mid-write) is ignored.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._applied: set[int] = set()
        if self.path.exists():
            with self.path.open("rb") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == b"ok":
                        with contextlib.suppress(ValueError):
                            self._applied.add(int(parts[1], 16))
        self._file = self.path.open("a", encoding="utf-8")

    @staticmethod
    def key_of(platform_id: object, data: object) -> int | None:
        """A 64-bit digest of one update (the same lead, the same values); None if invalid."""
        if not isinstance(platform_id, (str, int)) or not isinstance(data, Mapping):
            return None
        try:
            blob = str(platform_id).encode() + b"\0" + _canonical.encode(dict(data))
        except (TypeError, ValueError):
            return None
        return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big")

    def applied(self, key: int) -> bool:
        """Whether an earlier run applied this update."""
        return key in self._applied

    def record(self, key: int, ok: bool, platform_id: str) -> None:
        """Append one finished item and flush it to the OS."""
        self._file.write(f"{'ok' if ok else 'failed'} {key:016x} {platform_id!r}\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


_canonical: Final = msgspec.json.Encoder(order="sorted")

Emit: TypeAlias = Callable[[BulkOutcome], Awaitable[None]]


class _BulkRun:
    """The worker pool behind both forms of bulk update."""

    def __init__(
        self,
        leads: Leads,
        list_id: str,
        updates: Iterable[UpdateInput] | AsyncIterable[UpdateInput],
        *,
        concurrency: int,
        on_progress: Callable[[BulkProgress], object] | None,
        journal: str | os.PathLike[str] | None,
        max_wait: float,
        keep_leads: bool,
    ) -> None:
        check_id("list_id", list_id)
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
        client = leads._client
        if client._transport.owns_session and concurrency > client._config.max_connections:
            # More workers than connections only queue inside aiohttp's pool.
            logger.warning(
                "bulk update: concurrency=%d is more than the client's max_connections=%d; "
                "raise max_connections to run that many requests at once",
                concurrency,
                client._config.max_connections,
            )
        self._leads = leads
        self._list_id = list_id
        self._concurrency = concurrency
        self._on_progress = on_progress
        self._journal_path = journal
        self._max_wait = check_timeout(max_wait, "max_rate_limit_wait")
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
        self.report = BulkReport()

    async def run(self, emit: Emit | None) -> BulkReport:
        client = self._leads._client
        journal = Journal(self._journal_path) if self._journal_path is not None else None
        started = time.monotonic()
        self._samples.append((started, 0))
        attempts_before = client.stats.attempts
        wait_before = client.rate_limit.throttled_seconds
        workers = [
            asyncio.ensure_future(self._worker(emit, journal)) for _ in range(self._concurrency)
        ]
        ticker = asyncio.ensure_future(self._tick(started)) if self._on_progress else None
        try:
            await asyncio.gather(*workers)
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
            report.attempts = client.stats.attempts - attempts_before
            report.rate_limit_wait = client.rate_limit.throttled_seconds - wait_before
        if self._on_progress is not None:
            self._on_progress(self._progress(started))
        if self._input_error is not None:
            raise self._input_error
        return report

    async def _next(self) -> tuple[int, object, object, Exception | None] | None:
        async with self._pull_lock:
            if self._exhausted:
                return None
            try:
                if self._source is not None:
                    item = await anext(self._source)
                else:
                    assert self._sync_iter is not None
                    item = next(self._sync_iter)
            except (StopIteration, StopAsyncIteration):
                self._exhausted = True
                return None
            except Exception as exc:
                # The caller's input failed: stop pulling, finish what is in flight, re-raise.
                self._exhausted = True
                self._input_error = exc
                return None
            index = self._index
            self._index += 1
            self.report.total += 1
        return (index, *_unpack(item))

    async def _worker(self, emit: Emit | None, journal: Journal | None) -> None:
        report = self.report
        update = self._leads.update
        while True:
            item = await self._next()
            if item is None:
                return
            index, raw_id, raw_data, problem = item
            key = None
            if journal is not None and problem is None:
                key = Journal.key_of(raw_id, raw_data)
                if key is not None and journal.applied(key):
                    report.skipped += 1
                    continue
            lead: Lead | None = None
            error: Exception | None = problem
            if error is None:
                self._in_flight += 1
                try:
                    # update() checks the item before sending: a bad one fails alone.
                    lead = await update(
                        self._list_id,
                        raw_id,  # type: ignore[arg-type]
                        raw_data,  # type: ignore[arg-type]
                        max_rate_limit_wait=self._max_wait,
                    )
                except (InboxError, ValueError, TypeError) as exc:
                    error = exc
                finally:
                    self._in_flight -= 1
            platform_id = str(raw_id)
            data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
            if journal is not None and key is not None:
                # Written before the item counts as done: a crash after this line skips it.
                journal.record(key, error is None, platform_id)
            if error is None:
                report.succeeded += 1
            else:
                report.failed.append(BulkFailure(platform_id, data, error, index))
            if emit is not None:
                kept = lead if self._keep_leads else None
                await emit(BulkOutcome(index, platform_id, data, kept, error))

    async def _tick(self, started: float) -> None:
        assert self._on_progress is not None
        while True:
            await asyncio.sleep(_PROGRESS_INTERVAL)
            self._on_progress(self._progress(started))

    def _progress(self, started: float) -> BulkProgress:
        now = time.monotonic()
        report = self.report
        done = report.succeeded + len(report.failed) + report.skipped
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= _RATE_HORIZON:
            samples.popleft()
        then, done_then = samples[0]
        rate = (done - done_then) / (now - then) if now > then else 0.0
        eta = None
        if self._total is not None:
            eta = self._eta(self._total - done, rate)
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
        )

    def _eta(self, remaining: int, rate: float) -> float | None:
        if remaining <= 0:
            return 0.0
        estimate = remaining / rate if rate > 0 else None
        # Each window can take what is left of it now, then `limit` per `seconds` after that:
        # a job larger than the hour's or the day's budget waits for those windows to slide.
        for window in self._leads._client.rate_limit.windows:
            beyond = remaining - window.remaining
            if beyond > 0:
                floor = math.ceil(beyond / window.limit) * window.seconds
                estimate = floor if estimate is None else max(estimate, floor)
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
        self._queue: asyncio.Queue[BulkOutcome | None] = asyncio.Queue(run._concurrency)
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


def _unpack(item: object) -> tuple[object, object, Exception | None]:
    """Split an input item; an invalid one becomes that item's failure, not the job's."""
    if isinstance(item, LeadUpdate):
        return item.platform_id, item.data, None
    if isinstance(item, tuple) and len(item) == 2:
        return item[0], item[1], None
    shown = repr(item)[:60]
    problem = TypeError(
        f"each update must be a LeadUpdate or a (platform_id, data) pair, got {shown}"
    )
    return shown, {}, problem


def _length(updates: object) -> int | None:
    try:
        return len(updates)  # type: ignore[arg-type]
    except TypeError:
        return None
