"""'Try it without an account': the README's quickstarts run as pasted against `--demo-list`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._readme import README, readme_snippet

ROOT = Path(__file__).resolve().parent.parent


def _readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def _key_values(text: str) -> dict[str, str]:
    return dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def demo() -> Iterator[dict[str, str]]:
    """`python -m inbox_async.testing --demo-list 1000`, as the README says, on a free port."""
    command = re.search(
        r"python -m inbox_async\.testing (.*?)\s+#", _readme_section("Try it without an account")
    )
    assert command, "the section does not start the demo server"
    args = command[1].split()
    assert "--demo-list" in args
    args[args.index("--port") + 1] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "inbox_async.testing", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        info: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while "platform_ids" not in info:
            line = proc.stdout.readline()
            assert line, "the demo server exited early"
            assert time.monotonic() < deadline, "the demo server did not start"
            key, _, value = line.strip().partition("=")
            info[key] = value
        yield info
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
        proc.stdout.close()


@pytest.mark.slow
def test_the_readme_shows_what_the_demo_server_prints(demo: dict[str, str]) -> None:
    shown = _key_values(readme_snippet("demo-output"))
    assert shown.keys() == demo.keys()
    # Everything but the port, which was 0 (a free one) here.
    port = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/api/v1", demo["url"])
    assert port is not None
    assert shown["url"] == demo["url"].replace(f":{port[1]}/", ":8080/")
    assert {k: v for k, v in shown.items() if k != "url"} == {
        k: v for k, v in demo.items() if k != "url"
    }


def test_the_readme_exports_the_printed_token_and_base_url() -> None:
    section = _readme_section("Try it without an account")
    exports = re.search(r"export (.*)\n", section)
    assert exports is not None
    env = _key_values(exports[1].replace(" ", "\n"))
    shown = _key_values(readme_snippet("demo-output"))
    assert env == {"INBOX_API_TOKEN": shown["token"], "INBOX_API_BASE_URL": shown["url"]}


def _run_snippet(name: str, demo: dict[str, str], tmp_path: Path) -> str:
    script = tmp_path / name
    script.write_text(readme_snippet(name), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")}
    env |= {"INBOX_API_TOKEN": demo["token"], "INBOX_API_BASE_URL": demo["url"]}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.mark.slow
def test_the_quickstart_runs_against_the_demo_server(demo: dict[str, str], tmp_path: Path) -> None:
    out = _run_snippet("quickstart.py", demo, tmp_path)
    assert out.startswith("user44196397 ")
    assert out.rstrip().endswith("{'custom_q5cktl47a6pqa74eu06fz89v': 'Acme Corp'}")


@pytest.mark.slow
def test_the_blocking_quickstart_runs_against_the_demo_server(
    demo: dict[str, str], tmp_path: Path
) -> None:
    out = _run_snippet("sync_quickstart.py", demo, tmp_path)
    assert out == "{'custom_q5cktl47a6pqa74eu06fz89v': 'Acme Corp'} 20 []\n"


@pytest.mark.slow
def test_the_raw_response_example_runs_against_the_demo_server(
    demo: dict[str, str], tmp_path: Path
) -> None:
    out = _run_snippet("raw_response.py", demo, tmp_path)
    assert out == "200 True\n0 True\n{'custom_q5cktl47a6pqa74eu06fz89v': 'Acme'} True\n"


@pytest.mark.slow
def test_the_build_and_send_example_runs_against_the_demo_server(
    demo: dict[str, str], tmp_path: Path
) -> None:
    out = _run_snippet("build_send.py", demo, tmp_path)
    assert out == "PATCH /api/v1/lists/l44e15irdq4db30i77cgphhx/leads/44196397\n200 True 1\n"
