"""The proxy runs on what the configuration names: ``chat_model`` / ``embed_model`` (with their fallbacks) are
the aliases ``default`` and ``default-embedding``, and a request that names no model runs on them."""

from __future__ import annotations

import asyncio
from typing import Any

import _proxy_proc
import httpx
import openai
import pytest

from cfgateway.config import load_settings
from cfgateway.emulator.config import Fault
from cfgateway.proxy import ProxyConfig, create_proxy_app

CHAT_MODEL = "@cf/meta/llama-3.1-8b-instruct"
FALLBACK = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
EMBED_MODEL = "@cf/baai/bge-base-en-v1.5"
MSG = [{"role": "user", "content": "Tell me about Paris"}]


def app_for(cf_emulator: Any, config: ProxyConfig | None = None, **settings: Any) -> Any:
    s = load_settings(env={}, account_id="acct", api_token="t", base_url=cf_emulator.base_url,
                      gateway_base_url=cf_emulator.gateway_base_url, max_retries=0, **settings)
    return create_proxy_app(s, config=config)


def call(app: Any, method: str, path: str, body: Any = None) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as c:
            return await c.request(method, path, json=body)
    return asyncio.run(go())


def test_a_request_without_model_runs_on_the_configured_chat_model(cf_emulator: Any) -> None:
    app = app_for(cf_emulator, chat_model=CHAT_MODEL, fallbacks=[FALLBACK])
    r = call(app, "POST", "/v1/chat/completions", {"messages": MSG})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "default" and r.headers["x-cfgateway-model"] == CHAT_MODEL
    assert "Paris" in r.json()["choices"][0]["message"]["content"]
    named = call(app, "POST", "/v1/chat/completions", {"model": "default", "messages": MSG})
    assert named.status_code == 200 and named.headers["x-cfgateway-model"] == CHAT_MODEL


def test_the_configured_fallbacks_serve_when_the_primary_fails(cf_emulator: Any) -> None:
    app = app_for(cf_emulator, chat_model=CHAT_MODEL, fallbacks=[FALLBACK])
    cf_emulator.state.add_fault(Fault(path=f"*/ai/run/{CHAT_MODEL}", kind="error", status=500, code=3043, times=1))
    r = call(app, "POST", "/v1/chat/completions", {"model": "default", "messages": MSG})
    assert r.status_code == 200, r.text
    assert r.headers["x-cfgateway-model"] == FALLBACK


def test_embeddings_without_model_use_embed_model_and_models_lists_both(cf_emulator: Any) -> None:
    app = app_for(cf_emulator, chat_model=CHAT_MODEL, embed_model=EMBED_MODEL)
    r = call(app, "POST", "/v1/embeddings", {"input": ["hello", "world"]})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["model"] == "default-embedding" and len(d["data"]) == 2 and len(d["data"][0]["embedding"]) == 768
    ids = {m["id"] for m in call(app, "GET", "/v1/models").json()["data"]}
    assert {"default", "default-embedding"} <= ids


def test_without_configuration_a_missing_model_is_a_400_naming_the_setting(cf_emulator: Any) -> None:
    app = app_for(cf_emulator)
    r = call(app, "POST", "/v1/chat/completions", {"messages": MSG})
    e = r.json()["error"]
    assert r.status_code == 400 and e["param"] == "model" and e["code"] == "model_required"
    assert "CFGATEWAY_CHAT_MODEL" in e["message"]
    r = call(app, "POST", "/v1/embeddings", {"input": "x"})
    assert r.status_code == 400 and "CFGATEWAY_EMBED_MODEL" in r.json()["error"]["message"]
    ids = {m["id"] for m in call(app, "GET", "/v1/models").json()["data"]}
    assert "default" not in ids


def test_an_operator_alias_named_default_wins(cf_emulator: Any) -> None:
    app = app_for(cf_emulator, ProxyConfig(aliases={"default": [FALLBACK]}), chat_model=CHAT_MODEL)
    r = call(app, "POST", "/v1/chat/completions", {"messages": MSG})
    assert r.status_code == 200 and r.headers["x-cfgateway-model"] == FALLBACK


def test_an_empty_model_string_is_refused_not_defaulted(cf_emulator: Any) -> None:
    app = app_for(cf_emulator, chat_model=CHAT_MODEL)
    r = call(app, "POST", "/v1/chat/completions", {"model": "", "messages": MSG})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"


@pytest.mark.timeout(60)
def test_a_proxy_process_takes_the_model_from_the_environment(cf_emulator_server: Any) -> None:
    env = _proxy_proc.emulator_env(cf_emulator_server, CFGATEWAY_CHAT_MODEL=FALLBACK,
                                   CFGATEWAY_EMBED_MODEL=EMBED_MODEL)
    with _proxy_proc.running([], env) as pp:
        client = openai.OpenAI(base_url=pp.base_url, api_key="unused", max_retries=0)
        resp = client.chat.completions.with_raw_response.create(model="default", messages=MSG)  # type: ignore[arg-type]
        assert resp.headers["x-cfgateway-model"] == FALLBACK
        assert "Paris" in (resp.parse().choices[0].message.content or "")
        emb = client.embeddings.create(model="default-embedding", input=["a", "b", "c"])
        assert len(emb.data) == 3 and len(emb.data[0].embedding) == 768


@pytest.mark.timeout(120)
@pytest.mark.parametrize("configured", ["@cf/meta/llama-3.3-70b-instruct-fp8-fast", "@cf/meta/llama-4-scout-17b-16e-instruct"])
def test_an_autogen_agent_on_default_swaps_model_by_environment(cf_emulator_server: Any, cf_emulator: Any,
                                                                 configured: str) -> None:
    """The same AutoGen code (model="default", model_info from /v1/models) runs on whatever the operator's
    CFGATEWAY_CHAT_MODEL names: the emulator sees that model's route, the tool is called."""
    from autogen_agentchat.agents import AssistantAgent
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    calls: list[str] = []

    async def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    async def run(base_url: str) -> Any:
        listing = httpx.get(f"{base_url}/models").json()["data"]
        info = dict(next(m for m in listing if m["id"] == "default")["model_info"])
        info.pop("context_window", None)
        client = OpenAIChatCompletionClient(model="default", base_url=base_url, api_key="unused",
                                            model_info=info)  # type: ignore[arg-type]
        agent = AssistantAgent("assistant", model_client=client, tools=[get_weather], reflect_on_tool_use=True)
        try:
            return await agent.run(task="What is the weather in Paris?")
        finally:
            await client.close()

    with _proxy_proc.running([], _proxy_proc.emulator_env(cf_emulator_server, CFGATEWAY_CHAT_MODEL=configured)) as pp:
        result = asyncio.run(run(pp.base_url))
    assert calls == ["Paris"] and result.messages[-1].content
    paths = {r.path for r in cf_emulator.state.requests if "/ai/" in r.path}
    assert paths and all(p.endswith(configured) for p in paths), paths


def test_the_proxys_endpoint_applies_to_the_default_alias(cf_emulator: Any) -> None:
    app = app_for(cf_emulator, ProxyConfig(endpoint="openai"), chat_model=CHAT_MODEL)
    assert call(app, "POST", "/v1/chat/completions", {"messages": MSG}).status_code == 200
    paths = [r.path for r in cf_emulator.state.requests if "/ai/" in r.path]
    assert paths and all("/ai/v1/" in p for p in paths), paths
