"""Issue 10 finding 9: the usage spool (order, idempotent replays, partial failures, a bound, orphans of a
killed process) and the ledger boundary (no driver exception reaches a caller; budgets fail closed or open)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway import Budget, CostTracker, LedgerUnavailableError
from cfgateway.costs.ledger import MemoryLedger, RedisLedger, SQLiteLedger, UsageRecord
from cfgateway.costs.ledger.spool import Spool

MODEL = "openai/gpt-4o-mini"


def rec(i: int, ts: float | None = None) -> UsageRecord:
    return UsageRecord(ts or time.time(), MODEL, "openai", "chat", 1000, 1000, cost=Decimal("0.001"), call_id=f"c{i}")


def test_replay_keeps_order_and_counts_a_record_once(tmp_path: Path) -> None:
    ledger = MemoryLedger()
    spool = Spool(tmp_path, "k")
    records = [rec(i, ts=1_800_000_000.0) for i in range(5)]  # one timestamp: records() keeps insertion order
    ledger.add(records[2])  # its write reached the ledger, but the answer was lost: it was spooled too
    for r in records:
        assert spool.append(r, None)
    assert spool.replay(ledger.settle_many, batch=2) == 5
    assert [r.call_id for r in ledger.records()] == ["c2", "c0", "c1", "c3", "c4"]
    assert spool.replay(ledger.settle_many) == 0 and list(tmp_path.iterdir()) == []


def test_a_replay_that_fails_half_way_keeps_the_rest_for_later(tmp_path: Path) -> None:
    ledger = MemoryLedger()
    spool = Spool(tmp_path, "k")
    for i in range(10):
        spool.append(rec(i), None)
    calls = 0

    def flaky(items: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise LedgerUnavailableError("down again")
        ledger.settle_many(items)

    with pytest.raises(LedgerUnavailableError):
        spool.replay(flaky, batch=4)
    assert len(ledger.records()) == 4 and spool.count() == 6
    spool.append(rec(10), None)  # written while the replay had failed: replayed after the older ones
    assert spool.replay(ledger.settle_many, batch=4) == 7
    assert [r.call_id for r in ledger.records()] == [f"c{i}" for i in range(11)]


def test_a_full_spool_drops_with_a_loud_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path, "k", max_bytes=2000)
    with caplog.at_level(logging.ERROR, logger="cfgateway.cost"):
        kept = [spool.append(rec(i), None) for i in range(10)]
    assert kept[0] and not kept[-1]
    assert any("full" in r.getMessage() and "DROPPED" in r.getMessage() for r in caplog.records)
    ledger = MemoryLedger()
    spool.replay(ledger.settle_many)
    assert len(ledger.records()) == kept.count(True) and spool.append(rec(99), None)  # room again


def _spool_then_die(db: str, spool_dir: str) -> None:
    tracker = CostTracker(SQLiteLedger(db), spool_dir=spool_dir)
    tracker._link.failed(LedgerUnavailableError("simulated"), "a test")  # the ledger "went away"
    for i in range(7):
        tracker.record(rec(i))
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_spool_of_a_killed_process_is_replayed_by_the_next_one(tmp_path: Path) -> None:
    db, spool_dir = str(tmp_path / "c.db"), str(tmp_path / "spool")
    proc = multiprocessing.get_context("fork").Process(target=_spool_then_die, args=(db, spool_dir))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL and len(list(Path(spool_dir).iterdir())) == 1
    ledger = SQLiteLedger(db)
    assert ledger.records() == []
    tracker = CostTracker(ledger, spool_dir=spool_dir)
    tracker.record(rec(100))  # the first write catches up with what the dead process left
    assert sorted(r.call_id for r in ledger.records()) == sorted([f"c{i}" for i in range(7)] + ["c100"])
    assert list(Path(spool_dir).iterdir()) == []
    assert CostTracker(ledger, spool_dir=spool_dir).flush_spool(timeout=0) == 0  # nothing left to adopt


def test_sqlite_locked_past_its_timeout_is_ledger_unavailable_and_records_are_spooled(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    ledger = SQLiteLedger(db, timeout=0.05)
    tracker = CostTracker(ledger, [Budget(limit=Decimal(10))], spool_dir=tmp_path / "spool")
    res = tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=10, max_output_tokens=10)
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    with pytest.raises(LedgerUnavailableError, match="locked"):
        ledger.add(rec(0))
    tracker.record(rec(1), res)  # never raises: spooled
    with pytest.raises(LedgerUnavailableError, match="budgets cannot be checked.*not sent.*on_ledger_down"):
        tracker.reserve(model=MODEL, provider="openai", user=None, input_tokens=10, max_output_tokens=10)
    lock.execute("COMMIT")
    lock.close()
    assert tracker.spooled == 1 and tracker.flush_spool(timeout=5) == 0
    assert [r.call_id for r in ledger.records()] == ["c1"]
    assert ledger.spent(since=0) == Decimal("0.001")


def test_fail_open_sends_unchecked_while_the_ledger_is_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    led = RedisLedger(f"redis://127.0.0.1:{_redis.free_port()}/0", connect_timeout=0.2, retries=0)
    budgets = [Budget(limit=Decimal(1))]
    closed = CostTracker(led, budgets, spool_dir=tmp_path)
    with pytest.raises(LedgerUnavailableError) as info:
        closed.reserve(model=MODEL, provider="openai", user=None, input_tokens=1, max_output_tokens=1)
    assert "redis.exceptions" not in type(info.value).__module__ and "Connection" in str(info.value)
    opened = CostTracker(led, budgets, spool_dir=tmp_path, on_ledger_down="open")
    with caplog.at_level(logging.WARNING, logger="cfgateway.costs.budget"):
        for _ in range(3):
            assert opened.reserve(model=MODEL, provider="openai", user=None, input_tokens=1, max_output_tokens=1) is None
    assert sum("sent unchecked" in r.getMessage() for r in caplog.records) == 1


def test_fail_open_from_settings(tmp_path: Path) -> None:
    from cfgateway.config import load_settings

    settings = load_settings(env={"CFGATEWAY_BUDGET_FAIL_OPEN": "true", "CFGATEWAY_SPOOL_DIR": str(tmp_path)})
    tracker = CostTracker(settings=settings)
    assert tracker.on_ledger_down == "open" and tracker._link.spool.directory == tmp_path
    assert CostTracker(settings=load_settings(env={})).on_ledger_down == "closed"


def test_redis_errors_never_escape_as_redis_exceptions(tmp_path: Path) -> None:
    led = RedisLedger(f"redis://127.0.0.1:{_redis.free_port()}/0", connect_timeout=0.2, retries=0)
    calls = [
        lambda: led.add(rec(0)), lambda: led.records(), lambda: led.spent(since=0), lambda: led.neurons(since=0),
        lambda: led.release_reservation("x"), lambda: led.renew_reservations(["x"], expires=1.0),
        lambda: led.mark_alert("k", expires=1.0), lambda: led.settle_many([(rec(1), None)]), lambda: led.clear(),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(LedgerUnavailableError) as info:
            call()
        assert info.value.__cause__ is not None and "127.0.0.1" in info.value.ledger
    led.close()


def test_spool_appends_from_many_threads_are_all_replayed(tmp_path: Path) -> None:
    spool, ledger = Spool(tmp_path, "k"), MemoryLedger()

    def write(t: int) -> None:
        for i in range(100):
            spool.append(rec(t * 1000 + i), None)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    spool.replay(ledger.settle_many)  # while they write
    for th in threads:
        th.join()
    spool.replay(ledger.settle_many)
    ids = [r.record_id for r in ledger.records()]
    assert len(ids) == 800 == len(set(ids))
