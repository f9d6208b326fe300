"""The README's command line section: every command and flag it shows exists, and the ones that need no server
run as written (the emulator and guides are run in tests/core/test_cli_emulate.py and tests/test_guides.py)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cfgateway.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SECTION = ROOT.joinpath("README.md").read_text(encoding="utf-8").split("## Command line", 1)[1].split("\n## ", 1)[0]
SHOWN = re.findall(r"`(cfgateway [^`]+)`", SECTION)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option of ``parser`` and of its sub-commands (``config show``, ``rollout status`` ...)."""
    found = {opt for a in parser._actions for opt in a.option_strings}  # noqa: SLF001
    if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):  # noqa: SLF001
        for sub in _subparsers(parser).values():
            found |= _options(sub)
    return found


def test_the_section_shows_every_command() -> None:
    commands = {line.split()[1] for line in SHOWN}
    assert commands == set(_subparsers(build_parser())), commands


@pytest.mark.parametrize("line", SHOWN)
def test_every_flag_shown_is_accepted(line: str) -> None:
    command = _subparsers(build_parser())[line.split()[1]]
    shown = set(re.findall(r"--[a-z][a-z-]*", line))
    assert shown <= _options(command), shown - _options(command)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cfgateway", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=ROOT)


def test_commands_that_need_no_server_run_as_written(tmp_path: Path) -> None:
    from cfgateway.costs.ledger import SQLiteLedger
    from cfgateway.types import UsageRecord

    db = tmp_path / "costs.db"
    ledger = SQLiteLedger(str(db))
    ledger.add(UsageRecord(ts=1796000000.0, model="@cf/meta/llama-3.1-8b-instruct", provider="workers-ai",
                           operation="chat", input_tokens=10, output_tokens=5, cost=Decimal("0.000007")))
    ledger.close()
    env: dict[str, Any] = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = _cli("costs", "--ledger", f"sqlite:///{db}", "--since", "2026-11-01", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    assert "llama-3.1-8b-instruct" in out.stdout
    models = _cli("models", "--kind", "embed", "--json", env=env)
    assert models.returncode == 0 and {m["kind"] for m in json.loads(models.stdout)} == {"embed"}
    show = _cli("config", "show", "--json", env={**env, "CLOUDFLARE_API_TOKEN": "s3cret-token"})
    assert show.returncode == 0 and "s3cret-token" not in show.stdout
    status = _cli("rollout", "status", "--ledger", f"sqlite:///{db}", env=env)
    assert status.returncode in (0, 1) and "Traceback" not in status.stderr
