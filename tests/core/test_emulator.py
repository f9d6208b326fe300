"""The emulator over loopback with raw httpx: envelopes and shapes of every route family, and streams."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cfgateway.emulator import EmulatorConfig, EmulatorServer

ACCT = "acct"
TOKEN = "api-token"
LEGACY = "@cf/meta/llama-3.1-8b-instruct"
OPENAI_SHAPE = "@cf/qwen/qwen3-30b-a3b-fp8"
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about Paris"}]


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(api_token=TOKEN)) as s:
        yield s


@pytest.fixture()
def http(server: EmulatorServer) -> Iterator[httpx.Client]:
    server.state.clear()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as c:
        yield c


def run(http: httpx.Client, model: str, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return http.post(f"/client/v4/accounts/{ACCT}/ai/run/{model}", json=body, **kw)


def gw(http: httpx.Client, path: str, body: Any, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}
    return http.post(f"/v1/{ACCT}/gw/{path}", json=body, headers=headers, **kw)


def events(resp: httpx.Response) -> list[Any]:
    """Parsed ``data:`` payloads (``"[DONE]"`` kept as a string)."""
    assert resp.headers["content-type"].startswith("text/event-stream")
    out: list[Any] = []
    for line in resp.text.split("\n"):
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# -- Workers AI native -----------------------------------------------------------------------------
def test_native_legacy_envelope_text_and_usage(http: httpx.Client) -> None:
    r = run(http, LEGACY, {"messages": MSGS})
    body = r.json()
    assert r.status_code == 200 and list(body) == ["result", "success", "errors", "messages"]
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    res = body["result"]
    assert res["response"] == "You said: Tell me about Paris" and "tool_calls" not in res
    usage = res["usage"]
    assert usage["prompt_tokens"] == (3 + 3) + (4 + 3) and usage["completion_tokens"] == 7  # "You said : ..."
    assert usage["total_tokens"] == 20 and usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert math.isclose(usage["neurons"], (13 * 25608 + 7 * 75147) / 1e6)
    assert "cf-aig-log-id" not in r.headers  # no gateway header: no gateway behaviour


def test_native_prompt_variant_and_missing_input(http: httpx.Client) -> None:
    assert run(http, LEGACY, {"prompt": "Hi there"}).json()["result"]["response"] == "You said: Hi there"
    bad = run(http, LEGACY, {"text": "x"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == 5006 and bad.json()["result"] == {}


def test_native_openai_shape_result(http: httpx.Client) -> None:
    res = run(http, OPENAI_SHAPE, {"messages": MSGS}).json()["result"]
    assert res["object"] == "chat.completion" and res["model"] == OPENAI_SHAPE
    choice = res["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "You said: Tell me about Paris"}
    assert choice["finish_reason"] == "stop" and res["usage"]["neurons"] > 0


def test_unknown_model_is_5007(http: httpx.Client) -> None:
    r = run(http, "@cf/nope/nope", {"prompt": "x"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"message": "No such model @cf/nope/nope or task", "code": 5007}]


def test_native_legacy_stream_framing(http: httpx.Client) -> None:
    r = run(http, LEGACY, {"messages": MSGS, "stream": True})
    evs = events(r)
    assert evs[-1] == "[DONE]" and r.text.endswith("data: [DONE]\n\n")
    pieces, usage = evs[:-2], evs[-2]
    assert all(set(e) == {"response", "p"} and e["p"].isalnum() for e in pieces)
    assert "".join(e["response"] for e in pieces) == "You said: Tell me about Paris"
    assert usage["response"] == "" and usage["usage"]["completion_tokens"] == 7


def test_native_openai_shape_stream_framing(http: httpx.Client) -> None:
    evs = events(run(http, OPENAI_SHAPE, {"messages": MSGS, "stream": True}))
    assert evs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert evs[-1] == "[DONE]"
    assert evs[-2] == {"response": "", "usage": evs[-3]["usage"]}  # cumulative usage event last
    assert evs[-3]["choices"] == [] and evs[-3]["usage"]["total_tokens"] > 0
    assert evs[-4]["choices"][0]["finish_reason"] == "stop"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in evs[:-3])
    assert text == "You said: Tell me about Paris"


def test_native_tool_calls_both_shapes(http: httpx.Client) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    body = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}], "tools": tools}
    legacy = run(http, "@cf/meta/llama-3.3-70b-instruct-fp8-fast", body).json()["result"]
    assert legacy["response"] == "" and legacy["tool_calls"] == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    msg = run(http, OPENAI_SHAPE, body).json()["result"]["choices"][0]
    call = msg["message"]["tool_calls"][0]
    assert msg["finish_reason"] == "tool_calls" and call["id"].startswith("chatcmpl-tool-")
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    stream = events(run(http, LEGACY, {**body, "stream": True}))
    assert stream[-3] == {"response": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}


def test_native_json_mode(http: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    body = {"messages": [{"role": "user", "content": "name: Ada, age 36"}],
            "response_format": {"type": "json_schema", "json_schema": schema}}
    assert run(http, LEGACY, body).json()["result"]["response"] == {"name": "Ada", "age": 36}  # an object
    content = run(http, OPENAI_SHAPE, body).json()["result"]["choices"][0]["message"]["content"]
    assert json.loads(content) == {"name": "Ada", "age": 36}  # a JSON string
    streamed = run(http, LEGACY, {**body, "stream": True})
    assert streamed.status_code == 400 and streamed.json()["errors"][0]["code"] == 5006


def test_native_max_tokens_and_stop(http: httpx.Client) -> None:
    short = run(http, OPENAI_SHAPE, {"prompt": "one two three four", "max_tokens": 2}).json()["result"]
    assert short["choices"][0]["message"]["content"] == "You said" and short["choices"][0]["finish_reason"] == "length"
    stopped = run(http, LEGACY, {"prompt": "one two three four", "stop": ["three"]}).json()["result"]
    assert stopped["response"] == "You said: one two "


def test_context_window_exceeded(http: httpx.Client) -> None:
    big = "word " * 3000  # mistral-7b-instruct-v0.1 has a 2824-token window
    r = run(http, "@cf/mistral/mistral-7b-instruct-v0.1", {"prompt": big})
    err = r.json()["errors"][0]
    assert r.status_code == 400 and err["code"] == 5006 and "context window of 2824" in err["message"]
    r2 = gw(http, "deepseek/chat/completions", {"model": "deepseek-chat", "messages": [{"role": "user", "content": "w " * 64001}]})
    assert r2.status_code == 400 and r2.json()["error"]["code"] == "context_length_exceeded"


def test_native_embeddings(http: httpx.Client) -> None:
    res = run(http, "@cf/baai/bge-base-en-v1.5", {"text": ["the cat sat", "a dog ran"]}).json()["result"]
    assert res["shape"] == [2, 768] and len(res["data"][0]) == 768 and res["pooling"] == "mean"
    assert res["usage"]["prompt_tokens"] == 6 and res["usage"]["neurons"] > 0
    cls = run(http, "@cf/baai/bge-base-en-v1.5", {"text": "the cat sat", "pooling": "cls"}).json()["result"]
    assert cls["pooling"] == "cls" and cls["data"][0] != res["data"][0] and cls["shape"] == [1, 768]
    qwen = run(http, "@cf/qwen/qwen3-embedding-0.6b", {"queries": "q", "documents": ["d1", "d2"]}).json()["result"]
    assert qwen["shape"] == [3, 1024] and "pooling" not in qwen


@pytest.mark.parametrize(
    ("model", "body", "needle"),
    [
        ("@cf/baai/bge-small-en-v1.5", {"text": ["x"] * 101}, "maxItems"),
        ("@cf/qwen/qwen3-embedding-0.6b", {"text": ["x"] * 33}, "maxItems"),
        ("@cf/baai/bge-small-en-v1.5", {"text": ["ok", ""]}, "minLength"),
        ("@cf/baai/bge-small-en-v1.5", {"text": "w " * 513}, "max_input_tokens"),
    ],
)
def test_native_embedding_limits(http: httpx.Client, model: str, body: dict[str, Any], needle: str) -> None:
    r = run(http, model, body)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 5006 and needle in r.json()["errors"][0]["message"]


# -- Workers AI OpenAI-compatible /ai/v1 -----------------------------------------------------------------
def test_ai_v1_chat_bare_and_stream_with_usage(http: httpx.Client) -> None:
    url = f"/client/v4/accounts/{ACCT}/ai/v1/chat/completions"
    body = http.post(url, json={"model": LEGACY, "messages": MSGS}).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("id-") and "result" not in body
    assert body["usage"]["neurons"] > 0 and body["choices"][0]["message"]["content"].endswith("Paris")
    evs = events(http.post(url, json={"model": LEGACY, "messages": MSGS, "stream": True}))
    assert evs[-1] == "[DONE]" and evs[-2]["choices"] == [] and evs[-2]["usage"]["completion_tokens"] == 7
    assert all("response" not in e for e in evs[:-1])  # no native usage event on /ai/v1
    err = http.post(url, json={"model": "@cf/x/y", "messages": MSGS})
    assert err.status_code == 400 and err.json()["errors"][0]["code"] == 5007  # Cloudflare envelope


def test_ai_v1_embeddings_have_no_usage(http: httpx.Client) -> None:
    body = http.post(f"/client/v4/accounts/{ACCT}/ai/v1/embeddings",
                     json={"model": "@cf/baai/bge-large-en-v1.5", "input": ["a", "b"]}).json()
    assert body["object"] == "list" and "usage" not in body and len(body["data"][1]["embedding"]) == 1024
    assert body["data"][1]["index"] == 1 and body["model"] == "@cf/baai/bge-large-en-v1.5"


def test_ai_v1_models_get_is_7001_and_search_lists_catalog(http: httpx.Client) -> None:
    r = http.get(f"/client/v4/accounts/{ACCT}/ai/v1/models")
    assert r.status_code == 405 and r.json()["errors"][0]["code"] == 7001
    rows = http.get(f"/client/v4/accounts/{ACCT}/ai/models/search", params={"search": "llama-3.3"}).json()["result"]
    assert [row["name"] for row in rows] == ["@cf/meta/llama-3.3-70b-instruct-fp8-fast"]
    props = {p["property_id"]: p["value"] for p in rows[0]["properties"]}
    assert props["context_window"] == "24000" and props["function_calling"] == "true"
    assert rows[0]["task"]["name"] == "Text Generation" and props["price"][0]["unit"] == "per M input tokens"


# -- AI Gateway: workers-ai, providers, anthropic, compat ------------------------------------------------------
@pytest.mark.parametrize("path", [f"workers-ai/{LEGACY}", f"workers-ai/run/{LEGACY}"])
def test_gateway_workers_ai_native(http: httpx.Client, path: str) -> None:
    r = gw(http, path, {"messages": MSGS})
    assert r.json()["result"]["response"].endswith("Paris") and r.headers["cf-aig-log-id"]


def test_gateway_workers_ai_openai_paths(http: httpx.Client) -> None:
    chat = gw(http, "workers-ai/v1/chat/completions", {"model": LEGACY, "messages": MSGS}).json()
    assert chat["object"] == "chat.completion"
    emb = gw(http, "workers-ai/v1/embeddings", {"model": "@cf/baai/bge-small-en-v1.5", "input": "x"}).json()
    assert len(emb["data"][0]["embedding"]) == 384


def test_openai_provider_chat_and_usage_only_when_asked(http: httpx.Client) -> None:
    body = {"model": "gpt-4o-mini", "messages": MSGS}
    res = gw(http, "openai/chat/completions", body).json()
    assert res["id"].startswith("chatcmpl-") and res["model"] == "gpt-4o-mini"
    assert res["usage"]["total_tokens"] == res["usage"]["prompt_tokens"] + res["usage"]["completion_tokens"]
    plain = events(gw(http, "openai/chat/completions", {**body, "stream": True}))
    assert plain[-1] == "[DONE]" and all(e["choices"] for e in plain[:-1]) and "usage" not in plain[-2]
    asked = events(gw(http, "openai/chat/completions",
                      {**body, "stream": True, "stream_options": {"include_usage": True}}))
    assert asked[-2]["choices"] == [] and asked[-2]["usage"]["completion_tokens"] == 7
    assert asked[-3]["choices"][0]["finish_reason"] == "stop"


def test_openai_wire_stream_tool_call_deltas(http: httpx.Client) -> None:
    tools = [{"type": "function", "function": {"name": "magic_function", "parameters": {
        "type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]}}}]
    body = {"model": "gpt-4o-mini", "stream": True, "tools": tools, "tool_choice": "required",
            "messages": [{"role": "user", "content": "What is magic_function(3)?"}]}
    evs = events(gw(http, "openai/chat/completions", body))
    deltas = [e["choices"][0]["delta"] for e in evs[:-1] if e["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["function"] == {"name": "magic_function", "arguments": ""} and calls[0]["id"].startswith("call_")
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"input": 3}
    assert evs[-2]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("groq/chat/completions", "llama-3.1-8b-instant"),
        ("deepseek/chat/completions", "deepseek-chat"),
        ("mistral/v1/chat/completions", "mistral-small-latest"),
        ("openrouter/chat/completions", "meta-llama/llama-3.1-8b-instruct"),
        ("cerebras/chat/completions", "llama3.1-8b"),
        ("perplexity-ai/chat/completions", "sonar"),
        ("grok/v1/chat/completions", "grok-3"),
        ("custom-acme/api/v2/chat/completions", "acme-1"),
    ],
)
def test_openai_wire_providers(http: httpx.Client, path: str, model: str) -> None:
    r = gw(http, path, {"model": model, "messages": MSGS})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"].endswith("Paris")


def test_strict_models_refuses_unknown_provider_models(http: httpx.Client) -> None:
    r = gw(http, "openai/chat/completions", {"model": "gpt-nope", "messages": MSGS})
    assert r.status_code == 404
    assert r.json()["error"] == {"message": "The model `gpt-nope` does not exist", "type": "invalid_request_error",
                                 "param": None, "code": "model_not_found"}
    with EmulatorServer(EmulatorConfig(strict_models=False)) as lax:
        ok = httpx.post(f"{lax.gateway_base_url}/a/g/openai/chat/completions",
                        json={"model": "gpt-nope", "messages": MSGS}, headers={"Authorization": "Bearer k"})
        assert ok.status_code == 200


def test_provider_embeddings(http: httpx.Client) -> None:
    deep = gw(http, "custom-deepinfra/v1/openai/embeddings", {"model": "Qwen/Qwen3-Embedding-8B", "input": ["a b"]})
    assert len(deep.json()["data"][0]["embedding"]) == 4096
    oa = gw(http, "openai/embeddings", {"model": "text-embedding-3-small", "input": "hello world"}).json()
    assert len(oa["data"][0]["embedding"]) == 1536 and oa["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    b64 = gw(http, "openai/embeddings", {"model": "text-embedding-3-small", "input": "hello world",
                                         "encoding_format": "base64", "dimensions": 256}).json()
    floats = struct.unpack("<256f", base64.b64decode(b64["data"][0]["embedding"]))
    assert math.isclose(sum(x * x for x in floats), 1.0, rel_tol=1e-5)
    mistral = gw(http, "mistral/v1/embeddings", {"model": "mistral-embed", "input": ["x"]}).json()
    assert len(mistral["data"][0]["embedding"]) == 1024


def _anthropic(http: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"model": "claude-sonnet-4-5", "max_tokens": 64, **body}
    return http.post(f"/v1/{ACCT}/gw/anthropic/v1/messages", json=payload, headers={"x-api-key": "k"})


def test_anthropic_messages_text_and_tools(http: httpx.Client) -> None:
    msg = _anthropic(http, system="Be brief.", messages=[{"role": "user", "content": "Tell me about Paris"}]).json()
    assert msg["type"] == "message" and msg["content"] == [{"type": "text", "text": "You said: Tell me about Paris"}]
    assert msg["stop_reason"] == "end_turn" and msg["usage"]["cache_read_input_tokens"] == 0
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                                    "required": ["city"]}}
    call = _anthropic(http, tools=[tool], tool_choice={"type": "auto"},
                      messages=[{"role": "user", "content": "weather in Paris?"}]).json()
    assert call["stop_reason"] == "tool_use" and call["content"][0]["input"] == {"city": "Paris"}
    follow = _anthropic(http, tools=[tool], messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": call["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["content"][0]["id"], "content": "Sunny"}]},
    ]).json()
    assert follow["content"][0]["text"] == "The tool returned: Sunny."
    none = _anthropic(http, tools=[tool], tool_choice={"type": "none"}, messages=[{"role": "user", "content": "weather?"}])
    assert none.json()["content"][0]["type"] == "text"
    bad = _anthropic(http, messages="nope")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_anthropic_stream_events(http: httpx.Client) -> None:
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                                    "required": ["city"]}}
    r = _anthropic(http, stream=True, tools=[tool], tool_choice={"type": "any"}, stop_sequences=["x"],
                   messages=[{"role": "user", "content": "weather in Oslo"}])
    names = [line[7:] for line in r.text.split("\n") if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    evs = events(r)
    assert [e["type"] for e in evs] == names
    start = next(e for e in evs if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "get_weather"
    partial = "".join(e["delta"]["partial_json"] for e in evs if e["type"] == "content_block_delta")
    assert json.loads(partial) == {"city": "Oslo"}
    assert evs[-2]["delta"]["stop_reason"] == "tool_use" and evs[-2]["usage"]["output_tokens"] > 0
    text = _anthropic(http, stream=True, messages=[{"role": "user", "content": "hi there"}])
    deltas = [e["delta"]["text"] for e in events(text) if e["type"] == "content_block_delta"]
    assert "".join(deltas) == "You said: hi there" and "[DONE]" not in text.text


def test_compat_routes_and_errors(http: httpx.Client) -> None:
    ok = gw(http, "compat/chat/completions", {"model": "groq/llama-3.1-8b-instant", "messages": MSGS})
    assert ok.status_code == 200 and ok.json()["object"] == "chat.completion"
    wa = gw(http, "compat/chat/completions", {"model": f"workers-ai/{LEGACY}", "messages": MSGS}).json()
    assert wa["choices"][0]["message"]["content"].endswith("Paris") and wa["usage"]["neurons"] > 0
    anth = gw(http, "compat/chat/completions", {"model": "anthropic/claude-haiku-4-5", "messages": MSGS})
    assert anth.json()["object"] == "chat.completion"
    for model in (LEGACY, "gpt-4o-mini"):
        bad = gw(http, "compat/chat/completions", {"model": model, "messages": MSGS})
        assert bad.status_code == 400 and bad.json()["error"][0]["code"] == 2005 and bad.json()["name"] == "AiGatewayError"
    inv = gw(http, "compat/chat/completions", {"model": "nosuch/model", "messages": MSGS})
    assert inv.json()["error"] == [{"code": 2008, "message": "Invalid provider"}]
    emb = gw(http, "compat/embeddings", {"model": "custom-deepinfra/Qwen/Qwen3-Embedding-8B", "input": "x"})
    assert len(emb.json()["data"][0]["embedding"]) == 4096


def test_compat_stream(http: httpx.Client) -> None:
    evs = events(gw(http, "compat/chat/completions", {"model": "openai/gpt-4o-mini", "messages": MSGS, "stream": True,
                                                       "stream_options": {"include_usage": True}}))
    assert evs[-1] == "[DONE]" and evs[-2]["usage"]["prompt_tokens"] > 0
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in evs[:-2]) == "You said: Tell me about Paris"
