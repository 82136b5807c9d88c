"""The `inbox-async` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from ._exceptions import InboxError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = asyncio.run(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inbox-async", description="Command line for the Inbox API (inboxapp.com)."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="update leads on an embedded fake Inbox server, with faults, to show the SDK",
        description=(
            "Starts the fake Inbox server in this process, seeds a list, and updates leads "
            "through the SDK while the server injects a 503 and a 429. Nothing leaves this "
            "machine and no token is needed."
        ),
    )
    demo.add_argument("--leads", type=int, default=5, help="leads to update (default 5)")
    demo.set_defaults(handler=_demo)
    return parser


async def _demo(args: argparse.Namespace) -> int:
    from ._client import InboxClient
    from .testing import FakeInboxServer, Fault

    if args.leads < 1:
        print("inbox-async demo: --leads must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="  %(name)s: %(message)s")
    logging.getLogger("inbox_async").setLevel(logging.INFO)
    company = "custom_q5cktl47a6pqa74eu06fz89v"
    title = "custom_m8r2xj93hd5bk0atcw7oe4fp"
    ids = [str(44196397 + i) for i in range(args.leads)]
    async with FakeInboxServer(token="demo-token") as server:
        list_id = server.create_list(columns=[company, title])
        server.add_leads(list_id, ids)
        print(f"fake Inbox server at {server.url}, list {list_id} with {len(ids)} leads")
        # Trouble the SDK should absorb: one 503 and one 429 with Retry-After: 1.
        server.add_fault(Fault.status(503), method="PATCH")
        server.add_fault(Fault.status(429, retry_after=1), method="PATCH")
        failed = 0
        async with InboxClient("demo-token", base_url=server.url) as client:
            for n, platform_id in enumerate(ids, 1):
                try:
                    lead = await client.leads.update(
                        list_id, platform_id, {company: f"Company {n}", title: "CEO"}
                    )
                except InboxError as exc:
                    failed += 1
                    print(f"  {platform_id}: failed: {exc}")
                    continue
                print(f"  @{lead.prospect.username}: {lead.data}")
        statuses = dict(sorted(server.status_counts.items()))
        print(f"done: {len(ids) - failed} applied, {failed} failed; server answered {statuses}")
    return EXIT_OK if failed == 0 else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
