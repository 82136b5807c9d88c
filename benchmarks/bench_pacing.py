"""Q5. Pacing: the limiter at 50 requests per second, as the server sees the requests arrive.

Measures, at the server, when each request arrives (the moment the API counts it), while
`client.leads.bulk_update` (concurrency 16) runs through a client made with
`rate_limits=[(50, 1.0)]`. The server is a separate process that records arrivals
(`benchmarks/_server.py`, the fake server with its request log on). From the arrivals:

- the achieved rate: requests arriving in the first N seconds (from the first arrival) ÷ N;
- the most requests arriving in any one-second window (every window that starts at an arrival);
- the 429s, and the requests that arrived while the client's 429 gate was shut (more than 50 ms
  and less than the 1 s Retry-After after a 429 was answered).

Three runs:

1. the server has no limit: the client's own pacing, for 60 s (8 s with --quick).
   Bars: the rate within 1% of 50/s, at most 1.05 x 50 in any window, zero 429s.
2. the server allows 45/s, a tenth less than the client: 429s that come from the quota, as when
   another process or token spends the team's budget. The client has to follow the server's
   X-RateLimit-* headers and its 429s. 30 s (5 s with --quick).
3. the server answers 1% of requests, at random, with 429 and Retry-After: 1: 429s that have
   nothing to do with our pace, which must close the gate for every caller at once.
   30 s (5 s with --quick).

Why a tighter server limit and random faults, both on the server process: the first is the
realistic cause of a 429 for a well-paced client (the quota is shared), the second tests the
gate alone; running the server out of process for both keeps the method of the other runs
(no server work on the client's clock, arrivals stamped by the server).
Runs 2 and 3 hold the client to the same window bar, and every item must end up applied.
"""

from __future__ import annotations

import bisect
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import (
    Options,
    Row,
    Server,
    Spread,
    at_most,
    fake_server,
    parse,
    pin_client,
    report,
    run_on,
)

from inbox_async import InboxClient

RATE = 50
WINDOW = 1.0
CONCURRENCY = 16
GATE_GRACE = 0.05  # requests already on the wire when the 429 came back may still arrive


@dataclass(frozen=True)
class Scenario:
    """One pacing run."""

    name: str
    seconds: float
    server_args: tuple[str, ...]
    target: float
    """The rate the client should reach: its own limit, or the server's when that is lower."""


@dataclass(frozen=True)
class Outcome:
    """What the server saw, and what the client reported."""

    rate: float
    accepted_rate: float
    max_window: int
    max_window_accepted: int
    status_429: int
    during_gate: int
    failed: int
    retries: int
    arrivals: int


def scenarios(quick: bool) -> list[Scenario]:
    """The three runs, shorter with --quick."""
    long, short = (8.0, 5.0) if quick else (60.0, 30.0)
    return [
        Scenario("server unlimited", long, (), RATE),
        Scenario("server allows 45/s", short, ("--rate-limit", "45/1"), 45),
        Scenario("1% random 429s", short, ("--random-429", "0.01"), RATE),
    ]


