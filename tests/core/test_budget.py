from __future__ import annotations

import calendar
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway.costs.budget import Alert, Budget, CostTracker, Reservation
from cfgateway.costs.ledger import MemoryLedger, RedisLedger, SQLiteLedger, UsageRecord
from cfgateway.errors import BudgetExceededError, ConfigError

MODEL = "openai/gpt-4o-mini"  # 0.15 in / 0.60 out per M
CALL = Decimal("0.00075")  # 1000 in + 1000 out


def utc(*parts: int) -> float:
    return float(calendar.timegm((*parts, 0, 0, 0)[:6] + (0, 0, 0)))


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.fail(_redis.MISSING)
    with _redis.redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        led: Any = MemoryLedger()
    elif request.param == "sqlite":
        led = SQLiteLedger(tmp_path / "b.db")
    else:
        led = RedisLedger(request.getfixturevalue("redis_url"), prefix=f"b{uuid.uuid4().hex[:8]}")
    yield led
    led.close()


def call(
    tracker: CostTracker, *, user: str | None = None, provider: str = "openai", model: str = MODEL, **kw: Any
) -> UsageRecord:
    """One reserve + record cycle (1000 tokens in, 1000 out), as the client does it."""
    res = tracker.reserve(model=model, provider=provider, user=user, input_tokens=1000, max_output_tokens=1000)
    rec = UsageRecord(tracker.clock(), model, provider, "chat", 1000, 1000, user=user, **kw)
    return tracker.record(rec, res)


# -- Budget ------------------------------------------------------------------------------------


def test_budget_coerces_and_validates() -> None:
    b = Budget(limit="12.5", alerts=[300, "100"], window="monthly")  # type: ignore[arg-type, list-item]
    assert b.limit == Decimal("12.5") and b.alerts == [Decimal(100), Decimal(300)]
    assert b.name == "monthly global"
    assert Budget(scope="user", key="alice").name == "daily user alice"
    for bad in ({"window": "weekly"}, {"scope": "team"}, {"limit": -1}, {"alerts": ["x"]}, {"key": "k"}):
        with pytest.raises(ConfigError):
            Budget(**bad)  # type: ignore[arg-type]


def test_no_budgets_no_reservation_and_records_still_priced() -> None:
    tracker = CostTracker()
    assert tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=5, max_output_tokens=5) is None
    rec = tracker.record(UsageRecord(time.time(), MODEL, "openai", "chat", 1000, 1000))
    assert rec.cost == CALL
    assert tracker.ledger.records() == [rec]
    alerts_only = CostTracker(budgets=[Budget(alerts=[Decimal(1)])])
    assert alerts_only.reserve(model=MODEL, provider="openai", user=None, input_tokens=5, max_output_tokens=5) is None


# -- 200 concurrent calls against a limit that affords ~50 ----------------------------------------


def test_200_concurrent_calls_never_overshoot_the_limit(ledger: Any) -> None:
    limit = CALL * 50 + Decimal("0.0004")
    tracker = CostTracker(ledger, [Budget(limit=limit)])
    start = threading.Barrier(200)
    ok: list[UsageRecord] = []
    refused: list[BudgetExceededError] = []
    other: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait()
        try:
            res = tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)
        except BudgetExceededError as exc:
            with lock:
                refused.append(exc)
            return
        except BaseException as exc:  # noqa: BLE001
            other.append(exc)
            return
        time.sleep(0.002)  # the request in flight
        rec = tracker.record(UsageRecord(time.time(), MODEL, "openai", "chat", 1000, 1000), res)
        with lock:
            ok.append(rec)

    threads = [threading.Thread(target=one) for _ in range(200)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert other == []
    spent = ledger.spent(since=time.time() - 3600)
    assert spent <= limit
    assert len(ok) == 50 and len(refused) == 150
    assert spent == CALL * 50 == sum((r.cost for r in ok if r.cost), Decimal(0))
    assert len(ledger.records()) == 50
    assert refused[0].limit == limit and "not sent" in str(refused[0])


def test_worst_case_is_held_and_settled_at_the_actual_cost() -> None:
    clock = Clock(utc(2026, 11, 22, 12))
    tracker = CostTracker(budgets=[Budget(limit=CALL * 2)], clock=clock)
    r1 = tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)
    r2 = tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)
    assert isinstance(r1, Reservation) and r1.amount == CALL
    with pytest.raises(BudgetExceededError):  # two worst cases held: a third would cross
        tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1, max_output_tokens=1)
    tracker.record(UsageRecord(clock(), MODEL, "openai", "chat", 1000, 10), r1)  # used far less
    tracker.release(r2)  # failed before any record
    tracker.release(r2)  # idempotent
    assert tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)


