"""No exception the SDK raises shows a secret, however deep one looks; redirects are not followed;
pool waits and TLS failures are reported for what they are.

"Deep" means every exception of the `__cause__` / `__context__` chain, recursively: its `str`,
`repr`, `args`, `vars()`, `traceback.TracebackException(capture_locals=True)` and rich's traceback
with locals. The secrets are the token and a header value the caller passed.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trustme
from aiohttp import web

from inbox_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InboxClient,
    InboxError,
    InternalServerError,
    NotFoundError,
)
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import (
    LEADS,
    UPDATE,
    RecordingSleep,
    assert_no_secret,
    closed_port,
    eventually,
    renderings,
    seed_list,
    tiny_server,
)

HEADER = "X-Team-Key"


def _secret(prefix: str) -> str:
    # Made at run time: a literal would show in tracebacks as source code, which proves nothing.
    return prefix + secrets.token_hex(16)


async def _raised(call: Callable[[], Awaitable[object]]) -> InboxError:
    # The error is caught here, not in the test, so that its traceback stops at this frame:
    # the test's own locals hold the secrets, of course.
    try:
        await call()
    except InboxError as exc:
        return exc
    raise AssertionError("the call did not fail")


async def _raw_server(answer: bytes) -> tuple[asyncio.Server, str]:
    """A TCP server that answers every request with `answer`, bytes as they are."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/api/v1"


@pytest.fixture
async def tls_base_url() -> AsyncIterator[str]:
    """An https server whose certificate comes from a CA the client does not trust."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def ok(request: web.Request) -> web.StreamResponse:
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}/api/v1"
    finally:
        await runner.cleanup()


# -- the walk, over every error path ---------------------------------------------------------


PATHS = [
    "retried 500",
    "404",
    "timeout",
    "refused",
    "reset",
    "redirect",
    "malformed header",
    "tls",
    "pool wait",
]


@pytest.mark.slow
@pytest.mark.matrix
@pytest.mark.parametrize("path", PATHS)
async def test_no_error_path_shows_the_token_or_a_header_value(
    path: str, sleep: RecordingSleep, tls_base_url: str
) -> None:
    token, header_value = _secret("sk_live_"), _secret("hv_")
    options: dict[str, Any] = {
        "sleep": sleep,
        "max_retries": 1,
        "default_headers": {HEADER: header_value},
    }
    async with FakeInboxServer(token=token) as server:
        list_id = seed_list(server, LEADS)

        async def call(base_url: str, **extra: Any) -> InboxError:
            async with InboxClient(token, base_url=base_url, **{**options, **extra}) as c:
                return await _raised(lambda: c.leads.update(list_id, LEADS[0], UPDATE))

        if path == "retried 500":
            server.add_fault(Fault.status(500), times=2)
            exc = await call(server.url)
            assert isinstance(exc, InternalServerError)
        elif path == "404":
            async with InboxClient(token, base_url=server.url, **options) as c:
                exc = await _raised(lambda: c.leads.update(list_id, "999", UPDATE))
            assert isinstance(exc, NotFoundError)
        elif path == "timeout":
            server.add_fault(Fault.delay(2.0), times=2)
            exc = await call(server.url, timeout=0.2)
            assert isinstance(exc, APITimeoutError)
        elif path == "refused":
            exc = await call(f"http://127.0.0.1:{closed_port()}/api/v1")
            assert isinstance(exc, APIConnectionError) and not exc.request_sent
        elif path == "reset":
            server.add_fault(Fault.drop(), times=2)
            exc = await call(server.url)
            assert isinstance(exc, APIConnectionError)
        elif path == "redirect":

            async def loop(request: web.Request) -> web.StreamResponse:
                raise web.HTTPFound(str(request.url))

            async with tiny_server(loop) as base_url:
                exc = await call(base_url)
            assert isinstance(exc, APIStatusError)
        elif path == "malformed header":
            raw, base_url = await _raw_server(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Bad\x01: 1\r\n\r\n{}"
            )
            async with raw:
                exc = await call(base_url)
            assert isinstance(exc, APIConnectionError)
        elif path == "tls":
            exc = await call(tls_base_url)
            assert isinstance(exc, APIConnectionError)
        else:  # "pool wait": the only connection is busy for longer than the call may wait
            server.add_fault(Fault.delay(1.0))
            async with InboxClient(token, base_url=server.url, max_connections=1, **options) as c:
                busy = asyncio.ensure_future(c.leads.update(list_id, LEADS[1], UPDATE))
                await eventually(lambda: server.in_flight == 1)  # the one connection is busy
                exc = await _raised(
                    lambda: c.leads.update(list_id, LEADS[0], UPDATE, timeout=0.2, max_retries=0)
                )
                await busy
            assert isinstance(exc, APITimeoutError)
    assert_no_secret(exc, token, header_value)


class _Hidden(dict[str, Any]):
    """Options whose repr hides them: the test's own frame holds them as a local."""

    def __repr__(self) -> str:
        return "<options>"


