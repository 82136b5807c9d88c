"""The `inbox-async` command line: resumable bulk updates from CSV, and a self-contained demo.

Also run as `python -m inbox_async` or `python -m inbox_async.cli`. The package, in the order a
command goes through it (each module imports only the ones below it):

- `__init__`: `main`, which parses the options and runs the command on an event loop.
- `_parser`: the options and help texts, built from `inbox_async._constants`.
- `_bulk_update`: `bulk-update`: options checked, the file's first pass, the dry run, the
  resume command.
- `_demo`: `demo`: the bundled sample against a fake server in this process.
- `_job`: one job, shared by both: the bulk stream, Ctrl-C, the failures file, the summary.
- `_progress`: the rate limits' time estimate and the progress bar or line.
- `_csv`: CSV in and out: header checks, lazy rows, spreadsheet-safe failures files.
- `_exit`: the exit codes.

It uses the SDK's public names, plus the checks in `_validation` and `_ratelimit` and the
defaults in `_constants`, so that the command line and the library refuse the same input.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final

from ._bulk_update import bulk_update
from ._csv import CsvError
from ._demo import demo
from ._exit import EXIT_INTERRUPTED, EXIT_USAGE
from ._parser import build_parser

__all__ = ["main"]

_COMMANDS: Final[Mapping[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]]] = {
    "bulk-update": bulk_update,
    "demo": demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = _run(_COMMANDS[args.command](args))
    except CsvError as exc:
        print(f"inbox-async: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("inbox-async: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _run(coro: Coroutine[Any, Any, int]) -> int:
    # uvloop, when installed, takes 15-25% less CPU per request; it is optional.
    try:
        uvloop: Any = importlib.import_module("uvloop")
    except ImportError:
        return int(asyncio.run(coro))
    return int(uvloop.run(coro))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
