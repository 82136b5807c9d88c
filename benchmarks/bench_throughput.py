"""Q3. Bulk throughput with 20 ms of latency: requests per second vs concurrency / latency.

Measures the requests per second that `client.leads.bulk_update` achieves against the fake
server (a separate process on its own core) that adds 20 ms to every request and has no rate
limit, at concurrency 1 to 256, next to the ideal `concurrency / 0.020 s`, with the client's
CPU use (its process CPU clock ÷ wall time) and the server's. The client runs without local
rate limits and with `max_connections=max(100, concurrency)`, so that neither caps the
throughput; a last run at 256 with the default pool (100 connections) shows what that cap costs.
A hand-rolled aiohttp + msgspec worker pool doing the same updates runs interleaved with it.

Reported: achieved ÷ ideal per concurrency (median and min-max over the repetitions), and
where the throughput stops following the ideal and which side's CPU is then saturated.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from _clients import TIMEOUT, _aiohttp_once, drive
from _harness import (
    Options,
    Row,
    Server,
    Spread,
    fake_server,
    parse,
    pin_client,
    process_cpu_seconds,
    report,
    rotations,
    run_on,
    table,
)

from inbox_async import InboxClient

LATENCY = 0.020
CONCURRENCY = (1, 2, 4, 8, 16, 32, 64, 128, 256)
QUICK_CONCURRENCY = (1, 16, 64, 256)
SDK = "inbox_async bulk_update"
RAW = "aiohttp+msgspec pool"
DEFAULT_POOL = "inbox_async, default 100 connections"

Runner = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class Sample:
    """One run: requests per second, and each side's CPU as a share of one core."""

    rate: float
    client_cpu: float
    server_cpu: float
    cpu_per_request: float


@contextlib.asynccontextmanager
async def sdk_bulk(server: Server, concurrency: int, max_connections: int) -> AsyncIterator[Runner]:
    """bulk_update over a generator of n updates."""
    async with InboxClient(
        server.token,
        base_url=server.url,
        rate_limits=None,
        max_connections=max_connections,
        timeout=TIMEOUT,
    ) as client:
        column = server.column_ids[0]

        async def run(n: int, offset: int) -> None:
            updates = (
                (server.platform_id(i), {column: f"v{i}"}) for i in range(offset, offset + n)
            )
            result = await client.leads.bulk_update(
                server.list_id, updates, concurrency=concurrency
            )
            if result.succeeded != n:
                raise RuntimeError(f"bulk_update applied {result.succeeded} of {n}")

        yield run


@contextlib.asynccontextmanager
async def raw_pool(server: Server, concurrency: int) -> AsyncIterator[Runner]:
    """`concurrency` tasks sharing one aiohttp session and one input iterator."""
    connector = aiohttp.TCPConnector(limit=max(100, concurrency))
    async with aiohttp.ClientSession(
        connector=connector,
        headers={"Accept": "application/json"},
        timeout=aiohttp.ClientTimeout(total=TIMEOUT),
    ) as session:
        once = _aiohttp_once(server, session, decode=True)

        async def run(n: int, offset: int) -> None:
            await drive(once, n, concurrency, offset)

        yield run


async def measure(
    server: Server, concurrency: int, seconds: float, reps: int, with_default_pool: bool
) -> dict[str, list[Sample]]:
    """Interleave the variants at one concurrency; every run lasts about `seconds`."""
    n = max(50, int(concurrency / LATENCY * seconds))
    factories: dict[str, contextlib.AbstractAsyncContextManager[Runner]] = {
        SDK: sdk_bulk(server, concurrency, max(100, concurrency)),
        RAW: raw_pool(server, concurrency),
    }
    if with_default_pool:
        factories[DEFAULT_POOL] = sdk_bulk(server, concurrency, 100)
    samples: dict[str, list[Sample]] = {name: [] for name in factories}
    async with contextlib.AsyncExitStack() as stack:
        runners = {name: await stack.enter_async_context(f) for name, f in factories.items()}
        offset = 0
        for runner in runners.values():
            await runner(2 * concurrency, offset)  # opens the connections
            offset += 2 * concurrency
        for _, order in rotations(list(runners), reps):
            for name in order:
                server_before = process_cpu_seconds(server.pid) or 0.0
                wall, cpu = time.perf_counter(), time.process_time()
                await runners[name](n, offset)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                server_cpu = (process_cpu_seconds(server.pid) or 0.0) - server_before
                offset += n
                samples[name].append(Sample(n / wall, cpu / wall, server_cpu / wall, cpu / n))
    return samples


