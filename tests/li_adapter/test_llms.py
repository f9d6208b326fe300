"""CloudflareLLM against the emulator: the eight methods, one event pair per call, usage keys,
metadata from the catalog, per-call options, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ThinkingBlock
from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation.dispatcher import instrument_tags

from cfgateway import BadRequestError, InvalidInputError, StreamInterrupted
from cfgateway.emulator.config import Fault
from llama_index_cfgateway import CloudflareLLM

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
USER = [ChatMessage(role="user", content="Hello there friend")]
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens"}


def _llm(conn: Any, callbacks: Any = None, **kw: Any) -> CloudflareLLM:
    cm = CallbackManager([callbacks] if callbacks is not None else [])
    return CloudflareLLM(**{"model": MODEL, "callback_manager": cm, **conn(), **kw})


async def _collect(agen: Any) -> list[Any]:
    return [x async for x in agen]


def _run_method(llm: CloudflareLLM, method: str) -> list[Any]:
    """Call one of the eight methods; returns every response (one, or every stream chunk)."""
    arg: Any = USER if "chat" in method else "Hello there friend"
    fn = getattr(llm, method)
    if method.startswith("a"):
        async def go() -> list[Any]:
            out = await fn(arg)
            return await _collect(out) if "stream" in method else [out]
        return asyncio.run(go())
    out = fn(arg)
    return list(out) if "stream" in method else [out]


METHODS = ["chat", "achat", "stream_chat", "astream_chat", "complete", "acomplete", "stream_complete",
           "astream_complete"]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_one_request_one_event_pair_real_usage(
    method: str, conn: Any, emu: Any, llm_events: Any, llm_callbacks: Any, token_counter: Any, usage_of: Any
) -> None:
    cm = CallbackManager([llm_callbacks, token_counter])
    llm = CloudflareLLM(model=MODEL, callback_manager=cm, **conn())
    responses = _run_method(llm, method)
    last = responses[-1]
    text = last.message.content if "chat" in method else last.text
    assert text == "You said: Hello there friend"
    if "stream" in method:
        assert len(responses) > 2
        assert "".join(r.delta for r in responses) == text
        assert all(r.raw is None for r in responses[:-1])  # usage once, on the last chunk
    u = usage_of(emu)
    assert u.requests == 1 == len(emu.state.requests)
    assert (llm_events.starts, llm_events.ends) == (1, 1)
    assert (llm_callbacks.starts, llm_callbacks.ends) == (1, 1)
    assert len(token_counter.llm_token_counts) == 1
    assert last.raw["usage"]["prompt_tokens"] == u.prompt_tokens == token_counter.prompt_llm_token_count
    assert last.raw["usage"]["completion_tokens"] == u.completion_tokens == token_counter.completion_llm_token_count
    assert USAGE_KEYS <= set(last.raw["usage"]) and USAGE_KEYS <= set(last.additional_kwargs)
    kw = last.additional_kwargs
    assert kw["model_name"] == MODEL and kw["provider"] == "workers-ai" and kw["finish_reason"] == "stop"
    assert kw["cost"] is not None and float(kw["cost"]) > 0
    assert len(kw["cfgateway_records"]) == 1 and kw["cfgateway_records"][0]["model"] == MODEL
    assert kw["attempts"][0]["outcome"] == "ok"
    assert emu.state.requests[0].json.get("stream", False) is ("stream" in method)


def test_sampling_fields_sent_and_unset_ones_not(conn: Any, emu: Any) -> None:
    llm = _llm(conn, temperature=0.2, max_tokens=50, top_p=0.9, seed=7, stop="zzz")
    llm.chat(USER, top_k=5, frequency_penalty=0.1)
    body = emu.state.requests[0].json
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50 and body["top_p"] == 0.9
    assert body["seed"] == 7 and body["top_k"] == 5 and body["frequency_penalty"] == 0.1
    assert "presence_penalty" not in body and "repetition_penalty" not in body


def test_stop_and_max_tokens_honoured(conn: Any, emu: Any) -> None:
    llm = _llm(conn)
    assert llm.complete("Hello there friend", stop=["there"]).text == "You said: Hello "
    cut = llm.chat(USER, max_tokens=2, model="@cf/openai/gpt-oss-20b")  # an OpenAI-shape model reports it
    assert cut.message.content == "You said" and cut.additional_kwargs["finish_reason"] == "length"
    streamed = list(llm.stream_complete("Hello there friend", stop=["there"]))
    assert streamed[-1].text == "You said: Hello "


def test_metadata_from_the_catalog(conn: Any) -> None:
    meta = _llm(conn).metadata
    assert (meta.context_window, meta.is_chat_model, meta.is_function_calling_model) == (24000, True, True)
    assert meta.model_name == MODEL and meta.num_output == 256
    small = _llm(conn, model="@cf/meta/llama-3.2-1b-instruct", max_tokens=100).metadata
    assert (small.context_window, small.is_function_calling_model, small.num_output) == (60000, False, 100)
    forced = _llm(conn, model="@cf/meta/llama-3.2-1b-instruct", context_window=4096, is_function_calling_model=True)
    assert (forced.metadata.context_window, forced.metadata.is_function_calling_model) == (4096, True)


def test_per_call_user_and_metadata_reach_the_gateway_and_records(conn: Any, emu: Any) -> None:
    llm = _llm(lambda: conn(gateway=True))
    resp = llm.chat(USER, user="u-42", metadata={"team": "search"})
    header = json.loads(emu.state.requests[0].headers["cf-aig-metadata"])
    assert header == {"team": "search", "user": "u-42"}
    record = resp.additional_kwargs["cfgateway_records"][0]
    assert record["user"] == "u-42" and record["tags"] == {"team": "search"}


def test_instrument_tags_carry_the_user_to_every_call(conn: Any, emu: Any) -> None:
    llm = _llm(lambda: conn(gateway=True))
    with instrument_tags({"user_id": "u-7", "tenant": "acme"}):
        list(llm.stream_chat(USER))
        asyncio.run(llm.acomplete("hi"))
    for r in emu.state.requests:
        assert json.loads(r.headers["cf-aig-metadata"]) == {"tenant": "acme", "user": "u-7"}


def test_per_call_model_override_is_sent_and_reported(conn: Any, emu: Any) -> None:
    llm = _llm(lambda: conn(gateway=True))
    resp = llm.chat(USER, model="openai/gpt-4o-mini")
    assert emu.state.requests[0].path.endswith("/openai/chat/completions")
    assert emu.state.requests[0].json["model"] == "gpt-4o-mini"
    assert resp.additional_kwargs["model_name"] == "openai/gpt-4o-mini"
    assert resp.additional_kwargs["provider_model"] == "gpt-4o-mini"


def test_gateway_provider_model_all_paths(conn: Any, emu: Any, usage_of: Any) -> None:
    llm = _llm(lambda: conn(gateway=True), model="openai/gpt-4o-mini")
    assert llm.chat(USER).message.content == "You said: Hello there friend"

    async def stream() -> list[Any]:
        return await _collect(await llm.astream_chat(USER))

    chunks = asyncio.run(stream())
    assert chunks[-1].message.content == "You said: Hello there friend"
    assert chunks[-1].raw["usage"]["completion_tokens"] == usage_of(emu).per_request[1][1] == 6
    assert all(r.path.endswith("/gw/openai/chat/completions") for r in emu.state.requests)
    assert emu.state.requests[1].json["stream_options"] == {"include_usage": True}


def test_json_mode_on_workers_ai_streams_as_one_chunk(conn: Any, emu: Any) -> None:
    llm = _llm(conn)
    fmt = {"type": "json_schema", "json_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                                  "required": ["city"]}}
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="city: Paris")], response_format=fmt))
    assert json.loads(chunks[-1].message.content) == {"city": "Paris"}
    assert "".join(c.delta or "" for c in chunks) == chunks[-1].message.content
    assert "stream" not in emu.state.requests[0].json and len(emu.state.requests) == 1
    assert chunks[-1].raw["usage"]["prompt_tokens"] > 0


def test_reasoning_becomes_a_thinking_block(conn: Any) -> None:
    llm = _llm(conn, model="@cf/openai/gpt-oss-20b", reasoning_effort="low")
    resp = llm.chat(USER)
    assert isinstance(resp.message.blocks[0], ThinkingBlock) and resp.message.blocks[0].content
    assert resp.message.content == "You said: Hello there friend"
    chunks = list(llm.stream_chat(USER))
    assert any(c.additional_kwargs.get("thinking_delta") for c in chunks)
    assert isinstance(chunks[-1].message.blocks[0], ThinkingBlock)


def test_an_api_error_is_typed_and_ends_the_event(conn: Any, emu: Any, llm_callbacks: Any) -> None:
    emu.state.add_fault(Fault(kind="error", status=400, code=5006, message="bad input"))
    llm = _llm(conn, callbacks=llm_callbacks)
    with pytest.raises(BadRequestError) as info:
        llm.chat(USER)
    assert info.value.code == 5006
    assert (llm_callbacks.starts, llm_callbacks.ends) == (1, 1)


def test_a_broken_stream_raises_stream_interrupted_once(conn: Any, emu: Any, llm_callbacks: Any) -> None:
    emu.state.add_fault(Fault(kind="drop_stream", after_chunks=2))
    llm = _llm(conn, callbacks=llm_callbacks)
    got: list[str] = []
    with pytest.raises(StreamInterrupted):
        for r in llm.stream_chat(USER):
            got.append(r.delta or "")
    assert got and (llm_callbacks.starts, llm_callbacks.ends) == (1, 1)
    assert len(emu.state.requests) == 1


def test_unknown_per_call_option_is_refused_before_sending(conn: Any, emu: Any, llm_callbacks: Any) -> None:
    llm = _llm(conn, callbacks=llm_callbacks)
    with pytest.raises(TypeError, match="temprature"):
        llm.chat(USER, temprature=0.5)
    with pytest.raises(TypeError, match="api_key"):
        list(llm.stream_complete("hi", api_key="test"))
    assert emu.state.requests == []


def test_unsendable_block_is_refused_naming_it(conn: Any, emu: Any) -> None:
    from llama_index.core.base.llms.types import AudioBlock

    msg = ChatMessage(role="user", blocks=[AudioBlock(audio=b"abc", format="mp3")])
    with pytest.raises(InvalidInputError, match="message 0, block 0: 'audio'"):
        _llm(conn).chat([msg])
    assert emu.state.requests == []


def test_async_survives_new_event_loops(conn: Any) -> None:
    llm = _llm(conn)
    for _ in range(3):
        assert asyncio.run(llm.achat(USER)).message.content == "You said: Hello there friend"


def test_predict_and_structured_paths_emit_one_pair(conn: Any, emu: Any, llm_events: Any) -> None:
    from llama_index.core import PromptTemplate

    llm = _llm(conn)
    assert llm.predict(PromptTemplate("Say {x}"), x="hi") == "You said: Say hi"
    assert "".join(llm.stream(PromptTemplate("Say {x}"), x="hi")) == "You said: Say hi"
    assert (llm_events.starts, llm_events.ends, len(emu.state.requests)) == (2, 2, 2)


@pytest.mark.parametrize("method", ["chat", "astream_chat", "stream_complete"])
def test_a_fallback_inside_one_call_is_one_event_pair(
    method: str, conn: Any, emu: Any, llm_events: Any, llm_callbacks: Any
) -> None:
    from llama_index_cfgateway import CloudflareCostHandler

    backup = "@cf/openai/gpt-oss-20b"
    emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="error", status=429, code=3040, message="busy"))
    cost = CloudflareCostHandler()
    llm = CloudflareLLM(model=MODEL, fallbacks=[backup], max_retries=0,
                        callback_manager=CallbackManager([llm_callbacks, cost]), **conn())
    last = _run_method(llm, method)[-1]
    text = last.message.content if "chat" in method else last.text
    assert text == "You said: Hello there friend"
    kw = last.additional_kwargs
    assert kw["model_name"] == backup and [a["outcome"] for a in kw["attempts"]] == ["CapacityError", "ok"]
    assert [r.path.rsplit("/", 1)[-1] for r in emu.state.requests] == ["llama-3.3-70b-instruct-fp8-fast",
                                                                        "gpt-oss-20b"]
    assert (llm_events.starts, llm_events.ends) == (1, 1)
    assert (llm_callbacks.starts, llm_callbacks.ends) == (1, 1)
    assert (cost.successful_requests, cost.fallbacks, cost.failed_requests) == (1, 1, 0)
    assert cost.by_model[MODEL].requests == 0 and cost.by_model[backup].requests == 1


@pytest.mark.parametrize("mode", ["chat", "stream"])
def test_images_for_a_text_only_model_fail_before_sending(conn: Any, emu: Any, mode: str) -> None:
    from llama_index.core.base.llms.types import ImageBlock, TextBlock

    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
           b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    msg = [ChatMessage(role="user", blocks=[TextBlock(text="What is this?"), ImageBlock(image=png)])]
    text_only = _llm(conn, model="@cf/meta/llama-3.1-8b-instruct")
    with pytest.raises(InvalidInputError, match=r"messages\[0\]: @cf/meta/llama-3.1-8b-instruct does not take images"):
        text_only.chat(msg) if mode == "chat" else list(text_only.stream_chat(msg))
    assert emu.state.requests == []
    vision = _llm(conn, model="@cf/google/gemma-3-12b-it")
    out = vision.chat(msg) if mode == "chat" else list(vision.stream_chat(msg))[-1]
    assert out.message.content and len(emu.state.requests) == 1
    sent = emu.state.requests[0].json["messages"][0]["content"]
    assert [p["type"] for p in sent] == ["text", "image_url"]
