"""Import jobs and prospect endpoints against the fake server."""

from __future__ import annotations

import msgspec
import pytest

from inbox_async import (
    ColumnMapping,
    ImportJob,
    InboxClient,
    NotFoundError,
    ProspectWithContext,
)
from inbox_async.testing import FakeInboxServer

from .conftest import COL_COMPANY, LEADS

CSV = "platformId,Company\n1001,Acme\n1002,Globex\n"


async def test_create_csv_sends_the_documented_body(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    job = await client.import_jobs.create_csv(
        list_id, CSV, file_name="leads.csv", column_mapping={"Company": COL_COMPANY}
    )
    assert isinstance(job, ImportJob)
    assert job.id and job.type == "csv"
    body = msgspec.json.decode(server.requests[-1].body)
    assert body == {
        "data": {
            "type": "csv",
            "content": CSV,
            "fileName": "leads.csv",
            "columnMapping": [{"csvHeader": "Company", "targetColumnId": COL_COMPANY}],
            "mergeStrategy": "overwrite",
        }
    }


async def test_column_mapping_also_takes_column_mapping_objects(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    mapping = [ColumnMapping(csv_header="Company", target_column_id=COL_COMPANY)]
    await client.import_jobs.create_csv(list_id, CSV, file_name="x.csv", column_mapping=mapping)
    body = msgspec.json.decode(server.requests[-1].body)
    assert body["data"]["columnMapping"] == [
        {"csvHeader": "Company", "targetColumnId": COL_COMPANY}
    ]


async def test_list_iterates_over_every_page(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    created = [
        (await client.import_jobs.create_csv(list_id, CSV, file_name=f"{i}.csv")).id
        for i in range(5)
    ]
    server.clear_requests()
    seen = [job.id async for job in client.import_jobs.list(list_id, limit=2)]
    assert sorted(map(str, seen)) == sorted(map(str, created))
    pages = [r for r in server.requests if r.method == "GET"]
    assert len(pages) == 3
    assert "limit=2" in pages[0].query
    assert "cursor=" in pages[1].query


async def test_list_page_and_status_filter(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    job = await client.import_jobs.create_csv(list_id, CSV, file_name="a.csv")
    assert job.id is not None
    page = await client.import_jobs.list_page(list_id, status=["completed", "failed"])
    assert "status=completed&status=failed" in server.requests[-1].query
    assert all(j.status in ("completed", "failed") for j in page.data)


async def test_cancel(client: InboxClient, server: FakeInboxServer, list_id: str) -> None:
    job = await client.import_jobs.create_csv(list_id, CSV, file_name="a.csv")
    assert job.id is not None
    server.set_import_job_status(list_id, job.id, "running")
    canceled = await client.import_jobs.cancel(list_id, job.id)
    assert canceled.status == "canceled"
    assert server.requests[-1].path.endswith(f"/import-jobs/{job.id}/cancel")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.import_jobs.list("abc", status="done"), "status"),
        (lambda c: c.import_jobs.list("abc", limit=101), "limit"),
        (lambda c: c.import_jobs.list("ABC"), "list_id"),
    ],
)
def test_import_job_listing_arguments_are_checked_at_call_time(call, name) -> None:
    client = InboxClient("t", base_url="http://127.0.0.1:1/api/v1")
    with pytest.raises(ValueError, match=name):
        call(client)


async def test_create_csv_arguments_are_checked(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    with pytest.raises(ValueError, match="content"):
        await client.import_jobs.create_csv(list_id, "  ", file_name="a.csv")
    with pytest.raises(ValueError, match="file_name"):
        await client.import_jobs.create_csv(list_id, CSV, file_name="")
    with pytest.raises(ValueError, match="merge_strategy"):
        await client.import_jobs.create_csv(list_id, CSV, file_name="a", merge_strategy="x")
    with pytest.raises(ValueError, match="import_job_id"):
        await client.import_jobs.cancel(list_id, "../x")
    assert server.requests == []


async def test_prospect_lookup_get_and_update_context(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    found = await client.prospects.lookup(LEADS[0])
    assert isinstance(found, ProspectWithContext)
    assert found.platform_id == LEADS[0]
    assert found.id is not None
    assert "platformId=" + LEADS[0] in server.requests[-1].query

    assert await client.prospects.lookup("999999999") is None

    same = await client.prospects.get(found.id)
    assert same.platform_id == LEADS[0]

    updated = await client.prospects.update_context(
        found.id, notes="Met at conf", valuation=1200, add_tags=["t1"], status_id=None
    )
    assert updated.context.notes == "Met at conf"
    assert updated.context.valuation == 1200
    assert "t1" in updated.context.tags
    body = msgspec.json.decode(server.requests[-1].body)
    # Fields left out are not sent at all; None is sent as null.
    assert body == {"notes": "Met at conf", "valuation": 1200, "statusId": None, "addTags": ["t1"]}


async def test_prospect_errors(client: InboxClient, server: FakeInboxServer) -> None:
    with pytest.raises(NotFoundError):
        await client.prospects.get("zzzzzzzzzzzzzzzzzzzzzzzz")
    with pytest.raises(ValueError, match="at least one field"):
        await client.prospects.update_context("abc")
    with pytest.raises(TypeError, match="valuation"):
        await client.prospects.update_context("abc", valuation="high")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="add_tags"):
        await client.prospects.update_context("abc", add_tags="t1")  # type: ignore[arg-type]
