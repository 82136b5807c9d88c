"""Fuzzed responses through a real socket: whatever comes back, only the SDK's errors escape.

A tiny low-level aiohttp server answers every request with what hypothesis drew: any status,
content type, rate-limit and Retry-After headers, and bodies that are random bytes, mutated or
truncated lead payloads, deeply nested JSON, error envelopes or huge. Bodies cut off mid-way
(a Content-Length that promises more than arrives) are drawn too.

Already covered elsewhere, not repeated here: an empty body on 429/502 keeping its status
(tests/test_errors.py::test_an_empty_error_body_keeps_its_status), a proxy's HTML page
(test_errors.py::test_a_proxy_html_page_keeps_its_status), wrong types in a few named fields
decoded in memory (tests/test_models.py::test_a_wrong_type_in_one_field_only_loses_that_field),
a truncated 200 from the fake server
(tests/test_retries.py::test_an_undecodable_success_is_not_retried).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inbox_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    InboxClient,
    InboxError,
    InternalServerError,
    Lead,
    RateLimitError,
)

from .conftest import COL_COMPANY, TOKEN, UPDATE

SEED_BYTES = (Path(__file__).parent / "data" / "update-lead-response.json").read_bytes()
SEED: dict[str, Any] = json.loads(SEED_BYTES)
LIST_ID = "fuzzlist"


@dataclass
class Reply:
    """What the fuzz server answers with, whatever was asked."""

    status: int = 200
    body: bytes = SEED_BYTES
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False
    """Promise more bytes than are sent, then hang up."""


class FuzzServer:
    """A low-level aiohttp server that answers every request with `self.reply`."""

    def __init__(self) -> None:
        self.reply = Reply()
        self.hits = 0
        self.url = ""
        self._runner: web.ServerRunner | None = None

    async def start(self) -> None:
        self._runner = runner = web.ServerRunner(web.Server(self._handle, access_log=None))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.hits += 1
        await request.read()
        reply = self.reply
        body = b"" if reply.status in (204, 304) else reply.body
        if reply.cut:
            response = web.StreamResponse(status=reply.status, headers=reply.headers)
            response.content_length = len(body) + 1000
            await response.prepare(request)
            await response.write(body)
            request.protocol.force_close()
            return response
        return web.Response(status=reply.status, body=body, headers=reply.headers)


@pytest.fixture
async def fuzz() -> AsyncIterator[FuzzServer]:
    server = FuzzServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


# -- strategies ----------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
WEIRD_NUMBERS = (
    st.sampled_from(
        ["0", "-1", "1", "1.5", "1e400", "-1e400", "inf", "-inf", "nan", "1e18", "9" * 40, "0x10"]
    )
    | st.integers(min_value=-(2**80), max_value=2**80).map(str)
    | st.floats().map(repr)
    | ASCII
)
HTTP_DATES = st.sampled_from(
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "Mon, 01 Jan 1900 00:00:00 +2359",
        "Sun, 06 Nov 1994 08:49:37",  # no zone
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Tue, 19 Jan 2038 03:14:08 GMT",
    ]
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "text/html; charset=utf-8",
        "text/plain",
        "application/octet-stream",
        "application/problem+json",
        "",
    ]
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": CONTENT_TYPES,
        "Retry-After": WEIRD_NUMBERS | HTTP_DATES,
        "X-RateLimit-Limit": WEIRD_NUMBERS,
        "X-RateLimit-Remaining": WEIRD_NUMBERS,
        "X-RateLimit-Reset": WEIRD_NUMBERS,
        "X-Request-Id": ASCII,
        "Content-Encoding": st.sampled_from(["gzip", "deflate", "br", "zstd", "identity", "x"]),
        "Location": st.sampled_from(["/api/v1/loop", "http://[::1", "ftp://example.test/", ""]),
        "X-Big": st.integers(1, 20_000).map(lambda n: "a" * n),
    },
)
STATUSES = st.sampled_from(
    [200, 201, 204, 301, 302, 304, 307, 400, 401, 403, 404, 408, 409, 418, 422, 429, 500, 502]
) | st.integers(min_value=200, max_value=599)


def _paths(node: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, (dict, list)):
            yield from _paths(value, (*prefix, key))


PATHS = list(_paths(SEED))


def _set(doc: Any, path: tuple[str | int, ...], value: Any) -> bool:
    node = doc
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return False
    if not isinstance(node, (dict, list)):
        return False
    if isinstance(node, list) and not (isinstance(path[-1], int) and path[-1] < len(node)):
        return False
    node[path[-1]] = value  # type: ignore[index]
    return True


@st.composite
def mutated_leads(draw: st.DrawFn) -> bytes:
    doc = copy.deepcopy(SEED)
    for path in draw(st.lists(st.sampled_from(PATHS), max_size=5)):
        _set(doc, path, draw(JSON_VALUES))
    return json.dumps(doc).encode()


def _nested(depth: int) -> bytes:
    # 100,000 deep fails on every version: Python 3.13 with msgspec decodes 5,000 levels.
    return b'{"data": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


BODIES = (
    st.binary(max_size=512)
    | mutated_leads()
    | st.integers(0, len(SEED_BYTES)).map(lambda n: SEED_BYTES[:n])
    | st.integers(1, 5000).map(_nested)
    | st.dictionaries(st.sampled_from(["error", "message", "code", "status"]), JSON_VALUES).map(
        lambda d: json.dumps(d).encode()
    )
    | st.sampled_from(
        [
            b"",
            b"null",
            b"<html><head><title>502 Bad Gateway</title></head></html>",
            b"\xef\xbb\xbf" + SEED_BYTES,  # a BOM
            SEED_BYTES.decode().encode("utf-16"),
            b'{"prospect": {"followerCount": "' + b"9" * 300_000 + b'"}}',
        ]
    )
)
REPLIES = st.builds(
    Reply,
    status=STATUSES,
    body=BODIES,
    headers=HEADERS,
    cut=st.integers(0, 4).map(lambda n: n == 0),  # one reply in five is cut off
)
CALLS = st.sampled_from(["update", "lookup", "import_jobs", "add"])


async def _call(client: InboxClient, call: str) -> object:
    if call == "update":
        return await client.leads.update(LIST_ID, "44196397", UPDATE)
    if call == "lookup":
        return await client.prospects.lookup("44196397")
    if call == "import_jobs":
        return [job async for job in client.import_jobs.list(LIST_ID)]
    return await client.leads.add(LIST_ID, ["1", "2"])


def _check_error(exc: InboxError, reply: Reply) -> None:
    """The SDK's error is usable: it prints, and a status error keeps the status it got."""
    assert str(exc)
    assert repr(exc)
    if isinstance(exc, APIStatusError) and reply.status >= 400 and not reply.cut:
        assert exc.status_code == reply.status
        assert len(exc.body) <= 4096
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        assert math.isfinite(exc.retry_after) and exc.retry_after >= 0


