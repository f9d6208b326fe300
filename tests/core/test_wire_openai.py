"""OpenAI chat-completions + embeddings wire."""

from __future__ import annotations

import base64
import struct
from typing import Any

import pytest
from _streams import feed_all, sse

from cfgateway.errors import (
    ContextLengthExceededError,
    MalformedResponseError,
    NotFoundError,
    ServerError,
    StreamInterrupted,
)
from cfgateway.types import ChatRequest, Message, ToolCall, ToolSpec, Usage
from cfgateway.wire import openai as oa

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


# --------------------------------------------------------------------------- bodies


def test_minimal_body() -> None:
    body = oa.build_chat_body(ChatRequest([Message("user", "hi")]), "gpt-4o-mini", stream=False)
    assert body == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    assert "model" not in oa.build_chat_body(ChatRequest([Message("user", "hi")]), None, stream=False)


def test_sampling_stop_and_stream_options() -> None:
    req = ChatRequest(
        [Message("user", "hi")],
        temperature=0.2,
        max_tokens=5,
        top_p=1.0,
        top_k=3,
        seed=1,
        stop=["END"],
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        repetition_penalty=1.2,
    )
    body = oa.build_chat_body(req, "m", stream=True)
    assert body["stop"] == ["END"] and body["seed"] == 1 and body["max_tokens"] == 5
    assert body["frequency_penalty"] == 0.5 and body["presence_penalty"] == -0.5
    assert "top_k" not in body and "repetition_penalty" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "stop" not in oa.build_chat_body(ChatRequest([Message("user", "hi")], stop=[]), "m", stream=False)


def test_messages_tool_history_and_names() -> None:
    msgs = [
        Message("system", "be brief"),
        Message("user", "weather?", name="bob"),
        Message("assistant", "", tool_calls=[ToolCall("getWeather", {"city": "Paris"}, "call_9")]),
        Message("tool", [{"type": "text", "text": "sunny"}], tool_call_id="call_9"),
    ]
    body = oa.build_chat_body(ChatRequest(msgs), "m", stream=False)
    assert body["messages"][1] == {"role": "user", "content": "weather?", "name": "bob"}
    call = body["messages"][2]["tool_calls"][0]
    assert call == {
        "id": "call_9",
        "type": "function",
        "function": {"name": "getWeather", "arguments": '{"city": "Paris"}'},
    }
    assert body["messages"][2]["content"] == ""
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}


def test_tool_choice_mapping() -> None:
    tools = [ToolSpec("a", "A"), ToolSpec("b", "B")]
    base = [Message("user", "hi")]
    for choice in ("auto", "none", "required"):
        assert (
            oa.build_chat_body(ChatRequest(base, tools=tools, tool_choice=choice), "m", stream=False)["tool_choice"]
            == choice
        )
    named = oa.build_chat_body(ChatRequest(base, tools=tools, tool_choice="b"), "m", stream=False)
    assert named["tool_choice"] == {"type": "function", "function": {"name": "b"}}
    assert len(named["tools"]) == 2 and named["tools"][1]["function"]["name"] == "b"


def test_response_format_wrapping() -> None:
    base = [Message("user", "hi")]
    bare = oa.build_chat_body(
        ChatRequest(base, response_format={"type": "json_schema", "json_schema": SCHEMA}), "m", stream=False
    )
    assert bare["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA, "strict": False},
    }
    given = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}
    assert oa.build_chat_body(ChatRequest(base, response_format=given), "m", stream=False)["response_format"] == given
    nameless = {"type": "json_schema", "json_schema": {"schema": SCHEMA}}
    rf = oa.build_chat_body(ChatRequest(base, response_format=nameless), "m", stream=False)["response_format"]
    assert rf["json_schema"] == {"name": "response", "schema": SCHEMA}
    obj = {"type": "json_object"}
    assert oa.build_chat_body(ChatRequest(base, response_format=obj), "m", stream=False)["response_format"] == obj


def test_extra_body_last() -> None:
    req = ChatRequest([Message("user", "hi")], extra_body={"model": "override", "reasoning_effort": "low"})
    body = oa.build_chat_body(req, "m", stream=False)
    assert body["model"] == "override" and body["reasoning_effort"] == "low"


# --------------------------------------------------------------------------- results

GLM = {
    "id": "id-1786911857176",
    "object": "chat.completion",
    "created": 1786911857,
    "model": "@cf/zai-org/glm-5.2",
    "choices": [
        {"finish_reason": "stop", "index": 0, "logprobs": None, "message": {"content": "ok", "role": "assistant"}}
    ],
    "usage": {
        "prompt_tokens": 376,
        "completion_tokens": 3,
        "total_tokens": 379,
        "prompt_tokens_details": {"cached_tokens": 320},
        "neurons": 15.89,
    },
}


def test_parse_chat_completion() -> None:
    r = oa.parse_chat(GLM)
    assert r.text == "ok" and r.finish_reason == "stop" and r.id == "id-1786911857176"
    assert r.provider_model == "@cf/zai-org/glm-5.2" and r.model == "" and r.provider == ""
    assert r.usage == Usage(376, 3, 379, 320, 15.89)
    assert r.reasoning is None and r.tool_calls == []
    assert oa.parse_chat({"result": GLM, "success": True}).text == "ok"  # langchain-style envelope tolerated


def test_parse_tool_calls_and_reasoning() -> None:
    msg = {
        "role": "assistant",
        "content": None,
        "reasoning": "let me see",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "getWeather", "arguments": '{"city":"Paris"}'}}
        ],
    }
    r = oa.parse_chat({"choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}]})
    assert r.text == "" and r.reasoning == "let me see"
    assert [(t.id, t.name, t.arguments) for t in r.tool_calls] == [("call_1", "getWeather", {"city": "Paris"})]
    assert r.finish_reason == "tool_calls" and r.usage is None
    msg["tool_calls"][0]["function"]["arguments"] = '{"city":'  # type: ignore[index]
    with pytest.raises(MalformedResponseError):
        oa.parse_chat({"choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls"}]})


