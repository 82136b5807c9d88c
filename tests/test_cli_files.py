"""The installed `inbox-async` command with real-world files: spreadsheets' shapes and
encodings, a failures file that may be the input, a first pass before anything is sent, usage
errors, and a resume hint that resumes."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inbox_async.testing import FakeInboxServer

from .conftest import COL_COMPANY, COL_TITLE, TOKEN, eventually, lead_ids, seed_list, write_csv

# Each test runs the command in a subprocess (aiohttp's import alone is 0.35 s of CPU): the
# interpreters of the matrix other than .venv's leave them out (scripts/_matrix.py).
pytestmark = pytest.mark.slow

# The console script that `pip install` put beside this interpreter: what a user runs.
SCRIPT = Path(sys.executable).with_name("inbox-async")
FAST = ("--rate-limit", "100000/1", "--no-progress")


def _read_csv(path: Path) -> list[list[str]]:
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 20))
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.reader(f))


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _env(base_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INBOX_API_BASE_URL",)}
    env["INBOX_API_TOKEN"] = TOKEN
    if base_url is not None:
        env["INBOX_API_BASE_URL"] = base_url
    return env


_running: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def _no_process_outlives_its_test() -> AsyncIterator[None]:
    yield
    while _running:
        proc = _running.pop()
        if proc.returncode is None:
            proc.kill()
        await proc.communicate()


async def _start(
    *args: str, base_url: str | None, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run ./scripts/test"
    proc = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        *args,
        env=env if env is not None else _env(base_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _running.append(proc)
    return proc


async def _cli(
    *args: str,
    base_url: str | None = "http://127.0.0.1:9/api/v1",
    env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    proc = await _start(*args, base_url=base_url, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _patches(server: FakeInboxServer) -> int:
    return sum(1 for r in server.requests if r.method == "PATCH")


# -- 8: the failures file ---------------------------------------------------------------------


async def test_failures_file_may_be_the_input_and_keeps_what_failed_again(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = seed_list(server, ["1", "2", "3", "4", "5"], (COL_COMPANY, COL_TITLE))
    path = write_csv(
        tmp_path / "failed.csv",
        ["platformId", COL_COMPANY, COL_TITLE],
        [
            ["1", "A", "x"],
            ["2", "B", ""],
            ["901", "C", "y"],  # not in the list
            ["3", "D", ""],
            ["", "no id", "z"],  # rejected by the CLI itself
            ["4", "E", "w", "", "extra"],  # one cell too many: rejected, every cell kept
            ["902", "F", ""],  # not in the list
            ["5", "G", ""],
        ],
    )
    args = ("bulk-update", str(path), "--list", list_id, "--failures", str(path), "--no-journal")
    code, out, err = await _cli(*args, *FAST, base_url=server.url)
    assert code == 1, err
    assert "applied 4, failed 4" in out
    rows = _read_csv(path)
    assert rows[0] == ["platformId", COL_COMPANY, COL_TITLE, "inbox_error"]
    by_id = {row[0]: row for row in rows[1:]}
    assert set(by_id) == {"901", "902", "", "4"}
    assert by_id[""][:3] == ["", "no id", "z"] and "platformId" in by_id[""][3]
    assert by_id["4"][:3] == ["4", "E", "w"] and by_id["4"][4:] == ["", "extra"]
    assert "cells" in by_id["4"][3]
    assert "LEAD_NOT_FOUND" in by_id["901"][3]

    # Fed back in, onto itself: what is fixed drops out, what fails again stays, once.
    server.add_leads(list_id, ["901"])
    code, out, err = await _cli(*args, *FAST, base_url=server.url)
    assert code == 1, err
    assert "applied 1, failed 3" in out
    rows = _read_csv(path)
    assert rows[0] == ["platformId", COL_COMPANY, COL_TITLE, "inbox_error"]
    assert sorted(row[0] for row in rows[1:]) == ["", "4", "902"]
    assert next(r for r in rows if r[0] == "4")[4:] == ["", "extra"]
    assert server.lead_data(list_id, "901") == {COL_COMPANY: "C", COL_TITLE: "y"}
    assert not [name for name in _names(tmp_path) if name.startswith(".")]


async def test_failures_file_is_replaced_only_when_the_run_ends_even_on_ctrl_c(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    ids = lead_ids(300, 62_000_000)
    list_id = server.create_list(columns=[COL_COMPANY])
    server.add_leads(list_id, ids[::2])  # every other lead is missing: it fails
    server.set_latency(0.02)
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [[i, "x"] for i in ids])
    failures = tmp_path / "failures.csv"
    failures.write_text("old,content\n")
    proc = await _start(
        "bulk-update", str(path), "--list", list_id, "--failures", str(failures),
        "--concurrency", "4", *FAST, base_url=server.url,
    )  # fmt: skip
    await eventually(lambda: len(server.requests) >= 40, timeout=30)
    # The old file stays whole while the run writes beside it.
    assert failures.read_text() == "old,content\n"
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130, err
    rows = _read_csv(failures)
    assert rows[0] == ["platformId", COL_COMPANY, "inbox_error"]
    failed = {row[0] for row in rows[1:]}
    assert failed and failed <= set(ids[1::2])
    assert all(len(row) == 3 for row in rows)
    assert _names(tmp_path) == [
        "failures.csv",
        "in.csv",
        "in.csv.journal",
    ]


async def test_ctrl_c_never_leaves_a_partial_failures_file_over_the_input(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    ids = lead_ids(300, 63_000_000)
    list_id = seed_list(server, ids[::2])
    server.set_latency(0.02)
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [[i, "x"] for i in ids])
    before = path.read_bytes()
    proc = await _start(
        "bulk-update", str(path), "--list", list_id, "--failures", str(path),
        "--concurrency", "4", *FAST, base_url=server.url,
    )  # fmt: skip
    await eventually(lambda: len(server.requests) >= 40, timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130
    # Rows not yet attempted are only in the input: it is kept as it was.
    assert path.read_bytes() == before
    assert "left as it was" in err.decode()


@pytest.mark.slow
async def test_journal_or_failures_over_the_input_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "x"]])
    before = path.read_bytes()
    code, _, err = await _cli("bulk-update", str(path), "--list", "abc", "--journal", str(path))
    assert code == 2 and "--journal" in err and "Traceback" not in err
    code, _, err = await _cli(
        "bulk-update", str(path), "--list", "abc", "--journal", str(tmp_path / "j"),
        "--failures", str(tmp_path / "j"),
    )  # fmt: skip
    assert code == 2 and "--failures" in err
    for option in ("--journal", "--failures"):
        code, _, err = await _cli(
            "bulk-update", str(path), "--list", "abc", option, str(tmp_path / "no" / "f")
        )
        assert code == 2 and option in err and "Traceback" not in err
    assert path.read_bytes() == before


# -- 9: the first pass ------------------------------------------------------------------------


async def test_a_bad_byte_late_in_the_file_sends_nothing(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = server.create_list(columns=[COL_COMPANY])
    path = tmp_path / "in.csv"
    lines = [b"platformId," + COL_COMPANY.encode()]
    lines += [f"{1000 + i},Company {i}".encode() for i in range(2000)]
    lines[1501] = b"2501,Caf\xe9"  # Latin-1, not UTF-8
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = await _cli("bulk-update", str(path), "--list", list_id, *FAST,
                                base_url=server.url)  # fmt: skip
    assert code == 2
    assert server.requests == []
    assert "line 1502" in err
    assert "--encoding" in err
    assert "Traceback" not in err + out


async def test_a_cell_beyond_any_sense_is_a_broken_file(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    # An unclosed quote swallows the rest of the file into one cell: the file is refused.
    list_id = server.create_list(columns=[COL_COMPANY])
    path = tmp_path / "in.csv"
    body = "".join(f"{1000 + i},c\n" for i in range(10))
    path.write_text(f'platformId,{COL_COMPANY}\n{body}5,"open\n' + "x" * (17 * 1024 * 1024))
    code, _, err = await _cli("bulk-update", str(path), "--list", list_id, *FAST,
                              base_url=server.url)  # fmt: skip
    assert code == 2, err
    assert server.requests == []
    assert "line 12" in err


@pytest.mark.parametrize(
    ("broken", "message"),
    [('5,"never closed', "never closes"), ('5,"closed"then more', "quote")],
)
async def test_a_broken_quote_is_a_broken_file(
    tmp_path: Path, server: FakeInboxServer, broken: str, message: str
) -> None:
    list_id = server.create_list(columns=[COL_COMPANY])
    rows = [f"{1000 + i},c" for i in range(10)]
    rows[4] = broken
    path = tmp_path / "in.csv"
    path.write_text(f"platformId,{COL_COMPANY}\n" + "\n".join(rows) + "\n")
    code, _, err = await _cli("bulk-update", str(path), "--list", list_id, *FAST,
                              base_url=server.url)  # fmt: skip
    assert code == 2, err
    assert server.requests == []
    assert "line 6" in err and message in err and "Traceback" not in err


@pytest.mark.slow
async def test_progress_has_its_total_and_an_eta_from_the_start(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    ids = lead_ids(60, 64_000_000)
    list_id = seed_list(server, ids)
    server.set_latency(0.02)
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [[i, "x"] for i in ids])
    # 60 requests at 25 a second, of which background work paces 22 (the reserve is 0.1):
    # the rate limits alone take 59 / 22 s, known before the first.
    code, _, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--concurrency", "1",
        "--rate-limit", "25/1", base_url=server.url,
    )  # fmt: skip
    assert code == 0, err
    progress = [line for line in err.splitlines() if "done" in line]
    assert progress, err
    assert progress[0].strip() == "0/60 done (eta 3 s or more)", progress


@pytest.mark.slow
async def test_a_big_file_is_checked_in_bounded_memory(tmp_path: Path) -> None:
    rows = 300_000
    path = tmp_path / "big.csv"
    with path.open("w") as f:
        f.write(f"platformId,{COL_COMPANY},{COL_TITLE}\n")
        f.writelines(
            f"{1_500_000_000_000 + i % (rows - 5)},Company {i},Title {i}\n" for i in range(rows)
        )
        f.write("1.5E+18,x,y\n")
    # The peak memory of the command alone: a wrapper process that runs it and nothing else.
    measure = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=False); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", measure, str(SCRIPT), "bulk-update", str(path), "--list", "abc",
        "--dry-run", env=_env(None), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _running.append(proc)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert f"{rows} updates, 1 rows that cannot be sent" in text
    assert "5 platform ids appear more than once (5 extra rows)" in text
    assert "1 ids a spreadsheet turned into numbers" in text
    peak_kib = int(text.split()[-1])
    # Kept rows would take ~100 MB here; the first pass keeps 8 bytes of each.
    assert peak_kib < 100 * 1024, peak_kib


# -- 10: real spreadsheets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "delimiter", "encoding", "extra"),
    [
        ("Platform ID", ";", "utf-8-sig", []),
        ("platform_id", "\t", "utf-8", []),
        ("PLATFORMID", ";", "cp1252", ["--encoding", "cp1252"]),
        ("User", "|", "utf-8", ["--id-column", "User", "--delimiter", "|"]),
        ("platformId", ";", "utf-8-sig", ["--delimiter", ";"]),
        ("platformId", "\t", "utf-8", ["--delimiter", "tab"]),
        ("platformId", "\t", "utf-16", []),  # Excel's "Unicode Text"
    ],
)
async def test_files_saved_by_a_spreadsheet_work(
    tmp_path: Path,
    server: FakeInboxServer,
    header: str,
    delimiter: str,
    encoding: str,
    extra: list[str],
) -> None:
    list_id = seed_list(server, ["1", "2"], (COL_COMPANY, COL_TITLE))
    path = write_csv(
        tmp_path / "in.csv",
        [header, "Company", COL_TITLE],
        [["1", "Café; Ltd", "CEO, and more"], ["2", "Naïve", ""]],
        delimiter=delimiter,
        encoding=encoding,
    )
    code, out, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--map", f"Company={COL_COMPANY}",
        *extra, *FAST, base_url=server.url,
    )  # fmt: skip
    assert code == 0, err
    assert "applied 2, failed 0" in out
    assert server.lead_data(list_id, "1") == {COL_COMPANY: "Café; Ltd", COL_TITLE: "CEO, and more"}
    assert server.lead_data(list_id, "2") == {COL_COMPANY: "Naïve"}


async def test_a_non_utf8_file_names_the_encoding_option(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "Café"]], encoding="cp1252"
    )
    code, _, err = await _cli("bulk-update", str(path), "--list", "abc", "--dry-run")
    assert code == 2
    assert "line 2" in err and "--encoding" in err and "Traceback" not in err
    code, _, err = await _cli(
        "bulk-update", str(path), "--list", "abc", "--dry-run", "--encoding", "klingon"
    )
    assert code == 2 and "--encoding" in err and "Traceback" not in err


async def test_a_huge_cell_fails_its_row_not_the_job(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = seed_list(server, ["1", "2", "3"])
    path = write_csv(
        tmp_path / "in.csv",
        ["platformId", COL_COMPANY],
        [["1", "a"], ["2", "x" * (129 * 1024)], ["3", "c"]],
    )
    failures = tmp_path / "failures.csv"
    code, out, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--failures", str(failures), *FAST,
        base_url=server.url,
    )  # fmt: skip
    assert code == 1, err
    assert "applied 2, failed 1" in out
    assert "line 3" in out
    assert server.lead_data(list_id, "3") == {COL_COMPANY: "c"}
    rows = _read_csv(failures)
    assert [r[0] for r in rows[1:]] == ["2"] and len(rows[1][1]) == 129 * 1024


async def test_ids_a_spreadsheet_mangled_fail_alone_and_dry_run_counts_them(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    list_id = seed_list(server, ["1", "2"])
    path = write_csv(
        tmp_path / "in.csv",
        ["platformId", COL_COMPANY],
        [["1", "a"], ["1.52372E+18", "b"], ["100000015.0", "c"], ["2", "d"], ["1", "e"]],
    )
    code, out, err = await _cli("bulk-update", str(path), "--list", list_id, "--dry-run",
                                base_url=server.url)  # fmt: skip
    assert code == 1, err
    assert "2 ids a spreadsheet turned into numbers" in out
    assert "1 platform ids appear more than once (1 extra rows)" in out
    assert server.requests == []
    code, out, err = await _cli("bulk-update", str(path), "--list", list_id, *FAST,
                                base_url=server.url)  # fmt: skip
    assert code == 1, err
    assert "applied 3, failed 2" in out
    assert re.search(r"line 3: .*1\.52372E\+18.*spreadsheet", out), out
    assert re.search(r"line 4: .*100000015\.0.*spreadsheet", out), out
    assert _patches(server) == 3


# -- 11: usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
async def test_an_invalid_list_is_a_usage_error(tmp_path: Path, dry_run: list[str]) -> None:
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "x"]])
    code, out, err = await _cli("bulk-update", str(path), "--list", "My List", *dry_run)
    assert code == 2
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err
    assert "--list" in err


@pytest.mark.slow
async def test_errors_name_the_command_line_options(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "x"]])
    env = {k: v for k, v in os.environ.items() if k not in ("INBOX_API_TOKEN",)}
    code, _, err = await _cli("bulk-update", str(path), "--list", "abc", env=env)
    assert code == 2
    assert "--token" in err and "$INBOX_API_TOKEN" in err and "token=" not in err
    code, _, err = await _cli(
        "bulk-update", str(path), "--list", "abc", "--base-url", "ftp://example.com"
    )
    assert code == 2
    assert "--base-url" in err and "base_url" not in err
    code, _, err = await _cli(
        "bulk-update", str(path), "--list", "abc", "--base-url", "http://example.com/api/v1"
    )
    assert code == 2
    assert "--base-url" in err and "allow_insecure_http" not in err


async def test_version_prints_the_package_version() -> None:
    from importlib.metadata import version

    code, out, err = await _cli("--version")
    assert code == 0, err
    assert out.strip() == f"inbox-async {version('inbox-async')}"


# -- 12: the resume hint ----------------------------------------------------------------------


def _hint(err: str) -> str:
    lines = err.splitlines()
    at = next(i for i, line in enumerate(lines) if "to resume, run:" in line)
    return lines[at + 1].strip()


@pytest.mark.parametrize("new_options", [False, True], ids=["options", "file-format-options"])
@pytest.mark.slow
async def test_the_resume_hint_resumes_when_run_as_printed(
    tmp_path: Path, server: FakeInboxServer, new_options: bool
) -> None:
    rows, concurrency = 300, 4
    ids = [str(65_000_000 + i) for i in range(rows)]
    list_id = seed_list(server, ids, (COL_COMPANY, COL_TITLE))
    server.set_latency(0.01)
    # A name that needs quoting, and options that all matter to the rerun.
    folder = tmp_path / "my files"
    folder.mkdir()
    path = write_csv(
        folder / "in put.csv",
        ["Platform ID" if new_options else "platformId", "Company", COL_TITLE],
        [[i, f"v{i}", ""] for i in ids],
        delimiter=";" if new_options else ",",
    )
    args: tuple[str, ...] = (
        "bulk-update", str(path), "--list", list_id, "--map", f"Company={COL_COMPANY}",
        "--clear-empty", "--concurrency", str(concurrency), "--rate-limit", "100000/1",
        "--journal", str(folder / "job journal"), "--failures", str(folder / "fail.csv"),
        "--base-url", server.url, "--token", TOKEN, "--no-progress",
    )  # fmt: skip
    if new_options:
        args += ("--delimiter", ";", "--id-column", "Platform ID", "--encoding", "utf-8")
    env = _env(None)
    del env["INBOX_API_TOKEN"]
    proc = await _start(*args, base_url=None, env=env)
    await eventually(lambda: len(server.requests) >= 60, timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err_bytes = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130
    hint = _hint(err_bytes.decode())
    assert TOKEN not in hint
    first_run = _patches(server)
    assert first_run < rows

    # As printed, through a shell, with the token in the environment; a base URL the hint
    # dropped would send the rerun to a dead port.
    env = _env("http://127.0.0.1:9/api/v1")
    env["PATH"] = f"{SCRIPT.parent}{os.pathsep}{env.get('PATH', '')}"
    shell = await asyncio.create_subprocess_shell(
        hint, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _running.append(shell)
    out, err = await asyncio.wait_for(shell.communicate(), 60)
    assert shell.returncode == 0, (hint, err.decode())
    skipped = re.search(r"skipped (\d+)", out.decode())
    assert skipped and int(skipped.group(1)) > 0, out.decode()
    assert _patches(server) <= rows + concurrency
    assert all(server.lead_data(list_id, i) == {COL_COMPANY: f"v{i}"} for i in ids)


async def test_without_a_journal_the_hint_says_nothing_can_be_skipped(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    ids = lead_ids(300, 66_000_000)
    list_id = seed_list(server, ids)
    server.set_latency(0.02)
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [[i, "x"] for i in ids])
    proc = await _start(
        "bulk-update", str(path), "--list", list_id, "--no-journal", *FAST, base_url=server.url
    )
    await eventually(lambda: len(server.requests) >= 30, timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 130
    assert "nothing can be skipped" in err.decode()


# -- with the helper's job-level stops (items 1 and 6) ------------------------------------------


async def test_a_journal_of_another_list_is_a_usage_error(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    first = server.create_list(columns=[COL_COMPANY])
    second = server.create_list(columns=[COL_COMPANY])
    server.add_leads(first, ["1"])
    server.add_leads(second, ["1"])
    path = write_csv(tmp_path / "in.csv", ["platformId", COL_COMPANY], [["1", "x"]])
    failures = tmp_path / "failures.csv"
    code, _, err = await _cli("bulk-update", str(path), "--list", first, *FAST,
                              base_url=server.url)  # fmt: skip
    assert code == 0, err
    failures.write_text("kept\n")
    server.clear_requests()
    code, out, err = await _cli(
        "bulk-update", str(path), "--list", second, "--failures", str(failures), *FAST,
        base_url=server.url,
    )  # fmt: skip
    assert code == 2
    assert "--journal" in err and first in err and second in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
    assert server.requests == []
    assert failures.read_text() == "kept\n"


async def test_a_job_that_cannot_succeed_stops_says_why_and_keeps_the_input(
    tmp_path: Path, server: FakeInboxServer
) -> None:
    ids = lead_ids(200, 67_000_000)
    list_id = seed_list(server, ids)
    server.delete_list(list_id)
    path = write_csv(tmp_path / "failed.csv", ["platformId", COL_COMPANY], [[i, "x"] for i in ids])
    before = path.read_bytes()
    code, out, err = await _cli(
        "bulk-update", str(path), "--list", list_id, "--failures", str(path),
        "--concurrency", "4", *FAST, base_url=server.url,
    )  # fmt: skip
    assert code == 1, err
    assert "not attempted" in out
    assert "the job stopped" in err and "LIST_NOT_FOUND" in err and "to resume, run:" in err
    assert _patches(server) <= 8
    assert path.read_bytes() == before
