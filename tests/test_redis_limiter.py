"""RedisRateLimiter against a real redis-server: one budget shared by several processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from inbox_async import APIConnectionError, InboxClient, RateLimitError
from inbox_async._ratelimit._redis import RedisRateLimiter
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, TOKEN, closed_port, lead_ids, seed_list

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
