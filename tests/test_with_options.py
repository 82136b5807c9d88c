"""Derived clients (`client.with_options(...)`) and per-call options on every resource method."""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from inbox_async import (
    APITimeoutError,
    ClientClosedError,
    InboxClient,
    InboxError,
    InternalServerError,
    RateLimitError,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import COL_COMPANY, LEADS, TOKEN, PassThroughLimiter, RecordingSleep

CSV = "platformId,Company\n1001,Acme\n"


class PriorityLimiter(PassThroughLimiter):
    """Never waits; records the priority each slot was asked with."""

    def __init__(self) -> None:
        super().__init__()
        self.priorities: list[str] = []

    async def acquire(
        self, *, max_wait: float, timeout: float | None = None, priority: str = "interactive"
    ) -> object:
        self.priorities.append(priority)
        return None


@pytest.fixture
async def paced(server: FakeInboxServer) -> AsyncIterator[InboxClient]:
    """A client whose local window allows two requests a minute."""
    async with InboxClient(TOKEN, base_url=server.url, rate_limits=[(2, 60.0)]) as c:
        yield c


# -- with_options ---------------------------------------------------------------------------


async def test_a_derived_client_shares_the_connection_pool(
    server: FakeInboxServer, list_id: str
) -> None:
    server.set_latency(0.05)
    async with InboxClient(
        TOKEN, base_url=server.url, rate_limits=None, max_connections=1
    ) as client:
        derived = client.with_options(timeout=10)
        await asyncio.gather(
            *(client.prospects.lookup(LEADS[i]) for i in range(3)),
            *(derived.prospects.lookup(LEADS[i]) for i in range(3)),
        )
    # One pool of one connection for both: never two requests at once.
    assert server.max_in_flight == 1
    assert len(server.requests) == 6


async def test_a_derived_client_shares_the_limiter_with_its_own_wait(
    server: FakeInboxServer, list_id: str, paced: InboxClient
) -> None:
    derived = paced.with_options(max_rate_limit_wait=0.05)
    assert derived.limiter is paced.limiter
    await paced.prospects.lookup(LEADS[0])
    await paced.prospects.lookup(LEADS[1])
    # The window is spent by the original: the derived one would wait a minute, and may
    # wait 0.05 s.
    with pytest.raises(RateLimitError):
        await derived.prospects.lookup(LEADS[2])
    assert len(server.requests) == 2


async def test_a_derived_client_has_its_own_retries_and_timeout(
    server: FakeInboxServer, list_id: str, client: InboxClient, sleep: RecordingSleep
) -> None:
    once = client.with_options(max_retries=0)
    server.add_fault(Fault.status(503), method="PATCH", times=1)
    with pytest.raises(InternalServerError):
        await once.leads.update(list_id, LEADS[0], {COL_COMPANY: "a"})
    server.add_fault(Fault.status(503), method="PATCH", times=1)
    await client.leads.update(list_id, LEADS[0], {COL_COMPANY: "b"})
    assert [r.status for r in server.requests] == [503, 503, 200]

    hasty = client.with_options(timeout=0.2, max_retries=0)
    server.add_fault(Fault.delay(30), method="PATCH", times=1)
    with pytest.raises(APITimeoutError):
        await hasty.leads.update(list_id, LEADS[0], {COL_COMPANY: "c"})
    # A client derived from a derived one starts from its options.
    assert hasty.with_options()._config.timeout == 0.2
    assert client._config.timeout != 0.2


async def test_default_headers_are_merged(server: FakeInboxServer, list_id: str) -> None:
    async with InboxClient(
        TOKEN,
        base_url=server.url,
        rate_limits=None,
        default_headers={"X-Team": "sales", "X-Source": "crm"},
    ) as client:
        derived = client.with_options(default_headers={"x-team": "support", "X-Extra": "1"})
        await derived.prospects.lookup(LEADS[0])
        await client.prospects.lookup(LEADS[0])
    first, second = (dict((k.lower(), v) for k, v in r.headers.items()) for r in server.requests)
    assert first["x-team"] == "support"
    assert first["x-source"] == "crm"
    assert first["x-extra"] == "1"
    assert first["authorization"] == f"Bearer {TOKEN}"
    assert first["user-agent"].startswith("inbox-async/")
    # Sent once, not once per spelling.
    assert [k.lower() for k in server.requests[0].headers].count("x-team") == 1
    assert second["x-team"] == "sales"
    assert "x-extra" not in second


async def test_closing_a_derived_client_leaves_the_pool_open(
    server: FakeInboxServer, list_id: str, client: InboxClient
) -> None:
    async with client.with_options(max_retries=1) as derived:
        await derived.prospects.lookup(LEADS[0])
    assert derived.closed
    assert not client.closed
    with pytest.raises(ClientClosedError):
        await derived.prospects.lookup(LEADS[0])
    # The pool is still there for the original and for other derived clients.
    await client.prospects.lookup(LEADS[0])
    await client.with_options().prospects.lookup(LEADS[0])
    assert len(server.requests) == 3


async def test_closing_the_original_closes_every_derived_client(
    server: FakeInboxServer, list_id: str
) -> None:
    client = InboxClient(TOKEN, base_url=server.url, rate_limits=None)
    used = client.with_options(max_retries=1)
    await used.prospects.lookup(LEADS[0])
    unused = client.with_options(max_retries=2)
    grandchild = used.with_options(timeout=3)
    await client.aclose()
    for derived in (used, unused, grandchild):
        assert derived.closed
        with pytest.raises(ClientClosedError):
            await derived.prospects.lookup(LEADS[0])
    # And one derived after the close is closed from the start.
    late = client.with_options()
    assert late.closed
    with pytest.raises(ClientClosedError):
        await late.prospects.lookup(LEADS[0])
    assert len(server.requests) == 1


async def test_a_derived_client_of_a_borrowed_session_borrows_it_too(
    server: FakeInboxServer, list_id: str
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        client = InboxClient(TOKEN, base_url=server.url, rate_limits=None, session=session)
        derived = client.with_options(default_headers={"X-Team": "a"})
        await derived.prospects.lookup(LEADS[0])
        await derived.aclose()
        await client.aclose()
        assert not session.closed
    assert server.requests[0].headers["X-Team"] == "a"


async def test_an_unclosed_derived_client_does_not_warn(
    server: FakeInboxServer, list_id: str, client: InboxClient
) -> None:
    derived = client.with_options(timeout=5)
    await derived.prospects.lookup(LEADS[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del derived
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_a_derived_client_is_bound_to_the_same_event_loop(
    server: FakeInboxServer, list_id: str, client: InboxClient
) -> None:
    await client.prospects.lookup(LEADS[0])
    derived = client.with_options()

    def on_another_loop() -> None:
        asyncio.run(derived.prospects.lookup(LEADS[0]))

    with pytest.raises(InboxError, match="another event loop"):
        await asyncio.to_thread(on_another_loop)
    assert len(server.requests) == 1


async def test_derived_stats_are_its_own(
    server: FakeInboxServer, list_id: str, client: InboxClient
) -> None:
    derived = client.with_options()
    server.add_fault(Fault.status(503), method="GET", times=1)
    await derived.prospects.lookup(LEADS[0])
    await client.prospects.lookup(LEADS[0])
    assert (derived.stats.calls, derived.stats.attempts, derived.stats.retries) == (1, 2, 1)
    assert (client.stats.calls, client.stats.attempts, client.stats.retries) == (1, 1, 0)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": float("inf")}, ValueError, "timeout"),
        ({"timeout": "5"}, TypeError, "timeout"),
        ({"max_retries": -1}, ValueError, "max_retries"),
        ({"max_retries": 1.5}, TypeError, "max_retries"),
        ({"max_rate_limit_wait": 0}, ValueError, "max_rate_limit_wait"),
        ({"default_headers": {"Authorization": "Bearer other"}}, ValueError, "Authorization"),
        ({"default_headers": {"X-Key": "a\r\nX-Evil: 1"}}, ValueError, "default_headers"),
        ({"default_headers": ["X-Key"]}, TypeError, "default_headers"),
    ],
)
async def test_with_options_checks_its_arguments(
    server: FakeInboxServer,
    client: InboxClient,
    options: dict[str, Any],
    error: type[Exception],
    name: str,
) -> None:
    with pytest.raises(error, match=name) as caught:
        client.with_options(**options)
    assert "X-Evil" not in str(caught.value)  # a header value is never echoed
    assert server.requests == []


# -- per-call options -------------------------------------------------------------------------


def _calls(client: InboxClient, list_id: str) -> dict[str, Callable[..., Awaitable[Any]]]:
    """Every resource method, as a call that takes only the options."""
    leads, jobs, prospects = client.leads, client.import_jobs, client.prospects

    async def listing(**options: Any) -> Any:
        return [job async for job in jobs.list(list_id, **options)]

    return {
        "leads.update": lambda **o: leads.update(list_id, LEADS[0], {COL_COMPANY: "a"}, **o),
        "leads.add": lambda **o: leads.add(list_id, ["5"], **o),
        "leads.add(no ids)": lambda **o: leads.add(list_id, [], **o),
        "leads.remove": lambda **o: leads.remove(list_id, [LEADS[1]], **o),
        "import_jobs.list": listing,
        "import_jobs.list_page": lambda **o: jobs.list_page(list_id, **o),
        "import_jobs.create_csv": lambda **o: jobs.create_csv(list_id, CSV, file_name="a", **o),
        "import_jobs.cancel": lambda **o: jobs.cancel(list_id, "j0", **o),
        "prospects.lookup": lambda **o: prospects.lookup(LEADS[0], **o),
        "prospects.get": lambda **o: prospects.get("p0", **o),
        "prospects.update_context": lambda **o: prospects.update_context("p0", notes="x", **o),
    }


_BAD_OPTIONS: list[tuple[Mapping[str, Any], type[Exception], str]] = [
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": "1"}, TypeError, "timeout"),
    ({"max_retries": -1}, ValueError, "max_retries"),
    ({"max_rate_limit_wait": -5}, ValueError, "max_rate_limit_wait"),
    ({"max_rate_limit_wait": float("nan")}, ValueError, "max_rate_limit_wait"),
    ({"priority": "urgent"}, ValueError, "priority"),
]


_METHODS = [
    "leads.update",
    "leads.add",
    "leads.add(no ids)",
    "leads.remove",
    "import_jobs.list",
    "import_jobs.list_page",
    "import_jobs.create_csv",
    "import_jobs.cancel",
    "prospects.lookup",
    "prospects.get",
    "prospects.update_context",
]


@pytest.mark.parametrize("method", _METHODS)
@pytest.mark.parametrize(("options", "error", "name"), _BAD_OPTIONS)
async def test_every_method_checks_its_options_before_sending(
    server: FakeInboxServer,
    client: InboxClient,
    list_id: str,
    method: str,
    options: Mapping[str, Any],
    error: type[Exception],
    name: str,
) -> None:
    call = _calls(client, list_id)[method]
    if (
        method == "leads.update"
        and name == "priority"
        and "priority" not in inspect.signature(client.leads.update).parameters
    ):
        pytest.skip("leads.update takes priority with issue 14's bulk priority work")
    with pytest.raises(error, match=name):
        await call(**options)
    assert server.requests == []


async def test_import_jobs_list_checks_its_options_when_called(client: InboxClient) -> None:
    with pytest.raises(ValueError, match="max_rate_limit_wait"):
        client.import_jobs.list("abc", max_rate_limit_wait=-1)


@pytest.mark.parametrize(
    "method",
    [
        "leads.add",
        "leads.remove",
        "import_jobs.list",
        "import_jobs.list_page",
        "import_jobs.create_csv",
        "prospects.lookup",
    ],
)
async def test_every_method_takes_a_rate_limit_wait(
    server: FakeInboxServer, list_id: str, paced: InboxClient, method: str
) -> None:
    await paced.prospects.lookup(LEADS[0])
    await paced.prospects.lookup(LEADS[0])
    with pytest.raises(RateLimitError):
        await _calls(paced, list_id)[method](max_rate_limit_wait=0.05)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "method",
    [
        "leads.add",
        "leads.remove",
        "import_jobs.list",
        "import_jobs.list_page",
        "import_jobs.create_csv",
        "prospects.lookup",
    ],
)
async def test_every_method_passes_its_priority_to_the_limiter(
    server: FakeInboxServer, list_id: str, method: str
) -> None:
    limiter = PriorityLimiter()
    async with InboxClient(TOKEN, base_url=server.url, limiter=limiter) as client:
        await _calls(client, list_id)[method](priority="background")
        await _calls(client, list_id)[method]()
    assert limiter.priorities == ["background", "interactive"]


async def test_prospect_methods_pass_their_options(
    server: FakeInboxServer, list_id: str, client: InboxClient, sleep: RecordingSleep
) -> None:
    found = await client.prospects.lookup(LEADS[0])
    assert found is not None and found.id is not None
    server.add_fault(Fault.status(503), times=1)
    with pytest.raises(InternalServerError):
        await client.prospects.get(found.id, max_retries=0)
    server.add_fault(Fault.status(503), times=1)
    with pytest.raises(InternalServerError):
        await client.prospects.update_context(found.id, notes="n", max_retries=0)
    server.add_fault(Fault.delay(30), times=1)
    with pytest.raises(APITimeoutError):
        await client.prospects.get(found.id, timeout=0.2, max_retries=0)
    assert sleep.delays == []


async def test_import_job_methods_pass_their_options(
    server: FakeInboxServer, list_id: str, client: InboxClient, sleep: RecordingSleep
) -> None:
    job = await client.import_jobs.create_csv(list_id, CSV, file_name="a.csv")
    assert job.id is not None
    server.set_import_job_status(list_id, job.id, "running")
    server.add_fault(Fault.status(503), times=1)
    with pytest.raises(InternalServerError):
        await client.import_jobs.cancel(list_id, job.id, max_retries=0)
    server.add_fault(Fault.status(503), times=1)
    with pytest.raises(InternalServerError):
        await client.import_jobs.list_page(list_id, max_retries=0)
    server.add_fault(Fault.status(503), times=2)
    page = [j async for j in client.import_jobs.list(list_id, max_retries=2)]
    assert [j.id for j in page] == [job.id]
    assert len(sleep.delays) == 2


# -- bulk: timeout and max_retries for each item ----------------------------------------------


async def test_bulk_update_passes_max_retries_to_each_item(
    server: FakeInboxServer, list_id: str, client: InboxClient, sleep: RecordingSleep
) -> None:
    server.add_fault(Fault.status(503), method="PATCH", times=1)
    report = await client.leads.bulk_update(
        list_id, [(LEADS[0], {COL_COMPANY: "a"})], concurrency=1, max_retries=0
    )
    assert report.succeeded == 0
    assert isinstance(report.failed[0].error, InternalServerError)
    assert len(server.requests) == 1
    assert sleep.delays == []


async def test_bulk_update_stream_passes_timeout_to_each_item(
    server: FakeInboxServer, list_id: str, client: InboxClient
) -> None:
    server.add_fault(Fault.delay(30), method="PATCH", times=1)
    async with client.leads.bulk_update_stream(
        list_id, [(LEADS[0], {COL_COMPANY: "a"})], concurrency=1, timeout=0.2, max_retries=0
    ) as stream:
        outcomes = [outcome async for outcome in stream]
    assert [o.ok for o in outcomes] == [False]
    assert isinstance(outcomes[0].error, APITimeoutError)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"timeout": -1}, ValueError, "timeout"),
        ({"max_retries": -1}, ValueError, "max_retries"),
        ({"max_retries": "2"}, TypeError, "max_retries"),
    ],
)
async def test_bulk_options_are_checked_before_sending(
    server: FakeInboxServer,
    list_id: str,
    client: InboxClient,
    options: dict[str, Any],
    error: type[Exception],
    name: str,
) -> None:
    updates = [(LEADS[0], {COL_COMPANY: "a"})]
    with pytest.raises(error, match=name):
        await client.leads.bulk_update(list_id, updates, **options)
    with pytest.raises(error, match=name):
        client.leads.bulk_update_stream(list_id, updates, **options)
    assert server.requests == []
