"""RedisRateLimiter when Redis misbehaves: paused, refusing, misconfigured, or asked for a password.

Every case runs against a real redis-server on a free loopback port and, where a call goes
through the client, the fake Inbox server.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, ResponseError

from inbox_async import APIConnectionError, InboxClient
from inbox_async._ratelimit._redis import RedisRateLimiter
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import (
    COL_COMPANY,
    TOKEN,
    RedisProcess,
    assert_no_secret,
    closed_port,
    eventually,
    seed_list,
)

PASSWORD = "pw-" + secrets.token_hex(12)
WRONG = "wrong-" + secrets.token_hex(12)
# A password that has to be percent-encoded in a URL: neither spelling may show.
ODD = "od@d:/ " + secrets.token_hex(12)
LEAD = "44196397"


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def auth_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path_factory.mktemp("redis-auth"), "--requirepass", PASSWORD)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeInboxServer, str]]:
    async with FakeInboxServer(token=TOKEN) as server:
        list_id = seed_list(server, [LEAD, "2", "3"])
        yield server, list_id


async def _raised(call: Coroutine[Any, Any, object]) -> tuple[BaseException, float]:
    """The exception `call` raised and how long it took; caught here, in a frame of no secrets.

    The traceback starts at the frame that catches, so catching in the test itself would show
    the test's own locals (the URL with its password) to the checks below.
    """
    started = time.monotonic()
    try:
        await call
    except Exception as exc:
        return exc, time.monotonic() - started
    raise AssertionError("the call did not fail")


# -- a stuck Redis ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_paused_redis_fails_the_call_within_seconds_and_recovers(
    redis_proc: RedisProcess, api: tuple[FakeInboxServer, str]
) -> None:
    server, list_id = api
    async with (
        RedisRateLimiter(redis_proc.url(), limits=[(100, 1.0)], key="t:paused") as limiter,
        InboxClient(TOKEN, base_url=server.url, limiter=limiter) as client,
    ):
        await client.leads.update(list_id, LEAD, {COL_COMPANY: "before"})
        sent = len(server.requests)
        redis_proc.pause()
        try:
            exc, took = await _raised(
                client.leads.update(list_id, LEAD, {COL_COMPANY: "paused"}, timeout=2)
            )
            assert isinstance(exc, APIConnectionError), repr(exc)
            assert "Redis did not answer within 2 s" in str(exc)
            assert took < 6
            # The default timeout (30 s) is capped by redis_timeout for each round trip.
            exc, took = await _raised(client.leads.update(list_id, "2", {COL_COMPANY: "paused"}))
            assert isinstance(exc, APIConnectionError), repr(exc)
            assert "Redis did not answer within" in str(exc)
            assert took < 8
            assert exc.request_sent is False
            # Nothing went to the API without a slot.
            assert len(server.requests) == sent
        finally:
            redis_proc.resume()
        lead = await asyncio.wait_for(
            client.leads.update(list_id, LEAD, {COL_COMPANY: "after"}, timeout=2), 10
        )
    assert lead.data[COL_COMPANY] == "after"
    assert len(server.requests) == sent + 1


@pytest.mark.slow
async def test_a_new_limiter_on_a_paused_redis_fails_within_its_redis_timeout(
    redis_proc: RedisProcess,
) -> None:
    # The connection handshake itself waits for a paused server: the accept succeeds, the
    # reply never comes.
    redis_proc.pause()
    try:
        async with RedisRateLimiter(
            redis_proc.url(), limits=[(5, 1.0)], key="t:fresh", redis_timeout=1
        ) as limiter:
            exc, took = await _raised(limiter.acquire(max_wait=30, timeout=30))
            redis_proc.resume()
    finally:
        redis_proc.resume()
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert "Redis did not answer within 1 s" in str(exc)
    assert took < 4


@pytest.mark.slow
async def test_a_borrowed_client_without_timeouts_is_bounded_too(redis_proc: RedisProcess) -> None:
    borrowed = aioredis.Redis(
        host="127.0.0.1", port=redis_proc.port, socket_timeout=None, socket_connect_timeout=None
    )
    try:
        limiter = RedisRateLimiter(redis=borrowed, limits=[(5, 1.0)], key="t:borrowed")
        ticket = await limiter.acquire(max_wait=1, timeout=5)
        await limiter.release(ticket, sent=True)
        redis_proc.pause()
        try:
            exc, took = await _raised(limiter.acquire(max_wait=5, timeout=1.5))
        finally:
            redis_proc.resume()
        assert isinstance(exc, APIConnectionError), repr(exc)
        assert "Redis did not answer within 1.5 s" in str(exc)
        assert took < 5
        ticket = await asyncio.wait_for(limiter.acquire(max_wait=1, timeout=5), 5)
        await asyncio.wait_for(limiter.release(ticket, sent=True), 5)
    finally:
        await borrowed.aclose()


@pytest.mark.slow
async def test_release_on_a_paused_redis_returns_and_logs(
    redis_proc: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    async with RedisRateLimiter(
        redis_proc.url(), limits=[(1, 1.0)], key="t:release", redis_timeout=1
    ) as limiter:
        ticket = await limiter.acquire(max_wait=1, timeout=1)
        redis_proc.pause()
        started = time.monotonic()
        try:
            with caplog.at_level(logging.WARNING, logger="inbox_async"):
                await asyncio.wait_for(limiter.release(ticket, sent=True), 4)
        finally:
            redis_proc.resume()
        assert time.monotonic() - started < 3
        assert "could not release a slot" in caplog.text
        # The slot the failed release left behind frees itself (hold: 1 s window + timeout 1 s
        # + margin); the limiter works again meanwhile.
        snapshot_before = limiter.snapshot()
        assert snapshot_before.in_flight == 0
        ticket = await asyncio.wait_for(limiter.acquire(max_wait=10, timeout=1), 12)
        await limiter.release(ticket, sent=False)


@pytest.mark.slow
async def test_a_response_is_returned_though_redis_stalls_while_it_is_on_the_wire(
    redis_proc: RedisProcess, api: tuple[FakeInboxServer, str]
) -> None:
    server, list_id = api
    server.add_fault(Fault.delay(0.5))
    async with (
        RedisRateLimiter(
            redis_proc.url(), limits=[(100, 1.0)], key="t:wire", redis_timeout=1
        ) as limiter,
        InboxClient(TOKEN, base_url=server.url, limiter=limiter) as client,
    ):
        call = asyncio.ensure_future(client.leads.update(list_id, LEAD, {COL_COMPANY: "x"}))
        try:
            await eventually(lambda: len(server.requests) == 1)
            redis_proc.pause()
            started = time.monotonic()
            lead = await asyncio.wait_for(call, 6)
            took = time.monotonic() - started
        finally:
            redis_proc.resume()
    assert lead.data[COL_COMPANY] == "x"
    assert took < 3  # the 0.5 s response, then at most redis_timeout for the release


# -- refused, misconfigured --------------------------------------------------------------------


@pytest.mark.slow
async def test_a_refused_redis_fails_fast_without_retries(
    api: tuple[FakeInboxServer, str],
) -> None:
    server, list_id = api
    url = f"redis://:{PASSWORD}@127.0.0.1:{closed_port()}/0"
    async with (
        RedisRateLimiter(url, limits=[(5, 1.0)], key="t:refused") as limiter,
        InboxClient(TOKEN, base_url=server.url, limiter=limiter) as client,
    ):
        exc, took = await _raised(client.leads.update(list_id, LEAD, {COL_COMPANY: "x"}))
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert took < 1
    assert exc.request_sent is False
    assert exc.retryable is False
    assert "could not reach Redis" in str(exc)
    assert url.replace(PASSWORD, "***") in str(exc)
    assert server.requests == []
    assert_no_secret(exc, PASSWORD)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("userinfo", "db", "says"),
    [
        (f":{WRONG}", 0, "AuthenticationError"),
        (f"default:{WRONG}", 0, "AuthenticationError"),
        (f":{quote(ODD, safe='')}", 0, "AuthenticationError"),
        ("", 0, "AuthenticationError"),
        (f":{PASSWORD}", 99, "DB index is out of range"),
    ],
    ids=["wrong-password", "wrong-user-password", "encoded-password", "no-password", "wrong-db"],
)
async def test_auth_and_configuration_errors_fail_at_once_and_name_the_url_without_password(
    auth_redis: RedisProcess, api: tuple[FakeInboxServer, str], userinfo: str, db: int, says: str
) -> None:
    server, list_id = api
    url = auth_redis.url(userinfo, db)
    async with (
        RedisRateLimiter(url, limits=[(5, 1.0)], key="t:auth") as limiter,
        InboxClient(TOKEN, base_url=server.url, limiter=limiter) as client,
    ):
        exc, took = await _raised(client.leads.update(list_id, LEAD, {COL_COMPANY: "x"}))
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert took < 1
    assert exc.retryable is False
    assert exc.request_sent is False
    text = str(exc)
    assert f"127.0.0.1:{auth_redis.port}/{db}" in text
    assert says in text
    assert server.requests == []
    assert_no_secret(exc, WRONG, PASSWORD, ODD, quote(ODD, safe=""), quote(ODD))


@pytest.mark.matrix
@pytest.mark.slow
async def test_a_password_in_the_url_query_shows_nowhere(auth_redis: RedisProcess) -> None:
    # redis-py takes any query option as a keyword, password= included.
    url = f"redis://127.0.0.1:{auth_redis.port}/0?password={WRONG}"
    async with RedisRateLimiter(url, limits=[(5, 1.0)], key="t:query") as limiter:
        exc, _ = await _raised(limiter.acquire(max_wait=1, timeout=1))
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert f"redis://127.0.0.1:{auth_redis.port}/0 " in str(exc)
    assert_no_secret(exc, WRONG)


@pytest.mark.matrix
@pytest.mark.slow
async def test_a_paused_redis_with_a_password_leaks_it_nowhere(auth_redis: RedisProcess) -> None:
    async with RedisRateLimiter(
        auth_redis.url(f":{PASSWORD}"), limits=[(5, 1.0)], key="t:auth-paused", redis_timeout=1
    ) as limiter:
        ticket = await limiter.acquire(max_wait=1, timeout=1)
        await limiter.release(ticket, sent=True)
        auth_redis.pause()
        try:
            exc, took = await _raised(limiter.acquire(max_wait=1, timeout=1))
        finally:
            auth_redis.resume()
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert took < 4
    assert_no_secret(exc, PASSWORD)


@pytest.mark.matrix
@pytest.mark.slow
async def test_a_borrowed_client_with_a_wrong_password_leaks_it_nowhere(
    auth_redis: RedisProcess,
) -> None:
    borrowed = aioredis.Redis(host="127.0.0.1", port=auth_redis.port, password=WRONG)
    try:
        limiter = RedisRateLimiter(redis=borrowed, limits=[(5, 1.0)], key="t:borrowed-auth")
        exc, _ = await _raised(limiter.acquire(max_wait=1, timeout=1))
    finally:
        await borrowed.aclose()
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert exc.retryable is False
    assert f"127.0.0.1:{auth_redis.port}" in str(exc)
    assert_no_secret(exc, WRONG)


class _FailingScript:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def __call__(self, **kwargs: object) -> object:
        raise self.exc


class _FailingRedis:
    """Stands in for a borrowed client whose every script call raises one redis-py error."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def register_script(self, script: str) -> _FailingScript:
        return _FailingScript(self.exc)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (BusyLoadingError("Redis is loading the dataset in memory"), True),
        (ResponseError("ERR unknown command 'EVALSHA'"), False),
    ],
)
async def test_only_errors_redis_calls_transient_are_retryable(
    error: BaseException, retryable: bool
) -> None:
    limiter = RedisRateLimiter(redis=_FailingRedis(error), limits=[(5, 1.0)], key="t:fake")
    exc, _ = await _raised(limiter.acquire(max_wait=1, timeout=1))
    assert isinstance(exc, APIConnectionError), repr(exc)
    assert exc.retryable is retryable
    assert exc.request_sent is False
    assert exc.__cause__ is None and exc.__context__ is None


