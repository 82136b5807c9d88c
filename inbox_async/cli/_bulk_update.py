"""The `inbox-async` command line: resumable bulk updates from CSV, and a self-contained demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import re
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from .. import __version__
from .._constants import BASE_URL_ENV_VAR, DEFAULT_RATE_LIMITS, DEFAULT_RESERVE, TOKEN_ENV_VAR
from .._exceptions import JournalMismatchError
from .._ratelimit._local import background_limit, check_limits, check_reserve
from .._types import Priority
from .._validation import PRIORITIES, check_id
from ..bulk import BulkProgress, BulkReport, LeadUpdate
from ._csv import (
    CsvError,
    CsvPlan,
    FailureWriter,
    RowError,
    Scan,
    iter_rows,
    parse_delimiter,
    parse_maps,
    read_plan,
    same_file,
    scan,
)

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_BULK_HELP = """\
Set custom column values on many leads of a list from a CSV file.

The CSV needs a platform id column (platformId, platform_id, "Platform ID", ...; or name it
with --id-column). Every other header is a column id (custom_...) or is mapped to one with
--map "CSV header=custom_...". An empty cell leaves that column alone; with --clear-empty it
clears the column instead. The delimiter (, ; tab |) is sniffed from the header unless given
with --delimiter; the file is read as UTF-8 (with or without a BOM) unless --encoding says
otherwise.

The whole file is checked before the first request: a file that cannot be read sends nothing.
A row that cannot be sent (no id, an id a spreadsheet turned into a number, a cell over
128 KiB, too many cells) fails alone.

A journal (FILE.journal by default) records every finished row: run the same command again
after a crash or Ctrl-C and it skips what was applied. --failures writes the rows that failed,
with their error, in the same format, so the file can be fed back in; it is written beside its
target and renamed into place at the end, so it may name the input itself.

