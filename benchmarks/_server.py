"""The fake server as a process, recording when each request arrived (for the pacing benchmark).

Like `python -m inbox_async.testing`, it prints `url=`, `token=`, `list_id=`, `column_ids=` and
`platform_ids=` lines and serves until SIGTERM. It also keeps the request log (the standalone
server turns it off) and, on SIGTERM, writes `[[arrival, status], ...]` as JSON to `--dump`:
arrival is the server's `loop.time()` when the request arrived (the moment the API counts a
request against the rate limit), status what it was answered with. `--random-429 P` answers
each request with a 429 (`Retry-After: 1`) with probability P.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from pathlib import Path

from inbox_async._validation import parse_rate_limit
from inbox_async.testing import FakeInboxServer, Fault

FIRST_ID = 100_000_000


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT, then write the arrivals."""
    server = FakeInboxServer(
        port=args.port,
        latency=args.latency,
        rate_limits=args.rate_limit or None,
        seed=args.seed,
        record_requests=True,
    )
    if args.random_429:
        server.set_random_faults({Fault.status(429, retry_after=1): args.random_429})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        columns = ["custom_benchmarkcolumn0000000a", "custom_benchmarkcolumn0000000b"]
        list_id = server.create_list(columns)
        ids = [str(FIRST_ID + i) for i in range(args.demo_list)]
        server.add_leads(list_id, ids)
        print(
            f"url={server.url}\ntoken={server.token}\nlist_id={list_id}\n"
            f"column_ids={','.join(columns)}\nplatform_ids={ids[0]}..{ids[-1]}",
            flush=True,
        )
        await stop.wait()
        arrivals = [[r.received_at, r.status] for r in server.requests]
    if args.dump is not None:
        args.dump.write_text(json.dumps(arrivals))


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--demo-list", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit", metavar="N/SECONDS", action="append", default=[])
    parser.add_argument("--random-429", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dump", type=Path, default=None)
    args = parser.parse_args()
    try:
        args.rate_limit = [parse_rate_limit("--rate-limit", t) for t in args.rate_limit]
    except ValueError as exc:
        parser.error(str(exc))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
