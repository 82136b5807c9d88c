"""Q6. For context: the same update loop written with httpx.AsyncClient.

Measures the client's CPU time per request (the process CPU clock) of the Q1 update loop
written three ways, interleaved on one event loop against one fake-server process, at
concurrency 1, 8, 32 and 128:

- `httpx+msgspec`: `httpx.AsyncClient.patch` (100 connections, like the others) + the same
  `msgspec.json.Decoder(Lead)`; sniffio is installed, or httpcore retries a failing import on
  every call and the comparison would be unfair to httpx;
- `aiohttp+msgspec`: the Q1 baseline;
- `inbox_async`: `client.leads.update` with retries, limiter and decoding on.

Reported: httpx's CPU per request ÷ the SDK's, per repetition, median and min-max (no bar).
"""

from __future__ import annotations

from _clients import SERVER_RATE_LIMITS, Factory, aiohttp_msgspec, httpx_msgspec, interleave, sdk
from _harness import (
    Options,
    Row,
    Spread,
    fake_server,
    has,
    parse,
    pin_client,
    ratios,
    report,
    run_on,
    table,
)

CONCURRENCY = (1, 8, 32, 128)


def main(options: Options) -> None:
    """Compare httpx, aiohttp and the SDK at every concurrency."""
    client_pinning = pin_client()
    if not has("httpx"):
        print("httpx is not installed: Q6 skipped (pip install httpx sniffio)")
        return
    reps = options.reps or (3 if options.quick else 5)
    variants: dict[str, Factory] = {
        "httpx+msgspec": httpx_msgspec,
        "aiohttp+msgspec": aiohttp_msgspec,
        "inbox_async": sdk,
    }
    rows: list[Row] = []
    details: list[Row] = []
    with fake_server(rate_limits=SERVER_RATE_LIMITS) as server:
        for concurrency in CONCURRENCY:
            n = (800 if options.quick else 3000) // (2 if concurrency == 1 else 1)
            result = run_on(
                "asyncio",
                interleave(
                    server,
                    variants,
                    concurrency=concurrency,
                    n=n,
                    reps=reps,
                    warmup=max(200, 4 * concurrency),
                ),
            )
            for name in variants:
                us = Spread.of([c * 1e6 for c in result.cpu[name]])
                details.append(Row.of("Q6", f"c={concurrency} {name}: CPU/request", us, "µs"))
            rows.append(
                Row.of(
                    "Q6",
                    f"c={concurrency}: httpx+msgspec CPU/req ÷ inbox_async",
                    ratios(result.cpu["httpx+msgspec"], result.cpu["inbox_async"]),
                    "x",
                    "context",
                )
            )
    notes = [] if has("sniffio") else ["sniffio is missing: httpx is slowed down by it"]
    report(
        "Q6 httpx for context",
        rows,
        options,
        details=[f"{reps} interleaved repetitions", "", table(details)],
        notes=notes,
        client_pinning=client_pinning,
        server_pinning=server.pinning,
    )


if __name__ == "__main__":
    main(parse(__doc__))