def updates(server: Server, count: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """A generator of `count` updates over the demo leads."""
    column = server.column_ids[0]
    for i in range(count):
        yield server.platform_id(i), {column: f"paced {i}"}


async def run_bulk(server: Server, count: int) -> tuple[int, int]:
    """bulk_update through a 50/s client; return (failed, retries)."""
    async with InboxClient(
        server.token, base_url=server.url, rate_limits=[(RATE, WINDOW)]
    ) as client:
        result = await client.leads.bulk_update(
            server.list_id, updates(server, count), concurrency=CONCURRENCY
        )
    return len(result.failed), result.retries


def most_in_window(times: list[float], window: float) -> int:
    """The most arrivals in any window [t, t + window) that starts at an arrival."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window) - i)
    return best


def analyse(arrivals: list[tuple[float, int]], seconds: float) -> dict[str, float]:
    """Rates, windows, 429s and requests sent through a shut gate, from the server's log."""
    arrivals.sort()
    times = [t for t, _ in arrivals]
    accepted = [t for t, status in arrivals if status == 200]
    start = times[0]
    end = start + seconds
    refused = [t for t, status in arrivals if status == 429]
    during_gate = sum(
        1 for t in times if any(r + GATE_GRACE < t < r + 1.0 for r in refused if r < t)
    )
    return {
        "rate": bisect.bisect_left(times, end) / seconds,
        "accepted_rate": bisect.bisect_left(accepted, end) / seconds,
        "max_window": most_in_window(times, WINDOW),
        "max_window_accepted": most_in_window(accepted, WINDOW),
        "status_429": len(refused),
        "during_gate": during_gate,
        "arrivals": len(times),
    }


def run(scenario: Scenario) -> Outcome:
    """Run one scenario against a recording server process."""
    count = int(RATE * (scenario.seconds + 1))
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "arrivals.json"
        with fake_server(
            script=("benchmarks/_server.py",),
            extra=("--dump", str(dump), *scenario.server_args),
        ) as server:
            failed, retries = run_on("asyncio", run_bulk(server, count))
        arrivals = [(float(t), int(s)) for t, s in json.loads(dump.read_text())]
    seen = analyse(arrivals, scenario.seconds)
    return Outcome(
        rate=seen["rate"],
        accepted_rate=seen["accepted_rate"],
        max_window=int(seen["max_window"]),
        max_window_accepted=int(seen["max_window_accepted"]),
        status_429=int(seen["status_429"]),
        during_gate=int(seen["during_gate"]),
        failed=failed,
        retries=retries,
        arrivals=int(seen["arrivals"]),
    )


def _one(value: float) -> Spread:
    return Spread(value, value, value, 1)


def main(options: Options) -> None:
    """Run the three scenarios and report them."""
    client_pinning = pin_client()
    rows: list[Row] = []
    details: list[str] = []
    limit = RATE * 1.05
    for scenario in scenarios(options.quick):
        seen = run(scenario)
        label = f"{scenario.name}, {scenario.seconds:.0f} s"
        details.append(f"{label}: {seen}")
        rate_ratio = (seen.rate if scenario.name == "server unlimited" else seen.accepted_rate) / (
            scenario.target
        )
        off = abs(rate_ratio - 1)
        what = "rate" if scenario.name == "server unlimited" else "accepted rate"
        rows.append(
            Row.of(
                "Q5",
                f"{label}: {what} ÷ {scenario.target:g}/s",
                _one(rate_ratio),
                "x",
                "within 1%" if scenario.name != "1% random 429s" else "context",
                (at_most(off, 0.01) if scenario.name != "1% random 429s" else ""),
            )
        )
        rows.append(
            Row.of(
                "Q5",
                f"{label}: most arrivals in any 1 s",
                _one(seen.max_window),
                "req",
                f"≤ {limit:g}",
                at_most(seen.max_window, limit),
            )
        )
        if scenario.name == "server unlimited":
            rows.append(
                Row.of(
                    "Q5",
                    f"{label}: 429s",
                    _one(seen.status_429),
                    "count",
                    "0",
                    at_most(seen.status_429, 0),
                )
            )
        else:
            rows.append(
                Row.of("Q5", f"{label}: 429s (retried)", _one(seen.status_429), "count", "context")
            )
            rows.append(
                Row.of(
                    "Q5",
                    f"{label}: requests sent through a shut 429 gate",
                    _one(seen.during_gate),
                    "count",
                    "0",
                    at_most(seen.during_gate, 0),
                )
            )
        rows.append(
            Row.of(
                "Q5",
                f"{label}: items not applied",
                _one(seen.failed),
                "count",
                "0",
                at_most(seen.failed, 0),
            )
        )
    report(
        "Q5 pacing at 50 requests per second",
        rows,
        options,
        details=details,
        client_pinning=client_pinning,
    )


if __name__ == "__main__":
    main(parse(__doc__))
