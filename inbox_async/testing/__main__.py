"""Run the fake Inbox server from the command line: ``python -m inbox_async.testing``.

It prints ``key=value`` lines (``url=...`` first, then the seeded demo list if asked for)
and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from .._validation import parse_rate_limit
from ._faults import Fault
from ._server import FakeInboxServer

__all__ = ["DEMO_COLUMN_IDS", "DEMO_LIST_ID", "DEMO_PLATFORM_ID", "main"]

# Demo leads get consecutive numeric ids from here, so callers can compute them.
_DEMO_FIRST_ID = 100_000_000
# The ids of the README's quickstart, so that it runs as written against a demo server.
DEMO_LIST_ID = "l44e15irdq4db30i77cgphhx"
DEMO_COLUMN_IDS = ("custom_q5cktl47a6pqa74eu06fz89v", "custom_h7d2kx9wq3mz5rt8bn4vp6ye")
DEMO_PLATFORM_ID = "44196397"


def _probability(text: str) -> float:
    """Parse a probability in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m inbox_async.testing",
        description="Serve a fake Inbox API (lists, leads, import jobs, prospects).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind; 0 picks one (8080)")
    parser.add_argument(
        "--token",
        default="test-token",
        help="the accepted bearer token (test-token); an empty string accepts any token",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every request (0)"
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="N/SECONDS",
        help="a sliding-window limit, repeatable (e.g. 300/60 10000/3600); none: unlimited",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for random faults and ids")
    parser.add_argument(
        "--error-rate",
        type=_probability,
        default=0.0,
        help="probability of a random 503 on each request (0)",
    )
    parser.add_argument("--retry-after-format", choices=("seconds", "http-date"), default="seconds")
    parser.add_argument("--error-format", choices=("envelope", "flat"), default="envelope")
    parser.add_argument(
        "--deprecation", action="store_true", help="send Deprecation and Sunset headers"
    )
    parser.add_argument(
        "--demo-list",
        type=int,
        default=None,
        metavar="N",
        help=(
            "create the README's list (its id, two columns, lead 44196397) with N more "
            "numbered leads, and print the ids"
        ),
    )
    return parser


def _seed_demo_list(server: FakeInboxServer, count: int) -> list[str]:
    """Seed the demo list and return the ``key=value`` lines that describe it."""
    list_id = server.create_list(DEMO_COLUMN_IDS, list_id=DEMO_LIST_ID)
    platform_ids = [str(_DEMO_FIRST_ID + i) for i in range(count)]
    server.add_leads(list_id, [DEMO_PLATFORM_ID, *platform_ids])
    lines = [
        f"list_id={list_id}",
        f"column_ids={','.join(DEMO_COLUMN_IDS)}",
        f"example_platform_id={DEMO_PLATFORM_ID}",
    ]
    if platform_ids:
        # Last: readers wait for this line (a range, so a million leads stay one line).
        lines.append(f"platform_ids={platform_ids[0]}..{platform_ids[-1]}")
    return lines


async def _serve(args: argparse.Namespace) -> None:
    """Start the server, print where it is, and wait for a stop signal."""
    server = FakeInboxServer(
        token=args.token or None,
        host=args.host,
        port=args.port,
        rate_limits=args.rate_limits or None,
        latency=args.latency,
        seed=args.seed,
        retry_after_format=args.retry_after_format,
        error_format=args.error_format,
        deprecation=args.deprecation,
        # Nobody can read the log of a standalone server; recording would only grow memory.
        record_requests=False,
    )
    if args.error_rate:
        server.set_random_faults({Fault.status(503): args.error_rate})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows event loops have no signal handlers; Ctrl-C then ends asyncio.run().
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with server:
        lines = [f"url={server.url}", f"token={args.token}"]
        if args.demo_list is not None:
            lines += _seed_demo_list(server, args.demo_list)
        print("\n".join(lines), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until interrupted and return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.demo_list is not None and args.demo_list < 0:
        parser.error("--demo-list must be >= 0")
    try:
        # After parsing, not as an argparse type: the message names the option once.
        args.rate_limits = [parse_rate_limit("--rate-limit", text) for text in args.rate_limit]
    except ValueError as exc:
        parser.error(str(exc))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
