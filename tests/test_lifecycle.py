"""Lifecycle: a forgotten client says where it was made and never breaks interpreter exit; a
closed client leaves nothing behind; a client used from a second event loop fails clearly.

Already proven elsewhere, not repeated here (tests/test_client.py): the owned session is created
lazily and closed on exit, a borrowed session is never closed, a closed client refuses calls.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from inbox_async import (
    APIConnectionError,
    ClientClosedError,
    InboxClient,
    InboxError,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, LEADS, TOKEN, UPDATE, RecordingSleep, eventually, seed_list

ROOT = Path(__file__).resolve().parent.parent

# Each scenario forgets a client in its own way; "# CREATED" marks the line that made it.
SCRIPT = """
import asyncio, gc, sys
from inbox_async import InboxClient
from inbox_async.testing import FakeInboxServer, Fault

SCENARIO = sys.argv[1]
KEPT = []


class Holder:
    def __init__(self, client):
        self.client = client
        self.me = self  # a reference cycle: only the cyclic collector frees it


async def use(server, list_id):
    client = InboxClient("test-token", base_url=server.url)  # CREATED
    await client.leads.update(list_id, "1", {"custom_a": "x"})
    if SCENARIO == "kept until exit":
        KEPT.append(client)
    elif SCENARIO == "in a reference cycle":
        Holder(client)
    elif SCENARIO == "with a call in flight":
        KEPT.append(client)
        server.add_fault(Fault.delay(30))
        KEPT.append(asyncio.ensure_future(client.leads.update(list_id, "1", {"custom_a": "y"})))
        await asyncio.sleep(0.2)
    elif SCENARIO == "closed":
        await client.aclose()


async def main():
    async with FakeInboxServer(token="test-token") as server:
        list_id = server.create_list(columns=["custom_a"])
        server.add_leads(list_id, ["1"])
        await use(server, list_id)


