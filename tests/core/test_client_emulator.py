"""The core client against the emulator: every route kind × sync/async × stream/non-stream, and faults."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _emu import emulator_fixtures

from cfgateway import ChatRequest, Client, GatewayOptions, Message, ToolSpec, errors
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer

GW_TOKEN = "gw-token-secret"
API_TOKEN = "api-token-secret"


server, emu = emulator_fixtures(EmulatorConfig(api_token=API_TOKEN, gateways={"gw": GatewayConfig(auth_token=GW_TOKEN)}))


def make(emu: EmulatorServer, model: str, *, gateway: bool = False, **kw: Any) -> Client:
    extra: dict[str, Any] = {"gateway_id": "gw", "gateway_token": GW_TOKEN} if gateway else {}
    extra.update(kw)
    extra.setdefault("max_retries", 2)
    return Client(model, account_id="acct", api_token=API_TOKEN, base_url=emu.base_url,
                  gateway_base_url=emu.gateway_base_url, **extra)


ROUTES = [
    pytest.param("@cf/meta/llama-3.3-70b-instruct-fp8-fast", {}, "/ai/run/@cf/meta/llama-3.3", id="native-legacy"),
    pytest.param("@cf/qwen/qwen3-30b-a3b-fp8", {}, "/ai/run/@cf/qwen/qwen3-30b-a3b-fp8", id="native-openai-shape"),
    # gpt-oss does not stream on /ai/run: its streams are one non-streamed call (test_one_piece_stream.py)
    pytest.param("@cf/openai/gpt-oss-120b", {}, "/ai/run/@cf/openai/gpt-oss-120b", id="native-gpt-oss"),
    pytest.param("@cf/meta/llama-3.1-8b-instruct", {"endpoint": "openai"}, "/ai/v1/chat/completions", id="ai-v1"),
    pytest.param("@cf/meta/llama-3.1-8b-instruct", {"gateway": True}, "/gw/workers-ai/@cf/", id="gateway-workers-ai"),
    pytest.param("openai/gpt-4o-mini", {"gateway": True}, "/gw/openai/chat/completions", id="gateway-openai"),
    pytest.param("anthropic/claude-sonnet-4-5", {"gateway": True}, "/gw/anthropic/v1/messages", id="gateway-anthropic"),
    pytest.param("groq/llama-3.1-8b-instant", {"gateway": True, "endpoint": "compat"}, "/gw/compat/chat/completions",
                 id="compat"),
]

PROMPT = ChatRequest([Message("system", "Be brief."), Message("user", "Tell me about Paris")], max_tokens=50)


@pytest.mark.parametrize(("model", "kw", "path"), ROUTES)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_chat_every_route(emu: EmulatorServer, model: str, kw: dict[str, Any], path: str, mode: str) -> None:
    c = make(emu, model, **kw)
    r = c.chat(PROMPT) if mode == "sync" else asyncio.run(c.achat(PROMPT))
    assert "Paris" in r.text and r.model == model and r.usage and r.usage.output_tokens > 0
    assert r.finish_reason in ("stop", "length")
    assert len(emu.state.requests) == 1 and path in emu.state.requests[0].path
    if kw.get("gateway"):
        assert r.gateway.log_id  # the gateway's response headers are parsed
        assert emu.state.requests[0].headers["cf-aig-authorization"] == f"Bearer {GW_TOKEN}"


@pytest.mark.parametrize(("model", "kw", "path"), ROUTES)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_stream_every_route(emu: EmulatorServer, model: str, kw: dict[str, Any], path: str, mode: str) -> None:
    c = make(emu, model, **kw)
    if mode == "sync":
        chunks = list(c.stream(PROMPT))
    else:
        async def collect() -> list[Any]:
            return [ch async for ch in c.astream(PROMPT)]
        chunks = asyncio.run(collect())
    text = "".join(ch.text for ch in chunks)
    assert text == c.chat(PROMPT).text  # streaming and invoke agree
    assert chunks[-1].final and chunks[-1].usage and chunks[-1].usage.output_tokens > 0
    assert all(ch.usage is None for ch in chunks[:-1])
    assert chunks[-1].model == model


@pytest.mark.parametrize(("model", "kw", "path"), ROUTES)
def test_tool_calls_every_route(emu: EmulatorServer, model: str, kw: dict[str, Any], path: str) -> None:
    tool = ToolSpec("get_weather", "Weather for a city", {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    req = ChatRequest([Message("user", "What is the weather in Paris? Use the tool.")], tools=[tool],
                      tool_choice="required")
    c = make(emu, model, **kw)
    r = c.chat(req)
    assert [(t.name, t.arguments) for t in r.tool_calls] == [("get_weather", {"city": "Paris"})]
    chunks = list(c.stream(req))
    names = [tc.name for ch in chunks for tc in ch.tool_call_chunks if tc.name]
    args = "".join(tc.arguments for ch in chunks for tc in ch.tool_call_chunks)
    assert names == ["get_weather"] and args.replace(" ", "") == '{"city":"Paris"}'


EMBED_ROUTES = [
    pytest.param("@cf/baai/bge-base-en-v1.5", {}, 768, id="native-bge"),
    pytest.param("@cf/baai/bge-small-en-v1.5", {"endpoint": "openai"}, 384, id="ai-v1"),
    pytest.param("@cf/qwen/qwen3-embedding-0.6b", {"gateway": True}, 1024, id="gateway-workers-ai"),
    pytest.param("openai/text-embedding-3-small", {"gateway": True}, 1536, id="gateway-openai"),
    pytest.param("custom-deepinfra/Qwen/Qwen3-Embedding-8B", {"gateway": True}, 4096, id="deepinfra"),
]


@pytest.mark.parametrize(("model", "kw", "dims"), EMBED_ROUTES)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_embed_every_route(emu: EmulatorServer, model: str, kw: dict[str, Any], dims: int, mode: str) -> None:
    c = make(emu, model, **kw)
    texts = ["the cat sat", "the cat sat on the mat", "quantum chromodynamics"]
    r = c.embed(texts) if mode == "sync" else asyncio.run(c.aembed(texts))
    assert len(r.vectors) == 3 and all(len(v) == dims for v in r.vectors)
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert dot(r.vectors[0], r.vectors[1]) > dot(r.vectors[0], r.vectors[2])


def test_embed_batches_at_model_limit_concurrently_in_order(emu: EmulatorServer) -> None:
    c = make(emu, "@cf/qwen/qwen3-embedding-0.6b")
    texts = [f"text number {i}" for i in range(70)]
    r = c.embed(texts)
    assert len(emu.state.requests) == 3  # 32 + 32 + 6
    single = c.embed(["text number 69"]).vectors[0]
    assert r.vectors[69] == single and len(r.records) == 3
    emu.state.clear()
    r2 = asyncio.run(c.aembed(texts, max_concurrency=2))
    assert r2.vectors == r.vectors and len(emu.state.requests) == 3


def test_gateway_cache_hit_and_options(emu: EmulatorServer) -> None:
    c = make(emu, "openai/gpt-4o-mini", gateway=True, gateway_options=GatewayOptions(cache_ttl=300, metadata={"app": "t"}))
    first, second = c.chat(PROMPT), c.chat(PROMPT)
    assert first.gateway.cache_status == "MISS" and second.gateway.cache_status == "HIT"
    assert second.cost == 0 and first.cost and first.cost > 0
    assert emu.state.requests[0].headers["cf-aig-cache-ttl"] == "300"


def test_gateway_cache_hits_record_no_neurons(emu: EmulatorServer) -> None:
    """1 MISS + 3 HITs of a Workers AI model through the gateway: the neurons are the MISS's alone."""
    from cfgateway import CostTracker
    from cfgateway.costs.ledger import MemoryLedger

    tracker = CostTracker(MemoryLedger())
    c = make(emu, "@cf/meta/llama-3.1-8b-instruct", gateway=True, gateway_options=GatewayOptions(cache_ttl=300),
             tracker=tracker)
    answers = [c.chat(PROMPT) for _ in range(4)]
    assert [a.gateway.cache_status for a in answers] == ["MISS", "HIT", "HIT", "HIT"]
    records = tracker.ledger.records()
    assert answers[0].usage and answers[0].usage.neurons
    assert [r.neurons for r in records[1:]] == [0.0, 0.0, 0.0]
    assert sum(r.neurons or 0 for r in records) == pytest.approx(answers[0].usage.neurons)


