"""The pytest plugin, and the README's testing example run as written in a project of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from ._readme import readme_snippet

ROOT = Path(__file__).resolve().parent.parent

# Three 503s in a row: with the real backoff (1 s, 2 s, 4 s at least) this takes 7 s or more.
_NO_REAL_BACKOFF = """
import asyncio

import pytest

from inbox_async.testing import Fault


@pytest.mark.asyncio
async def test_faults_cost_no_real_backoff(fake_inbox, inbox_client):
    list_id = fake_inbox.create_list(["custom_a"])
    fake_inbox.add_leads(list_id, ["1"])
    fake_inbox.add_fault(Fault.status(503), times=3, method="PATCH")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await inbox_client.leads.update(list_id, "1", {"custom_a": "x"})
    assert loop.time() - started < 1.0
    assert inbox_client.stats.attempts == 4


def test_the_blocking_twins(sync_fake_inbox, sync_inbox_client):
    list_id = sync_fake_inbox.create_list(["custom_a"])
    sync_fake_inbox.add_leads(list_id, ["1"])
    sync_fake_inbox.add_fault(Fault.status(503), times=3, method="PATCH")
    assert sync_inbox_client.leads.update(list_id, "1", {"custom_a": "x"}).data == {"custom_a": "x"}
    assert sync_inbox_client.stats.attempts == 4
"""


def _project(tmp_path: Path, ini: str = "") -> Path:
    """A project of the README's two files, in pytest-asyncio's default (strict) mode."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}\n", encoding="utf-8")
    (tmp_path / "conftest.py").write_text(readme_snippet("conftest.py"), encoding="utf-8")
    (tmp_path / "test_example.py").write_text(readme_snippet("test_example.py"), encoding="utf-8")
    return tmp_path


def _pytest(python: str | Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "INBOX_"))}
    # Warnings are errors, but for pytest-asyncio's nag about its own unset loop-scope option.
    warnings = ["-W", "error", "-W", "ignore::pytest.PytestDeprecationWarning"]
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *warnings, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_readme_example_passes_in_strict_mode(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "test_fixtures.py").write_text(_NO_REAL_BACKOFF, encoding="utf-8")
    result = _pytest(sys.executable, project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


@pytest.mark.slow
def test_the_fixtures_work_in_auto_mode_without_a_marker(tmp_path: Path) -> None:
    project = _project(tmp_path, "asyncio_mode = auto")
    example = (project / "test_example.py").read_text(encoding="utf-8")
    (project / "test_example.py").write_text(
        example.replace("@pytest.mark.asyncio\n", ""), encoding="utf-8"
    )
    result = _pytest(sys.executable, project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_readme_says_which_mode_or_marker_it_needs() -> None:
    assert "@pytest.mark.asyncio" in readme_snippet("test_example.py")


@pytest.mark.slow
def test_the_readme_example_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    # Only this project (no extras) and pytest-asyncio, as a new user would install them.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT), "pytest-asyncio"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    project = _project(tmp_path / "project")
    report = tmp_path / "report.xml"
    result = _pytest(python, project, f"--junitxml={report}")
    assert result.returncode == 0, result.stdout + result.stderr
    cases = ElementTree.parse(report).getroot().iter("testcase")
    times = {case.get("name"): float(case.get("time", "nan")) for case in cases}
    assert times.keys() == {"test_sync_company"}
    # The fault's retry would sleep at least a second with a real backoff.
    assert times["test_sync_company"] < 1.0, textwrap.shorten(str(times), 200)
