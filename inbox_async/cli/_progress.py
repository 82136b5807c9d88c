"""How long a job takes: the rate limits' estimate, and the progress display while it runs."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import BulkProgress
from .._constants import CLI_PROGRESS_INTERVAL
from .._ratelimit import background_limit

__all__ = ["Progress", "duration", "estimate"]


def estimate(
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


def duration(seconds: float) -> str:
    """`seconds` as a person reads it: "2 h 5 min", "3 min 20 s", "7 s"."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


class Progress:
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
                    TextColumn,
                    TimeRemainingColumn,
                )
                from rich.progress import Progress as Bar

                self._bar = Bar(
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
            floor = estimate(max(0, remaining), self._limits, self._reserve, paced=self._paced)
            return f"eta {duration(floor)} or more" if floor > 0 else "eta ?"
        return f"eta {duration(eta)}"

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
        if now - self._last_line >= CLI_PROGRESS_INTERVAL:
            self._last_line = now
            print(f"  {progress.done}/{total} done ({status})", file=sys.stderr)

    def close(self) -> None:
        """Stop the bar."""
        if self._bar is not None:
            self._bar.stop()
