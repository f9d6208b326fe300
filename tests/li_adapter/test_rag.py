"""Acceptance: LlamaIndex's own engines and agents on CloudflareLLM + CloudflareEmbedding (via Settings),
against the emulator. For every scenario: chat requests the emulator saw == LLM end events
(instrumentation and callback manager) == TokenCountingHandler entries, and TokenCountingHandler's
counts == the usage the emulator reported (recomputed from the request log), and the cost handler
agrees to the exact Decimal."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from llama_index.core import Document, PromptTemplate, Settings, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.callbacks import CallbackManager
from pydantic import BaseModel

from cfgateway.costs.catalog import default_catalog
from llama_index_cfgateway import CloudflareCostHandler, CloudflareEmbedding, CloudflareLLM

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
DOCS = [
    "Paris is the capital of France and sits on the Seine.",
    "Berlin is the capital of Germany.",
    "Workers AI bills in neurons: $0.011 per 1,000 neurons.",
    "AI Gateway caches responses and logs every request.",
    "Vectorize stores embeddings from bge models.",
]


class City(BaseModel):
    """A city and how many people live there."""

    name: str
    population: int


def multiply(a: int, b: int) -> int:
    """Multiply two whole numbers."""
    return a * b


@pytest.fixture()
def rag(conn: Any, emu: Any, llm_events: Any, llm_callbacks: Any, token_counter: Any) -> SimpleNamespace:
    cost = CloudflareCostHandler()
    Settings.callback_manager = CallbackManager([token_counter, llm_callbacks, cost])
    Settings.llm = CloudflareLLM(model=MODEL, **conn())
    Settings.embed_model = CloudflareEmbedding(**conn())
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS])
    return SimpleNamespace(index=index, emu=emu, events=llm_events, callbacks=llm_callbacks, tokens=token_counter,
                           cost=cost)


def check(rag: SimpleNamespace, usage_of: Any, calls: int) -> None:
    u = usage_of(rag.emu)
    assert u.requests == calls
    assert rag.events.starts == rag.events.ends == calls
    assert rag.callbacks.starts == rag.callbacks.ends == calls
    counts = rag.tokens.llm_token_counts
    assert len(counts) == calls
    assert [(c.prompt_token_count, c.completion_token_count) for c in counts] == u.per_request
    assert rag.tokens.prompt_llm_token_count == u.prompt_tokens
    assert rag.tokens.completion_llm_token_count == u.completion_tokens
    info = default_catalog().get(MODEL)
    assert info is not None and info.input_price is not None and info.output_price is not None
    expected = (u.prompt_tokens * info.input_price + u.completion_tokens * info.output_price) / Decimal(1_000_000)
    assert rag.cost.successful_requests == calls and rag.cost.failed_requests == 0
    assert (rag.cost.prompt_tokens, rag.cost.completion_tokens) == (u.prompt_tokens, u.completion_tokens)
    assert rag.cost.llm_cost == expected and rag.cost.unpriced_calls == 0


def test_query_engine_sync(rag: SimpleNamespace, usage_of: Any) -> None:
    response = rag.index.as_query_engine(similarity_top_k=2).query("What is the capital of France?")
    assert "capital of France" in str(response)
    assert response.source_nodes and "Paris" in response.source_nodes[0].node.get_content()
    check(rag, usage_of, 1)


def test_query_engine_async(rag: SimpleNamespace, usage_of: Any) -> None:
    response = asyncio.run(rag.index.as_query_engine(similarity_top_k=2).aquery("capital of Germany?"))
    assert "capital of Germany" in str(response)
    check(rag, usage_of, 1)


def test_query_engine_streaming(rag: SimpleNamespace, usage_of: Any) -> None:
    response = rag.index.as_query_engine(streaming=True, similarity_top_k=2).query("How are neurons billed?")
    pieces = list(response.response_gen)
    assert len(pieces) > 3 and "neurons" in "".join(pieces)
    check(rag, usage_of, 1)


def test_query_engine_async_streaming(rag: SimpleNamespace, usage_of: Any) -> None:
    async def run() -> str:
        response = await rag.index.as_query_engine(streaming=True).aquery("What does AI Gateway do?")
        return "".join([t async for t in response.async_response_gen()])

    assert "AI Gateway" in asyncio.run(run())
    check(rag, usage_of, 1)


def test_chat_engine_condense_plus_context_sync(rag: SimpleNamespace, usage_of: Any) -> None:
    engine = rag.index.as_chat_engine(chat_mode="condense_plus_context")
    first = engine.chat("Tell me about Paris")
    second = engine.chat("And what about Berlin?")  # history: one condense call + one answer
    assert "Paris" in str(first) and "Berlin" in str(second)
    check(rag, usage_of, 3)


def test_chat_engine_condense_plus_context_streaming(rag: SimpleNamespace, usage_of: Any) -> None:
    engine = rag.index.as_chat_engine(chat_mode="condense_plus_context")
    streamed = engine.stream_chat("Tell me about Paris")
    assert "Paris" in "".join(streamed.response_gen)
    check(rag, usage_of, 1)


def test_chat_engine_condense_plus_context_async_streaming(rag: SimpleNamespace, usage_of: Any) -> None:
    engine = rag.index.as_chat_engine(chat_mode="condense_plus_context")

    async def run() -> list[str]:
        out = []
        for question in ("Tell me about Paris", "And Berlin?"):
            streamed = await engine.astream_chat(question)
            out.append("".join([t async for t in streamed.async_response_gen()]))
        return out

    answers = asyncio.run(run())
    assert "Paris" in answers[0] and "Berlin" in answers[1]
    check(rag, usage_of, 3)


@pytest.mark.parametrize("streaming", [True, False])
def test_function_agent_calls_a_python_tool(rag: SimpleNamespace, usage_of: Any, streaming: bool) -> None:
    calls: list[tuple[int, int]] = []

    def tracked_multiply(a: int, b: int) -> int:
        """Multiply two whole numbers."""
        calls.append((a, b))
        return multiply(a, b)

    agent = FunctionAgent(tools=[tracked_multiply], llm=Settings.llm, streaming=streaming)

    async def run() -> Any:
        return await agent.run("Use the tracked_multiply tool to multiply 6 and 7")

    result = asyncio.run(run())
    assert calls == [(6, 7)]
    assert "42" in str(result)
    assert [t.tool_name for t in result.tool_calls] == ["tracked_multiply"]
    tool_turn = rag.emu.state.requests[-1].json["messages"]
    assert [m["role"] for m in tool_turn] == ["user", "assistant", "tool"]
    assert tool_turn[1]["tool_calls"][0]["id"] == tool_turn[2]["tool_call_id"]
    check(rag, usage_of, 2)


def test_structured_predict_into_a_pydantic_model(rag: SimpleNamespace, usage_of: Any) -> None:
    prompt = PromptTemplate("The city is named 'Paris' and has {n} people.")
    city = Settings.llm.structured_predict(City, prompt, n=2100000)
    assert city == City(name="Paris", population=2100000)
    body = rag.emu.state.requests[-1].json
    assert body["tool_choice"] == "required" and body["tools"][0]["function"]["name"] == "City"
    check(rag, usage_of, 1)


def test_astructured_predict(rag: SimpleNamespace, usage_of: Any) -> None:
    prompt = PromptTemplate("The city is named 'Lyon' and has {n} people.")
    city = asyncio.run(Settings.llm.astructured_predict(City, prompt, n=520000))
    assert city == City(name="Lyon", population=520000)
    check(rag, usage_of, 1)
