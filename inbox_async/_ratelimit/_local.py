"""Client-side rate limiting: every window at once, synced from the server, one shared 429 gate.

Inbox limits a whole team with several sliding windows enforced together (300/min, 10,000/h,
100,000/day) and counts a request when it *arrives*. The limiter therefore:

- keeps, per window, the slots in use. A slot is taken when a request is sent and expires one
  window after its response came back: the response is the latest moment the request can have
  arrived, so the server can never count more than the limit in any window, whatever the
  network's latency did to the spacing (no drift, no burst beyond what the windows allow);
- reads `X-RateLimit-Remaining` / `-Reset` from every response and never sends more than the
  server says remains, counting what is already in flight; once that budget is spent, callers
  wait for the reset, then one probe request refreshes it;
- closes one gate for every caller on a 429, until `Retry-After` (plus jitter) has passed;
- holds nothing back for longer than a day (or its longest window, if longer), whatever a
  header says, and while a hint holds requests back for more than a minute, lets one probe
  request through about once a minute: a 2xx answer to it reopens the gate and forgets the
  server's budget, for every caller;
- serves waiters first come, first served, from one timer, so thousands of waiting tasks cost
  one wake-up per granted slot rather than a stampede.

A wait longer than the caller's `max_wait` is not waited out: `RateLimitError` is raised at once
with `.retry_after` set, which is what a web handler with a deadline wants. The wait is judged
from the caller's place in the queue (the k-th waiter needs the k-th slot to free up), again
for those already waiting when a 429 or a spent budget makes their wait longer, and a waiter that
does reach its `max_wait` reports how much longer it would have had to wait.

Priorities and the reserve
--------------------------
Every caller is "interactive" (a person waits for it: the default) or "background" (bulk work).
A web app and a bulk job share one team quota; these rules keep the first responsive while the
second runs for days. `RedisRateLimiter` follows the same rules across processes.

1. Order. Interactive waiters are served before any background waiter, first come, first served
   within each priority. A background caller, waiting or not, never makes an interactive one
   wait: `try_acquire("interactive")` looks at interactive waiters only. A background caller
   waits while any interactive caller waits (it may not overtake one).
2. The window reserve. Background callers may fill a window of `limit` requests only up to
   `background_limit(limit) = max(1, floor(limit * (1 - reserve) + 1e-9))` slots in use, where
   the slots in use are everyone's (in flight, or answered less than one window ago): a
   background slot is granted only while in_use < background_limit. A window of 300 with
   reserve 0.1 lets background work take 270; interactive callers still use all 300. (The
   max(1, ...) keeps a window of fewer than 1/(1 - reserve) requests usable by background work.)
3. The server's reserve. The server's `X-RateLimit-Remaining` counts every tool of the team,
   our own requests included; the reserve is there for the team's *other* tools, whose usage no
   local window sees, and our own usage must not be counted twice. With the server's last
   `X-RateLimit-Limit` L:
   - When a local window has the limit L (the usual case: the default windows mirror the
     server's), each reading estimates the others' usage:
     others = max(0, (L - Remaining) - ours), ours being what that window counts (in flight,
     or answered less than one window ago) as the reading is read. A background slot is then
     granted only while ours_now + others < background_limit(L), ours_now counted by that
     window (rule 2 with the others added). `others` is replaced by each new reading and
     forgotten at the reading's `X-RateLimit-Reset` (or `probe_interval` after it was read,
     without a Reset). A bulk job alone thus keeps its whole share, while another tool's
     usage (a Remaining lower than ours explains) takes background work's room, not the
     reserve's.
   - When no local window has the limit L, with the server's budget B (the last Remaining less
     the requests sent since, as interactive calls count it), a background slot is granted only
     while B > L - background_limit(L). Such a reading stops holding background work back (it
     is stale) at its `X-RateLimit-Reset`, or, without a Reset, `probe_interval` after it was
     read, and never sooner than 1 s after the latest reading: one background request then
     goes, and its answer is the new reading.
   Without an `X-RateLimit-Limit` there is no server reserve.
4. Pacing. Background grants are spaced by `gap = seconds / background_limit(limit)` of the
   shortest local window, with a tolerance of half a gap: a grant at time t needs t >= next,
   and sets next = max(next, t - gap / 2) + gap. A bulk job thus sends at the steady rate that
   the short window allows it (4.5/s under 300/min), never two grants less than half a gap
   apart, at most k + 1 in any k gaps, and a timer that fires late (by up to half a gap) is
   caught up on the next grant instead of lost: the job keeps its full share.
   Why the shortest window: it is the one a burst empties, which is what made an interactive
   call wait a whole second behind a bulk job. Pacing at a longer window's rate would slow a
   job that fits the hour or the day for nothing; when a longer window does reach its
   background limit, its slots free as evenly as they were taken. Interactive callers are never
   paced; without local windows nothing is paced.
5. `reserve=0` turns rules 2 and 3 off (background_limit(limit) = limit); 1 and 4 still apply.
6. A cancelled waiter of either priority leaves its queue at once and the next one is served;
   a slot granted just as it gave up is handed back, with its pacing step.
7. While a long hold lasts, the one probe request goes to the first interactive waiter, or to
   the first background waiter when no interactive caller waits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from .._constants import (
    DEFAULT_GATE_JITTER,
    DEFAULT_RATE_LIMITS,
    DEFAULT_RESERVE,
    DEFAULT_TIMEOUT,
    PROBE_INTERVAL,
    RATE_LIMIT_HEADER,
    RATE_LIMIT_RECHECK,
    RATE_REMAINING_HEADER,
    RATE_RESET_HEADER,
)
from .._exceptions import RateLimitError
from .._headers import ResetReader, hold_cap, parse_count
from .._log import logger
from .._types import Priority
from ._base import (
    RateLimitSnapshot,
    ThrottleEvent,
    ThrottleReason,
    WindowState,
    background_limit,
    check_gate_jitter,
    check_limits,
    check_probe_interval,
    check_reserve,
    gate_hold,
    too_long,
)

# Every name but RateLimiter lives in _base: listed here until the modules that import them
# from this one (_client, _sync, bulk, cli) import them from the package instead.
__all__ = ["RateLimiter"]

# The limiter's clock, whatever the event loop: expiries, the gate and the budget's reset are
# all read from it, and timers are armed with a delay rather than a loop time. Reading it needs
# no loop lookup (asyncio.get_running_loop() costs a getpid() system call on Python 3.11).
_now: Final = time.monotonic
# Answers older than every window are dropped from the log this many at a time, at least.
_TRIM_BATCH: Final = 1024
# The headroom of a limiter without local windows: never runs out.
_NO_WINDOW: Final = sys.maxsize
# Waiters already queued are judged again when a hint holds them back at least this much longer
# than when they were last judged: each 429 of a burst moves the gate by its jitter only.
_RECHECK_STEP: Final = 1.0


class _ProbeTicket:
    """What `acquire` returns for a probe request, so that its answer can be told apart."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<rate-limit probe>"