def test_bad_tokens_are_typed_errors(emu: EmulatorServer) -> None:
    with pytest.raises(errors.AuthenticationError) as info:
        Client("@cf/meta/llama-3.1-8b-instruct", account_id="acct", api_token="wrong", base_url=emu.base_url).chat(PROMPT)
    assert info.value.code == 10000 and "wrong" not in str(info.value)
    with pytest.raises(errors.AuthenticationError) as gw:
        make(emu, "openai/gpt-4o-mini", gateway=True, gateway_token="bad-gw").chat(PROMPT)
    assert gw.value.code == 2009


def test_unknown_model_is_not_found(emu: EmulatorServer) -> None:
    with pytest.raises(errors.NotFoundError, match="5007|No such model"):
        make(emu, "@cf/meta/no-such-model").chat(PROMPT)


# -- faults ---------------------------------------------------------------------------------
RETRIED = [
    pytest.param(Fault(path="*/ai/run/*", kind="error", status=429, code=3040, retry_after=0.05, times=1), id="429-retry-after"),
    pytest.param(Fault(path="*/ai/run/*", kind="error", status=429, code=3040, times=1), id="3040"),
    pytest.param(Fault(path="*/ai/run/*", kind="error", status=500, times=1), id="500"),
    pytest.param(Fault(path="*/ai/run/*", kind="html", times=1), id="502-html"),
]


