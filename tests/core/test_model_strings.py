"""Model strings are checked before anything is sent (issue 10 §1): each attack, reproduced against the
emulator, is refused at every entry point, and nothing reaches the server."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from cfgateway import Client, ConfigError, build_client
from cfgateway.config import load_settings
from cfgateway.emulator.config import Fault
from cfgateway.emulator.server import EmulatorServer
from cfgateway.routing.model_strings import check_model_string
from cfgateway.routing.routes import resolve_route, split_model

pytestmark = pytest.mark.usefixtures("cf_clean_env")

TOKEN_VERIFY = "@cf/../../../../../user/tokens/verify"
RESET = "@cf/../../../__emulator/reset"
RESET_DEEP = "@cf/" + "../" * 7 + "__emulator/reset"  # enough '..' to climb from /client/v4/accounts/acct/ai/run
QUERY = "@cf/meta/llama-3.1-8b-instruct?x=1&y=2"
ATTACKS = [TOKEN_VERIFY, RESET, RESET_DEEP, QUERY, "openai/../../evil", "openai/gpt-4o#frag", "@cf/meta/%2e%2e/x",
           "@cf/meta/llama 3", "@cf/meta/llama\n", "openai/gpt\x00", "@cf//meta", "openai/", "@cf/meta/.",
           "custom-x/..", "Openai/gpt-4o", "@cf/meta\\..\\x", "workers-ai/@cf/../x"]


def test_the_attacks_would_reach_the_emulator_unchecked(cf_emulator: EmulatorServer) -> None:
    """What the check prevents: a raw client resolves '..' and the reset endpoint wipes the state."""
    cf_emulator.state.add_fault(Fault(path="/nothing", kind="error"))
    url = f"{cf_emulator.base_url}/accounts/acct/ai/run/{RESET_DEEP}"
    answer = httpx.post(url, headers={"Authorization": "Bearer t"}, json={})
    assert answer.json() == {"reset": True}, (answer.request.url, answer.text)
    assert cf_emulator.state.faults == []  # the state was wiped: the attack is real


@pytest.mark.parametrize("model", ATTACKS)
def test_the_grammar_refuses_each_attack(model: str) -> None:
    with pytest.raises(ConfigError, match="refused|empty|provider"):
        check_model_string(model)
    with pytest.raises(ConfigError):
        split_model(model)


@pytest.mark.parametrize("model", [TOKEN_VERIFY, RESET, RESET_DEEP, QUERY])
def test_client_and_chain_refuse_before_sending(cf_emulator: EmulatorServer, model: str) -> None:
    cf_emulator.state.add_fault(Fault(path="/nothing", kind="error"))
    kw = cf_emulator.client_kwargs()
    with pytest.raises(ConfigError, match="refused"):
        Client(model, **kw)
    with pytest.raises(ConfigError, match="refused"):
        build_client("@cf/meta/llama-3.1-8b-instruct", [model], **kw)
    client = Client("@cf/meta/llama-3.1-8b-instruct", **kw)
    from cfgateway.types import ChatRequest, Message

    with pytest.raises(ConfigError, match="refused"):
        client.chat(ChatRequest([Message("user", "hi")]), model=model)  # a per-call model too
    assert list(cf_emulator.state.requests) == [] and len(cf_emulator.state.faults) == 1


@pytest.mark.parametrize("model", [TOKEN_VERIFY, RESET, QUERY])
def test_adapters_refuse_before_sending(cf_emulator: EmulatorServer, model: str) -> None:
    from langchain_cfgateway import ChatCloudflare, CloudflareEmbeddings
    from llama_index_cfgateway import CloudflareEmbedding, CloudflareLLM

    kw = cf_emulator.client_kwargs()
    for build in (lambda: ChatCloudflare(model=model, **kw), lambda: CloudflareEmbeddings(model=model, **kw),
                  lambda: CloudflareLLM(model=model, **kw), lambda: CloudflareEmbedding(model_name=model, **kw),
                  lambda: ChatCloudflare(fallbacks=[model], **kw)):
        with pytest.raises(ConfigError, match="refused"):
            build()
    assert list(cf_emulator.state.requests) == []


def test_config_and_env_refuse_bad_model_strings(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="refused"):
        load_settings(env={"CFGATEWAY_CHAT_MODEL": RESET})
    with pytest.raises(ConfigError, match="refused"):
        load_settings(env={"CFGATEWAY_FALLBACKS": f"openai/gpt-4o-mini,{QUERY}"})
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'embed_model = "{TOKEN_VERIFY}"\n')
    with pytest.raises(ConfigError, match="refused"):
        load_settings(env={"CFGATEWAY_CONFIG": str(cfg)})


def test_cli_chat_refuses_before_sending(cf_emulator: EmulatorServer) -> None:
    env = {"PATH": "/usr/bin:/bin", "CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "t",
           "CLOUDFLARE_API_BASE_URL": cf_emulator.base_url}
    out = subprocess.run([sys.executable, "-m", "cfgateway", "chat", RESET, "hi"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 1 and "refused" in out.stderr
    assert list(cf_emulator.state.requests) == []


def test_valid_strings_of_every_family_pass_and_urls_keep_them_verbatim() -> None:
    s = load_settings(env={}, account_id="a", api_token="t", gateway_id="g", gateway_token="gt")
    for model in ("@cf/meta/llama-3.3-70b-instruct-fp8-fast", "@hf/nousresearch/hermes-2-pro-mistral-7b",
                  "openai/ft:gpt-4o-mini:org::abc123", "aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0",
                  "huggingface/meta-llama/Llama-3.1-8B-Instruct", "custom-deepinfra/Qwen/Qwen3-Embedding-8B",
                  "openrouter/anthropic/claude-3.5-sonnet:beta", "dynamic/support_v2"):
        assert check_model_string(model) == model
        route = resolve_route(model, s)
        assert route.model == model and "?" not in (route.chat_url or "")
    assert resolve_route("@cf/meta/llama-3.1-8b-instruct", s, "direct").chat_url.endswith(
        "/ai/run/@cf/meta/llama-3.1-8b-instruct")
