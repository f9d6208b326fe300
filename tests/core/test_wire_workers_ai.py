"""Workers AI native wire: bodies, results (both shapes), embeddings (streams: test_wire_workers_ai_stream)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cfgateway.errors import BadRequestError, MalformedResponseError
from cfgateway.types import ChatRequest, Message, ToolCall, ToolSpec, Usage
from cfgateway.wire import workers_ai as wai

WEATHER = ToolSpec(
    "getWeather",
    "Return the weather for a latitude and longitude",
    {"type": "object", "properties": {"latitude": {"type": "string"}}, "required": ["latitude"]},
)
OTHER = ToolSpec("getTime", "Current time")


def u(p: int, c: int) -> dict[str, int]:
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


# --------------------------------------------------------------------------- bodies


def test_minimal_body_has_no_none_fields_and_no_model() -> None:
    req = ChatRequest([Message("system", "You are a friendly assistant"), Message("user", "Why is pizza so good")])
    body = wai.build_chat_body(req, "@cf/meta/llama-3.1-8b-instruct", stream=False)
    assert body == {
        "messages": [
            {"role": "system", "content": "You are a friendly assistant"},
            {"role": "user", "content": "Why is pizza so good"},
        ]
    }


def test_sampling_fields_stop_not_sent_stream_flag() -> None:
    req = ChatRequest(
        [Message("user", "hi")],
        temperature=0.0,
        max_tokens=256,
        top_p=0.9,
        top_k=40,
        seed=7,
        stop=["\n\n"],
        frequency_penalty=0.1,
        presence_penalty=0.2,
        repetition_penalty=1.1,
    )
    body = wai.build_chat_body(req, stream=True)
    assert body["temperature"] == 0.0 and body["max_tokens"] == 256 and body["top_k"] == 40
    assert body["repetition_penalty"] == 1.1 and body["seed"] == 7 and body["top_p"] == 0.9
    assert body["frequency_penalty"] == 0.1 and body["presence_penalty"] == 0.2
    assert "stop" not in body and "stream_options" not in body
    assert body["stream"] is True


def test_content_parts_joined_images_kept() -> None:
    text_only = Message("user", [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}])
    with_image = Message(
        "user",
        [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
        ],
    )
    body = wai.build_chat_body(ChatRequest([text_only, with_image]), stream=False)
    assert body["messages"][0] == {"role": "user", "content": "Hello there"}
    assert body["messages"][1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}


def test_tool_call_history_in_openai_shape() -> None:
    msgs = [
        Message("user", "weather in london?", name="bob"),
        Message("assistant", None, tool_calls=[ToolCall("getWeather", {"latitude": "51.5"}, "call_1")]),
        Message("tool", "rainy", tool_call_id="call_1"),
    ]
    body = wai.build_chat_body(ChatRequest(msgs), stream=False)
    assert body["messages"][0] == {"role": "user", "content": "weather in london?"}  # no "name" on Workers AI
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "getWeather", "arguments": '{"latitude": "51.5"}'},
            }
        ],
    }
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "rainy"}


def test_tools_and_tool_choice_mapping() -> None:
    base = [Message("user", "hi")]
    body = wai.build_chat_body(ChatRequest(base, tools=[WEATHER, OTHER], tool_choice="auto"), stream=False)
    assert body["tool_choice"] == "auto"
    assert body["tools"][0] == {
        "type": "function",
        "function": {"name": "getWeather", "description": WEATHER.description, "parameters": WEATHER.parameters},
    }
    named = wai.build_chat_body(ChatRequest(base, tools=[WEATHER, OTHER], tool_choice="getTime"), stream=False)
    assert [t["function"]["name"] for t in named["tools"]] == ["getTime"]
    assert named["tool_choice"] == "required"
    omitted = wai.build_chat_body(
        ChatRequest(base, tools=[WEATHER], tool_choice="required"), stream=False, omit_tool_choice=True
    )
    assert "tool_choice" not in omitted and len(omitted["tools"]) == 1
    no_tools = wai.build_chat_body(ChatRequest(base, tool_choice="auto"), stream=False)
    assert "tool_choice" not in no_tools and "tools" not in no_tools
    with pytest.raises(ValueError, match="nope"):
        wai.build_chat_body(ChatRequest(base, tools=[WEATHER], tool_choice="nope"), stream=False)


def test_rejects_tool_choice_for_mistral() -> None:
    assert wai.rejects_tool_choice("@cf/mistral/mistral-7b-instruct-v0.1")
    assert wai.rejects_tool_choice("@hf/mistral/mistral-7b-instruct-v0.2")
    assert wai.rejects_tool_choice("@cf/mistralai/mistral-small-3.1-24b-instruct")
    assert not wai.rejects_tool_choice("@cf/meta/llama-3.3-70b-instruct-fp8-fast")


def test_response_format_unwrapped_to_bare_schema() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    base = [Message("user", "hi")]
    wrapped = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    body = wai.build_chat_body(ChatRequest(base, response_format=wrapped), stream=False)
    assert body["response_format"] == {"type": "json_schema", "json_schema": schema}
    bare = {"type": "json_schema", "json_schema": schema}
    assert wai.build_chat_body(ChatRequest(base, response_format=bare), stream=False)["response_format"] == bare
    obj = {"type": "json_object"}
    assert wai.build_chat_body(ChatRequest(base, response_format=obj), stream=False)["response_format"] == obj


def test_extra_body_merged_last() -> None:
    req = ChatRequest([Message("user", "hi")], max_tokens=10, extra_body={"max_tokens": 99, "lora": "my-lora"})
    body = wai.build_chat_body(req, stream=False)
    assert body["max_tokens"] == 99 and body["lora"] == "my-lora"


# --------------------------------------------------------------------------- results

LEGACY_RESULT = {
    "result": {
        "response": "Hello, World first appeared in 1974",
        "tool_calls": [{"name": "getWeather", "arguments": {"latitude": "51.5074", "longitude": "-0.1278"}}],
        "usage": {"prompt_tokens": 25, "completion_tokens": 40, "total_tokens": 65},
    },
    "success": True,
    "errors": [],
    "messages": [],
}

OPENAI_RESULT = {
    "result": {
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "message": {"content": "Sure.", "role": "assistant", "reasoning_content": "thinking..."},
            }
        ],
        "created": 1791402397,
        "id": "4bb245b612b04449b9efe83d17ce90e0",
        "model": "@cf/google/gemma-4-26b-a4b-it-external",
        "object": "chat.completion",
        "usage": {
            "prompt_tokens": 147,
            "completion_tokens": 16,
            "total_tokens": 163,
            "prompt_tokens_details": {"cached_tokens": 0},
            "neurons": 1.7727272510528564,
        },
    },
    "success": True,
    "errors": [],
    "messages": [],
}


def test_parse_legacy_result_with_flat_tool_calls() -> None:
    r = wai.parse_chat(LEGACY_RESULT)
    assert r.text == "Hello, World first appeared in 1974"
    assert r.model == "" and r.provider == ""
    assert r.tool_calls[0].name == "getWeather"
    assert r.tool_calls[0].arguments == {"latitude": "51.5074", "longitude": "-0.1278"}
    assert r.tool_calls[0].id.startswith("call_")
    assert r.finish_reason == "tool_calls"
    assert r.usage == Usage(25, 40, 65, 0, None)


def test_parse_openai_shaped_result_inside_envelope() -> None:
    r = wai.parse_chat(OPENAI_RESULT)
    assert r.text == "Sure." and r.finish_reason == "stop" and r.reasoning == "thinking..."
    assert r.provider_model == "@cf/google/gemma-4-26b-a4b-it-external"
    assert r.id == "4bb245b612b04449b9efe83d17ce90e0"
    assert r.usage == Usage(147, 16, 163, 0, 1.7727272510528564)


def test_parse_json_mode_object_response() -> None:
    r = wai.parse_chat({"result": {"response": {"name": "Ada"}}, "success": True, "errors": [], "messages": []})
    assert r.parsed == {"name": "Ada"}
    assert json.loads(r.text) == {"name": "Ada"}
    assert r.finish_reason == "stop"


def test_parse_openai_style_tool_calls_in_native_result() -> None:
    result = {
        "response": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "getWeather", "arguments": {"latitude": "1"}}},
            {"id": "c2", "type": "function", "function": {"name": "getTime", "arguments": "{}"}},
        ],
    }
    r = wai.parse_chat({"result": result, "success": True})
    assert [(t.id, t.name, t.arguments) for t in r.tool_calls] == [
        ("c1", "getWeather", {"latitude": "1"}),
        ("c2", "getTime", {}),
    ]
    assert r.text == ""


def test_parse_unparseable_arguments_raise() -> None:
    result = {"response": "", "tool_calls": [{"name": "f", "arguments": "{not json"}]}
    with pytest.raises(MalformedResponseError):
        wai.parse_chat({"result": result})


def test_parse_unknown_content_raises() -> None:
    payload: Any
    for payload in ({"result": {"foo": 1}, "success": True}, {"result": None}, [], "x", {"result": {"response": 3}}):
        with pytest.raises(MalformedResponseError):
            wai.parse_chat(payload)
    with pytest.raises(MalformedResponseError):
        wai.parse_chat({"result": {"response": None}})  # no text and no tool calls is not a silent ""


def test_parse_error_envelope_raises_typed_error() -> None:
    body = {
        "errors": [{"message": "AiError: Bad input: Error: oneOf at '/' not met", "code": 5006}],
        "success": False,
        "result": {},
        "messages": [],
    }
    with pytest.raises(BadRequestError) as ei:
        wai.parse_chat(body)
    assert ei.value.code == 5006 and ei.value.status == 400


# --------------------------------------------------------------------------- embeddings


def test_embed_body() -> None:
    assert wai.build_embed_body(["a", "b"], "@cf/baai/bge-base-en-v1.5") == {"text": ["a", "b"]}
    assert wai.build_embed_body(["a"], None, pooling="cls", extra={"truncate_inputs": True}) == {
        "text": ["a"],
        "pooling": "cls",
        "truncate_inputs": True,
    }


def test_parse_embed_with_nested_usage() -> None:
    payload = {
        "result": {
            "data": [[-0.0147, 0.0037]],
            "shape": [1, 2],
            "usage": {**u(3, 0), "prompt_tokens_details": {"cached_tokens": 0}, "neurons": 0.0032},
        },
        "success": True,
        "errors": [],
        "messages": [],
    }
    vectors, usage = wai.parse_embed(payload, expected=1)
    assert vectors == [[-0.0147, 0.0037]]
    assert usage == Usage(3, 0, 3, 0, 0.0032)
    vectors, usage = wai.parse_embed({"result": {"shape": [2, 1], "data": [[0.1], [0.2]], "pooling": "mean"}})
    assert vectors == [[0.1], [0.2]] and usage is None


def test_parse_embed_mismatch_and_missing() -> None:
    with pytest.raises(MalformedResponseError):
        wai.parse_embed({"result": {"shape": [3, 1], "data": [[0.1], [0.2]]}})
    with pytest.raises(MalformedResponseError):
        wai.parse_embed({"result": {"data": [[0.1]]}}, expected=2)
    with pytest.raises(MalformedResponseError):
        wai.parse_embed({"result": {"shape": [0, 0]}})
    with pytest.raises(MalformedResponseError):
        wai.parse_embed({"result": {"data": [[]]}})
