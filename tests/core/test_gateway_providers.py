"""Every provider slug of the wire reference (cloudflare-api.md §3.2) either works against the emulator through
its native path or the gateway's ``compat`` endpoint, or is refused before sending with an error naming what to do."""

from __future__ import annotations

from typing import Any

import pytest

from cfgateway import Client, ConfigError, build_client
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.types import ChatRequest, Message

pytestmark = pytest.mark.usefixtures("cf_clean_env")

NATIVE = {  # model string -> the path after /v1/{acct}/{gw}/
    "workers-ai/@cf/meta/llama-3.1-8b-instruct": "workers-ai/@cf/meta/llama-3.1-8b-instruct",
    "openai/gpt-4o-mini": "openai/chat/completions",
    "anthropic/claude-sonnet-4-5": "anthropic/v1/messages",
    "groq/llama-3.1-8b-instant": "groq/chat/completions",
    "deepseek/deepseek-chat": "deepseek/chat/completions",
    "mistral/mistral-small-latest": "mistral/v1/chat/completions",
    "openrouter/meta-llama/llama-3.1-8b-instruct": "openrouter/chat/completions",
    "cerebras/llama3.1-8b": "cerebras/chat/completions",
    "perplexity-ai/sonar": "perplexity-ai/chat/completions",
    "grok/grok-3-mini": "grok/v1/chat/completions",
    "custom-deepinfra/meta-llama/Meta-Llama-3.1-8B-Instruct": "custom-deepinfra/v1/openai/chat/completions",
}
COMPAT = ["google-ai-studio/gemini-2.5-flash", "google-vertex-ai/google/gemini-2.5-flash",
          "aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", "azure-openai/my-resource/gpt-4o-mini",
          "cohere/command-r-plus", "huggingface/meta-llama/Llama-3.1-8B-Instruct", "replicate/meta/llama-3-8b",
          "baseten/llama-3.1-8b", "saladcloud/llama-3.1-8b", "perplexity/sonar", "xai/grok-3-mini"]
REFUSED = ["cartesia/sonic-2", "deepgram/aura-2", "elevenlabs/eleven_v3", "fal/flux-dev", "ideogram/v3",
           "parallel/search", "neon/db"]


@pytest.fixture(scope="module")
def emu() -> Any:
    gw = GatewayConfig("gw-token", stored_keys=True, dynamic_routes={"support": "google-ai-studio/gemini-2.5-flash"})
    config = EmulatorConfig(account_id="acct", gateways={"gw": gw, "open": GatewayConfig()},
                            auto_create_gateways=False)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(emu: EmulatorServer) -> None:
    emu.state.clear()


def _ask(emu: EmulatorServer, model: str, **kw: Any) -> Any:
    client = Client(model, **emu.client_kwargs(gateway=True, **kw))
    return client.chat(ChatRequest([Message("user", "hello there")], max_tokens=16))


@pytest.mark.parametrize("model", sorted(NATIVE))
def test_native_slugs_keep_their_paths(emu: EmulatorServer, model: str) -> None:
    answer = _ask(emu, model)
    assert answer.text == "You said: hello there" and answer.model == model.removeprefix("workers-ai/")
    assert [r.path for r in emu.state.requests] == [f"/v1/acct/gw/{NATIVE[model]}"]


@pytest.mark.parametrize("model", COMPAT)
def test_other_gateway_providers_work_through_compat(emu: EmulatorServer, model: str) -> None:
    answer = _ask(emu, model)
    assert answer.text == "You said: hello there" and answer.model == model
    (req,) = emu.state.requests
    assert req.path == "/v1/acct/gw/compat/chat/completions" and req.json["model"] == model
    assert "authorization" not in req.headers  # stored keys: only the gateway token travels
    provider, rest = model.split("/", 1)
    alias = {"perplexity": "perplexity-ai", "xai": "grok"}.get(provider, provider)
    assert answer.gateway.provider == alias and answer.gateway.model == rest


@pytest.mark.parametrize("model", REFUSED)
def test_non_chat_providers_are_refused_before_sending(emu: EmulatorServer, model: str) -> None:
    with pytest.raises(ConfigError, match="not chat or embeddings.*own HTTP client"):
        _ask(emu, model)
    assert list(emu.state.requests) == []


def test_unknown_slug_lists_the_known_ones_and_says_how_to_use_compat(emu: EmulatorServer) -> None:
    with pytest.raises(ConfigError, match=r"unknown provider 'newco'.*google-ai-studio.*endpoint='compat'") as info:
        _ask(emu, "newco/model-1")
    assert "CFGATEWAY_ENDPOINT=compat" in str(info.value)
    with pytest.raises(Exception, match="2008|Invalid provider"):  # compat passes it on; the gateway refuses
        _ask(emu, "newco/model-1", endpoint="compat")
    assert [r.json["model"] for r in emu.state.requests] == ["newco/model-1"]


def test_dynamic_route_is_passed_through_and_answers_with_the_routed_model(emu: EmulatorServer) -> None:
    answer = _ask(emu, "dynamic/support")
    assert answer.text == "You said: hello there" and answer.model == "dynamic/support"
    assert answer.gateway.provider == "google-ai-studio" and answer.gateway.model == "gemini-2.5-flash"
    assert emu.state.requests[0].json["model"] == "dynamic/support"


def test_compat_providers_fall_back_through_the_universal_endpoint(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(path="/v1/acct/gw/workers-ai/*", kind="error", status=429, code=3040))
    chain = build_client("@cf/meta/llama-3.1-8b-instruct", ["google-ai-studio/gemini-2.5-flash"],
                         fallback_mode="gateway", **emu.client_kwargs(gateway=True))
    answer = chain.chat(ChatRequest([Message("user", "hello there")], max_tokens=16))
    assert answer.model == "google-ai-studio/gemini-2.5-flash" and answer.text == "You said: hello there"
    (req,) = emu.state.requests
    assert req.path == "/v1/acct/gw" and [s["provider"] for s in req.json] == ["workers-ai", "compat"]
    assert req.json[1]["query"]["model"] == "google-ai-studio/gemini-2.5-flash"


def test_stored_keys_only_providers_refuse_byok_false(emu: EmulatorServer) -> None:
    for model in ("aws-bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", "google-vertex-ai/google/gemini-2.5-flash"):
        with pytest.raises(ConfigError, match="keys stored in the gateway, which signs the request.*byok"):
            _ask(emu, model, byok=False)
    assert list(emu.state.requests) == []


def test_byok_false_sends_the_provider_key_through_compat(emu: EmulatorServer, monkeypatch: Any) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    answer = Client("google-ai-studio/gemini-2.5-flash", **emu.client_kwargs(gateway="open", byok=False,
                                                                             gateway_token=None))
    assert answer.chat(ChatRequest([Message("user", "hi")], max_tokens=4)).text == "You said: hi"
    assert emu.state.requests[0].headers["authorization"] == "Bearer g-key"


def test_byok_false_without_the_key_names_the_variable_not_byok_false(emu: EmulatorServer) -> None:
    with pytest.raises(ConfigError, match=r"byok is off .* OPENAI_API_KEY is not set") as info:
        Client("openai/gpt-4o-mini", **emu.client_kwargs(gateway="open", byok=False, gateway_token=None))
    assert "pass byok=False" not in str(info.value)
    with pytest.raises(ConfigError, match=r"CLOUDFLARE_AI_GATEWAY_TOKEN.*gateway_token_env.*CFGATEWAY_BYOK=0"):
        Client("openai/gpt-4o-mini", account_id="acct", api_token="t", gateway_id="gw")
