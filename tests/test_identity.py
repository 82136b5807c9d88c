"""Identity and logs: one version everywhere, a telling User-Agent, INBOX_LOG without code."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import inbox_async
from inbox_async import InboxClient
from inbox_async.cli import main
from inbox_async.testing import FakeInboxServer

from .conftest import COL_COMPANY, TOKEN, seed_list, tiny_server

ROOT = Path(__file__).resolve().parent.parent
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _pyproject_version() -> str:
    # A regex, not tomllib: tomllib is 3.11+, and the suite runs on 3.10 too.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)
    assert found, "no version line in pyproject.toml"
    return found.group(1)


def test_the_version_is_the_package_metadata_and_that_is_pyproject() -> None:
    assert inbox_async.__version__ == metadata.version("inbox-async")
    # An editable install records the version when it is installed: a stale one shows here.
    assert inbox_async.__version__ == _pyproject_version(), "reinstall: ./scripts/test does it"


def test_the_cli_prints_the_same_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"inbox-async {inbox_async.__version__}"


async def test_the_fake_server_sees_the_user_agent() -> None:
    expected = (
        f"inbox-async/{inbox_async.__version__} Python/{PYTHON} aiohttp/{aiohttp.__version__}"
    )
    async with FakeInboxServer(token=TOKEN) as server:
        list_id = seed_list(server, ["1"])
        async with InboxClient(TOKEN, base_url=server.url, rate_limits=None) as client:
            await client.leads.update(list_id, "1", {COL_COMPANY: "Acme"})
        (request,) = server.requests
    assert request.headers["User-Agent"] == expected


async def test_a_plain_aiohttp_server_sees_one_user_agent_of_that_form() -> None:
    seen: list[list[str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.getall("User-Agent"))
        return web.json_response({"data": {"id": "p1"}})

    async with (
        tiny_server(handler) as base_url,
        InboxClient(TOKEN, base_url=base_url, rate_limits=None, max_retries=0) as client,
    ):
        # Whatever the call returns, the server saw the header: only that is checked here.
        await asyncio.gather(
            client.leads.update("abc", "1", {COL_COMPANY: "x"}), return_exceptions=True
        )
    assert len(seen) == 1 and len(seen[0]) == 1
    assert re.fullmatch(r"inbox-async/\S+ Python/3\.\d+ aiohttp/\S+", seen[0][0]), seen


# -- INBOX_LOG ---------------------------------------------------------------------------------

# One real request against the fake server, in a fresh interpreter that reads INBOX_LOG at
# import; `-W error` so that a warning at import would fail the run.
_SCRIPT = f"""
import asyncio
import os
from inbox_async import InboxClient
from inbox_async.testing import FakeInboxServer

async def run():
    async with FakeInboxServer(token="{TOKEN}") as server:
        list_id = server.create_list(columns=["{COL_COMPANY}"])
        server.add_leads(list_id, ["1"])
        async with InboxClient("{TOKEN}", base_url=server.url, rate_limits=None) as client:
            await client.leads.update(list_id, "1", {{"{COL_COMPANY}": "Acme"}})
    print("done")

asyncio.run(run())
"""


def _run_with(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "INBOX_LOG"}
    if value is not None:
        env["INBOX_LOG"] = value
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", _SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


_REQUEST_LINE = re.compile(r"inbox_async DEBUG\] PATCH /lists/\S+/leads/1 -> 200 in [\d.]+ ms")


@pytest.mark.slow
@pytest.mark.parametrize("value", ["debug", " Debug "])
def test_inbox_log_debug_shows_each_request_on_stderr(value: str) -> None:
    proc = _run_with(value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert _REQUEST_LINE.search(proc.stderr), proc.stderr


@pytest.mark.slow
def test_inbox_log_info_leaves_out_the_debug_lines() -> None:
    proc = _run_with("info")
    assert proc.returncode == 0, proc.stderr
    assert "DEBUG" not in proc.stderr and "PATCH" not in proc.stderr


@pytest.mark.slow
def test_without_inbox_log_nothing_is_printed() -> None:
    proc = _run_with(None)
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("done\n", "")


@pytest.mark.slow
def test_an_unknown_inbox_log_is_said_once_and_ignored() -> None:
    proc = _run_with("verbose")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert proc.stderr == "inbox_async: ignoring INBOX_LOG='verbose': expected debug or info\n"


@pytest.mark.slow
def test_a_huge_inbox_log_is_shown_capped() -> None:
    proc = _run_with("x" * 10_000)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and len(proc.stderr) < 200, proc.stderr
