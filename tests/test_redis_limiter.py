"""RedisRateLimiter against a real redis-server: one budget shared by several processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from inbox_async import APIConnectionError, InboxClient, RateLimitError
from inbox_async._ratelimit import _redis as redis_module
from inbox_async._ratelimit._redis import RedisRateLimiter
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, TOKEN, closed_port, eventually, lead_ids, seed_list

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
async def test_three_processes_share_one_budget(redis_url: str, tmp_path: Path) -> None:
    ids = lead_ids(120, 80_000_000)
    async with FakeInboxServer(token=TOKEN, rate_limits=[(30, 1.0)]) as server:
        list_id = seed_list(server, ids)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.redis_worker",
                server.url,
                redis_url,
                "test:three-processes",
                list_id,
                *ids[i::3],
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for i in range(3)
        ]
        outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        codes = [p.returncode for p in procs]
    assert codes == [0, 0, 0], outputs
    assert server.status_counts[429] == 0
    assert server.status_counts[200] == 120
    assert all(server.lead_data(list_id, pid) == {COL_COMPANY: pid} for pid in ids)
    arrivals = sorted(r.received_at for r in server.requests)
    for i in range(len(arrivals) - 30):
        assert arrivals[i + 30] - arrivals[i] > 1.0 - 0.01


async def test_a_429_closes_the_gate_for_every_process(redis_url: str) -> None:
    async with (
        FakeInboxServer(token=TOKEN) as server,
        RedisRateLimiter(redis_url, limits=[(100, 1.0)], key="test:gate") as first,
        RedisRateLimiter(redis_url, limits=[(100, 1.0)], key="test:gate") as second,
        InboxClient(TOKEN, base_url=server.url, limiter=first) as a,
        InboxClient(TOKEN, base_url=server.url, limiter=second, max_rate_limit_wait=0.5) as b,
    ):
        list_id = seed_list(server, ["1", "2"])
        server.add_fault(Fault.status(429, retry_after=30))
        with pytest.raises(RateLimitError):
            await a.leads.update(list_id, "1", {COL_COMPANY: "x"}, max_retries=0)
        # The other limiter (think: another host) sees the shared gate and does not send.
        with pytest.raises(RateLimitError) as info:
            await b.leads.update(list_id, "2", {COL_COMPANY: "y"})
    assert info.value.code == "CLIENT_RATE_LIMITED"
    assert info.value.retry_after is not None and info.value.retry_after > 25
    assert len(server.requests) == 1


async def test_a_request_that_never_left_frees_its_slot(redis_url: str) -> None:
    async with RedisRateLimiter(redis_url, limits=[(1, 60.0)], key="test:unsent") as limiter:
        ticket = await limiter.acquire(max_wait=1)
        await limiter.release(ticket, sent=False)
        ticket = await asyncio.wait_for(limiter.acquire(max_wait=1), 2)
        await limiter.release(ticket, sent=True)
        with pytest.raises(RateLimitError) as info:
            await limiter.acquire(max_wait=1)
        assert info.value.retry_after is not None and info.value.retry_after > 50
        assert limiter.snapshot().windows[0].in_use == 1


async def test_redis_down_is_an_sdk_error() -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    async with RedisRateLimiter(url, limits=[(5, 1.0)], key="test:down") as limiter:
        with pytest.raises(APIConnectionError) as info:
            await limiter.acquire(max_wait=1)
    assert "Redis" in str(info.value)
    assert info.value.request_sent is False


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="limits"):
        RedisRateLimiter("redis://127.0.0.1:1/0", limits=[])
    with pytest.raises(ValueError, match="url"):
        RedisRateLimiter(limits=[(1, 1.0)])
    with pytest.raises(ValueError, match="key"):
        RedisRateLimiter("redis://127.0.0.1:1/0", key="")


# -- no server hint can block the shared limiter for good ------------------------------------

DAY = 86_400.0


@pytest.mark.parametrize(
    "retry_after", ["1000000000000", "1e308", "inf", "Fri, 31 Dec 9999 23:59:59 GMT"]
)
async def test_a_hostile_retry_after_keeps_the_gate_key_to_a_day(
    redis_url: str, retry_after: str
) -> None:
    import redis.asyncio as aioredis

    key = f"test:hostile:{retry_after[:6]}"
    async with RedisRateLimiter(redis_url, limits=[(100, 1.0)], key=key) as limiter:
        ticket = await limiter.acquire(max_wait=1)
        await limiter.release(ticket, sent=True, status=429, headers={"Retry-After": retry_after})
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await limiter.acquire(max_wait=1)
        assert time.monotonic() - started < 0.5
    assert info.value.retry_after is not None and DAY - 5 <= info.value.retry_after <= DAY
    client = aioredis.from_url(redis_url)
    try:
        ttl = await client.pttl("{" + key + "}:gate")
    finally:
        await client.aclose()
    assert 0 < ttl <= DAY * 1000


@pytest.mark.slow
async def test_a_2xx_probe_reopens_the_gate_for_every_process(redis_url: str) -> None:
    key = "test:probe-reopens"
    async with (
        RedisRateLimiter(redis_url, limits=[(100, 1.0)], key=key, probe_interval=0.3) as first,
        RedisRateLimiter(redis_url, limits=[(100, 1.0)], key=key, probe_interval=0.3) as second,
    ):
        ticket = await first.acquire(max_wait=1)
        await first.release(ticket, sent=True, status=429, headers={"Retry-After": "1e12"})
        # Within the first interval nobody goes (a short max_wait: told at once).
        with pytest.raises(RateLimitError):
            await second.acquire(max_wait=0.1)
        # A caller that may wait past the interval gets the probe; one probe at a time.
        probe = await asyncio.wait_for(first.acquire(max_wait=5), 2)
        with pytest.raises(RateLimitError) as info:
            await second.acquire(max_wait=0.2)
        assert info.value.retry_after is not None and info.value.retry_after > DAY - 10
        # A failed probe: the next one an interval later.
        await first.release(probe, sent=True, status=429, headers={"Retry-After": "1e12"})
        with pytest.raises(RateLimitError):
            await second.acquire(max_wait=0.1)
        probe = await asyncio.wait_for(second.acquire(max_wait=5), 2)
        # Its 2xx reopens the gate for the other process too.
        await second.release(probe, sent=True, status=200, headers={})
        ticket = await asyncio.wait_for(first.acquire(max_wait=0.1), 1)
        await first.release(ticket, sent=True, status=200, headers={})


async def test_the_callers_queued_in_this_process_count_in_the_wait(redis_url: str) -> None:
    async with RedisRateLimiter(redis_url, limits=[(1, 2.0)], key="test:ahead") as limiter:
        ticket = await limiter.acquire(max_wait=1)
        await limiter.release(ticket, sent=True)  # the slot frees in 2 s
        started = time.monotonic()
        tasks = [asyncio.ensure_future(limiter.acquire(max_wait=2.5)) for _ in range(3)]
        done, _ = await asyncio.wait(tasks[1:], timeout=1.0)
        # The second and third in line need the slot the first will take: 4 s away at least.
        assert len(done) == 2
        for task in done:
            error = task.exception()
            assert isinstance(error, RateLimitError)
            assert error.retry_after is not None and 2.5 < error.retry_after <= 6.0
        assert time.monotonic() - started < 1.0
        assert not tasks[0].done()  # the first waits for its slot
        tasks[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]


@pytest.mark.slow
async def test_after_a_hostile_429_a_client_on_redis_recovers(redis_url: str) -> None:
    from .conftest import tiny_server
    from .test_hostile_hints import HostileThenNormal

    server = HostileThenNormal((429, {"Retry-After": "1e12"}), delay=0.2)
    handler: Any = server.handle
    async with (
        tiny_server(handler) as base_url,
        RedisRateLimiter(
            redis_url, limits=[(100, 1.0)], key="test:client-recovers", probe_interval=0.3
        ) as limiter,
        InboxClient(TOKEN, base_url=base_url, limiter=limiter, max_retries=0) as client,
    ):
        with pytest.raises(RateLimitError):
            await client.leads.update("l1", "1", {COL_COMPANY: "a"})
        started = time.monotonic()
        succeeded = False
        while not succeeded and time.monotonic() - started < 5:
            results = await asyncio.gather(
                *(client.leads.update("l1", "2", {COL_COMPANY: "b"}) for _ in range(5)),
                return_exceptions=True,
            )
            assert all(isinstance(r, RateLimitError) for r in results if isinstance(r, Exception))
            succeeded = any(not isinstance(r, BaseException) for r in results)
            await asyncio.sleep(0.05)
        assert succeeded
        assert server.most_active == 1
        await asyncio.gather(
            *(client.leads.update("l1", "3", {COL_COMPANY: "c"}) for _ in range(5))
        )


# -- a 2xx answer's release goes with the next ask -------------------------------------------


def _window(key: str, limit: int, seconds: float) -> str:
    """The Redis key of a limiter's first window (see RedisRateLimiter's key layout)."""
    return f"{{{key}}}:w0:{limit}/{seconds:g}"


async def _redis_now(client: Any) -> float:
    seconds, micros = await client.time()
    return float(seconds) + float(micros) / 1e6


async def _scripts_run(client: Any) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.fixture
async def check(redis_url: str) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def no_flush_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pending releases wait (30 s) for an ask, a release that goes at once, or aclose."""
    monkeypatch.setattr(redis_module, "_RELEASE_DELAY", 30.0)


