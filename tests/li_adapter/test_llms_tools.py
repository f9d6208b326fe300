"""CloudflareLLM's function-calling surface against the emulator: chat_with_tools and its async and
streaming twins, get_tool_calls_from_response, tool_choice / tool_required, predict_and_call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole, ToolCallBlock
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools import FunctionTool

from llama_index_cfgateway import CloudflareLLM

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny in {city}"


def get_time(city: str) -> str:
    """Get the local time in a city."""
    return f"Noon in {city}"


WEATHER = FunctionTool.from_defaults(fn=get_weather)
TIME = FunctionTool.from_defaults(fn=get_time)
ASK = "Use the get_weather tool for city: Paris"


async def _drain(agen: Any) -> list[Any]:
    return [x async for x in agen]


def _with_tools(llm: CloudflareLLM, how: str, tools: list[Any], msg: str, **kw: Any) -> ChatResponse:
    """The last response of chat_with_tools / achat_with_tools / stream_* / astream_*."""
    if how == "sync":
        return llm.chat_with_tools(tools, user_msg=msg, **kw)
    if how == "stream":
        return list(llm.stream_chat_with_tools(tools, user_msg=msg, **kw))[-1]

    async def go() -> ChatResponse:
        if how == "async":
            return await llm.achat_with_tools(tools, user_msg=msg, **kw)
        return (await _drain(await llm.astream_chat_with_tools(tools, user_msg=msg, **kw)))[-1]

    return asyncio.run(go())


@pytest.mark.parametrize("model", [MODEL, "openai/gpt-4o-mini", "@cf/openai/gpt-oss-20b"])
@pytest.mark.parametrize("how", ["sync", "async", "stream", "astream"])
def test_tool_calls_identical_on_every_path(how: str, model: str, conn: Any, emu: Any) -> None:
    llm = CloudflareLLM(model=model, **conn(gateway=not model.startswith("@")))
    resp = _with_tools(llm, how, [WEATHER], ASK)
    calls = llm.get_tool_calls_from_response(resp)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].tool_id
    assert [b.tool_name for b in resp.message.blocks if isinstance(b, ToolCallBlock)] == ["get_weather"]
    assert resp.raw["usage"]["completion_tokens"] > 0 and resp.additional_kwargs["finish_reason"] == "tool_calls"
    sent = emu.state.requests[0].json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["city"]


def test_no_tool_call_error_on_no_tool_call(conn: Any) -> None:
    llm = CloudflareLLM(model=MODEL, **conn())
    resp = llm.chat_with_tools([WEATHER], user_msg="Just say hello")
    assert resp.message.content == "You said: Just say hello"
    with pytest.raises(ValueError, match="0 tool calls"):
        llm.get_tool_calls_from_response(resp)
    assert llm.get_tool_calls_from_response(resp, error_on_no_tool_call=False) == []


def test_tool_required_and_tool_choice(conn: Any, emu: Any) -> None:
    llm = CloudflareLLM(model="openai/gpt-4o-mini", **conn(gateway=True))
    forced = llm.chat_with_tools([WEATHER], user_msg="city: Paris", tool_required=True)
    assert llm.get_tool_calls_from_response(forced)[0].tool_name == "get_weather"
    assert emu.state.requests[-1].json["tool_choice"] == "required"
    none = llm.chat_with_tools([WEATHER], user_msg=ASK, tool_choice="none")
    assert llm.get_tool_calls_from_response(none, error_on_no_tool_call=False) == []
    named = llm.chat_with_tools([WEATHER, TIME], user_msg="city: Paris", tool_choice="get_time")
    assert [c.tool_name for c in llm.get_tool_calls_from_response(named)] == ["get_time"]
    assert emu.state.requests[-1].json["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}


def test_parallel_calls_kept_only_when_allowed(conn: Any) -> None:
    llm = CloudflareLLM(model="openai/gpt-4o-mini", **conn(gateway=True))
    ask = "Use the get_weather tool and the get_time tool for city: Paris"
    both = llm.chat_with_tools([WEATHER, TIME], user_msg=ask, allow_parallel_tool_calls=True)
    assert [c.tool_name for c in llm.get_tool_calls_from_response(both)] == ["get_weather", "get_time"]
    one = llm.chat_with_tools([WEATHER, TIME], user_msg=ask)
    assert [c.tool_name for c in llm.get_tool_calls_from_response(one)] == ["get_weather"]


def test_tool_result_round_trip_in_history(conn: Any, emu: Any) -> None:
    llm = CloudflareLLM(model=MODEL, **conn())
    first = llm.chat_with_tools([WEATHER], user_msg=ASK)
    call = llm.get_tool_calls_from_response(first)[0]
    history = [
        ChatMessage(role="user", content=ASK),
        first.message,
        ChatMessage(role=MessageRole.TOOL, content=get_weather(**call.tool_kwargs),
                    additional_kwargs={"tool_call_id": call.tool_id, "name": call.tool_name}),
    ]
    final = llm.chat_with_tools([WEATHER], chat_history=history)
    assert final.message.content == "The tool returned: Sunny in Paris."
    sent = emu.state.requests[-1].json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.tool_id == sent[2]["tool_call_id"]


def test_openai_style_history_from_another_integration(conn: Any, emu: Any) -> None:
    history = [
        ChatMessage(role="user", content=ASK),
        ChatMessage(role="assistant", content=None, additional_kwargs={"tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
        ]}),
        ChatMessage(role="tool", content="Rainy in Rome", additional_kwargs={"tool_call_id": "call_1"}),
    ]
    resp = CloudflareLLM(model=MODEL, **conn()).chat(history)
    assert resp.message.content == "The tool returned: Rainy in Rome."
    sent = emu.state.requests[0].json["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_predict_and_call_runs_the_tool(conn: Any) -> None:
    llm = CloudflareLLM(model=MODEL, **conn())
    out = llm.predict_and_call([WEATHER], user_msg=ASK)
    assert out.response == "Sunny in Paris" and out.sources[0].tool_name == "get_weather"
    aout = asyncio.run(llm.apredict_and_call([WEATHER], user_msg=ASK))
    assert aout.response == "Sunny in Paris"


def test_tool_selection_from_a_partial_stream_chunk(conn: Any) -> None:
    llm = CloudflareLLM(model="openai/gpt-4o-mini", **conn(gateway=True))
    chunks = list(llm.stream_chat_with_tools([WEATHER], user_msg=ASK))
    assert len(chunks) > 2
    for c in chunks[:-1]:  # FunctionAgent reads every chunk with error_on_no_tool_call=False
        sel = llm.get_tool_calls_from_response(c, error_on_no_tool_call=False)
        assert all(isinstance(s, ToolSelection) for s in sel)
    assert llm.get_tool_calls_from_response(chunks[-1])[0].tool_kwargs == {"city": "Paris"}