FUZZ = settings(
    max_examples=250,
    # CI runs the same examples every time (a red CI blocks everything); local runs explore.
    derandomize=bool(os.environ.get("CI")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.mark.slow
@pytest.mark.matrix
@FUZZ
@given(reply=REPLIES, call=CALLS)
@example(reply=Reply(200, _nested(5000)), call="update")
@example(reply=Reply(500, _nested(5000)), call="update")
@example(reply=Reply(200, SEED_BYTES, {"X-RateLimit-Remaining": "inf"}), call="update")
@example(reply=Reply(503, b"", {"Retry-After": "Fri, 31 Dec 9999 23:59:59 -2359"}), call="update")
async def test_any_response_raises_only_the_sdks_errors(
    fuzz: FuzzServer, reply: Reply, call: str
) -> None:
    fuzz.reply = reply
    async with InboxClient(
        TOKEN, base_url=fuzz.url, max_retries=0, rate_limits=None, max_rate_limit_wait=1
    ) as client:
        try:
            result = await _call(client, call)
        except InboxError as exc:
            _check_error(exc, reply)
        else:
            # Only a 2xx can be a result; its body was good enough to decode.
            assert 200 <= reply.status < 300, (reply.status, result)
            assert not reply.cut
        snapshot = client.rate_limit
        assert snapshot.in_flight == 0
        assert snapshot.waiting == 0


# -- regressions the fuzzing found, pinned as plain tests ----------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, _nested(100_000)),
        # A wrong type first sends the decoder down the repair path, which parses it again.
        (200, b'{"prospect": 5, ' + _nested(100_000)[1:]),
        (500, _nested(100_000)),
    ],
    ids=["lead", "lead-to-repair", "error-envelope"],
)
async def test_deeply_nested_json_is_the_sdks_error_not_a_recursion_error(
    fuzz: FuzzServer, status: int, body: bytes
) -> None:
    fuzz.reply = Reply(status, body, {"Content-Type": "application/json"})
    async with InboxClient(TOKEN, base_url=fuzz.url, max_retries=0, rate_limits=None) as client:
        with pytest.raises(InboxError) as info:
            await client.leads.update(LIST_ID, "44196397", UPDATE)
    if status == 200:
        assert isinstance(info.value, APIResponseValidationError)
    else:
        assert isinstance(info.value, InternalServerError)
        assert info.value.status_code == 500


@pytest.mark.parametrize("header", ["X-RateLimit-Remaining", "X-RateLimit-Limit"])
@pytest.mark.parametrize("value", ["inf", "-inf", "1e400"])
async def test_an_infinite_rate_limit_header_is_ignored(
    fuzz: FuzzServer, header: str, value: str
) -> None:
    headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299", header: value}
    fuzz.reply = Reply(200, SEED_BYTES, headers)
    async with InboxClient(TOKEN, base_url=fuzz.url, rate_limits=None) as client:
        lead = await client.leads.update(LIST_ID, "44196397", UPDATE)
        lead = await client.leads.update(LIST_ID, "44196397", UPDATE)
        assert client.rate_limit.in_flight == 0
    assert lead.data == SEED["data"]
    assert fuzz.hits == 2


