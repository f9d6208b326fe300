"""The OpenAI-compatible proxy, driven with httpx's ASGI transport, upstream = the emulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cfgateway.config import load_settings
from cfgateway.emulator.config import Fault
from cfgateway.proxy import create_proxy_app


@pytest.fixture()
def proxy(cf_emulator: Any) -> Iterator[Any]:
    settings = load_settings(env={}, account_id="acct", api_token="t", base_url=cf_emulator.base_url,
                             gateway_base_url=cf_emulator.gateway_base_url, max_retries=0)
    app = create_proxy_app(settings, aliases={"fast": ["@cf/meta/llama-3.1-8b-instruct"]}, api_keys=["pk"])
    yield app


def call(app: Any, method: str, path: str, body: Any = None, key: str = "pk") -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as c:
            return await c.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
    return asyncio.run(go())


MSG = [{"role": "user", "content": "Tell me about Paris"}]


def test_chat_via_alias_echoes_model_and_usage(proxy: Any) -> None:
    r = call(proxy, "POST", "/v1/chat/completions", {"model": "fast", "messages": MSG})
    assert r.status_code == 200
    d = r.json()
    assert d["model"] == "fast" and "Paris" in d["choices"][0]["message"]["content"]
    assert d["usage"]["completion_tokens"] > 0 and r.headers["x-cfgateway-model"] == "@cf/meta/llama-3.1-8b-instruct"


def test_stream_with_include_usage_and_done(proxy: Any) -> None:
    r = call(proxy, "POST", "/v1/chat/completions", {"model": "@cf/meta/llama-3.1-8b-instruct", "messages": MSG,
                                                      "stream": True, "stream_options": {"include_usage": True}})
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Paris" in text


def test_tool_calls_round_trip(proxy: Any) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                              "required": ["city"]}}}]
    body = {"model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast", "tool_choice": "required", "tools": tools,
            "messages": [{"role": "user", "content": "weather in Paris?"}]}
    d = call(proxy, "POST", "/v1/chat/completions", body).json()
    tc = d["choices"][0]["message"]["tool_calls"][0]
    assert tc["function"]["name"] == "get_weather" and json.loads(tc["function"]["arguments"]) == {"city": "Paris"}


def test_embeddings_and_models(proxy: Any) -> None:
    d = call(proxy, "POST", "/v1/embeddings", {"model": "@cf/baai/bge-small-en-v1.5", "input": ["a b", "c"]}).json()
    assert len(d["data"]) == 2 and len(d["data"][0]["embedding"]) == 384 and d["usage"]["prompt_tokens"] >= 0
    models = call(proxy, "GET", "/v1/models").json()["data"]
    fast = next(m for m in models if m["id"] == "fast")
    assert set(fast["model_info"]) >= {"vision", "function_calling", "json_output", "family", "structured_output"}


def test_errors_are_openai_shaped(proxy: Any, cf_emulator: Any) -> None:
    r = call(proxy, "POST", "/v1/chat/completions", {"model": "fast", "messages": MSG}, key="wrong")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = call(proxy, "POST", "/v1/chat/completions", {"model": "nope", "messages": MSG})
    assert r.status_code == 400 and "has no provider" in r.json()["error"]["message"]
    r = call(proxy, "POST", "/v1/chat/completions", {"model": "fast"})
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    cf_emulator.state.add_fault(Fault(path="*/ai/run/*", kind="error", status=429, code=3040, times=1))
    r = call(proxy, "POST", "/v1/chat/completions", {"model": "fast", "messages": MSG})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error" and r.json()["error"]["code"] == 3040


def test_mid_stream_failure_is_an_error_event_not_done(proxy: Any, cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*/ai/run/*", kind="drop_stream", after_chunks=2))
    r = call(proxy, "POST", "/v1/chat/completions", {"model": "fast", "messages": MSG, "stream": True})
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert "[DONE]" not in events and "error" in json.loads(events[-1])
