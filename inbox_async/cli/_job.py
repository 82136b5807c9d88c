"""One bulk job from a checked CSV: the stream of updates, Ctrl-C, the failures file, the summary.

Shared by `bulk-update` and `demo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .. import BulkReport, InboxClient, JournalMismatchError, LeadUpdate
from .._constants import CLI_SHOWN_ERRORS, DEFAULT_RESERVE
from ._csv import CsvError, CsvPlan, FailureWriter, RowError, Scan, iter_rows, same_file
from ._exit import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from ._progress import Progress

if TYPE_CHECKING:
    from .._types import Priority

__all__ = ["print_rejected", "run_job"]


class _Updates:
    """The second pass over the file, sized by the first so that progress has a total."""

    def __init__(self, rows: Iterator[LeadUpdate], total: int) -> None:
        self._rows = rows
        self._total = total

    def __len__(self) -> int:
        return self._total

    def __iter__(self) -> Iterator[LeadUpdate]:
        return self._rows


async def run_job(
    client: InboxClient,
    list_id: str,
    plan: CsvPlan,
    checked: Scan,
    *,
    clear_empty: bool,
    journal: Path | None,
    failures: Path | None,
    concurrency: int,
    progress: bool,
    limits: Sequence[tuple[int, float]],
    resume: str,
    priority: Priority = "background",
    reserve: float = DEFAULT_RESERVE,
) -> tuple[int, BulkReport]:
    """Apply the file's updates; returns the exit code and the job's report."""
    writer = FailureWriter(failures, plan) if failures is not None else None
    over_input = failures is not None and same_file(failures, plan.path)

    def updates() -> Iterator[LeadUpdate]:
        for row in iter_rows(plan, clear_empty=clear_empty):
            if isinstance(row, RowError):
                if writer is not None:
                    writer.write_cells(row.cells, row.message)
            else:
                yield row

    if checked.repeated:
        print(
            f"inbox-async: {checked.repeated} platform ids appear more than once "
            f"({checked.extra_rows} extra rows): each lead's rows are applied in file order, "
            "the last one wins",
            file=sys.stderr,
        )
    display = Progress(
        enabled=progress,
        total=checked.updates,
        limits=limits,
        reserve=reserve if priority == "background" else 0.0,
        paced=priority == "background",
    )
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    interrupted = finished = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        if task is not None:
            task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, interrupt)
        loop.add_signal_handler(signal.SIGTERM, interrupt)
    stream = client.leads.bulk_update_stream(
        list_id,
        _Updates(updates(), checked.updates),
        concurrency=concurrency,
        on_progress=display.update,
        journal=journal,
        priority=priority,
    )
    display.start()
    try:
        async with stream:
            async for outcome in stream:
                if not outcome.ok and writer is not None:
                    writer.write_update(outcome.platform_id, outcome.data, str(outcome.error))
        finished = True
    except asyncio.CancelledError:
        if not interrupted:
            raise
    except JournalMismatchError as exc:
        # A journal made for another list or server is refused before anything is sent.
        raise CsvError(str(exc).replace("journal path", "--journal path")) from None
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
        display.close()
        report: BulkReport = stream.report
        # A job that stopped early (a revoked token, a deleted list) leaves rows not attempted.
        complete = finished and not report.not_attempted
        if writer is not None:
            # The input lists rows not yet attempted: a partial failures file must not replace
            # it; and a job that never started leaves an earlier failures file alone.
            commit = complete or (not over_input and report.total > 0)
            writer.close(commit=commit)
            if not complete and report.total > 0:
                _partial_failures_note(writer, over_input)
    _summary(report, checked.rejected, sys.stdout)
    print_rejected(checked, sys.stdout)
    for failure in report.failed[:CLI_SHOWN_ERRORS]:
        print(f"  {failure.platform_id}: {failure.error}")
    if len(report.failed) > CLI_SHOWN_ERRORS:
        print(f"  ... and {len(report.failed) - CLI_SHOWN_ERRORS} more")
    aborted = report.aborted
    if interrupted or aborted is not None:
        if task is not None and interrupted and hasattr(task, "uncancel"):
            # Uncancel so that asyncio.run() returns normally with our exit code.
            task.uncancel()
        why = "interrupted" if interrupted else f"the job stopped: {aborted}"
        if journal is None:
            print(
                f"{why}; this run kept no journal (--no-journal), so nothing can be skipped on a "
                f"rerun: every row is sent again. To resume, run:\n  {resume}",
                file=sys.stderr,
            )
        else:
            print(f"{why}; to resume, run:\n  {resume}", file=sys.stderr)
        if interrupted:
            return EXIT_INTERRUPTED, report
        return EXIT_FAILED, report
    ok = report.ok and not checked.rejected
    return (EXIT_OK if ok else EXIT_FAILED), report


def print_rejected(checked: Scan, out: TextIO, limit: int = CLI_SHOWN_ERRORS) -> None:
    """List the first rows that cannot be sent, and count the rest."""
    errors = checked.errors or []
    for row in errors[:limit]:
        print(f"  {row.message}", file=out)
    if checked.rejected > limit:
        print(f"  ... and {checked.rejected - limit} more rows that cannot be sent", file=out)


def _partial_failures_note(writer: FailureWriter, over_input: bool) -> None:
    if over_input:
        print(
            f"inbox-async: {writer.path} was left as it was: the run did not finish, and the rows "
            "not yet attempted are only there",
            file=sys.stderr,
        )
    else:
        print(
            f"inbox-async: {writer.path} holds the {writer.count} rows that failed so far; rows "
            "not attempted are not in it",
            file=sys.stderr,
        )


def _summary(report: BulkReport, rejected: int, out: TextIO) -> None:
    failed = len(report.failed) + rejected
    print(
        f"applied {report.succeeded}, failed {failed}, skipped {report.skipped} "
        "(applied before, or nothing to set)"
        + (f", not attempted {report.not_attempted}" if report.not_attempted else "")
        + f"; {report.retries} retries, {report.rate_limit_wait:.1f} s waiting on rate limits, "
        f"{report.requests_per_second:.0f} requests/s, {report.elapsed:.1f} s",
        file=out,
    )