asyncio.run(main())
gc.collect()  # the cycle is freed here, after its loop has closed
print("main done")
"""


async def _run_script(tmp_path: Path, scenario: str) -> tuple[int, str, str, str]:
    script = tmp_path / "forgetful.py"
    script.write_text(textwrap.dedent(SCRIPT))
    line = next(i for i, text in enumerate(SCRIPT.splitlines(), 1) if "# CREATED" in text)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "dev", "-W", "always", str(script), scenario,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode(), f"{script}:{line}"


@pytest.mark.matrix
@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario",
    [
        "dropped while its loop runs",
        "kept until exit",
        "in a reference cycle",
        "with a call in flight",
    ],
)
async def test_a_forgotten_client_warns_where_it_was_made_and_exits_cleanly(
    tmp_path: Path, scenario: str
) -> None:
    code, out, err, created_at = await _run_script(tmp_path, scenario)
    assert code == 0, err
    assert "main done" in out
    assert f"ResourceWarning: InboxClient created at {created_at} was never closed" in err
    assert err.count("InboxClient created at") == 1
    for bad in ("Event loop is closed", "Traceback", "Exception ignored", "Error"):
        assert bad not in err.replace("ResourceWarning", ""), f"{bad!r} at exit:\n{err}"


@pytest.mark.matrix
@pytest.mark.slow
async def test_a_closed_client_leaves_nothing_behind_at_exit(tmp_path: Path) -> None:
    # -X dev shows every ResourceWarning and asyncio's debug complaints: there must be none.
    code, out, err, _ = await _run_script(tmp_path, "closed")
    assert code == 0, err
    assert "main done" in out
    assert err == ""


async def test_closing_leaves_no_task_and_no_open_connection(
    server: FakeInboxServer, list_id: str
) -> None:
    client = InboxClient(TOKEN, base_url=server.url)
    async with client:
        await asyncio.gather(*(client.leads.update(list_id, pid, UPDATE) for pid in LEADS))
        session = client._transport._session
        assert session is not None
        connector = session.connector
        assert connector is not None
    assert session.closed and connector.closed
    # The fake server's handlers (in this same loop) see their connections close at once.
    await eventually(lambda: asyncio.all_tasks() == {asyncio.current_task()}, timeout=1.0)


async def test_aclose_while_calls_are_in_flight_ends_them_with_the_sdks_errors(
    server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    server.set_latency(0.5)
    client = InboxClient(TOKEN, base_url=server.url, sleep=sleep)
    calls = [asyncio.create_task(client.leads.update(list_id, pid, UPDATE)) for pid in LEADS]
    await eventually(lambda: server.in_flight == len(LEADS))
    started = time.monotonic()
    await client.aclose()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert time.monotonic() - started < 0.2
    assert all(isinstance(r, (ClientClosedError, APIConnectionError)) for r in results), results
    snapshot = client.rate_limit
    assert snapshot.in_flight == 0 and snapshot.waiting == 0


@dataclass
class ThreadServer:
    """A fake server on its own loop in a thread, so that the test can run loops of its own."""

    server: FakeInboxServer
    list_id: str


@pytest.fixture
def thread_server() -> Iterator[ThreadServer]:
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        async with FakeInboxServer(token=TOKEN) as server:
            list_id = seed_list(server, LEADS)
            stop = asyncio.Event()
            box.update(server=server, list_id=list_id, stop=stop, loop=asyncio.get_running_loop())
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    server = box["server"]
    list_id = box["list_id"]
    assert isinstance(server, FakeInboxServer) and isinstance(list_id, str)
    try:
        yield ThreadServer(server, list_id)
    finally:
        loop = box["loop"]
        stop = box["stop"]
        assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def test_a_client_used_from_a_second_event_loop_is_a_clear_error(
    thread_server: ThreadServer,
) -> None:
    server, list_id = thread_server.server, thread_server.list_id
    first = asyncio.new_event_loop()
    client = InboxClient(TOKEN, base_url=server.url)
    try:
        lead = first.run_until_complete(client.leads.update(list_id, LEADS[0], UPDATE))
        assert lead.data == UPDATE
        sent = len(server.requests)
        started = time.monotonic()
        with pytest.raises(InboxError, match="another event loop") as info:
            asyncio.run(client.leads.update(list_id, LEADS[1], {COL_COMPANY: "second loop"}))
        assert time.monotonic() - started < 0.5
        assert type(info.value) is InboxError  # not a connection error, not aiohttp's own
        assert "create one client per loop" in str(info.value)
        assert len(server.requests) == sent
        assert server.lead_data(list_id, LEADS[1]) == {}
    finally:
        first.run_until_complete(client.aclose())
        first.close()


def test_a_second_loop_is_refused_at_once_even_while_the_first_has_callers_at_the_gate(
    thread_server: ThreadServer,
) -> None:
    server, list_id = thread_server.server, thread_server.list_id
    first = asyncio.new_event_loop()
    client = InboxClient(TOKEN, base_url=server.url, max_rate_limit_wait=4)

    async def hit_the_gate() -> None:
        server.add_fault(Fault.status(429, retry_after=2))
        with pytest.raises(InboxError):
            await client.leads.update(list_id, LEADS[0], UPDATE, max_retries=0)
        # A caller waits on the gate when this loop stops: the loop's timer stays behind.
        waiter = asyncio.ensure_future(client.leads.update(list_id, LEADS[1], UPDATE))
        await eventually(lambda: client.rate_limit.waiting == 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    try:
        first.run_until_complete(hit_the_gate())
        started = time.monotonic()
        with pytest.raises(InboxError) as info:
            asyncio.run(client.leads.update(list_id, LEADS[2], UPDATE))
        elapsed = time.monotonic() - started
        # Not "RateLimitError: waiting for a 429 would take 4.0 s" after hanging that long.
        assert "another event loop" in str(info.value)
        assert elapsed < 0.5
    finally:
        first.run_until_complete(client.aclose())
        first.close()
