"""Client-side rate limiting against the fake server's real sliding windows (scaled down)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from inbox_async import InboxClient, RateLimiter, RateLimitError, ThrottleEvent
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, TOKEN, eventually, lead_ids, seed_list

IDS = lead_ids(120, 70_000_000)


async def _run(
    count: int, concurrency: int, update: Callable[[str], Awaitable[object]]
) -> list[BaseException | None]:
    """Runs `count` updates with at most `concurrency` at once; returns each one's error."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(pid: str) -> BaseException | None:
        async with semaphore:
            try:
                await update(pid)
            except Exception as exc:
                return exc
            return None

    return await asyncio.gather(*(one(pid) for pid in IDS[:count]))


def _seed(server: FakeInboxServer) -> str:
    list_id = seed_list(server, IDS)
    return list_id


@pytest.mark.slow
async def test_told_the_exact_limits_the_server_never_says_429() -> None:
    async with FakeInboxServer(token=TOKEN, rate_limits=[(20, 1.0)]) as server:
        list_id = _seed(server)
        async with InboxClient(TOKEN, base_url=server.url, rate_limits=[(20, 1.0)]) as client:
            started = time.monotonic()
            errors = await _run(
                100, 16, lambda pid: client.leads.update(list_id, pid, {COL_COMPANY: pid})
            )
            elapsed = time.monotonic() - started
    assert errors == [None] * 100
    assert server.status_counts[429] == 0
    assert server.status_counts[200] == 100
    # 100 at 20 per second: the ideal is about 5 s (4 s after the first full window).
    assert elapsed <= 2 * 5.0
    assert all(server.lead_data(list_id, pid) == {COL_COMPANY: pid} for pid in IDS[:100])


@pytest.mark.slow
async def test_two_windows_at_once_never_trip_the_server() -> None:
    limits = [(10, 0.5), (30, 3.0)]
    async with FakeInboxServer(token=TOKEN, rate_limits=limits) as server:
        list_id = _seed(server)
        async with InboxClient(TOKEN, base_url=server.url, rate_limits=limits) as client:
            errors = await _run(
                40, 16, lambda pid: client.leads.update(list_id, pid, {COL_COMPANY: "x"})
            )
    assert errors == [None] * 40
    assert server.status_counts[429] == 0
    # Check the arrivals ourselves: never more than a window's worth inside that window.
    arrivals = sorted(r.received_at for r in server.requests)
    for count, seconds in limits:
        for i in range(len(arrivals) - count):
            assert arrivals[i + count] - arrivals[i] > seconds - 0.01


@pytest.mark.slow
async def test_not_told_the_limits_it_learns_them_from_the_headers() -> None:
    async with FakeInboxServer(token=TOKEN, rate_limits=[(20, 1.0)]) as server:
        list_id = _seed(server)
        async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
            errors = await _run(
                100, 16, lambda pid: client.leads.update(list_id, pid, {COL_COMPANY: "x"})
            )
    assert errors == [None] * 100
    assert server.status_counts[200] == 100
    assert server.status_counts[429] <= 16


@pytest.mark.slow
async def test_a_429_closes_one_gate_for_every_caller() -> None:
    async with FakeInboxServer(token=TOKEN) as server:
        list_id = _seed(server)
        server.add_fault(Fault.status(429, retry_after=1))
        async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
            first = asyncio.create_task(client.leads.update(list_id, IDS[0], {COL_COMPANY: "a"}))
            await eventually(lambda: bool(server.requests))
            await eventually(lambda: client.rate_limit.gate_closed)  # the 429 is seen
            assert client.rate_limit.gate_closed
            others = [client.leads.update(list_id, pid, {COL_COMPANY: "b"}) for pid in IDS[1:11]]
            await asyncio.gather(first, *others)
    rejected_at = server.requests[0].received_at
    later = [r.received_at for r in server.requests[1:]]
    assert len(later) == 11
    # Nobody came back before Retry-After had passed.
    assert min(later) - rejected_at >= 1.0
    assert server.status_counts[429] == 1


