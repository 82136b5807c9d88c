"""The command line's options and help, built from the SDK's constants so they cannot disagree."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from .._constants import (
    BASE_URL_ENV_VAR,
    CLI_CELL_LIMIT,
    CLI_CONCURRENCY,
    DEFAULT_RATE_LIMITS,
    DEFAULT_RESERVE,
    TOKEN_ENV_VAR,
)
from .._ratelimit import check_reserve
from .._validation import PRIORITIES
from ._exit import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

__all__ = ["build_parser"]


def _bulk_description() -> str:
    return f"""\
Set custom column values on many leads of a list from a CSV file.

The CSV needs a platform id column (platformId, platform_id, "Platform ID", ...; or name it
with --id-column). Every other header is a column id (custom_...) or is mapped to one with
--map "CSV header=custom_...". An empty cell leaves that column alone; with --clear-empty it
clears the column instead. The delimiter (, ; tab |) is sniffed from the header unless given
with --delimiter; the file is read as UTF-8 (with or without a BOM) unless --encoding says
otherwise.

The whole file is checked before the first request: a file that cannot be read sends nothing.
A row that cannot be sent (no id, an id a spreadsheet turned into a number, a cell over
{_size(CLI_CELL_LIMIT)}, too many cells) fails alone.

A journal (FILE.journal by default) records every finished row: run the same command again
after a crash or Ctrl-C and it skips what was applied. --failures writes the rows that failed,
with their error, in the same format, so the file can be fed back in; it is written beside its
target and renamed into place at the end, so it may name the input itself.

Exit codes: {EXIT_OK} all applied, {EXIT_FAILED} some rows failed, {EXIT_USAGE} bad usage or \
bad input (nothing was sent),
{EXIT_INTERRUPTED} interrupted.
"""


def _size(limit: int) -> str:
    return f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"


def _windows(limits: tuple[tuple[int, float], ...]) -> str:
    return " ".join(f"{count}/{seconds:g}" for count, seconds in limits)


def build_parser() -> argparse.ArgumentParser:
    """The `inbox-async` parser; each command's name is in the `command` attribute."""
    parser = argparse.ArgumentParser(
        prog="inbox-async", description="Command line for the Inbox API (inboxapp.com)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    bulk = commands.add_parser(
        "bulk-update",
        help="set custom column values on many leads from a CSV file",
        description=_bulk_description(),
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
    bulk.add_argument(
        "--concurrency",
        type=int,
        default=CLI_CONCURRENCY,
        help=f"requests at once ({CLI_CONCURRENCY})",
    )
    bulk.add_argument(
        "--rate-limit",
        action="append",
        metavar="N/SECONDS",
        help="the team's limit as requests/seconds, repeatable (default "
        f"{_windows(DEFAULT_RATE_LIMITS)})",
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
