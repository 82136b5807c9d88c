"""Chaos: a bulk job of thousands of updates through 5xx, dropped connections, responses slower
than the timeout, truncated bodies and 429 bursts. Every item ends applied (the server holds
exactly the requested values) or reported failed with a reason; none is missing or counted twice;
nothing leaks.

A smaller, fault-light version (5% of 503s) is tests/test_bulk.py::
test_faults_and_missing_leads_every_item_accounted_for; this one is the full storm.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings

import pytest

from inbox_async import (
    APIResponseValidationError,
    BulkOutcome,
    InboxClient,
    InboxError,
    NotFoundError,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, COL_TITLE, TOKEN, RecordingSleep, eventually, seed_list

ITEMS = 3000
MISSING = 20  # leads not in the list: they must fail, with 404
BURSTS = (1000, 2200)  # after this many PATCHes, a burst of 429s
BURST_SIZE = 6


def _values(pid: str) -> dict[str, object]:
    return {COL_COMPANY: f"new-{pid}", COL_TITLE: int(pid) % 7}


async def _bursts(server: FakeInboxServer) -> None:
    for after in BURSTS:
        await eventually(lambda: len(server.requests) >= after, timeout=60)  # noqa: B023
        server.add_fault(Fault.status(429, retry_after=1), times=BURST_SIZE, method="PATCH")


@pytest.mark.slow
async def test_a_bulk_job_through_a_storm_of_faults_loses_nothing_and_leaks_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="inbox_async")
    ids = [str(80_000_000 + i) for i in range(ITEMS)]
    in_list = ids[:-MISSING]
    sleep = RecordingSleep()
    outcomes: list[BulkOutcome] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with FakeInboxServer(token=TOKEN, rate_limits=[(4000, 1.0)], seed=1) as server:
            list_id = seed_list(server, in_list, (COL_COMPANY, COL_TITLE))
            server.set_random_faults(
                {
                    Fault.status(503): 0.07,
                    Fault.status(500): 0.02,
                    Fault.html(502): 0.01,
                    Fault.drop(): 0.02,
                    Fault.delay(2.0): 0.01,  # slower than the 0.3 s timeout
                    Fault.truncated(): 0.003,  # a 200 that does not decode: fails, not retried
                },
                method="PATCH",
            )
            client = InboxClient(
                TOKEN,
                base_url=server.url,
                timeout=0.3,
                sleep=sleep,
                rate_limits=[(4000, 1.0)],
            )
            async with client:
                bursts = asyncio.create_task(_bursts(server))
                updates = ((pid, _values(pid)) for pid in ids)
                async with client.leads.bulk_update_stream(
                    list_id, updates, concurrency=32
                ) as stream:
                    async for outcome in stream:
                        outcomes.append(outcome)
                report = stream.report
                await asyncio.wait_for(bursts, 5)
                snapshot = client.rate_limit
                session = client._transport._session
                assert session is not None
            assert session.closed
            assert session.connector is None or session.connector.closed
            patches = [r for r in server.requests if r.method == "PATCH"]
            counts = server.status_counts
            state = {pid: server.lead_data(list_id, pid) for pid in in_list}
        await eventually(lambda: asyncio.all_tasks() == {asyncio.current_task()}, timeout=2)
        del client, session, stream
        gc.collect()

    # Every item exactly once.
    assert sorted(o.index for o in outcomes) == list(range(ITEMS))
    assert [o.platform_id for o in sorted(outcomes, key=lambda o: o.index)] == ids
    assert report.total == ITEMS
    assert report.succeeded + len(report.failed) == ITEMS
    assert report.succeeded == sum(o.ok for o in outcomes)
    assert sorted(f.index for f in report.failed) == sorted(o.index for o in outcomes if not o.ok)

    # Applied means the server holds exactly the requested values.
    for outcome in outcomes:
        if outcome.ok:
            assert outcome.lead is not None and outcome.lead.data == _values(outcome.platform_id)
            assert state[outcome.platform_id] == _values(outcome.platform_id)
    # Failed means a reason; the value is either untouched or what was asked (a timed-out
    # attempt may have landed), never anything else.
    failed = {f.platform_id: f for f in report.failed}
    assert set(ids[-MISSING:]) <= set(failed)
    for pid, failure in failed.items():
        assert isinstance(failure.error, InboxError) and str(failure.error)
        if pid in state:
            assert state[pid] in ({}, _values(pid))
    for pid in ids[-MISSING:]:
        assert isinstance(failed[pid].error, NotFoundError)
    others = [f for pid, f in failed.items() if pid not in ids[-MISSING:]]
    assert any(isinstance(f.error, APIResponseValidationError) for f in others)
    assert len(others) < ITEMS * 0.02  # retries carried the rest through

    # The storm really blew, and every attempt is accounted for.
    assert counts[503] > ITEMS * 0.04 and counts[0] > ITEMS * 0.01
    assert counts[429] >= len(BURSTS) * BURST_SIZE
    assert "timed out" in caplog.text  # slow responses hit the timeout and were retried
    assert report.attempts == len(patches)
    assert len(sleep.delays) == report.attempts - ITEMS  # one backoff per retry
    assert report.retries == report.attempts - ITEMS

    # Nothing left behind.
    assert snapshot.in_flight == 0 and snapshot.waiting == 0
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]