async def test_a_wait_beyond_the_cap_raises_instead_of_hanging() -> None:
    async with FakeInboxServer(token=TOKEN) as server:
        list_id = _seed(server)
        async with InboxClient(
            TOKEN, base_url=server.url, rate_limits=[(1, 60.0)], max_rate_limit_wait=5
        ) as client:
            await client.leads.update(list_id, IDS[0], {COL_COMPANY: "a"})
            started = time.monotonic()
            with pytest.raises(RateLimitError) as info:
                await client.leads.update(list_id, IDS[1], {COL_COMPANY: "b"})
            assert time.monotonic() - started < 1.0
    assert info.value.retry_after is not None and 55 < info.value.retry_after <= 60
    assert info.value.code == "CLIENT_RATE_LIMITED"
    assert len(server.requests) == 1


async def test_a_spent_server_budget_is_waited_for_or_raised_without_sending() -> None:
    async with FakeInboxServer(token=TOKEN, rate_limits=[(3, 30.0)]) as server:
        list_id = _seed(server)
        async with InboxClient(
            TOKEN, base_url=server.url, rate_limits=None, max_rate_limit_wait=5
        ) as client:
            for pid in IDS[:3]:
                await client.leads.update(list_id, pid, {COL_COMPANY: "a"})
            snapshot = client.rate_limit
            assert snapshot.server_remaining == 0
            with pytest.raises(RateLimitError) as info:
                await client.leads.update(list_id, IDS[3], {COL_COMPANY: "b"})
    assert info.value.retry_after is not None and info.value.retry_after > 5
    assert len(server.requests) == 3
    assert server.status_counts[429] == 0


@pytest.mark.slow
async def test_one_limiter_shared_by_two_clients_shares_the_budget() -> None:
    limiter = RateLimiter([(5, 1.0)])
    async with FakeInboxServer(token=TOKEN, rate_limits=[(5, 1.0)]) as server:
        list_id = _seed(server)
        async with (
            InboxClient(TOKEN, base_url=server.url, limiter=limiter) as a,
            InboxClient(TOKEN, base_url=server.url, limiter=limiter) as b,
        ):
            await asyncio.gather(
                *(a.leads.update(list_id, pid, {COL_COMPANY: "a"}) for pid in IDS[:8]),
                *(b.leads.update(list_id, pid, {COL_COMPANY: "b"}) for pid in IDS[8:16]),
            )
            assert a.rate_limit == b.rate_limit
    assert server.status_counts[429] == 0
    assert server.status_counts[200] == 16


@pytest.mark.slow
async def test_snapshot_and_throttle_hook() -> None:
    events: list[ThrottleEvent] = []
    async with FakeInboxServer(token=TOKEN, rate_limits=[(100, 60.0)]) as server:
        list_id = _seed(server)
        async with InboxClient(
            TOKEN, base_url=server.url, rate_limits=[(2, 0.3)], on_throttle=events.append
        ) as client:
            await asyncio.gather(
                *(client.leads.update(list_id, pid, {COL_COMPANY: "a"}) for pid in IDS[:5])
            )
            snapshot = client.rate_limit
    assert [w.limit for w in snapshot.windows] == [2]
    assert snapshot.windows[0].in_use <= 2
    assert snapshot.server_limit == 100
    assert snapshot.server_remaining == 95
    assert snapshot.in_flight == 0 and snapshot.waiting == 0
    assert snapshot.throttled_seconds > 0
    assert events and events[0].reason == "window"


async def test_a_cancelled_waiter_does_not_keep_a_slot() -> None:
    limiter = RateLimiter([(1, 0.3)])
    await limiter.acquire(max_wait=10)
    waiter = asyncio.create_task(limiter.acquire(max_wait=10))
    await eventually(lambda: limiter.snapshot().waiting == 1)
    assert limiter.snapshot().waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await limiter.release(sent=True)
    # The cancelled waiter took nothing: the next caller gets the slot once the window passes.
    await asyncio.wait_for(limiter.acquire(max_wait=10), 1.0)
    snapshot = limiter.snapshot()
    assert snapshot.waiting == 0
    assert snapshot.in_flight == 1
    assert snapshot.windows[0].in_use == 1


async def test_a_request_that_never_left_gives_its_slot_back_at_once() -> None:
    limiter = RateLimiter([(1, 60.0)])
    await limiter.acquire(max_wait=1)
    await limiter.release(sent=False)
    await asyncio.wait_for(limiter.acquire(max_wait=1), 0.5)


