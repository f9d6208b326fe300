"""examples/langchain_rag.py and examples/langchain_agent.py run against the emulator (main() and as scripts)."""

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
    spec = importlib.util.spec_from_file_location(f"lc_example_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rag_example(emu: Any, conn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = load("langchain_rag").main(question="How much does a neuron cost?", **conn())
    assert "neuron costs $0.011" in out["retrieved"][0].page_content
    assert "How much does a neuron cost?" in out["answer"]
    assert out["callback"].successful_requests == 1 and out["callback"].total_cost > 0
    embeds = [r for r in emu.state.requests if "bge-base" in r.path]
    assert len(embeds) == 3  # the 4 documents in one batch, the chain's query, the printed retrieval
    chat = [r for r in emu.state.requests if "llama-3.3" in r.path]
    assert "neuron costs $0.011" in chat[0].json["messages"][0]["content"]
    assert "answer:" in capsys.readouterr().out


def test_agent_example(emu: Any, conn: Any) -> None:
    out = load("langchain_agent").main(**conn())
    types = [m.type for m in out["messages"]]
    assert types == ["human", "ai", "tool", "ai"]
    assert out["messages"][1].tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert out["messages"][2].content == "42" and "42" in out["answer"]
    assert out["callback"].successful_requests == 2


@pytest.mark.parametrize("name", ["langchain_rag", "langchain_agent"])
def test_examples_run_as_scripts_offline(name: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "offline emulator" in out.stdout and "cost" in out.stdout
