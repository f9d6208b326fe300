"""CloudflareCostHandler: exact Decimal costs (tokens x catalog prices) for sync, async and streamed
calls, counted once; unknown prices are None plus a warning, never $0; a gateway cache HIT adds 0."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from cfgateway import ServerError, StreamInterrupted
from cfgateway.costs.catalog import default_catalog
from cfgateway.costs.ledger import UsageRecord
from cfgateway.emulator.config import Fault
from cfgateway.routing.routes import GatewayOptions
from llama_index_cfgateway import CloudflareCostHandler, CloudflareLLM

MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
USER = [ChatMessage(role="user", content="Hello there friend")]


def price(model: str, per_request: list[tuple[int, int]]) -> Decimal:
    info = default_catalog().get(model)
    assert info is not None and info.input_price is not None and info.output_price is not None
    return sum(((i * info.input_price + o * info.output_price) / Decimal(1_000_000) for i, o in per_request),
               Decimal(0))


def _llm(conn: Any, handler: CloudflareCostHandler, **kw: Any) -> CloudflareLLM:
    return CloudflareLLM(**{"model": MODEL, "callback_manager": CallbackManager([handler]), **conn(), **kw})


async def _async_calls(llm: CloudflareLLM) -> None:
    await llm.achat(USER)
    await llm.acomplete("Hello async")
    async for _ in await llm.astream_chat(USER):
        pass
    async for _ in await llm.astream_complete("Hello async stream"):
        pass


@pytest.mark.parametrize("model", [MODEL, "openai/gpt-4o-mini"])
def test_exact_costs_sync_async_stream(model: str, conn: Any, emu: Any, usage_of: Any) -> None:
    handler = CloudflareCostHandler()
    llm = _llm(lambda: conn(gateway=not model.startswith("@")), handler, model=model)
    llm.chat(USER)
    llm.complete("Hello sync")
    list(llm.stream_chat(USER))
    list(llm.stream_complete("Hello sync stream"))
    asyncio.run(_async_calls(llm))
    u = usage_of(emu)
    assert u.requests == 8 == handler.successful_requests and handler.failed_requests == 0
    assert handler.total_cost == handler.llm_cost == price(model, u.per_request)
    assert isinstance(handler.total_cost, Decimal) and handler.total_cost > 0
    assert (handler.prompt_tokens, handler.completion_tokens) == (u.prompt_tokens, u.completion_tokens)
    assert handler.total_tokens == u.prompt_tokens + u.completion_tokens
    provider = "workers-ai" if model.startswith("@") else "openai"
    line = handler.by_model[model]
    assert line.requests == 8 and line.cost == handler.total_cost and line.prompt_tokens == u.prompt_tokens
    assert handler.by_provider[provider].cost == handler.total_cost
    if provider == "workers-ai":
        assert handler.neurons > 0 and line.neurons == handler.neurons
    assert handler.unpriced_calls == 0


def test_unknown_price_is_none_and_warned_once(conn: Any, caplog: pytest.LogCaptureFixture) -> None:
    unpriced = "@cf/meta/llama-3.1-8b-instruct-fast"
    info = default_catalog().get(unpriced)
    assert info is not None and not info.priced  # known model, no published price
    handler = CloudflareCostHandler()
    llm = _llm(conn, handler, model=unpriced)
    with caplog.at_level(logging.WARNING, logger="llama_index_cfgateway.cost"):
        resp = llm.chat(USER)
        list(llm.stream_chat(USER))
    assert resp.additional_kwargs["cost"] is None
    assert handler.unpriced_calls == 2 and handler.successful_requests == 2
    assert handler.total_cost == Decimal(0) and handler.by_model[unpriced].cost is None
    assert handler.prompt_tokens > 0  # tokens still counted
    ours = [r for r in caplog.records if r.name == "llama_index_cfgateway.cost"]
    assert len(ours) == 1 and unpriced in ours[0].getMessage() and "not counted as $0" in ours[0].getMessage()


def test_gateway_cache_hit_adds_zero(conn: Any, emu: Any, usage_of: Any) -> None:
    handler = CloudflareCostHandler()
    llm = _llm(lambda: conn(gateway=True), handler, gateway_options=GatewayOptions(cache_ttl=300))
    first = llm.chat(USER)
    second = llm.chat(USER)
    assert first.additional_kwargs["gateway"].get("cache_status") != "HIT"
    assert second.additional_kwargs["gateway"]["cache_status"] == "HIT"
    assert second.additional_kwargs["cost"] == "0"
    u = usage_of(emu)
    assert handler.successful_requests == 2
    assert handler.total_cost == price(MODEL, u.per_request[:1]) > 0


def test_failures_are_counted_not_priced(conn: Any, emu: Any) -> None:
    handler = CloudflareCostHandler()
    llm = _llm(conn, handler, max_retries=0)
    emu.state.add_fault(Fault(kind="error", status=500, times=1))
    with pytest.raises(ServerError):
        llm.chat(USER)
    emu.state.add_fault(Fault(kind="drop_stream", after_chunks=2, times=1))
    with pytest.raises(StreamInterrupted):
        list(llm.stream_chat(USER))
    assert handler.failed_requests == 2 and handler.successful_requests == 0
    assert handler.total_cost == Decimal(0) and handler.unpriced_calls == 0
    llm.chat(USER)
    assert handler.successful_requests == 1 and handler.total_cost > 0


def test_threads_share_one_exact_tally(conn: Any, emu: Any, usage_of: Any) -> None:
    handler = CloudflareCostHandler()
    llm = _llm(conn, handler)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: llm.complete(f"question number {i}"), range(24)))
    u = usage_of(emu)
    assert handler.successful_requests == 24 and handler.total_cost == price(MODEL, u.per_request)


def _response(records: list[UsageRecord]) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role="assistant", content="x"),
                        additional_kwargs={"cfgateway_records": [r.to_dict() for r in records]})


def test_fallbacks_every_attempt_and_no_double_count() -> None:
    handler = CloudflareCostHandler()
    failed = UsageRecord(ts=1.0, model=MODEL, provider="workers-ai", operation="chat", outcome="CapacityError",
                         call_id="call-1")
    ok = UsageRecord(ts=1.0, model="openai/gpt-4o-mini", provider="openai", operation="chat", input_tokens=1000,
                     output_tokens=100, cost=Decimal("0.00021"), attempt=1, fallback=True, call_id="call-1")
    payload = {EventPayload.MESSAGES: [], EventPayload.RESPONSE: _response([failed, ok])}
    handler.on_event_end(CBEventType.LLM, payload, event_id="e1")
    handler.on_event_end(CBEventType.LLM, payload, event_id="e2")  # the same answer again: not counted twice
    assert (handler.successful_requests, handler.fallbacks, handler.total_cost) == (1, 1, Decimal("0.00021"))
    assert handler.by_model[MODEL].requests == 0 and handler.by_model["openai/gpt-4o-mini"].requests == 1
    handler.reset()
    assert handler.total_cost == 0 and handler.by_model == {}


class ForeignLLM(CustomLLM):
    """Another integration: reports usage the OpenAI way under its own model name."""

    name: str = "gpt-4o-mini-2024-07-18"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="ok", raw={"model": self.name,
                                                  "usage": {"prompt_tokens": 1000, "completion_tokens": 500}})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        yield self.complete(prompt)


def test_other_llms_are_priced_from_the_catalog(caplog: pytest.LogCaptureFixture) -> None:
    handler = CloudflareCostHandler()
    ForeignLLM(callback_manager=CallbackManager([handler])).complete("hi")
    assert handler.by_model["openai/gpt-4o-mini"].cost == Decimal("0.00045")  # 1000 x 0.15 + 500 x 0.60, per M
    assert handler.by_provider["openai"].requests == 1
    with caplog.at_level(logging.WARNING, logger="llama_index_cfgateway.cost"):
        ForeignLLM(name="my-local-model", callback_manager=CallbackManager([handler])).complete("hi")
    assert handler.by_model["my-local-model"].cost is None and handler.unpriced_calls == 1
    assert handler.total_cost == Decimal("0.00045") and "my-local-model" in caplog.text


def test_a_wrapper_llm_is_not_counted_twice(conn: Any, emu: Any, caplog: pytest.LogCaptureFixture) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    handler = CloudflareCostHandler()
    llm = _llm(conn, handler)
    structured = llm.as_structured_llm(City)  # emits its own LLM events around the inner call
    structured.callback_manager = llm.callback_manager  # as Settings.callback_manager would
    with caplog.at_level(logging.WARNING, logger="llama_index_cfgateway.cost"):
        out = structured.chat([ChatMessage(role="user", content="The city is named 'Paris' and has 2100000 people")])
    assert out.raw == City(name="Paris", population=2100000)
    assert len(emu.state.requests) == 1
    assert handler.successful_requests == 1 and handler.unpriced_calls == 0 and not caplog.records
    assert handler.by_model[MODEL].requests == 1 and set(handler.by_model) == {MODEL}
