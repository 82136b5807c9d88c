"""Q9. Priorities: an interactive caller beside a bulk job on one team quota, local and via Redis.

The measurement of issue 14, side by side in one run. The fake server (in this process, pinned
to the server core) enforces 20 requests per second and answers after 20 ms; every client is
a process of its own (pinned to the client core) with the same 20/s window. An interactive
`leads.update` starts every 200 ms for 15 s (4 s with --quick), each in its own task, as a web
app's handlers would; a bulk job (`bulk_update`, concurrency 16) runs from a 2 s warm-up (1 s)
before that until the end. Interactive calls go to leads of their own, so the server's request
log tells the two kinds of traffic apart by path. Scenarios:

- local: the interactive caller alone; the bulk job alone; both in one client (local
  `RateLimiter`), once with the default `max_rate_limit_wait` (for the latency) and once with
  `max_rate_limit_wait=0.5` (for the `RateLimitError` count);
- redis: one `RedisRateLimiter` key (a redis-server of the benchmark's own); the interactive
  caller alone; the bulk job alone in one process, and spread over four processes at
  concurrency 4 each (the same 16 callers); the bulk job in one process and the interactive
  caller in another (both waits, as above); four processes: a bulk job in each of three and
  the interactive caller (at 0.5 s) in the fourth.

Reported per scenario: the interactive calls' p50, p95 and worst latency (successful calls,
measured in the client from the call to its return) and how many raised `RateLimitError`; the
bulk job's accepted rate at the server during the interactive phase, as a ratio to
`(1 - reserve) * 20`, less the interactive calls' arrival rate beside them (the capacity they
left it); the server's 429s; the largest gap between two background arrivals and the most
background arrivals within 50 ms, at the server; for Redis, the round trips per request (every
command a client sent, as `MONITOR` shows it, commands run inside scripts left out, divided by
the requests the server received: one EVALSHA is one round trip, also an ask that carries
the releases of answers before it, which the details count under the ask's op; the bar leaves
out what redis-py sends once per connection, HELLO and the like, which a long job amortises)
and the client CPU per request (all of a scenario's client processes, divided by its
requests).

On a checkout without priorities (no `priority` parameter on `leads.update`, no `reserve` on
the limiters) the same runs are made without them, with a reserve of 0: that is the "before".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import itertools
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _harness import (
    CLIENT_CORE,
    ROOT,
    SERVER_CORE,
    Options,
    Row,
    Spread,
    at_least,
    at_most,
    can_pin,
    parse,
    pin_client,
    report,
)

from inbox_async import InboxClient, InboxError, RateLimiter, RateLimitError
from inbox_async.testing import FakeInboxServer

LIMIT = 20
WINDOW = 1.0
LATENCY = 0.02
INTERVAL = 0.2
CONCURRENCY = 16
SHORT_WAIT = 0.5
BURST = 0.05
LEADS = 1000
INTERACTIVE_FROM = 900
"""Leads from this index on get the interactive calls; the bulk job cycles through the rest."""
FIRST_ID = 100_000_000
COLUMN = "custom_benchmarkcolumn0000000a"
P2_BAR = 2.0
RATE_BAR = 0.95
ROUND_TRIP_BAR = 2.0
SETUP_COMMANDS = frozenset(
    {"hello", "auth", "select", "client", "script", "subscribe", "ssubscribe", "psubscribe"}
)
"""What redis-py sends once per connection (and the script load once per server)."""


# -- what a client process does ------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """One client process: a bulk job, an interactive caller, or both through one client."""

    bulk: bool
    interactive: bool
    max_wait: float | None = None
    """The interactive calls' `max_rate_limit_wait` (None: the client's default)."""
    concurrency: int = CONCURRENCY
    """The bulk job's."""