def _construct(options: _Hidden) -> BaseException:
    try:
        InboxClient(**options)
    except (TypeError, ValueError) as exc:
        return exc
    raise AssertionError("the options were accepted")


@pytest.mark.slow
@pytest.mark.matrix
@pytest.mark.parametrize(
    "bad",
    [
        {"max_connections": 0},
        {"timeout": -1},
        {"base_url": "ftp://example.com"},
        {"session": "not a session"},
        {"rate_limits": [(0, 60)]},
    ],
)
def test_a_constructor_error_renders_with_locals_and_shows_no_secret(
    bad: dict[str, object],
) -> None:
    # The constructor's frame holds the half-built client as `self`: its repr must work (a
    # repr that raises breaks TracebackException(capture_locals=True) on Python 3.11), and
    # neither the token nor a header value may show in any frame's locals.
    token, header_value = _secret("sk_live_"), _secret("hv_")
    options = _Hidden(
        token=token,
        base_url="http://127.0.0.1:1/api/v1",
        default_headers={HEADER: header_value},
    )
    options.update(bad)
    error = _construct(options)
    texts = renderings(error)
    assert any("InboxClient" in text for text in texts.values())
    for what, text in texts.items():
        for secret in (token, header_value):
            assert secret not in text, f"a secret shows in {what}"


@pytest.mark.slow
@pytest.mark.matrix
@pytest.mark.parametrize(
    "bad", [{"limits": []}, {"key": ""}, {"redis_timeout": -1}, {"gate_jitter": "x"}]
)
def test_a_redis_limiter_constructor_error_shows_no_password(bad: dict[str, object]) -> None:
    from inbox_async import RedisRateLimiter

    password = _secret("pw_")
    options = _Hidden(url=f"redis://:{password}@127.0.0.1:1/0", **bad)
    try:
        RedisRateLimiter(**options)
    except (TypeError, ValueError) as exc:
        error: BaseException = exc
    else:
        raise AssertionError("the options were accepted")
    texts = renderings(error)
    assert any("RedisRateLimiter" in text for text in texts.values())
    for what, text in texts.items():
        # This test's own frame is in the traceback; its locals show `options` as "<options>",
        # and `password` itself, which is skipped here.
        assert password not in text.replace(f"password = '{password}'", ""), what


def test_a_cr_lf_header_value_is_refused_without_echoing_it() -> None:
    value = _secret("hv_")
    with pytest.raises(ValueError, match=r"default_headers\['X-Team-Key'\]") as info:
        InboxClient(
            "t", base_url="http://127.0.0.1:1/api/v1", default_headers={HEADER: value + "\r\nX: 1"}
        )
    assert value not in str(info.value)
    assert "X: 1" not in str(info.value)


# -- TLS -------------------------------------------------------------------------------------


async def test_an_untrusted_certificate_is_final_and_not_retried(
    tls_base_url: str, sleep: RecordingSleep
) -> None:
    started = time.monotonic()
    async with InboxClient("t", base_url=tls_base_url, max_retries=4, sleep=sleep) as c:
        exc = await _raised(lambda: c.leads.update("abc", "1", UPDATE))
        assert c.stats.attempts == 1
    assert isinstance(exc, APIConnectionError)
    assert exc.retryable is False
    assert "certificate" in str(exc).lower()
    assert sleep.delays == []
    assert time.monotonic() - started < 5


# -- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_not_followed_and_not_retried(
    status: int, sleep: RecordingSleep
) -> None:
    hits: list[str] = []
    async with FakeInboxServer(token="t") as other:
        list_id = seed_list(other, LEADS)
        location = other.url + f"/lists/{list_id}/leads/{LEADS[0]}"

        async def redirect(request: web.Request) -> web.StreamResponse:
            hits.append(request.method)
            return web.Response(status=status, headers={"Location": location})

        async with (
            tiny_server(redirect) as base_url,
            InboxClient("t", base_url=base_url, sleep=sleep, max_retries=4) as c,
        ):
            exc = await _raised(lambda: c.leads.update(list_id, LEADS[0], UPDATE))
            assert c.stats.attempts == 1
        assert len(other.requests) == 0  # neither the body nor a GET went to the other host
    assert isinstance(exc, APIStatusError)
    assert exc.status_code == status
    assert str(status) in str(exc) and location in str(exc)
    assert hits == ["PATCH"]
    assert sleep.delays == []


# -- timeouts and the connection pool -------------------------------------------------------


