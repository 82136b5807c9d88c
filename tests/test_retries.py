"""What is retried, how long the SDK waits, and when it gives up."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from inbox_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    BadRequestError,
    InboxClient,
    InternalServerError,
    RateLimitError,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import LEADS, TOKEN, UPDATE, RecordingSleep, closed_port, eventually


def _attempts(server: FakeInboxServer, method: str = "PATCH") -> int:
    return sum(1 for r in server.requests if r.method == method)


async def test_5xx_is_retried_with_growing_backoff(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(503), times=2)
    lead = await client.leads.update(list_id, LEADS[0], UPDATE)
    assert lead.data == UPDATE
    assert _attempts(server) == 3
    assert len(sleep.delays) == 2
    # Exponential with up to 1 s of jitter: 1..2 s, then 2..3 s.
    assert 1.0 <= sleep.delays[0] <= 2.0
    assert 2.0 <= sleep.delays[1] <= 3.0


async def test_retries_stop_after_max_retries(
    server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(500), times=10)
    async with InboxClient(TOKEN, base_url=server.url, max_retries=2, sleep=sleep) as client:
        with pytest.raises(InternalServerError) as info:
            await client.leads.update(list_id, LEADS[0], UPDATE)
    assert info.value.status_code == 500
    assert _attempts(server) == 3
    assert len(sleep.delays) == 2


async def test_max_retries_can_be_overridden_per_call(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(502), times=3)
    with pytest.raises(InternalServerError):
        await client.leads.update(list_id, LEADS[0], UPDATE, max_retries=0)
    assert _attempts(server) == 1
    assert sleep.delays == []


async def test_429_waits_what_retry_after_says(
    unpaced_client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(429, retry_after=7))
    await unpaced_client.leads.update(list_id, LEADS[0], UPDATE)
    assert _attempts(server) == 2
    assert len(sleep.delays) == 1
    assert 7.0 <= sleep.delays[0] <= 8.0


async def test_429_understands_an_http_date(
    unpaced_client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.add_fault(Fault.status(429, retry_after=when))
    await unpaced_client.leads.update(list_id, LEADS[0], UPDATE)
    assert len(sleep.delays) == 1
    assert 27.0 <= sleep.delays[0] <= 33.0


async def test_429_without_retry_after_backs_off(
    unpaced_client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(429, headers={"Retry-After": "soon"}))
    await unpaced_client.leads.update(list_id, LEADS[0], UPDATE)
    assert len(sleep.delays) == 1
    assert 1.0 <= sleep.delays[0] <= 2.0


async def test_429_is_retried_even_for_calls_that_are_not_safe_to_repeat(
    unpaced_client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(429, retry_after=1), method="POST")
    job = await unpaced_client.import_jobs.create_csv(list_id, "platformId\n1\n", file_name="a.csv")
    assert job.id
    assert _attempts(server, "POST") == 2


async def test_a_retry_after_beyond_the_cap_raises_at_once(
    server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(429, retry_after=3600))
    async with InboxClient(
        TOKEN, base_url=server.url, max_rate_limit_wait=60, sleep=sleep
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.leads.update(list_id, LEADS[0], UPDATE)
    assert info.value.retry_after == 3600
    assert info.value.code == "RATE_LIMITED"
    assert _attempts(server) == 1
    assert sleep.delays == []


async def test_other_4xx_are_never_retried(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    with pytest.raises(BadRequestError) as info:
        await client.leads.update(list_id, LEADS[0], {"custom_doesnotexist": 1})
    assert info.value.code == "UNKNOWN_COLUMN"
    assert _attempts(server) == 1
    assert sleep.delays == []


async def test_408_is_retried_for_safe_calls(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(408))
    await client.leads.update(list_id, LEADS[0], UPDATE)
    assert _attempts(server) == 2


async def test_a_dropped_connection_is_retried_for_an_update(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.drop(), times=2)
    lead = await client.leads.update(list_id, LEADS[0], UPDATE)
    assert lead.data == UPDATE
    assert _attempts(server) == 3


async def test_creating_an_import_job_is_not_retried_after_a_5xx_or_a_drop(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(503), method="POST")
    with pytest.raises(InternalServerError):
        await client.import_jobs.create_csv(list_id, "platformId\n1\n", file_name="a.csv")
    server.add_fault(Fault.drop(), method="POST")
    with pytest.raises(APIConnectionError) as info:
        await client.import_jobs.create_csv(list_id, "platformId\n1\n", file_name="a.csv")
    assert info.value.request_sent is True
    assert _attempts(server, "POST") == 2
    assert sleep.delays == []


async def test_a_refused_connection_is_retried_even_for_an_import_job(
    sleep: RecordingSleep,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/v1"
    async with InboxClient(TOKEN, base_url=url, max_retries=2, sleep=sleep) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.import_jobs.create_csv("abc", "platformId\n1\n", file_name="a.csv")
    assert info.value.request_sent is False
    assert not isinstance(info.value, APITimeoutError)
    assert len(sleep.delays) == 2
    assert isinstance(info.value.__cause__, OSError)


async def test_a_slow_response_times_out_and_is_retried(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.delay(2.0))
    lead = await client.leads.update(list_id, LEADS[0], UPDATE, timeout=0.2)
    assert lead.data == UPDATE
    assert len(sleep.delays) == 1


async def test_timeouts_raise_api_timeout_error(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    server.add_fault(Fault.delay(2.0))
    with pytest.raises(APITimeoutError) as info:
        await client.leads.update(list_id, LEADS[0], UPDATE, timeout=0.2, max_retries=0)
    assert "PATCH" in str(info.value)


async def test_an_undecodable_success_is_not_retried(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.truncated())
    with pytest.raises(APIResponseValidationError) as info:
        await client.leads.update(list_id, LEADS[0], UPDATE)
    assert info.value.status_code == 200
    assert _attempts(server) == 1


async def test_cancelling_during_the_retry_sleep_propagates(
    server: FakeInboxServer, list_id: str
) -> None:
    entered = asyncio.Event()

    async def blocking_sleep(delay: float) -> None:
        entered.set()
        await asyncio.sleep(3600)

    server.add_fault(Fault.status(503), times=5)
    async with InboxClient(TOKEN, base_url=server.url, sleep=blocking_sleep) as client:
        task = asyncio.create_task(client.leads.update(list_id, LEADS[0], UPDATE))
        await asyncio.wait_for(entered.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _attempts(server) == 1


async def test_cancelling_during_the_request_is_not_retried(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.delay(5.0))
    task = asyncio.create_task(client.leads.update(list_id, LEADS[0], UPDATE))
    await eventually(lambda: bool(server.requests))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sleep.delays == []
    assert _attempts(server) == 1