@dataclass(frozen=True)
class Scenario:
    """A set of client processes sharing one limiter (local: one process; redis: one key)."""

    name: str
    limiter: str
    """"local" or "redis"."""
    roles: tuple[Role, ...]

    @property
    def bulk(self) -> bool:
        """Whether any process runs the bulk job."""
        return any(r.bulk for r in self.roles)

    @property
    def interactive(self) -> bool:
        """Whether any process makes interactive calls."""
        return any(r.interactive for r in self.roles)

    @property
    def short_wait(self) -> bool:
        """Whether the interactive calls wait at most SHORT_WAIT for the limiter."""
        return any(r.interactive and r.max_wait is not None for r in self.roles)


BULK = Role(bulk=True, interactive=False)
WEB = Role(bulk=False, interactive=True)
WEB_SHORT = Role(bulk=False, interactive=True, max_wait=SHORT_WAIT)

SCENARIOS = (
    Scenario("local: interactive alone", "local", (WEB_SHORT,)),
    Scenario("local: bulk alone", "local", (BULK,)),
    Scenario("local: beside bulk", "local", (Role(bulk=True, interactive=True),)),
    Scenario(
        "local: beside bulk, wait 0.5 s",
        "local",
        (Role(bulk=True, interactive=True, max_wait=SHORT_WAIT),),
    ),
    Scenario("redis: interactive alone", "redis", (WEB_SHORT,)),
    Scenario("redis: bulk alone, 1 process", "redis", (BULK,)),
    Scenario(
        "redis: bulk alone, 4 processes at concurrency 4",
        "redis",
        (Role(bulk=True, interactive=False, concurrency=4),) * 4,
    ),
    Scenario("redis, 2 processes: beside bulk", "redis", (BULK, WEB)),
    Scenario("redis, 2 processes: beside bulk, wait 0.5 s", "redis", (BULK, WEB_SHORT)),
    Scenario(
        "redis, 4 processes: beside 3 bulk jobs, wait 0.5 s", "redis", (BULK,) * 3 + (WEB_SHORT,)
    ),
)


@dataclass
class ClientResult:
    """What one client process reports back."""

    latencies: list[float] = field(default_factory=list)
    rate_limited: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    bulk_succeeded: int = 0
    bulk_failed: int = 0
    cpu: float = 0.0
    priorities: bool = False
    reserve: float = 0.0


def features(client: InboxClient, limiter: object) -> tuple[bool, float]:
    """Whether calls take a priority, and the limiter's reserve (0 on a checkout without)."""
    priorities = "priority" in inspect.signature(client.leads.update).parameters
    reserve = 0.0
    parameter = inspect.signature(type(limiter)).parameters.get("reserve")
    if parameter is not None and isinstance(parameter.default, (int, float)):
        reserve = float(parameter.default)
    # What the limiter says it holds back wins over the signature's default.
    shown = getattr(client.rate_limit, "reserve", None)
    if isinstance(shown, (int, float)) and not isinstance(shown, bool):
        reserve = float(shown)
    return priorities, reserve


def lead(i: int, interactive: bool) -> str:
    """The platform id of the i-th lead of the bulk job's or the interactive caller's share."""
    if interactive:
        return str(FIRST_ID + INTERACTIVE_FROM + i % (LEADS - INTERACTIVE_FROM))
    return str(FIRST_ID + i % INTERACTIVE_FROM)


async def run_bulk(
    client: InboxClient, list_id: str, until: float, offset: int, concurrency: int
) -> tuple[int, int]:
    """A bulk job over a generator that ends at `until`; (succeeded, failed)."""

    def updates() -> Iterator[tuple[str, dict[str, Any]]]:
        # Pulled only as a worker frees up, so the job stops taking work at `until`.
        i = offset
        while time.monotonic() < until:
            yield lead(i, False), {COLUMN: f"bulk {i}"}
            i += 1

    report = await client.leads.bulk_update(list_id, updates(), concurrency=concurrency)
    return report.succeeded, len(report.failed)


