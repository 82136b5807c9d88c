"""A/B in instructions: client instructions per `client.leads.update`, this checkout (A) against
other checkouts (B, C...), counted by valgrind's callgrind.

Not one of the questions: the tool for a verdict that CPU-time ratios on this noisy VM leave
open. Instruction counts do not depend on what else the machine is doing. Each variant runs as
its own process under callgrind twice, with a short and a long loop of updates against one fake
server (its own process, not under valgrind); the difference between the two counts divided by
the difference in requests is the cost of one request, start-up and warm-up cancelled out. The
client is the Q1 configuration (`max_retries=4`, the default windows' shapes, headers read).

    .venv/bin/python benchmarks/callgrind_ab.py /tmp/old-checkout
    .venv/bin/python benchmarks/callgrind_ab.py /tmp/old --concurrency 1 32 --requests 300 1300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _child(argv: list[str]) -> None:
    """Run `n` updates at `concurrency` with the checkout's InboxClient (under valgrind)."""
    root, url, token, list_id, column, first, n, concurrency = argv
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _clients import SDK_WINDOWS, TIMEOUT
    from ab_patch import load_checkout

    package = load_checkout(Path(root), "inbox_async_measured")
    first_id, total, workers = int(first), int(n), int(concurrency)

    async def run() -> None:
        async with package.InboxClient(
            token, base_url=url, rate_limits=SDK_WINDOWS, max_retries=4, timeout=TIMEOUT
        ) as client:
            counter = iter(range(total))

            async def worker() -> None:
                for i in counter:
                    await client.leads.update(list_id, str(first_id + i % 1000), {column: f"v{i}"})

            await asyncio.gather(*(worker() for _ in range(workers)))

    asyncio.run(run())


def _count(root: Path, server: object, n: int, concurrency: int) -> int:
    args = [
        str(root),
        server.url,  # type: ignore[attr-defined]
        server.token,  # type: ignore[attr-defined]
        server.list_id,  # type: ignore[attr-defined]
        server.column_ids[0],  # type: ignore[attr-defined]
        str(server.first_id),  # type: ignore[attr-defined]
        str(n),
        str(concurrency),
    ]
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        *args,
    ]
    # A fixed hash seed: dict and set layouts, and so the instructions, repeat from run to run.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    match = _COLLECTED.search(done.stderr)
    if match is None:
        raise SystemExit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    """Parse the arguments, count each variant, print instructions per request and ratios."""
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("checkouts", type=Path, nargs="+", help="roots of other checkouts")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 32])
    parser.add_argument("--requests", type=int, nargs=2, default=[200, 1200])
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _clients import SERVER_RATE_LIMITS
    from _harness import fake_server

    roots = {"A": ROOT, **{chr(ord("B") + i): p.resolve() for i, p in enumerate(args.checkouts)}}
    short, long = args.requests
    with fake_server(rate_limits=SERVER_RATE_LIMITS) as server:
        for concurrency in args.concurrency:
            per_request: dict[str, float] = {}
            for name, root in roots.items():
                low = _count(root, server, short, concurrency)
                high = _count(root, server, long, concurrency)
                per_request[name] = (high - low) / (long - short)
                print(f"c={concurrency} {name}: {per_request[name]:,.0f} instructions/request")
            for name in roots:
                if name != "A":
                    ratio = per_request[name] / per_request["A"]
                    print(f"c={concurrency} {name} ÷ A: {ratio:.4f}")
    for name, root in roots.items():
        print(f"{name} = {root}")


if __name__ == "__main__":
    main()
