"""The public send path: `build_request`, `send`, and what one call passes through."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from aiohttp import web

from inbox_async import InboxClient, NotFoundError, SyncInboxClient
from inbox_async.models import Lead
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, LEADS, TOKEN, RecordingSleep, tiny_server


async def test_a_request_is_built_inspected_sent_and_decoded(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    path = f"/lists/{list_id}/leads/{LEADS[0]}"
    request = client.build_request(
        "PATCH", path, json={"data": {COL_COMPANY: "Acme"}}, retry_safe=True, max_retries=2
    )
    assert (request.method, request.path, request.max_retries) == ("PATCH", path, 2)
    assert str(request.url) == server.url + path
    assert request.body == b'{"data":{"%s":"Acme"}}' % COL_COMPANY.encode()
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert TOKEN not in repr(request)
    assert server.requests == []  # built, not sent

    response = await client.send(request)
    assert response.status == 200
    lead = msgspec.json.decode(response.body, type=Lead)
    assert lead.data[COL_COMPANY] == "Acme"
    assert server.lead_data(list_id, LEADS[0])[COL_COMPANY] == "Acme"
    (received,) = server.requests
    assert received.headers["Authorization"] == f"Bearer {TOKEN}"
    assert client.stats.calls == 1 and client.stats.attempts == 1


async def test_send_retries_and_raises_error_statuses(
    client: InboxClient, server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(503), times=1)
    request = client.build_request("GET", f"/lists/{list_id}/import-jobs", retry_safe=True)
    assert (await client.send(request)).status == 200
    assert request.attempt == 2
    missing = client.build_request("GET", "/prospects/nosuchprospect", retry_safe=True)
    with pytest.raises(NotFoundError):
        await client.send(missing)


async def test_request_is_build_send_and_decode(
    client: InboxClient, list_id: str, server: FakeInboxServer
) -> None:
    lead = await client.request(
        "PATCH",
        f"/lists/{list_id}/leads/{LEADS[1]}",
        Lead,
        json={"data": {COL_COMPANY: "B"}},
        retry_safe=True,
    )
    assert isinstance(lead, Lead) and lead.data[COL_COMPANY] == "B"


_BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"method": "FETCH"}, ValueError, "method"),
    ({"method": b"GET"}, TypeError, "method"),
    ({"method": ["GET"]}, TypeError, "method"),
    ({"path": "lists"}, ValueError, "path"),
    ({"path": None}, TypeError, "path"),
    ({"retry_safe": "yes"}, TypeError, "retry_safe"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"max_retries": 1.5}, TypeError, "max_retries"),
    ({"max_rate_limit_wait": float("nan")}, ValueError, "max_rate_limit_wait"),
    ({"priority": "urgent"}, ValueError, "priority"),
    ({"params": {"a": "b"}}, TypeError, "params"),
    ({"params": [("limit", 5)]}, TypeError, "params"),
    ({"params": [("a", "b", "c")]}, TypeError, "params"),
    ({"json": object()}, TypeError, "json"),
    ({"json": "\ud800"}, ValueError, "json"),
]


@pytest.mark.parametrize(("change", "error", "name"), _BAD)
async def test_a_bad_argument_raises_before_anything_is_sent(
    client: InboxClient,
    server: FakeInboxServer,
    change: dict[str, Any],
    error: type[Exception],
    name: str,
) -> None:
    arguments: dict[str, Any] = {"method": "GET", "path": "/prospects/abc", "retry_safe": True}
    arguments.update(change)
    with pytest.raises(error, match=name):
        client.build_request(**arguments)
    assert client.stats.calls == 0
    assert server.requests == []


async def test_a_str_subclass_is_a_str(client: InboxClient, server: FakeInboxServer) -> None:
    class Name(str):
        pass

    request = client.build_request(Name("GET"), Name("/prospects/abc"), retry_safe=True)
    with pytest.raises(NotFoundError):
        await client.send(request)


def _sdk_chain(coro: Any) -> list[str]:
    """The qualified names of the SDK's coroutines a task is awaiting, outermost first."""
    names: list[str] = []
    while isinstance(coro, types.CoroutineType):
        if coro.cr_code.co_filename.split("inbox_async")[0] != coro.cr_code.co_filename:
            names.append(coro.__qualname__)
        coro = coro.cr_await
    return names


async def _chain_while_in_flight(
    call: Callable[[InboxClient, str], Awaitable[object]],
) -> list[str]:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.json_response({"data": {}})

    async with tiny_server(handler) as url, InboxClient(TOKEN, base_url=url) as client:
        task = asyncio.ensure_future(call(client, url))
        await arrived.wait()
        chain = _sdk_chain(task.get_coro())
        release.set()
        await task
    return chain


async def test_one_update_awaits_through_retry_and_transport_only() -> None:
    # The hot path's coroutine layers, counted while the request is on the wire: the resource
    # method, the retry stage, the transport. A layer more costs CPU on every call.
    chain = await _chain_while_in_flight(
        lambda client, _: client.leads.update("abc", "1", {COL_COMPANY: "x"})
    )
    assert chain == ["Leads.update", "_RetryStage.send", "Transport.send"]


async def test_send_adds_no_layer_of_its_own() -> None:
    def send(client: InboxClient, _: str) -> Awaitable[object]:
        return client.send(client.build_request("GET", "/prospects/abc", retry_safe=True))

    assert await _chain_while_in_flight(send) == ["_RetryStage.send", "Transport.send"]


def test_the_blocking_client_builds_and_sends() -> None:
    with (
        FakeInboxServer(token=TOKEN) as fake,
        SyncInboxClient(TOKEN, base_url=fake.url) as client,
    ):
        list_id = fake.create_list(columns=[COL_COMPANY])
        fake.add_leads(list_id, LEADS)
        request = client.build_request(
            "PATCH",
            f"/lists/{list_id}/leads/{LEADS[2]}",
            json={"data": {COL_COMPANY: "S"}},
            retry_safe=True,
        )
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        response = client.send(request)
        assert response.status == 200
        with pytest.raises(ValueError, match="method"):
            client.build_request("FETCH", "/x", retry_safe=True)
        assert client.stats.calls == 1
