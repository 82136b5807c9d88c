"""No server hint can block the local limiter for good: capped hints, probes, honest waits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from inbox_async import InboxClient, RateLimiter, RateLimitError

from .conftest import COL_COMPANY, TOKEN, eventually, tiny_server

DAY = 86_400.0
LEAD_BODY = (Path(__file__).parent / "data" / "update-lead-response.json").read_bytes()
HOSTILE_RETRY_AFTER = [
    "1000000000000",
    "1e308",
    "inf",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "-5",
]


class Clock:
    """The limiter's clock: real time plus whatever the test skips ahead (timers still run)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    @property
    def now(self) -> float:
        return self()

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    from inbox_async._ratelimit import _local as _limiter

    fake = Clock()
    monkeypatch.setattr(_limiter, "_now", fake)
    yield fake


def _hostile_reset(kind: str) -> str:
    if kind == "ms":
        return str(int((time.time() + 3600) * 1000))
    if kind == "huge":
        return "1e30"
    return str(int(time.time() - 100))  # "past"


def _budget_headers(remaining: int, reset: str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": reset,
    }


# -- one place parses the headers, bounded -----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("60", 60.0),
        ("1000000000000", DAY),
        ("1e308", DAY),
        ("inf", DAY),
        ("Fri, 31 Dec 9999 23:59:59 GMT", DAY),
        ("-5", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_is_capped_at_a_day(header: str, expected: float | None) -> None:
    from inbox_async._headers import parse_retry_after

    assert parse_retry_after(header) == expected


def test_reset_in_milliseconds_is_read_as_such_and_beyond_a_day_is_dropped() -> None:
    from inbox_async._headers import parse_reset

    now = 1_700_000_000.0
    assert parse_reset("1700000030", now=now) == 1_700_000_030.0
    assert parse_reset("1700000030000", now=now) == 1_700_000_030.0
    assert parse_reset("1699999900", now=now) == 1_699_999_900.0  # past: already reset
    assert parse_reset("1e30", now=now) is None
    assert parse_reset(str(now + 2 * DAY), now=now) is None  # neither seconds nor ms within a day
    assert parse_reset("inf", now=now) is None
    assert parse_reset("soon", now=now) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12", 12), ("12.0", 12), ("-3", 0), ("1e30", 1_000_000_000), ("inf", None), ("x", None)],
)
def test_counts_are_bounded(text: str, expected: int | None) -> None:
    from inbox_async._headers import parse_count

    assert parse_count(text) == expected


def test_the_retry_stage_hint_is_capped() -> None:
    from inbox_async import APIStatusError
    from inbox_async._retry import server_wait_hint

    exc = APIStatusError("busy", status_code=503, headers={"Retry-After": "1e12"})
    assert server_wait_hint(exc) == DAY


# -- the local limiter holds nothing longer than a day ----------------------------------------


@pytest.mark.parametrize("retry_after", HOSTILE_RETRY_AFTER)
async def test_a_hostile_retry_after_gates_at_most_a_day(clock: Clock, retry_after: str) -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire()
    limiter.release_nowait(None, sent=True, status=429, headers={"Retry-After": retry_after})
    snapshot = limiter.snapshot()
    assert snapshot.gate_reopens_in <= DAY
    with pytest.raises(RateLimitError) as info:
        await limiter.acquire(max_wait=0.5)
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= DAY


