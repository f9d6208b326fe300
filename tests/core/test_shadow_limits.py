"""What stops shadows, never the caller: their own daily cap (shared through the ledger's state), a budget
refusal, an unpriced candidate under a cap; and shadow spend counting against budgets."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _emu import emulator_fixtures

from cfgateway import Budget, ChatRequest, CostTracker, Message, RoutingPolicy, Shadow, flush_shadows
from cfgateway.costs.catalog import load_catalog
from cfgateway.costs.ledger import MemoryLedger, SQLiteLedger
from cfgateway.costs.ledger.record import day_start
from cfgateway.emulator.config import EmulatorConfig, GatewayConfig
from cfgateway.emulator.server import EmulatorServer
from cfgateway.fallback import FallbackChain

BASE = "openai/gpt-4o-mini"
CAND = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
REQ = ChatRequest([Message("user", "Tell me about Paris in spring")], max_tokens=40)


server, emu = emulator_fixtures(EmulatorConfig(gateways={"gw": GatewayConfig(auth_token="gw-token")}))


def make(emu: EmulatorServer, shadow: Shadow, tracker: CostTracker, **kw: Any) -> FallbackChain:
    return FallbackChain(BASE, routing=RoutingPolicy.build(shadow=shadow), tracker=tracker, max_retries=0,
                         **emu.client_kwargs(gateway=True), **kw)


def candidate_requests(emu: EmulatorServer) -> int:
    return len([r for r in emu.state.requests if "llama-3.3" in r.path])


def run_serially(chain: FallbackChain, n: int) -> list[str]:
    """``n`` calls, each shadow booked before the next call (so the stop is seen at once)."""
    texts = []
    for _ in range(n):
        texts.append(chain.chat(REQ).text)
        assert flush_shadows(30) == 0
    return texts


def test_the_daily_cap_stops_shadows_and_is_kept(emu: EmulatorServer, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    led = SQLiteLedger(tmp_path / "l.db")
    shadow = Shadow(CAND, sample=1.0, max_cost="0.00015")
    with make(emu, shadow, CostTracker(led)) as chain:
        texts = run_serially(chain, 12)
        runner = chain.shadows
        assert runner is not None and runner.cap is not None
        stats = runner.stats
        spent = runner.cap.spent()
    assert len(set(texts)) == 1 and len(texts) == 12  # every caller answered, alike
    shadow_cost = sum((r.cost or Decimal(0) for r in led.records() if r.shadow), Decimal(0))
    assert 0 < stats.recorded < 12 and stats.stopped_cap == 1 and stats.skipped == 12 - stats.recorded - 1
    assert spent == shadow_cost <= Decimal("0.00015")  # settled to the actual cost, and under the cap
    assert candidate_requests(emu) == stats.recorded  # the refused pair sent nothing
    assert caplog.text.count("comparisons stop until") == 1 and "max_cost $0.00015" in caplog.text


def test_the_cap_is_shared_by_chains_on_one_ledger(emu: EmulatorServer, tmp_path: Path) -> None:
    """Two chains (as two processes would) over one SQLite file share one cap."""
    shadow = Shadow(CAND, sample=1.0, max_cost="0.00015")
    one = make(emu, shadow, CostTracker(SQLiteLedger(tmp_path / "l.db")))
    two = make(emu, shadow, CostTracker(SQLiteLedger(tmp_path / "l.db")))
    with one, two:
        for _ in range(8):
            run_serially(one, 1)
            run_serially(two, 1)
    assert one.shadows is not None and two.shadows is not None
    recorded = one.shadows.stats.recorded + two.shadows.stats.recorded
    assert 0 < recorded < 16 and one.shadows.stats.stopped_cap + two.shadows.stats.stopped_cap == 2
    led = SQLiteLedger(tmp_path / "l.db")
    assert sum((r.cost or Decimal(0) for r in led.records() if r.shadow), Decimal(0)) <= Decimal("0.00015")


def test_a_budget_refusal_stops_shadows_not_the_caller(emu: EmulatorServer,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    led = MemoryLedger()
    tracker = CostTracker(led, [Budget(limit=Decimal(0), scope="provider", key="workers-ai")])
    with make(emu, Shadow(CAND, sample=1.0), tracker) as chain:
        texts = run_serially(chain, 5)
        assert chain.shadows is not None
        stats = chain.shadows.stats
    assert len(texts) == 5 and all(texts)
    assert stats.stopped_budget == 1 and stats.recorded == 0 and stats.skipped == 4
    assert candidate_requests(emu) == 0 and not [r for r in led.records() if r.shadow]
    assert caplog.text.count("comparisons stop until") == 1 and "budget" in caplog.text
    assert led._live_reservations(time.time()) == []


def test_shadow_spend_counts_against_budgets(emu: EmulatorServer) -> None:
    led = MemoryLedger()
    tracker = CostTracker(led, [Budget(limit=Decimal(10))])
    with make(emu, Shadow(CAND, sample=1.0), tracker) as chain:
        run_serially(chain, 3)
    shadow_cost = sum((r.cost or Decimal(0) for r in led.records() if r.shadow), Decimal(0))
    today = day_start(time.time())
    assert shadow_cost > 0 and led.spent(since=today, provider="workers-ai") == shadow_cost
    assert led.spent(since=today) == sum((r.cost or Decimal(0) for r in led.records()), Decimal(0))
    assert led._live_reservations(time.time()) == []  # every pair's holds settled


def test_an_unpriced_candidate_under_a_cap_stops_with_the_fix(emu: EmulatorServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    row = {"kind": "chat", "provider": "workers-ai", "shape": "legacy", "context_window": 24000}
    catalog = load_catalog().extended({"models": {CAND: row}})  # the candidate without a price
    led = MemoryLedger()
    with make(emu, Shadow(CAND, sample=1.0, max_cost=1), CostTracker(led, catalog=catalog), catalog=catalog) as chain:
        run_serially(chain, 2)
        assert chain.shadows is not None and chain.shadows.stats.stopped_unpriced == 1
    assert candidate_requests(emu) == 0 and "has no price in the catalog" in caplog.text
