"""examples/llamaindex_rag.py and examples/llamaindex_agent.py against the emulator (main() with settings
kwargs), and as scripts with no credentials (they start their own emulator)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"li_example_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rag_example(conn: Any, emu: Any, usage_of: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = load("llamaindex_rag").main(**conn())
    assert "A neuron costs $0.011" in out["answer"].source_nodes[0].node.get_content()
    assert str(out["answer"]).startswith("You said: Context information")
    assert "free each day" in str(out["follow_up"])
    u = usage_of(emu)
    assert u.requests == len(out["tokens"].llm_token_counts) == out["cost"].successful_requests == 4
    assert out["tokens"].prompt_llm_token_count == u.prompt_tokens
    assert out["cost"].llm_cost > 0 and out["cost"].embedding_cost > 0
    assert "cost: $" in capsys.readouterr().out


def test_agent_example(conn: Any, emu: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = load("llamaindex_agent").main(**conn())
    assert [c.tool_name for c in out["tool_calls"]] == ["multiply"] and "42" in out["answer"]
    assert out["cost"].successful_requests == 2 == len(emu.state.requests)
    assert "tool: multiply({'a': 6, 'b': 7}) -> 42" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["llamaindex_rag", "llamaindex_agent"])
def test_example_scripts_run_offline_with_no_credentials(name: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=90)
    assert out.returncode == 0, out.stderr
    assert "offline emulator" in out.stdout and "cost: $" in out.stdout