_PROBE: Final = _ProbeTicket()


class _Waiter:
    """One caller waiting for a slot."""

    __slots__ = ("background", "deadline", "future", "max_wait", "queued", "timeout")

    def __init__(
        self,
        future: asyncio.Future[object],
        deadline: float,
        max_wait: float,
        timeout: float | None,
        background: bool,
    ) -> None:
        self.future = future
        self.deadline = deadline
        self.max_wait = max_wait
        self.timeout = timeout
        self.background = background
        self.queued = False
        """Whether it is counted in its queue (`RateLimiter._queued` or `_bg_queued`)."""


class _AnswerLog:
    """When each answered request came back, oldest first: one entry per request, all windows.

    Responses are handled in time order, so the log stays sorted. Each window counts the entries
    younger than its length from its own cursor; entries older than every window are dropped in
    batches. Plain doubles in an array: 8 bytes per request and no object per entry.
    """

    __slots__ = ("offset", "times")

    def __init__(self) -> None:
        self.times = array("d")
        self.offset = 0
        """Position (counted since the start) of `times[0]`."""

    def trim(self, keep_from: int) -> None:
        """Drop the entries before position `keep_from` once they are many."""
        dead = keep_from - self.offset
        if dead >= _TRIM_BATCH and 2 * dead >= len(self.times):
            del self.times[:dead]
            self.offset = keep_from


