"""Security: the token stays secret, redirects and headers cannot leak or smuggle, inputs cannot
reach another endpoint, and failure files are inert in a spreadsheet.

Already proven elsewhere, not repeated here (all in tests/):
- the token absent from the DEBUG logs of a retried call:
  test_client.py::test_debug_logs_show_each_attempt_without_the_token
- a 307 to another port not followed:
  test_client.py::test_a_redirect_to_another_host_is_not_followed
- a CR/LF token refused without echoing it:
  test_config.py::test_token_with_cr_lf_is_refused_without_echoing_it
- a CR/LF default header value, and an Authorization default header, refused:
  test_config.py::test_default_headers_cannot_smuggle_headers_or_auth
- plain http to three remote hosts refused, loopback allowed: test_config.py::test_plain_http_*
- "../x", "?", "#", "%2F" and friends as platform ids:
  test_leads.py::test_path_parameters_cannot_change_the_endpoint
- one formula cell escaped and fed back:
  test_cli.py::test_bulk_update_applies_rows_and_writes_safe_failures
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import secrets
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.pretty import pretty_repr
from yarl import URL

import inbox_async
from inbox_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BulkReport,
    ClientClosedError,
    InboxClient,
    InboxError,
    InternalServerError,
    NotFoundError,
    RateLimiter,
    RateLimitError,
)
from inbox_async.bulk import LeadUpdate
from inbox_async.cli._csv import FailureWriter, iter_rows, read_plan
from inbox_async.testing import FakeInboxServer, Fault

from .conftest import (
    COL_COMPANY,
    COL_TITLE,
    LEADS,
    TOKEN,
    UPDATE,
    RecordingSleep,
    closed_port,
    seed_list,
)

ROOT = Path(__file__).resolve().parent.parent
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _secret() -> str:
    # Made at run time: a literal would show in tracebacks as source code, which proves nothing.
    return "sk_live_" + secrets.token_hex(16)


# -- the token -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.matrix
async def test_the_token_is_absent_from_debug_logs_reprs_errors_and_tracebacks(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    secret, wrong = _secret(), _secret()
    texts: dict[str, str] = {}
    errors: list[BaseException] = []
    asyncio.get_running_loop().set_debug(True)
    caplog.set_level(logging.DEBUG)  # the root logger: aiohttp, asyncio and the SDK alike
    async with FakeInboxServer(token=secret) as server:
        list_id = seed_list(server, LEADS, (COL_COMPANY, COL_TITLE))
        sleep = RecordingSleep()
        client = InboxClient(
            secret, base_url=server.url, sleep=sleep, timeout=0.3, rate_limits=[(100, 1.0)]
        )
        async with client:
            await client.leads.update(list_id, LEADS[0], UPDATE)
            server.add_fault(Fault.status(503))
            server.add_fault(Fault.drop())
            await client.leads.update(list_id, LEADS[1], UPDATE)  # retried twice
            server.add_fault(Fault.delay(2.0))
            server.add_fault(Fault.html(502))
            server.add_fault(Fault.truncated())
            server.add_fault(Fault.status(429, retry_after=0))
            for pid in [LEADS[2], LEADS[3], LEADS[4], LEADS[5], "999"]:
                try:
                    await client.leads.update(list_id, pid, UPDATE, max_retries=0)
                except InboxError as exc:
                    errors.append(exc)
            try:
                await client.leads.update("Not-An-Id", LEADS[0], UPDATE)
            except ValueError as exc:
                errors.append(exc)
            report = await client.leads.bulk_update(
                list_id, [(LEADS[6], UPDATE), ("404404", UPDATE), ("", UPDATE)]
            )
            texts["report"] = repr(report) + "".join(repr(f) + str(f.error) for f in report.failed)
            async with client.leads.bulk_update_stream(list_id, [(LEADS[7], UPDATE)]) as stream:
                texts["outcomes"] = "".join([repr(outcome) async for outcome in stream])
            for name in ("leads", "import_jobs", "prospects", "limiter", "stats", "rate_limit"):
                texts[name] = repr(getattr(client, name))
            texts["client (open)"] = repr(client) + str(client)
        texts["client (closed)"] = repr(client)
        try:
            await client.leads.update(list_id, LEADS[0], UPDATE)
        except ClientClosedError as exc:
            errors.append(exc)
        async with InboxClient(wrong, base_url=server.url, sleep=sleep) as intruder:
            try:
                await intruder.prospects.lookup("1")
            except AuthenticationError as exc:
                errors.append(exc)
    refused = f"http://127.0.0.1:{closed_port()}/api/v1"
    async with InboxClient(secret, base_url=refused, sleep=sleep, max_retries=1) as offline:
        try:
            await offline.leads.update(list_id, LEADS[0], UPDATE)
        except APIConnectionError as exc:
            errors.append(exc)
    for bad in [
        lambda: InboxClient(secret, base_url="http://inboxapp.com/api/v1"),
        lambda: InboxClient(secret + "\r\nX-Evil: 1"),
        lambda: InboxClient(secret, timeout=-1),
    ]:
        try:
            bad()
        except ValueError as exc:
            errors.append(exc)
    asyncio.get_running_loop().set_debug(False)

    kinds = {type(e).__name__ for e in errors}
    assert {
        "APITimeoutError",
        "RateLimitError",
        "InternalServerError",
        "APIResponseValidationError",
        "NotFoundError",
        "ClientClosedError",
        "AuthenticationError",
        "APIConnectionError",
        "ValueError",
    } <= kinds
    for i, error in enumerate(errors):
        texts[f"error {i} {type(error).__name__}"] = (
            str(error) + repr(error) + "".join(traceback.format_exception(error))
        )
        if isinstance(error, APIStatusError):
            texts[f"error {i} headers and body"] = str(dict(error.headers)) + repr(error.body)
    texts["logs"] = caplog.text
    out, err = capsys.readouterr()
    texts["stdout/stderr"] = out + err
    assert f"PATCH /lists/{list_id}/leads/{LEADS[1]} -> 503" in caplog.text  # DEBUG was on
    for what, text in texts.items():
        for token in (secret, wrong):
            assert token not in text, f"the token shows in {what}"
            assert token[8:] not in text, f"part of the token shows in {what}"


async def test_tracebacks_with_local_variables_do_not_show_the_token(
    sleep: RecordingSleep,
) -> None:
    # Error trackers (Sentry's default include_local_variables=True), rich tracebacks and
    # pytest -l render each frame's locals with repr(): the SDK's own frames must be clean.
    secret = _secret()
    errors: list[BaseException] = []
    async with FakeInboxServer(token=secret) as server:
        list_id = seed_list(server, LEADS)
        server.add_fault(Fault.status(500), times=3)
        async with InboxClient(secret, base_url=server.url, sleep=sleep, max_retries=2) as c:
            with pytest.raises(InternalServerError) as retried:
                await c.leads.update(list_id, LEADS[0], UPDATE)
            errors.append(retried.value)
            with pytest.raises(NotFoundError) as missing:
                await c.leads.update(list_id, "999", UPDATE)
            errors.append(missing.value)
    package = str(Path(inbox_async.__file__).parent)
    for exc in errors:
        summary = traceback.TracebackException.from_exception(exc, capture_locals=True)
        frames = [f for f in summary.stack if f.filename.startswith(package)]
        assert frames and all(f.locals for f in frames)  # the SDK's frames and their locals
        for frame in frames:
            assert frame.locals is not None
            for name, value in frame.locals.items():
                assert secret not in value, (
                    f"the token shows in {type(exc).__name__}'s traceback: local {name!r} of "
                    f"{frame.name} ({Path(frame.filename).name}:{frame.lineno})"
                )
        # rich tracebacks (show_locals=True) render locals with __rich_repr__ where one exists,
        # as msgspec Structs such as the pipeline's Request have: the same must hold there.
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.startswith(package):
                for name, value in tb.tb_frame.f_locals.items():
                    assert secret not in pretty_repr(value), f"rich shows the token in {name!r}"
            tb = tb.tb_next


# -- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(
    ("bind", "target_host"), [("127.0.0.1", "localhost"), ("127.0.0.2", "127.0.0.2")]
)
async def test_nothing_is_sent_after_a_redirect_to_another_host(
    sleep: RecordingSleep, status: int, bind: str, target_host: str
) -> None:
    seen: list[str | None] = []
    async with FakeInboxServer(token=TOKEN, host=bind) as other:
        list_id = seed_list(other, LEADS)
        port = URL(other.origin).port

        async def redirect(request: web.BaseRequest) -> web.StreamResponse:
            seen.append(request.headers.get("Authorization"))
            location = f"http://{target_host}:{port}{request.path_qs}"
            return web.Response(status=status, headers={"Location": location})

        runner = web.ServerRunner(web.Server(redirect, access_log=None))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base_url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1"
        try:
            async with InboxClient(TOKEN, base_url=base_url, sleep=sleep, max_retries=0) as c:
                with pytest.raises(APIStatusError) as info:
                    await c.leads.update(list_id, LEADS[0], UPDATE)
        finally:
            await runner.cleanup()
        assert seen == [f"Bearer {TOKEN}"]
        # Not followed at all: the other host saw neither the token nor the body.
        assert info.value.status_code == status
        assert other.requests == []
        assert other.lead_data(list_id, LEADS[0]) == {}


# -- CR/LF and header smuggling --------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\r", "\n", "\r\n", "\0", "\r\nX-Evil: 1"])
@pytest.mark.parametrize("where", ["token", "header name", "header value"])
def test_cr_lf_or_nul_in_the_token_or_any_header_is_refused(where: str, bad: str) -> None:
    secret = _secret()
    base = "http://127.0.0.1:1/api/v1"
    with pytest.raises(ValueError, match="CR, LF") as info:
        if where == "token":
            InboxClient(secret[:10] + bad + secret[10:], base_url=base)
        elif where == "header name":
            InboxClient(secret, base_url=base, default_headers={f"X-Team{bad}": "a"})
        else:
            InboxClient(secret, base_url=base, default_headers={"X-Team": f"a{bad}b"})
    assert secret[10:] not in str(info.value)


async def test_cr_lf_in_path_and_query_parameters_is_encoded_not_sent_raw(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    injected = "1\r\nX-Evil: 1\r\n\r\nGET /api/v1/other HTTP/1.1"
    server.add_leads(list_id, [injected])
    lead = await client.leads.update(list_id, injected, UPDATE)
    assert lead.data == UPDATE
    assert server.lead_data(list_id, injected) == UPDATE
    await client.prospects.lookup(injected)
    with pytest.raises(APIStatusError):  # an unknown cursor is the server's 400
        await client.import_jobs.list_page(list_id, cursor=injected)
    assert len(server.requests) == 3
    for request in server.requests:
        assert "X-Evil" not in request.headers
        assert "\r" not in request.path + request.query and "\n" not in request.path
    assert parse_qs(server.requests[1].query) == {"platformId": [injected]}
    assert parse_qs(server.requests[2].query)["cursor"] == [injected]


# -- plain http ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.nip.io/api/v1",
        "http://localhost.example.com/api/v1",
        "http://0.0.0.0:8080/api/v1",
        "http://[::ffff:127.0.0.1]/api/v1",
        "http://127.1/api/v1",
        "http://2130706433/api/v1",
        "http://localhost./api/v1",
        "HTTP://inboxapp.com/api/v1",
        "  http://inboxapp.com/api/v1",
        "http://127.0.0.1@inboxapp.com/api/v1",
        "http://inboxapp.com#@127.0.0.1",
        "http://inboxapp.com?@127.0.0.1",
        "http://inboxapp.com\\@127.0.0.1",
        "http://inboxapp.com%2f@127.0.0.1",
    ],
)
def test_plain_http_to_anything_but_loopback_is_refused(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="base_url"):
        InboxClient("t", base_url=url)
    monkeypatch.setenv("INBOX_API_BASE_URL", url)
    with pytest.raises(ValueError, match="base_url"):
        InboxClient("t")


def test_plain_http_is_allowed_with_the_explicit_opt_in_only() -> None:
    url = "http://inboxapp.internal:8080/api/v1"
    with pytest.raises(ValueError, match="allow_insecure_http"):
        InboxClient("t", base_url=url)
    assert InboxClient("t", base_url=url, allow_insecure_http=True).base_url == url


# -- path parameters -------------------------------------------------------------------------

PLATFORM_IDS = st.text(
    st.characters(exclude_categories=["Cs"]),  # lone surrogates cannot be UTF-8
    min_size=1,
    max_size=24,
).filter(lambda s: not s.isspace())


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(platform_id=PLATFORM_IDS)
@example(platform_id="..")
@example(platform_id="%2e%2e")
@example(platform_id="..%2Fimport-jobs")
@example(platform_id="\\..\\")
@example(platform_id="x;y=1")
@example(platform_id="\uff0e\uff0e")  # full-width dots
async def test_no_platform_id_can_change_the_endpoint(
    client: InboxClient, server: FakeInboxServer, list_id: str, platform_id: str
) -> None:
    server.clear_requests()
    server.add_leads(list_id, [platform_id])
    value = {COL_COMPANY: f"v{len(platform_id)}"}
    lead = await client.leads.update(list_id, platform_id, value)
    assert lead.data == value
    assert server.lead_data(list_id, platform_id) == value
    (request,) = server.requests
    assert request.method == "PATCH"
    assert request.path.startswith(f"/api/v1/lists/{list_id}/leads/")
    assert request.path.count("/") == 6
    assert request.query == ""


@pytest.mark.parametrize("list_id", ["../x", "a/b", "a?b", "a#b", "A", "a b", "%2e", ""])
async def test_a_list_or_prospect_id_outside_the_id_alphabet_is_refused_before_sending(
    client: InboxClient, server: FakeInboxServer, list_id: str
) -> None:
    calls = [
        lambda: client.leads.update(list_id, "1", UPDATE),
        lambda: client.leads.add(list_id, ["1"]),
        lambda: client.import_jobs.list_page(list_id),
        lambda: client.import_jobs.cancel("abc", list_id),
        lambda: client.prospects.get(list_id),
        lambda: client.prospects.update_context(list_id, notes="x"),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"_id must match"):
            await call()
    assert server.requests == []


# -- CSV failure files -----------------------------------------------------------------------

DANGEROUS = [
    "=1+1",
    '=HYPERLINK("http://evil")',
    "+1",
    "-1",
    "@SUM(A1)",
    "\tx",
    "\r=1",
    "=cmd|' /C calc'!A0",
]


@pytest.mark.slow
async def test_every_cell_of_a_failures_file_is_inert_in_a_spreadsheet(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = server.create_list(columns=[COL_COMPANY, COL_TITLE])
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["platformId", "Company", COL_TITLE])
        for i, cell in enumerate(DANGEROUS):
            # Not in the list: every row fails and lands in the failures file.
            writer.writerow([f"{cell}", cell, f"{i}"])
            writer.writerow([f"{i}", cell, cell])
        writer.writerow(["1", "too", "many", "=cells"])
    failures = tmp_path / "failures.csv"
    env = {**os.environ, "INBOX_API_TOKEN": TOKEN, "INBOX_API_BASE_URL": server.url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inbox_async.cli", "bulk-update", str(source), "--list", list_id,
        "--map", f"Company={COL_COMPANY}", "--failures", str(failures), "--no-progress",
        "--no-journal", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, err.decode()
    with failures.open(newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1 + 2 * len(DANGEROUS) + 1
    cells = [cell for row in rows for cell in row]
    assert all(not cell.startswith(FORMULA_STARTS) for cell in cells), [
        cell for cell in cells if cell.startswith(FORMULA_STARTS)
    ]
    assert sum(cell.startswith("'=") for cell in cells) >= len(DANGEROUS)


CELLS = st.tuples(
    st.sampled_from(["", "'", "''", "'''"]),
    st.sampled_from(["", *FORMULA_STARTS]),
    st.text(
        # Python 3.10's csv module can neither write nor read a NUL (3.11 can): there, a file
        # holding one is refused as broken when it is read, so no NUL can reach the writer.
        st.characters(
            exclude_categories=["Cs"],
            exclude_characters="\0" if sys.version_info < (3, 11) else "",
        ),
        max_size=12,
    ),
).map("".join)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(CELLS.filter(lambda s: s != ""), min_size=1, max_size=8))
@example(values=["'=1+1"])
@example(values=["''+1", "'-1"])
@pytest.mark.slow
def test_a_failures_file_fed_back_in_sets_exactly_the_values_that_failed(
    values: list[str],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.csv"
        source.write_text(f"platformId,{COL_COMPANY}\n")
        plan = read_plan(source, {})
        failures = Path(tmp) / "failures.csv"
        writer = FailureWriter(failures, plan)
        for i, value in enumerate(values):
            writer.write_update(str(i), {COL_COMPANY: value}, f"{value} failed")
        writer.close()
        with failures.open(newline="") as f:
            assert not any(c.startswith(FORMULA_STARTS) for row in csv.reader(f) for c in row)
        back = list(iter_rows(read_plan(failures, {}), clear_empty=False))
    assert back == [LeadUpdate(str(i), {COL_COMPANY: v}) for i, v in enumerate(values)]


def _all_reprs(objects: Iterator[object]) -> str:
    return "".join(repr(o) for o in objects)


def test_reprs_of_limiters_and_reports_hold_no_secrets() -> None:
    secret = _secret()
    client = InboxClient(secret, base_url="http://127.0.0.1:1/api/v1")
    text = _all_reprs(
        iter(
            [
                client,
                client._config,
                client.send,
                client._auth,
                client.limiter,
                RateLimiter(),
                client.stats,
                client.rate_limit,
                BulkReport(),
                APITimeoutError("x"),
                RateLimitError("x"),
            ]
        )
    )
    assert secret not in text


async def test_a_connection_error_chain_shows_no_token_even_with_locals(
    sleep: RecordingSleep,
) -> None:
    # aiohttp's own frames hold the request headers as locals: the SDK chains aiohttp's error
    # (type and message) without them.
    secret = _secret()
    async with FakeInboxServer(token=secret) as server:
        list_id = seed_list(server, LEADS)
        server.add_fault(Fault.drop())
        async with InboxClient(secret, base_url=server.url, sleep=sleep, max_retries=0) as c:
            with pytest.raises(APIConnectionError) as info:
                await c.leads.update(list_id, LEADS[0], UPDATE)
    assert info.value.__cause__ is not None
    summary: traceback.TracebackException | None = traceback.TracebackException.from_exception(
        info.value, capture_locals=True
    )
    chain = []
    while summary is not None:
        chain.append(summary)
        summary = summary.__cause__ or summary.__context__
    assert len(chain) >= 2  # aiohttp's error is still there, by type and message
    for link in chain:
        for frame in link.stack:
            if frame.filename == __file__:
                continue  # this test's own locals hold the secret, of course
            assert secret not in repr(frame.locals), f"{frame.name} ({frame.filename})"
