"""The OpenAI-compatible proxy driven through its ASGI app (httpx), upstream = the emulator.

The same behaviour through a real `cfgateway proxy` process and the real clients is in
test_proxy_process.py and test_proxy_clients.py; this file pins the request handling in detail.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cfgateway.config import load_settings
from cfgateway.emulator.config import Fault
from cfgateway.proxy import ProxyConfig, create_proxy_app, key_from_spec

KEY = "pk-test-0001"


@pytest.fixture()
def proxy(cf_emulator: Any) -> Iterator[Any]:
    settings = load_settings(env={}, account_id="acct", api_token="t", base_url=cf_emulator.base_url,
                             gateway_base_url=cf_emulator.gateway_base_url, max_retries=0)
    config = ProxyConfig(aliases={"fast": ["@cf/meta/llama-3.1-8b-instruct"],
                                  "tools": ["@cf/meta/llama-3.1-8b-instruct-fp8-fast", "@cf/meta/llama-3.3-70b-instruct-fp8-fast"]},
                         keys=[key_from_spec(f"alice:{KEY}")])
    yield create_proxy_app(settings, config=config)


def call(app: Any, method: str, path: str, body: Any = None, key: str = KEY, headers: dict[str, str] | None = None,
         content: bytes | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080") as c:
            h = {"Authorization": f"Bearer {key}", **(headers or {})}
            if content is not None:
                return await c.request(method, path, content=content, headers=h)
            return await c.request(method, path, json=body, headers=h)
    return asyncio.run(go())


MSG = [{"role": "user", "content": "Tell me about Paris"}]
CHAT = "/v1/chat/completions"
WEATHER = [{"type": "function", "function": {"name": "get_weather", "description": "weather",
                                             "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                            "required": ["city"]}}}]


def err(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()["error"]


def test_chat_via_alias_echoes_model_and_usage(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG})
    assert r.status_code == 200
    d = r.json()
    assert d["model"] == "fast" and "Paris" in d["choices"][0]["message"]["content"]
    assert d["usage"]["completion_tokens"] > 0 and r.headers["x-cfgateway-model"] == "@cf/meta/llama-3.1-8b-instruct"


def test_stream_with_include_usage_and_done(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "@cf/meta/llama-3.1-8b-instruct", "messages": MSG,
                                   "stream": True, "stream_options": {"include_usage": True}})
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "Paris" in text


def test_tool_calls_round_trip(proxy: Any) -> None:
    body = {"model": "@cf/meta/llama-3.3-70b-instruct-fp8-fast", "tool_choice": "required", "tools": WEATHER,
            "messages": [{"role": "user", "content": "weather in Paris?"}]}
    d = call(proxy, "POST", CHAT, body).json()
    tc = d["choices"][0]["message"]["tool_calls"][0]
    assert tc["function"]["name"] == "get_weather" and json.loads(tc["function"]["arguments"]) == {"city": "Paris"}
    follow = body["messages"] + [{"role": "assistant", "content": None, "tool_calls": [tc]},
                                 {"role": "tool", "tool_call_id": tc["id"], "content": "sunny, 21 C"}]
    r = call(proxy, "POST", CHAT, {"model": body["model"], "messages": follow})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


def test_n_serves_several_choices_and_sums_usage(proxy: Any) -> None:
    one = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG}).json()
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG, "n": 3})
    d = r.json()
    assert [c["index"] for c in d["choices"]] == [0, 1, 2]
    assert d["usage"]["completion_tokens"] == 3 * one["usage"]["completion_tokens"]


def test_n_streams_interleave_choices(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG, "n": 2, "stream": True,
                                   "stream_options": {"include_usage": True}})
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    by_index: dict[int, str] = {0: "", 1: ""}
    for c in chunks:
        for ch in c["choices"]:
            by_index[ch["index"]] += ch["delta"].get("content") or ""
    assert "Paris" in by_index[0] and by_index[0] == by_index[1]
    assert sum(1 for c in chunks for ch in c["choices"] if ch["finish_reason"]) == 2


def test_n_above_the_limit_is_refused_by_name(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG, "n": 50})
    assert r.status_code == 400 and err(r)["param"] == "n" and "limit of 8" in err(r)["message"]


@pytest.mark.parametrize("field,value", [("logprobs", True), ("top_logprobs", 3), ("logit_bias", {"50256": -100}),
                                         ("store", True)])
def test_unserved_features_are_refused_not_ignored(proxy: Any, field: str, value: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG, field: value})
    assert r.status_code == 400 and err(r)["param"] == field


INVALID = [
    ("temperature", "hot"), ("temperature", 9), ("max_tokens", -1), ("max_tokens", 0), ("max_tokens", 1e30),
    ("max_tokens", 3.7), ("top_p", {}), ("top_p", 1.5), ("seed", "abc"), ("tool_choice", "sometimes"),
    ("stop", 5), ("tools", ["abc"]), ("metadata", "abc"), ("n", 0), ("presence_penalty", 3),
    ("frequency_penalty", "x"), ("stream", "yes"), ("response_format", {"type": "xml"}), ("user", 5),
    ("max_completion_tokens", "10"), ("wat", 1),
]


@pytest.mark.parametrize("field,value", INVALID)
def test_invalid_values_are_400_naming_the_field(proxy: Any, field: str, value: Any, cf_emulator: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG, field: value})
    assert r.status_code == 400, r.text
    assert err(r)["param"].split(".")[0].split("[")[0] == field and err(r)["type"] == "invalid_request_error"
    assert not [q for q in cf_emulator.state.requests if "/ai/" in q.path], "an invalid request reached upstream"


def test_nan_is_refused(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, content=b'{"model": "fast", "messages": [{"role": "user", "content": "x"}], '
                                          b'"temperature": NaN}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and err(r)["param"] == "temperature"


def test_bad_tool_call_arguments_are_the_clients_400_not_a_502(proxy: Any) -> None:
    msgs = [{"role": "user", "content": "x"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": msgs})
    assert r.status_code == 400 and err(r)["param"] == "messages[1].tool_calls[0].function.arguments"


def test_deep_nesting_is_a_400_not_a_recursion_error(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, content=b"[" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in err(r)["message"]


@pytest.mark.parametrize("model", ["@cf/../../../../../user/tokens/verify", "@cf/../../../__emulator/reset",
                                   "@cf/meta/llama-3.1-8b-instruct?x=1", "@cf/meta/x#frag", "@cf/meta/%2e%2e/x",
                                   "@cf/meta/llama 3", "@cf/meta/\nx", "@cf/./x", "a" * 300, ""])
def test_hostile_model_strings_never_reach_a_url(proxy: Any, model: str, cf_emulator: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": model, "messages": MSG})
    assert r.status_code == 400 and err(r)["param"] == "model"
    assert not list(cf_emulator.state.requests), "a hostile model string reached upstream"


def test_bare_names_need_the_default_provider(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "gpt-4o-mini", "messages": MSG})
    assert r.status_code == 400 and "--default-provider" in err(r)["message"] and err(r)["param"] == "model"


def test_keys_bearer_is_case_insensitive_and_the_401_speaks_to_the_client(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG}, headers={"Authorization": f"bearer {KEY}"})
    assert r.status_code == 200
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG}, key="wrong-key-123")
    e = err(r)
    assert r.status_code == 401 and e["type"] == "authentication_error" and "invalid proxy API key" in e["message"]
    assert "CLOUDFLARE" not in e["message"]
    assert call(proxy, "GET", "/v1/models", key="wrong-key-123").status_code == 401


def test_upstream_credential_failure_is_the_operators_502(proxy: Any, cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*/ai/run/*", kind="error", status=401, code=10000, times=1))
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG})
    assert r.status_code == 502 and "CLOUDFLARE_API_TOKEN" not in err(r)["message"]


def test_upstream_errors_are_openai_shaped(proxy: Any, cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*/ai/run/*", kind="error", status=429, code=3040, times=1))
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG})
    assert r.status_code == 429 and err(r)["type"] == "rate_limit_error" and err(r)["code"] == 3040
    r = call(proxy, "POST", CHAT, {"model": "@cf/meta/no-such-model", "messages": MSG})
    assert r.status_code == 404 and err(r)["code"] == "model_not_found"


def test_mid_stream_failure_is_an_error_event_not_done(proxy: Any, cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*/ai/run/*", kind="drop_stream", after_chunks=2))
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG, "stream": True})
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert "[DONE]" not in events and "error" in json.loads(events[-1])


def test_embeddings_float_base64_and_dimensions(proxy: Any) -> None:
    d = call(proxy, "POST", "/v1/embeddings", {"model": "@cf/baai/bge-small-en-v1.5", "input": ["a b", "c"]}).json()
    assert len(d["data"]) == 2 and len(d["data"][0]["embedding"]) == 384
    b = call(proxy, "POST", "/v1/embeddings", {"model": "@cf/baai/bge-small-en-v1.5", "input": ["a b", "c"],
                                               "encoding_format": "base64"}).json()
    raw = base64.b64decode(b["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(floats) == 384 and floats == pytest.approx(d["data"][0]["embedding"], rel=1e-6)
    r = call(proxy, "POST", "/v1/embeddings", {"model": "@cf/baai/bge-small-en-v1.5", "input": "a", "dimensions": 256})
    assert r.status_code == 400 and "256" in err(r)["message"]


def test_embedding_input_limit(proxy: Any) -> None:
    r = call(proxy, "POST", "/v1/embeddings", {"model": "@cf/baai/bge-small-en-v1.5", "input": ["x"] * 3000})
    assert r.status_code == 400 and err(r)["param"] == "input" and "2048" in err(r)["message"]
    r = call(proxy, "POST", "/v1/embeddings", {"model": "@cf/baai/bge-small-en-v1.5", "input": [1, 2, 3]})
    assert r.status_code == 400 and err(r)["param"].startswith("input")


def test_models_alias_capabilities_and_one_model(proxy: Any) -> None:
    models = call(proxy, "GET", "/v1/models").json()["data"]
    tools = next(m for m in models if m["id"] == "tools")
    assert tools["model_info"]["function_calling"] is True  # the proxy serves tools for it (its second member has them)
    assert tools["model_info"]["family"] == "unknown" and tools["members"][0] == "@cf/meta/llama-3.1-8b-instruct-fp8-fast"
    one = call(proxy, "GET", "/v1/models/@cf/meta/llama-3.3-70b-instruct-fp8-fast").json()
    assert one["model_info"]["family"] == "llama-3.3-70b" and one["model_info"]["function_calling"] is True
    r = call(proxy, "GET", "/v1/models/nope")
    assert r.status_code == 404 and err(r)["code"] in ("model_not_found",)


def test_unknown_paths_and_methods_are_openai_shaped(proxy: Any) -> None:
    r = call(proxy, "GET", "/v1/nothing")
    assert r.status_code == 404 and err(r)["code"] == "unknown_url"
    r = call(proxy, "DELETE", CHAT)
    assert r.status_code == 405 and err(r)["code"] == "method_not_allowed"
    r = call(proxy, "POST", "/v1/completions", {"model": "fast", "prompt": "x"})
    assert r.status_code == 404 and err(r)["type"] == "invalid_request_error"


def test_browser_guards(proxy: Any) -> None:
    r = call(proxy, "POST", CHAT, content=json.dumps({"model": "fast", "messages": MSG}).encode(),
             headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = call(proxy, "POST", CHAT, {"model": "fast", "messages": MSG}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and err(r)["code"] == "origin_not_allowed"
    r = call(proxy, "GET", "/v1/models", headers={"host": "evil.example:8080"})
    assert r.status_code == 400 and err(r)["code"] == "host_not_allowed"
    assert call(proxy, "GET", "/healthz", headers={"host": "10.0.0.7:8080"}).status_code == 200


def test_body_size_limit(proxy: Any) -> None:
    big = json.dumps({"model": "fast", "messages": [{"role": "user", "content": "x" * (9 * 1024 * 1024)}]}).encode()
    r = call(proxy, "POST", CHAT, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and err(r)["code"] == "request_too_large"
