"""A/B: the SDK's client CPU per request, this checkout (A) against a patched checkout (B).

Not one of the questions: the tool used to measure the proposed patches. It loads the other
checkout's `inbox_async` under another name in the same process, then runs the Q1 update loop
(`client.leads.update`, retries, limiter and decoding on) for A, for B and for the raw
aiohttp + msgspec baseline, interleaved, at concurrency 1, 8, 32 and 128. Reported: B ÷ A and
each of them ÷ the baseline, per repetition, median and min-max.

    .venv/bin/python benchmarks/ab_patch.py /tmp/scratch            # full
    .venv/bin/python benchmarks/ab_patch.py /tmp/scratch --quick    # short
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from _clients import SERVER_RATE_LIMITS, Factory, aiohttp_msgspec, interleave, sdk, sdk_with
from _harness import Row, Spread, fake_server, pin_client, ratios, run_on, table


def load_checkout(root: Path, alias: str = "inbox_async_b") -> ModuleType:
    """Import `root/inbox_async` as the package `alias` (its imports are relative)."""
    package = root / "inbox_async"
    spec = importlib.util.spec_from_file_location(
        alias, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no inbox_async package under {root}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """Parse the arguments, run the interleaved comparison, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("checkout", type=Path, help="root of the patched checkout (B)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32, 128])
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    pin_client()
    patched = load_checkout(args.checkout.resolve())
    variants: dict[str, Factory] = {
        "baseline": aiohttp_msgspec,
        "A": sdk,
        "B": sdk_with(patched.InboxClient),
    }
    reps = args.reps or (3 if args.quick else 9)
    rows: list[Row] = []
    with fake_server(rate_limits=SERVER_RATE_LIMITS) as server:
        for concurrency in args.concurrency:
            n = (1000 if args.quick else 4000) // (2 if concurrency == 1 else 1)
            result = run_on(
                args.loop,
                interleave(
                    server,
                    variants,
                    concurrency=concurrency,
                    n=n,
                    reps=reps,
                    warmup=max(200, 4 * concurrency),
                ),
            )
            cpu = result.cpu
            print(f"c={concurrency}: {result.redone} repetitions redone (disturbed)")
            for name in variants:
                rows.append(
                    Row.of(
                        "A/B",
                        f"c={concurrency} {name}: CPU/request",
                        Spread.of([c * 1e6 for c in cpu[name]]),
                        "µs",
                    )
                )
            rows.append(Row.of("A/B", f"c={concurrency} B ÷ A", ratios(cpu["B"], cpu["A"]), "x"))
            for name in ("A", "B"):
                rows.append(
                    Row.of(
                        "A/B",
                        f"c={concurrency} {name} ÷ baseline",
                        ratios(cpu[name], cpu["baseline"]),
                        "x",
                    )
                )
            print(table(rows[-6:]), flush=True)
    print(f"\nA = {Path(__file__).resolve().parent.parent}, B = {args.checkout.resolve()}")
    print(f"{reps} interleaved repetitions, loop {args.loop}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