@pytest.mark.slow
async def test_no_start_up_burst_beyond_the_window() -> None:
    limiter = RateLimiter([(5, 0.5)])
    loop = asyncio.get_running_loop()
    granted: list[float] = []

    async def one() -> None:
        await limiter.acquire(max_wait=10)
        granted.append(loop.time())
        await limiter.release(sent=True)

    await asyncio.gather(*(one() for _ in range(12)))
    granted.sort()
    for i in range(len(granted) - 5):
        assert granted[i + 5] - granted[i] >= 0.5 - 0.01


@pytest.mark.parametrize(
    ("limits", "error"),
    [
        ([(0, 1.0)], ValueError),
        ([(5, 0)], ValueError),
        ([(5, float("inf"))], ValueError),
        ([5], TypeError),
        ("300/60", TypeError),
    ],
)
def test_bad_rate_limits_are_refused(limits: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="rate_limits"):
        InboxClient("t", base_url="http://127.0.0.1:1/api/v1", rate_limits=limits)  # type: ignore[arg-type]


def test_limiter_and_rate_limits_together_are_refused() -> None:
    with pytest.raises(ValueError, match="limiter"):
        InboxClient(
            "t", base_url="http://127.0.0.1:1/api/v1", limiter=RateLimiter(), rate_limits=None
        )


@pytest.mark.slow
def test_the_windows_count_exactly_what_a_plain_model_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The limiter keeps one log of answer times for all windows, takes slots without looking
    # at the windows while it knows there is room, and trims the log in batches. Checked here
    # against the definition, on a clock the test moves, over enough requests to trim often.
    import random

    from inbox_async._ratelimit import _local as _limiter

    clock = [1000.0]
    monkeypatch.setattr(_limiter, "_now", lambda: clock[0])
    windows = [(40, 0.25), (150, 1.0), (400, 4.0)]
    limiter = RateLimiter(windows)
    rng = random.Random(7)
    answered: list[float] = []
    in_flight = 0
    granted = refused = 0
    for _ in range(30_000):
        step = rng.random()
        if step < 0.5:
            clock[0] += rng.expovariate(200.0)
            now = clock[0]
            free = all(
                in_flight + sum(1 for t in answered if t > now - seconds) < limit
                for limit, seconds in windows
            )
            assert limiter.try_acquire() is free
            if free:
                in_flight += 1
                granted += 1
            else:
                refused += 1
        elif in_flight:
            sent = step < 0.95
            limiter.release_nowait(None, sent=sent)
            in_flight -= 1
            if sent:
                answered.append(clock[0])
        # Only the last 4 s can still count: keeps the model's own work small.
        answered = [t for t in answered if t > clock[0] - 4.0]
        if rng.random() < 0.01:
            snapshot = limiter.snapshot()
            assert snapshot.in_flight == in_flight
            for state, (limit, seconds) in zip(snapshot.windows, windows, strict=True):
                expected = in_flight + sum(1 for t in answered if t > clock[0] - seconds)
                assert (state.limit, state.seconds, state.in_use) == (limit, seconds, expected)
    assert granted > 5_000 and refused > 1_000, (granted, refused)  # both answers, often
    log = limiter._log
    assert log.offset > 0 and len(log.times) < 3 * 400 + 2 * 1024  # trimmed, and bounded


def test_a_limiter_kept_across_event_loops_still_wakes_its_waiters() -> None:
    # A module-level limiter outlives an asyncio.run() (a script, a test suite with a loop per
    # test). A timer it armed on the first loop never fires once that loop is closed: the next
    # loop's waiter must get a timer of its own, not wait out max_wait and fail.
    limiter = RateLimiter([(1, 0.3)])

    async def leave_a_timer_behind() -> None:
        assert limiter.try_acquire()
        limiter.release_nowait(None, sent=True)  # the window is full for 0.3 s
        waiter = asyncio.ensure_future(limiter.acquire(max_wait=5))
        # It waits, on a timer of this loop.
        await eventually(lambda: limiter.snapshot().waiting == 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    async def wait_for_the_slot() -> float:
        started = time.monotonic()
        await limiter.acquire(max_wait=3)
        return time.monotonic() - started

    asyncio.run(leave_a_timer_behind())
    assert asyncio.run(wait_for_the_slot()) < 2.0
