"""What every benchmark shares: the fake server in its own process, pinning, statistics, rows.

The fake Inbox server runs as a separate process (`python -m inbox_async.testing`, or the
recording variant in `_server.py`), pinned to core 1 with `taskset` when the machine has two
cores or more; the benchmark process pins itself to core 0. Client CPU is read from the process
CPU clock (`time.process_time`), so the server's work never counts against the client.

Each script prints its own table and, with `--json PATH`, writes its rows for `run_all.py`,
which prints them all as one table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
CLIENT_CORE = 0
SERVER_CORE = 1

# The libraries whose versions decide the numbers; missing ones are reported as such.
LIBRARIES = (
    "inbox-async",
    "aiohttp",
    "multidict",
    "yarl",
    "msgspec",
    "tenacity",
    "pydantic",
    "pydantic-core",
    "httpx",
    "httpcore",
    "sniffio",
    "orjson",
    "uvloop",
)


# -- pinning ------------------------------------------------------------------------------------


def can_pin() -> bool:
    """Whether client and server can each get a core of their own."""
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin_client() -> str:
    """Pin this process to the client's core (the same as `taskset -c 0`); say what was done."""
    if not can_pin():
        return "not pinned (needs 2 cores and sched_setaffinity)"
    os.sched_setaffinity(0, {CLIENT_CORE})
    return f"core {CLIENT_CORE}"


def _server_prefix() -> tuple[list[str], str]:
    if not can_pin():
        return [], "not pinned"
    taskset = shutil.which("taskset")
    if taskset is not None:
        return [taskset, "-c", str(SERVER_CORE)], f"core {SERVER_CORE} (taskset)"
    return [], f"core {SERVER_CORE} (sched_setaffinity)"


def _pin_server_child() -> None:
    # Used only when taskset is missing: the same pinning, done in the child before exec.
    os.sched_setaffinity(0, {SERVER_CORE})


# -- the fake server as a process -----------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running fake-server process and the demo list it seeded."""

    url: str
    token: str
    list_id: str
    column_ids: tuple[str, ...]
    first_id: int
    leads: int
    pid: int
    pinning: str

    def platform_id(self, i: int) -> str:
        """The id of the i-th demo lead, wrapping around the list."""
        return str(self.first_id + i % self.leads)


@contextlib.contextmanager
def fake_server(
    *,
    leads: int = 1000,
    latency: float = 0.0,
    rate_limits: Sequence[tuple[int, float]] = (),
    extra: Sequence[str] = (),
    script: Sequence[str] = ("-m", "inbox_async.testing"),
) -> Iterator[Server]:
    """Start the fake server in its own process (pinned to the server core) and stop it after."""
    prefix, pinning = _server_prefix()
    args = [*prefix, sys.executable, *script, "--port", "0", "--demo-list", str(leads)]
    if latency:
        args += ["--latency", repr(latency)]
    for count, seconds in rate_limits:
        args += ["--rate-limit", f"{count}/{seconds:g}"]
    args += list(extra)
    preexec = _pin_server_child if (can_pin() and not prefix) else None
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=preexec)
    try:
        info: dict[str, str] = {}
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while "platform_ids" not in info:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the fake server exited early ({args})")
            key, _, value = line.strip().partition("=")
            info[key] = value
            if time.monotonic() > deadline:
                raise RuntimeError("the fake server did not start within 60 s")
        first, _, _ = info["platform_ids"].partition("..")
        yield Server(
            url=info["url"],
            token=info["token"],
            list_id=info["list_id"],
            column_ids=tuple(info["column_ids"].split(",")),
            first_id=int(first),
            leads=leads,
            pid=proc.pid,
            pinning=pinning,
        )
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 10 s: the fake server stops cleanly on SIGTERM."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of another process so far (Linux /proc); None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields 14 and 15 of stat (utime, stime); the split above starts at field 3.
    return (int(fields[11]) + int(fields[12])) / ticks


