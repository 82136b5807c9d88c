"""The inbox-async command line, run as a real process against the fake server."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import sys
from pathlib import Path

import pytest

from inbox_async.cli._csv import escape_cell, unescape_cell
from inbox_async.testing import FakeInboxServer

from .conftest import COL_COMPANY, COL_TITLE, TOKEN, eventually, lead_ids, seed_list, write_csv

# Each test runs the command in a subprocess (aiohttp's import alone is 0.35 s of CPU): the
# interpreters of the matrix other than .venv's leave them out (scripts/_matrix.py).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


async def _cli(*args: str, base_url: str = "http://127.0.0.1:9/api/v1") -> tuple[int, str, str]:
    proc = await _start(*args, base_url=base_url)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _start(*args: str, base_url: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "INBOX_API_TOKEN": TOKEN, "INBOX_API_BASE_URL": base_url}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inbox_async.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("header", "extra", "message"),
    [
        (["id", COL_COMPANY], [], "no platformId column"),
        (["platformId", "Company"], [], "unknown header 'Company'"),
        (["platformId", "Company"], ["--map", "Company=notacolumn"], "is not a column id"),
        (["platformId", COL_COMPANY], ["--map", "Nope=custom_abc"], "not in"),
        (["platformId", COL_COMPANY], ["--concurrency", "0"], "--concurrency"),
        (["platformId", COL_COMPANY], ["--rate-limit", "fast"], "--rate-limit"),
    ],
)
async def test_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path, header: list[str], extra: list[str], message: str
) -> None:
    path = write_csv(tmp_path / "in.csv", header, [["1", "x"]])
    code, out, err = await _cli("bulk-update", str(path), "--list", "abc", *extra)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


async def test_an_unreadable_file_exits_2(tmp_path: Path) -> None:
    code, _, err = await _cli("bulk-update", str(tmp_path / "missing.csv"), "--list", "abc")
    assert code == 2
    assert "cannot read" in err and "Traceback" not in err


async def test_a_missing_token_exits_2(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "x"]])
    env = {k: v for k, v in os.environ.items() if k != "INBOX_API_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inbox_async.cli", "bulk-update", str(path), "--list", "abc",
        cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"INBOX_API_TOKEN" in err


async def test_dry_run_checks_everything_and_sends_nothing(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    path = write_csv(
        tmp_path / "in.csv",
        ["platformId", "Company", COL_TITLE],
        [[str(i), f"Co {i}", ""] for i in range(1, 701)] + [["", "no id", ""]],
    )
    code, out, _ = await _cli(
        "bulk-update", str(path), "--list", "abc", "--map", f"Company={COL_COMPANY}",
        "--dry-run", base_url=server.url,
    )  # fmt: skip
    assert code == 1  # one row cannot be sent
    assert "700 updates, 1 rows that cannot be sent" in out
    assert f"{COL_COMPANY}, {COL_TITLE}" in out
    # Background work (the default) is paced at 270 a minute: 699 gaps of 60/270 s.
    assert "estimate: 2 min 35 s at 300/60s" in out
    assert server.requests == []


@pytest.mark.parametrize(
    ("extra", "estimate"),
    [
        (["--priority", "interactive"], "estimate: 2 min 0 s at 300/60s, 10000/3600s"),
        (["--reserve", "0"], "estimate: 2 min 20 s at 300/60s"),
        (["--reserve", "0.5"], "estimate: 4 min 40 s at 300/60s"),
        (["--priority", "background", "--reserve", "0.25"], "background with a reserve of 0.25"),
    ],
)
async def test_priority_and_reserve_shape_the_estimate(
    tmp_path: Path, extra: list[str], estimate: str
) -> None:
    path = write_csv(
        tmp_path / "in.csv", ["platformId", COL_COMPANY], [[str(i), "x"] for i in range(1, 701)]
    )
    code, out, err = await _cli("bulk-update", str(path), "--list", "abc", "--dry-run", *extra)
    assert code == 0, err
    assert estimate in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reserve", "1"], "argument --reserve: must be in [0, 1)"),
        (["--reserve", "-0.1"], "argument --reserve: must be in [0, 1)"),
        (["--reserve", "nan"], "argument --reserve: must be in [0, 1)"),
        (["--reserve", "lots"], "argument --reserve: takes a fraction in [0, 1)"),
        (["--priority", "urgent"], "argument --priority: invalid choice: 'urgent'"),
    ],
)
async def test_bad_priority_or_reserve_exits_2_naming_the_option(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "x"]])
    code, out, err = await _cli("bulk-update", str(path), "--list", "abc", *extra)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


async def test_priority_interactive_uses_the_whole_window_unpaced(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    # A window of 4 a minute with a reserve of 0.5: background work would send 2 of these
    # rows, 30 s apart, and wait a minute for the rest. Interactive sends all 4 at once.
    ids = ["1", "2", "3", "4"]
    list_id = seed_list(server, ids)
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [[i, "x"] for i in ids])
    code, _, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--no-journal", "--no-progress",
        "--rate-limit", "4/60", "--reserve", "0.5", "--priority", "interactive",
        base_url=server.url,
    )  # fmt: skip
    assert code == 0, err
    assert len(server.requests) == 4


async def test_bulk_update_applies_rows_and_writes_safe_failures(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = seed_list(server, ["1", "2", "3"], (COL_COMPANY, COL_TITLE))
    server.lead_data(list_id, "2")  # exists
    path = write_csv(
        tmp_path / "in.csv",
        ["platformId", "Company", COL_TITLE],
        [
            ["1", "Acme", "CEO"],
            ["2", "Globex", ""],  # empty cell: left alone
            ["404", '=HYPERLINK("http://evil")', "CTO"],  # not in the list
            ["", "no id", ""],
        ],
    )
    failures = tmp_path / "failures.csv"
    code, out, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--map", f"Company={COL_COMPANY}",
        "--failures", str(failures), "--no-progress", base_url=server.url,
    )  # fmt: skip
    assert code == 1, err
    assert "applied 2, failed 2" in out
    assert server.lead_data(list_id, "1") == {COL_COMPANY: "Acme", COL_TITLE: "CEO"}
    assert server.lead_data(list_id, "2") == {COL_COMPANY: "Globex"}
    with failures.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["platformId", "Company", COL_TITLE, "inbox_error"]
    by_id = {row[0]: row for row in rows[1:]}
    assert set(by_id) == {"404", ""}
    # Safe to open in a spreadsheet: the formula is inert text.
    assert by_id["404"][1] == '\'=HYPERLINK("http://evil")'
    assert "LEAD_NOT_FOUND" in by_id["404"][3]
    # ... and the failures file can be fed straight back in.
    server.add_leads(list_id, ["404"])
    code, out, err = await _cli(
        "bulk-update", str(failures), "--list", list_id, "--map", f"Company={COL_COMPANY}",
        "--no-progress", "--no-journal", base_url=server.url,
    )  # fmt: skip
    assert "applied 1" in out, err
    assert server.lead_data(list_id, "404") == {
        COL_COMPANY: '=HYPERLINK("http://evil")',
        COL_TITLE: "CTO",
    }


async def test_clear_empty_sends_null_for_empty_cells(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = seed_list(server, ["1"], (COL_COMPANY, COL_TITLE))
    path = write_csv(tmp_path / "a.csv", ["platformId", COL_COMPANY, COL_TITLE], [["1", "A", "B"]])
    await _cli("bulk-update", str(path), "--list", list_id, base_url=server.url)
    path = write_csv(tmp_path / "b.csv", ["platformId", COL_COMPANY, COL_TITLE], [["1", "", "C"]])
    code, _, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--clear-empty", base_url=server.url
    )
    assert code == 0, err
    assert server.lead_data(list_id, "1") == {COL_TITLE: "C"}


async def test_a_row_with_nothing_to_set_is_skipped_not_sent(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = seed_list(server, ["1", "2", "3"], (COL_COMPANY, COL_TITLE))
    rows = [["1", "A", ""], ["2", "", ""], ["3", "", "C"]]
    path = write_csv(tmp_path / "a.csv", ["platformId", COL_COMPANY, COL_TITLE], rows)
    code, out, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--no-progress", base_url=server.url
    )
    assert code == 0, err
    assert "applied 2" in out + err and "skipped 1" in out + err
    assert sorted(r.path.rsplit("/", 1)[-1] for r in server.requests) == ["1", "3"]


@pytest.mark.slow
async def test_killed_midway_then_resumed_with_the_journal(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    rows = 400
    concurrency = 8
    ids = [str(60_000_000 + i) for i in range(rows)]
    list_id = seed_list(server, ids)
    server.set_latency(0.01)
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [[i, f"v{i}"] for i in ids])
    journal = tmp_path / "job.journal"
    args = (
        "bulk-update", str(path), "--list", list_id, "--journal", str(journal),
        "--concurrency", str(concurrency), "--rate-limit", "100000/1", "--no-progress",
    )  # fmt: skip
    proc = await _start(*args, base_url=server.url)
    await eventually(lambda: len(server.requests) >= 150, timeout=30)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    first_run = len(server.requests)
    assert first_run < rows
    code, out, err = await _cli(*args, base_url=server.url)
    assert code == 0, err
    patches = sum(1 for r in server.requests if r.method == "PATCH")
    assert all(server.lead_data(list_id, i) == {COL_COMPANY: f"v{i}"} for i in ids)
    assert patches <= rows + concurrency
    assert "skipped" in out


@pytest.mark.slow
async def test_ctrl_c_stops_cleanly_and_says_how_to_resume(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    ids = lead_ids(300, 61_000_000)
    list_id = seed_list(server, ids)
    server.set_latency(0.02)
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [[i, "x"] for i in ids])
    proc = await _start(
        "bulk-update", str(path), "--list", list_id, "--no-progress", base_url=server.url
    )
    await eventually(lambda: len(server.requests) >= 30, timeout=30)
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130
    assert "to resume, run:" in err.decode()
    assert "--journal" in err.decode()
    assert "Traceback" not in err.decode()
    assert "applied" in out.decode()


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "plain", "'quoted"])
def test_cell_escaping_round_trips(cell: str) -> None:
    escaped = escape_cell(cell)
    assert not escaped.startswith(("=", "+", "-", "@", "\t"))
    assert unescape_cell(escaped) == cell


@pytest.mark.slow
async def test_the_demo_runs_and_reports_as_expected() -> None:
    code, out, err = await _cli("demo", "--no-progress")
    assert code == 0, err
    assert "applied 2995, failed 5" in out
    assert "as expected" in out


# -- one N/SECONDS parser, for the command line and the fake server ----------------------------

# Each is refused before anything runs: a count a float cannot hold (the estimate's arithmetic
# overflowed), a window that is not a finite positive number of seconds, or not a window at all.
_BAD_WINDOWS = [f"{10**400}/60", "5/inf", "5/nan", "5/1e300", "0/60", "5/0", "fast", "5"]


@pytest.mark.parametrize("window", _BAD_WINDOWS)
async def test_a_bad_rate_limit_exits_2_naming_the_option(tmp_path: Path, window: str) -> None:
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "x"]])
    code, out, err = await _cli(
        "bulk-update", str(path), "--list", "abc", "--dry-run", "--rate-limit", window
    )
    assert (code, "Traceback" in err + out) == (2, False), err
    assert "--rate-limit" in err, err


@pytest.mark.parametrize("window", _BAD_WINDOWS)
async def test_the_fake_servers_bad_rate_limit_exits_2_naming_the_option(window: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inbox_async.testing", "--port", "0", "--rate-limit", window,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    # A window it accepted starts the server, which prints its url= line and serves on.
    first = await asyncio.wait_for(proc.stdout.readline(), 30)
    if first:
        proc.kill()
        await proc.wait()
        pytest.fail(f"--rate-limit {window} was accepted: {first!r}")
    err = await asyncio.wait_for(proc.stderr.read(), 30)
    await proc.wait()
    assert (proc.returncode, b"Traceback" in err) == (2, False), err
    assert b"--rate-limit" in err.splitlines()[-1], err


@pytest.mark.parametrize(
    ("text", "window"),
    [("300/60", (300, 60.0)), ("1/0.5", (1, 0.5)), (" 10 / 1 ", (10, 1.0)), ("7/1e3", (7, 1000.0))],
)
def test_parse_rate_limit_reads_n_per_seconds(text: str, window: tuple[int, float]) -> None:
    from inbox_async._validation import parse_rate_limit

    assert parse_rate_limit("--rate-limit", text) == window


def test_parse_rate_limit_names_the_callers_option() -> None:
    from inbox_async._validation import parse_rate_limit

    for window in _BAD_WINDOWS:
        with pytest.raises(ValueError, match=r"^--limit\b") as caught:
            parse_rate_limit("--limit", window)
        # The refused text is shown cut short, not 400 digits of it.
        assert len(str(caught.value)) < 200
    with pytest.raises(TypeError, match=r"^--limit must be a str"):
        parse_rate_limit("--limit", 300)


# -- help texts are built from the constants ----------------------------------------------------


def test_help_and_defaults_follow_the_constants(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from inbox_async.cli import _parser, main

    monkeypatch.setattr(_parser, "CLI_CONCURRENCY", 7)
    monkeypatch.setattr(_parser, "DEFAULT_RATE_LIMITS", ((5, 1.0), (20, 3600.0)))
    monkeypatch.setattr(_parser, "CLI_CELL_LIMIT", 64 * 1024)
    monkeypatch.setattr(_parser, "EXIT_USAGE", 9)
    args = _parser.build_parser().parse_args(["bulk-update", "in.csv", "--list", "abc"])
    assert args.concurrency == 7
    with pytest.raises(SystemExit) as exited:
        main(["bulk-update", "--help"])
    assert exited.value.code == 0
    # argparse re-wraps option help: compare with the whitespace folded.
    shown = " ".join(capsys.readouterr().out.split())
    assert "requests at once (7)" in shown
    assert "(default 5/1 20/3600)" in shown
    assert "a cell over 64 KiB" in shown
    assert "9 bad usage or bad input" in shown


@pytest.mark.parametrize("module", ["inbox_async", "inbox_async.cli"])
async def test_python_dash_m_runs_the_command_line(module: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--version", cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert out.decode().startswith("inbox-async ")