def main(options: Options) -> None:
    """Sweep the concurrency and report achieved vs ideal."""
    client_pinning = pin_client()
    reps = options.reps or (2 if options.quick else 3)
    seconds = 0.5 if options.quick else 2.0
    levels = QUICK_CONCURRENCY if options.quick else CONCURRENCY
    rows: list[Row] = []
    details: list[Row] = []
    knee: tuple[int, Sample] | None = None
    best: tuple[int, Sample] | None = None
    single: float | None = None  # requests per second at concurrency 1: one round trip each
    with fake_server(latency=LATENCY) as server:
        for concurrency in levels:
            ideal = concurrency / LATENCY
            samples = run_on(
                "asyncio",
                measure(server, concurrency, seconds, reps, concurrency == max(levels)),
            )
            for name, runs in samples.items():
                rate = Spread.of([s.rate for s in runs])
                details.append(Row.of("Q3", f"c={concurrency} {name}: requests/s", rate, "req/s"))
                details.append(
                    Row.of(
                        "Q3",
                        f"c={concurrency} {name}: client CPU, server CPU",
                        Spread.of([100 * s.client_cpu for s in runs]),
                        "%",
                        f"server {100 * Spread.of([s.server_cpu for s in runs]).median:.0f}%",
                    )
                )
                ratio = Spread.of([s.rate / ideal for s in runs])
                if name == RAW:
                    continue
                label = f"c={concurrency}: {'' if name == SDK else name + ', '}achieved ÷ ideal"
                rows.append(Row.of("Q3", f"{label} ({ideal:,.0f}/s)", ratio, "x", "context"))
            sdk_runs = samples[SDK]
            median_run = sorted(sdk_runs, key=lambda s: s.rate)[len(sdk_runs) // 2]
            if single is None:
                single = median_run.rate / concurrency
            if best is None or median_run.rate > best[1].rate:
                best = (concurrency, median_run)
            # The round trip is a little over the 20 ms (timer rounding, both sides' work), so
            # "stops following" is judged against concurrency x the rate at concurrency 1.
            if knee is None and median_run.rate < 0.9 * concurrency * single:
                knee = (concurrency, median_run)
    notes = []
    if single is not None:
        notes.append(
            f"one request at a time: {single:.1f} req/s, a round trip of {1000 / single:.1f} ms "
            f"for the {1000 * LATENCY:.0f} ms of injected latency"
        )
    if knee is not None:
        c, s = knee
        side = (
            "the client's CPU"
            if s.client_cpu >= 0.9
            else "the server's CPU"
            if s.server_cpu >= 0.9
            else "neither CPU (see the details)"
        )
        notes.append(
            f"below 90% of concurrency x the rate at c=1 from c={c}: {s.rate:,.0f} req/s, "
            f"client CPU {100 * s.client_cpu:.0f}%, server CPU {100 * s.server_cpu:.0f}%: "
            f"saturated: {side}"
        )
    if best is not None:
        c, s = best
        notes.append(
            f"highest throughput {s.rate:,.0f} req/s at c={c}, client CPU "
            f"{100 * s.client_cpu:.0f}% ({1e6 * s.cpu_per_request:.0f} µs per request: the client "
            f"alone would saturate near {1 / s.cpu_per_request:,.0f} req/s)"
        )
        rows.append(
            Row(
                "Q3",
                f"saturation: best req/s (at c={c}; client CPU {100 * s.client_cpu:.0f}%, "
                f"server CPU {100 * s.server_cpu:.0f}%)",
                s.rate,
                s.rate,
                s.rate,
                "req/s",
                "report",
            )
        )
    report(
        "Q3 bulk throughput with 20 ms latency",
        rows,
        options,
        details=[f"{reps} interleaved repetitions of about {seconds:g} s", "", table(details)],
        notes=notes,
        client_pinning=client_pinning,
        server_pinning=server.pinning,
    )


if __name__ == "__main__":
    main(parse(__doc__))