def test_scoped_budgets() -> None:
    tracker = CostTracker(
        budgets=[
            Budget(limit=CALL, scope="user"),  # each user: one call a day
            Budget(limit=CALL * 3, scope="provider", key="anthropic"),
        ]
    )
    call(tracker, user="alice")
    with pytest.raises(BudgetExceededError) as info:
        call(tracker, user="alice")
    assert "user alice" in str(info.value)
    call(tracker, user="bob")  # bob has his own
    call(tracker, user=None)  # guess: per-user budgets do not apply to calls without a user
    call(tracker, user=None)
    sonnet = "anthropic/claude-sonnet-4-5"  # 3 in / 15 out per M: 0.018 per call > 3 x CALL
    with pytest.raises(BudgetExceededError):
        call(tracker, provider="anthropic", model=sonnet)
    call(tracker, provider="groq", model="groq/llama-3.1-8b-instant")  # other providers are not capped


def test_unknown_price_reserves_nothing_but_is_refused_once_the_limit_is_spent(caplog: pytest.LogCaptureFixture) -> None:
    tracker = CostTracker(budgets=[Budget(limit=CALL)])
    unknown = f"acme/{uuid.uuid4().hex}"
    rec = call(tracker, model=unknown, provider="acme")
    assert rec.cost is None  # unknown, not 0
    call(tracker)  # spends the whole limit
    with pytest.raises(BudgetExceededError, match=r"this call \(unknown price\)"):
        call(tracker, model=unknown, provider="acme")


def test_zero_limit_blocks_everything() -> None:
    tracker = CostTracker(budgets=[Budget(limit=Decimal(0))])
    with pytest.raises(BudgetExceededError):
        tracker.reserve(model="acme/unknown", provider="acme", user=None, input_tokens=1, max_output_tokens=1)


def test_abandoned_reservation_expires_after_its_ttl() -> None:
    clock = Clock(utc(2026, 11, 22, 12))
    tracker = CostTracker(budgets=[Budget(limit=CALL)], clock=clock, reservation_ttl=60)
    tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)
    with pytest.raises(BudgetExceededError):
        tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)
    clock.t += 61
    assert tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=1000, max_output_tokens=1000)


# -- windows -------------------------------------------------------------------------------------


def test_daily_window_rolls_over_at_utc_midnight(ledger: Any) -> None:
    clock = Clock(utc(2026, 11, 22, 23, 59))
    tracker = CostTracker(ledger, [Budget(limit=CALL * 2)], clock=clock)
    call(tracker)
    call(tracker)
    with pytest.raises(BudgetExceededError):
        call(tracker)
    clock.t = utc(2026, 11, 23, 0, 0) + 1
    call(tracker)
    call(tracker)
    with pytest.raises(BudgetExceededError):
        call(tracker)


def test_monthly_window_counts_the_month_and_rolls_over(ledger: Any) -> None:
    clock = Clock(utc(2026, 10, 31, 12))
    tracker = CostTracker(ledger, [Budget(limit=CALL * 3, window="monthly")], clock=clock)
    call(tracker)  # October: does not count in November
    clock.t = utc(2026, 11, 1, 0, 0)
    call(tracker)
    clock.t = utc(2026, 11, 15, 9)
    call(tracker)
    clock.t = utc(2026, 11, 30, 23, 59)
    call(tracker)
    with pytest.raises(BudgetExceededError):
        call(tracker)
    clock.t = utc(2026, 12, 1, 0, 0)
    call(tracker)


