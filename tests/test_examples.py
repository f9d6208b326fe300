"""Every example in examples/ runs against the emulator (README promise)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py"))


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_example_is_covered() -> None:
    covered = {"quickstart", "langchain_rag", "langchain_agent", "llamaindex_rag", "llamaindex_agent", "rollout",
               "vectorize_rag", "autogen_gateway", "embedding_cache",
               "rag_app", "rag_query_engine",  # tests/test_config_matrix.py
               "tei_to_deepinfra", "openai_to_workers_ai", "edge_rag", "assistant_config"}  # tests/test_guides.py
    assert {p.stem for p in EXAMPLES} <= covered, "add a test for the new example"


def test_quickstart_against_the_emulator(cf_emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    mod = load(ROOT / "examples" / "quickstart.py")
    out = mod.main(account_id="acct", api_token="test-token", base_url=cf_emulator.base_url)
    assert out["answer"].text and out["answer"].usage.output_tokens > 0
    assert len(out["embeddings"].vectors) == 3 and len(out["embeddings"].vectors[0]) == 768
    printed = capsys.readouterr().out
    assert "usage:" in printed and "3 vectors × 768 dims" in printed


def test_make_demo_script_runs_offline_with_no_credentials(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "offline emulator" in out.stdout and "usage:" in out.stdout and "vectors" in out.stdout


def test_vectorize_rag_against_the_emulator(cf_emulator: Any, cf_clean_env: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cf_emulator.state.vectorize.settings.delay_s = 0.2  # writes become readable only after processing
    out = load(ROOT / "examples" / "vectorize_rag.py").main(account_id="acct", api_token="test-token",
                                                             base_url=cf_emulator.base_url, cleanup=True)
    assert [d.id for d in out["langchain"]["retrieved"]] == ["pricing", "vectorize"]  # the topic filter held
    assert out["llamaindex"]["answer"].source_nodes[0].node.ref_doc_id == "pricing"
    chats = [r for r in cf_emulator.state.requests if "llama-3.3" in r.path]
    assert "A neuron costs $0.011" in chats[0].json["messages"][0]["content"]
    assert set(out["costs"]) == {"chat", "embed", "vectorize"} and all(c and c > 0 for c in out["costs"].values())
    ops = {r.tags.get("op") for r in out["tracker"].ledger.records() if r.operation == "vectorize"}
    assert ops == {"upsert", "query"} and cf_emulator.state.vectorize.indexes == {}  # cleaned up
    assert "cost of vectorize: $" in capsys.readouterr().out


def test_vectorize_rag_runs_as_a_script_offline(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "vectorize_rag.py")], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "offline emulator" in out.stdout and "cost of vectorize: $" in out.stdout


def test_autogen_gateway_example(cf_emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    mod = load(ROOT / "examples" / "autogen_gateway.py")
    result = mod.main(**cf_emulator.client_kwargs(gateway=True))
    kinds = [type(m).__name__ for m in result.messages]
    assert "ToolCallExecutionEvent" in kinds and "sunny" in str(result.messages[-1].content)
    import json

    sent = [r for r in cf_emulator.state.requests if r.path.endswith("/compat/chat/completions")]
    assert len(sent) == 2 and all(json.loads(r.headers["cf-aig-metadata"])["user"] == "u-42" for r in sent)
    assert sent[0].json["model"] == "openai/gpt-4o-mini" and "authorization" in sent[0].headers
    assert "ToolCallExecutionEvent" in capsys.readouterr().out


def test_embedding_cache_example(cf_emulator: Any, cf_clean_env: None, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = load(ROOT / "examples" / "embedding_cache.py").main(
        cache_url=f"sqlite:///{tmp_path}/example.db", account_id="acct", api_token="test-token",
        base_url=cf_emulator.base_url)
    sent = [r for r in cf_emulator.state.requests if "bge-base" in r.path]
    assert len(sent) == 10  # the first run's 10 batches of 100; the second run sent nothing
    first, second = out["runs"]
    assert second.cached == 1000 and second.cost == 0 and second.vectors == first.vectors
    assert out["spent"] == first.cost > 0 and out["records"][-1].cost == 0
    assert "second run · 1000 vectors · 1000 from the cache · 0 sent" in capsys.readouterr().out


def test_embedding_cache_example_runs_as_a_script_offline(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "embedding_cache.py")], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "offline emulator" in out.stdout and "1000 from the cache · 0 sent · cost $0.00000000" in out.stdout
