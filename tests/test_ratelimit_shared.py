"""What both rate limiters share (`_ratelimit/_base.py`, `_headers.py`); the package layout."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from multidict import CIMultiDict

from inbox_async import RateLimiter, RateLimitError, RedisRateLimiter
from inbox_async._constants import (
    DEFAULT_GATE_JITTER,
    GATE_JITTER_FLOOR,
    GATE_JITTER_FRACTION,
    RATE_LIMIT_RECHECK,
)
from inbox_async._exceptions import CLIENT_RATE_LIMITED
from inbox_async._headers import gate_jitter, read_retry_after
from inbox_async._ratelimit import gate_hold, too_long

PACKAGE = Path(__file__).resolve().parent.parent / "inbox_async"


@pytest.mark.parametrize("bad", [math.nan, -1.0, -math.inf, "1", True, None])
def test_both_limiters_refuse_a_bad_gate_jitter_before_connecting(bad: object) -> None:
    # NaN used to be taken by both (a 429 then never closed the gate: no time is later than
    # NaN), and RedisRateLimiter took a negative jitter too (gates shorter than Retry-After).
    with pytest.raises(ValueError, match="gate_jitter"):
        RateLimiter(gate_jitter=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gate_jitter"):
        # Port 1: nothing listens there, and nothing may be tried before the check.
        RedisRateLimiter("redis://127.0.0.1:1/0", gate_jitter=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("good", [0, 0.0, 2.5, math.inf])
def test_a_gate_jitter_of_zero_or_more_is_taken(good: float) -> None:
    assert RateLimiter(gate_jitter=good) is not None


def test_a_429_without_retry_after_closes_the_gate_for_the_recheck() -> None:
    wait, hold = gate_hold(CIMultiDict(), 0.0, 86_400.0)
    assert (wait, hold) == (RATE_LIMIT_RECHECK, RATE_LIMIT_RECHECK)
    wait, hold = gate_hold(CIMultiDict({"Retry-After": "soon"}), 0.0, 86_400.0)
    assert (wait, hold) == (RATE_LIMIT_RECHECK, RATE_LIMIT_RECHECK)


@pytest.mark.parametrize("retry_after", [0.0, 0.5, 3.0, 30.0, 600.0])
def test_the_gate_holds_retry_after_plus_a_bounded_jitter(retry_after: float) -> None:
    headers = CIMultiDict({"retry-after": f"{retry_after:g}"})  # any spelling of the name
    most = min(DEFAULT_GATE_JITTER, GATE_JITTER_FRACTION * retry_after + GATE_JITTER_FLOOR)
    holds = set()
    for _ in range(200):
        wait, hold = gate_hold(headers, DEFAULT_GATE_JITTER, 86_400.0)
        assert wait == retry_after
        assert retry_after <= hold <= retry_after + most
        holds.add(hold)
    assert len(holds) > 100  # jittered, not one value


def test_the_gate_never_holds_longer_than_the_cap() -> None:
    for text in ("1e12", "inf", "Fri, 31 Dec 9999 23:59:59 GMT"):
        wait, hold = gate_hold(CIMultiDict({"Retry-After": text}), 5.0, 100.0)
        assert (wait, hold) == (100.0, 100.0), text
    wait, hold = gate_hold(CIMultiDict({"Retry-After": "99.99"}), 5.0, 100.0)
    assert wait == 99.99
    assert 99.99 <= hold <= 100.0


def test_the_retry_stage_jitter_and_the_gate_jitter_are_one_formula() -> None:
    for wait in (0.0, 1.0, 4.0, 100.0):
        most = min(1.0, GATE_JITTER_FRACTION * wait + GATE_JITTER_FLOOR)
        assert all(0 <= gate_jitter(wait) <= most for _ in range(100))
    assert all(gate_jitter(100.0, 0.0) == 0.0 for _ in range(10))


def test_read_retry_after_is_capped_and_case_insensitive() -> None:
    assert read_retry_after(CIMultiDict({"RETRY-AFTER": "7"})) == 7.0
    assert read_retry_after(CIMultiDict({"Retry-After": "1e30"}), cap=50.0) == 50.0
    assert read_retry_after(CIMultiDict({"Retry-After": "-3"})) is None
    assert read_retry_after(CIMultiDict()) is None


def test_the_wait_too_long_error() -> None:
    error = too_long(12.34, 5.0, "gate")
    assert isinstance(error, RateLimitError)
    assert "waiting for a 429 would take 12.3 s, more than max_wait=5 s" in str(error)
    assert (error.status_code, error.code, error.retry_after) == (429, CLIENT_RATE_LIMITED, 12.34)
    assert "a local rate-limit window" in str(too_long(9.0, 1.0, "window"))
    assert "the server's budget" in str(too_long(9.0, 1.0, "server"))
    assert "the shared rate limit" in str(too_long(9.0, 1.0))
    # Bounded: never negative, never beyond the cap; an unbounded infinity is no retry_after.
    assert too_long(-2.0, 1.0).retry_after == 0.0
    assert too_long(1e9, 1.0, cap=86_400.0).retry_after == 86_400.0
    assert too_long(math.inf, 1.0).retry_after is None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports, TYPE_CHECKING and function-level imports included."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = node.module or ""
            if node.level:
                target = f"{base}.{target}" if target else base
            found.add(target)
            # `from . import _local` imports a module, not a name.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {module for module in found if module in modules and module != name}


def test_no_import_cycle_reaches_the_rate_limit_modules() -> None:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    base = "inbox_async._ratelimit._base"
    assert not graph[base] & {"inbox_async._ratelimit._local", "inbox_async._ratelimit._redis"}
    assert "inbox_async._ratelimit._redis" not in graph["inbox_async._ratelimit._local"]
    assert "inbox_async._ratelimit._local" not in graph["inbox_async._ratelimit._redis"]
    starts = [name for name in graph if name.startswith("inbox_async._ratelimit")]
    starts += ["inbox_async._headers", "inbox_async._constants"]
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        path.append(name)
        for other in sorted(graph[name]):
            visit(other)
        path.pop()
        done.add(name)

    for start in starts:
        visit(start)