async def test_a_loop_of_acquire_and_release_costs_one_round_trip_per_request(
    redis_url: str, check: Any
) -> None:
    key = "test:coalesce-loop"
    requests = 50
    # Loaded beforehand: a first EVALSHA answered NOSCRIPT would count as a call.
    await check.script_load(redis_module._SCRIPT)
    before = await _scripts_run(check)
    limiter = RedisRateLimiter(redis_url, limits=[(1000, 10.0)], key=key)
    try:
        for _ in range(requests):
            ticket = await limiter.acquire(max_wait=1, timeout=5)
            await limiter.release(ticket, sent=True, status=200, headers={})
    finally:
        await limiter.aclose()
    scripts = await _scripts_run(check) - before
    # Each ask carries the release before it; aclose sends the last one. (Was 2 per request.)
    assert scripts == requests + 1, scripts
    assert limiter.round_trips == scripts
    members = await check.zrange(_window(key, 1000, 10.0), 0, -1)
    assert len(members) == requests
    assert all(m.startswith(b"d:") for m in members)  # every slot answered, none in flight


async def test_a_pending_release_goes_with_the_next_ask_and_frees_a_window_after_the_answer(
    redis_url: str, check: Any, no_flush_timer: None
) -> None:
    key = "test:coalesce-ask"
    window = _window(key, 100, 10.0)
    async with RedisRateLimiter(redis_url, limits=[(100, 10.0)], key=key) as limiter:
        first = await limiter.acquire(max_wait=1, timeout=5)
        trips = limiter.round_trips
        # A reading near the reserve waits too: the window of the server's size counts our
        # own usage, the reading only the others'.
        reading = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "5"}
        await limiter.release(first, sent=True, status=200, headers=reading)
        answered = await _redis_now(check)
        assert limiter.round_trips == trips  # nothing sent yet
        assert await check.zscore(window, f"f:{first}") is not None
        await asyncio.sleep(0.5)  # the next ask comes half a second after the answer
        second = await limiter.acquire(max_wait=1, timeout=5)
        assert limiter.round_trips == trips + 1  # one script call for both
        assert await check.zscore(window, f"f:{first}") is None
        score = await check.zscore(window, f"d:{first}")
        # Its slot frees one window after the answer, not after the ask that carried it.
        assert score is not None and abs(score - (answered + 10.0)) < 0.1, score - answered
        # The reading is in: the others' usage is what the server counts beyond our one slot.
        assert await check.hget(f"{{{key}}}:server", "others") == b"94"
        await limiter.release(second, sent=True, status=200, headers={})


