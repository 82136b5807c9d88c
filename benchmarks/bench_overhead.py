"""Q1. Per-request overhead: `client.leads.update` vs raw aiohttp + msgspec doing the same work.

Measures the client's CPU time per request (the process CPU clock, `time.process_time`, so the
fake server's work, in its own process on its own core, never counts) and wall time per
request, at concurrency 1, 8, 32 and 128, for:

- `aiohttp`: `ClientSession.patch` + `read()`, the body not decoded;
- `aiohttp+msgspec`: the same + `msgspec.json.Decoder(Lead).decode` (the baseline of the bar);
- `aiohttp+msgspec+tenacity`: the baseline inside a fresh tenacity `AsyncRetrying` per call;
- `inbox_async`: `client.leads.update` with retries (max_retries=4), the rate limiter (three
  windows shaped like the defaults, with limits that never bind, reading the X-RateLimit-*
  headers the server sends on every response) and typed decoding all enabled.

The variants run interleaved (A B C D, B C D A, ...) on one event loop against one server
process, each with its own session. Reported: the SDK's CPU per request as a ratio to the
baseline, per repetition (both runs back to back), median and min-max.
Bar: at most 1.10x (goal 1.05x).
"""

from __future__ import annotations

import sys

from _clients import (
    SERVER_RATE_LIMITS,
    Factory,
    aiohttp_bare,
    aiohttp_msgspec,
    aiohttp_tenacity,
    interleave,
    sdk,
)
from _harness import (
    Options,
    Row,
    Spread,
    at_most,
    fake_server,
    parse,
    pin_client,
    ratios,
    report,
    run_on,
    table,
)

CONCURRENCY = (1, 8, 32, 128)
BASELINE = "aiohttp+msgspec"
VARIANTS: dict[str, Factory] = {
    "aiohttp": aiohttp_bare,
    BASELINE: aiohttp_msgspec,
    "aiohttp+msgspec+tenacity": aiohttp_tenacity,
    "inbox_async": sdk,
}
BAR, GOAL = 1.10, 1.05


def requests_per_run(quick: bool, concurrency: int) -> int:
    """Enough requests for about 0.4 s of client CPU (0.1 s when quick) per run."""
    n = 1000 if quick else 4000
    # One at a time, each request also waits for the server: half as many keep runs short.
    return n // 2 if quick and concurrency == 1 else n


def main(options: Options, loop: str = "asyncio") -> None:
    """Run the comparison at every concurrency and report it."""
    client_pinning = pin_client()
    reps = options.reps or (3 if options.quick else 7)
    rows: list[Row] = []
    details: list[Row] = []
    redone: dict[int, int] = {}
    suffix = "" if loop == "asyncio" else f" ({loop})"
    with fake_server(rate_limits=SERVER_RATE_LIMITS) as server:
        for concurrency in CONCURRENCY:
            n = requests_per_run(options.quick, concurrency)
            result = run_on(
                loop,
                interleave(
                    server,
                    VARIANTS,
                    concurrency=concurrency,
                    n=n,
                    reps=reps,
                    warmup=max(200, 4 * concurrency),
                ),
            )
            cpu, wall = result.cpu, result.wall
            redone[concurrency] = result.redone
            for name in VARIANTS:
                us = Spread.of([c * 1e6 for c in cpu[name]])
                details.append(
                    Row.of("Q1", f"c={concurrency} {name}: client CPU/request", us, "µs")
                )
                wall_us = Spread.of([w * 1e6 for w in wall[name]])
                details.append(Row.of("Q1", f"c={concurrency} {name}: wall/request", wall_us, "µs"))
            sdk_ratio = ratios(cpu["inbox_async"], cpu[BASELINE])
            rows.append(
                Row.of(
                    "Q1",
                    f"c={concurrency}{suffix}: inbox_async CPU/req ÷ aiohttp+msgspec",
                    sdk_ratio,
                    "x",
                    f"≤ {BAR:.2f}x (goal {GOAL:.2f}x)",
                    at_most(sdk_ratio.median, BAR, GOAL),
                )
            )
            rows.append(
                Row.of(
                    "Q1",
                    f"c={concurrency}{suffix}: aiohttp+msgspec+tenacity ÷ aiohttp+msgspec",
                    ratios(cpu["aiohttp+msgspec+tenacity"], cpu[BASELINE]),
                    "x",
                    "context",
                )
            )
            rows.append(
                Row.of(
                    "Q1",
                    f"c={concurrency}{suffix}: aiohttp+msgspec ÷ aiohttp (decode's share)",
                    ratios(cpu[BASELINE], cpu["aiohttp"]),
                    "x",
                    "context",
                )
            )
    report(
        f"Q1 per-request overhead{suffix}",
        rows,
        options,
        details=[
            f"{reps} interleaved repetitions; requests per run: "
            + ", ".join(f"c={c}: {requests_per_run(options.quick, c)}" for c in CONCURRENCY),
            "repetitions redone because another process took CPU from a pinned core: "
            + ", ".join(f"c={c}: {k}" for c, k in redone.items()),
            "",
            table(details),
        ],
        client_pinning=client_pinning,
        server_pinning=server.pinning,
    )


if __name__ == "__main__":
    loop = "uvloop" if "--uvloop" in sys.argv else "asyncio"
    main(parse(__doc__, [a for a in sys.argv[1:] if a != "--uvloop"]), loop)
