"""Fallback chains against the emulator: cooling, sharing, context length, auth, embeddings, routing, ledger."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from _emu import emulator_fixtures

from cfgateway import CallContext, ChatRequest, Client, CostTracker, Message, errors
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import AllRoutesFailed, FallbackChain, Rollout, TierRule, build_client
from cfgateway.http.transport import RetryPolicy, Transport
from cfgateway.routing.breaker import CircuitBreaker

API_TOKEN = "test-token"
GW_TOKEN = "gw-token"
P = "@cf/meta/llama-3.1-8b-instruct"
F = "openai/gpt-4o-mini"
PROMPT = ChatRequest([Message("user", "Tell me about Paris")], max_tokens=40)
FAST = RetryPolicy(max_retries=0)


server, emu = emulator_fixtures(EmulatorConfig(api_token=API_TOKEN, gateways={"gw": GatewayConfig(auth_token=GW_TOKEN)}))


def conn(emu: EmulatorServer, **kw: Any) -> dict[str, Any]:
    base = {"account_id": "acct", "api_token": API_TOKEN, "gateway_id": "gw", "gateway_token": GW_TOKEN,
            "base_url": emu.base_url, "gateway_base_url": emu.gateway_base_url, "timeout": 0.5}
    return {**base, **kw}


def chain(emu: EmulatorServer, model: str = P, fallbacks: list[str] | None = None, **kw: Any) -> FallbackChain:
    kw.setdefault("retry_policy", FAST)
    c = build_client(model, [F] if fallbacks is None else fallbacks, **conn(emu, **kw))
    assert isinstance(c, FallbackChain)
    return c


def paths(emu: EmulatorServer) -> list[str]:
    return [r.path.rsplit("/gw/", 1)[-1] if "/gw/" in r.path else r.path for r in emu.state.requests]


# -- circuit breaker ----------------------------------------------------------------------------------
def test_cooled_down_route_is_skipped_then_probed_and_closed(emu: EmulatorServer) -> None:
    c = chain(emu, failure_threshold=2, cooldown=0.3)
    emu.state.add_fault(Fault("*/workers-ai/*", "error", status=500))
    for _ in range(2):
        assert c.chat(PROMPT).model == F
    assert c.breaker is not None and c.breaker.state(P) == "open"
    emu.state.clear_requests()
    r = c.chat(PROMPT)
    assert r.model == F and paths(emu) == ["openai/chat/completions"]  # nothing sent to the open route
    assert (r.attempts[0].model, r.attempts[0].outcome) == (P, "circuit_open") and len(r.records) == 1
    emu.state.clear_faults()
    time.sleep(0.35)
    emu.state.clear_requests()
    assert c.chat(PROMPT).model == P  # the half-open probe succeeds
    assert paths(emu) == [f"workers-ai/{P}"] and c.breaker.state(P) == "closed"


def test_open_route_skipped_by_concurrent_threads_and_tasks(emu: EmulatorServer) -> None:
    breaker = CircuitBreaker(1, 30)
    breaker.failure(P)
    c = chain(emu, breaker=breaker)
    with ThreadPoolExecutor(8) as pool:
        models = list(pool.map(lambda _: c.chat(PROMPT).model, range(16)))

    async def tasks() -> list[str]:
        return [r.model for r in await asyncio.gather(*(c.achat(PROMPT) for _ in range(16)))]

    models += asyncio.run(tasks())
    assert set(models) == {F} and len(emu.state.requests) == 32
    assert all("/openai/" in r.path for r in emu.state.requests)


def test_breaker_shared_between_chains_by_name(emu: EmulatorServer) -> None:
    from cfgateway.routing.breaker import reset_shared_breakers

    reset_shared_breakers()
    a = chain(emu, breaker="team", failure_threshold=1)
    b = chain(emu, breaker="team", failure_threshold=1)
    emu.state.add_fault(Fault("*/workers-ai/*", "error", status=503))
    assert a.chat(PROMPT).model == F
    emu.state.clear_requests()
    assert b.chat(PROMPT).model == F and paths(emu) == ["openai/chat/completions"]
    reset_shared_breakers()


# -- error classification against real answers -------------------------------------------------------
def test_context_length_falls_back_to_a_larger_window_only(emu: EmulatorServer) -> None:
    small, big = "@cf/mistral/mistral-7b-instruct-v0.1", "@cf/meta/llama-3.1-8b-instruct-fp8"
    c = chain(emu, P, [small, big])
    long = ChatRequest([Message("user", "word " * 9000)], max_tokens=10)
    r = c.chat(long)
    assert r.model == big
    assert [(a.model, a.outcome) for a in r.attempts] == [
        (P, "ContextLengthExceededError"), (small, "context_window"), (big, "ok")]
    assert paths(emu) == [f"workers-ai/{P}", f"workers-ai/{big}"]


def test_auth_failure_falls_back_only_to_other_credentials(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*/workers-ai/@cf/meta/llama-3.1-8b-instruct", "error", status=401))
    assert chain(emu).chat(PROMPT).model == F  # Workers AI token refused; OpenAI key is the gateway's
    emu.state.clear_requests()
    same = chain(emu, P, ["@cf/meta/llama-3.1-8b-instruct-fp8"])
    with pytest.raises(AllRoutesFailed) as info:
        same.chat(PROMPT)
    assert [type(e).__name__ for e in info.value.exceptions] == ["AuthenticationError", "RouteSkipped"]
    assert len(emu.state.requests) == 1  # the second route, same token, was not tried


def test_deadline_bounds_the_whole_call(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault("*", "delay", delay_s=2.0))
    c = chain(emu, call_timeout=0.7)
    started = time.monotonic()
    with pytest.raises(AllRoutesFailed) as info:
        c.chat(PROMPT)
    assert time.monotonic() - started < 0.95
    assert all(isinstance(e, errors.TimeoutError) for e in info.value.exceptions)


def test_every_attempt_reaches_the_ledger_in_order(emu: EmulatorServer) -> None:
    tracker = CostTracker()
    c = chain(emu, tracker=tracker, retry_policy=RetryPolicy(max_retries=1, backoff_base=0.01, backoff_max=0.01))
    emu.state.add_fault(Fault("*/workers-ai/*", "error", status=500))
    r = c.chat(PROMPT, context=CallContext(user="alice", metadata={"team": "search"}))
    recs = tracker.ledger.records()
    assert [(x.model, x.outcome, x.attempt, x.fallback) for x in recs] == [
        (P, "ServerError", 0, False), (P, "ServerError", 1, False), (F, "ok", 2, True)]
    assert [x.call_id for x in r.records] == [recs[0].call_id] * 3 and {x.user for x in recs} == {"alice"}
    assert json.loads(emu.state.requests[-1].headers["cf-aig-metadata"]) == {"team": "search", "user": "alice"}


# -- streams -----------------------------------------------------------------------------------------
def test_stream_falls_back_before_the_first_chunk_only(emu: EmulatorServer) -> None:
    c = chain(emu)
    emu.state.add_fault(Fault("*/workers-ai/*", "stream_error", after_chunks=0, times=1, status=429, code=3040))
    chunks = list(c.stream(PROMPT))
    assert chunks[0].model == F and chunks[-1].final and chunks[-1].attempts[0].outcome == "CapacityError"
    emu.state.add_fault(Fault("*/workers-ai/*", "stream_error", after_chunks=2, times=1, status=500))
    got: list[str] = []
    with pytest.raises(errors.CloudflareError) as info:
        for ch in c.stream(PROMPT):
            got.append(ch.text)
    assert got and not isinstance(info.value, AllRoutesFailed)
    assert [a.model for a in info.value.attempts] == [P]  # type: ignore[attr-defined]


def test_caller_closing_a_stream_early_frees_a_half_open_probe(emu: EmulatorServer) -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    breaker.failure(P)
    now[0] = 11.0  # half-open
    c = chain(emu, breaker=breaker)
    it = c.stream(PROMPT)
    first = next(it)
    assert first.model == P and not breaker.allow(P)  # the probe is ours
    it.close()  # type: ignore[attr-defined]
    assert breaker.allow(P)
    breaker.release(P)

    async def early() -> None:
        agen = c.astream(PROMPT)
        assert (await agen.__anext__()).model == P and not breaker.allow(P)
        await agen.aclose()  # type: ignore[attr-defined]

    asyncio.run(early())
    assert breaker.allow(P)


# -- embeddings ----------------------------------------------------------------------------------------
EMB_A, EMB_B = "@cf/baai/bge-large-en-v1.5", "@cf/baai/bge-m3"


@pytest.mark.parametrize("mode", ["client", "gateway"])
def test_embedding_chain_falls_back_with_equal_dims(emu: EmulatorServer, mode: str) -> None:
    c = chain(emu, EMB_A, [EMB_B], fallback_mode=mode)
    emu.state.add_fault(Fault(f"*/{EMB_A}", "error", status=500))
    texts = [f"text {i}" for i in range(5)]
    r = c.embed(texts, batch_size=2)
    assert r.model == EMB_B and len(r.vectors) == 5 and {len(v) for v in r.vectors} == {1024}
    assert r.attempts[0].model == EMB_A and r.attempts[-1].outcome == "ok"
    r2 = asyncio.run(c.aembed(texts, batch_size=2))
    assert r2.model == EMB_B and r2.vectors == r.vectors
    if mode == "gateway":
        assert all(q.path.endswith("/gw") for q in emu.state.requests)
        steps = [len(q.json) for q in emu.state.requests[:3]]
        assert steps == [2, 1, 1]  # the first batch offers every step; the rest go to the one that answered


def test_embedding_chain_refuses_different_or_unknown_dims(emu: EmulatorServer) -> None:
    with pytest.raises(errors.ConfigError, match="same size"):
        chain(emu, "@cf/baai/bge-small-en-v1.5", [EMB_A])
    with pytest.raises(errors.ConfigError, match="unknown vector dimensions"):
        chain(emu, EMB_A, ["custom-acme/my-embedder"])
    assert chain(emu, EMB_A, ["custom-acme/my-embedder"], check_dims=False).models == [EMB_A, "custom-acme/my-embedder"]
    with pytest.raises(errors.ConfigError):
        chain(emu, P, [F]).embed(["x"])  # chat models: no known vector size


# -- routing -------------------------------------------------------------------------------------------
def test_rollout_and_tiers_choose_the_route_per_call(emu: EmulatorServer) -> None:
    new = "@cf/meta/llama-3.1-8b-instruct-fp8"
    c = build_client(P, rollout=Rollout(new, 50), tiers=[TierRule({"tier": "premium"}, "openai/gpt-4o")],
                     **conn(emu))
    users = [f"user-{i}" for i in range(40)]
    first = [c.chat(PROMPT, context=CallContext(user=u)).model for u in users]
    assert set(first) == {P, new}
    assert first == [c.chat(PROMPT, context=CallContext(user=u)).model for u in users]
    assert all(Rollout(new, 50).includes(u) == (m == new) for u, m in zip(users, first, strict=True))
    r = c.chat(PROMPT, context=CallContext(user="user-1", metadata={"tier": "premium"}))
    assert r.model == "openai/gpt-4o" and emu.state.requests[-1].json["model"] == "gpt-4o"
    assert json.loads(emu.state.requests[-1].headers["cf-aig-metadata"]) == {"tier": "premium", "user": "user-1"}
    req = ChatRequest([Message("user", "hi")], user="user-1", metadata={"tier": "premium"})
    assert c.chat(req).model == "openai/gpt-4o"  # user and metadata on the request work too


def test_build_client_plain_override_and_config_errors(emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(build_client(P, **conn(emu))) is Client
    c = chain(emu)
    # a chain holds one member client per route (composition) and offers the Client's methods
    assert isinstance(c, FallbackChain) and not isinstance(c, Client)
    assert all(isinstance(c.member(m), Client) for m in (P, F)) and c.member(P).books is c.books
    for name in ("chat", "achat", "stream", "astream", "embed", "aembed", "route", "model_info", "close", "aclose"):
        assert callable(getattr(c, name)) and callable(getattr(Client, name))
    assert c.route().model == P and c.model_info() is not None and c.model_info(F).context_window == 128000
    emu.state.add_fault(Fault("*/workers-ai/*", "error", status=500))
    with pytest.raises(errors.ServerError):
        c.chat(PROMPT, model=P)  # model= means that one model, no chain
    monkeypatch.delenv("CLOUDFLARE_AI_GATEWAY_ID", raising=False)
    with pytest.raises(errors.ConfigError, match="CLOUDFLARE_AI_GATEWAY_ID"):
        build_client(P, [F], fallback_mode="gateway", **conn(emu, gateway_id=None))
    with pytest.raises(errors.ConfigError):
        build_client(P, [F], fallback_mode="bogus", **conn(emu))


# -- gateway mode: an answer that breaks on our side -----------------------------------------------------
def test_gateway_mode_goes_on_after_a_broken_answer() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        steps = json.loads(request.content)
        bodies.append(steps)
        if len(steps) == 2:  # step 0 answers with a body we cannot read
            return httpx.Response(200, headers={"cf-aig-step": "0"}, content=b'{"result": {"respo')
        ok = {"choices": [{"message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
        return httpx.Response(200, headers={"cf-aig-step": "0"}, json=ok)

    tp = Transport(transport=httpx.MockTransport(handler))
    c = build_client(P, [F], fallback_mode="gateway", transport=tp, account_id="acct", api_token="t",
                     gateway_id="gw", gateway_token="g", gateway_base_url="http://127.0.0.1:9/v1")
    r = c.chat(PROMPT)
    assert r.model == F and r.text == "hello"
    assert [(a.model, a.outcome) for a in r.attempts] == [(P, "MalformedResponseError"), (F, "ok")]
    assert [[s["provider"] for s in b] for b in bodies] == [["workers-ai", "openai"], ["openai"]]
    assert [rec.outcome for rec in r.records] == ["MalformedResponseError", "ok"]


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_gateway_mode_books_steps_that_failed_inside_the_gateway(emu: EmulatorServer, sync: bool) -> None:
    """Issue 5: every attempt, failed ones too, reaches the ledger — also the steps the gateway tried."""
    from cfgateway.costs.ledger import MemoryLedger

    tracker = CostTracker(MemoryLedger())
    c = chain(emu, fallback_mode="gateway", tracker=tracker)
    emu.state.add_fault(Fault("*/workers-ai/*", "error", status=500))
    r = c.chat(PROMPT) if sync else asyncio.run(c.achat(PROMPT))
    assert r.model == F and len(emu.state.requests) == 1  # one request; the gateway fell back inside
    booked = tracker.ledger.records()
    assert [(x.model, x.outcome, x.operation) for x in booked] == [
        (P, "gateway_step_failed", "chat"), (F, "ok", "chat")]
    assert booked[0].cost is None and booked[0].attempt == 0 and booked[1].attempt == 1 and booked[1].fallback
    assert [x.call_id for x in booked] == [x.call_id for x in r.records]


def test_gateway_mode_embeddings_book_failed_steps(emu: EmulatorServer) -> None:
    from cfgateway.costs.ledger import MemoryLedger

    tracker = CostTracker(MemoryLedger())
    c = chain(emu, EMB_A, [EMB_B], fallback_mode="gateway", tracker=tracker)
    emu.state.add_fault(Fault(f"*/{EMB_A}", "error", status=500))
    r = c.embed([f"text {i}" for i in range(3)])
    assert r.model == EMB_B
    booked = [(x.model, x.outcome, x.operation) for x in tracker.ledger.records()]
    assert booked == [(EMB_A, "gateway_step_failed", "embed"), (EMB_B, "ok", "embed")]


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
def test_gateway_mode_embeddings_run_batches_concurrently_in_order(emu: EmulatorServer, sync: bool,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    c = chain(emu, EMB_A, [EMB_B], fallback_mode="gateway")
    direct = Client(EMB_A, **conn(emu))
    texts = [f"text {i}" for i in range(18)]
    want = direct.embed(texts, batch_size=2).vectors
    emu.state.clear()
    emu.state.add_fault(Fault(f"*/{EMB_A}", "delay", delay_s=0.1, times=None))
    kw: dict[str, Any] = {"batch_size": 2, "max_concurrency": 4, "progress": True}
    r = c.embed(texts, **kw) if sync else asyncio.run(c.aembed(texts, **kw))
    assert r.model == EMB_A and r.vectors == want  # order kept
    starts = sorted(q.time for q in emu.state.requests[1:])  # after the first batch, which finds the step
    assert len(starts) == 8 and starts[3] - starts[0] < 0.1  # four were in flight together, each taking 0.1 s
    assert "18/18" in capsys.readouterr().err  # the progress bar, in gateway mode too


def test_gateway_mode_embeddings_stop_sending_after_a_failure(emu: EmulatorServer) -> None:
    c = chain(emu, EMB_A, [], fallback_mode="gateway")
    emu.state.add_fault(Fault(f"*/{EMB_A}", "delay", delay_s=0.02, times=1))  # the first batch answers
    emu.state.add_fault(Fault(f"*/{EMB_A}", "error", status=400, times=1))  # a later one is refused
    emu.state.add_fault(Fault(f"*/{EMB_A}", "delay", delay_s=0.05, times=None))

    async def long_lived() -> None:
        with pytest.raises(errors.BadRequestError):
            await c.aembed([f"text {i}" for i in range(60)], batch_size=1, max_concurrency=2)
        await asyncio.sleep(0.3)

    asyncio.run(long_lived())
    assert len(emu.state.requests) <= 5  # not 60