async def test_a_pending_release_goes_on_its_own_when_no_ask_comes(
    redis_url: str, check: Any
) -> None:
    key = "test:coalesce-timer"
    window = _window(key, 100, 10.0)
    async with RedisRateLimiter(redis_url, limits=[(100, 10.0)], key=key) as limiter:
        ticket = await limiter.acquire(max_wait=1, timeout=5)
        trips = limiter.round_trips
        await limiter.release(ticket, sent=True, status=200, headers={})
        assert limiter.round_trips == trips  # it waits for an ask first
        await eventually(lambda: limiter.round_trips == trips + 1 and not limiter._chores)
        assert await check.zscore(window, f"f:{ticket}") is None
        assert await check.zscore(window, f"d:{ticket}") is not None


async def test_aclose_sends_the_pending_releases(
    redis_url: str, check: Any, no_flush_timer: None
) -> None:
    key = "test:coalesce-aclose"
    window = _window(key, 100, 10.0)
    limiter = RedisRateLimiter(redis_url, limits=[(100, 10.0)], key=key)
    try:
        tickets = [await limiter.acquire(max_wait=1, timeout=5) for _ in range(3)]
        for ticket in tickets:
            await limiter.release(ticket, sent=True, status=200, headers={})
        assert await check.zcount(window, "-inf", "+inf") == 3
        trips = limiter.round_trips
    finally:
        await limiter.aclose()
    assert limiter.round_trips == trips + 1  # the three in one call
    members = sorted(await check.zrange(window, 0, -1))
    assert members == sorted(f"d:{ticket}".encode() for ticket in tickets)


