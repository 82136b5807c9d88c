"""Client lifecycle, session ownership, sharing, logging and transport-level safety."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from inbox_async import (
    ApiDeprecationWarning,
    APIStatusError,
    AuthenticationError,
    ClientClosedError,
    InboxClient,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import (
    COL_COMPANY,
    LEADS,
    TOKEN,
    UPDATE,
    RecordingSleep,
    lead_ids,
    seed_list,
    tiny_server,
)


async def test_owned_session_is_created_lazily_and_closed_on_exit(
    server: FakeInboxServer, list_id: str
) -> None:
    client = InboxClient(TOKEN, base_url=server.url)
    assert client._transport._session is None
    async with client:
        await client.leads.update(list_id, LEADS[0], UPDATE)
        session = client._transport._session
        assert session is not None and not session.closed
    assert session.closed
    assert client.closed


async def test_a_borrowed_session_is_used_and_never_closed(
    server: FakeInboxServer, list_id: str
) -> None:
    async with aiohttp.ClientSession() as session:
        async with InboxClient(TOKEN, base_url=server.url, session=session) as client:
            await client.leads.update(list_id, LEADS[0], UPDATE)
        assert not session.closed
        assert server.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"
        assert server.requests[-1].headers["User-Agent"].startswith("inbox-async/")


async def test_using_a_closed_client_is_a_clear_error(
    server: FakeInboxServer, list_id: str
) -> None:
    client = InboxClient(TOKEN, base_url=server.url)
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(ClientClosedError, match="closed"):
        await client.leads.update(list_id, LEADS[0], UPDATE)
    assert server.requests == []


@pytest.mark.slow
async def test_one_client_serves_thousands_of_concurrent_tasks_on_one_session(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    ids = lead_ids(2000, 50_000_000)
    server.add_leads(list_id, ids)
    leads = await asyncio.gather(
        *(client.leads.update(list_id, pid, {COL_COMPANY: pid}) for pid in ids)
    )
    assert [lead.data[COL_COMPANY] for lead in leads] == ids
    assert all(server.lead_data(list_id, pid) == {COL_COMPANY: pid} for pid in ids)
    session = client._transport._session
    assert session is not None
    assert session.connector is not None and session.connector.limit == 100
    assert server.max_in_flight <= 100


async def test_debug_logs_show_each_attempt_without_the_token(
    client: InboxClient,
    server: FakeInboxServer,
    list_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.add_fault(Fault.status(503))
    with caplog.at_level(logging.DEBUG, logger="inbox_async"):
        await client.leads.update(list_id, LEADS[0], UPDATE)
    lines = [r.getMessage() for r in caplog.records if r.name == "inbox_async"]
    path = f"/lists/{list_id}/leads/{LEADS[0]}"
    assert any(f"PATCH {path} -> 503" in line and "(attempt 1)" in line for line in lines)
    assert any(f"PATCH {path} -> 200" in line and "(attempt 2)" in line for line in lines)
    assert any("retrying in" in line for line in lines)
    assert TOKEN not in caplog.text


async def test_deprecation_headers_warn_once_per_client(sleep: RecordingSleep) -> None:
    async with FakeInboxServer(token=TOKEN, deprecation=True) as server:
        lid = seed_list(server, LEADS)
        async with InboxClient(TOKEN, base_url=server.url, sleep=sleep) as client:
            with pytest.warns(ApiDeprecationWarning, match="deprecated") as record:
                await client.leads.update(lid, LEADS[0], UPDATE)
                await client.leads.update(lid, LEADS[1], UPDATE)
                await client.leads.update(lid, LEADS[2], UPDATE)
    assert len(record) == 1


async def test_a_redirect_to_another_host_is_not_followed(
    server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    seen: list[str | None] = []

    async def redirect(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization"))
        raise web.HTTPTemporaryRedirect(server.origin + request.path_qs)

    async with (
        tiny_server(redirect) as base_url,
        InboxClient(TOKEN, base_url=base_url, sleep=sleep) as client,
    ):
        with pytest.raises(APIStatusError) as info:
            await client.leads.update(list_id, LEADS[0], UPDATE)
    assert info.value.status_code == 307
    assert seen == [f"Bearer {TOKEN}"]
    assert server.requests == []  # the redirect is not followed


async def test_the_token_is_absent_from_error_strings_and_tracebacks(
    server: FakeInboxServer, list_id: str
) -> None:
    import traceback

    secret = "sk_live_" + "x" * 20
    async with InboxClient(secret, base_url=server.url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.leads.update(list_id, LEADS[0], UPDATE)
    rendered = "".join(traceback.format_exception(info.value))
    assert secret not in rendered
    assert secret not in repr(info.value)
    assert secret not in str(info.value.headers)


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True])
async def test_a_huge_response_body_is_refused_not_read_into_memory(chunked: bool) -> None:
    from inbox_async import APIResponseValidationError
    from inbox_async._constants import MAX_RESPONSE_BYTES

    chunk = b"x" * (1 << 20)
    count = MAX_RESPONSE_BYTES // len(chunk) + 2

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if not chunked:
            response.content_length = count * len(chunk)
        await response.prepare(request)
        try:
            for _ in range(count):
                await response.write(chunk)
        except ConnectionError:
            pass  # the client hung up, as it should
        return response

    async with (
        tiny_server(huge) as base_url,
        InboxClient(TOKEN, base_url=base_url) as client,
    ):
        with pytest.raises(APIResponseValidationError, match="larger than 32 MiB"):
            await client.leads.update("abc", "1", UPDATE)


async def test_lone_surrogates_are_refused_naming_the_parameter(client: InboxClient) -> None:
    with pytest.raises(ValueError, match="platform_id"):
        await client.leads.update("abc", "\ud800", UPDATE)
    with pytest.raises(ValueError, match="data"):
        await client.leads.update("abc", "1", {COL_COMPANY: "bad \udfff"})


async def test_max_connections_is_the_own_pool_size_and_none_for_a_borrowed_session() -> None:
    own = InboxClient(
        TOKEN, base_url="http://127.0.0.1:9", allow_insecure_http=True, max_connections=7
    )
    async with aiohttp.ClientSession() as session:
        borrowed = InboxClient(
            TOKEN, base_url="http://127.0.0.1:9", allow_insecure_http=True, session=session
        )
        assert (own.max_connections, borrowed.max_connections) == (7, None)
        await borrowed.aclose()
    await own.aclose()


async def test_a_call_refused_by_a_closed_client_is_not_counted() -> None:
    async with FakeInboxServer() as server:
        list_id = server.create_list([COL_COMPANY])
        server.add_leads(list_id, [LEADS[0]])
        client = InboxClient(TOKEN, base_url=server.url)
        await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"})
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "b"})
        assert (client.stats.calls, client.stats.attempts) == (1, 1)
