"""get_cloudflare_callback / CloudflareCostCallbackHandler: exact Decimal totals for sync, async and streamed
calls, unknown prices, gateway cache hits, other providers' models, failures, threads."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from cfgateway import GatewayOptions, ServerError
from cfgateway.costs.catalog import default_catalog
from cfgateway.emulator.config import Fault
from cfgateway.emulator.server import EmulatorServer
from langchain_cfgateway import ChatCloudflare, CloudflareCostCallbackHandler, get_cloudflare_callback
from langchain_cfgateway.callbacks import catalog_name

LEGACY = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
GATEWAY = "openai/gpt-4o-mini"
UNPRICED = "@hf/nousresearch/hermes-2-pro-mistral-7b"
M = Decimal(1_000_000)


def expected_cost(model: str, msg: Any) -> Decimal:
    info = default_catalog().get(model)
    assert info is not None and info.input_price is not None and info.output_price is not None
    u = msg.usage_metadata
    return (u["input_tokens"] * info.input_price + u["output_tokens"] * info.output_price) / M


def _sum(chunks: list[Any]) -> Any:
    return sum(chunks[1:], chunks[0])


async def _astream(llm: ChatCloudflare, q: str) -> Any:
    return _sum([c async for c in llm.astream(q)])


@pytest.mark.parametrize(("model", "gw"), [(LEGACY, False), (GATEWAY, True)])
def test_exact_decimal_totals_for_sync_async_and_streamed_calls(conn: Any, model: str, gw: bool) -> None:
    llm = ChatCloudflare(model=model, **conn(gateway=gw))
    with get_cloudflare_callback() as cb:
        msgs = [
            llm.invoke("Tell me about Paris"),
            asyncio.run(llm.ainvoke("Tell me about Rome in two words")),
            _sum(list(llm.stream("Tell me a story about the sea"))),
            asyncio.run(_astream(llm, "Why is the sky blue?")),
        ]
    want = sum((expected_cost(model, m) for m in msgs), Decimal(0))
    assert isinstance(cb.total_cost, Decimal) and cb.total_cost == want and want > 0
    assert cb.successful_requests == 4 and cb.failed_requests == 0 and cb.unpriced_calls == 0
    assert cb.prompt_tokens == sum(m.usage_metadata["input_tokens"] for m in msgs)
    assert cb.completion_tokens == sum(m.usage_metadata["output_tokens"] for m in msgs)
    assert cb.total_tokens == cb.prompt_tokens + cb.completion_tokens
    line = cb.by_model[model]
    assert (line.requests, line.cost) == (4, want)
    assert cb.by_provider["workers-ai" if not gw else "openai"].cost == want
    assert sum((Decimal(m.response_metadata["cost"]) for m in msgs), Decimal(0)) == want
    if not gw:
        assert cb.neurons > 0


def test_calls_outside_the_block_are_not_counted(conn: Any) -> None:
    llm = ChatCloudflare(model=LEGACY, **conn())
    with pytest.raises(RuntimeError), get_cloudflare_callback() as cb:
        llm.invoke("hi")
        raise RuntimeError("boom")
    llm.invoke("hi again")
    assert cb.successful_requests == 1
    with get_cloudflare_callback() as outer:
        llm.invoke("a")
        with get_cloudflare_callback() as inner:
            llm.invoke("b")
    assert (outer.successful_requests, inner.successful_requests) == (1, 1)


def test_unknown_price_is_none_with_a_warning_never_zero(conn: Any, caplog: pytest.LogCaptureFixture) -> None:
    llm = ChatCloudflare(model=UNPRICED, **conn())
    priced = ChatCloudflare(model=LEGACY, **conn())
    with caplog.at_level(logging.WARNING, logger="langchain_cfgateway.cost"), get_cloudflare_callback() as cb:
        msg = llm.invoke("hi")
        ok = priced.invoke("hi")
    assert msg.response_metadata["cost"] is None
    assert cb.unpriced_calls == 1 and cb.by_model[UNPRICED].cost is None
    assert cb.total_cost == expected_cost(LEGACY, ok)  # the priced part only
    assert any(UNPRICED in r.getMessage() and "unknown" in r.getMessage() for r in caplog.records)
    assert "unpriced" in repr(cb)


def test_gateway_cache_hit_adds_zero(emu: EmulatorServer, conn: Any) -> None:
    llm = ChatCloudflare(model=GATEWAY, gateway_options=GatewayOptions(cache_ttl=60), **conn(gateway=True))
    with get_cloudflare_callback() as cb:
        first = llm.invoke("What is the capital of France?")
        second = llm.invoke("What is the capital of France?")
    assert second.response_metadata["gateway"]["cache_status"] == "HIT"
    assert second.response_metadata["cost"] == "0"
    assert cb.total_cost == expected_cost(GATEWAY, first) > 0
    assert cb.successful_requests == 2


def test_failed_requests_are_counted(emu: EmulatorServer, conn: Any) -> None:
    emu.state.add_fault(Fault(path="*", kind="error", status=500, times=None))
    llm = ChatCloudflare(model=LEGACY, max_retries=0, **conn())
    with get_cloudflare_callback() as cb:
        with pytest.raises(ServerError):
            llm.invoke("hi")
        with pytest.raises(ServerError):
            list(llm.stream("hi"))
    assert (cb.failed_requests, cb.successful_requests, cb.total_cost) == (2, 0, Decimal(0))


def test_batch_in_threads_counts_every_call(conn: Any) -> None:
    llm = ChatCloudflare(model=LEGACY, **conn())
    with get_cloudflare_callback() as cb:
        results = llm.batch([f"question {i}" for i in range(24)], config={"max_concurrency": 8})
    assert cb.successful_requests == 24
    assert cb.total_cost == sum((expected_cost(LEGACY, m) for m in results), Decimal(0))


def test_llm_cache_replays_are_not_counted_twice(conn: Any) -> None:
    llm = ChatCloudflare(model=LEGACY, cache=InMemoryCache(), **conn())
    with get_cloudflare_callback() as cb:
        a = llm.invoke("cache me")
        llm.invoke("cache me")
    assert cb.successful_requests == 1 and cb.total_cost == expected_cost(LEGACY, a)


def test_a_handler_passed_directly(conn: Any) -> None:
    handler = CloudflareCostCallbackHandler()
    llm = ChatCloudflare(model=LEGACY, callbacks=[handler], **conn())
    msg = llm.invoke("hi")
    assert handler.successful_requests == 1 and handler.total_cost == expected_cost(LEGACY, msg)


class FakeOpenAIChat(BaseChatModel):
    """Stands in for ChatOpenAI: reports usage_metadata and the provider's dated model id."""

    @property
    def _llm_type(self) -> str:
        return "fake-openai"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider="openai", ls_model_name="gpt-4o-mini", ls_model_type="chat")

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        msg = AIMessage("hi", response_metadata={"model_name": "gpt-4o-mini-2024-07-18"},
                        usage_metadata={"input_tokens": 1000, "output_tokens": 200, "total_tokens": 1200,
                                        "input_token_details": {"cache_read": 100}})
        return ChatResult(generations=[ChatGeneration(message=msg)])


def test_other_providers_models_are_priced_from_the_catalog() -> None:
    with get_cloudflare_callback() as cb:
        FakeOpenAIChat().invoke("hi")
        asyncio.run(FakeOpenAIChat().ainvoke("hi"))
    one = (900 * Decimal("0.15") + 100 * Decimal("0.075") + 200 * Decimal("0.60")) / M
    assert cb.total_cost == 2 * one
    assert cb.by_model["openai/gpt-4o-mini"].requests == 2 and cb.cached_tokens == 200
    assert cb.by_provider["openai"].cost == 2 * one


@pytest.mark.parametrize(
    ("name", "provider", "expected"),
    [
        ("gpt-4o-mini", "openai", "openai/gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", None, "openai/gpt-4o-mini"),
        ("claude-haiku-4-5-20251001", "anthropic", "anthropic/claude-haiku-4-5"),
        ("@cf/openai/gpt-oss-120b", None, "@cf/openai/gpt-oss-120b"),
        ("mistral-small-latest", "mistralai", "mistral/mistral-small-latest"),
        ("no-such-model", "openai", None),
    ],
)
def test_catalog_name(name: str, provider: str | None, expected: str | None) -> None:
    assert catalog_name(name, provider, default_catalog()) == expected