async def test_a_429_release_goes_at_once_with_what_is_pending(
    redis_url: str, check: Any, no_flush_timer: None
) -> None:
    key = "test:coalesce-429"
    window = _window(key, 100, 10.0)
    async with RedisRateLimiter(redis_url, limits=[(100, 10.0)], key=key) as limiter:
        ok = await limiter.acquire(max_wait=1, timeout=5)
        limited = await limiter.acquire(max_wait=1, timeout=5)
        await limiter.release(ok, sent=True, status=200, headers={})
        trips = limiter.round_trips
        await limiter.release(limited, sent=True, status=429, headers={"Retry-After": "30"})
        # Sent before release returned, in one call with the pending 2xx: every process sees
        # the gate now.
        assert limiter.round_trips == trips + 1
        assert 25_000 < await check.pttl(f"{{{key}}}:gate") <= 32_000
        members = sorted(await check.zrange(window, 0, -1))
        assert members == sorted([f"d:{ok}".encode(), f"d:{limited}".encode()])


@pytest.mark.parametrize(
    ("sent", "status", "headers"),
    [
        (False, None, {}),  # never sent: its slot is free for everyone at once
        (True, None, {}),  # cancelled or failed on the way back
        (True, 500, {}),
        # Without a window of the server's size, a reading near the reserve holds back
        # background work in other processes.
        (True, 200, {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "10"}),
    ],
)
async def test_releases_other_processes_must_hear_at_once_are_not_deferred(
    redis_url: str,
    check: Any,
    no_flush_timer: None,
    sent: bool,
    status: int | None,
    headers: dict[str, str],
) -> None:
    key = f"test:coalesce-now:{sent}:{status}:{len(headers)}"
    window = _window(key, 100, 10.0)
    async with RedisRateLimiter(redis_url, limits=[(100, 10.0)], key=key) as limiter:
        ticket = await limiter.acquire(max_wait=1, timeout=5)
        trips = limiter.round_trips
        await limiter.release(ticket, sent=sent, status=status, headers=headers)
        assert limiter.round_trips == trips + 1
        assert await check.zscore(window, f"f:{ticket}") is None
        assert (await check.zscore(window, f"d:{ticket}") is not None) is sent
        if headers:
            assert await check.hget(f"{{{key}}}:server", "budget") == b"10"


async def test_an_ask_carrying_a_release_wakes_a_waiter_of_another_process(
    redis_url: str, no_flush_timer: None
) -> None:
    # The waiter's slot is in flight: only its answer can tell when it frees. That answer goes
    # with the next ask of the process that got it, which must tell the waiter, as a release
    # on its own would.
    key = "test:coalesce-wake"
    limits = [(1, 0.5)]
    async with (
        RedisRateLimiter(redis_url, limits=limits, key=key) as a,
        RedisRateLimiter(redis_url, limits=limits, key=key) as b,
    ):
        held = await a.acquire(max_wait=1, timeout=5)
        waiter = asyncio.ensure_future(b.acquire(max_wait=10, timeout=5))
        await eventually(lambda: b.snapshot().waiting == 1)
        await a.release(held, sent=True, status=200, headers={})
        answered = time.monotonic()
        behind = asyncio.ensure_future(a.acquire(max_wait=10, timeout=5))
        try:
            ticket = await asyncio.wait_for(waiter, 3)
            # Its slot freed half a second after the answer (not when its 30 s nap ended),
            # and it went first: it queued before the ask that carried the answer.
            assert 0.3 < time.monotonic() - answered < 1.2
            assert not behind.done()
            await b.release(ticket, sent=False)
            await a.release(await asyncio.wait_for(behind, 3), sent=False)
        finally:
            behind.cancel()
            await asyncio.gather(behind, return_exceptions=True)