# -- alerts --------------------------------------------------------------------------------------


def test_alerts_fire_once_per_threshold_per_window(ledger: Any) -> None:
    clock = Clock(utc(2026, 11, 22, 8))
    fired: list[Alert] = []
    budget = Budget(alerts=[Decimal("0.001"), Decimal("0.002")])
    tracker = CostTracker(ledger, [budget], on_alert=fired.append, clock=clock)
    call(tracker)  # 0.00075
    assert fired == []
    call(tracker)  # 0.0015: crosses 0.001
    assert [a.threshold for a in fired] == [Decimal("0.001")]
    assert fired[0].spent == Decimal("0.0015") and fired[0].budget is budget and fired[0].key is None
    call(tracker)  # 0.00225: crosses 0.002
    for _ in range(3):
        call(tracker)
    assert [a.threshold for a in fired] == [Decimal("0.001"), Decimal("0.002")]
    clock.t = utc(2026, 11, 23, 8)  # a new day: the thresholds arm again
    call(tracker)
    call(tracker)
    assert [a.threshold for a in fired] == [Decimal("0.001"), Decimal("0.002"), Decimal("0.001")]


def test_alerts_per_user_and_both_thresholds_at_once() -> None:
    fired: list[Alert] = []
    tracker = CostTracker(budgets=[Budget(scope="user", alerts=["0.0001", "0.0005"])], on_alert=fired.append)
    call(tracker, user="alice")
    call(tracker, user="bob")
    call(tracker, user="alice")
    assert sorted((a.key, str(a.threshold)) for a in fired) == [
        ("alice", "0.0001"),
        ("alice", "0.0005"),
        ("bob", "0.0001"),
        ("bob", "0.0005"),
    ]


def test_alerts_fire_once_across_trackers_sharing_a_ledger(tmp_path: Path) -> None:
    fired: list[Alert] = []
    budgets = [Budget(alerts=[Decimal("0.001")])]
    a = CostTracker(SQLiteLedger(tmp_path / "s.db"), budgets, on_alert=fired.append)
    b = CostTracker(SQLiteLedger(tmp_path / "s.db"), budgets, on_alert=fired.append)  # another process, say
    call(a)
    call(b)
    call(a)
    call(b)
    assert len(fired) == 1


def test_default_alert_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    tracker = CostTracker(budgets=[Budget(limit=Decimal(1), alerts=[Decimal("0.0005")])])
    with caplog.at_level(logging.WARNING, logger="cfgateway.costs.budget"):
        call(tracker)
    msgs = [r.getMessage() for r in caplog.records if r.name == "cfgateway.costs.budget"]
    assert len(msgs) == 1 and "$0.0005" in msgs[0] and "hard limit $1" in msgs[0]


def test_a_failing_alert_hook_does_not_fail_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def boom(alert: Alert) -> None:
        raise RuntimeError("hook broke")

    tracker = CostTracker(budgets=[Budget(alerts=[Decimal("0.0001")])], on_alert=boom)
    with caplog.at_level(logging.ERROR, logger="cfgateway.costs.budget"):
        rec = call(tracker)
    assert rec.cost == CALL
    assert any("on_alert" in r.getMessage() for r in caplog.records)


# -- record() ------------------------------------------------------------------------------------


def test_record_prices_fills_neurons_and_respects_cache_hits() -> None:
    tracker = CostTracker()
    now = time.time()
    wa = tracker.record(UsageRecord(now, "@cf/meta/llama-3.2-1b-instruct", "workers-ai", "chat", 1000, 500))
    assert wa.cost == Decimal("0.0001275")
    assert wa.neurons == pytest.approx(11.583)
    hit = tracker.record(UsageRecord(now, MODEL, "openai", "chat", 1000, 1000, cache_status="HIT"))
    assert hit.cost == Decimal(0)
    preset = tracker.record(UsageRecord(now, MODEL, "openai", "chat", 1000, 1000, cost=Decimal("9")))
    assert preset.cost == Decimal(9)  # a cost the client already set is kept
    failed = tracker.record(UsageRecord(now, MODEL, "openai", "chat", outcome="TimeoutError"))
    assert failed.cost is None  # nothing known to be used: unknown, not 0
    cut = UsageRecord(now, MODEL, "openai", "chat", 1000, 100, outcome="StreamInterrupted", stream=True)
    cut.stream_complete = False
    assert tracker.record(cut).cost == Decimal("0.00021")  # billed for what it produced
    assert tracker.ledger.spent(since=now - 1) == Decimal("9.0003375")


