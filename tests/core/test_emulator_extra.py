"""Without the [emulator] extra (starlette, uvicorn), every way into the emulator names the extra to install;
with it, the lazy package names resolve to the real objects."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cfgateway.emulator

HINT = "pip install 'cfgateway[emulator]'"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("hidden", "statement", "missing"),
    [
        ("uvicorn", "from cfgateway.emulator import EmulatorServer", "missing: uvicorn"),
        ("starlette", "import cfgateway.emulator.server", "missing: starlette"),
        ("starlette", "from cfgateway.emulator import create_app", "missing: starlette"),
    ],
)
def test_a_missing_extra_module_is_named_with_the_install_command(hidden: str, statement: str, missing: str) -> None:
    out = _run(f"import sys; sys.modules[{hidden!r}] = None\n{statement}")
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("cfgateway.emulator._extra.EmulatorExtraMissing") and HINT in last and missing in last


def test_an_unrelated_missing_module_is_not_blamed_on_the_extra() -> None:
    out = _run("import sys; sys.modules['httpx'] = None\nimport cfgateway.emulator.server")
    assert out.returncode != 0
    assert "ModuleNotFoundError" in out.stderr and "httpx" in out.stderr and HINT not in out.stderr


def test_the_emulate_command_names_the_extra(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from cfgateway.cli import main

    monkeypatch.delitem(sys.modules, "cfgateway.emulator.server", raising=False)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["emulate", "--port", "0"]) == 1
    assert HINT in capsys.readouterr().err


def test_the_lazy_names_are_the_real_objects() -> None:
    from cfgateway.emulator.config import Fault
    from cfgateway.emulator.server import EmulatorServer

    assert cfgateway.emulator.EmulatorServer is EmulatorServer and cfgateway.emulator.Fault is Fault
    with pytest.raises(AttributeError, match="NoSuchThing"):
        cfgateway.emulator.NoSuchThing  # noqa: B018
