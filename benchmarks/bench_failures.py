"""Q8. Memory a bulk report keeps per failure: 10,000 failed updates, measured with tracemalloc.

Runs `client.leads.bulk_update` over 10,000 updates of leads that are not in the list (each
gets a 404 `LEAD_NOT_FOUND` from the fake server, a separate process on its own core), after a
warm-up job, in a fresh client process per repetition. Reported: the bytes still allocated once
the job has returned, divided by the failures (what `report.failed` keeps alive: the failure,
its error, the item's data), and the peak RSS growth per failure. With `--against CHECKOUT`,
another checkout's `inbox_async` runs the same job in turns with this one, and the table gives
the ratio. Bar: at most 2 KB per failure.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import Options, Row, Server, Spread, fake_server, pin_client, report, run_on, table

FAILURES = 10_000
CONCURRENCY = 16
BAR_BYTES = 2048
ROOT = Path(__file__).resolve().parent.parent


def child(config: dict[str, Any]) -> dict[str, Any]:
    """In the child: warm up, then one job of FAILURES failing updates, measured."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ab_patch import load_checkout

    package = load_checkout(Path(config["root"]), "inbox_async_measured")

    def updates(n: int, start: int) -> Iterator[tuple[str, dict[str, Any]]]:
        for i in range(n):
            yield str(start + i), {config["column"]: f"value {i}"}

    async def go() -> dict[str, Any]:
        async with package.InboxClient(
            config["token"], base_url=config["url"], rate_limits=None
        ) as client:
            # Ids far from the list's own: every one is a 404.
            await client.leads.bulk_update(config["list_id"], updates(200, 5_000_000_000))
            gc.collect()
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            result = await client.leads.bulk_update(
                config["list_id"], updates(FAILURES, 6_000_000_000), concurrency=CONCURRENCY
            )
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "failed": len(result.failed),
            "kept_per_failure": kept / max(1, len(result.failed)),
            "rss_per_failure": (rss_after - rss_before) * 1024 / max(1, len(result.failed)),
        }

    return run_on("asyncio", go())


def spawn(server: Server, root: Path) -> dict[str, Any]:
    """One measured job in a fresh interpreter."""
    config = {
        "root": str(root),
        "url": server.url,
        "token": server.token,
        "list_id": server.list_id,
        "column": server.column_ids[0],
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["failed"] != FAILURES:
        raise RuntimeError(f"{result['failed']} of {FAILURES} updates failed")
    return result


def main(options: Options, against: Path | None) -> None:
    """Run the repetitions (in turns with `against`, if given) and print the table."""
    pin_client()
    reps = options.reps or (2 if options.quick else 5)
    roots = {"this": ROOT, **({"against": against.resolve()} if against else {})}
    kept: dict[str, list[float]] = {name: [] for name in roots}
    rss: dict[str, list[float]] = {name: [] for name in roots}
    with fake_server() as server:
        for rep in range(reps):
            order = list(roots.items())
            if rep % 2:
                order.reverse()
            for name, root in order:
                result = spawn(server, root)
                kept[name].append(result["kept_per_failure"])
                rss[name].append(result["rss_per_failure"])
    rows = []
    for name in roots:
        bar = f"≤ {BAR_BYTES}" if name == "this" else "context"
        rows.append(Row.of("Q8", f"{name}: kept per failure", Spread.of(kept[name]), "B", bar))
        rows.append(
            Row.of("Q8", f"{name}: peak RSS growth per failure", Spread.of(rss[name]), "B", "")
        )
    if against is not None:
        ratios = [a / b for a, b in zip(kept["against"], kept["this"], strict=True)]
        rows.append(Row.of("Q8", "against ÷ this (kept)", Spread.of(ratios), "x", "context"))
    report("Q8. Memory kept per bulk failure", rows, options, details=[f"{reps} repetitions"])
    print(table(rows))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(json.loads(sys.argv[2]))))
    else:
        parser = argparse.ArgumentParser(add_help=False)
        parser.add_argument("--against", type=Path, default=None)
        known, rest = parser.parse_known_args()
        from _harness import parse

        main(parse(__doc__, rest), known.against)
