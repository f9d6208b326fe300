"""The ledger contract, run against every backend: memory, SQLite (a file in tmp_path) and Redis
(a real redis-server started here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import _redis
import pytest

from cfgateway.costs.ledger import (
    MemoryLedger,
    RedisLedger,
    Rejection,
    SpendCheck,
    SQLiteLedger,
    UsageRecord,
    open_ledger,
)
from cfgateway.errors import ConfigError

DAY = 86400
T0 = 1_795_000_000.0 - (1_795_000_000.0 % DAY)  # a UTC midnight (2026-11-18)


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
        led = SQLiteLedger(tmp_path / "costs.db")
    else:
        led = RedisLedger(request.getfixturevalue("redis_url"), prefix=f"t{uuid.uuid4().hex[:8]}")
    yield led
    led.close()


def rec(ts: float, cost: str | None = "0.001", **kw: Any) -> UsageRecord:
    kw.setdefault("model", "openai/gpt-4o-mini")
    kw.setdefault("provider", "openai")
    kw.setdefault("operation", "chat")
    return UsageRecord(ts=ts, cost=None if cost is None else Decimal(cost), **kw)


def test_records_round_trip_every_field(ledger: Any) -> None:
    full = UsageRecord(
        ts=T0 + 12.5, model="@cf/meta/llama-3.2-1b-instruct", provider="workers-ai", operation="chat",
        input_tokens=11, output_tokens=22, cached_tokens=3, neurons=1.25, cost=Decimal("0.0000012345678"),
        latency_s=0.75, ttft_s=0.125, outcome="ok", attempt=2, fallback=True, cache_status="MISS",
        log_id="01JADMCQQQBWH3NXZ5GCRN98DP", stream=True, stream_complete=False, user="alice",
        tags={"team": "search", "n": 3, "flag": True}, call_id="call-1",
    )  # fmt: skip
    bare = UsageRecord(ts=T0 + 13, model="x/y", provider="x", operation="embed", outcome="TimeoutError")
    ledger.add(full)
    ledger.add(bare)
    got = ledger.records()
    assert got == [full, bare]
    assert isinstance(got[0].cost, Decimal) and got[0].cost == Decimal("0.0000012345678")
    assert got[1].cost is None and got[1].neurons is None and got[1].stream_complete is None and got[1].user is None


def test_records_since_filters_and_orders_by_time(ledger: Any) -> None:
    for ts in (T0 + 5, T0 - 10, T0 + DAY + 1, T0 + 1):
        ledger.add(rec(ts, call_id=str(ts)))
    assert [r.ts for r in ledger.records()] == [T0 - 10, T0 + 1, T0 + 5, T0 + DAY + 1]
    assert [r.ts for r in ledger.records(since=T0 + 1)] == [T0 + 1, T0 + 5, T0 + DAY + 1]
    assert [r.ts for r in ledger.records(since=T0 + DAY + 2)] == []


def test_spent_sums_priced_cost_exactly_with_filters(ledger: Any) -> None:
    ledger.add(rec(T0 + 10, "0.0000001", user="a"))
    ledger.add(rec(T0 + 20, "0.1", user="b", provider="anthropic", model="anthropic/claude-sonnet-4-5"))
    ledger.add(rec(T0 + 30, None, user="a"))  # unknown price: not counted, not zero-filled
    ledger.add(rec(T0 + 40, "0.0000002"))  # no user
    ledger.add(rec(T0 - 5, "5"))  # the day before
    assert ledger.spent(since=T0) == Decimal("0.1000003")
    assert ledger.spent(since=T0 - DAY) == Decimal("5.1000003")
    assert ledger.spent(since=T0, user="a") == Decimal("0.0000001")
    assert ledger.spent(since=T0, provider="openai") == Decimal("0.0000003")
    assert ledger.spent(since=T0, user="b", provider="anthropic") == Decimal("0.1")
    assert ledger.spent(since=T0, user="b", provider="openai") == 0
    assert ledger.spent(since=T0, user="nobody") == 0


def test_spent_since_mid_day_counts_only_later_records(ledger: Any) -> None:
    ledger.add(rec(T0 + 100, "1", user="a"))
    ledger.add(rec(T0 + 200, "2", user="a"))
    ledger.add(rec(T0 + 300, "4", user="b"))
    ledger.add(rec(T0 + DAY + 5, "8", user="a"))
    assert ledger.spent(since=T0 + 150) == Decimal(14)
    assert ledger.spent(since=T0 + 150, user="a") == Decimal(10)
    assert ledger.spent(since=T0 + 200, provider="openai") == Decimal(14)
    assert ledger.spent(since=T0 + 301) == Decimal(8)


def test_neurons_since(ledger: Any) -> None:
    ledger.add(rec(T0 - 1, neurons=100.0))
    ledger.add(rec(T0 + 1, neurons=2.5))
    ledger.add(rec(T0 + 50, neurons=0.25))
    ledger.add(rec(T0 + 60))
    assert ledger.neurons(since=T0) == pytest.approx(2.75)
    assert ledger.neurons(since=T0 + 10) == pytest.approx(0.25)
    assert ledger.neurons(since=T0 - DAY) == pytest.approx(102.75)


def test_concurrent_adds_from_threads_are_all_kept(ledger: Any) -> None:
    def work(t: int) -> None:
        for i in range(100):
            ledger.add(rec(T0 + i, "0.000123", user=f"u{t}", call_id=f"{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = ledger.records()
    assert len(got) == 800 and len({r.call_id for r in got}) == 800
    assert ledger.spent(since=T0) == Decimal("0.000123") * 800
    assert ledger.spent(since=T0, user="u3") == Decimal("0.0123")


def test_reservations_count_until_settled_or_released(ledger: Any) -> None:
    now = T0 + 1000
    ledger.add(rec(T0 + 1, "0.6", user="a"))
    checks = [SpendCheck("g", int(T0 // DAY), Decimal(1))]
    scopes = ("g", "p:openai", "u:a", "up:a\x1fopenai")
    r1 = ledger.try_reserve(checks, Decimal("0.3"), scopes, now=now, ttl=60)
    assert isinstance(r1, str)
    refused = ledger.try_reserve(checks, Decimal("0.2"), scopes, now=now, ttl=60)
    assert refused == Rejection(0, Decimal("0.6"), Decimal("0.3"))
    ledger.release_reservation(r1)
    r2 = ledger.try_reserve(checks, Decimal("0.4"), scopes, now=now, ttl=60)
    assert isinstance(r2, str)
    ledger.settle(rec(T0 + 2, "0.1", user="a"), r2)  # settles at the actual cost, drops the hold
    assert ledger.spent(since=T0) == Decimal("0.7")
    assert isinstance(ledger.try_reserve(checks, Decimal("0.3"), scopes, now=now, ttl=60), str)


def test_reservations_are_scoped_and_expire(ledger: Any) -> None:
    day = int(T0 // DAY)
    user_a = [SpendCheck("u:a", day, Decimal("1"))]
    assert isinstance(ledger.try_reserve(user_a, Decimal("0.9"), ("g", "u:a"), now=T0, ttl=30), str)
    assert isinstance(ledger.try_reserve([SpendCheck("u:b", day, Decimal(1))], Decimal("0.9"), ("u:b",), now=T0, ttl=30), str)
    assert isinstance(ledger.try_reserve(user_a, Decimal("0.2"), ("g", "u:a"), now=T0 + 1, ttl=30), Rejection)
    # the first hold's owner vanished: after its ttl it no longer counts
    assert isinstance(ledger.try_reserve(user_a, Decimal("0.2"), ("g", "u:a"), now=T0 + 31, ttl=30), str)


def test_a_record_added_twice_counts_once(ledger: Any) -> None:
    r = rec(T0 + 1, "0.25", user="a", neurons=2.0)
    ledger.add(r)
    ledger.add(r)  # a spooled record replayed after a write whose answer was lost
    ledger.settle_many([(r, None), (rec(T0 + 2, "0.5"), None)])
    got = ledger.records()
    assert len(got) == 2 and got[0].record_id == r.record_id
    assert ledger.spent(since=T0) == Decimal("0.75") and ledger.spent(since=T0, user="a") == Decimal("0.25")
    assert ledger.neurons(since=T0) == 2.0


def test_settle_many_releases_reservations_and_renew_extends_leases(ledger: Any) -> None:
    day = int(T0 // DAY)
    checks = [SpendCheck("g", day, Decimal(1))]
    r1 = ledger.try_reserve(checks, Decimal("0.6"), ("g",), now=T0, ttl=10)
    r2 = ledger.try_reserve(checks, Decimal("0.3"), ("g",), now=T0, ttl=10)
    assert ledger.renew_reservations([r1, "gone"], expires=T0 + 100) == 1
    # at T0 + 50 r2 has lapsed, r1 still holds: 0.6 + 0.5 > 1
    assert isinstance(ledger.try_reserve(checks, Decimal("0.5"), ("g",), now=T0 + 50, ttl=10), Rejection)
    ledger.settle_many([(rec(T0 + 3, "0.1"), r1), (rec(T0 + 4, "0.1"), r2)])
    assert isinstance(ledger.try_reserve(checks, Decimal("0.8"), ("g",), now=T0 + 50, ttl=10), str)


def test_mark_alert_is_true_once(ledger: Any) -> None:
    assert ledger.mark_alert("daily|g|1|100", expires=T0 + DAY) is True
    assert ledger.mark_alert("daily|g|1|100", expires=T0 + DAY) is False
    assert ledger.mark_alert("daily|g|1|300", expires=T0 + DAY) is True


# -- backend specifics ---------------------------------------------------------------------------


def test_sqlite_uses_wal_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "costs.db"
    led = SQLiteLedger(path)
    led.add(rec(T0 + 1, "0.25"))
    conn = led._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    led.close()
    again = SQLiteLedger(path)
    assert [r.cost for r in again.records()] == [Decimal("0.25")]
    assert again.spent(since=T0) == Decimal("0.25")
    again.close()


def test_sqlite_files_from_before_record_ids_are_upgraded_on_open(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    SQLiteLedger(path).add(rec(T0 + 1, "0.5"))
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX records_record_id")
    conn.execute("ALTER TABLE records DROP COLUMN record_id")  # what a file written by an older release looks like
    conn.commit()
    conn.close()
    led = SQLiteLedger(path)
    again = rec(T0 + 2, "0.25")
    led.add(again)
    led.add(again)
    assert [r.cost for r in led.records()] == [Decimal("0.5"), Decimal("0.25")]
    assert led.records()[0].record_id == "" and led.spent(since=T0) == Decimal("0.75")
    led.close()


def test_sqlite_one_connection_per_thread(tmp_path: Path) -> None:
    led = SQLiteLedger(tmp_path / "c.db")
    seen: list[int] = []
    th = threading.Thread(target=lambda: seen.append(id(led._conn())))
    th.start()
    th.join()
    assert seen and seen[0] != id(led._conn())
    led.close()


def test_redis_keys_live_under_the_prefix(redis_url: str) -> None:
    led = RedisLedger(redis_url, prefix="pfx-test")
    before = set(led._r.keys("*"))
    led.add(rec(T0 + 1, "0.5", user="a"))
    day = int(T0 // DAY)
    assert set(led._r.keys("*")) - before == {
        "pfx-test:days", f"pfx-test:rec:{day}", f"pfx-test:spend:{day}", f"pfx-test:rids:{day}"
    }
    led.clear()
    assert led._r.keys("pfx-test:*") == []
    led.close()


# -- open_ledger ---------------------------------------------------------------------------------


def test_open_ledger_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    assert isinstance(open_ledger(None), MemoryLedger)
    assert isinstance(open_ledger("memory://"), MemoryLedger)
    absolute = open_ledger(f"sqlite:///{tmp_path}/abs.db")  # sqlite:////tmp/... (absolute)
    assert isinstance(absolute, SQLiteLedger) and Path(absolute.path) == tmp_path / "abs.db"
    absolute.close()
    monkeypatch.chdir(tmp_path)
    relative = open_ledger("sqlite:///rel/costs.db")
    assert isinstance(relative, SQLiteLedger) and (tmp_path / "rel" / "costs.db").exists()
    relative.close()
    red = open_ledger(redis_url)
    assert isinstance(red, RedisLedger)
    red.close()


@pytest.mark.parametrize("url", ["ftp://x", "sqlite://", "sqlite:///:memory:", "postgres://db/x"])
def test_open_ledger_rejects_unknown_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        open_ledger(url)


def test_importing_the_cost_modules_does_not_import_sqlite3_or_redis() -> None:
    code = (
        "import sys, cfgateway, cfgateway.costs.pricing, cfgateway.costs.ledger, cfgateway.costs.budget, cfgateway.costs.reports;"
        "print(','.join(m for m in ('sqlite3', 'redis', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
