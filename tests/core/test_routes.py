from __future__ import annotations

import json

import pytest

from cfgateway.config import load_settings
from cfgateway.errors import ConfigError
from cfgateway.routing.routes import GatewayOptions, parse_gateway_headers, resolve_route, universal_step, universal_url

ENV = {"CLOUDFLARE_ACCOUNT_ID": "acct", "CLOUDFLARE_API_TOKEN": "api-tok"}


def settings(**kw: object) -> object:
    return load_settings(env=ENV, **kw)


def test_workers_ai_direct_native_and_openai() -> None:
    r = resolve_route("@cf/meta/llama-3.1-8b-instruct", settings())
    assert r.chat_url == "https://api.cloudflare.com/client/v4/accounts/acct/ai/run/@cf/meta/llama-3.1-8b-instruct"
    assert r.wire == "workers-ai" and r.body_model is None and not r.via_gateway
    assert r.headers["Authorization"] == "Bearer api-tok"
    o = resolve_route("@cf/baai/bge-m3", settings(), "openai")
    assert o.chat_url.endswith("/accounts/acct/ai/v1/chat/completions")
    assert o.embed_url.endswith("/accounts/acct/ai/v1/embeddings") and o.body_model == "@cf/baai/bge-m3"


def test_workers_ai_through_gateway_when_gateway_configured() -> None:
    s = settings(gateway_id="gw", gateway_token="gw-tok")
    r = resolve_route("@cf/meta/llama-3.1-8b-instruct", s)
    assert r.chat_url == "https://gateway.ai.cloudflare.com/v1/acct/gw/workers-ai/@cf/meta/llama-3.1-8b-instruct"
    assert r.headers["cf-aig-authorization"] == "Bearer gw-tok" and r.via_gateway
    assert resolve_route("@cf/meta/llama-3.1-8b-instruct", s, "direct").via_gateway is False
    w = resolve_route("workers-ai/@cf/meta/llama-3.1-8b-instruct", s)
    assert w.model == "@cf/meta/llama-3.1-8b-instruct" and w.via_gateway


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("openai/gpt-4o-mini", "openai/chat/completions"),
        ("groq/llama-3.1-8b-instant", "groq/chat/completions"),
        ("mistral/mistral-small-latest", "mistral/v1/chat/completions"),
        ("grok/grok-3", "grok/v1/chat/completions"),
        ("anthropic/claude-sonnet-4-5", "anthropic/v1/messages"),
        ("custom-deepinfra/Qwen/Qwen3-Embedding-8B", "custom-deepinfra/v1/openai/chat/completions"),
        ("custom-acme/m", "custom-acme/chat/completions"),
    ],
)
def test_provider_paths(model: str, path: str) -> None:
    r = resolve_route(model, settings(gateway_id="gw", gateway_token="gw-tok"))
    assert r.chat_url == f"https://gateway.ai.cloudflare.com/v1/acct/gw/{path}"
    assert r.body_model == model.split("/", 1)[1]
    assert "Authorization" not in r.headers  # BYOK: only the gateway token travels


def test_deepinfra_embeddings_path_and_anthropic_headers() -> None:
    s = settings(gateway_id="gw", gateway_token="g", byok=False, provider_keys={"anthropic": "sk-ant"})
    e = resolve_route("custom-deepinfra/Qwen/Qwen3-Embedding-8B", s)
    assert e.embed_url == "https://gateway.ai.cloudflare.com/v1/acct/gw/custom-deepinfra/v1/openai/embeddings"
    a = resolve_route("anthropic/claude-sonnet-4-5", s)
    assert a.headers["x-api-key"] == "sk-ant" and a.headers["anthropic-version"] == "2023-06-01"
    assert "sk-ant" not in repr(a)


def test_compat_endpoint_keeps_provider_prefix() -> None:
    r = resolve_route("openai/gpt-4o-mini", settings(gateway_id="gw", gateway_token="g"), "compat")
    assert r.chat_url.endswith("/acct/gw/compat/chat/completions") and r.body_model == "openai/gpt-4o-mini"


@pytest.mark.parametrize(
    ("model", "kw", "match"),
    [
        ("gpt-4o-mini", {}, "has no provider.*openai/gpt-4o-mini"),
        ("nope/x", {"gateway_id": "gw", "gateway_token": "g"}, "unknown provider 'nope'"),
        ("openai/gpt-4o-mini", {}, "CLOUDFLARE_AI_GATEWAY_ID"),
        ("openai/gpt-4o-mini", {"gateway_id": "gw"}, "CLOUDFLARE_AI_GATEWAY_TOKEN.*OPENAI_API_KEY"),
        ("workers-ai/llama", {"gateway_id": "gw"}, "Workers AI id"),
    ],
)
def test_config_errors_name_the_fix(model: str, kw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_route(model, settings(**kw))


def test_missing_token_and_account() -> None:
    with pytest.raises(ConfigError, match="CLOUDFLARE_API_TOKEN"):
        resolve_route("@cf/meta/llama-3.1-8b-instruct", load_settings(env={"CLOUDFLARE_ACCOUNT_ID": "a"}))
    with pytest.raises(ConfigError, match="CLOUDFLARE_ACCOUNT_ID"):
        resolve_route("@cf/meta/llama-3.1-8b-instruct", load_settings(env={"CLOUDFLARE_API_TOKEN": "t"}))


def test_gateway_options_headers() -> None:
    h = GatewayOptions(
        cache_ttl=3600, skip_cache=True, cache_key="k", metadata={"team": "search", "n": 1}, collect_log=False,
        event_id="ev", request_timeout_ms=1500, max_attempts=9, retry_delay_ms=9000, backoff="exponential",
        custom_cost=(1e-6, 2e-6), byok_alias="prod",
    ).headers({"user": "u1"})
    assert h["cf-aig-cache-ttl"] == "3600" and h["cf-aig-skip-cache"] == "true" and h["cf-aig-cache-key"] == "k"
    assert json.loads(h["cf-aig-metadata"]) == {"team": "search", "n": 1, "user": "u1"}
    assert h["cf-aig-collect-log"] == "false" and h["cf-aig-event-id"] == "ev"
    assert h["cf-aig-request-timeout"] == "1500" and h["cf-aig-max-attempts"] == "5"
    assert h["cf-aig-retry-delay"] == "5000" and h["cf-aig-backoff"] == "exponential"
    assert json.loads(h["cf-aig-custom-cost"]) == {"per_token_in": 1e-6, "per_token_out": 2e-6}
    assert h["cf-aig-byok-alias"] == "prod"
    many = GatewayOptions(metadata={str(i): i for i in range(8)}).headers()
    assert len(json.loads(many["cf-aig-metadata"])) == 5


def test_universal_step_and_response_headers() -> None:
    s = settings(gateway_id="gw", gateway_token="g")
    r = resolve_route("@cf/meta/llama-3.1-8b-instruct", s)
    step = universal_step(r, {"messages": []}, config={"requestTimeout": 1000})
    assert step["provider"] == "workers-ai" and step["endpoint"] == "@cf/meta/llama-3.1-8b-instruct"
    assert step["headers"]["Authorization"] == "Bearer api-tok" and "cf-aig-authorization" not in step["headers"]
    assert step["config"] == {"requestTimeout": 1000}
    assert universal_url(s) == "https://gateway.ai.cloudflare.com/v1/acct/gw"
    meta = parse_gateway_headers({"cf-aig-cache-status": "HIT", "cf-aig-log-id": "L", "cf-aig-step": "1"})
    assert meta.cache_status == "HIT" and meta.log_id == "L" and meta.step == 1
