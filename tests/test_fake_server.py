"""The fake Inbox server (inbox_async.testing), exercised with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import email.utils
import io
import logging
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from yarl import URL

from inbox_async.testing import FakeInboxServer, Fault, RecordedRequest

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COL_A = "custom_q5cktl47a6pqa74eu06fz89v"
COL_B = "custom_m8r2xj93hd5bk0atcw7oe4fp"
LEAD = "44196397"

# Field names of the full example Lead on the "Update lead" reference page.
SEED_PROSPECT_KEYS = {
    "platform", "platformId", "externalId", "documentId", "displayName", "username", "handle",
    "image", "imageNormalized", "bio", "location", "profileUrl", "websiteUrl", "websiteDomain",
    "verified", "profileType", "isProtected", "followerCount", "followingCount", "postCount",
    "engagementCount", "listedCount", "platformCreatedAt", "firstSeenAt", "lastUpdatedAt",
    "lastEnrichedAt", "lastActiveAt", "source", "isFresh", "isStale", "confidence",
    "accountStatus", "platformData",
}  # fmt: skip
SEED_PLATFORM_DATA_KEYS = {
    "isVerifiedBlue", "isVerifiedGold", "isVerifiedGray", "professionalCategory",
    "urlEntities", "bannerUrl", "tweetsCount", "favoritesCount", "rawData",
}  # fmt: skip
SEED_CONTEXT_KEYS = {"tags", "statusId", "valuation", "notes", "threads"}
JOB_KEYS = {
    "id", "type", "status", "totalCount", "processedCount", "addedCount", "skippedCount",
    "failedCount", "error", "createdAt", "updatedAt", "completedAt",
}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
ID24 = re.compile(r"^[0-9a-z]{24}$")


class Reply:
    """A response read in full: status, headers, raw body and decoded JSON (if any)."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.json["error"])


@pytest.fixture
async def fake() -> AsyncIterator[FakeInboxServer]:
    async with FakeInboxServer() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


@pytest.fixture
def list_id(fake: FakeInboxServer) -> str:
    lid = fake.create_list(columns=[COL_A, COL_B])
    fake.add_leads(lid, [LEAD])
    return lid


async def call(http: aiohttp.ClientSession, method: str, url: str | URL, **kwargs: Any) -> Reply:
    async with http.request(method, url, **kwargs) as response:
        return Reply(response.status, response.headers, await response.read())


def lead_url(server: FakeInboxServer, list_id: str, platform_id: str) -> str:
    return f"{server.url}/lists/{list_id}/leads/{platform_id}"


# -- lifecycle and auth -------------------------------------------------------------------


async def test_lifecycle_and_urls() -> None:
    server = FakeInboxServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    await server.start()
    await server.start()  # idempotent
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.origin)
    assert server.url == server.origin + "/api/v1"
    assert server.origin != "http://127.0.0.1:0"
    url = server.url
    await server.close()
    await server.close()  # idempotent
    assert server.url == url  # still known, for tests of a server that went away
    async with aiohttp.ClientSession() as anon:
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(anon, "GET", url + "/prospects/lookup?platformId=1", headers=AUTH)
    with pytest.raises(RuntimeError):
        await server.start()


async def test_missing_or_wrong_token_is_401(fake: FakeInboxServer, list_id: str) -> None:
    url = lead_url(fake, list_id, LEAD)
    async with aiohttp.ClientSession() as anon:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
            reply = await call(anon, "PATCH", url, json={"data": {COL_A: "x"}}, headers=headers)
            assert reply.status == 401
            assert reply.error == {
                "code": "UNAUTHORIZED",
                "message": "Missing or invalid bearer token",
                "status": 401,
            }
            assert reply.headers["Content-Type"] == "application/json"
            assert reply.headers["X-Request-Id"].startswith("req_")
        ok = await call(anon, "PATCH", url, json={"data": {COL_A: "x"}}, headers=AUTH)
        assert ok.status == 200
    assert fake.lead_data(list_id, LEAD) == {COL_A: "x"}
    assert [r.status for r in fake.requests] == [401, 401, 401, 200]


async def test_token_none_accepts_any_non_empty_token() -> None:
    async with FakeInboxServer(token=None) as server, aiohttp.ClientSession() as anon:
        url = f"{server.url}/prospects/lookup?platformId=1"
        assert (await call(anon, "GET", url, headers={"Authorization": "Bearer x"})).status == 200
        assert (await call(anon, "GET", url, headers={"Authorization": "Bearer "})).status == 401
        assert (await call(anon, "GET", url)).status == 401


