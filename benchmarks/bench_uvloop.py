"""Q7. uvloop: the Q1 update loop with uvloop as the event loop instead of asyncio's own.

Measures the client's CPU time per request (the process CPU clock) of `client.leads.update`
(retries, limiter and decoding on) and of the raw aiohttp + msgspec baseline, each on the
default asyncio loop and on uvloop, at concurrency 1, 32 and 128. Every run gets a new event
loop and a new client or session (an aiohttp session belongs to one loop), warmed up before it
is timed; the four combinations run interleaved (A B C D, B C D A, ...).

Reported: the SDK on uvloop ÷ the SDK on asyncio (the CPU that uvloop saves), and the SDK ÷
the baseline on uvloop (the Q1 bar, 1.10x, on the faster loop), per repetition, median and
min-max.
"""

from __future__ import annotations

from _clients import (
    SERVER_RATE_LIMITS,
    Factory,
    Run,
    aiohttp_msgspec,
    drive,
    sdk,
)
from _harness import (
    DISTURBED,
    Options,
    Row,
    Server,
    Spread,
    at_most,
    fake_server,
    has,
    parse,
    pin_client,
    ratios,
    report,
    rotations,
    run_on,
    table,
)

CONCURRENCY = (1, 32, 128)
VARIANTS: dict[str, tuple[str, Factory]] = {
    "inbox_async@asyncio": ("asyncio", sdk),
    "inbox_async@uvloop": ("uvloop", sdk),
    "aiohttp+msgspec@asyncio": ("asyncio", aiohttp_msgspec),
    "aiohttp+msgspec@uvloop": ("uvloop", aiohttp_msgspec),
}


def one_run(loop: str, factory: Factory, server: Server, n: int, concurrency: int) -> Run:
    """A new loop, a new client, a warm-up, then n timed calls."""

    async def go() -> Run:
        async with factory(server) as call:
            await drive(call, max(200, 4 * concurrency), concurrency)
            return await drive(call, n, concurrency, 10**6, server.pid)

    return run_on(loop, go())


def main(options: Options) -> None:
    """Interleave loops and variants at each concurrency and report the ratios."""
    client_pinning = pin_client()
    if not has("uvloop"):
        print("uvloop is not installed: Q7 skipped (pip install uvloop)")
        return
    reps = options.reps or (3 if options.quick else 7)
    rows: list[Row] = []
    details: list[Row] = []
    redone = 0
    with fake_server(rate_limits=SERVER_RATE_LIMITS) as server:
        for concurrency in CONCURRENCY:
            n = (1000 if options.quick else 4000) // (2 if concurrency == 1 else 1)
            cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
            kept = 0
            for _, order in rotations(list(VARIANTS), 2 * reps):
                runs = {name: one_run(*VARIANTS[name], server, n, concurrency) for name in order}
                if max(r.disturbed for r in runs.values()) > DISTURBED and redone < reps:
                    redone += 1
                    continue
                for name, r in runs.items():
                    cpu[name].append(r.cpu / n)
                kept += 1
                if kept == reps:
                    break
            for name in VARIANTS:
                us = Spread.of([c * 1e6 for c in cpu[name]])
                details.append(Row.of("Q7", f"c={concurrency} {name}: CPU/request", us, "µs"))
            rows.append(
                Row.of(
                    "Q7",
                    f"c={concurrency}: inbox_async on uvloop ÷ on asyncio",
                    ratios(cpu["inbox_async@uvloop"], cpu["inbox_async@asyncio"]),
                    "x",
                    "context",
                )
            )
            rows.append(
                Row.of(
                    "Q7",
                    f"c={concurrency}: aiohttp+msgspec on uvloop ÷ on asyncio",
                    ratios(cpu["aiohttp+msgspec@uvloop"], cpu["aiohttp+msgspec@asyncio"]),
                    "x",
                    "context",
                )
            )
            on_uvloop = ratios(cpu["inbox_async@uvloop"], cpu["aiohttp+msgspec@uvloop"])
            rows.append(
                Row.of(
                    "Q7",
                    f"c={concurrency} (uvloop): inbox_async CPU/req ÷ aiohttp+msgspec",
                    on_uvloop,
                    "x",
                    "≤ 1.10x (goal 1.05x)",
                    at_most(on_uvloop.median, 1.10, 1.05),
                )
            )
    report(
        "Q7 uvloop",
        rows,
        options,
        details=[
            f"{reps} interleaved repetitions, a new loop and client per run; {redone} redone "
            "because another process took CPU from a pinned core",
            "",
            table(details),
        ],
        client_pinning=client_pinning,
        server_pinning=server.pinning,
    )


if __name__ == "__main__":
    main(parse(__doc__))
