"""Anthropic Messages wire."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _streams import feed_all

from cfgateway.errors import MalformedResponseError, RateLimitError, ServerError, StreamInterrupted
from cfgateway.types import ChatRequest, Message, ToolCall, ToolSpec, Usage
from cfgateway.wire import anthropic as an

MODEL = "claude-sonnet-4-5"


def events(*objs: dict[str, Any]) -> bytes:
    return b"".join(f"event: {o['type']}\ndata: {json.dumps(o)}\n\n".encode() for o in objs)


# --------------------------------------------------------------------------- bodies


def test_minimal_body_defaults() -> None:
    body = an.build_chat_body(ChatRequest([Message("user", "hi")]), MODEL, stream=False)
    assert body == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1024}


def test_system_pulled_out_and_sampling() -> None:
    req = ChatRequest(
        [Message("system", "be brief"), Message("system", "be kind"), Message("user", "hi")],
        temperature=0.3,
        max_tokens=50,
        top_p=0.9,
        top_k=5,
        seed=3,
        stop=["END"],
        frequency_penalty=0.1,
        presence_penalty=0.1,
        repetition_penalty=1.1,
    )
    body = an.build_chat_body(req, MODEL, stream=True)
    assert body["system"] == "be brief\n\nbe kind"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 50 and body["temperature"] == 0.3 and body["top_p"] == 0.9 and body["top_k"] == 5
    assert body["stop_sequences"] == ["END"] and "stop" not in body
    for absent in ("seed", "frequency_penalty", "presence_penalty", "repetition_penalty", "stream_options"):
        assert absent not in body
    assert body["stream"] is True


def test_tool_use_and_tool_results_mapping() -> None:
    msgs = [
        Message("user", "weather in Paris and Rome?"),
        Message(
            "assistant",
            "Checking.",
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, "toolu_1"),
                ToolCall("get_weather", {"city": "Rome"}, "toolu_2"),
            ],
        ),
        Message("tool", "sunny", tool_call_id="toolu_1"),
        Message("tool", "rainy", tool_call_id="toolu_2"),
        Message("user", "thanks, and tomorrow?"),
    ]
    body = an.build_chat_body(ChatRequest(msgs), MODEL, stream=False)
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rainy"},
            {"type": "text", "text": "thanks, and tomorrow?"},
        ],
    }
    assert len(body["messages"]) == 3


def test_assistant_tool_call_without_text_has_only_tool_use() -> None:
    msgs = [Message("user", "x"), Message("assistant", None, tool_calls=[ToolCall("f", {}, "t1")])]
    body = an.build_chat_body(ChatRequest(msgs), MODEL, stream=False)
    assert body["messages"][1]["content"] == [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]


def test_images() -> None:
    msg = Message(
        "user",
        [
            {"type": "text", "text": "compare"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/AAA"}},
            {"type": "image_url", "image_url": "https://example.com/cat.png"},
        ],
    )
    content = an.build_chat_body(ChatRequest([msg]), MODEL, stream=False)["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]


def test_tools_and_tool_choice() -> None:
    tools = [ToolSpec("get_weather", "Weather", {"type": "object", "properties": {}}), ToolSpec("noop")]
    base = [Message("user", "hi")]
    body = an.build_chat_body(ChatRequest(base, tools=tools, tool_choice="auto"), MODEL, stream=False)
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}},
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]
    expected = {
        "auto": {"type": "auto"},
        "required": {"type": "any"},
        "none": {"type": "none"},
        "get_weather": {"type": "tool", "name": "get_weather"},
    }
    for choice, want in expected.items():
        assert (
            an.build_chat_body(ChatRequest(base, tools=tools, tool_choice=choice), MODEL, stream=False)["tool_choice"]
            == want
        )


def test_response_format_rejected_with_fix() -> None:
    req = ChatRequest([Message("user", "hi")], response_format={"type": "json_object"})
    with pytest.raises(ValueError, match="tool"):
        an.build_chat_body(req, MODEL, stream=False)


# --------------------------------------------------------------------------- results


def test_parse_message() -> None:
    payload = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "SF"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_read_input_tokens": 50,
            "cache_creation_input_tokens": 10,
        },
    }
    r = an.parse_chat(payload)
    assert r.text == "Let me check." and r.reasoning == "hmm" and r.id == "msg_01"
    assert [(t.id, t.name, t.arguments) for t in r.tool_calls] == [("toolu_01", "get_weather", {"city": "SF"})]
    assert r.finish_reason == "tool_calls" and r.provider_model == "claude-sonnet-4-5-20250929"
    # input = 100 uncached + 50 cache reads + 10 cache writes; cache reads also reported as cached
    assert r.usage == Usage(160, 20, 180, 50, None)


def test_finish_reasons() -> None:
    for given, want in (
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
    ):
        assert an.parse_chat({"content": [], "stop_reason": given}).finish_reason == want


def test_parse_errors() -> None:
    with pytest.raises(ServerError) as ei:
        an.parse_chat({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert ei.value.status == 529
    bad: Any
    for bad in ({"type": "message"}, [], {"content": [{"text": "no type"}]}):
        with pytest.raises(MalformedResponseError):
            an.parse_chat(bad)


# --------------------------------------------------------------------------- streams

STREAM = events(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-5-20250929",
            "stop_reason": None,
            "usage": {"input_tokens": 25, "cache_read_input_tokens": 10, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "plan"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "abc"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " there"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ' "SF"}'}},
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 15},
    },
    {"type": "message_stop"},
)


def test_stream_full() -> None:
    for cut in (None, 7, len(STREAM) // 2, len(STREAM) - 3):
        p = an.StreamParser(MODEL)
        chunks = feed_all(p, STREAM, cut)
        assert "".join(c.reasoning for c in chunks) == "plan"
        assert [c.text for c in chunks if c.text] == ["Hello", " there"]
        tcs = [t for c in chunks for t in c.tool_call_chunks]
        assert (tcs[0].index, tcs[0].id, tcs[0].name) == (0, "toolu_01", "get_weather")
        assert json.loads("".join(t.arguments for t in tcs)) == {"city": "SF"}
        assert all(c.usage is None and not c.final for c in chunks)
        assert p.done and p.text == "Hello there"
        final = p.finish()
        assert final.final and final.finish_reason == "tool_calls"
        assert final.usage == Usage(35, 15, 50, 10, None)
        assert final.provider_model == "claude-sonnet-4-5-20250929"


def test_stream_error_event_raises() -> None:
    body = STREAM[: STREAM.index(b"event: content_block_stop")] + events(
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    )
    p = an.StreamParser(MODEL)
    with pytest.raises(RateLimitError) as ei:
        feed_all(p, body)
    assert ei.value.status == 429 and ei.value.model == MODEL


def test_stream_without_message_stop_is_interrupted() -> None:
    p = an.StreamParser(MODEL)
    feed_all(p, STREAM[: STREAM.index(b"event: message_stop")])
    assert not p.done
    with pytest.raises(StreamInterrupted, match=MODEL) as ei:
        p.finish()
    assert ei.value.text == "Hello there"
    assert ei.value.usage == Usage(35, 15, 50, 10, None)


def test_stream_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        feed_all(an.StreamParser(), b"data: {oops\n\n")
    with pytest.raises(MalformedResponseError):
        feed_all(an.StreamParser(), b'data: {"no_type": 1}\n\n')
    with pytest.raises(MalformedResponseError):  # arguments for a block that never started
        feed_all(
            an.StreamParser(),
            events(
                {"type": "content_block_delta", "index": 4, "delta": {"type": "input_json_delta", "partial_json": "{"}}
            ),
        )