@pytest.mark.parametrize("kind", ["ms", "huge"])
async def test_a_hostile_reset_holds_the_budget_at_most_a_day(
    clock: Clock, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter(None)
    with caplog.at_level(logging.WARNING, logger="inbox_async"):
        for reset in (_hostile_reset(kind), "2e30" if kind == "huge" else _hostile_reset(kind)):
            await limiter.acquire(max_wait=5)
            limiter.release_nowait(None, sent=True, status=200, headers=_budget_headers(0, reset))
            if kind == "ms":
                break
            clock.advance(2)
    if kind == "ms":
        with pytest.raises(RateLimitError) as info:
            await limiter.acquire(max_wait=5)
        assert info.value.retry_after is not None and 3500 < info.value.retry_after <= 3600
    else:
        # Ignored: the budget is looked at again after a second, as with no Reset at all.
        await asyncio.wait_for(limiter.acquire(max_wait=5), 1.0)
        warnings = [r for r in caplog.records if "X-RateLimit-Reset" in r.getMessage()]
        assert len(warnings) == 1, warnings


# -- recovery: one probe about once a minute ---------------------------------------------------


class HostileThenNormal:
    """Answers the first request with a hostile header, then normally; counts concurrency."""

    def __init__(self, first: tuple[int, dict[str, str]], delay: float = 0.0) -> None:
        self.first: tuple[int, dict[str, str]] | None = first
        self.delay = delay
        self.requests = 0
        self.active = 0
        self.most_active = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await request.read()
            if self.first is not None:
                status, headers = self.first
                self.first = None
                if status == 429:
                    error = {"code": "RATE_LIMITED", "message": "slow down", "status": 429}
                    return web.json_response({"error": error}, status=429, headers=headers)
                return web.Response(
                    body=LEAD_BODY, content_type="application/json", headers=headers
                )
            await asyncio.sleep(self.delay)
            return web.Response(
                body=LEAD_BODY,
                content_type="application/json",
                headers=_budget_headers(99, str(int(time.time() + 60))),
            )
        finally:
            self.active -= 1


def _first_answers() -> list[tuple[int, dict[str, str]]]:
    answers = [(429, {"Retry-After": value}) for value in HOSTILE_RETRY_AFTER]
    answers += [(200, _budget_headers(0, kind)) for kind in ("ms", "huge", "past")]
    return answers


def _materialise(answer: tuple[int, dict[str, str]]) -> tuple[int, dict[str, str]]:
    status, headers = answer
    if "X-RateLimit-Reset" in headers:
        headers = {**headers, "X-RateLimit-Reset": _hostile_reset(headers["X-RateLimit-Reset"])}
    return status, headers


@pytest.mark.slow
@pytest.mark.parametrize(
    "first", _first_answers(), ids=[f"{s}-{list(h.values())[-1]}" for s, h in _first_answers()]
)
async def test_after_a_hostile_header_a_call_succeeds_within_65_s(
    clock: Clock, first: tuple[int, dict[str, str]]
) -> None:
    server = HostileThenNormal(_materialise(first))
    async with (
        tiny_server(server.handle) as base_url,
        InboxClient(TOKEN, base_url=base_url, max_retries=0) as client,
    ):
        try:
            await client.leads.update("l1", "1", {COL_COMPANY: "a"})
        except RateLimitError as exc:
            # The server's own hint, as the caller is told it, is capped too.
            assert exc.retry_after is None or exc.retry_after <= DAY
        snapshot = client.rate_limit
        assert snapshot.gate_reopens_in <= DAY
        clock.advance(61)
        lead = await asyncio.wait_for(client.leads.update("l1", "2", {COL_COMPANY: "b"}), 5)
        assert lead is not None
        # Recovered for every caller, not only the probe.
        await asyncio.wait_for(
            asyncio.gather(*(client.leads.update("l1", "3", {COL_COMPANY: "c"}) for _ in range(5))),
            5,
        )
    assert server.requests == 7


@pytest.mark.slow
@pytest.mark.parametrize(
    "first",
    [(429, {"Retry-After": "1e12"}), (200, _budget_headers(0, "ms"))],
    ids=["gate", "budget"],
)
async def test_never_more_than_one_probe_in_flight(
    clock: Clock, first: tuple[int, dict[str, str]]
) -> None:
    server = HostileThenNormal(_materialise(first), delay=0.2)
    async with (
        tiny_server(server.handle) as base_url,
        InboxClient(TOKEN, base_url=base_url, max_retries=0) as client,
    ):
        with contextlib.suppress(RateLimitError):
            await client.leads.update("l1", "1", {COL_COMPANY: "a"})
        # Within the first minute nothing goes (a short max_wait: told at once).
        with pytest.raises(RateLimitError):
            await client.leads.update("l1", "1", {COL_COMPANY: "a"}, max_rate_limit_wait=5)
        assert server.requests == 1
        clock.advance(61)
        results = await asyncio.wait_for(
            asyncio.gather(
                *(client.leads.update("l1", str(i), {COL_COMPANY: "x"}) for i in range(10)),
                return_exceptions=True,
            ),
            5,
        )
        assert server.most_active == 1
        # One probe; one more caller may count on the next probe (it goes as soon as the
        # probe's 2xx reopens the gate); the others are told the wait at once.
        successes = sum(not isinstance(r, BaseException) for r in results)
        assert 1 <= successes <= 2
        assert server.requests == 1 + successes
        assert all(isinstance(r, RateLimitError) for r in results if isinstance(r, BaseException))
        # The probe's 2xx reopened everything.
        await asyncio.wait_for(
            asyncio.gather(*(client.leads.update("l1", "3", {COL_COMPANY: "c"}) for _ in range(5))),
            5,
        )
    assert server.requests == 6 + successes


async def test_a_failed_probe_waits_another_minute(clock: Clock) -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire()
    limiter.release_nowait(None, sent=True, status=429, headers={"Retry-After": "1e12"})
    clock.advance(61)
    ticket = await asyncio.wait_for(limiter.acquire(max_wait=120), 1)
    assert ticket is not None  # the probe's ticket
    with pytest.raises(RateLimitError) as info:
        await limiter.acquire(max_wait=30)  # one probe at a time: the next a minute after it
    assert info.value.retry_after is not None and info.value.retry_after > DAY - 100
    limiter.release_nowait(ticket, sent=True, status=429, headers={"Retry-After": "1e12"})
    clock.advance(30)
    with pytest.raises(RateLimitError):
        await limiter.acquire(max_wait=5)
    clock.advance(31)
    ticket = await asyncio.wait_for(limiter.acquire(max_wait=120), 1)
    limiter.release_nowait(ticket, sent=True, status=200, headers={})
    assert limiter.try_acquire()
    assert not limiter.snapshot().gate_closed


async def test_a_legitimate_retry_after_60_still_gates_for_60_s(clock: Clock) -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire()
    limiter.release_nowait(None, sent=True, status=429, headers={"Retry-After": "60"})
    with pytest.raises(RateLimitError) as info:
        await limiter.acquire(max_wait=30)
    assert info.value.retry_after is not None and 60 <= info.value.retry_after <= 61
    clock.advance(59.5)
    with pytest.raises(RateLimitError):
        await limiter.acquire(max_wait=0.2)  # no probe for a wait of a minute or less
    assert not limiter.try_acquire()
    clock.advance(1.6)
    assert limiter.try_acquire()


async def test_a_probe_handed_back_unsent_lets_another_go(clock: Clock) -> None:
    limiter = RateLimiter()
    assert limiter.try_acquire()
    limiter.release_nowait(None, sent=True, status=429, headers={"Retry-After": "1e12"})
    clock.advance(61)
    ticket = await asyncio.wait_for(limiter.acquire(max_wait=120), 1)
    limiter.release_nowait(ticket, sent=False)
    ticket = await asyncio.wait_for(limiter.acquire(max_wait=120), 1)
    assert ticket is not None


# -- a wait the limiter can tell is told at once, and truthfully -------------------------------


@pytest.mark.slow
async def test_5000_callers_behind_a_full_hour_window_are_told_at_once(clock: Clock) -> None:
    limiter = RateLimiter([(10_000, 3600.0)])
    answered: list[float] = []
    # 100 answers an hour ago (free again in 0.5 s), then 9,900 spread over the last 40 minutes.
    for i in range(10_000):
        if i == 100:
            clock.advance(1200)
        elif i > 100:
            clock.advance(0.24)
        assert limiter.try_acquire()
        limiter.release_nowait(None, sent=True)
        answered.append(clock.now)
    clock.advance(3600 - (clock.now - answered[0]) - 0.5)
    started, began = time.monotonic(), clock.now
    results = await asyncio.wait_for(
        asyncio.gather(
            *(limiter.acquire(max_wait=120) for _ in range(5000)), return_exceptions=True
        ),
        10,
    )
    elapsed = time.monotonic() - started
    assert elapsed < 5
    assert all(r is None for r in results[:100])  # the oldest 100 answers freed their slots
    # The rest are 101st in line whenever they ask (those told at once do not stay in line):
    # they need the 101st oldest answer to leave the window, 20 minutes on.
    for result in results[100:]:
        assert isinstance(result, RateLimitError)
        assert result.retry_after is not None
        assert answered[100] + 3600 - clock.now <= result.retry_after
        assert result.retry_after <= answered[100] + 3600 - began


async def test_second_in_line_behind_a_request_in_flight_is_told_at_once() -> None:
    limiter = RateLimiter([(1, 60.0)])
    await limiter.acquire(max_wait=1)
    # The first in line may get the slot at once, should the request come back unsent ...
    first = asyncio.ensure_future(limiter.acquire(max_wait=5))
    await eventually(lambda: limiter.snapshot().waiting == 1)
    assert limiter.snapshot().waiting == 1
    # ... the second needs the slot the first will take, free a window after at the soonest.
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await limiter.acquire(max_wait=5)
    assert time.monotonic() - started < 0.5
    assert info.value.retry_after is not None and 59 < info.value.retry_after <= 60
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_429_fails_the_waiters_it_delays_beyond_their_max_wait(clock: Clock) -> None:
    limiter = RateLimiter([(1, 30.0)])
    assert limiter.try_acquire()  # in flight
    waiters = [asyncio.ensure_future(limiter.acquire(max_wait=20)) for _ in range(3)]
    await eventually(lambda: all(w.done() for w in waiters[1:]))
    assert limiter.snapshot().waiting == 1  # the slot after that one frees in 30 s at best
    assert all(w.done() for w in waiters[1:])
    limiter.release_nowait(None, sent=True, status=429, headers={"Retry-After": "3600"})
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await asyncio.wait_for(waiters[0], 1)
    assert time.monotonic() - started < 0.5
    assert info.value.retry_after is not None and 3599 <= info.value.retry_after <= 3601
    # Each was second in line when it asked: the one told before it did not stay in line.
    for waiter in waiters[1:]:
        error = waiter.exception()
        assert isinstance(error, RateLimitError)
        assert error.retry_after == pytest.approx(30.0, abs=0.01)


async def test_a_waiter_that_reaches_max_wait_reports_the_real_wait() -> None:
    limiter = RateLimiter([(1, 100.0)])
    ticket = await limiter.acquire(max_wait=1)
    # First in line behind a request in flight: it may come back unsent, so the waiter waits.
    waiter = asyncio.ensure_future(limiter.acquire(max_wait=0.3))
    await eventually(lambda: limiter.snapshot().waiting == 1)
    limiter.release_nowait(ticket, sent=True)  # it was sent: the slot frees in 100 s
    with pytest.raises(RateLimitError) as info:
        await waiter
    assert info.value.retry_after is not None and 99 < info.value.retry_after <= 100


@pytest.mark.slow
async def test_thousands_of_calls_through_a_client_behind_a_full_hour_window() -> None:
    server = HostileThenNormal((200, _budget_headers(99, str(int(time.time() + 60)))))
    async with (
        tiny_server(server.handle) as base_url,
        InboxClient(
            TOKEN, base_url=base_url, rate_limits=[(10, 1.0), (20, 3600.0)], max_rate_limit_wait=10
        ) as client,
    ):
        for i in range(10):
            await client.leads.update("l1", str(i), {COL_COMPANY: "a"})
        # Half the hour's slots are left: 10 callers get them, and the others
        # cannot get one within the hour, which the limiter can tell from where they queue.
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.leads.update("l1", str(i), {COL_COMPANY: "b"}) for i in range(5000)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
    assert server.requests == 20
    assert elapsed < 5
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 4990
    assert all(isinstance(r, RateLimitError) for r in errors)
    waits = [r.retry_after for r in errors if isinstance(r, RateLimitError)]
    assert all(w is not None and 3500 < w <= 3600 for w in waits), waits[:5]


async def test_the_limiters_own_retry_after_is_capped_at_its_longest_hold() -> None:
    limiter = RateLimiter([(1, 50_000.0)])
    assert limiter.try_acquire()
    limiter.release_nowait(None, sent=True)
    first = asyncio.ensure_future(limiter.acquire(max_wait=60_000))
    await eventually(lambda: limiter.snapshot().waiting == 1)
    with pytest.raises(RateLimitError) as info:
        await limiter.acquire(max_wait=1)  # second in line: two rounds of the window away
    assert info.value.retry_after == DAY
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_spent_budget_fails_the_waiters_it_delays_beyond_their_max_wait() -> None:
    limiter = RateLimiter([(1, 30.0)])
    assert limiter.try_acquire()  # in flight
    waiter = asyncio.ensure_future(limiter.acquire(max_wait=50))
    await eventually(lambda: limiter.snapshot().waiting == 1)
    assert limiter.snapshot().waiting == 1
    started = time.monotonic()
    # Its answer says the team's budget is spent for the next hour (someone else spends it).
    headers = _budget_headers(0, str(int(time.time() + 3600)))
    limiter.release_nowait(None, sent=True, status=200, headers=headers)
    with pytest.raises(RateLimitError) as info:
        await asyncio.wait_for(waiter, 1)
    assert time.monotonic() - started < 0.5
    assert info.value.retry_after is not None and 3590 < info.value.retry_after <= 3600
    assert "server's budget" in str(info.value)
