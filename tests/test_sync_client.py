"""SyncInboxClient: blocking calls from plain functions, threads, and programs with a loop."""

from __future__ import annotations

import asyncio
import gc
import inspect
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inbox_async import (
    AuthenticationError,
    BulkProgress,
    ClientClosedError,
    InboxClient,
    InboxError,
    NotFoundError,
    SyncInboxClient,
)
from inbox_async.testing import FakeInboxServer, Fault
from inbox_async.testing.pytest_plugin import no_sleep

from .conftest import COL_COMPANY, LEADS, TOKEN, assert_no_secret, lead_ids

ROOT = Path(__file__).resolve().parent.parent
THREAD = "inbox-async-sync"
# Up here: rich's tracebacks show the source lines around each frame, the test's included.
SECRET = "sk-live-0123456789abcdefghij"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait, from a plain thread, until `predicate()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


@pytest.fixture
def fake() -> Iterator[FakeInboxServer]:
    with FakeInboxServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def list_id(fake: FakeInboxServer) -> str:
    list_id = fake.create_list([COL_COMPANY])
    fake.add_leads(list_id, LEADS)
    return list_id


@pytest.fixture
def client(fake: FakeInboxServer) -> Iterator[SyncInboxClient]:
    with SyncInboxClient(TOKEN, base_url=fake.url, sleep=no_sleep) as client:
        yield client


# -- the surface ---------------------------------------------------------------------------------


def _assert_same_surface(blocking: object, async_: object, where: str) -> None:
    names = {n for n in dir(async_) if not n.startswith("_")}
    assert {n for n in dir(blocking) if not n.startswith("_")} == names, where
    for name in names:
        theirs, ours = getattr(async_, name), getattr(blocking, name)
        if callable(theirs):
            assert inspect.signature(ours) == inspect.signature(theirs), f"{where}.{name}"
        else:  # a view such as with_raw_response
            _assert_same_surface(ours, theirs, f"{where}.{name}")


def test_every_resource_method_has_a_blocking_twin_with_the_same_signature(
    fake: FakeInboxServer,
) -> None:
    # Fails when the async surface grows a method the facade lacks.
    with SyncInboxClient(TOKEN, base_url=fake.url) as sync:
        for name in ("leads", "import_jobs", "prospects"):
            _assert_same_surface(getattr(sync, name), getattr(sync.async_client, name), name)


def test_client_methods_are_those_of_the_async_client(fake: FakeInboxServer) -> None:
    with SyncInboxClient(TOKEN, base_url=fake.url) as sync:
        ours = {n for n in dir(sync) if not n.startswith("_")}
        theirs = {n for n in dir(sync.async_client) if not n.startswith("_")}
    # aclose/request are async-only; close and async_client are the blocking client's own.
    assert ours - {"close", "async_client"} == theirs - {"aclose", "request"}
    if hasattr(InboxClient, "with_options"):
        ours_sig = inspect.signature(SyncInboxClient.with_options).parameters  # type: ignore[attr-defined,unused-ignore]
        theirs_sig = inspect.signature(InboxClient.with_options).parameters  # type: ignore[attr-defined,unused-ignore]
        assert list(ours_sig.values()) == list(theirs_sig.values())


def test_constructor_takes_the_async_clients_options_but_session() -> None:
    sync = inspect.signature(SyncInboxClient.__init__).parameters
    async_ = dict(inspect.signature(InboxClient.__init__).parameters)
    del async_["session"]  # an aiohttp session belongs to the loop it was made on
    assert list(sync.values()) == list(async_.values())


def test_resources_are_those_of_the_async_client() -> None:
    assert set(SyncInboxClient.__annotations__) == set(InboxClient.__annotations__)


# -- calls ---------------------------------------------------------------------------------------


def test_update_blocks_and_returns_the_lead(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    lead = client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert lead.data == {COL_COMPANY: "Acme"}
    assert fake.lead_data(list_id, LEADS[0]) == {COL_COMPANY: "Acme"}
    assert client.stats.calls == 1
    assert client.rate_limit.in_flight == 0


def test_every_resource_works(fake: FakeInboxServer, list_id: str, client: SyncInboxClient) -> None:
    assert client.leads.add(list_id, ["1", "2"]).added == ["1", "2"]
    assert client.leads.remove(list_id, ["1"]).removed == 1
    job = client.import_jobs.create_csv(
        list_id, "id,company\n1,Acme\n", file_name="a.csv", column_mapping={"company": COL_COMPANY}
    )
    assert job.id is not None
    assert [j.id for j in client.import_jobs.list(list_id)] == [job.id]
    assert client.import_jobs.list_page(list_id).data[0].id == job.id
    fake.set_import_job_status(list_id, job.id, "running")
    assert client.import_jobs.cancel(list_id, job.id).id == job.id
    prospect = client.prospects.lookup(LEADS[0])
    assert prospect is not None and prospect.id is not None
    assert client.prospects.get(prospect.id).id == prospect.id
    assert client.prospects.update_context(prospect.id, notes="hi").context.notes == "hi"


def test_retries_use_the_injected_sleep(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    fake.add_fault(Fault.status(503), times=2, method="PATCH")
    client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"})
    assert client.stats.attempts == 3


def test_errors_are_the_sdks_own(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    with pytest.raises(NotFoundError):
        client.leads.update(list_id, "999", {COL_COMPANY: "Acme"})
    with pytest.raises(ValueError, match="list_id"):
        client.leads.update("BAD/ID", LEADS[0], {COL_COMPANY: "Acme"})
    with pytest.raises(TypeError, match="limit"):
        client.import_jobs.list(list_id, limit="3")  # type: ignore[arg-type]
    assert [r.method for r in fake.requests] == ["PATCH"]  # bad input sent nothing


def _raised(call: Callable[[], object]) -> Exception:
    # Caught here, not in the test, so the traceback stops at this frame: the test's own
    # locals hold the secret, of course.
    try:
        call()
    except (InboxError, ValueError) as exc:
        return exc
    raise AssertionError("the call did not fail")


@pytest.mark.slow
@pytest.mark.matrix
def test_errors_carry_no_secret(fake: FakeInboxServer, list_id: str) -> None:
    # Globals, not locals: the lambdas' frames are rendered with their locals.
    with SyncInboxClient(SECRET, base_url=fake.url) as client:
        error = _raised(lambda: client.leads.update(list_id, LEADS[0], {COL_COMPANY: "Acme"}))
    assert isinstance(error, AuthenticationError)
    assert_no_secret(error, SECRET)
    bad = _raised(lambda: SyncInboxClient(SECRET + "\r\n", base_url=fake.url))
    assert type(bad) is ValueError
    assert_no_secret(bad, SECRET)


def test_a_constructor_error_starts_no_thread(fake: FakeInboxServer) -> None:
    before = len(loop_threads())
    with pytest.raises(ValueError, match="timeout"):
        SyncInboxClient(TOKEN, base_url=fake.url, timeout=-1)
    assert len(loop_threads()) == before


# -- threads and loops ---------------------------------------------------------------------------


@pytest.mark.slow
def test_32_threads_share_one_client_and_one_loop_thread(fake: FakeInboxServer) -> None:
    list_id = fake.create_list([COL_COMPANY])
    ids = lead_ids(640, 1000)
    fake.add_leads(list_id, ids)
    fake.set_latency(0.005)  # long enough for the calls to overlap on the server
    before = len(loop_threads())
    with SyncInboxClient(TOKEN, base_url=fake.url, rate_limits=None) as client:
        assert len(loop_threads()) == before + 1
        with ThreadPoolExecutor(32) as pool:
            leads = list(
                pool.map(lambda pid: client.leads.update(list_id, pid, {COL_COMPANY: pid}), ids)
            )
        assert [lead.data[COL_COMPANY] for lead in leads] == ids
        assert client.stats.calls == len(ids)
        assert len(loop_threads()) == before + 1  # no loop per call or per thread
    assert fake.max_in_flight > 1  # the calls ran at once on the one loop
    assert all(fake.lead_data(list_id, pid) == {COL_COMPANY: pid} for pid in ids)
    assert len(loop_threads()) == before


def test_works_in_a_program_that_runs_a_loop_in_another_thread(
    list_id: str, client: SyncInboxClient
) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        # From this thread, with a loop running elsewhere: fine.
        assert client.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"}).data == {COL_COMPANY: "a"}

        async def blocking_inside_the_loop() -> None:
            client.leads.update(list_id, LEADS[0], {COL_COMPANY: "b"})

        async def through_a_worker_thread() -> str:
            lead = await asyncio.to_thread(
                client.leads.update, list_id, LEADS[0], {COL_COMPANY: "c"}
            )
            return str(lead.data[COL_COMPANY])

        with pytest.raises(RuntimeError, match="running an event loop"):
            asyncio.run_coroutine_threadsafe(blocking_inside_the_loop(), loop).result(10)
        assert asyncio.run_coroutine_threadsafe(through_a_worker_thread(), loop).result(10) == "c"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def test_called_from_a_coroutine_raises_instead_of_deadlocking(
    list_id: str, client: SyncInboxClient
) -> None:
    with pytest.raises(RuntimeError, match="SyncInboxClient was called from a thread that is"):
        client.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"})
    with pytest.raises(RuntimeError, match="running an event loop"):
        client.close()
    assert not client.closed


def test_calling_the_client_from_its_own_callback_raises(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    errors: list[BaseException] = []

    calls: list[int] = []

    def on_progress(progress: BulkProgress) -> None:
        calls.append(client.stats.calls)  # reading state there is fine
        try:
            client.leads.update(list_id, LEADS[0], {COL_COMPANY: "x"})
        except RuntimeError as exc:
            errors.append(exc)

    client.leads.bulk_update(list_id, [(LEADS[1], {COL_COMPANY: "y"})], on_progress=on_progress)
    assert errors and "running an event loop" in str(errors[0])
    assert calls and calls[-1] == 1


# -- close ---------------------------------------------------------------------------------------


def test_close_ends_the_thread_is_idempotent_and_later_calls_raise(
    fake: FakeInboxServer, list_id: str
) -> None:
    before = len(loop_threads())
    client = SyncInboxClient(TOKEN, base_url=fake.url)
    client.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"})
    client.close()
    client.close()
    assert client.closed
    assert len(loop_threads()) == before
    assert "closed" in repr(client)
    with pytest.raises(ClientClosedError):
        client.leads.update(list_id, LEADS[0], {COL_COMPANY: "b"})
    with pytest.raises(ClientClosedError):
        next(iter(client.import_jobs.list(list_id)))
    assert client.stats.calls == 1  # still readable


@pytest.mark.matrix
@pytest.mark.slow
def test_a_client_dropped_unclosed_warns_and_ends_its_thread(
    fake: FakeInboxServer, list_id: str
) -> None:
    before = len(loop_threads())
    client = SyncInboxClient(TOKEN, base_url=fake.url)
    client.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"})
    with pytest.warns(ResourceWarning, match="unclosed SyncInboxClient"):
        del client
        gc.collect()
    wait_until(lambda: len(loop_threads()) == before)


def test_with_closes(fake: FakeInboxServer) -> None:
    with SyncInboxClient(TOKEN, base_url=fake.url) as client:
        assert not client.closed
    assert client.closed


def test_close_while_a_call_runs_in_another_thread(fake: FakeInboxServer, list_id: str) -> None:
    fake.set_latency(60)
    client = SyncInboxClient(TOKEN, base_url=fake.url, max_retries=0)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(client.leads.update, list_id, LEADS[0], {COL_COMPANY: "a"})
        wait_until(lambda: fake.in_flight == 1)
        client.close()
        error = call.exception(10)
    assert isinstance(error, ClientClosedError), repr(error)
    assert "while the call was running" in str(error)
    assert client.closed


# -- bulk ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bulk_update_blocks_and_returns_the_report(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    threads: set[str] = set()

    def on_progress(progress: BulkProgress) -> None:
        threads.add(threading.current_thread().name)

    rows = ((pid, {COL_COMPANY: f"co {pid}"}) for pid in [*LEADS, "missing"])
    report = client.leads.bulk_update(list_id, rows, concurrency=4, on_progress=on_progress)
    assert report.succeeded == len(LEADS)
    assert [f.platform_id for f in report.failed] == ["missing"]
    assert fake.lead_data(list_id, LEADS[-1]) == {COL_COMPANY: f"co {LEADS[-1]}"}
    assert threads == {THREAD}  # documented: callbacks run on the client's loop thread


@pytest.mark.slow
def test_bulk_update_stream_is_a_with_block_and_an_iterator(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    rows = [(pid, {COL_COMPANY: "s"}) for pid in LEADS]
    with client.leads.bulk_update_stream(list_id, rows, concurrency=2) as stream:
        outcomes = list(stream)
    assert sorted(o.platform_id for o in outcomes) == sorted(LEADS)
    assert all(o.ok for o in outcomes)
    assert stream.report.succeeded == len(LEADS)


def test_leaving_a_bulk_stream_early_stops_the_job(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    def rows() -> Iterator[tuple[str, dict[str, object]]]:
        for i in range(10_000):
            yield (LEADS[i % len(LEADS)], {COL_COMPANY: str(i)})

    with client.leads.bulk_update_stream(list_id, rows(), concurrency=2) as stream:
        for _ in stream:
            break
    sent = len(fake.requests)
    assert sent < 100
    # Nothing of the job is left on the loop: only the task that counts.
    assert client._portal.call(lambda: len(asyncio.all_tasks())) == 1
    client.leads.update(list_id, LEADS[0], {COL_COMPANY: "after"})
    assert len(fake.requests) == sent + 1


# -- Ctrl-C --------------------------------------------------------------------------------------


_INTERRUPT = """
import asyncio, signal, threading, time
from inbox_async import SyncInboxClient
from inbox_async.testing import FakeInboxServer

# Python leaves SIGINT ignored when it starts ignored, as it does in a job a non-interactive
# shell puts in the background (CI runners do): Ctrl-C, as a terminal delivers it, is asked for.
signal.signal(signal.SIGINT, signal.default_int_handler)

with FakeInboxServer(latency=20) as server:
    list_id = server.create_list(["custom_a"])
    server.add_leads(list_id, ["1"])
    client = SyncInboxClient("test-token", base_url=server.url)
    main = threading.main_thread().ident

    def interrupt():
        while server.in_flight == 0:
            time.sleep(0.002)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    try:
        client.leads.update(list_id, "1", {"custom_a": "x"})
    except KeyboardInterrupt:
        print("interrupted", round(time.monotonic() - started, 1))
    # The call was cancelled on the loop, not left running there.
    print("tasks", client._portal.call(lambda: len(asyncio.all_tasks())))
    server.set_latency(0)
    print("after", client.leads.update(list_id, "1", {"custom_a": "y"}).data)
    client.close()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="pthread_kill is POSIX")
@pytest.mark.slow
def test_ctrl_c_cancels_the_running_call() -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_INTERRUPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("interrupted"), result.stdout
    # Before the 5 s grace ran out: the cancelled call ended at once (not after the 20 s).
    assert float(lines[0].split()[1]) < 5
    assert lines[1:] == ["tasks 1", "after {'custom_a': 'y'}"]
    assert result.stderr == ""


# -- the threaded fake server --------------------------------------------------------------------


def test_fake_server_in_a_thread_starts_and_stops() -> None:
    server = FakeInboxServer()
    assert server.start_in_thread() is server
    assert server.start_in_thread() is server
    names = [t.name for t in threading.enumerate()]
    assert "inbox-async-fake-server" in names
    with SyncInboxClient("test-token", base_url=server.url) as client:
        assert client.prospects.lookup("1") is None  # unknown, but answered
    server.close_in_thread()
    server.close_in_thread()
    assert "inbox-async-fake-server" not in [t.name for t in threading.enumerate()]


async def test_fake_server_in_a_thread_refuses_a_running_loop() -> None:
    server = FakeInboxServer()
    before = threading.active_count()
    with pytest.raises(RuntimeError, match=r"running an event loop.*Use `async with` there"):
        server.start_in_thread()
    assert threading.active_count() == before


# -- with_options and raw responses (the async client's) ---------------------------------------


def test_with_options_shares_the_loop_thread_and_closes_alone(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    threads = len(loop_threads())
    patient = client.with_options(timeout=120, max_retries=0, default_headers={"X-Job": "1"})
    assert len(loop_threads()) == threads
    assert patient.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"}).data == {COL_COMPANY: "a"}
    assert fake.requests[-1].headers["X-Job"] == "1"
    assert patient.stats.calls == 1 and client.stats.calls == 0
    patient.close()
    patient.close()
    assert patient.closed and not client.closed
    with pytest.raises(ClientClosedError):
        patient.leads.update(list_id, LEADS[0], {COL_COMPANY: "b"})
    client.leads.update(list_id, LEADS[0], {COL_COMPANY: "c"})
    again = client.with_options(max_retries=1)
    client.close()
    assert again.closed
    with pytest.raises(ClientClosedError):
        again.leads.update(list_id, LEADS[0], {COL_COMPANY: "d"})


@pytest.mark.slow
@pytest.mark.matrix
def test_with_options_errors_carry_no_secret(client: SyncInboxClient) -> None:
    error = _raised(lambda: client.with_options(default_headers={"X-Key": SECRET + "\n"}))
    assert type(error) is ValueError
    assert_no_secret(error, SECRET)


def test_raw_responses_block_too(
    fake: FakeInboxServer, list_id: str, client: SyncInboxClient
) -> None:
    fake.add_fault(Fault.status(503), method="PATCH")
    raw = client.leads.with_raw_response.update(list_id, LEADS[0], {COL_COMPANY: "raw"})
    assert raw.status_code == 200
    assert raw.retries_taken == 1
    assert raw.request_id is not None
    assert raw.parse().data == {COL_COMPANY: "raw"}
    page = client.import_jobs.with_raw_response.list_page(list_id)
    assert page.parse().data == []
    assert client.prospects.with_raw_response.lookup("1").parse() is None
    with pytest.raises(AttributeError, match="one request per lead"):
        client.leads.with_raw_response.bulk_update  # type: ignore[attr-defined]  # noqa: B018
