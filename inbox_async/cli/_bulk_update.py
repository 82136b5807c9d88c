"""`inbox-async bulk-update`: the options checked, the file read twice (check, then send),
a dry run's estimate, and the command that resumes an interrupted job."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import InboxClient
from .._constants import BASE_URL_ENV_VAR, DEFAULT_RATE_LIMITS, DEFAULT_RESERVE, TOKEN_ENV_VAR
from .._ratelimit import check_limits
from .._validation import check_id, check_priority, parse_rate_limit
from ._csv import CsvError, CsvPlan, Scan, parse_delimiter, parse_maps, read_plan, same_file, scan
from ._exit import EXIT_FAILED, EXIT_OK
from ._job import print_rejected, run_job
from ._progress import duration, estimate

if TYPE_CHECKING:
    from .._types import Priority

__all__ = ["bulk_update", "rate_limits"]


async def bulk_update(args: argparse.Namespace) -> int:
    """Run `bulk-update` with its parsed options; returns the exit code."""
    _check_list_id(args.list_id)
    if args.concurrency < 1:
        raise CsvError("--concurrency must be at least 1")
    limits = rate_limits(args.rate_limit)
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
    priority = check_priority("--priority", args.priority)
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
        code, _ = await run_job(
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


def rate_limits(values: Sequence[str] | None) -> tuple[tuple[int, float], ...]:
    """The `--rate-limit` options as windows (the team's default limits if none is given)."""
    if not values:
        return DEFAULT_RATE_LIMITS
    try:
        limits = [parse_rate_limit("--rate-limit", value) for value in values]
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
    print_rejected(checked, sys.stdout)
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
    seconds = estimate(checked.updates, limits, reserve, paced=priority == "background")
    print(f"estimate: {duration(seconds)} at {shown} (nothing was sent)")
    return EXIT_OK if checked.rejected == 0 else EXIT_FAILED
