"""The migration guides in docs/: each runnable example against the emulator, and every command in their
```bash blocks run as written (offline: with no credentials the examples start the emulator themselves, and the
blocks that need an account start `cfgateway emulate` first)."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[1]
GUIDES = ["migrate-tei-to-deepinfra.md", "migrate-openai-to-workers-ai.md", "edge-rag-workers-ai.md",
          "workers-ai-assistant.md"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"guide_{name}", ROOT / "examples" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, cf_clean_env: None) -> Iterator[EmulatorServer]:
    """The user's account, emulated: every guide's gateway, authenticated, holding the provider keys."""
    gateways = {gw: GatewayConfig("docs-gw-token", stored_keys=True)
                for gw in ("prod-gw", "edge-gw", "assistant-gw", "emb-gw")}
    with EmulatorServer(EmulatorConfig(account_id="acct", gateways=gateways, auto_create_gateways=False)) as emu:
        for name, value in {"CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "docs-token",
                            "CLOUDFLARE_AI_GATEWAY_TOKEN": "docs-gw-token", "ASSISTANT_GATEWAY_TOKEN": "docs-gw-token",
                            "CLOUDFLARE_API_BASE_URL": emu.base_url,
                            "CLOUDFLARE_AI_GATEWAY_BASE_URL": emu.gateway_base_url}.items():
            monkeypatch.setenv(name, value)
        yield emu


def test_tei_to_deepinfra_reembeds_the_index_at_the_old_size(account: EmulatorServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_AI_GATEWAY_ID", "emb-gw")
    monkeypatch.setenv("CFGATEWAY_EMBED_MODEL", "custom-deepinfra/Qwen/Qwen3-Embedding-8B")
    monkeypatch.setenv("CFGATEWAY_EMBED_DIMENSIONS", "1024")
    out = _load("tei_to_deepinfra").main()
    assert out["dims"] == {1024} and len(out["index"]) == 600 and out["batch"] == 256
    from decimal import Decimal

    assert out["cost"] == Decimal(out["tokens"]) * Decimal("0.010") / 1_000_000
    sent = [r for r in account.state.requests if r.path.endswith("/custom-deepinfra/v1/openai/embeddings")]
    assert len(sent) == 3 and all(r.json["dimensions"] == 1024 and len(r.json["input"]) <= 256 for r in sent)
    assert all("authorization" not in r.headers for r in sent)  # the DeepInfra key is stored in the gateway


def test_openai_to_workers_ai_rollout_fallback_budgets(account: EmulatorServer) -> None:
    mod = _load("openai_to_workers_ai")
    out = mod.main(account)
    moved = out["moved"]
    assert moved[10] <= moved[50] <= moved[100] and 0 < len(moved[10]) < len(moved[50]) < len(moved[100])
    assert out["answer"].model == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    assert out["fallback"].model == "openai/gpt-4o-mini"
    assert [a.outcome for a in out["fallback"].attempts][-1] == "ok"
    (budget,) = out["tracker"].budgets
    assert [str(a) for a in budget.alerts] == ["100", "300", "500"] and str(budget.limit) == "500"
    assert {r.provider for r in out["records"]} >= {"openai", "workers-ai"}


def test_edge_rag_second_answer_comes_from_the_gateway_cache(account: EmulatorServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _load("edge_rag")
    monkeypatch.setenv("CFGATEWAY_CONFIG", mod.PROFILES)
    first, second = mod.main()["answers"]
    assert first.response_metadata["gateway"]["cache_status"] == "MISS"
    assert second.response_metadata["gateway"]["cache_status"] == "HIT"
    assert str(second.response_metadata["cost"]) == "0" and first.content == second.content
    assert all(r.headers.get("cf-aig-cache-ttl") == "3600" for r in account.state.requests)


def test_assistant_profile_checks_and_reaches_every_provider(account: EmulatorServer,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    mod = _load("assistant_config")
    monkeypatch.setenv("CFGATEWAY_CONFIG", mod.PROFILES)
    out = mod.main()
    assert out["check"] == 0 and out["dims"] == 1024
    assert (out["llm"].max_tokens, out["llm"].temperature) == (512, 0.3)
    assert all(text == "You said: ping" for text in out["answered"].values())
    paths = {r.path for r in account.state.requests}
    assert {"/v1/acct/assistant-gw/openai/chat/completions", "/v1/acct/assistant-gw/anthropic/v1/messages",
            "/v1/acct/assistant-gw/compat/chat/completions", "/v1/acct/assistant-gw/groq/chat/completions"} <= paths


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_every_guide_has_commands_and_a_tested_example() -> None:
    for guide in GUIDES:
        text = (ROOT / "docs" / guide).read_text(encoding="utf-8")
        assert _bash_blocks(text), guide
        assert re.search(r"examples/\w+\.py", text), guide


@pytest.mark.parametrize("guide", GUIDES)
def test_every_command_in_the_guide_runs_as_written(guide: str, tmp_path: Path) -> None:
    venv_bin = str(Path(sys.executable).parent)
    env = {"PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for block in _bash_blocks((ROOT / "docs" / guide).read_text(encoding="utf-8")):
        proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", block], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=240)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # anything the block left running (its own process group)
            except ProcessLookupError:
                pass
        assert proc.returncode == 0, f"{guide}:\n{block}\n---\n{out}"
        assert "Traceback" not in out, out


