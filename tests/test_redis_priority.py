"""RedisRateLimiter priorities against a real redis-server: order, reserve, pacing, wake-ups.

Several limiters on one key stand for several processes (each has its own connection, queue
entries and wake-up subscription); the order and the reserve live in Redis, not in a limiter.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import textwrap
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from inbox_async import RateLimitError
from inbox_async._ratelimit import background_limit
from inbox_async._ratelimit._redis import RedisRateLimiter
from inbox_async._types import Priority

from .conftest import eventually, seed_list

# Real Redis and real seconds: the matrix runs them on .venv's interpreter only, where their
# timing is not shared with three other runs (scripts/_matrix.py).
pytestmark = pytest.mark.slow

HOUR = 3600.0
DAY = 86_400.0


@pytest.fixture
async def check(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def _fill(limiter: RedisRateLimiter, count: int) -> None:
    """Take and answer `count` slots: the windows hold them for one window from now."""
    for _ in range(count):
        ticket = await limiter.acquire(max_wait=1, timeout=5)
        await limiter.release(ticket, sent=True, status=200, headers={})


async def test_an_interactive_caller_overtakes_background_waiters_of_another_process(
    redis_url: str,
) -> None:
    key = "prio:overtake"
    async with (
        RedisRateLimiter(redis_url, limits=[(1, 1.0)], key=key, reserve=0) as bulk,
        RedisRateLimiter(redis_url, limits=[(1, 1.0)], key=key, reserve=0) as web,
    ):
        await _fill(bulk, 1)
        order: list[str] = []

        async def take(limiter: RedisRateLimiter, name: str, priority: Priority) -> None:
            ticket = await limiter.acquire(max_wait=10, timeout=5, priority=priority)
            order.append(name)
            await limiter.release(ticket, sent=True, status=200, headers={})

        background = [asyncio.ensure_future(take(bulk, f"b{i}", "background")) for i in range(3)]
        await eventually(lambda: bulk.snapshot().waiting_background == 3)
        assert bulk.snapshot().waiting_interactive == 0
        assert bulk.snapshot().reserve == 0.0
        started = time.monotonic()
        await asyncio.wait_for(take(web, "i", "interactive"), 3)
        took = time.monotonic() - started
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    # The slot that freed a second after the fill went to the interactive caller, queued last
    # (a background one may follow a second later on a loaded machine, before its cancel).
    assert order[:1] == ["i"]
    assert took < 1.5


async def test_fifo_within_a_priority_across_processes(redis_url: str) -> None:
    key = "prio:fifo"
    async with (
        RedisRateLimiter(redis_url, limits=[(1, 0.3)], key=key, reserve=0) as a,
        RedisRateLimiter(redis_url, limits=[(1, 0.3)], key=key, reserve=0) as b,
    ):
        await _fill(a, 1)
        order: list[int] = []

        async def take(limiter: RedisRateLimiter, i: int) -> None:
            ticket = await limiter.acquire(max_wait=10, timeout=5)
            order.append(i)
            await limiter.release(ticket, sent=True, status=200, headers={})

        def waiting() -> int:
            return a.snapshot().waiting + b.snapshot().waiting

        tasks = []
        for i in range(4):
            tasks.append(asyncio.ensure_future(take((a, b)[i % 2], i)))
            expected = i + 1
            await eventually(lambda: waiting() == expected)  # noqa: B023 - awaited at once
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [0, 1, 2, 3]


async def test_every_queue_key_expires(
    redis_url: str,
    check: aioredis.Redis,
) -> None:
    key = "prio:expiry"
    async with RedisRateLimiter(redis_url, limits=[(1, 0.5)], key=key, reserve=0) as limiter:
        await _fill(limiter, 1)
        waiters = [
            asyncio.ensure_future(limiter.acquire(max_wait=10, timeout=5, priority=p))
            for p in ("background", "interactive", "background")
        ]
        await eventually(lambda: limiter.snapshot().waiting == 3)
        names = [k async for k in check.scan_iter(match="{" + key + "}*")]
        assert len(names) >= 4  # the window, the queue and its meta and lapse keys
        for name in names:
            assert await check.pttl(name) > 0, name
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


@pytest.mark.parametrize(
    "limits",
    [
        [(1000, 1.0), (10, HOUR)],
        [(1000, 1.0), (2000, HOUR), (10, DAY)],
    ],
    ids=["hour", "day"],
)
async def test_background_stops_at_the_reserve_of_every_window_and_interactive_goes_on(
    redis_url: str,
    limits: list[tuple[int, float]],
) -> None:
    key = f"prio:window-reserve:{len(limits)}"
    async with (
        RedisRateLimiter(redis_url, limits=limits, key=key, reserve=0.1) as bulk,
        RedisRateLimiter(redis_url, limits=limits, key=key, reserve=0.1) as web,
    ):
        for _ in range(9):
            ticket = await bulk.acquire(max_wait=1, timeout=5, priority="background")
            await bulk.release(ticket, sent=True, status=200, headers={})
        # The tenth slot of the small window is the reserve: background work is told at once.
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await bulk.acquire(max_wait=0.5, timeout=5, priority="background")
        assert time.monotonic() - started < 0.4
        assert info.value.retry_after is not None and info.value.retry_after > HOUR - 60
        # The web app, in another process, still gets it; then the window is spent for all.
        ticket = await web.acquire(max_wait=0.5, timeout=5)
        await web.release(ticket, sent=True, status=200, headers={})
        with pytest.raises(RateLimitError):
            await web.acquire(max_wait=0.5, timeout=5)


async def test_background_keeps_off_the_servers_reserve_shared_through_redis(
    redis_url: str,
) -> None:
    key = "prio:server-reserve"
    async with (
        RedisRateLimiter(redis_url, limits=[(1000, 1.0)], key=key, reserve=0.1) as web,
        RedisRateLimiter(redis_url, limits=[(1000, 1.0)], key=key, reserve=0.1) as bulk,
    ):
        ticket = await web.acquire(max_wait=1, timeout=5)
        # The server counts every tool of the team: 12 of its 100 remain, the reserve is 10.
        headers = {
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "12",
            "X-RateLimit-Reset": str(int(time.time()) + 30),
        }
        await web.release(ticket, sent=True, status=200, headers=headers)
        # Another process's background work takes what is above the reserve, then stops.
        for _ in range(2):
            ticket = await bulk.acquire(max_wait=1, timeout=5, priority="background")
            await bulk.release(ticket, sent=True, status=200)
        with pytest.raises(RateLimitError) as info:
            await bulk.acquire(max_wait=0.5, timeout=5, priority="background")
        assert info.value.retry_after is not None and info.value.retry_after > 20
        ticket = await bulk.acquire(max_wait=0.5, timeout=5)  # interactive: not held back
        await bulk.release(ticket, sent=True, status=200)


async def _bulk_with_readings(limiter: RedisRateLimiter, count: int, others: int) -> list[float]:
    """`count` background grants, each answered with the Remaining of a server that counts them
    (and `others` requests of another tool of the team); returns when each was granted."""
    granted: list[float] = []
    for n in range(1, count + 1):
        ticket = await limiter.acquire(max_wait=3, timeout=5, priority="background")
        granted.append(time.monotonic())
        headers = {
            "X-RateLimit-Limit": "20",
            "X-RateLimit-Remaining": str(max(0, 20 - n - others)),
            # A long Reset: a reading that held background work back would hold it for 30 s.
            "X-RateLimit-Reset": str(int(time.time()) + 30),
        }
        await limiter.release(ticket, sent=True, status=200, headers=headers)
    return granted


async def test_a_bulk_job_alone_is_not_held_back_by_its_own_usage_on_the_server(
    redis_url: str,
) -> None:
    # The server's Remaining counts our own bulk job: at its 18 of 20 the server says 2 remain,
    # which is the reserve, but nobody else uses it. Once the window frees, background work
    # goes on at once rather than at the reading's Reset.
    key = "prio:server-reserve-ours"
    async with RedisRateLimiter(redis_url, limits=[(20, 1.0)], key=key, reserve=0.1) as bulk:
        granted = await _bulk_with_readings(bulk, 18, 0)
        ticket = await bulk.acquire(max_wait=3, timeout=5, priority="background")
        await bulk.release(ticket, sent=True, status=200)
        took = time.monotonic() - granted[0]
    assert 0.9 <= took < 2.5  # the first slot's expiry, not the 30 s Reset


async def test_another_tools_usage_on_the_server_takes_background_works_room(
    redis_url: str,
) -> None:
    # The server counts 4 requests more than ours: another tool of the team. Background work
    # leaves the reserve to the web app: 14 go, the 15th waits for a slot of ours to free.
    key = "prio:server-reserve-others"
    async with (
        RedisRateLimiter(redis_url, limits=[(20, 1.0)], key=key, reserve=0.1) as bulk,
        RedisRateLimiter(redis_url, limits=[(20, 1.0)], key=key, reserve=0.1) as web,
    ):
        granted = await _bulk_with_readings(bulk, 14, 4)
        ticket = await bulk.acquire(max_wait=3, timeout=5, priority="background")
        took = time.monotonic() - granted[0]
        await bulk.release(ticket, sent=True, status=200)
        assert 0.9 <= took < 2.5
        assert granted[-1] - granted[0] < 0.9  # the first 14 were not held back
        # Interactive calls are not held back by it.
        ticket = await web.acquire(max_wait=0.5, timeout=5)
        await web.release(ticket, sent=True, status=200)


@pytest.mark.parametrize("priority", ["interactive", "background"])
async def test_a_cancelled_waiter_gives_its_place_back(
    redis_url: str,
    check: aioredis.Redis,
    priority: Priority,
) -> None:
    key = f"prio:cancel:{priority}"
    # A 3 s window: the set-up below must not outlast it (with 1 s, a loaded machine let the
    # slot free before the cancel, and `gone` got it).
    async with (
        RedisRateLimiter(redis_url, limits=[(1, 3.0)], key=key, reserve=0) as a,
        RedisRateLimiter(redis_url, limits=[(1, 3.0)], key=key, reserve=0) as b,
    ):
        await _fill(a, 1)
        started = time.monotonic()
        gone = asyncio.ensure_future(a.acquire(max_wait=10, timeout=5, priority=priority))
        await eventually(lambda: a.snapshot().waiting == 1)
        after = asyncio.ensure_future(b.acquire(max_wait=10, timeout=5, priority=priority))
        await eventually(lambda: b.snapshot().waiting == 1)
        gone.cancel()
        results = await asyncio.gather(gone, return_exceptions=True)
        if not isinstance(results[0], asyncio.CancelledError):
            # It was granted just before the cancel (seen about once in 20 runs in a suite run,
            # not in a loop of its own; cause not found): hand the slot back unused, as a caller
            # would, and the one behind must still get it.
            await a.release(results[0], sent=False)
        await eventually(lambda: not a._chores)
        # The one behind it gets the slot that frees a window after the fill, not a window
        # and a hold (over 5 s) later, as it would behind a stale entry.
        ticket = await asyncio.wait_for(after, 6)
        assert time.monotonic() - started < 4.6
        await b.release(ticket, sent=True, status=200)
        assert await check.zcard("{" + key + "}:queue") == 0


async def test_a_slot_granted_to_a_caller_that_gave_up_goes_to_the_next(
    redis_url: str,
) -> None:
    key = "prio:granted-then-cancelled"
    async with (
        RedisRateLimiter(redis_url, limits=[(1, 0.5)], key=key, reserve=0) as a,
        RedisRateLimiter(redis_url, limits=[(1, 0.5)], key=key, reserve=0) as b,
    ):
        ticket = await a.acquire(max_wait=1, timeout=5)
        first = asyncio.ensure_future(a.acquire(max_wait=10, timeout=5))
        await eventually(lambda: a.snapshot().waiting == 1)
        second = asyncio.ensure_future(b.acquire(max_wait=10, timeout=5))
        await eventually(lambda: b.snapshot().waiting == 1)
        # Unsent: the slot frees at once and the release grants it to `first`; it is
        # cancelled before it can use it, and hands it back unused.
        await a.release(ticket, sent=False)
        first.cancel()
        results = await asyncio.gather(first, return_exceptions=True)
        if not isinstance(results[0], asyncio.CancelledError):
            await a.release(results[0], sent=False)  # it won the race: hand it back ourselves
        ticket = await asyncio.wait_for(second, 2)
        await b.release(ticket, sent=True, status=200)


async def test_background_grants_are_paced_over_the_window(redis_url: str) -> None:
    async with RedisRateLimiter(
        redis_url, limits=[(10, 1.0)], key="prio:paced", reserve=0.2
    ) as limiter:
        share = background_limit(10, 0.2)
        gap = 1.0 / share
        granted: list[float] = []

        async def one() -> None:
            ticket = await limiter.acquire(max_wait=10, timeout=5, priority="background")
            granted.append(time.monotonic())
            await limiter.release(ticket, sent=True, status=200)

        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(6))), 5)
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    # Two may go at once after an idle spell (the tolerance of one gap), then one per gap.
    assert all(g > gap * 0.8 for g in gaps[1:]), gaps
    assert granted[-1] - granted[0] < gap * 5 + 0.3


async def test_waiters_are_woken_not_polling(redis_url: str, check: aioredis.Redis) -> None:
    key = "prio:round-trips"
    limits = [(20, 1.0)]
    limiters = [RedisRateLimiter(redis_url, limits=limits, key=key) for _ in range(3)]
    per_limiter = 20

    async def worker(limiter: RedisRateLimiter, count: list[int], priority: Priority) -> None:
        while count[0] > 0:
            count[0] -= 1
            ticket = await limiter.acquire(max_wait=30, timeout=5, priority=priority)
            await asyncio.sleep(0.01)
            await limiter.release(ticket, sent=True, status=200, headers={})

    def evalsha(stats: dict[str, dict[str, int]]) -> int:
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    try:
        before = evalsha(await check.info("commandstats"))
        jobs = []
        for i, limiter in enumerate(limiters):
            count = [per_limiter]
            priority: Priority = "background" if i else "interactive"
            jobs += [worker(limiter, count, priority) for _ in range(4)]
        await asyncio.wait_for(asyncio.gather(*jobs), 30)
    finally:
        for limiter in limiters:
            await limiter.aclose()
    # Counted once the limiters are closed: aclose sends the releases still waiting for an ask.
    after = evalsha(await check.info("commandstats"))
    requests = per_limiter * len(limiters)
    scripts = after - before
    # Each request runs its acquire and its release; waiting adds a few asks, never a poll.
    assert scripts / requests <= 2.5, scripts / requests
    # The limiters' own counter agrees (it adds one subscription each).
    assert sum(limiter.round_trips for limiter in limiters) == scripts + len(limiters)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-0.1, ValueError),
        (1, ValueError),
        (1.0, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("0.1", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_a_bad_reserve_is_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="reserve"):
        RedisRateLimiter("redis://127.0.0.1:1/0", reserve=value)  # type: ignore[arg-type]


def test_reserve_zero_turns_it_off() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", reserve=0)
    assert limiter.reserve == 0.0
    assert background_limit(300, 0.0) == 300
    assert background_limit(300, 0.1) == 270
    assert background_limit(1, 0.1) == 1


async def test_a_waiter_behind_requests_in_flight_is_woken_by_the_answer(
    redis_url: str,
) -> None:
    key = "prio:blind"
    async with (
        RedisRateLimiter(redis_url, limits=[(2, 0.5)], key=key) as a,
        RedisRateLimiter(redis_url, limits=[(2, 0.5)], key=key) as b,
    ):
        # A first wait (for answered slots to free) makes b's wake-up subscription.
        await _fill(a, 2)
        ticket = await b.acquire(max_wait=3, timeout=5)
        await b.release(ticket, sent=False)
        await asyncio.sleep(0.5)  # the window slides past the fill
        tickets = [await a.acquire(max_wait=1, timeout=5) for _ in range(2)]
        # Both slots are in flight: how long the waiter waits, only an answer can tell.
        waiter = asyncio.ensure_future(b.acquire(max_wait=10, timeout=5))
        await eventually(lambda: b.snapshot().waiting == 1)
        asks = b.round_trips
        await a.release(tickets[0], sent=True, status=200, headers={})
        started = time.monotonic()
        ticket = await asyncio.wait_for(waiter, 3)
        # Woken by that answer, it asks once more and goes when its slot frees, half a second
        # after the answer; not when its own, long, nap ends.
        assert 0.3 < time.monotonic() - started < 1.0
        assert b.round_trips - asks <= 2
        await b.release(ticket, sent=True, status=200, headers={})
        await a.release(tickets[1], sent=True, status=200, headers={})


async def test_the_readmes_sharing_example_runs(
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inbox_async import InboxClient
    from inbox_async.testing import FakeInboxServer

    from ._readme import readme_snippet

    body = readme_snippet("sharing.py").replace("redis://localhost:6379/0", redis_url)
    async with FakeInboxServer(token="test-token") as server:
        list_id = seed_list(server, ["1", "2", "3"], ("custom_x",))
        monkeypatch.setenv("INBOX_API_TOKEN", "test-token")
        monkeypatch.setenv("INBOX_API_BASE_URL", server.url)
        namespace: dict[str, object] = {
            "InboxClient": InboxClient,
            "RedisRateLimiter": RedisRateLimiter,
            "list_id": list_id,
            "platform_id": "1",
            "column_id": "custom_x",
            "rows": [("2", {"custom_x": "a"}), ("3", {"custom_x": "b"})],
        }
        source = "async def example():\n" + textwrap.indent(body, "    ")
        source += "\n    return lead, report, client, limiter\n"
        exec(compile(source, "README.md:sharing.py", "exec"), namespace)
        lead, report, client, limiter = await namespace["example"]()  # type: ignore[operator]
        try:
            assert lead.data == {"custom_x": "Won"}
            assert report.succeeded == 2 and not report.failed
            assert limiter.reserve == 0.1
        finally:
            await client.aclose()
            await limiter.aclose()


async def test_a_grant_missed_while_unsubscribed_is_caught_up_in_one_round_trip(
    redis_url: str,
    check: aioredis.Redis,
) -> None:
    # Grants published while a process's subscription was down are lost; when it subscribes
    # again, one round trip tells its waiters what they missed, rather than one ask each.
    key = "prio:catch-up"
    limits = [(1, 1.0)]
    async with (
        RedisRateLimiter(redis_url, limits=limits, key=key, reserve=0) as bulk,
        RedisRateLimiter(redis_url, limits=limits, key=key, reserve=0) as other,
    ):
        held = await other.acquire(max_wait=1, timeout=5)
        waiters = [
            asyncio.ensure_future(bulk.acquire(max_wait=20, timeout=5, priority="background"))
            for _ in range(8)
        ]
        try:
            await eventually(lambda: bulk.snapshot().waiting_background == 8)
            await eventually(lambda: len(bulk._chores) == 0)  # the first catch-up is done
            trips = bulk.round_trips
            # The subscription drops; the slot comes back unsent and goes to the head meanwhile.
            await check.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            await other.release(held, sent=False)
            done, _ = await asyncio.wait(waiters, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1
            await eventually(lambda: len(bulk._chores) == 0)
            # The catch-up (one per subscription and reconnection), a new subscription, and the new
            # head's ask (it was told it is the head while nobody listened): the six behind it did
            # not ask, which is what every waiter asking again would have cost.
            # 4 when idle, 5 seen under load; every waiter asking again made it 8 and more.
            assert bulk.round_trips - trips <= 6, bulk.round_trips - trips
            assert bulk.snapshot().waiting_background == 7
            ticket = done.pop().result()
            await bulk.release(ticket, sent=True, status=200)
        finally:
            # Even when an assertion fails: a waiter left running leaks its Redis connection
            # into the next test's garbage collection.
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