class _Window:
    """One sliding window: its slots in use are the requests in flight plus `answered()`."""

    __slots__ = ("bg_limit", "limit", "log", "seconds", "start")

    def __init__(self, limit: int, seconds: float, log: _AnswerLog, reserve: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self.log = log
        self.bg_limit = background_limit(limit, reserve)
        """Slots in use up to which background calls may fill it."""
        self.start = 0
        """Position in the log of the oldest answer still inside this window."""

    def purge(self, now: float) -> None:
        """Move past the answers that came back a whole window ago or earlier."""
        log = self.log
        times = log.times
        i = self.start - log.offset
        horizon = now - self.seconds
        while i < len(times) and times[i] <= horizon:
            i += 1
        self.start = i + log.offset

    def answered(self) -> int:
        """Answers inside the window (as of the last purge)."""
        return self.log.offset + len(self.log.times) - self.start

    def oldest_expiry(self) -> float:
        """When the oldest answer inside the window leaves it; the window must have one."""
        return self.log.times[self.start - self.log.offset] + self.seconds


class RateLimiter:
    """Paces requests under every window at once; share one between clients to share a budget.

    limiter = RateLimiter([(300, 60), (10_000, 3600), (100_000, 86_400)])
    async with InboxClient(limiter=limiter) as a, InboxClient(limiter=limiter) as b:
        ...
    """

    __slots__ = (
        "_bg_gap",
        "_bg_next",
        "_bg_queued",
        "_bg_waiters",
        "_budget",
        "_budget_seen",
        "_budget_until",
        "_gate_jitter",
        "_gate_until",
        "_headroom",
        "_in_flight",
        "_judged_hold",
        "_limit_text",
        "_log",
        "_max_hold",
        "_on_throttle",
        "_others",
        "_others_until",
        "_probe_at",
        "_probe_interval",
        "_probe_out_until",
        "_probe_waiter",
        "_queued",
        "_read_reset",
        "_rejudge",
        "_reserve",
        "_reset_text",
        "_same_size_window",
        "_server_limit",
        "_server_remaining",
        "_server_reset",
        "_srv_reserved",
        "_throttled_since",
        "_throttled_total",
        "_timer",
        "_timer_at",
        "_timer_loop",
        "_waiters",
        "_waiting",
        "_waiting_bg",
        "_windows",
    )

    def __init__(
        self,
        limits: Sequence[tuple[int, float]] | None = DEFAULT_RATE_LIMITS,
        *,
        on_throttle: Callable[[ThrottleEvent], None] | None = None,
        gate_jitter: float = DEFAULT_GATE_JITTER,
        probe_interval: float = PROBE_INTERVAL,
        reserve: float = DEFAULT_RESERVE,
    ) -> None:
        """`limits` are `(requests, seconds)` sliding windows; None keeps only the server sync.

        `reserve` is the fraction of every window, and of the server's Remaining, that
        background calls leave to interactive ones (see the module docstring); 0 turns it off.
        """
        self._reserve = check_reserve(reserve)
        self._log = _AnswerLog()
        self._windows = [
            _Window(count, seconds, self._log, self._reserve)
            for count, seconds in check_limits(limits)
        ]
        shortest = min(self._windows, key=lambda w: w.seconds, default=None)
        # Background grants are spaced by this much at least (rule 4); 0: not paced.
        self._bg_gap = 0.0 if shortest is None else shortest.seconds / shortest.bg_limit
        self._bg_next = -math.inf
        """When the next background grant may go, by the pacing."""
        if on_throttle is not None and not callable(on_throttle):
            raise TypeError("on_throttle must be callable")
        self._on_throttle = on_throttle
        self._gate_jitter = check_gate_jitter(gate_jitter)
        self._probe_interval = check_probe_interval(probe_interval)
        self._max_hold = hold_cap(w.seconds for w in self._windows)
        # Slots free in every window, at least: it only shrinks as slots are taken, and is
        # counted again from the windows when it reaches 0. While it is positive, a request
        # takes a slot without reading the clock or visiting the windows.
        self._headroom = _NO_WINDOW if not self._windows else 0
        self._waiters: deque[_Waiter] = deque()
        """Interactive waiters in arrival order."""
        self._queued = 0
        """Waiters in `_waiters` still waiting (finished ones leave it lazily)."""
        self._bg_waiters: deque[_Waiter] = deque()
        """Background waiters in arrival order, served once no interactive caller waits."""
        self._bg_queued = 0
        """Waiters in `_bg_waiters` still waiting."""
        self._probe_waiter: _Waiter | None = None
        """A caller whose only chance within its max_wait is the next probe."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = 0
        self._gate_until = 0.0
        self._budget: int | None = None
        self._budget_until = 0.0
        self._budget_seen = 0.0
        """When the server's Remaining was last read (or found stale, for background work)."""
        self._srv_reserved = 0
        """Of the server's Remaining, what background work leaves (0: no server reserve)."""
        self._others = 0
        """The team's other tools' usage in the window of the server's size (rule 3)."""
        self._others_until = 0.0
        """When `_others` is forgotten: the last reading's Reset."""
        self._probe_at = math.inf
        """When the next probe may go, while a long hold lasts (inf: none due)."""
        self._probe_out_until = 0.0
        """While a probe is out: when its lease ends, should its answer never come back."""
        self._judged_hold = 0.0
        self._rejudge = False
        self._server_limit: int | None = None
        self._server_remaining: int | None = None
        self._server_reset: float | None = None
        # The Limit and Reset headers rarely change between responses: they are parsed again,
        # and the local window of the server's size looked up again, only when they do.
        self._limit_text: str | None = None
        self._reset_text: str | None = None
        self._same_size_window: _Window | None = None
        self._read_reset = ResetReader(self._max_hold, "rate limit")
        self._waiting = 0
        self._waiting_bg = 0
        self._throttled_since = 0.0
        self._throttled_total = 0.0

    @property
    def limits(self) -> tuple[tuple[int, float], ...]:
        """The local windows as `(requests, seconds)` pairs."""
        return tuple((w.limit, w.seconds) for w in self._windows)

    @property
    def reserve(self) -> float:
        """The fraction of every window that background calls leave to interactive ones."""
        return self._reserve

    def __repr__(self) -> str:
        # Works on a half-built limiter too: tracebacks with locals render the constructor's.
        if not hasattr(self, "_windows"):
            return "RateLimiter(<not constructed>)"
        return f"RateLimiter({list(self.limits)!r})"

    # -- the calls the transport makes for each attempt ---------------------------------------

    async def acquire(
        self, *, max_wait: float, timeout: float | None = None, priority: Priority = "interactive"
    ) -> object:
        """Wait for a slot under every window, the server's budget and the gate.

        Returns the ticket to hand back to `release`: None, or a probe's ticket.
        """
        if self.try_acquire(priority):
            return None
        return await self._wait(
            asyncio.get_running_loop(), _now(), max_wait, timeout, priority != "interactive"
        )

    async def release(
        self,
        ticket: object = None,
        *,
        sent: bool,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Return the attempt's slot; read the server's rate-limit headers and 429s."""
        self.release_nowait(ticket, sent=sent, status=status, headers=headers)

    # -- the same without a coroutine, for the hot path --------------------------------------

    def try_acquire(self, priority: Priority = "interactive") -> bool:
        """Take a slot if one is free now, without waiting; False when the caller must wait.

        `acquire` starts with this. The transport calls it directly, so the common case
        (a slot is free) costs no coroutine. A probe is never granted here: it needs the ticket
        that only `acquire` returns.
        """
        if self._waiters:
            return False  # first come, first served: queue behind those already waiting
        if priority != "interactive":
            return self._try_background()
        budget = self._budget
        if self._headroom > 0 and not self._gate_until and (budget is None or budget > 0):
            self._take()
            return True
        now = _now()
        ready, _ = self._ready_at(now)
        if ready is not None and ready <= now:
            self._take()
            return True
        return False

    def _try_background(self) -> bool:
        """`try_acquire` for a background caller: behind every waiter, within the reserve."""
        if self._bg_waiters:
            return False
        now = _now()
        ready, _ = self._ready_at(now)
        if ready is not None:
            ready, _ = self._bg_ready_at(now, ready, "window")
        if ready is not None and ready <= now:
            self._take_background(now)
            return True
        return False

    def release_nowait(
        self,
        ticket: object = None,
        *,
        sent: bool,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`release` without a coroutine: the local limiter never has to wait to release."""
        now = _now()
        if ticket is not None:
            self._probe_answered(now, ticket, sent, status)
        if headers is not None:
            self._observe(now, status, headers)
        if sent:
            self._in_flight -= 1
            if self._windows:
                self._log.times.append(now)
        else:
            self._untake()  # it never left: nothing for the windows to count
        if self._waiters or self._bg_waiters or self._probe_waiter is not None:
            self._dispatch(asyncio.get_running_loop())

    def snapshot(self) -> RateLimitSnapshot:
        """The state as data, for dashboards and logs."""
        loop_now = _now()
        self._purge(loop_now)
        gate = max(0.0, self._gate_until - loop_now)
        return RateLimitSnapshot(
            windows=tuple(
                WindowState(w.limit, w.seconds, self._in_flight + w.answered())
                for w in self._windows
            ),
            server_limit=self._server_limit,
            server_remaining=self._server_remaining,
            server_reset=self._server_reset,
            gate_closed=gate > 0,
            gate_reopens_in=gate,
            in_flight=self._in_flight,
            waiting=self._waiting,
            throttled_seconds=self._throttled_total
            + (loop_now - self._throttled_since if self._waiting else 0.0),
            reserve=self._reserve,
            waiting_interactive=self._waiting - self._waiting_bg,
            waiting_background=self._waiting_bg,
        )

    # -- internals ----------------------------------------------------------------------------

    def _purge(self, now: float) -> None:
        """Bring every window up to `now`; drop the answers no window counts any more."""
        windows = self._windows
        if windows:
            for window in windows:
                window.purge(now)
            self._log.trim(min(window.start for window in windows))

    def _ready_at(self, now: float) -> tuple[float | None, ThrottleReason]:
        """The earliest time a request may go; None when only a response can tell."""
        ready = now
        reason: ThrottleReason = "window"
        if self._gate_until > now:
            ready, reason = self._gate_until, "gate"
        else:
            self._gate_until = 0.0  # open: try_acquire's fast path need not read the clock
        headroom = _NO_WINDOW
        in_flight = self._in_flight
        self._purge(now)
        for window in self._windows:
            answered = window.answered()
            free = window.limit - in_flight - answered
            if free <= 0:
                if not answered:
                    self._headroom = 0
                    return None, "window"
                # The oldest expiry frees exactly the slot this request needs.
                expiry = window.oldest_expiry()
                if expiry > ready:
                    ready, reason = expiry, "window"
            headroom = min(headroom, free)
        self._headroom = max(0, headroom)
        budget = self._budget
        if budget is not None and budget <= 0:
            if now >= self._budget_until:
                # The reset has passed: let one request through to learn the new budget.
                self._budget = 1
                self._budget_until = now + RATE_LIMIT_RECHECK
            elif self._budget_until > ready:
                ready, reason = self._budget_until, "server"
        if self._probe_at != math.inf and self._hold_end(now) <= now:
            self._probe_at = math.inf  # the hold is over: the next one starts its own minute
        return ready, reason

    def _bg_ready_at(
        self, now: float, ready: float, reason: ThrottleReason
    ) -> tuple[float | None, ThrottleReason]:
        """`_ready_at` made later for a background caller: the reserve, the pacing.

        `ready` and `reason` are `_ready_at`'s answer (not None), whose purge this relies on.
        """
        if self._bg_next > ready:
            ready, reason = self._bg_next, "window"
        in_flight = self._in_flight
        for window in self._windows:
            answered = window.answered()
            over = in_flight + answered - window.bg_limit
            if over >= 0:
                if over >= answered:
                    return None, "window"  # only requests in flight can free it: a response
                # The (over + 1)-th oldest answer's expiry brings it below its background limit.
                expiry = window.log.times[window.start - window.log.offset + over] + window.seconds
                if expiry > ready:
                    ready, reason = expiry, "window"
        same = self._same_size_window
        if same is not None:
            others = self._others
            if others:
                if now >= self._others_until:
                    self._others = 0
                else:
                    # Rule 3: the others' usage leaves background work that much less room.
                    answered = same.answered()
                    over = in_flight + answered + others - same.bg_limit
                    if over >= 0:
                        at = self._others_until  # forgotten then
                        if over < answered:
                            expiry = same.log.times[same.start - same.log.offset + over]
                            at = min(at, expiry + same.seconds)
                        if at > ready:
                            ready, reason = at, "server"
            return ready, reason
        budget = self._budget
        reserved = self._srv_reserved
        if reserved and budget is not None and budget <= reserved:
            stale = self._stale_at(now)
            if now >= stale:
                # The reading has aged out: one background request goes to read it again.
                self._budget = reserved + 1
                self._budget_seen = now
            elif stale > ready:
                ready, reason = stale, "server"
        return ready, reason

    def _stale_at(self, now: float) -> float:
        """When the server's last Remaining stops holding background work back (rule 3)."""
        reset = self._server_reset
        if reset is None:
            at = self._budget_seen + self._probe_interval
        else:
            at = now + min(self._max_hold, max(0.0, reset - time.time()))
        return max(at, self._budget_seen + RATE_LIMIT_RECHECK)

    def _take(self) -> None:
        self._in_flight += 1
        self._headroom -= 1
        if self._budget is not None:
            self._budget -= 1

    def _take_background(self, now: float) -> None:
        self._take()
        gap = self._bg_gap
        if gap:
            self._bg_next = max(self._bg_next, now - 0.5 * gap) + gap

    def _untake(self) -> None:
        """Undo `_take` for a slot that was never used."""
        self._in_flight -= 1
        self._headroom += 1
        if self._budget is not None:
            self._budget += 1

    # -- how long a caller has to wait --------------------------------------------------------

    def _hold_end(self, now: float) -> float:
        """When the gate and the server's budget both let requests go again (<= now: they do)."""
        hold = self._gate_until
        budget = self._budget
        if budget is not None and budget <= 0 and self._budget_until > hold:
            hold = self._budget_until
        return hold if hold > now else 0.0

    def _eta(
        self, now: float, position: int, *, holds: bool = True, background: bool = False
    ) -> tuple[float, ThrottleReason]:
        """The earliest the waiter `position` places from the front can get a slot.

        In a full window the answered requests free their slots first, oldest first, one window
        after their answers. The requests in flight come next: they may yet be handed back
        unsent, so no wait is claimed for them. A slot taken by a waiter ahead frees a window
        after it was taken at the soonest, so `limit` slots serve each `limit` waiters a window
        apart. The gate and the server's budget hold everyone. A background waiter (whose
        `position` counts the interactive waiters too) sees each window's background limit,
        the server's reserve and its place in the pacing.
        """
        eta = now
        reason: ThrottleReason = "window"
        if holds and self._gate_until > eta:
            eta, reason = self._gate_until, "gate"
        budget = self._budget if holds else None
        if budget is not None:
            if budget <= 0:
                if self._budget_until > eta:
                    eta, reason = self._budget_until, "server"
            elif position >= budget and self._server_reset is not None:
                # The server lets `budget` more through before its window resets.
                wait = min(self._max_hold, max(0.0, self._server_reset - time.time()))
                if now + wait > eta:
                    eta, reason = now + wait, "server"
        same = self._same_size_window
        if background:
            reserved = self._srv_reserved
            if (
                holds
                and reserved
                and same is None
                and budget is not None
                and position >= budget - reserved
            ):
                stale = self._stale_at(now)
                if stale > eta:
                    eta, reason = stale, "server"
            if self._bg_gap:
                paced = max(now, self._bg_next) + position * self._bg_gap
                if paced > eta:
                    eta, reason = paced, "window"
        if self._windows:
            self._purge(now)
            others = self._others if background and holds and now < self._others_until else 0
            for window in self._windows:
                limit = window.bg_limit if background else window.limit
                if others and window is same:
                    # The others' usage takes room too, until it is forgotten (rule 3).
                    at = self._others_until
                    if limit > others:
                        at = min(at, self._window_eta(window, now, position, limit - others))
                    if at > eta:
                        eta, reason = at, "server"
                at = self._window_eta(window, now, position, limit)
                if at > eta:
                    eta, reason = at, "window"
        return eta, reason

    def _window_eta(self, window: _Window, now: float, position: int, limit: int) -> float:
        """When `window`, filled up to `limit`, has a slot for the waiter `position` places on."""
        in_flight = self._in_flight
        answered = window.answered()
        index = position - (limit - in_flight - answered)
        if index < 0:
            return now  # a slot is free for it in this window
        held = in_flight + answered
        rounds = 0
        if index >= held:
            rounds = (index - held) // limit + 1
            index -= rounds * limit
        if index < 0:
            at = now
        elif index < answered:
            at = self._log.times[window.start - self._log.offset + index] + window.seconds
        else:
            at = now  # a request in flight: it may come back unsent
        return at + rounds * window.seconds

    def _probe_eta(self, now: float) -> float | None:
        """When the next probe could go, if the hold will still be long then; None if not."""
        hold = self._hold_end(now)
        if not hold:
            return None
        at = max(now, self._probe_at)
        if self._probe_out_until > now:
            # One probe at a time: the next goes a minute after this one's answer (which may
            # come at any moment), or once its lease ends if its answer never comes back.
            at = max(at, min(now + self._probe_interval, self._probe_out_until))
        if self._windows:
            at = max(at, self._eta(now, 0, holds=False)[0])
        return at if hold - at > self._probe_interval else None

    def _probe_lease(self, timeout: float | None) -> float:
        """How long a probe counts as in flight should its answer never be handed back."""
        return self._probe_interval + (DEFAULT_TIMEOUT if timeout is None else timeout)

    # -- waiting ------------------------------------------------------------------------------

    async def _wait(
        self,
        loop: asyncio.AbstractEventLoop,
        now: float,
        max_wait: float,
        timeout: float | None,
        background: bool,
    ) -> object:
        position = self._queued + self._bg_queued if background else self._queued
        eta, reason = self._eta(now, position, background=background)
        waiter = _Waiter(loop.create_future(), now + max_wait, max_wait, timeout, background)
        if eta - now > max_wait:
            # Only the next probe could let it through in time, and only one caller can count
            # on that: the others are told the wait they can already be told.
            probe = self._probe_eta(now)
            if self._probe_waiter is not None or probe is None or probe - now > max_wait:
                raise self._too_long(eta - now, max_wait, reason)
            self._probe_waiter = waiter
        elif background:
            self._bg_waiters.append(waiter)
            waiter.queued = True
            self._bg_queued += 1
        else:
            self._waiters.append(waiter)
            waiter.queued = True
            self._queued += 1
        self._waiting += 1
        if background:
            self._waiting_bg += 1
        if self._waiting == 1:
            self._throttled_since = now
            self._throttled(reason, eta - now)
        deadline = loop.call_later(max_wait, self._expire, waiter)
        self._dispatch(loop)
        future = waiter.future
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # The slot was granted just as the caller gave up: hand it back unused.
                if future.result() is _PROBE:
                    self._probe_out_until = 0.0  # still due: the next caller probes
                elif background and self._bg_gap:
                    self._bg_next -= self._bg_gap  # its step of the pacing, too
                self._untake()
            else:
                self._leave(waiter)
            # Its place goes to the next waiter now, not at the next timer.
            self._dispatch(loop)
            raise
        finally:
            deadline.cancel()
            self._waiting -= 1
            if background:
                self._waiting_bg -= 1
            if self._waiting == 0:
                self._throttled_total += _now() - self._throttled_since

    def _too_long(self, wait: float, max_wait: float, reason: ThrottleReason) -> RateLimitError:
        # Beyond the longest hold every window has slid and every hint has lapsed: a wait
        # reckoned further than that (many rounds of a window) is not told as such.
        return too_long(wait, max_wait, reason, cap=self._max_hold)

    def _leave(self, waiter: _Waiter) -> None:
        """Take a waiter out of the count of those still waiting (its entry goes lazily)."""
        if waiter.queued:
            waiter.queued = False
            if waiter.background:
                self._bg_queued -= 1
            else:
                self._queued -= 1
        if waiter is self._probe_waiter:
            self._probe_waiter = None

    def _settle(self, waiter: _Waiter, ticket: object, error: RateLimitError | None) -> None:
        self._leave(waiter)
        if error is None:
            waiter.future.set_result(ticket)
        else:
            waiter.future.set_exception(error)

    def _grant_probe(self, now: float, waiter: _Waiter) -> None:
        self._take()
        self._probe_out_until = now + self._probe_lease(waiter.timeout)
        self._settle(waiter, _PROBE, None)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Grant slots to waiters, interactive first, each in arrival order; arm the timer."""
        waiters = self._waiters
        bg_waiters = self._bg_waiters
        now = _now()
        if self._rejudge:
            self._rejudge = False
            self._judge(now)
        while True:
            while waiters and waiters[0].future.done():
                waiters.popleft()
            while bg_waiters and bg_waiters[0].future.done():
                bg_waiters.popleft()
            probe_waiter = self._probe_waiter
            if probe_waiter is not None and probe_waiter.future.done():
                self._probe_waiter = probe_waiter = None
            if not waiters and not bg_waiters and probe_waiter is None:
                return
            # A caller waiting for the probe alone goes with its own priority's queue.
            interactive_probe = bg_probe = None
            if probe_waiter is not None:
                if probe_waiter.background:
                    bg_probe = probe_waiter
                else:
                    interactive_probe = probe_waiter
            ready, reason = self._ready_at(now)
            wake = math.inf
            if waiters or interactive_probe is not None:
                if ready is not None and ready <= now:
                    waiter = waiters.popleft() if waiters else interactive_probe
                    assert waiter is not None
                    self._take()
                    self._settle(waiter, None, None)
                    continue
                probe = self._probe_eta(now)
                if probe is not None and probe <= now:
                    # The caller that can count on nothing else goes first.
                    if interactive_probe is not None:
                        waiter = interactive_probe
                    else:
                        waiter = waiters.popleft()
                    self._grant_probe(now, waiter)
                    continue
                if ready is not None:
                    wake = ready
                if probe is not None:
                    wake = min(wake, probe)
                if waiters:
                    # Background callers wait while an interactive one does (rule 1).
                    if wake != math.inf:
                        self._arm(loop, wake)
                    return
            if bg_waiters or bg_probe is not None:
                bg_ready: float | None = None
                if ready is not None:
                    bg_ready, _ = self._bg_ready_at(now, ready, reason)
                if bg_ready is not None and bg_ready <= now:
                    waiter = bg_waiters.popleft() if bg_waiters else bg_probe
                    assert waiter is not None
                    self._take_background(now)
                    self._settle(waiter, None, None)
                    continue
                if interactive_probe is None:
                    probe = self._probe_eta(now)
                    if probe is not None and probe <= now:
                        waiter = bg_probe if bg_probe is not None else bg_waiters.popleft()
                        self._grant_probe(now, waiter)
                        continue
                    if probe is not None:
                        wake = min(wake, probe)
                if bg_ready is not None:
                    wake = min(wake, bg_ready)
            if wake != math.inf:
                self._arm(loop, wake)
            return  # else a response (release) will call again

    def _judge(self, now: float) -> None:
        """Fail at once the waiters that a longer hold makes wait beyond their max_wait."""
        position = self._judge_queue(self._waiters, now, 0, False)
        self._judge_queue(self._bg_waiters, now, position, True)

    def _judge_queue(
        self, queue: deque[_Waiter], now: float, position: int, background: bool
    ) -> int:
        survivors: deque[_Waiter] = deque()
        for waiter in queue:
            if waiter.future.done():
                continue
            eta, reason = self._eta(now, position, background=background)
            if eta > waiter.deadline:
                if self._probe_waiter is None:
                    probe = self._probe_eta(now)
                    if probe is not None and probe <= waiter.deadline:
                        self._leave(waiter)
                        self._probe_waiter = waiter
                        continue
                self._settle(waiter, None, self._too_long(eta - now, waiter.max_wait, reason))
                continue
            survivors.append(waiter)
            position += 1
        queue.clear()
        queue.extend(survivors)
        return position

    def _expire(self, waiter: _Waiter) -> None:
        if waiter.future.done():
            return
        now = _now()
        background = waiter.background
        if waiter is self._probe_waiter:
            eta, reason = self._eta(now, 0, background=background)
            probe = self._probe_eta(now)
            if probe is not None and probe < eta:
                eta = probe
        else:
            waiters = self._bg_waiters if background else self._waiters
            while waiters and waiters[0].future.done():
                waiters.popleft()
            position = self._queued if background else 0
            for other in waiters:
                if other is waiter:
                    break
                if not other.future.done():
                    position += 1
            eta, reason = self._eta(now, position, background=background)
        self._settle(waiter, None, self._too_long(eta - now, waiter.max_wait, reason))

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            # A timer left on another loop (a limiter kept across asyncio.run calls) never
            # fires here: replace it rather than wait on it.
            if self._timer_at <= when and self._timer_loop is loop:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer_loop = loop
        self._timer = loop.call_later(max(0.0, when - _now()), self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._dispatch(loop)

    # -- what the server said -----------------------------------------------------------------

    def _probe_answered(self, now: float, ticket: object, sent: bool, status: int | None) -> None:
        if ticket is not _PROBE:
            return
        self._probe_out_until = 0.0
        if not sent:
            return  # it never left: still due, the next caller probes
        if status is not None and 200 <= status < 300:
            # The server answers normally: whatever held requests back no longer does.
            self._gate_until = 0.0
            self._budget = None
            self._budget_until = 0.0
            self._probe_at = math.inf
            self._judged_hold = 0.0
        else:
            self._probe_at = now + self._probe_interval

    def _held(self, now: float, was_held: float) -> None:
        """A hint now holds requests back: schedule the probe, judge the waiters again."""
        hold = self._hold_end(now)
        if not was_held or self._probe_at == math.inf:
            self._probe_at = now + self._probe_interval
            self._judged_hold = 0.0
        if hold > self._judged_hold + _RECHECK_STEP:
            self._judged_hold = hold
            self._rejudge = True

    def _observe(self, now: float, status: int | None, headers: Mapping[str, str]) -> None:
        remaining = parse_count(headers.get(RATE_REMAINING_HEADER))
        if remaining is not None:
            self._server_remaining = remaining
            self._budget_seen = now
            limit_text = headers.get(RATE_LIMIT_HEADER)
            if limit_text != self._limit_text:
                self._limit_text = limit_text
                self._server_limit = limit = parse_count(limit_text)
                self._same_size_window = next((w for w in self._windows if w.limit == limit), None)
                self._srv_reserved = limit - background_limit(limit, self._reserve) if limit else 0
            reset_text = headers.get(RATE_RESET_HEADER)
            if reset_text != self._reset_text:
                self._reset_text = reset_text
                self._server_reset = self._read_reset(reset_text)
            reset = self._server_reset
            window = self._same_size_window
            others = 0
            if window is not None:
                window.purge(now)
                # What the server counts beyond what our own window of its size does: the
                # team's other tools (rule 3). Bounded: both terms are capped counts.
                others = window.limit - remaining - self._in_flight - window.answered()
                if others > 0 and self._reserve:
                    self._others = others
                    self._others_until = now + (
                        self._probe_interval
                        if reset is None
                        else min(self._max_hold, max(0.0, reset - time.time()))
                    )
                else:
                    self._others = 0
            if window is not None and others <= 0:
                # Our own window of the same size already counts at least what the server
                # does, and frees slots to the millisecond rather than at a whole-second reset.
                self._budget = None
                if status == 429:
                    self._observe_429(now, status, headers)
                return
            # Requests still in flight (other than this one) may be counted after this answer.
            budget = max(0, remaining - (self._in_flight - 1))
            if budget <= 0:
                was_held = self._hold_end(now)
                wait = RATE_LIMIT_RECHECK if reset is None else max(0.0, reset - time.time())
                self._budget = budget
                self._budget_until = now + min(wait, self._max_hold)
                self._held(now, was_held)
            else:
                self._budget = budget
        if status == 429:
            self._observe_429(now, status, headers)

    def _observe_429(self, now: float, status: int | None, headers: Mapping[str, str]) -> None:
        if status == 429:
            retry_after, hold = gate_hold(headers, self._gate_jitter, self._max_hold)
            until = now + hold
            if until > self._gate_until:
                was_held = self._hold_end(now)
                self._gate_until = until
                self._held(now, was_held)
                self._throttled("gate", retry_after)

    def _throttled(self, reason: ThrottleReason, wait: float | None) -> None:
        waiting = self._queued + self._bg_queued
        if logger.isEnabledFor(logging.INFO):
            shown = "until a response frees a slot" if wait is None else f"{wait:.2f} s"
            logger.info("rate limit: callers wait %s for the %s", shown, reason)
        if self._on_throttle is not None:
            self._on_throttle(ThrottleEvent(reason, wait, max(1, waiting)))
