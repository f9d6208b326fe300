"""Shadow comparisons through the core chain against the emulator: the caller's answer and latency are the
same with and without shadows; pairs carry the right similarity on known answers; tool calls; candidate
errors; sync, async (one asyncio.run per call) and streamed calls; exactly one record per pair."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import pytest
from _emu import emulator_fixtures

from cfgateway import ChatRequest, CostTracker, Message, RoutingPolicy, Shadow, ToolSpec, flush_shadows
from cfgateway.costs.ledger import MemoryLedger, UsageRecord
from cfgateway.emulator.config import EmulatorConfig, Fault, GatewayConfig
from cfgateway.emulator.embeddings import embed_text
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import FallbackChain
from cfgateway.routing.similarity import cosine
from cfgateway.types import ChatChunk, ChatResponse

BASE = "openai/gpt-4o-mini"
CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
JUDGE = "@cf/baai/bge-base-en-v1.5"
HELLO = ChatRequest([Message("user", "Tell me about Paris in spring")], max_tokens=40)
WEATHER = ToolSpec("get_weather", "the weather in a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


server, emu = emulator_fixtures(EmulatorConfig(gateways={"gw": GatewayConfig(auth_token="gw-token")}))


def make(emu: EmulatorServer, shadow: Shadow | None = None, ledger: MemoryLedger | None = None,
         **kw: Any) -> FallbackChain:
    tracker = kw.pop("tracker", None) or CostTracker(ledger if ledger is not None else MemoryLedger())
    return FallbackChain(BASE, routing=RoutingPolicy.build(shadow=shadow), tracker=tracker, max_retries=0,
                         **emu.client_kwargs(gateway=True), **kw)


def pairs(ledger: MemoryLedger) -> list[UsageRecord]:
    assert flush_shadows(30) == 0
    return [r for r in ledger.records() if r.shadow_pair]


def same(a: ChatResponse, b: ChatResponse) -> bool:
    return (a.text, a.model, a.tool_calls, a.usage, a.finish_reason, a.cost) == (
        b.text, b.model, b.tool_calls, b.usage, b.finish_reason, b.cost)


def test_the_callers_answer_and_latency_do_not_change(emu: EmulatorServer) -> None:
    """Candidate 200 ms slower than the baseline; every call shadowed: the caller does not see it."""
    emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="delay", delay_s=0.2))
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0), led) as shadowed, make(emu) as plain:
        for c in (shadowed, plain):
            c.chat(HELLO)  # warm the connection pools
        with_s, without = [], []
        for _ in range(15):  # interleaved, so drifts in machine load hit both sides alike
            t = time.perf_counter()
            a = shadowed.chat(HELLO)
            with_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            b = plain.chat(HELLO)
            without.append(time.perf_counter() - t)
            assert same(a, b)
        found = pairs(led)
    m_with, m_without = statistics.median(with_s), statistics.median(without)
    print(f"\ncaller latency, median of 15: with shadows {m_with * 1000:.1f} ms, without {m_without * 1000:.1f} ms; "
          f"candidate (shadow) median {statistics.median(r.latency_s for r in found) * 1000:.1f} ms")
    assert m_with - m_without < 0.1  # blocking on the candidate would add >= 200 ms to every call
    assert len(found) == 16 and all(r.latency_s >= 0.2 for r in found)  # the shadows did run, slowly
    assert all(r.similarity == 1.0 and r.baseline == BASE and r.error is None for r in found)


def test_sync_async_and_streamed_calls_are_compared_once_complete(emu: EmulatorServer) -> None:
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0), led) as chain, make(emu) as plain:
        answers = [chain.chat(HELLO), asyncio.run(chain.achat(HELLO))]  # the loop ends before the shadow does
        chunks = list(chain.stream(HELLO))

        async def astream() -> list[ChatChunk]:
            return [c async for c in chain.astream(HELLO)]

        achunks = asyncio.run(astream())
        plain_chunks = list(plain.stream(HELLO))
        found = pairs(led)
    assert all(same(a, plain.chat(HELLO)) for a in answers)
    texts = ["".join(c.text for c in cs) for cs in (chunks, achunks, plain_chunks)]
    assert texts[0] == texts[1] == texts[2] == answers[0].text
    assert len(found) == 4 and all(r.similarity == 1.0 and r.model == CAND for r in found)
    baseline_calls = {r.call_id: r for r in led.records() if r.ok and r.model == BASE}
    assert {r.call_id for r in found} == set(baseline_calls)  # one pair per call, joined by the call id
    assert all(r.baseline_latency_s == baseline_calls[r.call_id].latency_s for r in found)
    assert all(r.baseline_cost == baseline_calls[r.call_id].cost and r.cost for r in found)


def test_one_record_per_pair_and_the_comparison_booked_apart(emu: EmulatorServer) -> None:
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0), led) as chain:
        chain.chat(HELLO)
        found = pairs(led)
    records = led.records()
    assert [r.outcome for r in records if r.model == CAND] == ["shadow"]  # the candidate's call is not booked again
    judge = [r for r in records if r.model == JUDGE]
    assert len(found) == 1 and len(judge) == 1 and judge[0].outcome == "shadow" and not judge[0].shadow_pair
    assert judge[0].tags == {"shadow": "similarity", "candidate": CAND} and judge[0].call_id == found[0].call_id
    assert led._live_reservations(time.time()) == []  # every hold settled or released


def _count_to(n: int) -> str:
    return " ".join(str(i) for i in range(1, n + 1))


def test_similarity_of_known_different_answers(emu: EmulatorServer) -> None:
    """No max_tokens: OpenAI counts to 400, the candidate stops at Workers AI's default of 256 tokens."""
    req = ChatRequest([Message("user", "Count to 400")])
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0), led) as chain:
        answer = chain.chat(req)
        streamed = "".join(c.text for c in chain.stream(req))
        found = pairs(led)
    assert answer.text == streamed == _count_to(400) + "."
    seed = f"{JUDGE}:mean"  # how the emulator embeds with this model
    want = cosine(embed_text(_count_to(400) + ".", 768, seed), embed_text(_count_to(256), 768, seed))
    assert 0.5 < want < 0.99
    assert len(found) == 2 and all(r.similarity == pytest.approx(want, abs=1e-12) for r in found)
    assert all(r.output_tokens == 256 for r in found)  # the candidate's own figures


