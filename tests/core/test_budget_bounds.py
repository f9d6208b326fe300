"""Issue 10 finding 13: budgets that hold.

(a) the reservation's input estimate is a bound the real usage cannot exceed (UTF-8 bytes, per-message
overhead, tool specs, images); (b) a tracker built without ``catalog=`` prices reservations from the catalog the
calls are priced with (``CFGATEWAY_CATALOG``); (c) a hard limit is also an alert.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cfgateway import Budget, BudgetExceededError, ChatRequest, Client, CostTracker, Message, ToolSpec
from cfgateway.costs.budget import Alert
from cfgateway.costs.ledger import MemoryLedger, UsageRecord
from cfgateway.costs.pricing import embed_token_bound, estimate_tokens, input_token_bound

MODEL = "@cf/meta/llama-3.1-8b-instruct"
PUNCT = ("!?.,;:-" * 600)[:4000]  # one token per character for every tokenizer (and the emulator)


def emulator_client(emu: Any, tracker: CostTracker, **kw: Any) -> Client:
    return Client(MODEL, account_id="acct", api_token="t", base_url=emu.base_url, tracker=tracker, max_retries=0,
                  **kw)  # fmt: skip


# -- (a) ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["", "a", "hello world", PUNCT, "日本語のテキスト", "emoji 😀😀😀", "\u00e9" * 50, "x\ud800y", " " * 100],
)
def test_estimate_tokens_is_at_least_the_utf8_size(text: str) -> None:
    # Every tokenizer token covers at least one byte of UTF-8 text (byte-level BPE, SentencePiece with byte
    # fallback, WordPiece); SentencePiece may add one dummy-prefix piece.
    assert estimate_tokens(text) >= len(text.encode("utf-8", "surrogatepass")) + 1


def test_input_token_bound_counts_overhead_tools_images_and_tool_calls() -> None:
    text = Message("user", "hi")
    base = input_token_bound([text])
    assert base >= estimate_tokens("hi") + 4
    two = input_token_bound([text, Message("assistant", "yo")])
    assert two - base >= estimate_tokens("yo") + 4  # every message pays its template tokens
    tool = ToolSpec("lookup", "find a thing", {"type": "object", "properties": {"q": {"type": "string"}}})
    spec_bytes = len(json.dumps([tool.name, tool.description, tool.parameters]))
    assert input_token_bound([text], tools=[tool]) - base >= spec_bytes
    image = Message("user", [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:x"}}])
    assert input_token_bound([image]) - base >= 1000  # an image is never counted as its URL's length
    schema = {"type": "json_schema", "json_schema": {"schema": {"type": "object", "properties": {"a": {}}}}}
    assert input_token_bound([text], response_format=schema) > base
    assert embed_token_bound(["a", "b"]) >= 2 * (estimate_tokens("a") + 2)  # [CLS]/[SEP] per input


def test_200_concurrent_punctuation_prompts_never_exceed_a_hard_limit(cf_emulator: Any) -> None:
    req = ChatRequest([Message("user", PUNCT)], max_tokens=4)
    one = Client(MODEL, account_id="acct", api_token="t", base_url=cf_emulator.base_url).chat(req)
    assert one.cost is not None and one.usage.input_tokens > 4000  # the emulator counts 1 token per character
    cf_emulator.state.clear()
    limit = Decimal(one.cost) * 50
    tracker = CostTracker(MemoryLedger(), [Budget(limit=limit)])
    client = emulator_client(cf_emulator, tracker)
    outcomes: list[str] = []
    lock = threading.Lock()

    def call(_: int) -> None:
        try:
            client.chat(req)
            result = "ok"
        except BudgetExceededError:
            result = "refused"
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(call, range(200)))
    spent = sum((r.cost for r in tracker.ledger.records() if r.cost is not None), Decimal(0))
    assert spent <= limit, f"spent {spent / limit:.2f} x the limit"
    assert outcomes.count("ok") >= 10  # the bound is safe, not absurd (worst case / real cost is bounded)
    assert len(cf_emulator.state.requests) == outcomes.count("ok")


# -- (b) ------------------------------------------------------------------------------------------
def test_a_tracker_without_catalog_reserves_at_the_prices_calls_are_charged(
    cf_emulator: Any, cf_clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # $1 per token: "hi" with max_tokens=4 is 4 input + 4 output tokens = $8 a call on the emulator
    prices = {"models": {MODEL: {"kind": "chat", "provider": "workers-ai", "input": "1000000", "output": "1000000",
                                 "context_window": 8000}}}  # fmt: skip
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(prices), encoding="utf-8")
    monkeypatch.setenv("CFGATEWAY_CATALOG", str(path))
    tracker = CostTracker(MemoryLedger(), [Budget(limit=Decimal(500))])
    client = emulator_client(cf_emulator, tracker)
    req = ChatRequest([Message("user", "hi")], max_tokens=4)
    costs: list[Decimal] = []
    with pytest.raises(BudgetExceededError):
        for _ in range(100):
            costs.append(Decimal(client.chat(req).cost or 0))
    assert costs and all(c == 8 for c in costs)
    assert sum(costs) <= 500
    assert tracker.catalog.get(MODEL) is not None and tracker.catalog.get(MODEL).custom  # type: ignore[union-attr]


def test_an_explicit_catalog_still_wins() -> None:
    from cfgateway.costs.catalog import default_catalog

    cat = default_catalog().extended({"models": {"x/y": {"input": "1", "output": "1"}}})
    assert CostTracker(catalog=cat).catalog is cat


# -- (c) ------------------------------------------------------------------------------------------
CALL = Decimal("0.00075")  # openai/gpt-4o-mini, 1000 in + 1000 out


def cycle(tracker: CostTracker) -> None:
    res = tracker.reserve(model="openai/gpt-4o-mini", provider="openai", user=None, input_tokens=1000,
                          max_output_tokens=1000)  # fmt: skip
    tracker.record(UsageRecord(time.time(), "openai/gpt-4o-mini", "openai", "chat", 1000, 1000), res)


def test_an_alert_at_the_limit_fires_when_the_limit_refuses_a_call() -> None:
    fired: list[Alert] = []
    limit = CALL * Decimal("2.5")  # the third call would cross it: spend stops at 2 x CALL, below the alert
    tracker = CostTracker(MemoryLedger(), [Budget(limit=limit, alerts=[CALL, limit])], on_alert=fired.append)
    cycle(tracker)
    cycle(tracker)
    assert [a.threshold for a in fired] == [CALL]
    for _ in range(3):
        with pytest.raises(BudgetExceededError):
            cycle(tracker)
    assert [a.threshold for a in fired] == [CALL, limit]  # once per window, not once per refusal
    assert fired[1].kind == "limit" and "refused" in fired[1].message and fired[1].spent == 2 * CALL


def test_a_limit_without_alerts_still_alerts_once_when_it_refuses(caplog: pytest.LogCaptureFixture) -> None:
    tracker = CostTracker(MemoryLedger(), [Budget(limit=CALL, window="monthly")])
    cycle(tracker)
    with caplog.at_level("WARNING", logger="cfgateway.costs.budget"):
        for _ in range(2):
            with pytest.raises(BudgetExceededError):
                cycle(tracker)
    warnings = [r.getMessage() for r in caplog.records if "limit" in r.getMessage()]
    assert len(warnings) == 1 and "monthly global" in warnings[0]
