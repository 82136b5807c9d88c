"""The update loops being compared: the SDK, hand-rolled aiohttp (with and without tenacity), httpx.

Every variant does the same work per call `i`: PATCH /lists/{listId}/leads/{platformId} with
`{"data": {column: "v<i>"}}` encoded by msgspec, a bearer token and a JSON content type, read
the whole body, check the status, and (except the bare `aiohttp` variant) decode the body into
the SDK's own `Lead` Struct with a decoder built once. The hand-rolled variants are written the
way users write them: a URL string, headers as a dict, one session for the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
from _harness import DISTURBED, Server, rotations, sched_wait, wait_until_quiet

from inbox_async import InboxClient
from inbox_async.models import Lead

Call = Callable[[int], Awaitable[object]]
Factory = Callable[[Server], contextlib.AbstractAsyncContextManager[Call]]

# The default windows' shapes (per minute, hour, day) with limits that never bind here: the
# limiter does all its per-request work (three windows, server-header sync) without waiting.
# The server is started with the minute window too (SERVER_RATE_LIMITS), so every response
# carries X-RateLimit-* headers as the real API's do and the client reads them.
SDK_WINDOWS = ((3_000_000, 60.0), (100_000_000, 3_600.0), (1_000_000_000, 86_400.0))
SERVER_RATE_LIMITS = ((3_000_000, 60.0),)

TIMEOUT = 30.0
_encoder = msgspec.json.Encoder()
_lead_decoder = msgspec.json.Decoder(Lead)


class StatusError(Exception):
    """A hand-rolled client's error for a non-2xx answer."""


@dataclass(frozen=True)
class Run:
    """One timed run of n calls."""

    wall: float
    """Seconds of wall time."""
    cpu: float
    """Seconds of this process's CPU time (user + system)."""
    disturbed: float
    """Largest share of the wall time that the client or the server waited for its core."""


async def drive(
    call: Call, n: int, concurrency: int, offset: int = 0, server_pid: int | None = None
) -> Run:
    """Make calls offset..offset+n-1 from `concurrency` tasks, timing them."""
    numbers = iter(range(offset, offset + n))

    async def worker() -> None:
        # The tasks share one iterator: each takes the next number when it is free.
        for i in numbers:
            await call(i)

    waits = (sched_wait(), sched_wait(server_pid) if server_pid else 0.0)
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    client_wait = sched_wait() - waits[0]
    server_wait = (sched_wait(server_pid) - waits[1]) if server_pid else 0.0
    return Run(wall, cpu, max(client_wait, server_wait) / wall)


def _body(server: Server, i: int) -> bytes:
    return _encoder.encode({"data": {server.column_ids[0]: f"v{i}"}})


def sdk_with(client_class: type[InboxClient], **options: Any) -> Factory:
    """The SDK variant for a given InboxClient class (another checkout's, for A/B runs)."""

    @contextlib.asynccontextmanager
    async def factory(server: Server) -> AsyncIterator[Call]:
        settings: dict[str, Any] = {
            "rate_limits": SDK_WINDOWS,
            "max_retries": 4,
            "timeout": TIMEOUT,
            **options,
        }
        async with client_class(server.token, base_url=server.url, **settings) as client:
            update = client.leads.update
            list_id = server.list_id
            column = server.column_ids[0]

            # A plain function handing back update's coroutine, as a caller awaiting
            # `client.leads.update(...)` in its own loop has it: an `async def` wrapper here would
            # add a coroutine layer that the hand-rolled variants (whose `once` does the work)
            # do not have.
            def call(i: int) -> Awaitable[object]:
                return update(list_id, server.platform_id(i), {column: f"v{i}"})

            yield call

    return factory


sdk = sdk_with(InboxClient)
"""`client.leads.update` with retries (max_retries=4), the limiter and decoding all on."""


def _aiohttp_once(
    server: Server, session: aiohttp.ClientSession, *, decode: bool
) -> Callable[[int], Awaitable[Any]]:
    base = f"{server.url}/lists/{server.list_id}/leads/"
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}

    async def once(i: int) -> Any:
        async with session.patch(
            base + server.platform_id(i), data=_body(server, i), headers=headers
        ) as resp:
            payload = await resp.read()
            if resp.status >= 300:
                raise StatusError(resp.status)
        return _lead_decoder.decode(payload) if decode else payload

    return once


