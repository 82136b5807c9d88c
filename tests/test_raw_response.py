"""Raw responses: `<resource>.with_raw_response.<method>(...)` gives status, headers and timing."""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from inbox_async import (
    AddLeadsResult,
    APIResponseValidationError,
    APITimeoutError,
    ImportJob,
    ImportJobPage,
    InboxClient,
    Lead,
    NotFoundError,
    ProspectWithContext,
    RawResponse,
    RemoveLeadsResult,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, LEADS, TOKEN, RecordingSleep

CSV = "platformId,Company\n1001,Acme\n"


async def test_update_gives_status_headers_timing_and_the_lead(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    server.set_rate_limits([(300, 60.0)])
    raw = await client.leads.with_raw_response.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.headers["X-RateLimit-Limit"] == "300"
    assert raw.headers["X-RateLimit-Remaining"] == "299"
    assert raw.request_id is not None and raw.request_id == raw.headers["X-Request-Id"]
    assert isinstance(raw.elapsed, datetime.timedelta)
    assert raw.elapsed > datetime.timedelta(0)
    assert raw.retries_taken == 0
    assert raw.method == "PATCH"
    assert raw.url == f"{server.url}/lists/{list_id}/leads/{LEADS[0]}"
    lead = raw.parse()
    assert isinstance(lead, Lead)
    assert lead.data[COL_COMPANY] == "Acme"
    assert raw.parse() is lead  # decoded once
    assert raw.content.startswith(b"{")
    # The call was applied once, like the plain one.
    assert server.lead_data(list_id, LEADS[0])[COL_COMPANY] == "Acme"
    assert len(server.requests) == 1


async def test_parse_gives_what_the_plain_call_gives(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    plain = await client.leads.update(list_id, LEADS[1], {COL_COMPANY: "Globex"})
    raw = await client.leads.with_raw_response.update(list_id, LEADS[1], {COL_COMPANY: "Globex"})
    assert raw.parse() == plain


async def test_retries_taken_counts_the_failed_attempts(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(503), method="PATCH", times=2)
    raw = await client.leads.with_raw_response.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert raw.retries_taken == 2
    assert len(sleep.delays) == 2
    assert [r.status for r in server.requests] == [503, 503, 200]


@pytest.mark.slow
async def test_elapsed_is_the_final_attempt_only(server: FakeInboxServer, list_id: str) -> None:
    # The first attempt runs into its timeout; the retry is answered at once. `elapsed` covers
    # the retry only, which cannot have taken longer than an attempt may.
    server.add_fault(Fault.delay(30), method="PATCH", times=1)
    async with InboxClient(
        TOKEN, base_url=server.url, rate_limits=None, timeout=0.5, sleep=RecordingSleep()
    ) as client:
        started = time.monotonic()
        raw = await client.leads.with_raw_response.update(list_id, LEADS[0], {COL_COMPANY: "a"})
        took = time.monotonic() - started
    assert raw.retries_taken == 1
    assert took >= 0.5
    assert raw.elapsed < datetime.timedelta(seconds=0.5)


async def test_errors_still_raise(client: InboxClient, server: FakeInboxServer) -> None:
    unknown = "zzzzzzzzzzzzzzzzzzzzzzzz"
    with pytest.raises(NotFoundError) as caught:
        await client.leads.with_raw_response.update(unknown, LEADS[0], {COL_COMPANY: "x"})
    assert caught.value.status_code == 404
    with pytest.raises(NotFoundError):
        await client.prospects.with_raw_response.get(unknown)


async def test_a_bad_body_raises_at_parse(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    server.add_fault(Fault.truncated(), method="PATCH", times=1)
    raw = await client.leads.with_raw_response.update(list_id, LEADS[0], {COL_COMPANY: "x"})
    assert raw.status_code == 200
    with pytest.raises(APIResponseValidationError):
        raw.parse()


async def test_timeouts_still_raise(server: FakeInboxServer, list_id: str) -> None:
    server.add_fault(Fault.delay(30), method="PATCH", times=1)
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
        with pytest.raises(APITimeoutError):
            await client.leads.with_raw_response.update(
                list_id, LEADS[0], {COL_COMPANY: "x"}, timeout=0.2, max_retries=0
            )


Call = Callable[[InboxClient, str, str], Awaitable[RawResponse[Any]]]


async def _job(client: InboxClient, list_id: str) -> str:
    job = await client.import_jobs.create_csv(list_id, CSV, file_name="a.csv")
    assert job.id is not None
    return job.id


@pytest.mark.parametrize(
    ("call", "expected", "method"),
    [
        (
            lambda c, lid, _: c.leads.with_raw_response.update(lid, LEADS[0], {COL_COMPANY: "a"}),
            Lead,
            "PATCH",
        ),
        (lambda c, lid, _: c.leads.with_raw_response.add(lid, ["5", "6"]), AddLeadsResult, "POST"),
        (
            lambda c, lid, _: c.leads.with_raw_response.remove(lid, LEADS[:2]),
            RemoveLeadsResult,
            "DELETE",
        ),
        (
            lambda c, lid, _: c.import_jobs.with_raw_response.list_page(lid, limit=5),
            ImportJobPage,
            "GET",
        ),
        (
            lambda c, lid, _: c.import_jobs.with_raw_response.create_csv(lid, CSV, file_name="b"),
            ImportJob,
            "POST",
        ),
        (
            lambda c, lid, job: c.import_jobs.with_raw_response.cancel(lid, job),
            ImportJob,
            "POST",
        ),
        (
            lambda c, lid, _: c.prospects.with_raw_response.lookup(LEADS[0]),
            ProspectWithContext,
            "GET",
        ),
    ],
)
async def test_every_method_has_a_raw_form(
    client: InboxClient,
    server: FakeInboxServer,
    list_id: str,
    call: Call,
    expected: type,
    method: str,
) -> None:
    job = await _job(client, list_id)
    server.set_import_job_status(list_id, job, "running")
    raw = await call(client, list_id, job)
    assert raw.status_code == 200
    assert raw.method == method
    assert raw.request_id is not None
    assert isinstance(raw.parse(), expected)


async def test_prospect_get_and_update_context_raw(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    found = await client.prospects.lookup(LEADS[0])
    assert found is not None and found.id is not None
    got = await client.prospects.with_raw_response.get(found.id)
    assert got.parse().platform_id == LEADS[0]
    updated = await client.prospects.with_raw_response.update_context(found.id, notes="hi")
    assert updated.method == "PATCH"
    assert updated.parse().context.notes == "hi"
    missing = await client.prospects.with_raw_response.lookup("999999999")
    assert missing.status_code == 200
    assert missing.parse() is None
    assert missing.url.endswith("/prospects/lookup?platformId=999999999")


@pytest.mark.slow
async def test_raw_add_and_remove_send_exactly_one_request(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    for method in ("add", "remove"):
        call = getattr(client.leads.with_raw_response, method)
        with pytest.raises(ValueError, match=r"platform_ids.*1 to 2,000 ids, got 2,001"):
            await call(list_id, [str(i) for i in range(2001)])
        with pytest.raises(ValueError, match=r"platform_ids.*got 0"):
            await call(list_id, [])
    assert server.requests == []
    raw = await client.leads.with_raw_response.add(list_id, [str(i) for i in range(2000)])
    assert len(raw.parse().added) == 2000
    assert len(server.requests) == 1


async def test_many_request_methods_are_not_offered_and_say_why(client: InboxClient) -> None:
    with pytest.raises(AttributeError, match=r"list\(\) is not offered.*list_page"):
        client.import_jobs.with_raw_response.list  # type: ignore[attr-defined]  # noqa: B018
    for name in ("bulk_update", "bulk_update_stream"):
        with pytest.raises(AttributeError, match=rf"{name}\(\) is not offered.*update\(\)"):
            getattr(client.leads.with_raw_response, name)
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        client.prospects.with_raw_response.nonsense  # type: ignore[attr-defined]  # noqa: B018


async def test_the_raw_view_is_made_once(client: InboxClient) -> None:
    assert client.leads.with_raw_response is client.leads.with_raw_response


async def test_bad_options_are_refused_before_sending(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    raw = client.prospects.with_raw_response
    with pytest.raises(ValueError, match="priority"):
        await raw.lookup(LEADS[0], priority="urgent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        await raw.lookup(LEADS[0], timeout=-1)
    assert server.requests == []


async def test_a_raw_response_holds_no_secret(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    raw = await client.leads.with_raw_response.update(list_id, LEADS[0], {COL_COMPANY: "a"})
    shown = repr(raw) + repr([getattr(raw, name) for name in RawResponse.__slots__])
    assert TOKEN not in shown
    assert repr(raw) == f"<RawResponse [200] PATCH {raw.url}>"


async def test_plain_calls_are_not_timed(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    # Timing costs two clock reads per request: only a raw call (or a debug log) pays them.
    params = [("platformId", LEADS[0])]
    request = client.build_request("GET", "/prospects/lookup", params=params, retry_safe=True)
    assert request.timed is False
    response = await client.send(request)
    assert response.elapsed == 0.0