class _SlowLead:
    """Answers an update at once, but takes a second over the lead "slow" (and says it began)."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if "slow" in request.path:
            self.arrived.set()  # the one connection is now busy for a second
            await asyncio.sleep(1.0)
        return web.json_response({"prospect": {}, "context": {}, "data": {}})


@pytest.mark.slow
async def test_a_pool_wait_that_times_out_was_not_sent_and_costs_no_slot(
    sleep: RecordingSleep,
) -> None:
    slow_lead = _SlowLead()
    async with (
        tiny_server(slow_lead.handle) as base_url,
        InboxClient("t", base_url=base_url, max_connections=1, sleep=sleep) as c,
    ):
        busy = asyncio.ensure_future(c.leads.update("abc", "slow", UPDATE))
        await asyncio.wait_for(slow_lead.arrived.wait(), 5)
        exc = await _raised(lambda: c.leads.update("abc", "1", UPDATE, timeout=0.3, max_retries=0))
        assert isinstance(exc, APITimeoutError)
        assert exc.request_sent is False
        assert "connection" in str(exc)
        assert c.stats.attempts == 1  # only the busy call's
        limits = c.rate_limit
        assert limits.in_flight == 1
        assert all(w.in_use == 1 for w in limits.windows)  # the timed-out call's slot went back
        await busy
        assert c.rate_limit.in_flight == 0


@pytest.mark.slow
async def test_pool_waiters_with_shorter_timeouts_behind_longer_ones_give_up_on_time(
    sleep: RecordingSleep,
) -> None:
    slow_lead = _SlowLead()
    async with (
        tiny_server(slow_lead.handle) as base_url,
        InboxClient("t", base_url=base_url, max_connections=1, sleep=sleep) as c,
    ):
        busy = asyncio.ensure_future(c.leads.update("abc", "slow", UPDATE))
        await asyncio.wait_for(slow_lead.arrived.wait(), 5)
        patient = asyncio.ensure_future(c.leads.update("abc", "1", UPDATE, timeout=5))
        await eventually(lambda: c.rate_limit.in_flight == 2)  # it waits for the connection
        started = time.monotonic()
        exc = await _raised(lambda: c.leads.update("abc", "2", UPDATE, timeout=0.3, max_retries=0))
        assert isinstance(exc, APITimeoutError) and exc.request_sent is False
        # Its own deadline, not the queue's (the connect part ends a tenth sooner: 0.27 s).
        assert 0.26 <= time.monotonic() - started < 0.8
        await busy
        assert (await patient).data == {}
        assert c.stats.attempts == 2


@pytest.mark.slow
async def test_a_pool_wait_timeout_is_retried_even_for_an_import_job(
    sleep: RecordingSleep,
) -> None:
    posts: list[str] = []
    arrived = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if "slow" in request.path:
            arrived.set()  # the one connection is now busy for a second
            await asyncio.sleep(1.0)
            return web.json_response({"prospect": {}, "context": {}, "data": {}})
        posts.append(request.path)
        return web.json_response({"id": "job1", "type": "csv", "status": "queued"})

    async with (
        tiny_server(handler) as base_url,
        InboxClient("t", base_url=base_url, max_connections=1, max_retries=1, sleep=sleep) as c,
    ):
        busy = asyncio.ensure_future(c.leads.update("abc", "slow", UPDATE))
        await asyncio.wait_for(arrived.wait(), 5)
        # The first attempt waits 0.7 s for the busy connection and gives up without sending;
        # the retry gets the connection when the busy call ends, at about 1.0 s.
        job = await c.import_jobs.create_csv(
            "abc", "platformId\n1\n", file_name="a.csv", timeout=0.7
        )
        await busy
        assert job.id == "job1"
        assert posts == ["/api/v1/lists/abc/import-jobs"]
        assert len(sleep.delays) == 1
        assert c.stats.attempts == 2  # the busy call and the import job's one real attempt


@pytest.mark.slow
@pytest.mark.matrix
async def test_a_deadline_around_a_retried_call_ends_it_on_time_with_the_books_balanced(
    server: FakeInboxServer, list_id: str, sleep: RecordingSleep
) -> None:
    # timeout= bounds one attempt; a deadline around the call (asyncio.timeout, or wait_for on
    # Python 3.10) bounds everything, retries and backoff included.
    server.add_fault(Fault.delay(5.0), times=10)
    async with InboxClient("test-token", base_url=server.url, timeout=1.0, sleep=sleep) as c:
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(c.leads.update(list_id, LEADS[0], UPDATE), 1.5)
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 1.6
        snapshot = c.rate_limit
        assert snapshot.in_flight == 0 and snapshot.waiting == 0
        # The first attempt timed out at 1.0 s and the second was cancelled in flight: both
        # may have arrived, so both count in every window.
        assert c.stats.attempts == 2
        assert all(w.in_use == 2 for w in snapshot.windows)
