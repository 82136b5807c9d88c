"""Q4. Memory: peak RSS of `bulk_update` fed by a generator of 10,000 vs 200,000 updates.

Measures the peak resident set size (`getrusage` `ru_maxrss`) of a fresh client process that
runs `client.leads.bulk_update(list_id, generator, concurrency=16)` against the fake server (a
separate process on its own core, no latency, no rate limit), once with 10,000 updates and once
with 200,000 (50,000 with --quick), alternating (A B A B) in fresh processes. The client has
no local rate limit, so nothing but the bulk machinery holds memory (with limits on, the
limiter keeps one expiry time per request and window, bounded by the windows' limits).
Reported: the growth of the peak from the small to the large job, per repetition (median and
min-max), and per extra update. Bar: growth under 5 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from _harness import (
    CLIENT_CORE,
    Options,
    Row,
    Server,
    Spread,
    at_most,
    can_pin,
    fake_server,
    parse,
    pin_client,
    report,
    rotations,
    run_on,
    table,
)

SMALL = 10_000
LARGE = 200_000
QUICK_LARGE = 50_000
CONCURRENCY = 16
BAR_MB = 5.0


def peak_rss_mb() -> float:
    """This process's peak RSS so far, in MB (ru_maxrss is in KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def child(server: dict[str, Any], count: int) -> dict[str, Any]:
    """In the child: warm up, then one bulk_update over `count` lazily generated updates."""
    from inbox_async import InboxClient

    def updates(n: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for i in range(n):
            pid = str(server["first_id"] + i % server["leads"])
            yield pid, {server["column"]: f"value {i}"}

    async def go() -> dict[str, Any]:
        async with InboxClient(server["token"], base_url=server["url"], rate_limits=None) as c:
            await c.leads.bulk_update(server["list_id"], updates(200), concurrency=CONCURRENCY)
            before = peak_rss_mb()
            result = await c.leads.bulk_update(
                server["list_id"], updates(count), concurrency=CONCURRENCY
            )
        return {
            "before_mb": before,
            "peak_mb": peak_rss_mb(),
            "succeeded": result.succeeded,
            "seconds": result.elapsed,
        }

    return run_on("asyncio", go())


def spawn(server: Server, count: int) -> dict[str, Any]:
    """Run one job in a fresh, pinned interpreter and return what it measured."""
    config = {
        "url": server.url,
        "token": server.token,
        "list_id": server.list_id,
        "column": server.column_ids[0],
        "first_id": server.first_id,
        "leads": server.leads,
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config), str(count)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["succeeded"] != count:
        raise RuntimeError(f"{result['succeeded']} of {count} updates applied")
    return result


def main(options: Options) -> None:
    """Alternate small and large jobs in fresh processes and report the growth."""
    client_pinning = pin_client()
    reps = options.reps or (1 if options.quick else 3)
    large = QUICK_LARGE if options.quick else LARGE
    sizes = {"small": SMALL, "large": large}
    runs: dict[str, list[dict[str, Any]]] = {"small": [], "large": []}
    with fake_server() as server:
        spawn(server, 1000)  # the server's first requests, imports and caches are not timed
        for _, order in rotations(list(sizes), reps):
            for name in order:
                runs[name].append(spawn(server, sizes[name]))
    growth = Spread.of(
        [b["peak_mb"] - a["peak_mb"] for a, b in zip(runs["small"], runs["large"], strict=True)]
    )
    per_update = Spread.of(
        [
            (b["peak_mb"] - a["peak_mb"]) * 1024 * 1024 / (large - SMALL)
            for a, b in zip(runs["small"], runs["large"], strict=True)
        ]
    )
    details = [
        Row.of(
            "Q4",
            f"{sizes[name]:,} updates: peak RSS",
            Spread.of([r["peak_mb"] for r in runs[name]]),
            "MB",
        )
        for name in sizes
    ] + [
        Row.of(
            "Q4",
            f"{sizes[name]:,} updates: requests/s",
            Spread.of([sizes[name] / r["seconds"] for r in runs[name]]),
            "req/s",
        )
        for name in sizes
    ]
    rows = [
        Row.of(
            "Q4",
            f"peak RSS growth, {SMALL:,} → {large:,} updates",
            growth,
            "MB",
            f"< {BAR_MB:g} MB",
            at_most(growth.median, BAR_MB - 1e-9),
        ),
        Row.of("Q4", "peak RSS growth per extra update", per_update, "B", "context"),
    ]
    pinned = f"core {CLIENT_CORE}" if can_pin() else "not pinned"
    report(
        "Q4 memory of bulk_update",
        rows,
        options,
        details=[
            f"{reps} repetitions, each job in a fresh process ({pinned}), concurrency "
            f"{CONCURRENCY}",
            "",
            table(details),
        ],
        client_pinning=client_pinning,
        server_pinning=server.pinning,
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        pin_client()
        parser = argparse.ArgumentParser()
        parser.add_argument("--child", type=json.loads)
        parser.add_argument("count", type=int)
        args = parser.parse_args()
        print(json.dumps(child(args.child, args.count)))
    else:
        main(parse(__doc__))