def test_neurons_today_and_free_allocation() -> None:
    clock = Clock(utc(2026, 11, 22, 10))
    tracker = CostTracker(clock=clock)
    tracker.record(UsageRecord(utc(2026, 11, 21, 23), "@cf/meta/llama-3.2-1b-instruct", "workers-ai", "chat", neurons=9000.0))
    tracker.record(UsageRecord(clock(), "@cf/meta/llama-3.2-1b-instruct", "workers-ai", "chat", neurons=2500.0))
    tracker.record(UsageRecord(clock(), "@cf/meta/llama-3.2-1b-instruct", "workers-ai", "chat", neurons=500.5))
    assert tracker.neurons_today() == pytest.approx(3000.5)
    assert tracker.free_neurons_left() == pytest.approx(10000 - 3000.5)
    tracker.record(UsageRecord(clock(), "@cf/meta/llama-3.2-1b-instruct", "workers-ai", "chat", neurons=8000.0))
    assert tracker.free_neurons_left() == 0.0


class PlainLedger:
    """A user-written ledger with only the public protocol (no atomic budget support)."""

    def __init__(self) -> None:
        self.inner = MemoryLedger()

    def add(self, record: UsageRecord) -> None:
        self.inner.add(record)

    def records(self, *, since: float | None = None) -> list[UsageRecord]:
        return self.inner.records(since=since)

    def spent(self, *, since: float, user: str | None = None, provider: str | None = None) -> Decimal:
        return self.inner.spent(since=since, user=user, provider=provider)

    def neurons(self, *, since: float) -> float:
        return self.inner.neurons(since=since)

    def close(self) -> None:
        pass


def test_budgets_work_on_a_plain_user_ledger() -> None:
    fired: list[Alert] = []
    tracker = CostTracker(PlainLedger(), [Budget(limit=CALL * 2, alerts=[CALL])], on_alert=fired.append)
    call(tracker)
    call(tracker)
    with pytest.raises(BudgetExceededError):
        call(tracker)
    assert [a.kind for a in fired] == ["threshold", "limit"]  # the refusal is an alert too


def test_a_broken_ledger_never_fails_the_call(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    class Broken(PlainLedger):
        broken = True

        def add(self, record: UsageRecord) -> None:
            if self.broken:
                raise OSError("disk full")
            super().add(record)

    ledger = Broken()
    tracker = CostTracker(ledger, spool_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="cfgateway.cost"):
        rec = tracker.record(UsageRecord(time.time(), MODEL, "openai", "chat", 1000, 1000))
    assert rec.cost == CALL
    assert any("cannot be reached" in r.getMessage() and "spooled" in r.getMessage() for r in caplog.records)
    assert tracker.flush_spool(timeout=0.1) == 1  # kept for a replay, not dropped
    ledger.broken = False  # the disk has room again
    assert tracker.flush_spool(timeout=5) == 0 and ledger.records() == [rec]


def test_a_ledger_that_rejects_a_record_logs_it(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    class Rejecting(PlainLedger):
        def add(self, record: UsageRecord) -> None:
            raise ValueError("bad record")

    tracker = CostTracker(Rejecting(), spool_dir=tmp_path)
    with caplog.at_level(logging.ERROR, logger="cfgateway.cost"):
        tracker.record(UsageRecord(time.time(), MODEL, "openai", "chat", 1000, 1000))
    assert any("could not add" in r.getMessage() for r in caplog.records)
    assert tracker.flush_spool(timeout=0.1) == 0 and not list(tmp_path.iterdir())
