"""ChatCloudflare against the emulator: streaming usage, tool-call parity, overrides, secrets, request bodies,
structured output, per-call metadata, images, event loops."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumps
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from cfgateway.emulator.config import Fault
from cfgateway.emulator.server import EmulatorServer
from cfgateway.errors import ConfigError
from langchain_cfgateway import ChatCloudflare, get_cloudflare_callback

LEGACY = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
OPENAI_SHAPE = "@cf/qwen/qwen3-30b-a3b-fp8"  # streams on /ai/run (gpt-oss does not: see below)
GATEWAY = "openai/gpt-4o-mini"
CONFIGS = [pytest.param(LEGACY, False, id="legacy"), pytest.param(OPENAI_SHAPE, False, id="openai-shape"),
           pytest.param(GATEWAY, True, id="gateway")]
# What may appear in a chat request body across the three wires.
ALLOWED_BODY = {"messages", "model", "tools", "tool_choice", "response_format", "temperature", "max_tokens", "top_p",
                "top_k", "seed", "stop", "frequency_penalty", "presence_penalty", "repetition_penalty", "stream",
                "stream_options", "reasoning_effort"}


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"sunny in {city}"


def chat_bodies(emu: EmulatorServer) -> list[dict[str, Any]]:
    return [r.json for r in emu.state.requests if isinstance(r.json, dict) and "messages" in r.json]


@pytest.mark.parametrize(("model", "gw"), CONFIGS)
def test_usage_and_metadata_only_on_the_final_streamed_chunk(conn: Any, model: str, gw: bool) -> None:
    llm = ChatCloudflare(model=model, **conn(gateway=gw))
    for chunks in ([c for c in llm.stream("Tell me about Paris")],
                   asyncio.run(_collect(llm.astream("Tell me about Paris")))):
        assert len(chunks) > 2
        assert all(c.usage_metadata is None for c in chunks[:-1])
        assert all("model_name" not in c.response_metadata for c in chunks[:-1])
        last = chunks[-1]
        assert last.chunk_position == "last"
        assert last.usage_metadata and last.usage_metadata["output_tokens"] > 0
        assert last.response_metadata["model_name"] == model and last.response_metadata["finish_reason"] == "stop"
        assert last.response_metadata["cfgateway_records"][0]["stream"] is True
        invoked = llm.invoke("Tell me about Paris")
        assert invoked.usage_metadata == last.usage_metadata
        full = sum(chunks[1:], chunks[0])
        assert full.content == invoked.content


async def _collect(it: Any) -> list[AIMessageChunk]:
    return [c async for c in it]


@pytest.mark.parametrize(("model", "gw"), CONFIGS)
def test_tool_calls_identical_across_invoke_stream_sync_async(conn: Any, model: str, gw: bool) -> None:
    llm = ChatCloudflare(model=model, **conn(gateway=gw)).bind_tools([get_weather])
    q = "What is the weather in Paris?"
    invoked = llm.invoke(q)
    ainvoked = asyncio.run(llm.ainvoke(q))
    streamed = _sum(list(llm.stream(q)))
    astreamed = _sum(asyncio.run(_collect(llm.astream(q))))

    def strip(calls: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], str]]:
        assert all(c["id"] for c in calls)
        return [(c["name"], c["args"], c["type"]) for c in calls]

    expected = [("get_weather", {"city": "Paris"}, "tool_call")]
    for msg in (invoked, ainvoked, streamed, astreamed):
        assert strip(msg.tool_calls) == expected
        assert msg.response_metadata["finish_reason"] == "tool_calls"


def _sum(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return sum(chunks[1:], chunks[0])


@pytest.mark.parametrize(
    ("model", "gw", "override", "where"),
    [
        (LEGACY, False, "@cf/meta/llama-3.1-8b-instruct-fp8-fast", "path"),
        (GATEWAY, True, "openai/gpt-4.1-mini", "body"),
    ],
)
def test_per_call_model_override_is_sent(emu: EmulatorServer, conn: Any, model: str, gw: bool, override: str,
                                         where: str) -> None:
    llm = ChatCloudflare(model=model, **conn(gateway=gw))
    results = [llm.invoke("hi", model=override), _sum(list(llm.stream("hi", model=override))),
               asyncio.run(llm.ainvoke("hi", model=override)), llm.bind(model=override).invoke("hi")]
    assert all(r.response_metadata["model_name"] == override for r in results)
    reqs = [r for r in emu.state.requests if isinstance(r.json, dict) and "messages" in r.json]
    assert len(reqs) == 4
    for r in reqs:
        if where == "path":
            assert r.path.endswith(override)
        else:
            assert r.json["model"] == override.split("/", 1)[1]


def test_secrets_never_in_repr_dumps_or_traces(conn: Any) -> None:
    secret, gw_secret = "sk-very-secret-123", "gw-token"  # the emulator's gateway accepts "gw-token"
    llm = ChatCloudflare(model=GATEWAY, **{**conn(gateway=True), "api_token": secret})
    seen: list[str] = [repr(llm), str(llm), repr(llm.model_dump()), llm.model_dump_json(), dumps(llm),
                       json.dumps(llm._identifying_params), repr(llm._client())]

    class Spy(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
            seen.append(repr(serialized) + repr(kw))

    llm.invoke("hi", config={"callbacks": [Spy()]})
    for text in seen:
        assert secret not in text and gw_secret not in text
    assert llm.api_token is not None and llm.api_token.get_secret_value() == secret


def test_unknown_constructor_argument_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown argument\(s\) foo_bar; it takes: .*account_id.*temperature"):
        ChatCloudflare(foo_bar=1)


def test_unknown_per_call_option_is_refused_before_sending(emu: EmulatorServer, conn: Any) -> None:
    llm = ChatCloudflare(model=LEGACY, **conn())
    with pytest.raises(TypeError, match=r"unknown per-call option\(s\) frobnicate; known: .*temperature"):
        llm.invoke("hi", frobnicate=True)
    with pytest.raises(TypeError, match="frobnicate"):
        llm.bind_tools([get_weather], frobnicate=True)
    assert emu.state.requests == []


@pytest.mark.parametrize(("model", "gw"), CONFIGS)
def test_only_documented_fields_reach_the_body(emu: EmulatorServer, conn: Any, model: str, gw: bool) -> None:
    llm = ChatCloudflare(model=model, api_key="test-token", timeout=30, max_retries=1, stop=[], streaming=False,
                         temperature=0, max_tokens=50, **{k: v for k, v in conn(gateway=gw).items() if k != "api_token"})
    llm.invoke("hi")
    list(llm.stream("hi"))
    llm.bind_tools([get_weather], strict=True, parallel_tool_calls=False).invoke("weather in Paris?")
    bodies = chat_bodies(emu)
    assert len(bodies) == 3
    for body in bodies:
        assert set(body) <= ALLOWED_BODY, set(body) - ALLOWED_BODY
        assert body["temperature"] == 0 and body["max_tokens"] == 50
        assert "stop" not in body  # never "stop": null or []
        assert "test-token" not in json.dumps(body)


def test_per_call_sampling_override_is_sent(emu: EmulatorServer, conn: Any) -> None:
    llm = ChatCloudflare(model=GATEWAY, temperature=0.5, **conn(gateway=True))
    llm.invoke("hi", temperature=0.1, max_tokens=7, stop=["zz"])
    [body] = chat_bodies(emu)
    assert (body["temperature"], body["max_tokens"], body["stop"]) == (0.1, 7, ["zz"])


class Person(BaseModel):
    """A person."""

    name: str = Field(description="the person's name")
    age: int = Field(description="age in years")


@pytest.mark.parametrize(("model", "gw"), CONFIGS)
@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_three_methods(conn: Any, model: str, gw: bool, method: str) -> None:
    llm = ChatCloudflare(model=model, **conn(gateway=gw))
    prompt = "Extract: name 'Ada', age 36. Return JSON with 'name' and 'age' keys."
    if method == "json_mode":  # JSON mode only asks for JSON (the emulator takes the keys from the prompt)
        structured = llm.with_structured_output(Person.model_json_schema(), method=method)
        ask = "Extract name and age. Return JSON with 'name' and 'age' keys."
        for result in (structured.invoke(ask), list(structured.stream(ask))[-1]):
            assert set(result) == {"name", "age"}
        return
    structured = llm.with_structured_output(Person, method=method)
    for result in (structured.invoke(prompt), list(structured.stream(prompt))[-1],
                   asyncio.run(structured.ainvoke(prompt))):
        assert isinstance(result, Person) and result.age == 36
    raw = llm.with_structured_output(Person.model_json_schema(), method=method, include_raw=True).invoke(prompt)
    assert raw["parsing_error"] is None and raw["parsed"]["age"] == 36
    assert raw["raw"].response_metadata["model_name"] == model


def test_json_mode_stream_on_workers_ai_is_one_non_streamed_answer(emu: EmulatorServer, conn: Any) -> None:
    llm = ChatCloudflare(model=LEGACY, **conn()).bind(response_format={"type": "json_object"})
    chunks = list(llm.stream("Reply with 'answer' as JSON"))
    full = sum(chunks[1:], chunks[0])
    assert len(chunks) == 2 and chunks[-1].chunk_position == "last" and json.loads(full.content)
    assert chunks[0].usage_metadata is None and full.usage_metadata is not None
    [body] = chat_bodies(emu)
    assert "stream" not in body


@pytest.mark.parametrize(
    ("model", "method", "works"),
    [("@cf/meta/llama-3.1-8b-instruct", "function_calling", "json_schema, json_mode"),
     ("@cf/meta/llama-3.2-1b-instruct", "json_mode", "none")],
)
def test_structured_output_method_the_model_lacks_names_what_works(model: str, method: str, works: str) -> None:
    llm = ChatCloudflare(model=model, api_token="t", account_id="a")
    with pytest.raises(ValueError, match=f"methods that work: {works}"):
        llm.with_structured_output(Person, method=method)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
def test_config_metadata_becomes_user_and_gateway_metadata(emu: EmulatorServer, conn: Any, mode: str) -> None:
    llm = ChatCloudflare(model=GATEWAY, **conn(gateway=True))
    config: Any = {"metadata": {"user_id": "u1", "team": "search", "langgraph_step": 3, "nested": {"x": 1}}}
    if mode == "invoke":
        msg = llm.invoke("hi", config=config)
    elif mode == "stream":
        msg = _sum(list(llm.stream("hi", config=config)))
    elif mode == "ainvoke":
        msg = asyncio.run(llm.ainvoke("hi", config=config))
    else:
        msg = _sum(asyncio.run(_collect(llm.astream("hi", config=config))))
    [req] = [r for r in emu.state.requests if isinstance(r.json, dict) and "messages" in r.json]
    sent = json.loads(req.headers["cf-aig-metadata"])
    assert sent == {"team": "search", "user": "u1"}
    record = msg.response_metadata["cfgateway_records"][0]
    assert record["user"] == "u1" and record["tags"] == {"team": "search"}


def test_metadata_flows_through_a_chain(emu: EmulatorServer, conn: Any) -> None:
    from langchain_core.prompts import ChatPromptTemplate

    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | ChatCloudflare(model=GATEWAY, **conn(gateway=True))
    chain.invoke({"q": "hi"}, config={"metadata": {"user_id": "u7"}})
    [req] = emu.state.requests
    assert json.loads(req.headers["cf-aig-metadata"]) == {"user": "u7"}


def test_images_are_sent_as_image_parts(emu: EmulatorServer, conn: Any) -> None:
    llm = ChatCloudflare(model=GATEWAY, **conn(gateway=True))
    llm.invoke([HumanMessage([{"type": "text", "text": "what is it?"},
                              {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"}])])
    [body] = chat_bodies(emu)
    assert body["messages"][0]["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def test_one_pooled_client_survives_new_event_loops(conn: Any) -> None:
    llm = ChatCloudflare(model=LEGACY, **conn())
    client = llm._client()
    for _ in range(3):
        assert asyncio.run(llm.ainvoke("hi")).content
    assert llm.invoke("hi").content and llm._client() is client


def test_profile_string_is_the_config_profile_and_capabilities_come_from_the_catalog() -> None:
    llm = ChatCloudflare(model=GATEWAY, api_token="t", account_id="a", gateway_id="g", gateway_token="x")
    assert llm.profile and llm.profile["tool_calling"] is True and llm.profile["max_input_tokens"] == 128000
    assert llm.config_profile is None
    with pytest.raises(ConfigError, match="profile .prod."):
        ChatCloudflare(model=GATEWAY, profile="prod")  # no cfgateway.toml here: a clear ConfigError


def test_ls_params_and_llm_type() -> None:
    llm = ChatCloudflare(model=LEGACY, temperature=0.2, max_tokens=9, stop=["x"], api_token="t", account_id="a")
    params = llm._get_ls_params()
    assert params == {"ls_provider": "cloudflare", "ls_model_name": LEGACY, "ls_model_type": "chat",
                      "ls_temperature": 0.2, "ls_max_tokens": 9, "ls_stop": ["x"]}
    assert llm._get_ls_params(model="@cf/other")["ls_model_name"] == "@cf/other"
    assert llm._llm_type == "cloudflare"


@pytest.mark.parametrize("mode", ["client", "gateway"])
def test_fallbacks_answer_and_report_the_route(emu: EmulatorServer, conn: Any, mode: str) -> None:
    emu.state.add_fault(Fault(path="*/workers-ai/*", kind="error", status=429, code=3040, times=None))
    llm = ChatCloudflare(model=LEGACY, fallbacks=[GATEWAY], fallback_mode=mode, max_retries=0, **conn(gateway=True))
    with get_cloudflare_callback() as cb:
        msgs = [llm.invoke("hi"), _sum(list(llm.stream("hi"))), asyncio.run(llm.ainvoke("hi"))]
    for msg in msgs:
        meta = msg.response_metadata
        assert meta["model_name"] == GATEWAY and meta["provider"] == "openai"
        assert [a["model"] for a in meta["attempts"]] == [LEGACY, GATEWAY]
        assert meta["attempts"][-1]["outcome"] == "ok" and meta["attempts"][0]["outcome"] != "ok"
    assert cb.fallbacks == 3 and cb.successful_requests == 3
    assert cb.by_model[GATEWAY].requests == 3 and cb.total_cost == cb.by_model[GATEWAY].cost > 0


def test_caller_metadata_is_not_a_traced_model_parameter(conn: Any) -> None:
    seen: list[dict[str, Any]] = []

    class Spy(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
            seen.append(kw)

    llm = ChatCloudflare(model=LEGACY, **conn())
    config: Any = {"callbacks": [Spy()], "metadata": {"user_id": "u1"}}
    llm.invoke("hi", config=config)
    list(llm.stream("hi", config=config))
    assert len(seen) == 2
    for kw in seen:
        assert "_cf_context" not in kw["invocation_params"] and "_cf_context" not in kw["options"]
        assert kw["metadata"]["user_id"] == "u1" and kw["metadata"]["ls_provider"] == "cloudflare"


def test_gpt_oss_stream_is_one_call_that_matches_invoke(emu: EmulatorServer, conn: Any) -> None:
    """gpt-oss refuses to stream on /ai/run: the core sends it once, unstreamed; LangChain sees chunks."""
    llm = ChatCloudflare(model="@cf/openai/gpt-oss-120b", **conn())
    for chunks in ([c for c in llm.stream("Tell me about Paris")],
                   asyncio.run(_collect(llm.astream("Tell me about Paris")))):
        full = sum(chunks[1:], chunks[0])
        assert chunks[-1].chunk_position == "last" and all(c.usage_metadata is None for c in chunks[:-1])
        invoked = llm.invoke("Tell me about Paris")
        assert full.content == invoked.content and full.usage_metadata == invoked.usage_metadata
        assert full.response_metadata["model_name"] == "@cf/openai/gpt-oss-120b"
    assert [b.get("stream") for b in chat_bodies(emu)] == [None] * 4