async def run_interactive(
    client: InboxClient, list_id: str, start: float, until: float, max_wait: float | None
) -> ClientResult:
    """An update every INTERVAL seconds from `start` to `until`, each in its own task."""
    result = ClientResult()
    options: dict[str, Any] = {} if max_wait is None else {"max_rate_limit_wait": max_wait}
    errors: Counter[str] = Counter()

    async def one(k: int) -> None:
        began = time.monotonic()
        try:
            await client.leads.update(list_id, lead(k, True), {COLUMN: f"web {k}"}, **options)
        except RateLimitError:
            result.rate_limited += 1
        except InboxError as exc:
            errors[type(exc).__name__] += 1
        else:
            result.latencies.append(time.monotonic() - began)

    tasks: list[asyncio.Task[None]] = []
    k = 0
    while (at := start + k * INTERVAL) < until:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        tasks.append(asyncio.create_task(one(k)))
        k += 1
    await asyncio.gather(*tasks)
    result.errors = dict(errors)
    return result


@contextlib.asynccontextmanager
async def client_for(spec: dict[str, Any]) -> AsyncIterator[tuple[InboxClient, object]]:
    """The client of a process and its limiter: a local RateLimiter, or one Redis key."""
    if spec["redis"] is None:
        local = RateLimiter([(LIMIT, WINDOW)])
        async with InboxClient(spec["token"], base_url=spec["url"], limiter=local) as client:
            yield client, local
        return
    from inbox_async import RedisRateLimiter

    async with (
        RedisRateLimiter(spec["redis"], limits=[(LIMIT, WINDOW)], key=spec["key"]) as shared,
        InboxClient(spec["token"], base_url=spec["url"], limiter=shared) as client,
    ):
        yield client, shared


async def child(spec: dict[str, Any]) -> ClientResult:
    """A client process: say ready, wait for the start times on stdin, run its role."""
    role = Role(**spec["role"])
    loop = asyncio.get_running_loop()
    async with client_for(spec) as (client, limiter):
        priorities, reserve = features(client, limiter)
        print("ready", flush=True)
        go = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        cpu = time.process_time()
        jobs: list[asyncio.Task[Any]] = []
        if role.bulk:
            jobs.append(
                asyncio.create_task(
                    run_bulk(client, spec["list_id"], go["end"], spec["offset"], role.concurrency)
                )
            )
        if role.interactive:
            jobs.append(
                asyncio.create_task(
                    run_interactive(client, spec["list_id"], go["start"], go["end"], role.max_wait)
                )
            )
        done = await asyncio.gather(*jobs)
        cpu = time.process_time() - cpu
    result = ClientResult(cpu=cpu, priorities=priorities, reserve=reserve)
    for value in done:
        if isinstance(value, ClientResult):
            result.latencies = value.latencies
            result.rate_limited = value.rate_limited
            result.errors = value.errors
        else:
            result.bulk_succeeded, result.bulk_failed = value
    return result


def child_main(argument: str) -> None:
    """Entry point of a client process (`--child SPEC`): one JSON line of results on stdout."""
    pin_client()
    result = asyncio.run(child(json.loads(argument)))
    print(json.dumps(asdict(result)), flush=True)


# -- redis-server, and counting what clients send it ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A redis-server of the benchmark's own on a free port; None if it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = _free_port()
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.025)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
"""The quoted words of a MONITOR line: the command and its arguments."""


def script_names() -> dict[str, str]:
    """SHA1 -> name of every Lua script the Redis limiter module holds as a string constant."""
    try:
        from inbox_async._ratelimit import _redis as module
    except ImportError:
        try:  # an older commit, for an A/B run
            from inbox_async import _redis_limiter as module  # type: ignore[no-redef]
        except ImportError:
            return {}
    names = {}
    for name, value in vars(module).items():
        if isinstance(value, str) and "redis.call" in value:
            names[hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()] = name.strip(
                "_"
            ).lower()
    return names


