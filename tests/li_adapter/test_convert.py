"""Pure conversions (no emulator): LlamaIndex messages/tools <-> cfgateway types, stream accumulation."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools import FunctionTool

from cfgateway import ChatChunk, InvalidInputError, Message, ToolCall, ToolCallChunk, ToolSpec, Usage
from cfgateway import ChatResponse as CFResponse
from cfgateway.costs.ledger import UsageRecord
from llama_index_cfgateway._convert import (
    StreamState,
    keep_first_tool_call,
    to_chat_response,
    to_completion,
    to_messages,
    tool_choice,
    tool_selections,
    tool_spec,
    usage_dict,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_roles_text_and_tool_history() -> None:
    msgs = [
        ChatMessage(role=MessageRole.SYSTEM, content="be brief"),
        ChatMessage(role=MessageRole.DEVELOPER, content="dev note"),
        ChatMessage(role=MessageRole.USER, blocks=[TextBlock(text="a"), TextBlock(text="b")]),
        ChatMessage(role=MessageRole.ASSISTANT, blocks=[
            ThinkingBlock(content="hmm"), ToolCallBlock(tool_call_id="c1", tool_name="f", tool_kwargs='{"x": 1}'),
        ]),
        ChatMessage(role=MessageRole.TOOL, content="42", additional_kwargs={"tool_call_id": "c1", "name": "f"}),
        ChatMessage(role=MessageRole.CHATBOT, content="done", additional_kwargs={"refusal": None, "secret": "x"}),
    ]
    out = to_messages(msgs)
    assert [m.role for m in out] == ["system", "system", "user", "assistant", "tool", "assistant"]
    assert out[2].content == "a\nb"
    assert out[3].content == "" and out[3].tool_calls == [ToolCall("f", {"x": 1}, "c1")]
    assert (out[4].tool_call_id, out[4].name, out[4].content) == ("c1", "f", "42")
    assert out[5] == Message("assistant", "done")  # other additional_kwargs are never sent


def test_images_become_content_parts_and_urls_are_not_fetched() -> None:
    msg = ChatMessage(role="user", blocks=[
        TextBlock(text="what is this?"), ImageBlock(image=PNG, image_mimetype="image/png"),
        ImageBlock(url="https://example.com/cat.png"), CachePoint(cache_control={"type": "ephemeral"}),
    ])
    parts = to_messages([msg])[0].content
    assert isinstance(parts, list) and parts[0] == {"type": "text", "text": "what is this?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert parts[2]["image_url"]["url"] == "https://example.com/cat.png" and len(parts) == 3


def test_unsendable_blocks_and_bad_arguments_name_the_place() -> None:
    with pytest.raises(InvalidInputError, match="message 1, block 0: 'video'"):
        to_messages([ChatMessage(role="user", content="x"),
                     ChatMessage(role="user", blocks=[VideoBlock(video=b"abc", video_mimetype="video/mp4")])])
    bad = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="f", tool_kwargs="{not json")])
    with pytest.raises(InvalidInputError, match="message 0, block 0: tool call arguments are not valid JSON"):
        to_messages([bad])


def test_openai_style_tool_calls_in_additional_kwargs() -> None:
    class Fn:
        name = "g"
        arguments = '{"y": 2}'

    class SdkCall:
        id = "c2"
        function = Fn()

    msg = ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}, SdkCall(),
    ]})
    assert to_messages([msg])[0].tool_calls == [ToolCall("f", {"x": 1}, "c1"), ToolCall("g", {"y": 2}, "c2")]


def _weather(city: str, days: int = 1) -> str:
    """Forecast for a city."""
    return city


def test_tool_specs_from_llamaindex_tools_and_dicts() -> None:
    spec = tool_spec(FunctionTool.from_defaults(fn=_weather))
    assert spec.name == "_weather" and "Forecast for a city." in spec.description
    assert spec.parameters["required"] == ["city"] and spec.parameters["properties"]["days"]["type"] == "integer"
    d = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}
    assert tool_spec(d) == ToolSpec("f", "d", {"type": "object"})
    assert tool_spec(spec) is spec
    with pytest.raises(TypeError):
        tool_spec(42)


@pytest.mark.parametrize(
    ("choice", "required", "expected"),
    [
        (None, False, None), (None, True, "required"), ("auto", True, "auto"), ("any", False, "required"),
        ("none", False, "none"), ("f", False, "f"), ({"type": "function", "function": {"name": "f"}}, False, "f"),
        ({"type": "tool", "name": "f"}, False, "f"), ({"type": "any"}, False, "required"),
    ],
)
def test_tool_choice_forms(choice: Any, required: bool, expected: str | None) -> None:
    assert tool_choice(choice, ["f", "g"], required=required) == expected


def test_unknown_tool_choice_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="nope"):
        tool_choice("nope", ["f"])


def _record(**kw: Any) -> UsageRecord:
    return UsageRecord(ts=1.0, model="@cf/x", provider="workers-ai", operation="chat", **kw)


def test_response_conversion_usage_keys_and_records() -> None:
    resp = CFResponse(text="hi", model="@cf/x", provider="workers-ai", tool_calls=[ToolCall("f", {"a": 1}, "c1")],
                      finish_reason="tool_calls", usage=Usage(10, 3, 13, 2, 0.5), cost=Decimal("0.000123"),
                      records=[_record(input_tokens=10, output_tokens=3, cost=Decimal("0.000123"))])
    out = to_chat_response(resp)
    assert out.raw["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13, "cached_tokens": 2,
                                "neurons": 0.5}
    assert out.additional_kwargs["cost"] == "0.000123" and out.additional_kwargs["prompt_tokens"] == 10
    assert UsageRecord.from_dict(out.additional_kwargs["cfgateway_records"][0]).cost == Decimal("0.000123")
    assert out.message.content == "hi"
    assert tool_selections(out) == [ToolSelection(tool_id="c1", tool_name="f", tool_kwargs={"a": 1})]
    assert to_completion(out).text == "hi" and to_completion(out).raw is out.raw
    assert usage_dict(None) is None


def test_stream_state_accumulates_text_and_tool_call_pieces() -> None:
    state = StreamState()
    first = state.feed(ChatChunk(text="Hel", tool_call_chunks=[ToolCallChunk(0, "c1", "f", '{"ci')], model="@cf/x"))
    assert first.delta == "Hel" and first.raw is None
    assert tool_selections(first, error_on_no_tool_call=False)[0].tool_name == "f"
    state.feed(ChatChunk(text="lo", tool_call_chunks=[ToolCallChunk(0, None, None, 'ty": "Paris"}')]))
    last = state.feed(ChatChunk(final=True, finish_reason="tool_calls", usage=Usage(5, 2, 7), model="@cf/x",
                                provider="workers-ai", records=[_record(input_tokens=5, output_tokens=2)]))
    assert last.message.content == "Hello" and last.delta == ""
    assert tool_selections(last)[0].tool_kwargs == {"city": "Paris"}
    assert last.raw["usage"]["completion_tokens"] == 2 and last.additional_kwargs["finish_reason"] == "tool_calls"
    assert len(last.additional_kwargs["cfgateway_records"]) == 1


def test_keep_first_tool_call() -> None:
    msg = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_name="a"), ToolCallBlock(tool_name="b")])
    out = keep_first_tool_call(ChatResponse(message=msg))
    assert [b.tool_name for b in out.message.blocks] == ["a"]
