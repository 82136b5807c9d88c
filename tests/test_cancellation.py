"""Cancellation: a call gives control back within 100 ms wherever it is waiting, CancelledError is
never swallowed or retried, and the limiter's accounting is right afterwards.

Already proven elsewhere, not repeated here:
- CancelledError from the retry sleep propagates and sends nothing more (with an injected sleep):
  tests/test_retries.py::test_cancelling_during_the_retry_sleep_propagates
- a call cancelled mid-request is not retried:
  tests/test_retries.py::test_cancelling_during_the_request_is_not_retried
- a waiter cancelled before any slot frees takes none (the limiter alone):
  tests/test_ratelimit.py::test_a_cancelled_waiter_does_not_keep_a_slot
- a bulk job cancelled mid-way stops promptly and leaves no task behind:
  tests/test_bulk.py::test_cancelling_stops_promptly_and_leaves_nothing_behind
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from inbox_async import InboxClient, RateLimiter, RateLimitError
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import LEADS, TOKEN, UPDATE, RecordingSleep, eventually, seed_list

PROMPT = 0.1  # the bound: control is back within 100 ms


@dataclass
class Phase:
    """A client set up so that a call on it is stuck in one phase until cancelled."""

    server: FakeInboxServer
    client: InboxClient
    list_id: str
    sleep: RecordingSleep
    stuck: Callable[[], bool]
    """True once the call is waiting in the phase."""
    backoffs: int = 0
    """Retry sleeps the call makes before it gets stuck."""


async def _prepare(name: str, server: FakeInboxServer, list_id: str) -> Phase:
    sleep = RecordingSleep()
    if name == "request":
        client = InboxClient(TOKEN, base_url=server.url, sleep=sleep)
        server.add_fault(Fault.delay(30.0))
        return Phase(server, client, list_id, sleep, lambda: server.in_flight == 1)
    if name == "retried request":
        # Cancelled inside tenacity: the second attempt hangs after a 503.
        client = InboxClient(TOKEN, base_url=server.url, sleep=sleep)
        server.add_fault(Fault.status(503))
        server.add_fault(Fault.delay(30.0))

        def second_attempt_in_flight() -> bool:
            return len(server.requests) == 2 and server.in_flight == 1

        return Phase(server, client, list_id, sleep, second_attempt_in_flight, backoffs=1)
    if name == "retry sleep":
        # The real asyncio.sleep: a 503 is followed by 1-2 s of backoff.
        client = InboxClient(TOKEN, base_url=server.url)
        server.add_fault(Fault.status(503))

        def in_backoff() -> bool:
            return (
                bool(server.requests)
                and server.requests[0].status == 503
                and (client.rate_limit.in_flight == 0)
            )

        return Phase(server, client, list_id, sleep, in_backoff)
    if name == "rate-limit window":
        client = InboxClient(TOKEN, base_url=server.url, sleep=sleep, rate_limits=[(1, 1.0)])
        await client.leads.update(list_id, LEADS[9], UPDATE)
        return Phase(server, client, list_id, sleep, lambda: client.rate_limit.waiting == 1)
    assert name == "429 gate"
    client = InboxClient(TOKEN, base_url=server.url, sleep=sleep)
    server.add_fault(Fault.status(429, retry_after=1))
    with pytest.raises(RateLimitError):
        await client.leads.update(list_id, LEADS[9], UPDATE, max_retries=0)
    assert client.rate_limit.gate_closed
    return Phase(server, client, list_id, sleep, lambda: client.rate_limit.waiting == 1)


PHASES = ["request", "retried request", "retry sleep", "rate-limit window", "429 gate"]


@pytest.fixture
async def fresh_server() -> AsyncIterator[FakeInboxServer]:
    async with FakeInboxServer(token=TOKEN) as srv:
        yield srv


async def _accounting_is_right_and_the_next_call_works(phase: Phase) -> None:
    client, server = phase.client, phase.server
    sent = len(server.requests)
    await asyncio.sleep(0.05)  # a retry would have gone out by now (the sleep is injected)
    assert len(server.requests) == sent, "the cancelled call was retried"
    snapshot = client.rate_limit
    assert snapshot.in_flight == 0
    assert snapshot.waiting == 0
    for window in snapshot.windows:
        # Every slot taken is a request that was sent: the cancelled call holds no other.
        assert window.in_use == sent
    server.clear_faults()
    lead = await asyncio.wait_for(client.leads.update(phase.list_id, LEADS[0], UPDATE), 5)
    assert lead.data == UPDATE
    assert client.rate_limit.in_flight == 0


@pytest.mark.slow
@pytest.mark.matrix
@pytest.mark.parametrize("name", PHASES)
async def test_cancelling_a_call_returns_within_100_ms_wherever_it_waits(
    fresh_server: FakeInboxServer, name: str
) -> None:
    phase = await _prepare(name, fresh_server, seed_list(fresh_server))
    async with phase.client:
        task = asyncio.create_task(phase.client.leads.update(phase.list_id, LEADS[1], UPDATE))
        await eventually(phase.stuck)
        await asyncio.sleep(0.02)
        assert not task.done()
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < PROMPT
        assert task.cancelled()
        assert len(phase.sleep.delays) == phase.backoffs
        await _accounting_is_right_and_the_next_call_works(phase)


@pytest.mark.slow
@pytest.mark.matrix
@pytest.mark.parametrize("name", PHASES)
async def test_a_deadline_around_a_call_fires_on_time_wherever_it_waits(
    fresh_server: FakeInboxServer, name: str
) -> None:
    # wait_for() cancels the call and turns that into TimeoutError on the way out: if the SDK
    # swallowed or retried the CancelledError, the deadline would pass unnoticed.
    phase = await _prepare(name, fresh_server, seed_list(fresh_server))
    deadline = 0.25
    async with phase.client:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                phase.client.leads.update(phase.list_id, LEADS[1], UPDATE), deadline
            )
        assert time.monotonic() - started < deadline + PROMPT
        assert len(phase.sleep.delays) == phase.backoffs
        await _accounting_is_right_and_the_next_call_works(phase)


@pytest.mark.slow
@pytest.mark.matrix
async def test_many_waiters_cancelled_at_the_gate_leave_no_trace(
    fresh_server: FakeInboxServer,
) -> None:
    phase = await _prepare("429 gate", fresh_server, seed_list(fresh_server))
    async with phase.client:
        tasks = [
            asyncio.create_task(phase.client.leads.update(phase.list_id, pid, UPDATE))
            for pid in LEADS * 20
        ]
        await eventually(lambda: phase.client.rate_limit.waiting == len(tasks))
        started = time.monotonic()
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert time.monotonic() - started < PROMPT
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert len(fresh_server.requests) == 1  # only the 429
        await _accounting_is_right_and_the_next_call_works(phase)
    assert len(fresh_server.requests) == 2


async def test_a_slot_granted_as_its_waiter_is_cancelled_is_handed_back() -> None:
    limiter = RateLimiter([(1, 60.0)])
    await limiter.acquire(max_wait=10)
    waiter = asyncio.create_task(limiter.acquire(max_wait=10))
    await eventually(lambda: limiter.snapshot().waiting == 1)
    # The request never left: its slot goes straight to the waiter, in this very step ...
    await limiter.release(sent=False)
    # ... and the waiter is cancelled before it could run with it.
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    snapshot = limiter.snapshot()
    assert (snapshot.in_flight, snapshot.waiting, snapshot.windows[0].in_use) == (0, 0, 0)
    await asyncio.wait_for(limiter.acquire(max_wait=10), PROMPT)
    assert limiter.snapshot().in_flight == 1


@pytest.mark.slow
async def test_a_waiter_cancelled_in_a_full_window_does_not_delay_the_next_one(
    fresh_server: FakeInboxServer,
) -> None:
    list_id = seed_list(fresh_server)
    window = 0.5
    async with InboxClient(TOKEN, base_url=fresh_server.url, rate_limits=[(1, window)]) as c:
        await c.leads.update(list_id, LEADS[0], UPDATE)
        freed_at = time.monotonic() + window
        doomed = asyncio.create_task(c.leads.update(list_id, LEADS[1], UPDATE))
        await eventually(lambda: c.rate_limit.waiting == 1)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await asyncio.wait_for(c.leads.update(list_id, LEADS[2], UPDATE), 2 * window)
        # It went when the first slot freed, not a window later as if the cancelled one had
        # taken a slot on its way out.
        assert time.monotonic() < freed_at + window - 0.1
    assert [r.path.rsplit("/", 1)[1] for r in fresh_server.requests] == [LEADS[0], LEADS[2]]