def _aiohttp_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Accept": "application/json"},
        timeout=aiohttp.ClientTimeout(total=TIMEOUT),
    )


@contextlib.asynccontextmanager
async def aiohttp_bare(server: Server) -> AsyncIterator[Call]:
    """`ClientSession.patch` and `read()`; the body is not decoded."""
    async with _aiohttp_session() as session:
        yield _aiohttp_once(server, session, decode=False)


@contextlib.asynccontextmanager
async def aiohttp_msgspec(server: Server) -> AsyncIterator[Call]:
    """`ClientSession.patch` + `msgspec.json.Decoder(Lead).decode`: the baseline of the bar."""
    async with _aiohttp_session() as session:
        yield _aiohttp_once(server, session, decode=True)


@contextlib.asynccontextmanager
async def aiohttp_tenacity(server: Server) -> AsyncIterator[Call]:
    """The baseline wrapped in a fresh tenacity `AsyncRetrying` per call (the usual recipe)."""
    import tenacity

    retryable = (aiohttp.ClientError, asyncio.TimeoutError, StatusError)
    async with _aiohttp_session() as session:
        once = _aiohttp_once(server, session, decode=True)

        async def call(i: int) -> object:
            async for attempt in tenacity.AsyncRetrying(
                stop=tenacity.stop_after_attempt(5),
                wait=tenacity.wait_exponential_jitter(max=60.0, jitter=1.0),
                retry=tenacity.retry_if_exception_type(retryable),
                reraise=True,
            ):
                with attempt:
                    return await once(i)
            raise AssertionError("unreachable: tenacity reraises")

        yield call


@contextlib.asynccontextmanager
async def httpx_msgspec(server: Server) -> AsyncIterator[Call]:
    """`httpx.AsyncClient.patch` + the same msgspec decode, 100 connections like the others."""
    import httpx

    base = f"{server.url}/lists/{server.list_id}/leads/"
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(
        headers={"Accept": "application/json"},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        timeout=TIMEOUT,
    ) as client:

        async def call(i: int) -> object:
            resp = await client.patch(
                base + server.platform_id(i), content=_body(server, i), headers=headers
            )
            if resp.status_code >= 300:
                raise StatusError(resp.status_code)
            return _lead_decoder.decode(resp.content)

        yield call


@dataclass
class Comparison:
    """Per variant, the seconds per request of each repetition, and how the runs went."""

    cpu: dict[str, list[float]] = field(default_factory=dict)
    wall: dict[str, list[float]] = field(default_factory=dict)
    redone: int = 0
    """Repetitions run again because another process took CPU from the client or server."""
    waited: float = 0.0
    """Seconds spent waiting for the machine to become idle again."""


async def interleave(
    server: Server,
    variants: dict[str, Factory],
    *,
    concurrency: int,
    n: int,
    reps: int,
    warmup: int,
    patience: float = 30.0,
) -> Comparison:
    """Run every variant `reps` times, interleaved (A B C, B C A, ...) on one event loop.

    Each variant keeps its own session for the whole comparison and is warmed up first
    (connections opened, decoders and caches filled). A repetition in which the client or the
    server waited for its core more than DISTURBED of the time (another process ran there) is
    dropped, and run again once the machine is idle; after `patience` seconds of waiting in
    all, or `reps` repetitions dropped, disturbed repetitions are kept.
    """
    result = Comparison({name: [] for name in variants}, {name: [] for name in variants})
    async with contextlib.AsyncExitStack() as stack:
        calls = {name: await stack.enter_async_context(f(server)) for name, f in variants.items()}
        offset = 0
        for call in calls.values():
            await drive(call, warmup, concurrency, offset)
            offset += warmup
        done = 0
        for _, order in rotations(list(calls), 2 * reps):
            runs: dict[str, Run] = {}
            for name in order:
                runs[name] = await drive(calls[name], n, concurrency, offset, server.pid)
                offset += n
            disturbed = max(r.disturbed for r in runs.values()) > DISTURBED
            if disturbed and result.redone < reps and result.waited < patience:
                result.redone += 1
                result.waited += await wait_until_quiet(patience - result.waited)
                continue
            for name, r in runs.items():
                result.cpu[name].append(r.cpu / n)
                result.wall[name].append(r.wall / n)
            done += 1
            if done == reps:
                break
    return result
