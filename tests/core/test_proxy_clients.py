"""A real `cfgateway proxy` process in front of the emulator, driven by the real clients: the openai SDK,
AutoGen (agentchat + ext[openai]), LangChain's ChatOpenAI/OpenAIEmbeddings, LlamaIndex's OpenAILike/OpenAIEmbedding.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import _proxy_proc
import httpx
import openai
import pytest
from pydantic import BaseModel

from cfgateway.emulator.config import Fault

KEY = "sk-proxy-test-key"
TOOLS = "tools"  # an alias whose primary the catalog lists without function calling
ALIASES = [f"{TOOLS}=@cf/meta/llama-3.1-8b-instruct-fp8-fast,@cf/meta/llama-3.3-70b-instruct-fp8-fast",
           "flaky=@cf/meta/llama-3.1-8b-instruct,@cf/meta/llama-3.3-70b-instruct-fp8-fast",
           "emb=@cf/baai/bge-small-en-v1.5"]
CHAT_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


@pytest.fixture(scope="module")
def proxy(cf_emulator_server: Any) -> Iterator[_proxy_proc.ProxyProc]:
    args = [a for alias in ALIASES for a in ("--alias", alias)] + ["--api-key", f"tester:{KEY}",
                                                                  "--default-provider", "openai"]
    with _proxy_proc.running(args, _proxy_proc.emulator_env(cf_emulator_server)) as pp:
        yield pp


@pytest.fixture()
def oai(proxy: _proxy_proc.ProxyProc, cf_emulator: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


# -- openai SDK -----------------------------------------------------------------------------------------------------
def test_openai_chat_and_stream_with_usage(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "Tell me about Paris"}])
    assert "Paris" in (r.choices[0].message.content or "") and r.usage and r.usage.completion_tokens > 0
    assert r.model == CHAT_MODEL
    chunks = list(oai.chat.completions.create(model=CHAT_MODEL, stream=True, stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": "Tell me about Paris"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_openai_n_two_choices(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.create(model=CHAT_MODEL, n=2, messages=[{"role": "user", "content": "hi"}])
    assert len(r.choices) == 2


def test_openai_tools_round_trip(oai: openai.OpenAI) -> None:
    msgs: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = oai.chat.completions.create(model=TOOLS, messages=msgs, tools=[WEATHER], tool_choice="required")
    call = r.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    msgs += [r.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    r2 = oai.chat.completions.create(model=TOOLS, messages=msgs, tools=[WEATHER])
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content


class City(BaseModel):
    name: str
    population: int


def test_openai_structured_output(oai: openai.OpenAI) -> None:
    r = oai.chat.completions.parse(model=CHAT_MODEL, response_format=City,
                                   messages=[{"role": "user", "content": "Describe Paris as JSON"}])
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, City) and parsed.name


def test_openai_embeddings_default_base64_and_float(oai: openai.OpenAI) -> None:
    default = oai.embeddings.create(model="emb", input=["a b", "c d"])  # the SDK asks for base64 and decodes it
    floats = oai.embeddings.create(model="emb", input=["a b", "c d"], encoding_format="float")
    assert len(default.data) == 2 and len(default.data[0].embedding) == 384
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, rel=1e-5)
    with pytest.raises(openai.BadRequestError) as exc:
        oai.embeddings.create(model="emb", input="x", dimensions=256)
    assert "256" in str(exc.value)


def test_openai_errors(oai: openai.OpenAI, proxy: _proxy_proc.ProxyProc) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "x"}], temperature=9)
    assert bad.value.body["param"] == "temperature"  # type: ignore[index]
    wrong = openai.OpenAI(base_url=proxy.base_url, api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        wrong.models.list()
    assert "invalid proxy API key" in str(auth.value) and "CLOUDFLARE" not in str(auth.value)
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("no-such-model-anywhere")


def test_openai_fallback_inside_an_alias(oai: openai.OpenAI, cf_emulator: Any) -> None:
    cf_emulator.state.add_fault(Fault(path="*/ai/run/@cf/meta/llama-3.1-8b-instruct", kind="error", status=503,
                                      times=1))
    raw = oai.chat.completions.with_raw_response.create(model="flaky", messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-cfgateway-model"] == "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
    assert raw.parse().model == "flaky"


def test_openai_bare_name_uses_the_default_provider(oai: openai.OpenAI) -> None:
    info = oai.models.retrieve("gpt-4o-mini")
    assert info.id == "gpt-4o-mini"
    with pytest.raises(openai.BadRequestError) as exc:  # no gateway configured on this proxy: said so, by name
        oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert exc.value.body["param"] == "model"  # type: ignore[index]


def test_openai_responses_api(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model=CHAT_MODEL, input="Tell me about Paris", instructions="Be brief.")
    assert "Paris" in r.output_text and r.usage is not None and r.usage.output_tokens > 0
    events = list(oai.responses.create(model=CHAT_MODEL, input="Tell me about Paris", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "Paris" in text and events[-1].response.output_text == text  # type: ignore[union-attr]
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}  # type: ignore[index]
    t = oai.responses.create(model=TOOLS, input="What is the weather in Paris?", tools=[tool], tool_choice="required")
    call = next(o for o in t.output if o.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    follow = oai.responses.create(model=TOOLS, tools=[tool], input=[
        {"role": "user", "content": "What is the weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert follow.output_text
    with pytest.raises(openai.BadRequestError) as exc:
        oai.responses.create(model=CHAT_MODEL, input="again", previous_response_id=r.id)
    assert "does not store responses" in str(exc.value)


def test_models_endpoint_needs_the_key(proxy: _proxy_proc.ProxyProc) -> None:
    assert httpx.get(f"{proxy.base_url}/models").status_code == 401


# -- AutoGen --------------------------------------------------------------------------------------------------------
def _model_info(proxy: _proxy_proc.ProxyProc, name: str) -> dict[str, Any]:
    d = httpx.get(f"{proxy.base_url}/models", headers={"Authorization": f"Bearer {KEY}"}).json()["data"]
    info = dict(next(m for m in d if m["id"] == name)["model_info"])
    info.pop("context_window", None)
    return info


async def _autogen_run(proxy: _proxy_proc.ProxyProc, stream: bool) -> Any:
    from autogen_agentchat.agents import AssistantAgent
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    calls: list[str] = []

    async def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    client = OpenAIChatCompletionClient(model=TOOLS, base_url=proxy.base_url, api_key=KEY,
                                        model_info=_model_info(proxy, TOOLS))  # type: ignore[arg-type]
    agent = AssistantAgent("assistant", model_client=client, tools=[get_weather], model_client_stream=stream,
                           reflect_on_tool_use=True)
    try:
        result = await agent.run(task="What is the weather in Paris?")
    finally:
        await client.close()
    return result, calls, client


@pytest.mark.parametrize("stream", [False, True])
def test_autogen_assistant_with_a_function_tool(proxy: _proxy_proc.ProxyProc, cf_emulator: Any, stream: bool) -> None:
    result, calls, client = asyncio.run(_autogen_run(proxy, stream))
    assert calls == ["Paris"]
    kinds = [type(m).__name__ for m in result.messages]
    assert "ToolCallRequestEvent" in kinds and "ToolCallExecutionEvent" in kinds
    assert result.messages[-1].content and client.total_usage().completion_tokens > 0


# -- LangChain ------------------------------------------------------------------------------------------------------
def test_langchain_chat_openai(proxy: _proxy_proc.ProxyProc, cf_emulator: Any) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    llm = ChatOpenAI(model=CHAT_MODEL, base_url=proxy.base_url, api_key=KEY, max_retries=0)  # type: ignore[arg-type]
    ans = llm.invoke("Tell me about Paris")
    assert "Paris" in str(ans.content) and ans.usage_metadata and ans.usage_metadata["output_tokens"] > 0
    streamed = list(ChatOpenAI(model=CHAT_MODEL, base_url=proxy.base_url, api_key=KEY,  # type: ignore[arg-type]
                               stream_usage=True).stream("Tell me about Paris"))
    assert "Paris" in "".join(str(c.content) for c in streamed)
    assert sum((c.usage_metadata or {}).get("output_tokens", 0) for c in streamed) == ans.usage_metadata["output_tokens"]
    call = llm.bind_tools([get_weather], tool_choice="required").invoke("What is the weather in Paris?")
    assert call.tool_calls[0]["name"] == "get_weather" and call.tool_calls[0]["args"] == {"city": "Paris"}
    city = llm.with_structured_output(City, method="json_schema").invoke("Describe Paris as JSON")
    assert isinstance(city, City) and city.name


def test_langchain_openai_embeddings(proxy: _proxy_proc.ProxyProc, cf_emulator: Any) -> None:
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(model="@cf/baai/bge-small-en-v1.5", base_url=proxy.base_url, api_key=KEY,  # type: ignore[arg-type]
                           check_embedding_ctx_length=False)  # no tiktoken download: the texts go as strings
    vecs = emb.embed_documents(["a b", "c d", "e"])
    assert len(vecs) == 3 and len(vecs[0]) == 384 and emb.embed_query("a b") == pytest.approx(vecs[0], rel=1e-5)


# -- LlamaIndex -----------------------------------------------------------------------------------------------------
def test_llamaindex_openai_like_and_embedding(proxy: _proxy_proc.ProxyProc, cf_emulator: Any) -> None:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.tools import FunctionTool
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model=TOOLS, api_base=proxy.base_url, api_key=KEY, is_chat_model=True,
                     is_function_calling_model=True, context_window=8000)
    out = llm.chat([ChatMessage(role="user", content="Tell me about Paris")])
    assert "Paris" in (out.message.content or "")
    streamed = "".join(r.delta or "" for r in llm.stream_chat([ChatMessage(role="user", content="Tell me about Paris")]))
    assert "Paris" in streamed

    def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    resp = llm.chat_with_tools([FunctionTool.from_defaults(fn=get_weather)], user_msg="What is the weather in Paris?",
                               tool_required=True)
    calls = llm.get_tool_calls_from_response(resp, error_on_no_tool_call=True)
    assert calls[0].tool_name == "get_weather" and calls[0].tool_kwargs == {"city": "Paris"}
    emb = OpenAIEmbedding(model_name="@cf/baai/bge-small-en-v1.5", api_base=proxy.base_url, api_key=KEY)
    vecs = emb.get_text_embedding_batch(["a b", "c d"])
    assert len(vecs) == 2 and len(vecs[0]) == 384