def test_parse_malformed_and_error_bodies() -> None:
    payload: Any
    for payload in ({}, {"choices": []}, {"choices": [{"index": 0}]}, None, {"object": "list", "data": []}):
        with pytest.raises(MalformedResponseError):
            oa.parse_chat(payload)
    with pytest.raises(ContextLengthExceededError):
        oa.parse_chat({"error": {"message": "too long", "code": "context_length_exceeded", "type": "x"}})
    with pytest.raises(NotFoundError):
        oa.parse_chat({"result": None, "success": False, "errors": [{"code": 7003, "message": "Could not route"}]})


# --------------------------------------------------------------------------- streams


def ch(delta: dict[str, Any] | None = None, finish: str | None = None, usage: Any = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": choices,
        "usage": usage,
    }


def test_stream_text_and_usage_only_chunk() -> None:
    body = sse(
        ch({"role": "assistant", "content": ""}),
        ch({"content": "Hel"}),
        ch({"content": "lo"}),
        ch({}, finish="length"),
        ch(None, usage={"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10}),
        b"[DONE]",
    )
    p = oa.StreamParser("openai/gpt-4o-mini")
    chunks = feed_all(p, body)
    assert [c.text for c in chunks] == ["Hel", "lo"]
    assert all(c.usage is None and c.finish_reason is None for c in chunks)
    final = p.finish()
    assert final.final and final.finish_reason == "length" and final.usage == Usage(8, 2, 10, 0, None)
    assert final.provider_model == "gpt-4o-mini-2024-07-18" and p.text == "Hello"


def test_stream_usage_on_last_chunk_without_usage_only_chunk() -> None:
    p = oa.StreamParser()
    feed_all(p, sse(ch({"content": "x"}), ch({}, "stop", {"prompt_tokens": 1, "completion_tokens": 1}), b"[DONE]"))
    assert p.finish().usage == Usage(1, 1, 2, 0, None)


def test_stream_tool_calls_two_calls() -> None:
    body = sse(
        ch({"tool_calls": [{"index": 0, "id": "c0", "type": "function", "function": {"name": "a", "arguments": ""}}]}),
        ch({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": 1}'}}]}),
        ch({"tool_calls": [{"index": 1, "id": "c1", "type": "function", "function": {"name": "b"}}]}),
        ch({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        ch({}, finish="tool_calls"),
        b"[DONE]",
    )
    p = oa.StreamParser()
    tcs = [t for c in feed_all(p, body) for t in c.tool_call_chunks]
    assert [(t.index, t.id, t.name, t.arguments) for t in tcs] == [
        (0, "c0", "a", ""),
        (0, None, None, '{"x": 1}'),
        (1, "c1", "b", ""),
        (1, None, None, "{}"),
    ]
    assert p.finish().finish_reason == "tool_calls"


def test_stream_error_event_raises() -> None:
    p = oa.StreamParser("groq/llama")
    with pytest.raises(ServerError) as ei:
        feed_all(p, sse(ch({"content": "a"}), {"error": {"message": "upstream died", "type": "server_error"}}))
    assert ei.value.status == 500 and "upstream died" in ei.value.message and ei.value.model == "groq/llama"


def test_stream_interrupted_and_malformed() -> None:
    p = oa.StreamParser("openai/gpt-4o-mini")
    feed_all(p, sse(ch({"content": "partial"})))
    with pytest.raises(StreamInterrupted, match="openai/gpt-4o-mini") as ei:
        p.finish()
    assert ei.value.text == "partial"
    for bad in (b"nope", b'{"object":"something.else"}'):
        with pytest.raises(MalformedResponseError):
            feed_all(oa.StreamParser(), sse(bad))


# --------------------------------------------------------------------------- embeddings


def test_embed_body() -> None:
    assert oa.build_embed_body(["a", "b"], "@cf/baai/bge-large-en-v1.5") == {
        "model": "@cf/baai/bge-large-en-v1.5",
        "input": ["a", "b"],
    }
    assert oa.build_embed_body(["a"], "m", extra={"dimensions": 256})["dimensions"] == 256
    with pytest.raises(ValueError, match="pooling"):
        oa.build_embed_body(["a"], "m", pooling="cls")


def test_parse_embed_sorted_by_index_with_usage() -> None:
    payload = {
        "object": "list",
        "model": "m",
        "data": [
            {"object": "embedding", "embedding": [2.0], "index": 1},
            {"object": "embedding", "embedding": [1.0], "index": 0},
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    vectors, usage = oa.parse_embed(payload, expected=2)
    assert vectors == [[1.0], [2.0]] and usage == Usage(4, 0, 4, 0, None)


def test_parse_embed_no_usage_base64_and_errors() -> None:
    recorded = {
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.5], "index": 0}],
        "model": "@cf/qwen/qwen3-embedding-0.6b",
    }
    assert oa.parse_embed(recorded) == ([[0.5]], None)
    b64 = base64.b64encode(struct.pack("<2f", 0.5, -1.0)).decode()
    assert oa.parse_embed({"data": [{"embedding": b64, "index": 0}]})[0] == [[0.5, -1.0]]
    bad: Any
    for bad in ({"data": []}, {"data": [{"index": 0}]}, {"object": "list"}, []):
        with pytest.raises(MalformedResponseError):
            oa.parse_embed(bad)
    with pytest.raises(MalformedResponseError):
        oa.parse_embed(recorded, expected=3)