@pytest.mark.parametrize("fault", RETRIED)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_retryable_faults_are_retried(emu: EmulatorServer, fault: Fault, mode: str) -> None:
    emu.state.add_fault(fault)
    c = make(emu, "@cf/meta/llama-3.1-8b-instruct")
    r = c.chat(PROMPT) if mode == "sync" else asyncio.run(c.achat(PROMPT))
    assert "Paris" in r.text and len(emu.state.requests) == 2


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_slow_first_byte_is_a_timeout_within_the_deadline(emu: EmulatorServer, mode: str) -> None:
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="delay", delay_s=2.0))
    c = make(emu, "@cf/meta/llama-3.1-8b-instruct", timeout=0.3, max_retries=0)
    start = time.monotonic()
    with pytest.raises(errors.TimeoutError):
        if mode == "sync":
            c.chat(PROMPT)
        elif mode == "async":
            asyncio.run(c.achat(PROMPT))
        else:
            list(c.stream(PROMPT))
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_drop_mid_stream_after_first_chunk_is_stream_interrupted(emu: EmulatorServer, mode: str) -> None:
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="drop_stream", after_chunks=2))
    c = make(emu, "@cf/meta/llama-3.1-8b-instruct")
    got: list[str] = []

    async def consume() -> None:
        async for ch in c.astream(PROMPT):
            got.append(ch.text)

    with pytest.raises(errors.StreamInterrupted) as info:
        if mode == "sync":
            for ch in c.stream(PROMPT):
                got.append(ch.text)
        else:
            asyncio.run(consume())
    assert got and info.value.text == "".join(got)
    assert len(emu.state.requests) == 1  # never retried after the first chunk


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_2xx_body_that_breaks_off_is_not_re_sent(emu: EmulatorServer, mode: str) -> None:
    """Issue 10 §11: the answer began (and may have been billed): no second POST to the same route."""
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="drop_body", times=1))
    c = make(emu, "@cf/meta/llama-3.1-8b-instruct", max_retries=2)
    with pytest.raises(errors.IncompleteResponseError, match="may have been billed") as got:
        c.chat(PROMPT) if mode == "sync" else asyncio.run(c.achat(PROMPT))
    assert len(emu.state.requests) == 1 and isinstance(got.value, errors.ConnectionError)
    assert [r.outcome for r in got.value.records] == ["IncompleteResponseError"]