class CommandCounter:
    """Counts the commands clients send a Redis server, read from `MONITOR`.

    MONITOR marks a command run by a Lua script with `[db lua]` and a client's with its
    address: the client commands are the round trips, whatever the limiter does inside its
    scripts. (`INFO commandstats` and `total_commands_processed` count the scripts' inner
    commands too, so they cannot tell one EVALSHA from a GET and an EVALSHA.)
    """

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self.counts: Counter[str] = Counter()
        self.scripts = script_names()
        """The limiter's Lua scripts by SHA1, to tell its EVALSHAs apart."""
        self._marks: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        """Connect and start reading the monitor stream."""
        reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(b"MONITOR\r\n")
        await self._writer.drain()
        if not (await reader.readline()).startswith(b"+OK"):
            raise RuntimeError("redis-server refused MONITOR")
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            text = line.decode("utf-8", "replace")
            source, _, rest = text.partition("] ")
            if source.endswith(" lua"):
                continue
            words = _QUOTED.findall(rest)
            command = words[0].lower() if words else "?"
            if command == "echo" and len(words) == 2 and words[1] in self._marks:
                self._marks.pop(words[1]).set()
                continue
            if command == "evalsha" and len(words) >= 3 and words[2].isdigit():
                command = f"evalsha {self.scripts.get(words[1], words[1][:8])}"
                first = 3 + int(words[2])
                # A script that takes its operation as a short first argument gets one
                # count per operation (acquire, release, leave...).
                if len(words) > first and len(words[first]) <= 2 and words[first].isalpha():
                    command += f" {words[first]}"
            self.counts[command] += 1

    async def settle(self) -> Counter[str]:
        """Wait until every command sent so far has been counted; return a copy of the counts."""
        marker = f"settle-{time.monotonic_ns()}"
        seen = self._marks[marker] = asyncio.Event()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        try:
            # Redis runs commands in order, so once MONITOR shows this echo it has shown
            # every command that ran before it.
            writer.write(f"ECHO {marker}\r\n".encode())
            await writer.drain()
            await reader.readline()
            await asyncio.wait_for(seen.wait(), 10)
        finally:
            writer.close()
            await writer.wait_closed()
        return Counter(self.counts)

    async def close(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()


# -- one scenario ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the server saw and the clients reported in one scenario."""

    latencies: list[float]
    rate_limited: int
    interactive_calls: int
    errors: dict[str, int]
    bulk_rate: float
    interactive_rate: float
    bulk_failed: int
    status_429: int
    largest_gap: float
    largest_burst: int
    per_second: list[int]
    """Background arrivals in each second of the interactive phase."""
    requests: int
    round_trips: dict[str, int]
    cpu: float
    priorities: bool
    reserve: float


def is_interactive(path: str) -> bool:
    """Whether a request went to one of the interactive caller's leads."""
    return int(path.rsplit("/", 1)[1]) - FIRST_ID >= INTERACTIVE_FROM


def mean_rate(times: Sequence[float], start: float, end: float) -> float:
    """Arrivals per second in [start, end), averaged over where a window of the limiter falls.

    A count in one fixed interval is off by up to a whole burst when arrivals come in bursts
    (today's bulk job sends each second's 20 slots at once): it depends on where the interval's
    edges fall. Averaging the count over intervals of `end - start - WINDOW` seconds starting
    anywhere in the first WINDOW seconds weighs each arrival by the share of those intervals
    it falls in, and is exact for arrivals that repeat every WINDOW seconds.
    """
    span = end - start - WINDOW
    if span <= 0:
        raise ValueError("the interactive phase must be longer than the window")
    total = 0.0
    for t in times:
        inside = min(WINDOW, t - start) - max(0.0, t - start - span)
        if inside > 0:
            total += inside / WINDOW
    return total / span


def most_within(times: Sequence[float], span: float) -> int:
    """The most of the sorted `times` within any interval [t, t + span) starting at one."""
    best, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + span:
            j += 1
        best = max(best, j - i)
    return best


async def run_scenario(
    scenario: Scenario,
    server: FakeInboxServer,
    list_id: str,
    redis_url: str | None,
    monitor: CommandCounter | None,
    *,
    warmup: float,
    seconds: float,
    tag: str,
) -> Outcome:
    """Start the scenario's client processes, run them, and read the server's log."""
    server.set_rate_limits([(LIMIT, WINDOW)])  # fresh windows: nothing left from the last run
    server.clear_requests()
    procs: list[asyncio.subprocess.Process] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)])}
    try:
        for n, role in enumerate(scenario.roles):
            spec = {
                "url": server.url,
                "token": server.token,
                "list_id": list_id,
                "redis": redis_url if scenario.limiter == "redis" else None,
                "key": f"bench-priority:{tag}",
                "role": asdict(role),
                "offset": n * 100_000,
            }
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--child",
                    json.dumps(spec),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    cwd=ROOT,
                    env=env,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            if (await proc.stdout.readline()).strip() != b"ready":
                raise RuntimeError(f"{scenario.name}: a client process did not start")
        before = await monitor.settle() if monitor is not None else Counter[str]()
        go = time.monotonic() + 0.05
        start, end = go + warmup, go + warmup + seconds
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({"go": go, "start": start, "end": end}).encode() + b"\n")
            await proc.stdin.drain()
        results: list[ClientResult] = []
        for proc in procs:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if await proc.wait() != 0 or not line:
                raise RuntimeError(f"{scenario.name}: a client process failed")
            results.append(ClientResult(**json.loads(line)))
        after = await monitor.settle() if monitor is not None else Counter[str]()
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    log = server.requests
    background = sorted(r.received_at for r in log if not is_interactive(r.path))
    window = [t for t in background if start <= t < end]
    accepted = [r.received_at for r in log if 200 <= r.status < 300 and not is_interactive(r.path)]
    interactive = [r.received_at for r in log if is_interactive(r.path)]
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result.errors)
    latencies = sorted(x for result in results for x in result.latencies)
    rate_limited = sum(result.rate_limited for result in results)
    return Outcome(
        latencies=latencies,
        rate_limited=rate_limited,
        interactive_calls=len(latencies) + rate_limited + sum(errors.values()),
        errors=dict(errors),
        bulk_rate=mean_rate(accepted, start, end),
        interactive_rate=mean_rate(interactive, start, end),
        bulk_failed=sum(result.bulk_failed for result in results),
        status_429=sum(1 for r in log if r.status == 429),
        largest_gap=max((b - a for a, b in itertools.pairwise(window)), default=math.nan),
        largest_burst=most_within(window, BURST),
        per_second=[
            sum(1 for t in window if start + i <= t < start + i + 1) for i in range(int(seconds))
        ],
        requests=len(log),
        round_trips=dict(after - before),
        cpu=sum(result.cpu for result in results),
        priorities=all(result.priorities for result in results),
        reserve=results[0].reserve,
    )


