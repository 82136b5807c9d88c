"""Faults the fake server injects instead of a normal response, scripted or at random."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["Fault", "FaultInjector", "FaultKind"]

FaultKind = Literal["status", "drop", "delay", "html", "truncated", "empty"]


def _check_status(code: int) -> int:
    """Return ``code`` if it is a final HTTP status a fault may send, else raise."""
    # Informational statuses are not final responses, so a fault cannot be one.
    if isinstance(code, bool) or not isinstance(code, int) or not 200 <= code <= 599:
        raise ValueError(f"fault status must be an int in 200..599, got {code!r}")
    return code


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected misbehaviour; build it with the constructors, e.g. ``Fault.status(503)``."""

    kind: FaultKind
    http_status: int = 200
    body: bytes | None = None
    # A tuple of pairs rather than a mapping keeps the value hashable.
    headers: tuple[tuple[str, str], ...] = ()
    code_name: str | None = None
    retry_after: float | str | None = None
    seconds: float = 0.0

    @classmethod
    def status(
        cls,
        code: int,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        code_name: str | None = None,
        retry_after: float | str | None = None,
    ) -> Fault:
        """Respond with ``code``; the body defaults to the error envelope for that status.

        A 429 carries ``Retry-After: 1`` unless ``retry_after`` is given; ``retry_after=""``
        sends no ``Retry-After`` header at all, and one in ``headers`` takes precedence.
        """
        _check_status(code)
        if body is not None and not isinstance(body, bytes):
            raise TypeError("body must be bytes")
        if isinstance(retry_after, float | int) and (
            isinstance(retry_after, bool) or not math.isfinite(retry_after) or retry_after < 0
        ):
            raise ValueError(f"retry_after must be a finite number >= 0, got {retry_after!r}")
        if retry_after is None and code == 429:
            retry_after = "1"
        return cls(
            kind="status",
            http_status=code,
            body=body,
            headers=tuple((headers or {}).items()),
            code_name=code_name,
            retry_after=retry_after,
        )

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without sending any response."""
        return cls(kind="drop", http_status=0)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait ``seconds`` before handling the request normally."""
        if isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"delay must be a finite number of seconds >= 0, got {seconds!r}")
        return cls(kind="delay", seconds=float(seconds))

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """Respond with a proxy-style ``text/html`` error page."""
        return cls(kind="html", http_status=_check_status(status))

    @classmethod
    def truncated(cls) -> Fault:
        """Respond 200 ``application/json`` with the first half of the normal body."""
        return cls(kind="truncated", http_status=200)

    @classmethod
    def empty(cls, status: int) -> Fault:
        """Respond with ``status`` and an empty body."""
        return cls(kind="empty", http_status=_check_status(status))


class _Matcher:
    """Method and path filter shared by scripted and random faults."""

    __slots__ = ("method", "pattern")

    def __init__(self, method: str | None, path: str | re.Pattern[str] | None) -> None:
        self.method = method.upper() if method is not None else None
        self.pattern = re.compile(path) if isinstance(path, str) else path

    def matches(self, method: str, path: str) -> bool:
        """Tell whether a request with this method and raw path is targeted."""
        if self.method is not None and self.method != method:
            return False
        return self.pattern is None or self.pattern.search(path) is not None


class _Scripted:
    """A queued fault with the number of matching requests it still applies to."""

    __slots__ = ("fault", "matcher", "remaining")

    def __init__(self, fault: Fault, remaining: int, matcher: _Matcher) -> None:
        self.fault = fault
        self.remaining = remaining
        self.matcher = matcher


class FaultInjector:
    """Decides, per request, which fault (if any) replaces the normal response."""

    __slots__ = ("_random", "_rng", "_scripted", "_table")

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._scripted: list[_Scripted] = []
        self._random: _Matcher | None = None
        # Cumulative probabilities, so one draw per request picks at most one fault.
        self._table: list[tuple[float, Fault]] = []

    @property
    def active(self) -> bool:
        """Tell whether any fault is configured (lets the hot path skip ``pick``)."""
        return bool(self._scripted) or self._random is not None

    def add(
        self,
        fault: Fault,
        times: int,
        method: str | None,
        path: str | re.Pattern[str] | None,
    ) -> None:
        """Queue ``fault`` for the next ``times`` matching requests."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {fault!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an int >= 1, got {times!r}")
        self._scripted.append(_Scripted(fault, times, _Matcher(method, path)))

    def set_random(
        self,
        faults: Mapping[Fault, float],
        method: str | None,
        path: str | re.Pattern[str] | None,
    ) -> None:
        """Replace the random faults with ``faults`` (probability per matching request)."""
        table: list[tuple[float, Fault]] = []
        total = 0.0
        for fault, probability in faults.items():
            if not isinstance(fault, Fault):
                raise TypeError(f"expected a Fault, got {fault!r}")
            if not 0.0 <= probability <= 1.0:
                raise ValueError(f"probability must be in [0, 1], got {probability!r}")
            total += probability
            table.append((total, fault))
        # A small tolerance lets probabilities such as 0.1 * 10 add up to "1".
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities add up to {total}, more than 1")
        self._table = table
        self._random = _Matcher(method, path) if table else None

    def clear(self) -> None:
        """Forget every scripted and random fault."""
        self._scripted.clear()
        self._table = []
        self._random = None

    def pick(self, method: str, path: str) -> Fault | None:
        """Return the fault for this request: the first matching scripted one, else a draw."""
        for index, entry in enumerate(self._scripted):
            if entry.matcher.matches(method, path):
                entry.remaining -= 1
                if entry.remaining == 0:
                    del self._scripted[index]
                return entry.fault
        if self._random is not None and self._random.matches(method, path):
            draw = self._rng.random()
            for threshold, fault in self._table:
                if draw < threshold:
                    return fault
        return None
