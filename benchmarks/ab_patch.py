"""A/B: the SDK's client CPU per request, this checkout (A) against patched checkouts (B, C...).

Not one of the questions: the tool used to measure the proposed patches. It loads each other
checkout's `inbox_async` under another name in the same process, then runs the Q1 update loop
(`client.leads.update`, retries, limiter and decoding on) for A, for each patched checkout and
for the raw aiohttp + msgspec baseline, interleaved, at concurrency 1, 8, 32 and 128. Reported:
each patched checkout ÷ A, and each SDK ÷ the baseline, per repetition, median and min-max.

    .venv/bin/python benchmarks/ab_patch.py /tmp/scratch            # full
    .venv/bin/python benchmarks/ab_patch.py /tmp/scratch --quick    # short
    .venv/bin/python benchmarks/ab_patch.py /tmp/fix1 /tmp/fix2 --concurrency 32 128
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
    parser.add_argument("checkouts", type=Path, nargs="+", help="roots of patched checkouts")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 8, 32, 128])
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--requests", type=int, default=None, help="requests per run")
    args = parser.parse_args()
    pin_client()
    variants: dict[str, Factory] = {"baseline": aiohttp_msgspec, "A": sdk}
    names = {}
    for i, checkout in enumerate(args.checkouts):
        name = chr(ord("B") + i)
        names[name] = checkout.resolve()
        patched = load_checkout(checkout.resolve(), f"inbox_async_{name.lower()}")
        variants[name] = sdk_with(patched.InboxClient)
    reps = args.reps or (3 if args.quick else 9)
    rows: list[Row] = []
    with fake_server(rate_limits=SERVER_RATE_LIMITS) as server:
        for concurrency in args.concurrency:
            n = args.requests or (1000 if args.quick else 4000) // (2 if concurrency == 1 else 1)
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
            for name in names:
                rows.append(
                    Row.of("A/B", f"c={concurrency} {name} ÷ A", ratios(cpu[name], cpu["A"]), "x")
                )
            for name in ("A", *names):
                rows.append(
                    Row.of(
                        "A/B",
                        f"c={concurrency} {name} ÷ baseline",
                        ratios(cpu[name], cpu["baseline"]),
                        "x",
                    )
                )
            print(table(rows[-(2 + 3 * len(names) + 1) :]), flush=True)
    print(f"\nA = {Path(__file__).resolve().parent.parent}")
    for name, root in names.items():
        print(f"{name} = {root}")
    print(f"{reps} interleaved repetitions, loop {args.loop}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
