"""Gate figures and verdicts from records whose figures are known by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cfgateway.costs.ledger import UsageRecord
from cfgateway.errors import ConfigError
from cfgateway.routing.gates import Gates, judge, stage_stats

CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
BASE = "openai/gpt-4o-mini"


def shadow(ts: float, sim: float | None = 0.97, *, error: str | None = None, lat: float = 0.6,
           base_lat: float = 0.4, cost: str | None = "0.0001", base_cost: str | None = "0.0004",
           **kw: Any) -> UsageRecord:
    return UsageRecord(ts=ts, model=kw.pop("model", CAND), provider="workers-ai", operation="chat", outcome="shadow",
                       similarity=None if error else sim, error=error, latency_s=lat, baseline=kw.pop("baseline", BASE),
                       baseline_latency_s=base_lat, cost=None if cost is None else Decimal(cost),
                       baseline_cost=None if base_cost is None else Decimal(base_cost), **kw)


def live(ts: float, outcome: str = "ok", model: str = CAND) -> UsageRecord:
    return UsageRecord(ts=ts, model=model, provider="workers-ai", operation="chat", outcome=outcome, latency_s=0.5)


def test_figures_of_a_stage() -> None:
    sims = [0.90, 0.94, 0.96, 0.98, 1.00]
    recs = [shadow(100 + i, s) for i, s in enumerate(sims)]
    recs += [shadow(110, error="ServerError"), shadow(111, error="InvalidInputError")]  # the second: caller's fault
    recs += [live(112), live(113, "TimeoutError"), live(114, "BudgetExceededError")]
    recs += [shadow(50, 0.1), shadow(300, 0.1)]  # outside [100, 200)
    recs += [shadow(120, 0.1, model="other"), shadow(121, 0.1, baseline="anthropic/x"), live(122, model=BASE)]
    st = stage_stats(recs, candidate=CAND, baseline=BASE, percent=10, since=100, until=200, bar=0.95)
    assert st.samples == 7 and st.live_calls == 2
    assert st.errors == 2 and st.error_rate == pytest.approx(2 / 9)
    assert st.mean_similarity == pytest.approx(0.956)
    # p5 by linear interpolation between closest ranks: 0.90 + (0.94 - 0.90) * 0.2
    assert st.p5_similarity == pytest.approx(0.908)
    assert st.share_at_bar == pytest.approx(3 / 5)
    assert st.latency_ratio == pytest.approx(3.0 / 2.0)  # 5 x 0.6 over 5 x 0.4 (failed pairs are not timed)
    assert st.cost_ratio == pytest.approx(0.25)
    d = st.to_dict()
    assert d["samples"] == 7 and d["mean_similarity"] == 0.956 and d["share_at_bar"] == 0.6


def test_an_empty_stage_has_no_figures() -> None:
    st = stage_stats([], candidate=CAND, percent=10, since=0)
    assert st.error_rate is None and st.mean_similarity is None and st.p5_similarity is None
    assert st.latency_ratio is None and st.cost_ratio is None


GATES = Gates(min_samples=10, min_similarity=0.95, max_error_rate=0.1, max_latency_ratio=1.5, max_cost_ratio=1.0,
              rollback_min_samples=5)


def verdict(recs: list[UsageRecord], gates: Gates = GATES, last: bool = False) -> tuple[str, str]:
    v = judge(stage_stats(recs, candidate=CAND, percent=10, since=0, bar=gates.min_similarity), gates, last_stage=last)
    return v.action, v.reason


def test_verdicts() -> None:
    good = [shadow(i, 0.97) for i in range(10)]
    assert verdict(good)[0] == "advance" and "10 samples" in verdict(good)[1]
    assert verdict(good[:9]) == ("hold", "9 of 10 shadow samples")
    assert verdict(good, last=True)[0] == "hold" and "complete" in verdict(good, last=True)[1]
    slow = [shadow(i, 0.97, lat=1.0, base_lat=0.5) for i in range(10)]
    assert verdict(slow) == ("hold", "latency ratio 2.00 is above the 1.5 gate")
    dear = [shadow(i, 0.97, cost="0.002", base_cost="0.001") for i in range(10)]
    assert verdict(dear) == ("hold", "cost ratio 2.00 is above the 1.0 gate")
    unpriced = [shadow(i, 0.97, cost=None) for i in range(10)]
    assert verdict(unpriced)[0] == "hold" and "cost ratio unknown" in verdict(unpriced)[1]
    assert verdict(unpriced, Gates(min_samples=10, max_cost_ratio=None))[0] == "advance"


def test_rollback_verdicts_need_their_own_minimum() -> None:
    failing = [shadow(i, 0.97) for i in range(4)] + [live(10, "ServerError")]
    action, reason = verdict(failing)
    assert action == "rollback" and reason == "error rate 20.0 % (1 of 5) is above the 10.0 % gate"
    assert verdict(failing[1:])[0] == "hold"  # 4 attempts: under rollback_min_samples
    unlike = [shadow(i, 0.80) for i in range(5)]
    assert verdict(unlike) == ("rollback", "mean similarity 0.8000 over 5 pairs is below the 0.95 gate")


def test_gates_validate_and_round_trip() -> None:
    assert Gates.from_dict(GATES.to_dict()) == GATES
    with pytest.raises(ConfigError, match="max_error_rate"):
        Gates(max_error_rate=2)
    with pytest.raises(ConfigError, match="min_similarity"):
        Gates(min_similarity=1.5)
    with pytest.raises(ConfigError, match="unknown gate setting"):
        Gates.from_dict({"min_simlarity": 0.9})
