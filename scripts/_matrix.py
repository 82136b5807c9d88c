"""Runs pytest on every CPython of the matrix that this machine has, at the same time.

Called by ./scripts/test (which has run ruff and mypy once before); arguments go to pytest.
`--prepare` only makes the venvs (./scripts/test starts it in the background before anything
else; the matrix then waits for each venv that is not ready yet, while .venv's run goes ahead).
Standard library only, so that it runs before anything is installed.

Why a loop of our own rather than nox or tox: the runs must overlap to fit in CI's time on two
cores (most of a run is waiting on real-time windows and subprocesses, not CPU), and nox and tox
run their sessions one after another. It also knows where this kind of machine keeps its
interpreters (pyenv, whose `python3.X` shims may be broken) and reuses .venv for its own version.

Environment:
  INBOX_PYTHONS="3.11"      only these versions (space or comma separated); default: the matrix
  INBOX_PYTHONS_STRICT=1    a version of the matrix that is not found fails the run (CI sets it)
  INBOX_JOBS=N              at most N pytest runs at once (default: 2)
  INBOX_MATRIX_FULL=1       every interpreter runs every test; by default the others than
                            .venv's leave out the tests marked slow, except those also marked
                            matrix (unless -m is given)
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

MATRIX = ("3.10", "3.11", "3.12", "3.13")
ROOT = Path(__file__).resolve().parent.parent
MAIN_VENV = ROOT / ".venv"
# What the interpreters other than .venv's run, unless INBOX_MATRIX_FULL=1 or -m is given.
NOT_SLOW = "not slow or matrix"
_PROBE = "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"
# pytest's closing line, with or without its ===== (-q leaves them out).
_SUMMARY = re.compile(
    r"^=*\s*(\d+ (?:passed|failed|errors?|skipped|deselected|xfailed|xpassed).*?)"
    r" in [\d.]+s"
)
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
_print_lock = threading.Lock()


@dataclass
class Outcome:
    """One interpreter's run: its exit code, pytest's closing line and its output."""

    version: str
    code: int
    seconds: float
    summary: str
    output: str


def _say(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def _version_of(python: str) -> str | None:
    """`3.X` when `python` runs and can make a venv; None for a broken shim or a stripped one."""
    try:
        probe = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return probe.stdout.strip() if probe.returncode == 0 else None


def _candidates(version: str) -> list[str]:
    found = [shutil.which(f"python{version}")]
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    # Newest patch release first: 3.10.13 before 3.10.9.
    builds = glob.glob(os.path.join(pyenv, "versions", f"{version}.*", "bin", f"python{version}"))
    builds.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parts[-3])], reverse=True)
    found += builds
    found += [f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    return list(dict.fromkeys(p for p in found if p and os.access(p, os.X_OK)))


def find_python(version: str) -> str | None:
    """A working interpreter of `version`, or None."""
    for candidate in _candidates(version):
        if _version_of(candidate) == version:
            return candidate
    return None


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def own_version() -> str | None:
    """The version of .venv's interpreter, or of the one that ./scripts/test will make it with."""
    return _version_of(str(_venv_python(MAIN_VENV))) or _version_of(
        os.environ.get("PYTHON") or "python3"
    )