# -- the run and its table ---------------------------------------------------------------------


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of sorted values; NaN for none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_all(options: Options, scenarios: Sequence[Scenario]) -> dict[str, list[Outcome]]:
    """Every scenario, `reps` times, against one in-process fake server."""
    warmup, seconds = (1.0, 4.0) if options.quick else (2.0, 15.0)
    reps = options.reps or 1
    outcomes: dict[str, list[Outcome]] = {s.name: [] for s in scenarios}
    with redis_server() as redis_url:
        async with FakeInboxServer(latency=LATENCY, rate_limits=[(LIMIT, WINDOW)]) as server:
            list_id = server.create_list([COLUMN])
            server.add_leads(list_id, [str(FIRST_ID + i) for i in range(LEADS)])
            monitor = None
            if redis_url is not None:
                host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
                monitor = CommandCounter(host, int(port))
                await monitor.start()
            try:
                for rep in range(reps):
                    for scenario in scenarios:
                        if scenario.limiter == "redis" and redis_url is None:
                            continue
                        tag = f"{rep}.{scenarios.index(scenario)}.{time.monotonic_ns()}"
                        outcome = await run_scenario(
                            scenario,
                            server,
                            list_id,
                            redis_url,
                            monitor,
                            warmup=warmup,
                            seconds=seconds,
                            tag=tag,
                        )
                        outcomes[scenario.name].append(outcome)
                        print(f"{scenario.name}: {summary(outcome)}", flush=True)
            finally:
                if monitor is not None:
                    await monitor.close()
    return outcomes