def test_tool_calls_are_compared_by_name_and_arguments(emu: EmulatorServer) -> None:
    req = ChatRequest([Message("user", "What is the weather in Lisbon?")], tools=[WEATHER], tool_choice="required",
                      max_tokens=60)
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0), led) as chain:
        answer = chain.chat(req)
        streamed = list(chain.stream(req))
        found = pairs(led)
    assert answer.tool_calls and answer.tool_calls[0].arguments == {"city": "Lisbon"}
    assert any(c.tool_call_chunks for c in streamed)
    assert len(found) == 2 and all(r.similarity == 1.0 for r in found)
    assert not [r for r in emu.state.requests if "bge" in r.path]  # no embedding needed for tool calls


def test_a_failing_candidate_is_evidence_and_the_caller_is_unaffected(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="error", status=500))
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0), led) as chain, make(emu) as plain:
        got = [chain.chat(HELLO), asyncio.run(chain.achat(HELLO))]
        got_stream = "".join(c.text for c in chain.stream(HELLO))
        found = pairs(led)
        assert chain.shadows is not None and chain.shadows.stats.candidate_errors == 3
        assert all(same(a, plain.chat(HELLO)) for a in got) and got_stream == got[0].text
    assert len(found) == 3 and all(r.error == "ServerError" and r.similarity is None for r in found)
    assert all(r.cost is None and r.baseline == BASE for r in found)  # nothing was used: cost unknown, not $0
    assert not [r for r in led.records() if r.model == JUDGE]  # nothing to compare


def test_the_candidate_already_tried_is_not_shadowed_again(emu: EmulatorServer) -> None:
    """A chain whose primary is the candidate falls back to the baseline: that call's evidence is its own attempt."""
    emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="error", status=500))
    led = MemoryLedger()
    with FallbackChain(CAND, [BASE], routing=RoutingPolicy.build(shadow=Shadow(CAND, sample=1.0, baseline=BASE)),
                       tracker=CostTracker(led), max_retries=0, **emu.client_kwargs(gateway=True)) as chain:
        assert chain.chat(HELLO).model == BASE
        assert pairs(led) == [] and [r.outcome for r in led.records() if r.model == CAND] == ["ServerError"]


def test_only_the_baselines_answers_are_shadowed_and_only_the_sampled_share(emu: EmulatorServer) -> None:
    led = MemoryLedger()
    shadow = Shadow(CAND, sample=0.3)
    with make(emu, shadow, led) as chain:
        for i in range(60):
            chain.chat(ChatRequest([Message("user", f"question {i}")], max_tokens=8))
        chain.chat(HELLO, model=CAND)  # a per-call model: that one route, no chain, no shadow
        found = pairs(led)
    answered = [r for r in led.records() if r.ok and r.model == BASE]
    assert {r.call_id for r in found} == {r.call_id for r in answered if shadow.sampled(r.call_id)}
    assert 5 <= len(found) <= 35  # about 18 of 60


def test_a_full_queue_drops_shadows_and_never_blocks(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="delay", delay_s=0.5))
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0, workers=1, max_pending=1), led) as chain:
        start = time.perf_counter()
        for _ in range(6):
            chain.chat(HELLO)
        took = time.perf_counter() - start
        assert chain.shadows is not None
        stats = chain.shadows.stats
        assert took < 1.0 and stats.dropped_full >= 3 and stats.queued + stats.dropped_full == 6
        found = pairs(led)
    assert len(found) == stats.queued == stats.recorded


