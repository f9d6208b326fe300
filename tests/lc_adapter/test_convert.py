"""Pure conversions: foreign history, content blocks, tool choice, usage and metadata, stream chunks."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from cfgateway import (
    AttemptInfo,
    ChatChunk,
    ChatResponse,
    GatewayMeta,
    InvalidInputError,
    ToolCall,
    ToolCallChunk,
    Usage,
)
from cfgateway.calls.limits import response_chunks
from cfgateway.costs.ledger import UsageRecord
from langchain_cfgateway._convert import (
    StreamState,
    response_metadata,
    to_ai_message,
    to_chunk,
    to_messages,
    tool_choice,
    tool_spec,
    usage_metadata,
)

B64 = "iVBORw0KGgo="


def test_openai_history_converts_without_foreign_fields() -> None:
    ai = AIMessage(
        content="",
        additional_kwargs={"refusal": None, "tool_calls": [{"id": "x", "type": "function",
                                                            "function": {"name": "f", "arguments": "{}"}}],
                           "audio": {"id": "a1"}},
        response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_1",
                           "logprobs": None, "finish_reason": "tool_calls"},
        tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}],
    )
    msgs = to_messages([SystemMessage("be brief"), HumanMessage("weather?"), ai,
                        ToolMessage("sunny", tool_call_id="call_1", name="get_weather")])
    assert [m.role for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[2].tool_calls == [ToolCall("get_weather", {"city": "Paris"}, "call_1")]
    assert msgs[2].content == ""
    assert msgs[3].tool_call_id == "call_1" and msgs[3].content == "sunny"
    dumped = json.dumps([m.__class__.__name__ for m in msgs]) + repr(msgs)
    for foreign in ("refusal", "system_fingerprint", "fp_1", "audio", "logprobs"):
        assert foreign not in dumped


def test_legacy_function_call_pairs_with_function_message() -> None:
    ai = AIMessage(content="", additional_kwargs={"function_call": {"name": "lookup", "arguments": '{"q": "x"}'}})
    msgs = to_messages([HumanMessage("hi"), ai, FunctionMessage("found", name="lookup")])
    assert msgs[1].tool_calls == [ToolCall("lookup", {"q": "x"}, "lookup")]
    assert (msgs[2].role, msgs[2].tool_call_id, msgs[2].content) == ("tool", "lookup", "found")


def test_anthropic_history_blocks() -> None:
    ai = AIMessage(content=[
        {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
        {"type": "text", "text": "Let me check", "cache_control": {"type": "ephemeral"}},
        {"type": "tool_use", "id": "toolu_1", "name": "color_picker", "input": {"fav_color": "purple"}},
    ])
    msgs = to_messages([HumanMessage([{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]), ai])
    assert msgs[0].content == "hi"
    assert msgs[1].content == "Let me check"
    assert msgs[1].tool_calls == [ToolCall("color_picker", {"fav_color": "purple"}, "toolu_1")]
    assert "sig==" not in repr(msgs) and "ephemeral" not in repr(msgs)


def test_invalid_tool_calls_are_replayed_with_empty_args() -> None:
    ai = AIMessage(content="", invalid_tool_calls=[{"name": "f", "args": "{oops", "id": "c9", "error": None,
                                                    "type": "invalid_tool_call"}])
    assert to_messages([ai])[0].tool_calls == [ToolCall("f", {}, "c9")]


@pytest.mark.parametrize(
    ("block", "url"),
    [
        ({"type": "image_url", "image_url": {"url": "https://x/y.png"}}, "https://x/y.png"),
        ({"type": "image_url", "image_url": "https://x/z.png"}, "https://x/z.png"),
        ({"type": "image", "base64": B64, "mime_type": "image/png"}, f"data:image/png;base64,{B64}"),
        ({"type": "image", "url": "https://x/v1.png"}, "https://x/v1.png"),
        ({"type": "image", "source_type": "base64", "data": B64, "mime_type": "image/jpeg"},
         f"data:image/jpeg;base64,{B64}"),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": B64}},
         f"data:image/gif;base64,{B64}"),
    ],
)
def test_image_blocks_become_image_url_parts(block: dict, url: str) -> None:
    [m] = to_messages([HumanMessage([{"type": "text", "text": "what is this?"}, block])])
    assert m.content == [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]


def test_images_refused_for_a_model_without_vision_naming_the_block() -> None:
    with pytest.raises(InvalidInputError, match=r"message 1 \(human\), block 1: @cf/x does not take images"):
        to_messages([SystemMessage("s"), HumanMessage(["look", {"type": "image", "url": "https://x"}])],
                    images=False, model="@cf/x")


@pytest.mark.parametrize(
    "block",
    [
        {"type": "audio", "base64": "AAA", "mime_type": "audio/wav"},
        {"type": "file", "base64": "JVBER", "mime_type": "application/pdf"},
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
        {"type": "document", "source": {}},
    ],
)
def test_unsupported_blocks_raise_a_clear_error(block: dict) -> None:
    with pytest.raises(InvalidInputError, match=rf"block 0: content block type '{block['type']}' cannot be sent"):
        to_messages([HumanMessage([block])], model="@cf/meta/llama-3.3-70b-instruct-fp8-fast")


def test_base64_image_without_mime_type_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="mime_type"):
        to_messages([HumanMessage([{"type": "image", "base64": B64}])])


def test_system_message_with_an_image_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="text only"):
        to_messages([SystemMessage([{"type": "image", "url": "https://x"}])])


def test_chat_message_roles_and_names() -> None:
    msgs = to_messages([ChatMessage(content="rules", role="developer"), HumanMessage("hi", name="ann")])
    assert msgs[0].role == "system" and msgs[1].name == "ann"
    with pytest.raises(InvalidInputError, match="role 'wizard'"):
        to_messages([ChatMessage(content="x", role="wizard")])


@pytest.mark.parametrize(
    ("choice", "names", "expected"),
    [
        (None, ["a"], None), ("auto", ["a"], "auto"), ("none", ["a"], "none"), ("any", ["a"], "required"),
        ("required", ["a", "b"], "required"), ("b", ["a", "b"], "b"), (True, ["a"], "a"),
        (True, ["a", "b"], "required"), (False, ["a"], "auto"),
        ({"type": "function", "function": {"name": "b"}}, ["a", "b"], "b"),
        ({"type": "tool", "name": "a"}, ["a"], "a"), ({"type": "any"}, ["a"], "required"),
    ],
)
def test_tool_choice_forms(choice: object, names: list[str], expected: str | None) -> None:
    assert tool_choice(choice, names) == expected


def test_tool_choice_naming_an_unbound_tool_lists_the_tools() -> None:
    with pytest.raises(ValueError, match=r"\(a, b\)"):
        tool_choice("c", ["a", "b"])


def test_tool_spec_from_openai_dict() -> None:
    spec = tool_spec({"type": "function", "function": {"name": "f", "description": "d",
                                                       "parameters": {"type": "object", "properties": {"x": {}}}}})
    assert (spec.name, spec.description, spec.parameters["properties"]) == ("f", "d", {"x": {}})


def test_usage_metadata_cache_read_only_when_cached() -> None:
    assert usage_metadata(Usage(10, 5, 15)) == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    assert usage_metadata(Usage(10, 5, 15, cached_tokens=4))["input_token_details"] == {"cache_read": 4}
    assert usage_metadata(None) is None


def _record(cost: Decimal | None) -> UsageRecord:
    return UsageRecord(ts=1.0, model="openai/gpt-4o-mini", provider="openai", operation="chat",
                       input_tokens=10, output_tokens=5, cost=cost, call_id="c1")


def test_response_metadata_is_json_serialisable_and_complete() -> None:
    resp = ChatResponse(
        text="hi", model="openai/gpt-4o-mini", provider="openai", finish_reason="stop",
        usage=Usage(10, 5, 15, neurons=None), provider_model="gpt-4o-mini-2024-07-18",
        gateway=GatewayMeta(cache_status="MISS", log_id="log1", step=0),
        attempts=[AttemptInfo("openai/gpt-4o-mini", "ok", None, 0.01)], cost=Decimal("0.0000045"),
        records=[_record(Decimal("0.0000045"))],
    )
    meta = response_metadata(resp)
    json.dumps(meta)
    assert meta["model_name"] == "openai/gpt-4o-mini" and meta["provider_model"] == "gpt-4o-mini-2024-07-18"
    assert meta["cost"] == "0.0000045" and meta["gateway"] == {"cache_status": "MISS", "log_id": "log1", "step": 0}
    assert meta["attempts"][0]["outcome"] == "ok"
    assert UsageRecord.from_dict(meta["cfgateway_records"][0]).cost == Decimal("0.0000045")


def test_ai_message_carries_tool_calls_reasoning_and_usage() -> None:
    resp = ChatResponse(text="", model="m", provider="workers-ai", tool_calls=[ToolCall("f", {"x": 1}, "")],
                        reasoning="thinking...", usage=Usage(3, 2, 5, neurons=1.5))
    msg = to_ai_message(resp)
    assert msg.tool_calls[0]["name"] == "f" and msg.tool_calls[0]["args"] == {"x": 1} and msg.tool_calls[0]["id"]
    assert msg.additional_kwargs == {"reasoning_content": "thinking..."}
    assert msg.usage_metadata == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    assert msg.response_metadata["neurons"] == 1.5


def test_stream_chunks_announce_id_and_name_once_and_aggregate() -> None:
    state = StreamState()
    pieces = [
        ChatChunk(tool_call_chunks=[ToolCallChunk(0, None, "f", '{"x"')]),
        ChatChunk(tool_call_chunks=[ToolCallChunk(0, None, "f", ": 1}")]),
        ChatChunk(final=True, usage=Usage(3, 2, 5), finish_reason="tool_calls", model="m", provider="workers-ai"),
    ]
    chunks = [to_chunk(p, state) for p in pieces]
    assert chunks[0].tool_call_chunks[0]["id"] and chunks[1].tool_call_chunks[0]["id"] is None
    assert chunks[0].usage_metadata is None and chunks[0].response_metadata == {}
    full: AIMessageChunk = chunks[0] + chunks[1] + chunks[2]
    assert full.tool_calls == [{"name": "f", "args": {"x": 1}, "id": chunks[0].tool_call_chunks[0]["id"],
                                "type": "tool_call"}]
    assert full.usage_metadata == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    assert full.response_metadata["model_name"] == "m" and full.chunk_position == "last"


def test_whole_response_streamed_in_one_piece_matches_invoke() -> None:
    """A route that cannot stream yields the core's two chunks; merged, they equal the invoke message."""
    resp = ChatResponse(text='{"a": 1}', model="m", provider="workers-ai", usage=Usage(1, 1, 2),
                        tool_calls=[ToolCall("f", {"x": 1}, "c1")], finish_reason="tool_calls")
    state = StreamState()
    first, last = (to_chunk(c, state) for c in response_chunks(resp))
    full = first + last
    msg = to_ai_message(resp)
    assert full.content == msg.content == '{"a": 1}' and last.chunk_position == "last"
    assert full.tool_calls == msg.tool_calls == [{"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}]
    assert full.usage_metadata == msg.usage_metadata and full.usage_metadata["total_tokens"] == 2
    assert full.response_metadata["finish_reason"] == msg.response_metadata["finish_reason"]