def prepare_venv(version: str, python: str | None, extra: str) -> Path:
    """A venv of `version` with the project and `extra` installed (.venv for its own)."""
    if version == own_version():
        return _venv_python(MAIN_VENV)  # ./scripts/test installs the dev extra into it
    assert python is not None
    # Inside .venv, so that one `rm -rf .venv` starts everything afresh, and nothing is new
    # for git, ruff or mypy to look at.
    venv = MAIN_VENV / f"py{version}"
    MAIN_VENV.mkdir(exist_ok=True)
    # `--prepare` in the background and the matrix may both get here: one at a time per venv,
    # and the second finds the stamp and has nothing left to do.
    with open(MAIN_VENV / f"py{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _version_of(str(_venv_python(venv))) != version:
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
        # The editable install follows the source; only pyproject.toml can make it stale.
        pyproject = (ROOT / "pyproject.toml").read_bytes()
        wanted = f"{extra} {hashlib.sha256(pyproject).hexdigest()}"
        stamp = venv / "inbox-installed"
        if not stamp.exists() or stamp.read_text(encoding="utf-8") != wanted:
            install = [str(_venv_python(venv)), "-m", "pip", "install", "--quiet"]
            install += ["--disable-pip-version-check", "--editable", f".[{extra}]"]
            done = subprocess.run(install, cwd=ROOT, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"pip install into {venv} failed:\n{done.stdout}{done.stderr}")
            stamp.write_text(wanted, encoding="utf-8")
    return _venv_python(venv)


def _summary(output: str) -> str:
    for line in reversed(output.splitlines()):
        found = _SUMMARY.match(line.strip())
        if found:
            return found.group(1)
    return "no pytest summary"


def run_one(version: str, python: str | None, args: list[str], alone: bool, dist: bool) -> Outcome:
    """Prepare the venv of `version` and run pytest in it; buffered unless it runs alone."""
    started = time.monotonic()
    try:
        venv_python = prepare_venv(version, python, "dev" if dist else "test")
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        return Outcome(version, 1, time.monotonic() - started, "venv failed", f"{exc}\n")
    command = [str(venv_python), "-m", "pytest", *args]
    if not dist and not _selects_markers(args) and os.environ.get("INBOX_MATRIX_FULL") != "1":
        # The other interpreters leave out the tests marked slow (subprocesses, fresh venvs,
        # long real-time waits): they cost most of a run's CPU, and four full runs at once do
        # not fit CI's two cores in time. The interpreter of .venv runs every test; those
        # marked matrix (behaviour that differs between versions) run everywhere.
        command += ["-m", NOT_SLOW]
    if alone:
        # One interpreter: its output live, and --pdb or -x behave as with plain pytest.
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        return Outcome(version, code, time.monotonic() - started, "", "")
    # Each run its own cache, so that --lf / --ff work per interpreter.
    command[3:3] = ["-o", f"cache_dir=.pytest_cache/py{version}", "--color=no"]
    _say(f"== pytest on Python {version} started ({venv_python})")
    # The sdist and wheel tests (a build, a fresh venv, a pip install) once per matrix.
    env = {**os.environ, "INBOX_DIST_TESTS": "1" if dist else "0"}
    done = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    output = done.stdout.decode("utf-8", "replace")
    return Outcome(version, done.returncode, time.monotonic() - started, _summary(output), output)


def _selects_markers(args: list[str]) -> bool:
    return any(arg == "-m" or (arg.startswith("-m") and not arg.startswith("--")) for arg in args)


def _wanted() -> list[str]:
    raw = os.environ.get("INBOX_PYTHONS", "").replace(",", " ").split()
    wanted = raw or list(MATRIX)
    for version in wanted:
        if not re.fullmatch(r"3\.\d{1,2}", version):
            sys.exit(f"INBOX_PYTHONS: {version!r} is not a version such as 3.11")
    return list(dict.fromkeys(wanted))


def _found(wanted: list[str], own: str | None) -> tuple[dict[str, str | None], list[str]]:
    found: dict[str, str | None] = {}
    missing: list[str] = []
    for version in wanted:
        python = None if version == own else find_python(version)
        if version != own and python is None:
            missing.append(version)
        else:
            found[version] = python
    return found, missing


def prepare(wanted: list[str]) -> int:
    """Make and install the venvs of the interpreters other than .venv's, all at once."""
    own = own_version()
    found, _ = _found(wanted, own)
    dist = own if own in found else next(iter(found), None)
    others = {v: p for v, p in found.items() if v != own}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
        futures = {
            v: pool.submit(prepare_venv, v, p, "dev" if v == dist else "test")
            for v, p in others.items()
        }
    failed = 0
    for version, future in futures.items():
        try:
            future.result()
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            failed = 1
            _say(f"== Python {version}: could not make its venv: {exc}")
    return failed


def main(args: list[str]) -> int:
    """Run the matrix; the exit code is 0 only when every run found passed."""
    wanted = _wanted()
    if args[:1] == ["--prepare"]:
        return prepare(wanted)
    strict = os.environ.get("INBOX_PYTHONS_STRICT", "") not in ("", "0")
    own = own_version()
    found, missing = _found(wanted, own)
    for version in missing:
        _say(f"== Python {version}: no interpreter found (PATH, pyenv), skipped")
    if not found:
        _say("== no interpreter of " + " ".join(wanted) + " found: nothing was tested")
        return 1
    alone = len(found) == 1
    # Two at a time by default: four runs at once on CI's two cores took longer in all (14 min
    # against about 9) and made the tests with real-time bounds miss them.
    jobs = int(os.environ.get("INBOX_JOBS", "0") or 0) or min(2, len(found))
    outcomes: list[Outcome] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        # .venv has the dev extra (build, twine) and its run starts first: it builds the wheel.
        dist = own if own in found else next(iter(found))
        futures = [pool.submit(run_one, v, p, args, alone, v == dist) for v, p in found.items()]
        for future in concurrent.futures.as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            if not alone:
                # Whole outputs one after another, in the order the runs end.
                _say(f"== pytest on Python {outcome.version}: exit {outcome.code}")
                with _print_lock:
                    sys.stdout.write(outcome.output)
                    sys.stdout.flush()
    if alone:
        outcome = outcomes[0]
        if missing:
            _say(f"== skipped, not found: {' '.join(missing)}")
        return 1 if strict and missing else outcome.code
    outcomes.sort(key=lambda o: o.version)
    _say("== matrix")
    totals: dict[str, int] = {}
    for outcome in outcomes:
        verdict = "ok" if outcome.code == 0 else f"FAILED (exit {outcome.code})"
        _say(f"   Python {outcome.version}: {verdict}, {outcome.summary}, {outcome.seconds:.0f} s")
        for number, word in _COUNT.findall(outcome.summary):
            key = "errors" if word.startswith("error") else word
            totals[key] = totals.get(key, 0) + int(number)
    for version in missing:
        _say(
            f"   Python {version}: not found, skipped"
            + (" (INBOX_PYTHONS_STRICT)" if strict else "")
        )
    failed = [o.version for o in outcomes if o.code != 0]
    # pytest's own closing-line form, for whatever reads the end of a CI log.
    _say(f"matrix: {totals.get('passed', 0)} passed, {totals.get('failed', 0)} failed")
    if failed:
        _say("failed on: " + " ".join(failed))
    return 1 if failed or (strict and missing) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
