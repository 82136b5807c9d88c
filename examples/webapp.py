"""An aiohttp.web app that shares one InboxClient across all of its handlers.

    python examples/webapp.py               # against a fake Inbox server started in-process
    python examples/webapp.py --load 800    # the same, then 800 concurrent requests, then exit
    INBOX_API_TOKEN=... INBOX_LIST_ID=... python examples/webapp.py    # against the real API

Routes:

    PATCH /leads/{platform_id}   body: {"custom_...": value, ...}; null clears a column
    GET   /health                the shared client's counters and rate-limit state

The client is made once, when the app starts, and closed once, when it stops: one connection
pool for every request the app serves (a client, or a session, per request would open and tear
down connections all day long). Each handler call has a short deadline for the rate limit and a
few retries, and SDK errors become the HTTP answers a caller of this app can act on: 404, 400,
503 with Retry-After, 502, 504.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from inbox_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    InboxClient,
    InboxError,
    NotFoundError,
    RateLimitError,
    UnprocessableEntityError,
)

INBOX = web.AppKey("inbox", InboxClient)
"""The one client every handler uses."""
LIST_ID = web.AppKey("list_id", str)
"""The Inbox list whose leads this app updates."""


@dataclass
class HandlerStats:
    """How many requests the app is handling, and the most it handled at once."""

    in_flight: int = 0
    max_in_flight: int = 0


HANDLERS = web.AppKey("handlers", HandlerStats)

# A web request should not wait minutes for the team's rate limit: past 5 s it gets a 503 with
# Retry-After instead. Two retries (1-3 s of backoff) still fit in a browser's patience.
CALL_TIMEOUT = 10.0
CALL_MAX_RETRIES = 2
CALL_MAX_RATE_LIMIT_WAIT = 5.0

# The fake server's demo limit, and the client's matching local window. The real API allows
# 300 requests a minute, 10,000 an hour and 100,000 a day (the client's default windows).
DEMO_LIMITS = [(2000, 1.0)]
DEMO_TOKEN = "demo-token"
DEMO_COLUMN = "custom_q5cktl47a6pqa74eu06fz89v"
DEMO_FIRST_ID = 100_000_000


def make_app(client: InboxClient, list_id: str) -> web.Application:
    """The app, sharing `client` across its handlers; the caller owns (and closes) the client."""
    app = web.Application(middlewares=[_count_handlers])
    app[INBOX] = client
    app[LIST_ID] = list_id
    app[HANDLERS] = HandlerStats()
    app.router.add_patch("/leads/{platform_id}", update_lead)
    app.router.add_get("/health", health)
    return app


async def update_lead(request: web.Request) -> web.Response:
    """Set the lead's column values from the JSON body; answer with the lead's values."""
    try:
        data = await request.json()
    except ValueError:
        return _error(400, "the body must be a JSON object of column id -> value")
    if not isinstance(data, dict):
        return _error(400, "the body must be a JSON object of column id -> value")
    client = request.app[INBOX]
    platform_id = request.match_info["platform_id"]
    try:
        lead = await client.leads.update(
            request.app[LIST_ID],
            platform_id,
            data,
            timeout=CALL_TIMEOUT,
            max_retries=CALL_MAX_RETRIES,
            max_rate_limit_wait=CALL_MAX_RATE_LIMIT_WAIT,
        )
    except (ValueError, TypeError) as exc:  # the SDK checked the input before sending it
        return _error(400, str(exc))
    except InboxError as exc:
        return _error_from_inbox(exc)
    return web.json_response({"platformId": platform_id, "data": lead.data})


async def health(request: web.Request) -> web.Response:
    """The shared client's counters and rate-limit state."""
    client = request.app[INBOX]
    stats, limit, handlers = client.stats, client.rate_limit, request.app[HANDLERS]
    return web.json_response(
        {
            "calls": stats.calls,
            "attempts": stats.attempts,
            "retries": stats.retries,
            "closed": client.closed,
            "rateLimit": {
                "inFlight": limit.in_flight,
                "waiting": limit.waiting,
                "gateClosed": limit.gate_closed,
                "serverRemaining": limit.server_remaining,
                "throttledSeconds": round(limit.throttled_seconds, 3),
            },
            "handlers": {"inFlight": handlers.in_flight, "maxInFlight": handlers.max_in_flight},
        }
    )


@web.middleware
async def _count_handlers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    stats = request.app[HANDLERS]
    stats.in_flight += 1
    stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
    try:
        return await handler(request)
    finally:
        stats.in_flight -= 1