# -- every key expires -------------------------------------------------------------------------


async def _check_expiries(check: aioredis.Redis, key: str) -> int:
    """Assert that every key under `key` expires, and not before the last slot it holds."""
    names = [k async for k in check.scan_iter(match="{" + key + "}*")]
    seconds, micros = await check.time()
    now = seconds + micros / 1e6
    for name in names:
        pttl = await check.pttl(name)
        assert pttl > 0, f"{name!r} has no expiry (PTTL {pttl})"
        if await check.type(name) == b"zset":
            last = await check.zrange(name, -1, -1, withscores=True)
            assert pttl / 1000 >= float(last[0][1]) - now, f"{name!r} expires before its slots"
    return len(names)


async def test_every_key_the_limiter_writes_expires_no_earlier_than_its_slots(
    redis_proc: RedisProcess,
) -> None:
    key = "t:expiry"
    check = aioredis.from_url(redis_proc.url())
    try:
        async with RedisRateLimiter(
            redis_proc.url(), limits=[(10, 2.0), (100, 30.0)], key=key
        ) as limiter:
            # A release that empties the windows (the only slot, sent).
            ticket = await limiter.acquire(max_wait=1, timeout=1)
            await limiter.release(ticket, sent=True)
            assert await _check_expiries(check, key) == 2
            # One never sent: its release empties the windows of everything.
            ticket = await limiter.acquire(max_wait=1, timeout=1)
            await limiter.release(ticket, sent=False)
            await _check_expiries(check, key)
            # A long hold next to short ones, which must not cut it short.
            long_hold = await limiter.acquire(max_wait=1, timeout=60)
            for _ in range(3):
                ticket = await limiter.acquire(max_wait=1, timeout=1)
                await _check_expiries(check, key)
                await limiter.release(ticket, sent=True)
                await _check_expiries(check, key)
            # A 429 closes the gate: its key expires too, and so does the probe key that holds
            # the first probe back for one interval.
            ticket = await limiter.acquire(max_wait=1, timeout=1)
            await limiter.release(ticket, sent=True, status=429, headers={"Retry-After": "1"})
            assert await _check_expiries(check, key) == 4
            await limiter.release(long_hold, sent=True)
            await _check_expiries(check, key)
    finally:
        await check.aclose()


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("3", TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_redis_timeout_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="redis_timeout"):
        RedisRateLimiter("redis://127.0.0.1:1/0", redis_timeout=value)  # type: ignore[arg-type]