# -- PATCH /lists/{listId}/leads/{platformId} ------------------------------------------------


async def test_update_lead_sets_and_clears_values(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = lead_url(fake, list_id, LEAD)
    reply = await call(http, "PATCH", url, json={"data": {COL_A: "Acme Corp", COL_B: 5}})
    assert reply.status == 200
    lead = reply.json
    assert set(lead) == {"prospect", "context", "data"}
    assert lead["data"] == {COL_A: "Acme Corp", COL_B: 5}
    prospect = lead["prospect"]
    assert set(prospect) == SEED_PROSPECT_KEYS
    assert set(prospect["platformData"]) == SEED_PLATFORM_DATA_KEYS
    assert set(lead["context"]) >= SEED_CONTEXT_KEYS
    assert prospect["platformId"] == LEAD
    assert prospect["platform"] == "twitter"
    assert DATETIME.match(prospect["platformCreatedAt"])
    assert DATETIME.match(prospect["lastUpdatedAt"])

    cleared = await call(http, "PATCH", url, json={"data": {COL_A: None, COL_B: True}})
    assert cleared.json["data"] == {COL_B: True}
    assert fake.lead_data(list_id, LEAD) == {COL_B: True}
    # The same platform id always yields the same generated prospect.
    assert cleared.json["prospect"] == prospect
    async with FakeInboxServer() as other:
        other_list = other.create_list([COL_A])
        other.add_leads(other_list, [LEAD])
        again = await call(http, "PATCH", lead_url(other, other_list, LEAD), json={"data": {}})
    assert again.json["prospect"] == prospect


@pytest.mark.parametrize(
    ("list_part", "lead", "kwargs", "status", "code"),
    [
        ("UPPER", LEAD, {"json": {"data": {}}}, 400, "BAD_REQUEST"),
        ("nosuchlist", LEAD, {"json": {"data": {}}}, 404, "LIST_NOT_FOUND"),
        (None, "999", {"json": {"data": {}}}, 404, "LEAD_NOT_FOUND"),
        (None, LEAD, {"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400,
         "BAD_REQUEST"),
        (None, LEAD, {"json": {}}, 400, "BAD_REQUEST"),
        (None, LEAD, {"json": {"data": [1]}}, 400, "BAD_REQUEST"),
        (None, LEAD, {"json": [1]}, 400, "BAD_REQUEST"),
        (None, LEAD, {"data": b'{"data": {}}'}, 400, "BAD_REQUEST"),  # not application/json
        (None, LEAD, {}, 400, "BAD_REQUEST"),
        (None, LEAD, {"json": {"data": {"custom_unknown": "x"}}}, 400, "UNKNOWN_COLUMN"),
        (None, LEAD, {"json": {"data": {COL_A: {"nested": 1}}}}, 422, "INVALID_VALUE"),
        (None, LEAD, {"json": {"data": {COL_A: [1, 2]}}}, 422, "INVALID_VALUE"),
    ],
)  # fmt: skip
async def test_update_lead_validation(
    fake: FakeInboxServer,
    http: aiohttp.ClientSession,
    list_id: str,
    list_part: str | None,
    lead: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    url = lead_url(fake, list_part or list_id, lead)
    reply = await call(http, "PATCH", url, **kwargs)
    assert reply.status == status
    assert reply.error["code"] == code
    assert reply.error["status"] == status
    if code == "UNKNOWN_COLUMN":
        assert "custom_unknown" in reply.error["message"]
    assert fake.lead_data(list_id, LEAD) == {}


# -- POST / DELETE /lists/{listId}/leads ---------------------------------------------------


async def test_add_and_remove_leads(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = f"{fake.url}/lists/{list_id}/leads"
    ids = [LEAD, "123", "abc", "123", "456"]
    reply = await call(http, "POST", url, json={"platformIds": ids})
    assert reply.status == 200
    assert reply.json == {"added": ["123", "456"], "skipped": [LEAD, "123"], "failed": ["abc"]}
    assert fake.has_lead(list_id, "123") and fake.has_lead(list_id, "456")
    assert not fake.has_lead(list_id, "abc")
    # Adding a lead creates its prospect.
    found = await call(http, "GET", f"{fake.url}/prospects/lookup", params={"platformId": "456"})
    assert found.json["platformId"] == "456"

    removed = await call(http, "DELETE", url, json={"platformIds": ["123", "123", "777"]})
    assert removed.status == 200
    assert removed.json == {"removed": 1}
    assert not fake.has_lead(list_id, "123")
    assert fake.has_lead(list_id, LEAD)


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    "body",
    [
        {"platformIds": []},
        {"platformIds": [str(i) for i in range(2001)]},
        {"platformIds": [123]},
        {"platformIds": [""]},
        {"platformIds": "123"},
        {"ids": ["123"]},
        {"platformIds": ["1"], "extra": True},
    ],
)
async def test_lead_batch_validation(
    fake: FakeInboxServer,
    http: aiohttp.ClientSession,
    list_id: str,
    method: str,
    body: dict[str, Any],
) -> None:
    reply = await call(http, method, f"{fake.url}/lists/{list_id}/leads", json=body)
    assert reply.status == 400
    assert reply.error["code"] == "BAD_REQUEST"
    assert fake.has_lead(list_id, LEAD)


@pytest.mark.slow
async def test_lead_batch_limits_are_inclusive(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    ids = [str(10_000 + i) for i in range(2000)]
    reply = await call(http, "POST", f"{fake.url}/lists/{list_id}/leads", json={"platformIds": ids})
    assert reply.status == 200
    assert len(reply.json["added"]) == 2000


# -- import jobs ----------------------------------------------------------------------------


def csv_job(content: str, mapping: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "data": {
            "type": "csv",
            "content": content,
            "fileName": "leads.csv",
            "columnMapping": [{"csvHeader": h, "targetColumnId": c} for h, c in mapping],
            "mergeStrategy": "overwrite",
        }
    }


async def test_csv_import_job_runs_when_polled(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = f"{fake.url}/lists/{list_id}/import-jobs"
    content = f"platformId,Company\n{LEAD},Acme\n555,Globex\nnot-a-number,X\n555,Initech\n"
    created = await call(http, "POST", url, json=csv_job(content, [("Company", COL_A)]))
    assert created.status == 200
    job = created.json
    assert set(job) == JOB_KEYS
    assert ID24.match(job["id"])
    assert job["type"] == "csv"
    assert job["status"] == "queued"
    assert job["completedAt"] is None
    assert DATETIME.match(job["createdAt"])
    assert fake.import_job(list_id, job["id"])["status"] == "queued"
    assert fake.lead_data(list_id, LEAD) == {}

    listed = await call(http, "GET", url)
    assert listed.status == 200
    assert listed.json["nextCursor"] is None
    [done] = listed.json["data"]
    assert done["id"] == job["id"]
    assert done["status"] == "completed"
    assert (done["totalCount"], done["processedCount"]) == (4, 4)
    assert (done["addedCount"], done["skippedCount"], done["failedCount"]) == (1, 2, 1)
    assert DATETIME.match(done["completedAt"])
    assert fake.lead_data(list_id, LEAD) == {COL_A: "Acme"}
    assert fake.lead_data(list_id, "555") == {COL_A: "Initech"}


async def test_csv_import_without_platform_id_column_fails(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = f"{fake.url}/lists/{list_id}/import-jobs"
    await call(http, "POST", url, json=csv_job("id,Company\n1,Acme\n", []))
    [job] = (await call(http, "GET", url)).json["data"]
    assert job["status"] == "failed"
    assert "platformId" in job["error"]


async def test_import_job_listing_filters_and_pages(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = f"{fake.url}/lists/{list_id}/import-jobs"
    ids = []
    for _ in range(5):
        created = await call(http, "POST", url, json={"data": {"type": "followers"}})
        ids.append(created.json["id"])
    fake.set_import_job_status(list_id, ids[1], "completed")
    fake.set_import_job_status(list_id, ids[3], "failed")
    assert fake.import_job(list_id, ids[1])["completedAt"] is not None

    first = (await call(http, "GET", url, params={"limit": "2"})).json
    assert [j["id"] for j in first["data"]] == [ids[4], ids[3]]
    second = (
        await call(http, "GET", url, params={"limit": "2", "cursor": first["nextCursor"]})
    ).json
    assert [j["id"] for j in second["data"]] == [ids[2], ids[1]]
    third = (
        await call(http, "GET", url, params={"limit": "2", "cursor": second["nextCursor"]})
    ).json
    assert [j["id"] for j in third["data"]] == [ids[0]]
    assert third["nextCursor"] is None

    query = [("status", "completed"), ("status", "failed")]
    filtered = (await call(http, "GET", url, params=query)).json
    assert [j["id"] for j in filtered["data"]] == [ids[3], ids[1]]


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"status": "done"}, {"cursor": "zzz"}],
)
async def test_import_job_listing_validation(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str, params: dict[str, str]
) -> None:
    reply = await call(http, "GET", f"{fake.url}/lists/{list_id}/import-jobs", params=params)
    assert reply.status == 400
    assert reply.error["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"data": {"type": "tsv"}}, "BAD_REQUEST"),
        ({"data": {"type": "csv"}}, "BAD_REQUEST"),
        ({"data": "csv"}, "BAD_REQUEST"),
        (csv_job("platformId\n1\n", [("platformId", "custom_nope")]), "UNKNOWN_COLUMN"),
        ({"data": {**csv_job("a\n", [])["data"], "mergeStrategy": "append"}}, "BAD_REQUEST"),
        ({"data": {**csv_job("a\n", [])["data"], "columnMapping": [{"csvHeader": "a"}]}},
         "BAD_REQUEST"),
    ],
)  # fmt: skip
async def test_import_job_creation_validation(
    fake: FakeInboxServer,
    http: aiohttp.ClientSession,
    list_id: str,
    body: dict[str, Any],
    code: str,
) -> None:
    reply = await call(http, "POST", f"{fake.url}/lists/{list_id}/import-jobs", json=body)
    assert reply.status == 400
    assert reply.error["code"] == code
    assert (await call(http, "GET", f"{fake.url}/lists/{list_id}/import-jobs")).json["data"] == []


async def test_cancel_import_job(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = f"{fake.url}/lists/{list_id}/import-jobs"
    job = (await call(http, "POST", url, json=csv_job(f"platformId\n{LEAD}\n", []))).json
    cancel_url = f"{url}/{job['id']}/cancel"
    canceled = await call(http, "POST", cancel_url, json={})
    assert canceled.status == 200
    assert canceled.json["status"] == "canceled"
    assert canceled.json["id"] == job["id"]
    assert fake.import_job(list_id, job["id"])["status"] == "canceled"
    # A canceled CSV job never imports, even when polled.
    assert (await call(http, "GET", url)).json["data"][0]["status"] == "canceled"

    again = await call(http, "POST", cancel_url, json={})
    assert again.status == 409
    assert again.error["code"] == "CONFLICT"
    missing = await call(http, "POST", f"{url}/{'0' * 24}/cancel", json={})
    assert missing.status == 404
    assert missing.error["code"] == "IMPORT_JOB_NOT_FOUND"


# -- prospects ------------------------------------------------------------------------------


async def test_prospect_lookup_get_and_context(
    fake: FakeInboxServer, http: aiohttp.ClientSession
) -> None:
    lookup = f"{fake.url}/prospects/lookup"
    unknown = await call(http, "GET", lookup, params={"platformId": "42"})
    assert unknown.status == 200
    assert unknown.body == b"null"

    pid = fake.add_prospect("42", displayName="Ada", context={"tags": ["t1"], "notes": "hi"})
    assert ID24.match(pid)
    found = (await call(http, "GET", lookup, params={"platformId": "42"})).json
    assert found["id"] == pid
    assert found["displayName"] == "Ada"
    assert found["platformId"] == "42"
    assert found["context"]["tags"] == ["t1"]
    assert found["context"]["notes"] == "hi"
    assert (await call(http, "GET", f"{fake.url}/prospects/{pid}")).json == found

    patch = {
        "notes": None,
        "valuation": 599,
        "statusId": "st1",
        "addTags": ["t2", "t3"],
        "removeTags": ["t1"],
        "assigneeId": "u1",
        "done": True,
    }
    updated = await call(http, "PATCH", f"{fake.url}/prospects/{pid}/context", json=patch)
    assert updated.status == 200
    context = updated.json["context"]
    assert context["tags"] == ["t2", "t3"]
    assert (context["notes"], context["valuation"], context["statusId"]) == (None, 599, "st1")
    assert context["assigneeId"] == "u1"
    assert (await call(http, "GET", f"{fake.url}/prospects/{pid}")).json["context"] == context

    assert fake.add_prospect("43", prospect_id="customid1") == "customid1"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/prospects/lookup", None, 400, "BAD_REQUEST"),
        ("GET", "/prospects/abcdefabcdefabcdefabcdef", None, 404, "PROSPECT_NOT_FOUND"),
        ("GET", "/prospects/Not-An-Id", None, 400, "BAD_REQUEST"),
        ("PATCH", "/prospects/abcdefabcdefabcdefabcdef/context", {}, 404, "PROSPECT_NOT_FOUND"),
        ("PATCH", "/prospects/{pid}/context", {"valuation": "lots"}, 400, "BAD_REQUEST"),
        ("PATCH", "/prospects/{pid}/context", {"addTags": "t"}, 400, "BAD_REQUEST"),
        ("PATCH", "/prospects/{pid}/context", {"done": "yes"}, 400, "BAD_REQUEST"),
        ("PATCH", "/prospects/{pid}/context", {"status": "x"}, 400, "BAD_REQUEST"),
    ],
)
async def test_prospect_errors(
    fake: FakeInboxServer,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    pid = fake.add_prospect("42")
    reply = await call(http, method, fake.url + path.format(pid=pid), json=body)
    assert reply.status == status
    assert reply.error["code"] == code


# -- routing and error formats ------------------------------------------------------------------


async def test_unknown_route_and_wrong_method(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    for url in (f"{fake.url}/nothing", f"{fake.origin}/api/v2/lists", f"{fake.url}/lists/"):
        reply = await call(http, "GET", url)
        assert reply.status == 404
        assert reply.error["code"] == "NOT_FOUND"
    wrong = await call(http, "GET", lead_url(fake, list_id, LEAD))
    assert wrong.status == 405
    assert wrong.error == {
        "code": "METHOD_NOT_ALLOWED",
        "message": "GET is not allowed here",
        "status": 405,
    }
    assert wrong.headers["Allow"] == "PATCH"


async def test_flat_error_format() -> None:
    async with FakeInboxServer(error_format="flat") as server, aiohttp.ClientSession() as anon:
        lid = server.create_list([COL_A])
        url = lead_url(server, lid, LEAD)
        unauthorized = await call(anon, "PATCH", url, json={"data": {}})
        assert unauthorized.status == 401
        assert unauthorized.json == {
            "error": "Unauthorized",
            "message": "Missing or invalid bearer token",
        }
        missing = await call(anon, "PATCH", url, json={"data": {}}, headers=AUTH)
        assert missing.status == 404
        assert missing.json["error"] == "Not Found"
        assert LEAD in missing.json["message"]


async def test_deprecation_headers_and_request_ids() -> None:
    async with FakeInboxServer(deprecation=True) as server, aiohttp.ClientSession() as anon:
        url = f"{server.url}/prospects/lookup?platformId=1"
        replies = [await call(anon, "GET", url, headers=AUTH) for _ in range(3)]
        replies.append(await call(anon, "GET", url))  # errors carry them too
    for reply in replies:
        assert reply.headers["Deprecation"] == "true"
        sunset = email.utils.parsedate_to_datetime(reply.headers["Sunset"])
        assert sunset.timestamp() > time.time()
    request_ids = [r.headers["X-Request-Id"] for r in replies]
    assert all(re.fullmatch(r"req_[0-9a-f]{16}", rid) for rid in request_ids)
    assert len(set(request_ids)) == 4


async def test_no_deprecation_or_rate_headers_by_default(
    fake: FakeInboxServer, http: aiohttp.ClientSession
) -> None:
    reply = await call(http, "GET", f"{fake.url}/prospects/lookup?platformId=1")
    assert "Deprecation" not in reply.headers
    assert "X-RateLimit-Limit" not in reply.headers


async def test_percent_encoded_segments_stay_literal(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    fake.add_leads(list_id, ["a/b"])
    base = f"{fake.url}/lists/{list_id}/leads/"
    slash = await call(http, "PATCH", URL(base + "a%2Fb", encoded=True), json={"data": {COL_A: 1}})
    assert slash.status == 200
    assert slash.json["prospect"]["platformId"] == "a/b"
    assert fake.lead_data(list_id, "a/b") == {COL_A: 1}

    for raw in ("%2E%2E", "%2e%2e", "a%2Fb%2F..%2F..%2F..%2Fleads"):
        reply = await call(http, "PATCH", URL(base + raw, encoded=True), json={"data": {}})
        assert reply.status == 404
        assert reply.error["code"] == "LEAD_NOT_FOUND"
    assert [r.path for r in fake.requests] == [
        f"/api/v1/lists/{list_id}/leads/{raw}"
        for raw in ("a%2Fb", "%2E%2E", "%2e%2e", "a%2Fb%2F..%2F..%2F..%2Fleads")
    ]


async def test_unusual_bodies(
    fake: FakeInboxServer,
    http: aiohttp.ClientSession,
    list_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = lead_url(fake, list_id, LEAD)
    json_type = {"Content-Type": "application/json"}
    huge = io.BytesIO(b'{"data": {}, "pad": "' + b"x" * (1024 * 1024) + b'"}')
    too_large = await call(http, "PATCH", url, data=huge, headers=json_type)
    assert (too_large.status, too_large.error["code"]) == (413, "PAYLOAD_TOO_LARGE")

    garbled = {**json_type, "Content-Encoding": "gzip"}
    unreadable = await call(http, "PATCH", url, data=b"not gzip", headers=garbled)
    assert (unreadable.status, unreadable.error["code"]) == (400, "BAD_REQUEST")

    body = msgspec.json.encode({"data": {COL_A: "x" * 2000}})
    expect = await call(http, "PATCH", url, data=body, headers=json_type, expect100=True)
    assert expect.status == 200
    assert fake.lead_data(list_id, LEAD) == {COL_A: "x" * 2000}

    # A client that hangs up halfway through its body is logged as dropped.
    host, port = URL(fake.origin).host, URL(fake.origin).port
    assert host is not None and port is not None
    _, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"PATCH /api/v1/lists/{list_id}/leads/{LEAD} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        'Content-Length: 100\r\n\r\n{"data"'.encode()
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    for _ in range(200):
        if len(fake.requests) == 4 and fake.requests[-1].status != -1:
            break
        await asyncio.sleep(0.001)
    assert [r.status for r in fake.requests] == [413, 400, 200, 0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- rate limiting --------------------------------------------------------------------------


@pytest.mark.slow
async def test_rate_limit_sliding_window(http: aiohttp.ClientSession) -> None:
    async with FakeInboxServer(rate_limits=[(5, 0.5)]) as server:
        url = f"{server.url}/prospects/lookup?platformId=1"
        async with aiohttp.ClientSession() as anon:
            # Requests without a valid token do not use the team's quota.
            assert (await call(anon, "GET", url)).status == 401
        started = time.monotonic()
        replies = [await call(http, "GET", url) for _ in range(5)]
        last_accepted = time.monotonic()
        replies.append(await call(http, "GET", url))
        assert [r.status for r in replies] == [200] * 5 + [429]
        assert [r.headers["X-RateLimit-Remaining"] for r in replies] == list("432100")
        assert {r.headers["X-RateLimit-Limit"] for r in replies} == {"5"}
        now = time.time()
        for reply in replies:
            assert now - 1 <= int(reply.headers["X-RateLimit-Reset"]) <= now + 2
        limited = replies[-1]
        assert limited.headers["Retry-After"] == "1"
        assert limited.error["code"] == "RATE_LIMITED"
        assert limited.error["status"] == 429

        await asyncio.sleep(started + 0.3 - time.monotonic())
        assert (await call(http, "GET", url)).status == 429  # all five are still in the window
        await asyncio.sleep(last_accepted + 0.52 - time.monotonic())
        recovered = await call(http, "GET", url)
        assert recovered.status == 200
        # The five accepted requests have slid out; the rejected ones (the last one less
        # than 0.5 s ago) used no quota, so only this request counts.
        assert recovered.headers["X-RateLimit-Remaining"] == "4"
        assert server.status_counts == {401: 1, 200: 6, 429: 2}


async def test_rate_limit_tightest_window_and_http_date(http: aiohttp.ClientSession) -> None:
    async with FakeInboxServer(
        rate_limits=[(100, 3600), (2, 30)], retry_after_format="http-date"
    ) as server:
        url = f"{server.url}/prospects/lookup?platformId=1"
        first = await call(http, "GET", url)
        assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == (
            "2",
            "1",
        )
        await call(http, "GET", url)
        limited = await call(http, "GET", url)
        assert limited.status == 429
        retry_at = email.utils.parsedate_to_datetime(limited.headers["Retry-After"]).timestamp()
        assert time.time() + 28 <= retry_at <= time.time() + 32

        server.set_rate_limits([(1, 60)])
        assert (await call(http, "GET", url)).status == 200
        assert (await call(http, "GET", url)).status == 429
        server.set_rate_limits(None)
        unlimited = await call(http, "GET", url)
        assert unlimited.status == 200
        assert "X-RateLimit-Remaining" not in unlimited.headers


# -- faults ---------------------------------------------------------------------------------


def test_fault_values_are_frozen_and_hashable() -> None:
    assert Fault.status(503) == Fault.status(503)
    assert len({Fault.status(503), Fault.status(503), Fault.drop()}) == 2
    assert Fault.status(429).retry_after == "1"
    with pytest.raises(AttributeError):
        Fault.drop().kind = "delay"  # type: ignore[misc]
    for bad in (lambda: Fault.status(99), lambda: Fault.delay(-1), lambda: Fault.empty(600)):
        with pytest.raises(ValueError):
            bad()


async def test_status_faults(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = lead_url(fake, list_id, LEAD)
    body = {"data": {COL_A: "changed"}}
    fake.add_fault(Fault.status(503))
    fake.add_fault(Fault.status(429))
    fake.add_fault(Fault.status(500, code_name="BOOM", headers={"X-Extra": "1"}, retry_after=2.5))
    fake.add_fault(Fault.status(502, body=b"raw", headers={"Content-Type": "text/plain"}))
    fake.add_fault(Fault.status(429, retry_after=""))
    fake.add_fault(Fault.status(429, headers={"retry-after": "soon"}))

    unavailable = await call(http, "PATCH", url, json=body)
    assert unavailable.status == 503
    assert unavailable.error == {
        "code": "SERVICE_UNAVAILABLE",
        "message": "Service Unavailable",
        "status": 503,
    }
    limited = await call(http, "PATCH", url, json=body)
    assert limited.status == 429
    assert limited.error["code"] == "RATE_LIMITED"
    assert limited.headers["Retry-After"] == "1"
    custom = await call(http, "PATCH", url, json=body)
    assert custom.status == 500
    assert custom.error["code"] == "BOOM"
    assert (custom.headers["X-Extra"], custom.headers["Retry-After"]) == ("1", "2.5")
    raw = await call(http, "PATCH", url, json=body)
    assert (raw.status, raw.body, raw.headers["Content-Type"]) == (502, b"raw", "text/plain")
    bare = await call(http, "PATCH", url, json=body)
    assert bare.status == 429
    assert "Retry-After" not in bare.headers
    explicit = await call(http, "PATCH", url, json=body)
    assert explicit.headers.getall("Retry-After") == ["soon"]

    assert fake.lead_data(list_id, LEAD) == {}  # faulted requests change nothing
    assert (await call(http, "PATCH", url, json=body)).status == 200
    assert fake.lead_data(list_id, LEAD) == {COL_A: "changed"}


async def test_drop_fault_disconnects_quietly(
    fake: FakeInboxServer,
    http: aiohttp.ClientSession,
    list_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = lead_url(fake, list_id, LEAD)
    fake.add_fault(Fault.drop())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, "PATCH", url, json={"data": {COL_A: "x"}})
    assert fake.lead_data(list_id, LEAD) == {}
    assert (await call(http, "PATCH", url, json={"data": {COL_A: "x"}})).status == 200
    assert [r.status for r in fake.requests] == [0, 200]
    assert fake.status_counts == {0: 1, 200: 1}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_delay_fault_then_normal_handling(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = lead_url(fake, list_id, LEAD)
    fake.add_fault(Fault.delay(0.3))
    with pytest.raises(asyncio.TimeoutError):
        await call(http, "PATCH", url, json={"data": {}}, timeout=aiohttp.ClientTimeout(total=0.05))
    assert fake.in_flight == 1  # the server is still sleeping on it

    fake.add_fault(Fault.delay(0.05))
    started = time.monotonic()
    reply = await call(http, "PATCH", url, json={"data": {COL_B: 7}})
    assert time.monotonic() - started >= 0.05
    assert reply.status == 200
    assert fake.lead_data(list_id, LEAD) == {COL_B: 7}  # a delay still applies the change


async def test_html_empty_and_truncated_faults(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    url = lead_url(fake, list_id, LEAD)
    fake.add_fault(Fault.html())
    fake.add_fault(Fault.empty(503))
    fake.add_fault(Fault.truncated())

    html = await call(http, "PATCH", url, json={"data": {COL_A: "x"}})
    assert html.status == 502
    assert html.headers["Content-Type"].startswith("text/html")
    assert b"<title>502 Bad Gateway</title>" in html.body
    empty = await call(http, "PATCH", url, json={"data": {COL_A: "x"}})
    assert (empty.status, empty.body) == (503, b"")
    truncated = await call(http, "PATCH", url, json={"data": {COL_A: "x"}})
    assert truncated.status == 200
    assert truncated.headers["Content-Type"] == "application/json"
    with pytest.raises(msgspec.DecodeError):
        _ = truncated.json
    assert fake.lead_data(list_id, LEAD) == {}

    full = await call(http, "PATCH", url, json={"data": {COL_A: "x"}})
    assert full.status == 200
    assert full.body.startswith(truncated.body)
    assert len(truncated.body) == len(full.body) // 2


async def test_scripted_faults_match_method_and_path_in_order(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    fake.add_leads(list_id, ["123"])
    fake.add_fault(Fault.status(500), times=2, method="patch", path=r"/leads/123$")
    fake.add_fault(Fault.status(503), method="PATCH")
    lookup = f"{fake.url}/prospects/lookup?platformId=1"

    assert (await call(http, "GET", lookup)).status == 200
    assert (await call(http, "PATCH", lead_url(fake, list_id, LEAD), json={"data": {}})).status == (
        503
    )
    statuses = [
        (await call(http, "PATCH", lead_url(fake, list_id, "123"), json={"data": {}})).status
        for _ in range(3)
    ]
    assert statuses == [500, 500, 200]
    assert (await call(http, "PATCH", lead_url(fake, list_id, LEAD), json={"data": {}})).status == (
        200
    )


async def _random_statuses(seed: int, count: int) -> list[int]:
    async with FakeInboxServer(seed=seed) as server, aiohttp.ClientSession(headers=AUTH) as http:
        server.set_random_faults({Fault.status(503): 0.4, Fault.status(500): 0.2})
        url = f"{server.url}/prospects/lookup?platformId=1"
        return [(await call(http, "GET", url)).status for _ in range(count)]


async def test_random_faults_are_seeded_and_can_be_turned_off(
    fake: FakeInboxServer, http: aiohttp.ClientSession
) -> None:
    first = await _random_statuses(seed=7, count=40)
    assert first == await _random_statuses(seed=7, count=40)
    assert {200, 500, 503} == set(first)

    lookup = f"{fake.url}/prospects/lookup?platformId=1"
    fake.set_random_faults({Fault.empty(502): 1.0}, method="GET", path="/lookup")
    assert (await call(http, "GET", lookup)).status == 502
    assert (await call(http, "GET", f"{fake.url}/prospects/{'a' * 24}")).status == 404
    fake.add_fault(Fault.status(504))  # scripted faults win over random ones
    assert (await call(http, "GET", lookup)).status == 504
    fake.set_random_faults({})
    assert (await call(http, "GET", lookup)).status == 200
    with pytest.raises(ValueError):
        fake.set_random_faults({Fault.drop(): 0.7, Fault.html(): 0.4})


# -- observability ----------------------------------------------------------------------------


async def test_request_log(
    fake: FakeInboxServer, http: aiohttp.ClientSession, list_id: str
) -> None:
    loop = asyncio.get_running_loop()
    before = loop.time()
    await call(http, "PATCH", lead_url(fake, list_id, LEAD), json={"data": {COL_A: "v"}})
    await call(http, "GET", f"{fake.url}/lists/{list_id}/import-jobs?status=queued&limit=5")
    first, second = fake.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path, first.query) == (
        "PATCH",
        f"/api/v1/lists/{list_id}/leads/{LEAD}",
        "",
    )
    assert msgspec.json.decode(first.body) == {"data": {COL_A: "v"}}
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert first.status == 200
    assert before <= first.received_at <= second.received_at <= loop.time()
    assert (second.method, second.query, second.body) == ("GET", "status=queued&limit=5", b"")
    with pytest.raises(AttributeError):
        first.status = 500  # type: ignore[misc]

    fake.clear_requests()
    assert fake.requests == []
    assert fake.status_counts == {}


async def test_in_flight_counts_concurrent_requests(
    fake: FakeInboxServer, http: aiohttp.ClientSession
) -> None:
    fake.set_latency(0.05)
    url = f"{fake.url}/prospects/lookup?platformId=1"
    started = time.monotonic()
    replies = await asyncio.gather(*(call(http, "GET", url) for _ in range(5)))
    elapsed = time.monotonic() - started
    assert [r.status for r in replies] == [200] * 5
    assert 0.05 <= elapsed < 0.25  # concurrent, not serialised
    assert fake.max_in_flight == 5
    assert fake.in_flight == 0
    fake.set_latency(0)
    fake.clear_requests()
    assert fake.max_in_flight == 0


# -- command line -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_command_line_server_answers_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inbox_async.testing", "--port", "0", "--demo-list", "3",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        info: dict[str, str] = {}
        while "platform_ids" not in info:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
            assert line, (await proc.stderr.read()).decode()
            key, _, value = line.decode().strip().partition("=")
            info[key] = value
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", info["url"])
        assert ID24.match(info["list_id"])
        columns = info["column_ids"].split(",")
        assert len(columns) == 2 and all(c.startswith("custom_") for c in columns)
        first_id, _, last_id = info["platform_ids"].partition("..")
        assert int(last_id) - int(first_id) == 2

        url = f"{info['url']}/lists/{info['list_id']}/leads/{first_id}"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {info['token']}"}) as s:
            reply = await call(s, "PATCH", url, json={"data": {columns[0]: "hello"}})
        assert reply.status == 200
        assert reply.json["data"] == {columns[0]: "hello"}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=20)
        stderr = await proc.stderr.read()
    assert code == 0
    assert stderr == b""