def test_re_sending_after_a_broken_2xx_is_an_option(emu: EmulatorServer) -> None:
    from cfgateway.http.transport import RetryPolicy, Transport

    emu.state.add_fault(Fault(path="*/ai/run/*", kind="drop_body", times=1))
    t = Transport(policy=RetryPolicy(max_retries=2, retry_incomplete=True, backoff_base=0.01))
    assert "Paris" in make(emu, "@cf/meta/llama-3.1-8b-instruct", transport=t).chat(PROMPT).text
    assert len(emu.state.requests) == 2


@pytest.mark.parametrize(("status", "code", "cls"), [(429, 3040, errors.CapacityError), (500, None, errors.ServerError),
                                                     (503, None, errors.ServerError)])
def test_error_event_mid_stream_is_typed_by_its_own_code(emu: EmulatorServer, status: int, code: int | None,
                                                         cls: type) -> None:
    """Issue 10 §12: an error event after the first chunks raises a StreamInterrupted-family error saying after
    how many chunks, carrying the typed error of the event (not a BadRequestError)."""
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="stream_error", status=status, code=code, after_chunks=3))
    with pytest.raises(errors.MidStreamError, match="after 3 chunks") as got:
        list(make(emu, "@cf/meta/llama-3.1-8b-instruct").stream(PROMPT))
    err = got.value
    assert isinstance(err, errors.StreamInterrupted) and isinstance(err.error, cls) and err.chunks == 3
    assert not isinstance(err.error, errors.BadRequestError) and err.text and err.records[0].stream_complete is False


def test_error_event_before_the_first_chunk_is_the_typed_error(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="stream_error", status=429, code=3040, after_chunks=0))
    with pytest.raises(errors.CapacityError):
        list(make(emu, "@cf/meta/llama-3.1-8b-instruct", max_retries=0).stream(PROMPT))


def test_malformed_json_and_bad_input_are_not_retried(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="malformed", times=1))
    c = make(emu, "@cf/meta/llama-3.1-8b-instruct")
    with pytest.raises(errors.MalformedResponseError):
        c.chat(PROMPT)
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="error", status=400, code=5006, message="AiError: Bad input", times=1))
    with pytest.raises(errors.BadRequestError):
        c.chat(PROMPT)
    assert len(emu.state.requests) == 2


def test_persistent_capacity_error_gives_up_after_retries(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(path="*/ai/run/*", kind="error", status=429, code=3040))
    with pytest.raises(errors.CapacityError):
        make(emu, "@cf/meta/llama-3.1-8b-instruct", max_retries=2).chat(PROMPT)
    assert len(emu.state.requests) == 3


def test_user_prices_are_used_and_sent_as_custom_cost(emu: EmulatorServer) -> None:
    from decimal import Decimal

    from cfgateway import load_catalog

    catalog = load_catalog().extended({"models": {"openai/gpt-4o-mini": {"kind": "chat", "input": "1", "output": "2"}}})
    c = make(emu, "openai/gpt-4o-mini", gateway=True, catalog=catalog)
    r = c.chat(PROMPT)
    u = r.usage
    assert u is not None and r.cost == (Decimal(u.input_tokens) * 1 + Decimal(u.output_tokens) * 2) / Decimal(10**6)
    sent = emu.state.requests[0].headers["cf-aig-custom-cost"]
    assert sent == '{"per_token_in":0.000001,"per_token_out":0.000002}'
    make(emu, "openai/gpt-4o-mini", gateway=True).chat(PROMPT)
    assert "cf-aig-custom-cost" not in emu.state.requests[1].headers  # shipped prices: the gateway knows them