def test_shadow_setup_errors_name_the_fix(emu: EmulatorServer) -> None:
    from cfgateway.errors import ConfigError

    kw = emu.client_kwargs(gateway=True)
    with pytest.raises(ConfigError, match="books its pairs in the ledger.*tracker=CostTracker"):
        FallbackChain(BASE, routing=RoutingPolicy.build(shadow=Shadow(CAND)), **kw)
    with pytest.raises(ConfigError, match="must be an embedding model"):
        make(emu, Shadow(CAND, similarity_model=BASE))
    with pytest.raises(ConfigError, match="is the route it would shadow"):
        FallbackChain(CAND, routing=RoutingPolicy.build(shadow=Shadow(CAND)), tracker=CostTracker(MemoryLedger()),
                      **kw)


def test_a_closed_chain_takes_no_more_shadows(emu: EmulatorServer) -> None:
    led = MemoryLedger()
    chain = make(emu, Shadow(CAND, sample=1.0), led)
    chain.close()
    chain.chat(HELLO)  # the transport opens again on use; the shadow does not
    assert chain.shadows is not None and chain.shadows.stats.queued == 0 and pairs(led) == []
    chain.close()


def test_metadata_and_user_reach_the_shadow(emu: EmulatorServer) -> None:
    led = MemoryLedger()
    req = ChatRequest([Message("user", "hi")], max_tokens=8, user="u-7", metadata={"team": "search"})
    with make(emu, Shadow(CAND, sample=1.0), led) as chain:
        chain.chat(req)
        found = pairs(led)
    assert found[0].user == "u-7"
    sent = [r for r in emu.state.requests if "llama-3.3" in r.path]
    assert len(sent) == 1 and json.loads(sent[0].headers["cf-aig-metadata"]) == {"user": "u-7", "team": "search"}


def test_gateway_fallback_mode_is_shadowed_too(emu: EmulatorServer) -> None:
    led = MemoryLedger()
    other = "@cf/meta/llama-3.1-8b-instruct"
    with FallbackChain(BASE, [other], fallback_mode="gateway", routing=RoutingPolicy.build(
            shadow=Shadow(CAND, sample=1.0)), tracker=CostTracker(led), max_retries=0,
            **emu.client_kwargs(gateway=True)) as chain:
        answer = chain.chat(HELLO)
        streamed = "".join(c.text for c in chain.stream(HELLO))

        async def astream() -> str:
            return "".join([c.text async for c in chain.astream(HELLO)])

        astreamed = asyncio.run(astream())
        found = pairs(led)
    assert answer.model == BASE and streamed == astreamed == answer.text
    assert any(r.path.endswith("/gw") for r in emu.state.requests)  # the Universal Endpoint answered the caller
    assert len(found) == 3 and all(r.similarity == 1.0 and r.baseline == BASE for r in found)


def test_a_failing_similarity_model_books_the_pair_without_a_similarity(emu: EmulatorServer,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    emu.state.add_fault(Fault(path="*bge-base*", kind="error", status=500))
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0), led) as chain:
        answer = chain.chat(HELLO)
        found = pairs(led)
        assert chain.shadows is not None and chain.shadows.stats.judge_errors == 1
    assert answer.model == BASE and len(found) == 1 and found[0].error is None and found[0].cost
    assert found[0].similarity is None and found[0].tags == {"shadow": "not compared"}
    assert "could not be compared (ServerError" in caplog.text
    assert led._live_reservations(time.time()) == []


def test_closing_the_chain_mid_shadow_never_books_false_evidence(emu: EmulatorServer) -> None:
    emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="delay", delay_s=0.3))
    led = MemoryLedger()
    chain = make(emu, Shadow(CAND, sample=1.0), led)
    chain.chat(HELLO)
    time.sleep(0.1)  # the candidate's request is on its way
    chain.close()
    found = pairs(led)
    assert chain.shadows is not None
    stats = chain.shadows.stats
    # the request either finished (a true pair) or was cut by the close (dropped, counted): never an error pair
    assert all(r.error is None and r.similarity == 1.0 for r in found)
    assert len(found) + stats.dropped_closed == 1


def test_async_closing_the_chain_mid_shadow_never_books_false_evidence(emu: EmulatorServer) -> None:
    """``async with chain`` / ``aclose()`` stops the shadows as ``close()`` does."""
    emu.state.add_fault(Fault(path="*llama-3.3-70b*", kind="delay", delay_s=0.3))
    led = MemoryLedger()

    async def run() -> FallbackChain:
        async with make(emu, Shadow(CAND, sample=1.0, workers=1), led) as chain:
            await chain.achat(HELLO)
            await chain.achat(HELLO)  # its shadow waits in the queue behind the first
            await asyncio.sleep(0.1)  # the first candidate's request is on its way
        return chain

    chain = asyncio.run(run())
    time.sleep(0.8)  # past the candidates' delays: anything still running has ended
    found = pairs(led)
    assert chain.shadows is not None
    assert chain.shadows.stats.dropped_closed >= 1  # the queued one was dropped, not sent on a closed transport
    assert all(r.error is None and r.similarity == 1.0 for r in found)
    assert len(found) + chain.shadows.stats.dropped_closed == 2
