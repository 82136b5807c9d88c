"""Bulk updates: bounded, lazy, every item accounted for, cancellable and resumable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inbox_async import (
    BulkOutcome,
    BulkProgress,
    InboxClient,
    LeadUpdate,
    NotFoundError,
    RateLimitError,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, TOKEN, RecordingSleep, eventually, lead_ids, seed_list


@pytest.fixture
def bulk_list(server: FakeInboxServer) -> tuple[str, list[str]]:
    ids = lead_ids(2000)
    list_id = seed_list(server, ids)
    return list_id, ids


@pytest.mark.slow
async def test_faults_and_missing_leads_every_item_accounted_for(
    server: FakeInboxServer, sleep: RecordingSleep, bulk_list: tuple[str, list[str]]
) -> None:
    list_id, ids = bulk_list
    missing = lead_ids(10, start=99_000_000)
    server.set_random_faults({Fault.status(503): 0.05}, method="PATCH")
    updates = [(pid, {COL_COMPANY: f"v{pid}"}) for pid in ids[:1990] + missing]
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None, sleep=sleep) as client:
        report = await client.leads.bulk_update(list_id, updates, concurrency=16)
    assert report.total == 2000
    assert report.succeeded == 1990
    assert len(report.failed) == 10
    assert {f.platform_id for f in report.failed} == set(missing)
    assert all(isinstance(f.error, NotFoundError) for f in report.failed)
    assert all(f.status_code == 404 and f.code == "LEAD_NOT_FOUND" for f in report.failed)
    assert all(f.request_id for f in report.failed)
    # The server's state holds exactly what was asked, for every applied lead.
    applied = [pid for pid in ids if server.lead_data(list_id, pid)]
    assert len(applied) == 1990
    assert all(server.lead_data(list_id, pid) == {COL_COMPANY: f"v{pid}"} for pid in applied)
    assert server.max_in_flight <= 16
    assert server.status_counts[503] > 0
    assert report.attempts == 2000 + server.status_counts[503]
    assert report.retries == server.status_counts[503]


@pytest.mark.slow
async def test_an_async_generator_is_consumed_as_workers_go(
    client: InboxClient, server: FakeInboxServer, bulk_list: tuple[str, list[str]]
) -> None:
    list_id, ids = bulk_list
    server.set_latency(0.005)
    pulled = 0
    finished: list[BulkOutcome] = []
    ahead: list[int] = []

    async def updates() -> AsyncIterator[tuple[str, dict[str, str]]]:
        nonlocal pulled
        for pid in ids[:200]:
            ahead.append(pulled - len(finished))
            pulled += 1
            yield pid, {COL_COMPANY: "lazy"}

    async with client.leads.bulk_update_stream(list_id, updates(), concurrency=8) as stream:
        async for outcome in stream:
            finished.append(outcome)
    assert len(finished) == 200
    # Never more than the workers (plus the outcome being handed over) ahead of the results.
    assert max(ahead) <= 8 + 8
    assert server.max_in_flight <= 8


@pytest.mark.slow
async def test_the_stream_yields_one_outcome_per_item(
    client: InboxClient, server: FakeInboxServer, bulk_list: tuple[str, list[str]]
) -> None:
    list_id, ids = bulk_list
    items: list[LeadUpdate | tuple[str, dict[str, str]]] = [
        LeadUpdate(pid, {COL_COMPANY: "s"}) for pid in ids[:50]
    ]
    items.append(("nope", {COL_COMPANY: "s"}))  # not in the list: 404
    seen: list[BulkOutcome] = []
    async with client.leads.bulk_update_stream(list_id, items, concurrency=4) as stream:
        async for outcome in stream:
            seen.append(outcome)
    assert sorted(o.index for o in seen) == list(range(51))
    ok = [o for o in seen if o.ok]
    assert len(ok) == 50
    assert all(o.lead is not None and o.lead.data == {COL_COMPANY: "s"} for o in ok)
    (bad,) = [o for o in seen if not o.ok]
    assert isinstance(bad.error, NotFoundError)
    assert stream.report.succeeded == 50 and len(stream.report.failed) == 1


@pytest.mark.slow
async def test_invalid_items_fail_alone_and_are_never_sent(
    client: InboxClient, server: FakeInboxServer, bulk_list: tuple[str, list[str]]
) -> None:
    list_id, ids = bulk_list
    items: list[object] = [
        (ids[0], {COL_COMPANY: "ok"}),
        ("", {COL_COMPANY: "x"}),
        (ids[1], "not a mapping"),
        (ids[2], {COL_COMPANY: float("nan")}),
        "just a string",
        (ids[3], {COL_COMPANY: "ok"}),
    ]
    report = await client.leads.bulk_update(list_id, items)  # type: ignore[arg-type]
    assert report.succeeded == 2
    assert sorted(f.index for f in report.failed) == [1, 2, 3, 4]
    assert all(isinstance(f.error, (TypeError, ValueError)) for f in report.failed)
    assert len(server.requests) == 2


@pytest.mark.slow
async def test_progress_reports_counts_and_finishes_at_the_total(
    client: InboxClient, server: FakeInboxServer, bulk_list: tuple[str, list[str]]
) -> None:
    list_id, ids = bulk_list
    server.set_latency(0.03)
    reports: list[BulkProgress] = []
    updates = [(pid, {COL_COMPANY: "p"}) for pid in ids[:300]]
    await client.leads.bulk_update(list_id, updates, concurrency=8, on_progress=reports.append)
    assert len(reports) >= 2
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    last = reports[-1]
    assert (last.total, last.done, last.succeeded, last.failed) == (300, 300, 300, 0)
    assert last.eta == 0.0 and last.in_flight == 0
    assert any(0 < r.done < 300 and r.rate > 0 and r.eta is not None for r in reports[:-1])


@pytest.mark.slow
async def test_the_eta_counts_the_hour_window(server: FakeInboxServer) -> None:
    list_id = server.create_list(columns=[COL_COMPANY])
    ids = lead_ids(40)
    server.add_leads(list_id, ids)
    first: asyncio.Future[BulkProgress] = asyncio.get_running_loop().create_future()

    def on_progress(progress: BulkProgress) -> None:
        if not first.done():
            first.set_result(progress)

    async with InboxClient(
        TOKEN, base_url=server.url, rate_limits=[(1000, 1.0), (20, 3600.0)]
    ) as client:
        job = asyncio.create_task(
            client.leads.bulk_update(
                list_id, [(pid, {COL_COMPANY: "e"}) for pid in ids], on_progress=on_progress
            )
        )
        progress = await asyncio.wait_for(first, 5)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
    # A bulk job is background work: it leaves the reserve (10% of 20) of the hour window.
    assert progress.done == 18
    assert progress.reserve == 0.1 and progress.waiting_background > 0
    # 22 to go at 18 per hour for background work: two more hours.
    assert progress.eta is not None and progress.eta >= 7200


@pytest.mark.parametrize(
    ("priority", "reserve", "expected"),
    [
        # Background work is paced at 270 a minute: 540 items take two minutes.
        ("background", 0.1, 120.0),
        ("background", 0.0, 108.0),  # 300 a minute without a reserve
        ("interactive", 0.1, 60.0),  # the window alone: 300 now, 240 a minute later
    ],
)
async def test_the_eta_counts_the_reserve_and_the_pacing(
    server: FakeInboxServer, priority: str, reserve: float, expected: float
) -> None:
    from inbox_async.bulk import _BulkRun

    async with InboxClient(
        TOKEN, base_url=server.url, rate_limits=[(300, 60.0)], reserve=reserve
    ) as client:
        run = _BulkRun(
            client.leads.update,
            "abc",
            [],
            base_url=client.base_url,
            rate_limit=lambda: client.rate_limit,
            attempts=lambda: client.stats.attempts,
            max_connections=client.max_connections,
            concurrency=1,
            on_progress=None,
            journal=None,
            max_wait=1.0,
            keep_leads=False,
            priority=priority,  # type: ignore[arg-type]
        )
        assert run._eta(540, 0.0, client.rate_limit) == pytest.approx(expected)


@pytest.mark.slow
async def test_cancelling_stops_promptly_and_leaves_nothing_behind(
    client: InboxClient, server: FakeInboxServer, bulk_list: tuple[str, list[str]]
) -> None:
    list_id, ids = bulk_list
    server.set_latency(0.05)
    job = asyncio.create_task(
        client.leads.bulk_update(list_id, [(pid, {COL_COMPANY: "c"}) for pid in ids])
    )
    await eventually(lambda: len(server.requests) >= 40)
    started = time.monotonic()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert time.monotonic() - started < 1.0
    sent = len(server.requests)
    # Once what was on the wire is answered and no task of the job is left, nothing else can
    # be sent: no window of time to wait out.
    await eventually(lambda: server.in_flight == 0)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert len(server.requests) == sent  # nothing new after the cancel


@pytest.mark.slow
async def test_an_input_error_finishes_in_flight_work_then_raises(
    client: InboxClient, server: FakeInboxServer, bulk_list: tuple[str, list[str]]
) -> None:
    list_id, ids = bulk_list

    def updates():
        for pid in ids[:5]:
            yield pid, {COL_COMPANY: "before"}
        raise RuntimeError("the input broke")

    with pytest.raises(RuntimeError, match="the input broke"):
        await client.leads.bulk_update(list_id, updates(), concurrency=3)
    assert all(server.lead_data(list_id, pid) == {COL_COMPANY: "before"} for pid in ids[:5])


@pytest.mark.slow
async def test_a_journal_makes_a_rerun_skip_what_was_applied(
    client: InboxClient, server: FakeInboxServer, bulk_list: tuple[str, list[str]], tmp_path: Path
) -> None:
    list_id, ids = bulk_list
    journal = tmp_path / "job.journal"
    updates = [(pid, {COL_COMPANY: "j"}) for pid in ids[:100]] + [("77", {COL_COMPANY: "j"})]
    first = await client.leads.bulk_update(list_id, updates, journal=journal)
    assert first.succeeded == 100 and len(first.failed) == 1
    sent = len(server.requests)
    # A torn last line, as a kill -9 in the middle of a write would leave, is ignored.
    with journal.open("a") as f:
        f.write("ok 12ab")
    second = await client.leads.bulk_update(list_id, updates, journal=journal)
    assert second.skipped == 100
    assert second.succeeded == 0
    assert len(second.failed) == 1  # failures are tried again
    assert len(server.requests) == sent + 1
    # Different values for the same lead are a different update: not skipped.
    third = await client.leads.bulk_update(list_id, [(ids[0], {COL_COMPANY: "k"})], journal=journal)
    assert third.succeeded == 1


@pytest.mark.slow
async def test_rate_limit_waits_beyond_the_cap_fail_the_item_not_the_job(
    server: FakeInboxServer,
) -> None:
    list_id = seed_list(server, ["1", "2", "3"])
    # Interactive: the whole window of 2 at once (background work would be paced 30 s apart).
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=[(2, 60.0)]) as client:
        report = await client.leads.bulk_update(
            list_id,
            [(p, {COL_COMPANY: "r"}) for p in "123"],
            max_rate_limit_wait=1,
            priority="interactive",
        )
    assert report.succeeded == 2
    assert len(report.failed) == 1 and isinstance(report.failed[0].error, RateLimitError)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"concurrency": 1.5}, TypeError, "concurrency"),
        ({"on_progress": 3}, TypeError, "on_progress"),
        ({"max_rate_limit_wait": -1}, ValueError, "max_rate_limit_wait"),
    ],
)
async def test_bad_arguments_fail_before_anything_is_sent(
    client: InboxClient,
    server: FakeInboxServer,
    kwargs: dict[str, object],
    error: type[Exception],
    name: str,
) -> None:
    with pytest.raises(error, match=name):
        await client.leads.bulk_update("abc", [("1", {})], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="updates"):
        await client.leads.bulk_update("abc", "12345")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list_id"):
        await client.leads.bulk_update("ABC", [])
    assert server.requests == []


async def test_more_workers_than_connections_is_said_in_the_log(
    server: FakeInboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    list_id = seed_list(server, ["1"])
    async with InboxClient(
        TOKEN, base_url=server.url, rate_limits=None, max_connections=4
    ) as client:
        report = await client.leads.bulk_update(list_id, [("1", {COL_COMPANY: "w"})], concurrency=8)
    assert report.succeeded == 1
    assert "max_connections=4" in caplog.text
