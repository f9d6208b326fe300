"""Budgets enforced by the client before the request is sent, under concurrency (issue 6 acceptance)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from cfgateway import Budget, BudgetExceededError, ChatRequest, Client, CostTracker, Message
from cfgateway.costs.ledger import MemoryLedger

MODEL = "@cf/meta/llama-3.1-8b-instruct"
REQ = ChatRequest([Message("user", "hi")], max_tokens=4)


def tracked(emu: Any, limit: Decimal, alerts: list[Decimal] | None = None, hook: Any = None) -> Client:
    tracker = CostTracker(MemoryLedger(), [Budget(limit=limit, alerts=alerts or [])], on_alert=hook)
    return Client(MODEL, account_id="acct", api_token="t", base_url=emu.base_url, tracker=tracker, max_retries=0)


def one_call_cost(emu: Any) -> Decimal:
    r = Client(MODEL, account_id="acct", api_token="t", base_url=emu.base_url).chat(REQ)
    assert r.cost is not None
    emu.state.clear()
    return Decimal(r.cost)


def fits(client: Client, limit: Decimal) -> int:
    """How many calls fit in ``limit`` when each holds its worst case (an input bound the call cannot exceed,
    plus max_tokens): every call started at once gets at least this many through."""
    plan = client.plan_chat(REQ, None, None, None, stream=False)
    hold = CostTracker(MemoryLedger(), [Budget(limit=Decimal(1000))]).reserve(
        model=plan.route.model, provider="workers-ai", user=None, input_tokens=plan.input_tokens,
        max_output_tokens=plan.max_output)
    assert hold is not None
    return max(1, int(limit / hold.amount))


def test_200_concurrent_calls_never_overshoot_a_hard_limit(cf_emulator: Any) -> None:
    limit = one_call_cost(cf_emulator) * 50
    client = tracked(cf_emulator, limit)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call(_: int) -> None:
        try:
            client.chat(REQ)
            result = "ok"
        except BudgetExceededError:
            result = "refused"
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(call, range(200)))
    assert client.tracker is not None
    records = client.tracker.ledger.records()
    spent = sum((r.cost for r in records if r.cost is not None), Decimal(0))
    ok = outcomes.count("ok")
    assert spent <= limit
    assert fits(client, limit) <= ok <= 50 and outcomes.count("refused") == 200 - ok
    assert len(cf_emulator.state.requests) == ok == len(records)  # refused calls sent nothing


def test_async_calls_are_budgeted_too(cf_emulator: Any) -> None:
    limit = one_call_cost(cf_emulator) * 10
    client = tracked(cf_emulator, limit)

    async def run() -> list[Any]:
        return await asyncio.gather(*(client.achat(REQ) for _ in range(30)), return_exceptions=True)

    results = asyncio.run(run())
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(r, BudgetExceededError) for r in results if isinstance(r, BaseException))
    assert fits(client, limit) <= len(ok) <= 10 and len(cf_emulator.state.requests) == len(ok)


def test_alert_fires_once_per_threshold(cf_emulator: Any) -> None:
    cost = one_call_cost(cf_emulator)
    fired: list[Any] = []
    client = tracked(cf_emulator, cost * 100, alerts=[cost * 2, cost * 5], hook=fired.append)
    for _ in range(8):
        client.chat(REQ)
    assert len(fired) == 2


def test_budget_error_names_the_budget(cf_emulator: Any) -> None:
    client = tracked(cf_emulator, Decimal("0.000000001"))
    with pytest.raises(BudgetExceededError, match="daily"):
        client.chat(REQ)
    assert cf_emulator.state.requests == []
