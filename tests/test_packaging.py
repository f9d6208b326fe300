"""The package as users get it: an sdist and a wheel built once per session with ``python -m build``
(isolated, setuptools from the registry), checked with ``twine check --strict``, and the wheel installed
WITHOUT extras (plus pytest) into a scratch venv, where pytest runs in an unrelated project.

The blocker this guards (issue 14): the ``pytest11`` entry point is loaded by every pytest run of every
project where cfgateway is installed, so it must import nothing optional; the emulator fixtures fail at setup
with a message naming ``pip install 'cfgateway[emulator]'`` when the extra is missing.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
HINT = "pip install 'cfgateway[emulator]'"
EXTRAS = {"langchain", "llama-index", "emulator", "proxy", "redis", "plot", "fast", "openai"}

pytestmark = pytest.mark.timeout(600)  # a build, a venv and an install on a shared 2-core machine

# Not part of the source: copying them would only slow the build (or leak stale build output into it).
_NOT_SOURCE = (".venv", ".bench-venv", ".git", "__pycache__", "*_cache", "build", "dist", "*.egg-info", "*.db")


def _env() -> dict[str, str]:
    """The caller's environment without what would leak this project's test setup into the child processes."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    # setuptools validates classifiers against a list it downloads unless told not to: nothing downloads in a
    # test run. The classifiers are checked against the trove-classifiers package below instead.
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", VALIDATE_PYPROJECT_NO_NETWORK="1")
    return env


def _run(args: list[str | Path], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _ok(out: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert out.returncode == 0, f"{out.args} exited {out.returncode}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` on a copy of the source tree (so the build never writes into the checkout):
    the sdist, then the wheel built from that sdist, as a release would."""
    base = tmp_path_factory.mktemp("build")
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    _ok(_run([sys.executable, "-m", "build", "--outdir", base / "dist", src], timeout=600))
    return base / "dist"


@pytest.fixture(scope="session")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("cfgateway-*-py3-none-any.whl")
    return found


@pytest.fixture(scope="session")
def plain_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch venv with the wheel installed without extras, and pytest. The venv gets no pip of its own:
    this session's pip installs into it (``pip --python``), which saves the ensurepip step."""
    venv = tmp_path_factory.mktemp("plain") / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", venv]))
    python = venv / "bin" / "python"
    _ok(_run([sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel, "pytest"], timeout=600))
    return venv


def _project(root: Path, tests: dict[str, str]) -> Path:
    """An unrelated project: its own pyproject.toml (so it is pytest's rootdir) and the given test files."""
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "unrelated"\nversion = "1.0"\n')
    (root / "tests").mkdir()
    for name, body in tests.items():
        (root / "tests" / name).write_text(body)
    return root


def _pytest(venv: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([venv / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=project)


def test_twine_check_passes_on_the_sdist_and_the_wheel(dist: Path) -> None:
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"], files
    out = _ok(_run([sys.executable, "-m", "twine", "check", "--strict", *files]))
    assert out.stdout.count("PASSED") == 2, out.stdout


def test_the_sdist_carries_the_license_readme_and_package_data(dist: Path) -> None:
    import tarfile

    (sdist,) = dist.glob("cfgateway-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("LICENSE", "README.md", "pyproject.toml", "cfgateway/py.typed", "cfgateway/data/catalog.json",
                   "cfgateway/emulator/pytest_plugin.py", "langchain_cfgateway/py.typed"):
        assert needed in names, needed


def _metadata(wheel: Path) -> tuple[Message, set[str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(zf.read(meta).decode()), names


def test_the_wheel_metadata_is_publishable(wheel: Path) -> None:
    from trove_classifiers import classifiers as known

    meta, names = _metadata(wheel)
    assert meta["License-Expression"] == "MIT" and meta["Author"] == "cfgateway developers"
    assert "cfgateway-0.1.0.dist-info/licenses/LICENSE" in names
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Source", "Issues", "Documentation"}
    assert all(u.startswith("https://github.com/cfgateway/cfgateway") for u in urls.values()), urls
    classifiers = meta.get_all("Classifier")
    assert [c for c in classifiers if c not in known] == [], "unknown to PyPI"
    for needed in ("Programming Language :: Python :: 3.11", "Programming Language :: Python :: 3.12",
                   "Programming Language :: Python :: 3.13", "Typing :: Typed"):
        assert needed in classifiers
    assert meta["Keywords"] and meta["Description-Content-Type"] == "text/markdown"
    for needed in ("cfgateway/py.typed", "cfgateway/data/catalog.json", "langchain_cfgateway/py.typed",
                   "llama_index_cfgateway/py.typed"):
        assert needed in names, needed


def test_extras_core_dependencies_and_the_dev_group(wheel: Path) -> None:
    """Core needs only httpx and tqdm; `all` is every extra; the dev tools are a dependency group, not an extra."""
    meta, _ = _metadata(wheel)
    reqs = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    assert sorted(r.name for r in reqs if r.marker is None) == ["httpx", "tqdm"]
    assert set(meta.get_all("Provides-Extra")) == EXTRAS | {"all"}
    (everything,) = [r for r in reqs if r.marker is not None and r.marker.evaluate({"extra": "all"})]
    assert everything.name == "cfgateway" and set(everything.extras) == EXTRAS
    emulator = {r.name for r in reqs if r.marker is not None and r.marker.evaluate({"extra": "emulator"})}
    assert emulator == {"starlette", "uvicorn"}
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    assert {"pytest", "ruff", "mypy", "build", "twine"} <= {Requirement(r).name for r in group}


def test_pytest_in_an_unrelated_project_passes_with_a_plain_install(plain_venv: Path, tmp_path: Path) -> None:
    project = _project(tmp_path / "unrelated", {"test_trivial.py": "def test_trivial():\n    assert 1 + 1 == 2\n"})
    out = _pytest(plain_venv, project)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    plugins = next(line for line in out.stdout.splitlines() if line.startswith("plugins:"))
    assert "cfgateway-0.1.0" in plugins  # the entry point really was loaded


def test_the_emulator_fixture_without_the_extra_names_it(plain_venv: Path, tmp_path: Path) -> None:
    project = _project(tmp_path / "unrelated", {
        "test_emulated.py": "def test_uses_the_emulator(cf_emulator):\n    assert cf_emulator.url\n",
        "test_env.py": ("import os\n\ndef test_clean_env(cf_clean_env):\n"
                        "    assert 'CLOUDFLARE_API_TOKEN' not in os.environ\n"),
    })
    (project / "conftest.py").write_text("import os\nos.environ['CLOUDFLARE_API_TOKEN'] = 'from-the-shell'\n")
    out = _pytest(plain_venv, project, "-rE")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 passed, 1 error" in out.stdout, out.stdout
    assert HINT in out.stdout and "missing: starlette, uvicorn" in out.stdout, out.stdout
    assert "Traceback" not in out.stdout  # a plain message, not a stack of import machinery


def test_the_emulate_command_without_the_extra_names_it(plain_venv: Path) -> None:
    out = _run([plain_venv / "bin" / "cfgateway", "emulate", "--port", "0"])
    assert out.returncode == 1 and HINT in out.stderr and "Traceback" not in out.stderr, out.stderr