def sched_wait(pid: int | None = None) -> float:
    """Seconds the process's main thread has spent runnable but waiting for a CPU (0 if unknown).

    On the pinned cores that is time another process took: the benchmark redoes a repetition
    when it grows by more than DISTURBED of the wall time, client side or server side.
    """
    try:
        text = Path(f"/proc/{'self' if pid is None else pid}/schedstat").read_text()
        return int(text.split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


DISTURBED = 0.02


def cpu_busy_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat; None if unknown."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


async def wait_until_quiet(limit: float, *, busy: float = 0.05, sample: float = 0.5) -> float:
    """Wait (up to `limit` seconds) until the machine is idle while the benchmark pauses.

    Another process on the pinned cores (a test suite, a build) skews every number; with the
    benchmark paused, any CPU use is someone else's. Returns the seconds waited.
    """
    waited = 0.0
    while waited < limit:
        before = cpu_busy_ticks()
        await asyncio.sleep(sample)
        waited += sample
        after = cpu_busy_ticks()
        if before is None or after is None:
            return waited
        total = after[1] - before[1]
        if total > 0 and (after[0] - before[0]) / total <= busy:
            return waited
    return waited


# -- statistics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise a non-empty sequence."""
        return cls(statistics.median(values), min(values), max(values), len(values))


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """Per-repetition ratios (the two runs of one repetition ran back to back)."""
    return Spread.of([a / b for a, b in zip(numerators, denominators, strict=True)])


def rotations(names: Sequence[str], reps: int) -> Iterator[tuple[int, list[str]]]:
    """Interleave variants A B C, B C A, C A B...: each repetition runs every variant once."""
    names = list(names)
    for rep in range(reps):
        shift = rep % len(names)
        yield rep, names[shift:] + names[:shift]


# -- rows and tables ----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the results table."""

    question: str
    what: str
    median: float
    low: float
    high: float
    unit: str
    bar: str = ""
    verdict: str = ""
    n: int = 0

    @classmethod
    def of(
        cls,
        question: str,
        what: str,
        spread: Spread,
        unit: str,
        bar: str = "",
        verdict: str = "",
    ) -> Row:
        """A row from a Spread."""
        return cls(
            question, what, spread.median, spread.low, spread.high, unit, bar, verdict, spread.n
        )

    def value(self) -> str:
        """The median with its unit."""
        return _fmt(self.median, self.unit)

    def spread(self) -> str:
        """min-max, or blank for a single measurement."""
        if self.n <= 1 and self.low == self.high:
            return ""
        return f"{_fmt(self.low, self.unit)} to {_fmt(self.high, self.unit)}"


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.3f}x" if value < 10 else f"{value:.1f}x"
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("count", "req"):
        return f"{value:.0f}"
    if unit == "MB":
        return f"{value:.2f} MB"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def at_most(value: float, bar: float, goal: float | None = None) -> str:
    """Verdict for a bar that the value must not exceed."""
    if goal is not None and value <= goal:
        return "met (goal too)"
    return "met" if value <= bar else "MISSED"


def at_least(value: float, bar: float, goal: float | None = None) -> str:
    """Verdict for a bar that the value must reach."""
    if goal is not None and value >= goal:
        return "met (goal too)"
    return "met" if value >= bar else "MISSED"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table: readable in a terminal and pasted as is into benchmarks/README.md."""
    head = ("Q", "measurement", "median", "min-max", "bar", "result")
    body = [(r.question, r.what, r.value(), r.spread(), r.bar, r.verdict) for r in rows]
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule, *(line(cells) for cells in body)])


# -- the machine ----------------------------------------------------------------------------------


def machine(client_pinning: str = "", server_pinning: str = "") -> dict[str, str]:
    """Cores, CPU, OS, Python and library versions, for the record next to the numbers."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    described = {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    if client_pinning:
        described["client"] = client_pinning
    if server_pinning:
        described["server"] = server_pinning
    for name in LIBRARIES:
        try:
            described[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            described[name] = "not installed"
    return described


def has(module: str) -> bool:
    """Whether an optional comparison's library is importable."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# -- command line -------------------------------------------------------------------------------


@dataclass
class Options:
    """The options every benchmark script takes."""

    quick: bool
    json: Path | None
    reps: int | None
    extra: dict[str, object] = field(default_factory=dict)


def parse(doc: str | None, argv: Sequence[str] | None = None) -> Options:
    """Parse `--quick`, `--json PATH` and `--reps N`."""
    summary = (doc or "").strip().splitlines()[0] if doc else None
    parser = argparse.ArgumentParser(description=summary)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer, shorter reps)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (overrides default)")
    args = parser.parse_args(argv)
    return Options(quick=args.quick, json=args.json, reps=args.reps)


def report(
    title: str,
    rows: Sequence[Row],
    options: Options,
    *,
    notes: Sequence[str] = (),
    details: Sequence[str] = (),
    client_pinning: str = "",
    server_pinning: str = "",
) -> None:
    """Print the script's table, and write its rows to `--json` for run_all.py."""
    print(f"\n## {title}\n")
    for text in details:
        print(text)
    if details:
        print()
    print(table(rows))
    for text in notes:
        print(f"- {text}")
    if options.json is not None:
        payload = {
            "title": title,
            "rows": [asdict(r) for r in rows],
            "notes": list(notes),
            "details": list(details),
            "machine": machine(client_pinning, server_pinning),
        }
        options.json.write_text(json.dumps(payload, indent=1))


def run_on(loop: str, main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on a new "asyncio" or "uvloop" event loop (what asyncio.run does, any loop)."""
    if loop == "uvloop":
        import uvloop

        new: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    elif loop == "asyncio":
        new = asyncio.new_event_loop()
    else:
        raise ValueError(f"unknown loop {loop!r}")
    try:
        asyncio.set_event_loop(new)
        return new.run_until_complete(main)
    finally:
        try:
            new.run_until_complete(new.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            new.close()


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Run `fn` once; return (wall seconds, process CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu
