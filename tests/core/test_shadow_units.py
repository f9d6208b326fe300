"""The pure parts of shadow comparisons: the Shadow value, sampling, the daily cap shared through the ledger's
state, a streamed answer put back together, empty answers, and the bounded pool."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from cfgateway.costs.ledger import MemoryLedger, SQLiteLedger
from cfgateway.errors import ConfigError
from cfgateway.fallback._shadow_books import Pool
from cfgateway.routing.rollout import RoutingPolicy
from cfgateway.routing.shadow import AnswerCollector, Shadow, ShadowCap, cap_key, compare_answers
from cfgateway.types import ChatChunk, ChatResponse, ToolCall, ToolCallChunk, new_call_id

CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"


def test_shadow_defaults_and_checks() -> None:
    s = Shadow(CAND)
    assert (s.sample, s.similarity_model, s.max_cost, s.by, s.key) == (0.1, "@cf/baai/bge-base-en-v1.5", None, "call",
                                                                       CAND)
    assert Shadow(CAND, max_cost="2.50").max_cost == Decimal("2.50") and Shadow(CAND, max_cost=3).max_cost == 3
    for bad, match in [({"sample": 1.5}, "share from 0 to 1"), ({"sample": True}, "share"),
                       ({"max_cost": "lots"}, "amount in USD"), ({"max_cost": -1}, "non-negative"),
                       ({"by": "tenant"}, "'call' or 'user'"), ({"workers": 0}, "workers"),
                       ({"baseline": CAND}, "must differ"), ({"similarity_model": "not a model"}, "model")]:
        with pytest.raises(ConfigError, match=match):
            Shadow(CAND, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Shadow("nope nope")


def test_from_dict_names_the_known_keys() -> None:
    s = Shadow.from_dict({"candidate": CAND, "sample": "0.25", "max_cost": "5", "by": "user"})
    assert (s.sample, s.max_cost, s.by) == (0.25, Decimal(5), "user")
    assert Shadow.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="unknown key.*colour.*known: candidate, sample"):
        Shadow.from_dict({"candidate": CAND, "colour": "red"})
    with pytest.raises(ConfigError, match="candidate model string is required"):
        Shadow.from_dict({"sample": 0.1})


def test_policy_carries_the_shadow_and_resolves_its_candidate() -> None:
    assert RoutingPolicy.build() is None
    policy = RoutingPolicy.build(shadow=Shadow(CAND))
    assert policy is not None and policy.shadow == Shadow(CAND) and policy.models() == [CAND]


@pytest.mark.parametrize("share", [0.1, 0.5])
def test_sampling_share_over_many_calls_and_users(share: float) -> None:
    by_call = Shadow(CAND, sample=share)
    calls = [new_call_id() for _ in range(20_000)]
    got = sum(by_call.sampled(c) for c in calls) / len(calls)
    assert abs(got - share) < 0.015  # 20,000 draws: a standard deviation of at most 0.0035
    by_user = Shadow(CAND, sample=share, by="user")
    users = [f"user-{i}" for i in range(20_000)]
    picked = {u for u in users if by_user.sampled(new_call_id(), u)}
    assert abs(len(picked) / len(users) - share) < 0.015
    assert all(by_user.sampled(new_call_id(), u) for u in list(picked)[:200])  # a user's every call, stably
    assert by_user.sampled("call-x", None) == by_user.sampled("call-x", None)  # no user: by call id


def test_sampling_edges_and_independent_salts() -> None:
    assert not any(Shadow(CAND, sample=0).sampled(new_call_id()) for _ in range(500))
    assert all(Shadow(CAND, sample=1).sampled(new_call_id()) for _ in range(500))
    users = [f"u{i}" for i in range(4000)]
    a = {u for u in users if Shadow(CAND, sample=0.5, by="user").sampled("c", u)}
    b = {u for u in users if Shadow(CAND, sample=0.5, by="user", name="other").sampled("c", u)}
    assert 0.2 < len(a & b) / len(users) < 0.3  # independent halves overlap by about a quarter


def test_cap_holds_adjusts_and_refuses(tmp_path: Path) -> None:
    today = int(time.time() // 86400)
    clock = [86400.0 * today + 10]
    cap = ShadowCap(SQLiteLedger(tmp_path / "l.db"), "c", Decimal("1.00"), clock=lambda: clock[0])
    day = cap.hold(Decimal("0.60"))
    assert day == today and cap.spent() == Decimal("0.60")
    assert cap.hold(Decimal("0.50")) is None and cap.spent() == Decimal("0.60")  # would cross: refused, unchanged
    cap.adjust(day, Decimal("-0.45"))  # settled at 0.15
    assert cap.hold(Decimal("0.85")) == day and cap.spent() == Decimal("1.00")
    assert cap.hold(Decimal("0.000001")) is None
    clock[0] += 86400  # a new UTC day: a new cap
    assert cap.hold(Decimal("0.5")) == today + 1 and cap.spent(today) == Decimal("1.00")
    assert cap.next_day() == 86400.0 * (today + 2)
    assert cap.store.get_state(cap_key("c", today + 1)) is not None


def test_cap_is_shared_by_every_handle_on_one_ledger(tmp_path: Path) -> None:
    """Eight threads with their own ledger handles on one SQLite file never hold more than the cap together."""
    path = tmp_path / "shared.db"
    caps = [ShadowCap(SQLiteLedger(path), "shared", Decimal("1")) for _ in range(8)]
    held: list[int] = []

    def hammer(cap: ShadowCap) -> None:
        held.extend(1 for _ in range(40) if cap.hold(Decimal("0.01")) is not None)

    threads = [threading.Thread(target=hammer, args=(c,)) for c in caps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 100 and caps[0].spent() == Decimal("1")


def test_cap_without_shared_state_is_per_process_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    class PlainLedger:
        def __repr__(self) -> str:
            return "PlainLedger()"

    cap = ShadowCap(PlainLedger(), "c", Decimal(1))
    assert "keeps no shared state" in caplog.text and isinstance(cap.store, MemoryLedger)
    assert cap.hold(Decimal("0.5")) is not None


def test_collector_rebuilds_text_and_tool_calls() -> None:
    col = AnswerCollector()
    col.add(ChatChunk(text="Hello "))
    col.add(ChatChunk(tool_call_chunks=[ToolCallChunk(0, "t1", "add", '{"a": 6,'),
                                        ToolCallChunk(1, "t2", "mul", "{}")]))
    col.add(ChatChunk(text="world", tool_call_chunks=[ToolCallChunk(0, None, None, ' "b": 7}')]))
    col.add(ChatChunk(tool_call_chunks=[ToolCallChunk(2, "t3", "bad", "{oops")]))
    final = ChatChunk(final=True, model="openai/gpt-4o-mini", provider="openai", finish_reason="tool_calls",
                      records=["r"])
    col.add(final)
    resp = col.response(final)
    assert resp.text == "Hello world" and resp.model == "openai/gpt-4o-mini" and resp.records == ["r"]
    assert resp.tool_calls == [ToolCall("add", {"a": 6, "b": 7}, "t1"), ToolCall("mul", {}, "t2"),
                               ToolCall("bad", {"__unparsed__": "{oops"}, "t3")]


def _resp(text: str = "", calls: list[ToolCall] | None = None) -> ChatResponse:
    return ChatResponse(text=text, model="m", provider="p", tool_calls=calls or [])


def test_compare_answers() -> None:
    def never(texts: list[str]) -> list[list[float]]:
        raise AssertionError("the embedding model is not needed here")

    assert compare_answers(_resp(""), _resp("  "), never) == 1.0
    assert compare_answers(_resp("an answer"), _resp(""), never) == 0.0
    add = ToolCall("add", {"a": 6, "b": 7})
    assert compare_answers(_resp(calls=[add]), _resp(calls=[ToolCall("add", {"a": 6, "b": 8})]), never) == 0.5
    assert compare_answers(_resp(calls=[add]), _resp("no tool"), never) == 0.0
    vectors = {"a b": [1.0, 0.0], "a c": [1.0, 1.0]}
    assert compare_answers(_resp("a b"), _resp("a c"), lambda ts: [vectors[t] for t in ts]) == pytest.approx(
        0.7071067811865476)


def test_pool_never_waits_drops_when_full_and_flushes() -> None:
    release, started = threading.Event(), threading.Event()
    done: list[int] = []

    def run(job: int) -> None:
        started.set()
        release.wait(5)
        done.append(job)

    pool: Pool[int] = Pool(1, 2, run, "t")
    assert pool.submit(0) and started.wait(5)  # the worker holds job 0; the queue holds at most 2 more
    start = time.perf_counter()
    taken = [pool.submit(i) for i in range(1, 6)]
    assert time.perf_counter() - start < 0.5  # nothing waited for the busy worker
    assert taken == [True, True, False, False, False]
    assert pool.flush(0.05) == 3
    release.set()
    assert pool.flush(5) == 0 and sorted(done) == [0, 1, 2]
    release.clear()
    started.clear()
    assert pool.submit(10) and started.wait(5) and pool.submit(11)
    assert pool.close() == [11]  # the queued job is dropped; the running one finishes
    release.set()
    assert pool.flush(5) == 0 and not pool.submit(12) and done[-1] == 10 and 11 not in done


def test_a_pair_not_compared_is_no_sample_for_the_gates() -> None:
    from cfgateway.costs.ledger import UsageRecord
    from cfgateway.routing.gates import stage_stats

    def pair(sim: float | None, error: str | None = None) -> UsageRecord:
        return UsageRecord(ts=10.0, model=CAND, provider="workers-ai", operation="chat", outcome="shadow",
                           similarity=sim, error=error, baseline="openai/gpt-4o-mini", latency_s=0.3,
                           baseline_latency_s=0.2, tags={} if sim is not None or error else {"shadow": "not compared"})

    stats = stage_stats([pair(0.9), pair(None), pair(None, "ServerError")], candidate=CAND, percent=10, since=0)
    assert (stats.samples, stats.similarities, stats.shadow_errors) == (2, [0.9], 1)
    assert stats.latency_ratio == pytest.approx(0.6 / 0.4)  # an uncompared pair still shows the candidate's latency