@pytest.mark.parametrize("header", ["X-RateLimit-Remaining", "X-RateLimit-Limit"])
async def test_an_infinite_rate_limit_header_is_ignored_by_the_redis_limiter_too(
    fuzz: FuzzServer, redis_url: str, header: str
) -> None:
    from inbox_async._ratelimit._redis import RedisRateLimiter

    headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299", header: "inf"}
    fuzz.reply = Reply(200, SEED_BYTES, headers)
    async with (
        RedisRateLimiter(redis_url, limits=[(100, 1.0)], key=f"fuzz:{header}") as limiter,
        InboxClient(TOKEN, base_url=fuzz.url, limiter=limiter) as client,
    ):
        await client.leads.update(LIST_ID, "44196397", UPDATE)
        lead = await client.leads.update(LIST_ID, "44196397", UPDATE)
        assert client.rate_limit.in_flight == 0
    assert lead.data == SEED["data"]
    assert fuzz.hits == 2


@pytest.mark.parametrize(
    "retry_after", ["Fri, 31 Dec 9999 23:59:59 -2359", "Fri, 31 Dec 9999 23:59:59 -0100"]
)
@pytest.mark.parametrize("status", [429, 503])
async def test_a_retry_after_date_in_year_9999_gives_up_at_once(
    fuzz: FuzzServer, retry_after: str, status: int
) -> None:
    fuzz.reply = Reply(status, b"", {"Retry-After": retry_after})
    async with InboxClient(TOKEN, base_url=fuzz.url, rate_limits=None) as client:
        with pytest.raises(APIStatusError) as info:
            await client.leads.update(LIST_ID, "44196397", UPDATE)
    assert info.value.status_code == status
    # A wait that long is not waited out: the call gives up at once, after one attempt.
    assert fuzz.hits == 1


# -- a wrong type in an optional field only loses that field ---------------------------------


def _drop_field(doc: Any, path: tuple[str | int, ...]) -> None:
    """Remove the innermost object key on `path`: what a lenient decoder gives up."""
    keys = [i for i, key in enumerate(path) if isinstance(key, str)]
    last = keys[-1]
    node = doc
    for key in path[:last]:
        node = node[key]
    del node[path[last]]


@pytest.mark.slow
@FUZZ
@given(path=st.sampled_from(PATHS), value=JSON_VALUES)
async def test_a_wrong_type_in_one_optional_field_loses_only_that_field(
    fuzz: FuzzServer, path: tuple[str | int, ...], value: Any
) -> None:
    mutated = copy.deepcopy(SEED)
    assert _set(mutated, path, value)
    body = json.dumps(mutated).encode()
    fuzz.reply = Reply(200, body, {"Content-Type": "application/json"})
    async with InboxClient(TOKEN, base_url=fuzz.url, max_retries=0, rate_limits=None) as client:
        lead = await client.leads.update(LIST_ID, "44196397", UPDATE)
    try:
        # The oracle: strict decoding, with no repair at all.
        expected = msgspec.json.decode(body, type=Lead)
    except msgspec.ValidationError:
        # The repair may keep more than the mutated field's default (a wrong type nested
        # inside the new value loses only itself), so compare everything outside that field.
        got = msgspec.to_builtins(lead)
        want = msgspec.to_builtins(msgspec.json.decode(json.dumps(SEED).encode(), type=Lead))
        _drop_field(got, path)
        _drop_field(want, path)
        assert got == want
    else:
        assert lead == expected


# -- huge bodies -----------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_huge_lead_decodes_and_a_huge_error_is_summarised(fuzz: FuzzServer) -> None:
    big = "x" * (8 * 2**20)
    doc = copy.deepcopy(SEED)
    doc["data"][COL_COMPANY] = big
    fuzz.reply = Reply(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    async with InboxClient(TOKEN, base_url=fuzz.url, max_retries=0, rate_limits=None) as client:
        lead = await client.leads.update(LIST_ID, "44196397", UPDATE)
        assert lead.data[COL_COMPANY] == big
        fuzz.reply = Reply(502, b"<html>" + b"oops " * 2**20, {"Content-Type": "text/html"})
        with pytest.raises(InternalServerError) as info:
            await client.leads.update(LIST_ID, "44196397", UPDATE)
        assert info.value.status_code == 502
        assert len(info.value.body) == 4096
        assert len(str(info.value)) < 300
        fuzz.reply = Reply(200, b"\x00" * (4 * 2**20), {"Content-Type": "application/json"})
        with pytest.raises(APIResponseValidationError):
            await client.leads.update(LIST_ID, "44196397", UPDATE)


async def test_a_body_cut_off_mid_way_is_a_connection_error_and_is_retried(
    fuzz: FuzzServer,
) -> None:
    fuzz.reply = Reply(200, SEED_BYTES[:100], {"Content-Type": "application/json"}, cut=True)

    async def no_wait(delay: float) -> None:
        return None

    async with InboxClient(
        TOKEN, base_url=fuzz.url, max_retries=2, rate_limits=None, sleep=no_wait
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.leads.update(LIST_ID, "44196397", UPDATE)
    assert info.value.request_sent is True
    assert fuzz.hits == 3