def summary(o: Outcome) -> str:
    """One line of absolute numbers for the details."""
    parts = []
    if o.interactive_calls:
        parts.append(
            f"interactive {o.interactive_calls} calls, "
            f"p50 {quantile(o.latencies, 0.5) * 1e3:.0f} ms, "
            f"p95 {quantile(o.latencies, 0.95) * 1e3:.0f} ms, "
            f"max {max(o.latencies, default=math.nan) * 1e3:.0f} ms, "
            f"RateLimitError {o.rate_limited}, other errors {o.errors or 0}, "
            f"{o.interactive_rate:.2f}/s at the server"
        )
    if o.bulk_rate:
        parts.append(
            f"bulk {o.bulk_rate:.2f}/s accepted, largest gap {o.largest_gap * 1e3:.0f} ms, "
            f"largest burst {o.largest_burst} in {BURST * 1e3:.0f} ms, failed {o.bulk_failed}, "
            f"per second {' '.join(map(str, o.per_second))}"
        )
    parts.append(
        f"{o.requests} requests, {o.status_429} 429s, "
        f"client CPU {o.cpu / max(1, o.requests) * 1e6:.0f} µs/req"
    )
    if o.round_trips:
        total = sum(o.round_trips.values())
        parts.append(
            f"redis {total / max(1, o.requests):.2f} round trips/req, "
            f"{_round_trips(o):.2f} without connection set-up "
            f"({', '.join(f'{k} {v}' for k, v in sorted(o.round_trips.items()))})"
        )
    parts.append(f"priorities {'on' if o.priorities else 'absent'}, reserve {o.reserve:g}")
    return "; ".join(parts)


def _p50(o: Outcome) -> float:
    return quantile(o.latencies, 0.5) * 1e3


def _p95(o: Outcome) -> float:
    return quantile(o.latencies, 0.95) * 1e3


def _worst(o: Outcome) -> float:
    return max(o.latencies, default=math.nan) * 1e3


def _round_trips(o: Outcome) -> float:
    """Redis commands per request, connection set-up left out (it does not grow with a job)."""
    sent = sum(n for command, n in o.round_trips.items() if command not in SETUP_COMMANDS)
    return sent / max(1, o.requests)


def _round_trips_all(o: Outcome) -> float:
    return sum(o.round_trips.values()) / max(1, o.requests)


def _cpu(o: Outcome) -> float:
    return o.cpu / max(1, o.requests) * 1e6


def _bulk_ratio(o: Outcome, interactive: bool) -> float:
    """The bulk rate ÷ what it may use: its share of the limit, less what interactive calls took.

    The reserve is the last fraction of every window whoever filled the rest, so beside
    interactive calls the background's room is (1 - reserve) x the limit minus their rate.
    """
    room = (1 - o.reserve) * LIMIT - (o.interactive_rate if interactive else 0.0)
    return o.bulk_rate / room if room > 0 else math.nan


