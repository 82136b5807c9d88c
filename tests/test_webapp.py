"""The web-app example (examples/webapp.py): one client shared by every aiohttp.web handler,
under 800 concurrent requests; SDK errors become HTTP answers; the script runs on its own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from inbox_async import InboxClient
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, LEADS, TOKEN, RecordingSleep

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "webapp.py"
LOAD = 800
LIMITS = [(5000, 1.0)]


def _import_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("inbox_examples_webapp", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is executed
    spec.loader.exec_module(module)
    return module


webapp = _import_example()


@asynccontextmanager
async def _serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _fire(url: str, ids: list[str]) -> Counter[int]:
    """One PATCH per id, all at once, each on its own connection to the app."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as browser:

        async def one(pid: str) -> int:
            async with browser.patch(f"{url}/leads/{pid}", json={COL_COMPANY: pid}) as resp:
                await resp.read()
                return resp.status

        return Counter(await asyncio.gather(*(one(pid) for pid in ids)))


async def _health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as browser, browser.get(f"{url}/health") as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


@pytest.fixture
async def busy_server() -> AsyncIterator[tuple[FakeInboxServer, str, list[str]]]:
    async with FakeInboxServer(token=TOKEN, rate_limits=LIMITS) as server:
        list_id = server.create_list(columns=[COL_COMPANY])
        ids = [str(30_000_000 + i) for i in range(LOAD)]
        server.add_leads(list_id, ids)
        server.set_latency(0.01)  # so that the 800 overlap upstream too
        yield server, list_id, ids


@pytest.mark.slow
async def test_800_concurrent_requests_all_succeed_through_one_shared_client(
    busy_server: tuple[FakeInboxServer, str, list[str]],
) -> None:
    server, list_id, ids = busy_server
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=LIMITS) as client:
        app = webapp.make_app(client, list_id)
        async with _serving(app) as url:
            statuses = await _fire(url, ids)
            health = await _health(url)
            session = client._transport._session
            await _fire(url, ids[:10])  # later requests: still the same session
            assert client._transport._session is session
    assert statuses == Counter({200: LOAD})
    assert all(server.lead_data(list_id, pid) == {COL_COMPANY: pid} for pid in ids)
    assert (health["calls"], health["attempts"], health["retries"]) == (LOAD, LOAD, 0)
    assert health["handlers"]["maxInFlight"] > 100  # the app really had a crowd at once
    assert health["rateLimit"]["inFlight"] == 0 and health["rateLimit"]["waiting"] == 0
    assert session is not None and session.closed  # closed with the client, not before
    assert session.connector is None or session.connector.limit == 100
    assert server.max_in_flight <= 100
    assert server.status_counts == Counter({200: LOAD + 10})


@pytest.mark.slow
async def test_the_shared_client_keeps_one_pool_of_at_most_100_connections(
    busy_server: tuple[FakeInboxServer, str, list[str]],
) -> None:
    server, list_id, ids = busy_server
    opened: list[object] = []
    requests: list[object] = []

    async def on_new_connection(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: object
    ) -> None:
        opened.append(params)

    async def on_request(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: object
    ) -> None:
        requests.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_new_connection)
    trace.on_request_start.append(on_request)
    connector = aiohttp.TCPConnector(limit=100)
    async with (
        aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as pool,
        InboxClient(TOKEN, base_url=server.url, session=pool, rate_limits=LIMITS) as client,
        _serving(webapp.make_app(client, list_id)) as url,
    ):
        statuses = await _fire(url, ids)
        assert not pool.closed
    assert statuses == Counter({200: LOAD})
    assert len(requests) == LOAD
    assert 0 < len(opened) <= 100  # connections are reused, never one per request
    assert client.stats.calls == LOAD


@pytest.mark.slow
async def test_sdk_errors_become_http_answers_the_caller_can_act_on(
    server: FakeInboxServer,
    list_id: str,
    sleep: RecordingSleep,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webapp, "CALL_TIMEOUT", 0.2)
    async with (
        InboxClient(TOKEN, base_url=server.url, rate_limits=None, sleep=sleep) as client,
        _serving(webapp.make_app(client, list_id)) as url,
        aiohttp.ClientSession() as browser,
    ):

        async def patch(pid: str, body: object) -> tuple[int, dict[str, Any], str | None]:
            async with browser.patch(f"{url}/leads/{pid}", json=body) as resp:
                return resp.status, await resp.json(), resp.headers.get("Retry-After")

        status, body, _ = await patch(LEADS[0], {COL_COMPANY: "Acme"})
        assert (status, body) == (200, {"platformId": LEADS[0], "data": {COL_COMPANY: "Acme"}})
        status, body, _ = await patch("999", {COL_COMPANY: "x"})
        assert status == 404 and "LEAD_NOT_FOUND" in body["error"] and body["inboxRequestId"]
        status, body, _ = await patch(LEADS[0], {"custom_nope": "x"})
        assert status == 422 and "UNKNOWN_COLUMN" in body["error"]
        status, body, _ = await patch(LEADS[0], [COL_COMPANY])
        assert status == 400
        status, body, _ = await patch(LEADS[0], {COL_COMPANY: {"nested": 1}})
        assert status == 400 and "data" in body["error"]
        sent = len(server.requests)
        assert sent == 3  # the bad inputs never reached the API

        server.add_fault(Fault.status(500), times=3)
        status, body, _ = await patch(LEADS[1], {COL_COMPANY: "x"})
        assert status == 502 and body["error"].startswith("500")
        server.add_fault(Fault.delay(2.0), times=3)
        status, body, _ = await patch(LEADS[1], {COL_COMPANY: "x"})
        assert status == 504
        assert len(server.requests) == sent + 3 + 3  # each tried 1 + 2 times
        # Last: a 429 closes the client's gate for every handler for the next 30 s.
        server.add_fault(Fault.status(429, retry_after=30))
        status, body, retry_after = await patch(LEADS[1], {COL_COMPANY: "x"})
        assert (status, retry_after) == (503, "30")
        status, body, retry_after = await patch(LEADS[2], {COL_COMPANY: "x"})
        assert status == 503 and retry_after is not None and 25 <= int(retry_after) <= 31
        assert len(server.requests) == sent + 3 + 3 + 1  # the gate held the last one back


@pytest.mark.slow
async def test_the_example_runs_as_a_script_against_its_own_fake_server() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), "--port", "0", "--load", "300",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "300 concurrent requests" in out.decode()
    assert "300x 200" in out.decode()
    assert "one shared client: 300 calls, 300 HTTP attempts" in out.decode()
    assert err.decode() == ""