def _error_from_inbox(exc: InboxError) -> web.Response:
    """The HTTP answer for an SDK error: what this app's caller can do about it."""
    request_id = getattr(exc, "request_id", None)
    if isinstance(exc, NotFoundError):
        return _error(404, str(exc), request_id)
    if isinstance(exc, (BadRequestError, UnprocessableEntityError)):
        return _error(422, str(exc), request_id)  # e.g. a column id the list does not have
    if isinstance(exc, RateLimitError):
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        response = _error(503, "rate limited, try again later", request_id)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    if isinstance(exc, APITimeoutError):
        return _error(504, str(exc))
    if isinstance(exc, (APIConnectionError, APIStatusError)):
        # 5xx after retries, or the API unreachable; a 401/403 is this app's misconfiguration.
        return _error(502, str(exc), request_id)
    return _error(500, str(exc))  # ClientClosedError: the app is shutting down


def _error(status: int, message: str, request_id: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if request_id:
        body["inboxRequestId"] = request_id
    return web.json_response(body, status=status)


# -- running it --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the app until Ctrl-C (or, with --load N, serve N concurrent requests and exit)."""
    parser = argparse.ArgumentParser(
        description="An aiohttp.web app that shares one InboxClient across its handlers."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (8080)")
    parser.add_argument(
        "--load", type=int, metavar="N", help="fake server only: fire N concurrent requests"
    )
    args = parser.parse_args(argv)
    return asyncio.run(_serve(args.host, args.port, args.load))


async def _serve(host: str, port: int, load: int | None) -> int:
    token, list_id = os.environ.get("INBOX_API_TOKEN"), os.environ.get("INBOX_LIST_ID")
    real = bool(token and list_id)
    if real and load:
        print("--load runs against the fake server only: it would spend the team's quota")
        return 2
    async with contextlib.AsyncExitStack() as stack:
        if real:
            assert list_id is not None
            client = await stack.enter_async_context(InboxClient())  # token and URL from env
            ids: list[str] = []
            upstream = client.base_url
        else:
            from inbox_async.testing import FakeInboxServer

            server = await stack.enter_async_context(
                FakeInboxServer(token=DEMO_TOKEN, rate_limits=DEMO_LIMITS)
            )
            list_id = server.create_list(columns=[DEMO_COLUMN])
            ids = [str(DEMO_FIRST_ID + i) for i in range(max(1000, load or 0))]
            server.add_leads(list_id, ids)
            client = await stack.enter_async_context(
                InboxClient(DEMO_TOKEN, base_url=server.url, rate_limits=DEMO_LIMITS)
            )
            upstream = f"a fake Inbox server at {server.url}"
        runner = web.AppRunner(make_app(client, list_id), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)  # unwinds first: handlers end, then the client
        await web.TCPSite(runner, host, port).start()
        url = f"http://{host}:{runner.addresses[0][1]}"
        print(f"serving {url}, list {list_id} on {upstream}", flush=True)
        if load:
            return await _load(url, ids[:load])
        example = ids[0] if ids else "44196397"
        print(
            f'try: curl -X PATCH {url}/leads/{example} -d \'{{"{DEMO_COLUMN}": "Acme"}}\'\n'
            f"     curl {url}/health\nCtrl-C stops.",
            flush=True,
        )
        await _until_signalled()
    return 0


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _load(url: str, ids: Sequence[str]) -> int:
    """Fire one request per id, all at once; print what came back and what the client did."""
    _raise_open_file_limit(4 * len(ids) + 1000)  # both ends of each socket live here
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(pid: str) -> int:
            body = {DEMO_COLUMN: f"load {pid}"}
            async with session.patch(f"{url}/leads/{pid}", json=body) as response:
                await response.read()
                return response.status

        started = time.monotonic()
        statuses = Counter(await asyncio.gather(*(one(pid) for pid in ids)))
        elapsed = time.monotonic() - started
        async with session.get(f"{url}/health") as response:
            report = await response.json()
    answered = ", ".join(f"{count}x {status}" for status, count in sorted(statuses.items()))
    print(f"{len(ids)} concurrent requests in {elapsed:.2f} s: {answered}")
    print(
        f"one shared client: {report['calls']} calls, {report['attempts']} HTTP attempts; "
        f"up to {report['handlers']['maxInFlight']} requests in the app at once"
    )
    return 0 if set(statuses) == {200} else 1


def _raise_open_file_limit(wanted: int) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


if __name__ == "__main__":
    sys.exit(main())