def side_by_side(outcomes: dict[str, list[Outcome]]) -> list[str]:
    """Every scenario on one line (medians over the repetitions), as a Markdown table."""

    def cell(runs: list[Outcome], value: Callable[[Outcome], float], fmt: str) -> str:
        values = [float(value(o)) for o in runs]
        values = [v for v in values if not math.isnan(v)]
        return fmt.format(statistics.median(values)) if values else "-"

    head = (
        "scenario",
        "interactive p50 / p95 / max",
        "RateLimitError",
        "bulk req/s",
        "bulk ÷ its room",
        "429s",
        "largest gap",
        "most in 50 ms",
        "redis round trips/req (with set-up)",
        "client CPU/req",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario in SCENARIOS:
        runs = outcomes.get(scenario.name, [])
        if not runs:
            continue
        web = scenario.interactive
        bulk = scenario.bulk
        latency = "-"
        if web:
            latency = " / ".join(cell(runs, f, "{:,.0f}") for f in (_p50, _p95, _worst)) + " ms"
        failed = "-"
        if scenario.short_wait:
            calls = sum(o.interactive_calls for o in runs)
            failed = f"{sum(o.rate_limited for o in runs)} of {calls}"
        redis = scenario.limiter == "redis"
        lines.append(
            "| "
            + " | ".join(
                (
                    scenario.name,
                    latency,
                    failed,
                    cell(runs, lambda o: o.bulk_rate, "{:.1f}") if bulk else "-",
                    cell(runs, functools.partial(_bulk_ratio, interactive=web), "{:.3f}x")
                    if bulk
                    else "-",
                    str(sum(o.status_429 for o in runs)),
                    cell(runs, lambda o: o.largest_gap * 1e3, "{:,.0f} ms") if bulk else "-",
                    cell(runs, lambda o: o.largest_burst, "{:.0f}") if bulk else "-",
                    (cell(runs, _round_trips, "{:.2f}") + cell(runs, _round_trips_all, " ({:.2f})"))
                    if redis
                    else "-",
                    cell(runs, _cpu, "{:,.0f} µs"),
                )
            )
            + " |"
        )
    lines += [
        "",
        "bulk ÷ its room: the bulk job's accepted rate ÷ (1 - reserve) x 20/s, less the "
        "interactive calls' arrival rate beside them (the reserve is the last part of a window, "
        "whoever used the rest). Latency: "
        "successful calls (with a 0.5 s wait, the others raised RateLimitError). Gap and burst: "
        "background arrivals at the server during the interactive phase. Redis round trips: "
        "commands the clients sent, without (and with) what redis-py sends once per connection.",
    ]
    return lines


def rows_for(outcomes: dict[str, list[Outcome]]) -> list[Row]:
    """The issue's bars, and the context they need."""
    rows: list[Row] = []

    def add(
        scenario: str,
        what: str,
        value: Callable[[Outcome], float],
        unit: str,
        bar: str = "context",
        judge: Callable[[float], str] | None = None,
    ) -> None:
        runs = outcomes.get(scenario, [])
        values = [float(value(o)) for o in runs]
        if not values:
            return
        spread = Spread.of(values)
        verdict = judge(spread.median) if judge is not None else ""
        rows.append(Row.of("Q9", f"{scenario}: {what}", spread, unit, bar, verdict))

    def alone_p95(scenario: str) -> float | None:
        runs = outcomes.get(scenario, [])
        return statistics.median(_p95(o) for o in runs) if runs else None

    add("local: interactive alone", "interactive p95", _p95, "ms")
    for beside, alone in (
        ("local: beside bulk", "local: interactive alone"),
        ("redis, 2 processes: beside bulk", "redis: interactive alone"),
    ):
        reference = alone_p95(alone)
        if reference is None:
            add(beside, "interactive p95", _p95, "ms")
            continue
        bar = P2_BAR * reference
        add(
            beside,
            "interactive p95",
            _p95,
            "ms",
            f"≤ 2x alone ({bar:.0f} ms)",
            functools.partial(at_most, bar=bar),
        )
    for each in SCENARIOS:
        if each.short_wait and each.bulk:
            add(
                each.name,
                "interactive RateLimitError",
                lambda o: o.rate_limited,
                "count",
                "0",
                lambda v: at_most(v, 0),
            )
    for scenario in ("local: bulk alone", "redis: bulk alone, 1 process"):
        runs = outcomes.get(scenario, [])
        reserve = runs[0].reserve if runs else 0.0
        add(
            scenario,
            f"bulk ÷ (1 - {reserve:g}) x {LIMIT}/s",
            lambda o: _bulk_ratio(o, False),
            "x",
            f"≥ {RATE_BAR:g}",
            lambda v: at_least(v, RATE_BAR),
        )
    for scenario in ("local: beside bulk", "redis, 2 processes: beside bulk"):
        add(scenario, "bulk ÷ room left by interactive", lambda o: _bulk_ratio(o, True), "x")
    if outcomes:
        total = [float(sum(o.status_429 for runs in outcomes.values() for o in runs))]
        rows.append(
            Row.of(
                "Q9",
                "429s from the server, every scenario",
                Spread.of(total),
                "count",
                "0",
                at_most(total[0], 0),
            )
        )
    for scenario in ("local: bulk alone", "local: beside bulk"):
        add(
            scenario, "largest gap between background arrivals", lambda o: o.largest_gap * 1e3, "ms"
        )
        add(scenario, "most background arrivals within 50 ms", lambda o: o.largest_burst, "count")
    add("redis: bulk alone, 1 process", "redis round trips per request", _round_trips, "x")
    add("redis, 2 processes: beside bulk", "redis round trips per request", _round_trips, "x")
    for four in (
        "redis: bulk alone, 4 processes at concurrency 4",
        "redis, 4 processes: beside 3 bulk jobs, wait 0.5 s",
    ):
        add(
            four,
            "redis round trips per request",
            _round_trips,
            "x",
            f"≤ {ROUND_TRIP_BAR:g}",
            lambda v: at_most(v, ROUND_TRIP_BAR),
        )
    local = outcomes.get("local: bulk alone", [])
    redis = outcomes.get("redis: bulk alone, 1 process", [])
    if local and redis:
        ratio = [_cpu(r) / _cpu(x) for r, x in zip(redis, local, strict=False)]
        rows.append(
            Row.of(
                "Q9",
                "bulk alone: client CPU per request, redis ÷ local",
                Spread.of(ratio),
                "x",
                "context",
            )
        )
    return rows


def main(options: Options) -> None:
    """Pin the server (this process), run every scenario, report."""
    if can_pin():
        os.sched_setaffinity(0, {SERVER_CORE})
        server_pinning, client_pinning = f"core {SERVER_CORE}", f"core {CLIENT_CORE}"
    else:
        server_pinning = client_pinning = "not pinned (needs 2 cores and sched_setaffinity)"
    outcomes = asyncio.run(run_all(options, SCENARIOS))
    details = [*side_by_side(outcomes), ""]
    details += [f"- {name}: {summary(o)}" for name, runs in outcomes.items() for o in runs]
    first = next((o for runs in outcomes.values() for o in runs), None)
    notes = [
        f"server {LIMIT}/s with {LATENCY * 1e3:.0f} ms latency; "
        f"interactive every {INTERVAL * 1e3:.0f} ms; "
        f"bulk concurrency {CONCURRENCY}; redis-server unpinned",
    ]
    if first is not None:
        notes.append(
            "priorities "
            + ("on" if first.priorities else "absent (the checkout predates them)")
            + f", reserve {first.reserve:g}"
        )
    if not any(outcomes.get(s.name) for s in SCENARIOS if s.limiter == "redis"):
        notes.append("redis-server is not installed: the redis scenarios were skipped")
    report(
        "Q9 priorities: interactive calls beside a bulk job",
        rows_for(outcomes),
        options,
        notes=notes,
        details=details,
        client_pinning=client_pinning,
        server_pinning=server_pinning,
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(sys.argv[2])
    else:
        main(parse(__doc__))
