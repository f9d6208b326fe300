"""One unchanged app, many configurations (issue 11's proof): ``examples/rag_app.py`` (LangChain) and
``examples/rag_query_engine.py`` (LlamaIndex) name no model and no provider; each runs under five configurations
set only by environment variables or ``CFGATEWAY_PROFILE``, and the emulator's request log shows the routes used."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[1]
APPS = ("rag_app", "rag_query_engine")
LLAMA = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
BGE = "@cf/baai/bge-base-en-v1.5"
PROFILES = f"""
[profiles.gateway-fallback]
gateway_id = "gw"
gateway_token_env = "APP_GATEWAY_TOKEN"
chat_model = "{LLAMA}"
fallbacks = ["openai/gpt-4o-mini"]
embed_model = "{BGE}"

[profiles.anthropic]
gateway_id = "gw"
gateway_token_env = "APP_GATEWAY_TOKEN"
chat_model = "anthropic/claude-sonnet-4-5"
embed_model = "{BGE}"
"""
GATEWAY_ENV = {"CLOUDFLARE_AI_GATEWAY_ID": "gw", "CLOUDFLARE_AI_GATEWAY_TOKEN": "app-gw-token"}

# name -> (environment, expected chat path, expected embed path, the model that answers)
CONFIGS: dict[str, tuple[dict[str, str], str, str, str]] = {
    "workers-ai-direct": (
        {"CFGATEWAY_CHAT_MODEL": LLAMA, "CFGATEWAY_EMBED_MODEL": BGE},
        f"/client/v4/accounts/acct/ai/run/{LLAMA}", f"/client/v4/accounts/acct/ai/run/{BGE}", LLAMA),
    "gateway-with-openai-fallback": (
        {"CFGATEWAY_PROFILE": "gateway-fallback"},
        "/v1/acct/gw/openai/chat/completions", f"/v1/acct/gw/workers-ai/{BGE}", "openai/gpt-4o-mini"),
    "openai-and-deepinfra-qwen3": (
        {**GATEWAY_ENV, "CFGATEWAY_CHAT_MODEL": "openai/gpt-4o-mini",
         "CFGATEWAY_EMBED_MODEL": "custom-deepinfra/Qwen/Qwen3-Embedding-8B"},
        "/v1/acct/gw/openai/chat/completions", "/v1/acct/gw/custom-deepinfra/v1/openai/embeddings",
        "openai/gpt-4o-mini"),
    "anthropic-with-workers-ai-embeddings": (
        {"CFGATEWAY_PROFILE": "anthropic"},
        "/v1/acct/gw/anthropic/v1/messages", f"/v1/acct/gw/workers-ai/{BGE}", "anthropic/claude-sonnet-4-5"),
    "google-ai-studio-through-compat": (
        {**GATEWAY_ENV, "CFGATEWAY_CHAT_MODEL": "google-ai-studio/gemini-2.5-flash", "CFGATEWAY_EMBED_MODEL": BGE},
        "/v1/acct/gw/compat/chat/completions", f"/v1/acct/gw/workers-ai/{BGE}", "google-ai-studio/gemini-2.5-flash"),
}


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    """The user's real setup, emulated: one account, one API token, an authenticated gateway with stored keys."""
    config = EmulatorConfig(api_token="app-token", account_id="acct", auto_create_gateways=False,
                            gateways={"gw": GatewayConfig("app-gw-token", stored_keys=True)})
    with EmulatorServer(config) as server:
        yield server


def _env(emu: EmulatorServer, name: str, tmp_path: Path) -> dict[str, str]:
    profiles = tmp_path / "cfgateway.toml"
    profiles.write_text(PROFILES, encoding="utf-8")
    return {"CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "app-token",
            "CLOUDFLARE_API_BASE_URL": emu.base_url, "CLOUDFLARE_AI_GATEWAY_BASE_URL": emu.gateway_base_url,
            "CFGATEWAY_CONFIG": str(profiles), "APP_GATEWAY_TOKEN": "app-gw-token", **CONFIGS[name][0]}


def _load(app: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"matrix_{app}", ROOT / "examples" / f"{app}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _prepare(emu: EmulatorServer, name: str) -> None:
    emu.state.clear()
    if name == "gateway-with-openai-fallback":  # the primary is out of capacity: the fallback answers
        emu.state.add_fault(Fault(path=f"/v1/acct/gw/workers-ai/{LLAMA}", kind="error", status=429, code=3040))


def _check_log(emu: EmulatorServer, name: str) -> None:
    _, chat_path, embed_path, _ = CONFIGS[name]
    ok = [r for r in emu.state.requests if r.status == 200]
    paths = {r.path for r in ok}
    assert chat_path in paths and embed_path in paths, sorted(paths)
    for r in emu.state.requests:
        if r.path.startswith("/v1/"):
            assert r.headers.get("cf-aig-authorization") == "Bearer app-gw-token"
            assert r.path.startswith("/v1/acct/gw/")
        if r.path.startswith("/v1/") and "/workers-ai/" not in r.path:
            assert "authorization" not in r.headers  # provider keys are stored in the gateway
    if name == "google-ai-studio-through-compat":
        assert {r.json["model"] for r in ok if r.path == chat_path} == {"google-ai-studio/gemini-2.5-flash"}
    if name == "gateway-with-openai-fallback":
        failed = [r for r in emu.state.requests if r.status == 429]
        assert failed and all(r.path == f"/v1/acct/gw/workers-ai/{LLAMA}" for r in failed)
    if name == "workers-ai-direct":
        assert not any(r.path.startswith("/v1/") for r in emu.state.requests)


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_unchanged_app_under_each_configuration(emu: EmulatorServer, app: str, name: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch, cf_clean_env: None) -> None:
    for var, value in _env(emu, name, tmp_path).items():
        monkeypatch.setenv(var, value)
    _prepare(emu, name)
    out: dict[str, Any] = _load(app).main()
    assert str(out["answer"]).startswith("You said:") and "neuron" in str(out["answer"])  # the emulator's echo
    costs = out["callback"] if app == "rag_app" else out["cost"]
    assert CONFIGS[name][3] in costs.by_model, costs.by_model  # the route that answered, in the cost records
    _check_log(emu, name)


def test_the_apps_name_no_model_and_no_provider() -> None:
    for app in APPS:
        text = (ROOT / "examples" / f"{app}.py").read_text(encoding="utf-8")
        code = text.split('"""', 2)[2]  # past the module docstring (which shows configurations)
        for word in ("@cf/", "openai/", "anthropic/", "google-ai-studio", "custom-deepinfra", "model=", "model_name="):
            assert word not in code, (app, word)


@pytest.mark.parametrize("app", APPS)
def test_each_app_runs_as_a_script_under_a_profile(emu: EmulatorServer, app: str, tmp_path: Path) -> None:
    _prepare(emu, "gateway-with-openai-fallback")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **_env(emu, "gateway-with-openai-fallback", tmp_path)}
    out = subprocess.run([sys.executable, str(ROOT / "examples" / f"{app}.py")], capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "You said:" in out.stdout and LLAMA in out.stdout
    _check_log(emu, "gateway-with-openai-fallback")