Exit codes: 0 all applied, 1 some rows failed, 2 bad usage or bad input (nothing was sent),
130 interrupted.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = _run(args.handler(args))
    except CsvError as exc:
        print(f"inbox-async: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("inbox-async: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _run(coro: Any) -> int:
    # uvloop, when installed, takes 15-25% less CPU per request; it is optional.
    try:
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        return int(asyncio.run(coro))
    return int(uvloop.run(coro))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inbox-async", description="Command line for the Inbox API (inboxapp.com)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    bulk = commands.add_parser(
        "bulk-update",
        help="set custom column values on many leads from a CSV file",
        description=_BULK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bulk.add_argument("file", type=Path, metavar="FILE.csv", help="the CSV to apply")
    bulk.add_argument("--list", required=True, dest="list_id", metavar="LIST_ID")
    bulk.add_argument(
        "--map",
        action="append",
        default=[],
        metavar='"HEADER=custom_..."',
        help="map a CSV header to a column id (repeatable)",
    )
    bulk.add_argument(
        "--clear-empty",
        action="store_true",
        help="an empty cell clears the column (default: an empty cell leaves it alone)",
    )
    bulk.add_argument("--id-column", metavar="HEADER", help="the header of the platform id column")
    bulk.add_argument(
        "--delimiter", metavar="CHAR", help="cell delimiter, e.g. ';' or tab (default: sniffed)"
    )
    bulk.add_argument("--encoding", help="the file's encoding, e.g. cp1252 (default: UTF-8)")
    bulk.add_argument("--journal", type=Path, help="journal path (default: FILE.journal)")
    bulk.add_argument("--no-journal", action="store_true", help="do not keep a journal")
    bulk.add_argument(
        "--failures", type=Path, help="write failed rows here, with their error (may be FILE)"
    )
    bulk.add_argument("--concurrency", type=int, default=16, help="requests at once (16)")
    bulk.add_argument(
        "--rate-limit",
        action="append",
        metavar="N/SECONDS",
        help="the team's limit as requests/seconds, repeatable (default 300/60 10000/3600 "
        "100000/86400)",
    )
    bulk.add_argument(
        "--priority",
        choices=PRIORITIES,
        default="background",
        help="background (default): paced, and leaves the --reserve of the quota to the "
        "team's interactive calls; interactive: the whole quota, unpaced",
    )
    bulk.add_argument(
        "--reserve",
        type=_reserve,
        default=DEFAULT_RESERVE,
        metavar="FRACTION",
        help="the fraction of every rate-limit window, and of the server's remaining quota, "
        f"that background work leaves to interactive calls, in [0, 1) (default "
        f"{DEFAULT_RESERVE:g}; 0: none)",
    )
    bulk.add_argument("--dry-run", action="store_true", help="check the file, send nothing")
    bulk.add_argument("--no-progress", action="store_true", help="no progress bar")
    bulk.add_argument("--token", help=f"API token (default: ${TOKEN_ENV_VAR})")
    bulk.add_argument("--base-url", help=f"API base URL (default: ${BASE_URL_ENV_VAR})")
    bulk.set_defaults(handler=_bulk_update)

    demo = commands.add_parser(
        "demo",
        help="bulk-update a sample CSV against an embedded fake Inbox server",
        description=(
            "Runs bulk-update on a bundled sample CSV of a few thousand leads against the fake "
            "Inbox server, started in this process, with realistic trouble: some 429s, some "
            "5xx, dropped connections and a few leads that are not in the list. Nothing leaves "
            "this machine and no token is needed."
        ),
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(handler=_demo)
    return parser


def _reserve(text: str) -> float:
    """Parse `--reserve` (argparse names the option in its message)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes a fraction in [0, 1), e.g. {DEFAULT_RESERVE:g}; got {text!r}"
        ) from None
    try:
        return check_reserve(value, "--reserve")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be in [0, 1) (0 turns the reserve off), got {text!r}"
        ) from None


def _rate_limits(values: list[str] | None) -> tuple[tuple[int, float], ...]:
    if not values:
        return DEFAULT_RATE_LIMITS
    limits: list[tuple[int, float]] = []
    for value in values:
        count, sep, seconds = value.partition("/")
        try:
            limits.append((int(count), float(seconds)))
        except ValueError:
            raise CsvError(f"--rate-limit takes N/SECONDS, e.g. 300/60; got {value!r}") from None
        if not sep:
            raise CsvError(f"--rate-limit takes N/SECONDS, e.g. 300/60; got {value!r}")
    try:
        return check_limits(limits, "--rate-limit")
    except (TypeError, ValueError) as exc:
        raise CsvError(str(exc)) from None


# What the client says about its Python parameters, in the command line's words.
_OPTION_WORDS = (
    (
        re.compile(r"pass token=\.\.\. to InboxClient or set \w+"),
        f"pass --token or set ${TOKEN_ENV_VAR}",
    ),
    (re.compile(r"pass token=\.\.\. or set \w+"), f"pass --token or set ${TOKEN_ENV_VAR}"),
    (re.compile(r"pass token=\.\.\. instead"), f"pass the token with --token or ${TOKEN_ENV_VAR}"),
    (re.compile(r", or pass allow_insecure_http=True"), ""),
    (re.compile(r"\bbase_url\b"), "--base-url"),
    (re.compile(r"^token\b"), "--token"),
)


def _in_option_words(message: str) -> str:
    for pattern, words in _OPTION_WORDS:
        message = pattern.sub(words, message)
    return message


def _check_list_id(list_id: str) -> str:
    try:
        return check_id("--list", list_id)
    except (TypeError, ValueError):
        raise CsvError(
            f"--list {list_id!r} is not a list id: lowercase letters and digits "
            "(e.g. l44e15irdq4db30i77cgphhx)"
        ) from None


async def _bulk_update(args: argparse.Namespace) -> int:
    from .._client import InboxClient

    _check_list_id(args.list_id)
    if args.concurrency < 1:
        raise CsvError("--concurrency must be at least 1")
    limits = _rate_limits(args.rate_limit)
    journal = None if args.no_journal else (args.journal or _default_journal(args.file))
    if journal is not None and same_file(journal, args.file):
        raise CsvError(f"--journal {str(journal)!r} is the input file")
    for name, target in (("--journal", journal), ("--failures", args.failures)):
        if target is not None and not target.parent.is_dir():
            raise CsvError(f"{name} {str(target)!r}: {str(target.parent)!r} is not a directory")
    if args.failures is not None and journal is not None and same_file(args.failures, journal):
        raise CsvError(f"--failures {str(args.failures)!r} is the journal")
    delimiter = parse_delimiter(args.delimiter) if args.delimiter is not None else None
    plan = read_plan(
        args.file,
        parse_maps(args.map),
        encoding=args.encoding,
        delimiter=delimiter,
        id_column=args.id_column,
    )
    # The first pass: a file that cannot be read stops here, before anything is sent.
    checked = scan(plan, clear_empty=args.clear_empty)
    priority: Priority = args.priority
    # What the job itself may use of each window: background work leaves the reserve.
    reserve = args.reserve if priority == "background" else 0.0
    if args.dry_run:
        return _dry_run(plan, checked, args.clear_empty, limits, reserve, priority)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV_VAR)
    if not token or not token.strip():
        raise CsvError(f"no API token: pass --token or set ${TOKEN_ENV_VAR}")
    try:
        client = InboxClient(
            token, base_url=args.base_url, rate_limits=limits, reserve=args.reserve
        )
    except (TypeError, ValueError) as exc:
        raise CsvError(_in_option_words(str(exc))) from None
    async with client:
        code, _ = await _apply(
            client,
            args.list_id,
            plan,
            checked,
            clear_empty=args.clear_empty,
            journal=journal,
            failures=args.failures,
            concurrency=args.concurrency,
            progress=not args.no_progress,
            limits=limits,
            priority=priority,
            reserve=reserve,
            resume=_resume_command(args, journal, plan)
            + (
                f"\n  (the token is not repeated: set ${TOKEN_ENV_VAR} or add --token)"
                if args.token is not None
                else ""
            ),
        )
    return code


def _default_journal(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def _resume_command(args: argparse.Namespace, journal: Path | None, plan: CsvPlan) -> str:
    """The command that picks the job up again: every option that changes what is sent or
    where, never the token."""
    words = ["inbox-async", "bulk-update"]

    def option(name: str, value: object) -> None:
        text = str(value)
        # "--journal -x" would read -x as an option; "--journal=-x" cannot.
        words.extend([f"{name}={text}"] if text.startswith("-") else [name, text])

    option("--list", args.list_id)
    for item in args.map:
        option("--map", item)
    if args.clear_empty:
        words.append("--clear-empty")
    if args.id_column is not None:
        option("--id-column", args.id_column)
    if args.delimiter is not None:
        option("--delimiter", "tab" if plan.delimiter == "\t" else plan.delimiter)
    if args.encoding is not None:
        option("--encoding", args.encoding)
    option("--concurrency", args.concurrency)
    for value in args.rate_limit or ():
        option("--rate-limit", value)
    if args.priority != "background":
        option("--priority", args.priority)
    if args.reserve != DEFAULT_RESERVE:
        option("--reserve", f"{args.reserve:g}")
    if journal is not None:
        option("--journal", journal)
    else:
        words.append("--no-journal")
    if args.failures is not None:
        option("--failures", args.failures)
    base_url = args.base_url if args.base_url is not None else os.environ.get(BASE_URL_ENV_VAR)
    if base_url:
        option("--base-url", base_url)
    if args.no_progress:
        words.append("--no-progress")
    file = str(args.file)
    words += ["--", file]
    return shlex.join(words)


def _dry_run(
    plan: CsvPlan,
    checked: Scan,
    clear_empty: bool,
    limits: Sequence[tuple[int, float]],
    reserve: float,
    priority: Priority,
) -> int:
    _print_rejected(checked, sys.stdout)
    delimiter = "tab" if plan.delimiter == "\t" else repr(plan.delimiter)
    print(f"file:     {plan.path}")
    print(
        f"format:   {plan.encoding_name}{' with a BOM' if plan.bom else ''}, "
        f"{delimiter}-delimited, ids in {plan.id_header!r}"
    )
    print(f"rows:     {checked.updates} updates, {checked.rejected} rows that cannot be sent")
    if checked.mangled:
        print(
            f"mangled:  {checked.mangled} ids a spreadsheet turned into numbers "
            "(format the id column as text and export again)"
        )
    if checked.repeated:
        print(
            f"repeats:  {checked.repeated} platform ids appear more than once "
            f"({checked.extra_rows} extra rows); each lead's rows are applied in file order, "
            "the last one wins"
        )
    print(f"columns:  {', '.join(plan.column_ids) or '(none)'}")
    print(f"empty:    {'clears the column' if clear_empty else 'leaves the column alone'}")
    shown = ", ".join(f"{n}/{s:g}s" for n, s in limits)
    if priority == "background":
        shown += f", {priority} with a reserve of {reserve:g}"
    estimate = _estimate(checked.updates, limits, reserve, paced=priority == "background")
    print(f"estimate: {_duration(estimate)} at {shown} (nothing was sent)")
    return EXIT_OK if checked.rejected == 0 else EXIT_FAILED


def _print_rejected(checked: Scan, out: TextIO, limit: int = 10) -> None:
    errors = checked.errors or []
    for row in errors[:limit]:
        print(f"  {row.message}", file=out)
    if checked.rejected > limit:
        print(f"  ... and {checked.rejected - limit} more rows that cannot be sent", file=out)


def _estimate(
    rows: int, limits: Sequence[tuple[int, float]], reserve: float = 0.0, *, paced: bool = False
) -> float:
    """Seconds to send `rows` requests under every window, starting with all of them empty.

    Background work gets each window less its `reserve`, paced over the shortest window.
    """
    longest = 0.0
    for count, seconds in limits:
        usable = background_limit(count, reserve)
        if rows > usable:
            longest = max(longest, ((rows - 1) // usable) * seconds)
    if paced and limits and rows > 1:
        count, seconds = min(limits, key=lambda pair: pair[1])
        longest = max(longest, (rows - 1) * seconds / background_limit(count, reserve))
    return longest


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


class _Updates:
    """The second pass over the file, sized by the first so that progress has a total."""

    def __init__(self, rows: Iterator[LeadUpdate], total: int) -> None:
        self._rows = rows
        self._total = total

    def __len__(self) -> int:
        return self._total

    def __iter__(self) -> Iterator[LeadUpdate]:
        return self._rows


async def _apply(
    client: Any,
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
    display = _Progress(
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
    _print_rejected(checked, sys.stdout)
    for failure in report.failed[:10]:
        print(f"  {failure.platform_id}: {failure.error}")
    if len(report.failed) > 10:
        print(f"  ... and {len(report.failed) - 10} more")
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


class _Progress:
    """A rich progress bar on a terminal; a plain line every few seconds otherwise.

    The total is known from the first pass over the file; until the job has a rate of its own,
    the ETA is what the rate limits allow.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        total: int,
        limits: Sequence[tuple[int, float]] = (),
        reserve: float = 0.0,
        paced: bool = False,
    ) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._enabled = enabled
        self._total = total
        self._limits = limits
        self._reserve = reserve
        self._paced = paced
        self._last_line = 0.0
        if enabled and sys.stderr.isatty():
            with contextlib.suppress(ImportError):
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                self._bar = Progress(
                    TextColumn("[bold]updating"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"),
                    TimeRemainingColumn(),
                    transient=False,
                )
                self._bar.start()
                self._task = self._bar.add_task("bulk", total=total, status="")

    def start(self) -> None:
        """Show the job before its first request."""
        if not self._enabled:
            return
        eta = self._eta(self._total, None)
        if self._bar is not None:
            self._bar.update(self._task, completed=0, status=eta)
            return
        self._last_line = time.monotonic()
        print(f"  0/{self._total} done ({eta})", file=sys.stderr)

    def _eta(self, remaining: int, eta: float | None) -> str:
        if eta is None:
            # No rate measured yet: what the rate limits alone will take is a lower bound.
            floor = _estimate(max(0, remaining), self._limits, self._reserve, paced=self._paced)
            return f"eta {_duration(floor)} or more" if floor > 0 else "eta ?"
        return f"eta {_duration(eta)}"

    def update(self, progress: BulkProgress) -> None:
        """Show one progress report."""
        if not self._enabled:
            return
        total = progress.total if progress.total is not None else self._total
        eta = self._eta(total - progress.done, progress.eta)
        status = (
            f"failed {progress.failed}  in flight {progress.in_flight}  "
            f"{progress.rate:.0f}/s  {eta}"
        )
        if progress.aborted is not None:
            status = f"stopping: {progress.aborted}"
        if self._bar is not None:
            self._bar.update(self._task, completed=progress.done, total=total, status=status)
            return
        now = time.monotonic()
        if now - self._last_line >= 5.0:
            self._last_line = now
            print(f"  {progress.done}/{total} done ({status})", file=sys.stderr)

    def close(self) -> None:
        """Stop the bar."""
        if self._bar is not None:
            self._bar.stop()


# -- demo --------------------------------------------------------------------------------------

_DEMO_COLUMNS = {
    "Company": "custom_q5cktl47a6pqa74eu06fz89v",
    "Title": "custom_m8r2xj93hd5bk0atcw7oe4fp",
}


async def _demo(args: argparse.Namespace) -> int:
    from .._client import InboxClient
    from ..testing import FakeInboxServer, Fault

    logging.basicConfig(level=logging.WARNING, format="  %(message)s")
    sample = resources.files("inbox_async") / "_data" / "sample_leads.csv"
    with resources.as_file(sample) as csv_path, tempfile.TemporaryDirectory() as tmp:
        plan = read_plan(Path(csv_path), _DEMO_COLUMNS)
        rows = [row for row in iter_rows(plan, clear_empty=False) if isinstance(row, LeadUpdate)]
        limits = [(400, 1.0)]
        async with FakeInboxServer(token="demo-token", rate_limits=limits, seed=7) as server:
            list_id = server.create_list(columns=_DEMO_COLUMNS.values())
            # A few leads of the file are not in the list: they fail with 404, and are reported.
            server.add_leads(list_id, [row.platform_id for row in rows[:-5]])
            server.set_random_faults(
                {
                    Fault.status(503): 0.02,
                    Fault.drop(): 0.005,
                    Fault.status(429, retry_after=1): 0.0015,
                },
                method="PATCH",
            )
            print(f"fake Inbox server at {server.url}; list {list_id}")
            print(f"bulk-update {len(rows)} rows of {csv_path.name} (limit 400 requests/s)")
            async with InboxClient(
                "demo-token", base_url=server.url, rate_limits=limits, sleep=_quick_backoff
            ) as client:
                code, report = await _apply(
                    client,
                    list_id,
                    plan,
                    scan(plan, clear_empty=False),
                    clear_empty=False,
                    journal=Path(tmp) / "demo.journal",
                    failures=Path(tmp) / "failures.csv",
                    concurrency=32,
                    progress=not args.no_progress,
                    limits=limits,
                    resume="inbox-async demo",
                )
            counts = ", ".join(f"{n}x {s}" for s, n in sorted(server.status_counts.items()))
            print(f"the server answered: {counts} (0 = dropped connection)")
    if code == EXIT_INTERRUPTED:
        return code
    planted = {row.platform_id for row in rows[-5:]}
    as_expected = (
        report.succeeded == len(rows) - 5 and {f.platform_id for f in report.failed} == planted
    )
    print(
        "as expected: every lead in the list applied, the 5 planted strangers reported"
        if as_expected
        else "NOT as expected: see above"
    )
    return EXIT_OK if as_expected else EXIT_FAILED


async def _quick_backoff(delay: float) -> None:
    # The demo shows retries happening; it does not need to wait Inbox's full 1-60 s backoff.
    await asyncio.sleep(min(delay, 0.25))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
