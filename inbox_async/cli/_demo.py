"""`inbox-async demo`: bulk-update the bundled sample CSV against a fake server in this process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from importlib import resources
from pathlib import Path

from .. import InboxClient, LeadUpdate
from .._constants import CLI_DEMO_CONCURRENCY, CLI_DEMO_MAX_BACKOFF, CLI_DEMO_RATE_LIMIT
from ._csv import iter_rows, read_plan, scan
from ._exit import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from ._job import run_job

__all__ = ["demo"]

_COLUMNS = {
    "Company": "custom_q5cktl47a6pqa74eu06fz89v",
    "Title": "custom_m8r2xj93hd5bk0atcw7oe4fp",
}
# Leads at the end of the sample that the list lacks: they fail with 404, and are reported.
_STRANGERS = 5


async def demo(args: argparse.Namespace) -> int:
    """Run `demo`; returns the exit code (EXIT_FAILED if the outcome is not the expected one)."""
    # The fake server needs aiohttp.web: imported only by the command that starts it.
    from ..testing import FakeInboxServer, Fault

    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    sample = resources.files("inbox_async") / "_data" / "sample_leads.csv"
    limits = [CLI_DEMO_RATE_LIMIT]
    with resources.as_file(sample) as csv_path, tempfile.TemporaryDirectory() as tmp:
        plan = read_plan(Path(csv_path), _COLUMNS)
        rows = [row for row in iter_rows(plan, clear_empty=False) if isinstance(row, LeadUpdate)]
        async with FakeInboxServer(token="demo-token", rate_limits=limits, seed=7) as server:
            list_id = server.create_list(columns=_COLUMNS.values())
            server.add_leads(list_id, [row.platform_id for row in rows[:-_STRANGERS]])
            server.set_random_faults(
                {
                    Fault.status(503): 0.02,
                    Fault.drop(): 0.005,
                    Fault.status(429, retry_after=1): 0.0015,
                },
                method="PATCH",
            )
            count, seconds = CLI_DEMO_RATE_LIMIT
            print(f"fake Inbox server at {server.url}; list {list_id}")
            print(
                f"bulk-update {len(rows)} rows of {csv_path.name} "
                f"(limit {count} requests/{'s' if seconds == 1 else f'{seconds:g} s'})"
            )
            async with InboxClient(
                "demo-token", base_url=server.url, rate_limits=limits, sleep=_quick_backoff
            ) as client:
                code, report = await run_job(
                    client,
                    list_id,
                    plan,
                    scan(plan, clear_empty=False),
                    clear_empty=False,
                    journal=Path(tmp) / "demo.journal",
                    failures=Path(tmp) / "failures.csv",
                    concurrency=CLI_DEMO_CONCURRENCY,
                    progress=not args.no_progress,
                    limits=limits,
                    resume="inbox-async demo",
                )
            counts = ", ".join(f"{n}x {s}" for s, n in sorted(server.status_counts.items()))
            print(f"the server answered: {counts} (0 = dropped connection)")
    if code == EXIT_INTERRUPTED:
        return code
    planted = {row.platform_id for row in rows[-_STRANGERS:]}
    as_expected = (
        report.succeeded == len(rows) - _STRANGERS
        and {f.platform_id for f in report.failed} == planted
    )
    print(
        f"as expected: every lead in the list applied, the {_STRANGERS} planted strangers reported"
        if as_expected
        else "NOT as expected: see above"
    )
    return EXIT_OK if as_expected else EXIT_FAILED


async def _quick_backoff(delay: float) -> None:
    # The demo shows retries happening; it does not need to wait Inbox's full 1-60 s backoff.
    await asyncio.sleep(min(delay, CLI_DEMO_MAX_BACKOFF))
